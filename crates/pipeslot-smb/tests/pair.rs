//! Our client state machine against our server state machine, in memory:
//! every frame one side sends is the other's input, nothing else between
//! them. (samba.rs proves the client against a real server; the gateway's
//! tests will prove the server against real clients.)

use pipeslot_smb::client::{
    Auth, ClientConfig, ClientError, Connection, Entropy, Handshake, Response, Step, ALL_DIALECTS,
};
use pipeslot_smb::create::{access, create_pipe_body, parse_create_response};
use pipeslot_smb::header::{Command, Header};
use pipeslot_smb::ioctl::{fsctl, fsctl_body, parse_ioctl_output};
use pipeslot_smb::negotiate::dialect;
use pipeslot_smb::ntlm::nt_hash;
use pipeslot_smb::server::{Answer, Event, Server, ServerConfig, ServerEntropy, ServerError, ServerUser};
use pipeslot_smb::status::NtStatus;
use pipeslot_smb::tree::tree_connect_body;

fn unframe(f: &[u8]) -> &[u8] {
    &f[4..]
}

fn server() -> Server {
    Server::new(
        ServerConfig {
            server_guid: *b"pipeslot-gateway",
            domain: "WORKGROUP".into(),
            computer: "GATEWAY".into(),
            users: vec![ServerUser {
                name: "alice".into(),
                domain: String::new(),
                nt_hash: nt_hash("wonderland"),
            }],
            require_signing: true,
            max_io: 1 << 20,
        },
        ServerEntropy {
            salt: [6; 32],
            server_challenge: [7; 8],
            session_id: 0x4000_0001,
            now: 0x01db_0000_0000_0000,
        },
    )
}

fn client(dialects: &[u16], password: &str) -> ClientConfig {
    ClientConfig {
        auth: Auth::Ntlm {
            user: "ALICE".into(),
            domain: "WORKGROUP".into(),
            nt_hash: nt_hash(password),
        },
        dialects: dialects.to_vec(),
        require_signing: true,
        require_encryption: false,
        workstation: "LAPTOP".into(),
        entropy: Entropy {
            client_guid: [1; 16],
            salt: [2; 32],
            client_challenge: [3; 8],
            nonce_prefix: [4; 4],
        },
        now: 0,
    }
}

fn log_on(dialects: &[u16], password: &str) -> Result<(Connection, Server), ClientError> {
    let mut srv = server();
    let (mut hs, first) = Handshake::start(client(dialects, password));
    let mut to_server = vec![first];
    loop {
        let f = to_server.pop().expect("the client always has something to say");
        let out = srv.receive(unframe(&f)).expect("the server takes our client's frames");
        assert!(out.events.is_empty());
        for answer in out.send {
            match hs.receive(unframe(&answer))? {
                Step::Send(next) => to_server.push(next),
                Step::Wait => {}
                Step::Ready => return Ok((hs.finish(), srv)),
            }
        }
    }
}

/// One request through the server; events answered by `host`.
fn call(
    c: &mut Connection,
    s: &mut Server,
    cmd: Command,
    tree: u32,
    body: &[u8],
    host: impl Fn(&Event) -> Answer<'static>,
) -> Response {
    let out = c.request(cmd, tree, body, 65536).unwrap();
    let o = s.receive(unframe(&out.frame)).unwrap();
    let mut frames = o.send;
    for e in &o.events {
        let req = match e {
            Event::Open { req, .. }
            | Event::Read { req, .. }
            | Event::Write { req, .. }
            | Event::Transceive { req, .. } => *req,
            _ => continue,
        };
        frames.push(s.answer(req, host(e)));
    }
    let mut last = None;
    for f in frames {
        for r in c.receive(unframe(&f)).unwrap() {
            assert_eq!(r.message_id, out.message_id);
            if !r.interim {
                last = Some(r);
            }
        }
    }
    last.expect("a final answer")
}

fn tree(c: &mut Connection, s: &mut Server) -> u32 {
    let r = call(
        c,
        s,
        Command::TREE_CONNECT,
        0,
        &tree_connect_body(r"\\gateway\IPC$"),
        |_| unreachable!(),
    );
    assert_eq!(r.status, NtStatus::STATUS_SUCCESS);
    Header::new_checked(&r.msg[..]).unwrap().tree_id().unwrap()
}

