//! One client connection of the gateway: frames in, the state machine's
//! answers out, and a worker thread per open pipe for what may wait.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

use pipeslot_smb::create::FileId;
use pipeslot_smb::server::{Answer, Event, Req, Server, ServerConfig, ServerEntropy};
use pipeslot_smb::status::NtStatus;
use pipeslot_smb::transport::message_len;

use super::GatewayOptions;
use crate::blocking::{ClientOptions, NamedPipeClient};
use crate::error::{Error, Win32Error};
use crate::pipe::PipeMode;
use crate::remote::session::{filetime_now, random};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The largest frame a client may send.
const MAX_FRAME: usize = 1 << 20;

/// What a pipe's worker does next.
enum Op {
    Read(Req, u32),
    Write(Req, Vec<u8>),
    Transceive(Req, Vec<u8>, u32),
}

/// The parts the connection and its workers share.
struct Wire {
    server: Mutex<Server>,
    out: Mutex<TcpStream>,
    peer: String,
}

impl Wire {
    fn send(&self, frame: &[u8]) {
        if lock(&self.out).write_all(frame).is_err() {
            let _ = lock(&self.out).shutdown(std::net::Shutdown::Both);
        }
    }

    fn answer(&self, req: Req, a: Answer<'_>) {
        let f = lock(&self.server).answer(req, a);
        self.send(&f);
    }
}

pub(super) fn run(stream: TcpStream, opts: &GatewayOptions, seq: u64) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let _ = stream.set_nodelay(true);
    let Ok(out) = stream.try_clone() else { return };
    let server = Server::new(
        ServerConfig {
            server_guid: random(),
            domain: opts.domain.clone(),
            computer: opts.computer.clone(),
            users: opts.users.clone(),
            require_signing: opts.require_signing,
            max_io: 1 << 16,
        },
        ServerEntropy {
            salt: random(),
            server_challenge: random(),
            session_id: u64::from_le_bytes(random()) >> 16 | seq,
            now: filetime_now(),
        },
    );
    let wire = Arc::new(Wire {
        server: Mutex::new(server),
        out: Mutex::new(out),
        peer,
    });
    tracing::info!("gateway: connection from {}", wire.peer);
    let mut opens: Opens = HashMap::new();
    let mut reader = stream;
    loop {
        let mut th = [0u8; 4];
        if reader.read_exact(&mut th).is_err() {
            break;
        }
        let Ok(n) = message_len(th) else { break };
        if n > MAX_FRAME {
            tracing::warn!("gateway: {} sent a frame of {n} bytes; closed", wire.peer);
            break;
        }
        let mut msg = vec![0u8; n];
        if reader.read_exact(&mut msg).is_err() {
            break;
        }
        let out = lock(&wire.server).receive(&msg);
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("gateway: {}: {e}; closed", wire.peer);
                break;
            }
        };
        for f in &out.send {
            wire.send(f);
        }
        for e in out.events {
            handle(&wire, opts, &mut opens, e);
        }
    }
    // The client is gone: its pipes end now, even those a read waits on.
    for (_, (tx, client)) in opens.drain() {
        drop(tx);
        client.abort();
    }
    let _ = lock(&wire.out).shutdown(std::net::Shutdown::Both);
    tracing::info!("gateway: {} gone", wire.peer);
}

/// Each open pipe: its worker's queue, and the pipe (to end it from here).
type Opens = HashMap<FileId, (Sender<Op>, Arc<NamedPipeClient>)>;

