//! The gateway's configuration file (TOML). It holds NT hashes, which are
//! as good as passwords to an attacker, so it must be the gateway user's own
//! and readable by no one else (mode 0600): anything looser is refused.
//!
//! ```toml
//! listen = "0.0.0.0:445"        # default; ports under 1024 need CAP_NET_BIND_SERVICE
//! require_signing = true        # default
//! encryption = "allowed"        # default; "required" or "never"
//! guest = false                 # default: anonymous and unknown names refused
//! max_connections = 256         # default
//! max_opens = 64                # default, per session
//! idle_timeout_secs = 900       # default: a connection with nothing open
//! keepalive_secs = 30           # default: a vanished client is dropped within 4 × this
//! exports = ["logs", "upper"]   # nothing is reachable until listed
//!
//! [mailslots]                   # the host's mailslot datagram service
//! listen = "0.0.0.0:138"        # UDP; remote writes reach local network mailslots
//!
//! [samba]                       # the Samba mode: smbd serves SMB, we serve the pipes
//! np_dir = "/run/samba/ncalrpc/np"   # smbd's `ncalrpc dir` + /np; with [samba] and no
//!                                    # `listen`, our own SMB server is off
//!
//! [[users]]                     # `pipeslot gateway user add NAME` writes these
//! name = "alice"
//! nt_hash = "8846f7eaee8fb117ad06bdd830b7586c"
//! ```

