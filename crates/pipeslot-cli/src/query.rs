//! Verbs that ask about pipes without opening them: `wait`, `list`, `info`.
//! (`list` then hands over to `mailslot` for the mailslot lines.)

use std::io;

use pipeslot::{PipeListing, PipeMode, PipeName, WaitTimeout, UNLIMITED_INSTANCES};

use crate::output;

/// WaitNamedPipe: `Ok` once an instance listens.
pub(crate) fn wait(name: &PipeName, timeout: WaitTimeout) -> io::Result<()> {
    let addr = name.to_string();
    let started = std::time::Instant::now();
    // A local wait bounds itself; a remote one is bounded here as a whole.
    let limit = match timeout {
        WaitTimeout::After(t) if !name.is_local() => Some(t),
        _ => None,
    };
    crate::pipe::bounded(name, limit, move || pipeslot::wait_named_pipe(addr, timeout))?;
    tracing::info!("an instance of {name} listens (waited {:.1?})", started.elapsed());
    Ok(())
}

/// What `list` shows, one row per name: aligned under a header, or JSON.
pub(crate) const LIST_HEADER: [&str; 9] = [
    "NAME",
    "KIND",
    "MODE",
    "INSTANCES",
    "MAX",
    "LISTENING",
    "QUEUED",
    "OWNER",
    "PIDS",
];

/// Every live pipe, then every mailslot, whose bare name matches `pattern`
/// (`*` and `?`, any case; none: all). Names are printed as their creators
/// spelled them, control characters escaped.
pub(crate) fn list(pattern: Option<&str>, json: bool) -> io::Result<()> {
    let mut rows = Vec::new();
    for p in pipeslot::list_pipes()? {
        if !matches(pattern, &p.name) {
            continue;
        }
        rows.push(vec![
            p.name.clone(),
            "pipe".to_owned(),
            mode(p.mode).to_owned(),
            p.instances.to_string(),
            max(&p),
            p.listening.to_string(),
            "-".to_owned(),
            owner(p.owner, p.owner_name.as_deref()),
            pids(&p, ","),
        ]);
    }
    rows.extend(crate::mailslot::rows(pattern)?);
    output::table(&LIST_HEADER, &rows, json)
}

/// Whether `name`'s last part (after `\pipe\` or `\mailslot\`) matches a
/// glob: `*` any run, `?` one character, case-insensitive as names are.
pub(crate) fn matches(pattern: Option<&str>, name: &str) -> bool {
    let Some(pattern) = pattern else { return true };
    let bare = ["\\pipe\\", "\\mailslot\\"]
        .iter()
        .find_map(|sep| {
            let lower = name.to_lowercase();
            lower.find(sep).map(|i| lower[i + sep.len()..].to_owned())
        })
        .unwrap_or_else(|| name.to_owned());
    fn glob(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
            (Some('?'), Some(_)) => glob(&p[1..], &s[1..]),
            (Some(a), Some(b)) => a == b && glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let fold = |t: &str| t.to_lowercase().chars().collect::<Vec<_>>();
    glob(&fold(pattern), &fold(&bare))
}

/// A name's owner for `list` (`root`, or the uid when it has no name).
pub(crate) fn owner(uid: u32, name: Option<&str>) -> String {
    match name {
        Some(n) => pipeslot::escape_controls(n).into_owned(),
        None => uid.to_string(),
    }
}

/// `key: value` lines about one pipe (or one JSON object).
pub(crate) fn info(name: &PipeName, json: bool) -> io::Result<()> {
    if !name.is_local() {
        return remote_info(name, json);
    }
    let p = pipeslot::pipe_listing(&name.to_string())?;
    let lines = [
        ("name", p.name.clone()),
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
    output::record(&lines, json)
}

/// A remote pipe: what its server reports once opened (an open takes an
/// instance for a moment, as on Windows), and the SMB session.
fn remote_info(name: &PipeName, json: bool) -> io::Result<()> {
    let client = pipeslot::blocking::ClientOptions::new()
        .read(false)
        .write(false)
        .open(name.to_string())?;
    let i = client.info()?;
    let session = client.remote_session().expect("a remote name opens a remote pipe");
    let mut lines = vec![("name", name.to_string()), ("session", session.to_string())];
    if !session.pipe_info_reported {
        lines.push((
            "type",
            "unknown (the server does not report pipe information)".to_owned(),
        ));
        return output::record(&lines, json);
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
    output::record(&lines, json)
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
