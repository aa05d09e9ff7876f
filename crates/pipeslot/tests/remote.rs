//! Remote pipes through a real Samba on loopback: `\\127.0.0.1\pipe\NAME`
//! opened with the same `ClientOptions::open` as local names. Samba's own
//! srvsvc answers DCE/RPC; our own endpoint behind Samba's external-pipe
//! proxy plays message pipes that echo, die, or go quiet.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipeslot::blocking::ClientOptions;
use pipeslot::{PipeMode, SmbCredentials, Win32Error};

use crate::util::{assert_win32, code, watchdog};

#[path = "../../pipeslot-smb/tests/support/smbd.rs"]
pub(crate) mod smbd;
use smbd::{Answer, NpaPipe, Smbd, PASSWORD, USER};
#[path = "../../pipeslot-smb/tests/support/dcerpc.rs"]
mod dcerpc;
use dcerpc::{decode_server_info_101, netr_server_get_info, srvsvc_bind};

pub(crate) fn options(port: u16) -> ClientOptions {
    let mut o = ClientOptions::new();
    o.pipe_mode(PipeMode::Message)
        .smb_port(port)
        .smb_credentials(SmbCredentials::new(USER, PASSWORD));
    o
}

fn echo_pipe(smbd: &Smbd, name: &str) -> NpaPipe {
    NpaPipe::serve(smbd.np_socket(name), true, |m| match m {
        b"die" => Answer::Hang,
        b"quiet" => Answer::Nothing,
        b"two" => Answer::Reply(vec![b"first".to_vec(), b"second".to_vec()]),
        m => Answer::Reply(vec![m.to_vec()]),
    })
}

#[test]
fn srvsvc_answers_a_bind_and_net_server_get_info_through_open() {
    let Some(smbd) = Smbd::start("lib-srvsvc", "") else {
        return;
    };
    let port = smbd.port;
    watchdog(Duration::from_secs(60), move || {
        let pipe = options(port).open(r"\\127.0.0.1\pipe\srvsvc").unwrap();
        let info = pipe.info().unwrap();
        assert_eq!(info.mode, PipeMode::Message, "the read mode asked for");
        let session = pipe.remote_session().unwrap();
        assert!(!session.pipe_info_reported, "Samba has no FilePipeLocalInformation");
        let session = session.to_string();
        assert!(session.contains("SMB 3.1.1") && session.contains("signed"), "{session}");
        let mut reply = vec![0u8; 4280];
        let r = pipe.transact(&srvsvc_bind(), &mut reply).unwrap();
        assert_eq!((reply[0], reply[2], r.more), (5, 12, false), "bind_ack");
        let r = pipe
            .transact(&netr_server_get_info(r"\\127.0.0.1"), &mut reply)
            .unwrap();
        let (platform, name) = decode_server_info_101(&reply[..r.len]);
        assert_eq!(platform, 500, "PLATFORM_ID_NT");
        assert!(!name.is_empty() && name == name.to_uppercase(), "{name:?}");
        // The same call as WRITE then READ.
        pipe.write_msg(&netr_server_get_info(r"\\127.0.0.1")).unwrap();
        let m = pipe.read_msg(&mut reply).unwrap();
        assert_eq!(decode_server_info_101(&reply[..m.len]), (platform, name));
        drop(smbd);
    });
}

