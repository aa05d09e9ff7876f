//! The NetBIOS datagram service header (RFC 1002 4.4.1) and NetBIOS names in
//! their RFC 1001 14.1 first-level / RFC 1002 4.1 second-level encoding.
//!
//! A mailslot write travels as the user data of one direct or broadcast
//! datagram sent to UDP port 138. Every integer here is big-endian.
//!
//! ```text
//! RFC 1002 4.4.1 DIRECT_UNIQUE, DIRECT_GROUP and BROADCAST DATAGRAM
//!  0  MSG_TYPE (0x10, 0x11, 0x12)      1  FLAGS: 0000 SNT(2) F M
//!  2  DGM_ID u16
//!  4  SOURCE_IP (4 bytes)
//!  8  SOURCE_PORT u16
//! 10  DGM_LENGTH u16: bytes after PACKET_OFFSET (both names + user data)
//! 12  PACKET_OFFSET u16
//! 14  SOURCE_NAME       0x20, 32 bytes 'A'..'P', scope labels, 0x00
//!  …  DESTINATION_NAME  the same encoding
//!  …  USER_DATA         for the mailslot service: one SMB (see `smb1`)
//! ```
//!
//! A datagram is complete when F (first) is set, M (more) is clear and
//! PACKET_OFFSET is 0; anything else is a fragment (RFC 1002 4.4.1, 5.3.3),
//! which a mailslot receiver drops ([MS-MAIL] 3.1.5: no multi-packet mail).
//! The receiver ignores DGM_LENGTH and reads the user data up to the end of
//! the UDP payload, as `vectors.md` decides; [`DatagramPacket::dgm_length`]
//! still reports what the peer wrote.

#![warn(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use core::fmt;
use core::net::Ipv4Addr;

use crate::wire::DecodeError;

/// The UDP port of the NetBIOS datagram service (RFC 1002 4.4).
pub const DGM_PORT: u16 = 138;
/// Length of the fixed part of a direct or broadcast datagram, up to and
/// including PACKET_OFFSET (RFC 1002 4.4.1).
pub const HEADER_LEN: usize = 14;
/// Bytes in a NetBIOS name: 15 characters and the suffix (RFC 1001 14.1).
pub const NAME_LEN: usize = 16;
/// Bytes of a first-level encoded name: two half-ASCII bytes per byte.
pub const FIRST_LEVEL_LEN: usize = 32;
/// The longest second-level encoded name, length bytes and root included
/// (RFC 1002 4.1, after RFC 883's 255-byte limit on domain names).
pub const MAX_ENCODED_NAME_LEN: usize = 255;
/// The longest scope label (RFC 1002 4.1).
pub const MAX_LABEL_LEN: usize = 63;

/// The length byte in front of every first-level encoded name.
const NAME_LENGTH_BYTE: u8 = 0x20;
/// Length byte, 32 encoded bytes and the root label: a name without scope.
const MIN_ENCODED_NAME_LEN: usize = 34;

mod field {
    use core::ops::Range;
    pub(super) const MSG_TYPE: usize = 0;
    pub(super) const FLAGS: usize = 1;
    pub(super) const DGM_ID: Range<usize> = 2..4;
    pub(super) const SOURCE_IP: Range<usize> = 4..8;
    pub(super) const SOURCE_PORT: Range<usize> = 8..10;
    pub(super) const DGM_LENGTH: Range<usize> = 10..12;
    pub(super) const PACKET_OFFSET: Range<usize> = 12..14;
    pub(super) const SOURCE_NAME: usize = 14;
}

/// Reads `N` bytes at `range`, or zeros when the range is outside `b` (never
/// after a `new_checked`, which proved the range).
fn array_at<const N: usize>(b: &[u8], range: core::ops::Range<usize>) -> [u8; N] {
    b.get(range).and_then(|s| <[u8; N]>::try_from(s).ok()).unwrap_or([0; N])
}

fn be16(b: &[u8], range: core::ops::Range<usize>) -> u16 {
    u16::from_be_bytes(array_at(b, range))
}

fn byte_at(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// RFC 1002 4.4.1 MSG_TYPE: the kind of a datagram service message.
///
/// A newtype, not an enum: an unknown type still parses and can be counted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatagramType(pub u8);

impl DatagramType {
    /// 0x10 DIRECT_UNIQUE DATAGRAM: to one unique name.
    pub const DIRECT_UNIQUE: DatagramType = DatagramType(0x10);
    /// 0x11 DIRECT_GROUP DATAGRAM: to a group name (a domain, `<1E>`, …).
    pub const DIRECT_GROUP: DatagramType = DatagramType(0x11);
    /// 0x12 BROADCAST DATAGRAM: to every node (destination name `*`).
    pub const BROADCAST: DatagramType = DatagramType(0x12);
    /// 0x13 DATAGRAM ERROR (RFC 1002 4.4.3): no names, no user data.
    pub const ERROR: DatagramType = DatagramType(0x13);
    /// 0x14 DATAGRAM QUERY REQUEST (RFC 1002 4.4.4), to an NBDD.
    pub const QUERY_REQUEST: DatagramType = DatagramType(0x14);
    /// 0x15 DATAGRAM POSITIVE QUERY RESPONSE (RFC 1002 4.4.4).
    pub const POSITIVE_QUERY_RESPONSE: DatagramType = DatagramType(0x15);
    /// 0x16 DATAGRAM NEGATIVE QUERY RESPONSE (RFC 1002 4.4.4).
    pub const NEGATIVE_QUERY_RESPONSE: DatagramType = DatagramType(0x16);

    /// Whether the message carries names and user data (0x10, 0x11, 0x12):
    /// the only kinds a mailslot write can arrive in.
    pub const fn is_data(self) -> bool {
        matches!(self.0, 0x10..=0x12)
    }

    /// The type of the message in `payload`, without checking anything else:
    /// lets a receiver count and drop error and query messages by kind.
    pub fn of(payload: &[u8]) -> Option<DatagramType> {
        payload.first().map(|&t| DatagramType(t))
    }

    fn name(self) -> Option<&'static str> {
        Some(match self {
            DatagramType::DIRECT_UNIQUE => "DIRECT_UNIQUE",
            DatagramType::DIRECT_GROUP => "DIRECT_GROUP",
            DatagramType::BROADCAST => "BROADCAST",
            DatagramType::ERROR => "ERROR",
            DatagramType::QUERY_REQUEST => "QUERY_REQUEST",
            DatagramType::POSITIVE_QUERY_RESPONSE => "POSITIVE_QUERY_RESPONSE",
            DatagramType::NEGATIVE_QUERY_RESPONSE => "NEGATIVE_QUERY_RESPONSE",
            _ => return None,
        })
    }
}

