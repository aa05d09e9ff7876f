//! The local protocol between pipeslot processes on one machine.
//!
//! A client connects to a server process's Unix stream socket and sends a
//! [`Hello`]; the server answers with one [`Reply`] and, for an accepted open,
//! the same socket becomes the pipe's data path. Everything is little-endian.
//!
//! ```text
//! Hello (16 bytes + name + extensions)        Reply (40 bytes)
//!  0  magic "PSLT"                              0  magic "PSLT"
//!  4  version (1)                               4  version (1)
//!  5  request: 1 open, 2 wait, 3 census         5  status (ReplyStatus)
//!  6  flags u16: 1 read, 2 write, 4 remote,     6  pipe type: 0 byte, 1 message
//!     8 create (census before a new instance),
//!    16 shm (the client takes shared memory)
//!  8  client pid u32 (informational)            7  access: 1 inbound, 2 outbound, 3 duplex
//! 12  name length u16 (folded, UTF-8)           8  max instances (255 = unlimited)
//! 14  extensions length u16                     9  data path (0 socket, 1 shared memory)
//! 16  folded name, then extensions             10  flags u16: 1 reject remote clients
//!                                              12  in buffer u32    16  out buffer u32
//!                                              20  default timeout ms u32
//!                                              24  server pid u32
//!                                              28  instances u32 (in that process)
//!                                              32  listening u32 (in that process)
//!                                              36  reserved u32
//! ```
//!
//! Message-type pipes then carry frames: a `u32` length (bit 31 marks a
//! control frame: only [`DISCONNECT_FRAME`] today) and that many bytes. Byte-type pipes carry
//! raw bytes. The version byte and the data-path byte let a later peer offer
//! a faster path (shared memory) without breaking this one.

use crate::wire::DecodeError;

/// `PSLT`: the first four bytes of every hello and reply.
pub const MAGIC: [u8; 4] = *b"PSLT";
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Length of the fixed part of a [`Hello`].
pub const HELLO_LEN: usize = 16;
/// Length of a [`Reply`].
pub const REPLY_LEN: usize = 40;
/// Length of a message frame header.
pub const FRAME_HEADER_LEN: usize = 4;
/// The largest message a frame can carry (bit 31 of the length is reserved).
pub const MAX_MESSAGE_LEN: usize = 0x7fff_ffff;
/// The longest folded name a hello carries, in bytes (256 characters of up
/// to 4 bytes each).
pub const MAX_NAME_BYTES: usize = 1024;

mod field {
    use std::ops::Range;
    pub(super) const MAGIC: Range<usize> = 0..4;
    pub(super) const VERSION: usize = 4;
    pub(super) const KIND: usize = 5;
    // Hello
    pub(super) const FLAGS: Range<usize> = 6..8;
    pub(super) const PID: Range<usize> = 8..12;
    pub(super) const NAME_LEN: Range<usize> = 12..14;
    pub(super) const EXT_LEN: Range<usize> = 14..16;
    // Reply
    pub(super) const PIPE_TYPE: usize = 6;
    pub(super) const ACCESS: usize = 7;
    pub(super) const MAX_INSTANCES: usize = 8;
    pub(super) const DATA_PATH: usize = 9;
    pub(super) const REPLY_FLAGS: Range<usize> = 10..12;
    pub(super) const IN_BUFFER: Range<usize> = 12..16;
    pub(super) const OUT_BUFFER: Range<usize> = 16..20;
    pub(super) const TIMEOUT: Range<usize> = 20..24;
    pub(super) const SERVER_PID: Range<usize> = 24..28;
    pub(super) const INSTANCES: Range<usize> = 28..32;
    pub(super) const LISTENING: Range<usize> = 32..36;
}

fn u16_at(b: &[u8], r: std::ops::Range<usize>) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[r]);
    u16::from_le_bytes(a)
}

fn u32_at(b: &[u8], r: std::ops::Range<usize>) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[r]);
    u32::from_le_bytes(a)
}

/// What a hello asks for.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Request(pub u8);

impl Request {
    /// Open the pipe: hand this connection to a listening instance.
    pub const OPEN: Request = Request(1);
    /// Answer `AVAILABLE` as soon as an instance listens (WaitNamedPipe).
    pub const WAIT: Request = Request(2);
    /// Describe the pipe and count this process's instances.
    pub const CENSUS: Request = Request(3);
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Request::OPEN => f.write_str("OPEN"),
            Request::WAIT => f.write_str("WAIT"),
            Request::CENSUS => f.write_str("CENSUS"),
            Request(n) => write!(f, "Request({n:#04x})"),
        }
    }
}

