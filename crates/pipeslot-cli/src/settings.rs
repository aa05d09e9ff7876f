//! Validated settings: raw arguments checked once, so the verbs never see a
//! malformed name, an unknown user, bad hex, or a flag or verb that does not
//! fit the kind of name (pipe or mailslot). Failures here are the same
//! one-line Win32 errors as failures while running.

use std::ffi::{OsStr, OsString};
use std::fmt::Display;
use std::io;
use std::os::unix::ffi::OsStrExt;

use pipeslot::{Host, MailslotName, Name, PipeMode, PipeName, PipeSecurity, WaitTimeout, Win32Error};

use crate::args::{RawArgs, ServeArgs, Verb};
use crate::error::fail;
use crate::{hex, mailslot};

/// One verb, ready to run. `call`, `transact` and `wait` only ever hold pipe
/// names: mailslots are refused here, before stdin is read.
#[derive(Debug)]
pub(crate) enum Command {
    /// Serve a pipe.
    Serve(Name, Serve),
    /// Read a mailslot.
    ServeMailslot(MailslotName, MailslotServe),
    Send(Name, Send),
    Call(Name, Call),
    Transact(Name, Transact),
    Wait(Name, WaitTimeout),
    /// `list [PATTERN] [--json]`.
    List(Option<String>, bool),
    /// `info NAME [--json]`.
    Info(Name, bool),
    Demo,
    DemoPeer(Name),
    /// `bench`: the arguments go to the bench as they are.
    Bench(Vec<String>),
    /// `torture`'s arguments, for `pipeslot_bench::torture_main`.
    Torture(Vec<String>),
    /// `gateway --config FILE`.
    Gateway(std::path::PathBuf),
    /// `gateway user add NAME --config FILE`.
    GatewayUserAdd(std::path::PathBuf, String),
    /// `completions SHELL`.
    Completions(clap_complete::Shell),
    /// `man`.
    Man,
    /// `--retry TIME`: wait for the name (a pipe, or a local mailslot's
    /// reader) to exist, then run the verb.
    Retrying(Name, WaitTimeout, Box<Command>),
}

/// Wraps a client verb in its `--retry`.
fn retrying(cmd: Command, retry: Option<crate::time::Time>) -> Command {
    let Some(t) = retry else { return cmd };
    let name = match &cmd {
        Command::Send(n, _)
        | Command::Call(n, _)
        | Command::Transact(n, _)
        | Command::Wait(n, _)
        | Command::Info(n, _) => n.clone(),
        _ => return cmd,
    };
    Command::Retrying(name, wait_timeout(t), Box::new(cmd))
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

/// `serve` on a mailslot: the one reader, printing each message.
#[derive(Debug)]
pub(crate) struct MailslotServe {
    /// nMaxMessageSize (0: any).
    pub(crate) max_size: u32,
    /// Also take messages from other hosts.
    pub(crate) network: bool,
    pub(crate) hex: bool,
    /// Exit after this many messages.
    pub(crate) max_messages: Option<u64>,
}

/// Where `send` takes its data from.
#[derive(Debug)]
pub(crate) enum Input {
    Args(Vec<Vec<u8>>),
    /// Message pipes and mailslots: one message per line; byte pipes: the bytes.
    Stdin {
        hex: bool,
    },
}

#[derive(Debug)]
pub(crate) struct Send {
    pub(crate) input: Input,
    /// Pipes only (settings refuses it for mailslots).
    pub(crate) wait: Option<WaitTimeout>,
    pub(crate) progress: bool,
    /// `--server-user`, resolved.
    pub(crate) server_user: Option<u32>,
}

#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) msg: Vec<u8>,
    pub(crate) timeout: WaitTimeout,
    pub(crate) hex: bool,
    pub(crate) server_user: Option<u32>,
}

#[derive(Debug)]
pub(crate) struct Transact {
    pub(crate) msgs: Vec<Vec<u8>>,
    pub(crate) wait: Option<WaitTimeout>,
    /// The whole command's bound (None: the default).
    pub(crate) timeout: Option<WaitTimeout>,
    pub(crate) hex: bool,
    pub(crate) server_user: Option<u32>,
}

