//! Access control and client identity.
//!
//! Win32 guards a pipe with a DACL; pipeslot keeps the part that matters
//! between local users: the owner, users and groups allowed, everyone, and
//! users and groups denied. A deny entry always wins. The default is
//! owner-only (Win32's default DACL for a pipe grants the creator and
//! administrators). The acceptor checks the client's kernel-verified
//! credentials (`SO_PEERCRED`, `SO_PEERGROUPS`) before any instance sees it;
//! a refused client gets `ERROR_ACCESS_DENIED (5)`.

use std::io;

use crate::error::{err, Win32Error};
use crate::sys;

/// Who may open a pipe (a Win32 security descriptor, reduced to Unix terms).
///
/// ```
/// use pipeslot::PipeSecurity;
/// let sec = PipeSecurity::owner_only().allow_group(100).deny_user(65534);
/// assert!(sec.permits(sec.owner(), 0, &[]));
/// assert!(sec.permits(1234, 100, &[]));
/// assert!(!sec.permits(65534, 100, &[]), "deny wins over an allowed group");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeSecurity {
    owner: u32,
    everyone: bool,
    allow_users: Vec<u32>,
    allow_groups: Vec<u32>,
    deny_users: Vec<u32>,
    deny_groups: Vec<u32>,
    create_users: Vec<u32>,
    create_groups: Vec<u32>,
    /// Remote users (`DOMAIN\user`, or `*\user` for any domain) the
    /// gateway may bring; empty: any it authenticated.
    remote_users: Vec<String>,
}

impl Default for PipeSecurity {
    fn default() -> PipeSecurity {
        PipeSecurity::owner_only()
    }
}

impl PipeSecurity {
    /// Only the creating user (its effective uid) may open the pipe.
    pub fn owner_only() -> PipeSecurity {
        PipeSecurity {
            owner: rustix::process::geteuid().as_raw(),
            everyone: false,
            allow_users: Vec::new(),
            allow_groups: Vec::new(),
            deny_users: Vec::new(),
            deny_groups: Vec::new(),
            create_users: Vec::new(),
            create_groups: Vec::new(),
            remote_users: Vec::new(),
        }
    }

    /// The owner's uid.
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// Every local user may open the pipe (the `Everyone` ACE).
    pub fn allow_everyone(mut self) -> PipeSecurity {
        self.everyone = true;
        self
    }

    /// Allows a user by uid.
    pub fn allow_user(mut self, uid: u32) -> PipeSecurity {
        self.allow_users.push(uid);
        self
    }

    /// Allows members of a group by gid (primary or supplementary).
    pub fn allow_group(mut self, gid: u32) -> PipeSecurity {
        self.allow_groups.push(gid);
        self
    }

    /// Allows a remote user, as the gateway names it: `DOMAIN\user`, or
    /// `*\user` in any domain (case does not matter). Once one is named,
    /// other remote users are refused; with none, every user the gateway
    /// authenticated may open the pipe (when remote clients are accepted at
    /// all: `reject_remote_clients(false)`).
    pub fn allow_remote_user(mut self, name: &str) -> PipeSecurity {
        self.remote_users.push(name.to_owned());
        self
    }

    /// Whether the gateway may open the pipe for remote user `user`
    /// (`DOMAIN\user` or a bare name, as it passes them).
    pub fn permits_remote(&self, user: &str) -> bool {
        if self.remote_users.is_empty() {
            return true;
        }
        let (domain, name) = user.rsplit_once('\\').unwrap_or(("", user));
        self.remote_users.iter().any(|allowed| {
            let (d, n) = allowed.rsplit_once('\\').unwrap_or(("*", allowed));
            n.eq_ignore_ascii_case(name) && (d == "*" || d.eq_ignore_ascii_case(domain))
        })
    }

    /// Refuses a user by uid, whatever else allows it.
    pub fn deny_user(mut self, uid: u32) -> PipeSecurity {
        self.deny_users.push(uid);
        self
    }

    /// Refuses members of a group, whatever else allows them.
    pub fn deny_group(mut self, gid: u32) -> PipeSecurity {
        self.deny_groups.push(gid);
        self
    }

    /// Lets another user's processes add instances of this pipe
    /// (FILE_CREATE_PIPE_INSTANCE in the first instance's DACL). Without it
    /// only the owner and root may: a name cannot be joined to catch its
    /// clients. Granted instances live in a folder of their user's own and
    /// clients accept them only while the first instance's grant says so.
    pub fn allow_create_instance_user(mut self, uid: u32) -> PipeSecurity {
        self.create_users.push(uid);
        self
    }

    /// Lets members of a group add instances (see
    /// [`allow_create_instance_user`](Self::allow_create_instance_user)).
    pub fn allow_create_instance_group(mut self, gid: u32) -> PipeSecurity {
        self.create_groups.push(gid);
        self
    }

