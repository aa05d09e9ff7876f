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
        let listed = lines(ctx.run(&["list"]).success().as_bytes());
        assert_eq!(listed.len(), 2, "{listed:?}");
        let want_a = format!(
            "\\\\.\\pipe\\{msg}\tmessage\tinstances 3/3 (3 listening)\tpids {}\towner {}",
            a.child.id(),
            me()
        );
        let want_b = format!(
            "\\\\.\\pipe\\{byte}\tbyte\tinstances 2/2 (2 listening)\tpids {}\towner {}",
            b.child.id(),
            me()
        );
        assert!(listed.contains(&want_a), "{listed:?}");
        assert!(listed.contains(&want_b), "{listed:?}");
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
        assert_eq!(lines(ctx.run(&["list"]).success().as_bytes()).len(), 1);
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
        assert_eq!(lines(listed.as_bytes()).len(), 1, "one line per name: {listed:?}");
        assert!(
            listed.starts_with(&format!(r"\\.\pipe\{escaped}	message	")),
            "{listed:?}"
        );
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
