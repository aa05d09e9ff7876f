//! A real peer: a private smbd on loopback answers the NEGOTIATE we build.
//! (Skips with a reason without smbd or root outside CI; fails under CI=true.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use pipeslot_smb::header::{Command as Smb2Command, Header, HeaderRepr, HEADER_LEN};
use pipeslot_smb::negotiate::{
    capabilities, cipher, dialect, hash_algorithm, security_mode, signing_algorithm, NegotiateContext,
    NegotiateRequest, NegotiateResponse,
};
use pipeslot_smb::status::NtStatus;
use pipeslot_smb::transport::{message_len, transport_header};

#[path = "support/smbd.rs"]
mod smbd;
use smbd::{Smbd, PASSWORD, USER};
#[path = "support/dcerpc.rs"]
mod dcerpc;
use dcerpc::srvsvc_bind;

fn exchange(port: u16, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send_recv(&mut s, msg)
}

/// Sends a request and returns its final response: an interim
/// STATUS_PENDING answer (an async operation, e.g. while Samba starts its
/// RPC helper) is followed by the real one.
fn send_recv(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(&transport_header(msg.len()).unwrap()).unwrap();
    s.write_all(msg).unwrap();
    loop {
        let mut th = [0u8; 4];
        s.read_exact(&mut th).unwrap();
        let mut reply = vec![0u8; message_len(th).unwrap()];
        s.read_exact(&mut reply).unwrap();
        let h = Header::new_checked(&reply[..]).unwrap();
        if h.status() == NtStatus::STATUS_PENDING && h.is_async() {
            continue;
        }
        return reply;
    }
}

/// NEGOTIATE, then SESSION_SETUP with SPNEGO(NTLMv2) as `user`/`password`:
/// the final status, the connection, the session id and its signing key
/// (3.1.1: from the session key and the preauth hash).
fn log_on(port: u16, user: &str, password: &str) -> (NtStatus, TcpStream, u64, [u8; 16]) {
    use pipeslot_smb::header::Target;
    use pipeslot_smb::ntlm;
    use pipeslot_smb::session::{SessionSetupRequest, SessionSetupResponse};
    use pipeslot_smb::signing::{self, PreauthHash};
    use pipeslot_smb::spnego;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut preauth = PreauthHash::default();
    let neg_req = our_negotiate(&[dialect::SMB_2_1, dialect::SMB_3_1_1], capabilities::ENCRYPTION);
    let neg = send_recv(&mut s, &neg_req);
    assert_eq!(NegotiateResponse::parse(&neg).unwrap().dialect, dialect::SMB_3_1_1);
    preauth.update(&neg_req);
    preauth.update(&neg);
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
    let first_req = setup(1, 0, &spnego::neg_token_init(&ntlm::negotiate_message(flags)));
    let first = send_recv(&mut s, &first_req);
    preauth.update(&first_req);
    preauth.update(&first);
    let h = Header::new_checked(&first[..]).unwrap();
    assert_eq!(h.status(), NtStatus::STATUS_MORE_PROCESSING_REQUIRED);
    let session_id = h.session_id();
    let resp = SessionSetupResponse::parse(&first).unwrap();
    let token = spnego::NegTokenResp::parse(resp.security_buffer).unwrap();
    assert_eq!(token.state, Some(spnego::NegState::AcceptIncomplete));
    let challenge = ntlm::Challenge::parse(token.response_token.expect("an NTLM challenge")).unwrap();
    assert!(challenge.timestamp().is_some(), "Samba sends MsvAvTimestamp");
    let auth = ntlm::authenticate(&challenge, user, "", "PIPESLOT", &ntlm::nt_hash(password), [0x42; 8], 0);
    let second_req = setup(2, session_id, &spnego::neg_token_resp(&auth.message));
    let second = send_recv(&mut s, &second_req);
    preauth.update(&second_req);
    let key = signing::signing_key_311(&auth.session_key, &preauth);
    let status = Header::new_checked(&second[..]).unwrap().status();
    if status == NtStatus::STATUS_SUCCESS {
        // The server signs its last answer with the key we derived on our own.
        assert!(
            signing::verify(&second, &key, signing::Algorithm::AesCmac),
            "Samba's signature checks out"
        );
    }
    (status, s, session_id, key)
}

