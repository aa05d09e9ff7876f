//! `pipeslot demo`: the model at work in one command, on a private name, in
//! about a second. A message-mode echo server runs on threads of this
//! process; its clients are other processes (this binary's `call` and
//! `transact`, and the hidden `demo-peer`) and, for busy and peek, handles
//! opened here. Every step checks what it shows: a surprise is an error and
//! exit 1, so the transcript can be trusted.

use std::io::{self, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pipeslot::blocking::{call_named_pipe, ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions};
use pipeslot::{ClientIdentity, PipeMode, PipeName, WaitTimeout, Win32Error};

use crate::error::{fail, is, line};
use crate::{output, pipe, query};

const INSTANCES: usize = 3;
/// The longest any step may take before the demo calls it a hang.
const LIMIT: Duration = Duration::from_secs(10);
const BUF: usize = 64 * 1024;

pub(crate) fn run() -> io::Result<()> {
    let started = Instant::now();
    let name = unique_name()?;
    say(&format!(
        "pipeslot demo on {name} (namespace {})",
        query::namespace_root()
    ))?;
    let server = EchoServer::start(&name)?;
    say(&format!(
        "server: message-mode echo, {INSTANCES} instances, a thread each (pid {})",
        std::process::id()
    ))?;
    concurrent_clients(&name)?;
    busy_then_wait(&name)?;
    transact(&name)?;
    peek(&name)?;
    identity(&name)?;
    peer_death(&name)?;
    server.stop();
    network(&name)?;
    mailslot(&name)?;
    say(&format!("demo: ok ({:.2} s)", started.elapsed().as_secs_f64()))
}

/// Step 9: a mailslot: one reader, several writer processes, the exact
/// counts `info` gives, and one message at a time, whole.
fn mailslot(base: &PipeName) -> io::Result<()> {
    let bare = base.to_string();
    let bare = bare.rsplit('\\').next().unwrap_or("demo");
    let name = format!(r"\\.\mailslot\{bare}\events");
    let slot = pipeslot::blocking::MailslotOptions::new().create(&name)?;
    say(&format!(
        "9. a mailslot: this process reads {name}; 3 `pipeslot send` processes write to it"
    ))?;
    let writers = (1..=3)
        .map(|i| spawn_self(&["send", &name, &format!("event {i}a"), &format!("event {i}b")]))
        .collect::<io::Result<Vec<_>>>()?;
    for w in writers {
        finish(w)?;
    }
    let info = slot.info()?;
    say(&format!(
        "   info: {} messages waiting, the next {} bytes (GetMailslotInfo)",
        info.message_count,
        info.next_message_size.unwrap_or(0)
    ))?;
    if info.message_count != 6 {
        return Err(surprise(format!(
            "the mailslot holds {} messages, not 6",
            info.message_count
        )));
    }
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(String::from_utf8_lossy(&slot.read_message()?).into_owned());
    }
    got.sort();
    say(&format!("   read, whole and once each: {}", got.join(", ")))?;
    Ok(())
}

/// The hidden `demo-peer` verb: opens the pipe, says "ready", then blocks
/// reading until it is killed (or the server goes away).
pub(crate) fn peer(name: &PipeName) -> io::Result<()> {
    let client = pipe::open(
        name,
        ClientOptions::new().pipe_mode(PipeMode::Message),
        Some(pipeslot::WaitTimeout::After(LIMIT)),
    )?;
    client.write_msg(b"ready")?;
    let mut buf = vec![0u8; BUF];
    while pipe::read_message(|b| client.read_msg(b), &mut buf)?.is_some() {}
    Ok(())
}

fn say(text: &str) -> io::Result<()> {
    output::line(text)
}

fn surprise(what: impl Into<String>) -> io::Error {
    fail(Win32Error::ERROR_GEN_FAILURE, format!("demo: {}", what.into()))
}

fn unique_name() -> io::Result<PipeName> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(r"\\.\pipe\pipeslot-demo-{}-{nanos:08x}", std::process::id());
    PipeName::parse(&name).map_err(|e| pipeslot::Error::from(e).into())
}

/// Step 1: several client processes at once, each on its own instance.
fn concurrent_clients(name: &PipeName) -> io::Result<()> {
    say(&format!(
        "1. concurrent clients: {INSTANCES} processes run `pipeslot call` at once"
    ))?;
    let children = (1..=INSTANCES)
        .map(|i| {
            let msg = format!("hello from client {i}");
            let child = spawn_self(&["call", &name.to_string(), &msg, "--timeout", "5000"])?;
            Ok((msg, child))
        })
        .collect::<io::Result<Vec<_>>>()?;
    for (msg, child) in children {
        let pid = child.id();
        let reply = finish(child)?;
        if reply != format!("{msg}\n") {
            return Err(surprise(format!("call {msg:?} got {reply:?}")));
        }
        say(&format!("   pid {pid}: call {msg:?} -> reply {:?}", reply.trim_end()))?;
    }
    Ok(())
}

