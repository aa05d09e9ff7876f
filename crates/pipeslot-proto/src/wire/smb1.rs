//! The one SMB1 message the Mailslot Protocol uses: a Write Mail Slot
//! transaction ([MS-MAIL] 2.2.1), an SMB_COM_TRANSACTION request
//! ([MS-CIFS] 2.2.4.33.1) carried in a NetBIOS datagram (see `netbios`).
//!
//! Everything is little-endian. Offsets are from the start of the SMB header.
//!
//! ```text
//! MS-CIFS 2.2.3.1 SMB header (32 bytes)    MS-CIFS 2.2.4.33.1 Transaction request
//!  0  ff 'S' 'M' 'B'                        32  WordCount (17 = 14 + SetupCount)
//!  4  Command (0x25)                        33  TotalParameterCount   35  TotalDataCount
//!  5  Status u32                            37  MaxParameterCount     39  MaxDataCount
//!  9  Flags                                 41  MaxSetupCount         42  Reserved1
//! 10  Flags2 u16                            43  Flags (0x0002 NO_RESPONSE)
//! 12  PIDHigh u16                           45  Timeout u32           49  Reserved2
//! 14  SecurityFeatures (8)                  51  ParameterCount        53  ParameterOffset
//! 22  Reserved u16                          55  DataCount             57  DataOffset
//! 24  TID u16                               59  SetupCount (3)        60  Reserved3
//! 26  PIDLow u16                            61  Setup: opcode (1 = Write Mail Slot)
//! 28  UID u16                               63         priority       65  class (2)
//! 30  MID u16                               67  ByteCount
//!                                           69  Name "\MAILSLOT\…" NUL-terminated, OEM
//!                                            …  Padding (0-3 bytes, Windows only)
//!                                   DataOffset  Data (DataCount bytes)
//! ```
//!
//! Two shapes of the same message are in use (see [`WriteShape`]); a receiver
//! accepts both and honours DataOffset and DataCount ([MS-MAIL] 3.2.5.1). It
//! ignores Timeout, priority, class and slack in ByteCount, and refuses
//! multi-packet transactions ([MS-MAIL] 3.1.5).

#![warn(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use core::fmt;
use std::borrow::Cow;

use crate::wire::DecodeError;

/// `ff 'S' 'M' 'B'`: the first four bytes of every SMB1 message.
pub const MAGIC: [u8; 4] = [0xff, b'S', b'M', b'B'];
/// Length of the SMB1 header ([MS-CIFS] 2.2.3.1).
pub const HEADER_LEN: usize = 32;
/// WordCount of a Write Mail Slot: 14 parameter words and 3 setup words.
pub const WORD_COUNT: u8 = 17;
/// SetupCount of a Write Mail Slot.
pub const SETUP_COUNT: u8 = 3;
/// Where the transaction name starts: header, WordCount, 17 words, ByteCount.
pub const NAME_OFFSET: usize = 69;
/// What every mailslot transaction name starts with (compared without case).
pub const MAILSLOT_PREFIX: &str = r"\MAILSLOT\";
/// Setup word 0 of a Write Mail Slot ([MS-MAIL] 2.2.1).
pub const OPCODE_WRITE_MAIL_SLOT: u16 = 1;
/// Setup word 2: mailslot class 2, the only class ([MS-MAIL] 2.2.1).
pub const CLASS_2: u16 = 2;
/// Flags2 bit: strings are Unicode ([MS-CIFS] 2.2.3.1). Never set on a
/// mailslot write, whose name is OEM.
pub const FLAGS2_UNICODE: u16 = 0x8000;
/// Transaction Flags bit: the client wants no response ([MS-CIFS] 2.2.4.33.1).
pub const TRANS_NO_RESPONSE: u16 = 0x0002;
/// The largest SMB part Windows sends in one datagram ([MS-MAIL] <2>).
pub const MAX_SMB_LEN: usize = 512;
/// The largest message Windows writes to a domain or `\\*\` ([MS-MAIL] 2.1,
/// vectors.md: `ERROR_BAD_NETPATH` above it).
pub const MAX_BROADCAST_DATA: usize = 424;
/// The most bytes of name, its NUL and data one datagram carries
/// ([MS-MAIL] 2.1).
pub const MAX_NAME_AND_DATA: usize = 443;

/// `MAX_SMB_LEN` less the fixed part (70 bytes) and `\MAILSLOT\` (10).
const DATA_BUDGET: usize = 432;
/// Parameter words before the setup words.
const PARAMETER_WORDS: u8 = 14;

mod field {
    use core::ops::Range;
    pub(super) const PROTOCOL: Range<usize> = 0..4;
    pub(super) const COMMAND: usize = 4;
    pub(super) const STATUS: Range<usize> = 5..9;
    pub(super) const FLAGS: usize = 9;
    pub(super) const FLAGS2: Range<usize> = 10..12;
    pub(super) const PID_HIGH: Range<usize> = 12..14;
    pub(super) const TID: Range<usize> = 24..26;
    pub(super) const PID_LOW: Range<usize> = 26..28;
    pub(super) const UID: Range<usize> = 28..30;
    pub(super) const MID: Range<usize> = 30..32;
    pub(super) const WORD_COUNT: usize = 32;
    pub(super) const TOTAL_PARAMETER_COUNT: Range<usize> = 33..35;
    pub(super) const TOTAL_DATA_COUNT: Range<usize> = 35..37;
    pub(super) const MAX_PARAMETER_COUNT: Range<usize> = 37..39;
    pub(super) const MAX_DATA_COUNT: Range<usize> = 39..41;
    pub(super) const MAX_SETUP_COUNT: usize = 41;
    pub(super) const TRANS_FLAGS: Range<usize> = 43..45;
    pub(super) const TIMEOUT: Range<usize> = 45..49;
    pub(super) const PARAMETER_COUNT: Range<usize> = 51..53;
    pub(super) const PARAMETER_OFFSET: Range<usize> = 53..55;
    pub(super) const DATA_COUNT: Range<usize> = 55..57;
    pub(super) const DATA_OFFSET: Range<usize> = 57..59;
    pub(super) const SETUP_COUNT: usize = 59;
    pub(super) const OPCODE: Range<usize> = 61..63;
    pub(super) const PRIORITY: Range<usize> = 63..65;
    pub(super) const CLASS: Range<usize> = 65..67;
    pub(super) const BYTE_COUNT: Range<usize> = 67..69;
}