impl fmt::Debug for DatagramType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "DatagramType({:#04x})", self.0),
        }
    }
}

impl fmt::Display for DatagramType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({:#04x})", self.0),
            None => write!(f, "{:#04x}", self.0),
        }
    }
}

/// RFC 1002 4.4.1 SNT: the kind of node that sent a datagram (two bits).
///
/// [MS-MAIL] <13>: Windows sends 0b11 because it is an H-node; RFC 1002 calls
/// that value NBDD.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeType(u8);

impl NodeType {
    /// 00: broadcast node (scapy's default; Samba's `smbtorture`).
    pub const B_NODE: NodeType = NodeType(0);
    /// 01: point-to-point node.
    pub const P_NODE: NodeType = NodeType(1);
    /// 10: mixed node (Samba nmbd).
    pub const M_NODE: NodeType = NodeType(2);
    /// 11: H-node as Windows uses it ([MS-MAIL] <13>), NBDD in RFC 1002.
    pub const H_NODE: NodeType = NodeType(3);

    /// The two-bit value, 0..=3.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The node type with these two bits (higher bits are ignored).
    pub const fn from_bits(bits: u8) -> NodeType {
        NodeType(bits & 0b11)
    }
}

impl fmt::Debug for NodeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match *self {
            NodeType::B_NODE => "B_NODE",
            NodeType::P_NODE => "P_NODE",
            NodeType::M_NODE => "M_NODE",
            _ => "H_NODE",
        })
    }
}

/// RFC 1002 4.4.1 FLAGS: `0000 SNT F M` (bit 0x01 M, 0x02 F, 0x0C SNT).
///
/// The four high bits are reserved; they are kept as received so that a
/// parsed header re-emits unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatagramFlags(pub u8);

impl DatagramFlags {
    /// M: more fragments follow.
    pub const MORE: u8 = 0x01;
    /// F: this is the first fragment.
    pub const FIRST: u8 = 0x02;
    /// Mask of the SNT bits.
    pub const NODE_TYPE_MASK: u8 = 0x0c;

    /// Flags of an unfragmented datagram (F set, M clear) sent by `node`:
    /// 0x02 for a B-node, 0x0A for an M-node, 0x0E for an H-node.
    pub const fn whole(node: NodeType) -> DatagramFlags {
        DatagramFlags(DatagramFlags::FIRST | (node.bits() << 2))
    }

    /// F: the first (or only) fragment.
    pub const fn first(self) -> bool {
        self.0 & DatagramFlags::FIRST != 0
    }

    /// M: more fragments follow.
    pub const fn more(self) -> bool {
        self.0 & DatagramFlags::MORE != 0
    }

    /// SNT: the sender's node type.
    pub const fn node_type(self) -> NodeType {
        NodeType::from_bits(self.0 >> 2)
    }
}

impl fmt::Debug for DatagramFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatagramFlags({:#04x}: ", self.0)?;
        if self.first() {
            f.write_str("F ")?;
        }
        if self.more() {
            f.write_str("M ")?;
        }
        write!(f, "{:?})", self.node_type())
    }
}

/// Well-known 16th bytes of NetBIOS names ([MS-BRWS] 2.1, [MS-NBTE]).
pub mod suffix {
    /// `<00>`: a workstation's computer name, or a domain (group).
    pub const WORKSTATION: u8 = 0x00;
    /// `<01>`: `__MSBROWSE__`, the master-browser group.
    pub const MSBROWSE: u8 = 0x01;
    /// `<1B>`: the domain master browser.
    pub const DOMAIN_MASTER_BROWSER: u8 = 0x1b;
    /// `<1C>`: the domain controllers of a domain (group).
    pub const DOMAIN_CONTROLLERS: u8 = 0x1c;
    /// `<1D>`: the local master browser of a workgroup.
    pub const MASTER_BROWSER: u8 = 0x1d;
    /// `<1E>`: browser elections in a workgroup (group).
    pub const BROWSER_ELECTION: u8 = 0x1e;
    /// `<20>`: the file server service.
    pub const SERVER: u8 = 0x20;
}

/// RFC 1001 14.1: a NetBIOS name, 15 bytes padded with spaces plus a suffix
/// byte (`TARGETHOST<00>`, `MSLAB<1D>`).
///
/// ASCII letters are always upper case: [`NetbiosName::new`] and the decoder
/// fold them, as Windows and Samba do, so names compare with `==`. Other bytes
/// are kept as they are (`__MSBROWSE__` uses 0x01 and 0x02).
///
/// `Display` prints the name without its padding, bytes outside printable
/// ASCII as `\xNN` and a backslash as `\\`, then the suffix as `<XX>`:
/// `\x01\x02__MSBROWSE__\x02<01>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetbiosName {
    bytes: [u8; NAME_LEN],
}