    /// Whether a process with these credentials may add instances.
    pub fn permits_create_instance(&self, uid: u32, gid: u32, groups: &[u32]) -> bool {
        uid == self.owner
            || self.create_users.contains(&uid)
            || self.create_groups.contains(&gid)
            || groups.iter().any(|g| self.create_groups.contains(g))
    }

    /// Whether this uid is granted FILE_CREATE_PIPE_INSTANCE by name.
    pub(crate) fn grants_uid(&self, uid: u32) -> bool {
        self.create_users.contains(&uid)
    }

    /// Whether some group is granted FILE_CREATE_PIPE_INSTANCE.
    pub(crate) fn grants_any_group(&self) -> bool {
        !self.create_groups.is_empty()
    }

    /// Whether anyone beyond the owner and root may add instances.
    pub(crate) fn grants_create_instance(&self) -> bool {
        !self.create_users.is_empty() || !self.create_groups.is_empty()
    }

    /// The grants as the `security` file of a pipe's folder holds them.
    pub(crate) fn encode_grants(&self) -> String {
        let mut s = String::new();
        for u in &self.create_users {
            s.push_str(&format!("create-user {u}\n"));
        }
        for g in &self.create_groups {
            s.push_str(&format!("create-group {g}\n"));
        }
        s
    }

    /// Reads grants written by [`encode_grants`](Self::encode_grants), for
    /// a pipe whose owner is `owner`; unknown lines are ignored.
    pub(crate) fn decode_grants(owner: u32, text: &str) -> PipeSecurity {
        let mut sec = PipeSecurity {
            owner,
            ..PipeSecurity::owner_only()
        };
        for line in text.lines() {
            let mut it = line.split(' ');
            match (it.next(), it.next().and_then(|v| v.parse::<u32>().ok())) {
                (Some("create-user"), Some(u)) => sec.create_users.push(u),
                (Some("create-group"), Some(g)) => sec.create_groups.push(g),
                _ => {}
            }
        }
        sec
    }

    /// Whether a client with these credentials may open the pipe.
    pub fn permits(&self, uid: u32, gid: u32, groups: &[u32]) -> bool {
        let in_group = |list: &[u32]| list.contains(&gid) || groups.iter().any(|g| list.contains(g));
        if self.deny_users.contains(&uid) || in_group(&self.deny_groups) {
            return false;
        }
        uid == self.owner || self.everyone || self.allow_users.contains(&uid) || in_group(&self.allow_groups)
    }
}

/// Resolves a user given as a name or a numeric uid.
///
/// # Errors
/// `ERROR_NONE_MAPPED (1332)` when no such user exists.
pub fn resolve_user(user: &str) -> io::Result<u32> {
    if let Ok(uid) = user.parse::<u32>() {
        return Ok(uid);
    }
    match sys::user_by_name(user)? {
        Some(a) => Ok(a.uid),
        None => Err(err(Win32Error::ERROR_NONE_MAPPED, format!("no user named {user:?}"))),
    }
}

/// Resolves a group given as a name or a numeric gid.
///
/// # Errors
/// `ERROR_NONE_MAPPED (1332)` when no such group exists.
pub fn resolve_group(group: &str) -> io::Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match sys::group_by_name(group)? {
        Some(g) => Ok(g),
        None => Err(err(Win32Error::ERROR_NONE_MAPPED, format!("no group named {group:?}"))),
    }
}

/// Who is on the other end of a server instance: what
/// `GetNamedPipeClientProcessId` and `ImpersonateNamedPipeClient` tell on
/// Windows, taken from the kernel at connect time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientIdentity {
    /// The client's process id.
    pub pid: u32,
    /// The client's effective user id.
    pub uid: u32,
    /// The client's effective group id.
    pub gid: u32,
    /// The client's supplementary groups.
    pub groups: Vec<u32>,
    /// The user name for `uid`, when the user database has one.
    pub user: Option<String>,
    /// The client's computer name, for clients that came over the network
    /// (through the gateway; `pid`, `uid` and the rest are then the gateway's).
    pub computer: Option<String>,
    /// For clients that came over the network: who they logged on as
    /// (`DOMAIN\user`), as the gateway vouches.
    pub remote_user: Option<String>,
    /// For clients that came over the network: their address and port.
    pub remote_address: Option<String>,
}

impl ClientIdentity {
    /// Reads the peer's credentials off a connected Unix socket.
    pub(crate) fn of_peer(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<ClientIdentity> {
        // The same kernel record as a client's view of its server.
        let ServerIdentity { pid, uid, gid, user } = ServerIdentity::of_peer(fd)?;
        Ok(ClientIdentity {
            pid,
            uid,
            gid,
            groups: sys::peer_groups(fd).unwrap_or_default(),
            user,
            computer: None,
            remote_user: None,
            remote_address: None,
        })
    }
}

/// Who serves the instance a client is connected to: what
/// `GetNamedPipeServerProcessId` tells on Windows, and the server's user,
/// taken from the kernel when the client connected (a server cannot lie
/// about it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerIdentity {
    /// The server's process id.
    pub pid: u32,
    /// The server's effective user id.
    pub uid: u32,
    /// The server's effective group id.
    pub gid: u32,
    /// The user name for `uid`, when the user database has one.
    pub user: Option<String>,
}