/// Reads `N` bytes at `range`, or zeros when the range is outside `b` (never
/// after a `new_checked`, which proved the range).
fn array_at<const N: usize>(b: &[u8], range: core::ops::Range<usize>) -> [u8; N] {
    b.get(range).and_then(|s| <[u8; N]>::try_from(s).ok()).unwrap_or([0; N])
}

fn le16(b: &[u8], range: core::ops::Range<usize>) -> u16 {
    u16::from_le_bytes(array_at(b, range))
}

fn le32(b: &[u8], range: core::ops::Range<usize>) -> u32 {
    u32::from_le_bytes(array_at(b, range))
}

fn byte_at(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// [MS-CIFS] 2.2.2.1: an SMB1 command code. A newtype, so an unexpected
/// command is reported with its value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Smb1Command(pub u8);

impl Smb1Command {
    /// 0x25 SMB_COM_TRANSACTION: mailslot writes and named-pipe transactions.
    pub const TRANSACTION: Smb1Command = Smb1Command(0x25);
    /// 0x26 SMB_COM_TRANSACTION_SECONDARY: the rest of a multi-packet one.
    pub const TRANSACTION_SECONDARY: Smb1Command = Smb1Command(0x26);
    /// 0x32 SMB_COM_TRANSACTION2.
    pub const TRANSACTION2: Smb1Command = Smb1Command(0x32);
    /// 0x72 SMB_COM_NEGOTIATE.
    pub const NEGOTIATE: Smb1Command = Smb1Command(0x72);
    /// 0xA0 SMB_COM_NT_TRANSACT.
    pub const NT_TRANSACT: Smb1Command = Smb1Command(0xa0);
}

impl fmt::Debug for Smb1Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match *self {
            Smb1Command::TRANSACTION => "SMB_COM_TRANSACTION",
            Smb1Command::TRANSACTION_SECONDARY => "SMB_COM_TRANSACTION_SECONDARY",
            Smb1Command::TRANSACTION2 => "SMB_COM_TRANSACTION2",
            Smb1Command::NEGOTIATE => "SMB_COM_NEGOTIATE",
            Smb1Command::NT_TRANSACT => "SMB_COM_NT_TRANSACT",
            Smb1Command(n) => return write!(f, "Smb1Command({n:#04x})"),
        })
    }
}

