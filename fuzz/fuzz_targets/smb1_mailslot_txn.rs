//! The SMB part of a mailslot datagram: an SMB_COM_TRANSACTION Write Mail
//! Slot (MS-MAIL 2.2.1), starting at the SMB header.
//!
//! Oracle: a parsed write re-emits, the re-emitted bytes parse back to the
//! same representation, and the documented length invariants hold.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeslot_proto::wire::smb1::{self, MailslotWritePacket, MailslotWriteRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = MailslotWritePacket::new_checked(data) else {
        return;
    };
    // no accessor may panic
    let _ = (
        p.status(),
        p.flags(),
        p.flags2(),
        p.pid_high(),
        p.tid(),
        p.pid_low(),
        p.uid(),
        p.mid(),
    );
    let _ = (
        p.max_parameter_count(),
        p.max_data_count(),
        p.max_setup_count(),
        p.trans_flags(),
        p.timeout(),
    );
    let _ = (
        p.parameter_offset(),
        p.priority(),
        p.class(),
        p.byte_count(),
        p.padding(),
    );
    assert_eq!(p.word_count(), smb1::WORD_COUNT);
    assert_eq!(p.setup_count(), smb1::SETUP_COUNT);
    assert_eq!(p.opcode(), smb1::OPCODE_WRITE_MAIL_SLOT);
    assert_eq!(p.data_count(), p.total_data_count());
    assert_eq!(usize::from(p.data_count()), p.data().len());
    assert!(p.message_end() <= data.len());
    assert!(smb1::is_mailslot_name(p.name()));
    let _ = (smb1::max_data_for(p.name()), smb1::max_broadcast_data_for(p.name()));

    let repr = MailslotWriteRepr::parse(&p);
    let bytes = match repr.to_vec() {
        Ok(bytes) => bytes,
        // DataOffset and ByteCount are 16-bit
        Err(_) => {
            assert!(data.len() > usize::from(u16::MAX));
            return;
        }
    };
    assert_eq!(bytes.len(), repr.buffer_len());
    let again = MailslotWritePacket::new_checked(&bytes[..]).expect("a re-emitted write parses");
    assert_eq!(usize::from(again.data_offset()), repr.data_offset());
    assert_eq!(again.message_end(), bytes.len());
    let repr2 = MailslotWriteRepr::parse(&again);
    assert_eq!(repr2, repr);
    assert_eq!(repr2.to_vec().expect("re-emits"), bytes);
});
