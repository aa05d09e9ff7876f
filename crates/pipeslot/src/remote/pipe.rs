//! One open remote pipe: a FileId on the session's IPC$ tree, and the
//! local model's calls mapped onto READ, WRITE and the pipe FSCTLs.
//!
//! A READ always asks for the session's whole read size, so a message is
//! never cut by the server (Samba never answers a short READ with
//! STATUS_BUFFER_OVERFLOW); what does not fit the caller's buffer waits
//! here and is handed out first, with `more` set, as a local message pipe
//! does.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipeslot_proto::{Host, PipeName};
use pipeslot_smb::client::Response;
use pipeslot_smb::create::{access, close_body, create_pipe_body, parse_create_response, FileId};
use pipeslot_smb::header::Command;
use pipeslot_smb::info::{flush_body, query_pipe_info_body, PipeLocalInfo};
use pipeslot_smb::io::{read_body, write_body, ReadResponse};
use pipeslot_smb::ioctl::{fsctl, fsctl_body, parse_ioctl_output, pipe_wait_input, PeekOutput};
use pipeslot_smb::status::NtStatus;

use super::options::RemoteOptions;
use super::session::{Session, Slot, SlotFuture};
use crate::error::{err, Error, Win32Error};
use crate::pipe::{MsgRead, PeekInfo, PipeEnd, PipeInfo, PipeMode};
use crate::WaitTimeout;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The most one READ or TRANSCEIVE asks for: 16 credits' worth.
const MAX_CHUNK: u32 = 1 << 20;

/// A message already read from the server, not yet all handed out.
#[derive(Debug, Default)]
struct Held {
    data: Vec<u8>,
    at: usize,
}

impl Held {
    fn left(&self) -> &[u8] {
        &self.data[self.at..]
    }
}

/// An open remote pipe.
#[derive(Debug)]
pub(crate) struct RemotePipe {
    session: Arc<Session>,
    file: FileId,
    /// `\\host\pipe\name`, for messages.
    name: String,
    info: PipeInfo,
    read_mode: Mutex<PipeMode>,
    held: Mutex<Held>,
    can_read: bool,
    can_write: bool,
    /// The server answered FilePipeLocalInformation (Samba does not).
    info_reported: bool,
}

fn host_of(name: &PipeName) -> &str {
    match name.host() {
        Host::Server(h) => h,
        _ => unreachable!("remote names have a server"),
    }
}

