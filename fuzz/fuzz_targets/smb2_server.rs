//! The server state machine (`pipeslot_smb::server`, the gateway's IPC$)
//! fed what a hostile client could send: a configuration byte, then a
//! sequence of frames (length-prefixed pieces of the input), each event
//! answered at once; and every request parser on the whole input.
//!
//! Oracle: nothing panics; after an error the connection is dropped (the
//! target stops feeding it), and no answer is ever longer than 16 MiB.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeslot_smb::info::PipeLocalInfo;
use pipeslot_smb::server::{Answer, Encryption, Event, PipeState, Server, ServerConfig, ServerEntropy, ServerUser};

fuzz_target!(|data: &[u8]| {
    let mut s = Server::new(
        ServerConfig {
            server_guid: [1; 16],
            domain: "WG".into(),
            computer: "GW".into(),
            users: vec![ServerUser {
                name: "u".into(),
                domain: String::new(),
                nt_hash: [2; 16],
            }],
            require_signing: data.first().is_some_and(|b| b & 1 == 1),
            max_io: 1 << 16,
            // Guest lets sequences reach a logged-on session without
            // forging NTLM; the encryption policy varies too.
            guest: data.first().is_some_and(|b| b & 2 == 2),
            encryption: match data.first().map(|b| (b >> 2) & 3) {
                Some(1) => Encryption::Never,
                Some(2) => Encryption::Required,
                _ => Encryption::Allowed,
            },
            max_opens: 4,
        },
        ServerEntropy {
            salt: [3; 32],
            server_challenge: [4; 8],
            session_id: 5,
            now: 6,
            nonce_prefix: [7; 4],
        },
    );
    let mut rest = data.get(1..).unwrap_or_default();
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let frame = &rest[2..2 + n];
        rest = &rest[2 + n..];
        let Ok(out) = s.receive(frame) else { break };
        for e in out.events {
            let req = match e {
                Event::Open { req, .. } => (req, Answer::Opened),
                Event::Read { req, .. } | Event::Transceive { req, .. } => (req, Answer::Data(b"x")),
                Event::Write { req, data, .. } => (req, Answer::Written(data.len() as u32)),
                Event::Wait { req, .. } => (req, Answer::Data(b"")),
                Event::Peek { req, .. } => (
                    req,
                    Answer::Peeked {
                        data: b"peeked",
                        available: 6,
                        messages: 1,
                        message_length: 6,
                    },
                ),
                Event::QueryInfo { req, .. } => (
                    req,
                    Answer::Info(PipeState {
                        local: PipeLocalInfo {
                            pipe_type: 1,
                            configuration: 2,
                            max_instances: 255,
                            current_instances: 1,
                            inbound_quota: 4096,
                            read_data_available: 0,
                            outbound_quota: 4096,
                            write_quota_available: 4096,
                            state: 3,
                            end: 0,
                        },
                        message_read: true,
                        nonblocking: false,
                    }),
                ),
                Event::SetReadMode { req, .. } | Event::Flush { req, .. } => (req, Answer::Done),
                Event::Close { .. } | Event::Cancel { .. } | Event::LoggedOn { .. } | Event::LogonRefused { .. } => {
                    continue
                }
            };
            assert!(s.answer(req.0, req.1).len() < 1 << 24);
        }
    }
    let _ = pipeslot_smb::tree::TreeConnectRequest::parse(data);
    let _ = pipeslot_smb::create::CreateRequest::parse(data);
    let _ = pipeslot_smb::create::parse_close_request(data);
    let _ = pipeslot_smb::io::ReadRequest::parse(data);
    let _ = pipeslot_smb::io::parse_write_request(data);
    let _ = pipeslot_smb::ioctl::IoctlRequest::parse(data);
    let _ = pipeslot_smb::spnego::NegTokenInit::parse(data);
    let _ = pipeslot_smb::ntlm::AuthenticateFields::parse(data);
    let _ = pipeslot_smb::info::QueryInfoRequest::parse(data);
    let _ = pipeslot_smb::info::SetInfoRequest::parse(data);
    let _ = pipeslot_smb::negotiate::NegotiateRequest::parse(data);
});
