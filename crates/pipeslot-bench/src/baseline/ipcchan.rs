//! ipc-channel's byte channels (`IpcBytesSender` / `IpcBytesReceiver`, its
//! cheapest path: no serialisation). The server makes a one-shot server and
//! leaves its name in the file at the case's address before `READY`; the
//! client connects to it and hands over the two channel ends the server
//! needs (its requests' receiver, its replies' sender).

use std::io;

use crate::link::Link;
use crate::peer::{Control, PeerSpec};

#[cfg(feature = "ipc-channel")]
pub(crate) use imp::{connect, serve};

#[cfg(not(feature = "ipc-channel"))]
/// Built without the `ipc-channel` feature: the case is skipped.
pub(crate) fn serve(_: &PeerSpec, _: &mut Control) -> io::Result<Box<dyn Link>> {
    Err(unsupported())
}

#[cfg(not(feature = "ipc-channel"))]
/// Built without the `ipc-channel` feature: the case is skipped.
pub(crate) fn connect(_: &PeerSpec) -> io::Result<Box<dyn Link>> {
    Err(unsupported())
}

#[cfg(not(feature = "ipc-channel"))]
fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "built without the ipc-channel feature (cargo bench -p pipeslot-bench --features ipc-channel)",
    )
}

#[cfg(feature = "ipc-channel")]
mod imp {
    use super::*;
    use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcSender};
    use ipc_channel::IpcError;

    type Hello = (IpcBytesReceiver, IpcBytesSender);

    fn ierr(e: IpcError) -> io::Error {
        io::Error::other(format!("ipc-channel: {e}"))
    }

    /// One end: where it sends, where it receives.
    struct Chan {
        tx: IpcBytesSender,
        rx: IpcBytesReceiver,
    }

    impl Link for Chan {
        fn send(&mut self, msg: &[u8]) -> io::Result<()> {
            self.tx.send(msg)
        }

        fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
            match self.rx.recv() {
                Ok(m) => {
                    let n = m.len().min(buf.len());
                    buf[..n].copy_from_slice(&m[..n]);
                    Ok(Some(m.len()))
                }
                Err(IpcError::Disconnected) => Ok(None),
                Err(e) => Err(ierr(e)),
            }
        }
    }

    /// Makes the one-shot server, writes its name, says `READY`, takes one client.
    pub(crate) fn serve(spec: &PeerSpec, ctl: &mut Control) -> io::Result<Box<dyn Link>> {
        let (server, name) = IpcOneShotServer::<Hello>::new()?;
        std::fs::write(&spec.addr, name)?;
        ctl.ready()?;
        let (_first, (rx, tx)) = server.accept().map_err(ierr)?;
        Ok(Box::new(Chan { tx, rx }))
    }

    /// Connects to the peer's one-shot server.
    pub(crate) fn connect(spec: &PeerSpec) -> io::Result<Box<dyn Link>> {
        let name = std::fs::read_to_string(&spec.addr)?;
        let (req_tx, req_rx) = ipc::bytes_channel()?;
        let (rep_tx, rep_rx) = ipc::bytes_channel()?;
        IpcSender::<Hello>::connect(name)?
            .send((req_rx, rep_tx))
            .map_err(|e| io::Error::other(format!("ipc-channel: {e}")))?;
        Ok(Box::new(Chan { tx: req_tx, rx: rep_rx }))
    }
}