impl NetbiosName {
    /// `\x01\x02__MSBROWSE__\x02<01>`, the group master browsers announce
    /// their domains to ([MS-BRWS] 3.2.5.3).
    pub const MSBROWSE: NetbiosName = NetbiosName {
        bytes: *b"\x01\x02__MSBROWSE__\x02\x01",
    };

    /// A name from its 16 bytes as on the wire (before first-level encoding);
    /// ASCII letters are upper-cased.
    pub fn from_bytes(mut bytes: [u8; NAME_LEN]) -> NetbiosName {
        bytes.make_ascii_uppercase();
        NetbiosName { bytes }
    }

    /// A name from up to 15 ASCII bytes, upper-cased and padded with spaces,
    /// and its suffix.
    ///
    /// # Errors
    /// `Malformed` when `name` is empty, longer than 15 bytes or not ASCII.
    pub fn new(name: &str, suffix: u8) -> Result<NetbiosName, DecodeError> {
        if name.is_empty() {
            return Err(DecodeError::Malformed("empty NetBIOS name"));
        }
        if !name.is_ascii() {
            return Err(DecodeError::Malformed("NetBIOS name is not ASCII"));
        }
        let mut bytes = [b' '; NAME_LEN];
        let (chars, last) = bytes.split_at_mut(NAME_LEN - 1);
        chars
            .get_mut(..name.len())
            .ok_or(DecodeError::Malformed("NetBIOS name longer than 15 bytes"))?
            .copy_from_slice(name.as_bytes());
        if let Some(s) = last.first_mut() {
            *s = suffix;
        }
        Ok(NetbiosName::from_bytes(bytes))
    }

    /// The 16 bytes: 15 padded name bytes, then the suffix.
    pub const fn as_bytes(&self) -> &[u8; NAME_LEN] {
        &self.bytes
    }

    /// The name without its trailing space padding and without the suffix.
    pub fn name(&self) -> &[u8] {
        let padded = self.bytes.split_last().map_or(&[][..], |(_, name)| name);
        let len = padded
            .iter()
            .rposition(|&c| c != b' ')
            .map_or(0, |i| i.saturating_add(1));
        padded.get(..len).unwrap_or_default()
    }

    /// The 16th byte (see [`suffix`]).
    pub const fn suffix(&self) -> u8 {
        self.bytes[NAME_LEN - 1]
    }

    /// RFC 1001 14.1 first-level encoding: each half-byte becomes `'A' + n`.
    pub fn encode(&self) -> [u8; FIRST_LEVEL_LEN] {
        let mut out = [0u8; FIRST_LEVEL_LEN];
        for (pair, &b) in out.chunks_exact_mut(2).zip(self.bytes.iter()) {
            pair.copy_from_slice(&[b'A'.wrapping_add(b >> 4), b'A'.wrapping_add(b & 0x0f)]);
        }
        out
    }

    /// Decodes RFC 1001 14.1 first-level encoding.
    ///
    /// # Errors
    /// `Malformed` when a byte is outside `'A'..='P'`.
    pub fn decode(encoded: &[u8; FIRST_LEVEL_LEN]) -> Result<NetbiosName, DecodeError> {
        let mut bytes = [0u8; NAME_LEN];
        for (b, pair) in bytes.iter_mut().zip(encoded.chunks_exact(2)) {
            let mut half = [0u8; 2];
            for (h, &c) in half.iter_mut().zip(pair) {
                if !(b'A'..=b'P').contains(&c) {
                    return Err(DecodeError::Malformed("NetBIOS name first-level encoding"));
                }
                *h = c.wrapping_sub(b'A');
            }
            *b = (half[0] << 4) | half[1];
        }
        Ok(NetbiosName::from_bytes(bytes))
    }
}

impl fmt::Display for NetbiosName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &c in self.name() {
            match c {
                b'\\' => f.write_str("\\\\")?,
                0x20..=0x7e => fmt::Write::write_char(f, char::from(c))?,
                _ => write!(f, "\\x{c:02x}")?,
            }
        }
        write!(f, "<{:02X}>", self.suffix())
    }
}

impl fmt::Debug for NetbiosName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetbiosName({self})")
    }
}

/// RFC 1002 4.1: a NetBIOS scope, the labels that follow the encoded name.
///
/// Almost every network uses no scope ([`Scope::none`]). Labels are kept as
/// received; `Display` joins them with dots.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The labels as on the wire (length byte, bytes, …), without the root.
    wire: Vec<u8>,
}

impl Scope {
    /// No scope: the encoded name ends right after its 32 bytes.
    pub const fn none() -> Scope {
        Scope { wire: Vec::new() }
    }

    /// A scope from its dotted form, such as `corp.example`.
    ///
    /// # Errors
    /// `Malformed` for an empty label, a label over 63 bytes, non-ASCII, or
    /// a scope that makes an encoded name longer than 255 bytes.
    pub fn new(dotted: &str) -> Result<Scope, DecodeError> {
        if dotted.is_empty() {
            return Ok(Scope::none());
        }
        if !dotted.is_ascii() {
            return Err(DecodeError::Malformed("NetBIOS scope is not ASCII"));
        }
        let mut wire = Vec::with_capacity(dotted.len().saturating_add(1));
        for label in dotted.split('.') {
            let len = u8::try_from(label.len()).map_err(|_| DecodeError::Malformed("NetBIOS scope label"))?;
            if len == 0 || usize::from(len) > MAX_LABEL_LEN {
                return Err(DecodeError::Malformed("NetBIOS scope label"));
            }
            wire.push(len);
            wire.extend_from_slice(label.as_bytes());
        }
        let scope = Scope { wire };
        if scope.encoded_name_len() > MAX_ENCODED_NAME_LEN {
            return Err(DecodeError::Malformed("NetBIOS scope too long"));
        }
        Ok(scope)
    }

