//! The `pipeslot` command, a thin binary over the library: argv → raw
//! arguments (`args`) → validated settings (`settings`) → one verb's run.
//! `main` maps the result to an exit code: 0, or 1 with one line
//! `pipeslot: ERROR_X (N): …` on stderr; usage errors (clap's, and flags
//! that do not fit the name or each other) exit 2 in the same style; a closed
//! stdout ends the command quietly with 0.
//!
//! A verb takes a pipe or a mailslot name; its kind picks the module that
//! does the work (`mailslot` for mailslots). `bench` and `torture` hand their
//! arguments to `pipeslot-bench`; `gateway` runs `pipeslot::gateway`.

mod args;
mod call;
mod demo;
mod error;
mod exec;
mod gateway;
mod hex;
mod log;
mod mailslot;
mod output;
mod pipe;
mod progress;
mod query;
mod ready;
mod send;
mod serve;
mod settings;
mod time;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use pipeslot::Name;

use settings::Command;

/// Exit status of a usage error (a bad flag, value or verb); 1 is every
/// other failure.
const USAGE: u8 = 2;

/// Help and version as clap prints them; every usage error as one line in
/// the Win32 style, naming the flag and what it accepts, exit 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.to_string();
    let what = match e.kind() {
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "a verb is needed: serve, send, call, transact, wait, list, info, demo, bench or gateway \
             (pipeslot --help lists them)"
                .to_owned()
        }
        _ => {
            // clap's message up to its usage block, on one line.
            let lines: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
                .map(str::trim)
                .collect();
            let joined = lines.join(" ");
            let joined = joined.strip_prefix("error: ").unwrap_or(&joined).to_owned();
            format!("{joined} (see --help)")
        }
    };
    let _ = writeln!(
        io::stderr(),
        "pipeslot: {}: {}",
        pipeslot::Win32Error::ERROR_INVALID_PARAMETER,
        pipeslot::escape_controls(&what)
    );
    ExitCode::from(USAGE)
}

fn main() -> ExitCode {
    // `pipeslot bench` runs its peers as re-executed copies of this binary.
    pipeslot_bench::peer_main_if_requested();
    let raw = match args::RawArgs::try_parse() {
        Ok(raw) => raw,
        Err(e) => return usage_error(&e),
    };
    // The gateway is a service: who logged on, what they opened and what was
    // refused is its log, so it logs without being asked.
    let daemon = matches!(&raw.verb, args::Verb::Gateway(g) if g.action.is_none());
    log::init(if daemon { raw.verbose.max(1) } else { raw.verbose });
    let cmd = match settings::validate(raw) {
        Ok(cmd) => cmd,
        // A flag that does not fit the name or the others is as much a
        // usage error as one clap refuses: the same exit status.
        Err(e) if error::is(&e, pipeslot::Win32Error::ERROR_INVALID_PARAMETER) => return failed(&e, USAGE),
        Err(e) => return failed(&e, 1),
    };
    match run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_stdout_closed(&e) => ExitCode::SUCCESS,
        Err(e) => failed(&e, 1),
    }
}

/// Ends with the status of a verb that reports its own failures (bench,
/// torture): they have printed what failed.
fn exit_as(code: i32) -> io::Result<()> {
    match code {
        0 => Ok(()),
        code => std::process::exit(code),
    }
}

/// The one error line, and the exit status.
fn failed(e: &io::Error, status: u8) -> ExitCode {
    // Nothing sensible is left to do if stderr is closed too.
    let _ = writeln!(io::stderr(), "pipeslot: {}", error::line(e));
    ExitCode::from(status)
}

fn run(cmd: Command) -> io::Result<()> {
    let prints = match &cmd {
        Command::Serve(_, s) => matches!(s.action, settings::Action::Print { .. }),
        Command::Call(..)
        | Command::Transact(..)
        | Command::List(..)
        | Command::Info(..)
        | Command::ServeMailslot(..)
        | Command::Completions(..)
        | Command::Man
        | Command::Demo => true,
        _ => false,
    };
    if prints {
        output::require_stdout()?;
    }
    match cmd {
        Command::Serve(Name::Pipe(p), s) => serve::run(&p, s),
        Command::Send(Name::Pipe(p), s) => send::run(&p, s),
        Command::Call(Name::Pipe(p), s) => call::call(&p, s),
        Command::Transact(Name::Pipe(p), s) => call::transact(&p, s),
        Command::Wait(Name::Pipe(p), timeout) => query::wait(&p, timeout),
        Command::Info(Name::Pipe(p), json) => query::info(&p, json),
        Command::DemoPeer(Name::Pipe(p)) => demo::peer(&p),
        Command::ServeMailslot(m, s) => mailslot::serve(&m, s),
        Command::Send(Name::Mailslot(m), s) => mailslot::send(&m, s),
        Command::Info(Name::Mailslot(m), json) => mailslot::info(&m, json),
        Command::List(pattern, json) => query::list(pattern.as_deref(), json),
        Command::Demo => demo::run(),
        Command::Bench(args) => exit_as(pipeslot_bench::cli_main(args)),
        Command::Torture(args) => exit_as(pipeslot_bench::torture_main(args)),
        Command::Gateway(config) => gateway::run(&config),
        Command::GatewayUserAdd(config, name) => gateway::add_user(&config, &name),
        Command::Completions(shell) => {
            // From the same definitions as the parser: they cannot drift.
            let mut cmd = <args::RawArgs as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "pipeslot", &mut out);
            output::write(&[&out])
        }
        Command::Man => {
            let cmd = <args::RawArgs as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| error::wrap(e, "rendering the manual page"))?;
            output::write(&[&out])
        }
        Command::Retrying(pipe, retry, then) => {
            pipe::await_name(&pipe, retry)?;
            run(*then)
        }
        // Names settings never pairs with these verbs, and kinds added later.
        Command::Serve(..)
        | Command::Send(..)
        | Command::Call(..)
        | Command::Transact(..)
        | Command::Wait(..)
        | Command::Info(..)
        | Command::DemoPeer(..) => Err(error::other_kind()),
    }
}
