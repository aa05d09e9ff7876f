//! NEGOTIATE ([MS-SMB2] 2.2.3, 2.2.4): the first exchange, which picks the
//! dialect and, for SMB 3.1.1, the preauth hash, the cipher and the signing
//! algorithm through negotiate contexts (2.2.3.1).
//!
//! Offsets in these messages count from the start of the SMB2 header, so
//! the parsers take the whole message (header and body).

use crate::header::{Command, Header, HEADER_LEN};
use crate::le;
use crate::DecodeError;

/// Dialect revisions.
pub mod dialect {
    pub const SMB_2_0_2: u16 = 0x0202;
    pub const SMB_2_1: u16 = 0x0210;
    pub const SMB_3_0: u16 = 0x0300;
    pub const SMB_3_0_2: u16 = 0x0302;
    pub const SMB_3_1_1: u16 = 0x0311;
    /// The answer to an SMB1 multi-protocol negotiate: "SMB 2.1 or later,
    /// negotiate again in SMB2".
    pub const WILDCARD: u16 = 0x02FF;
}

/// SecurityMode bits.
pub mod security_mode {
    pub const SIGNING_ENABLED: u16 = 0x0001;
    pub const SIGNING_REQUIRED: u16 = 0x0002;
}

/// Capabilities bits (SMB2_GLOBAL_CAP_*).
pub mod capabilities {
    pub const DFS: u32 = 0x0000_0001;
    pub const LEASING: u32 = 0x0000_0002;
    pub const LARGE_MTU: u32 = 0x0000_0004;
    pub const MULTI_CHANNEL: u32 = 0x0000_0008;
    pub const PERSISTENT_HANDLES: u32 = 0x0000_0010;
    pub const DIRECTORY_LEASING: u32 = 0x0000_0020;
    pub const ENCRYPTION: u32 = 0x0000_0040;
    pub const NOTIFICATIONS: u32 = 0x0000_0080;
}

/// Negotiate context types.
pub mod context_type {
    pub const PREAUTH_INTEGRITY_CAPABILITIES: u16 = 0x0001;
    pub const ENCRYPTION_CAPABILITIES: u16 = 0x0002;
    pub const COMPRESSION_CAPABILITIES: u16 = 0x0003;
    pub const NETNAME_NEGOTIATE_CONTEXT_ID: u16 = 0x0005;
    pub const TRANSPORT_CAPABILITIES: u16 = 0x0006;
    pub const RDMA_TRANSFORM_CAPABILITIES: u16 = 0x0007;
    pub const SIGNING_CAPABILITIES: u16 = 0x0008;
}

/// Preauth integrity hash algorithms.
pub mod hash_algorithm {
    pub const SHA_512: u16 = 0x0001;
}

/// Encryption ciphers.
pub mod cipher {
    pub const AES_128_CCM: u16 = 0x0001;
    pub const AES_128_GCM: u16 = 0x0002;
    pub const AES_256_CCM: u16 = 0x0003;
    pub const AES_256_GCM: u16 = 0x0004;
}

/// Signing algorithms.
pub mod signing_algorithm {
    pub const HMAC_SHA256: u16 = 0x0000;
    pub const AES_CMAC: u16 = 0x0001;
    pub const AES_GMAC: u16 = 0x0002;
}

/// One negotiate context, owned (the ones pipes use are decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiateContext {
    PreauthIntegrity {
        hash_algorithms: Vec<u16>,
        salt: Vec<u8>,
    },
    Encryption {
        ciphers: Vec<u16>,
    },
    Signing {
        algorithms: Vec<u16>,
    },
    /// The server's name as the client addressed it, UTF-16LE on the wire.
    NetName(String),
    /// Any other type, kept as bytes.
    Other {
        context_type: u16,
        data: Vec<u8>,
    },
}

fn u16_list(d: &[u8], count: usize, what: &'static str) -> Result<Vec<u16>, DecodeError> {
    let bytes = d.get(..count * 2).ok_or(DecodeError::Truncated(what))?;
    Ok(bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect())
}

