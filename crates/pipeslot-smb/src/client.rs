//! The client side of one SMB2 connection, without I/O: a [`Handshake`]
//! (NEGOTIATE, SESSION_SETUP with SPNEGO/NTLMv2, key derivation) that turns
//! into a [`Connection`], which numbers, charges, signs or seals requests
//! and checks, counts and unseals responses.
//!
//! The driver owns the socket and the clock. It writes what these give it
//! ([`Outgoing::frame`] already carries the Direct TCP header), reads whole
//! frames ([`crate::transport::next_message`]) and hands them back; a
//! response is matched to its request by message id.

use std::collections::HashMap;
use std::fmt;

use crate::crypt::{self, Cipher, SessionCipher};
use crate::header::{flags, Command, Header, HeaderRepr, Target, HEADER_LEN, TRANSFORM_ID};
use crate::negotiate::{
    capabilities, cipher, dialect, hash_algorithm, security_mode, signing_algorithm, NegotiateContext,
    NegotiateRequest, NegotiateResponse,
};
use crate::ntlm;
use crate::session::{session_flags, SessionSetupRequest, SessionSetupResponse};
use crate::signing::{self, Algorithm, PreauthHash};
use crate::spnego;
use crate::status::NtStatus;
use crate::transport::transport_header;
use crate::DecodeError;

/// Who the client logs on as.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// A null session: no user, nothing signed.
    Anonymous,
    /// NTLMv2 with a user's NT hash (see [`ntlm::nt_hash`]).
    Ntlm {
        user: String,
        domain: String,
        nt_hash: [u8; 16],
    },
}

impl fmt::Debug for Auth {
    /// Never shows the hash: it is as good as the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Anonymous => f.write_str("Anonymous"),
            Auth::Ntlm { user, domain, .. } => write!(f, "Ntlm({domain}\\{user}, <secret>)"),
        }
    }
}

/// The random values a handshake needs; the driver draws them.
#[derive(Clone, PartialEq, Eq)]
pub struct Entropy {
    pub client_guid: [u8; 16],
    pub salt: [u8; 32],
    pub client_challenge: [u8; 8],
    /// The fixed part of every encryption nonce of the session; a counter
    /// makes the rest, so no nonce repeats under one key.
    pub nonce_prefix: [u8; 4],
}

impl fmt::Debug for Entropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Entropy(<random>)")
    }
}

/// What a client asks for.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub auth: Auth,
    /// Dialects to offer, e.g. [`ALL_DIALECTS`].
    pub dialects: Vec<u16>,
    /// Refuse a session whose messages would not be signed (or sealed).
    pub require_signing: bool,
    /// Seal every message, even when the server does not ask for it.
    pub require_encryption: bool,
    pub workstation: String,
    pub entropy: Entropy,
    /// FILETIME now, for NTLMv2 when the server sends no timestamp.
    pub now: u64,
}

/// Every dialect this crate speaks, oldest first.
pub const ALL_DIALECTS: [u16; 5] = [
    dialect::SMB_2_0_2,
    dialect::SMB_2_1,
    dialect::SMB_3_0,
    dialect::SMB_3_0_2,
    dialect::SMB_3_1_1,
];

