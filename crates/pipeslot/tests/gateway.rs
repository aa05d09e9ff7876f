//! The gateway: local pipes served over SMB2 to our own client (blocking
//! and tokio) and to impacket, on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use pipeslot::blocking::{ClientOptions, ServerOptions};
use pipeslot::gateway::GatewayOptions;
use pipeslot::{PipeMode, SmbCredentials, Win32Error};

use crate::util::{self, code, watchdog};

/// An echo server on a local message pipe, `instances` listening at a
/// time, for ever: each of `instances` loops creates its next instance as
/// soon as a client takes its last, so back-to-back opens never find every
/// instance between two creates (ERROR_PIPE_BUSY).
pub(crate) fn echo_server(name: &str, instances: usize, reject_remote: bool) {
    let create = move |name: &str| {
        ServerOptions::new()
            .pipe_mode(PipeMode::Message)
            .reject_remote_clients(reject_remote)
            .create(name)
            .unwrap()
    };
    // The first instances exist before this returns.
    let firsts: Vec<_> = (0..instances.max(1)).map(|_| create(name)).collect();
    for first in firsts {
        let name = name.to_owned();
        std::thread::spawn(move || {
            let mut next = Some(first);
            loop {
                let server = next.take().unwrap_or_else(|| create(&name));
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
    }
}

fn gateway(exports: &[&str]) -> SocketAddr {
    gateway_with(exports, |_| {})
}

/// A message pipe that takes remote clients.
fn accepting_remote(name: &str) -> pipeslot::blocking::NamedPipeServer {
    ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .reject_remote_clients(false)
        .create(name)
        .unwrap()
}

/// Serves one client one echo, and says who it was.
fn echo_once(server: pipeslot::blocking::NamedPipeServer) -> std::thread::JoinHandle<pipeslot::ClientIdentity> {
    std::thread::spawn(move || {
        server.connect().unwrap();
        let who = server.client_identity().unwrap();
        let mut buf = [0u8; 8];
        let m = server.read_msg(&mut buf).unwrap();
        server.write_msg(&buf[..m.len]).unwrap();
        who
    })
}

fn remote(name: &str) -> String {
    format!(r"\\127.0.0.1\pipe\{}", name.rsplit('\\').next().unwrap())
}

pub(crate) fn client(port: u16) -> ClientOptions {
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

/// Runs impacket's client (Debian's python3-impacket) against `port`: a
/// transact, a write and a read on `pipe`, as `user`. None (skipped) when
/// impacket is missing outside CI.
fn impacket(port: u16, pipe: &str, user: &str, password: &str) -> Option<Vec<String>> {
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
        return None;
    }
    let script = r#"
import sys
from impacket.smbconnection import SMBConnection
c = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=int(sys.argv[1]), timeout=10)
c.login(sys.argv[3], sys.argv[4])
tid = c.connectTree("IPC$")
fid = c.openFile(tid, sys.argv[2], desiredAccess=0x12019f, creationOption=0x40, fileAttributes=0x80)
print(c.transactNamedPipe(tid, fid, b"from impacket").decode())
c.writeFile(tid, fid, b"who")
print(c.readFile(tid, fid).decode())
c.closeFile(tid, fid)
print("dialect", hex(c.getDialect()))
"#;
    let args = [port.to_string(), pipe.to_owned(), user.to_owned(), password.to_owned()];
    let out = watchdog(Duration::from_secs(60), move || {
        std::process::Command::new("timeout")
            .args(["30", python, "-c", script])
            .args(&args)
            .output()
            .unwrap()
    });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    Some(text.lines().map(str::to_owned).collect())
}

#[test]
fn impacket_through_the_gateway() {
    let name = util::name("gw-impacket");
    echo_server(&name, 2, false);
    let port = gateway(&[&name]).port();
    let bare = name.rsplit('\\').next().unwrap().to_owned();
    let Some(lines) = impacket(port, &bare, "alice", "wonderland") else {
        return;
    };
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
        // FSCTL_PIPE_WAIT, served by a local wait: a short one times out
        // (STATUS_IO_TIMEOUT), a longer one ends when the instance frees.
        let e = client(port)
            .wait(remote(&name), pipeslot::WaitTimeout::After(Duration::from_millis(200)))
            .unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_SEM_TIMEOUT), "{e}");
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

/// A client of our own making over a raw socket: logged on as alice, with
/// `pipe` open on IPC$. Gives the socket, the connection, the tree and the file.
fn raw_client(
    port: u16,
    pipe: &str,
) -> (
    std::net::TcpStream,
    pipeslot_smb::client::Connection,
    u32,
    pipeslot_smb::create::FileId,
) {
    use pipeslot_smb::client::{Auth, ClientConfig, Entropy, Handshake, Step, ALL_DIALECTS};
    use pipeslot_smb::header::Command;
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
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
        match hs.receive(&raw_frame(&mut s)).unwrap() {
            Step::Send(f) => s.write_all(&f).unwrap(),
            Step::Wait => {}
            Step::Ready => break,
        }
    }
    let mut c = hs.finish();
    let mut call = |s: &mut std::net::TcpStream, cmd, tree, body: &[u8]| {
        s.write_all(&c.request(cmd, tree, body, 1024).unwrap().frame).unwrap();
        loop {
            let rs = c.receive(&raw_frame(s)).unwrap();
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
        &pipeslot_smb::create::create_pipe_body(pipe, 3),
    );
    let file = pipeslot_smb::create::parse_create_response(&cr.msg).unwrap();
    (s, c, tree, file)
}

fn raw_frame(s: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut th = [0u8; 4];
    s.read_exact(&mut th).unwrap();
    let mut m = vec![0u8; pipeslot_smb::transport::message_len(th).unwrap()];
    s.read_exact(&mut m).unwrap();
    m
}

#[test]
fn a_client_that_vanishes_mid_read_frees_its_instance_at_once() {
    use pipeslot_smb::header::Command;
    use std::io::Write;
    let name = util::name("gw-vanish");
    let server = accepting_remote(&name);
    let port = gateway(&[&name]).port();
    let bare = name.rsplit('\\').next().unwrap().to_owned();
    watchdog(Duration::from_secs(30), move || {
        // Logs on, opens, sends a READ, and is gone.
        let (mut s, mut c, tree, file) = raw_client(port, &bare);
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
fn a_cancel_ends_a_waiting_read_and_loses_nothing() {
    use pipeslot_smb::header::Command;
    use pipeslot_smb::status::NtStatus;
    use std::io::Write;
    let name = util::name("gw-cancel");
    let server = accepting_remote(&name);
    let port = gateway(&[&name]).port();
    let bare = name.rsplit('\\').next().unwrap().to_owned();
    watchdog(Duration::from_secs(30), move || {
        let (mut s, mut c, tree, file) = raw_client(port, &bare);
        server.connect().unwrap();
        let read = c
            .request(Command::READ, tree, &pipeslot_smb::io::read_body(file, 64), 64)
            .unwrap();
        s.write_all(&read.frame).unwrap();
        // Nothing to read: after 0.5 ms the gateway says it is pending.
        let interim = c.receive(&raw_frame(&mut s)).unwrap();
        assert!(interim[0].interim, "{:?}", interim[0].status);
        let async_id = interim[0].async_id;
        s.write_all(&c.cancel(read.message_id, async_id)).unwrap();
        let done = c.receive(&raw_frame(&mut s)).unwrap();
        assert_eq!(done[0].status, NtStatus::STATUS_CANCELLED);
        // The pipe is still there, and what comes next is read whole.
        server.write_msg(b"after the cancel").unwrap();
        let again = c
            .request(Command::READ, tree, &pipeslot_smb::io::read_body(file, 64), 64)
            .unwrap();
        s.write_all(&again.frame).unwrap();
        let r = loop {
            let rs = c.receive(&raw_frame(&mut s)).unwrap();
            if let Some(r) = rs.into_iter().find(|r| !r.interim) {
                break r;
            }
        };
        assert_eq!(
            pipeslot_smb::io::ReadResponse::parse(&r.msg).unwrap().data,
            b"after the cancel"
        );
    });
}

#[test]
fn the_local_server_sees_who_the_remote_client_is() {
    let name = util::name("gw-who");
    let server = accepting_remote(&name);
    let port = gateway(&[&name]).port();
    let local = echo_once(server);
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

fn gateway_with(exports: &[&str], tweak: impl FnOnce(&mut GatewayOptions)) -> SocketAddr {
    gateway_at("127.0.0.1:0", exports, tweak)
}

/// A gateway of this process on `listen`, serving on a thread of its own.
pub(crate) fn gateway_at(listen: &str, exports: &[&str], tweak: impl FnOnce(&mut GatewayOptions)) -> SocketAddr {
    let mut g = GatewayOptions::new(listen.parse().unwrap());
    g.user("alice", "wonderland").user("bob", "builder");
    for e in exports {
        g.export(e);
    }
    tweak(&mut g);
    let g = g.bind().unwrap();
    let addr = g.local_addr().unwrap();
    std::thread::spawn(move || g.serve());
    addr
}

/// Samba's clients, when installed (CI installs them).
fn samba_tool(tool: &str) -> bool {
    let there = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !there {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must install smbclient ({tool})"
        );
        eprintln!("skipped: needs {tool} (Debian's smbclient)");
    }
    there
}

fn run(tool: &str, args: &[&str]) -> (bool, String) {
    let mut all = vec!["20", tool];
    all.extend_from_slice(args);
    let out = std::process::Command::new("timeout").args(&all).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn smbclient_lists_ipc_and_rpcclient_asks_the_server_service() {
    if !samba_tool("smbclient") || !samba_tool("rpcclient") {
        return;
    }
    let port = gateway_with(&[], |_| {}).port().to_string();
    let (ok, text) = watchdog(Duration::from_secs(60), {
        let port = port.clone();
        move || {
            run(
                "smbclient",
                &["-L", "//127.0.0.1", "-p", &port, "-U", "alice%wonderland", "-m", "SMB3"],
            )
        }
    });
    assert!(ok, "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("IPC$"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("IPC") && line.contains("Remote IPC"), "{line}");
    // Sealed, as a client that insists on encryption asks.
    let (ok, text) = run(
        "smbclient",
        &[
            "-L",
            "//127.0.0.1",
            "-p",
            &port,
            "-U",
            "alice%wonderland",
            "-m",
            "SMB3",
            "--client-protection=encrypt",
        ],
    );
    assert!(ok && text.contains("Remote IPC"), "{text}");
    let (ok, text) = run(
        "rpcclient",
        &[
            "-p",
            &port,
            "-U",
            "alice%wonderland",
            "-c",
            "srvinfo;netshareenumall",
            "127.0.0.1",
        ],
    );
    assert!(ok, "{text}");
    let computer = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_uppercase();
    let computer: String = computer.chars().take(15).collect();
    assert!(text.contains(&computer) && text.contains("Wk Sv"), "srvinfo: {text}");
    assert!(
        text.contains("netname: IPC$") && text.contains("remark:\tRemote IPC"),
        "netshareenumall: {text}"
    );
    // A wrong password: refused, and said so.
    let (ok, text) = run(
        "smbclient",
        &["-L", "//127.0.0.1", "-p", &port, "-U", "alice%nope", "-m", "SMB3"],
    );
    assert!(!ok && text.contains("NT_STATUS_LOGON_FAILURE"), "{text}");
}

#[test]
fn guest_is_off_by_default_and_works_when_turned_on() {
    let name = util::name("gw-guest");
    let server = accepting_remote(&name);
    let closed = gateway(&[&name]).port();
    let open = gateway_with(&[&name], |g| {
        g.guest(true);
    })
    .port();
    let local = echo_once(server);
    watchdog(Duration::from_secs(30), move || {
        let mut o = ClientOptions::new();
        o.pipe_mode(PipeMode::Message).smb_port(closed);
        let e = o.open(remote(&name)).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_LOGON_FAILURE), "{e}");
        let mut o = ClientOptions::new();
        o.pipe_mode(PipeMode::Message).smb_port(open);
        let pipe = o.open(remote(&name)).unwrap();
        let s = pipe.remote_session().unwrap().to_string();
        assert!(s.contains("anonymous, unsigned"), "{s}");
        let mut reply = [0u8; 8];
        let r = pipe.transact(b"hi", &mut reply).unwrap();
        assert_eq!(&reply[..r.len], b"hi");
    });
    let who = local.join().unwrap();
    assert_eq!(
        who.remote_user.as_deref(),
        Some(r"NT AUTHORITY\ANONYMOUS LOGON"),
        "{who:?}"
    );
}

#[test]
fn required_encryption_seals_and_peek_info_and_flush_reach_the_local_pipe() {
    let name = util::name("gw-sealed");
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .reject_remote_clients(false)
        .max_instances(3)
        .create(&name)
        .unwrap();
    let port = gateway_with(&[&name], |g| {
        g.encryption(pipeslot::gateway::Encryption::Required);
    })
    .port();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let local = std::thread::spawn(move || {
        server.connect().unwrap();
        server.write_msg(b"first message").unwrap();
        server.write_msg(b"second").unwrap();
        // The flush below waits until this read.
        go_rx.recv().unwrap();
        let mut buf = [0u8; 32];
        let m = server.read_msg(&mut buf).unwrap();
        assert_eq!(&buf[..m.len], b"flushed");
        server
    });
    watchdog(Duration::from_secs(30), move || {
        let pipe = client(port).open(remote(&name)).unwrap();
        let s = pipe.remote_session().unwrap().to_string();
        assert!(s.contains("encrypted"), "{s}");
        let info = pipe.info().unwrap();
        assert_eq!((info.mode, info.max_instances), (PipeMode::Message, 3), "{info:?}");
        // Both messages waiting; five bytes of the first fit.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut five = [0u8; 5];
        let p = loop {
            let p = pipe.peek(&mut five).unwrap();
            if p.available == 19 || std::time::Instant::now() > deadline {
                break p;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!((p.read, p.available, p.left_in_message), (5, 19, 8), "{p:?}");
        assert_eq!(&five, b"first");
        let mut buf = [0u8; 32];
        let m = pipe.read_msg(&mut buf).unwrap();
        assert_eq!(&buf[..m.len], b"first message", "the peek took nothing");
        let m = pipe.read_msg(&mut buf).unwrap();
        assert_eq!(&buf[..m.len], b"second");
        pipe.write_msg(b"flushed").unwrap();
        let t = std::time::Instant::now();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            go_tx.send(()).unwrap();
        });
        pipe.flush_buffers().unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "FLUSH waited for the read: {:?}",
            t.elapsed()
        );
    });
    drop(local.join().unwrap());
}

#[test]
fn remote_users_a_pipe_names_are_let_in_and_others_refused() {
    let name = util::name("gw-allow");
    let mut opts = ServerOptions::new();
    opts.pipe_mode(PipeMode::Message)
        .reject_remote_clients(false)
        .security(pipeslot::PipeSecurity::owner_only().allow_remote_user(r"*\alice"));
    let first = opts.create(&name).unwrap();
    let second = opts.create(&name).unwrap();
    let port = gateway_with(&[&name], |_| {}).port();
    let serving = std::thread::spawn(move || {
        first.connect().unwrap();
        let mut buf = [0u8; 8];
        let m = first.read_msg(&mut buf).unwrap();
        first.write_msg(&buf[..m.len]).unwrap();
        (first, second)
    });
    watchdog(Duration::from_secs(30), move || {
        let mut bob = client(port);
        bob.smb_credentials(SmbCredentials::new("bob", "builder"));
        let e = bob.open(remote(&name)).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_ACCESS_DENIED), "{e}");
        let pipe = client(port).open(remote(&name)).unwrap();
        let mut reply = [0u8; 8];
        let r = pipe.transact(b"ok", &mut reply).unwrap();
        assert_eq!(&reply[..r.len], b"ok");
    });
    drop(serving.join().unwrap());
}

#[test]
fn limits_connections_opens_idle_clients_and_half_sent_frames() {
    use std::io::{Read, Write};
    let name = util::name("gw-limits");
    echo_server(&name, 4, false);
    let addr = gateway_with(&[&name], |g| {
        g.max_connections(2)
            .max_opens(2)
            .idle_timeout(Duration::from_millis(400))
            .frame_timeout(Duration::from_millis(400));
    });
    let port = addr.port();
    watchdog(Duration::from_secs(60), move || {
        // Two silent connections fill the gateway; a third client is told so.
        let a = std::net::TcpStream::connect(addr).unwrap();
        let mut b = std::net::TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let e = client(port).open(remote(&name)).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_REQ_NOT_ACCEP), "{e}");
        // Idle, they are closed (the gateway hangs up: EOF), and room is made.
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t = std::time::Instant::now();
        assert_eq!(b.read(&mut [0u8; 1]).unwrap(), 0, "closed for idling");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        drop(a);
        // A frame begun and never finished is not waited on for ever.
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(&[0, 0, 0, 100, 0xfe, b'S']).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t = std::time::Instant::now();
        assert_eq!(c.read(&mut [0u8; 1]).unwrap_or(0), 0);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        // A frame announced larger than 256 KiB is refused at its length,
        // before any of it is read or a buffer for it is made.
        let mut big = std::net::TcpStream::connect(addr).unwrap();
        big.write_all(&[0, 0x10, 0, 0, 0xfe, b'S', b'M', b'B']).unwrap();
        big.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t = std::time::Instant::now();
        assert_eq!(big.read(&mut [0u8; 1]).unwrap_or(0), 0, "closed at the length");
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "not the frame timeout: {:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
        // Two opens per session; a third is refused, and a close makes room.
        let one = client(port).open(remote(&name)).unwrap();
        let _two = client(port).open(remote(&name)).unwrap();
        let e = client(port).open(remote(&name)).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_NO_SYSTEM_RESOURCES), "{e}");
        drop(one);
        let o = client(port);
        let three = (0..50)
            .find_map(|_| match o.open(remote(&name)) {
                Ok(p) => Some(p),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    None
                }
            })
            .expect("the close made room");
        let mut reply = [0u8; 8];
        let r = three.transact(b"room", &mut reply).unwrap();
        assert_eq!(&reply[..r.len], b"room");
    });
}