    /// A scope from labels already checked by [`scan_name`].
    fn from_checked(wire: &[u8]) -> Scope {
        Scope { wire: wire.to_vec() }
    }

    /// Whether this is no scope at all.
    pub fn is_empty(&self) -> bool {
        self.wire.is_empty()
    }

    /// The labels as on the wire (each a length byte and its bytes), without
    /// the terminating root label.
    pub fn as_wire(&self) -> &[u8] {
        &self.wire
    }

    /// The labels, in order.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> + '_ {
        Labels { rest: &self.wire }
    }

    /// Bytes of a name encoded with this scope: length byte, 32 bytes,
    /// labels and root.
    pub fn encoded_name_len(&self) -> usize {
        MIN_ENCODED_NAME_LEN.saturating_add(self.wire.len())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &c in label {
                match c {
                    b'\\' => f.write_str("\\\\")?,
                    0x21..=0x7e => fmt::Write::write_char(f, char::from(c))?,
                    _ => write!(f, "\\x{c:02x}")?,
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.to_string())
    }
}

struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        let len = usize::from(len);
        let label = tail.get(..len)?;
        self.rest = tail.get(len..).unwrap_or_default();
        Some(label)
    }
}

/// Where one encoded name lies in a buffer.
#[derive(Debug, Clone, Copy)]
struct NameSpan {
    /// The length byte 0x20.
    start: usize,
    /// First byte after the name's root label.
    end: usize,
}

impl NameSpan {
    fn name(&self, b: &[u8]) -> NetbiosName {
        let first = self.start.saturating_add(1);
        let encoded: [u8; FIRST_LEVEL_LEN] = array_at(b, first..first.saturating_add(FIRST_LEVEL_LEN));
        NetbiosName::decode(&encoded).unwrap_or(NetbiosName { bytes: [0; NAME_LEN] })
    }

    fn scope<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        let labels = self.start.saturating_add(1).saturating_add(FIRST_LEVEL_LEN);
        b.get(labels..self.end.saturating_sub(1)).unwrap_or_default()
    }
}

/// Checks the second-level encoded name at `start` (RFC 1002 4.1): length
/// byte 0x20, 32 bytes `'A'..='P'`, labels of 1..=63 bytes, the root label,
/// 255 bytes at most. Label pointers (compression) are not allowed in
/// datagrams.
fn scan_name(b: &[u8], start: usize) -> Result<NameSpan, DecodeError> {
    let tail = b.get(start..).ok_or(DecodeError::Truncated("NetBIOS name"))?;
    let (&len, rest) = tail.split_first().ok_or(DecodeError::Truncated("NetBIOS name"))?;
    if len & 0xc0 == 0xc0 {
        return Err(DecodeError::Unsupported("compressed NetBIOS name"));
    }
    if len != NAME_LENGTH_BYTE {
        return Err(DecodeError::Malformed("NetBIOS name length is not 32"));
    }
    let encoded = rest
        .get(..FIRST_LEVEL_LEN)
        .ok_or(DecodeError::Truncated("NetBIOS name"))?;
    if !encoded.iter().all(|c| (b'A'..=b'P').contains(c)) {
        return Err(DecodeError::Malformed("NetBIOS name first-level encoding"));
    }
    // Offset of the next label within `tail`.
    let mut at = 1 + FIRST_LEVEL_LEN;
    loop {
        if at >= MAX_ENCODED_NAME_LEN {
            return Err(DecodeError::Malformed("NetBIOS name longer than 255 bytes"));
        }
        let label = *tail.get(at).ok_or(DecodeError::Truncated("NetBIOS scope"))?;
        // `at` < 255 and `label` < 256: no overflow below.
        at = at.saturating_add(1);
        if label == 0 {
            break;
        }
        if usize::from(label) > MAX_LABEL_LEN {
            return Err(DecodeError::Malformed("NetBIOS scope label longer than 63 bytes"));
        }
        at = at.saturating_add(usize::from(label));
        if at > tail.len() {
            return Err(DecodeError::Truncated("NetBIOS scope"));
        }
    }
    if at > MAX_ENCODED_NAME_LEN {
        return Err(DecodeError::Malformed("NetBIOS name longer than 255 bytes"));
    }
    let end = start
        .checked_add(at)
        .ok_or(DecodeError::Malformed("NetBIOS name offset"))?;
    Ok(NameSpan { start, end })
}

/// Decodes the second-level encoded name at the start of `b` (RFC 1002 4.1).
/// Returns the name, its scope and the bytes it took.
///
/// # Errors
/// As [`DatagramPacket::new_checked`] for a name.
pub fn decode_name(b: &[u8]) -> Result<(NetbiosName, Scope, usize), DecodeError> {
    let span = scan_name(b, 0)?;
    Ok((span.name(b), Scope::from_checked(span.scope(b)), span.end))
}