/// Why a handshake or an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("a malformed message from the server: {0}")]
    Decode(#[from] DecodeError),
    /// The server answered the handshake with an error (e.g. a bad password).
    #[error("the server refused the log-on: {0}")]
    Status(NtStatus),
    #[error("the server chose dialect {0:#06x}, which was not offered")]
    Dialect(u16),
    #[error("a message with a wrong signature (forged, damaged, or signed with another key)")]
    BadSignature,
    #[error("an unsigned message on a session that signs (refused: anyone on the path could have sent it)")]
    Unsigned,
    #[error("a message in the clear on a session that encrypts (refused)")]
    Unencrypted,
    #[error("signing was required, but this session cannot sign ({0})")]
    SigningUnavailable(&'static str),
    #[error("encryption was required, but {0}")]
    EncryptionUnavailable(&'static str),
    #[error("an answer to message {0}, which is not outstanding")]
    Unsolicited(u64),
    #[error("the server granted no credits for a request of {0}")]
    NoCredits(u16),
    #[error("the server broke the protocol: {0}")]
    Protocol(&'static str),
}

/// A step of the handshake: a message to send, or done.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this frame (Direct TCP header included) and feed back the answer.
    Send(Vec<u8>),
    /// An interim answer: keep reading.
    Wait,
    /// The session is up: take it with [`Handshake::finish`].
    Ready,
}

#[derive(Debug)]
enum Phase {
    Negotiate,
    Challenge,
    Final { session_key: Option<[u8; 16]> },
    Ready { session_key: Option<[u8; 16]>, flags: u16 },
}

/// The terms the server agreed to in NEGOTIATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub dialect: u16,
    pub server_guid: [u8; 16],
    pub server_security_mode: u16,
    pub capabilities: u32,
    pub max_read: u32,
    pub max_write: u32,
    pub max_transact: u32,
    cipher: Option<Cipher>,
    signing: Option<u16>,
}

/// NEGOTIATE and SESSION_SETUP, as a state machine.
#[derive(Debug)]
pub struct Handshake {
    cfg: ClientConfig,
    preauth: PreauthHash,
    phase: Phase,
    negotiated: Option<Negotiated>,
    negotiate_request: Vec<u8>,
    session_id: u64,
    next_mid: u64,
    credits: u32,
}

/// How many credits a request asks for beyond its charge while the window
/// is small: enough for many pipes' reads and writes in flight at once.
const CREDIT_TOP_UP: u16 = 64;
const CREDIT_WINDOW: u32 = 512;

fn frame(msg: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(4 + msg.len());
    f.extend_from_slice(&transport_header(msg.len()).expect("requests stay under 16 MiB"));
    f.extend_from_slice(msg);
    f
}

impl Handshake {
    /// Starts: the NEGOTIATE frame to send first.
    pub fn start(cfg: ClientConfig) -> (Handshake, Vec<u8>) {
        let offers_311 = cfg.dialects.contains(&dialect::SMB_3_1_1);
        let mut contexts = Vec::new();
        if offers_311 {
            contexts.push(NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![hash_algorithm::SHA_512],
                salt: cfg.entropy.salt.to_vec(),
            });
            contexts.push(NegotiateContext::Encryption {
                ciphers: vec![
                    cipher::AES_128_GCM,
                    cipher::AES_128_CCM,
                    cipher::AES_256_GCM,
                    cipher::AES_256_CCM,
                ],
            });
            contexts.push(NegotiateContext::Signing {
                algorithms: vec![
                    signing_algorithm::AES_GMAC,
                    signing_algorithm::AES_CMAC,
                    signing_algorithm::HMAC_SHA256,
                ],
            });
        }
        let req = NegotiateRequest {
            dialects: cfg.dialects.clone(),
            security_mode: if cfg.require_signing {
                security_mode::SIGNING_ENABLED | security_mode::SIGNING_REQUIRED
            } else {
                security_mode::SIGNING_ENABLED
            },
            // Samba names a cipher only to clients that say they encrypt.
            capabilities: capabilities::ENCRYPTION | capabilities::LARGE_MTU,
            client_guid: cfg.entropy.client_guid,
            contexts,
        };
        let mut msg = [0u8; HEADER_LEN].to_vec();
        HeaderRepr::request(Command::NEGOTIATE, 0, 1).emit((&mut msg[..HEADER_LEN]).try_into().expect("64"));
        msg.extend_from_slice(&req.emit_body());
        let hs = Handshake {
            cfg,
            preauth: PreauthHash::default(),
            phase: Phase::Negotiate,
            negotiated: None,
            negotiate_request: msg.clone(),
            session_id: 0,
            next_mid: 1,
            credits: 0,
        };
        let f = frame(&msg);
        (hs, f)
    }

    /// The dialect and limits, once NEGOTIATE is answered.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    fn setup_request(&mut self, token: &[u8]) -> Vec<u8> {
        let mut h = HeaderRepr::request(Command::SESSION_SETUP, self.next_mid, CREDIT_TOP_UP);
        h.session_id = self.session_id;
        h.credit_charge = u16::from(self.large_mtu());
        self.next_mid += 1;
        self.credits = self.credits.saturating_sub(1);
        let mut msg = vec![0u8; HEADER_LEN];
        h.emit((&mut msg[..]).try_into().expect("64"));
        msg.extend_from_slice(
            &SessionSetupRequest {
                security_mode: if self.cfg.require_signing {
                    security_mode::SIGNING_REQUIRED as u8
                } else {
                    security_mode::SIGNING_ENABLED as u8
                },
                capabilities: 0,
                previous_session_id: 0,
                security_buffer: token,
            }
            .emit_body(),
        );
        msg
    }

    fn large_mtu(&self) -> bool {
        self.negotiated
            .as_ref()
            .is_some_and(|n| n.dialect != dialect::SMB_2_0_2 && n.capabilities & capabilities::LARGE_MTU != 0)
    }

    fn is_311(&self) -> bool {
        self.negotiated
            .as_ref()
            .is_some_and(|n| n.dialect == dialect::SMB_3_1_1)
    }

    /// Feeds one message from the server (without its transport header).
    ///
    /// # Errors
    /// A refusal, a malformed answer, or an answer that breaks what was
    /// asked for (a dialect not offered, a session that cannot sign when
    /// signing was required).
    pub fn receive(&mut self, msg: &[u8]) -> Result<Step, ClientError> {
        let h = Header::new_checked(msg)?;
        if !h.is_response() {
            return Err(ClientError::Protocol("a request where a response belongs"));
        }
        self.credits += u32::from(h.credits());
        if h.status() == NtStatus::STATUS_PENDING && h.is_async() {
            return Ok(Step::Wait);
        }
        match self.phase {
            Phase::Negotiate => self.on_negotiate(msg, &h),
            Phase::Challenge => self.on_challenge(msg, &h),
            Phase::Final { session_key } => self.on_final(msg, &h, session_key),
            Phase::Ready { .. } => Err(ClientError::Protocol("a message after the handshake ended")),
        }
    }

    fn on_negotiate(&mut self, msg: &[u8], h: &Header<&[u8]>) -> Result<Step, ClientError> {
        if h.command() != Command::NEGOTIATE || h.message_id() != 0 {
            return Err(ClientError::Protocol("an answer that is not NEGOTIATE's"));
        }
        if h.status() != NtStatus::STATUS_SUCCESS {
            return Err(ClientError::Status(h.status()));
        }
        let r = NegotiateResponse::parse(msg)?;
        if !self.cfg.dialects.contains(&r.dialect) {
            return Err(ClientError::Dialect(r.dialect));
        }
        let mut n = Negotiated {
            dialect: r.dialect,
            server_guid: r.server_guid,
            server_security_mode: r.security_mode,
            capabilities: r.capabilities,
            max_read: r.max_read_size,
            max_write: r.max_write_size,
            max_transact: r.max_transact_size,
            cipher: None,
            signing: None,
        };
        match r.dialect {
            dialect::SMB_3_1_1 => {
                for c in &r.contexts {
                    match c {
                        NegotiateContext::PreauthIntegrity { hash_algorithms, .. }
                            if hash_algorithms.as_slice() != [hash_algorithm::SHA_512] =>
                        {
                            return Err(ClientError::Protocol("a preauth hash other than SHA-512"));
                        }
                        NegotiateContext::Encryption { ciphers } => {
                            // Zero means "none in common".
                            n.cipher = match ciphers.as_slice() {
                                [0] => None,
                                [one] => {
                                    Some(Cipher::from_id(*one).ok_or(ClientError::Protocol("a cipher not offered"))?)
                                }
                                _ => return Err(ClientError::Protocol("not exactly one cipher chosen")),
                            };
                        }
                        NegotiateContext::Signing { algorithms } => match algorithms.as_slice() {
                            [a] if *a <= signing_algorithm::AES_GMAC => n.signing = Some(*a),
                            _ => return Err(ClientError::Protocol("a signing algorithm not offered")),
                        },
                        _ => {}
                    }
                }
                self.preauth.update(&self.negotiate_request);
                self.preauth.update(msg);
            }
            dialect::SMB_3_0 | dialect::SMB_3_0_2 if r.capabilities & capabilities::ENCRYPTION != 0 => {
                n.cipher = Some(Cipher::Aes128Ccm);
            }
            _ => {}
        }
        if self.cfg.require_encryption && n.cipher.is_none() {
            return Err(ClientError::EncryptionUnavailable(
                "the server offers no cipher in common (SMB 3.x with encryption is needed)",
            ));
        }
        self.negotiated = Some(n);
        let flags = ntlm::flags::UNICODE
            | ntlm::flags::REQUEST_TARGET
            | ntlm::flags::NTLM
            | ntlm::flags::SIGN
            | ntlm::flags::ALWAYS_SIGN
            | ntlm::flags::EXTENDED_SESSIONSECURITY
            | ntlm::flags::TARGET_INFO
            | ntlm::flags::N128
            | ntlm::flags::N56
            | if self.cfg.auth == Auth::Anonymous {
                ntlm::flags::ANONYMOUS
            } else {
                0
            };
        let req = self.setup_request(&spnego::neg_token_init(&ntlm::negotiate_message(flags)));
        if self.is_311() {
            self.preauth.update(&req);
        }
        self.phase = Phase::Challenge;
        Ok(Step::Send(frame(&req)))
    }

    fn on_challenge(&mut self, msg: &[u8], h: &Header<&[u8]>) -> Result<Step, ClientError> {
        if h.command() != Command::SESSION_SETUP {
            return Err(ClientError::Protocol("an answer that is not SESSION_SETUP's"));
        }
        if h.status() != NtStatus::STATUS_MORE_PROCESSING_REQUIRED {
            return Err(ClientError::Status(match h.status() {
                NtStatus::STATUS_SUCCESS => return Err(ClientError::Protocol("a log-on without a challenge")),
                s => s,
            }));
        }
        if self.is_311() {
            self.preauth.update(msg);
        }
        self.session_id = h.session_id();
        let r = SessionSetupResponse::parse(msg)?;
        let token = spnego::NegTokenResp::parse(r.security_buffer)?;
        if token.state == Some(spnego::NegState::Reject) {
            return Err(ClientError::Status(NtStatus::STATUS_LOGON_FAILURE));
        }
        let challenge = ntlm::Challenge::parse(token.response_token.ok_or(DecodeError::Truncated("NTLM challenge"))?)?;
        let (message, session_key) = match &self.cfg.auth {
            Auth::Anonymous => (ntlm::authenticate_anonymous(&challenge), None),
            Auth::Ntlm { user, domain, nt_hash } => {
                let a = ntlm::authenticate(
                    &challenge,
                    user,
                    domain,
                    &self.cfg.workstation,
                    nt_hash,
                    self.cfg.entropy.client_challenge,
                    self.cfg.now,
                );
                (a.message, Some(a.session_key))
            }
        };
        let req = self.setup_request(&spnego::neg_token_resp(&message));
        if self.is_311() {
            self.preauth.update(&req);
        }
        self.phase = Phase::Final { session_key };
        Ok(Step::Send(frame(&req)))
    }

    fn on_final(&mut self, msg: &[u8], h: &Header<&[u8]>, session_key: Option<[u8; 16]>) -> Result<Step, ClientError> {
        if h.command() != Command::SESSION_SETUP || h.session_id() != self.session_id {
            return Err(ClientError::Protocol("an answer that is not our SESSION_SETUP's"));
        }
        if h.status() != NtStatus::STATUS_SUCCESS {
            return Err(ClientError::Status(h.status()));
        }
        let flags = SessionSetupResponse::parse(msg)?.session_flags;
        let keyless = flags & (session_flags::IS_GUEST | session_flags::IS_NULL) != 0 || session_key.is_none();
        if keyless {
            if self.cfg.require_signing {
                return Err(ClientError::SigningUnavailable(
                    "a guest or anonymous session has no key; give a user and password",
                ));
            }
            if self.cfg.require_encryption || flags & session_flags::ENCRYPT_DATA != 0 {
                return Err(ClientError::EncryptionUnavailable(
                    "a guest or anonymous session has no key; give a user and password",
                ));
            }
        }
        let session_key = if keyless { None } else { session_key };
        if let Some(key) = session_key {
            // The server signs this answer when it can (3.1.1 always does):
            // a check that it holds the same key as we do.
            if h.flags() & flags::SIGNED != 0 {
                let (k, alg) = self.signing_key(&key);
                if !signing::verify(msg, &k, alg) {
                    return Err(ClientError::BadSignature);
                }
            }
        }
        self.phase = Phase::Ready { session_key, flags };
        Ok(Step::Ready)
    }

    fn signing_key(&self, session_key: &[u8; 16]) -> ([u8; 16], Algorithm) {
        let n = self.negotiated.as_ref().expect("negotiated before a session");
        match n.dialect {
            dialect::SMB_2_0_2 | dialect::SMB_2_1 => (*session_key, Algorithm::HmacSha256),
            dialect::SMB_3_0 | dialect::SMB_3_0_2 => (signing::signing_key_30(session_key), Algorithm::AesCmac),
            _ => (
                signing::signing_key_311(session_key, &self.preauth),
                match n.signing {
                    Some(signing_algorithm::AES_GMAC) => Algorithm::AesGmac,
                    Some(signing_algorithm::HMAC_SHA256) => Algorithm::HmacSha256,
                    _ => Algorithm::AesCmac,
                },
            ),
        }
    }

    /// The established connection.
    ///
    /// # Panics
    /// Before [`Step::Ready`].
    pub fn finish(self) -> Connection {
        let Phase::Ready { session_key, flags } = self.phase else {
            panic!("Handshake::finish before Step::Ready");
        };
        let n = self.negotiated.clone().expect("negotiated");
        let large_mtu = self.large_mtu();
        let sign = session_key.map(|k| self.signing_key(&k));
        let encrypt = self.cfg.require_encryption || flags & session_flags::ENCRYPT_DATA != 0;
        let seal = match (session_key, encrypt, n.cipher) {
            (Some(k), true, Some(c)) if n.dialect == dialect::SMB_3_1_1 => {
                Some(SessionCipher::smb_311(c, &k, &self.preauth))
            }
            (Some(k), true, Some(_)) => Some(SessionCipher::smb_30(&k)),
            _ => None,
        };
        Connection {
            info: SessionInfo {
                dialect: n.dialect,
                session_id: self.session_id,
                max_read: n.max_read,
                max_write: n.max_write,
                max_transact: n.max_transact,
                guest: flags & session_flags::IS_GUEST != 0,
                anonymous: flags & session_flags::IS_NULL != 0 || self.cfg.auth == Auth::Anonymous,
                signing: if seal.is_some() { None } else { sign.map(|s| s.1) },
                encryption: seal.as_ref().map(|s| s.client_to_server.cipher),
                negotiated: n,
                client_guid: self.cfg.entropy.client_guid,
                offered: self.cfg.dialects.clone(),
                client_security_mode: if self.cfg.require_signing {
                    security_mode::SIGNING_ENABLED | security_mode::SIGNING_REQUIRED
                } else {
                    security_mode::SIGNING_ENABLED
                },
            },
            sign,
            seal,
            nonce_prefix: self.cfg.entropy.nonce_prefix,
            nonce_counter: 0,
            next_mid: self.next_mid,
            credits: self.credits,
            large_mtu,
            outstanding: HashMap::new(),
        }
    }
}

