//! NTLMv2 ([MS-NLMP]): the three messages (NEGOTIATE, CHALLENGE,
//! AUTHENTICATE) and the key computation, for a client that knows the
//! password (or its NT hash). Times and the client challenge come from the
//! caller, so the result is deterministic.

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};

use crate::le;
use crate::DecodeError;

type HmacMd5 = Hmac<md5::Md5>;

/// The signature every NTLMSSP message starts with.
pub const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// NegotiateFlags (2.2.2.5) that a pipe client asks for.
pub mod flags {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    pub const SIGN: u32 = 0x0000_0010;
    pub const SEAL: u32 = 0x0000_0020;
    pub const NTLM: u32 = 0x0000_0200;
    pub const ANONYMOUS: u32 = 0x0000_0800;
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub const TARGET_INFO: u32 = 0x0080_0000;
    pub const N128: u32 = 0x2000_0000;
    pub const KEY_EXCH: u32 = 0x4000_0000;
    pub const N56: u32 = 0x8000_0000;
}

/// AV_PAIR ids (2.2.2.1) this code reads.
pub mod av {
    pub const EOL: u16 = 0x0000;
    pub const NB_COMPUTER_NAME: u16 = 0x0001;
    pub const NB_DOMAIN_NAME: u16 = 0x0002;
    pub const TIMESTAMP: u16 = 0x0007;
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut m = HmacMd5::new_from_slice(key).expect("HMAC takes a key of any length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// NTOWFv1: MD4 of the UTF-16LE password, the "NT hash" a server stores.
pub fn nt_hash(password: &str) -> [u8; 16] {
    Md4::digest(utf16le(password)).into()
}

/// NTOWFv2 (3.3.2): HMAC-MD5 keyed with the NT hash over the upper-cased
/// user name and the domain, UTF-16LE.
pub fn ntowf_v2(nt_hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    let who = utf16le(&(user.to_uppercase() + domain));
    hmac_md5(nt_hash, &[&who])
}

/// The NEGOTIATE_MESSAGE a client opens with (no domain or workstation, no
/// version): 32 bytes.
pub fn negotiate_message(negotiate_flags: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&negotiate_flags.to_le_bytes());
    m.extend_from_slice(&[0u8; 16]); // DomainNameFields, WorkstationFields: empty
    m
}

/// What a client needs from the server's CHALLENGE_MESSAGE (2.2.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub flags: u32,
    pub server_challenge: [u8; 8],
    pub target_name: Vec<u8>,
    /// The AV_PAIR list as sent: echoed inside the NTLMv2 response.
    pub target_info: Vec<u8>,
}

/// A (offset, length) field of an NTLM message, checked against the message.
fn payload<'a>(msg: &'a [u8], at: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
    let f = msg.get(at..at + 8).ok_or(DecodeError::Truncated(what))?;
    let (len, off) = (usize::from(le::u16(f, 0)), le::u32(f, 4) as usize);
    if len == 0 {
        return Ok(&[]);
    }
    msg.get(off..off + len).ok_or(DecodeError::Truncated(what))
}

impl Challenge {
    /// Parses a CHALLENGE_MESSAGE.
    ///
    /// # Errors
    /// Not NTLMSSP type 2, or fields outside the message.
    pub fn parse(msg: &[u8]) -> Result<Challenge, DecodeError> {
        if msg.len() < 32 || &msg[..8] != SIGNATURE {
            return Err(DecodeError::Malformed("NTLMSSP signature"));
        }
        if le::u32(msg, 8) != 2 {
            return Err(DecodeError::Malformed("NTLMSSP message type (want CHALLENGE)"));
        }
        let flags = le::u32(msg, 20);
        let mut server_challenge = [0u8; 8];
        server_challenge.copy_from_slice(&msg[24..32]);
        let target_name = payload(msg, 12, "NTLM target name")?.to_vec();
        let target_info = if msg.len() >= 48 {
            payload(msg, 40, "NTLM target info")?.to_vec()
        } else {
            Vec::new()
        };
        Ok(Challenge {
            flags,
            server_challenge,
            target_name,
            target_info,
        })
    }