#[test]
fn every_dialect_logs_on_signs_and_reaches_a_pipe() {
    for d in ALL_DIALECTS {
        let (mut c, mut s) = log_on(&[d], "wonderland").unwrap_or_else(|e| panic!("{d:#x}: {e}"));
        assert_eq!((c.info.dialect, s.dialect()), (d, Some(d)));
        assert!(c.info.signing.is_some(), "{d:#x}");
        let t = tree(&mut c, &mut s);
        if matches!(d, dialect::SMB_3_0 | dialect::SMB_3_0_2) {
            let body = fsctl_body(
                fsctl::VALIDATE_NEGOTIATE_INFO,
                pipeslot_smb::create::FileId([0xff; 16]),
                &c.validate_negotiate_input(),
                24,
            );
            let r = call(&mut c, &mut s, Command::IOCTL, t, &body, |_| unreachable!());
            c.check_validate_negotiate(parse_ioctl_output(&r.msg).unwrap()).unwrap();
        }
        let r = call(
            &mut c,
            &mut s,
            Command::CREATE,
            t,
            &create_pipe_body("echo", access::FILE_READ_DATA),
            |e| match e {
                Event::Open { pipe, user, .. } => {
                    assert_eq!(
                        (pipe.as_str(), user.user.as_str(), user.workstation.as_str()),
                        ("echo", "ALICE", "LAPTOP")
                    );
                    Answer::Opened
                }
                other => panic!("{other:?}"),
            },
        );
        assert_eq!(r.status, NtStatus::STATUS_SUCCESS, "{d:#x}");
        let file = parse_create_response(&r.msg).unwrap();
        let r = call(
            &mut c,
            &mut s,
            Command::IOCTL,
            t,
            &fsctl_body(fsctl::PIPE_TRANSCEIVE, file, b"ping", 1024),
            |e| match e {
                Event::Transceive { input, .. } => {
                    assert_eq!(input, b"ping");
                    Answer::Data(b"pong")
                }
                other => panic!("{other:?}"),
            },
        );
        assert_eq!(parse_ioctl_output(&r.msg).unwrap(), b"pong");
        let r = call(
            &mut c,
            &mut s,
            Command::CLOSE,
            t,
            &pipeslot_smb::create::close_body(file),
            |_| unreachable!(),
        );
        assert_eq!(r.status, NtStatus::STATUS_SUCCESS);
        assert_eq!(s.open_files().count(), 0);
    }
}

#[test]
fn refusals_wrong_password_other_shares_closed_files() {
    let e = log_on(&ALL_DIALECTS, "looking-glass").unwrap_err();
    assert_eq!(e, ClientError::Status(NtStatus::STATUS_LOGON_FAILURE));
    let (mut c, mut s) = log_on(&ALL_DIALECTS, "wonderland").unwrap();
    let r = call(
        &mut c,
        &mut s,
        Command::TREE_CONNECT,
        0,
        &tree_connect_body(r"\\gateway\C$"),
        |_| unreachable!(),
    );
    assert_eq!(r.status, NtStatus::STATUS_BAD_NETWORK_NAME);
    let t = tree(&mut c, &mut s);
    let r = call(
        &mut c,
        &mut s,
        Command::CREATE,
        t,
        &create_pipe_body("hidden", 1),
        |_| Answer::Status(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND),
    );
    assert_eq!(r.status.win32(), pipeslot_proto::Win32Error::ERROR_FILE_NOT_FOUND);
    // A FileId the server never gave out.
    let bogus = pipeslot_smb::create::FileId([9; 16]);
    let r = call(
        &mut c,
        &mut s,
        Command::READ,
        t,
        &pipeslot_smb::io::read_body(bogus, 10),
        |_| unreachable!(),
    );
    assert_eq!(r.status, NtStatus::STATUS_FILE_CLOSED);
}

#[test]
fn a_read_waits_with_an_interim_answer_and_a_message_comes_in_parts() {
    let (mut c, mut s) = log_on(&ALL_DIALECTS, "wonderland").unwrap();
    let t = tree(&mut c, &mut s);
    let r = call(&mut c, &mut s, Command::CREATE, t, &create_pipe_body("slow", 3), |_| {
        Answer::Opened
    });
    let file = parse_create_response(&r.msg).unwrap();
    let out = c
        .request(Command::READ, t, &pipeslot_smb::io::read_body(file, 4), 4)
        .unwrap();
    let o = s.receive(unframe(&out.frame)).unwrap();
    let Event::Read { req, length, .. } = o.events[0].clone() else {
        panic!()
    };
    assert_eq!(length, 4);
    let (req, interim) = s.interim(req, 77);
    let interim = c.receive(unframe(&interim)).unwrap();
    assert!(interim[0].interim && interim[0].async_id == Some(77));
    let part = c.receive(unframe(&s.answer(req, Answer::Part(b"abcd")))).unwrap();
    assert_eq!(part[0].status, NtStatus::STATUS_BUFFER_OVERFLOW);
    assert_eq!(part[0].async_id, Some(77), "the final answer is async too");
    assert_eq!(
        pipeslot_smb::io::ReadResponse::parse(&part[0].msg).unwrap().data,
        b"abcd"
    );
    assert_eq!(c.outstanding(), 0);
}

