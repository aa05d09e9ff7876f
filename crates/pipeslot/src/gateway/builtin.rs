//! Pipes the gateway serves itself rather than from a local server: `srvsvc`
//! (MS-SRVS over DCE/RPC), so `smbclient -L`, `net view` and
//! `rpcclient srvinfo` see the host and its IPC$ share. It behaves as a
//! message pipe opened by one client: a write is a request, a read waits
//! for its answer.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;

use tokio::sync::Notify;

use pipeslot_smb::srvsvc::Srvsvc;

use crate::error::{err, Win32Error};
use crate::pipe::{MsgRead, PeekInfo};

/// The names served here, whatever the exports say.
pub(super) fn is_builtin(pipe: &str) -> bool {
    pipe.eq_ignore_ascii_case("srvsvc")
}

struct State {
    svc: Srvsvc,
    /// Answers not yet read; the front one may be partly read.
    out: VecDeque<Vec<u8>>,
    read_from: usize,
    closed: bool,
}

/// Lives on its connection's thread (the gateway runs each connection on a
/// runtime of its own), so a `RefCell` is enough.
pub(super) struct Builtin {
    state: RefCell<State>,
    ready: Notify,
}

impl Builtin {
    pub(super) fn srvsvc(computer: &str) -> Builtin {
        Builtin {
            state: RefCell::new(State {
                svc: Srvsvc::new(computer, "pipeslot gateway"),
                out: VecDeque::new(),
                read_from: 0,
                closed: false,
            }),
            ready: Notify::new(),
        }
    }

    pub(super) fn write_msg(&self, msg: &[u8]) -> io::Result<()> {
        let mut s = self.state.borrow_mut();
        if s.closed {
            return Err(err(Win32Error::ERROR_NO_DATA, "the pipe is closing"));
        }
        let answer = s
            .svc
            .handle(msg)
            .map_err(|e| err(Win32Error::ERROR_INVALID_PARAMETER, format!("srvsvc: {e}")))?;
        s.out.push_back(answer);
        self.ready.notify_waiters();
        Ok(())
    }

    /// Cancel safe: nothing is taken until it returns.
    pub(super) async fn read_msg(&self, buf: &mut [u8]) -> io::Result<MsgRead> {
        loop {
            let woken = self.ready.notified();
            {
                let s = self.state.borrow();
                if !s.out.is_empty() || s.closed {
                    break;
                }
            }
            woken.await;
        }
        let mut s = self.state.borrow_mut();
        if s.closed {
            return Err(err(Win32Error::ERROR_BROKEN_PIPE, "the pipe was closed"));
        }
        let from = s.read_from;
        let front = &s.out[0];
        let n = buf.len().min(front.len() - from);
        buf[..n].copy_from_slice(&front[from..from + n]);
        let more = from + n < front.len();
        if more {
            s.read_from += n;
        } else {
            s.out.pop_front();
            s.read_from = 0;
        }
        Ok(MsgRead { len: n, more })
    }

    /// TransactNamedPipe: refused while an answer is still unread.
    pub(super) async fn transact(&self, msg: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
        if !self.state.borrow().out.is_empty() {
            return Err(err(Win32Error::ERROR_PIPE_BUSY, "an unread message waits on the pipe"));
        }
        self.write_msg(msg)?;
        self.read_msg(reply).await
    }

    pub(super) fn peek(&self, buf: &mut [u8]) -> PeekInfo {
        let s = self.state.borrow();
        let Some(front) = s.out.front() else {
            return PeekInfo {
                read: 0,
                available: 0,
                left_in_message: 0,
            };
        };
        let rest = &front[s.read_from..];
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        PeekInfo {
            read: n,
            available: s.out.iter().map(Vec::len).sum::<usize>() - s.read_from,
            left_in_message: rest.len() - n,
        }
    }

    /// Bytes of answers not yet read.
    pub(super) fn queued(&self) -> usize {
        let s = self.state.borrow();
        s.out.iter().map(Vec::len).sum::<usize>() - s.read_from
    }

    /// The client closed it: a read that waits ends.
    pub(super) fn abort(&self) {
        self.state.borrow_mut().closed = true;
        self.ready.notify_waiters();
    }
}
