//! `serve` writing what clients send to stdout, echoing, running a command
//! per client, stopping after K clients, and many daemons at once.

use std::collections::HashSet;
use std::time::Duration;

use super::util::{lines, test};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn message_mode_prints_each_message_then_a_newline() {
    test("msg-stdout", LIMIT, |ctx| {
        let name = ctx.name("m");
        let server = ctx.serve(&name, &["--message", "--max-clients", "2"], 2);
        ctx.run(&["send", &name, "one", "two words", ""]).success();
        ctx.run_with_stdin(&["send", &name], b"three\nfour\n\nfive").success();
        let out = server.wait();
        // Nothing but the messages on stdout, nothing at all on stderr.
        assert_eq!(out.success(), "one\ntwo words\n\nthree\nfour\n\nfive\n");
    });
}

#[test]
fn byte_mode_prints_the_bytes_as_they_come() {
    test("byte-stdout", LIMIT, |ctx| {
        let name = ctx.name("b");
        let server = ctx.serve(&name, &["--max-clients", "2"], 2);
        ctx.run(&["send", &name, "hello ", "world"]).success();
        let binary: Vec<u8> = (0..=255u8).chain(b"\nend\n".iter().copied()).collect();
        ctx.run_with_stdin(&["send", &name, "-"], &binary).success();
        let out = server.wait();
        let mut want = b"hello world".to_vec();
        want.extend_from_slice(&binary);
        // Byte pipes keep no boundaries and add no newlines.
        assert_eq!(out.stdout, want);
        assert!(out.ok() && out.stderr.is_empty(), "{out:?}");
    });
}

#[test]
fn hex_prints_each_message_as_lowercase_hex() {
    test("hex-stdout", LIMIT, |ctx| {
        let name = ctx.name("h");
        let server = ctx.serve(&name, &["--message", "--hex", "--max-clients", "2"], 2);
        ctx.run(&["send", "--hex", &name, "00ff10", "", "DE AD be ef"])
            .success();
        ctx.run_with_stdin(&["send", "--hex", &name], b"0a0b\n41 42\n")
            .success();
        assert_eq!(server.wait().success(), "00ff10\n\ndeadbeef\n0a0b\n4142\n");
    });
}

/// The seed's story: one workstation `serve`, many daemons sending at once.
/// Every message arrives exactly once and no line is torn or mixed.
#[test]
fn daemons_to_workstation() {
    const SENDERS: usize = 8;
    const EACH: usize = 500;
    test("daemons", Duration::from_secs(90), |ctx| {
        let name = ctx.name("d");
        let server = ctx.serve(&name, &["--message", "--instances", "8", "--max-clients", "8"], 8);
        let message = |d: usize, m: usize| format!("daemon {d:02} message {m:04} {}", "x".repeat(20 + (m * 7) % 200));
        let mut senders = Vec::new();
        for d in 0..SENDERS {
            let msgs: Vec<String> = (0..EACH).map(|m| message(d, m)).collect();
            // Half give the messages as arguments, half as stdin lines.
            let p = if d % 2 == 0 {
                let mut args = vec!["send", name.as_str(), "--wait", "20000"];
                args.extend(msgs.iter().map(String::as_str));
                let mut p = ctx.spawn(&args);
                p.close_stdin();
                p
            } else {
                let mut p = ctx.spawn(&["send", &name, "--wait", "20000", "-"]);
                p.feed(msgs.join("\n").as_bytes());
                p.close_stdin();
                p
            };
            senders.push(p);
        }
        for p in senders {
            p.wait().success();
        }
        let out = server.wait();
        assert!(out.ok() && out.stderr.is_empty(), "server: exit {:?}", out.status);
        let got = lines(&out.stdout);
        assert_eq!(got.len(), SENDERS * EACH, "every message once, nothing else");
        let want: HashSet<String> = (0..SENDERS)
            .flat_map(|d| (0..EACH).map(move |m| (d, m)))
            .map(|(d, m)| message(d, m))
            .collect();
        let seen: HashSet<String> = got.iter().cloned().collect();
        assert_eq!(seen.len(), got.len(), "no message twice");
        for line in &got {
            assert!(want.contains(line), "a torn or mixed line: {line:?}");
        }
        // Each daemon's messages arrive in the order it sent them.
        for d in 0..SENDERS {
            let prefix = format!("daemon {d:02} ");
            let order: Vec<&String> = got.iter().filter(|l| l.starts_with(&prefix)).collect();
            let sent: Vec<String> = (0..EACH).map(|m| message(d, m)).collect();
            assert!(order.iter().zip(&sent).all(|(a, b)| *a == b), "daemon {d} out of order");
        }
    });
}

