//! Every error line: exit 1 and one stderr line `pipeslot: ERROR_X (N): …`
//! naming what it concerns; usage errors exit 2.

use std::time::Duration;

use super::util::test;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_missing_pipe_is_file_not_found() {
    test("not-found", LIMIT, |ctx| {
        let name = ctx.name("missing");
        let full = format!(r"\\.\pipe\{name}");
        for args in [
            vec!["send", name.as_str(), "x"],
            vec!["call", name.as_str(), "x"],
            vec!["transact", name.as_str(), "x"],
            vec!["wait", name.as_str()],
            vec!["wait", name.as_str(), "--timeout", "100"],
            vec!["info", name.as_str()],
        ] {
            ctx.run(&args).error("ERROR_FILE_NOT_FOUND", 2, &full);
        }
    });
}

#[test]
fn all_instances_busy_is_pipe_busy() {
    test("busy", LIMIT, |ctx| {
        let name = ctx.name("busy");
        let server = ctx.serve(&name, &["--instances", "1"], 1);
        let mut holder = ctx.spawn(&["send", &name]);
        holder.feed(b"x");
        server.wait_stdout("the holder's byte", |o| o == b"x");
        let full = format!(r"\\.\pipe\{name}");
        let line = ctx.run(&["send", &name, "y"]).error("ERROR_PIPE_BUSY", 231, &full);
        assert_eq!(
            line,
            format!("pipeslot: ERROR_PIPE_BUSY (231): all instances of {full} are busy\n")
        );
        ctx.run(&["transact", &name, "y"]).error("ERROR_PIPE_BUSY", 231, &full);
        // call waits first (CallNamedPipe), so there it is the timeout.
        ctx.run(&["call", &name, "y", "--timeout", "100"])
            .error("ERROR_SEM_TIMEOUT", 121, &full);
        holder.close_stdin();
        holder.wait().success();
        assert_eq!(server.stdout(), b"x", "nothing from the refused clients");
    });
}

#[test]
fn wait_timeout_is_sem_timeout() {
    test("sem-timeout", LIMIT, |ctx| {
        let name = ctx.name("st");
        let server = ctx.serve(&name, &["--instances", "1"], 1);
        let mut holder = ctx.spawn(&["send", &name]);
        holder.feed(b"x");
        server.wait_stdout("the holder's byte", |o| o == b"x");
        let full = format!(r"\\.\pipe\{name}");
        ctx.run(&["wait", &name, "--timeout", "200"])
            .error("ERROR_SEM_TIMEOUT", 121, &full);
        // The pipe's default timeout (0 at creation: 50 ms) applies without --timeout.
        ctx.run(&["wait", &name]).error("ERROR_SEM_TIMEOUT", 121, &full);
    });
}

#[test]
fn a_257_character_name_is_invalid_and_256_is_fine() {
    test("invalid-name", LIMIT, |ctx| {
        let long = "n".repeat(257);
        for args in [
            vec!["send", long.as_str(), "x"],
            vec!["serve", long.as_str()],
            vec!["wait", long.as_str()],
            vec!["call", long.as_str(), "x"],
        ] {
            ctx.run(&args)
                .error("ERROR_INVALID_NAME", 123, "longer than 256 characters");
        }
        let prefix = ctx.name("l");
        let at_limit = format!("{prefix}{}", "n".repeat(256 - prefix.len()));
        let at_limit = at_limit.as_str();
        let server = ctx.serve(at_limit, &["--message", "--max-clients", "1"], 1);
        ctx.run(&["send", at_limit, "fits"]).success();
        assert_eq!(server.wait().success(), "fits\n");
        ctx.run(&["send", "", "x"]).error("ERROR_INVALID_NAME", 123, "empty");
    });
}

#[test]
fn the_gateway_without_its_config_and_an_unknown_host_say_so() {
    test("later", LIMIT, |ctx| {
        ctx.run(&["gateway", "--config", "/nonexistent"])
            .error("ERROR_FILE_NOT_FOUND", 2, "/nonexistent");
        // Remote names are served now: an unknown host is the network
        // path Windows cannot find either.
        ctx.run(&["send", r"\\otherhost.invalid\pipe\srvsvc", "x"]).error(
            "ERROR_BAD_NETPATH",
            53,
            r"\\otherhost.invalid\pipe\srvsvc",
        );
    });
}

#[test]
fn bad_input_is_reported_before_anything_runs() {
    test("bad-input", LIMIT, |ctx| {
        let name = ctx.name("bad");
        ctx.run(&["send", "--hex", &name, "abc"]).usage("odd number of digits");
        ctx.run(&["call", "--hex", &name, "zz"]).usage("not a hex digit");
        ctx.run(&["serve", &name, "--allow-user", "no-such-user-pipeslot"])
            .error("ERROR_NONE_MAPPED", 1332, "no-such-user-pipeslot");
        ctx.run(&["serve", &name, "--allow-group", "no-such-group-pipeslot"])
            .error("ERROR_NONE_MAPPED", 1332, "no-such-group-pipeslot");
        // A time that does not parse is a usage error (exit 2), in the same style.
        let out = ctx.run(&["wait", &name, "--timeout", "soon"]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("pipeslot: ERROR_INVALID_PARAMETER (87): "));
        // Nothing was created on the way.
        assert_eq!(ctx.run(&["list"]).success(), "");
    });
}

#[test]
fn transact_on_a_byte_pipe_is_refused() {
    test("transact-byte", LIMIT, |ctx| {
        let name = ctx.name("tb");
        let _server = ctx.serve(&name, &[], 4);
        ctx.run(&["transact", &name, "x"]).error(
            "ERROR_INVALID_PARAMETER",
            87,
            &format!(r"\\.\pipe\{name} is a byte pipe"),
        );
    });
}

