//! Network faults between two hosts: namespaces `c` (10.77.0.1, the client)
//! and `s` (10.77.0.2, the gateway and mailslot reader) joined by a
//! `wire::Wire` that loses, delays, reorders, duplicates or cuts. Remote
//! calls either go through whole and exact, or fail with
//! ERROR_NETNAME_DELETED / ERROR_SEM_TIMEOUT within their timeouts; a later
//! open reconnects; a client host that vanishes frees what it held at the
//! gateway; lost and duplicated mailslot datagrams never crash or stall a
//! reader.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use pipeslot::blocking::{MailslotOptions, MailslotWriter, ServerOptions};
use pipeslot::mailslot::{DatagramReceiver, NetConfig};
use pipeslot::{PipeMode, Win32Error};

use crate::gateway::{client, echo_server, gateway_at};
use crate::netns::{self, Lab};
use crate::util::{self, child_args, code, report, watchdog, Peer, SECOND};
use crate::wire::{in_namespace, Faults, Wire};

const CLIENT_IP: &str = "10.77.0.1";
const SERVER_IP: &str = "10.77.0.2";

/// The two hosts; the wire goes before the namespaces.
struct Hosts {
    wire: Wire,
    client: String,
    server: String,
    _lab: Lab,
}

impl Hosts {
    fn new(tag: &str) -> Option<Hosts> {
        if !netns::available(tag) {
            return None;
        }
        if !std::path::Path::new("/dev/net/tun").exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{tag}: /dev/net/tun is missing; CI must run it"
            );
            eprintln!("skipped {tag}: /dev/net/tun is missing");
            return None;
        }
        util::init();
        let mut lab = Lab::new(tag);
        let client = lab.namespace("c");
        let server = lab.namespace("s");
        let seed = u64::from(std::process::id()) << 16 | tag.len() as u64;
        eprintln!("{tag}: wire seed {seed}");
        let wire = Wire::new(&client, CLIENT_IP, &server, SERVER_IP, seed);
        Some(Hosts {
            wire,
            client,
            server,
            _lab: lab,
        })
    }

    /// A gateway of this process listening in the server's namespace.
    fn gateway(
        &self,
        exports: &[&str],
        tweak: impl FnOnce(&mut pipeslot::gateway::GatewayOptions) + Send + 'static,
    ) -> u16 {
        let exports: Vec<String> = exports.iter().map(|e| e.to_string()).collect();
        in_namespace(&self.server, move || {
            let refs: Vec<&str> = exports.iter().map(String::as_str).collect();
            gateway_at(&format!("{SERVER_IP}:0"), &refs, tweak).port()
        })
    }
}

fn remote_name(local: &str) -> String {
    format!(r"\\{SERVER_IP}\pipe\{}", local.rsplit('\\').next().unwrap())
}

/// Message `i` of `len` bytes: its number first, then bytes that depend on both.
fn message(i: u32, len: usize) -> Vec<u8> {
    let mut m: Vec<u8> = (0..len)
        .map(|k| (k as u32).wrapping_mul(2_654_435_761).wrapping_add(i) as u8)
        .collect();
    let n = i.to_le_bytes();
    let head = len.min(4);
    m[..head].copy_from_slice(&n[..head]);
    m
}

/// `PIPESLOT_SOAK_SECS=N`: the lossy tests go on for N seconds and then
/// check this process's descriptors and memory (on demand, one test at a
/// time: `--test-threads=1`, as the counts are the whole process's; CI runs
/// the short form).
fn soak() -> Option<Duration> {
    let secs = std::env::var("PIPESLOT_SOAK_SECS").ok()?;
    Some(Duration::from_secs(
        secs.parse().expect("PIPESLOT_SOAK_SECS: whole seconds"),
    ))
}

/// This process's resident memory (KiB) and open descriptors.
fn footprint() -> (u64, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    (rss, std::fs::read_dir("/proc/self/fd").unwrap().count())
}

