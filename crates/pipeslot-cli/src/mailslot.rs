//! The verbs on mailslot names: `serve` (be the one reader and print each
//! message), `send` (to `\\.\`, `\\HOST\`, `\\DOMAIN\` or `\\*\`), `info` and
//! the mailslot lines of `list`.
//!
//! `call`, `transact` and `wait` need a reply or an instance, which a mailslot
//! never has: settings refuses them with [`one_way`], before stdin is read.

use std::io;

use pipeslot::blocking::{MailslotOptions, MailslotWriter};
use pipeslot::mailslot::{
    embedded_receiver, list_mailslots, mailslot_info, DatagramReceiver, MailslotListing, NetConfig, ReadTimeout,
};
use pipeslot::{MailslotName, Win32Error};

use crate::error::{fail, is};
use crate::progress::Progress;
use crate::settings::{Input, MailslotServe, Send};
use crate::{output, send};

/// `serve`: creates the mailslot (one reader per name: a second one fails
/// with `ERROR_ALREADY_EXISTS`) and prints each message, then a newline,
/// as it arrives.
pub(crate) fn serve(name: &MailslotName, s: MailslotServe) -> io::Result<()> {
    // Reads wait for ever (the default): an idle mailslot is not an error.
    let slot = MailslotOptions::new()
        .max_message_size(s.max_size)
        .network(s.network)
        .create(name.to_string())?;
    if s.network {
        check_reception(name)?;
    }
    crate::ready::announce(&format!(
        "reading {name} (max size {}, network {})",
        s.max_size, s.network
    ));
    // Without --max-messages: u64::MAX messages, for ever in practice.
    for _ in 0..s.max_messages.unwrap_or(u64::MAX) {
        let msg = slot.read_message()?;
        output::message(&msg, s.hex)?;
    }
    Ok(())
}

/// `--network` without a receiver would be a mailslot that silently never
/// hears from the network (UDP 138 needs root), so that is an error. When
/// another process holds the port (a gateway, another `serve --network`),
/// it is the host's receiver and delivers to this mailslot too.
fn check_reception(name: &MailslotName) -> io::Result<()> {
    if embedded_receiver().is_some() {
        return Ok(());
    }
    // Ask again to learn why the library's receiver could not bind.
    match DatagramReceiver::bind(&NetConfig::from_env()?) {
        // The holder just left; the library's receiver takes the port on its next try.
        Ok(_) => Ok(()),
        Err(e) if is(&e, Win32Error::ERROR_ALREADY_EXISTS) => {
            // Not ours to check further: it may be a foreign service (nmbd).
            tracing::warn!("{name}: network messages come through the receiver that holds the port: {e}");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `send`: each MSG, or each stdin line, is one message; errors are the
/// library's (`ERROR_FILE_NOT_FOUND` for a missing local mailslot,
/// `ERROR_INVALID_PARAMETER` over its maximum size, `ERROR_BAD_NETPATH`
/// over what one datagram carries).
pub(crate) fn send(name: &MailslotName, s: Send) -> io::Result<()> {
    let writer = MailslotWriter::open(name.to_string())?;
    let mut progress = s.progress.then(Progress::new);
    let mut put = |msg: &[u8]| -> io::Result<()> {
        writer.write(msg)?;
        if let Some(p) = progress.as_mut() {
            p.add(msg.len());
        }
        Ok(())
    };
    match s.input {
        Input::Args(msgs) => msgs.iter().try_for_each(|m| put(m))?,
        Input::Stdin { hex } => send::each_line(hex, &mut put)?,
    }
    if let Some(p) = &progress {
        p.finish(true);
    }
    Ok(())
}

/// `key: value` lines about a local mailslot (GetMailslotInfo, exact, plus
/// who reads it).
pub(crate) fn info(name: &MailslotName, json: bool) -> io::Result<()> {
    let info = mailslot_info(name.to_string())?;
    let reader = listing(name)?;
    let lines = [
        ("name", reader.name.clone()),
        (
            "owner",
            format!(
                "{} (uid {})",
                crate::query::owner(reader.owner, reader.owner_name.as_deref()),
                reader.owner
            ),
        ),
        ("max_message_size", info.max_message_size.to_string()),
        (
            "next_message_size",
            info.next_message_size
                .map_or_else(|| "none".to_owned(), |n| n.to_string()),
        ),
        ("message_count", info.message_count.to_string()),
        ("read_timeout", read_timeout(info.read_timeout)),
        ("reader_pid", reader.reader_pid.to_string()),
        ("network", reader.network.to_string()),
    ];
    output::record(&lines, json)
}

/// The listing entry of `name`: its creator's spelling, reader and network
/// flag, which GetMailslotInfo does not give.
fn listing(name: &MailslotName) -> io::Result<MailslotListing> {
    list_mailslots()?
        .into_iter()
        .find(|m| MailslotName::parse(&m.name).is_ok_and(|n| n == *name))
        // Its reader exited between the two questions.
        .ok_or_else(|| {
            fail(
                Win32Error::ERROR_FILE_NOT_FOUND,
                format!("no mailslot named {name} exists (no process reads it)"),
            )
        })
}

/// Milliseconds, or `forever`.
fn read_timeout(t: ReadTimeout) -> String {
    match t {
        ReadTimeout::Forever => "forever".to_owned(),
        ReadTimeout::After(_) => t.as_millis().to_string(),
    }
}

/// The `list` rows after the pipes' (see `query::LIST_HEADER`): a mailslot
/// is one message-mode reader, its queue counted.
pub(crate) fn rows(pattern: Option<&str>) -> io::Result<Vec<Vec<String>>> {
    Ok(list_mailslots()?
        .into_iter()
        .filter(|m| crate::query::matches(pattern, &m.name))
        .map(|m| {
            vec![
                m.name.clone(),
                "mailslot".to_owned(),
                "message".to_owned(),
                "1".to_owned(),
                if m.max_message_size == 0 {
                    "any size".to_owned()
                } else {
                    format!("{} B", m.max_message_size)
                },
                "-".to_owned(),
                m.message_count.to_string(),
                crate::query::owner(m.owner, m.owner_name.as_deref()),
                m.reader_pid.to_string(),
            ]
        })
        .collect())
}

/// `ERROR_INVALID_FUNCTION (1)` — what Win32 answers a pipe call on a handle
/// that is not a pipe — for `call`, `transact` and `wait` on a mailslot.
pub(crate) fn one_way(verb: &str, name: &MailslotName) -> io::Error {
    let why = match verb {
        "wait" => format!("{name} has no instances to wait for (a mailslot write never waits)"),
        _ => format!("{name} never replies, so there is nothing to {verb}"),
    };
    fail(
        Win32Error::ERROR_INVALID_FUNCTION,
        format!("mailslots are one-way: {why}; write to it with `pipeslot send`"),
    )
}