impl RemotePipe {
    /// CreateFile on `\\host\pipe\name`.
    pub(crate) fn open(
        name: &PipeName,
        read: bool,
        write: bool,
        mode: PipeMode,
        opts: &RemoteOptions,
    ) -> io::Result<RemotePipe> {
        let session = Session::get(host_of(name), opts).map_err(|e| naming(e, name))?;
        let mut want = access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE;
        if read {
            want |= access::FILE_READ_DATA;
        }
        if write {
            want |= access::FILE_WRITE_DATA;
        }
        let shown = name.to_string();
        let r = session.call(Command::CREATE, session.tree, &create_pipe_body(name.name(), want), 0)?;
        if r.status != NtStatus::STATUS_SUCCESS {
            return Err(open_error(&session, r.status, &shown));
        }
        let file = parse_create_response(&r.msg).map_err(|e| bad_answer(&session, &shown, e))?;
        let mut pipe = RemotePipe {
            info: PipeInfo {
                mode,
                end: PipeEnd::Client,
                max_instances: 0,
                out_buffer_size: 0,
                in_buffer_size: 0,
            },
            session,
            file,
            name: shown,
            read_mode: Mutex::new(mode),
            held: Mutex::new(Held::default()),
            can_read: read,
            can_write: write,
            info_reported: false,
        };
        if let Ok(i) = pipe.query() {
            pipe.info_reported = true;
            pipe.info.mode = if i.pipe_type == 1 {
                PipeMode::Message
            } else {
                PipeMode::Byte
            };
            pipe.info.max_instances = i.max_instances.min(255);
            pipe.info.in_buffer_size = i.inbound_quota;
            pipe.info.out_buffer_size = i.outbound_quota;
        }
        if mode == PipeMode::Message && pipe.info.mode == PipeMode::Byte {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!("{} is a byte pipe: it cannot be read in message mode", pipe.name),
            ));
        }
        Ok(pipe)
    }

    fn query(&self) -> io::Result<PipeLocalInfo> {
        let r = self.session.call(
            Command::QUERY_INFO,
            self.session.tree,
            &query_pipe_info_body(self.file),
            64,
        )?;
        self.check(&r, "QUERY_INFO")?;
        PipeLocalInfo::parse(&r.msg).map_err(|e| bad_answer(&self.session, &self.name, e))
    }

    /// GetNamedPipeInfo, as the server reported it at open.
    pub(crate) fn info(&self) -> PipeInfo {
        self.info.clone()
    }

    /// Instances the server counts now (1 when it does not say).
    pub(crate) fn instances(&self) -> u32 {
        self.query().map(|i| i.current_instances.max(1)).unwrap_or(1)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The server, dialect and protection, for `info`.
    pub(crate) fn describe(&self) -> super::RemoteSession {
        let i = self.session.info();
        let protection = match (i.encryption, i.signing) {
            (Some(c), _) => format!("encrypted ({c:?})"),
            (None, Some(a)) => format!("signed ({a:?})"),
            _ if i.guest => "guest, unsigned".into(),
            _ => "anonymous, unsigned".into(),
        };
        super::RemoteSession {
            server: self.session.server().to_owned(),
            dialect: format!("{}.{}.{}", i.dialect >> 8, (i.dialect >> 4) & 0xf, i.dialect & 0xf),
            protection,
            pipe_info_reported: self.info_reported,
        }
    }

    pub(crate) fn read_mode(&self) -> PipeMode {
        *lock(&self.read_mode)
    }

    pub(crate) fn set_read_mode(&self, mode: PipeMode) -> io::Result<()> {
        if mode == PipeMode::Message && self.info.mode == PipeMode::Byte {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!("{} is a byte pipe: it has no message read mode", self.name),
            ));
        }
        *lock(&self.read_mode) = mode;
        Ok(())
    }

    fn check(&self, r: &Response, what: &str) -> io::Result<()> {
        if r.status.is_error() {
            return Err(io_error(&self.session, r.status, what, &self.name));
        }
        Ok(())
    }

    fn read_len(&self) -> u32 {
        self.session.info().max_read.clamp(1, MAX_CHUNK)
    }

    /// Sends a READ for the next message; the slot answers it.
    pub(crate) fn start_read(&self) -> io::Result<Arc<Slot>> {
        if !self.can_read {
            return Err(err(
                Win32Error::ERROR_ACCESS_DENIED,
                format!("{} was opened without read access", self.name),
            ));
        }
        let len = self.read_len();
        self.session.send(
            Command::READ,
            self.session.tree,
            &read_body(self.file, len),
            len as usize,
            false,
        )
    }

    /// Folds READ answers (one, or after STATUS_BUFFER_OVERFLOW the reads
    /// of the rest) into one held message. `Ok(false)`: the pipe has ended.
    fn fold_read(&self, parts: &[Response]) -> io::Result<bool> {
        let mut msg = Vec::new();
        for r in parts {
            match r.status {
                NtStatus::STATUS_SUCCESS | NtStatus::STATUS_BUFFER_OVERFLOW => {}
                st if pipe_ended(st) && msg.is_empty() => return Ok(false),
                st => return Err(io_error(&self.session, st, "READ", &self.name)),
            }
            let part = ReadResponse::parse(&r.msg).map_err(|e| bad_answer(&self.session, &self.name, e))?;
            msg.extend_from_slice(part.data);
        }
        *lock(&self.held) = Held { data: msg, at: 0 };
        Ok(true)
    }

    /// Hands out held bytes: (copied, whether the message goes on).
    fn give(&self, buf: &mut [u8]) -> Option<MsgRead> {
        let mut h = lock(&self.held);
        let left = h.left();
        if left.is_empty() && h.data.is_empty() {
            return None;
        }
        let n = left.len().min(buf.len());
        buf[..n].copy_from_slice(&left[..n]);
        h.at += n;
        let more = h.at < h.data.len();
        if !more {
            *h = Held::default();
        }
        Some(MsgRead { len: n, more })
    }

    fn has_held(&self) -> bool {
        !lock(&self.held).data.is_empty()
    }

    /// ReadFile in message read mode (or the next bytes in byte mode).
    /// `Ok(None)`: the pipe has ended.
    pub(crate) fn read_msg(&self, buf: &mut [u8]) -> io::Result<Option<MsgRead>> {
        if let Some(m) = self.give(buf) {
            return Ok(Some(m));
        }
        let mut parts = vec![self.session.wait(&*self.start_read()?)?];
        while parts.last().is_some_and(overflowed) {
            parts.push(self.session.wait(&*self.start_read()?)?);
        }
        self.finish_read(&parts, buf)
    }

    /// Reads the next message into the held buffer (the async front end
    /// keeps this future across polls, so a cancelled read loses nothing).
    /// `Ok(false)`: the pipe has ended.
    pub(crate) async fn fill_async(self: Arc<Self>) -> io::Result<bool> {
        if self.has_held() {
            return Ok(true);
        }
        let mut parts = vec![SlotFuture(self.start_read()?).await?];
        while parts.last().is_some_and(overflowed) {
            parts.push(SlotFuture(self.start_read()?).await?);
        }
        self.fold_read(&parts)
    }

    /// Held bytes, as [`read_msg`](Self::read_msg) hands them out; `None`
    /// when nothing is held.
    pub(crate) fn take_held(&self, buf: &mut [u8]) -> Option<MsgRead> {
        self.give(buf)
    }

    pub(crate) fn holds_data(&self) -> bool {
        self.has_held()
    }

    /// FlushFileBuffers without blocking the runtime.
    pub(crate) async fn flush_async(&self) -> io::Result<()> {
        let slot = self
            .session
            .send(Command::FLUSH, self.session.tree, &flush_body(self.file), 0, true)?;
        let r = SlotFuture(slot).await?;
        self.check(&r, "FLUSH")
    }

    /// The SMB connection's socket, shared by every pipe to the server:
    /// something to poll, never to read or write.
    pub(crate) fn connection_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.session.connection_fd()
    }

    fn finish_read(&self, parts: &[Response], buf: &mut [u8]) -> io::Result<Option<MsgRead>> {
        if let [one] = parts {
            // The usual case, one answer: no copy into the held buffer.
            if one.status == NtStatus::STATUS_SUCCESS {
                let part = ReadResponse::parse(&one.msg).map_err(|e| bad_answer(&self.session, &self.name, e))?;
                return Ok(Some(self.hand_out(part.data, buf)));
            }
        }
        if !self.fold_read(parts)? {
            return Ok(None);
        }
        Ok(Some(self.give(buf).unwrap_or(MsgRead { len: 0, more: false })))
    }

    fn write_limit(&self) -> usize {
        self.session.info().max_write.clamp(1, MAX_CHUNK) as usize
    }

    fn check_write(&self, data: &[u8]) -> io::Result<()> {
        if !self.can_write {
            return Err(err(
                Win32Error::ERROR_ACCESS_DENIED,
                format!("{} was opened without write access", self.name),
            ));
        }
        if self.info.mode == PipeMode::Message && data.len() > self.write_limit() {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!(
                    "a message of {} bytes is over what {} takes in one WRITE ({} bytes); it was not split",
                    data.len(),
                    self.session.server(),
                    self.write_limit()
                ),
            ));
        }
        Ok(())
    }

    fn chunks<'a>(&self, data: &'a [u8]) -> Vec<&'a [u8]> {
        if data.is_empty() || self.info.mode == PipeMode::Message {
            vec![data]
        } else {
            data.chunks(self.write_limit()).collect()
        }
    }

    fn written(&self, r: &Response) -> io::Result<usize> {
        match r.status {
            NtStatus::STATUS_SUCCESS => pipeslot_smb::io::parse_write_response(&r.msg)
                .map(|n| n as usize)
                .map_err(|e| bad_answer(&self.session, &self.name, e)),
            // What a local writer hears when the reader has gone.
            st if pipe_ended(st) || st == NtStatus::STATUS_PIPE_CLOSING || st == NtStatus::STATUS_PIPE_DISCONNECTED => {
                Err(err(
                    Win32Error::ERROR_NO_DATA,
                    format!("the pipe {} is being closed by its server ({})", self.name, r.status),
                ))
            }
            st => Err(io_error(&self.session, st, "WRITE", &self.name)),
        }
    }

    /// WriteFile: one message on a message pipe, bytes on a byte pipe.
    pub(crate) fn write(&self, data: &[u8]) -> io::Result<usize> {
        self.check_write(data)?;
        let mut total = 0;
        for c in self.chunks(data) {
            let r = self
                .session
                .call(Command::WRITE, self.session.tree, &write_body(self.file, c), 0)?;
            total += self.written(&r)?;
        }
        Ok(total)
    }

    pub(crate) async fn write_async(&self, data: &[u8]) -> io::Result<usize> {
        self.check_write(data)?;
        let mut total = 0;
        for c in self.chunks(data) {
            let slot = self
                .session
                .send(Command::WRITE, self.session.tree, &write_body(self.file, c), 0, true)?;
            total += self.written(&SlotFuture(slot).await?)?;
        }
        Ok(total)
    }

    fn transact_check(&self, msg: &[u8]) -> io::Result<()> {
        if self.read_mode() != PipeMode::Message {
            return Err(err(
                Win32Error::ERROR_BAD_PIPE,
                format!(
                    "transact needs {} in message read mode (set_read_mode(PipeMode::Message))",
                    self.name
                ),
            ));
        }
        if self.has_held() {
            return Err(err(
                Win32Error::ERROR_PIPE_BUSY,
                format!("{} has an unread message: read it before a transact", self.name),
            ));
        }
        if msg.len() > self.session.info().max_transact as usize {
            return Err(err(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!(
                    "a transact of {} bytes is over {}'s limit of {}",
                    msg.len(),
                    self.session.server(),
                    self.session.info().max_transact
                ),
            ));
        }
        self.check_write(msg)
    }

    fn transceive_body(&self, msg: &[u8]) -> (Vec<u8>, usize) {
        let out = self.session.info().max_transact.clamp(1, MAX_CHUNK);
        (fsctl_body(fsctl::PIPE_TRANSCEIVE, self.file, msg, out), out as usize)
    }

    fn take_reply(&self, r: Response, reply: &mut [u8]) -> io::Result<MsgRead> {
        match r.status {
            NtStatus::STATUS_SUCCESS | NtStatus::STATUS_BUFFER_OVERFLOW => {}
            st if pipe_ended(st) => {
                return Err(err(
                    Win32Error::ERROR_BROKEN_PIPE,
                    format!("the pipe {} has been ended by its server", self.name),
                ))
            }
            st => return Err(io_error(&self.session, st, "TRANSCEIVE", &self.name)),
        }
        let out = parse_ioctl_output(&r.msg).map_err(|e| bad_answer(&self.session, &self.name, e))?;
        let mut m = self.hand_out(out, reply);
        // The server kept the rest of a longer reply: READ gets it.
        m.more |= r.status == NtStatus::STATUS_BUFFER_OVERFLOW;
        Ok(m)
    }

    /// A whole message to the caller's buffer; what does not fit is held.
    fn hand_out(&self, msg: &[u8], buf: &mut [u8]) -> MsgRead {
        let n = msg.len().min(buf.len());
        buf[..n].copy_from_slice(&msg[..n]);
        if n < msg.len() {
            *lock(&self.held) = Held {
                data: msg[n..].to_vec(),
                at: 0,
            };
        }
        MsgRead {
            len: n,
            more: n < msg.len(),
        }
    }

    /// TransactNamedPipe: FSCTL_PIPE_TRANSCEIVE.
    pub(crate) fn transact(&self, msg: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
        self.transact_check(msg)?;
        let (body, out) = self.transceive_body(msg);
        let slot = self
            .session
            .send(Command::IOCTL, self.session.tree, &body, out, false)?;
        let r = self.session.wait(&slot)?;
        self.take_reply(r, reply)
    }

    pub(crate) async fn transact_async(&self, msg: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
        self.transact_check(msg)?;
        let (body, out) = self.transceive_body(msg);
        let slot = self
            .session
            .send(Command::IOCTL, self.session.tree, &body, out, false)?;
        let r = SlotFuture(slot).await?;
        self.take_reply(r, reply)
    }

    /// PeekNamedPipe: FSCTL_PIPE_PEEK, or what is held here already.
    pub(crate) fn peek(&self, buf: &mut [u8]) -> io::Result<PeekInfo> {
        {
            let h = lock(&self.held);
            let left = h.left();
            if !h.data.is_empty() {
                let n = left.len().min(buf.len());
                buf[..n].copy_from_slice(&left[..n]);
                return Ok(PeekInfo {
                    read: n,
                    available: left.len(),
                    left_in_message: left.len() - n,
                });
            }
        }
        let want = (buf.len() + 16).min(MAX_CHUNK as usize) as u32;
        let r = self.session.call(
            Command::IOCTL,
            self.session.tree,
            &fsctl_body(fsctl::PIPE_PEEK, self.file, &[], want),
            want as usize,
        )?;
        match r.status {
            NtStatus::STATUS_SUCCESS | NtStatus::STATUS_BUFFER_OVERFLOW => {}
            NtStatus::STATUS_FS_DRIVER_REQUIRED
            | NtStatus::STATUS_INVALID_DEVICE_REQUEST
            | NtStatus::STATUS_NOT_SUPPORTED => {
                return Err(err(
                    Win32Error::ERROR_NOT_SUPPORTED,
                    format!(
                        "peek on {}: the server {} does not do FSCTL_PIPE_PEEK ({})",
                        self.name,
                        self.session.server(),
                        r.status
                    ),
                ))
            }
            st => return Err(io_error(&self.session, st, "FSCTL_PIPE_PEEK", &self.name)),
        }
        let out = parse_ioctl_output(&r.msg).map_err(|e| bad_answer(&self.session, &self.name, e))?;
        let p = PeekOutput::parse(out).map_err(|e| bad_answer(&self.session, &self.name, e))?;
        let n = p.data.len().min(buf.len());
        buf[..n].copy_from_slice(&p.data[..n]);
        Ok(PeekInfo {
            read: n,
            available: p.available as usize,
            left_in_message: (p.message_length as usize).saturating_sub(n),
        })
    }

    /// FlushFileBuffers: SMB2 FLUSH.
    pub(crate) fn flush(&self) -> io::Result<()> {
        let r = self
            .session
            .call(Command::FLUSH, self.session.tree, &flush_body(self.file), 0)?;
        self.check(&r, "FLUSH")
    }
}

