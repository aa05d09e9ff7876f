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
                                              // OutputOffset: where the input starts, as Samba's clients send it
                                              // (there is no output in a request).
    b.extend_from_slice(&((HEADER_LEN + 56) as u32).to_le_bytes());
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

/// FSCTL_PIPE_WAIT's input (MS-FSCC 2.3.49): wait for an instance of `name`
/// (relative to IPC$), up to `timeout` in 100 ns units or the server's
/// default.
pub fn pipe_wait_input(name: &str, timeout: Option<i64>) -> Vec<u8> {
    let n: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut b = Vec::with_capacity(14 + n.len());
    b.extend_from_slice(&timeout.unwrap_or(0).to_le_bytes());
    b.extend_from_slice(&(n.len() as u32).to_le_bytes());
    b.push(u8::from(timeout.is_some()));
    b.push(0);
    b.extend_from_slice(&n);
    b
}

/// FSCTL_PIPE_PEEK's output (MS-FSCC 2.3.47), borrowing the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeekOutput<'a> {
    pub state: u32,
    /// Bytes readable in all.
    pub available: u32,
    pub messages: u32,
    /// Length of the next message (0 on byte pipes).
    pub message_length: u32,
    pub data: &'a [u8],
}

impl<'a> PeekOutput<'a> {
    /// Parses the IOCTL output of a PEEK.
    ///
    /// # Errors
    /// Shorter than the fixed 16 bytes.
    pub fn parse(out: &'a [u8]) -> Result<PeekOutput<'a>, DecodeError> {
        if out.len() < 16 {
            return Err(DecodeError::Truncated("FSCTL_PIPE_PEEK output"));
        }
        Ok(PeekOutput {
            state: le::u32(out, 0),
            available: le::u32(out, 4),
            messages: le::u32(out, 8),
            message_length: le::u32(out, 12),
            data: &out[16..],
        })
    }
}
