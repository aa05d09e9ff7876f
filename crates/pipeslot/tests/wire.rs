//! A wire with faults between two network namespaces, in user space. Each
//! end is a TUN device, and relay threads here carry every IP packet across:
//! all of them, or with loss, delay, jitter (which reorders packets sent
//! closer together than it), duplication, or none at all (a cut link).
//! This is what `tc netem` would do; this machine's kernel has no netem
//! qdisc, and a relay does the same to any protocol with no kernel support
//! beyond TUN.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::netns::run;

/// What the wire does to each packet, switchable while it runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// The share of packets dropped, 0.0 to 1.0.
    pub loss: f64,
    /// The share of packets sent twice.
    pub duplicate: f64,
    /// Every packet's delay.
    pub delay: Duration,
    /// A further delay, uniform in 0..jitter, drawn per packet.
    pub jitter: Duration,
    /// Nothing gets through, also what was already on the wire.
    pub cut: bool,
}

/// Packets counted over the wire's life, both ways.
#[derive(Debug, Default)]
pub struct Counts {
    pub carried: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
}

/// The wire; it and its TUN devices go away on drop.
pub struct Wire {
    faults: Arc<Mutex<Faults>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub counts: Arc<Counts>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Wire {
    /// Joins namespace `a` (address `a_ip`) and `b` (`b_ip`) point to point,
    /// through device `w0` in each.
    pub fn new(a: &str, a_ip: &str, b: &str, b_ip: &str, seed: u64) -> Wire {
        let tun_a = Arc::new(open_tun(a, "w0"));
        let tun_b = Arc::new(open_tun(b, "w0"));
        for (ns, me, peer) in [(a, a_ip, b_ip), (b, b_ip, a_ip)] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                me,
                "peer",
                &format!("{peer}/32"),
                "dev",
                "w0",
            ]);
            run(&["ip", "-n", ns, "link", "set", "w0", "up"]);
        }
        let mut wire = Wire {
            faults: Arc::new(Mutex::new(Faults::default())),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            counts: Arc::new(Counts::default()),
        };
        wire.carry(tun_a.clone(), tun_b.clone(), seed);
        wire.carry(tun_b, tun_a, seed ^ 0x9e37_79b9_7f4a_7c15);
        wire
    }

    /// From now on, these faults.
    pub fn set(&self, faults: Faults) {
        *lock(&self.faults) = faults;
    }

    /// Cuts the link, or joins it again (other faults unchanged).
    pub fn cut(&self, cut: bool) {
        lock(&self.faults).cut = cut;
    }

    /// One direction: a reader that decides each packet's fate and a
    /// writer that sends each when it is due.
    fn carry(&mut self, from: Arc<File>, to: Arc<File>, seed: u64) {
        type Queue = (Mutex<BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>>, Condvar);
        let queue: Arc<Queue> = Arc::new((Mutex::new(BinaryHeap::new()), Condvar::new()));
        let (faults, stop, counts) = (self.faults.clone(), self.stop.clone(), self.counts.clone());
        let q = queue.clone();
        self.threads.push(std::thread::spawn(move || {
            let mut rng = Rng(seed | 1);
            let mut seq = 0u64;
            let mut buf = vec![0u8; 65_536];
            while !stop.load(Ordering::Relaxed) {
                let mut fds = [rustix::event::PollFd::new(&*from, rustix::event::PollFlags::IN)];
                let tick = rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 20_000_000,
                };
                if !matches!(rustix::event::poll(&mut fds, Some(&tick)), Ok(n) if n > 0) {
                    continue;
                }
                let Ok(n) = (&*from).read(&mut buf) else { continue };
                let f = *lock(&faults);
                if f.cut || rng.chance(f.loss) {
                    counts.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let copies = if rng.chance(f.duplicate) {
                    counts.duplicated.fetch_add(1, Ordering::Relaxed);
                    2
                } else {
                    1
                };
                let now = Instant::now();
                let mut heap = lock(&q.0);
                for _ in 0..copies {
                    let due = now + f.delay + f.jitter.mul_f64(rng.unit());
                    seq += 1;
                    heap.push(Reverse((due, seq, buf[..n].to_vec())));
                }
                q.1.notify_one();
            }
        }));
        let (faults, stop, counts) = (self.faults.clone(), self.stop.clone(), self.counts.clone());
        self.threads.push(std::thread::spawn(move || {
            let mut heap = lock(&queue.0);
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                let wait = match heap.peek() {
                    Some(Reverse((due, _, _))) if *due <= now => {
                        let Reverse((_, _, packet)) = heap.pop().unwrap();
                        drop(heap);
                        if lock(&faults).cut {
                            counts.dropped.fetch_add(1, Ordering::Relaxed);
                        } else if (&*to).write(&packet).is_ok() {
                            counts.carried.fetch_add(1, Ordering::Relaxed);
                        }
                        heap = lock(&queue.0);
                        continue;
                    }
                    Some(Reverse((due, _, _))) => (*due - now).min(Duration::from_millis(20)),
                    None => Duration::from_millis(20),
                };
                heap = queue.1.wait_timeout(heap, wait).unwrap_or_else(|p| p.into_inner()).0;
            }
        }));
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Runs `f` on a thread of its own inside network namespace `ns`. Sockets
/// it makes (and threads it starts) belong to `ns`; the rest of the
/// process stays where it is.
pub fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let handle = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&handle),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap_or_else(|e| panic!("setns {path}: {e}"));
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A TUN device `ifname` made in namespace `ns`, and the descriptor that
/// carries its packets (raw IP, no header).
fn open_tun(ns: &str, ifname: &str) -> File {
    let ifname = ifname.to_owned();
    in_namespace(ns, move || {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .expect("/dev/net/tun");
        #[repr(C)]
        struct IfReq {
            name: [u8; 16],
            flags: libc::c_short,
            _rest: [u8; 22],
        }
        let mut req = IfReq {
            name: [0; 16],
            flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
            _rest: [0; 22],
        };
        req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
        #[allow(unsafe_code)]
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq` (40 bytes:
        // a NUL-terminated name and the flags), which `req` is laid out as
        // and outlives the call; `f` is an open /dev/net/tun descriptor.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        assert_eq!(rc, 0, "TUNSETIFF {ifname}: {}", std::io::Error::last_os_error());
        f
    })
}

/// xorshift64*: the wire's fates, repeatable from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}
