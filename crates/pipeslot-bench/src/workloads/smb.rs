//! Workload 8: remote pipes through a real Samba on loopback.
//!
//! One private smbd (root and Debian's samba needed; else the rows say
//! why they were skipped) serves `\pipe\benchecho`, a message pipe whose
//! server is this process behind Samba's external-pipe proxy: it echoes
//! every message. The same transact (64 B, and 60,000 B for bulk) is timed
//! through several clients, interleaved run after run:
//!
//! - `pipeslot`, `pipeslot-tokio`: `ClientOptions::open(r"\\127.0.0.1\pipe\benchecho")`.
//! - `replay-wire`: the server's own cost. Each request is built and signed
//!   by the same state machine before the clock starts, and the answer is
//!   checked after it stops: what remains is the socket, smbd and the pipe
//!   server; no client can do better.
//! - `replay`: the protocol's floor: the same, with building, signing and
//!   checking inside the clock (the work every signing client must do),
//!   and nothing else: no threads, no pool, no pipe semantics.
//! - `smb-rs` (cargo feature `smb-rs`) and `impacket` (Python): other
//!   clients of the same server.
//! - `gateway`: our client through our own gateway (in this process, on
//!   loopback) to a local pipeslot echo server: the path of
//!   `pipeslot gateway`, against Samba's (`pipeslot`) with the same client.
//! - `samba-mode`: our client through smbd to the same local echo server,
//!   the gateway in the Samba mode serving it as one of smbd's external pipes.
//! - `tcp-echo`: a raw TCP echo on loopback, the floor of any network
//!   round trip; `npa-direct`: the pipe server's socket without smbd.
//! - `hops`: a TCP echo and then a local pipe transact to the gateway's
//!   echo server, timed together: the two hops any gateway makes, with
//!   nothing of SMB. (On a VM a wake-up across CPUs costs more on a Unix
//!   socket than on TCP loopback, so the local hop can dominate.)
//! - `gateway-shm`, `hops-shm`: the same against a second echo server that
//!   takes the shared-memory path (the gateway offers it for its hop).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use pipeslot::{PipeMode, SmbCredentials};

use super::{link_ratios, Ctx};
use crate::report::{Outcome, Row, TargetDef, Unit};
use crate::Workload;

/// The lab the interop tests use (a private smbd, our pipe endpoint).
#[allow(unreachable_pub, missing_docs)]
#[path = "../../../pipeslot-smb/tests/support/smbd.rs"]
pub(crate) mod smbd;

const PIPE: &str = "benchecho";
const BULK: usize = 60_000;

/// The clients, in report order.
const CASES: [&str; 13] = [
    "pipeslot",
    "pipeslot-tokio",
    "gateway",
    "gateway-shm",
    "samba-mode",
    "replay-wire",
    "replay",
    "smb-rs",
    "impacket",
    "npa-direct",
    "tcp-echo",
    "hops",
    "hops-shm",
];

struct Lab {
    smbd: smbd::Smbd,
    _echo: smbd::NpaPipe,
    tcp: u16,
    /// Our gateway's port, and the name of the local pipe it exports.
    gateway: u16,
    local: String,
    /// The same echo server with the shared-memory path on.
    local_shm: String,
}

/// A local message pipe echoing every message, an instance per client,
/// exported by a gateway of our own on loopback, on the socket path and
/// (a second name) on shared memory: the gateway offers it for its local
/// hop, the server decides.
fn gateway_lab() -> io::Result<(u16, String, String)> {
    let local = format!("bench-gw-echo-{}", std::process::id());
    let local_shm = format!("{local}-shm");
    echo_server(&local, false)?;
    echo_server(&local_shm, true)?;
    let mut g = pipeslot::gateway::GatewayOptions::new(([127, 0, 0, 1], 0).into());
    g.user(smbd::USER, smbd::PASSWORD).export(&local).export(&local_shm);
    let g = g.bind()?;
    let port = g.local_addr()?.port();
    std::thread::spawn(move || g.serve());
    Ok((port, local, local_shm))
}

