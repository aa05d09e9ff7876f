//! Resource exhaustion: a server process out of file descriptors (its
//! `ulimit -n`) tells the clients it cannot take that it has no more
//! (ERROR_NO_SYSTEM_RESOURCES, at once, not a 1 s silence read as "no such
//! pipe"), keeps serving those it has, takes new ones once descriptors come
//! back, and does not spin meanwhile. A namespace root whose file system is
//! full refuses new names with ERROR_DISK_FULL and serves the old ones. A
//! gateway out of descriptors does not spin and serves its sessions on.

use std::time::{Duration, Instant};

use pipeslot::blocking::{ClientOptions, ServerOptions};
use pipeslot::{PipeMode, Win32Error};

use crate::util::{self, child_args, report, Peer, SECOND};

/// The fds this process has open, by number.
fn open_fds() -> Vec<u32> {
    let mut v: Vec<u32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// A role: serves args[0] with args[1] message-mode echo instances, then
/// lowers its own descriptor limit so that exactly args[2] are left free;
/// reports `ready`.
#[test]
#[ignore]
fn starved_server() {
    if std::env::var("PIPESLOT_CHILD").as_deref() != Ok("starved_server") {
        return;
    }
    let a = child_args().unwrap();
    let (instances, free): (usize, u64) = (a[1].parse().unwrap(), a[2].parse().unwrap());
    for _ in 0..instances {
        let s = ServerOptions::new()
            .pipe_mode(PipeMode::Message)
            .max_instances(instances)
            .create(&a[0])
            .unwrap();
        std::thread::spawn(move || loop {
            if s.connect().is_err() {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let mut buf = [0u8; 256];
            while let Ok(m) = s.read_msg(&mut buf) {
                if s.write_msg(&buf[..m.len]).is_err() {
                    break;
                }
            }
            let _ = s.disconnect();
        });
    }
    std::thread::sleep(Duration::from_millis(200));
    leave_free_fds(free);
    report("ready");
    std::thread::sleep(Duration::from_secs(60));
}

/// Lowers this process's `ulimit -n` to the smallest limit under which
/// `free` descriptor numbers are unused.
fn leave_free_fds(free: u64) {
    let fds = open_fds();
    let mut limit = 0u64;
    while limit - fds.iter().filter(|&&f| u64::from(f) < limit).count() as u64 != free {
        limit += 1;
    }
    let old = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(limit),
            maximum: old.maximum,
        },
    )
    .unwrap();
}