/// Checks raw arguments and turns them into a command.
pub(crate) fn validate(raw: RawArgs) -> io::Result<Command> {
    Ok(match raw.verb {
        Verb::Serve(a) => match name(&a.name)? {
            Name::Mailslot(m) => serve_mailslot(m, &a)?,
            Name::Pipe(p) => serve_pipe(p, a)?,
            _ => return Err(crate::error::other_kind()),
        },
        Verb::Send(a) => {
            let name = name(&a.name)?;
            if let Name::Mailslot(m) = &name {
                refuse(
                    &[("--wait", a.wait.is_some()), ("--server-user", a.server_user.is_some())],
                    "pipe",
                    m,
                    "mailslot",
                )?;
                // A datagram to another host has nobody to ask whether the
                // reader is there yet.
                if a.retry.is_some() && *m.host() != Host::Local {
                    return Err(fail(
                        Win32Error::ERROR_INVALID_PARAMETER,
                        format!("--retry waits for a local mailslot's reader, and {m} is written as datagrams"),
                    ));
                }
            }
            let server_user = server_user(&name, a.server_user.as_deref())?;
            let stdin = a.msgs.is_empty() || (a.msgs.len() == 1 && a.msgs[0] == "-");
            let input = if stdin {
                Input::Stdin { hex: a.hex }
            } else {
                Input::Args(payloads(&a.msgs, a.hex)?)
            };
            retrying(
                Command::Send(
                    name,
                    Send {
                        input,
                        wait: a.wait.map(wait_timeout),
                        progress: a.progress,
                        server_user,
                    },
                ),
                a.retry,
            )
        }
        Verb::Call(a) => {
            // The name first: a mailslot is refused before stdin is read.
            let name = two_way("call", name(&a.name)?)?;
            let server_user = server_user(&name, a.server_user.as_deref())?;
            let msg = if a.msg == "-" {
                stdin_message(a.hex)?
            } else {
                payload(&a.msg, a.hex)?
            };
            retrying(
                Command::Call(
                    name,
                    Call {
                        msg,
                        timeout: a.timeout.map_or(WaitTimeout::Default, wait_timeout),
                        hex: a.hex,
                        server_user,
                    },
                ),
                a.retry,
            )
        }
        Verb::Transact(a) => {
            let name = two_way("transact", name(&a.name)?)?;
            let server_user = server_user(&name, a.server_user.as_deref())?;
            retrying(
                Command::Transact(
                    name,
                    Transact {
                        msgs: payloads(&a.msgs, a.hex)?,
                        wait: a.wait.map(wait_timeout),
                        timeout: a.timeout.map(wait_timeout),
                        hex: a.hex,
                        server_user,
                    },
                ),
                a.retry,
            )
        }
        Verb::Wait(a) => retrying(
            Command::Wait(
                two_way("wait", name(&a.name)?)?,
                a.timeout.map_or(WaitTimeout::Default, wait_timeout),
            ),
            a.retry,
        ),
        Verb::Completions { shell } => Command::Completions(shell),
        Verb::Man => Command::Man,
        Verb::List(a) => Command::List(a.pattern, a.json),
        Verb::Info(a) => retrying(Command::Info(name(&a.name)?, a.json), a.retry),
        Verb::Demo => Command::Demo,
        Verb::DemoPeer(a) => Command::DemoPeer(name(&a.name)?),
        Verb::Bench(b) => Command::Bench(b.args),
        Verb::Torture(b) => Command::Torture(b.args),
        Verb::Gateway(g) => {
            let config = g.config.ok_or_else(|| {
                crate::error::fail(
                    Win32Error::ERROR_INVALID_PARAMETER,
                    "gateway needs --config FILE (see docs/GATEWAY.md)",
                )
            })?;
            match g.action {
                None => Command::Gateway(config),
                Some(crate::args::GatewayAction::User {
                    action: crate::args::UserAction::Add { name },
                }) => Command::GatewayUserAdd(config, name),
            }
        }
    })
}

/// The instances `serve` makes on a pipe without `--instances`.
const DEFAULT_INSTANCES: u8 = 4;

