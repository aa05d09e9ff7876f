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
//! `$PIPESLOT_DIR`, or `/run/pipeslot` (root's; see [`namespace_root`]). A
//! client talks only to servers of the name's owner, checked on the socket;
//! docs/SECURITY.md has the threat model.
//!
//! Mailslots ([`mailslot`]): one-way messages to `\\.\mailslot\NAME`, many
//! writers and one reader per name, also from other hosts (`\\HOST\…`,
//! `\\DOMAIN\…`, `\\*\…`) over the Mailslot Protocol on UDP 138.
//!
//! Anonymous pipes: use [`std::io::pipe`]; [`anon`] adds what it lacks.

#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
// Without the tokio front end, the shared cores keep the parts only it calls.
#![cfg_attr(not(feature = "tokio"), allow(dead_code))]

pub mod anon;
pub mod blocking;
mod error;
// The gateway runs each connection on tokio's current-thread scheduler.
#[cfg(feature = "tokio")]
pub mod gateway;
pub mod mailslot;
mod ns;
pub mod pipe;
mod remote;
pub use remote::{RemoteSession, SmbCredentials};
mod security;
mod shm;
/// The bare shared-memory ping-pong the bench measures as the floor (not the API).
#[cfg(feature = "bench")]
#[doc(hidden)]
pub use shm::floor as shm_floor;
/// The shared-memory ring as the fuzz target drives it (not the API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use shm::fuzzing as shm_fuzzing;
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod win32;

pub use error::{Error, Win32Error};
pub use ns::{DEFAULT_ROOT, ROOT_ENV};
pub use pipe::{
    wait_named_pipe, HandleState, MsgRead, PeekInfo, PipeEnd, PipeInfo, PipeMode, WaitTimeout, UNLIMITED_INSTANCES,
};
pub use pipeslot_proto::name::escape_controls;
pub use pipeslot_proto::{Host, MailslotName, Name, PipeName};
pub use security::{resolve_group, resolve_user, ClientIdentity, PipeSecurity, ServerIdentity};

/// The namespace root this process uses: `$PIPESLOT_DIR`, else
/// [`DEFAULT_ROOT`] (root's, shared by every user) when root made it or this
/// process is root, else a root of this user's own
/// (`$XDG_RUNTIME_DIR/pipeslot` or `/tmp/pipeslot-UID`).
pub fn namespace_root() -> std::path::PathBuf {
    ns::Namespace::from_env().root().to_path_buf()
}

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
    /// The first instance's input buffer size.
    pub in_buffer_size: u32,
    /// The first instance's output buffer size.
    pub out_buffer_size: u32,
    /// The first instance's default wait, in ms (0 means 50 ms).
    pub default_timeout_ms: u32,
    /// The serving processes' ids.
    pub server_pids: Vec<u32>,
    /// The name's owner (its first creator's uid): only it, root and users
    /// it granted FILE_CREATE_PIPE_INSTANCE serve instances clients trust.
    pub owner: u32,
    /// The owner's user name, when the user database has one.
    pub owner_name: Option<String>,
}

impl PipeListing {
    /// Sums the census answers of a pipe's serving processes.
    fn from_replies(name: String, owner: u32, replies: &[pipeslot_proto::wire::local::Reply]) -> Option<PipeListing> {
        let first = replies.first()?;
        Some(PipeListing {
            name,
            mode: if first.pipe_type == 1 {
                PipeMode::Message
            } else {
                PipeMode::Byte
            },
            instances: replies.iter().map(|r| r.instances).sum(),
            listening: replies.iter().map(|r| r.listening).sum(),
            max_instances: u32::from(first.max_instances),
            in_buffer_size: first.in_buffer,
            out_buffer_size: first.out_buffer,
            default_timeout_ms: first.default_timeout_ms,
            server_pids: replies.iter().map(|r| r.server_pid).collect(),
            owner,
            owner_name: security::user_name(owner),
        })
    }
}

/// Every live pipe on this machine (stale entries of dead servers, and
/// servers the names do not trust, skipped).
pub fn list_pipes() -> std::io::Result<Vec<PipeListing>> {
    let fold = |d: &str| PipeName::parse(d).ok().map(|n| n.folded().to_owned());
    let mut out = Vec::new();
    for (display, obj) in ns::list(ns::Kind::Pipe, &fold)? {
        let Ok(name) = PipeName::parse(&display) else { continue };
        let dirs = pipe::client::PipeDirs::load(std::sync::Arc::new(obj));
        let replies = pipe::client::census_dir(&name, &dirs, pipe::client::Census::List)?;
        out.extend(PipeListing::from_replies(display, dirs.obj.owner(), &replies));
    }
    Ok(out)
}

/// What one pipe is, asked of its serving processes (for `pipeslot info`).
///
/// # Errors
/// `ERROR_FILE_NOT_FOUND (2)` when no process serves the name.
pub fn pipe_listing(name: &str) -> std::io::Result<PipeListing> {
    let parsed = crate::error::pipe_name(name)?;
    let dirs = pipe::client::PipeDirs::find(&parsed)?.ok_or_else(|| ns::not_found(&parsed))?;
    let replies = pipe::client::census_dir(&parsed, &dirs, pipe::client::Census::List)?;
    let display = dirs
        .obj
        .dir
        .read_small("name", 4096)
        .filter(|(_, uid)| *uid == dirs.obj.owner() || *uid == 0)
        .and_then(|(t, _)| String::from_utf8(t).ok())
        .filter(|d| PipeName::parse(d).is_ok_and(|n| n.folded() == parsed.folded()))
        .unwrap_or_else(|| parsed.to_string());
    PipeListing::from_replies(display, dirs.obj.owner(), &replies).ok_or_else(|| ns::not_found(&parsed))
}

/// The README's Rust example, compiled and run as a doctest (its command
/// transcripts are run by the command's tests).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
