//! The README's transcripts, run as written: every ```console block is one
//! shell session. Its `$ ` lines are run in order by bash (with the built
//! `pipeslot` first on PATH, a fresh namespace and a fresh working folder),
//! and what the session prints, stdout and stderr together, must be the
//! block's other lines. In those lines `…` stands for any text within a
//! line (a pid, a timing) and a line `...` for any lines (the body of a
//! long report); nothing else is loose.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::util::{root_or_skip, test, BIN};

/// One ```console block: where it starts, its commands and what they print.
#[derive(Debug)]
struct Transcript {
    line: usize,
    commands: Vec<String>,
    expected: Vec<String>,
}

fn transcripts(readme: &str) -> Vec<Transcript> {
    let mut out = Vec::new();
    let mut current: Option<Transcript> = None;
    for (n, line) in readme.lines().enumerate() {
        match current.as_mut() {
            None if line.trim_end() == "```console" => {
                current = Some(Transcript {
                    line: n + 1,
                    commands: Vec::new(),
                    expected: Vec::new(),
                });
            }
            None => {}
            Some(_) if line.trim_end() == "```" => out.extend(current.take()),
            Some(t) => match line.strip_prefix("$ ") {
                Some(cmd) => t.commands.push(cmd.to_owned()),
                None => t.expected.push(line.to_owned()),
            },
        }
    }
    assert!(current.is_none(), "a ```console block is not closed");
    out
}

/// One line against its pattern: `…` is any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split('…').collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// All lines against the patterns: a `...` line is any lines, none included.
fn lines_match(patterns: &[String], lines: &[&str]) -> bool {
    match patterns.split_first() {
        None => lines.is_empty(),
        Some((p, rest)) if p == "..." => (0..=lines.len()).any(|skip| lines_match(rest, &lines[skip..])),
        Some((p, rest)) => lines
            .split_first()
            .is_some_and(|(l, more)| line_matches(p, l) && lines_match(rest, more)),
    }
}

/// Runs one transcript's commands as one bash session; returns its output.
fn run(t: &Transcript, ns: &Path, work: &Path) -> String {
    let bin_dir = Path::new(BIN).parent().expect("the binary's folder");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    // The session's stderr joins its stdout, as on a terminal; at the end its
    // background jobs are stopped quietly (the README's `&` servers).
    let script = format!(
        "exec 2>&1\n{}\nexec 2>/dev/null\nkill $(jobs -p)\nwait\n",
        t.commands.join("\n")
    );
    let mut c = Command::new("bash");
    c.args(["--noprofile", "--norc", "-c", &script])
        .current_dir(work)
        .env("PATH", path)
        .env("PIPESLOT_DIR", ns)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, _) in std::env::vars() {
        if k.starts_with("PIPESLOT_") && k != "PIPESLOT_DIR" || k == "RUST_LOG" || k == "NOTIFY_SOCKET" {
            c.env_remove(k);
        }
    }
    let child = c.spawn().expect("run bash");
    let pgid = child.id() as libc::pid_t;
    let out = child.wait_with_output().expect("the session's output");
    // Anything the session left behind (a job that outlived `kill`).
    // SAFETY: kill(2) on the process group this test created.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_readme_s_transcripts_run_as_written() {
    // The transcripts show a root user's view (owner columns, the shared root).
    if !root_or_skip("the README's transcripts") {
        return;
    }
    test("readme", Duration::from_secs(240), |ctx| {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        let all = transcripts(&readme);
        // One transcript at least per verb.
        let verbs = [
            "serve",
            "send",
            "call",
            "transact",
            "wait",
            "list",
            "info",
            "gateway",
            "demo",
            "completions",
            "man",
            "bench",
            "torture",
        ];
        for verb in verbs {
            let shown = all.iter().flat_map(|t| &t.commands).any(|c| {
                c.split(['|', ';', '&'])
                    .any(|part| part.trim_start().starts_with(&format!("pipeslot {verb}")))
            });
            assert!(shown, "no README transcript runs `pipeslot {verb}`");
        }
        let mut failed = Vec::new();
        for (i, t) in all.iter().enumerate() {
            assert!(
                !t.commands.is_empty(),
                "README line {}: a transcript without commands",
                t.line
            );
            let ns = ctx.dir.join(format!("ns-{i}"));
            let work = ctx.dir.join(format!("work-{i}"));
            std::fs::create_dir_all(&ns).unwrap();
            std::fs::create_dir_all(&work).unwrap();
            let got = run(t, &ns, &work);
            let lines: Vec<&str> = got.lines().collect();
            if !lines_match(&t.expected, &lines) {
                failed.push(format!(
                    "README line {}:\n--- expected\n{}\n--- got\n{got}",
                    t.line,
                    t.expected.join("\n")
                ));
            }
        }
        assert!(
            failed.is_empty(),
            "{} transcript(s) differ:\n{}",
            failed.len(),
            failed.join("\n")
        );
    });
}

#[test]
fn transcript_patterns_are_loose_only_where_marked() {
    assert!(line_matches("pid …: ok", "pid 42: ok"));
    assert!(line_matches("a…b…c", "a-b-c"));
    assert!(!line_matches("a…b", "a-c"));
    assert!(!line_matches("ab…ba", "aba"), "the ends may not overlap");
    assert!(!line_matches("exact", "exact "));
    let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(
        &p(&["one", "...", "four"]),
        &["one", "two", "three", "four"]
    ));
    assert!(lines_match(&p(&["one", "...", "two"]), &["one", "two"]));
    assert!(!lines_match(&p(&["one", "two"]), &["one", "two", "three"]));
    assert!(!lines_match(&p(&["one"]), &[]));
    let t = transcripts("x\n```console\n$ echo hi\nhi\n```\n```sh\n$ not this\n```\n");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].commands, ["echo hi"]);
    assert_eq!(t[0].expected, ["hi"]);
}

/// Every flag the command takes is in the README: each verb's `--help`
/// (bench's included) against the page.
#[test]
fn the_readme_names_every_flag_of_every_verb() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let verbs: [&[&str]; 14] = [
        &["serve"],
        &["send"],
        &["call"],
        &["transact"],
        &["wait"],
        &["list"],
        &["info"],
        &["gateway"],
        &["gateway", "user", "add"],
        &["demo"],
        &["completions"],
        &["man"],
        &["bench"],
        &["torture"],
    ];
    let mut missing = Vec::new();
    for verb in verbs {
        let out = Command::new(BIN).args(verb).arg("--help").output().expect("run --help");
        assert!(out.status.success(), "{verb:?} --help: {out:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        let flags = help
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| w.len() > 2 && w.starts_with("--") && w.as_bytes()[2].is_ascii_lowercase());
        for flag in flags {
            if ["--help", "--verbose"].contains(&flag) {
                continue;
            }
            let named = readme
                .match_indices(flag)
                .any(|(i, _)| !readme[i + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-'));
            if !named {
                missing.push(format!("{} {flag}", verb.join(" ")));
            }
        }
    }
    assert!(missing.is_empty(), "flags the README does not name: {missing:?}");
}
