//! The codecs against traffic captured between smbclient, impacket and
//! Samba (tests/vectors/README.md says how), and tshark as an independent
//! decoder of what we build.

use pipeslot_smb::header::{Command, Header, HeaderRepr, HEADER_LEN};
use pipeslot_smb::negotiate::{
    capabilities, cipher, dialect, hash_algorithm, security_mode, signing_algorithm, NegotiateContext,
    NegotiateRequest, NegotiateResponse,
};
use pipeslot_smb::status::NtStatus;
use pipeslot_smb::transport::{next_message, transport_header};
use pipeslot_smb::DecodeError;

fn vector(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let hex: String = text.split_whitespace().collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The one SMB message in a captured TCP payload.
fn message(name: &str) -> Vec<u8> {
    let payload = vector(name);
    let (msg, used) = next_message(&payload, 1 << 20).unwrap().expect("a whole message");
    assert_eq!(used, payload.len(), "{name}: one message per capture");
    msg.to_vec()
}

#[test]
fn smbclient_negotiate_request() {
    let msg = message("smbclient_negotiate_request");
    let h = Header::new_checked(&msg[..]).unwrap();
    assert_eq!(
        (h.command(), h.message_id(), h.credits(), h.is_response()),
        (Command::NEGOTIATE, 0, 31, false)
    );
    let r = NegotiateRequest::parse(&msg).unwrap();
    assert_eq!(
        r.dialects,
        [
            dialect::SMB_2_0_2,
            dialect::SMB_2_1,
            dialect::SMB_3_0,
            dialect::SMB_3_0_2,
            dialect::SMB_3_1_1
        ]
    );
    assert_eq!(r.security_mode, security_mode::SIGNING_ENABLED);
    assert_eq!(r.capabilities, 0x7f);
    assert_eq!(
        r.client_guid[..4],
        [0x19, 0x3b, 0xa3, 0xa3],
        "a3a33b19-… in GUID byte order"
    );
    let [NegotiateContext::PreauthIntegrity { hash_algorithms, salt }, NegotiateContext::Encryption { ciphers }, NegotiateContext::Signing { algorithms }, NegotiateContext::NetName(netname)] =
        &r.contexts[..]
    else {
        panic!("{:?}", r.contexts)
    };
    assert_eq!(
        (hash_algorithms.as_slice(), salt.len()),
        (&[hash_algorithm::SHA_512][..], 32)
    );
    assert_eq!(salt[..4], [0x8c, 0x37, 0x1f, 0xa3]);
    assert_eq!(
        ciphers,
        &[
            cipher::AES_128_GCM,
            cipher::AES_128_CCM,
            cipher::AES_256_GCM,
            cipher::AES_256_CCM
        ]
    );
    assert_eq!(
        algorithms,
        &[
            signing_algorithm::AES_GMAC,
            signing_algorithm::AES_CMAC,
            signing_algorithm::HMAC_SHA256
        ]
    );
    assert_eq!(netname, "127.0.0.1");
    // Our builder emits smbclient's body byte for byte.
    assert_eq!(r.emit_body(), &msg[HEADER_LEN..]);
    let mut hdr = [0u8; HEADER_LEN];
    HeaderRepr::parse(&h).emit(&mut hdr);
    assert_eq!(hdr, msg[..HEADER_LEN]);
}

#[test]
fn samba_negotiate_response_311() {
    let msg = message("samba_negotiate_response_311");
    let h = Header::new_checked(&msg[..]).unwrap();
    assert!(h.is_response());
    assert_eq!(h.status(), NtStatus::STATUS_SUCCESS);
    let r = NegotiateResponse::parse(&msg).unwrap();
    assert_eq!(
        (r.dialect, r.security_mode),
        (dialect::SMB_3_1_1, security_mode::SIGNING_ENABLED)
    );
    assert_eq!(
        r.capabilities,
        capabilities::LEASING | capabilities::LARGE_MTU | capabilities::MULTI_CHANNEL
    );
    assert_eq!(
        (r.max_transact_size, r.max_read_size, r.max_write_size),
        (8 << 20, 8 << 20, 8 << 20)
    );
    assert_eq!(r.server_guid[..4], [0x70, 0x69, 0x70, 0x65], "65706970-…");
    assert_eq!(r.server_start_time, 0);
    assert_eq!(r.security_buffer.len(), 74);
    assert_eq!(
        r.security_buffer[..2],
        [0x60, 0x48],
        "a DER [APPLICATION 0] SPNEGO token"
    );
    assert_eq!(
        r.contexts[1..],
        [
            NegotiateContext::Encryption {
                ciphers: vec![cipher::AES_128_GCM]
            },
            NegotiateContext::Signing {
                algorithms: vec![signing_algorithm::AES_GMAC]
            },
        ]
    );
    assert!(matches!(&r.contexts[0], NegotiateContext::PreauthIntegrity { salt, .. } if salt.len() == 32));
    assert_eq!(
        r.emit_body(),
        &msg[HEADER_LEN..],
        "the gateway's answer can be Samba's, byte for byte"
    );
}

#[test]
fn impacket_and_samba_negotiate_smb_3_0_without_contexts() {
    let req = NegotiateRequest::parse(&message("impacket_negotiate_request_30")).unwrap();
    assert_eq!(req.dialects, [dialect::SMB_2_0_2, dialect::SMB_2_1, dialect::SMB_3_0]);
    assert_eq!(req.capabilities, capabilities::ENCRYPTION);
    assert!(req.contexts.is_empty());
    assert_eq!(req.emit_body(), &message("impacket_negotiate_request_30")[HEADER_LEN..]);
    let msg = message("samba_negotiate_response_30");
    let resp = NegotiateResponse::parse(&msg).unwrap();
    assert_eq!(resp.dialect, dialect::SMB_3_0);
    assert_eq!(
        resp.capabilities,
        capabilities::LEASING | capabilities::LARGE_MTU | capabilities::ENCRYPTION
    );
    assert!(resp.contexts.is_empty());
    assert_eq!(resp.security_buffer.len(), 74);
    assert_eq!(resp.emit_body(), &msg[HEADER_LEN..]);
}

#[test]
fn other_messages_are_told_apart_not_misread() {
    let more = message("samba_session_setup_more_processing");
    let h = Header::new_checked(&more[..]).unwrap();
    assert_eq!(h.command(), Command::SESSION_SETUP);
    assert_eq!(h.status(), NtStatus::STATUS_MORE_PROCESSING_REQUIRED);
    assert!(matches!(
        NegotiateResponse::parse(&more),
        Err(DecodeError::Malformed(_))
    ));
    let smb1 = message("impacket_smb1_multiprotocol_negotiate");
    assert!(matches!(
        Header::new_checked(&smb1[..]),
        Err(DecodeError::Unsupported(_))
    ));
}

#[test]
fn samba_s_ntlm_challenge_inside_spnego_inside_session_setup() {
    use pipeslot_smb::ntlm::Challenge;
    use pipeslot_smb::session::SessionSetupResponse;
    use pipeslot_smb::spnego::{NegState, NegTokenResp, NTLMSSP_OID};
    let msg = message("samba_session_setup_more_processing");
    let r = SessionSetupResponse::parse(&msg).unwrap();
    assert_eq!(r.session_flags, 0);
    let t = NegTokenResp::parse(r.security_buffer).unwrap();
    assert_eq!(t.state, Some(NegState::AcceptIncomplete));
    assert_eq!(t.supported_mech, Some(NTLMSSP_OID));
    let c = Challenge::parse(t.response_token.unwrap()).unwrap();
    assert_eq!(
        c.target_name,
        "PIPELAB".encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>()
    );
    assert_eq!(c.server_challenge, [0x42, 0x15, 0xbe, 0x45, 0x91, 0xc2, 0x04, 0xcd]);
    assert!(c.timestamp().is_some(), "MsvAvTimestamp");
}

/// Deterministic "random" bytes, so a failure replays.
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *seed >> 33
}