/// Writes `name` with `scope` in second-level encoding (RFC 1002 4.1) at the
/// start of `buf` and returns the bytes written
/// ([`Scope::encoded_name_len`]).
///
/// # Errors
/// `Truncated` when `buf` is too short.
pub fn encode_name(name: &NetbiosName, scope: &Scope, buf: &mut [u8]) -> Result<usize, DecodeError> {
    let len = scope.encoded_name_len();
    let out = buf
        .get_mut(..len)
        .ok_or(DecodeError::Truncated("NetBIOS name buffer"))?;
    let (head, tail) = out.split_at_mut(1 + FIRST_LEVEL_LEN);
    let (len_byte, encoded) = head.split_at_mut(1);
    len_byte.copy_from_slice(&[NAME_LENGTH_BYTE]);
    encoded.copy_from_slice(&name.encode());
    let (labels, root) = tail.split_at_mut(scope.wire.len());
    labels.copy_from_slice(&scope.wire);
    root.copy_from_slice(&[0]);
    Ok(len)
}

/// RFC 1002 4.4.1: a borrowed view of a DIRECT_UNIQUE, DIRECT_GROUP or
/// BROADCAST datagram. After [`DatagramPacket::new_checked`] no accessor
/// panics.
#[derive(Debug, Clone, Copy)]
pub struct DatagramPacket<T: AsRef<[u8]>> {
    buffer: T,
    source: NameSpan,
    destination: NameSpan,
}

impl<T: AsRef<[u8]>> DatagramPacket<T> {
    /// Checks the type (0x10..=0x12), the fixed header and both encoded names.
    /// Fragments pass: see [`DatagramPacket::is_fragment`]. DGM_LENGTH is not
    /// checked.
    ///
    /// # Errors
    /// `Unsupported` for an error or query message or an unknown type (see
    /// [`DatagramType::of`]), `Truncated` or `Malformed` for bad names.
    pub fn new_checked(buffer: T) -> Result<DatagramPacket<T>, DecodeError> {
        let b = buffer.as_ref();
        let msg_type = DatagramType::of(b).ok_or(DecodeError::Truncated("NetBIOS datagram header"))?;
        if !msg_type.is_data() {
            return Err(DecodeError::Unsupported("NetBIOS datagram type is not a data datagram"));
        }
        if b.len() < HEADER_LEN {
            return Err(DecodeError::Truncated("NetBIOS datagram header"));
        }
        let source = scan_name(b, field::SOURCE_NAME)?;
        let destination = scan_name(b, source.end)?;
        Ok(DatagramPacket {
            buffer,
            source,
            destination,
        })
    }

    /// The buffer, given back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// MSG_TYPE: one of the three data types.
    pub fn msg_type(&self) -> DatagramType {
        DatagramType(byte_at(self.buffer.as_ref(), field::MSG_TYPE))
    }

    /// FLAGS.
    pub fn flags(&self) -> DatagramFlags {
        DatagramFlags(byte_at(self.buffer.as_ref(), field::FLAGS))
    }

    /// DGM_ID: the sender's datagram id (random in Samba).
    pub fn dgm_id(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DGM_ID)
    }

    /// SOURCE_IP.
    pub fn source_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(array_at::<4>(self.buffer.as_ref(), field::SOURCE_IP))
    }

    /// SOURCE_PORT.
    pub fn source_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SOURCE_PORT)
    }

    /// DGM_LENGTH as written by the sender (not checked, not used).
    pub fn dgm_length(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DGM_LENGTH)
    }

    /// PACKET_OFFSET: where this fragment's user data lies in the whole.
    pub fn packet_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PACKET_OFFSET)
    }

    /// Whether this is a fragment rather than a whole datagram: F clear, M
    /// set or PACKET_OFFSET not 0. Mailslot receivers drop fragments.
    pub fn is_fragment(&self) -> bool {
        let flags = self.flags();
        !flags.first() || flags.more() || self.packet_offset() != 0
    }

    /// SOURCE_NAME.
    pub fn source_name(&self) -> NetbiosName {
        self.source.name(self.buffer.as_ref())
    }

    /// The scope labels of SOURCE_NAME as on the wire (usually empty).
    pub fn source_scope(&self) -> &[u8] {
        self.source.scope(self.buffer.as_ref())
    }

    /// DESTINATION_NAME.
    pub fn destination_name(&self) -> NetbiosName {
        self.destination.name(self.buffer.as_ref())
    }

    /// The scope labels of DESTINATION_NAME as on the wire (usually empty).
    pub fn destination_scope(&self) -> &[u8] {
        self.destination.scope(self.buffer.as_ref())
    }

    /// Bytes before the user data: fixed header and both names (82 without
    /// scope).
    pub fn header_len(&self) -> usize {
        self.destination.end
    }

    /// USER_DATA: everything after the destination name, up to the end of the
    /// buffer (for a mailslot write, the SMB).
    pub fn user_data(&self) -> &[u8] {
        self.buffer.as_ref().get(self.destination.end..).unwrap_or_default()
    }
}

/// RFC 1002 4.4.1: a direct or broadcast datagram's header, owned. The user
/// data is not part of it; [`DatagramRepr::emit`] writes the header and the
/// caller writes the user data after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramRepr {
    /// MSG_TYPE: [`DatagramType::DIRECT_UNIQUE`], `DIRECT_GROUP` or `BROADCAST`.
    pub msg_type: DatagramType,
    /// FLAGS, as received or to send.
    pub flags: DatagramFlags,
    /// DGM_ID.
    pub dgm_id: u16,
    /// SOURCE_IP.
    pub source_ip: Ipv4Addr,
    /// SOURCE_PORT.
    pub source_port: u16,
    /// PACKET_OFFSET (0 for a whole datagram).
    pub packet_offset: u16,
    /// SOURCE_NAME.
    pub source_name: NetbiosName,
    /// SOURCE_NAME's scope.
    pub source_scope: Scope,
    /// DESTINATION_NAME.
    pub destination_name: NetbiosName,
    /// DESTINATION_NAME's scope.
    pub destination_scope: Scope,
}