#[test]
fn max_clients_exits_0_after_k_clients() {
    test("max-clients", LIMIT, |ctx| {
        let name = ctx.name("k");
        let mut server = ctx.serve(&name, &["--message", "--instances", "4", "--max-clients", "2"], 2);
        ctx.run(&["send", &name, "first"]).success();
        std::thread::sleep(Duration::from_millis(200));
        assert!(server.running(), "one client of two: still serving");
        ctx.run(&["send", &name, "second"]).success();
        assert_eq!(server.wait().success(), "first\nsecond\n");
        // Gone with its instances: the name no longer exists.
        ctx.run(&["send", &name, "late"])
            .error("ERROR_FILE_NOT_FOUND", 2, &name);
    });
}

#[test]
fn echo_writes_each_message_back() {
    test("echo", LIMIT, |ctx| {
        let name = ctx.name("e");
        let _server = ctx.serve(&name, &["--message", "--echo"], 4);
        assert_eq!(ctx.run(&["call", &name, "ping"]).success(), "ping\n");
        assert_eq!(ctx.run(&["transact", &name, "a", "", "c d"]).success(), "a\n\nc d\n");
    });
}

#[test]
fn exec_runs_a_command_per_client_on_message_pipes() {
    test("exec-msg", LIMIT, |ctx| {
        let name = ctx.name("x");
        let upper = r#"while IFS= read -r l; do printf '%s\n' "$l" | tr a-z A-Z; done"#;
        let _server = ctx.serve(&name, &["--message", "--exec", "sh", "-c", upper], 4);
        assert_eq!(ctx.run(&["call", &name, "hello"]).success(), "HELLO\n");
        assert_eq!(
            ctx.run(&["transact", &name, "foo", "bar baz"]).success(),
            "FOO\nBAR BAZ\n"
        );
    });
}

#[test]
fn exec_on_byte_pipes_closes_the_childs_stdin_when_the_client_leaves() {
    test("exec-byte", LIMIT, |ctx| {
        let name = ctx.name("xb");
        let file = ctx.dir.join("upper.txt");
        let script = format!("tr a-z A-Z > '{}'", file.display());
        // --exec takes the rest of the line, so it comes last.
        let server = ctx.serve(&name, &["--max-clients", "1", "--exec", "sh", "-c", &script], 1);
        ctx.run(&["send", &name, "hello ", "bytes"]).success();
        // tr only finishes (and the client only counts as gone) once its
        // stdin is closed.
        server.wait().success();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "HELLO BYTES");
    });
}

#[test]
fn exec_child_exit_disconnects_the_client() {
    test("exec-exit", LIMIT, |ctx| {
        let name = ctx.name("xe");
        let _server = ctx.serve(
            &name,
            &["--message", "--exec", "sh", "-c", "read l; echo \"got $l\""],
            4,
        );
        let out = ctx.run(&["transact", &name, "a", "b"]);
        assert_eq!(out.stdout_str(), "got a\n");
        // The child answered once and exited; serve disconnected the client,
        // so the second transaction is told so, as Win32 tells it.
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = out.stderr_str();
        assert!(err.starts_with("pipeslot: ERROR_PIPE_NOT_CONNECTED (233): "), "{out:?}");
    });
}

#[test]
fn a_closed_stdout_ends_serve_quietly() {
    test("closed-stdout", LIMIT, |ctx| {
        let name = ctx.name("c");
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = ctx.cmd(&["serve", &name, "--message"]);
        cmd.stdout(writer);
        let server = ctx.spawn_with_stdout(cmd);
        ctx.wait_listening(&name, 4);
        ctx.run(&["send", &name, "nobody reads this"]).success();
        let out = server.wait();
        assert!(out.ok() && out.stderr.is_empty(), "quiet exit 0: {out:?}");
    });
}

/// `serve` says when it is ready: READY=1 to `NOTIFY_SOCKET` (systemd's
/// `Type=notify`), by then every instance listens; a path or an abstract name.
#[test]
fn serve_tells_systemd_when_every_instance_listens() {
    test("serve-notify", Duration::from_secs(30), |ctx| {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let path = ctx.dir.join("notify.sock");
        let by_path = UnixDatagram::bind(&path).unwrap();
        let tag = format!("pipeslot-notify-{}", std::process::id());
        let by_name = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(tag.as_bytes()).unwrap()).unwrap();
        for (sock, env) in [
            (&by_path, path.to_str().unwrap().to_owned()),
            (&by_name, format!("@{tag}")),
        ] {
            let name = ctx.name("ready");
            let mut c = ctx.cmd(&["serve", &name, "--instances", "3"]);
            c.env("NOTIFY_SOCKET", &env);
            let _server = ctx.spawn_cmd(c);
            sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 64];
            let n = sock.recv(&mut buf).expect("READY=1 arrives");
            assert_eq!(&buf[..n], b"READY=1", "{env}");
            // Ready means listening: no polling needed.
            let info = ctx.run(&["info", &name]).success();
            assert!(info.contains("listening: 3\n"), "{info}");
        }
    });
}