/// The Samba mode: a private smbd does the SMB and the log-on; the gateway
/// serves the exports as its external pipes, and our client, tokio's and
/// impacket reach them through smbd.
#[test]
fn the_samba_mode_serves_the_exports_through_smbd() {
    use crate::remote::smbd::{Smbd, PASSWORD, USER};
    let Some(smbd) = Smbd::start("gw-samba", "") else {
        return;
    };
    let port = smbd.port;
    let name = util::name("gw-samba").to_lowercase();
    let who = util::name("gw-samba-who").to_lowercase();
    let local_only = util::name("gw-samba-local").to_lowercase();
    echo_server(&name, 4, false);
    echo_server(&local_only, 1, true);
    let identity = echo_once(accepting_remote(&who));
    let np_dir = smbd.np_socket("x").parent().unwrap().to_owned();
    let mut g = GatewayOptions::new("127.0.0.1:0".parse().unwrap());
    g.samba(&np_dir)
        .own_server(false)
        .export(&name)
        .export(&who)
        .export(&local_only);
    let gw = g.bind().unwrap();
    assert!(gw.local_addr().is_err(), "no SMB listener of our own");
    let handle = gw.handle();
    std::thread::spawn(move || gw.serve());
    let through_smbd = move || {
        let mut o = ClientOptions::new();
        o.pipe_mode(PipeMode::Message)
            .smb_port(port)
            .smb_credentials(SmbCredentials::new(USER, PASSWORD));
        o
    };
    let (n2, w2, l2) = (name.clone(), who.clone(), local_only.clone());
    watchdog(Duration::from_secs(60), move || {
        let pipe = through_smbd().open(remote(&n2)).unwrap();
        let mut reply = [0u8; 64];
        let r = pipe.transact(b"via smbd", &mut reply).unwrap();
        assert_eq!(&reply[..r.len], b"via smbd");
        pipe.write_msg(b"0123456789").unwrap();
        let mut small = [0u8; 4];
        let a = pipe.read_msg(&mut small).unwrap();
        assert_eq!((&small[..a.len], a.more), (&b"0123"[..], true));
        let mut rest = [0u8; 64];
        let b = pipe.read_msg(&mut rest).unwrap();
        assert_eq!(&rest[..b.len], b"456789");
        let big: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
        let mut back = vec![0u8; 65_536];
        let r = pipe.transact(&big, &mut back).unwrap();
        assert!(r.len == big.len() && back[..r.len] == big[..]);
        // Who the local server sees: the unix user smbd mapped the log-on to.
        let p = through_smbd().open(remote(&w2)).unwrap();
        p.transact(b"hi", &mut reply).unwrap();
        // Not exported: smbd finds no socket. A local-only pipe: refused.
        let e = through_smbd().open(remote("not-exported-anywhere")).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_FILE_NOT_FOUND), "{e}");
        // A local-only pipe refuses; smbd 4.17 passes no status on, so the
        // gateway fails the open by closing (smbd: STATUS_CONNECTION_DISCONNECTED).
        let e = through_smbd().open(remote(&l2)).unwrap_err();
        assert!(e.to_string().contains("STATUS_CONNECTION_DISCONNECTED"), "{e}");
    });
    let who_was = identity.join().unwrap();
    assert_eq!(who_was.remote_user.as_deref(), Some(USER), "{who_was:?}");
    assert!(
        who_was
            .remote_address
            .as_deref()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{who_was:?}"
    );
    // tokio's client, through the same smbd.
    let n3 = name.clone();
    watchdog(Duration::from_secs(30), move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let mut o = pipeslot::tokio::ClientOptions::new();
                o.pipe_mode(PipeMode::Message)
                    .smb_port(port)
                    .smb_credentials(SmbCredentials::new(USER, PASSWORD));
                let pipe = o.open(remote(&n3)).unwrap();
                let mut reply = [0u8; 16];
                let r = pipe.transact(b"async", &mut reply).await.unwrap();
                assert_eq!(&reply[..r.len], b"async");
            })
    });
    // A reload: a new export gets its socket in smbd's folder, a dropped
    // one loses it.
    let late = util::name("gw-samba-late").to_lowercase();
    let late_bare = late.rsplit('\\').next().unwrap().to_owned();
    g.export(&late);
    handle.update(g.clone()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !np_dir.join(&late_bare).exists() {
        assert!(std::time::Instant::now() < deadline, "no socket for {late_bare}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut fewer = GatewayOptions::new("127.0.0.1:0".parse().unwrap());
    fewer.samba(&np_dir).own_server(false).export(&name).export(&late);
    handle.update(fewer).unwrap();
    let gone = who.rsplit('\\').next().unwrap().to_owned();
    while np_dir.join(&gone).exists() {
        assert!(std::time::Instant::now() < deadline, "{gone} still served");
        std::thread::sleep(Duration::from_millis(10));
    }
    // impacket, through the same smbd.
    let bare = name.rsplit('\\').next().unwrap().to_owned();
    if let Some(lines) = impacket(port, &bare, USER, PASSWORD) {
        assert_eq!(lines[..2], ["from impacket", "me"], "{lines:?}");
    }
    drop(smbd);
}

#[test]
fn a_read_waiting_on_one_pipe_holds_up_no_transact_on_another_of_the_same_connection() {
    let echo = util::name("gw-free");
    let quiet = util::name("gw-quiet");
    echo_server(&echo, 2, false);
    let slow = accepting_remote(&quiet);
    let port = gateway(&[&echo, &quiet]).port();
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let serving = std::thread::spawn(move || {
        slow.connect().unwrap();
        wait.recv().unwrap();
        slow.write_msg(b"at last").unwrap();
        slow
    });
    watchdog(Duration::from_secs(30), move || {
        // Both opens share one connection and session (the client pools them).
        let waiting = client(port).open(remote(&quiet)).unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            let m = waiting.read_msg(&mut buf).unwrap();
            buf[..m.len].to_vec()
        });
        std::thread::sleep(Duration::from_millis(100));
        let other = client(port).open(remote(&echo)).unwrap();
        let t = std::time::Instant::now();
        let mut reply = [0u8; 16];
        for _ in 0..20 {
            let r = other.transact(b"meanwhile", &mut reply).unwrap();
            assert_eq!(&reply[..r.len], b"meanwhile");
        }
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(!reader.is_finished(), "the read still waits");
        go.send(()).unwrap();
        assert_eq!(reader.join().unwrap(), b"at last");
    });
    drop(serving.join().unwrap());
}