#[test]
fn usage_errors_exit_2() {
    test("usage", LIMIT, |ctx| {
        for args in [
            vec![],
            vec!["frobnicate"],
            vec!["send"],
            vec!["call", "x"],
            vec!["transact", "x"],
            vec!["serve", "x", "--instances", "0"],
            vec!["serve", "x", "--echo", "--exec", "cat"],
            vec!["send", "x", "--wait", "soon"],
        ] {
            let out = ctx.run(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
            assert!(!out.stderr.is_empty());
        }
        assert!(ctx.run(&["--help"]).success().contains("serve"));
    });
}

#[test]
fn every_usage_error_is_one_win32_line_naming_the_flag() {
    test("usage-line", LIMIT, |ctx| {
        for (args, names) in [
            (vec!["serve", "x", "--instances", "0"], "--instances"),
            (vec!["send", "x", "--bogus"], "--bogus"),
            (vec!["send", "x", "--wait", "soon", "m"], "--wait"),
            (vec!["send", "x", "--wait", "-5", "m"], "negative"),
            (vec!["call", "x"], "<MSG>"),
            (vec!["serve", "x", "--echo", "--exec", "cat"], "--exec"),
            (vec![], "a verb is needed"),
        ] {
            let out = ctx.run(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err:?}");
            assert!(
                err.starts_with("pipeslot: ERROR_INVALID_PARAMETER (87): ") && err.contains(names),
                "{args:?}: {err:?}"
            );
        }
    });
}

#[test]
fn times_take_milliseconds_units_and_forever_in_any_case() {
    test("times", LIMIT, |ctx| {
        // Parsed (the name does not exist: exit 1, not a usage error).
        for t in ["250", "250ms", "1s", "0.5s", "FOREVER", "Forever"] {
            let out = ctx.run(&["send", "no-such-pipe", "--wait", t, "m"]);
            assert_eq!(out.status.code(), Some(1), "--wait {t}: {out:?}");
            let out = ctx.run(&["wait", "no-such-pipe", "--timeout", t]);
            assert_eq!(out.status.code(), Some(1), "--timeout {t}: {out:?}");
        }
        for t in ["5 s", "1.5", "-1s", "later"] {
            assert_eq!(ctx.run(&["wait", "x", "--timeout", t]).status.code(), Some(2), "{t}");
        }
    });
}

#[test]
fn names_in_errors_are_written_as_typed_and_long_ones_cut() {
    test("name-style", LIMIT, |ctx| {
        let long = format!(r"\\.\pipe\{}", "n".repeat(10_000));
        let out = ctx.run(&["info", &long]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.len() < 400,
            "a 10,000-character name makes a short line: {} bytes",
            err.len()
        );
        assert!(err.contains(r"\\.\pipe\nnn") && err.contains("characters)…"), "{err}");
        assert!(
            !err.contains(r"\\\\"),
            "single backslashes, not Rust's escaped form: {err}"
        );
    });
}

#[test]
fn a_closed_stdout_is_an_error_and_a_reader_that_leaves_is_not() {
    test("stdout-closed", LIMIT, |ctx| {
        let name = ctx.name("out");
        let _s = ctx.serve(&name, &["--message", "--echo"], 4);
        // `>&-`, through a shell as users write it.
        for verb in ["list".to_owned(), format!("info {name}"), format!("call {name} hi")] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("exec \"$0\" {verb} >&-"))
                .arg(super::util::BIN)
                .env("PIPESLOT_DIR", &ctx.dir)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{verb}: {out:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.starts_with("pipeslot: ERROR_INVALID_HANDLE (6): standard output is closed"),
                "{verb}: {err}"
            );
        }
        // `> /dev/null` asks for the output to go: fine. `| head -0`: quiet.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("\"$0\" list > /dev/null && \"$0\" list | head -c 0")
            .arg(super::util::BIN)
            .env("PIPESLOT_DIR", &ctx.dir)
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    });
}

#[test]
fn serve_exec_checks_its_program_before_serving() {
    test("exec-check", LIMIT, |ctx| {
        let name = ctx.name("x");
        ctx.run(&["serve", &name, "--exec", "/nonexistent/prog"])
            .error("ERROR_FILE_NOT_FOUND", 2, "/nonexistent/prog");
        ctx.run(&["serve", &name, "--exec", "no-such-program-pipeslot"])
            .error("ERROR_FILE_NOT_FOUND", 2, "on PATH");
        assert_eq!(ctx.run(&["list"]).success(), "", "nothing was served");
    });
}

/// Out of file descriptors (a low `ulimit -n`), a client says so by its
/// Win32 name, not ERROR_GEN_FAILURE.
#[test]
fn a_client_out_of_descriptors_says_too_many_open_files() {
    test("emfile", LIMIT, |ctx| {
        let name = ctx.name("emfile");
        let _server = ctx.serve(&name, &["--message", "--echo"], 4);
        let script = format!("ulimit -n 5; exec {} call {name} hi", super::util::BIN);
        let mut c = std::process::Command::new("bash");
        c.args(["-c", &script]).env("PIPESLOT_DIR", &ctx.dir);
        let out = ctx.spawn_cmd(c).wait();
        out.error("ERROR_TOO_MANY_OPEN_FILES", 4, "");
        // With descriptors, the same call works.
        assert_eq!(ctx.run(&["call", &name, "hi"]).success(), "hi\n");
    });
}
