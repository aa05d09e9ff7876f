//! SMB2 messages from a peer (`pipeslot_smb`): the transport frame, the
//! header and the NEGOTIATE request and response, as a client or the
//! gateway would meet them.
//!
//! Oracle: a parsed header re-emits to the same 64 bytes; a parsed
//! NEGOTIATE request or response re-emits to a body that parses back to the
//! same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeslot_smb::header::{Header, HeaderRepr, HEADER_LEN};
use pipeslot_smb::negotiate::{NegotiateRequest, NegotiateResponse};
use pipeslot_smb::transport::next_message;

fn with_header(msg: &[u8], body: Vec<u8>) -> Vec<u8> {
    let mut out = msg[..HEADER_LEN].to_vec();
    out.extend_from_slice(&body);
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((m, used))) = next_message(data, 1 << 20) {
        assert!(used <= data.len() && m.len() + 4 == used);
    }
    if let Ok(h) = Header::new_checked(data) {
        let _ = (h.async_id(), h.tree_id(), h.body().len());
        let mut out = [0u8; HEADER_LEN];
        HeaderRepr::parse(&h).emit(&mut out);
        assert_eq!(&out[..], &data[..HEADER_LEN]);
    }
    if let Ok(req) = NegotiateRequest::parse(data) {
        let again = with_header(data, req.emit_body());
        assert_eq!(
            NegotiateRequest::parse(&again).expect("a re-emitted request parses"),
            req
        );
    }
    if let Ok(resp) = NegotiateResponse::parse(data) {
        let again = with_header(data, resp.emit_body());
        assert_eq!(
            NegotiateResponse::parse(&again).expect("a re-emitted response parses"),
            resp
        );
    }
});