impl NegotiateContext {
    fn context_type(&self) -> u16 {
        match self {
            NegotiateContext::PreauthIntegrity { .. } => context_type::PREAUTH_INTEGRITY_CAPABILITIES,
            NegotiateContext::Encryption { .. } => context_type::ENCRYPTION_CAPABILITIES,
            NegotiateContext::Signing { .. } => context_type::SIGNING_CAPABILITIES,
            NegotiateContext::NetName(_) => context_type::NETNAME_NEGOTIATE_CONTEXT_ID,
            NegotiateContext::Other { context_type, .. } => *context_type,
        }
    }

    fn decode(ctype: u16, d: &[u8]) -> Result<NegotiateContext, DecodeError> {
        let count = |what| {
            d.get(..2)
                .map(|c| usize::from(le::u16(c, 0)))
                .ok_or(DecodeError::Truncated(what))
        };
        Ok(match ctype {
            context_type::PREAUTH_INTEGRITY_CAPABILITIES => {
                let n = count("preauth context")?;
                let salt_len = usize::from(le::u16(d.get(..4).ok_or(DecodeError::Truncated("preauth context"))?, 2));
                let hash_algorithms = u16_list(&d[4..], n, "preauth hash list")?;
                let at = 4 + 2 * n;
                let salt = d
                    .get(at..at + salt_len)
                    .ok_or(DecodeError::Truncated("preauth salt"))?
                    .to_vec();
                NegotiateContext::PreauthIntegrity { hash_algorithms, salt }
            }
            context_type::ENCRYPTION_CAPABILITIES => NegotiateContext::Encryption {
                ciphers: u16_list(&d[2.min(d.len())..], count("encryption context")?, "cipher list")?,
            },
            context_type::SIGNING_CAPABILITIES => NegotiateContext::Signing {
                algorithms: u16_list(&d[2.min(d.len())..], count("signing context")?, "signing list")?,
            },
            context_type::NETNAME_NEGOTIATE_CONTEXT_ID => {
                if d.len() & 1 != 0 {
                    return Err(DecodeError::Malformed("netname context (odd UTF-16 length)"));
                }
                let units: Vec<u16> = d.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
                NegotiateContext::NetName(String::from_utf16(&units).map_err(|_| DecodeError::Malformed("netname"))?)
            }
            _ => NegotiateContext::Other {
                context_type: ctype,
                data: d.to_vec(),
            },
        })
    }

    fn encode_data(&self, out: &mut Vec<u8>) {
        let list = |out: &mut Vec<u8>, v: &[u16]| {
            out.extend_from_slice(&(v.len() as u16).to_le_bytes());
            for x in v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
        match self {
            NegotiateContext::PreauthIntegrity { hash_algorithms, salt } => {
                out.extend_from_slice(&(hash_algorithms.len() as u16).to_le_bytes());
                out.extend_from_slice(&(salt.len() as u16).to_le_bytes());
                for h in hash_algorithms {
                    out.extend_from_slice(&h.to_le_bytes());
                }
                out.extend_from_slice(salt);
            }
            NegotiateContext::Encryption { ciphers } => list(out, ciphers),
            NegotiateContext::Signing { algorithms } => list(out, algorithms),
            NegotiateContext::NetName(name) => {
                for u in name.encode_utf16() {
                    out.extend_from_slice(&u.to_le_bytes());
                }
            }
            NegotiateContext::Other { data, .. } => out.extend_from_slice(data),
        }
    }
}

/// Reads `count` contexts starting at message offset `offset`.
fn parse_contexts(msg: &[u8], offset: usize, count: usize) -> Result<Vec<NegotiateContext>, DecodeError> {
    let mut out = Vec::with_capacity(count.min(16));
    let mut at = offset;
    for i in 0..count {
        if i > 0 {
            at = at.next_multiple_of(8);
        }
        let h = msg
            .get(at..at + 8)
            .ok_or(DecodeError::Truncated("negotiate context header"))?;
        let (ctype, len) = (le::u16(h, 0), usize::from(le::u16(h, 2)));
        let data = msg
            .get(at + 8..at + 8 + len)
            .ok_or(DecodeError::Truncated("negotiate context data"))?;
        out.push(NegotiateContext::decode(ctype, data)?);
        at += 8 + len;
    }
    Ok(out)
}

/// Appends contexts at 8-byte-aligned message offsets (`msg` is the whole message so far).
fn emit_contexts(msg: &mut Vec<u8>, contexts: &[NegotiateContext]) {
    for (i, c) in contexts.iter().enumerate() {
        if i > 0 {
            msg.resize(msg.len().next_multiple_of(8), 0);
        }
        let mut data = Vec::new();
        c.encode_data(&mut data);
        msg.extend_from_slice(&c.context_type().to_le_bytes());
        msg.extend_from_slice(&(data.len() as u16).to_le_bytes());
        msg.extend_from_slice(&[0; 4]);
        msg.extend_from_slice(&data);
    }
}

fn check_command(msg: &[u8], want: Command) -> Result<Header<&[u8]>, DecodeError> {
    let h = Header::new_checked(msg)?;
    if h.command() != want {
        return Err(DecodeError::Malformed("SMB2 command"));
    }
    Ok(h)
}

/// NEGOTIATE request (2.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateRequest {
    pub dialects: Vec<u16>,
    pub security_mode: u16,
    pub capabilities: u32,
    pub client_guid: [u8; 16],
    /// Sent only when the dialects include 3.1.1.
    pub contexts: Vec<NegotiateContext>,
}

