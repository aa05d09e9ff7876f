//! Standard output, shared by every thread: one lock per message or chunk,
//! so what two clients send is never torn or interleaved mid-message, and a
//! flush per write, so a reader sees each message as soon as it arrives.
//!
//! A closed stdout (`pipeslot serve … | head -1`) is not an error: writes
//! then fail with [`StdoutClosed`], which `main` turns into a quiet exit 0.

use std::fmt;
use std::io::{self, Write};

use crate::hex;

/// Marker carried inside an `io::Error`: stdout's reader went away.
#[derive(Debug)]
pub(crate) struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// True for the error that stdout writes return once it is closed.
pub(crate) fn is_stdout_closed(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<StdoutClosed>())
}

fn stdout_error(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        crate::error::wrap(e, "writing to standard output")
    }
}

/// Fails when stdout was closed (`>&-`): Rust's runtime reopens a closed
/// stdout as /dev/null at start, and a reply nobody sees must not pass for
/// success. (A reader that leaves, `| head`, is EPIPE later: that ends
/// quietly.) The runtime opens it read-write; a shell's `> /dev/null`,
/// which asks for the output to go, opens it write-only and is left alone.
pub(crate) fn require_stdout() -> io::Result<()> {
    use std::os::fd::AsFd;
    let fd = io::stdout();
    let fd = fd.as_fd();
    let closed = match (rustix::fs::fstat(fd), rustix::fs::fcntl_getfl(fd)) {
        (Ok(st), Ok(fl)) => {
            let dev_null = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice
                && rustix::fs::major(st.st_rdev) == 1
                && rustix::fs::minor(st.st_rdev) == 3;
            dev_null && fl & rustix::fs::OFlags::RWMODE == rustix::fs::OFlags::RDWR
        }
        _ => true,
    };
    if closed {
        return Err(crate::error::fail(
            pipeslot::Win32Error::ERROR_INVALID_HANDLE,
            "standard output is closed: what this verb prints would be lost",
        ));
    }
    Ok(())
}

/// Writes `parts` under one stdout lock and flushes.
pub(crate) fn write(parts: &[&[u8]]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    for p in parts {
        out.write_all(p).map_err(stdout_error)?;
    }
    out.flush().map_err(stdout_error)
}

/// One message and a newline, as bytes or as hex.
pub(crate) fn message(msg: &[u8], as_hex: bool) -> io::Result<()> {
    if as_hex {
        write(&[&hex::encode(msg), b"\n"])
    } else {
        write(&[msg, b"\n"])
    }
}

/// A line of text.
pub(crate) fn line(text: &str) -> io::Result<()> {
    write(&[text.as_bytes(), b"\n"])
}

/// `key: value` lines, or (`json`) one JSON object with the same keys:
/// numbers and `true`/`false` as such, space-separated pids as an array,
/// the rest as strings (names unescaped: JSON has its own escapes).
pub(crate) fn record(pairs: &[(&str, String)], json: bool) -> io::Result<()> {
    if !json {
        for (key, value) in pairs {
            line(&format!("{key}: {}", pipeslot::escape_controls(value)))?;
        }
        return Ok(());
    }
    let mut map = serde_json::Map::new();
    for (key, value) in pairs {
        map.insert((*key).to_owned(), typed(key, value));
    }
    line(&serde_json::Value::Object(map).to_string())
}

/// A value as JSON: numbers, booleans, pid lists, else the string.
pub(crate) fn typed(key: &str, value: &str) -> serde_json::Value {
    use serde_json::Value;
    if key.ends_with("pids") {
        return Value::Array(
            value
                .split([' ', ','])
                .filter_map(|p| p.parse::<u64>().ok())
                .map(Value::from)
                .collect(),
        );
    }
    // Names and owners stay strings whatever they spell (an owner without
    // a user name is its uid, a pipe may be called "42"): a key's type must
    // not depend on the data.
    if matches!(
        key,
        "name" | "owner" | "kind" | "mode" | "type" | "session" | "namespace"
    ) {
        return Value::String(value.to_owned());
    }
    if let Ok(n) = value.parse::<u64>() {
        return Value::from(n);
    }
    match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(value.to_owned()),
    }
}

/// Rows as columns aligned under a header (nothing at all when there are
/// no rows), or (`json`) one object per row, keyed by the header in lower
/// case.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>], json: bool) -> io::Result<()> {
    if json {
        for r in rows {
            let mut map = serde_json::Map::new();
            for (h, v) in header.iter().zip(r) {
                let key = h.to_lowercase();
                if v != "-" {
                    map.insert(key.clone(), typed(&key, v));
                }
            }
            line(&serde_json::Value::Object(map).to_string())?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| pipeslot::escape_controls(c).into_owned()).collect())
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let render = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        s
    };
    line(&render(header.to_vec()))?;
    for r in &rows {
        line(&render(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

#[cfg(test)]
mod typed_tests {
    #[test]
    fn numbers_become_numbers_but_names_and_owners_stay_strings() {
        assert_eq!(super::typed("instances", "3"), serde_json::json!(3));
        assert_eq!(super::typed("owner", "1001"), serde_json::json!("1001"));
        assert_eq!(super::typed("name", "42"), serde_json::json!("42"));
        assert_eq!(super::typed("pids", "1 2"), serde_json::json!([1, 2]));
        assert_eq!(super::typed("network", "true"), serde_json::json!(true));
    }
}