/// What the session is, for the driver and for `info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub dialect: u16,
    pub session_id: u64,
    pub max_read: u32,
    pub max_write: u32,
    pub max_transact: u32,
    pub guest: bool,
    pub anonymous: bool,
    /// How messages are signed (`None` when sealed or keyless).
    pub signing: Option<Algorithm>,
    pub encryption: Option<Cipher>,
    pub negotiated: Negotiated,
    client_guid: [u8; 16],
    offered: Vec<u16>,
    client_security_mode: u16,
}

/// A request ready to write.
#[derive(Debug)]
pub struct Outgoing {
    pub message_id: u64,
    /// Direct TCP header and the (signed or sealed) message.
    pub frame: Vec<u8>,
}

/// One response, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub message_id: u64,
    pub command: Command,
    pub status: NtStatus,
    /// An interim STATUS_PENDING: the real answer comes later with the same id.
    pub interim: bool,
    pub async_id: Option<u64>,
    /// The whole message, header and body, for the codecs' parsers.
    pub msg: Vec<u8>,
}

/// An established session on one connection.
#[derive(Debug)]
pub struct Connection {
    pub info: SessionInfo,
    sign: Option<([u8; 16], Algorithm)>,
    seal: Option<SessionCipher>,
    nonce_prefix: [u8; 4],
    nonce_counter: u64,
    next_mid: u64,
    credits: u32,
    large_mtu: bool,
    outstanding: HashMap<u64, Command>,
}