impl DatagramRepr {
    /// A whole (unfragmented) datagram without scope, flags as Windows sends
    /// them (0x0E: F set, H-node; [MS-MAIL] <13>).
    pub fn new(
        msg_type: DatagramType,
        dgm_id: u16,
        source_ip: Ipv4Addr,
        source_port: u16,
        source_name: NetbiosName,
        destination_name: NetbiosName,
    ) -> DatagramRepr {
        DatagramRepr {
            msg_type,
            flags: DatagramFlags::whole(NodeType::H_NODE),
            dgm_id,
            source_ip,
            source_port,
            packet_offset: 0,
            source_name,
            source_scope: Scope::none(),
            destination_name,
            destination_scope: Scope::none(),
        }
    }

    /// Reads the header from a checked view.
    pub fn parse<T: AsRef<[u8]>>(p: &DatagramPacket<T>) -> DatagramRepr {
        DatagramRepr {
            msg_type: p.msg_type(),
            flags: p.flags(),
            dgm_id: p.dgm_id(),
            source_ip: p.source_ip(),
            source_port: p.source_port(),
            packet_offset: p.packet_offset(),
            source_name: p.source_name(),
            source_scope: Scope::from_checked(p.source_scope()),
            destination_name: p.destination_name(),
            destination_scope: Scope::from_checked(p.destination_scope()),
        }
    }

    /// Whether this header describes a fragment (see
    /// [`DatagramPacket::is_fragment`]).
    pub fn is_fragment(&self) -> bool {
        !self.flags.first() || self.flags.more() || self.packet_offset != 0
    }

