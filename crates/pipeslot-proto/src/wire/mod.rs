//! Sans-IO codecs: views over `&[u8]` and owned representations, each tested
//! against golden bytes at the bottom of its file.
//!
//! - [`local`]: our handshake and message framing between local processes.

pub mod local;

/// Why bytes could not be decoded. Small, `Copy`, allocation-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the structure needs.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A field holds a value the format forbids.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// Well-formed, but something this implementation does not do.
    #[error("unsupported {0}")]
    Unsupported(&'static str),
}