/// Bits of a hello's flags.
pub mod hello_flags {
    /// The client wants to read (GENERIC_READ).
    pub const READ: u16 = 0x0001;
    /// The client wants to write (GENERIC_WRITE).
    pub const WRITE: u16 = 0x0002;
    /// The client is remote (set by the gateway on behalf of a network client).
    pub const REMOTE: u16 = 0x0004;
    /// CENSUS on behalf of a process creating another instance of the name
    /// (Win32's FILE_CREATE_PIPE_INSTANCE check: only the owner may).
    pub const CREATE: u16 = 0x0008;
    /// The client can take the shared-memory data path (OPEN only).
    pub const SHM: u16 = 0x0010;
}

/// Values of a reply's data-path byte.
pub mod data_path {
    /// The bytes go over this socket.
    pub const SOCKET: u8 = 0;
    /// The bytes go through shared memory: the reply carries (SCM_RIGHTS)
    /// a sealed memfd with both rings, the server's eventfd and the
    /// client's; the socket stays open to tell liveness.
    pub const SHM: u8 = 1;
}

/// The hello's extensions: type-length-value items (a type byte, a u16
/// little-endian length, UTF-8 text). The gateway says who the remote
/// client is; servers read them only when the REMOTE flag is believed
/// (from root or their own user), and skip types they do not know.
pub mod hello_ext {
    use super::DecodeError;

    /// `DOMAIN\user` (or `user`) as the remote client logged on.
    pub const REMOTE_USER: u8 = 1;
    /// The remote client's address and port.
    pub const REMOTE_ADDRESS: u8 = 2;
    /// The remote client's computer (workstation) name.
    pub const REMOTE_COMPUTER: u8 = 3;