    /// The server's MsvAvTimestamp, when its target info has one.
    pub fn timestamp(&self) -> Option<u64> {
        let mut at = 0;
        while let Some(h) = self.target_info.get(at..at + 4) {
            let (id, len) = (le::u16(h, 0), usize::from(le::u16(h, 2)));
            let v = self.target_info.get(at + 4..at + 4 + len)?;
            match id {
                av::EOL => return None,
                av::TIMESTAMP if len == 8 => return Some(le::u64(v, 0)),
                _ => at += 4 + len,
            }
        }
        None
    }
}

/// The client's answer, with the session key it shares with the server.
#[derive(Debug, Clone)]
pub struct Authenticate {
    /// The AUTHENTICATE_MESSAGE bytes.
    pub message: Vec<u8>,
    /// ExportedSessionKey (no key exchange: the SessionBaseKey), from which
    /// SMB derives its signing and encryption keys.
    pub session_key: [u8; 16],
}

/// Builds the NTLMv2 AUTHENTICATE_MESSAGE (3.3.2) for `challenge`.
/// `time` (FILETIME) is used when the server sent no timestamp;
/// `client_challenge` must be random.
pub fn authenticate(
    challenge: &Challenge,
    user: &str,
    domain: &str,
    workstation: &str,
    nt_hash: &[u8; 16],
    client_challenge: [u8; 8],
    time: u64,
) -> Authenticate {
    let key = ntowf_v2(nt_hash, user, domain);
    let ts = challenge.timestamp().unwrap_or(time);
    // temp = Responserversion, HiResponserversion, Z(6), Time, ClientChallenge, Z(4), ServerName, Z(4)
    let mut temp = vec![1u8, 1, 0, 0, 0, 0, 0, 0];
    temp.extend_from_slice(&ts.to_le_bytes());
    temp.extend_from_slice(&client_challenge);
    temp.extend_from_slice(&[0; 4]);
    temp.extend_from_slice(&challenge.target_info);
    temp.extend_from_slice(&[0; 4]);
    let proof = hmac_md5(&key, &[&challenge.server_challenge, &temp]);
    let mut nt_response = proof.to_vec();
    nt_response.extend_from_slice(&temp);
    let session_key = hmac_md5(&key, &[&proof]);
    // With a server timestamp the LM response is Z(24) (3.3.2).
    let lm_response = vec![0u8; 24];

    let negotiate_flags = challenge.flags
        & (flags::UNICODE
            | flags::NTLM
            | flags::ALWAYS_SIGN
            | flags::SIGN
            | flags::EXTENDED_SESSIONSECURITY
            | flags::TARGET_INFO
            | flags::N128
            | flags::N56);
    let (domain, user, workstation) = (utf16le(domain), utf16le(user), utf16le(workstation));
    // EncryptedRandomSessionKey stays empty: no key exchange.
    let m = assemble(
        &[&lm_response, &nt_response, &domain, &user, &workstation, &[]],
        negotiate_flags,
    );
    Authenticate {
        message: m,
        session_key,
    }
}