#[test]
fn an_echo_pipe_behind_samba_transacts_splits_and_refuses_peek() {
    let Some(smbd) = Smbd::start("lib-echo", "") else {
        return;
    };
    let _echo = echo_pipe(&smbd, "LabEcho");
    let port = smbd.port;
    watchdog(Duration::from_secs(60), move || {
        // Pipe names reach smbd case-insensitively (it lower-cases them).
        let pipe = options(port).open(r"\\127.0.0.1\pipe\LABECHO").unwrap();
        let mut reply = [0u8; 64];
        let r = pipe.transact(b"ping", &mut reply).unwrap();
        assert_eq!(&reply[..r.len], b"ping");
        // A message longer than the buffer comes in parts, nothing lost.
        pipe.write_msg(b"0123456789abcdef").unwrap();
        let mut small = [0u8; 6];
        let a = pipe.read_msg(&mut small).unwrap();
        assert_eq!((&small[..a.len], a.more), (&b"012345"[..], true));
        // A transact while a message waits unread: refused, as locally.
        assert_win32(pipe.transact(b"x", &mut reply), Win32Error::ERROR_PIPE_BUSY);
        let p = pipe.peek(&mut small).unwrap();
        assert_eq!((p.read, p.available, p.left_in_message), (6, 10, 4));
        let b = pipe.read_msg(&mut small).unwrap();
        assert_eq!((&small[..b.len], b.more), (&b"6789ab"[..], true));
        let c = pipe.read_msg(&mut small).unwrap();
        assert_eq!((&small[..c.len], c.more), (&b"cdef"[..], false));
        // Two messages for one: each read gets one.
        pipe.write_msg(b"two").unwrap();
        for want in [&b"first"[..], b"second"] {
            let m = pipe.read_msg(&mut reply).unwrap();
            assert_eq!(&reply[..m.len], want);
        }
        // Samba has no FSCTL_PIPE_PEEK: said so, naming the server.
        let e = pipe.peek(&mut small).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_NOT_SUPPORTED), "{e}");
        assert!(e.to_string().contains("127.0.0.1:"), "{e}");
        // Samba's proxy frames a message with a u16 length: 65,535 bytes
        // go whole; one more is refused by smbd (EMSGSIZE, which it sends
        // as STATUS_PORT_MESSAGE_TOO_LONG), and the pipe goes on.
        let big: Vec<u8> = (0..65_535u32).map(|i| (i % 251) as u8).collect();
        let mut back = vec![0u8; 70_000];
        let r = pipe.transact(&big, &mut back).unwrap();
        assert_eq!((r.len, r.more), (big.len(), false));
        assert!(back[..r.len] == big[..]);
        let too_big = vec![7u8; 65_536];
        let e = pipe.transact(&too_big, &mut back).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_PORT_MESSAGE_TOO_LONG), "{e}");
        assert!(e.to_string().contains("STATUS_PORT_MESSAGE_TOO_LONG"), "{e}");
        let r = pipe.transact(b"after", &mut reply).unwrap();
        assert_eq!(&reply[..r.len], b"after");
        drop(smbd);
    });
}

#[test]
fn many_threads_share_one_session_with_many_calls_in_flight() {
    let Some(smbd) = Smbd::start("lib-many", "") else {
        return;
    };
    let echo = echo_pipe(&smbd, "many");
    let port = smbd.port;
    let opens = Arc::clone(&echo.opens);
    watchdog(Duration::from_secs(120), move || {
        let held = options(port).open(r"\\127.0.0.1\pipe\many").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                std::thread::spawn(move || {
                    let pipe = options(port).open(r"\\127.0.0.1\pipe\many").unwrap();
                    let mut reply = [0u8; 64];
                    for i in 0..200 {
                        let msg = format!("t{t}-m{i}");
                        let r = pipe.transact(msg.as_bytes(), &mut reply).unwrap();
                        assert_eq!(&reply[..r.len], msg.as_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            opens.load(std::sync::atomic::Ordering::SeqCst),
            9,
            "one pipe instance per open"
        );
        // One connection carried them all.
        assert_eq!(smbd_connections(&smbd), 1, "one SMB connection for 9 pipes");
        drop(held);
        drop(smbd);
    });
}

/// Established TCP connections to smbd's port, seen from its side.
fn smbd_connections(smbd: &Smbd) -> usize {
    let port = format!(":{:04X}", smbd.port);
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&port) && f[3] == "01"
        })
        .count()
}