    /// Bytes [`DatagramRepr::emit`] writes: the fixed header and both names.
    /// The user data starts at this offset.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            .saturating_add(self.source_scope.encoded_name_len())
            .saturating_add(self.destination_scope.encoded_name_len())
    }

    /// Writes the header into `buf`, with DGM_LENGTH covering both names and
    /// `user_data_len` bytes of user data that the caller writes at
    /// [`DatagramRepr::buffer_len`].
    ///
    /// # Errors
    /// `Malformed` for a type that is not a data datagram or a DGM_LENGTH over
    /// 65535, `Truncated` when `buf` is shorter than `buffer_len()`.
    pub fn emit(&self, buf: &mut [u8], user_data_len: usize) -> Result<(), DecodeError> {
        if !self.msg_type.is_data() {
            return Err(DecodeError::Malformed("NetBIOS datagram type is not a data datagram"));
        }
        let dgm_length = self
            .buffer_len()
            .checked_sub(HEADER_LEN)
            .and_then(|names| names.checked_add(user_data_len))
            .and_then(|len| u16::try_from(len).ok())
            .ok_or(DecodeError::Malformed("NetBIOS DGM_LENGTH over 65535"))?;
        let buf = buf
            .get_mut(..self.buffer_len())
            .ok_or(DecodeError::Truncated("NetBIOS datagram buffer"))?;
        let (header, names) = buf.split_at_mut(HEADER_LEN);
        let mut h = [0u8; HEADER_LEN];
        h[field::MSG_TYPE] = self.msg_type.0;
        h[field::FLAGS] = self.flags.0;
        h[field::DGM_ID].copy_from_slice(&self.dgm_id.to_be_bytes());
        h[field::SOURCE_IP].copy_from_slice(&self.source_ip.octets());
        h[field::SOURCE_PORT].copy_from_slice(&self.source_port.to_be_bytes());
        h[field::DGM_LENGTH].copy_from_slice(&dgm_length.to_be_bytes());
        h[field::PACKET_OFFSET].copy_from_slice(&self.packet_offset.to_be_bytes());
        header.copy_from_slice(&h);
        let used = encode_name(&self.source_name, &self.source_scope, names)?;
        let rest = names
            .get_mut(used..)
            .ok_or(DecodeError::Truncated("NetBIOS datagram buffer"))?;
        encode_name(&self.destination_name, &self.destination_scope, rest)?;
        Ok(())
    }

    /// The header followed by `user_data`, as a fresh vector.
    ///
    /// # Errors
    /// As [`DatagramRepr::emit`].
    pub fn to_vec(&self, user_data: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut v = vec![0; self.buffer_len()];
        self.emit(&mut v, user_data.len())?;
        v.extend_from_slice(user_data);
        Ok(v)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    // v1_unique_short's NetBIOS header (RFC 1002 4.4.1), user data cut to
    // its first four bytes: DIRECT_UNIQUE, F + B-node, DGM_ID 0x1234,
    // 127.0.0.1:138, DGM_LENGTH 178, offset 0, WRITERHOST<00> → TARGETHOST<00>.
    const DATAGRAM_BYTES: &str = concat!(
        // DIRECT_UNIQUE, flags 0x02, DGM_ID, 127.0.0.1, port 138, DGM_LENGTH 178, PACKET_OFFSET 0
        "10 02 12 34 7f 00 00 01 00 8a 00 b2 00 00 ",
        // WRITERHOST<00>: 0x20, "FHFCEJFEEFFCEIEPFDFECACACACACAAA", root
        "20 46 48 46 43 45 4a 46 45 45 46 46 43 45 49 45 50 46 44 46 45 43 41 43 41 43 41 43 41 43 41 41 41 00 ",
        // TARGETHOST<00>
        "20 46 45 45 42 46 43 45 48 45 46 46 45 45 49 45 50 46 44 46 45 43 41 43 41 43 41 43 41 43 41 41 41 00 ",
        // the first bytes of the user data (the SMB)
        "ff 53 4d 42",
    );

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn datagram_repr() -> DatagramRepr {
        DatagramRepr {
            msg_type: DatagramType::DIRECT_UNIQUE,
            flags: DatagramFlags(0x02),
            dgm_id: 0x1234,
            source_ip: Ipv4Addr::new(127, 0, 0, 1),
            source_port: 138,
            packet_offset: 0,
            source_name: NetbiosName::new("WRITERHOST", 0x00).unwrap(),
            source_scope: Scope::none(),
            destination_name: NetbiosName::new("TARGETHOST", 0x00).unwrap(),
            destination_scope: Scope::none(),
        }
    }

    // The names in v1 are 34 bytes each; DGM_LENGTH 178 counts 110 bytes of
    // SMB that this cut vector does not carry.
    const V1_SMB_LEN: usize = 110;

    #[test]
    fn datagram_deconstruct() {
        let bytes = hex(DATAGRAM_BYTES);
        let p = DatagramPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.msg_type(), DatagramType::DIRECT_UNIQUE);
        assert_eq!(p.flags(), DatagramFlags::whole(NodeType::B_NODE));
        assert!(p.flags().first() && !p.flags().more());
        assert_eq!(p.flags().node_type(), NodeType::B_NODE);
        assert_eq!(p.dgm_id(), 0x1234);
        assert_eq!(p.source_ip(), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(p.source_port(), DGM_PORT);
        assert_eq!(p.dgm_length(), 178);
        assert_eq!(p.packet_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.source_name().to_string(), "WRITERHOST<00>");
        assert_eq!(p.destination_name().to_string(), "TARGETHOST<00>");
        assert_eq!(p.source_scope(), b"");
        assert_eq!(p.destination_scope(), b"");
        assert_eq!(p.header_len(), 82);
        assert_eq!(p.user_data(), &[0xff, b'S', b'M', b'B']);
    }

    #[test]
    fn datagram_construct() {
        let bytes = hex(DATAGRAM_BYTES);
        let mut buf = vec![0xa5; bytes.len()];
        datagram_repr().emit(&mut buf, V1_SMB_LEN).unwrap();
        buf[82..].copy_from_slice(&[0xff, b'S', b'M', b'B']);
        assert_eq!(buf, bytes);
    }

    #[test]
    fn datagram_parse() {
        let bytes = hex(DATAGRAM_BYTES);
        let p = DatagramPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(DatagramRepr::parse(&p), datagram_repr());
    }

    #[test]
    fn datagram_emit() {
        let repr = datagram_repr();
        assert_eq!(repr.buffer_len(), 82);
        let mut buf = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut buf, V1_SMB_LEN).unwrap();
        assert_eq!(buf, hex(DATAGRAM_BYTES)[..82]);
        // to_vec appends the user data and counts only it in DGM_LENGTH
        let whole = repr.to_vec(&[0xff, b'S', b'M', b'B']).unwrap();
        assert_eq!(whole[..10], buf[..10]);
        assert_eq!(whole[10..12], [0, 68 + 4]);
        assert_eq!(whole[12..], hex(DATAGRAM_BYTES)[12..]);
    }

    #[test]
    fn first_level_encoding() {
        // RFC 1001 14.1's own example: "FRED" padded with spaces.
        let fred = NetbiosName::new("fred", 0x20).unwrap();
        assert_eq!(&fred.encode(), b"EGFCEFEECACACACACACACACACACACACA");
        assert_eq!(NetbiosName::decode(&fred.encode()).unwrap(), fred);
        assert_eq!(fred.name(), b"FRED");
        assert_eq!(fred.suffix(), suffix::SERVER);
        assert_eq!(fred.to_string(), "FRED<20>");
        let mut bad = fred.encode();
        bad[3] = b'Q';
        assert!(NetbiosName::decode(&bad).is_err());
        assert!(NetbiosName::new("", 0).is_err());
        assert!(NetbiosName::new("SIXTEEN-LETTERS!", 0).is_err());
        assert!(NetbiosName::new("FIFTEEN-LETTERS", 0).is_ok());
        assert!(NetbiosName::new("caf\u{e9}", 0).is_err());
    }

    #[test]
    fn msbrowse_display() {
        assert_eq!(NetbiosName::MSBROWSE.to_string(), r"\x01\x02__MSBROWSE__\x02<01>");
        assert_eq!(
            NetbiosName::new("\x01\x02__MSBROWSE__\x02", suffix::MSBROWSE).unwrap(),
            NetbiosName::MSBROWSE
        );
        assert_eq!(
            format!("{:?}", NetbiosName::new("MSLAB", 0x1d).unwrap()),
            "NetbiosName(MSLAB<1D>)"
        );
    }

    #[test]
    fn scoped_names_round_trip() {
        let scope = Scope::new("corp.example").unwrap();
        assert_eq!(scope.as_wire(), b"\x04corp\x07example");
        assert_eq!(scope.to_string(), "corp.example");
        assert_eq!(scope.labels().collect::<Vec<_>>(), [&b"corp"[..], &b"example"[..]]);
        let name = NetbiosName::new("HOST", 0).unwrap();
        let mut buf = vec![0xa5; scope.encoded_name_len() + 3];
        let n = encode_name(&name, &scope, &mut buf).unwrap();
        assert_eq!(n, 34 + 13);
        assert_eq!(buf[n - 1], 0);
        let (back, back_scope, used) = decode_name(&buf).unwrap();
        assert_eq!((back, &back_scope, used), (name, &scope, n));

        let mut repr = datagram_repr();
        repr.source_scope = scope.clone();
        repr.destination_scope = Scope::new("x").unwrap();
        let bytes = repr.to_vec(b"data").unwrap();
        let p = DatagramPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(DatagramRepr::parse(&p), repr);
        assert_eq!(p.user_data(), b"data");
        assert_eq!(usize::from(p.dgm_length()), bytes.len() - HEADER_LEN);
    }

    #[test]
    fn bad_scopes() {
        assert!(Scope::new("a..b").is_err());
        assert!(Scope::new(&"a".repeat(64)).is_err());
        assert!(Scope::new(&["b"; 120].join(".")).is_err());
        assert!(Scope::new("").unwrap().is_empty());
        let name = encoded("HOST");
        // a label pointer (compression) is refused
        let mut ptr = name.clone();
        ptr[0] = 0xc0;
        assert_eq!(
            decode_name(&ptr),
            Err(DecodeError::Unsupported("compressed NetBIOS name"))
        );
        // a label longer than 63 bytes
        let mut long = name.clone();
        long.pop();
        long.push(64);
        long.extend_from_slice(&[b'a'; 64]);
        long.push(0);
        assert!(matches!(decode_name(&long), Err(DecodeError::Malformed(_))));
        // no root label
        let mut open = name.clone();
        open.pop();
        assert!(matches!(decode_name(&open), Err(DecodeError::Truncated(_))));
        // 255 bytes is the limit: 34 + 221 label bytes
        let mut max = name[..33].to_vec();
        for _ in 0..3 {
            max.push(63);
            max.extend_from_slice(&[b'a'; 63]);
        }
        max.push(28);
        max.extend_from_slice(&[b'a'; 28]);
        max.push(0);
        assert_eq!(max.len(), 255);
        assert_eq!(decode_name(&max).unwrap().2, 255);
        let mut over = max.clone();
        over.pop();
        over.push(1);
        over.extend_from_slice(b"a\0");
        assert!(matches!(decode_name(&over), Err(DecodeError::Malformed(_))));
    }

    /// `name<00>` without scope, second-level encoded.
    fn encoded(name: &str) -> Vec<u8> {
        let mut v = vec![0x20];
        v.extend_from_slice(&NetbiosName::new(name, 0).unwrap().encode());
        v.push(0);
        v
    }

    #[test]
    fn rejects_non_data_and_short_input() {
        let bytes = hex(DATAGRAM_BYTES);
        for t in [0x13, 0x14, 0x15, 0x16, 0x0f, 0xff] {
            let mut b = bytes.clone();
            b[0] = t;
            assert!(!DatagramType(t).is_data());
            assert!(matches!(
                DatagramPacket::new_checked(&b[..]),
                Err(DecodeError::Unsupported(_))
            ));
        }
        for len in 0..82 {
            assert!(DatagramPacket::new_checked(&bytes[..len]).is_err(), "len {len}");
        }
        assert!(DatagramPacket::new_checked(&bytes[..82]).is_ok());
        let mut bad_len = bytes.clone();
        bad_len[14] = 0x21;
        assert!(matches!(
            DatagramPacket::new_checked(&bad_len[..]),
            Err(DecodeError::Malformed(_))
        ));
        // an error datagram (RFC 1002 4.4.3) is 11 bytes
        let error = hex("13 02 12 34 7f 00 00 01 00 8a 82");
        assert_eq!(DatagramType::of(&error), Some(DatagramType::ERROR));
        assert!(DatagramPacket::new_checked(&error[..]).is_err());
    }

    #[test]
    fn fragments_are_flagged() {
        let bytes = hex(DATAGRAM_BYTES);
        for (flags, offset, fragment) in [(0x02, 0, false), (0x03, 0, true), (0x00, 64, true), (0x02, 1, true)] {
            let mut b = bytes.clone();
            b[1] = flags;
            b[12..14].copy_from_slice(&u16::to_be_bytes(offset));
            let p = DatagramPacket::new_checked(&b[..]).unwrap();
            assert_eq!(p.is_fragment(), fragment, "{flags:#x} {offset}");
            assert_eq!(DatagramRepr::parse(&p).is_fragment(), fragment);
        }
    }

    #[test]
    fn debug_names() {
        assert_eq!(format!("{:?}", DatagramType::DIRECT_GROUP), "DIRECT_GROUP");
        assert_eq!(format!("{:?}", DatagramType(0x42)), "DatagramType(0x42)");
        assert_eq!(DatagramType::BROADCAST.to_string(), "BROADCAST (0x12)");
        assert_eq!(format!("{:?}", DatagramFlags(0x0e)), "DatagramFlags(0x0e: F H_NODE)");
        assert_eq!(DatagramFlags::whole(NodeType::M_NODE), DatagramFlags(0x0a));
        assert_eq!(DatagramFlags::whole(NodeType::H_NODE), DatagramFlags(0x0e));
    }

    #[test]
    fn emit_refuses_bad_reprs() {
        let mut repr = datagram_repr();
        let mut buf = vec![0; 100];
        assert!(matches!(repr.emit(&mut buf[..81], 0), Err(DecodeError::Truncated(_))));
        assert!(matches!(repr.emit(&mut buf, 65536), Err(DecodeError::Malformed(_))));
        repr.msg_type = DatagramType::ERROR;
        assert!(matches!(repr.emit(&mut buf, 0), Err(DecodeError::Malformed(_))));
    }
}