#[test]
fn a_lossy_slow_reordering_duplicating_link_delivers_every_message_exactly() {
    let Some(h) = Hosts::new("nf-lossy") else { return };
    let name = util::name("nf-lossy");
    echo_server(&name, 4, false);
    let port = h.gateway(&[&name], |_| {});
    h.wire.set(Faults {
        loss: 0.03,
        duplicate: 0.03,
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(10),
        cut: false,
    });
    let c = h.client.clone();
    let remote = remote_name(&name);
    let soak = soak();
    let limit = Duration::from_secs(120) + soak.unwrap_or_default();
    let (took, sent, checked, first, last) = watchdog(limit, move || {
        in_namespace(&c, move || {
            let t = Instant::now();
            let pipe = client(port).open(&remote).unwrap();
            let sizes = [0usize, 1, 100, 1400, 1500, 4000, 16_000, 40_000, 65_536];
            let mut back = vec![0u8; 65_537];
            let mut bytes = 0;
            let mut first = None;
            let mut i = 0u32;
            while i < 36 || soak.is_some_and(|d| t.elapsed() < d) {
                let msg = message(i, sizes[i as usize % sizes.len()]);
                if i.is_multiple_of(3) {
                    // In parts: a short buffer first, ERROR_MORE_DATA, the rest.
                    pipe.write_msg(&msg).unwrap();
                    let mut got = Vec::new();
                    let mut part = vec![0u8; 1000];
                    loop {
                        let r = pipe.read_msg(&mut part).unwrap();
                        got.extend_from_slice(&part[..r.len]);
                        if !r.more {
                            break;
                        }
                        assert_eq!(r.len, part.len(), "a part fills its buffer");
                    }
                    assert!(
                        got == msg,
                        "message {i} ({} bytes) came back as {} bytes",
                        msg.len(),
                        got.len()
                    );
                } else {
                    let r = pipe.transact(&msg, &mut back).unwrap();
                    assert!(!r.more && back[..r.len] == msg[..], "message {i} ({} bytes)", msg.len());
                }
                bytes += msg.len();
                // Sampled once the session and its buffers are set up.
                if i == 35 {
                    first = Some(footprint());
                }
                i += 1;
            }
            (t.elapsed(), i, bytes, first.unwrap(), footprint())
        })
    });
    let counts = &h.wire.counts;
    let (dropped, duplicated) = (
        counts.dropped.load(std::sync::atomic::Ordering::Relaxed),
        counts.duplicated.load(std::sync::atomic::Ordering::Relaxed),
    );
    eprintln!(
        "{sent} messages, {checked} bytes each way, exact, in {took:?}; the wire dropped {dropped} and \
         duplicated {duplicated} packets; RSS {} → {} KiB, descriptors {} → {}",
        first.0, last.0, first.1, last.1
    );
    assert!(dropped > 0 && duplicated > 0, "the faults took effect");
    if soak.is_some() {
        assert_eq!(
            first.1, last.1,
            "descriptors (client and gateway) after message 36 and at the end"
        );
        assert!(
            last.0 < first.0 * 3 / 2 + 16 * 1024,
            "RSS grew: {} → {} KiB",
            first.0,
            last.0
        );
    }
}

/// The quickest timeouts that still let a log-on through a slow link.
fn short_timeouts(port: u16) -> pipeslot::blocking::ClientOptions {
    let mut o = client(port);
    o.smb_timeouts(2 * SECOND, 2 * SECOND);
    o
}

fn lost(e: &std::io::Error) -> bool {
    matches!(
        code(e),
        Some(Win32Error::ERROR_NETNAME_DELETED | Win32Error::ERROR_SEM_TIMEOUT)
    )
}