/// A role: a gateway (and an echo pipe, args[0], it exports) on loopback;
/// reports its port, waits for the file args[1] to appear (the parent has
/// its session open by then), takes every descriptor left (a limit of 64,
/// the rest held open), reports `ready`; gives them back when the file
/// args[2] appears, and reports `released`.
#[test]
#[ignore]
fn starved_gateway() {
    if std::env::var("PIPESLOT_CHILD").as_deref() != Ok("starved_gateway") {
        return;
    }
    let a = child_args().unwrap();
    crate::gateway::echo_server(&a[0], 4, false);
    let port = crate::gateway::gateway_at("127.0.0.1:0", &[&a[0]], |_| {}).port();
    report(format!("port {port}"));
    let wait_for = |f: &str| {
        while !std::path::Path::new(f).exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for(&a[1]);
    leave_free_fds(64);
    let mut hog = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hog.push(f);
    }
    report("ready");
    wait_for(&a[2]);
    drop(hog);
    report("released");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_gateway_out_of_descriptors_does_not_spin_serves_its_sessions_and_recovers() {
    let name = util::name("starved-gw");
    let go = util::root().join(format!("go-{}", std::process::id()));
    let release = util::root().join(format!("release-{}", std::process::id()));
    let (go_s, release_s) = (go.to_str().unwrap().to_owned(), release.to_str().unwrap().to_owned());
    let gw = Peer::spawn_as_user("exhaustion::starved_gateway", &[&name, &go_s, &release_s], &[], None);
    let said = gw.expect_line(20 * SECOND);
    let port: u16 = said.strip_prefix("port ").unwrap().parse().unwrap();
    let remote = format!(r"\\127.0.0.1\pipe\{}", name.rsplit('\\').next().unwrap());
    let transact = |c: &pipeslot::blocking::NamedPipeClient, what: &[u8]| {
        let mut reply = [0u8; 64];
        let r = c.transact(what, &mut reply).unwrap();
        assert_eq!(&reply[..r.len], what);
    };
    let session = crate::gateway::client(port).open(&remote).unwrap();
    transact(&session, b"before");
    std::fs::write(&go, b"").unwrap();
    assert_eq!(gw.expect_line(10 * SECOND), "ready");
    // Connections until the gateway has no descriptor left for them, and more.
    let mut flood = Vec::new();
    for _ in 0..40 {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            flood.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let before = cpu_ticks(gw.pid());
    std::thread::sleep(Duration::from_millis(500));
    let spent = cpu_ticks(gw.pid()) - before;
    assert!(spent < 20, "the starved gateway spent {spent} ticks in 0.5 s: it spins");
    // The session it had goes on.
    transact(&session, b"during");
    // Once descriptors are back, a new client (another account: another
    // connection) logs on and is served.
    drop(flood);
    std::fs::write(&release, b"").unwrap();
    assert_eq!(gw.expect_line(10 * SECOND), "released");
    let deadline = Instant::now() + 5 * SECOND;
    let mut bob = crate::gateway::client(port);
    bob.smb_credentials(pipeslot::SmbCredentials::new("bob", "builder"));
    let again = loop {
        match bob.open(&remote) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("no new session after the flood left: {e}"),
        }
    };
    transact(&again, b"after");
}

/// CPU time (user + system, in clock ticks) of a process so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn a_server_out_of_descriptors_says_so_serves_the_others_and_recovers() {
    let name = util::name("starved");
    let server = Peer::spawn_as_user("exhaustion::starved_server", &[&name, "32", "4"], &[], None);
    assert_eq!(server.expect_line(20 * SECOND), "ready");
    let transact = |c: &pipeslot::blocking::NamedPipeClient, what: &[u8]| {
        let mut reply = [0u8; 64];
        let r = c.transact(what, &mut reply).unwrap();
        assert_eq!(&reply[..r.len], what);
    };
    let mut held = Vec::new();
    let refused = loop {
        let t = Instant::now();
        match ClientOptions::new().pipe_mode(PipeMode::Message).open(&name) {
            Ok(c) => {
                transact(&c, b"in");
                held.push(c);
                assert!(held.len() < 32, "the limit never bit");
            }
            Err(e) => break (e, t.elapsed()),
        }
    };
    let (e, took) = refused;
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_NO_SYSTEM_RESOURCES), "{e}");
    assert!(e.to_string().contains("file descriptors"), "{e}");
    assert!(
        took < Duration::from_millis(500),
        "said at once, not after a silence: {took:?}"
    );
    assert!(!held.is_empty(), "some clients got in first");
    // Knocking on: still refused at once, and the server does not spin.
    let before = cpu_ticks(server.pid());
    for _ in 0..20 {
        let e = ClientOptions::new().open(&name).unwrap_err();
        assert_eq!(util::code(&e), Some(Win32Error::ERROR_NO_SYSTEM_RESOURCES), "{e}");
    }
    std::thread::sleep(Duration::from_millis(500));
    let spent = cpu_ticks(server.pid()) - before;
    assert!(spent < 20, "the starved server spent {spent} ticks in 0.5 s: it spins");
    // Those connected are served; a client that leaves makes room.
    for c in &held {
        transact(c, b"still");
    }
    held.truncate(held.len() - 1);
    let deadline = Instant::now() + 2 * SECOND;
    let again = loop {
        match ClientOptions::new().pipe_mode(PipeMode::Message).open(&name) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(util::code(&e), Some(Win32Error::ERROR_NO_SYSTEM_RESOURCES), "{e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("no room after a client left: {e}"),
        }
    };
    transact(&again, b"back");
}