#[cfg(feature = "fuzzing")]
impl Connection {
    /// A session as if logged on with fixed keys, so a fuzzer reaches
    /// [`Connection::receive`] without a handshake.
    #[doc(hidden)]
    pub fn for_fuzzing(dialect: u16, sign: Option<Algorithm>, seal: Option<Cipher>) -> Connection {
        let negotiated = Negotiated {
            dialect,
            server_guid: [0; 16],
            server_security_mode: 0,
            capabilities: capabilities::LARGE_MTU,
            max_read: 1 << 20,
            max_write: 1 << 20,
            max_transact: 1 << 20,
            cipher: seal,
            signing: None,
        };
        Connection {
            info: SessionInfo {
                dialect,
                session_id: 1,
                max_read: 1 << 20,
                max_write: 1 << 20,
                max_transact: 1 << 20,
                guest: false,
                anonymous: false,
                signing: sign,
                encryption: seal,
                negotiated,
                client_guid: [0; 16],
                offered: ALL_DIALECTS.to_vec(),
                client_security_mode: 0,
            },
            sign: sign.map(|a| ([7; 16], a)),
            seal: seal.map(|c| SessionCipher::smb_311(c, &[7; 16], &PreauthHash::default())),
            nonce_prefix: [0; 4],
            nonce_counter: 0,
            next_mid: 0,
            credits: 64,
            large_mtu: true,
            outstanding: HashMap::new(),
        }
    }
}