    /// Encodes items; text longer than 1,024 bytes is cut (at a character).
    pub fn encode(items: &[(u8, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (t, v) in items {
            let mut end = v.len().min(1024);
            while !v.is_char_boundary(end) {
                end -= 1;
            }
            out.push(*t);
            out.extend_from_slice(&(end as u16).to_le_bytes());
            out.extend_from_slice(&v.as_bytes()[..end]);
        }
        out
    }

    /// Decodes items.
    ///
    /// # Errors
    /// An item that runs past the end, or text that is not UTF-8.
    pub fn decode(mut b: &[u8]) -> Result<Vec<(u8, String)>, DecodeError> {
        let mut out = Vec::new();
        while !b.is_empty() {
            if b.len() < 3 {
                return Err(DecodeError::Truncated("hello extension"));
            }
            let (t, len) = (b[0], usize::from(u16::from_le_bytes([b[1], b[2]])));
            let v = b.get(3..3 + len).ok_or(DecodeError::Truncated("hello extension"))?;
            let v = std::str::from_utf8(v).map_err(|_| DecodeError::Malformed("hello extension text"))?;
            out.push((t, v.to_owned()));
            b = &b[3 + len..];
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn items_round_trip_and_cut_input_is_refused() {
            let e = super::encode(&[
                (super::REMOTE_USER, r"WG\alice"),
                (9, "x"),
                (super::REMOTE_ADDRESS, "10.0.0.5:49152"),
            ]);
            let d = super::decode(&e).unwrap();
            assert_eq!(d[0], (super::REMOTE_USER, r"WG\alice".to_owned()));
            assert_eq!(d.len(), 3);
            for cut in 1..e.len() {
                let _ = super::decode(&e[..cut]);
            }
            assert!(super::decode(&e[..e.len() - 1]).is_err());
            let long = "é".repeat(600);
            let one = super::decode(&super::encode(&[(1, &long)])).unwrap();
            assert!(one[0].1.len() <= 1024 && long.starts_with(&one[0].1));
        }
    }
}

/// A borrowed view of a hello. After [`HelloPacket::new_checked`] no accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct HelloPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> HelloPacket<T> {
    /// Checks magic, version and that the name and extensions are present.
    ///
    /// # Errors
    /// [`DecodeError`] naming what is wrong.
    pub fn new_checked(buffer: T) -> Result<HelloPacket<T>, DecodeError> {
        let b = buffer.as_ref();
        if b.len() < HELLO_LEN {
            return Err(DecodeError::Truncated("local hello"));
        }
        if b[field::MAGIC] != MAGIC {
            return Err(DecodeError::Malformed("local hello magic"));
        }
        if b[field::VERSION] != VERSION {
            return Err(DecodeError::Unsupported("local protocol version"));
        }
        let p = HelloPacket { buffer };
        if p.name_len() > MAX_NAME_BYTES {
            return Err(DecodeError::Malformed("local hello name length"));
        }
        if p.buffer.as_ref().len() < p.total_len() {
            return Err(DecodeError::Truncated("local hello name"));
        }
        if std::str::from_utf8(p.name_bytes()).is_err() {
            return Err(DecodeError::Malformed("local hello name is not UTF-8"));
        }
        Ok(p)
    }

    /// The request.
    pub fn request(&self) -> Request {
        Request(self.buffer.as_ref()[field::KIND])
    }
    /// The flags ([`hello_flags`]).
    pub fn flags(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::FLAGS)
    }
    /// The pid the client says it has (the server trusts SO_PEERCRED instead).
    pub fn pid(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::PID)
    }
    /// Length of the folded name in bytes.
    pub fn name_len(&self) -> usize {
        usize::from(u16_at(self.buffer.as_ref(), field::NAME_LEN))
    }
    /// Length of the extensions in bytes.
    pub fn ext_len(&self) -> usize {
        usize::from(u16_at(self.buffer.as_ref(), field::EXT_LEN))
    }
    /// The whole hello's length: fixed part, name and extensions.
    pub fn total_len(&self) -> usize {
        HELLO_LEN + self.name_len() + self.ext_len()
    }
    fn name_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[HELLO_LEN..HELLO_LEN + self.name_len()]
    }
    /// The folded pipe name the client means.
    pub fn name(&self) -> &str {
        std::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }
    /// Extension bytes (tag-length-value, reserved for the gateway's remote identity).
    pub fn extensions(&self) -> &[u8] {
        let start = HELLO_LEN + self.name_len();
        &self.buffer.as_ref()[start..start + self.ext_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> HelloPacket<T> {
    /// Rewrites the flags in place (a client that finds, once connected,
    /// it cannot take what it meant to offer).
    pub fn set_flags(&mut self, flags: u16) {
        self.buffer.as_mut()[field::FLAGS].copy_from_slice(&flags.to_le_bytes());
    }
}

/// The length a hello will have once its fixed part is known, or `None`
/// while fewer than [`HELLO_LEN`] bytes have arrived. Lets a reader learn how
/// much more to read before checking.
pub fn hello_len_hint(prefix: &[u8]) -> Option<usize> {
    if prefix.len() < HELLO_LEN {
        return None;
    }
    Some(HELLO_LEN + usize::from(u16_at(prefix, field::NAME_LEN)) + usize::from(u16_at(prefix, field::EXT_LEN)))
}

/// A hello, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// What the client asks for.
    pub request: Request,
    /// [`hello_flags`].
    pub flags: u16,
    /// The client's pid.
    pub pid: u32,
    /// The folded name.
    pub name: String,
    /// Extensions, opaque here.
    pub extensions: Vec<u8>,
}

impl Hello {
    /// Reads a hello from a checked view.
    pub fn parse<T: AsRef<[u8]>>(p: &HelloPacket<T>) -> Hello {
        Hello {
            request: p.request(),
            flags: p.flags(),
            pid: p.pid(),
            name: p.name().to_owned(),
            extensions: p.extensions().to_vec(),
        }
    }

    /// Bytes [`Hello::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HELLO_LEN + self.name.len() + self.extensions.len()
    }

    /// Writes the hello into `buf`, which must hold [`Hello::buffer_len`] bytes.
    ///
    /// # Errors
    /// `Malformed` when the name or extensions are too long to encode.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), DecodeError> {
        if self.name.len() > MAX_NAME_BYTES {
            return Err(DecodeError::Malformed("local hello name length"));
        }
        let ext_len =
            u16::try_from(self.extensions.len()).map_err(|_| DecodeError::Malformed("local hello extensions"))?;
        if buf.len() < self.buffer_len() {
            return Err(DecodeError::Truncated("local hello buffer"));
        }
        buf[field::MAGIC].copy_from_slice(&MAGIC);
        buf[field::VERSION] = VERSION;
        buf[field::KIND] = self.request.0;
        buf[field::FLAGS].copy_from_slice(&self.flags.to_le_bytes());
        buf[field::PID].copy_from_slice(&self.pid.to_le_bytes());
        buf[field::NAME_LEN].copy_from_slice(&(self.name.len() as u16).to_le_bytes());
        buf[field::EXT_LEN].copy_from_slice(&ext_len.to_le_bytes());
        let name_end = HELLO_LEN + self.name.len();
        buf[HELLO_LEN..name_end].copy_from_slice(self.name.as_bytes());
        buf[name_end..name_end + self.extensions.len()].copy_from_slice(&self.extensions);
        Ok(())
    }

    /// The hello as a fresh vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, DecodeError> {
        let mut v = vec![0; self.buffer_len()];
        self.emit(&mut v)?;
        Ok(v)
    }
}

