//! CREATE and CLOSE ([MS-SMB2] 2.2.13–2.2.16): opening a pipe on IPC$ is a
//! CREATE of its name (`srvsvc`, not `\pipe\srvsvc`), which gives a FileId.

use crate::header::{Command, HEADER_LEN};
use crate::le;
use crate::DecodeError;

/// An open's handle: persistent and volatile halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId(pub [u8; 16]);

/// DesiredAccess bits a pipe client asks for.
pub mod access {
    pub const FILE_READ_DATA: u32 = 0x0000_0001;
    pub const FILE_WRITE_DATA: u32 = 0x0000_0002;
    pub const FILE_APPEND_DATA: u32 = 0x0000_0004;
    pub const FILE_READ_EA: u32 = 0x0000_0008;
    pub const FILE_WRITE_EA: u32 = 0x0000_0010;
    pub const FILE_READ_ATTRIBUTES: u32 = 0x0000_0080;
    pub const FILE_WRITE_ATTRIBUTES: u32 = 0x0000_0100;
    pub const READ_CONTROL: u32 = 0x0002_0000;
    pub const SYNCHRONIZE: u32 = 0x0010_0000;
}

/// ImpersonationLevel: what the server may do as the client.
pub const IMPERSONATION: u32 = 0x0000_0002;
/// ShareAccess: read and write.
const SHARE_READ_WRITE: u32 = 0x0000_0003;
/// CreateDisposition FILE_OPEN: a pipe is never created by a client.
const FILE_OPEN: u32 = 0x0000_0001;
/// CreateOptions FILE_NON_DIRECTORY_FILE.
const NON_DIRECTORY: u32 = 0x0000_0040;

/// The CREATE request body opening pipe `name` with `desired_access`.
pub fn create_pipe_body(name: &str, desired_access: u32) -> Vec<u8> {
    let n: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut b = Vec::with_capacity(56 + n.len().max(1));
    b.extend_from_slice(&57u16.to_le_bytes());
    b.push(0); // SecurityFlags
    b.push(0); // RequestedOplockLevel: none
    b.extend_from_slice(&IMPERSONATION.to_le_bytes());
    b.extend_from_slice(&[0; 16]); // SmbCreateFlags, Reserved
    b.extend_from_slice(&desired_access.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // FileAttributes
    b.extend_from_slice(&SHARE_READ_WRITE.to_le_bytes());
    b.extend_from_slice(&FILE_OPEN.to_le_bytes());
    b.extend_from_slice(&NON_DIRECTORY.to_le_bytes());
    b.extend_from_slice(&((HEADER_LEN + 56) as u16).to_le_bytes());
    b.extend_from_slice(&(n.len() as u16).to_le_bytes());
    b.extend_from_slice(&[0; 8]); // no create contexts
    b.extend_from_slice(&n);
    if n.is_empty() {
        b.push(0); // the buffer is at least one byte
    }
    b
}

/// The FileId of a CREATE response.
///
/// # Errors
/// Not a CREATE response, or too short.
pub fn parse_create_response(msg: &[u8]) -> Result<FileId, DecodeError> {
    let b = crate::body_of(msg, Command::CREATE, 89, 88, "CREATE response")?;
    let mut id = [0u8; 16];
    id.copy_from_slice(&b[64..80]);
    Ok(FileId(id))
}

/// The CLOSE request body for `file`.
pub fn close_body(file: FileId) -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&[0; 6]); // Flags, Reserved
    b.extend_from_slice(&file.0);
    b
}

/// A CREATE request, the server's view: the name and the access asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub name: String,
    pub desired_access: u32,
}

impl CreateRequest {
    /// Parses a whole message.
    ///
    /// # Errors
    /// Not a CREATE request, or a name outside it or not UTF-16.
    pub fn parse(msg: &[u8]) -> Result<CreateRequest, DecodeError> {
        let b = crate::body_of(msg, Command::CREATE, 57, 56, "CREATE request")?;
        let (off, len) = (usize::from(le::u16(b, 44)), usize::from(le::u16(b, 46)));
        let raw = if len == 0 {
            &[][..]
        } else {
            msg.get(off..off + len).ok_or(DecodeError::Truncated("CREATE name"))?
        };
        Ok(CreateRequest {
            name: crate::utf16_string(raw, "CREATE name")?,
            desired_access: le::u32(b, 24),
        })
    }
}

/// The CREATE response body for an opened pipe `file`.
pub fn create_response_body(file: FileId) -> Vec<u8> {
    let mut b = vec![0u8; 88];
    b[..2].copy_from_slice(&89u16.to_le_bytes());
    b[4..8].copy_from_slice(&FILE_OPEN.to_le_bytes()); // CreateAction: FILE_OPENED
    b[56..60].copy_from_slice(&0x80u32.to_le_bytes()); // FileAttributes: NORMAL
    b[64..80].copy_from_slice(&file.0);
    b.push(0);
    b
}

/// The CLOSE request's FileId.
///
/// # Errors
/// Not a CLOSE request, or too short.
pub fn parse_close_request(msg: &[u8]) -> Result<FileId, DecodeError> {
    let b = crate::body_of(msg, Command::CLOSE, 24, 24, "CLOSE request")?;
    let mut id = [0u8; 16];
    id.copy_from_slice(&b[8..24]);
    Ok(FileId(id))
}

/// The CLOSE response body (no attributes asked for).
pub fn close_response_body() -> Vec<u8> {
    let mut b = vec![0u8; 60];
    b[..2].copy_from_slice(&60u16.to_le_bytes());
    b
}