fn echo_server(local: &str, shm: bool) -> io::Result<()> {
    use pipeslot::blocking::ServerOptions;
    let local = local.to_owned();
    let mut opts = ServerOptions::new();
    opts.pipe_mode(PipeMode::Message)
        .reject_remote_clients(false)
        .shared_memory(shm);
    let first = opts.create(&local)?;
    let name = local.clone();
    std::thread::spawn(move || {
        let mut next = Some(first);
        loop {
            let server = match next.take().map_or_else(|| opts.create(&name), Ok) {
                Ok(s) => s,
                Err(_) => return,
            };
            if server.connect().is_err() {
                continue;
            }
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(m) = server.read_msg(&mut buf) {
                    if server.write_msg(&buf[..m.len]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(())
}

/// The same local echo server behind smbd: the gateway in the Samba mode.
fn samba_mode_lab(smbd: &smbd::Smbd, local: &str) -> io::Result<()> {
    let np_dir = smbd
        .np_socket("x")
        .parent()
        .map(std::path::Path::to_owned)
        .ok_or_else(|| io::Error::other("no np folder"))?;
    let mut g = pipeslot::gateway::GatewayOptions::new(([127, 0, 0, 1], 0).into());
    g.samba(np_dir).own_server(false).export(local);
    let g = g.bind()?;
    std::thread::spawn(move || g.serve());
    Ok(())
}

fn lab() -> io::Result<Lab> {
    // Under CI the test support insists on root and smbd; here a missing
    // piece only skips the workload.
    let euid = smbd::rustix_free_euid();
    let has_smbd = ["/usr/sbin/smbd", "/usr/bin/smbd"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    if euid != 0 || !has_smbd {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "needs root and Debian's samba (a private smbd on loopback)",
        ));
    }
    let smbd = smbd::Smbd::start("bench", "").ok_or_else(|| io::Error::other("smbd did not start"))?;
    let echo = smbd::NpaPipe::serve(smbd.np_socket(PIPE), true, |m| smbd::Answer::Reply(vec![m.to_vec()]));
    let tcp = TcpListener::bind("127.0.0.1:0")?;
    let port = tcp.local_addr()?.port();
    std::thread::spawn(move || {
        for s in tcp.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let _ = s.set_nodelay(true);
                let mut buf = vec![0u8; 1 << 17];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let (gateway, local, local_shm) = gateway_lab()?;
    samba_mode_lab(&smbd, &local)?;
    Ok(Lab {
        smbd,
        _echo: echo,
        tcp: port,
        gateway,
        local,
        local_shm,
    })
}

/// One timed series: `count` transacts of `size` bytes; per-exchange times.
fn series(lab: &Lab, case: &str, size: usize, count: usize) -> io::Result<Vec<Duration>> {
    let msg = vec![0x5au8; size];
    let port = lab.smbd.port;
    match case {
        "pipeslot" => {
            let pipe = options(port).open(format!(r"\\127.0.0.1\pipe\{PIPE}"))?;
            let mut reply = vec![0u8; size + 64];
            time(count, || {
                let r = pipe.transact(&msg, &mut reply)?;
                check(r.len == size && !r.more)
            })
        }
        "pipeslot-tokio" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async {
                let mut o = pipeslot::tokio::ClientOptions::new();
                o.pipe_mode(PipeMode::Message)
                    .smb_port(port)
                    .smb_credentials(SmbCredentials::new(smbd::USER, smbd::PASSWORD));
                let pipe = o.open(format!(r"\\127.0.0.1\pipe\{PIPE}"))?;
                let mut reply = vec![0u8; size + 64];
                for _ in 0..warmup(count) {
                    pipe.transact(&msg, &mut reply).await?;
                }
                let mut d = Vec::with_capacity(count);
                for _ in 0..count {
                    let t = Instant::now();
                    let r = pipe.transact(&msg, &mut reply).await?;
                    d.push(t.elapsed());
                    check(r.len == size)?;
                }
                Ok(d)
            }),
        "gateway" | "gateway-shm" => {
            let local = if case == "gateway" { &lab.local } else { &lab.local_shm };
            let pipe = options(lab.gateway).open(format!(r"\\127.0.0.1\pipe\{local}"))?;
            let mut reply = vec![0u8; size + 64];
            time(count, || {
                let r = pipe.transact(&msg, &mut reply)?;
                check(r.len == size && !r.more)
            })
        }
        "samba-mode" => {
            let pipe = options(port).open(format!(r"\\127.0.0.1\pipe\{}", lab.local))?;
            let mut reply = vec![0u8; size + 64];
            time(count, || {
                let r = pipe.transact(&msg, &mut reply)?;
                check(r.len == size && !r.more)
            })
        }
        "replay-wire" => replay::series(port, &msg, count, false),
        "replay" => replay::series(port, &msg, count, true),
        "smb-rs" => smb_rs::series(port, &msg, count),
        "impacket" => impacket(port, size, count),
        "npa-direct" => npa_direct(lab, &msg, count),
        "tcp-echo" => {
            let mut s = TcpStream::connect(("127.0.0.1", lab.tcp))?;
            s.set_nodelay(true)?;
            let mut back = vec![0u8; size];
            time(count, || {
                s.write_all(&msg)?;
                s.read_exact(&mut back)
            })
        }
        "hops" | "hops-shm" => {
            let mut s = TcpStream::connect(("127.0.0.1", lab.tcp))?;
            s.set_nodelay(true)?;
            let mut local = pipeslot::blocking::ClientOptions::new();
            local.pipe_mode(PipeMode::Message).shared_memory(true);
            let name = if case == "hops" { &lab.local } else { &lab.local_shm };
            let pipe = local.open(format!(r"\\.\pipe\{name}"))?;
            let mut back = vec![0u8; size];
            let mut reply = vec![0u8; size + 64];
            time(count, || {
                s.write_all(&msg)?;
                s.read_exact(&mut back)?;
                let r = pipe.transact(&msg, &mut reply)?;
                check(r.len == size)
            })
        }
        other => Err(io::Error::other(format!("no smb case {other}"))),
    }
}

fn options(port: u16) -> pipeslot::blocking::ClientOptions {
    let mut o = pipeslot::blocking::ClientOptions::new();
    o.pipe_mode(PipeMode::Message)
        .smb_port(port)
        .smb_credentials(SmbCredentials::new(smbd::USER, smbd::PASSWORD));
    o
}

fn check(ok: bool) -> io::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(io::Error::other("the echo came back wrong"))
    }
}

/// Untimed exchanges first: a new connection's first answers are slow
/// (smbd's child warming up).
fn warmup(count: usize) -> usize {
    (count / 5).max(100)
}

fn time(count: usize, mut f: impl FnMut() -> io::Result<()>) -> io::Result<Vec<Duration>> {
    for _ in 0..warmup(count) {
        f()?;
    }
    let mut d = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        f()?;
        d.push(t.elapsed());
    }
    Ok(d)
}

/// The pipe server's socket as smbd uses it: the NPA hello, then each
/// message as a u16 length and the bytes.
fn npa_direct(lab: &Lab, msg: &[u8], count: usize) -> io::Result<Vec<Duration>> {
    let mut s = std::os::unix::net::UnixStream::connect(lab.smbd.np_socket(PIPE))?;
    let mut req = b"NPAM".to_vec();
    req.extend_from_slice(&[7, 0, 0, 0, 7, 0, 0, 0]);
    s.write_all(&(req.len() as u32).to_be_bytes())?;
    s.write_all(&req)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut rep = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut rep)?;
    let mut framed = (msg.len() as u16).to_le_bytes().to_vec();
    framed.extend_from_slice(msg);
    let mut back = vec![0u8; framed.len()];
    time(count, || {
        s.write_all(&framed)?;
        s.read_exact(&mut back)
    })
}

/// impacket's SMBConnection doing the same transacts, timing itself.
fn impacket(port: u16, size: usize, count: usize) -> io::Result<Vec<Duration>> {
    let script = r#"
import sys, time
from impacket.smbconnection import SMBConnection
port, user, pw, name, size, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
c = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=port)
c.login(user, pw)
tid = c.connectTree("IPC$")
fid = c.openFile(tid, "\\" + name, desiredAccess=0x12019f, creationOption=0x40, fileAttributes=0x80)
msg = b"Z" * size
for _ in range(max(count // 5, 100)):
    c.transactNamedPipe(tid, fid, msg)
for _ in range(count):
    t = time.perf_counter_ns()
    r = c.transactNamedPipe(tid, fid, msg)
    print(time.perf_counter_ns() - t)
    assert len(r) == size
"#;
    let has = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import impacket.smbconnection"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        return Err(io::Error::new(io::ErrorKind::Unsupported, "needs python3-impacket"));
    }
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .args([
            port.to_string(),
            smbd::USER.into(),
            smbd::PASSWORD.into(),
            PIPE.into(),
            size.to_string(),
            count.to_string(),
        ])
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "impacket failed: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .map(Duration::from_nanos)
        .collect())
}

