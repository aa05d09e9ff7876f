//! What a remote open needs besides the name: whom to log on as, which
//! port, what protection to insist on, how long to wait. Each setting comes
//! from, in order: a `ClientOptions` setter, the environment
//! (`PIPESLOT_USER`, `PIPESLOT_PASSWORD`, `PIPESLOT_DOMAIN`,
//! `PIPESLOT_SMB_PORT`), an smbclient-style authentication file named by
//! `PIPESLOT_CREDENTIALS`, and last the defaults (anonymous, then guest;
//! port 445).

use std::fmt;
use std::io;
use std::time::Duration;

use crate::error::{err, Win32Error};

/// A user and password for SMB's NTLMv2 log-on. `Debug` never shows the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmbCredentials {
    /// The account name.
    pub user: String,
    /// Its domain or workgroup (empty: the server's own accounts).
    pub domain: String,
    password: String,
}

impl SmbCredentials {
    /// A user (`user`, `DOMAIN\user` or `user@domain`) and its password.
    pub fn new(user: &str, password: &str) -> SmbCredentials {
        let (domain, user) = match (user.split_once('\\'), user.split_once('@')) {
            (Some((d, u)), _) => (d, u),
            (None, Some((u, d))) => (d, u),
            _ => ("", user),
        };
        SmbCredentials {
            user: user.to_owned(),
            domain: domain.to_owned(),
            password: password.to_owned(),
        }
    }

    /// The same user in `domain`.
    pub fn with_domain(mut self, domain: &str) -> SmbCredentials {
        self.domain = domain.to_owned();
        self
    }

    pub(crate) fn nt_hash(&self) -> [u8; 16] {
        pipeslot_smb::ntlm::nt_hash(&self.password)
    }

    /// From the environment, then the credentials file; `None` when neither
    /// names a user.
    ///
    /// # Errors
    /// `ERROR_INVALID_PARAMETER (87)` for an unreadable or malformed file.
    pub fn from_env() -> io::Result<Option<SmbCredentials>> {
        if let Ok(user) = std::env::var("PIPESLOT_USER") {
            let password = std::env::var("PIPESLOT_PASSWORD").unwrap_or_default();
            let mut c = SmbCredentials::new(&user, &password);
            if let Ok(d) = std::env::var("PIPESLOT_DOMAIN") {
                c.domain = d;
            }
            return Ok(Some(c));
        }
        match std::env::var_os("PIPESLOT_CREDENTIALS") {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    err(
                        Win32Error::ERROR_INVALID_PARAMETER,
                        format!("PIPESLOT_CREDENTIALS: cannot read {}: {e}", path.to_string_lossy()),
                    )
                })?;
                SmbCredentials::parse_file(&text).map(Some).map_err(|why| {
                    err(
                        Win32Error::ERROR_INVALID_PARAMETER,
                        format!("PIPESLOT_CREDENTIALS: {}: {why}", path.to_string_lossy()),
                    )
                })
            }
            None => Ok(None),
        }
    }

    /// smbclient's `-A` format: `username = …`, `password = …`,
    /// `domain = …` lines; `#` starts a comment.
    fn parse_file(text: &str) -> Result<SmbCredentials, String> {
        let (mut user, mut password, mut domain) = (None, None, None);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!("line {}: not `key = value`", n + 1));
            };
            let v = v.trim().to_owned();
            match k.trim() {
                "username" => user = Some(v),
                "password" => password = Some(v),
                "domain" | "workgroup" => domain = Some(v),
                other => return Err(format!("line {}: unknown key {other:?}", n + 1)),
            }
        }
        let user = user.ok_or("no `username =` line")?;
        let mut c = SmbCredentials::new(&user, &password.unwrap_or_default());
        if let Some(d) = domain {
            c.domain = d;
        }
        Ok(c)
    }
}

impl fmt::Debug for SmbCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmbCredentials({}\\{}, password: <hidden>)", self.domain, self.user)
    }
}

/// The remote half of `ClientOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RemoteOptions {
    pub(crate) credentials: Option<SmbCredentials>,
    pub(crate) port: Option<u16>,
    pub(crate) require_signing: bool,
    pub(crate) require_encryption: bool,
    pub(crate) dialects: Option<Vec<u16>>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) response_timeout: Option<Duration>,
}

/// Defaults of the issue's contract: connect 5 s, each answer 30 s.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

impl RemoteOptions {
    pub(crate) fn port(&self) -> io::Result<u16> {
        if let Some(p) = self.port {
            return Ok(p);
        }
        match std::env::var("PIPESLOT_SMB_PORT") {
            Ok(v) => v.parse().map_err(|_| {
                err(
                    Win32Error::ERROR_INVALID_PARAMETER,
                    format!("PIPESLOT_SMB_PORT={v:?} is not a port number"),
                )
            }),
            Err(_) => Ok(445),
        }
    }

    pub(crate) fn credentials(&self) -> io::Result<Option<SmbCredentials>> {
        match &self.credentials {
            Some(c) => Ok(Some(c.clone())),
            None => SmbCredentials::from_env(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_spellings_and_the_credentials_file() {
        let c = SmbCredentials::new(r"LAB\alice", "pw");
        assert_eq!((c.user.as_str(), c.domain.as_str()), ("alice", "LAB"));
        let c = SmbCredentials::new("bob@corp.example", "pw");
        assert_eq!((c.user.as_str(), c.domain.as_str()), ("bob", "corp.example"));
        let f = SmbCredentials::parse_file("# lab\nusername = carol\npassword = s3 cret\ndomain = WG\n").unwrap();
        assert_eq!(f, SmbCredentials::new("carol", "s3 cret").with_domain("WG"));
        assert!(SmbCredentials::parse_file("password = x\n").is_err());
        assert!(SmbCredentials::parse_file("username carol\n").is_err());
        let shown = format!("{f:?}");
        assert!(!shown.contains("s3 cret") && shown.contains("carol"), "{shown}");
    }
}