/// The server's CHALLENGE_MESSAGE (2.2.1.2): `server_challenge` must be
/// random; the target info carries the names and `time` (FILETIME).
pub fn challenge_message(
    client_flags: u32,
    server_challenge: [u8; 8],
    domain: &str,
    computer: &str,
    time: u64,
) -> Vec<u8> {
    let mut info = Vec::new();
    let mut av_pair = |id: u16, v: &[u8]| {
        info.extend_from_slice(&id.to_le_bytes());
        info.extend_from_slice(&(v.len() as u16).to_le_bytes());
        info.extend_from_slice(v);
    };
    av_pair(av::NB_DOMAIN_NAME, &utf16le(domain));
    av_pair(av::NB_COMPUTER_NAME, &utf16le(computer));
    av_pair(av::TIMESTAMP, &time.to_le_bytes());
    av_pair(av::EOL, &[]);
    let target = utf16le(domain);
    let flags = (client_flags
        & (flags::UNICODE
            | flags::SIGN
            | flags::SEAL
            | flags::ALWAYS_SIGN
            | flags::EXTENDED_SESSIONSECURITY
            | flags::N128
            | flags::KEY_EXCH
            | flags::N56))
        | flags::UNICODE
        | flags::NTLM
        | flags::TARGET_INFO
        | flags::REQUEST_TARGET
        | 0x0001_0000; // NTLMSSP_TARGET_TYPE_DOMAIN
    const FIXED: u32 = 48;
    let mut m = SIGNATURE.to_vec();
    m.extend_from_slice(&2u32.to_le_bytes());
    m.extend_from_slice(&(target.len() as u16).to_le_bytes());
    m.extend_from_slice(&(target.len() as u16).to_le_bytes());
    m.extend_from_slice(&FIXED.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&server_challenge);
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&(FIXED + target.len() as u32).to_le_bytes());
    m.extend_from_slice(&target);
    m.extend_from_slice(&info);
    m
}

/// The fields of a client's AUTHENTICATE_MESSAGE (2.2.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticateFields<'a> {
    pub lm_response: &'a [u8],
    pub nt_response: &'a [u8],
    pub domain: String,
    pub user: String,
    pub workstation: String,
    pub encrypted_session_key: &'a [u8],
    pub flags: u32,
}

impl<'a> AuthenticateFields<'a> {
    /// Parses an AUTHENTICATE_MESSAGE.
    ///
    /// # Errors
    /// Not NTLMSSP type 3, fields outside the message, names not UTF-16.
    pub fn parse(msg: &'a [u8]) -> Result<AuthenticateFields<'a>, DecodeError> {
        if msg.len() < 64 || &msg[..8] != SIGNATURE || le::u32(msg, 8) != 3 {
            return Err(DecodeError::Malformed("NTLMSSP message type (want AUTHENTICATE)"));
        }
        let text = |at: usize, what: &'static str| crate::utf16_string(payload(msg, at, what)?, what);
        Ok(AuthenticateFields {
            lm_response: payload(msg, 12, "NTLM LM response")?,
            nt_response: payload(msg, 20, "NTLM NT response")?,
            domain: text(28, "NTLM domain")?,
            user: text(36, "NTLM user")?,
            workstation: text(44, "NTLM workstation")?,
            encrypted_session_key: payload(msg, 52, "NTLM session key")?,
            flags: le::u32(msg, 60),
        })
    }

    /// An anonymous log-on: no user and no NT response.
    pub fn is_anonymous(&self) -> bool {
        self.user.is_empty() && self.nt_response.is_empty()
    }
}

/// Checks an NTLMv2 response (3.3.2) against the user's NT hash: the
/// session key when the proof matches, else `None`.
pub fn verify_ntlmv2(
    nt_hash: &[u8; 16],
    user: &str,
    domain: &str,
    server_challenge: &[u8; 8],
    nt_response: &[u8],
) -> Option<[u8; 16]> {
    // NTProofStr (16) then the client's blob, at least its fixed 28 bytes.
    if nt_response.len() < 16 + 28 {
        return None;
    }
    let key = ntowf_v2(nt_hash, user, domain);
    let (proof, temp) = nt_response.split_at(16);
    let want = hmac_md5(&key, &[server_challenge, temp]);
    // A forged proof is refused either way; the comparison's timing gives
    // nothing of the key.
    (want == proof).then(|| hmac_md5(&key, &[&want]))
}

/// The session key an AUTHENTICATE gives (3.2.5.1.2, 3.3.5.1.2): with
/// KEY_EXCH the client's random key, sent sealed with RC4 under the key
/// the NTLMv2 proof yields; without it, that key itself. `None` for a
/// KEY_EXCH message whose sealed key is not 16 bytes.
pub fn exported_session_key(base: &[u8; 16], auth: &AuthenticateFields<'_>) -> Option<[u8; 16]> {
    use rc4::{consts::U16, KeyInit, Rc4, StreamCipher};
    if auth.flags & flags::KEY_EXCH == 0 {
        return Some(*base);
    }
    let mut key: [u8; 16] = auth.encrypted_session_key.try_into().ok()?;
    Rc4::<U16>::new(base.into()).apply_keystream(&mut key);
    Some(key)
}

/// One direction of NTLM session security with extended session security
/// (MS-NLMP 3.4.4.2): the signing key, the RC4 sealing handle (its key
/// stream runs on across messages) and the sequence number.
pub struct NtlmSigner {
    sign_key: [u8; 16],
    seal: Option<rc4::Rc4<rc4::consts::U16>>,
    seq: u32,
}

impl std::fmt::Debug for NtlmSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NtlmSigner(seq {}, <secret>)", self.seq)
    }
}

