//! Mailslots, as the verbs will serve them (`serve` with `--max-size` and
//! `--network`, `send` to one host, a domain or `*`, `wait`, `info`). Not in
//! this version: a verb given a mailslot name stops here, with one clear error.

use std::io;

use pipeslot::Win32Error;

use crate::error::fail;

/// `ERROR_NOT_SUPPORTED (50)` for any verb on a mailslot.
pub(crate) fn not_available() -> io::Error {
    fail(
        Win32Error::ERROR_NOT_SUPPORTED,
        "mailslots are not available in this version",
    )
}
