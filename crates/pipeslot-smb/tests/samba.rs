//! A real peer: a private smbd on loopback answers the NEGOTIATE we build.
//! (Skips with a reason without smbd or root outside CI; fails under CI=true.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipeslot_smb::header::{Command as Smb2Command, Header, HeaderRepr, HEADER_LEN};
use pipeslot_smb::negotiate::{
    capabilities, cipher, dialect, hash_algorithm, security_mode, signing_algorithm, NegotiateContext,
    NegotiateRequest, NegotiateResponse,
};
use pipeslot_smb::status::NtStatus;
use pipeslot_smb::transport::{message_len, transport_header};

/// smbd in the foreground with everything under one folder; killed on drop.
struct Smbd {
    child: Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Smbd {
    fn start(tag: &str, extra: &str) -> Option<Smbd> {
        let ci = std::env::var("CI").as_deref() == Ok("true");
        let smbd = ["/usr/sbin/smbd", "/usr/bin/smbd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let root = rustix_free_euid() == 0;
        if smbd.is_none() || !root {
            assert!(!ci, "CI must run this as root with samba installed (scripts/setup.sh)");
            eprintln!("skipped: needs root and smbd (apt-get install samba)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("pipeslot-smbd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["lock", "state", "cache", "private", "run", "log", "ncalrpc"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let d = dir.display();
        let conf = format!(
            "[global]\n  server role = standalone server\n  smb ports = {port}\n  interfaces = 127.0.0.1\n  \
             bind interfaces only = yes\n  lock directory = {d}/lock\n  state directory = {d}/state\n  \
             cache directory = {d}/cache\n  private dir = {d}/private\n  pid directory = {d}/run\n  \
             ncalrpc dir = {d}/ncalrpc\n  log file = {d}/log/smbd.log\n  passdb backend = tdbsam:{d}/private/passdb.tdb\n  \
             load printers = no\n  disable spoolss = yes\n  rpc start on demand helpers = no\n  \
             server min protocol = SMB2_02\n{extra}"
        );
        std::fs::write(dir.join("smb.conf"), conf).unwrap();
        add_user(&dir.join("smb.conf"));
        let child = Command::new(smbd.unwrap())
            .args(["--foreground", "--no-process-group"])
            .arg(format!("--configfile={d}/smb.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smbd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "smbd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Smbd { child, dir, port })
    }
}

impl Drop for Smbd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The test account: a unix user of that name (Samba needs one) and its
/// password in this instance's own passdb.
const USER: &str = "pipeslot-smbtest";
const PASSWORD: &str = "pipeslot-pass-1";

fn add_user(conf: &std::path::Path) {
    let exists = Command::new("id")
        .arg(USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        let st = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .status()
            .expect("useradd");
        assert!(st.success(), "useradd {USER}");
    }
    let mut p = Command::new("smbpasswd")
        .arg("-c")
        .arg(conf)
        .args(["-s", "-a", USER])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("smbpasswd");
    p.stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(p.wait().unwrap().success(), "smbpasswd -a {USER}");
}

/// The effective uid, from /proc (this crate has no syscall dependency).
fn rustix_free_euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX)
}

fn exchange(port: u16, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send_recv(&mut s, msg)
}

fn send_recv(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(&transport_header(msg.len()).unwrap()).unwrap();
    s.write_all(msg).unwrap();
    let mut th = [0u8; 4];
    s.read_exact(&mut th).unwrap();
    let mut reply = vec![0u8; message_len(th).unwrap()];
    s.read_exact(&mut reply).unwrap();
    reply
}

/// NEGOTIATE, then SESSION_SETUP with SPNEGO(NTLMv2) as `user`/`password`:
/// the final status.
fn log_on(port: u16, user: &str, password: &str) -> NtStatus {
    use pipeslot_smb::header::Target;
    use pipeslot_smb::ntlm;
    use pipeslot_smb::session::{SessionSetupRequest, SessionSetupResponse};
    use pipeslot_smb::spnego;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let neg = send_recv(
        &mut s,
        &our_negotiate(&[dialect::SMB_2_1, dialect::SMB_3_1_1], capabilities::ENCRYPTION),
    );
    assert_eq!(NegotiateResponse::parse(&neg).unwrap().dialect, dialect::SMB_3_1_1);
    let setup = |mid: u64, session_id: u64, token: &[u8]| {
        let mut h = HeaderRepr::request(Smb2Command::SESSION_SETUP, mid, 8);
        h.session_id = session_id;
        h.target = Target::Sync {
            process_id: 0,
            tree_id: 0,
        };
        let mut hdr = [0u8; HEADER_LEN];
        h.emit(&mut hdr);
        let body = SessionSetupRequest {
            security_mode: security_mode::SIGNING_ENABLED as u8,
            capabilities: 0,
            previous_session_id: 0,
            security_buffer: token,
        }
        .emit_body();
        [hdr.to_vec(), body].concat()
    };
    let flags = ntlm::flags::UNICODE
        | ntlm::flags::REQUEST_TARGET
        | ntlm::flags::NTLM
        | ntlm::flags::ALWAYS_SIGN
        | ntlm::flags::EXTENDED_SESSIONSECURITY
        | ntlm::flags::TARGET_INFO
        | ntlm::flags::N128
        | ntlm::flags::N56;
    let first = send_recv(
        &mut s,
        &setup(1, 0, &spnego::neg_token_init(&ntlm::negotiate_message(flags))),
    );
    let h = Header::new_checked(&first[..]).unwrap();
    assert_eq!(h.status(), NtStatus::STATUS_MORE_PROCESSING_REQUIRED);
    let session_id = h.session_id();
    let resp = SessionSetupResponse::parse(&first).unwrap();
    let token = spnego::NegTokenResp::parse(resp.security_buffer).unwrap();
    assert_eq!(token.state, Some(spnego::NegState::AcceptIncomplete));
    let challenge = ntlm::Challenge::parse(token.response_token.expect("an NTLM challenge")).unwrap();
    assert!(challenge.timestamp().is_some(), "Samba sends MsvAvTimestamp");
    let auth = ntlm::authenticate(&challenge, user, "", "PIPESLOT", &ntlm::nt_hash(password), [0x42; 8], 0);
    let second = send_recv(&mut s, &setup(2, session_id, &spnego::neg_token_resp(&auth.message)));
    Header::new_checked(&second[..]).unwrap().status()
}

#[test]
fn samba_accepts_our_ntlmv2_log_on_and_refuses_a_wrong_password() {
    let Some(smbd) = Smbd::start("ntlm", "") else { return };
    assert_eq!(log_on(smbd.port, USER, PASSWORD), NtStatus::STATUS_SUCCESS);
    let wrong = log_on(smbd.port, USER, "not-the-password");
    assert_eq!(wrong, NtStatus::STATUS_LOGON_FAILURE);
    assert_eq!(wrong.win32(), pipeslot_proto::Win32Error::ERROR_LOGON_FAILURE);
}

fn our_negotiate(dialects: &[u16], capabilities: u32) -> Vec<u8> {
    let req = NegotiateRequest {
        dialects: dialects.to_vec(),
        security_mode: security_mode::SIGNING_ENABLED,
        capabilities,
        client_guid: *b"pipeslot-test-01",
        contexts: vec![
            NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![hash_algorithm::SHA_512],
                salt: vec![0x5a; 32],
            },
            NegotiateContext::Encryption {
                ciphers: vec![cipher::AES_128_GCM, cipher::AES_128_CCM],
            },
            NegotiateContext::Signing {
                algorithms: vec![signing_algorithm::AES_CMAC, signing_algorithm::HMAC_SHA256],
            },
        ],
    };
    let mut hdr = [0u8; HEADER_LEN];
    HeaderRepr::request(Smb2Command::NEGOTIATE, 0, 1).emit(&mut hdr);
    let mut msg = hdr.to_vec();
    msg.extend_from_slice(&req.emit_body());
    msg
}

#[test]
fn samba_takes_our_negotiate_and_picks_3_1_1_with_our_contexts() {
    let Some(smbd) = Smbd::start("neg", "") else { return };
    let all = [
        dialect::SMB_2_0_2,
        dialect::SMB_2_1,
        dialect::SMB_3_0,
        dialect::SMB_3_0_2,
        dialect::SMB_3_1_1,
    ];
    let reply = exchange(smbd.port, &our_negotiate(&all, capabilities::ENCRYPTION));
    let h = Header::new_checked(&reply[..]).unwrap();
    assert!(h.is_response());
    assert_eq!(
        (h.command(), h.status(), h.message_id()),
        (Smb2Command::NEGOTIATE, NtStatus::STATUS_SUCCESS, 0)
    );
    let r = NegotiateResponse::parse(&reply).unwrap();
    assert_eq!(r.dialect, dialect::SMB_3_1_1);
    assert!(
        !r.security_buffer.is_empty(),
        "an SPNEGO token to start SESSION_SETUP with"
    );
    assert!(r.max_read_size >= 65536 && r.max_write_size >= 65536);
    // Samba chose from what we offered.
    for c in &r.contexts {
        match c {
            NegotiateContext::PreauthIntegrity { hash_algorithms, salt } => {
                assert_eq!(
                    (hash_algorithms.as_slice(), salt.len()),
                    (&[hash_algorithm::SHA_512][..], 32)
                )
            }
            NegotiateContext::Encryption { ciphers } => assert_eq!(ciphers, &[cipher::AES_128_GCM]),
            NegotiateContext::Signing { algorithms } => assert_eq!(algorithms, &[signing_algorithm::AES_CMAC]),
            other => panic!("unexpected context {other:?}"),
        }
    }
    assert_eq!(r.contexts.len(), 3, "{:?}", r.contexts);
    // Without SMB2_GLOBAL_CAP_ENCRYPTION Samba 4.17 leaves the cipher out
    // (seen here; a client that wants encryption must set the bit).
    let reply = exchange(smbd.port, &our_negotiate(&all, 0));
    let r = NegotiateResponse::parse(&reply).unwrap();
    assert!(
        r.contexts
            .iter()
            .all(|c| !matches!(c, NegotiateContext::Encryption { .. })),
        "{:?}",
        r.contexts
    );
}

#[test]
fn samba_limited_to_smb_3_0_2_answers_without_contexts() {
    let Some(smbd) = Smbd::start("neg302", "  server max protocol = SMB3_02\n") else {
        return;
    };
    let reply = exchange(
        smbd.port,
        &our_negotiate(&[dialect::SMB_2_1, dialect::SMB_3_0_2, dialect::SMB_3_1_1], 0),
    );
    let r = NegotiateResponse::parse(&reply).unwrap();
    assert_eq!(r.dialect, dialect::SMB_3_0_2);
    assert!(r.contexts.is_empty());
}
