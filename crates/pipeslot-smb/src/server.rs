//! The server side of one SMB2 connection, without I/O: what the gateway
//! speaks for the IPC$ share. NEGOTIATE (2.0.2 to 3.1.1, and the SMB1
//! multi-protocol negotiate that older clients open with), SESSION_SETUP
//! with SPNEGO and NTLMv2 against configured NT hashes, signing, TREE_CONNECT
//! to IPC$ only, ECHO, LOGOFF and TREE_DISCONNECT are answered here. What
//! touches a pipe (CREATE, READ, WRITE, TRANSCEIVE, PEEK, QUERY_INFO,
//! SET_INFO, CLOSE) becomes an [`Event`] for the host, which answers with
//! [`Server::answer`].
//!
//! Encryption (3.x, AES-128/256 CCM/GCM) is offered or required by the
//! configuration; a sealed request is answered sealed. Guest and anonymous
//! log-ons are refused unless configured; they never sign or seal (they
//! have no key), so a server that requires encryption refuses them.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::create::{self, FileId};
use crate::crypt::{self, Cipher, SessionCipher};
use crate::header::TRANSFORM_ID;
use crate::header::{flags, Command, Header, HeaderRepr, Target, HEADER_LEN, SMB1_ID};
use crate::info::{self, PipeLocalInfo};
use crate::io;
use crate::ioctl::{self, fsctl};
use crate::negotiate::{
    capabilities, cipher, dialect, hash_algorithm, security_mode, signing_algorithm, NegotiateContext,
    NegotiateRequest, NegotiateResponse,
};
use crate::ntlm;
use crate::session::{session_flags, SessionSetupResponse, SESSION_SETUP_REQUEST_FIXED};
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
    /// Accept anonymous log-ons (a null session) and unknown users (as
    /// guest). A known user with a wrong password is refused all the same.
    pub guest: bool,
    pub encryption: Encryption,
    /// The most pipes one session may hold open at once (more:
    /// STATUS_INSUFFICIENT_RESOURCES).
    pub max_opens: usize,
}

/// Whether sessions seal their messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// No cipher is offered.
    Never,
    /// Ciphers are offered (3.x); a client that seals is answered sealed.
    #[default]
    Allowed,
    /// Every authenticated session must seal (SESSION_FLAG_ENCRYPT_DATA);
    /// clients that cannot (2.x, no cipher in common, guest) are refused
    /// with STATUS_ACCESS_DENIED, and a request in the clear is too.
    Required,
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
    /// The fixed part of every nonce the server seals with (a counter
    /// makes the rest).
    pub nonce_prefix: [u8; 4],
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
    /// How: a configured account, a guest or an anonymous (null) session.
    pub kind: LogonKind,
}

/// How a session logged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogonKind {
    User,
    Guest,
    Anonymous,
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
    /// The request came sealed: so does every answer to it.
    sealed: bool,
    /// QUERY_INFO's class and output limit.
    class: u8,
    max_output: u32,
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
    /// PeekNamedPipe on `file`: answer [`Answer::Peeked`] at once (never
    /// wait for data).
    Peek { req: Req, file: FileId },
    /// GetNamedPipeInfo and the like on `file`: answer [`Answer::Info`].
    QueryInfo { req: Req, file: FileId },
    /// SetNamedPipeHandleState's read mode for `file`: answer
    /// [`Answer::Done`] or a status.
    SetReadMode { req: Req, file: FileId, message: bool },
    /// FlushFileBuffers on `file`: answer [`Answer::Done`] once the local
    /// server has read everything written.
    Flush { req: Req, file: FileId },
    /// For the log (no answer): a session logged on; `sealed` when every
    /// request of it must be sealed.
    LoggedOn { user: Identity, sealed: bool },
    /// For the log (no answer, already refused): a log-on failed.
    /// `user` is what the client claimed (`DOMAIN\user`).
    LogonRefused {
        user: String,
        workstation: String,
        status: NtStatus,
    },
}