#[test]
fn no_cut_or_flipped_capture_panics_a_parser() {
    let mut seed = 7;
    for name in [
        "smbclient_negotiate_request",
        "samba_negotiate_response_311",
        "impacket_negotiate_request_30",
        "samba_negotiate_response_30",
    ] {
        let msg = message(name);
        for cut in 0..msg.len() {
            let _ = NegotiateRequest::parse(&msg[..cut]);
            let _ = NegotiateResponse::parse(&msg[..cut]);
        }
        for _ in 0..2000 {
            let mut m = msg.clone();
            for _ in 0..1 + lcg(&mut seed) % 4 {
                let at = (lcg(&mut seed) as usize) % m.len();
                m[at] = lcg(&mut seed) as u8;
            }
            let _ = NegotiateRequest::parse(&m);
            let _ = NegotiateResponse::parse(&m);
        }
    }
}

/// tshark's fields for one TCP payload to port 445, or `None` without tshark
/// (a skip outside CI, a failure under CI=true).
fn tshark_fields(payload: &[u8], fields: &[&str]) -> Option<Vec<String>> {
    let have = std::process::Command::new("tshark").arg("-v").output().is_ok()
        && std::process::Command::new("text2pcap").arg("-h").output().is_ok();
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have tshark (scripts/setup.sh)"
        );
        eprintln!("skipped: tshark/text2pcap not installed");
        return None;
    }
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pipeslot-smb-tshark-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hex: Vec<String> = payload.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join("d.txt"), format!("000000 {}\n", hex.join(" "))).unwrap();
    let ok = std::process::Command::new("text2pcap")
        .args(["-q", "-T", "50000,445", "-4", "127.0.0.1,127.0.0.1"])
        .arg(dir.join("d.txt"))
        .arg(dir.join("d.pcap"))
        .status()
        .unwrap();
    assert!(ok.success());
    let mut cmd = std::process::Command::new("tshark");
    cmd.arg("-r")
        .arg(dir.join("d.pcap"))
        .args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Some(line.split('|').map(str::to_owned).collect())
}

