//! A whole mailslot datagram: an RFC 1002 4.4.1 NetBIOS datagram whose user
//! data is one [MS-MAIL] 2.2.1 Write Mail Slot, as sent to UDP port 138.
//!
//! [`parse_datagram`] turns a UDP payload into the datagram header and a view
//! of the write, or tells why a receiver drops it ([`DropReason`]: fragments,
//! error and query datagrams, other SMBs, malformed bytes; [MS-MAIL] 3.2.5.1
//! "ignore and discard"). [`MailslotDatagramRepr`] builds one from fields.
//!
//! ```text
//! UDP payload
//!  0  NetBIOS datagram header, 14 bytes       (netbios::DatagramPacket)
//! 14  source and destination names, 34 bytes each without scope
//! 82  SMB_COM_TRANSACTION Write Mail Slot     (smb1::MailslotWritePacket)
//! ```

#![warn(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use crate::wire::netbios::{DatagramPacket, DatagramRepr, DatagramType};
use crate::wire::smb1::{MailslotWritePacket, MailslotWriteRepr, Rejection, Smb1Command};
use crate::wire::DecodeError;

/// Why a received datagram is not delivered to a mailslot. Each is counted
/// and dropped; none is answered ([MS-MAIL] 3.2.5.1, RFC 1002 5.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// RFC 1002 4.4.3/4.4.4: an error or query message, or a type RFC 1002
    /// does not define; it carries no user data.
    #[error("NetBIOS datagram type {0} carries no user data")]
    NotDataDatagram(DatagramType),
    /// RFC 1002 4.4.1: F clear, M set or PACKET_OFFSET not 0. Mail is never
    /// reassembled ([MS-MAIL] 3.1.5).
    #[error("NetBIOS datagram fragment")]
    Fragment,
    /// The user data does not start with `ff 'S' 'M' 'B'`.
    #[error("user data is not SMB1")]
    NotSmb,
    /// An SMB1 command other than SMB_COM_TRANSACTION.
    #[error("SMB1 command {0} is not SMB_COM_TRANSACTION")]
    NotTransaction(Smb1Command),
    /// A transaction, but not a Write Mail Slot (SetupCount or opcode).
    #[error("transaction is not a Write Mail Slot")]
    NotMailslotWrite,
    /// The transaction name does not start with `\MAILSLOT\`.
    #[error(r"transaction name is not \MAILSLOT\...")]
    NotMailslotName,
    /// One part of a multi-packet transaction ([MS-MAIL] 3.1.5).
    #[error("multi-packet transaction")]
    MultiPacket,
    /// Truncated or malformed bytes, in the NetBIOS header or the SMB.
    #[error(transparent)]
    Malformed(DecodeError),
}

impl DropReason {
    /// A short fixed label for counters and logs.
    pub fn label(&self) -> &'static str {
        match self {
            DropReason::NotDataDatagram(_) => "not-data-datagram",
            DropReason::Fragment => "fragment",
            DropReason::NotSmb => "not-smb",
            DropReason::NotTransaction(_) => "not-transaction",
            DropReason::NotMailslotWrite => "not-mailslot-write",
            DropReason::NotMailslotName => "not-mailslot-name",
            DropReason::MultiPacket => "multi-packet",
            DropReason::Malformed(_) => "malformed",
        }
    }
}

impl From<Rejection> for DropReason {
    fn from(r: Rejection) -> DropReason {
        match r {
            Rejection::NotSmb => DropReason::NotSmb,
            Rejection::NotTransaction(c) => DropReason::NotTransaction(c),
            Rejection::NotMailslotWrite => DropReason::NotMailslotWrite,
            Rejection::NotMailslotName => DropReason::NotMailslotName,
            Rejection::MultiPacket => DropReason::MultiPacket,
            Rejection::Decode(e) => DropReason::Malformed(e),
        }
    }
}

/// Parses a UDP payload into the datagram header and a view of the mailslot
/// write it carries (the view's buffer is the SMB part of `payload`).
///
/// # Errors
/// [`DropReason`] telling why the datagram must be dropped.
pub fn parse_datagram(payload: &[u8]) -> Result<(DatagramRepr, MailslotWritePacket<&[u8]>), DropReason> {
    let msg_type =
        DatagramType::of(payload).ok_or(DropReason::Malformed(DecodeError::Truncated("NetBIOS datagram")))?;
    if !msg_type.is_data() {
        return Err(DropReason::NotDataDatagram(msg_type));
    }
    let dgram = DatagramPacket::new_checked(payload).map_err(DropReason::Malformed)?;
    if dgram.is_fragment() {
        return Err(DropReason::Fragment);
    }
    let smb = payload.get(dgram.header_len()..).unwrap_or_default();
    let write = MailslotWritePacket::new_classified(smb)?;
    Ok((DatagramRepr::parse(&dgram), write))
}

