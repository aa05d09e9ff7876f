//! The gateway: local pipes served over SMB2 to our own client (blocking
//! and tokio) and to impacket, on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use pipeslot::blocking::{ClientOptions, ServerOptions};
use pipeslot::gateway::GatewayOptions;
use pipeslot::{PipeMode, SmbCredentials, Win32Error};

use crate::util::{self, code, watchdog};

/// An echo server on a local message pipe, `instances` at a time, for ever.
fn echo_server(name: &str, instances: usize, reject_remote: bool) {
    let first = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .reject_remote_clients(reject_remote)
        .create(name)
        .unwrap();
    let name = name.to_owned();
    std::thread::spawn(move || {
        let mut next = Some(first);
        loop {
            let server = next.take().unwrap_or_else(|| {
                ServerOptions::new()
                    .pipe_mode(PipeMode::Message)
                    .reject_remote_clients(reject_remote)
                    .create(&name)
                    .unwrap()
            });
            if server.connect().is_err() {
                continue;
            }
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(m) = server.read_msg(&mut buf) {
                    let reply = if &buf[..m.len] == b"who" {
                        b"me".to_vec()
                    } else {
                        buf[..m.len].to_vec()
                    };
                    if server.write_msg(&reply).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let _ = instances;
}

fn gateway(exports: &[&str]) -> SocketAddr {
    let mut g = GatewayOptions::new("127.0.0.1:0".parse().unwrap());
    g.user("alice", "wonderland");
    for e in exports {
        g.export(e);
    }
    let g = g.bind().unwrap();
    let addr = g.local_addr().unwrap();
    std::thread::spawn(move || g.serve());
    addr
}

fn remote(name: &str) -> String {
    format!(r"\\127.0.0.1\pipe\{}", name.rsplit('\\').next().unwrap())
}

fn client(port: u16) -> ClientOptions {
    let mut o = ClientOptions::new();
    o.pipe_mode(PipeMode::Message)
        .smb_port(port)
        .smb_credentials(SmbCredentials::new("alice", "wonderland"));
    o
}

#[test]
fn our_client_through_the_gateway_transacts_reads_in_parts_and_is_refused_what_it_should_be() {
    let name = util::name("gw-echo");
    let hidden = util::name("gw-hidden");
    let refuses = util::name("gw-local-only");
    echo_server(&name, 4, false);
    echo_server(&hidden, 1, false);
    echo_server(&refuses, 1, true);
    let addr = gateway(&[&name, &refuses]);
    let port = addr.port();
    watchdog(Duration::from_secs(60), move || {
        let pipe = client(port).open(remote(&name)).unwrap();
        let s = pipe.remote_session().unwrap().to_string();
        assert!(s.contains("SMB 3.1.1") && s.contains("signed"), "{s}");
        let mut reply = [0u8; 64];
        let r = pipe.transact(b"ping", &mut reply).unwrap();
        assert_eq!(&reply[..r.len], b"ping");
        pipe.write_msg(b"0123456789").unwrap();
        let mut small = [0u8; 4];
        let a = pipe.read_msg(&mut small).unwrap();
        assert_eq!((&small[..a.len], a.more), (&b"0123"[..], true));
        let mut rest = [0u8; 64];
        let b = pipe.read_msg(&mut rest).unwrap();
        assert_eq!((&rest[..b.len], b.more), (&b"456789"[..], false));
        // A large message, whole.
        let big: Vec<u8> = (0..60_000u32).map(|i| i as u8).collect();
        let mut back = vec![0u8; 65_536];
        let r = pipe.transact(&big, &mut back).unwrap();
        assert!(r.len == big.len() && back[..r.len] == big[..]);
        // Not exported: as if it did not exist.
        let e = client(port).open(remote(&hidden)).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_FILE_NOT_FOUND), "{e}");
        // A pipe that refuses remote clients refuses the gateway's.
        let e = client(port).open(remote(&refuses)).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_ACCESS_DENIED), "{e}");
        let mut wrong = client(port);
        wrong.smb_credentials(SmbCredentials::new("alice", "looking-glass"));
        let e = wrong.open(remote(&name)).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_LOGON_FAILURE), "{e}");
        // Twenty clients at once, each its own connection and pipe. The
        // server makes its next instance after each connect, so a burst
        // may find none listening: busy, then wait and open again, as
        // Win32 clients do.
        let threads: Vec<_> = (0..20)
            .map(|t| {
                let name = name.clone();
                std::thread::spawn(move || {
                    let mut o = client(port);
                    o.smb_timeouts(Duration::from_secs(5), Duration::from_secs(30 + t));
                    let pipe = loop {
                        match o.open(remote(&name)) {
                            Ok(p) => break p,
                            Err(e) if code(&e) == Some(Win32Error::ERROR_PIPE_BUSY) => {
                                o.wait(remote(&name), pipeslot::WaitTimeout::After(Duration::from_secs(5)))
                                    .unwrap();
                            }
                            Err(e) => panic!("{e}"),
                        }
                    };
                    let mut buf = [0u8; 32];
                    for i in 0..50 {
                        let m = format!("c{t}-{i}");
                        let r = pipe.transact(m.as_bytes(), &mut buf).unwrap();
                        assert_eq!(&buf[..r.len], m.as_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    });
}

#[test]
fn tokio_through_the_gateway() {
    let name = util::name("gw-tokio");
    echo_server(&name, 2, false);
    let port = gateway(&[&name]).port();
    watchdog(Duration::from_secs(60), move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let mut o = pipeslot::tokio::ClientOptions::new();
                o.pipe_mode(PipeMode::Message)
                    .smb_port(port)
                    .smb_credentials(SmbCredentials::new("alice", "wonderland"));
                let pipe = o.open(remote(&name)).unwrap();
                let mut reply = [0u8; 16];
                let r = pipe.transact(b"async", &mut reply).await.unwrap();
                assert_eq!(&reply[..r.len], b"async");
                pipe.write_msg(b"who").await.unwrap();
                let m = pipe.read_msg(&mut reply).await.unwrap();
                assert_eq!(&reply[..m.len], b"me");
            })
    });
}

#[test]
fn impacket_through_the_gateway() {
    let python = "/usr/bin/python3";
    let has = std::process::Command::new(python)
        .args(["-c", "import impacket.smbconnection"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must install python3-impacket"
        );
        eprintln!("skipped: needs Debian's python3-impacket");
        return;
    }
    let name = util::name("gw-impacket");
    echo_server(&name, 2, false);
    let port = gateway(&[&name]).port();
    let bare = name.rsplit('\\').next().unwrap().to_owned();
    let script = r#"
import sys
from impacket.smbconnection import SMBConnection
c = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=int(sys.argv[1]), timeout=10)
c.login("alice", "wonderland")
tid = c.connectTree("IPC$")
fid = c.openFile(tid, "\\" + sys.argv[2], desiredAccess=0x12019f, creationOption=0x40, fileAttributes=0x80)
print(c.transactNamedPipe(tid, fid, b"from impacket").decode())
c.writeFile(tid, fid, b"who")
print(c.readFile(tid, fid).decode())
c.closeFile(tid, fid)
print("dialect", hex(c.getDialect()))
"#;
    let out = watchdog(Duration::from_secs(60), move || {
        std::process::Command::new("timeout")
            .args(["30", python, "-c", script, &port.to_string(), &bare])
            .output()
            .unwrap()
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "from impacket");
    assert_eq!(lines[1], "me");
    assert!(lines[2].starts_with("dialect 0x"), "{lines:?}");
}

#[test]
fn busy_through_the_gateway_and_a_wait_that_ends_when_an_instance_frees() {
    let name = util::name("gw-busy");
    // One instance only, held by a local client until we let go.
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .max_instances(1)
        .reject_remote_clients(false)
        .create(&name)
        .unwrap();
    let holder = ClientOptions::new().open(&name).unwrap();
    let port = gateway(&[&name]).port();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let name2 = name.clone();
    let serving = std::thread::spawn(move || {
        server.connect().unwrap();
        rx.recv().unwrap();
        drop(holder);
        server.disconnect().unwrap();
        server.connect().unwrap();
        let mut buf = [0u8; 16];
        let m = server.read_msg(&mut buf).unwrap();
        server.write_msg(&buf[..m.len]).unwrap();
        let _ = name2;
    });
    watchdog(Duration::from_secs(60), move || {
        let e = client(port).open(remote(&name)).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_PIPE_BUSY), "{e}");
        // The gateway has no FSCTL_PIPE_WAIT yet: the wait probes.
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            tx.send(()).unwrap();
        });
        client(port)
            .wait(remote(&name), pipeslot::WaitTimeout::After(Duration::from_secs(10)))
            .unwrap();
        t.join().unwrap();
        let pipe = client(port).open(remote(&name)).unwrap();
        let mut reply = [0u8; 16];
        let r = pipe.transact(b"mine now", &mut reply).unwrap();
        assert_eq!(&reply[..r.len], b"mine now");
    });
    serving.join().unwrap();
}

