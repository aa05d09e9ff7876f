//! The one error line: `pipeslot: ERROR_X (N): what happened, for which name`.
//!
//! Library errors already print as `ERROR_X (N): detail`. Anything else (a
//! child process that cannot start, stdin that cannot be read) is given the
//! closest Win32 code and a sentence of context here, so every failure reads
//! the same way.

use std::io;

use pipeslot::Win32Error;

/// An error with a Win32 code and a sentence.
pub(crate) fn fail(code: Win32Error, detail: impl Into<String>) -> io::Error {
    pipeslot::Error::new(code, detail).into()
}

/// Keeps a pipeslot error as it is; gives any other error a Win32 code
/// (from its errno, else `ERROR_GEN_FAILURE`) and says what was being done.
pub(crate) fn wrap(e: io::Error, doing: impl std::fmt::Display) -> io::Error {
    if e.get_ref().is_some_and(|i| i.is::<pipeslot::Error>()) {
        return e;
    }
    let code = pipeslot::Error::win32(&e).unwrap_or(Win32Error::ERROR_GEN_FAILURE);
    fail(code, format!("{doing}: {e}"))
}

/// The text after `pipeslot: `, on one line.
pub(crate) fn line(e: &io::Error) -> String {
    let text = match e.get_ref().and_then(|i| i.downcast_ref::<pipeslot::Error>()) {
        Some(inner) => inner.to_string(),
        None => {
            let code = pipeslot::Error::win32(e).unwrap_or(Win32Error::ERROR_GEN_FAILURE);
            format!("{code}: {e}")
        }
    };
    // One line, and nothing in it (a name holds what its creator chose)
    // steers the terminal.
    shorten(&pipeslot::escape_controls(&text))
}

/// The longest run without a space an error line shows whole; a longer one
/// (a 10,000-character name) keeps its start and end around an ellipsis.
const LONGEST_WORD: usize = 160;

fn shorten(line: &str) -> String {
    line.split(' ')
        .map(|w| {
            let n = w.chars().count();
            if n <= LONGEST_WORD {
                return w.to_owned();
            }
            let head: String = w.chars().take(100).collect();
            let tail: String = w.chars().skip(n - 40).collect();
            format!("{head}…({} characters)…{tail}", n - 140)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ERROR_NOT_SUPPORTED` for a kind of name a verb does not take: kinds the
/// library may add later (settings already refuses the known misfits).
pub(crate) fn other_kind() -> io::Error {
    fail(
        Win32Error::ERROR_NOT_SUPPORTED,
        "this verb does not take this kind of name",
    )
}

/// True when `e` carries this Win32 code.
pub(crate) fn is(e: &io::Error, code: Win32Error) -> bool {
    pipeslot::Error::win32(e) == Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_words_are_cut_in_the_middle_and_short_lines_left_alone() {
        let name = format!(r"\\.\pipe\{}", "n".repeat(10_000));
        let line = shorten(&format!("ERROR_FILE_NOT_FOUND (2): no pipe named {name} exists"));
        assert!(line.len() < 300, "{}", line.len());
        assert!(line.starts_with(r"ERROR_FILE_NOT_FOUND (2): no pipe named \\.\pipe\nnn"));
        assert!(line.ends_with("nnn exists") && line.contains("characters)…"));
        let short = "ERROR_PIPE_BUSY (231): all instances of \\\\.\\pipe\\x are busy";
        assert_eq!(shorten(short), short);
    }

    #[test]
    fn lines_name_the_win32_error() {
        let e = fail(Win32Error::ERROR_PIPE_BUSY, r"all instances of \\.\pipe\x are busy");
        assert_eq!(line(&e), r"ERROR_PIPE_BUSY (231): all instances of \\.\pipe\x are busy");
        let os = io::Error::from_raw_os_error(2);
        assert!(line(&wrap(os, "running foo")).starts_with("ERROR_FILE_NOT_FOUND (2): running foo: "));
        let plain = io::Error::other("two\nlines");
        assert_eq!(
            line(&plain),
            r"ERROR_GEN_FAILURE (31): two\x0alines",
            "one line, escaped"
        );
        let ansi = io::Error::other("\x1b[2Jcleared");
        assert_eq!(line(&ansi), r"ERROR_GEN_FAILURE (31): \x1b[2Jcleared");
    }
}
