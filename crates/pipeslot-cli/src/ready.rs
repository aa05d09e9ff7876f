//! Saying a server is ready, so `serve x & wait x` scripts and systemd units
//! start reliably: one line on stderr when a person is watching (stderr is
//! a terminal; with `-v` the log says it), and `READY=1` to systemd when it
//! asks (`NOTIFY_SOCKET`, for `Type=notify` units).

use std::io::{IsTerminal, Write};

/// Announces that the server is ready: `what` is the line a person sees.
pub(crate) fn announce(what: &str) {
    if tracing::enabled!(tracing::Level::INFO) {
        tracing::info!("{what}");
    } else if std::io::stderr().is_terminal() {
        let _ = writeln!(std::io::stderr(), "{what}");
    }
    notify_systemd();
}

/// Tells systemd only (the gateway prints its own lines on stdout).
pub(crate) fn notify_ready() {
    notify_systemd();
}

/// `READY=1` to `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
/// namespace), once; a missing or broken socket is only logged.
fn notify_systemd() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = (|| -> std::io::Result<()> {
        let sock = std::os::unix::net::UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(abstract_name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?;
            sock.send_to_addr(b"READY=1", &addr)?;
        } else {
            sock.send_to(b"READY=1", &path)?;
        }
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!("NOTIFY_SOCKET {}: {e}", path.to_string_lossy());
    }
}