#[test]
fn a_client_that_vanishes_mid_read_frees_its_instance_at_once() {
    use pipeslot_smb::client::{Auth, ClientConfig, Entropy, Handshake, Step, ALL_DIALECTS};
    use pipeslot_smb::header::Command;
    use std::io::{Read, Write};
    let name = util::name("gw-vanish");
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .reject_remote_clients(false)
        .create(&name)
        .unwrap();
    let port = gateway(&[&name]).port();
    let bare = name.rsplit('\\').next().unwrap().to_owned();
    watchdog(Duration::from_secs(30), move || {
        // A client of our own making: logs on, opens, sends a READ, and is gone.
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let frame = |s: &mut std::net::TcpStream| {
            let mut th = [0u8; 4];
            s.read_exact(&mut th).unwrap();
            let mut m = vec![0u8; pipeslot_smb::transport::message_len(th).unwrap()];
            s.read_exact(&mut m).unwrap();
            m
        };
        let (mut hs, first) = Handshake::start(ClientConfig {
            auth: Auth::Ntlm {
                user: "alice".into(),
                domain: String::new(),
                nt_hash: pipeslot_smb::ntlm::nt_hash("wonderland"),
            },
            dialects: ALL_DIALECTS.to_vec(),
            require_signing: true,
            require_encryption: false,
            workstation: "T".into(),
            entropy: Entropy {
                client_guid: [1; 16],
                salt: [2; 32],
                client_challenge: [3; 8],
                nonce_prefix: [4; 4],
            },
            now: 0,
        });
        s.write_all(&first).unwrap();
        loop {
            match hs.receive(&frame(&mut s)).unwrap() {
                Step::Send(f) => s.write_all(&f).unwrap(),
                Step::Wait => {}
                Step::Ready => break,
            }
        }
        let mut c = hs.finish();
        let mut call = |s: &mut std::net::TcpStream, cmd, tree, body: &[u8]| {
            s.write_all(&c.request(cmd, tree, body, 1024).unwrap().frame).unwrap();
            loop {
                let rs = c.receive(&frame(s)).unwrap();
                if let Some(r) = rs.into_iter().find(|r| !r.interim) {
                    return r;
                }
            }
        };
        let tc = call(
            &mut s,
            Command::TREE_CONNECT,
            0,
            &pipeslot_smb::tree::tree_connect_body(r"\\127.0.0.1\IPC$"),
        );
        let tree = pipeslot_smb::header::Header::new_checked(&tc.msg[..])
            .unwrap()
            .tree_id()
            .unwrap();
        let cr = call(
            &mut s,
            Command::CREATE,
            tree,
            &pipeslot_smb::create::create_pipe_body(&bare, 3),
        );
        let file = pipeslot_smb::create::parse_create_response(&cr.msg).unwrap();
        server.connect().unwrap();
        s.write_all(
            &c.request(Command::READ, tree, &pipeslot_smb::io::read_body(file, 64), 64)
                .unwrap()
                .frame,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let t = std::time::Instant::now();
        drop(s);
        // The gateway ends the pipe at once, though its read still waited.
        let mut buf = [0u8; 8];
        let e = server.read_msg(&mut buf).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_BROKEN_PIPE), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    });
}

#[test]
fn the_local_server_sees_who_the_remote_client_is() {
    let name = util::name("gw-who");
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .reject_remote_clients(false)
        .create(&name)
        .unwrap();
    let port = gateway(&[&name]).port();
    let local = std::thread::spawn(move || {
        server.connect().unwrap();
        let who = server.client_identity().unwrap();
        let mut buf = [0u8; 8];
        let m = server.read_msg(&mut buf).unwrap();
        server.write_msg(&buf[..m.len]).unwrap();
        who
    });
    watchdog(Duration::from_secs(30), move || {
        let pipe = client(port).open(remote(&name)).unwrap();
        let mut reply = [0u8; 8];
        pipe.transact(b"hi", &mut reply).unwrap();
    });
    let who = local.join().unwrap();
    assert_eq!(who.remote_user.as_deref(), Some("alice"), "{who:?}");
    assert!(
        who.remote_address
            .as_deref()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{who:?}"
    );
    assert_eq!(
        who.computer.as_deref(),
        Some("PIPESLOT"),
        "our client's workstation name: {who:?}"
    );
    // The process is the gateway's (this one): what the kernel says.
    assert_eq!(who.pid, std::process::id());
}