mod replay {
    //! The ideal client: our state machine builds and signs each request
    //! before the clock starts and checks each answer after it stops.

    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    use pipeslot_smb::client::{Auth, ClientConfig, Connection, Entropy, Handshake, Step, ALL_DIALECTS};
    use pipeslot_smb::header::{Command, Header};
    use pipeslot_smb::status::NtStatus;

    fn frame(s: &mut TcpStream) -> io::Result<Vec<u8>> {
        let mut th = [0u8; 4];
        s.read_exact(&mut th)?;
        let n = pipeslot_smb::transport::message_len(th).map_err(io::Error::other)?;
        let mut m = vec![0u8; n];
        s.read_exact(&mut m)?;
        Ok(m)
    }

    fn call(s: &mut TcpStream, c: &mut Connection, cmd: Command, tree: u32, body: &[u8]) -> io::Result<Vec<u8>> {
        let out = c.request(cmd, tree, body, 65536).map_err(io::Error::other)?;
        s.write_all(&out.frame)?;
        loop {
            for r in c.receive(&frame(s)?).map_err(io::Error::other)? {
                if !r.interim {
                    return Ok(r.msg);
                }
            }
        }
    }

    /// `crypto_timed`: whether building, signing and checking count.
    pub(super) fn series(port: u16, msg: &[u8], count: usize, crypto_timed: bool) -> io::Result<Vec<Duration>> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        let (mut hs, first) = Handshake::start(ClientConfig {
            auth: Auth::Ntlm {
                user: super::smbd::USER.into(),
                domain: String::new(),
                nt_hash: pipeslot_smb::ntlm::nt_hash(super::smbd::PASSWORD),
            },
            dialects: ALL_DIALECTS.to_vec(),
            require_signing: false,
            require_encryption: false,
            workstation: "BENCH".into(),
            entropy: Entropy {
                client_guid: *b"pipeslot-bench-1",
                salt: [7; 32],
                client_challenge: [8; 8],
                nonce_prefix: [9; 4],
            },
            now: 0,
        });
        s.write_all(&first)?;
        loop {
            match hs.receive(&frame(&mut s)?).map_err(io::Error::other)? {
                Step::Send(f) => s.write_all(&f)?,
                Step::Wait => {}
                Step::Ready => break,
            }
        }
        let mut c = hs.finish();
        let tc = call(
            &mut s,
            &mut c,
            Command::TREE_CONNECT,
            0,
            &pipeslot_smb::tree::tree_connect_body(r"\\127.0.0.1\IPC$"),
        )?;
        let tree = Header::new_checked(&tc[..])
            .ok()
            .and_then(|h| h.tree_id())
            .ok_or_else(|| io::Error::other("no tree"))?;
        let rw = pipeslot_smb::create::access::FILE_READ_DATA | pipeslot_smb::create::access::FILE_WRITE_DATA;
        let cr = call(
            &mut s,
            &mut c,
            Command::CREATE,
            tree,
            &pipeslot_smb::create::create_pipe_body(super::PIPE, rw),
        )?;
        let file = pipeslot_smb::create::parse_create_response(&cr).map_err(io::Error::other)?;
        let body = pipeslot_smb::ioctl::fsctl_body(pipeslot_smb::ioctl::fsctl::PIPE_TRANSCEIVE, file, msg, 1 << 20);
        let mut d = Vec::with_capacity(count);
        for i in 0..count + super::warmup(count) {
            let t0 = Instant::now();
            let out = c
                .request(Command::IOCTL, tree, &body, 1 << 20)
                .map_err(io::Error::other)?;
            let t = Instant::now();
            s.write_all(&out.frame)?;
            // An interim STATUS_PENDING may come first; the time is to the
            // final answer.
            let mut answers = Vec::new();
            loop {
                let answer = frame(&mut s)?;
                let interim = pipeslot_smb::header::Header::new_checked(&answer[..])
                    .is_ok_and(|h| h.status() == NtStatus::STATUS_PENDING && h.is_async());
                answers.push(answer);
                if !interim {
                    break;
                }
            }
            let wire = t.elapsed();
            for answer in answers {
                for r in c.receive_owned(answer).map_err(io::Error::other)? {
                    if !r.interim && r.status != NtStatus::STATUS_SUCCESS {
                        return Err(io::Error::other(format!("TRANSCEIVE failed: {}", r.status)));
                    }
                }
            }
            if i >= super::warmup(count) {
                d.push(if crypto_timed { t0.elapsed() } else { wire });
            }
        }
        Ok(d)
    }
}