#[test]
fn refusals_name_the_win32_error_and_the_server() {
    let Some(smbd) = Smbd::start("lib-errors", "") else {
        return;
    };
    let port = smbd.port;
    watchdog(Duration::from_secs(60), move || {
        let e = options(port).open(r"\\127.0.0.1\pipe\no-such-pipe").unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_FILE_NOT_FOUND), "{e}");
        assert!(e.to_string().contains(r"\\127.0.0.1\pipe\no-such-pipe"), "{e}");
        let mut wrong = options(port);
        wrong.smb_credentials(SmbCredentials::new(USER, "not-the-password"));
        let e = wrong.open(r"\\127.0.0.1\pipe\srvsvc").unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_LOGON_FAILURE), "{e}");
        assert!(
            e.to_string().contains(USER) && !e.to_string().contains("not-the-password"),
            "{e}"
        );
        let closed = smbd::free_port();
        let e = options(closed).open(r"\\127.0.0.1\pipe\srvsvc").unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_CONNECTION_REFUSED), "{e}");
        let e = options(port).open(r"\\no-such-host.invalid\pipe\srvsvc").unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_BAD_NETPATH), "{e}");
        drop(smbd);
    });
}

#[test]
fn a_pipe_server_that_dies_mid_call_ends_the_call() {
    let Some(smbd) = Smbd::start("lib-die", "") else { return };
    let _echo = echo_pipe(&smbd, "dies");
    let port = smbd.port;
    watchdog(Duration::from_secs(60), move || {
        let pipe = options(port).open(r"\\127.0.0.1\pipe\dies").unwrap();
        let mut reply = [0u8; 64];
        let t = Instant::now();
        let e = pipe.transact(b"die", &mut reply).unwrap_err();
        assert!(
            matches!(
                code(&e),
                Some(Win32Error::ERROR_BROKEN_PIPE | Win32Error::ERROR_PIPE_NOT_CONNECTED)
            ),
            "{e}"
        );
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        // The session lives on: another pipe opens at once.
        let again = options(port).open(r"\\127.0.0.1\pipe\dies").unwrap();
        let r = again.transact(b"still here", &mut reply).unwrap();
        assert_eq!(&reply[..r.len], b"still here");
        drop(smbd);
    });
}

#[test]
fn samba_killed_or_stopped_mid_call_fails_the_call_promptly() {
    let Some(smbd) = Smbd::start("lib-kill", "") else {
        return;
    };
    let _echo = echo_pipe(&smbd, "waits");
    let port = smbd.port;
    watchdog(Duration::from_secs(60), move || {
        // Stopped (SIGSTOP): the ECHO probe gets no answer.
        let mut o = options(port);
        o.smb_timeouts(Duration::from_secs(5), Duration::from_secs(2));
        let pipe = o.open(r"\\127.0.0.1\pipe\waits").unwrap();
        let mut reply = [0u8; 64];
        signal_all(&smbd, "STOP");
        let t = Instant::now();
        let e = pipe.transact(b"anyone?", &mut reply).unwrap_err();
        signal_all(&smbd, "CONT");
        assert!(
            matches!(
                code(&e),
                Some(Win32Error::ERROR_NETNAME_DELETED | Win32Error::ERROR_SEM_TIMEOUT)
            ),
            "{e}"
        );
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
        // Killed while a READ waits on a quiet pipe: the read fails at once.
        let pipe = options(port).open(r"\\127.0.0.1\pipe\waits").unwrap();
        pipe.write_msg(b"quiet").unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            let t = Instant::now();
            (pipe.read_msg(&mut buf).map(|m| m.len), t)
        });
        std::thread::sleep(Duration::from_millis(300));
        let t_kill = Instant::now();
        signal_all(&smbd, "KILL");
        let (r, _) = reader.join().unwrap();
        let e = r.unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_NETNAME_DELETED), "{e}");
        assert!(t_kill.elapsed() < Duration::from_secs(3), "{:?}", t_kill.elapsed());
        drop(smbd);
    });
}

fn signal_all(smbd: &Smbd, sig: &str) {
    signal_dir(&smbd.dir, sig);
}

