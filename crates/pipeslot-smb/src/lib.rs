//! Sans-IO SMB2/3, the subset named pipes need, for both directions: the
//! client (remote `\\HOST\pipe\NAME`) and the gateway (our server for IPC$).
//!
//! Determinism contract: nothing here opens a socket, reads a clock, starts
//! a thread or uses `unsafe`. Codecs take and give bytes; times and random
//! values (GUIDs, salts) come from the caller. The library's drivers do the
//! I/O, so every exchange can be tested in memory.
//!
//! - [`transport`]: the Direct TCP frame (a 4-byte length before each message).
//! - [`header`]: the 64-byte SMB2 packet header, a view and a representation.
//! - [`status`]: NTSTATUS codes, their names, and the Win32 error each maps to.
//! - [`negotiate`]: NEGOTIATE request and response, with SMB 3.1.1 contexts.
//! - [`session`]: SESSION_SETUP, which carries the security tokens.
//! - [`spnego`], [`ntlm`]: the tokens: SPNEGO around NTLMv2.
//! - [`signing`]: 3.1.1's preauth hash, key derivation, AES-CMAC signatures.
//! - [`tree`], [`create`], [`io`], [`ioctl`]: IPC$, opening a pipe, READ and
//!   WRITE, and the pipe FSCTLs (TRANSCEIVE is TransactNamedPipe).
//! - [`crypt`]: 3.x encryption, the TRANSFORM_HEADER with AES-CCM/GCM.
//! - [`client`]: the client's state machine: the handshake, then message
//!   ids, credits, signing or sealing, interim answers.
//! - [`server`]: the server's (the gateway's IPC$): the handshake and the
//!   share answered here, pipe requests handed to the host as events.

#![forbid(unsafe_code)]

pub mod client;
pub mod create;
pub mod crypt;
pub mod dcerpc;
pub mod header;
pub mod info;
pub mod io;
pub mod ioctl;
pub mod negotiate;
pub mod npa;
pub mod ntlm;
pub mod server;
pub mod session;
pub mod signing;
pub mod spnego;
pub mod srvsvc;
pub mod status;
pub mod transport;
pub mod tree;

pub use pipeslot_proto::wire::DecodeError;

/// The body of `msg` when it is a `command` with `structure_size` and at
/// least `fixed` bytes of body; `what` names it in the error.
pub(crate) fn body_of<'a>(
    msg: &'a [u8],
    command: header::Command,
    structure_size: u16,
    fixed: usize,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let h = header::Header::new_checked(msg)?;
    if h.command() != command {
        return Err(DecodeError::Malformed("SMB2 command"));
    }
    let b = &msg[header::HEADER_LEN..];
    if b.len() < fixed || le::u16(b, 0) != structure_size {
        return Err(DecodeError::Truncated(what));
    }
    Ok(b)
}

/// UTF-16LE bytes as a string (names in requests).
pub(crate) fn utf16_string(raw: &[u8], what: &'static str) -> Result<String, DecodeError> {
    if !raw.len().is_multiple_of(2) {
        return Err(DecodeError::Malformed(what));
    }
    let units: Vec<u16> = raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    String::from_utf16(&units).map_err(|_| DecodeError::Malformed(what))
}

/// Little-endian readers over a slice whose length was checked before.
pub(crate) mod le {
    pub(crate) fn u16(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    pub(crate) fn u32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
    pub(crate) fn u64(b: &[u8], at: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(a)
    }
}