/// A server's answer to a hello.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyStatus(pub u8);

impl ReplyStatus {
    /// OPEN: an instance took the connection; it is now the pipe.
    pub const ACCEPTED: ReplyStatus = ReplyStatus(0);
    /// OPEN: no instance of this process listens.
    pub const BUSY: ReplyStatus = ReplyStatus(1);
    /// OPEN/WAIT: the pipe's access control refuses this client.
    pub const ACCESS_DENIED: ReplyStatus = ReplyStatus(2);
    /// The process no longer serves this name.
    pub const NOT_FOUND: ReplyStatus = ReplyStatus(3);
    /// WAIT: an instance listens now.
    pub const AVAILABLE: ReplyStatus = ReplyStatus(4);
    /// CENSUS: the description follows in the reply's fields.
    pub const CENSUS: ReplyStatus = ReplyStatus(5);
    /// The hello was malformed or asked for something unknown.
    pub const BAD_REQUEST: ReplyStatus = ReplyStatus(6);
    /// The server process is out of file descriptors: it accepted this
    /// connection only to say so (ERROR_NO_SYSTEM_RESOURCES).
    pub const NO_RESOURCES: ReplyStatus = ReplyStatus(7);
}

impl std::fmt::Debug for ReplyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match *self {
            ReplyStatus::ACCEPTED => "ACCEPTED",
            ReplyStatus::BUSY => "BUSY",
            ReplyStatus::ACCESS_DENIED => "ACCESS_DENIED",
            ReplyStatus::NOT_FOUND => "NOT_FOUND",
            ReplyStatus::AVAILABLE => "AVAILABLE",
            ReplyStatus::CENSUS => "CENSUS",
            ReplyStatus::BAD_REQUEST => "BAD_REQUEST",
            ReplyStatus::NO_RESOURCES => "NO_RESOURCES",
            ReplyStatus(n) => return write!(f, "ReplyStatus({n})"),
        };
        f.write_str(name)
    }
}

/// Bits of a reply's flags.
pub mod reply_flags {
    /// The pipe refuses remote clients (PIPE_REJECT_REMOTE_CLIENTS).
    pub const REJECT_REMOTE: u16 = 0x0001;
}

/// A reply, owned (it is fixed-size, so there is no separate view type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The answer.
    pub status: ReplyStatus,
    /// 0 byte, 1 message.
    pub pipe_type: u8,
    /// 1 inbound, 2 outbound, 3 duplex (the server's PIPE_ACCESS_* bits).
    pub access: u8,
    /// 1..=254, 255 = unlimited.
    pub max_instances: u8,
    /// 0: the data flows over this socket.
    pub data_path: u8,
    /// [`reply_flags`].
    pub flags: u16,
    /// The server's input buffer size (what the client may have in flight).
    pub in_buffer: u32,
    /// The server's output buffer size.
    pub out_buffer: u32,
    /// NMPWAIT_USE_DEFAULT_WAIT, in ms.
    pub default_timeout_ms: u32,
    /// The serving process.
    pub server_pid: u32,
    /// Instances of this name in that process.
    pub instances: u32,
    /// Of those, how many listen.
    pub listening: u32,
}