#[test]
fn a_cut_link_fails_pending_calls_within_their_timeouts_and_a_later_open_reconnects() {
    let Some(h) = Hosts::new("nf-cut") else { return };
    let name = util::name("nf-cut");
    echo_server(&name, 4, false);
    let port = h.gateway(&[&name], |_| {});
    let (c, remote) = (h.client.clone(), remote_name(&name));
    let wire = std::sync::Arc::new(h.wire);
    let w = wire.clone();
    watchdog(Duration::from_secs(60), move || {
        in_namespace(&c, move || {
            let busy = short_timeouts(port).open(&remote).unwrap();
            let quiet = short_timeouts(port).open(&remote).unwrap();
            let mut reply = [0u8; 64];
            assert_eq!(busy.transact(b"up", &mut reply).unwrap().len, 2);
            w.cut(true);
            // A read on a pipe with nothing to read: no timeout of its own,
            // but the connection's ECHO probe finds the server gone.
            let reader = std::thread::spawn(move || {
                let mut buf = [0u8; 16];
                let t = Instant::now();
                (quiet.read_msg(&mut buf).map(|m| m.len), t.elapsed())
            });
            let t = Instant::now();
            let e = busy.transact(b"anyone?", &mut reply).unwrap_err();
            let transact_took = t.elapsed();
            assert!(lost(&e), "{e}");
            // A transact waits for the server's answer as a read does; the
            // probe starts after a third of the timeout of quiet and waits
            // the timeout: at most 4/3 × 2 s and a tick.
            assert!(
                transact_took < 4 * SECOND,
                "the transact took {transact_took:?} (timeout 2 s)"
            );
            let (r, read_took) = reader.join().unwrap();
            let e = r.unwrap_err();
            assert!(lost(&e), "{e}");
            assert!(read_took < 4 * SECOND, "the read took {read_took:?}");
            // While cut, an open fails within the connect timeout.
            let t = Instant::now();
            let e = short_timeouts(port).open(&remote).unwrap_err();
            assert!(lost(&e), "{e}");
            assert!(t.elapsed() < 5 * SECOND, "{:?}", t.elapsed());
            // The link is back: a later open reconnects and works.
            w.cut(false);
            let again = short_timeouts(port).open(&remote).unwrap();
            let r = again.transact(b"back", &mut reply).unwrap();
            assert_eq!(&reply[..r.len], b"back");
            eprintln!("cut: transact failed in {transact_took:?}, the waiting read in {read_took:?} ({e})");
        })
    });
    drop(wire);
}

#[test]
fn a_cut_link_fails_pending_tokio_calls_and_a_later_open_reconnects() {
    let Some(h) = Hosts::new("nf-tokio") else { return };
    let name = util::name("nf-tokio");
    echo_server(&name, 4, false);
    let port = h.gateway(&[&name], |_| {});
    let (c, remote) = (h.client.clone(), remote_name(&name));
    let wire = std::sync::Arc::new(h.wire);
    let w = wire.clone();
    let options = move || {
        let mut o = pipeslot::tokio::ClientOptions::new();
        o.pipe_mode(PipeMode::Message)
            .smb_port(port)
            .smb_credentials(pipeslot::SmbCredentials::new("alice", "wonderland"))
            .smb_timeouts(2 * SECOND, 2 * SECOND);
        o
    };
    watchdog(Duration::from_secs(60), move || {
        in_namespace(&c, move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let busy = options().open(&remote).unwrap();
                let quiet = options().open(&remote).unwrap();
                let mut reply = [0u8; 64];
                assert_eq!(busy.transact(b"up", &mut reply).await.unwrap().len, 2);
                w.cut(true);
                let reader = tokio::spawn(async move {
                    let mut buf = [0u8; 16];
                    let t = Instant::now();
                    (quiet.read_msg(&mut buf).await.map(|m| m.len), t.elapsed())
                });
                let t = Instant::now();
                let e = busy.transact(b"anyone?", &mut reply).await.unwrap_err();
                assert!(lost(&e), "{e}");
                assert!(t.elapsed() < 4 * SECOND, "{:?}", t.elapsed());
                let (r, took) = reader.await.unwrap();
                let e = r.unwrap_err();
                assert!(lost(&e), "{e}");
                assert!(took < 4 * SECOND, "{took:?}");
                w.cut(false);
                let again = options().open(&remote).unwrap();
                let r = again.transact(b"back", &mut reply).await.unwrap();
                assert_eq!(&reply[..r.len], b"back");
            })
        })
    });
    drop(wire);
}

