//! list, info, PIPESLOT_DIR and the spellings of a name.

use std::time::Duration;

use super::util::{lines, test};

/// This test process's user, as `list` shows an owner.
pub(crate) fn me() -> String {
    if uid() == 0 {
        "root".to_owned()
    } else {
        uid().to_string()
    }
}

pub(crate) fn uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn list_shows_each_pipe_with_its_creators_spelling() {
    test("list", LIMIT, |ctx| {
        assert_eq!(ctx.run(&["list"]).success(), "", "an empty namespace lists nothing");
        let msg = format!("Mixed-Case {}", ctx.name("m"));
        let byte = ctx.name("b");
        let a = ctx.serve(&msg, &["--message", "--instances", "3"], 3);
        let b = ctx.serve(&byte, &["--instances", "2"], 2);
        // For people: a header and aligned columns.
        let table = lines(ctx.run(&["list"]).success().as_bytes());
        assert_eq!(table.len(), 3, "{table:?}");
        assert!(table[0].starts_with("NAME ") && table[0].contains("KIND") && table[0].ends_with("PIDS"));
        let col = table[0].find("KIND").unwrap();
        for row in &table[1..] {
            assert_eq!(&row[col..col + 4], "pipe", "KIND lines up: {table:?}");
        }
        assert!(
            table.iter().any(|l| l.starts_with(&format!(r"\\.\pipe\{msg} "))),
            "{table:?}"
        );
        // For scripts: one JSON object per name.
        let json: Vec<serde_json::Value> = lines(ctx.run(&["list", "--json"]).success().as_bytes())
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let find = |n: &str| {
            json.iter()
                .find(|o| o["name"] == format!(r"\\.\pipe\{n}"))
                .unwrap_or_else(|| panic!("{n}: {json:?}"))
                .clone()
        };
        let (oa, ob) = (find(&msg), find(&byte));
        assert_eq!(
            (&oa["kind"], &oa["mode"], &oa["instances"], &oa["max"], &oa["listening"]),
            (&"pipe".into(), &"message".into(), &3.into(), &3.into(), &3.into())
        );
        assert_eq!(oa["pids"], serde_json::json!([a.child.id()]));
        assert_eq!(oa["owner"], me());
        assert_eq!((&ob["mode"], &ob["instances"]), (&"byte".into(), &2.into()));
        assert_eq!(ob["pids"], serde_json::json!([b.child.id()]));
        // A pattern, as pipelist's filter: the last part of the name, any case.
        let only = lines(ctx.run(&["list", "--json", "MIXED-*"]).success().as_bytes());
        assert_eq!(only.len(), 1, "{only:?}");
        assert!(only[0].contains("Mixed-Case"));
    });
}

#[test]
fn info_gives_key_value_lines() {
    test("info", LIMIT, |ctx| {
        let name = ctx.name("Info");
        let server = ctx.serve(&name, &["--message", "--instances", "2"], 2);
        let mut holder = ctx.spawn(&["send", &name, "-"]);
        holder.feed(b"hold\n");
        server.wait_stdout("the holder's message", |o| o == b"hold\n");
        let info = ctx.run(&["info", &name.to_uppercase()]).success();
        let want = format!(
            "name: \\\\.\\pipe\\{name}\nowner: {} (uid {})\ntype: message\ninstances: 2\nlistening: 1\nbusy: 1\nmax_instances: 2\n\
             in_buffer_size: 65536\nout_buffer_size: 65536\ndefault_timeout_ms: 50\n\
             server_pids: {}\nnamespace: {}\n",
            me(),
            uid(),
            server.child.id(),
            ctx.dir.display()
        );
        assert_eq!(info, want);
        // The same keys as one JSON object, numbers as numbers.
        let o: serde_json::Value =
            serde_json::from_str(ctx.run(&["info", &name, "--json"]).success().trim_end()).unwrap();
        assert_eq!(
            (&o["instances"], &o["listening"], &o["busy"]),
            (&2.into(), &1.into(), &1.into())
        );
        assert_eq!(o["server_pids"], serde_json::json!([server.child.id()]));
        assert_eq!(o["type"], "message");
    });
}

#[test]
fn every_spelling_of_a_name_reaches_the_same_pipe() {
    test("spellings", LIMIT, |ctx| {
        let name = ctx.name("Spell");
        let server = ctx.serve(&name, &["--message", "--max-clients", "4"], 4);
        let upper = name.to_uppercase();
        for spelling in [
            name.clone(),
            format!(r"\\.\pipe\{name}"),
            format!("//./pipe/{upper}"),
            format!(r"\\.\PIPE\{}", name.to_lowercase()),
        ] {
            ctx.run(&["send", &spelling, &spelling]).success();
        }
        assert_eq!(lines(&server.wait().stdout).len(), 4);
    });
}