impl NtlmSigner {
    /// The 16-byte signature of `msg` (version 1, checksum, sequence).
    pub fn sign(&mut self, msg: &[u8]) -> [u8; 16] {
        use rc4::StreamCipher;
        let seq = self.seq.to_le_bytes();
        self.seq = self.seq.wrapping_add(1);
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&hmac_md5(&self.sign_key, &[&seq, msg])[..8]);
        if let Some(rc4) = &mut self.seal {
            rc4.apply_keystream(&mut checksum);
        }
        let mut sig = [0u8; 16];
        sig[..4].copy_from_slice(&1u32.to_le_bytes());
        sig[4..12].copy_from_slice(&checksum);
        sig[12..].copy_from_slice(&seq);
        sig
    }

    /// Whether `sig` is the peer's signature of `msg` at the next sequence
    /// number.
    pub fn verify(&mut self, msg: &[u8], sig: &[u8]) -> bool {
        sig.len() == 16 && self.sign(msg)[..] == sig[..]
    }
}

/// Both directions' session security from the exported session key and the
/// flags the AUTHENTICATE negotiated.
pub fn session_security(key: &[u8; 16], negotiate_flags: u32) -> (NtlmSigner, NtlmSigner) {
    use rc4::KeyInit;
    let derive = |k: &[u8], magic: &[u8]| -> [u8; 16] {
        let mut h = md5::Md5::new();
        h.update(k);
        h.update(magic);
        h.finalize().into()
    };
    let seal_base: &[u8] = if negotiate_flags & flags::N128 != 0 {
        key
    } else if negotiate_flags & flags::N56 != 0 {
        &key[..7]
    } else {
        &key[..5]
    };
    let side = |sign: &[u8], seal: &[u8]| NtlmSigner {
        sign_key: derive(key, sign),
        seal: (negotiate_flags & flags::KEY_EXCH != 0).then(|| rc4::Rc4::new((&derive(seal_base, seal)).into())),
        seq: 0,
    };
    (
        side(
            b"session key to client-to-server signing key magic constant\0",
            b"session key to client-to-server sealing key magic constant\0",
        ),
        side(
            b"session key to server-to-client signing key magic constant\0",
            b"session key to server-to-client sealing key magic constant\0",
        ),
    )
}

/// MsvAvFlags' "a MIC follows" bit, found in the NTLMv2 response's pairs.
fn mic_present(nt_response: &[u8]) -> bool {
    let mut at = 16 + 28;
    while let Some(h) = nt_response.get(at..at + 4) {
        let (id, len) = (le::u16(h, 0), usize::from(le::u16(h, 2)));
        if id == av::EOL {
            break;
        }
        if id == 0x0006 && len == 4 {
            return nt_response
                .get(at + 4..at + 8)
                .is_some_and(|v| le::u32(v, 0) & 0x2 != 0);
        }
        at += 4 + len;
    }
    false
}