/// A whole mailslot datagram, owned or borrowing the message: NetBIOS header
/// (RFC 1002 4.4.1) and Write Mail Slot (MS-MAIL 2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailslotDatagramRepr<'a> {
    /// The NetBIOS datagram header.
    pub datagram: DatagramRepr,
    /// The mailslot write in its user data.
    pub write: MailslotWriteRepr<'a>,
}

impl<'a> MailslotDatagramRepr<'a> {
    /// Parses a UDP payload, borrowing the name and the message from it.
    ///
    /// # Errors
    /// As [`parse_datagram`].
    pub fn parse(payload: &'a [u8]) -> Result<MailslotDatagramRepr<'a>, DropReason> {
        let (datagram, write) = parse_datagram(payload)?;
        Ok(MailslotDatagramRepr {
            datagram,
            write: MailslotWriteRepr::parse(&write),
        })
    }

    /// The same datagram, owning its name and message.
    pub fn into_owned(self) -> MailslotDatagramRepr<'static> {
        MailslotDatagramRepr {
            datagram: self.datagram,
            write: self.write.into_owned(),
        }
    }

    /// Bytes [`MailslotDatagramRepr::emit`] writes: the UDP payload's length.
    pub fn buffer_len(&self) -> usize {
        self.datagram.buffer_len().saturating_add(self.write.buffer_len())
    }

    /// Writes the whole datagram into `buf`, which must hold
    /// [`MailslotDatagramRepr::buffer_len`] bytes. DGM_LENGTH, the SMB
    /// counts and offsets are computed.
    ///
    /// # Errors
    /// As [`DatagramRepr::emit`] and [`MailslotWriteRepr::emit`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), DecodeError> {
        let smb_len = self.write.buffer_len();
        self.datagram.emit(buf, smb_len)?;
        let smb = buf
            .get_mut(self.datagram.buffer_len()..)
            .ok_or(DecodeError::Truncated("mailslot datagram buffer"))?;
        self.write.emit(smb)
    }

    /// The whole datagram as a fresh vector.
    ///
    /// # Errors
    /// As [`MailslotDatagramRepr::emit`].
    pub fn to_vec(&self) -> Result<Vec<u8>, DecodeError> {
        let mut v = vec![0; self.buffer_len()];
        self.emit(&mut v)?;
        Ok(v)
    }
}

