//! Win32 pipe and mailslot names: parsed once into types that can only hold
//! a valid name ("parse, don't validate").
//!
//! Accepted forms (`/` may stand for `\` anywhere):
//!
//! | form                          | meaning                                  |
//! |-------------------------------|------------------------------------------|
//! | `NAME`                        | `\\.\pipe\NAME`                          |
//! | `\\.\pipe\NAME`               | a pipe on this machine                   |
//! | `\\HOST\pipe\NAME`            | a pipe on another machine (SMB2, IPC$)   |
//! | `\\.\mailslot\[PATH\]NAME`    | a mailslot on this machine               |
//! | `\\HOST\mailslot\…`           | a mailslot on one host, or a domain      |
//! | `\\*\mailslot\…`              | every mailslot of that name in the domain|
//!
//! Names compare case-insensitively (Windows folds with a simple, one
//! character to one character upper-case table); the creator's spelling is
//! kept for display.

use std::fmt;

use crate::status::Win32Error;

/// The longest pipe or mailslot NAME (the part after `\pipe\`), in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// Why a name was refused. Always `ERROR_INVALID_NAME (123)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// The name as written (single backslashes), its control characters
// escaped: never Rust's quoted form, which doubles every backslash.
#[error("{reason}: {}", escape_controls(.name))]
pub struct NameError {
    /// What is wrong with the name.
    pub reason: &'static str,
    /// The name as given.
    pub name: String,
}

impl NameError {
    fn new(reason: &'static str, name: &str) -> NameError {
        NameError {
            reason,
            name: name.to_owned(),
        }
    }

    /// The Win32 error this corresponds to: `ERROR_INVALID_NAME`.
    pub fn code(&self) -> Win32Error {
        Win32Error::ERROR_INVALID_NAME
    }
}

/// Where a name points.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Host {
    /// `.`: this machine.
    Local,
    /// A computer (or, for mailslots, a domain) name or address, as spelled.
    Server(String),
    /// `*`: every machine of the primary domain (mailslot writers only).
    Broadcast,
}

impl Host {
    fn spelling(&self) -> &str {
        match self {
            Host::Local => ".",
            Host::Server(s) => s,
            Host::Broadcast => "*",
        }
    }
}