/// `serve` on a pipe; mailslot flags are refused.
fn serve_pipe(name: PipeName, a: ServeArgs) -> io::Result<Command> {
    let mailslot_only = [
        ("--max-size", a.max_size.is_some()),
        ("--network", a.network),
        ("--max-messages", a.max_messages.is_some()),
    ];
    refuse(&mailslot_only, "mailslot", &name, "pipe")?;
    let mut security = if a.everyone {
        PipeSecurity::owner_only().allow_everyone()
    } else {
        PipeSecurity::owner_only()
    };
    // `DOMAIN\user` (or `*\user`) names a remote user, whom the gateway
    // brings; naming one accepts remote clients (that user only).
    let mut remote_named = false;
    for u in &a.allow_user {
        if u.contains('\\') {
            security = security.allow_remote_user(u);
            remote_named = true;
        } else {
            security = security.allow_user(pipeslot::resolve_user(u)?);
        }
    }
    if remote_named && a.reject_remote {
        return Err(fail(
            Win32Error::ERROR_INVALID_PARAMETER,
            "--allow-user DOMAIN\\user names a remote user, and --reject-remote refuses every remote user",
        ));
    }
    for g in &a.allow_group {
        security = security.allow_group(pipeslot::resolve_group(g)?);
    }
    let action = if a.echo {
        Action::Echo
    } else if !a.exec.is_empty() {
        crate::exec::check_program(&a.exec[0])?;
        Action::Exec(a.exec)
    } else {
        Action::Print { hex: a.hex }
    };
    Ok(Command::Serve(
        Name::Pipe(name),
        Serve {
            mode: if a.message { PipeMode::Message } else { PipeMode::Byte },
            instances: usize::from(a.instances.unwrap_or(DEFAULT_INSTANCES)),
            action,
            max_clients: a.max_clients,
            reject_remote: !a.accept_remote && !remote_named,
            security,
        },
    ))
}

/// `serve` on a mailslot; pipe flags are refused.
fn serve_mailslot(name: MailslotName, a: &ServeArgs) -> io::Result<Command> {
    let pipe_only = [
        ("--message", a.message),
        ("--instances", a.instances.is_some()),
        ("--echo", a.echo),
        ("--exec", !a.exec.is_empty()),
        ("--max-clients", a.max_clients.is_some()),
        ("--reject-remote", a.reject_remote),
        ("--accept-remote", a.accept_remote),
        ("--allow-user", !a.allow_user.is_empty()),
        ("--allow-group", !a.allow_group.is_empty()),
        ("--everyone", a.everyone),
    ];
    refuse(&pipe_only, "pipe", &name, "mailslot")?;
    Ok(Command::ServeMailslot(
        name,
        MailslotServe {
            max_size: a.max_size.unwrap_or(0),
            network: a.network,
            hex: a.hex,
            max_messages: a.max_messages,
        },
    ))
}

/// `ERROR_INVALID_PARAMETER` naming the first of `flags` that was given:
/// it applies to `for_kind`s only, and `name` is a `kind`. Silently ignoring
/// it would hide a mistake (`--echo` on a mailslot echoes nothing).
fn refuse(flags: &[(&str, bool)], for_kind: &str, name: &dyn Display, kind: &str) -> io::Result<()> {
    match flags.iter().find(|(_, given)| *given) {
        Some((flag, _)) => Err(fail(
            Win32Error::ERROR_INVALID_PARAMETER,
            format!("{flag} applies to {for_kind}s, and {name} is a {kind}"),
        )),
        None => Ok(()),
    }
}

/// `--server-user U` as a uid; local pipes only (a remote server is proven
/// by SMB signing, and nobody knows its uid here).
fn server_user(name: &Name, user: Option<&str>) -> io::Result<Option<u32>> {
    let Some(user) = user else { return Ok(None) };
    if let Name::Pipe(p) = name {
        if !p.is_local() {
            return Err(fail(
                Win32Error::ERROR_INVALID_PARAMETER,
                format!("--server-user applies to local pipes, and {p} is on another machine"),
            ));
        }
    }
    pipeslot::resolve_user(user).map(Some)
}

/// The name of a verb that needs an answer or an instance: pipes only.
fn two_way(verb: &str, name: Name) -> io::Result<Name> {
    match name {
        Name::Mailslot(m) => Err(mailslot::one_way(verb, &m)),
        name => Ok(name),
    }
}

/// A pipe or mailslot name (`ERROR_INVALID_NAME` when malformed).
fn name(s: &str) -> io::Result<Name> {
    Name::parse(s).map_err(|e| pipeslot::Error::from(e).into())
}

fn wait_timeout(t: crate::time::Time) -> WaitTimeout {
    match t {
        crate::time::Time::After(d) => WaitTimeout::After(d),
        crate::time::Time::Forever => WaitTimeout::Forever,
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