/// Role: opens args[0] through the gateway on port args[1], says `open`,
/// and waits in a read until killed.
#[test]
#[ignore]
fn remote_reader() {
    if std::env::var("PIPESLOT_CHILD").as_deref() != Ok("remote_reader") {
        return;
    }
    let a = child_args().unwrap();
    let pipe = client(a[1].parse().unwrap()).open(&a[0]).unwrap();
    report("open");
    let mut buf = [0u8; 16];
    let r = pipe.read_msg(&mut buf);
    report(format!("read ended: {r:?}"));
}

#[test]
fn a_client_host_that_vanishes_frees_its_pipe_at_the_gateway_within_the_keepalive() {
    let Some(h) = Hosts::new("nf-gone") else { return };
    let name = util::name("nf-gone");
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .reject_remote_clients(false)
        .max_instances(1)
        .create(&name)
        .unwrap();
    let port = h.gateway(&[&name], |g| {
        g.keepalive(SECOND);
    });
    let remote = remote_name(&name);
    let port_s = port.to_string();
    let mut reader = Peer::spawn_with(
        "netfaults::remote_reader",
        &[&remote, &port_s],
        &[],
        &Lab::exec(&h.client),
    );
    server.connect().unwrap();
    assert_eq!(reader.expect_line(20 * SECOND), "open");
    // The client's host goes away without a word: the link is cut, then
    // the client process dies (its FIN is lost on the cut wire).
    h.wire.cut(true);
    reader.kill();
    let t = Instant::now();
    let h = watchdog(Duration::from_secs(30), move || {
        let mut buf = [0u8; 16];
        let e = server.read_msg(&mut buf).unwrap_err();
        (e, t.elapsed(), server, h)
    });
    let (e, took, server, h) = h;
    assert_eq!(code(&e), Some(Win32Error::ERROR_BROKEN_PIPE), "{e}");
    // keepalive 1 s: probes after 1 s quiet, 3 unanswered a second apart.
    assert!(took < 8 * SECOND, "the instance was freed after {took:?}");
    eprintln!("a vanished client's pipe ended at the gateway after {took:?}");
    // The instance serves the next client once the link is back.
    server.disconnect().unwrap();
    h.wire.cut(false);
    let c = h.client.clone();
    let next = std::thread::spawn(move || {
        in_namespace(&c, move || {
            let pipe = client(port).open(&remote).unwrap();
            let mut reply = [0u8; 16];
            let r = pipe.transact(b"next", &mut reply).unwrap();
            reply[..r.len].to_vec()
        })
    });
    server.connect().unwrap();
    let mut buf = [0u8; 16];
    let m = server.read_msg(&mut buf).unwrap();
    server.write_msg(&buf[..m.len]).unwrap();
    assert_eq!(next.join().unwrap(), b"next");
    drop(h);
}

