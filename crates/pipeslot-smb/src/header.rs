//! The SMB2 packet header ([MS-SMB2] 2.2.1): 64 bytes before every command.
//!
//! [`Header`] is a zero-copy view, checked once by [`Header::new_checked`];
//! [`HeaderRepr`] is the owned form that parses from and emits into it.

use crate::le;
use crate::status::NtStatus;
use crate::DecodeError;

/// Length of the header (its StructureSize).
pub const HEADER_LEN: usize = 64;
/// The ProtocolId of SMB2 and later: `0xFE 'S' 'M' 'B'`.
pub const PROTOCOL_ID: [u8; 4] = [0xFE, b'S', b'M', b'B'];
/// The ProtocolId of an SMB 3.x transform (encrypted) header.
pub const TRANSFORM_ID: [u8; 4] = [0xFD, b'S', b'M', b'B'];
/// The ProtocolId of SMB1 (a multi-protocol negotiate starts so).
pub const SMB1_ID: [u8; 4] = [0xFF, b'S', b'M', b'B'];

/// An SMB2 command code. Unknown values are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Command(pub u16);

impl Command {
    pub const NEGOTIATE: Command = Command(0x0000);
    pub const SESSION_SETUP: Command = Command(0x0001);
    pub const LOGOFF: Command = Command(0x0002);
    pub const TREE_CONNECT: Command = Command(0x0003);
    pub const TREE_DISCONNECT: Command = Command(0x0004);
    pub const CREATE: Command = Command(0x0005);
    pub const CLOSE: Command = Command(0x0006);
    pub const FLUSH: Command = Command(0x0007);
    pub const READ: Command = Command(0x0008);
    pub const WRITE: Command = Command(0x0009);
    pub const LOCK: Command = Command(0x000A);
    pub const IOCTL: Command = Command(0x000B);
    pub const CANCEL: Command = Command(0x000C);
    pub const ECHO: Command = Command(0x000D);
    pub const QUERY_DIRECTORY: Command = Command(0x000E);
    pub const CHANGE_NOTIFY: Command = Command(0x000F);
    pub const QUERY_INFO: Command = Command(0x0010);
    pub const SET_INFO: Command = Command(0x0011);
    pub const OPLOCK_BREAK: Command = Command(0x0012);
}

/// Header flags (SMB2_FLAGS_*).
pub mod flags {
    /// A response (server to client).
    pub const SERVER_TO_REDIR: u32 = 0x0000_0001;
    /// An asynchronous header: AsyncId instead of TreeId and ProcessId.
    pub const ASYNC_COMMAND: u32 = 0x0000_0002;
    /// Part of a compound chain, related to the previous command.
    pub const RELATED_OPERATIONS: u32 = 0x0000_0004;
    /// The message is signed.
    pub const SIGNED: u32 = 0x0000_0008;
    /// A DFS operation.
    pub const DFS_OPERATIONS: u32 = 0x1000_0000;
    /// A replayed operation (SMB 3.x).
    pub const REPLAY_OPERATION: u32 = 0x2000_0000;
}

mod field {
    use std::ops::Range;
    pub const PROTOCOL_ID: Range<usize> = 0..4;
    pub const STRUCTURE_SIZE: usize = 4;
    pub const CREDIT_CHARGE: usize = 6;
    pub const STATUS: usize = 8;
    pub const COMMAND: usize = 12;
    pub const CREDITS: usize = 14;
    pub const FLAGS: usize = 16;
    pub const NEXT_COMMAND: usize = 20;
    pub const MESSAGE_ID: usize = 24;
    /// Sync: ProcessId (4, reserved) then TreeId (4). Async: AsyncId (8).
    pub const PROCESS_ID: usize = 32;
    pub const TREE_ID: usize = 36;
    pub const ASYNC_ID: usize = 32;
    pub const SESSION_ID: usize = 40;
    pub const SIGNATURE: Range<usize> = 48..64;
}

