//! A real peer: Samba's nmbd in a network namespace. nmbd logs our datagram
//! to its mailslot, and answers a NETLOGON query we send with a datagram our
//! receiver delivers to our mailslot (replies go to UDP 138, so the pipeslot
//! side runs in a namespace of its own too).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::mailslot_child::hex;
use crate::netns::{self, Lab};
use crate::util::{self, Peer, SECOND};

const NMBD_IP: &str = "10.214.0.1";
const OUR_IP: &str = "10.214.0.2";

/// nmbd as TARGETHOST, workgroup MSLAB, PDC and master browser, log level 5,
/// every file under `dir`.
fn nmbd_conf(dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        "[global]
  netbios name = TARGETHOST
  workgroup = MSLAB
  interfaces = {NMBD_IP}/24
  bind interfaces only = yes
  disable netbios = no
  lock directory = {d}/lock
  state directory = {d}/state
  cache directory = {d}/cache
  private dir = {d}/private
  pid directory = {d}/run
  ncalrpc dir = {d}/ncalrpc
  passdb backend = tdbsam:{d}/private/passdb.tdb
  log file = {d}/log/nmbd.log
  max log size = 0
  log level = 5
  server role = classic primary domain controller
  domain logons = yes
  domain master = yes
  local master = yes
  preferred master = yes
  os level = 65
  wins support = no
"
    )
}

struct Nmbd {
    child: Child,
    log: std::path::PathBuf,
}

impl Nmbd {
    fn start(ns: &str) -> Nmbd {
        let dir = util::root().join(format!("nmbd-{ns}"));
        for sub in ["lock", "state", "cache", "private", "run", "ncalrpc", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let conf = dir.join("smb.conf");
        std::fs::write(&conf, nmbd_conf(&dir)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "nmbd", "--foreground", "--no-process-group", "-s"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nmbd");
        Nmbd {
            child,
            log: dir.join("log/nmbd.log"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until nmbd's log has a line holding every one of `parts`.
    fn wait_for(&self, parts: &[&str], limit: Duration) -> Option<String> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Some(line) = self.log().lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return Some(line.trim().to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Nmbd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// [MS-ADTS] 6.3.1.4 NETLOGON_LOGON_QUERY (opcode 7, LOGON_PRIMARY_QUERY):
/// computer name, the mailslot to answer to, then the name in UTF-16, NT
/// version 1 and the two 0xFFFF tokens.
fn logon_primary_query(computer: &str, reply_slot: &str) -> Vec<u8> {
    let mut q = 7u16.to_le_bytes().to_vec();
    q.extend_from_slice(computer.as_bytes());
    q.push(0);
    q.extend_from_slice(reply_slot.as_bytes());
    q.push(0);
    if q.len() % 2 == 1 {
        q.push(0);
    }
    for u in computer.encode_utf16().chain([0]) {
        q.extend_from_slice(&u.to_le_bytes());
    }
    q.extend_from_slice(&1u32.to_le_bytes());
    q.extend_from_slice(&[0xff; 4]);
    q
}

#[test]
fn nmbd_logs_our_datagram_and_answers_our_netlogon_query() {
    let test = "nmbd_logs_our_datagram_and_answers_our_netlogon_query";
    if !netns::available(test) || !netns::have_tool(test, "nmbd", "samba") {
        return;
    }
    util::init();
    let mut lab = Lab::new("nmbd");
    let srv = lab.namespace("srv");
    let cli = lab.namespace("cli");
    lab.veth(&srv, "eth0", &cli, "eth0");
    lab.address(&srv, "eth0", &format!("{NMBD_IP}/24"));
    lab.address(&cli, "eth0", &format!("{OUR_IP}/24"));
    lab.hosts(&cli, &format!("{NMBD_IP} TARGETHOST"));
    let started = Instant::now();
    let nmbd = Nmbd::start(&srv);

    let dir = util::root().join("host-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.display().to_string();
    let env = [
        ("PIPESLOT_DIR", dir.as_str()),
        ("PIPESLOT_MAILSLOT_PORT", "138"),
        ("PIPESLOT_BIND", "0.0.0.0"),
        ("PIPESLOT_WORKGROUP", "MSLAB"),
    ];
    let exec = Lab::exec(&cli);

    // 1. A write to \\TARGETHOST\: nmbd logs it once it owns its name.
    let mut writer = Peer::spawn_with(
        "mailslot_child::ms_writer",
        &[r"\\TARGETHOST\mailslot\pipeslot\demo", "Hello, mailslot!"],
        &[env.as_slice(), &[("PIPESLOT_REPEAT", "60,250")]].concat(),
        &exec,
    );
    let logged = nmbd.wait_for(
        &[
            "process_dgram: datagram from",
            "to TARGETHOST<00>",
            &format!("IP {OUR_IP}"),
            r"for \MAILSLOT\pipeslot\demo",
            "len=16",
        ],
        Duration::from_secs(20),
    );
    writer.kill();
    let logged = logged.unwrap_or_else(|| panic!("nmbd never logged our datagram; its log:\n{}", nmbd.log()));
    eprintln!("nmbd: {logged} (after {:?})", started.elapsed());

    // 2. A NETLOGON query to the domain from a process with a network
    // mailslot (so the query leaves from UDP 138, where nmbd answers).
    let query = hex(&logon_primary_query("MSLABPEER", r"\MAILSLOT\NET\GETDC123"));
    let asker = Peer::spawn_with(
        "mailslot_child::ms_ask",
        &[r"\\.\mailslot\net\getdc123", r"\\MSLAB\mailslot\NET\NETLOGON", &query],
        &env,
        &exec,
    );
    let reply = asker
        .next_line(Duration::from_secs(40))
        .unwrap_or_else(|| panic!("the asker said nothing; nmbd's log:\n{}", nmbd.log()));
    assert!(reply.starts_with("reply "), "{reply}; nmbd's log:\n{}", nmbd.log());
    // LOGON_PRIMARY_RESPONSE (0x0c) naming TARGETHOST, the PDC.
    let answer = crate::mailslot_child::unhex(&reply["reply ".len()..]);
    assert_eq!(answer[..2], [0x0c, 0x00], "{reply}");
    assert_eq!(&answer[2..13], b"TARGETHOST\0", "{reply}");
    let answered = nmbd
        .wait_for(
            &[
                "process_dgram: datagram from",
                "to MSLAB<00>",
                r"for \MAILSLOT\NET\NETLOGON",
            ],
            SECOND,
        )
        .expect("nmbd logged our query");
    let sent = nmbd
        .wait_for(&["Sending a packet", &format!("to ({OUR_IP}) on port 138")], SECOND)
        .expect("nmbd answered to port 138");
    eprintln!("nmbd: {answered}; {sent}; {reply} (after {:?})", started.elapsed());
}