#[test]
fn a_replayed_or_forged_request_drops_the_connection() {
    let (mut c, mut s) = log_on(&ALL_DIALECTS, "wonderland").unwrap();
    let out = c
        .request(Command::TREE_CONNECT, 0, &tree_connect_body(r"\\gateway\IPC$"), 0)
        .unwrap();
    s.receive(unframe(&out.frame)).unwrap();
    assert!(
        matches!(s.receive(unframe(&out.frame)), Err(ServerError::Protocol(_))),
        "a message id used twice"
    );
    let mut forged = c.request(Command::ECHO, 0, &[4, 0, 0, 0], 0).unwrap().frame;
    let n = forged.len();
    forged[n - 1] ^= 1;
    assert!(matches!(s.receive(unframe(&forged)), Err(ServerError::Protocol(_))));
}

#[test]
fn the_smb1_negotiate_of_older_clients_gets_the_smb2_wildcard() {
    let hex: String = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/impacket_smb1_multiprotocol_negotiate.hex"
    ))
    .unwrap()
    .split_whitespace()
    .collect();
    let payload: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut s = server();
    let out = s.receive(&payload[4..]).unwrap();
    let r = pipeslot_smb::negotiate::NegotiateResponse::parse(unframe(&out.send[0])).unwrap();
    assert_eq!(r.dialect, dialect::WILDCARD);
    // The client then negotiates for real, on the same connection.
    let (hs, first) = Handshake::start(client(&ALL_DIALECTS, "wonderland"));
    let _ = hs;
    let out = s.receive(unframe(&first)).unwrap();
    let r = pipeslot_smb::negotiate::NegotiateResponse::parse(unframe(&out.send[0])).unwrap();
    assert_eq!(r.dialect, dialect::SMB_3_1_1);
}

/// A brief fuzz run on stable: our client's frames, mutated, fed to fresh
/// servers at each step of a log-on; nothing panics, and the server never
/// lets a mutated request through a signed session.
#[test]
fn mutated_client_frames_never_panic_the_server() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // The frames of one whole session, in order.
    let (mut c, mut s) = log_on(&ALL_DIALECTS, "wonderland").unwrap();
    let echo = c.request(Command::ECHO, 0, &[4, 0, 0, 0], 0).unwrap().frame;
    let tc = c
        .request(Command::TREE_CONNECT, 0, &tree_connect_body(r"\\gateway\IPC$"), 0)
        .unwrap()
        .frame;
    assert!(s.receive(unframe(&echo)).is_ok());
    for _ in 0..1000 {
        for base in [&echo, &tc] {
            let mut m = unframe(base).to_vec();
            match next() % 3 {
                0 => {
                    let i = (next() as usize) % m.len();
                    m[i] ^= 1 << (next() % 8);
                }
                1 => m.truncate((next() as usize) % m.len()),
                _ => m.extend(std::iter::repeat_n(next() as u8, (next() % 32) as usize)),
            }
            if m == unframe(base) {
                continue;
            }
            // A fresh connection with the same keys (the same entropy).
            let (_, mut s2) = log_on(&ALL_DIALECTS, "wonderland").unwrap();
            if let Ok(out) = s2.receive(&m) {
                // Only a change the signature does not cover may pass: none
                // in a signed request, so the answer can only be an error.
                for f in out.send {
                    let h = Header::new_checked(unframe(&f)).unwrap();
                    assert!(
                        h.status().is_error(),
                        "a mutated request was served: {:?} {:?} (base {:02x?}, now {:02x?})",
                        h.status(),
                        h.command(),
                        unframe(base),
                        m
                    );
                }
            }
        }
    }
}

#[test]
fn a_client_that_only_starts_log_ons_is_dropped_before_the_server_grows() {
    // The first leg of SESSION_SETUP, over and over with fresh message ids.
    let (mut hs, first) = Handshake::start(client(&ALL_DIALECTS, "wonderland"));
    let mut s2 = server();
    let neg = s2.receive(unframe(&first)).unwrap().send.remove(0);
    let Step::Send(setup) = hs.receive(unframe(&neg)).unwrap() else {
        panic!()
    };
    let mut leg = unframe(&setup).to_vec();
    let mut refused = None;
    for i in 0..40u64 {
        leg[24..32].copy_from_slice(&(1 + i).to_le_bytes());
        match s2.receive(&leg) {
            Ok(out) => assert_eq!(out.send.len(), 1),
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (at, e) = refused.expect("the server stops taking first legs");
    assert_eq!(at, 16, "{e}");
}
