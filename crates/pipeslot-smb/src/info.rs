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

/// FilePipeInformation (MS-FSCC 2.4.29): a handle's read and completion modes.
pub const FILE_PIPE_INFORMATION: u8 = 23;
/// FileStandardInformation (MS-FSCC 2.4.41).
pub const FILE_STANDARD_INFORMATION: u8 = 5;

impl PipeLocalInfo {
    /// The 40 bytes of the structure.
    pub fn emit(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        let fields = [
            self.pipe_type,
            self.configuration,
            self.max_instances,
            self.current_instances,
            self.inbound_quota,
            self.read_data_available,
            self.outbound_quota,
            self.write_quota_available,
            self.state,
            self.end,
        ];
        for (i, f) in fields.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&f.to_le_bytes());
        }
        b
    }
}

/// A QUERY_INFO request, the server's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryInfoRequest {
    pub info_type: u8,
    pub class: u8,
    pub max_output: u32,
    pub file: FileId,
}

impl QueryInfoRequest {
    /// Parses a whole message.
    ///
    /// # Errors
    /// Not a QUERY_INFO request, or too short.
    pub fn parse(msg: &[u8]) -> Result<QueryInfoRequest, DecodeError> {
        let b = crate::body_of(msg, Command::QUERY_INFO, 41, 40, "QUERY_INFO request")?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[24..40]);
        Ok(QueryInfoRequest {
            info_type: b[2],
            class: b[3],
            max_output: le::u32(b, 4),
            file: FileId(id),
        })
    }

    /// Whether it asks for file information (SMB2_0_INFO_FILE), the only
    /// kind a pipe has.
    pub fn is_file_info(&self) -> bool {
        self.info_type == INFO_FILE
    }
}

/// The QUERY_INFO response body carrying `output`.
pub fn query_info_response_body(output: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + output.len());
    b.extend_from_slice(&9u16.to_le_bytes());
    b.extend_from_slice(&((crate::header::HEADER_LEN + 8) as u16).to_le_bytes());
    b.extend_from_slice(&(output.len() as u32).to_le_bytes());
    b.extend_from_slice(output);
    if output.is_empty() {
        b.push(0);
    }
    b
}

/// FilePipeInformation's two fields: read mode (0 byte, 1 message) and
/// completion mode (0 queue, 1 complete at once).
pub fn pipe_information(message_read: bool, nonblocking: bool) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&u32::from(message_read).to_le_bytes());
    b[4..].copy_from_slice(&u32::from(nonblocking).to_le_bytes());
    b
}

/// FileStandardInformation of a pipe, as the Windows pipe file system fills
/// it: the quotas as the allocation, the bytes waiting as the end of file,
/// one link, not a directory.
pub fn pipe_standard_information(allocation: u64, available: u64, closing: bool) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[..8].copy_from_slice(&allocation.to_le_bytes());
    b[8..16].copy_from_slice(&available.to_le_bytes());
    b[16..20].copy_from_slice(&1u32.to_le_bytes());
    b[20] = u8::from(closing);
    b
}

/// A SET_INFO request, the server's view, borrowing its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetInfoRequest<'a> {
    pub info_type: u8,
    pub class: u8,
    pub file: FileId,
    pub buffer: &'a [u8],
}

impl<'a> SetInfoRequest<'a> {
    /// Parses a whole message.
    ///
    /// # Errors
    /// Not a SET_INFO request, or a buffer outside it.
    pub fn parse(msg: &'a [u8]) -> Result<SetInfoRequest<'a>, DecodeError> {
        let b = crate::body_of(msg, Command::SET_INFO, 33, 32, "SET_INFO request")?;
        let (len, off) = (le::u32(b, 4) as usize, usize::from(le::u16(b, 8)));
        let buffer = if len == 0 {
            &[][..]
        } else {
            msg.get(off..off.saturating_add(len))
                .ok_or(DecodeError::Truncated("SET_INFO buffer"))?
        };
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[16..32]);
        Ok(SetInfoRequest {
            info_type: b[2],
            class: b[3],
            file: FileId(id),
            buffer,
        })
    }
}

/// The SET_INFO request body (the client's side), e.g. FilePipeInformation
/// to set a read mode.
pub fn set_info_body(file: FileId, class: u8, buffer: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(32 + buffer.len());
    b.extend_from_slice(&33u16.to_le_bytes());
    b.push(INFO_FILE);
    b.push(class);
    b.extend_from_slice(&(buffer.len() as u32).to_le_bytes());
    b.extend_from_slice(&((crate::header::HEADER_LEN + 32) as u16).to_le_bytes());
    b.extend_from_slice(&[0; 2]);
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&file.0);
    b.extend_from_slice(buffer);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{HeaderRepr, HEADER_LEN};

    fn request(cmd: Command, body: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; HEADER_LEN];
        HeaderRepr::request(cmd, 3, 1).emit((&mut m[..]).try_into().unwrap());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn query_and_set_info_requests_read_back_what_the_client_side_wrote() {
        let file = FileId([9; 16]);
        let q = QueryInfoRequest::parse(&request(Command::QUERY_INFO, &query_pipe_info_body(file))).unwrap();
        assert_eq!(
            q,
            QueryInfoRequest {
                info_type: INFO_FILE,
                class: FILE_PIPE_LOCAL_INFORMATION,
                max_output: 40,
                file
            }
        );
        let m = request(
            Command::SET_INFO,
            &set_info_body(file, FILE_PIPE_INFORMATION, &pipe_information(true, false)),
        );
        let s = SetInfoRequest::parse(&m).unwrap();
        assert_eq!(
            (s.class, s.file, s.buffer),
            (FILE_PIPE_INFORMATION, file, &[1, 0, 0, 0, 0, 0, 0, 0][..])
        );
        let short = request(Command::SET_INFO, &set_info_body(file, 23, &[1; 8])[..20]);
        assert!(SetInfoRequest::parse(&short).is_err());
    }

    #[test]
    fn pipe_local_information_round_trips_through_a_response() {
        let info = PipeLocalInfo {
            pipe_type: 1,
            configuration: 2,
            max_instances: 255,
            current_instances: 3,
            inbound_quota: 4096,
            read_data_available: 7,
            outbound_quota: 8192,
            write_quota_available: 8192,
            state: 3,
            end: 0,
        };
        let m = request(Command::QUERY_INFO, &query_info_response_body(&info.emit()));
        assert_eq!(PipeLocalInfo::parse(&m).unwrap(), info);
    }
}