impl Reply {
    /// An answer with this status and nothing else (no instance described).
    pub const fn bare(status: ReplyStatus) -> Reply {
        Reply {
            status,
            pipe_type: 0,
            access: 0,
            max_instances: 0,
            data_path: 0,
            flags: 0,
            in_buffer: 0,
            out_buffer: 0,
            default_timeout_ms: 0,
            server_pid: 0,
            instances: 0,
            listening: 0,
        }
    }

    /// Parses a reply.
    ///
    /// # Errors
    /// Too short, wrong magic or version.
    pub fn parse(b: &[u8]) -> Result<Reply, DecodeError> {
        if b.len() < REPLY_LEN {
            return Err(DecodeError::Truncated("local reply"));
        }
        if b[field::MAGIC] != MAGIC {
            return Err(DecodeError::Malformed("local reply magic"));
        }
        if b[field::VERSION] != VERSION {
            return Err(DecodeError::Unsupported("local protocol version"));
        }
        Ok(Reply {
            status: ReplyStatus(b[field::KIND]),
            pipe_type: b[field::PIPE_TYPE],
            access: b[field::ACCESS],
            max_instances: b[field::MAX_INSTANCES],
            data_path: b[field::DATA_PATH],
            flags: u16_at(b, field::REPLY_FLAGS),
            in_buffer: u32_at(b, field::IN_BUFFER),
            out_buffer: u32_at(b, field::OUT_BUFFER),
            default_timeout_ms: u32_at(b, field::TIMEOUT),
            server_pid: u32_at(b, field::SERVER_PID),
            instances: u32_at(b, field::INSTANCES),
            listening: u32_at(b, field::LISTENING),
        })
    }

    /// Writes the reply.
    pub fn emit(&self) -> [u8; REPLY_LEN] {
        let mut b = [0u8; REPLY_LEN];
        b[field::MAGIC].copy_from_slice(&MAGIC);
        b[field::VERSION] = VERSION;
        b[field::KIND] = self.status.0;
        b[field::PIPE_TYPE] = self.pipe_type;
        b[field::ACCESS] = self.access;
        b[field::MAX_INSTANCES] = self.max_instances;
        b[field::DATA_PATH] = self.data_path;
        b[field::REPLY_FLAGS].copy_from_slice(&self.flags.to_le_bytes());
        b[field::IN_BUFFER].copy_from_slice(&self.in_buffer.to_le_bytes());
        b[field::OUT_BUFFER].copy_from_slice(&self.out_buffer.to_le_bytes());
        b[field::TIMEOUT].copy_from_slice(&self.default_timeout_ms.to_le_bytes());
        b[field::SERVER_PID].copy_from_slice(&self.server_pid.to_le_bytes());
        b[field::INSTANCES].copy_from_slice(&self.instances.to_le_bytes());
        b[field::LISTENING].copy_from_slice(&self.listening.to_le_bytes());
        b
    }
}

/// Encodes a frame header for a message of `len` bytes.
///
/// # Errors
/// `Malformed` when `len` exceeds [`MAX_MESSAGE_LEN`].
pub fn frame_header(len: usize) -> Result<[u8; FRAME_HEADER_LEN], DecodeError> {
    if len > MAX_MESSAGE_LEN {
        return Err(DecodeError::Malformed("message longer than 2 GiB - 1"));
    }
    Ok((len as u32).to_le_bytes())
}

/// The control frame a server sends last on a message pipe when it
/// disconnects its client (DisconnectNamedPipe): bit 31 and kind 1, no
/// payload. It tells a reader that was waiting on an empty pipe (which
/// never saw the out-of-band marker) that the end is a disconnect.
pub const DISCONNECT_FRAME: [u8; FRAME_HEADER_LEN] = 0x8000_0001u32.to_le_bytes();

