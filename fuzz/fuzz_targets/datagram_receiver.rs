//! The host's mailslot datagram service (`pipeslot::mailslot::DatagramReceiver`)
//! as a remote peer drives it: any bytes as one UDP payload, handed to the
//! real local mailslots `\\.\mailslot\pipeslot\demo` (which the seeds
//! write to) and `\\.\mailslot\fuzz` (64 bytes at most).
//!
//! Oracle: nothing panics or blocks; each payload is counted once and the
//! counters add up; a delivery names one of the two mailslots and puts
//! exactly one message of the length it reports in it, within its size.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pipeslot::blocking::{MailslotOptions, MailslotServer};
use pipeslot::mailslot::{DatagramReceiver, NetConfig, Verdict};

struct Host {
    receiver: DatagramReceiver,
    demo: MailslotServer,
    small: MailslotServer,
}

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pipeslot-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::env::set_var("PIPESLOT_DIR", &dir);
        // The mailslots' own receiver: loopback, any port (never UDP 138).
        std::env::set_var("PIPESLOT_BIND", "127.0.0.1");
        std::env::set_var("PIPESLOT_MAILSLOT_PORT", "0");
        let open = |name: &str, max: u32| {
            MailslotOptions::new()
                .network(true)
                .max_message_size(max)
                .read_timeout(Duration::ZERO)
                .create(name)
                .unwrap()
        };
        let mut cfg = NetConfig::from_env().unwrap();
        cfg.bind("127.0.0.1".parse().unwrap()).port(0);
        Host {
            demo: open(r"\\.\mailslot\pipeslot\demo", 0),
            small: open(r"\\.\mailslot\fuzz", 64),
            receiver: DatagramReceiver::bind(&cfg).unwrap(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = host();
    let before = h.receiver.counters();
    let verdict = h.receiver.handle_datagram(data);
    let after = h.receiver.counters();
    assert_eq!(after.received, before.received + 1);
    assert_eq!(after.received, after.delivered + after.dropped());
    if let Verdict::Delivered { path, len } = verdict {
        assert_eq!(after.delivered, before.delivered + 1);
        // Names fold as local ones do: case, and `/` for `\`.
        let slot = match path.to_ascii_lowercase().replace('/', "\\").as_str() {
            r"pipeslot\demo" => &h.demo,
            "fuzz" => {
                assert!(len <= 64, "over the mailslot's maximum: {len}");
                &h.small
            }
            other => panic!("delivered to a mailslot that does not exist: {other}"),
        };
        assert_eq!(slot.info().unwrap().message_count, 1);
        assert_eq!(slot.read_message().unwrap().len(), len);
        assert_eq!(slot.info().unwrap().message_count, 0);
    } else {
        assert_eq!(after.delivered, before.delivered);
    }
});