/// The body of ECHO, LOGOFF, TREE_DISCONNECT and CANCEL requests.
pub const EMPTY_REQUEST: [u8; 4] = [4, 0, 0, 0];

impl Connection {
    /// Credits the server has granted and no request has spent yet.
    pub fn credits(&self) -> u32 {
        self.credits
    }

    /// How many credits a request carrying `send` bytes and wanting up to
    /// `receive` bytes back costs (3.1.5.2): one per 64 KiB begun.
    pub fn charge(&self, send: usize, receive: usize) -> u16 {
        if !self.large_mtu {
            return 1;
        }
        (send.max(receive).max(1).div_ceil(65536)).min(u16::MAX as usize) as u16
    }

    /// Requests still waiting for their final answer.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Builds, numbers, charges and signs (or seals) one request.
    /// `receive` is the most the answer may carry (a READ's length).
    ///
    /// # Errors
    /// `NoCredits` when the granted window is spent: wait for an answer.
    pub fn request(
        &mut self,
        command: Command,
        tree_id: u32,
        body: &[u8],
        receive: usize,
    ) -> Result<Outgoing, ClientError> {
        let charge = self.charge(body.len(), receive);
        if self.credits < u32::from(charge) {
            return Err(ClientError::NoCredits(charge));
        }
        let message_id = self.next_mid;
        self.next_mid += u64::from(charge);
        self.credits -= u32::from(charge);
        let ask = if self.credits + u32::from(charge) < CREDIT_WINDOW {
            charge.saturating_add(CREDIT_TOP_UP)
        } else {
            charge
        };
        let mut h = HeaderRepr::request(command, message_id, ask);
        h.credit_charge = if self.large_mtu { charge } else { 0 };
        h.session_id = self.info.session_id;
        h.target = Target::Sync {
            process_id: 0xFEFF,
            tree_id,
        };
        // The Direct TCP header goes first, so the signed message needs no
        // second copy to be framed.
        let mut f = Vec::with_capacity(4 + HEADER_LEN + body.len());
        f.resize(4 + HEADER_LEN, 0);
        h.emit((&mut f[4..]).try_into().expect("64"));
        f.extend_from_slice(body);
        self.outstanding.insert(message_id, command);
        Ok(Outgoing {
            message_id,
            frame: self.protect_framed(f),
        })
    }

