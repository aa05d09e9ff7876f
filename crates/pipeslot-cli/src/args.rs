//! Raw arguments: what clap makes of argv, before anything is checked
//! against the system (names, users, hex). `settings` validates them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Windows named pipes and mailslots on Linux.
///
/// NAME is `NAME` (meaning `\\.\pipe\NAME`), `\\.\pipe\NAME`, `//./pipe/NAME`
/// or a mailslot name `\\.\mailslot\NAME` (writers also `\\HOST\mailslot\NAME`,
/// `\\DOMAIN\mailslot\NAME`, `\\*\mailslot\NAME`). Every verb uses the namespace
/// root in `PIPESLOT_DIR` (default /run/pipeslot). Errors: exit 1 and one
/// line `pipeslot: ERROR_X (N): …` on stderr; a command line that does not
/// parse: exit 2, one line `pipeslot: ERROR_INVALID_PARAMETER (87): …`. A
/// TIME is milliseconds, a unit (500ms, 5s, 2m) or `forever`.
#[derive(Debug, Parser)]
#[command(name = "pipeslot", version)]
pub(crate) struct RawArgs {
    /// Log to stderr (-v info, -vv debug, -vvv trace); PIPESLOT_LOG=LEVEL
    /// does the same.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) verb: Verb,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Verb {
    /// Serve a pipe (print what clients send, or --echo / --exec) or read a
    /// mailslot (print each message).
    Serve(ServeArgs),
    /// Send messages (or bytes) to a pipe or mailslot: each MSG one message; '-' or none: stdin.
    Send(SendArgs),
    /// CallNamedPipe: wait for an instance, send one message, print the reply.
    Call(CallArgs),
    /// One open; each MSG transacted in turn, each reply printed.
    Transact(TransactArgs),
    /// WaitNamedPipe: exit 0 once an instance of NAME listens.
    Wait(WaitArgs),
    /// Every live pipe, then every mailslot, one line each, starting with the name.
    List(ListArgs),
    /// What a pipe or local mailslot is, as `key: value` lines.
    Info(InfoArgs),
    /// Show the whole model working, in one command, on a private name.
    Demo,
    /// Compare pipeslot with raw sockets and its peers, in one run
    /// (`--quick`, `--json FILE`, `--svg FILE`, `--only NAME`…; `--help` lists all).
    #[command(disable_help_flag = true)]
    Bench(BenchArgs),
    /// Load, SIGKILLs and leak counts on local pipes and through a gateway, with figures
    /// (`--quick`, `--clients N`, `--messages M`, `--kills K`, `--seed S`).
    #[command(disable_help_flag = true)]
    Torture(BenchArgs),
    /// Serve exported pipes to other machines over SMB2 (`\\HOST\pipe\NAME`),
    /// as the configuration file says; `gateway user add NAME` adds an account.
    Gateway(GatewayArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `pipeslot man > pipeslot.1`.
    Man,
    /// The demo's client that gets killed (internal).
    #[command(name = "demo-peer", hide = true)]
    DemoPeer(InfoArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Handed to the bench as they are.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) args: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The pipe to serve, or the mailslot (`\\.\mailslot\NAME`) to read.
    pub(crate) name: String,
    /// A message pipe (default: byte pipe).
    #[arg(long)]
    pub(crate) message: bool,
    /// Instances, each serving one client at a time (1..=254; default 4).
    // No clap default: settings must tell whether it was given (mailslots refuse it).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=254))]
    pub(crate) instances: Option<u8>,
    /// Write each message (or chunk of bytes) back to its client.
    #[arg(long, conflicts_with = "exec")]
    pub(crate) echo: bool,
    /// Run CMD per client with the pipe as its stdin and stdout; takes the
    /// rest of the command line. On message pipes each message is one line
    /// of its stdin and each line it prints is one reply message; its
    /// stdout is then a terminal, so filters such as `tr` answer at once.
    #[arg(long, value_name = "CMD", num_args = 1.., allow_hyphen_values = true)]
    pub(crate) exec: Vec<OsString>,
    /// Exit 0 once K clients have come and gone.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_clients: Option<u64>,
    /// Refuse clients that come through a gateway from another machine (the default).
    #[arg(long, conflicts_with = "accept_remote")]
    pub(crate) reject_remote: bool,
    /// Accept clients that come through a gateway from another machine.
    #[arg(long)]
    pub(crate) accept_remote: bool,
    /// Also allow this user (name or uid); the owner is always allowed.
    /// `DOMAIN\user` (or `*\user`) names a remote user the gateway brings,
    /// and accepts remote clients: only the users so named.
    #[arg(long, value_name = "U")]
    pub(crate) allow_user: Vec<String>,
    /// Also allow members of this group (name or gid).
    #[arg(long, value_name = "G")]
    pub(crate) allow_group: Vec<String>,
    /// Allow every local user.
    #[arg(long)]
    pub(crate) everyone: bool,
    /// Print messages as lowercase hex, one per line.
    #[arg(long)]
    pub(crate) hex: bool,
    /// Mailslots: the largest message writers may write, in bytes (0: any, the default).
    #[arg(long, value_name = "N")]
    pub(crate) max_size: Option<u32>,
    /// Mailslots: also receive messages written from other hosts (UDP 138,
    /// or PIPESLOT_MAILSLOT_PORT on PIPESLOT_BIND).
    #[arg(long)]
    pub(crate) network: bool,
    /// Mailslots: exit 0 once K messages have been printed.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_messages: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The pipe or mailslot to send to.
    pub(crate) name: String,
    /// Messages (byte pipes: bytes, one after another); '-' or none: stdin,
    /// where on message pipes and mailslots each line is one message.
    #[arg(value_name = "MSG")]
    pub(crate) msgs: Vec<OsString>,
    /// Pipes: when every instance is busy, wait up to TIME for one
    /// (milliseconds, 500ms, 5s, 2m, or `forever`).
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse, allow_hyphen_values = true)]
    pub(crate) wait: Option<crate::time::Time>,
    /// Each MSG (or stdin line) is hex.
    #[arg(long)]
    pub(crate) hex: bool,
    /// Show bytes sent and the rate on stderr.
    #[arg(long)]
    pub(crate) progress: bool,
    /// When the name does not exist yet, try again for up to TIME (a
    /// server, or a local mailslot's reader, still starting); without it, a
    /// missing name fails at once, as WaitNamedPipe does.
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse, allow_hyphen_values = true)]
    pub(crate) retry: Option<crate::time::Time>,
    /// Local pipes: talk only to a server running as user U (a name or a
    /// uid). Another user's instances are not even connected to; a name
    /// that another user created first fails with ERROR_ACCESS_DENIED.
    #[arg(long, value_name = "U")]
    pub(crate) server_user: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The pipe to call (a message pipe).
    pub(crate) name: String,
    /// The message; '-': all of stdin (less one final newline).
    #[arg(value_name = "MSG")]
    pub(crate) msg: OsString,
    /// The whole call, waiting for an instance and for the reply: a TIME
    /// (milliseconds, 500ms, 5s, 2m, or `forever`). Default: 30 s in all
    /// (the instance wait: the pipe's default timeout).
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse, allow_hyphen_values = true)]
    pub(crate) timeout: Option<crate::time::Time>,
    /// The message is hex and the reply is printed as hex.
    #[arg(long)]
    pub(crate) hex: bool,
    /// When the name does not exist yet, try again for up to TIME (a
    /// server still starting); without it, a missing name fails at once, as
    /// WaitNamedPipe does.
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse, allow_hyphen_values = true)]
    pub(crate) retry: Option<crate::time::Time>,
    /// Local pipes: talk only to a server running as user U (a name or a
    /// uid). Another user's instances are not even connected to; a name
    /// that another user created first fails with ERROR_ACCESS_DENIED.
    #[arg(long, value_name = "U")]
    pub(crate) server_user: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TransactArgs {
    /// The pipe (a message pipe).
    pub(crate) name: String,
    /// The messages, transacted in turn on one open.
    #[arg(value_name = "MSG", required = true)]
    pub(crate) msgs: Vec<OsString>,
    /// The whole command, every reply included: a TIME (milliseconds,
    /// 500ms, 5s, 2m, or `forever`). Default: 30 s.
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse, allow_hyphen_values = true)]
    pub(crate) timeout: Option<crate::time::Time>,
    /// When every instance is busy, wait up to TIME for one (milliseconds,
    /// 500ms, 5s, 2m, or `forever`).
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse, allow_hyphen_values = true)]
    pub(crate) wait: Option<crate::time::Time>,
    /// Messages are hex and replies are printed as hex.
    #[arg(long)]
    pub(crate) hex: bool,
    /// When the name does not exist yet, try again for up to TIME (a
    /// server still starting); without it, a missing name fails at once, as
    /// WaitNamedPipe does.
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse, allow_hyphen_values = true)]
    pub(crate) retry: Option<crate::time::Time>,
    /// Local pipes: talk only to a server running as user U (a name or a
    /// uid). Another user's instances are not even connected to; a name
    /// that another user created first fails with ERROR_ACCESS_DENIED.
    #[arg(long, value_name = "U")]
    pub(crate) server_user: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// The pipe to wait for.
    pub(crate) name: String,
    /// A TIME (milliseconds, 500ms, 5s, 2m, or `forever`; default: the
    /// pipe's default timeout).
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse, allow_hyphen_values = true)]
    pub(crate) timeout: Option<crate::time::Time>,
    /// When the name does not exist yet, try again for up to TIME (a
    /// server still starting); without it, a missing name fails at once, as
    /// WaitNamedPipe does.
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse, allow_hyphen_values = true)]
    pub(crate) retry: Option<crate::time::Time>,
}

#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// The pipe, or the local mailslot.
    pub(crate) name: String,
    /// One JSON object with the same keys, for scripts.
    #[arg(long)]
    pub(crate) json: bool,
    /// When the name does not exist yet, try again for up to TIME (a
    /// server or mailslot reader still starting).
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse, allow_hyphen_values = true)]
    pub(crate) retry: Option<crate::time::Time>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only names whose last part matches (`*` and `?`, any case), e.g. 'log*'.
    pub(crate) pattern: Option<String>,
    /// One JSON object per name (JSON Lines), for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GatewayArgs {
    /// The gateway's configuration file (TOML, mode 0600).
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) action: Option<GatewayAction>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum GatewayAction {
    /// Manage the accounts in the configuration file.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserAction {
    /// Add (or replace) NAME; the password is read from stdin (one line)
    /// and only its NT hash is stored.
    Add { name: String },
}