#[test]
fn mandatory_signing_required_encryption_and_3_1_1_only_servers() {
    for (tag, conf, want) in [
        ("lib-mand", "  server signing = mandatory\n", "signed"),
        ("lib-enc", "  smb encrypt = required\n", "encrypted"),
        ("lib-311", "  server min protocol = SMB3_11\n", "SMB 3.1.1"),
    ] {
        let Some(smbd) = Smbd::start(tag, conf) else { return };
        let port = smbd.port;
        watchdog(Duration::from_secs(60), move || {
            let pipe = options(port).open(r"\\127.0.0.1\pipe\srvsvc").unwrap();
            let s = pipe.remote_session().unwrap().to_string();
            assert!(s.contains(want), "{tag}: {s}");
            let mut reply = vec![0u8; 4280];
            let r = pipe.transact(&srvsvc_bind(), &mut reply).unwrap();
            assert_eq!((reply[0], reply[2], r.more), (5, 12, false), "{tag}");
            drop(smbd);
        });
    }
}

#[test]
fn anonymous_and_required_protection_on_the_client_side() {
    let Some(smbd) = Smbd::start("lib-anon", "") else {
        return;
    };
    let port = smbd.port;
    watchdog(Duration::from_secs(60), move || {
        // No user: a null session, which Samba lets open srvsvc.
        let mut anon = ClientOptions::new();
        anon.pipe_mode(PipeMode::Message).smb_port(port);
        if std::env::var_os("PIPESLOT_USER").is_none() && std::env::var_os("PIPESLOT_CREDENTIALS").is_none() {
            let pipe = anon.open(r"\\127.0.0.1\pipe\srvsvc").unwrap();
            assert!(pipe.remote_session().unwrap().to_string().contains("unsigned"));
            // ... but not when the client insists on signing.
            anon.require_signing(true);
            let e = anon.open(r"\\127.0.0.1\pipe\srvsvc").unwrap_err();
            assert_eq!(code(&e), Some(Win32Error::ERROR_ACCESS_DENIED), "{e}");
        }
        // Encryption asked by the client, on a server that only offers it.
        let mut sealed = options(port);
        sealed.require_encryption(true);
        let pipe = sealed.open(r"\\127.0.0.1\pipe\srvsvc").unwrap();
        assert!(pipe.remote_session().unwrap().to_string().contains("encrypted"));
        let mut reply = vec![0u8; 4280];
        pipe.transact(&srvsvc_bind(), &mut reply).unwrap();
        assert_eq!(reply[2], 12);
        // Offered 2.0.2 only, the client still signs.
        let mut old = options(port);
        old.smb_dialects(&[0x0202]);
        let pipe = old.open(r"\\127.0.0.1\pipe\srvsvc").unwrap();
        let s = pipe.remote_session().unwrap().to_string();
        assert!(s.contains("SMB 2.0.2") && s.contains("HmacSha256"), "{s}");
        drop(smbd);
    });
}

// ---- the same through the tokio front end ------------------------------

fn tokio_options(port: u16) -> pipeslot::tokio::ClientOptions {
    let mut o = pipeslot::tokio::ClientOptions::new();
    o.pipe_mode(PipeMode::Message)
        .smb_port(port)
        .smb_credentials(SmbCredentials::new(USER, PASSWORD));
    o
}