    /// CANCEL of an outstanding request: reuses its message id and costs no
    /// credit (3.2.4.24). The server then answers the request itself,
    /// typically with STATUS_CANCELLED.
    pub fn cancel(&mut self, message_id: u64, async_id: Option<u64>) -> Vec<u8> {
        let mut h = HeaderRepr::request(Command::CANCEL, message_id, 0);
        h.session_id = self.info.session_id;
        if let Some(id) = async_id {
            h.target = Target::Async(id);
        }
        let mut msg = vec![0u8; HEADER_LEN];
        h.emit((&mut msg[..]).try_into().expect("64"));
        msg.extend_from_slice(&EMPTY_REQUEST);
        self.protect(msg)
    }

    /// Signs or seals a message behind 4 reserved bytes, and frames it.
    fn protect_framed(&mut self, mut f: Vec<u8>) -> Vec<u8> {
        if self.seal.is_some() {
            return self.protect(f.split_off(4));
        }
        if let Some((key, alg)) = &self.sign {
            signing::sign(&mut f[4..], key, *alg);
        }
        let th = transport_header(f.len() - 4).expect("requests stay under 16 MiB");
        f[..4].copy_from_slice(&th);
        f
    }

    fn protect(&mut self, mut msg: Vec<u8>) -> Vec<u8> {
        if let Some(seal) = &self.seal {
            self.nonce_counter += 1;
            let mut nonce = [0u8; 16];
            nonce[..4].copy_from_slice(&self.nonce_prefix);
            nonce[4..12].copy_from_slice(&self.nonce_counter.to_le_bytes());
            // CCM's 11-byte nonce keeps 7 counter bytes: 2^56 messages.
            return frame(&crypt::seal(&seal.client_to_server, &nonce, self.info.session_id, &msg));
        }
        if let Some((key, alg)) = &self.sign {
            signing::sign(&mut msg, key, *alg);
        }
        frame(&msg)
    }