impl Drop for RemotePipe {
    fn drop(&mut self) {
        self.session
            .post(Command::CLOSE, self.session.tree, &close_body(self.file));
    }
}

/// The statuses that say the pipe's server has gone. Samba answers
/// STATUS_CONNECTION_DISCONNECTED for a pipe whose server hung up; the SMB
/// connection itself is fine (it carried the answer).
fn pipe_ended(st: NtStatus) -> bool {
    matches!(
        st,
        NtStatus::STATUS_PIPE_BROKEN | NtStatus::STATUS_END_OF_FILE | NtStatus::STATUS_CONNECTION_DISCONNECTED
    )
}

fn overflowed(r: &Response) -> bool {
    r.status == NtStatus::STATUS_BUFFER_OVERFLOW
}

/// A session failure told about the pipe it was for.
fn naming(e: io::Error, name: &PipeName) -> io::Error {
    match Error::win32(&e) {
        Some(code) => Error::new(code, format!("{name}: {}", crate::error::detail_of(&e))).into(),
        None => e,
    }
}

fn bad_answer(session: &Session, name: &str, e: pipeslot_smb::DecodeError) -> io::Error {
    err(
        Win32Error::ERROR_UNEXP_NET_ERR,
        format!("{name}: a malformed answer from {}: {e}", session.server()),
    )
}

