//! The server service (MS-SRVS) as much as a pipe-only server has to say:
//! NetrShareEnum (opnum 15: `smbclient -L`, `net view`, `rpcclient
//! netshareenumall`) lists IPC$, and NetrServerGetInfo (opnum 21:
//! `rpcclient srvinfo`) names the server. One [`Srvsvc`] per open of the
//! `srvsvc` pipe: PDUs in, PDUs out, no I/O.

use crate::dcerpc::{self, fault, ptype, Bind, ContextResult, NdrReader, NdrWriter, PduHeader, Request, Syntax, NDR};
use crate::DecodeError;

/// srvsvc v3.0 (MS-SRVS 1.9).
pub const SRVSVC: Syntax = Syntax {
    uuid: [
        0xc8, 0x4f, 0x32, 0x4b, 0x70, 0x16, 0xd3, 0x01, 0x12, 0x78, 0x5a, 0x47, 0xbf, 0x6e, 0xe1, 0x88,
    ],
    version: 3,
};

/// The first 8 bytes of the bind-time feature negotiation "syntax"
/// (MS-RPCE 3.3.1.5.3); the rest carries the client's feature bits.
const BIND_TIME_FEATURES: [u8; 8] = [0x2c, 0x1c, 0xb7, 0x6c, 0x12, 0x98, 0x40, 0x45];

/// STYPE_IPC | STYPE_SPECIAL (MS-SRVS 2.2.2.4).
const IPC_SHARE_TYPE: u32 = 0x8000_0003;
/// PLATFORM_ID_NT.
const PLATFORM_NT: u32 = 500;
/// SV_TYPE_WORKSTATION | SV_TYPE_SERVER | SV_TYPE_NT | SV_TYPE_SERVER_NT.
const SERVER_TYPE: u32 = 0x0000_9003;
const ERROR_INVALID_LEVEL: u32 = 124;

/// One client's conversation with the service.
#[derive(Debug)]
pub struct Srvsvc {
    computer: String,
    comment: String,
    /// Contexts bound to srvsvc over NDR.
    bound: Vec<u16>,
    max_frag: u16,
}

impl Srvsvc {
    /// For a server named `computer` (NetBIOS name), described by `comment`.
    pub fn new(computer: &str, comment: &str) -> Srvsvc {
        Srvsvc {
            computer: computer.to_owned(),
            comment: comment.to_owned(),
            bound: Vec::new(),
            max_frag: 4280,
        }
    }

    /// Answers one PDU (a whole pipe message).
    ///
    /// # Errors
    /// A PDU that is not DCE/RPC at all, or one that makes no sense here:
    /// the open should fail its write (the client gets a pipe error).
    pub fn handle(&mut self, pdu: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let h = PduHeader::parse(pdu)?;
        match h.ptype {
            ptype::BIND | ptype::ALTER_CONTEXT => {
                let b = Bind::parse(pdu)?;
                if h.auth_len != 0 {
                    // The SMB session authenticates; a second layer is not offered.
                    return Ok(dcerpc::bind_nak(h.call_id, 0));
                }
                self.max_frag = b.max_recv.clamp(1024, 4280);
                let results: Vec<ContextResult> = b.contexts.iter().map(|c| self.bind_one(c)).collect();
                let (kind, addr) = match h.ptype {
                    ptype::BIND => (ptype::BIND_ACK, r"\PIPE\srvsvc"),
                    _ => (ptype::ALTER_CONTEXT_RESP, ""),
                };
                let group = if b.assoc_group == 0 { 0x53f0 } else { b.assoc_group };
                Ok(dcerpc::bind_ack(kind, h.call_id, self.max_frag, group, addr, &results))
            }
            ptype::REQUEST => {
                let r = Request::parse(pdu)?;
                if h.flags & dcerpc::PFC_WHOLE != dcerpc::PFC_WHOLE || h.auth_len != 0 {
                    return Ok(dcerpc::fault(h.call_id, r.context_id, fault::PROTO_ERROR));
                }
                if !self.bound.contains(&r.context_id) {
                    return Ok(dcerpc::fault(h.call_id, r.context_id, fault::UNKNOWN_IF));
                }
                let stub = match r.opnum {
                    15 => self.share_enum(r.stub),
                    21 => self.server_get_info(r.stub),
                    _ => return Ok(dcerpc::fault(h.call_id, r.context_id, fault::OP_RNG_ERROR)),
                };
                match stub {
                    Ok(s) if s.len() + 24 <= usize::from(self.max_frag) => {
                        Ok(dcerpc::response(h.call_id, r.context_id, &s))
                    }
                    Ok(_) => Ok(dcerpc::fault(h.call_id, r.context_id, fault::PROTO_ERROR)),
                    Err(_) => Ok(dcerpc::fault(h.call_id, r.context_id, fault::BAD_STUB_DATA)),
                }
            }
            _ => Err(DecodeError::Unsupported("DCE/RPC PDU type")),
        }
    }