/// Steps 2 and 3: all instances held: the next open is busy; a waiting client
/// gets in as soon as one is let go.
fn busy_then_wait(name: &PipeName) -> io::Result<()> {
    let mut holders = (0..INSTANCES)
        .map(|_| open_message(name))
        .collect::<io::Result<Vec<_>>>()?;
    say(&format!(
        "2. busy: {INSTANCES} clients hold all {INSTANCES} instances; a 4th open fails at once:"
    ))?;
    match ClientOptions::new().open(name.to_string()) {
        Err(e) if is(&e, Win32Error::ERROR_PIPE_BUSY) => say(&format!("   {}", line(&e)))?,
        Err(e) => return Err(e),
        Ok(_) => return Err(surprise("a 4th client got in while every instance was busy")),
    }
    say("3. wait: a `pipeslot transact --wait 5000` process finds them busy and waits (WaitNamedPipe)")?;
    let t0 = Instant::now();
    let waiter = spawn_self(&["transact", "--wait", "5000", &name.to_string(), "I waited"])?;
    thread::sleep(Duration::from_millis(300));
    drop(holders.remove(0));
    let released = t0.elapsed();
    let reply = finish(waiter)?;
    let got_in = t0.elapsed();
    if reply != "I waited\n" || got_in < released {
        return Err(surprise(format!("the waiting client got {reply:?} after {got_in:?}")));
    }
    say(&format!(
        "   one holder left after {} ms; the waiter got in and had its reply {:?} after {} ms",
        released.as_millis(),
        reply.trim_end(),
        got_in.as_millis()
    ))?;
    drop(holders);
    Ok(())
}

/// Step 4: one open, several transactions (TransactNamedPipe).
fn transact(name: &PipeName) -> io::Result<()> {
    say("4. transact: one open, three transactions (`pipeslot transact NAME one two three`)")?;
    let out = finish(spawn_self(&[
        "transact",
        "--wait",
        "5000",
        &name.to_string(),
        "one",
        "two",
        "three",
    ])?)?;
    let replies: Vec<&str> = out.lines().collect();
    if replies != ["one", "two", "three"] {
        return Err(surprise(format!("transact replied {replies:?}")));
    }
    for r in replies {
        say(&format!("   {r:?} -> {r:?}"))?;
    }
    Ok(())
}

/// Step 5: PeekNamedPipe, what is queued, without taking it.
fn peek(name: &PipeName) -> io::Result<()> {
    let client = open_message(name)?;
    client.write_msg(b"first")?;
    client.write_msg(b"second message")?;
    let queued = b"first".len() + b"second message".len();
    let deadline = Instant::now() + LIMIT;
    let mut small = [0u8; 3];
    let info = loop {
        let info = client.peek(&mut small)?;
        if info.available >= queued || Instant::now() > deadline {
            break info;
        }
        thread::sleep(Duration::from_millis(2));
    };
    say("5. peek: the client sent \"first\" and \"second message\"; both echoes wait unread")?;
    say(&format!(
        "   peek with a 3-byte buffer: copied {:?}, {} bytes available, {} more in this message",
        String::from_utf8_lossy(&small[..info.read]),
        info.available,
        info.left_in_message
    ))?;
    let mut buf = vec![0u8; BUF];
    let mut read = || pipe::read_message(|b| client.read_msg(b), &mut buf);
    let (a, b) = (read()?, read()?);
    if info.read != 3 || info.available != queued || info.left_in_message != 2 {
        return Err(surprise(format!("peek said {info:?}")));
    }
    if a.as_deref() != Some(b"first") || b.as_deref() != Some(b"second message") {
        return Err(surprise(format!("after the peek, read {a:?} and {b:?}")));
    }
    say("   then two reads: \"first\", \"second message\" (the peek took nothing)")
}

/// Step 6: who the client is, as the server sees it (SO_PEERCRED).
fn identity(name: &PipeName) -> io::Result<()> {
    say("6. identity: a `pipeslot call NAME whoami` process; the server answers with what it knows of it")?;
    let child = spawn_self(&["call", &name.to_string(), "whoami", "--timeout", "5000"])?;
    let pid = child.id();
    let reply = finish(child)?;
    if !reply.starts_with(&format!("pid {pid} ")) {
        return Err(surprise(format!("the server saw {reply:?}, the client is pid {pid}")));
    }
    say(&format!("   server: {} (the client's pid is {pid})", reply.trim_end()))
}

