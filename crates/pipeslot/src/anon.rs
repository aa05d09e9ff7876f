//! Anonymous pipes: [`std::io::pipe`] already gives CreatePipe's pair of
//! handles. This module adds only what it lacks: CreatePipe's buffer size
//! (`nSize`) and PeekNamedPipe's "bytes available" on the read end.
//!
//! ```
//! use std::io::Write;
//! let (reader, mut writer) = pipeslot::anon::pipe_with_size(1 << 20)?;
//! assert!(pipeslot::anon::buffer_size(&reader)? >= 1 << 20);
//! writer.write_all(b"twelve bytes")?;
//! assert_eq!(pipeslot::anon::available(&reader)?, 12);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, PipeReader, PipeWriter};
use std::os::fd::AsFd;

/// CreatePipe with `nSize`: a pipe whose kernel buffer holds at least
/// `size` bytes (rounded up to a page; capped by
/// `/proc/sys/fs/pipe-max-size` for unprivileged users).
///
/// # Errors
/// What the kernel says when the size is refused (`EPERM` over the cap).
pub fn pipe_with_size(size: usize) -> io::Result<(PipeReader, PipeWriter)> {
    let (r, w) = std::io::pipe()?;
    rustix::pipe::fcntl_setpipe_size(&w, size)?;
    Ok((r, w))
}

/// The pipe's buffer size in bytes.
pub fn buffer_size(end: &impl AsFd) -> io::Result<usize> {
    Ok(rustix::pipe::fcntl_getpipe_size(end)?)
}

/// PeekNamedPipe's `lpTotalBytesAvail`: bytes ready to read without blocking.
pub fn available(reader: &PipeReader) -> io::Result<usize> {
    Ok(rustix::io::ioctl_fionread(reader)? as usize)
}
