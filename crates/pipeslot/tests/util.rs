//! Test helpers: one namespace root per test process, unique pipe names, a
//! watchdog so a hang fails fast instead of stalling the suite.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::Duration;

static INIT: Once = Once::new();
static SEQ: AtomicU32 = AtomicU32::new(0);

/// Sets `PIPESLOT_DIR` to a fresh folder for this test process (once).
pub fn init() {
    INIT.call_once(|| {
        let dir = std::env::temp_dir().join(format!("pipeslot-tests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::env::set_var("PIPESLOT_DIR", &dir);
    });
}

/// A pipe name no other test uses: `\\.\pipe\t-<tag>-<pid>-<n>`.
pub fn name(tag: &str) -> String {
    init();
    format!(
        r"\\.\pipe\t-{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `f` on a thread and fails the test if it takes longer than `limit`.
pub fn watchdog<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(_) => panic!("watchdog: the test did not finish within {limit:?} (a hang)"),
    }
}
