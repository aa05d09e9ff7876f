//! `pipeslot demo` runs on its own and shows what it says it shows.

use std::time::{Duration, Instant};

use super::util::test;

#[test]
fn demo_runs_and_tells_the_story() {
    test("demo", Duration::from_secs(30), |ctx| {
        let t0 = Instant::now();
        let out = ctx.run(&["demo"]).success();
        assert!(t0.elapsed() < Duration::from_secs(10), "a few seconds at most");
        for want in [
            "server: message-mode echo, 3 instances",
            "1. concurrent clients: 3 processes run `pipeslot call` at once",
            "-> reply \"hello from client 3\"",
            "   ERROR_PIPE_BUSY (231): all instances of \\\\.\\pipe\\pipeslot-demo-",
            "the waiter got in and had its reply \"I waited\"",
            "   \"three\" -> \"three\"",
            "peek with a 3-byte buffer: copied \"fir\", 19 bytes available, 2 more in this message",
            "then two reads: \"first\", \"second message\"",
            "   server: pid ",
            "the read returned ERROR_BROKEN_PIPE (109)",
            "nobody hung: the echo server still answers (\"still here\")",
            "8. the network: a gateway on 127.0.0.1:",
            "monitor: host 2: second line",
            "a remote `call` through the gateway: the monitor's client is user demo from 127.0.0.1:",
            "9. a mailslot: this process reads \\\\.\\mailslot\\pipeslot-demo-",
            "   info: 6 messages waiting, the next 8 bytes (GetMailslotInfo)",
            "   read, whole and once each: event 1a, event 1b, event 2a, event 2b, event 3a, event 3b",
        ] {
            assert!(out.contains(want), "missing {want:?} in:\n{out}");
        }
        assert!(
            out.lines().last().unwrap_or_default().starts_with("demo: ok ("),
            "{out}"
        );
        assert_eq!(out.matches("   monitor: host ").count(), 6, "every line, once: {out}");
        // The demo's pipes are gone with it.
        assert_eq!(ctx.run(&["list"]).success(), "");
    });
}
