//! DCE/RPC connection-oriented PDUs (C706 chapter 12) as a pipe carries
//! them, and the NDR pieces the gateway's srvsvc needs: the server's view
//! (a bind or a request in, an ack, a response or a fault out). Every PDU
//! is one pipe message; fragmented requests and authenticated binds are not
//! served (the pipe's own session already authenticates and signs).

use crate::le;
use crate::DecodeError;

/// PDU types (C706 12.6.4).
pub mod ptype {
    pub const REQUEST: u8 = 0;
    pub const RESPONSE: u8 = 2;
    pub const FAULT: u8 = 3;
    pub const BIND: u8 = 11;
    pub const BIND_ACK: u8 = 12;
    pub const BIND_NAK: u8 = 13;
    pub const ALTER_CONTEXT: u8 = 14;
    pub const ALTER_CONTEXT_RESP: u8 = 15;
}

/// PFC_FIRST_FRAG | PFC_LAST_FRAG: a PDU in one fragment.
pub const PFC_WHOLE: u8 = 0x03;
/// Little-endian integers, ASCII, IEEE floats.
const DREP_LE: [u8; 4] = [0x10, 0, 0, 0];
const HEADER_LEN: usize = 16;

/// Fault statuses (C706 appendix E; MS-RPCE 2.2.2.11).
pub mod fault {
    /// The operation number is not one of the interface's.
    pub const OP_RNG_ERROR: u32 = 0x1c01_0002;
    /// A context id that was never bound.
    pub const UNKNOWN_IF: u32 = 0x1c01_0003;
    /// The stub data could not be read (RPC_X_BAD_STUB_DATA).
    pub const BAD_STUB_DATA: u32 = 0x0000_06f7;
    /// Something the server does not do (fragments, authentication).
    pub const PROTO_ERROR: u32 = 0x1c01_000b;
}

/// The NDR 2.0 transfer syntax (C706 appendix I).
pub const NDR: Syntax = Syntax {
    uuid: [
        0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60,
    ],
    version: 2,
};

/// An interface or transfer syntax: a UUID (as on the wire) and a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    pub uuid: [u8; 16],
    /// Major version in the low 16 bits, minor in the high.
    pub version: u32,
}

/// The common header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PduHeader {
    pub ptype: u8,
    pub flags: u8,
    pub frag_len: u16,
    pub auth_len: u16,
    pub call_id: u32,
}

impl PduHeader {
    /// Reads the 16-byte header and checks it against the PDU's length.
    ///
    /// # Errors
    /// Not version 5.0, not little-endian, or a fragment length that is not
    /// the PDU's.
    pub fn parse(pdu: &[u8]) -> Result<PduHeader, DecodeError> {
        if pdu.len() < HEADER_LEN {
            return Err(DecodeError::Truncated("DCE/RPC header"));
        }
        if pdu[0] != 5 || pdu[1] != 0 {
            return Err(DecodeError::Unsupported("DCE/RPC version"));
        }
        if pdu[4] & 0xf0 != 0x10 {
            return Err(DecodeError::Unsupported("DCE/RPC big-endian data"));
        }
        let h = PduHeader {
            ptype: pdu[2],
            flags: pdu[3],
            frag_len: le::u16(pdu, 8),
            auth_len: le::u16(pdu, 10),
            call_id: le::u32(pdu, 12),
        };
        if usize::from(h.frag_len) != pdu.len() {
            return Err(DecodeError::Malformed("DCE/RPC fragment length"));
        }
        Ok(h)
    }
}

/// One presentation context a bind proposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub id: u16,
    pub abstract_syntax: Syntax,
    pub transfer: Vec<Syntax>,
}

/// A BIND or ALTER_CONTEXT (C706 12.6.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub header: PduHeader,
    pub max_xmit: u16,
    pub max_recv: u16,
    pub assoc_group: u32,
    pub contexts: Vec<Context>,
}

fn syntax_at(b: &[u8], at: usize) -> Result<Syntax, DecodeError> {
    let s = b.get(at..at + 20).ok_or(DecodeError::Truncated("DCE/RPC syntax id"))?;
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&s[..16]);
    Ok(Syntax {
        uuid,
        version: le::u32(s, 16),
    })
}

impl Bind {
    /// Parses a whole BIND or ALTER_CONTEXT PDU.
    ///
    /// # Errors
    /// Short, or contexts running past the PDU.
    pub fn parse(pdu: &[u8]) -> Result<Bind, DecodeError> {
        let header = PduHeader::parse(pdu)?;
        if pdu.len() < 28 {
            return Err(DecodeError::Truncated("DCE/RPC bind"));
        }
        let n = usize::from(pdu[24]);
        let mut at = 28;
        let mut contexts = Vec::with_capacity(n);
        for _ in 0..n {
            let head = pdu
                .get(at..at + 4)
                .ok_or(DecodeError::Truncated("DCE/RPC presentation context"))?;
            let (id, count) = (le::u16(head, 0), usize::from(head[2]));
            let abstract_syntax = syntax_at(pdu, at + 4)?;
            let mut transfer = Vec::with_capacity(count);
            for i in 0..count {
                transfer.push(syntax_at(pdu, at + 24 + 20 * i)?);
            }
            at += 24 + 20 * count;
            contexts.push(Context {
                id,
                abstract_syntax,
                transfer,
            });
        }
        Ok(Bind {
            header,
            max_xmit: le::u16(pdu, 16),
            max_recv: le::u16(pdu, 18),
            assoc_group: le::u32(pdu, 20),
            contexts,
        })
    }
}

