//! What a server answers a client with (`pipeslot_smb`): the SESSION_SETUP
//! response, the SPNEGO negTokenResp in it and the NTLM CHALLENGE in that
//! (each layer from the same bytes and from what the layer above
//! extracted), and the TREE_CONNECT, CREATE, READ, WRITE and IOCTL responses; a message
//! signature check on anything.
//!
//! Oracle: no input panics a parser, and a client can answer any challenge
//! that parses (the AUTHENTICATE message's fields stay inside it).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeslot_smb::create::parse_create_response;
use pipeslot_smb::io::{parse_write_response, ReadResponse};
use pipeslot_smb::ioctl::parse_ioctl_output;
use pipeslot_smb::ntlm::{authenticate, nt_hash, Challenge};
use pipeslot_smb::session::SessionSetupResponse;
use pipeslot_smb::signing::{verify, Algorithm};
use pipeslot_smb::spnego::NegTokenResp;
use pipeslot_smb::tree::TreeConnectResponse;

fn challenge(bytes: &[u8]) {
    if let Ok(c) = Challenge::parse(bytes) {
        let _ = c.timestamp();
        let a = authenticate(&c, "user", "DOMAIN", "WS", &nt_hash("pw"), [1; 8], 0);
        assert!(a.message.len() >= 64 + 24 + 16);
    }
}

fn token(bytes: &[u8]) {
    if let Ok(t) = NegTokenResp::parse(bytes) {
        if let Some(inner) = t.response_token {
            challenge(inner);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SessionSetupResponse::parse(data) {
        token(r.security_buffer);
    }
    token(data);
    challenge(data);
    let _ = TreeConnectResponse::parse(data);
    let _ = parse_create_response(data);
    if let Ok(out) = parse_ioctl_output(data) {
        assert!(out.len() <= data.len());
    }
    if let Ok(r) = ReadResponse::parse(data) {
        assert!(r.data.len() <= data.len());
    }
    let _ = parse_write_response(data);
    let _ = verify(data, &[3; 16], Algorithm::AesCmac);
});