/// Checks the AUTHENTICATE_MESSAGE's MIC (3.2.5.1.2), which binds the three
/// messages together so no flag or name was changed in flight: true when
/// the client says there is none, or when it verifies.
pub fn verify_mic(
    key: &[u8; 16],
    negotiate: &[u8],
    challenge: &[u8],
    authenticate: &[u8],
    auth: &AuthenticateFields<'_>,
) -> bool {
    if !mic_present(auth.nt_response) {
        return true;
    }
    let Some(mic) = authenticate.get(72..88) else {
        return false;
    };
    let mut zeroed = authenticate.to_vec();
    zeroed[72..88].fill(0);
    hmac_md5(key, &[negotiate, challenge, &zeroed])[..] == mic[..]
}

/// The anonymous AUTHENTICATE_MESSAGE (3.2.5.1.2): no user, an empty NT
/// response and a one-byte LM response; the session has no key, so nothing
/// is signed.
pub fn authenticate_anonymous(challenge: &Challenge) -> Vec<u8> {
    let negotiate_flags = (challenge.flags
        & (flags::UNICODE | flags::NTLM | flags::EXTENDED_SESSIONSECURITY | flags::N128 | flags::N56))
        | flags::ANONYMOUS;
    let fields: [&[u8]; 6] = [&[0], &[], &[], &[], &[], &[]];
    assemble(&fields, negotiate_flags)
}