#[test]
fn tshark_reads_the_negotiate_we_build() {
    let req = NegotiateRequest {
        dialects: vec![dialect::SMB_2_1, dialect::SMB_3_0_2, dialect::SMB_3_1_1],
        security_mode: security_mode::SIGNING_REQUIRED | security_mode::SIGNING_ENABLED,
        capabilities: capabilities::LARGE_MTU | capabilities::ENCRYPTION,
        client_guid: *b"pipeslot-client!",
        contexts: vec![
            NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![hash_algorithm::SHA_512],
                salt: vec![0xab; 32],
            },
            NegotiateContext::Encryption {
                ciphers: vec![cipher::AES_256_GCM, cipher::AES_128_GCM],
            },
            NegotiateContext::Signing {
                algorithms: vec![signing_algorithm::AES_CMAC],
            },
            NegotiateContext::NetName("server.example".into()),
        ],
    };
    let mut msg = vec![0u8; HEADER_LEN];
    let mut hdr = [0u8; HEADER_LEN];
    HeaderRepr::request(Command::NEGOTIATE, 0, 1).emit(&mut hdr);
    msg.copy_from_slice(&hdr);
    msg.extend_from_slice(&req.emit_body());
    assert_eq!(NegotiateRequest::parse(&msg).unwrap(), req, "round trip");
    let mut payload = transport_header(msg.len()).unwrap().to_vec();
    payload.extend_from_slice(&msg);
    let Some(f) = tshark_fields(
        &payload,
        &[
            "smb2.cmd",
            "smb2.dialect",
            "smb2.negotiate_context.type",
            "smb2.negotiate_context.hash_algorithm",
            "smb2.negotiate_context.cipher_id",
            "smb2.negotiate_context.signing_id",
            "smb2.negotiate_context.netname",
            "smb2.sec_mode.sign_required",
        ],
    ) else {
        return;
    };
    assert_eq!(f[0], "0", "NEGOTIATE: {f:?}");
    assert_eq!(f[1], "0x0210,0x0302,0x0311", "{f:?}");
    assert_eq!(f[2], "0x0001,0x0002,0x0008,0x0005", "{f:?}");
    assert_eq!(f[3], "0x0001", "{f:?}");
    assert_eq!(f[4], "0x0004,0x0002", "{f:?}");
    assert_eq!(f[5], "0x0001", "{f:?}");
    assert_eq!(f[6], "server.example", "{f:?}");
    assert_eq!(f[7], "1", "signing required: {f:?}");
}

// ---- a pipe's life on IPC$, as rpcclient (3.1.1) and impacket (2.1) did it

/// The body of a captured message (after its 64-byte header).
fn body(name: &str) -> Vec<u8> {
    message(name)[HEADER_LEN..].to_vec()
}