/// Builds the UDP payload of one mailslot write from its two parts.
///
/// # Errors
/// As [`MailslotDatagramRepr::emit`].
pub fn build_datagram(datagram: &DatagramRepr, write: &MailslotWriteRepr<'_>) -> Result<Vec<u8>, DecodeError> {
    let mut v = vec![0; datagram.buffer_len().saturating_add(write.buffer_len())];
    datagram.emit(&mut v, write.buffer_len())?;
    let smb = v
        .get_mut(datagram.buffer_len()..)
        .ok_or(DecodeError::Truncated("mailslot datagram buffer"))?;
    write.emit(smb)?;
    Ok(v)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use core::net::Ipv4Addr;
    use std::borrow::Cow;

    use super::*;
    use crate::wire::netbios::{DatagramFlags, NetbiosName, NodeType, Scope};
    use crate::wire::smb1::{max_data_for, WriteShape, CLASS_2};

    // Golden datagrams: testdata/mailslot/README.md says where each came from.
    macro_rules! vector {
        ($file:literal) => {
            (
                $file,
                include_str!(concat!("../../testdata/mailslot/", $file, ".hex")),
            )
        };
    }

    const V1: (&str, &str) = vector!("v1_unique_short");
    const V2: (&str, &str) = vector!("v2_group_domain");
    const V3: (&str, &str) = vector!("v3_group_424");
    const V4: (&str, &str) = vector!("v4_unique_empty");
    const V5: (&str, &str) = vector!("v5_browse_1d");
    const V6: (&str, &str) = vector!("v6_nmbd_getdc_reply.captured");
    const V7: (&str, &str) = vector!("v7_nmbd_browse_1e.captured");
    const V8: (&str, &str) = vector!("v8_win_msmail_example");
    const V9: (&str, &str) = vector!("v9_win_group_512");
    const V10: (&str, &str) = vector!("v10_nmbd_domain_announce.captured");
    const V11: (&str, &str) = vector!("v11_smbtorture_netlogon_port13800.captured");

    const X1: (&str, &str) = vector!("invalid/x1_more_fragments");
    const X2: (&str, &str) = vector!("invalid/x2_continuation");
    const X3: (&str, &str) = vector!("invalid/x3_not_trans");
    const X4: (&str, &str) = vector!("invalid/x4_dataoffset_past_end");
    const X5: (&str, &str) = vector!("invalid/x5_datacount_past_end");
    const X6: (&str, &str) = vector!("invalid/x6_truncated");
    const X7: (&str, &str) = vector!("invalid/x7_not_mailslot_name");
    const X8: (&str, &str) = vector!("invalid/x8_bad_magic");

    fn unhex(s: &str) -> Vec<u8> {
        let pairs = s.trim().as_bytes().chunks_exact(2);
        assert!(pairs.remainder().is_empty());
        pairs
            .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// byte i = (7i + 3) & 0xff: v3's and v9's 424 bytes.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| ((i * 7 + 3) & 0xff) as u8).collect()
    }

    enum Data {
        Exact(&'static [u8]),
        Pattern(usize),
        Fill(u8, usize),
        /// Captured: length and first byte (the browser or netlogon opcode).
        Starts(u8, usize),
    }

    /// One row of vectors.md's table.
    struct Expect {
        vector: (&'static str, &'static str),
        len: usize,
        msg_type: DatagramType,
        flags: u8,
        dgm_id: u16,
        source_ip: [u8; 4],
        source_port: u16,
        source: &'static str,
        destination: &'static str,
        name: &'static str,
        priority: u16,
        timeout: u32,
        data_offset: u16,
        data: Data,
        /// The whole shape, for the generated vectors.
        shape: Option<WriteShape>,
    }

    const LOCAL: [u8; 4] = [127, 0, 0, 1];
    const NMBD: [u8; 4] = [10, 99, 0, 1];
    const TORTURE: [u8; 4] = [10, 99, 0, 2];
    const UNIQUE: DatagramType = DatagramType::DIRECT_UNIQUE;
    const GROUP: DatagramType = DatagramType::DIRECT_GROUP;
    const SAMBA: Option<WriteShape> = Some(WriteShape::SAMBA);

    fn table() -> Vec<Expect> {
        use Data::*;
        #[rustfmt::skip]
        let rows = vec![
            Expect { vector: V1, len: 192, msg_type: UNIQUE, flags: 0x02, dgm_id: 0x1234, source_ip: LOCAL,
                source_port: 138, source: "WRITERHOST<00>", destination: "TARGETHOST<00>",
                name: r"\MAILSLOT\pipeslot\demo", priority: 1, timeout: 1000, data_offset: 93,
                data: Exact(b"Hello, mailslot!\0"), shape: SAMBA },
            Expect { vector: V2, len: 192, msg_type: GROUP, flags: 0x02, dgm_id: 0x2345, source_ip: LOCAL,
                source_port: 138, source: "WRITERHOST<00>", destination: "MSLAB<00>",
                name: r"\MAILSLOT\pipeslot\bcast", priority: 0, timeout: 1000, data_offset: 94,
                data: Exact(b"domain broadcast"), shape: SAMBA },
            Expect { vector: V3, len: 592, msg_type: GROUP, flags: 0x02, dgm_id: 0x3456, source_ip: LOCAL,
                source_port: 138, source: "WRITERHOST<00>", destination: "MSLAB<00>",
                name: r"\MAILSLOT\ps\big", priority: 0, timeout: 1000, data_offset: 86,
                data: Pattern(424), shape: SAMBA },
            Expect { vector: V4, len: 176, msg_type: UNIQUE, flags: 0x02, dgm_id: 0x4567, source_ip: LOCAL,
                source_port: 138, source: "WRITERHOST<00>", destination: "TARGETHOST<00>",
                name: r"\MAILSLOT\pipeslot\empty", priority: 0, timeout: 1000, data_offset: 94,
                data: Exact(b""), shape: SAMBA },
            Expect { vector: V5, len: 174, msg_type: UNIQUE, flags: 0x02, dgm_id: 0x5678, source_ip: LOCAL,
                source_port: 138, source: "WRITERHOST<00>", destination: "MSLAB<1D>",
                name: r"\MAILSLOT\BROWSE", priority: 0, timeout: 1000, data_offset: 86,
                data: Exact(&[0x09, 0x04, 0x01, 0x00, 0x00, 0x00]), shape: SAMBA },
            Expect { vector: V6, len: 226, msg_type: UNIQUE, flags: 0x0a, dgm_id: 0x16c3, source_ip: NMBD,
                source_port: 138, source: "MSLABNMBD<00>", destination: "MSLABPEER<00>",
                name: r"\MAILSLOT\NET\GETDC123", priority: 1, timeout: 0, data_offset: 92,
                data: Starts(0x0c, 52), shape: None },
            Expect { vector: V7, len: 221, msg_type: GROUP, flags: 0x0a, dgm_id: 0x16c7, source_ip: NMBD,
                source_port: 138, source: "MSLABNMBD<00>", destination: "MSLAB<1E>",
                name: r"\MAILSLOT\BROWSE", priority: 1, timeout: 0, data_offset: 86,
                data: Starts(0x0f, 53), shape: None },
            Expect { vector: V8, len: 222, msg_type: UNIQUE, flags: 0x0e, dgm_id: 0x6789, source_ip: LOCAL,
                source_port: 138, source: "WINCLIENT<00>", destination: "TARGETHOST<00>",
                name: r"\MAILSLOT\test1\sample_mailslot", priority: 0, timeout: 0, data_offset: 104,
                data: Fill(0xca, 36), shape: Some(WriteShape::WINDOWS) },
            Expect { vector: V9, len: 594, msg_type: GROUP, flags: 0x0e, dgm_id: 0x789a, source_ip: LOCAL,
                source_port: 138, source: "WINCLIENT<00>", destination: "MSLAB<00>",
                name: r"\MAILSLOT\ps\big", priority: 0, timeout: 0, data_offset: 88,
                data: Pattern(424), shape: Some(WriteShape::WINDOWS) },
            Expect { vector: V10, len: 211, msg_type: GROUP, flags: 0x0a, dgm_id: 0x1ed4, source_ip: NMBD,
                source_port: 138, source: "TARGETHOST<00>", destination: r"\x01\x02__MSBROWSE__\x02<01>",
                name: r"\MAILSLOT\BROWSE", priority: 1, timeout: 0, data_offset: 86,
                data: Starts(0x0c, 43), shape: None },
            Expect { vector: V11, len: 246, msg_type: UNIQUE, flags: 0x0e, dgm_id: 0x51dc, source_ip: TORTURE,
                source_port: 13800, source: "TORTURE_TEST<00>", destination: "MSLAB<1C>",
                name: r"\MAILSLOT\NET\NETLOGON", priority: 1, timeout: 1000, data_offset: 92,
                data: Starts(0x07, 72), shape: None },
        ];
        rows
    }

    #[test]
    fn decodes_every_vector() {
        for e in table() {
            let (file, hex) = e.vector;
            let bytes = unhex(hex);
            assert_eq!(bytes.len(), e.len, "{file}");
            let (dgram, write) = parse_datagram(&bytes).unwrap_or_else(|r| panic!("{file}: {r}"));
            assert_eq!(dgram.msg_type, e.msg_type, "{file}");
            assert_eq!(dgram.flags, DatagramFlags(e.flags), "{file}");
            assert!(
                dgram.flags.first() && !dgram.flags.more() && !dgram.is_fragment(),
                "{file}"
            );
            assert_eq!(dgram.dgm_id, e.dgm_id, "{file}");
            assert_eq!(dgram.source_ip, Ipv4Addr::from(e.source_ip), "{file}");
            assert_eq!(dgram.source_port, e.source_port, "{file}");
            assert_eq!(dgram.packet_offset, 0, "{file}");
            assert_eq!(dgram.source_name.to_string(), e.source, "{file}");
            assert_eq!(dgram.destination_name.to_string(), e.destination, "{file}");
            assert!(
                dgram.source_scope.is_empty() && dgram.destination_scope.is_empty(),
                "{file}"
            );
            // DGM_LENGTH = UDP payload length - 14; the SMB starts at 82
            let view = DatagramPacket::new_checked(&bytes[..]).unwrap();
            assert_eq!(usize::from(view.dgm_length()), e.len - 14, "{file}");
            assert_eq!(view.header_len(), 82, "{file}");
            assert_eq!(view.user_data(), write.into_inner(), "{file}");

            assert_eq!(write.name(), e.name, "{file}");
            assert_eq!((write.opcode(), write.class()), (1, CLASS_2), "{file}");
            assert_eq!(write.priority(), e.priority, "{file}");
            assert_eq!(write.timeout(), e.timeout, "{file}");
            assert_eq!(write.data_offset(), e.data_offset, "{file}");
            assert_eq!(write.data_count(), write.total_data_count(), "{file}");
            assert_eq!(usize::from(write.data_count()), write.data().len(), "{file}");
            match e.data {
                Data::Exact(d) => assert_eq!(write.data(), d, "{file}"),
                Data::Pattern(n) => assert_eq!(write.data(), pattern(n), "{file}"),
                Data::Fill(b, n) => assert_eq!(write.data(), vec![b; n], "{file}"),
                Data::Starts(b, n) => {
                    assert_eq!(write.data().len(), n, "{file}");
                    assert_eq!(write.data()[0], b, "{file}");
                }
            }
            let repr = MailslotWriteRepr::parse(&write);
            if let Some(shape) = e.shape {
                assert_eq!(repr.shape, shape, "{file}");
            }
            // Windows counts the pad in ByteCount, the others have none
            assert_eq!(
                usize::from(write.byte_count()),
                e.name.len() + 1 + write.padding().len() + write.data().len()
            );
            assert!(write.padding().iter().all(|&b| b == 0), "{file}");
        }
    }

    #[test]
    fn smb_parts_stay_within_windows_limits() {
        for e in table() {
            let bytes = unhex(e.vector.1);
            let (_, write) = parse_datagram(&bytes).unwrap();
            assert!(write.into_inner().len() <= 512, "{}", e.vector.0);
        }
        let v9 = unhex(V9.1);
        assert_eq!(v9.len() - 82, 512);
        assert_eq!(max_data_for(r"\MAILSLOT\ps\big"), Some(424));
    }

    /// The fields gen_vectors.py gives scapy for a generated vector.
    #[allow(clippy::too_many_arguments)]
    fn generated(
        msg_type: DatagramType,
        dgm_id: u16,
        flags: u8,
        source: &str,
        destination: (&str, u8),
        name: &'static str,
        data: Vec<u8>,
        priority: u16,
        shape: WriteShape,
    ) -> MailslotDatagramRepr<'static> {
        let mut datagram = DatagramRepr::new(
            msg_type,
            dgm_id,
            Ipv4Addr::LOCALHOST,
            138,
            NetbiosName::new(source, 0x00).unwrap(),
            NetbiosName::new(destination.0, destination.1).unwrap(),
        );
        datagram.flags = DatagramFlags(flags);
        let mut write = MailslotWriteRepr::new(name, data);
        write.priority = priority;
        write.shape = shape;
        MailslotDatagramRepr { datagram, write }
    }

    #[test]
    fn encodes_samba_shape_v1_to_v5() {
        let s = WriteShape::SAMBA;
        let w = "WRITERHOST";
        #[rustfmt::skip]
        let cases = [
            (V1, generated(UNIQUE, 0x1234, 0x02, w, ("TARGETHOST", 0x00), r"\MAILSLOT\pipeslot\demo",
                b"Hello, mailslot!\0".to_vec(), 1, s)),
            (V2, generated(GROUP, 0x2345, 0x02, w, ("MSLAB", 0x00), r"\MAILSLOT\pipeslot\bcast",
                b"domain broadcast".to_vec(), 0, s)),
            (V3, generated(GROUP, 0x3456, 0x02, w, ("MSLAB", 0x00), r"\MAILSLOT\ps\big", pattern(424), 0, s)),
            (V4, generated(UNIQUE, 0x4567, 0x02, w, ("TARGETHOST", 0x00), r"\MAILSLOT\pipeslot\empty",
                vec![], 0, s)),
            (V5, generated(UNIQUE, 0x5678, 0x02, w, ("MSLAB", 0x1d), r"\MAILSLOT\BROWSE",
                vec![0x09, 0x04, 0x01, 0x00, 0x00, 0x00], 0, s)),
        ];
        for ((file, hex), repr) in cases {
            let expected = unhex(hex);
            assert_eq!(repr.buffer_len(), expected.len(), "{file}");
            let mut buf = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut buf).unwrap();
            assert_eq!(buf, expected, "{file}");
            assert_eq!(build_datagram(&repr.datagram, &repr.write).unwrap(), expected, "{file}");
            assert_eq!(MailslotDatagramRepr::parse(&expected).unwrap(), repr, "{file}");
        }
    }

    #[test]
    fn encodes_windows_shape_v8_v9() {
        let cases = [
            (
                V8,
                generated(
                    UNIQUE,
                    0x6789,
                    0x0e,
                    "WINCLIENT",
                    ("TARGETHOST", 0x00),
                    r"\MAILSLOT\test1\sample_mailslot",
                    vec![0xca; 36],
                    0,
                    WriteShape::WINDOWS,
                ),
            ),
            (
                V9,
                generated(
                    GROUP,
                    0x789a,
                    0x0e,
                    "WINCLIENT",
                    ("MSLAB", 0x00),
                    r"\MAILSLOT\ps\big",
                    pattern(424),
                    0,
                    WriteShape::WINDOWS,
                ),
            ),
        ];
        for ((file, hex), repr) in &cases {
            let expected = unhex(hex);
            let mut buf = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut buf).unwrap();
            assert_eq!(buf, expected, "{file}");
            assert_eq!(&MailslotDatagramRepr::parse(&expected).unwrap(), repr, "{file}");
        }
        // the defaults of the two constructors are Windows' (flags 0x0E)
        let (_, v8) = &cases[0];
        let fresh = MailslotDatagramRepr {
            datagram: DatagramRepr::new(
                UNIQUE,
                0x6789,
                Ipv4Addr::LOCALHOST,
                138,
                NetbiosName::new("WINCLIENT", 0).unwrap(),
                NetbiosName::new("TARGETHOST", 0).unwrap(),
            ),
            write: MailslotWriteRepr::new(r"\MAILSLOT\test1\sample_mailslot", vec![0xca; 36]),
        };
        assert_eq!(&fresh, v8);
        assert_eq!(fresh.datagram.flags, DatagramFlags::whole(NodeType::H_NODE));
    }

    #[test]
    fn every_vector_reemits_byte_for_byte() {
        // all senders leave the fields a repr does not keep at 0, so even the
        // captured datagrams (random DGM_ID, nmbd's Timeout 0) come back exact
        for (file, hex) in [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11] {
            let bytes = unhex(hex);
            let repr = MailslotDatagramRepr::parse(&bytes).unwrap();
            assert!(matches!(repr.write.data, Cow::Borrowed(_)), "{file}");
            assert_eq!(repr.to_vec().unwrap(), bytes, "{file}");
            assert_eq!(repr.clone().into_owned(), repr, "{file}");
        }
    }

    #[test]
    fn drops_every_invalid_vector_for_its_reason() {
        use DecodeError::{Malformed, Truncated};
        let cases = [
            (X1, "fragment"),
            (X2, "fragment"),
            (X3, "not-transaction"),
            (X4, "malformed"),
        ];
        let more = [
            (X5, "malformed"),
            (X6, "malformed"),
            (X7, "not-mailslot-name"),
            (X8, "not-smb"),
        ];
        for ((file, hex), label) in cases.into_iter().chain(more) {
            let reason = parse_datagram(&unhex(hex)).unwrap_err();
            assert_eq!(reason.label(), label, "{file}: {reason}");
        }
        let reason = |v: (&str, &str)| parse_datagram(&unhex(v.1)).unwrap_err();
        assert_eq!(reason(X3), DropReason::NotTransaction(Smb1Command::TRANSACTION2));
        assert!(matches!(reason(X4), DropReason::Malformed(Malformed(_))));
        assert!(matches!(reason(X5), DropReason::Malformed(Malformed(_))));
        assert!(matches!(reason(X6), DropReason::Malformed(Truncated(_))));
        assert_eq!(reason(X8), DropReason::NotSmb);
        assert!(MailslotDatagramRepr::parse(&unhex(X1.1)).is_err());
    }

    #[test]
    fn drops_other_datagrams() {
        let v1 = unhex(V1.1);
        // RFC 1002 4.4.3 error datagram: 11 bytes, no names
        let error = [0x13, 0x02, 0x12, 0x34, 127, 0, 0, 1, 0x00, 0x8a, 0x82];
        assert_eq!(
            parse_datagram(&error).unwrap_err(),
            DropReason::NotDataDatagram(DatagramType::ERROR)
        );
        // RFC 1002 4.4.4 query request: header and a destination name
        let mut query = v1[..10].to_vec();
        query[0] = 0x14;
        query.extend_from_slice(&v1[48..82]);
        assert_eq!(parse_datagram(&query).unwrap_err().label(), "not-data-datagram");
        assert!(matches!(parse_datagram(&[]), Err(DropReason::Malformed(_))));
        assert!(matches!(parse_datagram(&v1[..50]), Err(DropReason::Malformed(_))));
        // a broadcast datagram is fine
        let mut broadcast = v1.clone();
        broadcast[0] = 0x12;
        assert_eq!(parse_datagram(&broadcast).unwrap().0.msg_type, DatagramType::BROADCAST);
        // every prefix of every vector is dropped, none panics
        for (_, hex) in [V1, V3, V8, V10] {
            let bytes = unhex(hex);
            for len in 0..bytes.len() {
                let _ = parse_datagram(&bytes[..len]);
            }
        }
        assert_eq!(
            DropReason::NotDataDatagram(DatagramType::ERROR).to_string(),
            "NetBIOS datagram type ERROR (0x13) carries no user data"
        );
    }

    #[test]
    fn property_round_trip() {
        // A deterministic sweep instead of a generator: name lengths around
        // every alignment, sizes around every limit, both shapes, all three
        // data types, with and without scope, odd priorities.
        let sizes = [0usize, 1, 2, 3, 4, 5, 17, 100, 255, 256, 423, 424, 425, 432, 1000, 4000];
        let sources = ["A", "WRITERHOST", "lower-case", "FIFTEEN-LETTERS"];
        let destinations = ["MSLAB", "b", "\x01\x02__MSBROWSE__\x02", "TARGETHOST"];
        let mut count = 0;
        for name_len in 1..=24 {
            let tail: String = (0..name_len).map(|i| char::from(b"aB\\x_9Z."[i % 8])).collect();
            let name = format!(r"\MaIlSlOt\{tail}");
            for (k, &size) in sizes.iter().enumerate() {
                let data: Vec<u8> = (0..size).map(|i| (i * 31 + name_len + k) as u8).collect();
                for (s, shape) in [WriteShape::WINDOWS, WriteShape::SAMBA].into_iter().enumerate() {
                    let i = name_len + k + s;
                    let mut datagram = DatagramRepr::new(
                        DatagramType(0x10 + (i % 3) as u8),
                        (i * 4099) as u16,
                        Ipv4Addr::new(10, (i % 256) as u8, 0, 7),
                        if i % 2 == 0 { 138 } else { 13800 },
                        NetbiosName::new(sources[i % 4], (i * 13) as u8).unwrap(),
                        NetbiosName::new(destinations[i % 4], 0x1d).unwrap(),
                    );
                    datagram.flags = DatagramFlags::whole(NodeType::from_bits(i as u8));
                    if i % 5 == 0 {
                        datagram.source_scope = Scope::new("corp.example").unwrap();
                        datagram.destination_scope = Scope::new("corp.example").unwrap();
                    }
                    let mut write = MailslotWriteRepr::new(name.as_str(), &data[..]);
                    write.priority = (i % 3) as u16;
                    write.shape = shape;
                    let repr = MailslotDatagramRepr { datagram, write };

                    let bytes = repr.to_vec().unwrap();
                    assert_eq!(bytes.len(), repr.buffer_len());
                    let back = MailslotDatagramRepr::parse(&bytes).unwrap_or_else(|r| panic!("{name} {size}: {r}"));
                    // align_data is visible only when padding was needed
                    let mut expected = repr.clone();
                    expected.write.shape.align_data = shape.align_data && repr.write.pad_len() > 0;
                    assert_eq!(back, expected, "{name} {size}");
                    assert_eq!(back.to_vec().unwrap(), bytes, "{name} {size}");
                    if shape.align_data {
                        assert_eq!(repr.write.data_offset() % 4, 0);
                    }
                    count += 1;
                }
            }
        }
        assert_eq!(count, 24 * 16 * 2);
    }
}
