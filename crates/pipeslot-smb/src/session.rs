//! SESSION_SETUP ([MS-SMB2] 2.2.5, 2.2.6): carries the security tokens
//! (SPNEGO) that authenticate a session.

use crate::header::{Command, Header, HEADER_LEN};
use crate::le;
use crate::DecodeError;

/// The fixed part of a SESSION_SETUP request body.
pub const SESSION_SETUP_REQUEST_FIXED: usize = 24;

/// SESSION_SETUP request fields a client sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSetupRequest<'a> {
    pub security_mode: u8,
    pub capabilities: u32,
    pub previous_session_id: u64,
    pub security_buffer: &'a [u8],
}

impl SessionSetupRequest<'_> {
    /// The body, to follow a 64-byte header.
    pub fn emit_body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(24 + self.security_buffer.len());
        b.extend_from_slice(&25u16.to_le_bytes());
        b.push(0); // Flags: no binding
        b.push(self.security_mode);
        b.extend_from_slice(&self.capabilities.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes()); // Channel
        b.extend_from_slice(&((HEADER_LEN + 24) as u16).to_le_bytes());
        b.extend_from_slice(&(self.security_buffer.len() as u16).to_le_bytes());
        b.extend_from_slice(&self.previous_session_id.to_le_bytes());
        b.extend_from_slice(self.security_buffer);
        b
    }
}

/// SESSION_SETUP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSetupResponse<'a> {
    pub session_flags: u16,
    pub security_buffer: &'a [u8],
}

/// SessionFlags.
pub mod session_flags {
    pub const IS_GUEST: u16 = 0x0001;
    pub const IS_NULL: u16 = 0x0002;
    pub const ENCRYPT_DATA: u16 = 0x0004;
}

impl<'a> SessionSetupResponse<'a> {
    /// The body, to follow a 64-byte header (a server's answer).
    pub fn emit_body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + self.security_buffer.len());
        b.extend_from_slice(&9u16.to_le_bytes());
        b.extend_from_slice(&self.session_flags.to_le_bytes());
        let off = if self.security_buffer.is_empty() {
            0
        } else {
            HEADER_LEN as u16 + 8
        };
        b.extend_from_slice(&off.to_le_bytes());
        b.extend_from_slice(&(self.security_buffer.len() as u16).to_le_bytes());
        b.extend_from_slice(self.security_buffer);
        if self.security_buffer.is_empty() {
            b.push(0);
        }
        b
    }

    /// Parses a whole message (header and body).
    ///
    /// # Errors
    /// Not a SESSION_SETUP response, or a buffer outside the message.
    pub fn parse(msg: &'a [u8]) -> Result<SessionSetupResponse<'a>, DecodeError> {
        let h = Header::new_checked(msg)?;
        if h.command() != Command::SESSION_SETUP {
            return Err(DecodeError::Malformed("SMB2 command"));
        }
        let b = h.body();
        if b.len() < 8 {
            return Err(DecodeError::Truncated("SESSION_SETUP response"));
        }
        if le::u16(b, 0) != 9 {
            return Err(DecodeError::Malformed("SESSION_SETUP response structure size"));
        }
        let (off, len) = (usize::from(le::u16(b, 4)), usize::from(le::u16(b, 6)));
        let security_buffer = if len == 0 {
            &[][..]
        } else {
            msg.get(off..off + len)
                .ok_or(DecodeError::Truncated("SESSION_SETUP security buffer"))?
        };
        Ok(SessionSetupResponse {
            session_flags: le::u16(b, 2),
            security_buffer,
        })
    }
}
