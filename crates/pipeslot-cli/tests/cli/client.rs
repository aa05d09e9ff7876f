//! Client verbs against real servers: send (--wait, --progress), call,
//! transact, wait.

use std::time::{Duration, Instant};

use super::util::{test, Ctx, Proc};

const LIMIT: Duration = Duration::from_secs(30);

/// A `send NAME -` that holds the pipe's only instance until `release`.
fn hold(ctx: &Ctx, name: &str, server: &Proc) -> Proc {
    let mut holder = ctx.spawn(&["send", name, "-"]);
    holder.feed(b"held\n");
    server.wait_stdout("the holder's line", |o| o.starts_with(b"held\n"));
    holder
}

#[test]
fn call_and_transact_against_an_echo_server() {
    test("call-transact", LIMIT, |ctx| {
        let name = ctx.name("echo");
        let _server = ctx.serve(&name, &["--message", "--echo"], 4);
        assert_eq!(ctx.run(&["call", &name, "hello"]).success(), "hello\n");
        assert_eq!(ctx.run(&["call", &name, "--hex", "00ff"]).success(), "00ff\n");
        assert_eq!(ctx.run(&["call", &name, "--timeout", "5000", ""]).success(), "\n");
        assert_eq!(ctx.run(&["call", &name, "--timeout", "forever", "x"]).success(), "x\n");
        assert_eq!(
            ctx.run_with_stdin(&["call", &name, "-"], b"from stdin\n").success(),
            "from stdin\n"
        );
        assert_eq!(ctx.run(&["transact", &name, "a", "b c", ""]).success(), "a\nb c\n\n");
        assert_eq!(
            ctx.run(&["transact", "--hex", &name, "0102", "FF"]).success(),
            "0102\nff\n"
        );
    });
}

#[test]
fn long_messages_arrive_whole() {
    test("long", LIMIT, |ctx| {
        let name = ctx.name("long");
        let _server = ctx.serve(&name, &["--message", "--echo"], 4);
        // Longer than every read buffer on the way, so they come in parts.
        let big: String = (0..300_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let reply = ctx.run_with_stdin(&["call", &name, "-"], big.as_bytes()).success();
        assert_eq!(reply.len(), big.len() + 1);
        assert_eq!(reply.trim_end(), big);
        let arg = &big[..100_000];
        let replies = ctx.run(&["transact", &name, arg, "short"]).success();
        assert_eq!(replies, format!("{arg}\nshort\n"));
    });
}

#[test]
fn send_wait_gets_in_once_an_instance_is_free() {
    test("send-wait", LIMIT, |ctx| {
        let name = ctx.name("w");
        let server = ctx.serve(&name, &["--message", "--instances", "1"], 1);
        let mut holder = hold(ctx, &name, &server);
        let mut waiter = ctx.spawn(&["send", "--wait", "10000", &name, "after the wait"]);
        std::thread::sleep(Duration::from_millis(300));
        assert!(waiter.running(), "the only instance is busy: the sender waits");
        holder.close_stdin();
        holder.wait().success();
        waiter.wait().success();
        server.wait_stdout("the waiter's message", |o| o == b"held\nafter the wait\n");
    });
}

#[test]
fn send_wait_runs_out_with_sem_timeout() {
    test("send-wait-timeout", LIMIT, |ctx| {
        let name = ctx.name("wt");
        let server = ctx.serve(&name, &["--message", "--instances", "1"], 1);
        let _holder = hold(ctx, &name, &server);
        let t0 = Instant::now();
        ctx.run(&["send", "--wait", "300", &name, "x"])
            .error("ERROR_SEM_TIMEOUT", 121, &name);
        assert!(t0.elapsed() >= Duration::from_millis(300), "it waited");
        assert_eq!(server.stdout(), b"held\n", "nothing from the sender that timed out");
    });
}

#[test]
fn wait_returns_when_an_instance_listens() {
    test("wait", LIMIT, |ctx| {
        let name = ctx.name("wv");
        let server = ctx.serve(&name, &["--message", "--instances", "1"], 1);
        ctx.run(&["wait", &name]).success();
        ctx.run(&["wait", &name, "--timeout", "0"]).success();
        let mut holder = hold(ctx, &name, &server);
        let mut waiter = ctx.spawn(&["wait", &name, "--timeout", "10000"]);
        std::thread::sleep(Duration::from_millis(300));
        assert!(waiter.running(), "busy: wait waits");
        holder.close_stdin();
        let t0 = Instant::now();
        assert_eq!(waiter.wait().success(), "", "wait prints nothing");
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "and returns soon after the instance is free"
        );
        ctx.run(&["wait", &name, "--timeout", "forever"]).success();
    });
}