/// A role in a namespace root on a tmpfs with few inodes (PIPESLOT_DIR):
/// creates names until the file system is full, and reports how that
/// failed, whether the first name still serves, and whether a name fits
/// again once one is closed.
#[test]
#[ignore]
fn full_namespace() {
    if std::env::var("PIPESLOT_CHILD").as_deref() != Ok("full_namespace") {
        return;
    }
    let mut held = Vec::new();
    let failure = loop {
        let name = format!(r"\\.\pipe\full-{}", held.len());
        match ServerOptions::new().pipe_mode(PipeMode::Message).create(&name) {
            Ok(s) => held.push((name, s)),
            Err(e) => break e,
        }
        if held.len() > 10_000 {
            return report("never full");
        }
    };
    report(format!(
        "full after {} names: {}",
        held.len(),
        util::code(&failure)
            .and_then(|c| c.name())
            .unwrap_or("not a Win32 error")
    ));
    report(format!("text {failure}"));
    // The first name still serves.
    let (first, server) = &held[0];
    let t = std::thread::scope(|sc| {
        sc.spawn(|| {
            server.connect().unwrap();
            let mut buf = [0u8; 16];
            let m = server.read_msg(&mut buf).unwrap();
            server.write_msg(&buf[..m.len]).unwrap();
        });
        let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(first).unwrap();
        let mut reply = [0u8; 16];
        let r = c.transact(b"still", &mut reply).unwrap();
        reply[..r.len].to_vec()
    });
    report(format!("served {}", String::from_utf8_lossy(&t)));
    // Nothing of the refused create is left: every folder holds a server.
    let root = std::env::var("PIPESLOT_DIR").unwrap();
    let folders = std::fs::read_dir(&root).unwrap().count();
    report(format!("folders {folders} for {} names", held.len()));
    // Room again: a name that was refused fits once others go (a closed
    // server's acceptor clears its folder a moment later).
    drop(held.pop());
    drop(held.pop());
    let until = Instant::now() + 2 * SECOND;
    let again = loop {
        match ServerOptions::new().create(r"\\.\pipe\full-again") {
            Err(e) if Instant::now() < until && util::code(&e) == Some(Win32Error::ERROR_DISK_FULL) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            r => break r,
        }
    };
    match again {
        Ok(_) => report("again ok"),
        Err(e) => report(format!("again refused: {e}")),
    }
}

#[test]
fn a_full_namespace_file_system_is_error_disk_full_and_the_rest_goes_on() {
    if !rustix::process::geteuid().is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "mounting a tmpfs needs root; CI must run this"
        );
        eprintln!("skipped: not root, cannot mount a tmpfs");
        return;
    }
    util::init(); // it empties the root once: before the mount point is made in it
    let dir = util::root().join(format!("full-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m,nr_inodes=64,mode=1777", "tmpfs"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(ok.success(), "mount a tmpfs at {}", dir.display());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.clone());
    let dir_s = dir.to_str().unwrap().to_owned();
    let child = Peer::spawn_as_user("exhaustion::full_namespace", &[], &[("PIPESLOT_DIR", &dir_s)], None);
    let full = child.expect_line(30 * SECOND);
    assert!(
        full.starts_with("full after ") && full.ends_with(": ERROR_DISK_FULL"),
        "{full}"
    );
    let text = child.expect_line(5 * SECOND);
    assert!(text.contains("ERROR_DISK_FULL (112)"), "{text}");
    assert_eq!(
        child.expect_line(10 * SECOND),
        "served still",
        "the names made before serve on"
    );
    let folders = child.expect_line(10 * SECOND);
    let n: Vec<&str> = folders.split(' ').collect();
    assert_eq!(n[1], n[3], "no folder left by the refused create: {folders}");
    assert_eq!(child.expect_line(10 * SECOND), "again ok", "a name fits once others go");
}
