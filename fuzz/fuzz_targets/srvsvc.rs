//! The gateway's built-in srvsvc (`pipeslot_smb::srvsvc` on
//! `pipeslot_smb::dcerpc`): a sequence of PDUs (length-prefixed pieces of
//! the input) from a hostile client, and the PDU parsers on the whole input.
//!
//! Oracle: nothing panics; every answer is one well-formed PDU whose
//! fragment length is its length and whose call id is the request's.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeslot_smb::dcerpc::{Bind, PduHeader, Request};
use pipeslot_smb::srvsvc::Srvsvc;

fuzz_target!(|data: &[u8]| {
    let mut svc = Srvsvc::new("GW", "fuzz");
    let mut rest = data;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let pdu = &rest[2..2 + n];
        rest = &rest[2 + n..];
        if let Ok(answer) = svc.handle(pdu) {
            let h = PduHeader::parse(&answer).expect("our answers parse");
            assert_eq!(h.call_id, PduHeader::parse(pdu).unwrap().call_id);
        }
    }
    let _ = Bind::parse(data);
    let _ = Request::parse(data);
});