/// A signed request in `session` on `tree`.
fn request(key: &[u8; 16], command: Smb2Command, mid: u64, session_id: u64, tree_id: u32, body: Vec<u8>) -> Vec<u8> {
    let mut h = HeaderRepr::request(command, mid, 8);
    h.session_id = session_id;
    h.target = pipeslot_smb::header::Target::Sync {
        process_id: 0xfeff,
        tree_id,
    };
    let mut hdr = [0u8; HEADER_LEN];
    h.emit(&mut hdr);
    let mut msg = [hdr.to_vec(), body].concat();
    pipeslot_smb::signing::sign(&mut msg, key, pipeslot_smb::signing::Algorithm::AesCmac);
    msg
}

#[test]
fn on_ipc_we_open_srvsvc_and_a_dce_rpc_bind_gets_its_bind_ack() {
    use pipeslot_smb::create::{access, close_body, create_pipe_body, parse_create_response};
    use pipeslot_smb::ioctl::{fsctl, fsctl_body, parse_ioctl_output};
    use pipeslot_smb::tree::{tree_connect_body, TreeConnectResponse, SHARE_TYPE_PIPE};
    let Some(smbd) = Smbd::start("srvsvc", "") else { return };
    let (st, mut s, sid, key) = log_on(smbd.port, USER, PASSWORD);
    assert_eq!(st, NtStatus::STATUS_SUCCESS);
    let tc = send_recv(
        &mut s,
        &request(
            &key,
            Smb2Command::TREE_CONNECT,
            3,
            sid,
            0,
            tree_connect_body(r"\\127.0.0.1\IPC$"),
        ),
    );
    let h = Header::new_checked(&tc[..]).unwrap();
    assert_eq!(h.status(), NtStatus::STATUS_SUCCESS);
    let tree = h.tree_id().unwrap();
    assert_eq!(TreeConnectResponse::parse(&tc).unwrap().share_type, SHARE_TYPE_PIPE);
    // A pipe nobody serves: not found, as a local open says it.
    let missing = send_recv(
        &mut s,
        &request(
            &key,
            Smb2Command::CREATE,
            4,
            sid,
            tree,
            create_pipe_body("no-such-pipe", access::FILE_READ_DATA),
        ),
    );
    let st = Header::new_checked(&missing[..]).unwrap().status();
    assert_eq!(st.win32(), pipeslot_proto::Win32Error::ERROR_FILE_NOT_FOUND, "{st}");
    let rw = access::FILE_READ_DATA | access::FILE_WRITE_DATA | access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE;
    let cr = send_recv(
        &mut s,
        &request(&key, Smb2Command::CREATE, 5, sid, tree, create_pipe_body("srvsvc", rw)),
    );
    assert_eq!(Header::new_checked(&cr[..]).unwrap().status(), NtStatus::STATUS_SUCCESS);
    let file = parse_create_response(&cr).unwrap();
    let io = send_recv(
        &mut s,
        &request(
            &key,
            Smb2Command::IOCTL,
            6,
            sid,
            tree,
            fsctl_body(fsctl::PIPE_TRANSCEIVE, file, &srvsvc_bind(), 4280),
        ),
    );
    assert_eq!(Header::new_checked(&io[..]).unwrap().status(), NtStatus::STATUS_SUCCESS);
    let ack = parse_ioctl_output(&io).unwrap();
    assert_eq!((ack[0], ack[2]), (5, 12), "a DCE/RPC v5 bind_ack");
    assert_eq!(
        u32::from_le_bytes([ack[12], ack[13], ack[14], ack[15]]),
        1,
        "our call id"
    );
    // The same bind again, as a WRITE (one message) and a READ of the answer.
    let wr = send_recv(
        &mut s,
        &request(
            &key,
            Smb2Command::WRITE,
            7,
            sid,
            tree,
            pipeslot_smb::io::write_body(file, &srvsvc_bind()),
        ),
    );
    assert_eq!(pipeslot_smb::io::parse_write_response(&wr).unwrap(), 72);
    let rd = send_recv(
        &mut s,
        &request(
            &key,
            Smb2Command::READ,
            8,
            sid,
            tree,
            pipeslot_smb::io::read_body(file, 4280),
        ),
    );
    assert_eq!(Header::new_checked(&rd[..]).unwrap().status(), NtStatus::STATUS_SUCCESS);
    let got = pipeslot_smb::io::ReadResponse::parse(&rd).unwrap();
    // The pipe is bound already: the RPC server refuses a second bind
    // (bind_nak), whole, in one message.
    assert_eq!(
        (got.data[0], got.data[2], got.remaining),
        (5, 13, 0),
        "a whole bind_nak"
    );
    assert_eq!(
        u16::from_le_bytes([got.data[8], got.data[9]]) as usize,
        got.data.len(),
        "frag_length"
    );
    let cl = send_recv(
        &mut s,
        &request(&key, Smb2Command::CLOSE, 9, sid, tree, close_body(file)),
    );
    assert_eq!(Header::new_checked(&cl[..]).unwrap().status(), NtStatus::STATUS_SUCCESS);
}

