//! The server side of one SMB2 connection, without I/O: what the gateway
//! speaks for the IPC$ share. NEGOTIATE (2.0.2 to 3.1.1, and the SMB1
//! multi-protocol negotiate that older clients open with), SESSION_SETUP
//! with SPNEGO and NTLMv2 against configured NT hashes, signing, TREE_CONNECT
//! to IPC$ only, ECHO, LOGOFF and TREE_DISCONNECT are answered here. What
//! touches a pipe (CREATE, READ, WRITE, TRANSCEIVE, CLOSE) becomes an
//! [`Event`] for the host, which answers with [`Server::answer`].
//!
//! Encryption is not offered yet (no cipher is advertised).

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::create::{self, FileId};
use crate::header::{flags, Command, Header, HeaderRepr, Target, HEADER_LEN, SMB1_ID};
use crate::io;
use crate::ioctl::{self, fsctl};
use crate::negotiate::{
    capabilities, dialect, hash_algorithm, security_mode, signing_algorithm, NegotiateContext, NegotiateRequest,
    NegotiateResponse,
};
use crate::ntlm;
use crate::session::{SessionSetupResponse, SESSION_SETUP_REQUEST_FIXED};
use crate::signing::{self, Algorithm, PreauthHash};
use crate::spnego::{self, NegState, NTLMSSP_OID};
use crate::status::NtStatus;
use crate::transport::transport_header;
use crate::tree::{TreeConnectRequest, TreeConnectResponse, SHARE_TYPE_PIPE};
use crate::DecodeError;

/// An account the server accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUser {
    pub name: String,
    /// Empty: any domain the client names.
    pub domain: String,
    pub nt_hash: [u8; 16],
}

impl fmt::Debug for ServerUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerUser({}\\{}, <secret>)", self.domain, self.name)
    }
}

/// What the server offers.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub server_guid: [u8; 16],
    /// NetBIOS domain (or workgroup) and computer names for NTLM.
    pub domain: String,
    pub computer: String,
    pub users: Vec<ServerUser>,
    /// Refuse unsigned requests on authenticated sessions.
    pub require_signing: bool,
    /// MaxRead/MaxWrite/MaxTransact.
    pub max_io: u32,
}

/// The random values and the time a connection needs; the driver draws them.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerEntropy {
    pub salt: [u8; 32],
    pub server_challenge: [u8; 8],
    /// The first session id (later ones count up from it).
    pub session_id: u64,
    /// FILETIME now.
    pub now: u64,
}

impl fmt::Debug for ServerEntropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerEntropy(<random>)")
    }
}

/// Who logged on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub domain: String,
    pub workstation: String,
}

/// A request the host answers, with what [`Server::answer`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Req {
    pub message_id: u64,
    pub session_id: u64,
    pub tree_id: u32,
    pub command: Command,
    credits: u16,
    /// FSCTL code of an IOCTL.
    code: u32,
    file: FileId,
    /// Set by [`Server::interim`]: the final answer then carries it.
    async_id: Option<u64>,
}

/// What the host must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Open pipe `pipe` for `user`; the server chose `file` for it.
    Open {
        req: Req,
        user: Identity,
        pipe: String,
        file: FileId,
        desired_access: u32,
    },
    /// Up to `length` bytes (one message) from `file`.
    Read { req: Req, file: FileId, length: u32 },
    /// `data` as one write to `file`.
    Write { req: Req, file: FileId, data: Vec<u8> },
    /// TransactNamedPipe: write `input`, answer with the reply.
    Transceive {
        req: Req,
        file: FileId,
        input: Vec<u8>,
        max_output: u32,
    },
    /// WaitNamedPipe for `pipe` (`timeout` in 100 ns units, or the pipe's
    /// default): answer `Data(&[])` once an instance listens, or
    /// STATUS_IO_TIMEOUT.
    Wait {
        req: Req,
        pipe: String,
        timeout: Option<i64>,
    },
    /// The client closed `file` (already answered).
    Close { file: FileId },
    /// The client gave up on `req` (answer it with STATUS_CANCELLED).
    Cancel { req: Req },
}

