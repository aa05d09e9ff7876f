//! Mailslots from the command line: `serve` prints each message once and
//! whole, whoever writes; the error lines (second reader, missing mailslot,
//! over-size, one-way verbs, flags of the other kind); `info` and `list`
//! exact; and the network on loopback only: the datagrams `send` puts on
//! the wire (decoded by our codec and by tshark) and a `serve --network`
//! receiving from another process.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use pipeslot::blocking::MailslotOptions;
use pipeslot_proto::wire::mailslot::MailslotDatagramRepr;
use pipeslot_proto::wire::netbios::DatagramType;

use super::util::{lines, root_or_skip, test, Ctx, Proc};

const LIMIT: Duration = Duration::from_secs(30);

/// A mailslot name no other test uses: `\\.\mailslot\cli\t-…`.
fn slot(ctx: &Ctx, what: &str) -> String {
    format!(r"\\.\mailslot\cli\{}", ctx.name(what))
}

/// Starts `pipeslot serve NAME ARGS…` and returns once the mailslot exists.
fn serve(ctx: &Ctx, name: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["serve", name];
    args.extend_from_slice(extra);
    serve_cmd(ctx, name, ctx.cmd(&args))
}

/// As [`serve`], for a command the caller has set up (environment).
fn serve_cmd(ctx: &Ctx, name: &str, cmd: Command) -> Proc {
    let mut p = ctx.spawn_cmd(cmd);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ctx.run(&["info", name]).ok() {
        assert!(p.running(), "serve {name} exited: {:?}", p.wait());
        assert!(Instant::now() < deadline, "{name} never appeared");
        thread::sleep(Duration::from_millis(10));
    }
    p
}

#[test]
fn serve_prints_each_message_of_concurrent_writers_once_and_whole() {
    test("ms-many", LIMIT, |ctx| {
        const WRITERS: usize = 8;
        const EACH: usize = 40;
        let name = slot(ctx, "Many");
        let total = (WRITERS * EACH).to_string();
        let server = serve(ctx, &name, &["--max-messages", &total]);
        // Every spelling of the name reaches the one reader.
        let spellings = [
            name.clone(),
            name.to_uppercase(),
            name.replace('\\', "/"),
            name.to_lowercase(),
        ];
        // Sizes up to 6 KB: a torn or interleaved message would not match.
        let msg = |w: usize, m: usize| format!("w{w}-m{m}-{}", "abcdefgh".repeat((w * 31 + m * 97) % 750));
        let mut want = Vec::new();
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let msgs: Vec<String> = (0..EACH).map(|m| msg(w, m)).collect();
            want.extend(msgs.iter().cloned());
            let spelling = &spellings[w % spellings.len()];
            let writer = if w == 0 {
                // One writer feeds stdin: each line one message.
                let mut p = ctx.spawn(&["send", spelling]);
                p.feed(format!("{}\n", msgs.join("\n")).as_bytes());
                p.close_stdin();
                p
            } else {
                let mut args = vec!["send", spelling.as_str()];
                args.extend(msgs.iter().map(String::as_str));
                ctx.spawn(&args)
            };
            writers.push(writer);
        }
        for w in writers {
            w.wait().success();
        }
        let mut got = lines(server.wait().success().as_bytes());
        got.sort();
        want.sort();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "some message was lost, repeated or torn");
    });
}

#[test]
fn hex_in_and_out_and_zero_length_messages() {
    test("ms-hex", LIMIT, |ctx| {
        let name = slot(ctx, "hex");
        let server = serve(ctx, &name, &["--hex", "--max-messages", "4"]);
        ctx.run(&["send", &name, "--hex", "00ff0A41", ""]).success();
        ctx.run_with_stdin(&["send", &name, "--hex"], b"de ad\nbe\n").success();
        assert_eq!(server.wait().success(), "00ff0a41\n\ndead\nbe\n");
        // Without --hex the bytes are printed as they came, an empty message as an empty line.
        let server = serve(ctx, &name, &["--max-messages", "3"]);
        ctx.run_with_stdin(&["send", &name, "-"], b"one\n\nthree\n").success();
        assert_eq!(server.wait().success(), "one\n\nthree\n");
    });
}

