//! Standard output, shared by every thread: one lock per message or chunk,
//! so what two clients send is never torn or interleaved mid-message, and a
//! flush per write, so a reader sees each message as soon as it arrives.
//!
//! A closed stdout (`pipeslot serve … | head -1`) is not an error: writes
//! then fail with [`StdoutClosed`], which `main` turns into a quiet exit 0.

use std::fmt;
use std::io::{self, Write};

use crate::hex;

/// Marker carried inside an `io::Error`: stdout's reader went away.
#[derive(Debug)]
pub(crate) struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// True for the error that stdout writes return once it is closed.
pub(crate) fn is_stdout_closed(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<StdoutClosed>())
}

fn stdout_error(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        crate::error::wrap(e, "writing to standard output")
    }
}

/// Writes `parts` under one stdout lock and flushes.
pub(crate) fn write(parts: &[&[u8]]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    for p in parts {
        out.write_all(p).map_err(stdout_error)?;
    }
    out.flush().map_err(stdout_error)
}

/// One message and a newline, as bytes or as hex.
pub(crate) fn message(msg: &[u8], as_hex: bool) -> io::Result<()> {
    if as_hex {
        write(&[&hex::encode(msg), b"\n"])
    } else {
        write(&[msg, b"\n"])
    }
}

/// A line of text.
pub(crate) fn line(text: &str) -> io::Result<()> {
    write(&[text.as_bytes(), b"\n"])
}
