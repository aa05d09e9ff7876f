//! QUERY_INFO ([MS-SMB2] 2.2.37, 2.2.38) for FilePipeLocalInformation
//! (MS-FSCC 2.4.30): a pipe's type, instances and quotas; and FLUSH
//! (2.2.17), which is FlushFileBuffers.

use crate::create::FileId;
use crate::header::Command;
use crate::le;
use crate::DecodeError;

/// SMB2_0_INFO_FILE.
const INFO_FILE: u8 = 0x01;
/// FilePipeLocalInformation.
pub const FILE_PIPE_LOCAL_INFORMATION: u8 = 24;

/// The QUERY_INFO request body for FilePipeLocalInformation of `file`.
pub fn query_pipe_info_body(file: FileId) -> Vec<u8> {
    let mut b = Vec::with_capacity(41);
    b.extend_from_slice(&41u16.to_le_bytes());
    b.push(INFO_FILE);
    b.push(FILE_PIPE_LOCAL_INFORMATION);
    b.extend_from_slice(&(PipeLocalInfo::LEN as u32).to_le_bytes());
    b.extend_from_slice(&[0; 4]); // InputBufferOffset, Reserved
    b.extend_from_slice(&0u32.to_le_bytes()); // InputBufferLength
    b.extend_from_slice(&0u32.to_le_bytes()); // AdditionalInformation
    b.extend_from_slice(&0u32.to_le_bytes()); // Flags
    b.extend_from_slice(&file.0);
    b.push(0);
    b
}

/// FILE_PIPE_LOCAL_INFORMATION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeLocalInfo {
    /// 0 byte stream, 1 message.
    pub pipe_type: u32,
    pub configuration: u32,
    pub max_instances: u32,
    pub current_instances: u32,
    pub inbound_quota: u32,
    pub read_data_available: u32,
    pub outbound_quota: u32,
    pub write_quota_available: u32,
    pub state: u32,
    /// 0 client end, 1 server end.
    pub end: u32,
}

impl PipeLocalInfo {
    const LEN: usize = 40;

    /// Parses a QUERY_INFO response carrying it.
    ///
    /// # Errors
    /// Not a QUERY_INFO response, or an output too short or outside the message.
    pub fn parse(msg: &[u8]) -> Result<PipeLocalInfo, DecodeError> {
        let b = crate::body_of(msg, Command::QUERY_INFO, 9, 8, "QUERY_INFO response")?;
        let (off, len) = (usize::from(le::u16(b, 2)), le::u32(b, 4) as usize);
        if len < Self::LEN {
            return Err(DecodeError::Truncated("FilePipeLocalInformation"));
        }
        let o = msg
            .get(off..off.saturating_add(Self::LEN))
            .ok_or(DecodeError::Truncated("FilePipeLocalInformation"))?;
        let f = |i: usize| le::u32(o, 4 * i);
        Ok(PipeLocalInfo {
            pipe_type: f(0),
            configuration: f(1),
            max_instances: f(2),
            current_instances: f(3),
            inbound_quota: f(4),
            read_data_available: f(5),
            outbound_quota: f(6),
            write_quota_available: f(7),
            state: f(8),
            end: f(9),
        })
    }
}

/// The FLUSH request body for `file`.
pub fn flush_body(file: FileId) -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&[0; 6]);
    b.extend_from_slice(&file.0);
    b
}
