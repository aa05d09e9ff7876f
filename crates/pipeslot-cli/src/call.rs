//! `call` (CallNamedPipe: wait, open, one transaction, close) and `transact`
//! (one open, a transaction per MSG). Each reply is printed, then a newline.

use std::io;

use pipeslot::blocking::{call_named_pipe, ClientOptions};
use pipeslot::{PipeMode, PipeName, WaitTimeout, Win32Error};

use crate::error::fail;
use crate::settings::{Call, Transact};
use crate::{output, pipe};

/// The longest reply `call` keeps; CallNamedPipe cuts longer ones and says
/// `ERROR_MORE_DATA`. Allocated zeroed, so untouched pages cost nothing.
const CALL_REPLY_MAX: usize = 16 * 1024 * 1024;

const BUF: usize = 64 * 1024;

/// How long a `call` waits in all (an instance, then the reply) without
/// `--timeout`: a server that never answers does not hold a script for
/// ever. `--timeout forever` does wait for ever.
pub(crate) const CALL_BOUND: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) fn call(name: &PipeName, s: Call) -> io::Result<()> {
    let started = std::time::Instant::now();
    let (addr, msg, timeout, server_user) = (name.to_string(), s.msg.clone(), s.timeout, s.server_user);
    let pipe_name = name.clone();
    // The whole call, the reply included: --timeout, or CALL_BOUND.
    let limit = match s.timeout {
        WaitTimeout::After(t) => Some(t),
        WaitTimeout::Forever => None,
        _ => Some(CALL_BOUND),
    };
    let (reply, r) = pipe::bounded(name, limit, move || {
        let mut reply = vec![0u8; CALL_REPLY_MAX];
        let r = match server_user {
            None => call_named_pipe(addr, &msg, &mut reply, timeout)?,
            // CallNamedPipe's steps, with the server's user checked first.
            Some(uid) => {
                let mut opts = ClientOptions::new();
                opts.pipe_mode(PipeMode::Message).require_server_user(uid);
                pipe::open(&pipe_name, &opts, Some(timeout))?.transact(&msg, &mut reply)?
            }
        };
        Ok((reply, r))
    })?;
    tracing::info!(
        "called {name}: {} bytes out, {} back in {:.1?}",
        s.msg.len(),
        r.len,
        started.elapsed()
    );
    output::message(&reply[..r.len], s.hex)?;
    if r.more {
        return Err(fail(
            Win32Error::ERROR_MORE_DATA,
            format!("the reply from {name} is longer than {CALL_REPLY_MAX} bytes; the rest was discarded"),
        ));
    }
    Ok(())
}

pub(crate) fn transact(name: &PipeName, s: Transact) -> io::Result<()> {
    // The whole command, every reply included: --timeout, or CALL_BOUND.
    let limit = match s.timeout {
        Some(WaitTimeout::After(t)) => Some(t),
        Some(_) => None,
        None => Some(CALL_BOUND),
    };
    let pipe_name = name.clone();
    pipe::bounded(name, limit, move || transact_all(&pipe_name, &s))
}

fn transact_all(name: &PipeName, s: &Transact) -> io::Result<()> {
    let mut opts = ClientOptions::new();
    opts.pipe_mode(PipeMode::Message);
    if let Some(uid) = s.server_user {
        opts.require_server_user(uid);
    }
    let client = pipe::open(name, &opts, s.wait)?;
    let mut buf = vec![0u8; BUF];
    for msg in &s.msgs {
        let mut first = Some(msg.as_slice());
        // The first read is the transaction; parts of a long reply follow.
        let reply = pipe::read_message(
            |b| match first.take() {
                Some(m) => client.transact(m, b),
                None => client.read_msg(b),
            },
            &mut buf,
        )?
        .ok_or_else(|| {
            fail(
                Win32Error::ERROR_BROKEN_PIPE,
                format!("{name} closed before it replied"),
            )
        })?;
        output::message(&reply, s.hex)?;
    }
    Ok(())
}
