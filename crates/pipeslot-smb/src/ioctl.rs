//! IOCTL ([MS-SMB2] 2.2.31, 2.2.32) with the pipe FSCTLs: TRANSCEIVE
//! (TransactNamedPipe), PEEK and WAIT.

use crate::create::FileId;
use crate::header::{Command, Header, HEADER_LEN};
use crate::le;
use crate::DecodeError;

/// FSCTL codes pipes use.
pub mod fsctl {
    pub const PIPE_PEEK: u32 = 0x0011_400C;
    pub const PIPE_WAIT: u32 = 0x0011_0018;
    pub const PIPE_TRANSCEIVE: u32 = 0x0011_C017;
    pub const VALIDATE_NEGOTIATE_INFO: u32 = 0x0014_0204;
}

/// SMB2_0_IOCTL_IS_FSCTL.
const IS_FSCTL: u32 = 0x0000_0001;

/// An FSCTL request body: `input` sent, up to `max_output` bytes wanted back.
pub fn fsctl_body(code: u32, file: FileId, input: &[u8], max_output: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(56 + input.len());
    b.extend_from_slice(&57u16.to_le_bytes());
    b.extend_from_slice(&[0; 2]);
    b.extend_from_slice(&code.to_le_bytes());
    b.extend_from_slice(&file.0);
    let input_offset = if input.is_empty() { 0 } else { (HEADER_LEN + 56) as u32 };
    b.extend_from_slice(&input_offset.to_le_bytes());
    b.extend_from_slice(&(input.len() as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // MaxInputResponse
    b.extend_from_slice(&0u32.to_le_bytes()); // OutputOffset
    b.extend_from_slice(&0u32.to_le_bytes()); // OutputCount
    b.extend_from_slice(&max_output.to_le_bytes());
    b.extend_from_slice(&IS_FSCTL.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(input);
    b
}

/// The output of an IOCTL response (a TRANSCEIVE's reply message).
///
/// # Errors
/// Not an IOCTL response, or an output outside the message.
pub fn parse_ioctl_output(msg: &[u8]) -> Result<&[u8], DecodeError> {
    let h = Header::new_checked(msg)?;
    if h.command() != Command::IOCTL {
        return Err(DecodeError::Malformed("SMB2 command"));
    }
    let b = h.body();
    if b.len() < 48 || le::u16(b, 0) != 49 {
        return Err(DecodeError::Truncated("IOCTL response"));
    }
    let (off, len) = (le::u32(b, 32) as usize, le::u32(b, 36) as usize);
    if len == 0 {
        return Ok(&[]);
    }
    msg.get(off..off.saturating_add(len))
        .ok_or(DecodeError::Truncated("IOCTL output"))
}
