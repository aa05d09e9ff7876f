//! The local handshake between pipeslot processes: a client's hello and the
//! server's reply (`pipeslot_proto::wire::local`).
//!
//! Oracle: a parsed hello re-emits to exactly the bytes it was read from; a
//! parsed reply re-emits to bytes that parse back to the same reply and keep
//! every non-reserved byte.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeslot_proto::wire::local::{hello_len_hint, Hello, HelloPacket, Reply, REPLY_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = HelloPacket::new_checked(data) {
        let _ = (p.request(), p.flags(), p.pid(), p.name(), p.extensions());
        let len = p.total_len();
        assert!(len <= data.len());
        assert_eq!(hello_len_hint(data), Some(len));
        let hello = Hello::parse(&p);
        let bytes = hello.to_vec().expect("a parsed hello re-emits");
        assert_eq!(bytes.len(), hello.buffer_len());
        assert_eq!(&bytes[..], &data[..len]);
        let again = HelloPacket::new_checked(&bytes[..]).expect("a re-emitted hello parses");
        assert_eq!(Hello::parse(&again), hello);
    }

    if let Ok(reply) = Reply::parse(data) {
        let bytes = reply.emit();
        assert_eq!(Reply::parse(&bytes).expect("a re-emitted reply parses"), reply);
        // the last four bytes are reserved and written as zero
        assert_eq!(bytes[..REPLY_LEN - 4], data[..REPLY_LEN - 4]);
    }
});
