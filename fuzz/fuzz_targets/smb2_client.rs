//! The client state machine (`pipeslot_smb::client`) fed what a hostile
//! server could send: a handshake driven by arbitrary answers, and an
//! established connection (plain, signed, sealed) receiving arbitrary
//! frames; plus the pipe-information and peek decoders and the unsealing of
//! TRANSFORM_HEADER frames.
//!
//! Oracle: nothing panics; a connection never reports an answer to a
//! request it did not send, and never accepts a frame unsigned or in the
//! clear when it signs or seals.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeslot_smb::client::{Auth, ClientConfig, ClientError, Connection, Entropy, Handshake, Step, ALL_DIALECTS};
use pipeslot_smb::crypt::Cipher;
use pipeslot_smb::header::Command;
use pipeslot_smb::info::PipeLocalInfo;
use pipeslot_smb::ioctl::PeekOutput;
use pipeslot_smb::signing::Algorithm;

/// Length-prefixed (u16 LE) pieces of the input.
fn pieces(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
        out.push(&data[2..2 + n]);
        data = &data[2 + n..];
    }
    out
}

fn handshake(msgs: &[&[u8]]) {
    let cfg = ClientConfig {
        auth: Auth::Ntlm {
            user: "u".into(),
            domain: String::new(),
            nt_hash: [1; 16],
        },
        dialects: ALL_DIALECTS.to_vec(),
        require_signing: msgs.len() % 2 == 0,
        require_encryption: false,
        workstation: "W".into(),
        entropy: Entropy {
            client_guid: [2; 16],
            salt: [3; 32],
            client_challenge: [4; 8],
            nonce_prefix: [5; 4],
        },
        now: 0,
    };
    let (mut hs, _) = Handshake::start(cfg);
    for m in msgs {
        match hs.receive(m) {
            Ok(Step::Ready) => {
                let c = hs.finish();
                assert!(c.info.signing.is_some() || c.info.encryption.is_some() || c.info.anonymous || c.info.guest);
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

fn connection(mut c: Connection, frames: &[&[u8]]) {
    let mut sent = Vec::new();
    for cmd in [Command::READ, Command::WRITE, Command::IOCTL] {
        if let Ok(out) = c.request(cmd, 1, &[0; 8], 100) {
            sent.push(out.message_id);
        }
    }
    let guarded = c.info.signing.is_some() || c.info.encryption.is_some();
    for f in frames {
        match c.receive(f) {
            Ok(rs) => {
                for r in rs {
                    assert!(sent.contains(&r.message_id), "an answer to nothing asked");
                    assert!(!guarded || r.interim || f.first() == Some(&0xfd) || r.msg[16] & 0x08 != 0);
                }
            }
            Err(ClientError::NoCredits(_)) => unreachable!("receive never spends credits"),
            Err(_) => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let msgs = pieces(data);
    handshake(&msgs);
    connection(Connection::for_fuzzing(0x0311, None, None), &msgs);
    connection(Connection::for_fuzzing(0x0311, Some(Algorithm::AesCmac), None), &msgs);
    connection(Connection::for_fuzzing(0x0311, None, Some(Cipher::Aes128Gcm)), &msgs);
    let _ = PipeLocalInfo::parse(data);
    if let Ok(p) = PeekOutput::parse(data) {
        assert!(p.data.len() <= data.len());
    }
});