/// A view of the header at the start of `buf`.
#[derive(Debug, Clone, Copy)]
pub struct Header<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Checks the length, ProtocolId and StructureSize; accessors then never panic.
    ///
    /// # Errors
    /// `Truncated` under 64 bytes; `Malformed` for another protocol id or size
    /// (`Unsupported` for an encrypted or SMB1 message: the caller decides).
    pub fn new_checked(buf: T) -> Result<Header<T>, DecodeError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(DecodeError::Truncated("SMB2 header"));
        }
        match b[field::PROTOCOL_ID] {
            [0xFE, b'S', b'M', b'B'] => {}
            [0xFD, b'S', b'M', b'B'] => return Err(DecodeError::Unsupported("SMB3 transform header here")),
            [0xFF, b'S', b'M', b'B'] => return Err(DecodeError::Unsupported("SMB1 message")),
            _ => return Err(DecodeError::Malformed("SMB2 protocol id")),
        }
        if le::u16(b, field::STRUCTURE_SIZE) != HEADER_LEN as u16 {
            return Err(DecodeError::Malformed("SMB2 header structure size"));
        }
        Ok(Header { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    pub fn credit_charge(&self) -> u16 {
        le::u16(self.b(), field::CREDIT_CHARGE)
    }
    /// Status (responses), or ChannelSequence and Reserved (requests, 3.x).
    pub fn status(&self) -> NtStatus {
        NtStatus(le::u32(self.b(), field::STATUS))
    }
    pub fn command(&self) -> Command {
        Command(le::u16(self.b(), field::COMMAND))
    }
    /// CreditRequest (requests) or CreditResponse (responses).
    pub fn credits(&self) -> u16 {
        le::u16(self.b(), field::CREDITS)
    }
    pub fn flags(&self) -> u32 {
        le::u32(self.b(), field::FLAGS)
    }
    pub fn is_response(&self) -> bool {
        self.flags() & flags::SERVER_TO_REDIR != 0
    }
    pub fn is_async(&self) -> bool {
        self.flags() & flags::ASYNC_COMMAND != 0
    }
    /// Offset of the next command of a compound chain from this header (0: the last).
    pub fn next_command(&self) -> u32 {
        le::u32(self.b(), field::NEXT_COMMAND)
    }
    pub fn message_id(&self) -> u64 {
        le::u64(self.b(), field::MESSAGE_ID)
    }
    /// AsyncId of an async header.
    pub fn async_id(&self) -> Option<u64> {
        self.is_async().then(|| le::u64(self.b(), field::ASYNC_ID))
    }
    /// TreeId of a sync header.
    pub fn tree_id(&self) -> Option<u32> {
        (!self.is_async()).then(|| le::u32(self.b(), field::TREE_ID))
    }
    pub fn session_id(&self) -> u64 {
        le::u64(self.b(), field::SESSION_ID)
    }
    pub fn signature(&self) -> [u8; 16] {
        let mut s = [0u8; 16];
        s.copy_from_slice(&self.b()[field::SIGNATURE]);
        s
    }
    /// What follows the header: the command's body (and, in a compound, the rest).
    pub fn body(&self) -> &[u8] {
        &self.b()[HEADER_LEN..]
    }
}

/// Which of the two header shapes: sync (TreeId) or async (AsyncId).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// ProcessId (reserved, 0xFEFF on Windows requests) and TreeId.
    Sync { process_id: u32, tree_id: u32 },
    /// AsyncId of a pending operation.
    Async(u64),
}

/// The header, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRepr {
    pub credit_charge: u16,
    pub status: NtStatus,
    pub command: Command,
    pub credits: u16,
    /// Flags other than ASYNC_COMMAND, which `target` decides.
    pub flags: u32,
    pub next_command: u32,
    pub message_id: u64,
    pub target: Target,
    pub session_id: u64,
    pub signature: [u8; 16],
}

impl HeaderRepr {
    /// A request header (status 0, unsigned) for `command`.
    pub fn request(command: Command, message_id: u64, credits: u16) -> HeaderRepr {
        HeaderRepr {
            credit_charge: 0,
            status: NtStatus::STATUS_SUCCESS,
            command,
            credits,
            flags: 0,
            next_command: 0,
            message_id,
            target: Target::Sync {
                process_id: 0,
                tree_id: 0,
            },
            session_id: 0,
            signature: [0; 16],
        }
    }

    /// Reads a checked header.
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> HeaderRepr {
        let b = h.b();
        let target = match h.async_id() {
            Some(id) => Target::Async(id),
            None => Target::Sync {
                process_id: le::u32(b, field::PROCESS_ID),
                tree_id: le::u32(b, field::TREE_ID),
            },
        };
        HeaderRepr {
            credit_charge: h.credit_charge(),
            status: h.status(),
            command: h.command(),
            credits: h.credits(),
            flags: h.flags() & !flags::ASYNC_COMMAND,
            next_command: h.next_command(),
            message_id: h.message_id(),
            target,
            session_id: h.session_id(),
            signature: h.signature(),
        }
    }