#[test]
fn send_progress_reports_bytes_and_rate_on_stderr() {
    test("progress", LIMIT, |ctx| {
        let name = ctx.name("p");
        let server = ctx.serve(&name, &["--max-clients", "1"], 1);
        let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let out = ctx.run_with_stdin(&["send", "--progress", &name], &data);
        assert!(out.ok() && out.stdout.is_empty(), "{out:?}");
        let err = out.stderr_str();
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("pipeslot: sent 4194304 bytes (4.0 MiB) in ") && last.ends_with("/s, done"),
            "final progress line: {err:?}"
        );
        let got = server.wait();
        assert!(
            got.stdout == data,
            "the server printed the bytes sent ({} of {})",
            got.stdout.len(),
            data.len()
        );
    });
}

#[test]
fn retry_waits_for_a_name_that_does_not_exist_yet() {
    test("retry", Duration::from_secs(30), |ctx| {
        let name = ctx.name("late");
        // Win32's default: a missing name fails at once.
        ctx.run(&["send", &name, "x"]).error("ERROR_FILE_NOT_FOUND", 2, &name);
        let t = std::time::Instant::now();
        ctx.run(&["wait", &name, "--retry", "300ms"])
            .error("ERROR_FILE_NOT_FOUND", 2, "--retry");
        assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
        // A sender started before its server: it waits, then sends.
        let sender = ctx.spawn(&["send", &name, "early bird", "--retry", "10s"]);
        std::thread::sleep(Duration::from_millis(300));
        // (Spawned, not waited for: the sender takes the instance at once.)
        let server = ctx.spawn(&["serve", &name, "--message", "--max-clients", "1"]);
        sender.wait().success();
        assert_eq!(server.wait().success(), "early bird\n");
        // A local mailslot's writer waits for its reader the same way; a
        // datagram to another host has nobody to ask, and says so.
        let slot = format!(r"\\.\mailslot\{}", ctx.name("late-reader"));
        ctx.run(&["info", &slot, "--retry", "100ms"])
            .error("ERROR_FILE_NOT_FOUND", 2, "within the --retry time");
        let writer = ctx.spawn(&["send", &slot, "early note", "--retry", "10s"]);
        std::thread::sleep(Duration::from_millis(300));
        let reader = ctx.spawn(&["serve", &slot, "--max-messages", "1"]);
        writer.wait().success();
        assert_eq!(reader.wait().success(), "early note\n");
        ctx.run(&["send", r"\\otherhost\mailslot\x", "m", "--retry", "1s"])
            .usage("--retry");
    });
}

#[test]
fn verbose_client_verbs_log_what_they_opened_and_how_long_it_took() {
    test("verbose", LIMIT, |ctx| {
        let name = ctx.name("v");
        let _s = ctx.serve(&name, &["--message", "--echo"], 4);
        for (args, said) in [
            (vec!["-v", "send", &name, "x"], "opened"),
            (vec!["-v", "call", &name, "x"], "called"),
            (vec!["-v", "wait", &name], "listens"),
        ] {
            let out = ctx.run(&args);
            assert!(out.ok(), "{args:?}: {out:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(said) && err.contains(&name) && (err.contains("µs") || err.contains("ms")),
                "{args:?}: {err}"
            );
        }
        // Without -v: nothing on stderr.
        assert!(ctx.run(&["send", &name, "x"]).stderr.is_empty());
    });
}

#[test]
fn call_and_transact_are_bounded_even_when_the_server_never_replies() {
    test("bounded", LIMIT, |ctx| {
        let name = ctx.name("mute");
        // Prints what it gets and never answers.
        let _s = ctx.serve(&name, &["--message"], 4);
        for args in [
            vec!["call", name.as_str(), "hi", "--timeout", "300ms"],
            vec!["transact", name.as_str(), "hi", "--timeout", "300ms"],
        ] {
            let t = Instant::now();
            ctx.run(&args).error("ERROR_SEM_TIMEOUT", 121, "--timeout");
            assert!(t.elapsed() < Duration::from_secs(5), "{args:?}: {:?}", t.elapsed());
        }
        // The default bound is said where users look.
        assert!(ctx.run(&["call", "--help"]).success().contains("30 s"));
        assert!(ctx.run(&["transact", "--help"]).success().contains("30 s"));
    });
}