impl ServerIdentity {
    /// Reads the listening peer's credentials off a connected Unix socket.
    pub(crate) fn of_peer(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<ServerIdentity> {
        let cred = rustix::net::sockopt::socket_peercred(fd)?;
        let uid = cred.uid.as_raw();
        Ok(ServerIdentity {
            pid: cred.pid.as_raw_nonzero().get() as u32,
            uid,
            gid: cred.gid.as_raw(),
            user: user_name(uid),
        })
    }

    /// `ERROR_NOT_SUPPORTED` for a pipe on another machine: SMB does not
    /// say which process serves it.
    pub(crate) fn remote(name: &str) -> io::Error {
        crate::error::err(
            Win32Error::ERROR_NOT_SUPPORTED,
            format!("{name} is on another machine: its server's process is not known here"),
        )
    }
}

/// The user name of a uid, remembered: the user database (often a file read
/// through NSS) is asked once per uid per process, not once per client.
pub(crate) fn user_name(uid: u32) -> Option<String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashMap<u32, Option<String>>>> = OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    if let Some(known) = names.lock().unwrap_or_else(|p| p.into_inner()).get(&uid) {
        return known.clone();
    }
    // A lookup that failed (out of descriptors, say) is not remembered:
    // the name would stay unknown for good.
    let name = match sys::user_by_uid(uid) {
        Ok(found) => found.map(|a| a.name),
        Err(_) => return None,
    };
    names
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(uid, name.clone());
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_owner_only() {
        let s = PipeSecurity::default();
        assert!(s.permits(s.owner(), 12345, &[]));
        assert!(!s.permits(s.owner().wrapping_add(1), 12345, &[]));
    }

    #[test]
    fn allow_lists_and_deny_wins() {
        let r = PipeSecurity::owner_only()
            .allow_remote_user(r"WG\alice")
            .allow_remote_user(r"*\bob");
        assert!(r.permits_remote(r"wg\ALICE") && !r.permits_remote(r"OTHER\alice"));
        assert!(r.permits_remote(r"ANY\bob") && r.permits_remote("bob"));
        assert!(!r.permits_remote("alice"), "alice without her domain is not WG\\alice");
        assert!(!r.permits_remote(r"WG\mallory") && !r.permits_remote(""));
        assert!(
            PipeSecurity::owner_only().permits_remote(r"ANY\one"),
            "no list: the gateway's users"
        );
        let s = PipeSecurity::owner_only().allow_user(1001).allow_group(50);
        assert!(s.permits(1001, 1, &[]));
        assert!(s.permits(1002, 50, &[]), "primary group");
        assert!(s.permits(1003, 1, &[7, 50]), "supplementary group");
        assert!(!s.permits(1004, 1, &[7]));
        let e = PipeSecurity::owner_only().allow_everyone().deny_group(66);
        assert!(e.permits(4242, 1, &[]));
        assert!(!e.permits(4242, 1, &[66]));
        let owner = PipeSecurity::owner_only();
        let o = owner.owner();
        assert!(!owner.deny_user(o).permits(o, 0, &[]), "deny wins even for the owner");
    }

    #[test]
    fn create_instance_grants_round_trip_through_the_security_file() {
        let s = PipeSecurity::owner_only()
            .allow_create_instance_user(1001)
            .allow_create_instance_group(50);
        assert!(s.grants_create_instance());
        // Owned by uid 4242 (not us, so root is a stranger to it).
        let back = PipeSecurity::decode_grants(4242, &s.encode_grants());
        for sec in [&s, &back] {
            assert!(sec.permits_create_instance(1001, 1, &[]));
            assert!(sec.permits_create_instance(1002, 1, &[50]));
            assert!(!sec.permits_create_instance(1003, 1, &[7]));
        }
        assert!(back.permits_create_instance(4242, 1, &[]), "the owner");
        assert!(!back.permits_create_instance(0, 1, &[]), "root only when granted");
        assert!(!PipeSecurity::owner_only().grants_create_instance());
        assert!(!PipeSecurity::decode_grants(5, "create-user x\nbogus 1\n").grants_create_instance());
    }

    #[test]
    fn users_and_groups_resolve_by_name_or_number() {
        assert_eq!(resolve_user("root").unwrap(), 0);
        assert_eq!(resolve_user("4321").unwrap(), 4321);
        assert_eq!(resolve_group("0").unwrap(), 0);
        let e = resolve_user("no-such-user-pipeslot").unwrap_err();
        assert_eq!(crate::Error::win32(&e), Some(Win32Error::ERROR_NONE_MAPPED));
    }
}