#[test]
fn lost_duplicated_and_reordered_mailslot_datagrams_never_crash_or_stall_the_reader() {
    let Some(h) = Hosts::new("nf-slot") else { return };
    let path = format!(r"nf\slot{}", std::process::id());
    let slot = MailslotOptions::new()
        .network(true)
        .read_timeout(Duration::from_millis(500))
        .create(format!(r"\\.\mailslot\{path}"))
        .unwrap();
    let receiver = in_namespace(&h.server, || {
        let mut cfg = NetConfig::from_env().unwrap();
        cfg.bind(SERVER_IP.parse().unwrap()).port(0);
        DatagramReceiver::bind(&cfg).unwrap()
    });
    let udp = receiver.local_addr().unwrap().port();
    let receiver = receiver.spawn().unwrap();
    h.wire.set(Faults {
        loss: 0.2,
        duplicate: 0.2,
        delay: Duration::from_millis(2),
        jitter: Duration::from_millis(5),
        cut: false,
    });
    const SENT: u32 = 1000;
    let soak = soak();
    // Before the writer, which its thread drops when done.
    let start_footprint = footprint();
    let target = format!(r"\\{SERVER_IP}\mailslot\{path}");
    let writer = in_namespace(&h.client, move || {
        let mut cfg = NetConfig::from_env().unwrap();
        cfg.bind(CLIENT_IP.parse::<Ipv4Addr>().unwrap()).port(udp);
        MailslotWriter::open_with(&target, &cfg).unwrap()
    });
    let max = writer.max_message_size();
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        let mut i = 0;
        while i < SENT || soak.is_some_and(|d| start.elapsed() < d) {
            let m = message(i, 4 + (i as usize * 37) % (max - 3));
            writer.write(&m).unwrap();
            // Paced, so the faults are the wire's (not a full socket
            // buffer's or a full TUN queue's on a busy machine).
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            i += 1;
        }
        i
    });
    let mut seen = Arrivals::default();
    let mut slowest = Duration::ZERO;
    loop {
        let t = Instant::now();
        match slot.read_message() {
            Ok(m) => {
                assert!(m.len() >= 4, "a message of {} bytes", m.len());
                let i = u32::from_le_bytes(m[..4].try_into().unwrap());
                assert!(m == message(i, m.len()), "message {i} damaged");
                seen.note(i);
            }
            Err(e) => {
                assert_eq!(code(&e), Some(Win32Error::ERROR_SEM_TIMEOUT), "{e}");
                if sender.is_finished() {
                    break;
                }
            }
        }
        slowest = slowest.max(t.elapsed());
    }
    let sent = sender.join().unwrap();
    let (distinct, copies, most, highest) = seen.totals();
    assert!(highest < sent, "message {highest} was never sent");
    assert_eq!(seen.late, 0, "messages older than the window (100,000 behind)");
    let c = receiver.counters();
    let end_footprint = footprint();
    eprintln!(
        "{sent} datagrams sent in {:?}, {distinct} distinct arrived, {} twice; receiver: {c:?}; slowest read \
         {slowest:?}; RSS {} → {} KiB, descriptors {} → {}",
        start.elapsed(),
        copies - distinct,
        start_footprint.0,
        end_footprint.0,
        start_footprint.1,
        end_footprint.1
    );
    if soak.is_some() {
        assert_eq!(start_footprint.1, end_footprint.1, "descriptors of this process");
        let (a, b) = (start_footprint.0, end_footprint.0);
        assert!(b < a * 3 / 2 + 16 * 1024, "RSS grew: {a} → {b} KiB");
    }
    assert!(
        slowest < Duration::from_millis(700),
        "a read took {slowest:?} (timeout 500 ms)"
    );
    assert!(
        distinct > sent / 2 && distinct < sent,
        "loss took effect: {distinct} of {sent}"
    );
    assert!(copies > distinct, "duplicates are delivered as sent");
    assert!(most <= 2, "no message more often than the wire sent it");
    assert_eq!(c.received, c.delivered + c.dropped());
    assert_eq!(c.delivered, u64::from(copies), "every delivery was read");
}

/// How often each mailslot message arrived. Ids far behind the newest are
/// folded into totals, so a soak's memory stays flat; the wire reorders
/// within milliseconds, so none should come that late.
#[derive(Default)]
struct Arrivals {
    recent: HashMap<u32, u32>,
    newest: u32,
    /// Ids below this were folded.
    floor: u32,
    folded: (u32, u32, u32),
    late: u32,
}

