//! Verbs that ask about pipes without opening them: `wait`, `list`, `info`.
//! (`list` then hands over to `mailslot` for the mailslot lines.)

use std::io;

use pipeslot::{PipeListing, PipeMode, PipeName, WaitTimeout, UNLIMITED_INSTANCES};

use crate::output;

/// WaitNamedPipe: `Ok` once an instance listens.
pub(crate) fn wait(name: &PipeName, timeout: WaitTimeout) -> io::Result<()> {
    let addr = name.to_string();
    crate::pipe::bounded(name, timeout, move || pipeslot::wait_named_pipe(addr, timeout))
}

/// One line per live pipe:
/// `NAME\tTYPE\tinstances N/MAX (L listening)\tpids P,…\towner USER`, then one
/// per mailslot. Tabs, because pipe names may hold spaces; control
/// characters in names (any user may pick them) are printed escaped.
pub(crate) fn list() -> io::Result<()> {
    for p in pipeslot::list_pipes()? {
        output::line(&format!(
            "{}\t{}\tinstances {}/{} ({} listening)\tpids {}\towner {}",
            pipeslot::escape_controls(&p.name),
            mode(p.mode),
            p.instances,
            max(&p),
            p.listening,
            pids(&p, ","),
            owner(p.owner, p.owner_name.as_deref()),
        ))?;
    }
    crate::mailslot::list()
}

/// A name's owner for `list` (`root`, or the uid when it has no name).
pub(crate) fn owner(uid: u32, name: Option<&str>) -> String {
    match name {
        Some(n) => pipeslot::escape_controls(n).into_owned(),
        None => uid.to_string(),
    }
}

/// `key: value` lines about one pipe.
pub(crate) fn info(name: &PipeName) -> io::Result<()> {
    if !name.is_local() {
        return remote_info(name);
    }
    let p = pipeslot::pipe_listing(&name.to_string())?;
    let lines = [
        ("name", pipeslot::escape_controls(&p.name).into_owned()),
        (
            "owner",
            format!("{} (uid {})", owner(p.owner, p.owner_name.as_deref()), p.owner),
        ),
        ("type", mode(p.mode).to_owned()),
        ("instances", p.instances.to_string()),
        ("listening", p.listening.to_string()),
        ("busy", p.instances.saturating_sub(p.listening).to_string()),
        ("max_instances", max(&p)),
        ("in_buffer_size", p.in_buffer_size.to_string()),
        ("out_buffer_size", p.out_buffer_size.to_string()),
        (
            "default_timeout_ms",
            effective_timeout(p.default_timeout_ms).to_string(),
        ),
        ("server_pids", pids(&p, " ")),
        ("namespace", namespace_root()),
    ];
    for (key, value) in lines {
        output::line(&format!("{key}: {value}"))?;
    }
    Ok(())
}

/// A remote pipe: what its server reports once opened (an open takes an
/// instance for a moment, as on Windows), and the SMB session.
fn remote_info(name: &PipeName) -> io::Result<()> {
    let client = pipeslot::blocking::ClientOptions::new()
        .read(false)
        .write(false)
        .open(name.to_string())?;
    let i = client.info()?;
    let session = client.remote_session().expect("a remote name opens a remote pipe");
    let mut lines = vec![
        ("name", pipeslot::escape_controls(&name.to_string()).into_owned()),
        ("session", session.to_string()),
    ];
    if !session.pipe_info_reported {
        lines.push((
            "type",
            "unknown (the server does not report pipe information)".to_owned(),
        ));
        for (key, value) in lines {
            output::line(&format!("{key}: {value}"))?;
        }
        return Ok(());
    }
    lines.extend([
        ("type", mode(i.mode).to_owned()),
        ("instances", client.handle_state()?.instances.to_string()),
        (
            "max_instances",
            if i.max_instances as usize >= UNLIMITED_INSTANCES {
                "unlimited".to_owned()
            } else {
                i.max_instances.to_string()
            },
        ),
        ("in_buffer_size", i.in_buffer_size.to_string()),
        ("out_buffer_size", i.out_buffer_size.to_string()),
    ]);
    for (key, value) in lines {
        output::line(&format!("{key}: {value}"))?;
    }
    Ok(())
}

/// The namespace root the library uses: `$PIPESLOT_DIR` or this user's default.
pub(crate) fn namespace_root() -> String {
    pipeslot::namespace_root().display().to_string()
}

/// Win32 reads a default timeout of 0 as 50 ms.
fn effective_timeout(ms: u32) -> u32 {
    if ms == 0 {
        50
    } else {
        ms
    }
}

fn mode(m: PipeMode) -> &'static str {
    match m {
        PipeMode::Message => "message",
        _ => "byte",
    }
}

fn max(p: &PipeListing) -> String {
    if p.max_instances as usize >= UNLIMITED_INSTANCES {
        "unlimited".to_owned()
    } else {
        p.max_instances.to_string()
    }
}

fn pids(p: &PipeListing, sep: &str) -> String {
    p.server_pids.iter().map(u32::to_string).collect::<Vec<_>>().join(sep)
}