use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::GatewayOptions;
use crate::error::{err, Error, Win32Error};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    require_signing: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    guest: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_opens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keepalive_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    exports: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    samba: Option<Samba>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mailslots: Option<Mailslots>,
    #[serde(default)]
    users: Vec<User>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Samba {
    np_dir: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Mailslots {
    listen: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct User {
    name: String,
    nt_hash: String,
}

fn bad(path: &Path, why: impl std::fmt::Display) -> io::Error {
    err(
        Win32Error::ERROR_INVALID_PARAMETER,
        format!("{}: {why}", path.display()),
    )
}

fn hash_hex(h: &[u8; 16]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hash(path: &Path, s: &str) -> io::Result<[u8; 16]> {
    let mut h = [0u8; 16];
    if s.len() != 32 {
        return Err(bad(path, "an nt_hash is 32 hex digits"));
    }
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad(path, "an nt_hash is 32 hex digits"))?;
    }
    Ok(h)
}

/// Reads the file, refusing one another user owns or others can read.
fn read(path: &Path) -> io::Result<File> {
    // One open, checked and read through the same handle: the file read is
    // the file checked, even if the path is swapped in between.
    let mut file =
        std::fs::File::open(path).map_err(|e| Error::from_io(&e, format!("the gateway config {}", path.display())))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::from_io(&e, format!("the gateway config {}", path.display())))?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(err(
            Win32Error::ERROR_ACCESS_DENIED,
            format!(
                "{}: owned by uid {}, not by this user ({me})",
                path.display(),
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(err(
            Win32Error::ERROR_ACCESS_DENIED,
            format!(
                "{}: mode {:o} lets others read the NT hashes in it; chmod 600 it",
                path.display(),
                meta.mode() & 0o777
            ),
        ));
    }
    let mut text = String::new();
    io::Read::read_to_string(&mut file, &mut text)
        .map_err(|e| Error::from_io(&e, format!("reading {}", path.display())))?;
    toml::from_str(&text).map_err(|e| bad(path, e.message()))
}

impl GatewayOptions {
    /// The options a configuration file gives.
    ///
    /// # Errors
    /// `ERROR_FILE_NOT_FOUND`, `ERROR_ACCESS_DENIED (5)` for a file others
    /// can read or another user owns, `ERROR_INVALID_PARAMETER (87)` for a
    /// malformed one.
    pub fn from_config(path: &Path) -> io::Result<GatewayOptions> {
        let f = read(path)?;
        let listen = f
            .listen
            .as_deref()
            .unwrap_or("0.0.0.0:445")
            .parse()
            .map_err(|_| bad(path, "listen is ADDRESS:PORT"))?;
        let mut o = GatewayOptions::new(listen);
        if let Some(s) = &f.samba {
            o.samba(&s.np_dir).own_server(f.listen.is_some());
        }
        if let Some(m) = &f.mailslots {
            let addr = m
                .listen
                .as_deref()
                .unwrap_or("0.0.0.0:138")
                .parse()
                .map_err(|_| bad(path, "[mailslots] listen is IPv4-ADDRESS:PORT"))?;
            o.mailslot_service(addr);
        }
        o.require_signing(f.require_signing.unwrap_or(true));
        o.guest(f.guest.unwrap_or(false));
        o.encryption(match f.encryption.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("allowed") => super::Encryption::Allowed,
            Some("required") => super::Encryption::Required,
            Some("never") => super::Encryption::Never,
            Some(_) => return Err(bad(path, "encryption is \"allowed\", \"required\" or \"never\"")),
        });
        if let Some(n) = f.max_connections {
            o.max_connections(n);
        }
        if let Some(n) = f.max_opens {
            o.max_opens(n);
        }
        if let Some(t) = f.idle_timeout_secs {
            o.idle_timeout(std::time::Duration::from_secs(t));
        }
        if let Some(t) = f.keepalive_secs {
            o.keepalive(std::time::Duration::from_secs(t));
        }
        for e in &f.exports {
            o.export(e);
        }
        for u in &f.users {
            o.users.push(pipeslot_smb::server::ServerUser {
                name: u.name.clone(),
                domain: String::new(),
                nt_hash: parse_hash(path, &u.nt_hash)?,
            });
        }
        Ok(o)
    }
}

/// Adds (or replaces) user `name` with `password`'s NT hash in the file,
/// creating it (mode 0600) when missing. The password itself is not kept.
///
/// # Errors
/// As [`GatewayOptions::from_config`], and the write's own errors.
pub fn add_user(path: &Path, name: &str, password: &str) -> io::Result<()> {
    let mut f = if path.exists() { read(path)? } else { File::default() };
    f.users.retain(|u| !u.name.eq_ignore_ascii_case(name));
    f.users.push(User {
        name: name.to_owned(),
        nt_hash: hash_hex(&pipeslot_smb::ntlm::nt_hash(password)),
    });
    let text = toml::to_string(&f).map_err(|e| bad(path, e))?;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::from_io(&e, format!("writing {}", tmp.display())))?;
    io::Write::write_all(&mut out, text.as_bytes())?;
    out.sync_all()?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::from_io(&e, format!("replacing {}", path.display())).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_round_trips_and_loose_modes_are_refused() {
        let dir = std::env::temp_dir().join(format!("pipeslot-gwconf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.toml");
        let _ = std::fs::remove_file(&path);
        add_user(&path, "alice", "wonderland").unwrap();
        add_user(&path, "bob", "builder").unwrap();
        add_user(&path, "ALICE", "changed").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("wonderland") && !text.contains("changed"), "{text}");
        assert_eq!(text.matches("[[users]]").count(), 2, "{text}");
        std::fs::write(
            &path,
            format!(
                "listen = \"127.0.0.1:4450\"\nencryption = \"Required\"\nguest = true\nmax_opens = 3\n\
                 keepalive_secs = 5\nexports = [\"logs\"]\n{text}"
            ),
        )
        .unwrap();
        let o = GatewayOptions::from_config(&path).unwrap();
        assert_eq!(o.listen, "127.0.0.1:4450".parse().unwrap());
        assert!(o.exports("LOGS") && !o.exports("other"));
        assert_eq!(o.users.len(), 2);
        assert_eq!(o.users[1].nt_hash, pipeslot_smb::ntlm::nt_hash("changed"));
        assert_eq!(
            (o.encryption, o.guest, o.max_opens),
            (super::super::Encryption::Required, true, 3)
        );
        assert_eq!(o.keepalive, std::time::Duration::from_secs(5));
        assert_eq!(o.max_connections, 256, "the default where the file is silent");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = GatewayOptions::from_config(&path).unwrap_err();
        assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_ACCESS_DENIED), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        for wrong in ["listen = 5\n", "encryption = \"maybe\"\n", "guests = true\n"] {
            std::fs::write(&path, wrong).unwrap();
            let e = GatewayOptions::from_config(&path).unwrap_err();
            assert_eq!(
                Error::win32(&e),
                Some(Win32Error::ERROR_INVALID_PARAMETER),
                "{wrong}: {e}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
