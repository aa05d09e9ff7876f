//! `serve` on a pipe: the multithreaded server of the Win32 docs. N
//! instances are made up front, each with its own thread that connects,
//! serves one client, disconnects and listens again; so while fewer than N
//! clients are served, the rest of the instances listen and a new client
//! never sees `ERROR_PIPE_BUSY`, and with all N busy it does.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::{io, thread};

use pipeslot::blocking::{NamedPipeServer, ServerOptions};
use pipeslot::{PipeMode, PipeName};

use crate::settings::{Action, Serve};
use crate::{exec, output, pipe};

/// Read buffer per instance; longer messages arrive in parts and are joined.
const BUF: usize = 64 * 1024;

pub(crate) fn run(name: &PipeName, s: Serve) -> io::Result<()> {
    let mut opts = ServerOptions::new();
    opts.pipe_mode(s.mode)
        .max_instances(s.instances)
        .reject_remote_clients(s.reject_remote)
        .security(s.security.clone());
    // No more instances than clients to serve: the extra ones would only
    // take clients that --max-clients then turns away.
    let wanted = match s.max_clients {
        Some(k) => s.instances.min(usize::try_from(k).unwrap_or(usize::MAX)),
        None => s.instances,
    };
    // Made here rather than in the threads so a bad name or a refusal is the
    // command's error before anyone is served.
    let servers = (0..wanted)
        .map(|_| opts.create(name.to_string()))
        .collect::<io::Result<Vec<_>>>()?;
    let mode = if s.mode == PipeMode::Message {
        "message mode"
    } else {
        "byte mode"
    };
    let plural = if wanted == 1 { "" } else { "s" };
    crate::ready::announce(&format!("serving {name}: {wanted} instance{plural}, {mode}"));
    let tickets = Arc::new(Tickets(s.max_clients.map(AtomicU64::new)));
    let s = Arc::new(s);
    let (done_tx, done_rx) = mpsc::channel::<io::Result<()>>();
    for server in servers {
        let (done, s, tickets) = (done_tx.clone(), Arc::clone(&s), Arc::clone(&tickets));
        // Not scoped: after a failure the command returns while the other
        // threads still wait for clients, and the process exit ends them.
        thread::spawn(move || {
            let _ = done.send(instance_loop(server, &s, &tickets));
        });
    }
    drop(done_tx);
    // The first failure ends the command; otherwise every thread ran out of
    // tickets (and dropped its instance).
    for r in done_rx {
        r?;
    }
    Ok(())
}

/// The clients left to serve under `--max-clients` (none: no limit). A
/// thread takes a ticket before it listens, so exactly K clients connect.
struct Tickets(Option<AtomicU64>);

impl Tickets {
    fn take(&self) -> bool {
        match &self.0 {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// One instance: connect, serve, disconnect, for as long as there are tickets.
/// Errors returned are the command's (stdout closed); a client that
/// misbehaves or vanishes, or whose CMD cannot start, only ends its own
/// connection.
fn instance_loop(server: NamedPipeServer, s: &Serve, tickets: &Tickets) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    while tickets.take() {
        server.connect()?;
        if let Some(who) = server.client_identity() {
            match &who.remote_user {
                Some(remote) => tracing::info!(
                    "client connected: {} from {} ({}), through the gateway (pid {})",
                    pipeslot::escape_controls(remote),
                    pipeslot::escape_controls(who.remote_address.as_deref().unwrap_or("?")),
                    pipeslot::escape_controls(who.computer.as_deref().unwrap_or("?")),
                    who.pid
                ),
                None => tracing::info!(
                    "client connected: pid {} uid {} ({})",
                    who.pid,
                    who.uid,
                    who.user.as_deref().unwrap_or("?")
                ),
            }
        }
        let r = match &s.action {
            Action::Print { hex } => print_client(&server, s.mode, *hex, &mut buf),
            Action::Echo => echo_client(&server, s.mode, &mut buf),
            // Checked at start, CMD can still fail later (removed, out of
            // processes): that client is let go, the others are served.
            Action::Exec(cmd) => exec::serve_client(&server, s.mode, cmd).or_else(|e| {
                let _ = writeln!(
                    io::stderr(),
                    "pipeslot: {}; this client is disconnected, the server goes on",
                    crate::error::line(&e)
                );
                Ok(())
            }),
        };
        // Already disconnected when the client left first: nothing to report.
        let _ = server.disconnect();
        tracing::info!("client gone");
        r?;
    }
    Ok(())
}

/// Ends a client quietly: its errors are its own (logged), not the server's.
fn client_ended(e: &io::Error) {
    tracing::debug!("client ended: {}", crate::error::line(e));
}

/// What the client sends goes to stdout: messages one per line, bytes as
/// they come.
fn print_client(server: &NamedPipeServer, mode: PipeMode, hex: bool, buf: &mut [u8]) -> io::Result<()> {
    match mode {
        PipeMode::Message => loop {
            match pipe::read_message(|b| server.read_msg(b), buf) {
                Ok(Some(msg)) => output::message(&msg, hex)?,
                Ok(None) => return Ok(()),
                Err(e) => {
                    client_ended(&e);
                    return Ok(());
                }
            }
        },
        _ => loop {
            match (&*server).read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) if hex => output::message(&buf[..n], true)?,
                Ok(n) => output::write(&[&buf[..n]])?,
                Err(e) => {
                    client_ended(&e);
                    return Ok(());
                }
            }
        },
    }
}

/// Each message (or chunk of bytes) goes back to its client.
fn echo_client(server: &NamedPipeServer, mode: PipeMode, buf: &mut [u8]) -> io::Result<()> {
    let r = match mode {
        PipeMode::Message => loop {
            match pipe::read_message(|b| server.read_msg(b), buf) {
                Ok(Some(msg)) => {
                    if let Err(e) = server.write_msg(&msg) {
                        break Err(e);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        },
        _ => loop {
            match (&*server).read(buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if let Err(e) = (&*server).write_all(&buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) => break Err(e),
            }
        },
    };
    if let Err(e) = r {
        client_ended(&e);
    }
    Ok(())
}
