//! ZeroMQ over `ipc://` (libzmq): REQ/REP for round trips, PUSH/PULL for
//! one-way rates (libzmq batches small messages itself). High-water marks
//! are raised so PUSH never waits on its default 1,000-message queue.

use std::io;

use crate::link::Link;
use crate::peer::{Control, PeerSpec};

#[cfg(feature = "zmq")]
pub(crate) use imp::{connect, serve};

#[cfg(not(feature = "zmq"))]
/// Built without the `zmq` feature: the case is skipped.
pub(crate) fn serve(_: bool, _: &PeerSpec, _: &mut Control) -> io::Result<Box<dyn Link>> {
    Err(unsupported())
}

#[cfg(not(feature = "zmq"))]
/// Built without the `zmq` feature: the case is skipped.
pub(crate) fn connect(_: bool, _: &PeerSpec) -> io::Result<Box<dyn Link>> {
    Err(unsupported())
}

#[cfg(not(feature = "zmq"))]
fn unsupported() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "built without the zmq feature")
}

#[cfg(feature = "zmq")]
mod imp {
    use super::*;

    const HWM: i32 = 1 << 20;
    /// How long one send or receive may wait, in milliseconds.
    const TIMEOUT_MS: i32 = 30_000;

    fn zerr(e: zmq::Error) -> io::Error {
        io::Error::other(format!("zmq: {e}"))
    }

    fn endpoint(spec: &PeerSpec) -> String {
        format!("ipc://{}", spec.addr)
    }

    fn socket(kind: zmq::SocketType) -> io::Result<Zmq> {
        let ctx = zmq::Context::new();
        let sock = ctx.socket(kind).map_err(zerr)?;
        sock.set_linger(0).map_err(zerr)?;
        sock.set_sndhwm(HWM).map_err(zerr)?;
        sock.set_rcvhwm(HWM).map_err(zerr)?;
        // ZeroMQ waits for ever on a peer that died: bound every wait.
        sock.set_rcvtimeo(TIMEOUT_MS).map_err(zerr)?;
        sock.set_sndtimeo(TIMEOUT_MS).map_err(zerr)?;
        Ok(Zmq {
            sock,
            _ctx: ctx,
            req: kind == zmq::REQ,
        })
    }

    /// Binds (REP or PULL), says `READY`; ZeroMQ accepts on its own thread.
    pub(crate) fn serve(push_pull: bool, spec: &PeerSpec, ctl: &mut Control) -> io::Result<Box<dyn Link>> {
        let z = socket(if push_pull { zmq::PULL } else { zmq::REP })?;
        z.sock.bind(&endpoint(spec)).map_err(zerr)?;
        ctl.ready()?;
        Ok(Box::new(z))
    }

    /// Connects (REQ or PUSH) to the peer.
    pub(crate) fn connect(push_pull: bool, spec: &PeerSpec) -> io::Result<Box<dyn Link>> {
        let z = socket(if push_pull { zmq::PUSH } else { zmq::REQ })?;
        z.sock.connect(&endpoint(spec)).map_err(zerr)?;
        Ok(Box::new(z))
    }

    /// The socket is declared first so it closes before its context ends.
    struct Zmq {
        sock: zmq::Socket,
        _ctx: zmq::Context,
        req: bool,
    }

    impl Link for Zmq {
        fn send(&mut self, msg: &[u8]) -> io::Result<()> {
            self.sock.send(msg, 0).map_err(zerr)
        }

        /// An empty message is the bench's goodbye (REP sees no close).
        fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
            match self.sock.recv_into(buf, 0).map_err(zerr)? {
                0 => Ok(None),
                n => Ok(Some(n.min(buf.len()))),
            }
        }

        fn close(&mut self) -> io::Result<()> {
            if self.req {
                // Linger so the goodbye leaves before the context ends.
                self.sock.set_linger(1000).map_err(zerr)?;
                self.sock.send(&[][..], 0).map_err(zerr)?;
            }
            Ok(())
        }
    }
}