#[test]
fn a_second_reader_is_already_exists() {
    test("ms-exists", LIMIT, |ctx| {
        let name = slot(ctx, "Exists");
        let server = serve(ctx, &name, &["--max-messages", "1"]);
        // Another spelling of the same name (the error shows the path as given).
        let other = name.replace(r"\cli\", r"\CLI\");
        let line = ctx.run(&["serve", &other]).error("ERROR_ALREADY_EXISTS", 183, &other);
        assert!(line.contains("one reader"), "{line}");
        ctx.run(&["send", &name, "still mine"]).success();
        assert_eq!(server.wait().success(), "still mine\n");
    });
}

#[test]
fn a_missing_local_mailslot_is_file_not_found() {
    test("ms-missing", LIMIT, |ctx| {
        let name = slot(ctx, "missing");
        let want =
            format!("pipeslot: ERROR_FILE_NOT_FOUND (2): no mailslot named {name} exists (no process reads it)\n");
        for args in [vec!["send", name.as_str(), "x"], vec!["info", name.as_str()]] {
            let out = ctx.run(&args);
            out.error("ERROR_FILE_NOT_FOUND", 2, &name);
            assert_eq!(out.stderr_str(), want, "{args:?}");
        }
    });
}

#[test]
fn over_the_readers_max_size_is_invalid_parameter() {
    test("ms-size", LIMIT, |ctx| {
        let name = slot(ctx, "size");
        let server = serve(ctx, &name, &["--max-size", "4", "--max-messages", "1"]);
        let line = ctx
            .run(&["send", &name, "12345"])
            .error("ERROR_INVALID_PARAMETER", 87, &name);
        assert!(line.contains("larger than the maximum message size"), "{line}");
        ctx.run(&["send", &name, "1234"]).success();
        assert_eq!(server.wait().success(), "1234\n", "the refused message never arrived");
    });
}

#[test]
fn info_is_exact_for_a_reader_that_does_not_read() {
    test("ms-info", LIMIT, |ctx| {
        let _ns = ctx.in_process();
        // A reader in this process, so nothing is read while we look.
        let name = slot(ctx, "Info");
        let reader = MailslotOptions::new()
            .max_message_size(64)
            .read_timeout(Duration::from_millis(250))
            .create(&name)
            .expect("create the mailslot");
        let info = |want_next: &str, want_count: u32| {
            let want = format!(
                "name: {name}\nowner: {} (uid {})\nmax_message_size: 64\nnext_message_size: {want_next}\n\
                 message_count: {want_count}\nread_timeout: 250\nreader_pid: {}\nnetwork: false\n",
                super::query::me(),
                super::query::uid(),
                std::process::id()
            );
            assert_eq!(ctx.run(&["info", &name.to_uppercase()]).success(), want);
        };
        info("none", 0);
        ctx.run(&["send", &name, "a", "bb", ""]).success();
        info("1", 3);
        let listed = format!(
            "{{\"instances\":1,\"kind\":\"mailslot\",\"max\":\"64 B\",\"mode\":\"message\",\"name\":{},\
             \"owner\":\"{}\",\"pids\":[{}],\"queued\":3}}\n",
            serde_json::Value::from(name.clone()),
            super::query::me(),
            std::process::id(),
        );
        assert_eq!(ctx.run(&["list", "--json"]).success(), listed);
        assert_eq!(reader.read_message().expect("read"), b"a");
        info("2", 2);
        drop(reader);
        ctx.run(&["info", &name]).error("ERROR_FILE_NOT_FOUND", 2, &name);
    });
}

#[test]
fn info_of_a_serving_reader_and_of_a_remote_name() {
    test("ms-info-serve", LIMIT, |ctx| {
        let name = slot(ctx, "served");
        let server = serve(ctx, &name, &["--max-messages", "1"]);
        let want = format!(
            "name: {name}\nowner: {} (uid {})\nmax_message_size: 0\nnext_message_size: none\nmessage_count: 0\n\
             read_timeout: forever\nreader_pid: {}\nnetwork: false\n",
            super::query::me(),
            super::query::uid(),
            server.child.id()
        );
        assert_eq!(ctx.run(&["info", &name]).success(), want);
        ctx.run(&["info", r"\\otherhost\mailslot\x"])
            .error("ERROR_NOT_SUPPORTED", 50, r"\\otherhost\mailslot\x");
    });
}

#[test]
fn list_shows_mailslots_after_the_pipes() {
    test("ms-list", LIMIT, |ctx| {
        let pipe = ctx.name("pipe");
        let name = slot(ctx, "Listed");
        let _pipe = ctx.serve(&pipe, &["--message", "--instances", "1"], 1);
        let server = serve(ctx, &name, &["--max-size", "424"]);
        let listed = lines(ctx.run(&["list"]).success().as_bytes());
        assert_eq!(listed.len(), 3, "{listed:?}");
        assert!(listed[1].starts_with(&format!(r"\\.\pipe\{pipe} ")), "{listed:?}");
        assert!(listed[2].starts_with(&format!("{name} ")), "{listed:?}");
        let row: Vec<&str> = listed[2].split_whitespace().collect();
        assert_eq!(
            row[1..],
            [
                "mailslot",
                "message",
                "1",
                "424",
                "B",
                "-",
                "0",
                &super::query::me(),
                &server.child.id().to_string()
            ],
            "{listed:?}"
        );
    });
}

#[test]
fn call_transact_and_wait_are_refused_as_one_way() {
    test("ms-oneway", LIMIT, |ctx| {
        let name = slot(ctx, "oneway");
        let _server = serve(ctx, &name, &[]);
        let want = |what: &str| {
            format!("pipeslot: ERROR_INVALID_FUNCTION (1): mailslots are one-way: {name} {what}; write to it with `pipeslot send`\n")
        };
        for (args, what) in [
            (vec!["call", &name, "x"], "never replies, so there is nothing to call"),
            (
                vec!["transact", &name, "x", "y"],
                "never replies, so there is nothing to transact",
            ),
            (
                vec!["wait", &name, "--timeout", "10"],
                "has no instances to wait for (a mailslot write never waits)",
            ),
        ] {
            let out = ctx.run(&args);
            out.error("ERROR_INVALID_FUNCTION", 1, &name);
            assert_eq!(out.stderr_str(), want(what));
        }
        // `call NAME -` refuses before reading stdin, which stays open here.
        let mut p = ctx.spawn(&["call", &name, "-"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while p.running() {
            assert!(Instant::now() < deadline, "call on a mailslot waited for stdin");
            thread::sleep(Duration::from_millis(10));
        }
        p.wait().error("ERROR_INVALID_FUNCTION", 1, &name);
        // A missing mailslot: still one-way, not "not found".
        let missing = slot(ctx, "missing");
        ctx.run(&["wait", &missing])
            .error("ERROR_INVALID_FUNCTION", 1, &missing);
    });
}

#[test]
fn flags_of_the_other_kind_are_invalid_parameter() {
    test("ms-flags", LIMIT, |ctx| {
        let name = slot(ctx, "flags");
        let pipe = ctx.name("pipe");
        let full_pipe = format!(r"\\.\pipe\{pipe}");
        let cases: Vec<(Vec<&str>, &str, String)> = vec![
            (vec!["serve", &name, "--message"], "--message", name.clone()),
            (vec!["serve", &name, "--instances", "2"], "--instances", name.clone()),
            (vec!["serve", &name, "--echo"], "--echo", name.clone()),
            (vec!["serve", &name, "--exec", "cat"], "--exec", name.clone()),
            (
                vec!["serve", &name, "--max-clients", "1"],
                "--max-clients",
                name.clone(),
            ),
            (vec!["serve", &name, "--reject-remote"], "--reject-remote", name.clone()),
            (
                vec!["serve", &name, "--allow-user", "root"],
                "--allow-user",
                name.clone(),
            ),
            (vec!["serve", &name, "--everyone"], "--everyone", name.clone()),
            (vec!["send", &name, "--wait", "10", "x"], "--wait", name.clone()),
            (vec!["serve", &pipe, "--max-size", "4"], "--max-size", full_pipe.clone()),
            (vec!["serve", &pipe, "--network"], "--network", full_pipe.clone()),
            (
                vec!["serve", &pipe, "--max-messages", "1"],
                "--max-messages",
                full_pipe.clone(),
            ),
        ];
        for (args, flag, about) in cases {
            let line = ctx.run(&args).usage(&about);
            assert!(line.contains(&format!("{flag} applies to ")), "{args:?}: {line}");
        }
        assert_eq!(ctx.run(&["list"]).success(), "", "nothing was created on the way");
    });
}

// ---- the network, on loopback only ----

/// A UDP socket on 127.0.0.1 standing in for a remote host's port 138.
fn udp_capture() -> (UdpSocket, u16) {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind UDP on loopback");
    sock.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let port = sock.local_addr().expect("local addr").port();
    (sock, port)
}

/// `pipeslot ARGS` whose datagrams go to 127.0.0.1:`port` and nowhere else
/// (group writes broadcast to 127.0.0.1 only).
fn net_cmd(ctx: &Ctx, port: u16, args: &[&str]) -> Command {
    let mut c = ctx.cmd(args);
    c.env("PIPESLOT_MAILSLOT_PORT", port.to_string())
        .env("PIPESLOT_BIND", "127.0.0.1")
        .env("PIPESLOT_BROADCAST", "127.0.0.1")
        .env("PIPESLOT_WORKGROUP", "PSLAB");
    c
}

fn receive(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let (n, _) = sock.recv_from(&mut buf).expect("the datagram arrives");
    buf[..n].to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the repo's tshark oracle on one datagram: `Some(its key=value
/// output)`, or `None` when tshark is missing (a skip outside CI, a failure
/// under CI=true).
fn tshark_decode(payload: &[u8], port: u16) -> Option<String> {
    let have = Command::new("sh")
        .args(["-c", "command -v tshark && command -v text2pcap"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the tshark oracle needs tshark and text2pcap, and CI=true forbids skipping it"
        );
        eprintln!("skipping the tshark oracle: tshark or text2pcap is missing (apt-get install tshark)");
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipeslot/tests/data/tshark-decode.sh");
    let out = Command::new("sh")
        .args([
            "-c",
            r#"printf %s "$HEX" | bash "$0" - "$1""#,
            script,
            &port.to_string(),
        ])
        .env("HEX", hex(payload))
        .output()
        .expect("run tshark-decode.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tshark sees no complete mailslot write ({:?}): {text}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(text)
}

#[test]
fn send_to_a_host_is_a_mailslot_datagram_that_tshark_decodes() {
    test("ms-net-send", LIMIT, |ctx| {
        let (sock, port) = udp_capture();
        let name = r"\\127.0.0.1\mailslot\cli\Remote";
        let msg = b"Hello, mailslot!";
        ctx.spawn_cmd(net_cmd(ctx, port, &["send", name, "Hello, mailslot!"]))
            .wait()
            .success();
        let payload = receive(&sock);
        let d = MailslotDatagramRepr::parse(&payload).expect("our codec decodes what `send` sent");
        assert_eq!(d.datagram.msg_type, DatagramType::DIRECT_UNIQUE);
        assert_eq!(d.datagram.destination_name.to_string(), "127.0.0.1<00>");
        assert_eq!(d.datagram.source_ip, Ipv4Addr::LOCALHOST);
        assert_eq!(d.write.name, r"\MAILSLOT\cli\Remote");
        assert_eq!(&*d.write.data, msg);
        if let Some(t) = tshark_decode(&payload, port) {
            assert!(t.contains("mailslot.name=\\MAILSLOT\\cli\\Remote\n"), "{t}");
            assert!(t.contains("mailslot.opcode=1\n"), "{t}");
            assert!(t.contains(&format!("data.hex={}\n", hex(msg))), "{t}");
        }
    });
}

#[test]
fn send_to_every_host_is_a_group_datagram_to_the_workgroup() {
    test("ms-net-group", LIMIT, |ctx| {
        let (sock, port) = udp_capture();
        // PIPESLOT_BROADCAST=127.0.0.1: the "broadcast" stays on loopback.
        let input = b"0001\n\n";
        let mut p = ctx.spawn_cmd(net_cmd(ctx, port, &["send", r"\\*\mailslot\cli\all", "--hex", "-"]));
        p.feed(input);
        p.close_stdin();
        p.wait().success();
        for want in [&[0x00, 0x01][..], b""] {
            let payload = receive(&sock);
            let d = MailslotDatagramRepr::parse(&payload).expect("our codec decodes what `send` sent");
            assert_eq!(d.datagram.msg_type, DatagramType::DIRECT_GROUP);
            assert_eq!(d.datagram.destination_name.to_string(), "PSLAB<00>");
            assert_eq!(d.write.name, r"\MAILSLOT\cli\all");
            assert_eq!(&*d.write.data, want);
            tshark_decode(&payload, port);
        }
    });
}

#[test]
fn over_what_a_datagram_carries_is_bad_netpath() {
    test("ms-net-size", LIMIT, |ctx| {
        let (sock, port) = udp_capture();
        // \\HOST\: 432 − roundup4(len("cli\x") = 5) = 424 bytes; domains and \\*\: 424 too.
        let too_big = "x".repeat(425);
        for name in [r"\\127.0.0.1\mailslot\cli\x", r"\\*\mailslot\cli\x"] {
            let out = ctx.spawn_cmd(net_cmd(ctx, port, &["send", name, &too_big])).wait();
            let line = out.error("ERROR_BAD_NETPATH", 53, name);
            assert!(line.contains("425 bytes"), "{line}");
        }
        let fits = "x".repeat(424);
        ctx.spawn_cmd(net_cmd(ctx, port, &["send", r"\\127.0.0.1\mailslot\cli\x", &fits]))
            .wait()
            .success();
        let d = receive(&sock);
        let d = MailslotDatagramRepr::parse(&d).expect("decodes");
        assert_eq!(d.write.data.len(), 424, "only the message that fits was sent");
    });
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
fn free_udp_port() -> u16 {
    let (sock, port) = udp_capture();
    drop(sock);
    port
}

/// Waits until something holds UDP 127.0.0.1:`port` (the receiver of
/// `serve --network`).
fn wait_bound(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
        assert!(Instant::now() < deadline, "nothing ever bound UDP port {port}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_network_prints_a_message_sent_by_another_process_once() {
    test("ms-net-serve", LIMIT, |ctx| {
        let port = free_udp_port();
        let name = slot(ctx, "Net");
        let server = serve_cmd(
            ctx,
            &name,
            net_cmd(ctx, port, &["serve", &name, "--network", "--max-messages", "2"]),
        );
        assert!(ctx.run(&["info", &name]).success().ends_with("network: true\n"));
        wait_bound(port);
        // To this host by address, the name in another case: delivered by name, folded.
        let remote = name.replacen(r"\\.\", r"\\127.0.0.1\", 1).to_uppercase();
        ctx.spawn_cmd(net_cmd(ctx, port, &["send", &remote, "over the network"]))
            .wait()
            .success();
        server.wait_stdout("the network message", |o| !o.is_empty());
        // A local message after it: had the first come twice, it would be second.
        ctx.run(&["send", &name, "local"]).success();
        assert_eq!(server.wait().success(), "over the network\nlocal\n");
    });
}

#[test]
fn serve_network_without_the_right_to_bind_the_port_is_access_denied() {
    test("ms-net-denied", LIMIT, |ctx| {
        if !root_or_skip("serve_network_without_the_right_to_bind_the_port_is_access_denied") {
            return;
        }
        // A privileged port, unless this host lets everyone bind low ports.
        const PORT: u16 = 1000;
        let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok())
            .unwrap_or(1024);
        if start <= PORT {
            eprintln!("skipping: ip_unprivileged_port_start is {start}, so UDP {PORT} is not privileged here");
            return;
        }
        // nobody creates the mailslot's folders in this test's namespace.
        std::fs::set_permissions(&ctx.dir, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        let name = slot(ctx, "denied");
        let mut c = ctx.cmd_as_nobody(&["serve", &name, "--network"]);
        c.env("PIPESLOT_MAILSLOT_PORT", PORT.to_string())
            .env("PIPESLOT_BIND", "127.0.0.1");
        // Not a mailslot that silently never hears from the network: an error.
        ctx.spawn_cmd(c)
            .wait()
            .error("ERROR_ACCESS_DENIED", 5, "127.0.0.1:1000");
        ctx.run(&["info", &name]).error("ERROR_FILE_NOT_FOUND", 2, &name);
    });
}

/// The gateway as the host's mailslot datagram service: it holds the port,
/// a `serve --network` stands by and still hears remote writes through it,
/// and takes the port over when the gateway stops.
#[test]
fn the_gateway_s_datagram_service_delivers_to_network_mailslots() {
    test("ms-net-gateway", LIMIT, |ctx| {
        let port = free_udp_port();
        let config = ctx.dir.join("gateway.toml");
        ctx.run_with_stdin(
            &["gateway", "user", "add", "u", "--config", config.to_str().unwrap()],
            b"p\n",
        )
        .success();
        let users = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            format!("listen = \"127.0.0.1:0\"\n{users}\n[mailslots]\nlisten = \"127.0.0.1:{port}\"\n"),
        )
        .unwrap();
        let mut gw = ctx.spawn_cmd(net_cmd(ctx, port, &["gateway", "--config", config.to_str().unwrap()]));
        let said = gw.wait_stdout("the datagram line", |o| {
            String::from_utf8_lossy(o).contains("mailslot datagrams on UDP")
        });
        assert!(String::from_utf8_lossy(&said).contains(&format!("127.0.0.1:{port}")));
        let name = slot(ctx, "ViaGateway");
        let server = serve_cmd(
            ctx,
            &name,
            net_cmd(ctx, port, &["serve", &name, "--network", "--max-messages", "2"]),
        );
        let remote = name.replacen(r"\\.\", r"\\127.0.0.1\", 1);
        ctx.spawn_cmd(net_cmd(ctx, port, &["send", &remote, "through the gateway"]))
            .wait()
            .success();
        server.wait_stdout("the first message", |o| o.ends_with(b"through the gateway\n"));
        // The gateway goes; the mailslot's own receiver takes the port.
        let _ = gw.child.kill();
        let _ = gw.child.wait();
        wait_bound(port);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            ctx.spawn_cmd(net_cmd(ctx, port, &["send", &remote, "after it"]))
                .wait()
                .success();
            thread::sleep(Duration::from_millis(200));
            if String::from_utf8_lossy(&server.stdout()).contains("after it") || Instant::now() > deadline {
                break;
            }
        }
        assert_eq!(server.wait().success(), "through the gateway\nafter it\n");
    });
}