#[test]
fn samba_accepts_our_ntlmv2_log_on_and_refuses_a_wrong_password() {
    let Some(smbd) = Smbd::start("ntlm", "") else { return };
    assert_eq!(log_on(smbd.port, USER, PASSWORD).0, NtStatus::STATUS_SUCCESS);
    let wrong = log_on(smbd.port, USER, "not-the-password").0;
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

/// The client state machine over a plain socket: handshake, then one
/// request at a time (the library's driver does the same with many).
#[derive(Debug)]
struct Driven {
    s: TcpStream,
    conn: pipeslot_smb::client::Connection,
}

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut th = [0u8; 4];
    s.read_exact(&mut th).unwrap();
    let mut msg = vec![0u8; message_len(th).unwrap()];
    s.read_exact(&mut msg).unwrap();
    msg
}

fn config(user: &str, password: &str, dialects: &[u16], encrypt: bool) -> pipeslot_smb::client::ClientConfig {
    use pipeslot_smb::client::{Auth, ClientConfig, Entropy};
    ClientConfig {
        auth: Auth::Ntlm {
            user: user.into(),
            domain: String::new(),
            nt_hash: pipeslot_smb::ntlm::nt_hash(password),
        },
        dialects: dialects.to_vec(),
        require_signing: false,
        require_encryption: encrypt,
        workstation: "PIPESLOT".into(),
        entropy: Entropy {
            client_guid: *b"pipeslot-test-02",
            salt: [0x33; 32],
            client_challenge: [0x44; 8],
            nonce_prefix: [0x55; 4],
        },
        now: 0,
    }
}

fn drive(port: u16, cfg: pipeslot_smb::client::ClientConfig) -> Result<Driven, pipeslot_smb::client::ClientError> {
    use pipeslot_smb::client::{Handshake, Step};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut hs, first) = Handshake::start(cfg);
    s.write_all(&first).unwrap();
    loop {
        let msg = read_frame(&mut s);
        match hs.receive(&msg)? {
            Step::Send(f) => s.write_all(&f).unwrap(),
            Step::Wait => {}
            Step::Ready => break,
        }
    }
    Ok(Driven { s, conn: hs.finish() })
}

impl Driven {
    fn call(&mut self, command: Smb2Command, tree: u32, body: &[u8], receive: usize) -> pipeslot_smb::client::Response {
        let out = self.conn.request(command, tree, body, receive).unwrap();
        self.s.write_all(&out.frame).unwrap();
        loop {
            let frame = read_frame(&mut self.s);
            for r in self.conn.receive(&frame).unwrap() {
                assert_eq!(r.message_id, out.message_id);
                if !r.interim {
                    return r;
                }
            }
        }
    }

