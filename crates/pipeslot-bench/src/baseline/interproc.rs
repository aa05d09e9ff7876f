//! The `interprocess` crate's local sockets (a Unix stream socket under its
//! portable API), fixed-size messages.

use std::io;

use interprocess::local_socket::{prelude::*, GenericFilePath, ListenerOptions, Stream};

use super::unix::Fixed;
use crate::link::Link;
use crate::peer::{Control, PeerSpec};

/// Binds, says `READY`, accepts one client.
pub(crate) fn serve(spec: &PeerSpec, ctl: &mut Control) -> io::Result<Box<dyn Link>> {
    let name = spec.addr.as_str().to_fs_name::<GenericFilePath>()?;
    let listener = ListenerOptions::new().name(name).create_sync()?;
    ctl.ready()?;
    let s = listener.accept()?;
    Ok(Box::new(Fixed { s, size: spec.size }))
}

/// Connects to the peer.
pub(crate) fn connect(spec: &PeerSpec) -> io::Result<Box<dyn Link>> {
    let name = spec.addr.as_str().to_fs_name::<GenericFilePath>()?;
    let s = Stream::connect(name)?;
    Ok(Box::new(Fixed { s, size: spec.size }))
}