    /// Takes one frame from the server (without its transport header):
    /// unseals it, splits a compound chain, checks each signature, counts
    /// the credits granted, and matches each answer to its request.
    ///
    /// # Errors
    /// A malformed, forged, unsigned or clear-text (when sealing) message,
    /// or an answer to nothing we asked: the connection can no longer be
    /// trusted and should be dropped.
    pub fn receive(&mut self, frame: &[u8]) -> Result<Vec<Response>, ClientError> {
        self.receive_owned(frame.to_vec())
    }

    /// [`receive`](Self::receive) for a frame the caller gives away: a
    /// single answer becomes the [`Response`] without a copy, and its
    /// signature is checked in place.
    ///
    /// # Errors
    /// As [`receive`](Self::receive).
    pub fn receive_owned(&mut self, frame: Vec<u8>) -> Result<Vec<Response>, ClientError> {
        let sealed = frame.get(..4) == Some(&TRANSFORM_ID[..]);
        let mut chain = match (&self.seal, sealed) {
            (Some(seal), true) => {
                if crypt::transform_session_id(&frame)? != self.info.session_id {
                    return Err(ClientError::Protocol("a sealed message for another session"));
                }
                crypt::open(&seal.server_to_client, &frame)?
            }
            (None, true) => {
                return Err(ClientError::Protocol(
                    "a sealed message on a session that does not seal",
                ))
            }
            (Some(_), false) => return Err(ClientError::Unencrypted),
            (None, false) => frame,
        };
        if Header::new_checked(&chain[..])?.next_command() == 0 {
            return Ok(vec![self.one(chain, sealed)?]);
        }
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let rest = &mut chain[at..];
            let h = Header::new_checked(&rest[..])?;
            let next = h.next_command() as usize;
            let len = if next == 0 { rest.len() } else { next };
            if len < HEADER_LEN || len > rest.len() {
                return Err(DecodeError::Malformed("NextCommand").into());
            }
            out.push(self.one(rest[..len].to_vec(), sealed)?);
            if next == 0 {
                break;
            }
            at += len;
        }
        Ok(out)
    }

    fn one(&mut self, mut msg: Vec<u8>, sealed: bool) -> Result<Response, ClientError> {
        let h = Header::new_checked(&msg[..])?;
        if !h.is_response() {
            return Err(ClientError::Protocol("a request where a response belongs"));
        }
        let interim = h.status() == NtStatus::STATUS_PENDING && h.is_async();
        let (mid, signed, credits) = (h.message_id(), h.flags() & flags::SIGNED != 0, h.credits());
        let (command, status, async_id) = (h.command(), h.status(), h.async_id());
        // An oplock break notification (id all ones) is not for pipes; the
        // rest must answer something we sent.
        if !self.outstanding.contains_key(&mid) {
            return Err(ClientError::Unsolicited(mid));
        }
        if let (Some((key, alg)), false) = (&self.sign, sealed) {
            if signed {
                if !signing::verify_in_place(&mut msg, key, *alg) {
                    return Err(ClientError::BadSignature);
                }
            } else if !interim {
                return Err(ClientError::Unsigned);
            }
        }
        self.credits += u32::from(credits);
        if !interim {
            self.outstanding.remove(&mid);
        }
        Ok(Response {
            message_id: mid,
            command,
            status,
            interim,
            async_id,
            msg,
        })
    }

    /// The FSCTL_VALIDATE_NEGOTIATE_INFO input (2.2.31.4) that SMB 3.0 and
    /// 3.0.2 clients send, signed, after the first TREE_CONNECT: the server
    /// repeats what it agreed to, so a downgrade on the path is caught.
    pub fn validate_negotiate_input(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(24 + 2 * self.info.offered.len());
        b.extend_from_slice(&(capabilities::ENCRYPTION | capabilities::LARGE_MTU).to_le_bytes());
        b.extend_from_slice(&self.info.client_guid);
        b.extend_from_slice(&self.info.client_security_mode.to_le_bytes());
        b.extend_from_slice(&(self.info.offered.len() as u16).to_le_bytes());
        for d in &self.info.offered {
            b.extend_from_slice(&d.to_le_bytes());
        }
        b
    }

    /// Checks the server's VALIDATE_NEGOTIATE_INFO output against NEGOTIATE.
    ///
    /// # Errors
    /// Any field that differs: the NEGOTIATE was tampered with.
    pub fn check_validate_negotiate(&self, out: &[u8]) -> Result<(), ClientError> {
        if out.len() < 24 {
            return Err(DecodeError::Truncated("VALIDATE_NEGOTIATE_INFO response").into());
        }
        let n = &self.info.negotiated;
        let caps = u32::from_le_bytes([out[0], out[1], out[2], out[3]]);
        let mode = u16::from_le_bytes([out[20], out[21]]);
        let dialect = u16::from_le_bytes([out[22], out[23]]);
        if caps != n.capabilities
            || out[4..20] != n.server_guid
            || mode != n.server_security_mode
            || dialect != n.dialect
        {
            return Err(ClientError::Protocol(
                "VALIDATE_NEGOTIATE_INFO disagrees with NEGOTIATE (a downgrade attempt?)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(auth: Auth) -> ClientConfig {
        ClientConfig {
            auth,
            dialects: ALL_DIALECTS.to_vec(),
            require_signing: false,
            require_encryption: false,
            workstation: "TEST".into(),
            entropy: Entropy {
                client_guid: [1; 16],
                salt: [2; 32],
                client_challenge: [3; 8],
                nonce_prefix: [4; 4],
            },
            now: 0,
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c = cfg(Auth::Ntlm {
            user: "u".into(),
            domain: "d".into(),
            nt_hash: ntlm::nt_hash("hunter2"),
        });
        let shown = format!("{c:?}");
        assert!(shown.contains("Ntlm(d\\u, <secret>)"), "{shown}");
        let hash = ntlm::nt_hash("hunter2");
        let bytes = format!("{}, {}, {}", hash[0], hash[1], hash[2]);
        assert!(!shown.contains(&bytes), "{shown}");
    }

    #[test]
    fn the_first_frame_is_a_negotiate_offering_what_was_asked() {
        let (hs, f) = Handshake::start(cfg(Auth::Anonymous));
        assert_eq!(&f[..4], &transport_header(f.len() - 4).unwrap());
        let req = NegotiateRequest::parse(&f[4..]).unwrap();
        assert_eq!(req.dialects, ALL_DIALECTS);
        assert_eq!(req.contexts.len(), 3);
        assert!(hs.negotiated().is_none());
    }
}
