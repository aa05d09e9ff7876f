//! IOCTL ([MS-SMB2] 2.2.31, 2.2.32) with the pipe FSCTLs: TRANSCEIVE
//! (TransactNamedPipe), PEEK and WAIT.

use crate::create::FileId;
use crate::header::{Command, HEADER_LEN};
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
    let b = crate::body_of(msg, Command::IOCTL, 49, 48, "IOCTL response")?;
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

/// FSCTL_PIPE_WAIT's input, the server's view: the pipe's name and the
/// timeout when one was given.
///
/// # Errors
/// Shorter than its fields say, or a name that is not UTF-16.
pub fn parse_pipe_wait_input(b: &[u8]) -> Result<(String, Option<i64>), DecodeError> {
    if b.len() < 14 {
        return Err(DecodeError::Truncated("FSCTL_PIPE_WAIT input"));
    }
    let timeout = i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    let len = le::u32(b, 8) as usize;
    let name = b
        .get(14..14usize.saturating_add(len))
        .ok_or(DecodeError::Truncated("FSCTL_PIPE_WAIT name"))?;
    Ok((
        crate::utf16_string(name, "FSCTL_PIPE_WAIT name")?,
        (b[12] != 0).then_some(timeout),
    ))
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

/// An IOCTL request, the server's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoctlRequest<'a> {
    pub code: u32,
    pub file: FileId,
    pub input: &'a [u8],
    pub max_output: u32,
    pub is_fsctl: bool,
}

impl<'a> IoctlRequest<'a> {
    /// Parses a whole message.
    ///
    /// # Errors
    /// Not an IOCTL request, or an input outside it.
    pub fn parse(msg: &'a [u8]) -> Result<IoctlRequest<'a>, DecodeError> {
        let b = crate::body_of(msg, Command::IOCTL, 57, 56, "IOCTL request")?;
        let (off, len) = (le::u32(b, 24) as usize, le::u32(b, 28) as usize);
        let input = if len == 0 {
            &[][..]
        } else {
            msg.get(off..off.saturating_add(len))
                .ok_or(DecodeError::Truncated("IOCTL input"))?
        };
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[8..24]);
        Ok(IoctlRequest {
            code: le::u32(b, 4),
            file: FileId(id),
            input,
            max_output: le::u32(b, 44),
            is_fsctl: le::u32(b, 48) & IS_FSCTL != 0,
        })
    }
}

/// The IOCTL response body for `code` on `file` carrying `output`.
pub fn ioctl_response_body(code: u32, file: FileId, output: &[u8]) -> Vec<u8> {
    let mut b = ioctl_response_fixed(code, file, output.len()).to_vec();
    b.extend_from_slice(output);
    b
}

/// The fixed 48 bytes of an IOCTL response with `len` bytes of output
/// (which follow them).
pub fn ioctl_response_fixed(code: u32, file: FileId, len: usize) -> [u8; 48] {
    let mut b = [0u8; 48];
    b[..2].copy_from_slice(&49u16.to_le_bytes());
    b[4..8].copy_from_slice(&code.to_le_bytes());
    b[8..24].copy_from_slice(&file.0);
    let at = (HEADER_LEN + 48) as u32;
    b[24..28].copy_from_slice(&at.to_le_bytes()); // InputOffset; InputCount 0
    b[32..36].copy_from_slice(&at.to_le_bytes()); // OutputOffset
    b[36..40].copy_from_slice(&(len as u32).to_le_bytes());
    b
}
