//! `send --progress`: bytes and rate on stderr, at most four updates a
//! second (overwriting one line on a terminal), and a final line at the end.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_millis(250);

pub(crate) struct Progress {
    start: Instant,
    last: Instant,
    bytes: u64,
    messages: u64,
    tty: bool,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        let now = Instant::now();
        Progress {
            start: now,
            last: now,
            bytes: 0,
            messages: 0,
            tty: io::stderr().is_terminal(),
        }
    }

    /// Counts one write of `bytes`.
    pub(crate) fn add(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
        self.messages += 1;
        let now = Instant::now();
        if now.duration_since(self.last) >= EVERY {
            self.last = now;
            let text = self.text(now);
            // Progress is a courtesy: a closed stderr must not stop the transfer.
            let _ = if self.tty {
                write!(io::stderr(), "\r{text}   ")
            } else {
                writeln!(io::stderr(), "{text}")
            };
        }
    }

    /// The final line.
    pub(crate) fn finish(&self, messages: bool) {
        let text = self.text(Instant::now());
        let count = if messages {
            format!(" in {} messages", self.messages)
        } else {
            String::new()
        };
        // On a terminal the final line overwrites the last update.
        let (cr, pad) = if self.tty { ("\r", "   ") } else { ("", "") };
        let _ = writeln!(io::stderr(), "{cr}{text}{count}, done{pad}");
    }

    fn text(&self, now: Instant) -> String {
        let secs = now.duration_since(self.start).as_secs_f64();
        let rate = if secs > 0.0 { self.bytes as f64 / secs } else { 0.0 };
        format!(
            "pipeslot: sent {} bytes ({}) in {secs:.2} s, {}/s",
            self.bytes,
            human(self.bytes as f64),
            human(rate)
        )
    }
}

/// 1536 → "1.5 KiB".
fn human(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_units() {
        assert_eq!(super::human(512.0), "512 B");
        assert_eq!(super::human(1536.0), "1.5 KiB");
        assert_eq!(super::human(8.0 * 1024.0 * 1024.0), "8.0 MiB");
    }
}
