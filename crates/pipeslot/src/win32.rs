//! The seed's API, Win32::Pipe (Perl), on top of the blocking front end:
//! `new` / `connect` / `disconnect` / `read` / `write` / `close` / `error` /
//! `buffer_size` / `resize_buffer`. Calls report success as Win32::Pipe does
//! (true/false, `None` for a failed read) and keep the last error for
//! [`Win32Pipe::error`] — with none of its known problems: a read whose peer
//! died returns at once, and the pipe is owner-only unless told otherwise.
//!
//! ```
//! # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-w32-{}", std::process::id())));
//! use pipeslot::win32::Win32Pipe;
//! let mut server = Win32Pipe::new("My Pipe Name").expect("server");
//! let t = std::thread::spawn(|| {
//!     let mut client = Win32Pipe::new(r"\\.\pipe\My Pipe Name").expect("client");
//!     assert!(client.write(b"Howdy! This is cool!"));
//!     client.close();
//! });
//! assert!(server.connect());
//! assert_eq!(server.read().as_deref(), Some(&b"Howdy! This is cool!"[..]));
//! t.join().unwrap();
//! assert_eq!(server.read(), None, "the client closed");
//! assert_eq!(server.error().0, 109, "ERROR_BROKEN_PIPE");
//! assert!(server.disconnect());
//! ```

use std::io::{self, Read, Write};

use crate::blocking::{ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions};
use crate::error::Error;

/// The default buffer size of Win32::Pipe.
pub const DEFAULT_BUFFER_SIZE: usize = 512;

#[derive(Debug)]
enum End {
    Server(Box<NamedPipeServer>),
    Client(NamedPipeClient),
    Closed,
}

/// One Win32::Pipe object: a server instance or a client connection.
#[derive(Debug)]
pub struct Win32Pipe {
    end: End,
    buffer_size: usize,
    error: Option<(u32, String)>,
}

impl Win32Pipe {
    /// `new(NAME)`: a name starting with `\\` connects as a client; any other
    /// name creates the server `\\.\pipe\NAME`. `None` on failure, with the
    /// reason in [`Win32Pipe::last_error`].
    pub fn new(name: &str) -> Option<Win32Pipe> {
        let end = if name.starts_with(r"\\") || name.starts_with("//") {
            ClientOptions::new().open(name).map(End::Client)
        } else {
            ServerOptions::new().create(name).map(|s| End::Server(Box::new(s)))
        };
        match end {
            Ok(end) => Some(Win32Pipe {
                end,
                buffer_size: DEFAULT_BUFFER_SIZE,
                error: None,
            }),
            Err(e) => {
                set_last(&e);
                None
            }
        }
    }

    /// The error of the last failed `new` on this thread, as `(number, text)`.
    pub fn last_error() -> (u32, String) {
        LAST.with(|l| l.borrow().clone())
    }

    fn record<T>(&mut self, r: io::Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                let code = Error::win32(&e).map(|c| c.0).unwrap_or(31);
                self.error = Some((code, e.to_string()));
                None
            }
        }
    }

    fn closed() -> io::Error {
        Error::new(crate::Win32Error::ERROR_INVALID_HANDLE, "the pipe was closed").into()
    }

    /// `Connect()`: the server waits for a client. True on success.
    pub fn connect(&mut self) -> bool {
        let r = match &self.end {
            End::Server(s) => s.connect(),
            _ => Err(Self::closed()),
        };
        self.record(r).is_some()
    }

    /// `Disconnect()`: the server ends the current client's connection.
    pub fn disconnect(&mut self) -> bool {
        let r = match &self.end {
            End::Server(s) => s.disconnect(),
            _ => Err(Self::closed()),
        };
        self.record(r).is_some()
    }

    /// `Read()`: up to `buffer_size` bytes, or `None` on failure (peer gone:
    /// `ERROR_BROKEN_PIPE`, at once).
    pub fn read(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; self.buffer_size];
        let r = match &mut self.end {
            End::Server(s) => s.read(&mut buf),
            End::Client(c) => c.read(&mut buf),
            End::Closed => Err(Self::closed()),
        };
        let r = match r {
            Ok(0) if !buf.is_empty() => {
                Err(Error::new(crate::Win32Error::ERROR_BROKEN_PIPE, "the pipe has been ended").into())
            }
            r => r,
        };
        let n = self.record(r)?;
        buf.truncate(n);
        Some(buf)
    }

    /// `Write(DATA)`: true when all of it was written.
    pub fn write(&mut self, data: &[u8]) -> bool {
        let r = match &mut self.end {
            End::Server(s) => s.write_all(data),
            End::Client(c) => c.write_all(data),
            End::Closed => Err(Self::closed()),
        };
        self.record(r).is_some()
    }

    /// `Close()`.
    pub fn close(&mut self) {
        self.end = End::Closed;
    }

    /// `Error()`: the last error of this pipe as `(number, text)`; `(0, "")`
    /// when none.
    pub fn error(&self) -> (u32, String) {
        self.error.clone().unwrap_or_default()
    }

    /// `BufferSize()`.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// `ResizeBuffer(SIZE)`: returns the new size.
    pub fn resize_buffer(&mut self, size: usize) -> usize {
        self.buffer_size = size.max(1);
        self.buffer_size
    }
}

thread_local! {
    static LAST: std::cell::RefCell<(u32, String)> = const { std::cell::RefCell::new((0, String::new())) };
}

fn set_last(e: &io::Error) {
    let code = Error::win32(e).map(|c| c.0).unwrap_or(31);
    LAST.with(|l| *l.borrow_mut() = (code, e.to_string()));
}