/// Decodes a frame header into the message length.
///
/// # Errors
/// `Unsupported` for a control frame (bit 31), which this version never sends.
pub fn parse_frame_header(h: [u8; FRAME_HEADER_LEN]) -> Result<usize, DecodeError> {
    let v = u32::from_le_bytes(h);
    if v & 0x8000_0000 != 0 {
        return Err(DecodeError::Unsupported("control frame"));
    }
    Ok(v as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    // An OPEN for "ECHO" asking read+write from pid 0x1234, no extensions.
    const HELLO_BYTES: &str = "50 53 4c 54 01 01 03 00 34 12 00 00 04 00 00 00 45 43 48 4f";
    // ACCEPTED, message, duplex, unlimited, socket path, reject remote,
    // in 65536, out 4096, timeout 50, pid 0x99, 2 instances, 1 listening.
    const REPLY_BYTES: &str = "50 53 4c 54 01 00 01 03 ff 00 01 00 00 00 01 00 00 10 00 00 \
                               32 00 00 00 99 00 00 00 02 00 00 00 01 00 00 00 00 00 00 00";

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn hello_repr() -> Hello {
        Hello {
            request: Request::OPEN,
            flags: hello_flags::READ | hello_flags::WRITE,
            pid: 0x1234,
            name: "ECHO".into(),
            extensions: vec![],
        }
    }

    fn reply_repr() -> Reply {
        Reply {
            status: ReplyStatus::ACCEPTED,
            pipe_type: 1,
            access: 3,
            max_instances: 255,
            data_path: 0,
            flags: reply_flags::REJECT_REMOTE,
            in_buffer: 65536,
            out_buffer: 4096,
            default_timeout_ms: 50,
            server_pid: 0x99,
            instances: 2,
            listening: 1,
        }
    }

    #[test]
    fn hello_deconstruct() {
        let bytes = hex(HELLO_BYTES);
        let p = HelloPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.request(), Request::OPEN);
        assert_eq!(p.flags(), 3);
        assert_eq!(p.pid(), 0x1234);
        assert_eq!(p.name(), "ECHO");
        assert_eq!(p.extensions(), b"");
        assert_eq!(hello_len_hint(&bytes), Some(bytes.len()));
    }

    #[test]
    fn hello_flags_rewrite_in_place_and_nothing_else() {
        let mut bytes = hex(HELLO_BYTES);
        let mut p = HelloPacket::new_checked(&mut bytes[..]).unwrap();
        p.set_flags(0x0102);
        assert_eq!(p.flags(), 0x0102);
        assert_eq!((p.request(), p.pid(), p.name()), (Request::OPEN, 0x1234, "ECHO"));
        let mut back = bytes.clone();
        back[6..8].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(back, hex(HELLO_BYTES));
    }

    #[test]
    fn hello_construct() {
        let mut buf = vec![0xa5; hello_repr().buffer_len()];
        hello_repr().emit(&mut buf).unwrap();
        assert_eq!(buf, hex(HELLO_BYTES));
    }

    #[test]
    fn hello_parse_and_emit_round_trip() {
        let bytes = hex(HELLO_BYTES);
        let repr = Hello::parse(&HelloPacket::new_checked(&bytes[..]).unwrap());
        assert_eq!(repr, hello_repr());
        assert_eq!(repr.to_vec().unwrap(), bytes);
    }

    #[test]
    fn hello_rejects_bad_input() {
        let bytes = hex(HELLO_BYTES);
        assert!(matches!(
            HelloPacket::new_checked(&bytes[..10]),
            Err(DecodeError::Truncated(_))
        ));
        assert!(matches!(
            HelloPacket::new_checked(&bytes[..18]),
            Err(DecodeError::Truncated(_))
        ));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(matches!(
            HelloPacket::new_checked(&bad[..]),
            Err(DecodeError::Malformed(_))
        ));
        let mut v2 = bytes.clone();
        v2[4] = 2;
        assert!(matches!(
            HelloPacket::new_checked(&v2[..]),
            Err(DecodeError::Unsupported(_))
        ));
        let mut not_utf8 = bytes;
        not_utf8[16] = 0xff;
        assert!(HelloPacket::new_checked(&not_utf8[..]).is_err());
    }

    #[test]
    fn reply_four_ways() {
        let bytes = hex(REPLY_BYTES);
        let r = Reply::parse(&bytes).unwrap();
        assert_eq!(r, reply_repr());
        assert_eq!(r.emit().to_vec(), bytes);
        assert!(Reply::parse(&bytes[..39]).is_err());
        let mut bad = bytes;
        bad[3] = 0;
        assert!(Reply::parse(&bad).is_err());
    }

    #[test]
    fn frame_headers() {
        assert_eq!(frame_header(5).unwrap(), [5, 0, 0, 0]);
        assert_eq!(parse_frame_header([0, 1, 0, 0]).unwrap(), 256);
        assert!(frame_header(MAX_MESSAGE_LEN + 1).is_err());
        assert!(parse_frame_header([0, 0, 0, 0x80]).is_err());
    }
}