fn on_tokio<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn tokio_srvsvc_and_an_echo_pipe_with_async_read_write_and_cancelled_reads() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(smbd) = Smbd::start("lib-tokio", "") else {
        return;
    };
    let _echo = echo_pipe(&smbd, "tokecho");
    let port = smbd.port;
    watchdog(Duration::from_secs(60), move || {
        on_tokio(async move {
            let srvsvc = tokio_options(port).open(r"\\127.0.0.1\pipe\srvsvc").unwrap();
            let mut reply = vec![0u8; 4280];
            let r = srvsvc.transact(&srvsvc_bind(), &mut reply).await.unwrap();
            assert_eq!((reply[2], r.more), (12, false), "bind_ack");
            let r = srvsvc
                .transact(&netr_server_get_info(r"\\127.0.0.1"), &mut reply)
                .await
                .unwrap();
            assert_eq!(decode_server_info_101(&reply[..r.len]).0, 500);

            let mut pipe = tokio_options(port).open(r"\\127.0.0.1\pipe\tokecho").unwrap();
            // A read that is cancelled keeps its READ: the next read gets the message.
            let early = tokio::time::timeout(Duration::from_millis(200), pipe.read_msg(&mut reply)).await;
            assert!(early.is_err(), "nothing to read yet");
            pipe.write_msg(b"after the timeout").await.unwrap();
            let m = pipe.read_msg(&mut reply).await.unwrap();
            assert_eq!(&reply[..m.len], b"after the timeout");
            // AsyncWrite, then readable() and try_read, then AsyncRead.
            pipe.write_all(b"one").await.unwrap();
            pipe.readable().await.unwrap();
            let n = pipe.try_read(&mut reply).unwrap();
            assert_eq!(&reply[..n], b"one");
            assert_eq!(
                pipe.try_read(&mut reply).unwrap_err().kind(),
                std::io::ErrorKind::WouldBlock
            );
            pipe.write_all(b"two").await.unwrap();
            let first = pipe.read(&mut reply[..5]).await.unwrap();
            let second = pipe.read(&mut reply[5..]).await.unwrap();
            assert_eq!(&reply[..first], b"first");
            assert_eq!(&reply[5..5 + second], b"second");
            // Large messages; peek says what Samba lacks.
            let big: Vec<u8> = (0..65_000u32).map(|i| (i % 253) as u8).collect();
            let mut back = vec![0u8; 70_000];
            let r = pipe.transact(&big, &mut back).await.unwrap();
            assert!(r.len == big.len() && back[..r.len] == big[..]);
            let e = pipe.peek(&mut back).unwrap_err();
            assert_eq!(code(&e), Some(Win32Error::ERROR_NOT_SUPPORTED), "{e}");
            // The readiness-only calls say plainly they are not there.
            let e = pipe.try_write(b"x").unwrap_err();
            assert_eq!(code(&e), Some(Win32Error::ERROR_NOT_SUPPORTED), "{e}");
            // Many tasks, many pipes, one session.
            let mut tasks = Vec::new();
            for t in 0..8 {
                tasks.push(tokio::spawn(async move {
                    let p = tokio_options(port).open(r"\\127.0.0.1\pipe\tokecho").unwrap();
                    let mut buf = [0u8; 64];
                    for i in 0..100 {
                        let msg = format!("task{t}-{i}");
                        let r = p.transact(msg.as_bytes(), &mut buf).await.unwrap();
                        assert_eq!(&buf[..r.len], msg.as_bytes());
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            // The pipe's server dies mid-call.
            let e = pipe.transact(b"die", &mut reply).await.unwrap_err();
            assert_eq!(code(&e), Some(Win32Error::ERROR_BROKEN_PIPE), "{e}");
            // Samba killed while a read waits.
            let quiet = tokio_options(port).open(r"\\127.0.0.1\pipe\tokecho").unwrap();
            quiet.write_msg(b"quiet").await.unwrap();
            let dir = smbd.dir.clone();
            let reader = tokio::spawn(async move {
                let mut buf = [0u8; 8];
                quiet.read_msg(&mut buf).await.map(|m| m.len)
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            let t = Instant::now();
            signal_dir(&dir, "KILL");
            let e = reader.await.unwrap().unwrap_err();
            assert_eq!(code(&e), Some(Win32Error::ERROR_NETNAME_DELETED), "{e}");
            assert!(t.elapsed() < Duration::from_secs(3));
            drop(smbd);
        })
    });
}

fn signal_dir(dir: &std::path::Path, sig: &str) {
    let marker = format!("--configfile={}/smb.conf", dir.display());
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).split('\0').any(|a| a == marker) {
            let pid = e.file_name().to_string_lossy().into_owned();
            let _ = std::process::Command::new("kill")
                .args([&format!("-{sig}"), &pid])
                .status();
        }
    }
}

// ---- a second server: impacket (SMB 2.0.2 only) ------------------------

/// impacket's SimpleSMBServer on loopback, killed on drop.
struct Impacket {
    child: std::process::Child,
    port: u16,
}

impl Impacket {
    fn start() -> Option<Impacket> {
        let ci = std::env::var("CI").as_deref() == Ok("true");
        let python = "/usr/bin/python3";
        let has = std::process::Command::new(python)
            .args(["-c", "import impacket.smbserver"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has {
            assert!(!ci, "CI must install python3-impacket (scripts/setup.sh)");
            eprintln!("skipped: needs Debian's python3-impacket");
            return None;
        }
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../pipeslot-smb/tests/support/impacket_server.py"
        );
        // A port free a moment ago may be taken by the time impacket binds
        // it (tests bind ports in parallel): it then exits without "ready",
        // and another port is tried.
        for _ in 0..5 {
            let port = smbd::free_port();
            let mut child = std::process::Command::new(python)
                .args([script, &port.to_string(), USER, PASSWORD])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start impacket");
            let out = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                use std::io::BufRead;
                let mut line = String::new();
                let _ = std::io::BufReader::new(out).read_line(&mut line);
                let _ = tx.send(line);
            });
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.trim() == format!("ready {port}") => {
                    smbd::wait_listening(port);
                    // Listening, and it is impacket that listens (alive).
                    std::thread::sleep(Duration::from_millis(100));
                    if child.try_wait().ok().flatten().is_none() {
                        return Some(Impacket { child, port });
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("impacket did not start on any of 5 ports")
    }
}

impl Drop for Impacket {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn impacket_speaks_2_0_2_and_its_forwarded_echo_pipe_carries_bytes() {
    use std::io::{Read, Write};
    let Some(imp) = Impacket::start() else { return };
    let port = imp.port;
    watchdog(Duration::from_secs(60), move || {
        let mut o = options(port);
        o.pipe_mode(PipeMode::Byte);
        let mut pipe = o.open(r"\\127.0.0.1\pipe\echo").unwrap();
        let s = pipe.remote_session().unwrap().to_string();
        assert!(s.contains("SMB 2.0.2") && s.contains("HmacSha256"), "{s}");
        pipe.write_all(b"hello over impacket").unwrap();
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        while got.len() < 19 {
            let n = pipe.read(&mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"hello over impacket");
        // Its built-in srvsvc binds.
        let srvsvc = options(port).open(r"\\127.0.0.1\pipe\srvsvc").unwrap();
        let mut reply = vec![0u8; 4280];
        let r = srvsvc.transact(&srvsvc_bind(), &mut reply).unwrap();
        assert_eq!((reply[0], reply[2]), (5, 12), "{:x?}", &reply[..r.len]);
        // No FSCTL_PIPE_WAIT there: the wait falls back to probing.
        options(port)
            .wait(
                r"\\127.0.0.1\pipe\echo",
                pipeslot::WaitTimeout::After(Duration::from_secs(5)),
            )
            .unwrap();
        let mut wrong = options(port);
        wrong.smb_credentials(SmbCredentials::new(USER, "nope"));
        let e = wrong.open(r"\\127.0.0.1\pipe\echo").unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_LOGON_FAILURE), "{e}");
        drop(imp);
    });
}

#[test]
fn tokio_refusals_protection_and_a_stopped_server() {
    let Some(smbd) = Smbd::start("lib-tokio-errs", "  server signing = mandatory\n") else {
        return;
    };
    let Some(sealed) = Smbd::start(
        "lib-tokio-enc",
        "  smb encrypt = required\n  server min protocol = SMB3_11\n",
    ) else {
        return;
    };
    let _echo = echo_pipe(&smbd, "tokwait");
    let (port, sealed_port) = (smbd.port, sealed.port);
    watchdog(Duration::from_secs(60), move || {
        on_tokio(async move {
            let e = tokio_options(port).open(r"\\127.0.0.1\pipe\no-such-pipe").unwrap_err();
            assert_eq!(code(&e), Some(Win32Error::ERROR_FILE_NOT_FOUND), "{e}");
            let mut wrong = tokio_options(port);
            wrong.smb_credentials(SmbCredentials::new(USER, "nope"));
            let e = wrong.open(r"\\127.0.0.1\pipe\srvsvc").unwrap_err();
            assert_eq!(code(&e), Some(Win32Error::ERROR_LOGON_FAILURE), "{e}");
            // Mandatory signing, and encryption with 3.1.1 only.
            for (p, want) in [(port, "signed"), (sealed_port, "encrypted")] {
                let pipe = tokio_options(p).open(r"\\127.0.0.1\pipe\srvsvc").unwrap();
                assert!(pipe.remote_session().unwrap().to_string().contains(want));
                let mut reply = vec![0u8; 4280];
                pipe.transact(&srvsvc_bind(), &mut reply).await.unwrap();
                assert_eq!(reply[2], 12, "bind_ack");
            }
            // A stopped server: the ECHO probe gives up within the timeout.
            let mut o = tokio_options(port);
            o.smb_timeouts(Duration::from_secs(5), Duration::from_secs(2));
            let pipe = o.open(r"\\127.0.0.1\pipe\tokwait").unwrap();
            let dir = smbd.dir.clone();
            signal_dir(&dir, "STOP");
            let t = Instant::now();
            let mut reply = [0u8; 16];
            let e = pipe.transact(b"anyone?", &mut reply).await.unwrap_err();
            signal_dir(&dir, "CONT");
            assert!(
                matches!(
                    code(&e),
                    Some(Win32Error::ERROR_NETNAME_DELETED | Win32Error::ERROR_SEM_TIMEOUT)
                ),
                "{e}"
            );
            assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
            drop((smbd, sealed));
        })
    });
}

#[test]
fn tokio_against_impacket_2_0_2() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(imp) = Impacket::start() else { return };
    let port = imp.port;
    watchdog(Duration::from_secs(60), move || {
        on_tokio(async move {
            let mut o = tokio_options(port);
            o.pipe_mode(PipeMode::Byte);
            let mut pipe = o.open(r"\\127.0.0.1\pipe\echo").unwrap();
            assert!(pipe.remote_session().unwrap().to_string().contains("SMB 2.0.2"));
            pipe.write_all(b"async over impacket").await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while got.len() < 19 {
                let n = pipe.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, b"async over impacket");
            drop(imp);
        })
    });
}

#[test]
fn hosts_by_name_and_ipv6_sizes_and_a_guest_session() {
    let Some(smbd) = Smbd::start("lib-names", "  interfaces = 127.0.0.1 ::1\n  map to guest = Bad User\n") else {
        return;
    };
    let _echo = echo_pipe(&smbd, "sizes");
    let port = smbd.port;
    watchdog(Duration::from_secs(60), move || {
        let mut reply = vec![0u8; 4280];
        for name in [
            r"\\localhost\pipe\srvsvc",
            r"\\::1\pipe\srvsvc",
            r"\\0--1.ipv6-literal.net\pipe\srvsvc",
        ] {
            let pipe = options(port).open(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            pipe.transact(&srvsvc_bind(), &mut reply).unwrap();
            assert_eq!(reply[2], 12, "{name}");
        }
        // A message over what one WRITE carries is refused, never split.
        let pipe = options(port).open(r"\\127.0.0.1\pipe\sizes").unwrap();
        let huge = vec![7u8; 2 << 20];
        let e = pipe.write_msg(&huge).unwrap_err();
        assert_eq!(code(&e), Some(Win32Error::ERROR_INVALID_PARAMETER), "{e}");
        assert!(e.to_string().contains("not split"), "{e}");
        // An empty message is taken (Samba's proxy drops it); the pipe goes on.
        pipe.write_msg(b"").unwrap();
        let r = pipe.transact(b"after", &mut reply).unwrap();
        assert_eq!(&reply[..r.len], b"after");
        // A guest session (an unknown user mapped to guest): no key, so
        // nothing is signed, and srvsvc still answers.
        let mut guest = options(port);
        guest.smb_credentials(SmbCredentials::new("guest", ""));
        let pipe = guest.open(r"\\127.0.0.1\pipe\srvsvc").unwrap();
        let s = pipe.remote_session().unwrap().to_string();
        assert!(s.contains("guest, unsigned"), "{s}");
        pipe.transact(&srvsvc_bind(), &mut reply).unwrap();
        assert_eq!(reply[2], 12);
        drop(smbd);
    });
}