/// AUTHENTICATE_MESSAGE from its six payloads: LM, NT, domain, user,
/// workstation, encrypted session key (the descriptors' wire order).
fn assemble(fields: &[&[u8]; 6], negotiate_flags: u32) -> Vec<u8> {
    const FIXED: usize = 64;
    let mut m = Vec::with_capacity(FIXED + fields.iter().map(|f| f.len()).sum::<usize>());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&3u32.to_le_bytes());
    let mut offset = FIXED as u32;
    for f in fields {
        m.extend_from_slice(&(f.len() as u16).to_le_bytes());
        m.extend_from_slice(&(f.len() as u16).to_le_bytes());
        m.extend_from_slice(&offset.to_le_bytes());
        offset += f.len() as u32;
    }
    m.extend_from_slice(&negotiate_flags.to_le_bytes());
    debug_assert_eq!(m.len(), FIXED);
    for f in fields {
        m.extend_from_slice(f);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MS-NLMP 4.2.4.4: GSS_WrapEx with NTLMv2 keys. Our signer makes the
    /// same keys and, after the sealed data takes its share of the RC4
    /// stream, the same signature.
    #[test]
    fn session_security_matches_the_spec_example() {
        use rc4::StreamCipher;
        let f = flags::KEY_EXCH | flags::N128 | flags::EXTENDED_SESSIONSECURITY | flags::SEAL | flags::SIGN;
        let (mut client, _) = session_security(&[0x55; 16], f);
        assert_eq!(
            client.sign_key,
            [0x47, 0x88, 0xdc, 0x86, 0x1b, 0x47, 0x82, 0xf3, 0x5d, 0x43, 0xfd, 0x98, 0xfe, 0x1a, 0x2d, 0x39]
        );
        let plain: Vec<u8> = "Plaintext".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut sealed = plain.clone();
        client.seal.as_mut().unwrap().apply_keystream(&mut sealed);
        assert_eq!(&sealed[..4], &[0x54, 0xe5, 0x01, 0x65]);
        assert_eq!(
            client.sign(&plain),
            [0x01, 0, 0, 0, 0x7f, 0xb3, 0x8e, 0xc5, 0xc5, 0x5d, 0x49, 0x76, 0, 0, 0, 0]
        );
        // The next signature uses the next sequence number.
        assert_eq!(&client.sign(&plain)[12..], &[1, 0, 0, 0]);
    }

    #[test]
    fn our_challenge_parses_and_an_authenticate_to_it_verifies() {
        let m = challenge_message(
            flags::UNICODE | flags::SIGN,
            [4; 8],
            "WORKGROUP",
            "GATEWAY",
            0x01d9_0000_0000_0001,
        );
        let c = Challenge::parse(&m).unwrap();
        assert_eq!(
            (c.server_challenge, c.timestamp()),
            ([4; 8], Some(0x01d9_0000_0000_0001))
        );
        assert_eq!(c.target_name, utf16le("WORKGROUP"));
        let a = authenticate(&c, "alice", "WORKGROUP", "PC", &nt_hash("pw"), [5; 8], 0);
        let f = AuthenticateFields::parse(&a.message).unwrap();
        assert!(!f.is_anonymous());
        assert_eq!(
            verify_ntlmv2(&nt_hash("pw"), &f.user, &f.domain, &[4; 8], f.nt_response),
            Some(a.session_key)
        );
        let anon_msg = authenticate_anonymous(&c);
        let anon = AuthenticateFields::parse(&anon_msg).unwrap();
        assert!(anon.is_anonymous());
        for cut in 0..a.message.len() {
            let _ = AuthenticateFields::parse(&a.message[..cut]);
        }
    }

    #[test]
    fn the_nt_hash_of_a_known_password() {
        // MD4("password" as UTF-16LE), the well-known NT hash of "password".
        let h = nt_hash("password");
        assert_eq!(
            h,
            [0x88, 0x46, 0xf7, 0xea, 0xee, 0x8f, 0xb1, 0x17, 0xad, 0x06, 0xbd, 0xd8, 0x30, 0xb7, 0x58, 0x6c]
        );
    }

    #[test]
    fn a_challenge_and_its_authenticate_message_fit_together() {
        let mut info = Vec::new();
        info.extend_from_slice(&av::TIMESTAMP.to_le_bytes());
        info.extend_from_slice(&8u16.to_le_bytes());
        info.extend_from_slice(&0x01d9_0000_0000_0000u64.to_le_bytes());
        info.extend_from_slice(&[0, 0, 0, 0]);
        let mut msg = SIGNATURE.to_vec();
        msg.extend_from_slice(&2u32.to_le_bytes());
        msg.extend_from_slice(&[0, 0, 0, 0, 48, 0, 0, 0]); // empty target name
        msg.extend_from_slice(&(flags::UNICODE | flags::NTLM | flags::TARGET_INFO).to_le_bytes());
        msg.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        msg.extend_from_slice(&[0; 8]);
        msg.extend_from_slice(&(info.len() as u16).to_le_bytes());
        msg.extend_from_slice(&(info.len() as u16).to_le_bytes());
        msg.extend_from_slice(&48u32.to_le_bytes());
        msg.extend_from_slice(&info);
        let c = Challenge::parse(&msg).unwrap();
        assert_eq!(c.server_challenge, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(c.timestamp(), Some(0x01d9_0000_0000_0000));
        let a = authenticate(&c, "u", "D", "W", &nt_hash("p"), [9; 8], 0);
        assert_eq!(&a.message[..8], SIGNATURE);
        assert_eq!(le::u32(&a.message, 8), 3);
        // The NT response sits where its descriptor says, and embeds the target info.
        let nt = payload(&a.message, 20, "nt").unwrap();
        assert_eq!(&nt[16..18], &[1, 1]);
        assert!(nt.windows(info.len()).any(|w| w == info));
        assert_eq!(payload(&a.message, 36, "user").unwrap(), utf16le("u"));
        // The server's side checks the proof and finds the same key.
        let f = AuthenticateFields::parse(&a.message).unwrap();
        assert_eq!(
            (f.user.as_str(), f.domain.as_str(), f.workstation.as_str()),
            ("u", "D", "W")
        );
        let key = verify_ntlmv2(&nt_hash("p"), &f.user, &f.domain, &c.server_challenge, f.nt_response);
        assert_eq!(key, Some(a.session_key));
        assert_eq!(
            verify_ntlmv2(&nt_hash("q"), &f.user, &f.domain, &c.server_challenge, f.nt_response),
            None
        );
        assert_eq!(
            verify_ntlmv2(&nt_hash("p"), &f.user, &f.domain, &[0; 8], f.nt_response),
            None
        );
        for cut in 0..msg.len() {
            let _ = Challenge::parse(&msg[..cut]);
        }
    }
}