/// The host's answer to an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// The open succeeded.
    Opened,
    /// A READ's or TRANSCEIVE's data (all of the message).
    Data(&'a [u8]),
    /// Part of a longer message (STATUS_BUFFER_OVERFLOW); the rest follows
    /// on the next READ.
    Part(&'a [u8]),
    /// A WRITE took this many bytes.
    Written(u32),
    /// A failure, e.g. STATUS_OBJECT_NAME_NOT_FOUND or STATUS_PIPE_BROKEN.
    Status(NtStatus),
}

/// What one received frame produced.
#[derive(Debug, Default)]
pub struct Output {
    /// Frames to send (Direct TCP header included), in order.
    pub send: Vec<Vec<u8>>,
    pub events: Vec<Event>,
}

/// Why a connection must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    #[error("a malformed message: {0}")]
    Decode(#[from] DecodeError),
    #[error("the client broke the protocol: {0}")]
    Protocol(&'static str),
}

enum SessionState {
    Challenged {
        preauth: PreauthHash,
    },
    Ready {
        identity: Identity,
        sign: Option<([u8; 16], Algorithm)>,
        trees: BTreeSet<u32>,
    },
}

/// One connection's server state machine.
pub struct Server {
    cfg: ServerConfig,
    ent: ServerEntropy,
    dialect: Option<u16>,
    signing_alg: Option<u16>,
    preauth: PreauthHash,
    sessions: HashMap<u64, SessionState>,
    next_session: u64,
    next_tree: u32,
    next_file: u64,
    /// Open pipes: FileId → session.
    files: HashMap<FileId, u64>,
    /// Credits granted in all; message ids below `low` are spent, and
    /// those above it in `used`.
    granted: u64,
    low: u64,
    used: BTreeSet<u64>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Server(dialect {:?}, {} sessions, {} opens)",
            self.dialect,
            self.sessions.len(),
            self.files.len()
        )
    }
}

/// The most sessions (logged on or half-way) one connection may hold.
const MAX_SESSIONS: usize = 16;

/// The most credits outstanding a client is granted.
const MAX_CREDITS: u64 = 512;

fn frame(msg: &[u8]) -> Vec<u8> {
    let mut f = transport_header(msg.len()).expect("answers stay under 16 MiB").to_vec();
    f.extend_from_slice(msg);
    f
}

/// An error response body (2.2.2).
fn error_body() -> Vec<u8> {
    vec![9, 0, 0, 0, 0, 0, 0, 0, 0]
}

impl Server {
    pub fn new(cfg: ServerConfig, ent: ServerEntropy) -> Server {
        let next_session = ent.session_id.max(1);
        Server {
            cfg,
            ent,
            dialect: None,
            signing_alg: None,
            preauth: PreauthHash::default(),
            sessions: HashMap::new(),
            next_session,
            next_tree: 1,
            next_file: 1,
            files: HashMap::new(),
            granted: 1,
            low: 0,
            used: BTreeSet::new(),
        }
    }

    /// The dialect agreed, once NEGOTIATE is done.
    pub fn dialect(&self) -> Option<u16> {
        self.dialect
    }

    /// The pipes open on this connection (a dropped connection closes them).
    pub fn open_files(&self) -> impl Iterator<Item = &FileId> {
        self.files.keys()
    }