impl Arrivals {
    const WINDOW: u32 = 100_000;

    fn note(&mut self, i: u32) {
        if i < self.floor {
            self.late += 1;
            return;
        }
        *self.recent.entry(i).or_default() += 1;
        self.newest = self.newest.max(i);
        if self.newest - self.floor > 2 * Self::WINDOW {
            self.floor = self.newest - Self::WINDOW;
            let floor = self.floor;
            let (d, c, m) = &mut self.folded;
            self.recent.retain(|&id, &mut n| {
                if id >= floor {
                    return true;
                }
                (*d, *c, *m) = (*d + 1, *c + n, (*m).max(n));
                false
            });
        }
    }

    /// Distinct ids, copies, the most copies of one, the highest id.
    fn totals(&self) -> (u32, u32, u32, u32) {
        let (d, c, m) = self.folded;
        let most = self.recent.values().copied().max().unwrap_or(0).max(m);
        (
            d + self.recent.len() as u32,
            c + self.recent.values().sum::<u32>(),
            most,
            self.newest,
        )
    }
}

/// Role: a gateway on 10.77.0.2:args[1] (0: any port) exporting args[0];
/// says `port N`, then serves until killed.
#[test]
#[ignore]
fn gateway_process() {
    if std::env::var("PIPESLOT_CHILD").as_deref() != Ok("gateway_process") {
        return;
    }
    let a = child_args().unwrap();
    let port = gateway_at(&format!("{SERVER_IP}:{}", a[1]), &[&a[0]], |_| {}).port();
    report(format!("port {port}"));
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_server_host_that_reboots_under_a_connection_fails_the_call_and_a_later_open_reaches_the_new_server() {
    let Some(h) = Hosts::new("nf-reboot") else { return };
    let name = util::name("nf-reboot");
    echo_server(&name, 4, false);
    let short = name.rsplit('\\').next().unwrap().to_owned();
    let start = |port: &str| {
        let g = Peer::spawn_with(
            "netfaults::gateway_process",
            &[&short, port],
            &[],
            &Lab::exec(&h.server),
        );
        let said = g.expect_line(20 * SECOND);
        let port: u16 = said.strip_prefix("port ").unwrap().parse().unwrap();
        (g, port)
    };
    let (mut first, port) = start("0");
    let (c, remote) = (h.client.clone(), remote_name(&name));
    let pipe = in_namespace(&c, {
        let remote = remote.clone();
        move || short_timeouts(port).open(&remote).unwrap()
    });
    let mut reply = [0u8; 64];
    assert_eq!(pipe.transact(b"up", &mut reply).unwrap().len, 2);
    // The server's host goes down hard: nothing it sends reaches the client
    // (its FIN is lost), and it comes back with no memory of the connection.
    h.wire.cut(true);
    first.kill();
    let (_second, again) = start(&port.to_string());
    assert_eq!(again, port, "the new gateway has the same port");
    let wire = std::sync::Arc::new(h.wire);
    let w = wire.clone();
    let back = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        w.cut(false);
    });
    // The client's request reaches a host that knows no such connection:
    // it is reset, and the call fails well within its timeout.
    let t = Instant::now();
    let e = pipe.transact(b"anyone?", &mut reply).unwrap_err();
    let took = t.elapsed();
    back.join().unwrap();
    assert!(lost(&e), "{e}");
    assert!(took < 4 * SECOND, "the call took {took:?} (timeout 2 s)");
    // A later open reaches the new server.
    let r = in_namespace(&c, move || {
        let p = short_timeouts(port).open(&remote).unwrap();
        let mut reply = [0u8; 64];
        let r = p.transact(b"new server", &mut reply).unwrap();
        reply[..r.len].to_vec()
    });
    assert_eq!(r, b"new server");
    eprintln!("a rebooted server host: the pending call failed in {took:?} ({e})");
    drop(wire);
}