fn handle(wire: &Arc<Wire>, opts: &GatewayOptions, opens: &mut Opens, e: Event) {
    match e {
        Event::Open {
            req,
            user,
            pipe,
            file,
            desired_access,
        } => {
            if !opts.exports(&pipe) {
                tracing::info!(
                    "gateway: {}\\{} from {}: {pipe} is not exported",
                    user.domain,
                    user.user,
                    wire.peer
                );
                return wire.answer(req, Answer::Status(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
            }
            let mut o = ClientOptions::new();
            o.read(desired_access & 0x1 != 0 || desired_access & 0x8000_0000 != 0)
                .write(desired_access & 0x2 != 0 || desired_access & 0x4000_0000 != 0);
            use pipeslot_proto::wire::local::hello_ext as ext;
            let who = if user.domain.is_empty() {
                user.user.clone()
            } else {
                format!("{}\\{}", user.domain, user.user)
            };
            o.on_behalf_of = Some(ext::encode(&[
                (ext::REMOTE_USER, &who),
                (ext::REMOTE_ADDRESS, &wire.peer),
                (ext::REMOTE_COMPUTER, &user.workstation),
            ]));
            match o.open(format!(r"\\.\pipe\{pipe}")) {
                Ok(client) => {
                    if client.info().is_ok_and(|i| i.mode == PipeMode::Message) {
                        let _ = client.set_read_mode(PipeMode::Message);
                    }
                    tracing::info!(
                        "gateway: {}\\{} from {} opened {pipe}",
                        user.domain,
                        user.user,
                        wire.peer
                    );
                    let (tx, rx) = channel();
                    let client = Arc::new(client);
                    opens.insert(file, (tx, Arc::clone(&client)));
                    wire.answer(req, Answer::Opened);
                    let wire = Arc::clone(wire);
                    let _ = std::thread::Builder::new()
                        .name("pipeslot-gateway-pipe".into())
                        .spawn(move || {
                            for op in rx {
                                work(&wire, &client, op);
                            }
                        });
                }
                Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
            }
        }
        Event::Read { req, file, length } => queue(wire, opens, file, req, Op::Read(req, length)),
        Event::Write { req, file, data } => queue(wire, opens, file, req, Op::Write(req, data)),
        Event::Transceive {
            req,
            file,
            input,
            max_output,
        } => queue(wire, opens, file, req, Op::Transceive(req, input, max_output)),
        Event::Wait { req, pipe, timeout } => {
            if !opts.exports(&pipe) {
                return wire.answer(req, Answer::Status(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
            }
            let (req, f) = lock(&wire.server).interim(req, req.message_id);
            wire.send(&f);
            let wire = Arc::clone(wire);
            let t = match timeout {
                // 100 ns units; an i64::MAX is "for ever".
                Some(t) if (0..i64::MAX).contains(&t) => {
                    crate::WaitTimeout::After(std::time::Duration::from_nanos((t as u64).saturating_mul(100)))
                }
                Some(_) => crate::WaitTimeout::Forever,
                None => crate::WaitTimeout::Default,
            };
            let _ = std::thread::Builder::new()
                .name("pipeslot-gateway-wait".into())
                .spawn(move || {
                    let a = match crate::wait_named_pipe(format!(r"\\.\pipe\{pipe}"), t) {
                        Ok(()) => Answer::Data(&[]),
                        Err(e) if Error::win32(&e) == Some(Win32Error::ERROR_SEM_TIMEOUT) => {
                            Answer::Status(NtStatus::STATUS_IO_TIMEOUT)
                        }
                        Err(e) => Answer::Status(status_of(&e)),
                    };
                    wire.answer(req, a);
                });
        }
        Event::Close { file } => {
            // As a handle's close on Windows: what waits on it ends.
            if let Some((tx, client)) = opens.remove(&file) {
                drop(tx);
                client.abort();
            }
        }
        // A pipe read cannot be taken back without losing what it may
        // bring: the request is answered when the pipe answers.
        Event::Cancel { .. } => {}
    }
}

/// Hands an operation to its pipe's worker, first telling the client it
/// may wait (an interim answer; the final one comes from the worker).
fn queue(wire: &Arc<Wire>, opens: &Opens, file: FileId, req: Req, op: Op) {
    let Some((tx, _)) = opens.get(&file) else {
        return wire.answer(req, Answer::Status(NtStatus::STATUS_FILE_CLOSED));
    };
    let op = match op {
        Op::Read(r, n) => {
            let (r, f) = lock(&wire.server).interim(r, r.message_id);
            wire.send(&f);
            Op::Read(r, n)
        }
        Op::Transceive(r, input, n) => {
            let (r, f) = lock(&wire.server).interim(r, r.message_id);
            wire.send(&f);
            Op::Transceive(r, input, n)
        }
        w => w,
    };
    if tx.send(op).is_err() {
        wire.answer(req, Answer::Status(NtStatus::STATUS_PIPE_BROKEN));
    }
}

fn work(wire: &Wire, client: &NamedPipeClient, op: Op) {
    match op {
        Op::Read(req, n) => {
            let mut buf = vec![0u8; n.max(1) as usize];
            match client.read_msg(&mut buf) {
                Ok(m) if m.more => wire.answer(req, Answer::Part(&buf[..m.len])),
                Ok(m) => wire.answer(req, Answer::Data(&buf[..m.len])),
                Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
            }
        }
        Op::Write(req, data) => match client.write_msg(&data) {
            Ok(()) => wire.answer(req, Answer::Written(data.len() as u32)),
            Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
        },
        Op::Transceive(req, input, n) => {
            let mut buf = vec![0u8; n.max(1) as usize];
            match client.transact(&input, &mut buf) {
                Ok(m) if m.more => wire.answer(req, Answer::Part(&buf[..m.len])),
                Ok(m) => wire.answer(req, Answer::Data(&buf[..m.len])),
                Err(e) => wire.answer(req, Answer::Status(status_of(&e))),
            }
        }
    }
}

/// The NTSTATUS a Windows server answers for a local pipe failure.
fn status_of(e: &io::Error) -> NtStatus {
    match Error::win32(e) {
        Some(Win32Error::ERROR_FILE_NOT_FOUND) => NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
        Some(Win32Error::ERROR_PIPE_BUSY) => NtStatus::STATUS_PIPE_NOT_AVAILABLE,
        Some(Win32Error::ERROR_ACCESS_DENIED) => NtStatus::STATUS_ACCESS_DENIED,
        Some(Win32Error::ERROR_BROKEN_PIPE) => NtStatus::STATUS_PIPE_BROKEN,
        Some(Win32Error::ERROR_NO_DATA) => NtStatus::STATUS_PIPE_CLOSING,
        Some(Win32Error::ERROR_PIPE_NOT_CONNECTED) => NtStatus::STATUS_PIPE_DISCONNECTED,
        Some(Win32Error::ERROR_BAD_PIPE) => NtStatus::STATUS_INVALID_PIPE_STATE,
        Some(Win32Error::ERROR_INVALID_PARAMETER) => NtStatus::STATUS_INVALID_PARAMETER,
        _ => NtStatus::STATUS_UNEXPECTED_NETWORK_ERROR,
    }
}