const REQUEST_FIXED: usize = 36;
const RESPONSE_FIXED: usize = 64;

impl NegotiateRequest {
    /// Parses a whole message (header and body).
    ///
    /// # Errors
    /// Short or inconsistent fields; never panics on any input.
    pub fn parse(msg: &[u8]) -> Result<NegotiateRequest, DecodeError> {
        let h = check_command(msg, Command::NEGOTIATE)?;
        let b = h.body();
        if b.len() < REQUEST_FIXED {
            return Err(DecodeError::Truncated("NEGOTIATE request"));
        }
        if le::u16(b, 0) != REQUEST_FIXED as u16 {
            return Err(DecodeError::Malformed("NEGOTIATE request structure size"));
        }
        let count = usize::from(le::u16(b, 2));
        let dialects = u16_list(&b[REQUEST_FIXED..], count, "dialect list")?;
        let mut client_guid = [0u8; 16];
        client_guid.copy_from_slice(&b[12..28]);
        let contexts = if dialects.contains(&dialect::SMB_3_1_1) {
            parse_contexts(msg, le::u32(b, 28) as usize, usize::from(le::u16(b, 32)))?
        } else {
            Vec::new()
        };
        Ok(NegotiateRequest {
            dialects,
            security_mode: le::u16(b, 4),
            capabilities: le::u32(b, 8),
            client_guid,
            contexts,
        })
    }

    /// The body, to follow a 64-byte header (offsets assume it does).
    pub fn emit_body(&self) -> Vec<u8> {
        let mut msg = vec![0u8; HEADER_LEN];
        msg.extend_from_slice(&(REQUEST_FIXED as u16).to_le_bytes());
        msg.extend_from_slice(&(self.dialects.len() as u16).to_le_bytes());
        msg.extend_from_slice(&self.security_mode.to_le_bytes());
        msg.extend_from_slice(&[0; 2]);
        msg.extend_from_slice(&self.capabilities.to_le_bytes());
        msg.extend_from_slice(&self.client_guid);
        let ctx_fields = msg.len();
        msg.extend_from_slice(&[0; 8]); // context offset, count, reserved (or ClientStartTime)
        for d in &self.dialects {
            msg.extend_from_slice(&d.to_le_bytes());
        }
        if self.dialects.contains(&dialect::SMB_3_1_1) && !self.contexts.is_empty() {
            msg.resize(msg.len().next_multiple_of(8), 0);
            let offset = msg.len() as u32;
            msg[ctx_fields..ctx_fields + 4].copy_from_slice(&offset.to_le_bytes());
            msg[ctx_fields + 4..ctx_fields + 6].copy_from_slice(&(self.contexts.len() as u16).to_le_bytes());
            emit_contexts(&mut msg, &self.contexts);
        }
        msg.split_off(HEADER_LEN)
    }
}