#[cfg(feature = "smb-rs")]
mod smb_rs {
    //! smb-rs (the `smb` crate) as another client of the same server.

    use std::io;
    use std::time::{Duration, Instant};

    pub(super) fn series(port: u16, msg: &[u8], count: usize) -> io::Result<Vec<Duration>> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async {
                let mut cfg = smb::ClientConfig::default();
                cfg.connection.port = Some(port);
                let client = smb::Client::new(cfg);
                client
                    .ipc_connect("127.0.0.1", super::smbd::USER, super::smbd::PASSWORD.into())
                    .await
                    .map_err(io::Error::other)?;
                let pipe = client
                    .open_pipe("127.0.0.1", super::PIPE)
                    .await
                    .map_err(io::Error::other)?;
                let mut d = Vec::with_capacity(count);
                for i in 0..count + super::warmup(count) {
                    let req = smb::PipeTransceiveRequest::from(smb::IoctlBuffer::from(msg.to_vec()));
                    let t = Instant::now();
                    let r = pipe.fsctl_with_options(req, 65536).await.map_err(io::Error::other)?;
                    if i >= super::warmup(count) {
                        d.push(t.elapsed());
                    }
                    if r.len() != msg.len() {
                        return Err(io::Error::other("the echo came back wrong"));
                    }
                }
                Ok(d)
            })
    }
}