fn open_error(session: &Session, st: NtStatus, name: &str) -> io::Error {
    let code = st.win32();
    let why = match code {
        Win32Error::ERROR_FILE_NOT_FOUND => "no pipe of that name on the server".to_owned(),
        Win32Error::ERROR_PIPE_BUSY => "all instances are busy (wait, then open again)".to_owned(),
        Win32Error::ERROR_ACCESS_DENIED => "the server refused this user".to_owned(),
        _ => "the server refused the open".to_owned(),
    };
    Error::new(code, format!("{name}: {why} ({st} from {})", session.server())).into()
}

fn io_error(session: &Session, st: NtStatus, what: &str, name: &str) -> io::Error {
    let code = match st {
        st if pipe_ended(st) => Win32Error::ERROR_BROKEN_PIPE,
        NtStatus::STATUS_PIPE_DISCONNECTED => Win32Error::ERROR_PIPE_NOT_CONNECTED,
        st => st.win32(),
    };
    Error::new(code, format!("{what} on {name} ({st} from {})", session.server())).into()
}

/// WaitNamedPipe on a remote name: FSCTL_PIPE_WAIT where the server has it;
/// otherwise (Samba) opening and closing the pipe until an open succeeds,
/// backing off from 10 ms to 250 ms.
pub(crate) fn wait(name: &PipeName, timeout: WaitTimeout, opts: &RemoteOptions) -> io::Result<()> {
    let session = Session::get(host_of(name), opts).map_err(|e| naming(e, name))?;
    let shown = name.to_string();
    let deadline = match timeout {
        WaitTimeout::After(d) => Some(Instant::now() + d),
        // Without the server's own default (no FSCTL_PIPE_WAIT), Win32's
        // fallback of 50 ms.
        WaitTimeout::Default => Some(Instant::now() + Duration::from_millis(50)),
        WaitTimeout::Forever => None,
    };
    let ticks = match timeout {
        WaitTimeout::After(d) => Some(i64::try_from(d.as_nanos() / 100).unwrap_or(i64::MAX)),
        WaitTimeout::Forever => Some(i64::MAX),
        _ => None,
    };
    // The server waits as long as asked: no response timeout, the ECHO
    // probe still watches it.
    let body = fsctl_body(
        fsctl::PIPE_WAIT,
        FileId([0xff; 16]),
        &pipe_wait_input(name.name(), ticks),
        0,
    );
    let slot = session.send(Command::IOCTL, session.tree, &body, 0, false)?;
    let r = session.wait(&slot)?;
    match r.status {
        NtStatus::STATUS_SUCCESS => return Ok(()),
        NtStatus::STATUS_IO_TIMEOUT => {
            return Err(err(
                Win32Error::ERROR_SEM_TIMEOUT,
                format!("no instance of {shown} became free in time"),
            ))
        }
        NtStatus::STATUS_FS_DRIVER_REQUIRED
        | NtStatus::STATUS_INVALID_DEVICE_REQUEST
        | NtStatus::STATUS_NOT_SUPPORTED => {}
        st => return Err(open_error(&session, st, &shown)),
    }
    let mut pause = Duration::from_millis(10);
    loop {
        let r = session.call(
            Command::CREATE,
            session.tree,
            &create_pipe_body(name.name(), access::FILE_READ_ATTRIBUTES),
            0,
        )?;
        match r.status {
            NtStatus::STATUS_SUCCESS => {
                if let Ok(f) = parse_create_response(&r.msg) {
                    session.post(Command::CLOSE, session.tree, &close_body(f));
                }
                return Ok(());
            }
            NtStatus::STATUS_PIPE_NOT_AVAILABLE | NtStatus::STATUS_PIPE_BUSY => {}
            st => return Err(open_error(&session, st, &shown)),
        }
        if deadline.is_some_and(|d| Instant::now() + pause > d) {
            return Err(err(
                Win32Error::ERROR_SEM_TIMEOUT,
                format!("no instance of {shown} became free in time"),
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}