/// The inodes of our shared-memory segments mapped in this process, each
/// with how many mappings it has (both ends of a pair map the same memfd).
fn segment_inodes() -> std::collections::HashMap<String, usize> {
    let mut seen = std::collections::HashMap::new();
    for l in std::fs::read_to_string("/proc/self/maps").unwrap().lines() {
        if l.contains("/memfd:pipeslot") {
            if let Some(inode) = l.split_whitespace().nth(4) {
                *seen.entry(inode.to_owned()).or_insert(0) += 1;
            }
        }
    }
    seen
}

/// The gateway's local hop takes shared memory when the local server does
/// (the gateway offers it), and carries messages larger than its rings.
#[test]
fn the_gateways_local_hop_takes_shared_memory_when_the_server_does() {
    let name = util::name("gw-shm");
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .reject_remote_clients(false)
        .shared_memory(true)
        .out_buffer_size(4096)
        .in_buffer_size(4096)
        .create(&name)
        .unwrap();
    let port = gateway(&[&name]).port();
    let before = segment_inodes();
    let local = std::thread::spawn(move || {
        server.connect().unwrap();
        let mut buf = vec![0u8; 40_000];
        for _ in 0..3 {
            let m = server.read_msg(&mut buf).unwrap();
            server.write_msg(&buf[..m.len]).unwrap();
        }
        server
    });
    let (pipe, paired) = watchdog(Duration::from_secs(30), move || {
        let pipe = client(port).open(remote(&name)).unwrap();
        let mut reply = vec![0u8; 40_000];
        let r = pipe.transact(b"small", &mut reply).unwrap();
        assert_eq!(&reply[..r.len], b"small");
        // Both ends of a new segment are mapped here (the gateway's end
        // and the server's): the hop is on shared memory.
        let paired = segment_inodes()
            .into_iter()
            .any(|(inode, n)| n >= 2 && !before.contains_key(&inode));
        for len in [30_000usize, 4_096] {
            let msg: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let r = pipe.transact(&msg, &mut reply).unwrap();
            assert_eq!((r.len, r.more), (len, false));
            assert!(reply[..len] == msg[..], "{len} bytes came back whole");
        }
        (pipe, paired)
    });
    assert!(paired, "the local hop mapped a shared-memory segment");
    drop(pipe);
    drop(local.join().unwrap());
}