#[cfg(not(feature = "smb-rs"))]
mod smb_rs {
    use std::io;
    use std::time::Duration;

    pub(super) fn series(_port: u16, _msg: &[u8], _count: usize) -> io::Result<Vec<Duration>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "built without the smb-rs feature (cargo bench -p pipeslot-bench --features smb-rs)",
        ))
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> io::Result<Outcome> {
    let plan = ctx.plan.clone();
    let (rtt_n, bulk_n) = if plan.quick { (500, 100) } else { (5_000, 1_000) };
    let filter = &plan.cases;
    let cases: Vec<&str> = CASES
        .iter()
        .copied()
        .filter(|c| filter.is_empty() || filter.iter().any(|f| c.contains(f.as_str())))
        .collect();
    let lab = match lab() {
        Ok(l) => l,
        Err(e) => {
            let mut rows = Vec::new();
            for c in &cases {
                for v in ["64 B", "60000 B"] {
                    let mut r = Row::new(Workload::Smb.name(), c, v, Unit::Micros, Vec::new());
                    r.skipped = e.kind() == io::ErrorKind::Unsupported;
                    r.error = Some(e.to_string());
                    rows.push(r);
                }
            }
            return Ok(Outcome {
                rows,
                targets: Vec::new(),
                notes: vec![format!("smb: {e}")],
            });
        }
    };
    // Interleaved: each run times every case once, so drift hits all.
    let variants = [
        ("64 B", 64usize, rtt_n, Unit::Micros),
        ("60000 B", BULK, bulk_n, Unit::GibPerSec),
    ];
    let mut samples: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); cases.len()]; variants.len()];
    let mut p99: Vec<Vec<Vec<f64>>> = samples.clone();
    let mut errors: Vec<Vec<Option<io::Error>>> =
        variants.iter().map(|_| cases.iter().map(|_| None).collect()).collect();
    for _ in 0..plan.runs {
        for (vi, &(_, size, n, unit)) in variants.iter().enumerate() {
            for (ci, case) in cases.iter().enumerate() {
                if errors[vi][ci].is_some() {
                    continue;
                }
                match series(&lab, case, size, n) {
                    Ok(d) if !d.is_empty() => {
                        let (median, tail) = crate::stats::latency(&d);
                        let value = match unit {
                            // Payload one way per second, from the median exchange.
                            Unit::GibPerSec => size as f64 / (median * 1e-6) / f64::from(1u32 << 30),
                            _ => median,
                        };
                        samples[vi][ci].push(value);
                        p99[vi][ci].push(tail);
                    }
                    Ok(_) => errors[vi][ci] = Some(io::Error::other("no samples")),
                    Err(e) => errors[vi][ci] = Some(e),
                }
            }
        }
    }
    let mut rows = Vec::new();
    for (vi, &(variant, _, _, unit)) in variants.iter().enumerate() {
        for (ci, case) in cases.iter().enumerate() {
            let mut r = Row::new(Workload::Smb.name(), case, variant, unit, samples[vi][ci].clone());
            if !p99[vi][ci].is_empty() {
                r.p99 = Some(crate::stats::median(&p99[vi][ci]));
            }
            r.baseline = match *case {
                "replay-wire" | "tcp-echo" | "npa-direct" | "hops" | "hops-shm" => None,
                "replay" => Some(format!("smb/replay-wire/{variant}")),
                "gateway" | "gateway-shm" => Some(format!("smb/tcp-echo/{variant}")),
                "samba-mode" => Some(format!("smb/pipeslot/{variant}")),
                _ => Some(format!("smb/replay/{variant}")),
            };
            if let Some(e) = errors[vi][ci].take() {
                r.skipped = e.kind() == io::ErrorKind::Unsupported;
                r.error = Some(e.to_string());
            }
            rows.push(r);
        }
    }
    link_ratios(&mut rows);
    let key = |case: &str, v: &str| format!("smb/{case}/{v}");
    let targets = vec![
        TargetDef::ratio(
            "transact through Samba ≤ 1.20× the server's own cost (replay-wire), 64 B".into(),
            key("pipeslot", "64 B"),
            vec![key("replay-wire", "64 B")],
            1.20,
        ),
        TargetDef::ratio(
            "transact through Samba at least as fast as smb-rs, 64 B".into(),
            key("pipeslot", "64 B"),
            vec![key("smb-rs", "64 B")],
            1.0,
        ),
        TargetDef::ratio_at_least(
            "bulk through Samba ≥ 0.80× the protocol's floor (replay: signing counted), 60000 B".into(),
            key("pipeslot", "60000 B"),
            vec![key("replay", "60000 B")],
            0.80,
        ),
        TargetDef::ratio_at_least(
            "bulk through Samba at least as fast as smb-rs, 60000 B".into(),
            key("pipeslot", "60000 B"),
            vec![key("smb-rs", "60000 B")],
            1.0,
        ),
        TargetDef::ratio(
            "transact through our gateway ≤ 1.5× a raw TCP echo on loopback, 64 B".into(),
            key("gateway", "64 B"),
            vec![key("tcp-echo", "64 B")],
            1.5,
        ),
        TargetDef::ratio(
            "transact through our gateway ≤ 1.5× its two hops alone (TCP echo, then local pipe), 64 B".into(),
            key("gateway", "64 B"),
            vec![key("hops", "64 B")],
            1.5,
        ),
        TargetDef::ratio(
            "transact through our gateway, local hop on shared memory, ≤ 1.5× a raw TCP echo, 64 B".into(),
            key("gateway-shm", "64 B"),
            vec![key("tcp-echo", "64 B")],
            1.5,
        ),
        TargetDef::ratio(
            "transact through our gateway faster than through Samba (same client), 64 B".into(),
            key("gateway", "64 B"),
            vec![key("pipeslot", "64 B")],
            1.0,
        ),
        TargetDef::ratio(
            "transact through our gateway faster than through the Samba mode, 64 B".into(),
            key("gateway", "64 B"),
            vec![key("samba-mode", "64 B")],
            1.0,
        ),
        TargetDef::ratio_at_least(
            "bulk through our gateway at least as fast as through Samba, 60000 B".into(),
            key("gateway", "60000 B"),
            vec![key("pipeslot", "60000 B")],
            1.0,
        ),
    ];
    drop(lab);
    Ok(Outcome {
        rows,
        targets,
        notes: Vec::new(),
    })
}
