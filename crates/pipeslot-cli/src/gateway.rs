//! `gateway`: runs `pipeslot::gateway` as the configuration file says, and
//! `gateway user add NAME`, which stores an account's NT hash in it.

use std::io::{self, BufRead};
use std::path::Path;

use pipeslot::gateway::GatewayOptions;

use crate::error::wrap;

pub(crate) fn run(config: &Path) -> io::Result<()> {
    let g = GatewayOptions::from_config(config)?.bind()?;
    // One line for whoever started it (and for tests): where it listens.
    crate::output::line(&format!("gateway listening on {}", g.local_addr()?))?;
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