/// Step 7: a client killed while the server is blocked reading from it: the read
/// ends at once with ERROR_BROKEN_PIPE, nobody hangs.
fn peer_death(name: &PipeName) -> io::Result<()> {
    let peer_name = format!("{name}-peer");
    let server = ServerOptions::new().pipe_mode(PipeMode::Message).create(&peer_name)?;
    let mut child = spawn_self(&["demo-peer", &peer_name])?;
    let pid = child.id();
    if !server.connect_timeout(LIMIT)? {
        let _ = child.kill();
        let _ = child.wait();
        return Err(surprise("the demo-peer process never connected"));
    }
    let mut buf = vec![0u8; BUF];
    let hello = pipe::read_message(|b| server.read_msg(b), &mut buf)?;
    if hello.as_deref() != Some(b"ready") {
        let _ = child.kill();
        let _ = child.wait();
        return Err(surprise(format!("demo-peer said {hello:?}")));
    }
    say(&format!(
        "7. peer death: client pid {pid} is connected to {peer_name}; the server blocks in a read"
    ))?;
    let (tx, rx) = mpsc::channel();
    let killer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        let at = Instant::now();
        let killed = child.kill();
        let _ = tx.send((at, killed));
        let _ = child.wait();
    });
    let blocked = Instant::now();
    let r = server.read_msg(&mut buf);
    let returned = Instant::now();
    let (killed_at, killed) = rx
        .recv_timeout(LIMIT)
        .map_err(|_| surprise("the killer thread did not report"))?;
    let _ = killer.join();
    killed?;
    match r {
        Err(e) if is(&e, Win32Error::ERROR_BROKEN_PIPE) => {
            let after = returned.saturating_duration_since(killed_at);
            say(&format!(
                "   SIGKILL after {} ms: the read returned {} {:.2} ms after the kill",
                killed_at.duration_since(blocked).as_millis(),
                line(&e),
                after.as_secs_f64() * 1000.0
            ))?;
        }
        other => return Err(surprise(format!("the blocked read ended with {other:?}"))),
    }
    let mut reply = [0u8; 64];
    let r = call_named_pipe(name.to_string(), b"still here", &mut reply, WaitTimeout::After(LIMIT))?;
    say(&format!(
        "   nobody hung: the echo server still answers ({:?})",
        String::from_utf8_lossy(&reply[..r.len])
    ))
}

fn open_message(name: &PipeName) -> io::Result<NamedPipeClient> {
    pipe::open(
        name,
        ClientOptions::new().pipe_mode(PipeMode::Message),
        Some(pipeslot::WaitTimeout::After(LIMIT)),
    )
}

/// Runs this binary with `args`; the demo's environment (PIPESLOT_DIR)
/// goes with it.
fn spawn_self(args: &[&str]) -> io::Result<Child> {
    spawn_self_with(args, &[])
}

fn spawn_self_with(args: &[&str], env: &[(&str, &str)]) -> io::Result<Child> {
    let exe = std::env::current_exe().map_err(|e| crate::error::wrap(e, "finding this program"))?;
    Command::new(exe)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| crate::error::wrap(e, "starting a client process"))
}

/// Waits (up to LIMIT) for a child to succeed; returns its stdout.
fn finish(mut child: Child) -> io::Result<String> {
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(surprise(format!("client pid {} hung", child.id())));
        }
        thread::sleep(Duration::from_millis(2));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut out)?;
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_string(&mut err)?;
    }
    if !status.success() {
        return Err(surprise(format!(
            "client pid {} failed: {}",
            child.id(),
            err.trim_end()
        )));
    }
    Ok(out)
}

