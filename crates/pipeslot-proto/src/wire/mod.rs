//! Sans-IO codecs: views over `&[u8]` and owned representations, each tested
//! against golden bytes at the bottom of its file.
//!
//! - [`local`]: our handshake and message framing between local processes.
//! - [`netbios`]: the NetBIOS datagram header and names (RFC 1002 4.4.1,
//!   RFC 1001 14.1), the envelope of remote mailslot writes.
//! - [`smb1`]: the SMB1 Write Mail Slot transaction ([MS-MAIL] 2.2.1).
//! - [`mailslot`]: a whole mailslot datagram: parse a UDP payload or say why
//!   it is dropped, build one from fields.

pub mod local;
pub mod mailslot;
pub mod netbios;
pub mod smb1;

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