    /// Takes one frame from the client (without its transport header).
    ///
    /// # Errors
    /// A frame that cannot be trusted or understood: drop the connection.
    pub fn receive(&mut self, msg: &[u8]) -> Result<Output, ServerError> {
        let mut out = Output::default();
        if msg.get(..4) == Some(&SMB1_ID[..]) {
            // SMB1 NEGOTIATE offering "SMB 2.???": answer with the SMB2 wildcard.
            if self.dialect.is_some() || msg.get(4) != Some(&0x72) {
                return Err(ServerError::Protocol("SMB1 after the negotiation, or not a NEGOTIATE"));
            }
            out.send
                .push(frame(&self.negotiate_response(dialect::WILDCARD, 0, &[])));
            return Ok(out);
        }
        let h = Header::new_checked(msg)?;
        if h.is_response() {
            return Err(ServerError::Protocol("a response where a request belongs"));
        }
        if h.next_command() != 0 {
            return Err(ServerError::Protocol("compound requests are not served"));
        }
        let command = h.command();
        if command == Command::CANCEL {
            // No credit, no answer of its own: the host answers the
            // cancelled request.
            let req = Req {
                message_id: h.message_id(),
                session_id: h.session_id(),
                tree_id: h.tree_id().unwrap_or(0),
                command: Command::CANCEL,
                credits: 0,
                code: 0,
                file: FileId([0; 16]),
                async_id: None,
            };
            out.events.push(Event::Cancel { req });
            return Ok(out);
        }
        self.check_message_id(h.message_id(), h.credit_charge())?;
        let credits = h.credits().max(1);
        if command == Command::NEGOTIATE {
            out.send.push(frame(&self.negotiate(msg)?));
            return Ok(out);
        }
        if self.dialect.is_none() || self.dialect == Some(dialect::WILDCARD) {
            return Err(ServerError::Protocol("a request before NEGOTIATE"));
        }
        let req = Req {
            message_id: h.message_id(),
            session_id: h.session_id(),
            tree_id: h.tree_id().unwrap_or(0),
            command,
            credits,
            code: 0,
            file: FileId([0; 16]),
            async_id: None,
        };
        if command == Command::SESSION_SETUP {
            out.send.push(self.session_setup(msg, req)?);
            return Ok(out);
        }
        // Everything else needs a logged-on session, signed when it signs.
        let signed = h.flags() & flags::SIGNED != 0;
        let identity = match self.sessions.get(&req.session_id) {
            Some(SessionState::Ready { identity, sign, .. }) => {
                if let Some((key, alg)) = sign {
                    if signed && !signing::verify(msg, key, *alg) {
                        return Err(ServerError::Protocol("a request with a wrong signature"));
                    }
                    if !signed && self.cfg.require_signing {
                        out.send.push(self.status(req, NtStatus::STATUS_ACCESS_DENIED));
                        return Ok(out);
                    }
                }
                identity.clone()
            }
            _ => {
                out.send.push(self.status(req, NtStatus::STATUS_USER_SESSION_DELETED));
                return Ok(out);
            }
        };
        match command {
            Command::ECHO => out
                .send
                .push(self.respond(req, NtStatus::STATUS_SUCCESS, &[4, 0, 0, 0])),
            Command::LOGOFF => {
                self.sessions.remove(&req.session_id);
                let closing: Vec<FileId> = self
                    .files
                    .iter()
                    .filter(|(_, s)| **s == req.session_id)
                    .map(|(f, _)| *f)
                    .collect();
                for f in closing {
                    self.files.remove(&f);
                    out.events.push(Event::Close { file: f });
                }
                out.send
                    .push(self.respond(req, NtStatus::STATUS_SUCCESS, &[4, 0, 0, 0]));
            }
            Command::TREE_CONNECT => {
                let path = TreeConnectRequest::parse(msg)?.path;
                let share = path.rsplit('\\').next().unwrap_or("");
                if !share.eq_ignore_ascii_case("IPC$") {
                    out.send.push(self.status(req, NtStatus::STATUS_BAD_NETWORK_NAME));
                } else {
                    let tree = self.next_tree;
                    self.next_tree += 1;
                    if let Some(SessionState::Ready { trees, .. }) = self.sessions.get_mut(&req.session_id) {
                        trees.insert(tree);
                    }
                    let body = TreeConnectResponse {
                        share_type: SHARE_TYPE_PIPE,
                        share_flags: 0x30, // no caching
                        capabilities: 0,
                        maximal_access: 0x001f_01ff,
                    }
                    .emit_body();
                    out.send
                        .push(self.respond(Req { tree_id: tree, ..req }, NtStatus::STATUS_SUCCESS, &body));
                }
            }
            _ if !self.has_tree(&req) => out.send.push(self.status(req, NtStatus::STATUS_NETWORK_NAME_DELETED)),
            Command::TREE_DISCONNECT => {
                if let Some(SessionState::Ready { trees, .. }) = self.sessions.get_mut(&req.session_id) {
                    trees.remove(&req.tree_id);
                }
                out.send
                    .push(self.respond(req, NtStatus::STATUS_SUCCESS, &[4, 0, 0, 0]));
            }
            Command::CREATE => {
                let c = create::CreateRequest::parse(msg)?;
                let pipe = c.name.trim_start_matches('\\').to_owned();
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&self.next_file.to_le_bytes());
                id[8..].copy_from_slice(&req.session_id.to_le_bytes());
                self.next_file += 1;
                let file = FileId(id);
                out.events.push(Event::Open {
                    req: Req { file, ..req },
                    user: identity,
                    pipe,
                    file,
                    desired_access: c.desired_access,
                });
            }
            Command::READ => {
                let r = io::ReadRequest::parse(msg)?;
                match self.owned(&req, r.file) {
                    true => out.events.push(Event::Read {
                        req: Req { file: r.file, ..req },
                        file: r.file,
                        length: r.length.min(self.cfg.max_io),
                    }),
                    false => out.send.push(self.status(req, NtStatus::STATUS_FILE_CLOSED)),
                }
            }
            Command::WRITE => {
                let (file, data) = io::parse_write_request(msg)?;
                match self.owned(&req, file) {
                    true => out.events.push(Event::Write {
                        req: Req { file, ..req },
                        file,
                        data: data.to_vec(),
                    }),
                    false => out.send.push(self.status(req, NtStatus::STATUS_FILE_CLOSED)),
                }
            }
            Command::IOCTL => {
                let r = ioctl::IoctlRequest::parse(msg)?;
                match r.code {
                    fsctl::PIPE_TRANSCEIVE if self.owned(&req, r.file) => out.events.push(Event::Transceive {
                        req: Req {
                            file: r.file,
                            code: r.code,
                            ..req
                        },
                        file: r.file,
                        input: r.input.to_vec(),
                        max_output: r.max_output.min(self.cfg.max_io),
                    }),
                    fsctl::PIPE_TRANSCEIVE => out.send.push(self.status(req, NtStatus::STATUS_FILE_CLOSED)),
                    fsctl::PIPE_WAIT => match ioctl::parse_pipe_wait_input(r.input) {
                        Ok((pipe, timeout)) => out.events.push(Event::Wait {
                            req: Req {
                                file: r.file,
                                code: r.code,
                                ..req
                            },
                            pipe,
                            timeout,
                        }),
                        Err(_) => out.send.push(self.status(req, NtStatus::STATUS_INVALID_PARAMETER)),
                    },
                    fsctl::VALIDATE_NEGOTIATE_INFO => {
                        let d = self.dialect.unwrap_or(0);
                        let mut v = Vec::with_capacity(24);
                        v.extend_from_slice(&self.capabilities().to_le_bytes());
                        v.extend_from_slice(&self.cfg.server_guid);
                        v.extend_from_slice(&self.security_mode().to_le_bytes());
                        v.extend_from_slice(&d.to_le_bytes());
                        let body = ioctl::ioctl_response_body(r.code, r.file, &v);
                        out.send.push(self.respond(req, NtStatus::STATUS_SUCCESS, &body));
                    }
                    _ => out.send.push(self.status(req, NtStatus::STATUS_INVALID_DEVICE_REQUEST)),
                }
            }
            Command::CLOSE => {
                let file = create::parse_close_request(msg)?;
                if self.owned(&req, file) {
                    self.files.remove(&file);
                    out.events.push(Event::Close { file });
                    out.send
                        .push(self.respond(req, NtStatus::STATUS_SUCCESS, &create::close_response_body()));
                } else {
                    out.send.push(self.status(req, NtStatus::STATUS_FILE_CLOSED));
                }
            }
            Command::FLUSH => out
                .send
                .push(self.respond(req, NtStatus::STATUS_SUCCESS, &[4, 0, 0, 0])),
            _ => out.send.push(self.status(req, NtStatus::STATUS_NOT_SUPPORTED)),
        }
        Ok(out)
    }

    /// The frame answering `req` (an [`Event`]'s).
    pub fn answer(&mut self, req: Req, answer: Answer<'_>) -> Vec<u8> {
        match (req.command, answer) {
            (Command::CREATE, Answer::Opened) => {
                self.files.insert(req.file, req.session_id);
                self.respond(req, NtStatus::STATUS_SUCCESS, &create::create_response_body(req.file))
            }
            (Command::READ, Answer::Data(d)) => {
                self.respond(req, NtStatus::STATUS_SUCCESS, &io::read_response_body(d, 0))
            }
            (Command::READ, Answer::Part(d)) => {
                self.respond(req, NtStatus::STATUS_BUFFER_OVERFLOW, &io::read_response_body(d, 0))
            }
            (Command::WRITE, Answer::Written(n)) => {
                self.respond(req, NtStatus::STATUS_SUCCESS, &io::write_response_body(n))
            }
            (Command::IOCTL, Answer::Data(d)) => self.respond(
                req,
                NtStatus::STATUS_SUCCESS,
                &ioctl::ioctl_response_body(req.code, req.file, d),
            ),
            (Command::IOCTL, Answer::Part(d)) => self.respond(
                req,
                NtStatus::STATUS_BUFFER_OVERFLOW,
                &ioctl::ioctl_response_body(req.code, req.file, d),
            ),
            (_, Answer::Status(st)) => self.status(req, st),
            _ => self.status(req, NtStatus::STATUS_INVALID_PARAMETER),
        }
    }

    /// An interim STATUS_PENDING for `req` (a READ that waits): the final
    /// answer follows with the same id, through the returned `Req`, which
    /// carries the async id. Interim answers are not signed.
    pub fn interim(&mut self, req: Req, async_id: u64) -> (Req, Vec<u8>) {
        let req = Req {
            async_id: Some(async_id),
            ..req
        };
        let h = self.header(req, NtStatus::STATUS_PENDING);
        let mut m = vec![0u8; HEADER_LEN];
        h.emit((&mut m[..]).try_into().expect("64"));
        m.extend_from_slice(&error_body());
        (req, frame(&m))
    }

    fn owned(&self, req: &Req, file: FileId) -> bool {
        self.files.get(&file) == Some(&req.session_id)
    }

    fn has_tree(&self, req: &Req) -> bool {
        matches!(self.sessions.get(&req.session_id), Some(SessionState::Ready { trees, .. }) if trees.contains(&req.tree_id))
    }

    /// A client may use each message id once, within the credits granted.
    fn check_message_id(&mut self, mid: u64, charge: u16) -> Result<(), ServerError> {
        let charge = u64::from(charge.max(1));
        if mid < self.low || mid.saturating_add(charge) > self.granted {
            return Err(ServerError::Protocol("a message id outside the credits granted"));
        }
        for m in mid..mid + charge {
            if !self.used.insert(m) {
                return Err(ServerError::Protocol("a message id used twice"));
            }
        }
        while self.used.remove(&self.low) {
            self.low += 1;
        }
        Ok(())
    }

    fn capabilities(&self) -> u32 {
        match self.dialect {
            Some(dialect::SMB_2_0_2) | None => 0,
            _ => capabilities::LARGE_MTU,
        }
    }

    fn security_mode(&self) -> u16 {
        security_mode::SIGNING_ENABLED
            | if self.cfg.require_signing {
                security_mode::SIGNING_REQUIRED
            } else {
                0
            }
    }

    fn negotiate(&mut self, msg: &[u8]) -> Result<Vec<u8>, ServerError> {
        if self.dialect.is_some_and(|d| d != dialect::WILDCARD) {
            return Err(ServerError::Protocol("a second NEGOTIATE"));
        }
        let req = NegotiateRequest::parse(msg)?;
        let pick = [
            dialect::SMB_3_1_1,
            dialect::SMB_3_0_2,
            dialect::SMB_3_0,
            dialect::SMB_2_1,
            dialect::SMB_2_0_2,
        ]
        .into_iter()
        .find(|d| req.dialects.contains(d))
        .ok_or(ServerError::Protocol("no dialect in common"))?;
        let mut contexts = Vec::new();
        if pick == dialect::SMB_3_1_1 {
            for c in &req.contexts {
                if let NegotiateContext::Signing { algorithms } = c {
                    self.signing_alg = algorithms.iter().copied().find(|a| *a <= signing_algorithm::AES_GMAC);
                }
            }
            contexts.push(NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![hash_algorithm::SHA_512],
                salt: self.ent.salt.to_vec(),
            });
            if let Some(a) = self.signing_alg {
                contexts.push(NegotiateContext::Signing { algorithms: vec![a] });
            }
        }
        self.dialect = Some(pick);
        let mid = Header::new_checked(msg)?.message_id();
        let resp = self.negotiate_response(pick, mid, &contexts);
        if pick == dialect::SMB_3_1_1 {
            self.preauth.update(msg);
            self.preauth.update(&resp);
        }
        Ok(resp)
    }

    fn negotiate_response(&mut self, d: u16, message_id: u64, contexts: &[NegotiateContext]) -> Vec<u8> {
        if d == dialect::WILDCARD {
            self.dialect = Some(d);
        }
        let hint = spnego::neg_token_init_hint();
        let body = NegotiateResponse {
            security_mode: self.security_mode(),
            dialect: d,
            server_guid: self.cfg.server_guid,
            capabilities: self.capabilities(),
            max_transact_size: self.cfg.max_io,
            max_read_size: self.cfg.max_io,
            max_write_size: self.cfg.max_io,
            system_time: self.ent.now,
            server_start_time: 0,
            security_buffer: &hint,
            contexts: contexts.to_vec(),
        }
        .emit_body();
        let mut h = HeaderRepr::request(Command::NEGOTIATE, message_id, 1);
        h.flags = flags::SERVER_TO_REDIR;
        let mut m = vec![0u8; HEADER_LEN];
        h.emit((&mut m[..]).try_into().expect("64"));
        m.extend_from_slice(&body);
        self.granted += 1;
        m
    }

    fn session_setup(&mut self, msg: &[u8], req: Req) -> Result<Vec<u8>, ServerError> {
        let b = Header::new_checked(msg)?.body().to_vec();
        if b.len() < SESSION_SETUP_REQUEST_FIXED {
            return Err(DecodeError::Truncated("SESSION_SETUP request").into());
        }
        let (off, len) = (
            usize::from(u16::from_le_bytes([b[12], b[13]])),
            usize::from(u16::from_le_bytes([b[14], b[15]])),
        );
        let token = msg
            .get(off..off + len)
            .ok_or(DecodeError::Truncated("SESSION_SETUP security buffer"))?;
        let is_311 = self.dialect == Some(dialect::SMB_3_1_1);
        match (req.session_id, self.sessions.get(&req.session_id)) {
            (0, _) => {
                // The first leg: SPNEGO offering NTLMSSP, with its NEGOTIATE.
                let init = spnego::NegTokenInit::parse(token)?;
                if !init.mech_types.contains(&NTLMSSP_OID) {
                    return Ok(self.status(req, NtStatus::STATUS_LOGON_FAILURE));
                }
                let client_flags = init
                    .mech_token
                    .and_then(|t| t.get(12..16))
                    .map_or(0, |f| u32::from_le_bytes([f[0], f[1], f[2], f[3]]));
                let challenge = ntlm::challenge_message(
                    client_flags,
                    self.ent.server_challenge,
                    &self.cfg.domain,
                    &self.cfg.computer,
                    self.ent.now,
                );
                // Each first leg costs the server state: a client that
                // only ever starts log-ons must not grow it without end.
                if self.sessions.len() >= MAX_SESSIONS {
                    return Err(ServerError::Protocol("too many sessions on one connection"));
                }
                let session_id = self.next_session;
                self.next_session += 1;
                let mut preauth = self.preauth.clone();
                if is_311 {
                    preauth.update(msg);
                }
                let body = SessionSetupResponse {
                    session_flags: 0,
                    security_buffer: &spnego::neg_token_resp_server(
                        NegState::AcceptIncomplete,
                        Some(NTLMSSP_OID),
                        Some(&challenge),
                    ),
                }
                .emit_body();
                let resp = self.message(
                    Req { session_id, ..req },
                    NtStatus::STATUS_MORE_PROCESSING_REQUIRED,
                    &body,
                );
                if is_311 {
                    preauth.update(&resp);
                }
                self.sessions.insert(session_id, SessionState::Challenged { preauth });
                Ok(frame(&resp))
            }
            (id, Some(SessionState::Challenged { preauth })) => {
                let mut preauth = preauth.clone();
                let t = spnego::NegTokenResp::parse(token)?;
                let auth = ntlm::AuthenticateFields::parse(
                    t.response_token.ok_or(DecodeError::Truncated("NTLM AUTHENTICATE"))?,
                )?;
                let user = self.cfg.users.iter().find(|u| {
                    u.name.eq_ignore_ascii_case(&auth.user)
                        && (u.domain.is_empty() || u.domain.eq_ignore_ascii_case(&auth.domain))
                });
                let key = user.and_then(|u| {
                    ntlm::verify_ntlmv2(
                        &u.nt_hash,
                        &auth.user,
                        &auth.domain,
                        &self.ent.server_challenge,
                        auth.nt_response,
                    )
                });
                let Some(session_key) = key else {
                    self.sessions.remove(&id);
                    return Ok(self.status(req, NtStatus::STATUS_LOGON_FAILURE));
                };
                if is_311 {
                    preauth.update(msg);
                }
                let sign = match self.dialect {
                    Some(dialect::SMB_2_0_2 | dialect::SMB_2_1) => (session_key, Algorithm::HmacSha256),
                    Some(dialect::SMB_3_0 | dialect::SMB_3_0_2) => {
                        (signing::signing_key_30(&session_key), Algorithm::AesCmac)
                    }
                    _ => (
                        signing::signing_key_311(&session_key, &preauth),
                        match self.signing_alg {
                            Some(signing_algorithm::AES_GMAC) => Algorithm::AesGmac,
                            Some(signing_algorithm::HMAC_SHA256) => Algorithm::HmacSha256,
                            _ => Algorithm::AesCmac,
                        },
                    ),
                };
                self.sessions.insert(
                    id,
                    SessionState::Ready {
                        identity: Identity {
                            user: auth.user.clone(),
                            domain: auth.domain.clone(),
                            workstation: auth.workstation.clone(),
                        },
                        sign: Some(sign),
                        trees: BTreeSet::new(),
                    },
                );
                let body = SessionSetupResponse {
                    session_flags: 0,
                    security_buffer: &spnego::neg_token_resp_server(NegState::AcceptCompleted, None, None),
                }
                .emit_body();
                Ok(self.respond(req, NtStatus::STATUS_SUCCESS, &body))
            }
            _ => Ok(self.status(req, NtStatus::STATUS_USER_SESSION_DELETED)),
        }
    }

    fn header(&mut self, req: Req, status: NtStatus) -> HeaderRepr {
        // Grant what was asked, keeping the window under MAX_CREDITS.
        let window = self.granted.saturating_sub(self.low);
        let grant = u64::from(req.credits)
            .min(MAX_CREDITS.saturating_sub(window))
            .max(u64::from(status != NtStatus::STATUS_PENDING));
        self.granted += grant;
        let mut h = HeaderRepr::request(req.command, req.message_id, grant as u16);
        h.flags = flags::SERVER_TO_REDIR;
        h.status = status;
        h.session_id = req.session_id;
        h.credit_charge = 1;
        h.target = match req.async_id {
            Some(id) => Target::Async(id),
            None => Target::Sync {
                process_id: 0xfeff,
                tree_id: req.tree_id,
            },
        };
        h
    }

    fn message(&mut self, req: Req, status: NtStatus, body: &[u8]) -> Vec<u8> {
        let h = self.header(req, status);
        let mut m = vec![0u8; HEADER_LEN];
        h.emit((&mut m[..]).try_into().expect("64"));
        m.extend_from_slice(body);
        m
    }

    /// A signed (when the session signs) and framed answer.
    fn respond(&mut self, req: Req, status: NtStatus, body: &[u8]) -> Vec<u8> {
        let mut m = self.message(req, status, body);
        if let Some(SessionState::Ready {
            sign: Some((key, alg)), ..
        }) = self.sessions.get(&req.session_id)
        {
            signing::sign(&mut m, key, *alg);
        }
        frame(&m)
    }

    fn status(&mut self, req: Req, status: NtStatus) -> Vec<u8> {
        self.respond(req, status, &error_body())
    }
}