impl fmt::Display for Smb1Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Whether `name` is a mailslot transaction name: `\MAILSLOT\` in any case,
/// then at least one more byte.
pub fn is_mailslot_name(name: &str) -> bool {
    is_mailslot_name_bytes(name.as_bytes())
}

fn is_mailslot_name_bytes(name: &[u8]) -> bool {
    name.len() > MAILSLOT_PREFIX.len()
        && name
            .get(..MAILSLOT_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(MAILSLOT_PREFIX.as_bytes()))
}

/// [MS-MAIL] <2>: the most data Windows writes to one remote computer under
/// `name` (the whole `\MAILSLOT\…` transaction name), so that the SMB part
/// stays within [`MAX_SMB_LEN`]: 432 − roundup4(length of the name after
/// `\MAILSLOT\`). `None` when `name` is not a mailslot name or too long for
/// any data.
pub fn max_data_for(name: &str) -> Option<usize> {
    if !is_mailslot_name(name) {
        return None;
    }
    let rest = name.len().checked_sub(MAILSLOT_PREFIX.len())?;
    let rounded = rest.checked_add(3)? & !3;
    DATA_BUDGET.checked_sub(rounded)
}

/// The most data Windows writes to a domain or to `\\*\` under `name`:
/// [`max_data_for`] capped at [`MAX_BROADCAST_DATA`] (424).
pub fn max_broadcast_data_for(name: &str) -> Option<usize> {
    max_data_for(name).map(|max| max.min(MAX_BROADCAST_DATA))
}

/// [MS-MAIL] 2.1: whether `name`, its NUL and `data_len` bytes fit in one
/// datagram ([`MAX_NAME_AND_DATA`], 443 bytes).
pub fn fits_one_datagram(name: &str, data_len: usize) -> bool {
    name.len()
        .checked_add(1)
        .and_then(|n| n.checked_add(data_len))
        .is_some_and(|n| n <= MAX_NAME_AND_DATA)
}

/// Why an SMB is not an acceptable mailslot write. Kept inside the crate:
/// [`MailslotWritePacket::new_checked`] reports a [`DecodeError`], and the
/// `mailslot` module a drop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// The magic is not `ff 'S' 'M' 'B'`.
    NotSmb,
    /// Another SMB1 command.
    NotTransaction(Smb1Command),
    /// A transaction, but not Write Mail Slot (SetupCount or opcode).
    NotMailslotWrite,
    /// The transaction name does not start with `\MAILSLOT\`.
    NotMailslotName,
    /// DataCount or ParameterCount below its total.
    MultiPacket,
    /// Truncated or malformed.
    Decode(DecodeError),
}

impl From<Rejection> for DecodeError {
    fn from(r: Rejection) -> DecodeError {
        match r {
            Rejection::NotSmb => DecodeError::Malformed("SMB1 magic"),
            Rejection::NotTransaction(_) => DecodeError::Unsupported("SMB1 command other than SMB_COM_TRANSACTION"),
            Rejection::NotMailslotWrite => DecodeError::Unsupported("transaction other than Write Mail Slot"),
            Rejection::NotMailslotName => DecodeError::Unsupported(r"transaction name other than \MAILSLOT\..."),
            Rejection::MultiPacket => DecodeError::Unsupported("multi-packet transaction"),
            Rejection::Decode(e) => e,
        }
    }
}

/// Checks a Write Mail Slot and returns the offset of the name's NUL.
fn check(b: &[u8]) -> Result<usize, Rejection> {
    use DecodeError::{Malformed, Truncated, Unsupported};
    use Rejection::Decode;

    let magic = b.get(field::PROTOCOL).ok_or(Decode(Truncated("SMB1 header")))?;
    if magic != MAGIC {
        return Err(Rejection::NotSmb);
    }
    if b.len() < HEADER_LEN {
        return Err(Decode(Truncated("SMB1 header")));
    }
    let command = Smb1Command(byte_at(b, field::COMMAND));
    if command != Smb1Command::TRANSACTION {
        return Err(Rejection::NotTransaction(command));
    }
    let word_count = *b
        .get(field::WORD_COUNT)
        .ok_or(Decode(Truncated("SMB_COM_TRANSACTION words")))?;
    if word_count < PARAMETER_WORDS {
        return Err(Decode(Malformed("SMB_COM_TRANSACTION WordCount below 14")));
    }
    // WordCount, the words, ByteCount.
    let fixed_len = usize::from(word_count)
        .checked_mul(2)
        .and_then(|words| words.checked_add(field::WORD_COUNT + 1 + 2))
        .ok_or(Decode(Malformed("SMB_COM_TRANSACTION WordCount")))?;
    if b.len() < fixed_len {
        return Err(Decode(Truncated("SMB_COM_TRANSACTION words")));
    }
    let setup_count = byte_at(b, field::SETUP_COUNT);
    if u16::from(word_count) != u16::from(PARAMETER_WORDS).saturating_add(u16::from(setup_count)) {
        return Err(Decode(Malformed(
            "SMB_COM_TRANSACTION WordCount is not 14 + SetupCount",
        )));
    }
    if setup_count != SETUP_COUNT || le16(b, field::OPCODE) != OPCODE_WRITE_MAIL_SLOT {
        return Err(Rejection::NotMailslotWrite);
    }
    if le16(b, field::FLAGS2) & FLAGS2_UNICODE != 0 {
        return Err(Decode(Unsupported("Unicode transaction name")));
    }
    let tail = b.get(NAME_OFFSET..).unwrap_or_default();
    let nul = tail
        .iter()
        .position(|&c| c == 0)
        .ok_or(Decode(Malformed("transaction name without NUL")))?;
    let name = tail.get(..nul).unwrap_or_default();
    if !is_mailslot_name_bytes(name) {
        return Err(Rejection::NotMailslotName);
    }
    if !name.is_ascii() {
        return Err(Decode(Unsupported("non-ASCII mailslot name")));
    }
    let name_end = NAME_OFFSET
        .checked_add(nul)
        .ok_or(Decode(Malformed("transaction name")))?;
    let parameter_count = le16(b, field::PARAMETER_COUNT);
    let data_count = le16(b, field::DATA_COUNT);
    if le16(b, field::TOTAL_DATA_COUNT) != data_count || le16(b, field::TOTAL_PARAMETER_COUNT) != parameter_count {
        return Err(Rejection::MultiPacket);
    }
    if parameter_count != 0 {
        return Err(Decode(Malformed("mailslot write with parameters")));
    }
    if data_count != 0 {
        let data_offset = usize::from(le16(b, field::DATA_OFFSET));
        if data_offset <= name_end {
            return Err(Decode(Malformed("DataOffset inside the transaction name")));
        }
        let data_end = data_offset
            .checked_add(usize::from(data_count))
            .ok_or(Decode(Malformed("DataOffset + DataCount")))?;
        if data_end > b.len() {
            return Err(Decode(Malformed("DataOffset + DataCount past the end")));
        }
    }
    Ok(name_end)
}

fn name_of(b: &[u8], name_end: usize) -> &str {
    b.get(NAME_OFFSET..name_end)
        .and_then(|n| core::str::from_utf8(n).ok())
        .unwrap_or_default()
}

fn data_of(b: &[u8]) -> &[u8] {
    let count = usize::from(le16(b, field::DATA_COUNT));
    if count == 0 {
        return &[];
    }
    let offset = usize::from(le16(b, field::DATA_OFFSET));
    offset
        .checked_add(count)
        .and_then(|end| b.get(offset..end))
        .unwrap_or_default()
}

/// MS-MAIL 2.2.1: a borrowed view of a Write Mail Slot, starting at the SMB
/// header. After [`MailslotWritePacket::new_checked`] no accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct MailslotWritePacket<T: AsRef<[u8]>> {
    buffer: T,
    /// Offset of the NUL after the name.
    name_end: usize,
}

impl<T: AsRef<[u8]>> MailslotWritePacket<T> {
    /// Checks that `buffer` holds one whole Write Mail Slot: magic, command
    /// 0x25, WordCount 17, SetupCount 3, opcode 1, no Unicode flag, a
    /// NUL-terminated ASCII name starting with `\MAILSLOT\` (any case), no
    /// parameters, DataCount equal to TotalDataCount and DataOffset +
    /// DataCount within the buffer, after the name.
    ///
    /// # Errors
    /// `Truncated`, `Malformed`, or `Unsupported` for well-formed SMBs that
    /// are not a single mailslot write (another command or transaction, a
    /// multi-packet one, a non-mailslot name).
    pub fn new_checked(buffer: T) -> Result<MailslotWritePacket<T>, DecodeError> {
        Self::new_classified(buffer).map_err(DecodeError::from)
    }

    /// [`MailslotWritePacket::new_checked`] with the crate's finer reasons.
    pub(crate) fn new_classified(buffer: T) -> Result<MailslotWritePacket<T>, Rejection> {
        let name_end = check(buffer.as_ref())?;
        Ok(MailslotWritePacket { buffer, name_end })
    }

    /// The buffer, given back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Command: always [`Smb1Command::TRANSACTION`] here.
    pub fn command(&self) -> Smb1Command {
        Smb1Command(byte_at(self.b(), field::COMMAND))
    }
    /// Status (0 in a request).
    pub fn status(&self) -> u32 {
        le32(self.b(), field::STATUS)
    }
    /// The header's Flags (Windows 0x18, Samba 0).
    pub fn flags(&self) -> u8 {
        byte_at(self.b(), field::FLAGS)
    }
    /// Flags2 (Windows 0x0004, Samba 0).
    pub fn flags2(&self) -> u16 {
        le16(self.b(), field::FLAGS2)
    }
    /// PIDHigh.
    pub fn pid_high(&self) -> u16 {
        le16(self.b(), field::PID_HIGH)
    }
    /// TID.
    pub fn tid(&self) -> u16 {
        le16(self.b(), field::TID)
    }
    /// PIDLow (Windows 0xFEFF, Samba 0).
    pub fn pid_low(&self) -> u16 {
        le16(self.b(), field::PID_LOW)
    }
    /// UID.
    pub fn uid(&self) -> u16 {
        le16(self.b(), field::UID)
    }
    /// MID.
    pub fn mid(&self) -> u16 {
        le16(self.b(), field::MID)
    }
    /// WordCount: always 17 here.
    pub fn word_count(&self) -> u8 {
        byte_at(self.b(), field::WORD_COUNT)
    }
    /// TotalParameterCount: always 0 here.
    pub fn total_parameter_count(&self) -> u16 {
        le16(self.b(), field::TOTAL_PARAMETER_COUNT)
    }
    /// TotalDataCount: equal to [`MailslotWritePacket::data_count`] here.
    pub fn total_data_count(&self) -> u16 {
        le16(self.b(), field::TOTAL_DATA_COUNT)
    }
    /// MaxParameterCount (Windows 2, Samba 0).
    pub fn max_parameter_count(&self) -> u16 {
        le16(self.b(), field::MAX_PARAMETER_COUNT)
    }
    /// MaxDataCount.
    pub fn max_data_count(&self) -> u16 {
        le16(self.b(), field::MAX_DATA_COUNT)
    }
    /// MaxSetupCount.
    pub fn max_setup_count(&self) -> u8 {
        byte_at(self.b(), field::MAX_SETUP_COUNT)
    }
    /// The transaction's Flags (Windows [`TRANS_NO_RESPONSE`], Samba 0).
    pub fn trans_flags(&self) -> u16 {
        le16(self.b(), field::TRANS_FLAGS)
    }
    /// Timeout in ms (Windows 0, scapy and smbtorture 1000, nmbd 0).
    pub fn timeout(&self) -> u32 {
        le32(self.b(), field::TIMEOUT)
    }
    /// ParameterCount: always 0 here.
    pub fn parameter_count(&self) -> u16 {
        le16(self.b(), field::PARAMETER_COUNT)
    }
    /// ParameterOffset (Windows: equal to DataOffset; Samba 0).
    pub fn parameter_offset(&self) -> u16 {
        le16(self.b(), field::PARAMETER_OFFSET)
    }
    /// DataCount: the message length.
    pub fn data_count(&self) -> u16 {
        le16(self.b(), field::DATA_COUNT)
    }
    /// DataOffset, from the start of the SMB header.
    pub fn data_offset(&self) -> u16 {
        le16(self.b(), field::DATA_OFFSET)
    }
    /// SetupCount: always 3 here.
    pub fn setup_count(&self) -> u8 {
        byte_at(self.b(), field::SETUP_COUNT)
    }
    /// Setup word 0: always [`OPCODE_WRITE_MAIL_SLOT`] here.
    pub fn opcode(&self) -> u16 {
        le16(self.b(), field::OPCODE)
    }
    /// Setup word 1: the priority (ignored by receivers).
    pub fn priority(&self) -> u16 {
        le16(self.b(), field::PRIORITY)
    }
    /// Setup word 2: the class, [`CLASS_2`] (not checked).
    pub fn class(&self) -> u16 {
        le16(self.b(), field::CLASS)
    }
    /// ByteCount as sent (not checked).
    pub fn byte_count(&self) -> u16 {
        le16(self.b(), field::BYTE_COUNT)
    }
    /// The transaction name, `\MAILSLOT\…` as spelled, without its NUL.
    pub fn name(&self) -> &str {
        name_of(self.b(), self.name_end)
    }
    /// Bytes between the name's NUL and the data (Windows: 0-3 zero bytes).
    pub fn padding(&self) -> &[u8] {
        let start = self.name_end.saturating_add(1);
        let end = usize::from(self.data_offset());
        self.b().get(start..end).unwrap_or_default()
    }
    /// The message: DataCount bytes at DataOffset.
    pub fn data(&self) -> &[u8] {
        data_of(self.b())
    }
    /// The end of the data: DataOffset + DataCount, or the end of the name
    /// when DataOffset of an empty message points before it or past the
    /// buffer. Bytes after it are slack the receiver ignores.
    pub fn message_end(&self) -> usize {
        let name_end = self.name_end.saturating_add(1);
        let data_end = usize::from(self.data_offset()).saturating_add(usize::from(self.data_count()));
        if data_end > self.b().len() {
            return name_end;
        }
        data_end.max(name_end)
    }
}

/// The fields in which the senders of a Write Mail Slot differ
/// ([MS-MAIL] 2.2.1 and section 4; vectors.md "Two shapes of a valid write").
///
/// [`WriteShape::WINDOWS`] is what `WriteFile` on Windows sends and our
/// default; [`WriteShape::SAMBA`] is what scapy, Samba's source4 and (with
/// Timeout 0) nmbd send. Parsing fills the fields from the message, so a
/// parsed write re-emits in the shape it came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WriteShape {
    /// The SMB header's Flags.
    pub smb_flags: u8,
    /// The SMB header's Flags2 ([`FLAGS2_UNICODE`] is refused).
    pub flags2: u16,
    /// PIDLow.
    pub pid_low: u16,
    /// MaxParameterCount.
    pub max_parameter_count: u16,
    /// The transaction's Flags.
    pub trans_flags: u16,
    /// Timeout in ms.
    pub timeout: u32,
    /// ParameterOffset equals DataOffset (Windows) rather than 0 (Samba).
    pub parameter_offset_at_data: bool,
    /// Pad after the name so that DataOffset is a multiple of 4 (Windows).
    /// Parsing sets it only when 1-3 pad bytes are present and DataOffset is
    /// aligned, so an already-aligned message reads as unpadded.
    pub align_data: bool,
}

impl WriteShape {
    /// Windows' shape ([MS-MAIL] section 4): Flags 0x18, Flags2 0x0004,
    /// PIDLow 0xFEFF, MaxParameterCount 2, NO_RESPONSE, Timeout 0,
    /// ParameterOffset = DataOffset, data aligned to 4.
    pub const WINDOWS: WriteShape = WriteShape {
        smb_flags: 0x18,
        flags2: 0x0004,
        pid_low: 0xfeff,
        max_parameter_count: 2,
        trans_flags: TRANS_NO_RESPONSE,
        timeout: 0,
        parameter_offset_at_data: true,
        align_data: true,
    };

    /// scapy 2.6.1's defaults, also Samba source4's: everything 0 but
    /// Timeout 1000, ParameterOffset 0, no padding.
    pub const SAMBA: WriteShape = WriteShape {
        smb_flags: 0,
        flags2: 0,
        pid_low: 0,
        max_parameter_count: 0,
        trans_flags: 0,
        timeout: 1000,
        parameter_offset_at_data: false,
        align_data: false,
    };
}

impl Default for WriteShape {
    fn default() -> WriteShape {
        WriteShape::WINDOWS
    }
}

/// MS-MAIL 2.2.1: a Write Mail Slot, owned or borrowing its name and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailslotWriteRepr<'a> {
    /// The transaction name, `\MAILSLOT\…` (ASCII).
    pub name: Cow<'a, str>,
    /// The message.
    pub data: Cow<'a, [u8]>,
    /// Setup word 1 (Windows sends 0, nmbd 1).
    pub priority: u16,
    /// Setup word 2, [`CLASS_2`].
    pub class: u16,
    /// How the rest of the fields are filled.
    pub shape: WriteShape,
}

impl<'a> MailslotWriteRepr<'a> {
    /// A write of `data` to `name` in Windows' shape, priority 0, class 2.
    pub fn new(name: impl Into<Cow<'a, str>>, data: impl Into<Cow<'a, [u8]>>) -> MailslotWriteRepr<'a> {
        MailslotWriteRepr {
            name: name.into(),
            data: data.into(),
            priority: 0,
            class: CLASS_2,
            shape: WriteShape::WINDOWS,
        }
    }

    /// Reads a write from a checked view, borrowing its name and data.
    pub fn parse(p: &MailslotWritePacket<&'a [u8]>) -> MailslotWriteRepr<'a> {
        let b: &'a [u8] = p.buffer;
        let data_offset = usize::from(p.data_offset());
        let pad = data_offset.checked_sub(p.name_end.saturating_add(1));
        let parameter_offset = p.parameter_offset();
        MailslotWriteRepr {
            name: Cow::Borrowed(name_of(b, p.name_end)),
            data: Cow::Borrowed(data_of(b)),
            priority: p.priority(),
            class: p.class(),
            shape: WriteShape {
                smb_flags: p.flags(),
                flags2: p.flags2(),
                pid_low: p.pid_low(),
                max_parameter_count: p.max_parameter_count(),
                trans_flags: p.trans_flags(),
                timeout: p.timeout(),
                parameter_offset_at_data: parameter_offset == p.data_offset(),
                align_data: matches!(pad, Some(1..=3)) && data_offset % 4 == 0,
            },
        }
    }

    /// The same write, owning its name and data.
    pub fn into_owned(self) -> MailslotWriteRepr<'static> {
        MailslotWriteRepr {
            name: Cow::Owned(self.name.into_owned()),
            data: Cow::Owned(self.data.into_owned()),
            priority: self.priority,
            class: self.class,
            shape: self.shape,
        }
    }

    /// Pad bytes between the name's NUL and the data (0 unless
    /// [`WriteShape::align_data`]).
    pub fn pad_len(&self) -> usize {
        if !self.shape.align_data {
            return 0;
        }
        let unpadded = NAME_OFFSET.saturating_add(self.name.len()).saturating_add(1);
        unpadded.wrapping_neg() % 4
    }

    /// DataOffset: the fixed part, the name, its NUL and the pad.
    pub fn data_offset(&self) -> usize {
        NAME_OFFSET
            .saturating_add(self.name.len())
            .saturating_add(1)
            .saturating_add(self.pad_len())
    }

    /// Bytes [`MailslotWriteRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.data_offset().saturating_add(self.data.len())
    }

    /// Writes the SMB into `buf`, which must hold
    /// [`MailslotWriteRepr::buffer_len`] bytes. Size policy ([`max_data_for`])
    /// is the sender's business; this only needs the fields to fit.
    ///
    /// # Errors
    /// `Malformed` for a name that is not an ASCII `\MAILSLOT\…` name without
    /// NUL, a Unicode Flags2, or a message too long for 16-bit offsets;
    /// `Truncated` when `buf` is too short.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), DecodeError> {
        let name = self.name.as_bytes();
        if !is_mailslot_name_bytes(name) || !name.is_ascii() || name.contains(&0) {
            return Err(DecodeError::Malformed(r"not an ASCII \MAILSLOT\ name"));
        }
        if self.shape.flags2 & FLAGS2_UNICODE != 0 {
            return Err(DecodeError::Malformed("Unicode Flags2 on a mailslot write"));
        }
        let too_long = DecodeError::Malformed("mailslot write too long for 16-bit offsets");
        let data_offset = u16::try_from(self.data_offset()).map_err(|_| too_long)?;
        let data_count = u16::try_from(self.data.len()).map_err(|_| too_long)?;
        let byte_count = self
            .buffer_len()
            .checked_sub(NAME_OFFSET)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(too_long)?;
        let out = buf
            .get_mut(..self.buffer_len())
            .ok_or(DecodeError::Truncated("mailslot write buffer"))?;

        let mut fixed = [0u8; NAME_OFFSET];
        fixed[field::PROTOCOL].copy_from_slice(&MAGIC);
        fixed[field::COMMAND] = Smb1Command::TRANSACTION.0;
        fixed[field::FLAGS] = self.shape.smb_flags;
        fixed[field::FLAGS2].copy_from_slice(&self.shape.flags2.to_le_bytes());
        fixed[field::PID_LOW].copy_from_slice(&self.shape.pid_low.to_le_bytes());
        fixed[field::WORD_COUNT] = WORD_COUNT;
        fixed[field::TOTAL_DATA_COUNT].copy_from_slice(&data_count.to_le_bytes());
        fixed[field::MAX_PARAMETER_COUNT].copy_from_slice(&self.shape.max_parameter_count.to_le_bytes());
        fixed[field::TRANS_FLAGS].copy_from_slice(&self.shape.trans_flags.to_le_bytes());
        fixed[field::TIMEOUT].copy_from_slice(&self.shape.timeout.to_le_bytes());
        let parameter_offset = if self.shape.parameter_offset_at_data {
            data_offset
        } else {
            0
        };
        fixed[field::PARAMETER_OFFSET].copy_from_slice(&parameter_offset.to_le_bytes());
        fixed[field::DATA_COUNT].copy_from_slice(&data_count.to_le_bytes());
        fixed[field::DATA_OFFSET].copy_from_slice(&data_offset.to_le_bytes());
        fixed[field::SETUP_COUNT] = SETUP_COUNT;
        fixed[field::OPCODE].copy_from_slice(&OPCODE_WRITE_MAIL_SLOT.to_le_bytes());
        fixed[field::PRIORITY].copy_from_slice(&self.priority.to_le_bytes());
        fixed[field::CLASS].copy_from_slice(&self.class.to_le_bytes());
        fixed[field::BYTE_COUNT].copy_from_slice(&byte_count.to_le_bytes());

        let (head, rest) = out.split_at_mut(NAME_OFFSET);
        head.copy_from_slice(&fixed);
        let (name_out, rest) = rest.split_at_mut(name.len());
        name_out.copy_from_slice(name);
        let (nul_and_pad, data_out) = rest.split_at_mut(self.pad_len().saturating_add(1));
        nul_and_pad.fill(0);
        data_out.copy_from_slice(&self.data);
        Ok(())
    }

    /// The SMB as a fresh vector.
    ///
    /// # Errors
    /// As [`MailslotWriteRepr::emit`].
    pub fn to_vec(&self) -> Result<Vec<u8>, DecodeError> {
        let mut v = vec![0; self.buffer_len()];
        self.emit(&mut v)?;
        Ok(v)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    // [MS-MAIL] section 4, "Protocol Examples": a Windows client writes 36
    // bytes of 0xCA to \MAILSLOT\test1\sample_mailslot (the SMB part of v8).
    const WINDOWS_WRITE: &str = concat!(
        // header: magic, 0x25, status 0, Flags 0x18, Flags2 0x0004, PIDHigh 0,
        // signature 0, reserved 0, TID 0, PIDLow 0xFEFF, UID 0, MID 0
        "ff 53 4d 42 25 00 00 00 00 18 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ff fe 00 00 00 00 ",
        // WordCount 17; TotalParam 0, TotalData 36, MaxParam 2, MaxData 0,
        // MaxSetup 0, Reserved1, Flags 0x0002, Timeout 0, Reserved2
        "11 00 00 24 00 02 00 00 00 00 00 02 00 00 00 00 00 00 00 ",
        // ParamCount 0, ParamOffset 104, DataCount 36, DataOffset 104,
        // SetupCount 3, Reserved3, opcode 1, priority 0, class 2, ByteCount 71
        "00 00 68 00 24 00 68 00 03 00 01 00 00 00 02 00 47 00 ",
        // \MAILSLOT\test1\sample_mailslot NUL, 3 pad bytes
        "5c 4d 41 49 4c 53 4c 4f 54 5c 74 65 73 74 31 5c 73 61 6d 70 6c 65 5f 6d 61 69 6c 73 6c 6f 74 00 00 00 00 ",
        // 36 bytes of data
        "ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca ca",
    );

    // The SMB part of v1 (scapy, Samba shape): "Hello, mailslot!\0" to
    // \MAILSLOT\pipeslot\demo, priority 1.
    const SAMBA_WRITE: &str = concat!(
        // header: all zero but magic and command
        "ff 53 4d 42 25 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ",
        // WordCount 17; TotalParam 0, TotalData 17, MaxParam 0, MaxData 0,
        // MaxSetup 0, Reserved1, Flags 0, Timeout 1000, Reserved2
        "11 00 00 11 00 00 00 00 00 00 00 00 00 e8 03 00 00 00 00 ",
        // ParamCount 0, ParamOffset 0, DataCount 17, DataOffset 93,
        // SetupCount 3, Reserved3, opcode 1, priority 1, class 2, ByteCount 41
        "00 00 00 00 11 00 5d 00 03 00 01 00 01 00 02 00 29 00 ",
        // \MAILSLOT\pipeslot\demo NUL
        "5c 4d 41 49 4c 53 4c 4f 54 5c 70 69 70 65 73 6c 6f 74 5c 64 65 6d 6f 00 ",
        // Hello, mailslot!\0
        "48 65 6c 6c 6f 2c 20 6d 61 69 6c 73 6c 6f 74 21 00",
    );

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn windows_repr() -> MailslotWriteRepr<'static> {
        MailslotWriteRepr::new(r"\MAILSLOT\test1\sample_mailslot", vec![0xca; 36])
    }

    fn samba_repr() -> MailslotWriteRepr<'static> {
        MailslotWriteRepr {
            name: r"\MAILSLOT\pipeslot\demo".into(),
            data: (&b"Hello, mailslot!\0"[..]).into(),
            priority: 1,
            class: CLASS_2,
            shape: WriteShape::SAMBA,
        }
    }

    #[test]
    fn windows_deconstruct() {
        let bytes = hex(WINDOWS_WRITE);
        let p = MailslotWritePacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.command(), Smb1Command::TRANSACTION);
        assert_eq!((p.status(), p.flags(), p.flags2(), p.pid_high()), (0, 0x18, 0x0004, 0));
        assert_eq!((p.tid(), p.pid_low(), p.uid(), p.mid()), (0, 0xfeff, 0, 0));
        assert_eq!(p.word_count(), 17);
        assert_eq!((p.total_parameter_count(), p.total_data_count()), (0, 36));
        assert_eq!(
            (p.max_parameter_count(), p.max_data_count(), p.max_setup_count()),
            (2, 0, 0)
        );
        assert_eq!((p.trans_flags(), p.timeout()), (TRANS_NO_RESPONSE, 0));
        assert_eq!((p.parameter_count(), p.parameter_offset()), (0, 104));
        assert_eq!((p.data_count(), p.data_offset()), (36, 104));
        assert_eq!((p.setup_count(), p.opcode(), p.priority(), p.class()), (3, 1, 0, 2));
        assert_eq!(p.byte_count(), 71);
        assert_eq!(p.name(), r"\MAILSLOT\test1\sample_mailslot");
        assert_eq!(p.padding(), &[0, 0, 0]);
        assert_eq!(p.data(), &[0xca; 36][..]);
        assert_eq!(p.message_end(), bytes.len());
    }

    #[test]
    fn windows_construct() {
        let bytes = hex(WINDOWS_WRITE);
        let mut buf = vec![0xa5; bytes.len()];
        windows_repr().emit(&mut buf).unwrap();
        assert_eq!(buf, bytes);
    }

    #[test]
    fn windows_parse() {
        let bytes = hex(WINDOWS_WRITE);
        let p = MailslotWritePacket::new_checked(&bytes[..]).unwrap();
        let repr = MailslotWriteRepr::parse(&p);
        assert_eq!(repr, windows_repr());
        assert_eq!(repr.shape, WriteShape::WINDOWS);
        assert!(matches!(repr.data, Cow::Borrowed(_)));
    }

    #[test]
    fn windows_emit() {
        let repr = windows_repr();
        assert_eq!((repr.pad_len(), repr.data_offset(), repr.buffer_len()), (3, 104, 140));
        assert_eq!(repr.to_vec().unwrap(), hex(WINDOWS_WRITE));
    }

    #[test]
    fn samba_four_ways() {
        let bytes = hex(SAMBA_WRITE);
        let p = MailslotWritePacket::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.flags(), p.flags2(), p.pid_low(), p.timeout()), (0, 0, 0, 1000));
        assert_eq!((p.parameter_offset(), p.data_offset(), p.byte_count()), (0, 93, 41));
        assert_eq!(p.padding(), b"");
        assert_eq!(p.data(), b"Hello, mailslot!\0");
        let repr = MailslotWriteRepr::parse(&p);
        assert_eq!(repr, samba_repr());
        let mut buf = vec![0xa5; samba_repr().buffer_len()];
        samba_repr().emit(&mut buf).unwrap();
        assert_eq!(buf, bytes);
        assert_eq!(repr.into_owned().to_vec().unwrap(), bytes);
    }

    fn patched(edits: &[(usize, &[u8])]) -> Vec<u8> {
        let mut b = hex(SAMBA_WRITE);
        for (at, bytes) in edits {
            b[*at..*at + bytes.len()].copy_from_slice(bytes);
        }
        b
    }

    fn rejection(b: &[u8]) -> Rejection {
        MailslotWritePacket::new_classified(b).unwrap_err()
    }

    #[test]
    fn rejects_what_is_not_one_mailslot_write() {
        use DecodeError::*;
        assert_eq!(rejection(&patched(&[(0, b"\xfe")])), Rejection::NotSmb);
        assert_eq!(
            rejection(&patched(&[(4, b"\x32")])),
            Rejection::NotTransaction(Smb1Command::TRANSACTION2)
        );
        // a named-pipe transaction: WordCount 16, SetupCount 2
        assert_eq!(
            rejection(&patched(&[(32, b"\x10"), (59, b"\x02")])),
            Rejection::NotMailslotWrite
        );
        // opcode 2 (Peek) is not a write
        assert_eq!(rejection(&patched(&[(61, b"\x02")])), Rejection::NotMailslotWrite);
        assert_eq!(rejection(&patched(&[(69, br"\PIPESLOT\")])), Rejection::NotMailslotName);
        assert_eq!(rejection(&patched(&[(35, b"\x20")])), Rejection::MultiPacket);
        assert_eq!(rejection(&patched(&[(33, b"\x01")])), Rejection::MultiPacket);
        assert!(matches!(
            rejection(&patched(&[(33, b"\x01"), (51, b"\x01")])),
            Rejection::Decode(Malformed(_))
        ));
        assert!(matches!(
            rejection(&patched(&[(32, b"\x12")])),
            Rejection::Decode(Malformed(_))
        ));
        assert!(matches!(
            rejection(&patched(&[(32, b"\x0d")])),
            Rejection::Decode(Malformed(_))
        ));
        assert!(matches!(
            rejection(&patched(&[(11, b"\x80")])),
            Rejection::Decode(Unsupported(_))
        ));
        assert!(matches!(
            rejection(&patched(&[(57, b"\x00\x02")])),
            Rejection::Decode(Malformed(_))
        ));
        assert!(matches!(
            rejection(&patched(&[(57, b"\x50")])),
            Rejection::Decode(Malformed(_))
        ));
        assert!(matches!(
            rejection(&patched(&[(35, b"\x12"), (55, b"\x12")])),
            Rejection::Decode(Malformed(_))
        ));
        assert!(matches!(
            rejection(&patched(&[(80, b"\xc9")])),
            Rejection::Decode(Unsupported(_))
        ));
        // the name runs to the end of the buffer without a NUL
        let b = hex(SAMBA_WRITE);
        assert!(matches!(rejection(&b[..85]), Rejection::Decode(Malformed(_))));
        for len in 0..92 {
            assert!(MailslotWritePacket::new_checked(&b[..len]).is_err(), "len {len}");
        }
        // new_checked reports a DecodeError for each reason
        assert_eq!(
            MailslotWritePacket::new_checked(&patched(&[(0, b"\xfe")])[..]).unwrap_err(),
            Malformed("SMB1 magic")
        );
        assert!(matches!(
            MailslotWritePacket::new_checked(&patched(&[(4, b"\x72")])[..]),
            Err(Unsupported(_))
        ));
    }

    #[test]
    fn accepts_what_receivers_must_accept() {
        // lower-case prefix, priority/class/timeout/ByteCount ignored,
        // an empty message with DataOffset 0, slack after the data
        let mut b = patched(&[
            (69, br"\mailslot\"),
            (63, b"\x07"),
            (65, b"\x09"),
            (45, b"\xff"),
            (67, b"\xff\xff"),
        ]);
        b.extend_from_slice(b"slack");
        let p = MailslotWritePacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.name(), r"\mailslot\pipeslot\demo");
        assert_eq!(p.data(), b"Hello, mailslot!\0");
        assert_eq!(p.message_end(), b.len() - 5);
        let empty = patched(&[(35, b"\x00"), (55, b"\x00"), (57, b"\x00")]);
        let p = MailslotWritePacket::new_checked(&empty[..]).unwrap();
        assert_eq!(p.data(), b"");
        assert_eq!(p.padding(), b"");
    }

    #[test]
    fn empty_windows_write_keeps_its_pad() {
        // found by the smb1_mailslot_txn fuzzer: an empty message still has
        // Windows' pad, and the message ends at DataOffset, not at the name
        let repr = MailslotWriteRepr::new(r"\MAILSLOT\ipt", &b""[..]);
        let bytes = repr.to_vec().unwrap();
        assert_eq!((repr.pad_len(), bytes.len()), (1, 84));
        let p = MailslotWritePacket::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.padding(), p.data(), p.message_end()), (&[0][..], &b""[..], 84));
        assert_eq!(MailslotWriteRepr::parse(&p), repr);
    }

    #[test]
    fn emit_refuses_bad_reprs() {
        let mut buf = vec![0; 200];
        for name in [r"\PIPE\x", r"\MAILSLOT\", "\\MAILSLOT\\a\0b", "\\MAILSLOT\\caf\u{e9}"] {
            let r = MailslotWriteRepr::new(name, &b"x"[..]);
            assert!(matches!(r.emit(&mut buf), Err(DecodeError::Malformed(_))), "{name}");
        }
        let r = MailslotWriteRepr::new(r"\MAILSLOT\a", vec![0; 70_000]);
        assert!(matches!(r.to_vec(), Err(DecodeError::Malformed(_))));
        let mut r = MailslotWriteRepr::new(r"\MAILSLOT\a", &b"x"[..]);
        assert!(matches!(r.emit(&mut buf[..10]), Err(DecodeError::Truncated(_))));
        r.shape.flags2 = FLAGS2_UNICODE;
        assert!(matches!(r.emit(&mut buf), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn size_rules() {
        // [MS-MAIL] <2>: 432 - roundup4(len after \MAILSLOT\)
        assert_eq!(max_data_for(r"\MAILSLOT\ps\big"), Some(424));
        assert_eq!(max_data_for(r"\mailslot\abcd"), Some(428));
        assert_eq!(max_data_for(r"\MAILSLOT\test1\sample_mailslot"), Some(432 - 24));
        assert_eq!(max_data_for(r"\MAILSLOT\"), None);
        assert_eq!(max_data_for(r"\PIPE\x"), None);
        assert_eq!(max_data_for(&format!(r"\MAILSLOT\{}", "a".repeat(432))), Some(0));
        assert_eq!(max_data_for(&format!(r"\MAILSLOT\{}", "a".repeat(433))), None);
        assert_eq!(max_broadcast_data_for(r"\MAILSLOT\abcd"), Some(424));
        assert_eq!(max_broadcast_data_for(r"\MAILSLOT\test1\sample_mailslot"), Some(408));
        assert!(fits_one_datagram(r"\MAILSLOT\ps\big", 424 + 2));
        assert!(!fits_one_datagram(r"\MAILSLOT\ps\big", 424 + 3));
        // a write at the limit is exactly 512 bytes in Windows' shape
        for n in 1..=40 {
            let name = format!(r"\MAILSLOT\{}", "n".repeat(n));
            let max = max_data_for(&name).unwrap();
            let r = MailslotWriteRepr::new(name.as_str(), vec![0; max]);
            assert_eq!(r.buffer_len(), MAX_SMB_LEN, "{name}");
            assert!(fits_one_datagram(&name, max));
        }
    }

    #[test]
    fn debug_names() {
        assert_eq!(format!("{:?}", Smb1Command::TRANSACTION), "SMB_COM_TRANSACTION");
        assert_eq!(Smb1Command(0x99).to_string(), "Smb1Command(0x99)");
        assert_eq!(WriteShape::default(), WriteShape::WINDOWS);
    }
}
