//! Private test networks: network namespaces made with `ip netns`, joined by
//! veth pairs (and a bridge in a namespace of its own), addressed from a
//! private range inside the namespaces only. Nothing is added to the host's
//! own network namespace, so nothing can reach a real network. Every
//! namespace (and `/etc/netns/<ns>/` file) is removed on drop, also when a
//! test fails.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Whether namespace tests can run: root and iproute2. Outside CI a missing
/// piece skips the test with a printed reason; under `CI=true` it fails.
pub fn available(test: &str) -> bool {
    let reason = if !rustix::process::geteuid().is_root() {
        Some("not root (network namespaces need it)")
    } else if Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        Some("`ip` (iproute2) is missing")
    } else {
        None
    };
    match reason {
        None => true,
        Some(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: {why}; CI must run it"
            );
            eprintln!("skipped {test}: {why}");
            false
        }
    }
}

/// Whether a program is installed (skip or, under CI, fail as `available`).
pub fn have_tool(test: &str, tool: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| std::path::Path::new(d).join(tool).is_file());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: `{tool}` is missing (apt-get install {package}); CI must run it"
        );
        eprintln!("skipped {test}: `{tool}` is missing (apt-get install {package})");
    }
    found
}

/// Runs a command; panics with its output when it fails.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A set of namespaces that live as long as this value.
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
}

impl Lab {
    /// A lab whose namespace names start with a prefix unique to this run.
    pub fn new(tag: &str) -> Lab {
        let prefix = format!(
            "pst-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        Lab {
            prefix,
            namespaces: Vec::new(),
        }
    }

    /// Makes namespace `<prefix>-<name>` with its loopback up; its full name.
    pub fn namespace(&mut self, name: &str) -> String {
        let ns = format!("{}-{name}", self.prefix);
        run(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// Joins namespaces `a` and `b` with a veth pair: `a_if` in `a`,
    /// `b_if` in `b` (names are per namespace, so short ones never clash).
    pub fn veth(&self, a: &str, a_if: &str, b: &str, b_if: &str) {
        run(&[
            "ip", "-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b,
        ]);
        run(&["ip", "-n", a, "link", "set", a_if, "up"]);
        run(&["ip", "-n", b, "link", "set", b_if, "up"]);
    }

    /// Gives `ifname` in `ns` the address `cidr` with the subnet's broadcast.
    pub fn address(&self, ns: &str, ifname: &str, cidr: &str) {
        run(&["ip", "-n", ns, "addr", "add", cidr, "brd", "+", "dev", ifname]);
    }

    /// Makes bridge `br` in namespace `ns`.
    pub fn bridge(&self, ns: &str, br: &str) {
        run(&["ip", "-n", ns, "link", "add", br, "type", "bridge"]);
        run(&["ip", "-n", ns, "link", "set", br, "up"]);
    }

    /// Puts `ifname` of `ns` on bridge `br`.
    pub fn enslave(&self, ns: &str, ifname: &str, br: &str) {
        run(&["ip", "-n", ns, "link", "set", ifname, "master", br]);
    }

    /// A hosts file `ip netns exec` shows programs in `ns` as /etc/hosts.
    pub fn hosts(&self, ns: &str, lines: &str) {
        let dir = etc_dir(ns);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts"), format!("127.0.0.1 localhost\n{lines}\n")).unwrap();
    }

    /// `ip netns exec <ns>`, to put in front of a command.
    pub fn exec(ns: &str) -> [&str; 4] {
        ["ip", "netns", "exec", ns]
    }
}

fn etc_dir(ns: &str) -> PathBuf {
    PathBuf::from("/etc/netns").join(ns)
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            // Kill what still runs inside (children are also killed by their
            // owners; this catches daemons), then remove the namespace.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                        }
                    }
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            let _ = std::fs::remove_dir_all(etc_dir(ns));
        }
    }
}
