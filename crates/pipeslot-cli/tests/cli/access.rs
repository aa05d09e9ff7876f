//! Access control with a second user: the client runs as nobody (uid and
//! gid 65534). Needs root; elsewhere these skip with a reason (not on CI).

use std::time::Duration;

use super::util::{root_or_skip, test, Ctx};

const LIMIT: Duration = Duration::from_secs(30);

fn send_as_nobody(ctx: &Ctx, name: &str, msg: &str) -> super::util::Out {
    let mut p = ctx.spawn_cmd(ctx.cmd_as_nobody(&["send", name, msg]));
    p.close_stdin();
    p.wait()
}

#[test]
fn owner_only_by_default_refuses_another_user() {
    if !root_or_skip("owner_only_by_default_refuses_another_user") {
        return;
    }
    test("owner-only", LIMIT, |ctx| {
        let name = ctx.name("o");
        let server = ctx.serve(&name, &["--message", "--max-clients", "1"], 1);
        let line = send_as_nobody(ctx, &name, "from nobody").error("ERROR_ACCESS_DENIED", 5, &name);
        // Why, and what to do about it.
        assert!(
            line.contains("it is root's") && line.contains("--allow-user NAME"),
            "{line}"
        );
        ctx.run(&["send", &name, "from the owner"]).success();
        assert_eq!(server.wait().success(), "from the owner\n", "nothing from nobody");
    });
}

#[test]
fn allow_user_lets_that_user_in() {
    if !root_or_skip("allow_user_lets_that_user_in") {
        return;
    }
    test("allow-user", LIMIT, |ctx| {
        let name = ctx.name("u");
        let server = ctx.serve(&name, &["--message", "--max-clients", "1", "--allow-user", "nobody"], 1);
        send_as_nobody(ctx, &name, "from nobody").success();
        assert_eq!(server.wait().success(), "from nobody\n");
        // Another user allowed does not let nobody in.
        let other = ctx.name("u2");
        let _server = ctx.serve(&other, &["--message", "--allow-user", "12345"], 4);
        send_as_nobody(ctx, &other, "x").error("ERROR_ACCESS_DENIED", 5, &other);
    });
}

#[test]
fn allow_group_and_everyone_let_others_in() {
    if !root_or_skip("allow_group_and_everyone_let_others_in") {
        return;
    }
    test("allow-group", LIMIT, |ctx| {
        let by_group = ctx.name("g");
        let server = ctx.serve(
            &by_group,
            &["--message", "--max-clients", "1", "--allow-group", "65534"],
            1,
        );
        send_as_nobody(ctx, &by_group, "via the group").success();
        assert_eq!(server.wait().success(), "via the group\n");
        let open = ctx.name("all");
        let server = ctx.serve(&open, &["--message", "--max-clients", "1", "--everyone"], 1);
        send_as_nobody(ctx, &open, "anyone").success();
        assert_eq!(server.wait().success(), "anyone\n");
    });
}

/// A name another user created first (a squatter) serves its creator's
/// clients, as on Windows; `--server-user` says whose server the client
/// wants, and the squatter's name is then refused without a byte sent.
#[test]
fn server_user_refuses_a_name_another_user_created_first() {
    if !root_or_skip("server_user_refuses_a_name_another_user_created_first") {
        return;
    }
    test("server-user", LIMIT, |ctx| {
        let name = ctx.name("squat");
        let squatter = ctx.spawn_cmd(ctx.cmd_as_nobody(&["serve", &name, "--message", "--everyone"]));
        ctx.wait_listening(&name, 4);
        for args in [
            vec!["send", &name, "secret", "--server-user", "root"],
            vec!["call", &name, "secret", "--server-user", "0"],
            vec!["transact", &name, "secret", "--server-user", "root"],
        ] {
            let line = ctx.run(&args).error("ERROR_ACCESS_DENIED", 5, &name);
            assert!(
                line.contains("uid 65534 (nobody)") && line.contains("uid 0 (root)"),
                "{line}"
            );
        }
        // The squatter printed nothing: no client reached it.
        std::thread::sleep(Duration::from_millis(200));
        assert!(squatter.stdout().is_empty(), "{:?}", squatter.stdout());
        // The right user's server is reached.
        let ours = ctx.name("ours");
        let server = ctx.serve(&ours, &["--message", "--max-clients", "1"], 1);
        ctx.run(&["send", &ours, "hello", "--server-user", "root"]).success();
        assert_eq!(server.wait().success(), "hello\n");
        // Unknown users, mailslots and remote names are told apart.
        ctx.run(&["send", &ours, "x", "--server-user", "no-such-user-pipeslot"])
            .error("ERROR_NONE_MAPPED", 1332, "no-such-user-pipeslot");
        ctx.run(&["send", r"\\.\mailslot\x", "x", "--server-user", "root"])
            .usage("--server-user");
        ctx.run(&["call", r"\\192.0.2.1\pipe\x", "x", "--server-user", "root"])
            .usage("--server-user");
    });
}