/// A bind's answer to one context (C706 12.6.3.1 p_cont_def_result_t).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextResult {
    /// 0 acceptance, 2 provider rejection, 3 negotiate ack (bind-time
    /// features, MS-RPCE 3.3.1.5.3).
    pub result: u16,
    pub reason: u16,
    pub transfer: Syntax,
}

/// A REQUEST (C706 12.6.4.9), borrowing its stub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub header: PduHeader,
    pub context_id: u16,
    pub opnum: u16,
    pub stub: &'a [u8],
}

impl<'a> Request<'a> {
    /// Parses a whole REQUEST PDU.
    ///
    /// # Errors
    /// Short, or an object UUID or auth trailer running past it.
    pub fn parse(pdu: &'a [u8]) -> Result<Request<'a>, DecodeError> {
        let header = PduHeader::parse(pdu)?;
        if pdu.len() < 24 {
            return Err(DecodeError::Truncated("DCE/RPC request"));
        }
        // PFC_OBJECT_UUID puts 16 bytes before the stub.
        let from = if header.flags & 0x80 != 0 { 40 } else { 24 };
        let auth = match header.auth_len {
            0 => 0,
            n => usize::from(n) + 8,
        };
        let stub = pdu
            .get(from..pdu.len().saturating_sub(auth))
            .ok_or(DecodeError::Truncated("DCE/RPC request stub"))?;
        Ok(Request {
            header,
            context_id: le::u16(pdu, 20),
            opnum: le::u16(pdu, 22),
            stub,
        })
    }
}

fn header(ptype: u8, call_id: u32) -> Vec<u8> {
    let mut p = vec![5, 0, ptype, PFC_WHOLE];
    p.extend_from_slice(&DREP_LE);
    p.extend_from_slice(&[0; 4]); // frag length (set at the end), auth length
    p.extend_from_slice(&call_id.to_le_bytes());
    p
}

fn finish(mut p: Vec<u8>) -> Vec<u8> {
    let n = p.len() as u16;
    p[8..10].copy_from_slice(&n.to_le_bytes());
    p
}

/// A BIND_ACK (or, with `ptype::ALTER_CONTEXT_RESP`, its alter-context
/// twin, which names no secondary address).
pub fn bind_ack(
    ptype: u8,
    call_id: u32,
    max_frag: u16,
    assoc_group: u32,
    sec_addr: &str,
    results: &[ContextResult],
) -> Vec<u8> {
    let mut p = header(ptype, call_id);
    p.extend_from_slice(&max_frag.to_le_bytes());
    p.extend_from_slice(&max_frag.to_le_bytes());
    p.extend_from_slice(&assoc_group.to_le_bytes());
    if sec_addr.is_empty() {
        p.extend_from_slice(&0u16.to_le_bytes());
    } else {
        p.extend_from_slice(&((sec_addr.len() + 1) as u16).to_le_bytes());
        p.extend_from_slice(sec_addr.as_bytes());
        p.push(0);
    }
    p.resize(p.len().next_multiple_of(4), 0);
    p.extend_from_slice(&[results.len() as u8, 0, 0, 0]);
    for r in results {
        p.extend_from_slice(&r.result.to_le_bytes());
        p.extend_from_slice(&r.reason.to_le_bytes());
        p.extend_from_slice(&r.transfer.uuid);
        p.extend_from_slice(&r.transfer.version.to_le_bytes());
    }
    finish(p)
}

/// A BIND_NAK: `reason` 0 (not specified) or another of C706 12.6.3.1.
pub fn bind_nak(call_id: u32, reason: u16) -> Vec<u8> {
    let mut p = header(ptype::BIND_NAK, call_id);
    p.extend_from_slice(&reason.to_le_bytes());
    p.push(0); // no protocol versions listed
    finish(p)
}

/// A RESPONSE carrying `stub` for context `context_id`.
pub fn response(call_id: u32, context_id: u16, stub: &[u8]) -> Vec<u8> {
    let mut p = header(ptype::RESPONSE, call_id);
    p.extend_from_slice(&(stub.len() as u32).to_le_bytes());
    p.extend_from_slice(&context_id.to_le_bytes());
    p.extend_from_slice(&[0, 0]); // cancel count, reserved
    p.extend_from_slice(stub);
    finish(p)
}

/// A FAULT with `status` (see [`mod@fault`]).
pub fn fault(call_id: u32, context_id: u16, status: u32) -> Vec<u8> {
    let mut p = header(ptype::FAULT, call_id);
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&context_id.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&[0; 4]);
    finish(p)
}

