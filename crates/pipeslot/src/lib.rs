//! Windows named pipes and mailslots on Linux: the Win32 model, with
//! blocking and tokio front ends over one core.
//!
//! ```text
//!   pipeslot::blocking            pipeslot::tokio           front ends: same names,
//!   ServerOptions, NamedPipe*     ServerOptions, NamedPipe*  one screen of glue each
//!              \                     /
//!               pipe (core): options, acceptor thread, connections, framing
//!                   |                         |
//!               ns: namespace on disk     security: access control, identity
//!                   |
//!               pipeslot_proto: names, Win32 errors, wire codecs (sans-IO)
//!               sys: the few unsafe syscalls
//! ```
//!
//! A server creates instances of a name; each serves one client at a time.
//! Clients open the name; when every instance is busy they get
//! `ERROR_PIPE_BUSY (231)` and may [`wait_named_pipe`]. Message pipes keep
//! write boundaries; short reads say the message goes on ([`MsgRead::more`]).
//! A peer that dies ends every blocked read at once with
//! `ERROR_BROKEN_PIPE (109)` (or `Ok(0)` from `io::Read`).
//!
//! Errors are `std::io::Error`s that carry a [`Error`] with the Win32 code:
//! use [`Error::win32`] where Windows code compared `raw_os_error()`.
//!
//! Names live under a namespace root shared by all users of the machine:
//! `$PIPESLOT_DIR`, or `/tmp/pipeslot`.
//!
//! Anonymous pipes: use [`std::io::pipe`]; [`anon`] adds what it lacks.

#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod anon;
pub mod blocking;
mod error;
mod ns;
pub mod pipe;
mod security;
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod win32;

pub use error::{Error, Win32Error};
pub use ns::{DEFAULT_ROOT, ROOT_ENV};
pub use pipe::{
    wait_named_pipe, HandleState, MsgRead, PeekInfo, PipeEnd, PipeInfo, PipeMode, WaitTimeout, UNLIMITED_INSTANCES,
};
pub use pipeslot_proto::{Host, MailslotName, Name, PipeName};
pub use security::{resolve_group, resolve_user, ClientIdentity, PipeSecurity};

/// A listing entry: one pipe name and what serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipeListing {
    /// The full name in the first creator's spelling.
    pub name: String,
    /// Message or byte pipe.
    pub mode: PipeMode,
    /// Instances across every serving process.
    pub instances: u32,
    /// Of those, how many listen now.
    pub listening: u32,
    /// The first instance's maximum (255 = unlimited).
    pub max_instances: u32,
    /// The serving processes' ids.
    pub server_pids: Vec<u32>,
}

/// Every live pipe on this machine (stale entries of dead servers skipped).
pub fn list_pipes() -> std::io::Result<Vec<PipeListing>> {
    let ns = ns::Namespace::from_env();
    let mut out = Vec::new();
    for (display, dir) in ns.list(ns::Kind::Pipe)? {
        let Ok(name) = PipeName::parse(&display) else { continue };
        let replies = pipe::client::census_dir(&name, &dir, pipe::client::Census::List)?;
        let Some(first) = replies.first() else { continue };
        out.push(PipeListing {
            name: display,
            mode: if first.pipe_type == 1 {
                PipeMode::Message
            } else {
                PipeMode::Byte
            },
            instances: replies.iter().map(|r| r.instances).sum(),
            listening: replies.iter().map(|r| r.listening).sum(),
            max_instances: u32::from(first.max_instances),
            server_pids: replies.iter().map(|r| r.server_pid).collect(),
        });
    }
    Ok(out)
}

/// What one pipe is, asked of its serving processes (for `pipeslot info`).
pub fn pipe_listing(name: &str) -> std::io::Result<PipeListing> {
    let parsed = crate::error::pipe_name(name)?;
    let replies = pipe::client::census(&parsed)?;
    let first = replies.first().ok_or_else(|| ns::not_found(&parsed))?;
    let ns = ns::Namespace::from_env();
    let dir = ns.object_dir(ns::Kind::Pipe, parsed.folded(), false)?;
    let display = std::fs::read_to_string(dir.join("name")).unwrap_or_else(|_| parsed.to_string());
    Ok(PipeListing {
        name: display,
        mode: if first.pipe_type == 1 {
            PipeMode::Message
        } else {
            PipeMode::Byte
        },
        instances: replies.iter().map(|r| r.instances).sum(),
        listening: replies.iter().map(|r| r.listening).sum(),
        max_instances: u32::from(first.max_instances),
        server_pids: replies.iter().map(|r| r.server_pid).collect(),
    })
}