#[test]
fn pipeslot_dir_keeps_namespaces_apart() {
    test("dirs", LIMIT, |ctx| {
        let name = ctx.name("iso");
        let _server = ctx.serve(&name, &["--message"], 4);
        let other = ctx.dir.join("elsewhere");
        std::fs::create_dir_all(&other).unwrap();
        let out = ctx
            .cmd(&["send", &name, "x"])
            .env("PIPESLOT_DIR", &other)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("pipeslot: ERROR_FILE_NOT_FOUND (2): "));
        let listed = ctx.cmd(&["list"]).env("PIPESLOT_DIR", &other).output().unwrap();
        assert!(listed.status.success() && listed.stdout.is_empty());
        assert_eq!(lines(ctx.run(&["list", "--json"]).success().as_bytes()).len(), 1);
    });
}

#[test]
fn control_characters_in_names_are_escaped_in_list_info_and_errors() {
    test("ctl", LIMIT, |ctx| {
        let name = format!("{}\x1b]0;owned\x07\n\tend", ctx.name("ctl"));
        let _s = ctx.serve(&name, &["--message", "--instances", "1"], 1);
        let escaped = name
            .replace('\x1b', r"\x1b")
            .replace('\x07', r"\x07")
            .replace('\n', r"\x0a")
            .replace('\t', r"\x09");
        let listed = ctx.run(&["list"]).success();
        assert!(!listed.contains('\x1b') && !listed.contains('\x07'), "{listed:?}");
        assert_eq!(
            lines(listed.as_bytes()).len(),
            2,
            "a header and one line per name: {listed:?}"
        );
        assert!(
            lines(listed.as_bytes())[1].starts_with(&format!(r"\\.\pipe\{escaped} ")),
            "{listed:?}"
        );
        // JSON carries the name exactly (its own escapes keep the terminal safe).
        let json = ctx.run(&["list", "--json"]).success();
        assert!(!json.contains('\x1b'), "{json:?}");
        let o: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
        assert_eq!(o["name"], format!(r"\\.\pipe\{name}"));
        let info = ctx.run(&["info", &name]).success();
        assert!(
            info.starts_with(&format!(
                "name: \\\\.\\pipe\\{escaped}\nowner: {} (uid {})\n",
                me(),
                uid()
            )),
            "{info:?}"
        );
        let missing = format!("{name}-missing");
        let err = ctx
            .run(&["info", &missing])
            .error("ERROR_FILE_NOT_FOUND", 2, r"\x1b]0;owned\x07\x0a\x09end");
        assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    });
}

#[test]
fn completions_and_the_manual_come_from_the_same_definitions() {
    test("completions", LIMIT, |ctx| {
        let bash = ctx.run(&["completions", "bash"]).success();
        assert!(bash.contains("_pipeslot()") && bash.contains("gateway") && bash.contains("--retry"));
        // bash takes it.
        let script = ctx.dir.join("pipeslot.bash");
        std::fs::write(&script, &bash).unwrap();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("source {} && complete -p pipeslot", script.display()))
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("_pipeslot"), "{out:?}");
        for shell in ["zsh", "fish"] {
            assert!(ctx.run(&["completions", shell]).success().contains("serve"), "{shell}");
        }
        let man = ctx.run(&["man"]).success();
        assert!(man.contains(".TH pipeslot 1") && man.contains("gateway"), "{man}");
    });
}

#[test]
fn pipeslot_dir_errors_name_the_path_and_the_fix() {
    test("dir-errors", LIMIT, |ctx| {
        let file = ctx.dir.join("a-file");
        std::fs::write(&file, "").unwrap();
        let run = |dir: &str, cwd: &std::path::Path| {
            let mut c = ctx.cmd(&["serve", "x"]);
            c.env("PIPESLOT_DIR", dir).current_dir(cwd);
            ctx.spawn_cmd(c).wait()
        };
        let out = run(file.to_str().unwrap(), &ctx.dir);
        let line = out.error("ERROR_DIRECTORY", 267, file.to_str().unwrap());
        assert!(line.contains("set PIPESLOT_DIR to a folder"), "{line}");
        // Relative: resolved, and said so.
        let out = run("a-file", &ctx.dir);
        let line = out.error("ERROR_DIRECTORY", 267, "PIPESLOT_DIR=a-file, relative");
        assert!(line.contains("give an absolute path"), "{line}");
        // A parent that does not exist.
        let missing = ctx.dir.join("no-such-parent").join("root");
        let out = run(missing.to_str().unwrap(), &ctx.dir);
        out.error("ERROR_PATH_NOT_FOUND", 3, "its parent folder does not exist");
    });
}
