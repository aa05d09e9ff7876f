//! Property tests over a real pipe: random message sizes and reader buffer
//! sizes; every byte arrives once, in order, with its boundary.

use pipeslot::blocking::{ClientOptions, ServerOptions};
use pipeslot::PipeMode;
use proptest::prelude::*;

use crate::util;

fn payload(i: usize, n: usize) -> Vec<u8> {
    (0..n).map(|j| (i * 131 + j * 7) as u8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_message_arrives_whole_through_short_reads(
        sizes in proptest::collection::vec(0usize..70_000, 1..24),
        bufsize in 1usize..9000,
    ) {
        let name = util::name("prop");
        let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
        let c = ClientOptions::new().open(&name).unwrap();
        s.connect().unwrap();
        let sz = sizes.clone();
        let writer = std::thread::spawn(move || {
            for (i, &n) in sz.iter().enumerate() {
                c.write_msg(&payload(i, n)).unwrap();
            }
        });
        let mut buf = vec![0u8; bufsize];
        for (i, &n) in sizes.iter().enumerate() {
            let mut got = Vec::with_capacity(n);
            loop {
                let r = s.read_msg(&mut buf).unwrap();
                got.extend_from_slice(&buf[..r.len]);
                if !r.more { break; }
                prop_assert_eq!(r.len, bufsize);
            }
            prop_assert_eq!(got, payload(i, n));
        }
        writer.join().unwrap();
    }

    #[test]
    fn byte_reads_of_a_message_pipe_see_the_concatenation(
        sizes in proptest::collection::vec(0usize..20_000, 1..24),
        bufsize in 1usize..5000,
    ) {
        use std::io::Read;
        let name = util::name("propb");
        let mut s = ServerOptions::new().pipe_mode(PipeMode::Message).read_mode(PipeMode::Byte).create(&name).unwrap();
        let c = ClientOptions::new().open(&name).unwrap();
        s.connect().unwrap();
        let sz = sizes.clone();
        let writer = std::thread::spawn(move || {
            for (i, &n) in sz.iter().enumerate() {
                c.write_msg(&payload(i, n)).unwrap();
            }
        });
        let want: Vec<u8> = sizes.iter().enumerate().flat_map(|(i, &n)| payload(i, n)).collect();
        let mut got = Vec::new();
        let mut buf = vec![0u8; bufsize];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 { break; }
            got.extend_from_slice(&buf[..n]);
        }
        writer.join().unwrap();
        prop_assert_eq!(got.len(), want.len());
        prop_assert!(got == want);
    }
}