/// A name (or any text about one) made safe to print on a terminal: control
/// characters (C0, DEL, C1) and the bidirectional overrides that reorder
/// what a reader sees become `\x1b`-style escapes (`\u{202e}` above 0xff).
/// Names may hold any of these, and another user picks the names `list`
/// shows, so nothing they hold may steer the terminal.
///
/// ```
/// use pipeslot_proto::name::escape_controls;
/// assert_eq!(escape_controls("a\x1b[2Jb\tc\n"), r"a\x1b[2Jb\x09c\x0a");
/// assert_eq!(escape_controls("spoof\u{202e}gpj"), r"spoof\u{202e}gpj");
/// assert_eq!(escape_controls(r"\\.\pipe\plain"), r"\\.\pipe\plain");
/// ```
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if bad(c) && (c as u32) <= 0xff => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if bad(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A validated path below `\pipe\` or `\mailslot\`: the display spelling and
/// the folded form used for comparison.
#[derive(Clone)]
struct Path {
    display: String,
    folded: String,
}

impl Path {
    fn parse(path: &str, whole: &str) -> Result<Path, NameError> {
        if path.is_empty() {
            return Err(NameError::new("the name after the prefix is empty", whole));
        }
        if path.chars().count() > MAX_NAME_CHARS {
            return Err(NameError::new("the name is longer than 256 characters", whole));
        }
        if path.contains('\0') {
            return Err(NameError::new("the name holds a NUL character", whole));
        }
        Ok(Path {
            display: path.to_owned(),
            folded: fold(path),
        })
    }
}

/// Folds a name the way Windows compares names: each character upper-cased
/// when that gives exactly one character (so `ß` stays `ß`).
pub fn fold(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// A named pipe's name: `\\HOST\pipe\NAME`.
#[derive(Clone)]
pub struct PipeName {
    host: Host,
    path: Path,
}

impl PipeName {
    /// Parses any accepted pipe form; a bare `NAME` means `\\.\pipe\NAME`.
    ///
    /// # Errors
    /// `ERROR_INVALID_NAME`: empty, longer than 256 characters, holding NUL,
    /// a mailslot name, or a malformed prefix.
    pub fn parse(name: &str) -> Result<PipeName, NameError> {
        match Name::parse(name)? {
            Name::Pipe(p) => Ok(p),
            Name::Mailslot(_) => Err(NameError::new("a mailslot name where a pipe name is needed", name)),
        }
    }

    /// Where the pipe lives.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// True for `\\.\pipe\…`.
    pub fn is_local(&self) -> bool {
        self.host == Host::Local
    }

    /// NAME as the creator spelled it (after `/` became `\`).
    pub fn name(&self) -> &str {
        &self.path.display
    }

    /// NAME folded for comparison; two names are the same pipe when these match.
    pub fn folded(&self) -> &str {
        &self.path.folded
    }
}

impl PartialEq for PipeName {
    fn eq(&self, other: &PipeName) -> bool {
        fold(self.host.spelling()) == fold(other.host.spelling()) && self.path.folded == other.path.folded
    }
}
impl Eq for PipeName {}

impl fmt::Display for PipeName {
    /// The full name, `\\.\pipe\NAME`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, r"\\{}\pipe\{}", self.host.spelling(), self.path.display)
    }
}

impl fmt::Debug for PipeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PipeName({self})")
    }
}

impl std::str::FromStr for PipeName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<PipeName, NameError> {
        PipeName::parse(s)
    }
}

/// A mailslot's name: `\\HOST\mailslot\[PATH\]NAME`.
#[derive(Clone)]
pub struct MailslotName {
    host: Host,
    path: Path,
}

impl MailslotName {
    /// Parses a mailslot name (there is no bare form).
    ///
    /// # Errors
    /// `ERROR_INVALID_NAME` as for pipes, or a pipe name given.
    pub fn parse(name: &str) -> Result<MailslotName, NameError> {
        match Name::parse(name)? {
            Name::Mailslot(m) => Ok(m),
            Name::Pipe(_) => Err(NameError::new("a pipe name where a mailslot name is needed", name)),
        }
    }

    /// Where the writes go (readers are always local).
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// `[PATH\]NAME` as spelled.
    pub fn path(&self) -> &str {
        &self.path.display
    }

    /// `[PATH\]NAME` folded for comparison.
    pub fn folded(&self) -> &str {
        &self.path.folded
    }

    /// The name carried on the wire by the Mailslot Protocol: `\MAILSLOT\PATH`.
    pub fn wire_name(&self) -> String {
        format!(r"\MAILSLOT\{}", self.path.display)
    }
}

impl PartialEq for MailslotName {
    fn eq(&self, other: &MailslotName) -> bool {
        fold(self.host.spelling()) == fold(other.host.spelling()) && self.path.folded == other.path.folded
    }
}
impl Eq for MailslotName {}

impl fmt::Display for MailslotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, r"\\{}\mailslot\{}", self.host.spelling(), self.path.display)
    }
}

impl fmt::Debug for MailslotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailslotName({self})")
    }
}

/// Either kind of name; what a CLI verb does depends on which.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Name {
    /// `\\HOST\pipe\NAME` (or a bare NAME).
    Pipe(PipeName),
    /// `\\HOST\mailslot\NAME`.
    Mailslot(MailslotName),
}

impl Name {
    /// Parses any accepted form (see the module docs).
    ///
    /// # Errors
    /// `ERROR_INVALID_NAME` with the reason.
    pub fn parse(name: &str) -> Result<Name, NameError> {
        let s = name.replace('/', "\\");
        let Some(rest) = s.strip_prefix(r"\\") else {
            if s.starts_with('\\') {
                return Err(NameError::new(r"a name must be NAME or start with \\HOST\", name));
            }
            return Ok(Name::Pipe(PipeName {
                host: Host::Local,
                path: Path::parse(&s, name)?,
            }));
        };
        let (host, rest) = rest
            .split_once('\\')
            .ok_or_else(|| NameError::new(r"expected \\HOST\pipe\NAME or \\HOST\mailslot\NAME", name))?;
        let (kind, path) = rest
            .split_once('\\')
            .ok_or_else(|| NameError::new(r"expected \\HOST\pipe\NAME or \\HOST\mailslot\NAME", name))?;
        let host = match host {
            "." => Host::Local,
            "*" => Host::Broadcast,
            "" => return Err(NameError::new("the host part is empty", name)),
            h if h.chars().any(|c| c.is_control() || c == '\\') => {
                return Err(NameError::new("the host part holds a control character", name))
            }
            h => Host::Server(h.to_owned()),
        };
        let path = Path::parse(path, name)?;
        if kind.eq_ignore_ascii_case("pipe") {
            if host == Host::Broadcast {
                return Err(NameError::new(r"\\*\ is for mailslots only", name));
            }
            Ok(Name::Pipe(PipeName { host, path }))
        } else if kind.eq_ignore_ascii_case("mailslot") {
            Ok(Name::Mailslot(MailslotName { host, path }))
        } else {
            Err(NameError::new(r"expected \pipe\ or \mailslot\ after the host", name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_full_forms_are_the_same_pipe() {
        let a = PipeName::parse("MyPipe").unwrap();
        let b = PipeName::parse(r"\\.\pipe\mypipe").unwrap();
        let c = PipeName::parse("//./PIPE/MYPIPE").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.to_string(), r"\\.\pipe\MyPipe");
        assert_eq!(c.name(), "MYPIPE");
        assert_eq!(a.folded(), "MYPIPE");
        assert!(a.is_local());
    }

    #[test]
    fn names_may_hold_backslashes_and_slashes_fold_to_them() {
        let p = PipeName::parse(r"\\.\pipe\MSSQL$X\sql\query").unwrap();
        assert_eq!(p.name(), r"MSSQL$X\sql\query");
        let q = PipeName::parse("//./pipe/mssql$x/SQL/query").unwrap();
        assert_eq!(p, q);
    }

    #[test]
    fn remote_forms_parse() {
        let p = PipeName::parse(r"\\Server1\pipe\srvsvc").unwrap();
        assert_eq!(p.host(), &Host::Server("Server1".into()));
        assert!(!p.is_local());
        assert_eq!(p.to_string(), r"\\Server1\pipe\srvsvc");
    }

    #[test]
    fn lengths_at_and_past_the_limit() {
        let ok = "x".repeat(256);
        assert_eq!(PipeName::parse(&ok).unwrap().name().len(), 256);
        let long = "é".repeat(256);
        assert!(PipeName::parse(&long).is_ok(), "256 characters, not bytes");
        let bad = "x".repeat(257);
        let e = PipeName::parse(&bad).unwrap_err();
        assert_eq!(e.code(), Win32Error::ERROR_INVALID_NAME);
    }

    #[test]
    fn bad_names_are_invalid_name() {
        for bad in [
            "",
            r"\\.\pipe\",
            "a\0b",
            r"\\.\pipe",
            r"\\\pipe\x",
            r"\\.\file\x",
            r"\\*\pipe\x",
            r"\pipe\x",
            r"\\.\mailslot\x",
        ] {
            let e = PipeName::parse(bad).unwrap_err();
            assert_eq!(e.code(), Win32Error::ERROR_INVALID_NAME, "{bad:?}");
        }
    }

    #[test]
    fn mailslot_forms() {
        let m = MailslotName::parse(r"\\.\mailslot\pipeslot\demo").unwrap();
        assert_eq!(m.host(), &Host::Local);
        assert_eq!(m.path(), r"pipeslot\demo");
        assert_eq!(m.wire_name(), r"\MAILSLOT\pipeslot\demo");
        assert_eq!(MailslotName::parse(r"\\*\mailslot\x").unwrap().host(), &Host::Broadcast);
        assert_eq!(
            MailslotName::parse("//MSLAB/MailSlot/x").unwrap().host(),
            &Host::Server("MSLAB".into())
        );
        assert_eq!(
            MailslotName::parse(r"\\.\mailslot\A").unwrap(),
            MailslotName::parse(r"\\.\MAILSLOT\a").unwrap()
        );
        assert!(MailslotName::parse("bare").is_err());
    }

    #[test]
    fn folding_is_one_to_one() {
        assert_eq!(fold("straße"), "STRAßE");
        assert_eq!(fold("ÄbC"), "ÄBC");
    }
}