/// NDR 2.0 output (little-endian): scalars aligned to their size, unique
/// pointers as referent ids, conformant varying strings.
#[derive(Debug, Default)]
pub struct NdrWriter {
    pub buf: Vec<u8>,
    referent: u32,
}

impl NdrWriter {
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A non-null unique or full pointer's referent id.
    pub fn pointer(&mut self) -> &mut Self {
        self.referent += 1;
        let id = 0x0002_0000 + 4 * self.referent;
        self.u32(id)
    }

    /// A `[string] wchar_t*`'s deferred body: max count, offset, actual
    /// count, the UTF-16 characters with their NUL.
    pub fn string(&mut self, s: &str) -> &mut Self {
        let units: Vec<u16> = s.encode_utf16().chain([0]).collect();
        let n = units.len() as u32;
        self.u32(n).u32(0).u32(n);
        for u in units {
            self.buf.extend_from_slice(&u.to_le_bytes());
        }
        self
    }
}

/// NDR 2.0 input with every read bounds-checked.
#[derive(Debug)]
pub struct NdrReader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> NdrReader<'a> {
    pub fn new(buf: &'a [u8]) -> NdrReader<'a> {
        NdrReader { buf, at: 0 }
    }

    /// # Errors
    /// Past the end of the stub.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.at = self.at.next_multiple_of(4);
        let b = self
            .buf
            .get(self.at..self.at + 4)
            .ok_or(DecodeError::Truncated("NDR stub"))?;
        self.at += 4;
        Ok(le::u32(b, 0))
    }

    /// A unique pointer to a `[string] wchar_t`: None for null.
    ///
    /// # Errors
    /// Past the end, or counts that disagree.
    pub fn unique_string(&mut self) -> Result<Option<String>, DecodeError> {
        if self.u32()? == 0 {
            return Ok(None);
        }
        let (max, offset, actual) = (self.u32()?, self.u32()?, self.u32()?);
        if offset != 0 || actual > max {
            return Err(DecodeError::Malformed("NDR string counts"));
        }
        let n = actual as usize * 2;
        let raw = self
            .buf
            .get(self.at..self.at.saturating_add(n))
            .ok_or(DecodeError::Truncated("NDR string"))?;
        self.at += n;
        let units: Vec<u16> = raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        Ok(Some(String::from_utf16_lossy(&units).trim_end_matches('\0').to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_reads_back_and_acks_are_well_formed() {
        let mut p = header(ptype::BIND, 7);
        p.extend_from_slice(&4280u16.to_le_bytes());
        p.extend_from_slice(&4280u16.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(&[1, 0, 0, 0]);
        p.extend_from_slice(&[0, 0, 1, 0]);
        p.extend_from_slice(&[0xaa; 16]);
        p.extend_from_slice(&3u32.to_le_bytes());
        p.extend_from_slice(&NDR.uuid);
        p.extend_from_slice(&NDR.version.to_le_bytes());
        let p = finish(p);
        let b = Bind::parse(&p).unwrap();
        assert_eq!((b.header.call_id, b.max_recv, b.contexts.len()), (7, 4280, 1));
        assert_eq!(b.contexts[0].transfer, vec![NDR]);
        // One byte short: the context runs past the end.
        let mut cut = p[..p.len() - 1].to_vec();
        cut[8] -= 1;
        assert!(Bind::parse(&cut).is_err());
        let ack = bind_ack(
            ptype::BIND_ACK,
            7,
            4280,
            0x1234,
            r"\PIPE\srvsvc",
            &[ContextResult {
                result: 0,
                reason: 0,
                transfer: NDR,
            }],
        );
        let h = PduHeader::parse(&ack).unwrap();
        assert_eq!(
            (h.ptype, h.call_id, usize::from(h.frag_len)),
            (ptype::BIND_ACK, 7, ack.len())
        );
        // 24 fixed + 2 + 13 ("\PIPE\srvsvc" and NUL) padded to 4, then 4 + 24.
        assert_eq!(ack.len(), 40 + 4 + 24);
        assert_eq!(&ack[ack.len() - 20..ack.len() - 4], &NDR.uuid);
    }

    #[test]
    fn ndr_strings_round_trip_and_lies_are_caught() {
        let mut w = NdrWriter::default();
        w.pointer().string(r"\\gw");
        let mut r = NdrReader::new(&w.buf);
        assert_eq!(r.unique_string().unwrap().as_deref(), Some(r"\\gw"));
        let mut lie = w.buf.clone();
        lie[12..16].copy_from_slice(&1000u32.to_le_bytes()); // actual > max
        assert!(NdrReader::new(&lie).unique_string().is_err());
        lie[4..8].copy_from_slice(&2000u32.to_le_bytes()); // max, actual past the end
        assert!(NdrReader::new(&lie).unique_string().is_err());
        assert_eq!(NdrReader::new(&[0; 4]).unique_string().unwrap(), None);
    }
}