    fn bind_one(&mut self, c: &dcerpc::Context) -> ContextResult {
        let none = Syntax {
            uuid: [0; 16],
            version: 0,
        };
        if c.transfer.iter().any(|t| t.uuid[..8] == BIND_TIME_FEATURES) {
            // No optional features, but the question is understood.
            return ContextResult {
                result: 3,
                reason: 0,
                transfer: none,
            };
        }
        if c.abstract_syntax.uuid != SRVSVC.uuid || c.abstract_syntax.version & 0xffff != SRVSVC.version {
            return ContextResult {
                result: 2,
                reason: 1, // abstract syntax not supported
                transfer: none,
            };
        }
        if !c.transfer.contains(&NDR) {
            return ContextResult {
                result: 2,
                reason: 2, // proposed transfer syntaxes not supported
                transfer: none,
            };
        }
        if !self.bound.contains(&c.id) {
            self.bound.push(c.id);
        }
        ContextResult {
            result: 0,
            reason: 0,
            transfer: NDR,
        }
    }

    /// NetrShareEnum: ServerName, InfoStruct (level, a container pointer),
    /// PreferedMaximumLength, ResumeHandle in; the share list out.
    fn share_enum(&self, stub: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut r = NdrReader::new(stub);
        r.unique_string()?;
        let level = r.u32()?;
        let tag = r.u32()?;
        if tag != level {
            return Err(DecodeError::Malformed("NetrShareEnum union tag"));
        }
        if r.u32()? != 0 {
            // The container the client sends: a count and a null buffer.
            r.u32()?;
            if r.u32()? != 0 {
                return Err(DecodeError::Unsupported("NetrShareEnum with a buffer sent in"));
            }
        }
        r.u32()?; // PreferedMaximumLength
        let resume = r.u32()? != 0;
        let mut w = NdrWriter::default();
        w.u32(level).u32(level);
        let (netname, remark) = ("IPC$", "Remote IPC");
        match level {
            0..=2 => {
                w.pointer(); // the container
                w.u32(1).pointer().u32(1); // EntriesRead, Buffer, its conformance
                w.pointer();
                if level >= 1 {
                    w.u32(IPC_SHARE_TYPE).pointer();
                }
                if level == 2 {
                    w.u32(0).u32(u32::MAX).u32(0).pointer().u32(0); // permissions, uses, path, no password
                }
                w.string(netname);
                if level >= 1 {
                    w.string(remark);
                }
                if level == 2 {
                    w.string("");
                }
                w.u32(1); // TotalEntries
                Self::resume(&mut w, resume).u32(0);
            }
            _ => {
                w.u32(0).u32(0);
                Self::resume(&mut w, resume).u32(ERROR_INVALID_LEVEL);
            }
        }
        Ok(w.buf)
    }

    fn resume(w: &mut NdrWriter, present: bool) -> &mut NdrWriter {
        match present {
            true => w.pointer().u32(0),
            false => w.u32(0),
        }
    }

