//! A remote pipe under the tokio front end. Reads go through one stored
//! future that fills the pipe's held message, so `poll_read`, `ready` and
//! a cancelled `read_msg` all continue the same READ and nothing is lost.
//! Writes are single futures per call. There is no readiness to borrow from
//! a socket of its own, so the `try_write`/`try_io` family is not offered.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{Interest, Ready};

use super::pipe::RemotePipe;
use crate::error::{err_kind, Win32Error};
use crate::pipe::MsgRead;

type Pending<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The async state of one remote pipe handle.
pub(crate) struct RemoteIo {
    pub(crate) pipe: Arc<RemotePipe>,
    fill: Mutex<Option<Pending<bool>>>,
    write: Mutex<Option<Pending<usize>>>,
    ended: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for RemoteIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteIo({})", self.pipe.name())
    }
}

impl RemoteIo {
    pub(crate) fn new(pipe: RemotePipe) -> RemoteIo {
        RemoteIo {
            pipe: Arc::new(pipe),
            fill: Mutex::new(None),
            write: Mutex::new(None),
            ended: Default::default(),
        }
    }

    /// Ready once a message is held: `Ok(false)` when the pipe has ended.
    pub(crate) fn poll_fill(&self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.pipe.holds_data() {
            return Poll::Ready(Ok(true));
        }
        if self.ended.load(std::sync::atomic::Ordering::Relaxed) {
            return Poll::Ready(Ok(false));
        }
        let mut f = lock(&self.fill);
        let fut = f.get_or_insert_with(|| Box::pin(Arc::clone(&self.pipe).fill_async()));
        let r = std::task::ready!(fut.as_mut().poll(cx));
        *f = None;
        if matches!(r, Ok(false)) {
            self.ended.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Poll::Ready(r)
    }

    pub(crate) async fn read_msg(&self, buf: &mut [u8]) -> io::Result<Option<MsgRead>> {
        if !std::future::poll_fn(|cx| self.poll_fill(cx)).await? {
            return Ok(None);
        }
        Ok(Some(
            self.pipe.take_held(buf).unwrap_or(MsgRead { len: 0, more: false }),
        ))
    }

    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if !std::task::ready!(self.poll_fill(cx))? {
            return Poll::Ready(Ok(0));
        }
        Poll::Ready(Ok(self.pipe.take_held(buf).map_or(0, |m| m.len)))
    }

    /// What is held, or `WouldBlock` (wait with `readable()` first).
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.pipe.take_held(buf) {
            Some(m) => Ok(m.len),
            None if self.ended.load(std::sync::atomic::Ordering::Relaxed) => Ok(0),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    pub(crate) async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        if interest.is_writable() {
            return Ok(Ready::WRITABLE);
        }
        Ok(if std::future::poll_fn(|cx| self.poll_fill(cx)).await? {
            Ready::READABLE
        } else {
            Ready::READ_CLOSED
        })
    }

    /// One WRITE per call: done when the server has taken all of `buf`.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut w = lock(&self.write);
        let fut = w.get_or_insert_with(|| {
            let pipe = Arc::clone(&self.pipe);
            let data = buf.to_vec();
            Box::pin(async move { pipe.write_async(&data).await })
        });
        let r = std::task::ready!(fut.as_mut().poll(cx));
        *w = None;
        Poll::Ready(r)
    }

    pub(crate) fn unsupported(&self, what: &str) -> io::Error {
        err_kind(
            io::ErrorKind::Unsupported,
            Win32Error::ERROR_NOT_SUPPORTED,
            format!(
                "{what} is not available on the remote pipe {}: use read/write_msg, AsyncRead/AsyncWrite or readable() with try_read",
                self.pipe.name()
            ),
        )
    }
}