#[test]
fn rpcclient_s_tree_connect_create_and_transceive_against_our_codecs() {
    use pipeslot_smb::create::{access, create_pipe_body, parse_create_response};
    use pipeslot_smb::ioctl::{fsctl, fsctl_body, parse_ioctl_output};
    use pipeslot_smb::tree::{tree_connect_body, TreeConnectResponse, SHARE_TYPE_PIPE};
    // TREE_CONNECT \\127.0.0.1\IPC$: our body is rpcclient's.
    assert_eq!(
        body("rpcclient_tree_connect_request"),
        tree_connect_body(r"\\127.0.0.1\IPC$")
    );
    let tc = message("samba_tree_connect_response");
    assert_eq!(TreeConnectResponse::parse(&tc).unwrap().share_type, SHARE_TYPE_PIPE);
    let tree = Header::new_checked(&tc[..]).unwrap().tree_id().unwrap();
    // CREATE srvsvc: the same name field; rpcclient asks for more access.
    let req = body("rpcclient_create_srvsvc_request");
    let ours = create_pipe_body("srvsvc", access::FILE_READ_DATA);
    assert_eq!(&req[..2], &ours[..2], "StructureSize 57");
    assert_eq!(
        &req[56..],
        &ours[56..],
        "the name, UTF-16LE, right after the fixed part"
    );
    let file = parse_create_response(&message("samba_create_srvsvc_response")).unwrap();
    // The next request uses the FileId we read, on the same tree.
    let bind = message("rpcclient_ioctl_transceive_bind");
    let h = Header::new_checked(&bind[..]).unwrap();
    assert_eq!((h.command(), h.tree_id()), (Command::IOCTL, Some(tree)));
    let b = &bind[HEADER_LEN..];
    assert_eq!(&b[8..24], &file.0, "FileId");
    let input_len = u32::from_le_bytes([b[28], b[29], b[30], b[31]]) as usize;
    let max_out = u32::from_le_bytes([b[44], b[45], b[46], b[47]]);
    let input = &b[56..56 + input_len];
    assert_eq!(&input[..4], &[5, 0, 11, 3], "a DCE/RPC bind inside");
    assert_eq!(
        fsctl_body(fsctl::PIPE_TRANSCEIVE, file, input, max_out),
        b,
        "byte for byte"
    );
    let ack_msg = message("samba_ioctl_transceive_bind_ack");
    let ack = parse_ioctl_output(&ack_msg).unwrap();
    assert_eq!(&ack[..4], &[5, 0, 12, 3], "bind_ack");
    assert_eq!(u16::from_le_bytes([ack[8], ack[9]]) as usize, ack.len(), "frag_length");
    let info_msg = message("samba_ioctl_netr_server_get_info");
    let info = parse_ioctl_output(&info_msg).unwrap();
    assert_eq!(&info[..4], &[5, 0, 2, 3], "a response PDU");
    let stub = &info[24..];
    assert_eq!(u32::from_le_bytes([stub[0], stub[1], stub[2], stub[3]]), 101);
    assert_eq!(
        u32::from_le_bytes([stub[8], stub[9], stub[10], stub[11]]),
        500,
        "PLATFORM_ID_NT"
    );
}

#[test]
fn impacket_s_write_read_and_logoff_against_our_codecs() {
    use pipeslot_smb::create::FileId;
    use pipeslot_smb::io::{parse_write_response, read_body, write_body, ReadResponse};
    let w = body("impacket_write_request_21");
    let mut file = [0u8; 16];
    file.copy_from_slice(&w[16..32]);
    let len = u32::from_le_bytes([w[4], w[5], w[6], w[7]]) as usize;
    let data = &w[48..48 + len];
    assert_eq!(&data[..4], &[5, 0, 11, 3], "a bind written as one message");
    assert_eq!(write_body(FileId(file), data), w, "byte for byte");
    assert_eq!(
        parse_write_response(&message("samba_write_response_21")).unwrap() as usize,
        len
    );
    // impacket reads with its own length and padding; the fields we set match.
    let r = body("impacket_read_request_21");
    let ours = read_body(FileId(file), u32::from_le_bytes([r[4], r[5], r[6], r[7]]));
    assert_eq!(&r[..2], &ours[..2], "StructureSize 49");
    assert_eq!(&r[4..32], &ours[4..32], "length, offset, FileId");
    let read_msg = message("samba_read_response_21");
    let got = ReadResponse::parse(&read_msg).unwrap();
    assert_eq!(
        (&got.data[..4], got.remaining),
        (&[5u8, 0, 12, 3][..], 0),
        "a whole bind_ack"
    );
    assert_eq!(body("impacket_logoff_request_21"), pipeslot_smb::client::EMPTY_REQUEST);
}

