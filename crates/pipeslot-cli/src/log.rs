//! Logs go to stderr, and only when asked for (`-v`, or `PIPESLOT_LOG=LEVEL`):
//! stdout belongs to the data (`serve` prints what clients send).

use tracing::Level;

/// The environment variable that turns logging on (`error` … `trace`).
const LOG_ENV: &str = "PIPESLOT_LOG";

/// Installs the stderr logger if `-v` was given or `PIPESLOT_LOG` is set.
pub(crate) fn init(verbose: u8) {
    let from_env = std::env::var(LOG_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        // Any other value still means "I want logs".
        .map(|v| v.parse::<Level>().unwrap_or(Level::INFO));
    let from_flag = match verbose {
        0 => None,
        1 => Some(Level::INFO),
        2 => Some(Level::DEBUG),
        _ => Some(Level::TRACE),
    };
    let Some(level) = from_flag.max(from_env) else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .try_init();
}