/// Step 8: the network. A gateway on loopback (an unprivileged port, a
/// one-off account) serves a monitor pipe over SMB2; client processes write
/// to `\\127.0.0.1\pipe\NAME` through it, and a `call` asks the monitor
/// who it sees.
fn network(base: &PipeName) -> io::Result<()> {
    let name = format!("{}-net", base.name());
    let local = format!(r"\\.\pipe\{name}");
    let (tx, rx) = mpsc::channel::<String>();
    let mut opts = ServerOptions::new();
    opts.pipe_mode(PipeMode::Message).reject_remote_clients(false);
    for i in 0..INSTANCES + 1 {
        opts.first_pipe_instance(i == 0);
        let server = opts.create(&local)?;
        let tx = tx.clone();
        thread::spawn(move || {
            let mut buf = vec![0u8; BUF];
            loop {
                if server.connect().is_err() {
                    return;
                }
                let who = server.client_identity();
                while let Ok(Some(msg)) = pipe::read_message(|b| server.read_msg(b), &mut buf) {
                    if msg == b"whoami" {
                        let _ = server.write_msg(describe(who.as_ref()).as_bytes());
                    } else {
                        let _ = tx.send(String::from_utf8_lossy(&msg).into_owned());
                    }
                }
                let _ = server.disconnect();
            }
        });
    }
    let password: String = pipeslot::gateway::random_password();
    let mut g = pipeslot::gateway::GatewayOptions::new(([127, 0, 0, 1], 0).into());
    g.user("demo", &password).export(&name);
    let gateway = g.bind()?;
    let port = gateway.local_addr()?.port();
    thread::spawn(move || gateway.serve());
    let remote = format!(r"\\127.0.0.1\pipe\{name}");
    say(&format!(
        "8. the network: a gateway on 127.0.0.1:{port} serves {local} over SMB2 (signed, NTLMv2);"
    ))?;
    say(&format!(
        "   {INSTANCES} `pipeslot send` processes write to {remote} through it, into one monitor"
    ))?;
    let port_s = port.to_string();
    let env = [
        ("PIPESLOT_SMB_PORT", port_s.as_str()),
        ("PIPESLOT_USER", "demo"),
        ("PIPESLOT_PASSWORD", password.as_str()),
    ];
    let senders = (1..=INSTANCES)
        .map(|i| {
            let a = format!("host {i}: first line");
            let b = format!("host {i}: second line");
            spawn_self_with(&["send", &remote, &a, &b], &env)
        })
        .collect::<io::Result<Vec<_>>>()?;
    for s in senders {
        finish(s)?;
    }
    let mut got = Vec::new();
    while got.len() < 2 * INSTANCES {
        let m = rx
            .recv_timeout(LIMIT)
            .map_err(|_| surprise(format!("the monitor got {} of {} lines", got.len(), 2 * INSTANCES)))?;
        say(&format!("   monitor: {m}"))?;
        got.push(m);
    }
    let reply = finish(spawn_self_with(&["call", &remote, "whoami"], &env)?)?;
    say(&format!(
        "   a remote `call` through the gateway: the monitor's client is {}",
        reply.trim_end()
    ))
}

/// The echo server: INSTANCES threads, each an instance that connects,
/// echoes messages until its client leaves, and listens again. "whoami" is
/// answered with the client's identity instead.
struct EchoServer {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl EchoServer {
    fn start(name: &PipeName) -> io::Result<EchoServer> {
        let mut opts = ServerOptions::new();
        opts.pipe_mode(PipeMode::Message)
            .max_instances(INSTANCES)
            .first_pipe_instance(true);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for i in 0..INSTANCES {
            // The first instance claims the name; later ones join it.
            opts.first_pipe_instance(i == 0);
            let server = opts.create(name.to_string())?;
            let stop = Arc::clone(&stop);
            threads.push(thread::spawn(move || echo(server, &stop)));
        }
        Ok(EchoServer { stop, threads })
    }

    /// Stops the threads and drops the instances, so the name disappears.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn echo(server: NamedPipeServer, stop: &AtomicBool) {
    let mut buf = vec![0u8; BUF];
    while !stop.load(Ordering::Relaxed) {
        // Short waits, so `stop` is seen soon.
        match server.connect_timeout(Duration::from_millis(50)) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!("demo echo server: {}", line(&e));
                return;
            }
        }
        let who = server.client_identity();
        while let Ok(Some(msg)) = pipe::read_message(|b| server.read_msg(b), &mut buf) {
            let reply = if msg == b"whoami" {
                describe(who.as_ref()).into_bytes()
            } else {
                msg
            };
            if server.write_msg(&reply).is_err() {
                break;
            }
        }
        let _ = server.disconnect();
    }
}

fn describe(who: Option<&ClientIdentity>) -> String {
    match who {
        Some(w) if w.remote_user.is_some() => format!(
            "user {} from {} (computer {}), through the gateway's pid {}",
            w.remote_user.as_deref().unwrap_or("?"),
            w.remote_address.as_deref().unwrap_or("?"),
            w.computer.as_deref().unwrap_or("?"),
            w.pid
        ),
        Some(w) => format!(
            "pid {} uid {} gid {} user {}",
            w.pid,
            w.uid,
            w.gid,
            w.user.as_deref().unwrap_or("?")
        ),
        None => "no client".to_owned(),
    }
}