/// The README's own example, as written: `tr` buffers a pipe but not a
/// terminal, and `--exec` gives message pipes' children a terminal.
#[test]
fn the_readme_s_exec_example_answers_each_message() {
    test("exec-tr", Duration::from_secs(30), |ctx| {
        let name = ctx.name("upper");
        let _server = ctx.serve(&name, &["--message", "--exec", "tr", "a-z", "A-Z"], 4);
        assert_eq!(ctx.run(&["call", &name, "hello"]).success(), "HELLO\n");
        assert_eq!(ctx.run(&["transact", &name, "one", "two"]).success(), "ONE\nTWO\n");
        // Bytes come back as they went: no \r added by the terminal.
        let out = ctx.run(&["call", &name, "--hex", "61620a63"]).success();
        assert_eq!(out, "4142\n", "the first line only, unchanged");
    });
}

/// A person watching sees when the server is ready: one line on stderr
/// when it is a terminal (here `script`'s pseudo-terminal); in a pipe, as
/// scripts run it, nothing unless `-v`.
#[test]
fn serve_says_it_is_ready_on_a_terminal() {
    test("ready-tty", Duration::from_secs(30), |ctx| {
        if !super::util::have("script", "the terminal readiness line") {
            return;
        }
        let name = ctx.name("tty");
        let line = format!("{} serve {name} --message --instances 2", super::util::BIN);
        let mut c = std::process::Command::new("script");
        c.args(["-qfec", &line, "/dev/null"]).env("PIPESLOT_DIR", &ctx.dir);
        let on_tty = ctx.spawn_cmd(c);
        let want = format!(r"serving \\.\pipe\{name}: 2 instances, message mode");
        let seen = on_tty.wait_stdout("the readiness line", |o| String::from_utf8_lossy(o).contains(&want));
        assert_eq!(String::from_utf8_lossy(&seen).trim_end(), want, "that line only");
        // By then both instances listen.
        let info = ctx.run(&["info", &name]).success();
        assert!(info.contains("listening: 2\n"), "{info}");

        let quiet = ctx.name("pipe");
        let in_pipe = ctx.serve(&quiet, &["--instances", "1"], 1);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(in_pipe.stderr(), b"", "no line in a pipe");
        let logged = ctx.name("log");
        let verbose = ctx.serve(&logged, &["-v"], 4);
        let want = format!(r"serving \\.\pipe\{logged}: 4 instances, byte mode");
        verbose.wait_stderr("the readiness log line", |e| e.contains(&want));
    });
}

/// `--exec`'s program is checked at start; one that fails later (removed
/// while serving) fails that client only: said on stderr, and the next
/// client is served once it is back.
#[test]
fn exec_that_fails_later_is_reported_and_the_server_goes_on() {
    test("exec-later", Duration::from_secs(30), |ctx| {
        let prog = ctx.dir.join("answer.sh");
        let write_prog = || {
            std::fs::write(&prog, "#!/bin/sh\nexec tr a-z A-Z\n").unwrap();
            std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        };
        write_prog();
        let name = ctx.name("later");
        let server = ctx.serve(
            &name,
            &["--message", "--instances", "1", "--exec", prog.to_str().unwrap()],
            1,
        );
        assert_eq!(ctx.run(&["call", &name, "one"]).success(), "ONE\n");
        std::fs::remove_file(&prog).unwrap();
        let lost = ctx.run(&["call", &name, "two"]);
        assert_eq!(lost.status.code(), Some(1), "that client fails: {lost:?}");
        let said = server.wait_stderr("the report", |e| e.contains("the server goes on"));
        assert!(
            said.starts_with("pipeslot: ERROR_FILE_NOT_FOUND (2): ") && said.contains("answer.sh"),
            "{said}"
        );
        write_prog();
        ctx.wait_listening(&name, 1);
        assert_eq!(ctx.run(&["call", &name, "three"]).success(), "THREE\n");
    });
}
