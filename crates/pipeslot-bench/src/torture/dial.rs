//! Where and how the torture's clients open the pipe: on this machine, or
//! through a gateway as `\\127.0.0.1\pipe\NAME` (its port and an account),
//! with the same calls either way.

use std::io;
use std::time::{Duration, Instant};

use pipeslot::blocking::{ClientOptions, NamedPipeClient};
use pipeslot::{PipeMode, WaitTimeout, Win32Error};

use super::data::MAX_MESSAGE;

#[derive(Debug, Clone)]
pub(crate) struct Dial {
    pub(crate) addr: String,
    opts: ClientOptions,
    /// What the figures call this path: `blocking`, `gateway`, `samba`.
    pub(crate) label: &'static str,
    /// The shortest message this path carries. smbd answers a zero-length
    /// WRITE on a proxied pipe with success and forwards nothing (its
    /// np_write_send), so through Samba an empty message never arrives
    /// and its reply is waited for in vain; our gateway carries it.
    pub(crate) min_len: usize,
    /// The longest. smbd's pipe proxy frames a message with a u16 length
    /// and refuses a longer one (STATUS_PORT_MESSAGE_TOO_LONG); our gateway
    /// and local pipes carry the load's whole range.
    pub(crate) max_len: usize,
}

impl Dial {
    /// A local name, in message mode.
    pub(crate) fn local(addr: &str) -> Dial {
        let mut opts = ClientOptions::new();
        opts.pipe_mode(PipeMode::Message);
        Dial {
            addr: addr.to_owned(),
            opts,
            label: "blocking",
            min_len: 0,
            max_len: MAX_MESSAGE,
        }
    }

    /// `short` (a local pipe's last part) through the gateway on loopback
    /// at `port`, as `user`.
    pub(crate) fn through_gateway(port: u16, user: &str, password: &str, short: &str) -> Dial {
        let mut opts = ClientOptions::new();
        opts.pipe_mode(PipeMode::Message)
            .smb_port(port)
            .smb_credentials(pipeslot::SmbCredentials::new(user, password))
            .require_signing(true);
        Dial {
            addr: format!(r"\\127.0.0.1\pipe\{short}"),
            opts,
            label: "gateway",
            min_len: 0,
            max_len: MAX_MESSAGE,
        }
    }

    /// The same path under another name in the figures (an SMB server that
    /// is not our gateway: Samba).
    pub(crate) fn labelled(mut self, label: &'static str) -> Dial {
        self.label = label;
        self
    }

    /// Messages of `min..=max` bytes on this path.
    pub(crate) fn lengths(mut self, min: usize, max: usize) -> Dial {
        assert!(min <= max && max <= MAX_MESSAGE);
        (self.min_len, self.max_len) = (min, max);
        self
    }

    pub(crate) fn open(&self) -> io::Result<NamedPipeClient> {
        self.opts.open(&self.addr)
    }

    /// WaitNamedPipe on the name, with these options.
    pub(crate) fn wait(&self, timeout: Duration) -> io::Result<()> {
        self.opts.wait(&self.addr, WaitTimeout::After(timeout))
    }

    /// Opens, waiting (up to `limit`) while every instance is busy, as a
    /// Win32 client does.
    pub(crate) fn open_waiting(&self, limit: Duration) -> io::Result<NamedPipeClient> {
        let deadline = Instant::now() + limit;
        loop {
            match self.open() {
                Err(e)
                    if pipeslot::Error::win32(&e) == Some(Win32Error::ERROR_PIPE_BUSY) && Instant::now() < deadline =>
                {
                    // A crowd of clients can keep every instance busy past
                    // one wait: wait again until the limit.
                    match self.wait(Duration::from_secs(1)) {
                        Err(e) if pipeslot::Error::win32(&e) == Some(Win32Error::ERROR_SEM_TIMEOUT) => {}
                        r => r?,
                    }
                }
                r => return r,
            }
        }
    }
}