    /// IPC$, srvsvc, a DCE/RPC bind by TRANSCEIVE: the bind_ack's type.
    fn bind_srvsvc(&mut self) -> u8 {
        use pipeslot_smb::create::{access, create_pipe_body, parse_create_response};
        use pipeslot_smb::ioctl::{fsctl, fsctl_body, parse_ioctl_output};
        let tc = self.call(
            Smb2Command::TREE_CONNECT,
            0,
            &pipeslot_smb::tree::tree_connect_body(r"\\127.0.0.1\IPC$"),
            0,
        );
        assert_eq!(tc.status, NtStatus::STATUS_SUCCESS);
        let tree = Header::new_checked(&tc.msg[..]).unwrap().tree_id().unwrap();
        if matches!(self.conn.info.dialect, dialect::SMB_3_0 | dialect::SMB_3_0_2) {
            let v = self.call(
                Smb2Command::IOCTL,
                tree,
                &fsctl_body(
                    fsctl::VALIDATE_NEGOTIATE_INFO,
                    pipeslot_smb::create::FileId([0xff; 16]),
                    &self.conn.validate_negotiate_input(),
                    24,
                ),
                24,
            );
            assert_eq!(v.status, NtStatus::STATUS_SUCCESS);
            self.conn
                .check_validate_negotiate(parse_ioctl_output(&v.msg).unwrap())
                .unwrap();
        }
        let rw = access::FILE_READ_DATA | access::FILE_WRITE_DATA | access::SYNCHRONIZE;
        let cr = self.call(Smb2Command::CREATE, tree, &create_pipe_body("srvsvc", rw), 0);
        assert_eq!(cr.status, NtStatus::STATUS_SUCCESS);
        let file = parse_create_response(&cr.msg).unwrap();
        let io = self.call(
            Smb2Command::IOCTL,
            tree,
            &fsctl_body(fsctl::PIPE_TRANSCEIVE, file, &srvsvc_bind(), 4280),
            4280,
        );
        assert_eq!(io.status, NtStatus::STATUS_SUCCESS);
        parse_ioctl_output(&io.msg).unwrap()[2]
    }
}

#[test]
fn the_client_state_machine_signs_every_dialect_and_binds_srvsvc() {
    let Some(smbd) = Smbd::start("machine", "") else { return };
    for (d, alg) in [
        (dialect::SMB_2_0_2, pipeslot_smb::signing::Algorithm::HmacSha256),
        (dialect::SMB_2_1, pipeslot_smb::signing::Algorithm::HmacSha256),
        (dialect::SMB_3_0, pipeslot_smb::signing::Algorithm::AesCmac),
        (dialect::SMB_3_0_2, pipeslot_smb::signing::Algorithm::AesCmac),
        (dialect::SMB_3_1_1, pipeslot_smb::signing::Algorithm::AesGmac),
    ] {
        let mut c = drive(smbd.port, config(USER, PASSWORD, &[d], false)).unwrap();
        assert_eq!((c.conn.info.dialect, c.conn.info.signing), (d, Some(alg)), "{d:#x}");
        assert_eq!(c.bind_srvsvc(), 12, "a bind_ack on {d:#x}");
        assert!(c.conn.credits() > 1, "the server grants more than one credit");
    }
    let e = drive(
        smbd.port,
        config(USER, "wrong", &pipeslot_smb::client::ALL_DIALECTS, false),
    )
    .unwrap_err();
    assert_eq!(
        e,
        pipeslot_smb::client::ClientError::Status(NtStatus::STATUS_LOGON_FAILURE)
    );
}

#[test]
fn the_client_state_machine_seals_when_asked_and_when_samba_requires_it() {
    use pipeslot_smb::crypt::Cipher;
    let Some(smbd) = Smbd::start("sealed", "  smb encrypt = required\n") else {
        return;
    };
    for (d, cipher) in [
        (dialect::SMB_3_1_1, Cipher::Aes128Gcm),
        (dialect::SMB_3_0_2, Cipher::Aes128Ccm),
    ] {
        for asked in [false, true] {
            let mut c = drive(smbd.port, config(USER, PASSWORD, &[d], asked)).unwrap();
            assert_eq!(c.conn.info.encryption, Some(cipher), "{d:#x}");
            assert_eq!(c.bind_srvsvc(), 12);
        }
    }
}
