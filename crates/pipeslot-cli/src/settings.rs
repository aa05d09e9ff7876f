//! Validated settings: raw arguments checked once, so the verbs never see a
//! malformed name, an unknown user or bad hex. Failures here are the same
//! one-line Win32 errors as failures while running.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use pipeslot::{Name, PipeMode, PipeSecurity, WaitTimeout, Win32Error};

use crate::args::{RawArgs, Verb};
use crate::error::fail;
use crate::hex;

/// One verb, ready to run.
#[derive(Debug)]
pub(crate) enum Command {
    Serve(Name, Serve),
    Send(Name, Send),
    Call(Name, Call),
    Transact(Name, Transact),
    Wait(Name, WaitTimeout),
    List,
    Info(Name),
    Demo,
    DemoPeer(Name),
    /// A verb of the contract that this version does not have yet.
    NotAvailable(&'static str),
}

/// What `serve` does with each client.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Write what the client sends to stdout (hex lines with `hex`).
    Print { hex: bool },
    /// Write it back.
    Echo,
    /// Run a command with the pipe as its stdin and stdout.
    Exec(Vec<OsString>),
}

#[derive(Debug)]
pub(crate) struct Serve {
    pub(crate) mode: PipeMode,
    pub(crate) instances: usize,
    pub(crate) action: Action,
    pub(crate) max_clients: Option<u64>,
    pub(crate) reject_remote: bool,
    pub(crate) security: PipeSecurity,
}

/// Where `send` takes its data from.
#[derive(Debug)]
pub(crate) enum Input {
    Args(Vec<Vec<u8>>),
    /// Message pipes: one message per line; byte pipes: the bytes.
    Stdin {
        hex: bool,
    },
}

#[derive(Debug)]
pub(crate) struct Send {
    pub(crate) input: Input,
    pub(crate) wait: Option<Duration>,
    pub(crate) progress: bool,
}

#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) msg: Vec<u8>,
    pub(crate) timeout: WaitTimeout,
    pub(crate) hex: bool,
}

#[derive(Debug)]
pub(crate) struct Transact {
    pub(crate) msgs: Vec<Vec<u8>>,
    pub(crate) wait: Option<Duration>,
    pub(crate) hex: bool,
}

/// Checks raw arguments and turns them into a command.
pub(crate) fn validate(raw: RawArgs) -> io::Result<Command> {
    Ok(match raw.verb {
        Verb::Serve(a) => {
            let name = name(&a.name)?;
            let mut security = if a.everyone {
                PipeSecurity::owner_only().allow_everyone()
            } else {
                PipeSecurity::owner_only()
            };
            for u in &a.allow_user {
                security = security.allow_user(pipeslot::resolve_user(u)?);
            }
            for g in &a.allow_group {
                security = security.allow_group(pipeslot::resolve_group(g)?);
            }
            let action = if a.echo {
                Action::Echo
            } else if !a.exec.is_empty() {
                Action::Exec(a.exec)
            } else {
                Action::Print { hex: a.hex }
            };
            Command::Serve(
                name,
                Serve {
                    mode: if a.message { PipeMode::Message } else { PipeMode::Byte },
                    instances: usize::from(a.instances),
                    action,
                    max_clients: a.max_clients,
                    reject_remote: !a.accept_remote,
                    security,
                },
            )
        }
        Verb::Send(a) => {
            let stdin = a.msgs.is_empty() || (a.msgs.len() == 1 && a.msgs[0] == "-");
            let input = if stdin {
                Input::Stdin { hex: a.hex }
            } else {
                Input::Args(payloads(&a.msgs, a.hex)?)
            };
            Command::Send(
                name(&a.name)?,
                Send {
                    input,
                    wait: a.wait.map(Duration::from_millis),
                    progress: a.progress,
                },
            )
        }
        Verb::Call(a) => {
            let msg = if a.msg == "-" {
                stdin_message(a.hex)?
            } else {
                payload(&a.msg, a.hex)?
            };
            Command::Call(
                name(&a.name)?,
                Call {
                    msg,
                    timeout: timeout(a.timeout.as_deref())?,
                    hex: a.hex,
                },
            )
        }
        Verb::Transact(a) => Command::Transact(
            name(&a.name)?,
            Transact {
                msgs: payloads(&a.msgs, a.hex)?,
                wait: a.wait.map(Duration::from_millis),
                hex: a.hex,
            },
        ),
        Verb::Wait(a) => Command::Wait(name(&a.name)?, timeout(a.timeout.as_deref())?),
        Verb::List => Command::List,
        Verb::Info(a) => Command::Info(name(&a.name)?),
        Verb::Demo => Command::Demo,
        Verb::DemoPeer(a) => Command::DemoPeer(name(&a.name)?),
        Verb::Bench => Command::NotAvailable("bench"),
        Verb::Gateway(_) => Command::NotAvailable("gateway"),
    })
}

/// A pipe or mailslot name (`ERROR_INVALID_NAME` when malformed).
fn name(s: &str) -> io::Result<Name> {
    Name::parse(s).map_err(|e| pipeslot::Error::from(e).into())
}

/// `MS` or `forever`; none means the pipe's default timeout.
fn timeout(s: Option<&str>) -> io::Result<WaitTimeout> {
    match s {
        None => Ok(WaitTimeout::Default),
        Some("forever") => Ok(WaitTimeout::Forever),
        Some(ms) => ms
            .parse::<u64>()
            .map(|ms| WaitTimeout::After(Duration::from_millis(ms)))
            .map_err(|_| {
                fail(
                    Win32Error::ERROR_INVALID_PARAMETER,
                    format!("timeout {ms:?} is neither milliseconds nor `forever`"),
                )
            }),
    }
}

fn payloads(msgs: &[OsString], hex: bool) -> io::Result<Vec<Vec<u8>>> {
    msgs.iter().map(|m| payload(m, hex)).collect()
}

/// One message given on the command line: its bytes as given (any encoding),
/// or decoded from hex.
fn payload(msg: &OsStr, hex: bool) -> io::Result<Vec<u8>> {
    if hex {
        hex::decode(msg.as_bytes())
    } else {
        Ok(msg.as_bytes().to_vec())
    }
}

/// `call NAME -`: all of stdin as one message, less one final newline so
/// `echo hi | pipeslot call NAME -` sends "hi".
fn stdin_message(hex: bool) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .map_err(|e| crate::error::wrap(e, "reading the message from stdin"))?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    if hex {
        hex::decode(&buf)
    } else {
        Ok(buf)
    }
}