#[test]
fn tshark_reads_the_pipe_requests_our_state_machine_signs() {
    use pipeslot_smb::client::Connection;
    use pipeslot_smb::create::{access, create_pipe_body, FileId};
    use pipeslot_smb::ioctl::{fsctl, fsctl_body};
    // A session as if logged on (3.1.1, AES-GMAC): every frame is signed.
    let mut c = Connection::for_fuzzing(
        dialect::SMB_3_1_1,
        Some(pipeslot_smb::signing::Algorithm::AesGmac),
        None,
    );
    let file = FileId([0x11; 16]);
    let frames = [
        c.request(
            Command::CREATE,
            5,
            &create_pipe_body("srvsvc", access::FILE_READ_DATA),
            0,
        ),
        c.request(
            Command::IOCTL,
            5,
            &fsctl_body(fsctl::PIPE_TRANSCEIVE, file, b"\x05\x00\x0b\x03", 4280),
            4280,
        ),
        c.request(Command::WRITE, 5, &pipeslot_smb::io::write_body(file, b"hello"), 0),
        c.request(Command::READ, 5, &pipeslot_smb::io::read_body(file, 1024), 1024),
    ];
    let want = [
        ("5", "srvsvc", "", ""),
        ("11", "", "0x0011c017", ""),
        ("9", "", "", "5"),
        ("8", "", "", ""),
    ];
    for (out, (cmd, name, function, write_len)) in frames.into_iter().zip(want) {
        let out = out.unwrap();
        let Some(f) = tshark_fields(
            &out.frame,
            &[
                "smb2.cmd",
                "smb2.tid",
                "smb2.filename",
                "smb2.ioctl.function",
                "smb2.write_length",
                "smb2.flags.signature",
                "smb2.msg_id",
                "_ws.malformed",
            ],
        ) else {
            return;
        };
        assert_eq!(f[0], cmd, "{f:?}");
        assert_eq!(f[1], "0x00000005", "{f:?}");
        assert_eq!(
            (f[2].as_str(), f[3].as_str(), f[4].as_str()),
            (name, function, write_len),
            "{f:?}"
        );
        assert_eq!(f[5], "1", "signed: {f:?}");
        assert_eq!(f[6], out.message_id.to_string(), "{f:?}");
        assert_eq!(f[7], "", "tshark finds nothing malformed: {f:?}");
    }
}

/// smbd 4.17's `named_pipe_auth_req` for impacket opening `\pipe\probe` as
/// pipetest: the addresses from the front, the unix name from the end.
#[test]
fn samba_s_named_pipe_auth_request_names_the_client_and_its_unix_user() {
    use pipeslot_smb::npa::NpaRequest;
    let v = vector("samba417_named_pipe_auth_req");
    let len = u32::from_be_bytes(v[..4].try_into().unwrap()) as usize;
    assert_eq!(len, v.len() - 4);
    let r = NpaRequest::parse(&v[4..]).unwrap();
    assert_eq!(
        r,
        NpaRequest {
            level: 7,
            client_name: Some("vm".into()),
            client_addr: Some("127.0.0.1".into()),
            client_port: 33258,
            server_name: Some("vm".into()),
            server_addr: Some("127.0.0.1".into()),
            server_port: 4455,
            unix_name: Some("pipetest".into()),
        }
    );
    // Cut anywhere, or with a byte of the tail changed, it never passes for
    // another user: refused, or the same name.
    for cut in [5, 40, 100, 400, v.len() - 5] {
        assert!(NpaRequest::parse(&v[4..cut]).is_err(), "cut at {cut}");
    }
    for at in v.len() - 40..v.len() {
        let mut m = v[4..].to_vec();
        m[at - 4] ^= 0x01;
        if let Ok(r) = NpaRequest::parse(&m) {
            let name = r.unix_name.unwrap();
            assert!(name == "pipetest" || name.len() == 8, "{at}: {name}");
        }
    }
}
