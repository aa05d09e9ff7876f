//! TREE_CONNECT ([MS-SMB2] 2.2.9, 2.2.10): a client attaches to a share;
//! for pipes that is always `\\SERVER\IPC$`.

use crate::header::{Command, Header, HEADER_LEN};
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
        let h = Header::new_checked(msg)?;
        if h.command() != Command::TREE_CONNECT {
            return Err(DecodeError::Malformed("SMB2 command"));
        }
        let b = h.body();
        if b.len() < 16 || le::u16(b, 0) != 16 {
            return Err(DecodeError::Truncated("TREE_CONNECT response"));
        }
        Ok(TreeConnectResponse {
            share_type: b[2],
            share_flags: le::u32(b, 4),
            capabilities: le::u32(b, 8),
            maximal_access: le::u32(b, 12),
        })
    }
}
