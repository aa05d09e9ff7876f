//! The blocking front end as the verbs use it: opening a pipe with an
//! optional wait for a free instance, and reading whole messages.

use std::io;
use std::time::Instant;

use pipeslot::blocking::{ClientOptions, NamedPipeClient};
use pipeslot::{MsgRead, Name, PipeName, WaitTimeout, Win32Error};

use crate::error::is;

/// Opens `name`. Busy fails at once (`ERROR_PIPE_BUSY`) unless `wait` is
/// given: then WaitNamedPipe and try again until `wait` has passed (or for
/// ever), the client loop Win32 documents (`ERROR_SEM_TIMEOUT` when it runs
/// out).
pub(crate) fn open(name: &PipeName, opts: &ClientOptions, wait: Option<WaitTimeout>) -> io::Result<NamedPipeClient> {
    let addr = name.to_string();
    let deadline = match wait {
        Some(WaitTimeout::After(w)) => Some(Instant::now().checked_add(w)),
        Some(_) => Some(None),
        None => None,
    };
    let started = Instant::now();
    loop {
        match opts.open(&addr) {
            Ok(c) => {
                // -v: what was opened, how, and how long it took.
                if tracing::enabled!(tracing::Level::INFO) {
                    let how = match (c.info(), c.remote_session()) {
                        (_, Some(r)) => r.to_string(),
                        (Ok(i), None) => {
                            format!("{:?} pipe, {:?} end, max {} instances", i.mode, i.end, i.max_instances)
                        }
                        (Err(_), None) => "local".to_owned(),
                    };
                    tracing::info!("opened {name} in {:.1?}: {how}", started.elapsed());
                }
                return Ok(c);
            }
            Err(e) if is(&e, Win32Error::ERROR_PIPE_BUSY) => {
                tracing::debug!("{name} is busy; waiting for an instance");
                let t = match deadline {
                    None => return Err(e),
                    Some(Some(d)) => WaitTimeout::After(d.saturating_duration_since(Instant::now())),
                    Some(None) => WaitTimeout::Forever,
                };
                pipeslot::wait_named_pipe(&addr, t)?;
            }
            Err(e) if is(&e, Win32Error::ERROR_ACCESS_DENIED) && name.is_local() => return Err(refused(name, e)),
            r => return r,
        }
    }
}

/// `--retry`: returns once `name` exists (a pipe with a server, busy or
/// not, or a local mailslot with its reader), or fails with
/// `ERROR_FILE_NOT_FOUND` when `retry` runs out first.
pub(crate) fn await_name(name: &Name, retry: WaitTimeout) -> io::Result<()> {
    let deadline = match retry {
        WaitTimeout::After(d) => Instant::now().checked_add(d),
        _ => None,
    };
    loop {
        let missing = match name {
            Name::Pipe(p) => pipeslot::wait_named_pipe(p.to_string(), WaitTimeout::After(std::time::Duration::ZERO)),
            Name::Mailslot(m) => pipeslot::mailslot::mailslot_info(m.to_string()).map(drop),
            _ => return Ok(()),
        }
        // Busy (a time-out) or refused: it exists; the verb says the rest.
        // A remote host whose SMB server is still starting refuses the
        // connection: not there yet either.
        .is_err_and(|e| {
            is(&e, Win32Error::ERROR_FILE_NOT_FOUND)
                || matches!(name, Name::Pipe(p) if !p.is_local()) && is(&e, Win32Error::ERROR_CONNECTION_REFUSED)
        });
        if !missing {
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let what = match name {
                Name::Mailslot(m) => format!("no reader of mailslot {m} came"),
                Name::Pipe(p) => format!("no pipe named {p} came"),
                _ => "the name did not come".to_owned(),
            };
            return Err(crate::error::fail(
                Win32Error::ERROR_FILE_NOT_FOUND,
                format!("{what} within the --retry time"),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// An access refusal that says why and what to do: whose the name is, and
/// how its server lets others in.
fn refused(name: &PipeName, e: io::Error) -> io::Error {
    // Only the server's refusal; a client's own (`--server-user`) says why already.
    if !e.to_string().contains("refuses this client") {
        return e;
    }
    let Ok(p) = pipeslot::pipe_listing(&name.to_string()) else {
        return e;
    };
    crate::error::fail(
        Win32Error::ERROR_ACCESS_DENIED,
        format!(
            "{name} refuses this client: it is {}'s, whose server admits others only with \
             --allow-user NAME, --allow-group GROUP or --everyone (and remote clients with \
             --accept-remote); or the pipe's direction forbids what was asked",
            crate::query::owner(p.owner, p.owner_name.as_deref())
        ),
    )
}

/// Reads one whole message with `read` (a `read_msg`), however long: parts
/// flagged `more` are joined. `Ok(None)` at the end of the pipe.
pub(crate) fn read_message(
    mut read: impl FnMut(&mut [u8]) -> io::Result<MsgRead>,
    buf: &mut [u8],
) -> io::Result<Option<Vec<u8>>> {
    let mut msg = Vec::new();
    loop {
        match read(buf) {
            Ok(r) => {
                msg.extend_from_slice(&buf[..r.len]);
                if !r.more {
                    return Ok(Some(msg));
                }
            }
            Err(e) if msg.is_empty() && is(&e, Win32Error::ERROR_BROKEN_PIPE) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// Runs `op` within `limit` (None: for ever): past it, `ERROR_SEM_TIMEOUT`
/// naming the flag. For remote names this bounds everything (connecting,
/// logging on, waiting); for `call` it bounds the reply too.
pub(crate) fn bounded<T: Send + 'static>(
    name: &PipeName,
    limit: Option<std::time::Duration>,
    op: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let Some(limit) = limit else {
        return op();
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(op());
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| {
        Err(crate::error::fail(
            Win32Error::ERROR_SEM_TIMEOUT,
            format!("{name} did not finish within --timeout ({} ms)", limit.as_millis()),
        ))
    })
}
