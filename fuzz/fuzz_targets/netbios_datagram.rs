//! A UDP payload on port 138: the NetBIOS datagram header (RFC 1002 4.4.1) on
//! its own, then the whole mailslot datagram (header + MS-MAIL 2.2.1 write).
//!
//! Oracle: a parsed header or datagram re-emits, and the re-emitted bytes
//! parse back to the same representation and emit the same bytes again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeslot_proto::wire::mailslot::{parse_datagram, MailslotDatagramRepr};
use pipeslot_proto::wire::netbios::{DatagramPacket, DatagramRepr, DatagramType};

/// DGM_LENGTH and the SMB offsets are 16-bit: longer inputs may parse but
/// cannot be re-emitted.
const MAX_EMITTABLE: usize = u16::MAX as usize;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = DatagramPacket::new_checked(data) {
        assert!(p.msg_type().is_data());
        assert_eq!(DatagramType::of(data), Some(p.msg_type()));
        let _ = (
            p.dgm_id(),
            p.source_ip(),
            p.source_port(),
            p.dgm_length(),
            p.is_fragment(),
        );
        let _ = (p.source_name().to_string(), p.destination_name().to_string());
        let _ = (p.source_scope(), p.destination_scope());
        assert!(p.header_len() <= data.len());
        let repr = DatagramRepr::parse(&p);
        match repr.to_vec(p.user_data()) {
            Ok(bytes) => {
                let again = DatagramPacket::new_checked(&bytes[..]).expect("a re-emitted header parses");
                assert_eq!(DatagramRepr::parse(&again), repr);
                assert_eq!(again.user_data(), p.user_data());
                assert_eq!(again.header_len(), repr.buffer_len());
                assert_eq!(usize::from(again.dgm_length()), bytes.len() - 14);
            }
            Err(_) => assert!(data.len() > MAX_EMITTABLE),
        }
    }

    match parse_datagram(data) {
        Ok((header, write)) => {
            assert!(!header.is_fragment());
            let _ = (write.name(), write.data(), write.padding(), write.message_end());
        }
        Err(reason) => {
            let _ = (reason.label(), reason.to_string());
            return;
        }
    }
    let repr = MailslotDatagramRepr::parse(data).expect("parse_datagram accepted it");
    let bytes = match repr.to_vec() {
        Ok(bytes) => bytes,
        Err(_) => {
            assert!(data.len() > MAX_EMITTABLE);
            return;
        }
    };
    assert_eq!(bytes.len(), repr.buffer_len());
    let again = MailslotDatagramRepr::parse(&bytes).expect("a re-emitted datagram parses");
    assert_eq!(again, repr);
    assert_eq!(again.to_vec().expect("re-emits"), bytes);
});
