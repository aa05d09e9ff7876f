//! `gateway`: runs `pipeslot::gateway` as the configuration file says,
//! reloading it on SIGHUP, and `gateway user add NAME`, which stores an
//! account's NT hash in it.

use std::io::{self, BufRead};
use std::path::Path;

use pipeslot::gateway::GatewayOptions;

use crate::error::wrap;

pub(crate) fn run(config: &Path) -> io::Result<()> {
    let g = GatewayOptions::from_config(config)?.bind()?;
    let handle = g.handle();
    let path = config.to_owned();
    let mut hups = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .map_err(|e| wrap(e, "listening for SIGHUP"))?;
    std::thread::Builder::new()
        .name("pipeslot-gateway-reload".into())
        .spawn(move || {
            for _ in hups.forever() {
                // A file that no longer reads keeps the options in force.
                match GatewayOptions::from_config(&path).and_then(|o| handle.update(o)) {
                    Ok(()) => tracing::warn!("gateway: {} reloaded", path.display()),
                    Err(e) => tracing::error!(
                        "gateway: {} not reloaded, the options in force stay: {e}",
                        path.display()
                    ),
                }
            }
        })
        .map_err(|e| wrap(e, "starting the reload thread"))?;
    // One line for whoever started it (and for tests): where it listens.
    if let Ok(addr) = g.local_addr() {
        crate::output::line(&format!("gateway listening on {addr}"))?;
    }
    if let Some(dir) = g.samba_dir() {
        crate::output::line(&format!(
            "gateway serving the exports as smbd's external pipes in {}",
            dir.display()
        ))?;
    }
    if let Some(addr) = g.mailslot_addr() {
        crate::output::line(&format!("gateway receiving mailslot datagrams on UDP {addr}"))?;
    }
    crate::ready::notify_ready();
    g.serve()
}

pub(crate) fn add_user(config: &Path, name: &str) -> io::Result<()> {
    let mut password = String::new();
    io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| wrap(e, "reading the password from stdin"))?;
    let password = password.trim_end_matches(['\r', '\n']);
    pipeslot::gateway::add_user(config, name, password)
}