/// What the host knows of an open pipe, for QUERY_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeState {
    pub local: PipeLocalInfo,
    pub message_read: bool,
    pub nonblocking: bool,
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
    /// A PEEK's answer: what the next read would bring (`data`, as much
    /// as fits), all bytes readable, queued messages, and the next
    /// message's length (0 on byte pipes).
    Peeked {
        data: &'a [u8],
        available: u32,
        messages: u32,
        message_length: u32,
    },
    /// A QUERY_INFO's answer.
    Info(PipeState),
    /// A SET_INFO succeeded.
    Done,
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
        /// What the NTLM MIC and the SPNEGO mechListMIC cover.
        negotiate: Vec<u8>,
        challenge: Vec<u8>,
        mech_types: Vec<u8>,
    },
    Ready {
        identity: Identity,
        sign: Option<([u8; 16], Algorithm)>,
        seal: Option<SessionCipher>,
        /// Requests in the clear are refused.
        must_seal: bool,
        trees: BTreeSet<u32>,
    },
}

/// One connection's server state machine.
pub struct Server {
    cfg: ServerConfig,
    ent: ServerEntropy,
    dialect: Option<u16>,
    signing_alg: Option<u16>,
    /// The cipher agreed (3.1.1 context, or AES-128-CCM for a 3.0 client
    /// that said it encrypts).
    cipher: Option<Cipher>,
    next_nonce: u64,
    /// The host is full: log-ons get STATUS_REQUEST_NOT_ACCEPTED.
    full: bool,
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

/// FilePipeLocalInformation's NamedPipeState values (MS-FSCC 2.4.30).
pub const FILE_PIPE_CONNECTED_STATE: u32 = 3;
pub const FILE_PIPE_CLOSING_STATE: u32 = 4;

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
            cipher: None,
            next_nonce: 1,
            full: false,
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

    /// Refuses every log-on from now on with STATUS_REQUEST_NOT_ACCEPTED
    /// (Windows' "no more connections can be made to this remote computer",
    /// ERROR_REQ_NOT_ACCEP): for a host at its connection limit, which
    /// still negotiates so the client learns why.
    pub fn refuse_logons(&mut self) {
        self.full = true;
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
        self.receive_mut(&mut msg.to_vec())
    }

    /// [`receive`](Self::receive) for a frame the caller lets it change:
    /// the signature is checked in place, without a copy (the frame is as
    /// it came once this returns).
    ///
    /// # Errors
    /// As [`receive`](Self::receive).
    pub fn receive_mut(&mut self, msg: &mut [u8]) -> Result<Output, ServerError> {
        if msg.get(..4) == Some(&TRANSFORM_ID[..]) {
            let sid = crypt::transform_session_id(msg)?;
            let key = match self.sessions.get(&sid) {
                Some(SessionState::Ready { seal: Some(c), .. }) => c.client_to_server.clone(),
                _ => {
                    return Err(ServerError::Protocol(
                        "a sealed message for a session that does not seal",
                    ))
                }
            };
            let mut plain = crypt::open(&key, msg)?;
            if Header::new_checked(&plain[..])?.session_id() != sid {
                return Err(ServerError::Protocol("a sealed message naming another session inside"));
            }
            return self.receive_plain(&mut plain, true);
        }
        self.receive_plain(msg, false)
    }