    /// NetrServerGetInfo: ServerName, Level in; SERVER_INFO_100/101 out.
    fn server_get_info(&self, stub: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut r = NdrReader::new(stub);
        r.unique_string()?;
        let level = r.u32()?;
        let mut w = NdrWriter::default();
        w.u32(level);
        match level {
            100 => {
                w.pointer().u32(PLATFORM_NT).pointer();
                w.string(&self.computer).u32(0);
            }
            101 => {
                w.pointer()
                    .u32(PLATFORM_NT)
                    .pointer()
                    .u32(10)
                    .u32(0)
                    .u32(SERVER_TYPE)
                    .pointer();
                w.string(&self.computer).string(&self.comment).u32(0);
            }
            _ => {
                w.u32(0).u32(ERROR_INVALID_LEVEL);
            }
        }
        Ok(w.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(ctx: &[(u16, Syntax, Syntax)]) -> Vec<u8> {
        let mut p = vec![5, 0, ptype::BIND, 3, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
        p.extend_from_slice(&4280u16.to_le_bytes());
        p.extend_from_slice(&4280u16.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(&[ctx.len() as u8, 0, 0, 0]);
        for (id, a, t) in ctx {
            p.extend_from_slice(&id.to_le_bytes());
            p.extend_from_slice(&[1, 0]);
            p.extend_from_slice(&a.uuid);
            p.extend_from_slice(&a.version.to_le_bytes());
            p.extend_from_slice(&t.uuid);
            p.extend_from_slice(&t.version.to_le_bytes());
        }
        let n = p.len() as u16;
        p[8..10].copy_from_slice(&n.to_le_bytes());
        p
    }

    fn request(ctx: u16, opnum: u16, stub: &[u8]) -> Vec<u8> {
        let mut p = vec![5, 0, ptype::REQUEST, 3, 0x10, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0];
        p.extend_from_slice(&(stub.len() as u32).to_le_bytes());
        p.extend_from_slice(&ctx.to_le_bytes());
        p.extend_from_slice(&opnum.to_le_bytes());
        p.extend_from_slice(stub);
        let n = p.len() as u16;
        p[8..10].copy_from_slice(&n.to_le_bytes());
        p
    }

    fn share_enum_stub(level: u32, resume: bool) -> Vec<u8> {
        let mut w = NdrWriter::default();
        w.pointer().string(r"\\gw");
        w.u32(level).u32(level).pointer().u32(0).u32(0);
        w.u32(u32::MAX);
        if resume {
            w.pointer().u32(0);
        } else {
            w.u32(0);
        }
        w.buf
    }

    #[test]
    fn binds_accept_srvsvc_over_ndr_only() {
        let mut s = Srvsvc::new("GW", "pipeslot gateway");
        let other = Syntax {
            uuid: [1; 16],
            version: 1,
        };
        let ndr64 = Syntax {
            uuid: [2; 16],
            version: 1,
        };
        let ack = s
            .handle(&bind(&[(0, SRVSVC, NDR), (1, other, NDR), (2, SRVSVC, ndr64)]))
            .unwrap();
        assert_eq!(ack[2], ptype::BIND_ACK);
        let results = &ack[ack.len() - 3 * 24..];
        let r = |i: usize| {
            (
                u16::from_le_bytes([results[24 * i], results[24 * i + 1]]),
                u16::from_le_bytes([results[24 * i + 2], results[24 * i + 3]]),
            )
        };
        assert_eq!([r(0), r(1), r(2)], [(0, 0), (2, 1), (2, 2)]);
        // Only context 0 was bound.
        let f = s.handle(&request(2, 15, &share_enum_stub(1, false))).unwrap();
        assert_eq!(f[2], ptype::FAULT);
        assert_eq!(u32::from_le_bytes(f[24..28].try_into().unwrap()), fault::UNKNOWN_IF);
    }

    #[test]
    fn share_enum_lists_ipc_at_levels_0_to_2_and_refuses_others() {
        let mut s = Srvsvc::new("GW", "pipeslot gateway");
        s.handle(&bind(&[(0, SRVSVC, NDR)])).unwrap();
        for level in 0..=2 {
            let p = s.handle(&request(0, 15, &share_enum_stub(level, true))).unwrap();
            assert_eq!(p[2], ptype::RESPONSE, "level {level}");
            let stub = &p[24..];
            let text: String = stub.chunks_exact(2).map(|c| char::from(c[0])).collect();
            assert!(text.contains("IPC$"), "level {level}");
            assert_eq!(text.contains("Remote IPC"), level >= 1, "level {level}");
            let werror = u32::from_le_bytes(stub[stub.len() - 4..].try_into().unwrap());
            assert_eq!(werror, 0);
        }
        let p = s.handle(&request(0, 15, &share_enum_stub(502, false))).unwrap();
        let stub = &p[24..];
        assert_eq!(
            u32::from_le_bytes(stub[stub.len() - 4..].try_into().unwrap()),
            ERROR_INVALID_LEVEL
        );
        // A stub cut short is a fault, not a panic.
        let f = s.handle(&request(0, 15, &share_enum_stub(1, false)[..10])).unwrap();
        assert_eq!(u32::from_le_bytes(f[24..28].try_into().unwrap()), fault::BAD_STUB_DATA);
        let f = s.handle(&request(0, 99, &[])).unwrap();
        assert_eq!(u32::from_le_bytes(f[24..28].try_into().unwrap()), fault::OP_RNG_ERROR);
        assert!(s.handle(b"not dce/rpc at all").is_err());
    }
}
