//! READ and WRITE ([MS-SMB2] 2.2.19–2.2.22) on an open pipe: a WRITE is one
//! message on a message pipe; a READ returns one message (or its first part,
//! with STATUS_BUFFER_OVERFLOW when the buffer is short).

use crate::create::FileId;
use crate::header::{Command, HEADER_LEN};
use crate::le;
use crate::DecodeError;

/// The READ request body: up to `length` bytes from `file`.
pub fn read_body(file: FileId, length: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(49);
    b.extend_from_slice(&49u16.to_le_bytes());
    b.push(0x50); // Padding: where the server puts the data (after its header)
    b.push(0); // Flags
    b.extend_from_slice(&length.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // Offset: none on pipes
    b.extend_from_slice(&file.0);
    b.extend_from_slice(&0u32.to_le_bytes()); // MinimumCount
    b.extend_from_slice(&0u32.to_le_bytes()); // Channel
    b.extend_from_slice(&0u32.to_le_bytes()); // RemainingBytes
    b.extend_from_slice(&[0; 4]); // ReadChannelInfo
    b.push(0); // the buffer is at least one byte
    b
}

/// The data of a READ response and how much of the message is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadResponse<'a> {
    pub data: &'a [u8],
    pub remaining: u32,
}

impl<'a> ReadResponse<'a> {
    /// Parses a whole message (successful or STATUS_BUFFER_OVERFLOW).
    ///
    /// # Errors
    /// Not a READ response, or data outside the message.
    pub fn parse(msg: &'a [u8]) -> Result<ReadResponse<'a>, DecodeError> {
        let b = crate::body_of(msg, Command::READ, 17, 16, "READ response")?;
        let (off, len) = (usize::from(b[2]), le::u32(b, 4) as usize);
        let data = if len == 0 {
            &[][..]
        } else {
            msg.get(off..off.saturating_add(len))
                .ok_or(DecodeError::Truncated("READ data"))?
        };
        Ok(ReadResponse {
            data,
            remaining: le::u32(b, 8),
        })
    }
}

/// The WRITE request body: `data` as one write (one message on a message pipe).
pub fn write_body(file: FileId, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(48 + data.len());
    b.extend_from_slice(&49u16.to_le_bytes());
    b.extend_from_slice(&((HEADER_LEN + 48) as u16).to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // Offset
    b.extend_from_slice(&file.0);
    b.extend_from_slice(&0u32.to_le_bytes()); // Channel
    b.extend_from_slice(&0u32.to_le_bytes()); // RemainingBytes
    b.extend_from_slice(&[0; 4]); // WriteChannelInfo
    b.extend_from_slice(&0u32.to_le_bytes()); // Flags
    b.extend_from_slice(data);
    if data.is_empty() {
        b.push(0);
    }
    b
}

/// How many bytes a WRITE response says were written.
///
/// # Errors
/// Not a WRITE response, or too short.
pub fn parse_write_response(msg: &[u8]) -> Result<u32, DecodeError> {
    let b = crate::body_of(msg, Command::WRITE, 17, 16, "WRITE response")?;
    Ok(le::u32(b, 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::HeaderRepr;

    #[test]
    fn bodies_have_their_structure_sizes_and_a_read_response_parses() {
        let f = FileId([7; 16]);
        let r = read_body(f, 4280);
        assert_eq!((r.len(), &r[..2]), (49, &[49, 0][..]));
        let w = write_body(f, b"abc");
        assert_eq!(w.len(), 48 + 3);
        assert_eq!(u16::from_le_bytes([w[2], w[3]]), 112, "data right after the fixed part");
        // A response carrying "hello" at offset 80, 3 bytes left.
        let mut hdr = [0u8; HEADER_LEN];
        let mut h = HeaderRepr::request(Command::READ, 1, 1);
        h.flags = crate::header::flags::SERVER_TO_REDIR;
        h.emit(&mut hdr);
        let mut msg = hdr.to_vec();
        msg.extend_from_slice(&17u16.to_le_bytes());
        msg.push(80);
        msg.push(0);
        msg.extend_from_slice(&5u32.to_le_bytes());
        msg.extend_from_slice(&3u32.to_le_bytes());
        msg.extend_from_slice(&[0; 4]);
        msg.extend_from_slice(b"hello");
        let p = ReadResponse::parse(&msg).unwrap();
        assert_eq!((p.data, p.remaining), (&b"hello"[..], 3));
        for cut in 0..msg.len() {
            let _ = ReadResponse::parse(&msg[..cut]);
        }
        msg[66] = 200; // an offset past the end
        assert!(ReadResponse::parse(&msg).is_err());
    }
}

/// A READ request, the server's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRequest {
    pub file: FileId,
    pub length: u32,
}

impl ReadRequest {
    /// Parses a whole message.
    ///
    /// # Errors
    /// Not a READ request, or too short.
    pub fn parse(msg: &[u8]) -> Result<ReadRequest, DecodeError> {
        let b = crate::body_of(msg, Command::READ, 49, 48, "READ request")?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[16..32]);
        Ok(ReadRequest {
            file: FileId(id),
            length: le::u32(b, 4),
        })
    }
}

/// The READ response body carrying `data` (`remaining` more to come).
pub fn read_response_body(data: &[u8], remaining: u32) -> Vec<u8> {
    let mut b = read_response_fixed(data.len(), remaining).to_vec();
    b.extend_from_slice(data);
    if data.is_empty() {
        b.push(0);
    }
    b
}

/// The fixed 16 bytes of a READ response carrying `len` bytes (the data
/// follows them), for building an answer without copying the data twice.
pub fn read_response_fixed(len: usize, remaining: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..2].copy_from_slice(&17u16.to_le_bytes());
    b[2] = (HEADER_LEN + 16) as u8;
    b[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    b[8..12].copy_from_slice(&remaining.to_le_bytes());
    b
}

/// A WRITE request's FileId and data, the server's view.
///
/// # Errors
/// Not a WRITE request, or data outside it.
pub fn parse_write_request(msg: &[u8]) -> Result<(FileId, &[u8]), DecodeError> {
    let b = crate::body_of(msg, Command::WRITE, 49, 48, "WRITE request")?;
    let (off, len) = (usize::from(le::u16(b, 2)), le::u32(b, 4) as usize);
    let data = if len == 0 {
        &[][..]
    } else {
        msg.get(off..off.saturating_add(len))
            .ok_or(DecodeError::Truncated("WRITE data"))?
    };
    let mut id = [0u8; 16];
    id.copy_from_slice(&b[16..32]);
    Ok((FileId(id), data))
}

/// The WRITE response body: `count` bytes written.
pub fn write_response_body(count: u32) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    b[..2].copy_from_slice(&17u16.to_le_bytes());
    b[4..8].copy_from_slice(&count.to_le_bytes());
    b
}