    fn receive_plain(&mut self, msg: &mut [u8], sealed: bool) -> Result<Output, ServerError> {
        let mut out = Output::default();
        if msg.get(..4) == Some(&SMB1_ID[..]) {
            // SMB1 NEGOTIATE offering "SMB 2.???": answer with the SMB2 wildcard.
            if sealed || self.dialect.is_some() || msg.get(4) != Some(&0x72) {
                return Err(ServerError::Protocol("SMB1 after the negotiation, or not a NEGOTIATE"));
            }
            out.send
                .push(frame(&self.negotiate_response(dialect::WILDCARD, 0, &[])));
            return Ok(out);
        }
        let h = Header::new_checked(&msg[..])?;
        if h.is_response() {
            return Err(ServerError::Protocol("a response where a request belongs"));
        }
        if h.next_command() != 0 {
            return Err(ServerError::Protocol("compound requests are not served"));
        }
        let command = h.command();
        let mut req = Req {
            message_id: h.message_id(),
            session_id: h.session_id(),
            tree_id: h.tree_id().unwrap_or(0),
            command,
            credits: 0,
            code: 0,
            file: FileId([0; 16]),
            async_id: None,
            sealed,
            class: 0,
            max_output: 0,
        };
        if command == Command::CANCEL {
            // No credit, no answer of its own: the host answers the
            // cancelled request. An async CANCEL names it by async id, which
            // the host gave as the message id (see `interim`).
            if let Some(id) = h.async_id() {
                req.message_id = id;
            }
            // Signed like any request of a signing session: a CANCEL that
            // does not verify is dropped unheard.
            if let (
                Some(SessionState::Ready {
                    sign: Some((key, alg)), ..
                }),
                false,
            ) = (self.sessions.get(&req.session_id), sealed)
            {
                let signed = h.flags() & flags::SIGNED != 0;
                let (key, alg) = (*key, *alg);
                if (signed && !signing::verify_in_place(msg, &key, alg)) || (!signed && self.cfg.require_signing) {
                    return Ok(out);
                }
            }
            out.events.push(Event::Cancel { req });
            return Ok(out);
        }
        self.check_message_id(h.message_id(), h.credit_charge())?;
        req.credits = h.credits().max(1);
        if command == Command::NEGOTIATE {
            if sealed {
                return Err(ServerError::Protocol("a sealed NEGOTIATE"));
            }
            out.send.push(frame(&self.negotiate(msg)?));
            return Ok(out);
        }
        if self.dialect.is_none() || self.dialect == Some(dialect::WILDCARD) {
            return Err(ServerError::Protocol("a request before NEGOTIATE"));
        }
        if command == Command::SESSION_SETUP {
            let mut said = None;
            out.send.push(self.session_setup(msg, req, &mut said)?);
            out.events.extend(said);
            return Ok(out);
        }
        // Everything else needs a logged-on session, signed when it signs
        // (a sealed request carries no signature: the seal covers it).
        let signed = h.flags() & flags::SIGNED != 0;
        let identity = match self.sessions.get(&req.session_id) {
            Some(SessionState::Ready {
                identity,
                sign,
                must_seal,
                ..
            }) => {
                if *must_seal && !sealed {
                    out.send.push(self.status(req, NtStatus::STATUS_ACCESS_DENIED));
                    return Ok(out);
                }
                if let (Some((key, alg)), false) = (sign, sealed) {
                    if signed && !signing::verify_in_place(msg, key, *alg) {
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
                for f in self.files_of(req.session_id) {
                    self.files.remove(&f);
                    out.events.push(Event::Close { file: f });
                }
                // Answered under the session's keys, then forgotten.
                out.send
                    .push(self.respond(req, NtStatus::STATUS_SUCCESS, &[4, 0, 0, 0]));
                self.sessions.remove(&req.session_id);
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
                if self.files_of(req.session_id).len() >= self.cfg.max_opens {
                    out.send.push(self.status(req, NtStatus::STATUS_INSUFFICIENT_RESOURCES));
                    return Ok(out);
                }
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
                let req = Req {
                    file: r.file,
                    code: r.code,
                    max_output: r.max_output.min(self.cfg.max_io),
                    ..req
                };
                let owned = self.owned(&req, r.file);
                match r.code {
                    fsctl::PIPE_TRANSCEIVE | fsctl::PIPE_PEEK if !owned => {
                        out.send.push(self.status(req, NtStatus::STATUS_FILE_CLOSED))
                    }
                    fsctl::PIPE_TRANSCEIVE => out.events.push(Event::Transceive {
                        req,
                        file: r.file,
                        input: r.input.to_vec(),
                        max_output: req.max_output,
                    }),
                    // The fixed part of the answer must fit (MS-FSCC 2.3.46).
                    fsctl::PIPE_PEEK if req.max_output < 16 => {
                        out.send.push(self.status(req, NtStatus::STATUS_BUFFER_TOO_SMALL))
                    }
                    fsctl::PIPE_PEEK => out.events.push(Event::Peek { req, file: r.file }),
                    fsctl::PIPE_WAIT => match ioctl::parse_pipe_wait_input(r.input) {
                        Ok((pipe, timeout)) => out.events.push(Event::Wait { req, pipe, timeout }),
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
            Command::QUERY_INFO => {
                let q = info::QueryInfoRequest::parse(msg)?;
                let req = Req {
                    file: q.file,
                    class: q.class,
                    max_output: q.max_output,
                    ..req
                };
                let need = match q.class {
                    info::FILE_PIPE_LOCAL_INFORMATION => Some(40),
                    info::FILE_PIPE_INFORMATION => Some(8),
                    info::FILE_STANDARD_INFORMATION => Some(24),
                    _ => None,
                };
                match need {
                    _ if !self.owned(&req, q.file) => out.send.push(self.status(req, NtStatus::STATUS_FILE_CLOSED)),
                    None => out.send.push(self.status(req, NtStatus::STATUS_INVALID_INFO_CLASS)),
                    _ if !q.is_file_info() => out.send.push(self.status(req, NtStatus::STATUS_INVALID_INFO_CLASS)),
                    Some(n) if q.max_output < n => {
                        out.send.push(self.status(req, NtStatus::STATUS_INFO_LENGTH_MISMATCH))
                    }
                    Some(_) => out.events.push(Event::QueryInfo { req, file: q.file }),
                }
            }
            Command::SET_INFO => {
                let q = info::SetInfoRequest::parse(msg)?;
                let req = Req { file: q.file, ..req };
                if !self.owned(&req, q.file) {
                    out.send.push(self.status(req, NtStatus::STATUS_FILE_CLOSED));
                } else if q.info_type != 1 || q.class != info::FILE_PIPE_INFORMATION {
                    out.send.push(self.status(req, NtStatus::STATUS_INVALID_INFO_CLASS));
                } else if q.buffer.len() < 8 {
                    out.send.push(self.status(req, NtStatus::STATUS_INFO_LENGTH_MISMATCH));
                } else {
                    let mode = u32::from_le_bytes([q.buffer[0], q.buffer[1], q.buffer[2], q.buffer[3]]);
                    let completion = u32::from_le_bytes([q.buffer[4], q.buffer[5], q.buffer[6], q.buffer[7]]);
                    // A remote handle always queues (PIPE_NOWAIT is a local
                    // matter of the gateway's own handle).
                    if mode > 1 || completion != 0 {
                        out.send.push(self.status(req, NtStatus::STATUS_INVALID_PARAMETER));
                    } else {
                        out.events.push(Event::SetReadMode {
                            req,
                            file: q.file,
                            message: mode == 1,
                        });
                    }
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
            Command::FLUSH => {
                let b = crate::body_of(msg, Command::FLUSH, 24, 24, "FLUSH request")?;
                let mut id = [0u8; 16];
                id.copy_from_slice(&b[8..24]);
                let file = FileId(id);
                match self.owned(&req, file) {
                    true => out.events.push(Event::Flush {
                        req: Req { file, ..req },
                        file,
                    }),
                    false => out.send.push(self.status(req, NtStatus::STATUS_FILE_CLOSED)),
                }
            }
            _ => out.send.push(self.status(req, NtStatus::STATUS_NOT_SUPPORTED)),
        }
        Ok(out)
    }

    fn files_of(&self, session: u64) -> Vec<FileId> {
        self.files
            .iter()
            .filter(|(_, s)| **s == session)
            .map(|(f, _)| *f)
            .collect()
    }

    /// The frame answering `req` (an [`Event`]'s).
    pub fn answer(&mut self, req: Req, answer: Answer<'_>) -> Vec<u8> {
        match (req.command, answer) {
            (Command::CREATE, Answer::Opened) => {
                self.files.insert(req.file, req.session_id);
                self.respond(req, NtStatus::STATUS_SUCCESS, &create::create_response_body(req.file))
            }
            (Command::READ, Answer::Data(d)) if !d.is_empty() => {
                self.respond_parts(req, NtStatus::STATUS_SUCCESS, &io::read_response_fixed(d.len(), 0), d)
            }
            (Command::READ, Answer::Data(d)) => {
                self.respond(req, NtStatus::STATUS_SUCCESS, &io::read_response_body(d, 0))
            }
            (Command::READ, Answer::Part(d)) => self.respond_parts(
                req,
                NtStatus::STATUS_BUFFER_OVERFLOW,
                &io::read_response_fixed(d.len(), 0),
                d,
            ),
            (Command::WRITE, Answer::Written(n)) => {
                self.respond(req, NtStatus::STATUS_SUCCESS, &io::write_response_body(n))
            }
            (Command::IOCTL, Answer::Data(d)) => self.respond_parts(
                req,
                NtStatus::STATUS_SUCCESS,
                &ioctl::ioctl_response_fixed(req.code, req.file, d.len()),
                d,
            ),
            (Command::IOCTL, Answer::Part(d)) => self.respond_parts(
                req,
                NtStatus::STATUS_BUFFER_OVERFLOW,
                &ioctl::ioctl_response_fixed(req.code, req.file, d.len()),
                d,
            ),
            (
                Command::IOCTL,
                Answer::Peeked {
                    data,
                    available,
                    messages,
                    message_length,
                },
            ) => {
                let room = (req.max_output as usize).saturating_sub(16);
                let d = &data[..data.len().min(room)];
                let mut o = Vec::with_capacity(16 + d.len());
                o.extend_from_slice(&FILE_PIPE_CONNECTED_STATE.to_le_bytes());
                o.extend_from_slice(&available.to_le_bytes());
                o.extend_from_slice(&messages.to_le_bytes());
                o.extend_from_slice(&message_length.to_le_bytes());
                o.extend_from_slice(d);
                // A message that does not fit is a warning with the part
                // that does, as the pipe file system answers.
                let st = match message_length as usize > d.len() {
                    true => NtStatus::STATUS_BUFFER_OVERFLOW,
                    false => NtStatus::STATUS_SUCCESS,
                };
                self.respond(req, st, &ioctl::ioctl_response_body(req.code, req.file, &o))
            }
            (Command::QUERY_INFO, Answer::Info(p)) => {
                let o: Vec<u8> = match req.class {
                    info::FILE_PIPE_LOCAL_INFORMATION => p.local.emit().to_vec(),
                    info::FILE_PIPE_INFORMATION => info::pipe_information(p.message_read, p.nonblocking).to_vec(),
                    _ => info::pipe_standard_information(
                        u64::from(p.local.inbound_quota) + u64::from(p.local.outbound_quota),
                        u64::from(p.local.read_data_available),
                        p.local.state == FILE_PIPE_CLOSING_STATE,
                    )
                    .to_vec(),
                };
                self.respond(req, NtStatus::STATUS_SUCCESS, &info::query_info_response_body(&o))
            }
            (Command::SET_INFO, Answer::Done) => self.respond(req, NtStatus::STATUS_SUCCESS, &[2, 0]),
            (Command::FLUSH, Answer::Done) => self.respond(req, NtStatus::STATUS_SUCCESS, &[4, 0, 0, 0]),
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
        let f = match self.sealer(&req) {
            Some(key) => frame(&self.seal(&key, req.session_id, &m)),
            None => frame(&m),
        };
        (req, f)
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
            // 3.0 and 3.0.2 say "we encrypt" here; 3.1.1 in a context.
            Some(dialect::SMB_3_0 | dialect::SMB_3_0_2) if self.cipher.is_some() => {
                capabilities::LARGE_MTU | capabilities::ENCRYPTION
            }
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
        let encrypts = self.cfg.encryption != Encryption::Never;
        if pick == dialect::SMB_3_1_1 {
            let mut ciphers_offered = None;
            for c in &req.contexts {
                match c {
                    NegotiateContext::Signing { algorithms } => {
                        self.signing_alg = algorithms.iter().copied().find(|a| *a <= signing_algorithm::AES_GMAC);
                    }
                    NegotiateContext::Encryption { ciphers } => ciphers_offered = Some(ciphers.clone()),
                    _ => {}
                }
            }
            contexts.push(NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![hash_algorithm::SHA_512],
                salt: self.ent.salt.to_vec(),
            });
            if let (true, Some(offered)) = (encrypts, ciphers_offered) {
                // The client's order is its preference; 0 says "none in common".
                self.cipher = offered.iter().copied().find_map(Cipher::from_id);
                let id = match self.cipher {
                    Some(Cipher::Aes128Ccm) => cipher::AES_128_CCM,
                    Some(Cipher::Aes128Gcm) => cipher::AES_128_GCM,
                    Some(Cipher::Aes256Ccm) => cipher::AES_256_CCM,
                    Some(Cipher::Aes256Gcm) => cipher::AES_256_GCM,
                    None => 0,
                };
                contexts.push(NegotiateContext::Encryption { ciphers: vec![id] });
            }
            if let Some(a) = self.signing_alg {
                contexts.push(NegotiateContext::Signing { algorithms: vec![a] });
            }
        } else if encrypts
            && matches!(pick, dialect::SMB_3_0 | dialect::SMB_3_0_2)
            && req.capabilities & capabilities::ENCRYPTION != 0
        {
            self.cipher = Some(Cipher::Aes128Ccm);
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

    /// One leg of a log-on; `said` gets what the host should log of it.
    fn session_setup(&mut self, msg: &[u8], req: Req, said: &mut Option<Event>) -> Result<Vec<u8>, ServerError> {
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
            (0, _) if self.full => Ok(self.status(req, NtStatus::STATUS_REQUEST_NOT_ACCEPTED)),
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
                        None,
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
                self.sessions.insert(
                    session_id,
                    SessionState::Challenged {
                        preauth,
                        negotiate: init.mech_token.unwrap_or_default().to_vec(),
                        challenge,
                        mech_types: init.mech_types_der.to_vec(),
                    },
                );
                Ok(frame(&resp))
            }
            (
                id,
                Some(SessionState::Challenged {
                    preauth,
                    negotiate,
                    challenge,
                    mech_types,
                }),
            ) => {
                let (mut preauth, negotiate, challenge, mech_types) = (
                    preauth.clone(),
                    negotiate.clone(),
                    challenge.clone(),
                    mech_types.clone(),
                );
                let t = spnego::NegTokenResp::parse(token)?;
                let raw_auth = t.response_token.ok_or(DecodeError::Truncated("NTLM AUTHENTICATE"))?;
                let auth = ntlm::AuthenticateFields::parse(raw_auth)?;
                let user = self.cfg.users.iter().find(|u| {
                    u.name.eq_ignore_ascii_case(&auth.user)
                        && (u.domain.is_empty() || u.domain.eq_ignore_ascii_case(&auth.domain))
                });
                let key = user
                    .and_then(|u| {
                        ntlm::verify_ntlmv2(
                            &u.nt_hash,
                            &auth.user,
                            &auth.domain,
                            &self.ent.server_challenge,
                            auth.nt_response,
                        )
                    })
                    .and_then(|base| ntlm::exported_session_key(&base, &auth))
                    .filter(|k| ntlm::verify_mic(k, &negotiate, &challenge, raw_auth, &auth));
                // SPNEGO's mechListMIC (RFC 4178 5): the client's proves the
                // mechanism list was not cut down in flight; ours answers it.
                let mut server_mic = None;
                let key = key.filter(|k| {
                    let (mut from_client, mut to_client) = ntlm::session_security(k, auth.flags);
                    let ok = t.mech_list_mic.is_none_or(|mic| from_client.verify(&mech_types, mic));
                    server_mic = Some(to_client.sign(&mech_types));
                    ok
                });
                // Guest: only when configured, and only for a name we do
                // not know (a known user's wrong password stays wrong).
                let kind = match (&key, user) {
                    (Some(_), _) => LogonKind::User,
                    (None, None) if self.cfg.guest && auth.is_anonymous() => LogonKind::Anonymous,
                    (None, None) if self.cfg.guest => LogonKind::Guest,
                    _ => {
                        self.sessions.remove(&id);
                        *said = Some(Event::LogonRefused {
                            user: format!("{}\\{}", auth.domain, auth.user),
                            workstation: auth.workstation.clone(),
                            status: NtStatus::STATUS_LOGON_FAILURE,
                        });
                        return Ok(self.status(req, NtStatus::STATUS_LOGON_FAILURE));
                    }
                };
                let required = self.cfg.encryption == Encryption::Required;
                if required && (kind != LogonKind::User || self.cipher.is_none()) {
                    // It could not seal: nothing it sent would be accepted.
                    self.sessions.remove(&id);
                    *said = Some(Event::LogonRefused {
                        user: format!("{}\\{}", auth.domain, auth.user),
                        workstation: auth.workstation.clone(),
                        status: NtStatus::STATUS_ACCESS_DENIED,
                    });
                    return Ok(self.status(req, NtStatus::STATUS_ACCESS_DENIED));
                }
                if is_311 {
                    preauth.update(msg);
                }
                let (sign, seal) = match key {
                    None => (None, None),
                    Some(session_key) => {
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
                        let seal = match (self.cipher, is_311) {
                            (Some(c), true) => Some(SessionCipher::smb_311(c, &session_key, &preauth)),
                            (Some(_), false) => Some(SessionCipher::smb_30(&session_key)),
                            (None, _) => None,
                        };
                        (Some(sign), seal)
                    }
                };
                let identity = match kind {
                    LogonKind::User => Identity {
                        user: auth.user.clone(),
                        domain: auth.domain.clone(),
                        workstation: auth.workstation.clone(),
                        kind,
                    },
                    LogonKind::Guest => Identity {
                        user: "Guest".into(),
                        domain: self.cfg.computer.clone(),
                        workstation: auth.workstation.clone(),
                        kind,
                    },
                    LogonKind::Anonymous => Identity {
                        user: "ANONYMOUS LOGON".into(),
                        domain: "NT AUTHORITY".into(),
                        workstation: auth.workstation.clone(),
                        kind,
                    },
                };
                let flags = match kind {
                    LogonKind::User if required => session_flags::ENCRYPT_DATA,
                    LogonKind::User => 0,
                    LogonKind::Guest => session_flags::IS_GUEST,
                    LogonKind::Anonymous => session_flags::IS_NULL,
                };
                *said = Some(Event::LoggedOn {
                    user: identity.clone(),
                    sealed: seal.is_some() && required,
                });
                self.sessions.insert(
                    id,
                    SessionState::Ready {
                        identity,
                        sign,
                        seal,
                        must_seal: required,
                        trees: BTreeSet::new(),
                    },
                );
                let mic = server_mic.filter(|_| kind == LogonKind::User);
                let body = SessionSetupResponse {
                    session_flags: flags,
                    security_buffer: &spnego::neg_token_resp_server(
                        NegState::AcceptCompleted,
                        None,
                        None,
                        mic.as_ref().map(|m| &m[..]),
                    ),
                }
                .emit_body();
                // Signed (when there is a key), never sealed: the client
                // checks it before it seals anything.
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

    /// A framed answer: sealed when the request was, else signed when the
    /// session signs.
    fn respond(&mut self, req: Req, status: NtStatus, body: &[u8]) -> Vec<u8> {
        self.respond_parts(req, status, body, &[])
    }

    /// [`respond`](Self::respond) for a body in two parts, its fixed
    /// fields and the data after them: the data is copied once, into the
    /// frame, which is built behind room for its transport header.
    fn respond_parts(&mut self, req: Req, status: NtStatus, fixed: &[u8], data: &[u8]) -> Vec<u8> {
        let h = self.header(req, status);
        let mut f = Vec::with_capacity(4 + HEADER_LEN + fixed.len() + data.len());
        f.resize(4 + HEADER_LEN, 0);
        h.emit((&mut f[4..]).try_into().expect("64"));
        f.extend_from_slice(fixed);
        f.extend_from_slice(data);
        if let Some(key) = self.sealer(&req) {
            return frame(&self.seal(&key, req.session_id, &f[4..]));
        }
        if let Some(SessionState::Ready {
            sign: Some((key, alg)), ..
        }) = self.sessions.get(&req.session_id)
        {
            signing::sign(&mut f[4..], key, *alg);
        }
        let th = transport_header(f.len() - 4).expect("answers stay under 16 MiB");
        f[..4].copy_from_slice(&th);
        f
    }

    /// The key answers to `req` are sealed with, when they are.
    fn sealer(&self, req: &Req) -> Option<crypt::CipherKey> {
        match (req.sealed, self.sessions.get(&req.session_id)) {
            (true, Some(SessionState::Ready { seal: Some(c), .. })) => Some(c.server_to_client.clone()),
            _ => None,
        }
    }

    fn seal(&mut self, key: &crypt::CipherKey, session_id: u64, m: &[u8]) -> Vec<u8> {
        // A counter under a fixed prefix: a nonce never repeats on this
        // connection, and keys are never shared between connections.
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&self.next_nonce.to_le_bytes());
        nonce[8..].copy_from_slice(&self.ent.nonce_prefix);
        self.next_nonce += 1;
        crypt::seal(key, &nonce, session_id, m)
    }

    fn status(&mut self, req: Req, status: NtStatus) -> Vec<u8> {
        self.respond(req, status, &error_body())
    }
}