    /// Writes the 64 bytes.
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        out.fill(0);
        out[field::PROTOCOL_ID].copy_from_slice(&PROTOCOL_ID);
        out[field::STRUCTURE_SIZE..][..2].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        out[field::CREDIT_CHARGE..][..2].copy_from_slice(&self.credit_charge.to_le_bytes());
        out[field::STATUS..][..4].copy_from_slice(&self.status.0.to_le_bytes());
        out[field::COMMAND..][..2].copy_from_slice(&self.command.0.to_le_bytes());
        out[field::CREDITS..][..2].copy_from_slice(&self.credits.to_le_bytes());
        let mut fl = self.flags & !flags::ASYNC_COMMAND;
        match self.target {
            Target::Sync { process_id, tree_id } => {
                out[field::PROCESS_ID..][..4].copy_from_slice(&process_id.to_le_bytes());
                out[field::TREE_ID..][..4].copy_from_slice(&tree_id.to_le_bytes());
            }
            Target::Async(id) => {
                fl |= flags::ASYNC_COMMAND;
                out[field::ASYNC_ID..][..8].copy_from_slice(&id.to_le_bytes());
            }
        }
        out[field::FLAGS..][..4].copy_from_slice(&fl.to_le_bytes());
        out[field::NEXT_COMMAND..][..4].copy_from_slice(&self.next_command.to_le_bytes());
        out[field::MESSAGE_ID..][..8].copy_from_slice(&self.message_id.to_le_bytes());
        out[field::SESSION_ID..][..8].copy_from_slice(&self.session_id.to_le_bytes());
        out[field::SIGNATURE].copy_from_slice(&self.signature);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header of Samba 4.17's SESSION_SETUP response asking for more
    /// processing (captured on loopback; see tests/vectors/README.md).
    const MORE_PROCESSING: [u8; 64] = [
        0xfe, 0x53, 0x4d, 0x42, 0x40, 0x00, 0x01, 0x00, 0x16, 0x00, 0x00, 0xc0, 0x01, 0x00, 0x01, 0x00, //
        0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd7, 0x71, 0xad, 0x57, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn a_captured_header_four_ways() {
        // view
        let h = Header::new_checked(&MORE_PROCESSING[..]).unwrap();
        assert_eq!(h.command(), Command::SESSION_SETUP);
        assert_eq!(h.status(), NtStatus::STATUS_MORE_PROCESSING_REQUIRED);
        assert!(h.is_response() && !h.is_async());
        assert_eq!((h.message_id(), h.credits(), h.credit_charge()), (1, 1, 1));
        assert_eq!(h.tree_id(), Some(0));
        assert_eq!(h.session_id(), 0x57ad_71d7);
        assert_eq!(h.flags(), flags::SERVER_TO_REDIR | 0x10, "a response, priority 1");
        // parse → emit gives the same bytes
        let r = HeaderRepr::parse(&h);
        assert_eq!(
            r.target,
            Target::Sync {
                process_id: 0,
                tree_id: 0
            }
        );
        let mut out = [0u8; 64];
        r.emit(&mut out);
        assert_eq!(out, MORE_PROCESSING);
        // a built async header reads back the same
        let a = HeaderRepr {
            target: Target::Async(0x0102_0304_0506_0708),
            flags: flags::SERVER_TO_REDIR,
            ..r
        };
        a.emit(&mut out);
        let back = Header::new_checked(&out[..]).unwrap();
        assert_eq!(back.async_id(), Some(0x0102_0304_0506_0708));
        assert_eq!(back.tree_id(), None);
        assert_eq!(HeaderRepr::parse(&back), a);
    }

    #[test]
    fn bad_headers_are_refused_not_read() {
        assert!(matches!(
            Header::new_checked(&MORE_PROCESSING[..63]),
            Err(DecodeError::Truncated(_))
        ));
        let mut smb1 = MORE_PROCESSING;
        smb1[0] = 0xff;
        assert!(matches!(
            Header::new_checked(&smb1[..]),
            Err(DecodeError::Unsupported(_))
        ));
        let mut other = MORE_PROCESSING;
        other[1] = b'X';
        assert!(matches!(
            Header::new_checked(&other[..]),
            Err(DecodeError::Malformed(_))
        ));
        let mut size = MORE_PROCESSING;
        size[4] = 65;
        assert!(Header::new_checked(&size[..]).is_err());
    }
}