/// NEGOTIATE response (2.2.4), borrowing the security buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateResponse<'a> {
    pub security_mode: u16,
    pub dialect: u16,
    pub server_guid: [u8; 16],
    pub capabilities: u32,
    pub max_transact_size: u32,
    pub max_read_size: u32,
    pub max_write_size: u32,
    /// FILETIME: 100 ns since 1601-01-01.
    pub system_time: u64,
    pub server_start_time: u64,
    /// The server's first security token (SPNEGO negTokenInit), maybe empty.
    pub security_buffer: &'a [u8],
    /// 3.1.1 only.
    pub contexts: Vec<NegotiateContext>,
}

impl<'a> NegotiateResponse<'a> {
    /// Parses a whole message (header and body).
    ///
    /// # Errors
    /// Short or inconsistent fields (a security buffer or context list
    /// outside the message); never panics on any input.
    pub fn parse(msg: &'a [u8]) -> Result<NegotiateResponse<'a>, DecodeError> {
        let h = check_command(msg, Command::NEGOTIATE)?;
        let b = h.body();
        if b.len() < RESPONSE_FIXED {
            return Err(DecodeError::Truncated("NEGOTIATE response"));
        }
        if le::u16(b, 0) != 65 {
            return Err(DecodeError::Malformed("NEGOTIATE response structure size"));
        }
        let dialect = le::u16(b, 4);
        let (sec_off, sec_len) = (usize::from(le::u16(b, 56)), usize::from(le::u16(b, 58)));
        let security_buffer = if sec_len == 0 {
            &[][..]
        } else {
            msg.get(sec_off..sec_off + sec_len)
                .ok_or(DecodeError::Truncated("NEGOTIATE security buffer"))?
        };
        let contexts = if dialect == dialect::SMB_3_1_1 {
            parse_contexts(msg, le::u32(b, 60) as usize, usize::from(le::u16(b, 6)))?
        } else {
            Vec::new()
        };
        let mut server_guid = [0u8; 16];
        server_guid.copy_from_slice(&b[8..24]);
        Ok(NegotiateResponse {
            security_mode: le::u16(b, 2),
            dialect,
            server_guid,
            capabilities: le::u32(b, 24),
            max_transact_size: le::u32(b, 28),
            max_read_size: le::u32(b, 32),
            max_write_size: le::u32(b, 36),
            system_time: le::u64(b, 40),
            server_start_time: le::u64(b, 48),
            security_buffer,
            contexts,
        })
    }

    /// The body, to follow a 64-byte header (the gateway's answer).
    pub fn emit_body(&self) -> Vec<u8> {
        let mut msg = vec![0u8; HEADER_LEN];
        let ctx_count = if self.dialect == dialect::SMB_3_1_1 {
            self.contexts.len()
        } else {
            0
        };
        msg.extend_from_slice(&65u16.to_le_bytes());
        msg.extend_from_slice(&self.security_mode.to_le_bytes());
        msg.extend_from_slice(&self.dialect.to_le_bytes());
        msg.extend_from_slice(&(ctx_count as u16).to_le_bytes());
        msg.extend_from_slice(&self.server_guid);
        for v in [
            self.capabilities,
            self.max_transact_size,
            self.max_read_size,
            self.max_write_size,
        ] {
            msg.extend_from_slice(&v.to_le_bytes());
        }
        msg.extend_from_slice(&self.system_time.to_le_bytes());
        msg.extend_from_slice(&self.server_start_time.to_le_bytes());
        let sec_off = HEADER_LEN + RESPONSE_FIXED;
        let sec_off_field = if self.security_buffer.is_empty() {
            0
        } else {
            sec_off as u16
        };
        msg.extend_from_slice(&sec_off_field.to_le_bytes());
        msg.extend_from_slice(&(self.security_buffer.len() as u16).to_le_bytes());
        let ctx_field = msg.len();
        msg.extend_from_slice(&[0; 4]);
        msg.extend_from_slice(self.security_buffer);
        if ctx_count > 0 {
            msg.resize(msg.len().next_multiple_of(8), 0);
            let offset = msg.len() as u32;
            msg[ctx_field..ctx_field + 4].copy_from_slice(&offset.to_le_bytes());
            emit_contexts(&mut msg, &self.contexts);
        }
        msg.split_off(HEADER_LEN)
    }
}
