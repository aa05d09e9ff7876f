//! TREE_CONNECT ([MS-SMB2] 2.2.9, 2.2.10): a client attaches to a share;
//! for pipes that is always `\\SERVER\IPC$`.

use crate::header::{Command, HEADER_LEN};
use crate::le;
use crate::DecodeError;

/// ShareType of the IPC$ share.
pub const SHARE_TYPE_PIPE: u8 = 0x02;

/// The TREE_CONNECT request body for `path` (`\\server\IPC$`), after a 64-byte header.
pub fn tree_connect_body(path: &str) -> Vec<u8> {
    let name: Vec<u8> = path.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut b = Vec::with_capacity(8 + name.len());
    b.extend_from_slice(&9u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes()); // Flags (3.1.1) / Reserved
    b.extend_from_slice(&((HEADER_LEN + 8) as u16).to_le_bytes());
    b.extend_from_slice(&(name.len() as u16).to_le_bytes());
    b.extend_from_slice(&name);
    b
}

/// TREE_CONNECT response (the tree id is the header's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeConnectResponse {
    pub share_type: u8,
    pub share_flags: u32,
    pub capabilities: u32,
    pub maximal_access: u32,
}

impl TreeConnectResponse {
    /// Parses a whole message.
    ///
    /// # Errors
    /// Not a TREE_CONNECT response, or too short.
    pub fn parse(msg: &[u8]) -> Result<TreeConnectResponse, DecodeError> {
        let b = crate::body_of(msg, Command::TREE_CONNECT, 16, 16, "TREE_CONNECT response")?;
        Ok(TreeConnectResponse {
            share_type: b[2],
            share_flags: le::u32(b, 4),
            capabilities: le::u32(b, 8),
            maximal_access: le::u32(b, 12),
        })
    }
}

/// A TREE_CONNECT request, the server's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeConnectRequest {
    /// `\\server\share`.
    pub path: String,
}

impl TreeConnectRequest {
    /// Parses a whole message.
    ///
    /// # Errors
    /// Not a TREE_CONNECT request, a path outside it or not UTF-16.
    pub fn parse(msg: &[u8]) -> Result<TreeConnectRequest, DecodeError> {
        let b = crate::body_of(msg, Command::TREE_CONNECT, 9, 8, "TREE_CONNECT request")?;
        let (off, len) = (usize::from(le::u16(b, 4)), usize::from(le::u16(b, 6)));
        let raw = msg
            .get(off..off + len)
            .ok_or(DecodeError::Truncated("TREE_CONNECT path"))?;
        Ok(TreeConnectRequest {
            path: crate::utf16_string(raw, "TREE_CONNECT path")?,
        })
    }
}

impl TreeConnectResponse {
    /// The body for the IPC$ share, after a 64-byte header.
    pub fn emit_body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16);
        b.extend_from_slice(&16u16.to_le_bytes());
        b.push(self.share_type);
        b.push(0);
        b.extend_from_slice(&self.share_flags.to_le_bytes());
        b.extend_from_slice(&self.capabilities.to_le_bytes());
        b.extend_from_slice(&self.maximal_access.to_le_bytes());
        b
    }
}
