//! The `pipeslot` command's tests: the built binary in real processes, each
//! test with its own PIPESLOT_DIR, unique names and a watchdog.

mod cli;
