//! The only `unsafe` in pipeslot: the few calls rustix does not wrap.
//!
//! Each function is a thin, checked wrapper: buffers are sized by the callee's
//! contract, return values are checked before any output is read.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Bytes this end has sent that the peer has not yet read out of the kernel
/// (`SIOCOUTQ` on a Unix stream socket counts the sender's unconsumed skbs).
pub(crate) fn unread_by_peer(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one c_int through the pointer, which points to a live local.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// The peer's supplementary groups at connect time (`SO_PEERGROUPS`, Linux 4.13+).
pub(crate) fn peer_groups(fd: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: the buffer holds `len` bytes; the kernel writes at most `len` and updates it.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let count = len as usize / std::mem::size_of::<libc::gid_t>();
        if r == 0 {
            groups.truncate(count);
            return Ok(groups);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ERANGE) && count > groups.len() && count < 65536 {
            groups.resize(count, 0);
            continue;
        }
        return Err(e);
    }
}

/// A user account from the system's user database (NSS, so LDAP works too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

fn passwd_call(
    f: impl Fn(*mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd) -> libc::c_int,
) -> io::Result<Option<Account>> {
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        // SAFETY: passwd is plain old data; zeroed is a valid (empty) value.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let r = f(&mut pw, buf.as_mut_ptr(), buf.len(), &mut result);
        if r == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        if result.is_null() {
            return Ok(None);
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`, alive here.
        let name = unsafe { CStr::from_ptr(pw.pw_name) }.to_string_lossy().into_owned();
        return Ok(Some(Account {
            name,
            uid: pw.pw_uid,
            gid: pw.pw_gid,
        }));
    }
}

/// Looks a user up by uid.
pub(crate) fn user_by_uid(uid: u32) -> io::Result<Option<Account>> {
    // SAFETY: every pointer comes from passwd_call and is valid for the call; buflen matches.
    passwd_call(|pw, buf, len, res| unsafe { libc::getpwuid_r(uid, pw, buf, len, res) })
}

/// Looks a user up by name.
pub(crate) fn user_by_name(name: &str) -> io::Result<Option<Account>> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: as above; `c` outlives the call.
    passwd_call(|pw, buf, len, res| unsafe { libc::getpwnam_r(c.as_ptr(), pw, buf, len, res) })
}

/// Looks a group's gid up by name.
pub(crate) fn group_by_name(name: &str) -> io::Result<Option<u32>> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: group is plain old data; zeroed is a valid (empty) value.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: all pointers are to live locals; buflen is the buffer's length.
        let r = unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut result) };
        if r == libc::ERANGE && buf.len() < 1 << 22 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        return Ok((!result.is_null()).then_some(gr.gr_gid));
    }
}

/// Registers a pipe connection with tokio's reactor.
#[cfg(feature = "tokio")]
pub(crate) fn register(conn: crate::pipe::conn::Conn) -> io::Result<tokio::io::unix::AsyncFd<crate::pipe::conn::Conn>> {
    use tokio::io::Interest;
    // Priority readiness (POLLPRI) carries a server's disconnect marker to
    // a client's reads without a poll of their own.
    let interest = Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY;
    conn.set_readiness_watched();
    // SAFETY: a Conn owns its OwnedFd for its whole life and never swaps it,
    // so as_raw_fd names the same open file description until the AsyncFd drops.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(conn, interest) }.map_err(|e| e.into_parts().1)
}

/// Registers a shared-memory connection's bell (an eventfd) with tokio's
/// reactor, for reads only.
#[cfg(feature = "tokio")]
pub(crate) fn register_bell(
    bell: std::sync::Arc<std::os::fd::OwnedFd>,
) -> io::Result<tokio::io::unix::AsyncFd<std::sync::Arc<std::os::fd::OwnedFd>>> {
    // SAFETY: the AsyncFd holds a reference to the OwnedFd, which is never
    // closed or replaced while any reference lives, so the raw fd names the
    // same eventfd until the AsyncFd drops.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(bell, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// Registers a local mailslot writer's socket with tokio's reactor.
#[cfg(feature = "tokio")]
pub(crate) fn register_mailslot_writer(
    w: crate::mailslot::local::LocalWriter,
) -> io::Result<tokio::io::unix::AsyncFd<crate::mailslot::local::LocalWriter>> {
    // SAFETY: a LocalWriter owns its socket for its whole life and never
    // swaps it (reconnecting reuses the same fd), so as_raw_fd names the same
    // open file description until the AsyncFd drops.
    unsafe { tokio::io::unix::AsyncFd::register(w) }.map_err(|e| e.into_parts().1)
}

/// One IPv4 address of a network interface (from `getifaddrs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ipv4Interface {
    pub(crate) name: String,
    pub(crate) addr: std::net::Ipv4Addr,
    /// The broadcast address, when the interface has IFF_BROADCAST.
    pub(crate) broadcast: Option<std::net::Ipv4Addr>,
    pub(crate) up: bool,
    pub(crate) loopback: bool,
}

/// Every IPv4 address of every interface (`getifaddrs`; rustix does not wrap it).
pub(crate) fn ipv4_interfaces() -> io::Result<Vec<Ipv4Interface>> {
    fn v4(sa: *const libc::sockaddr) -> Option<std::net::Ipv4Addr> {
        if sa.is_null() {
            return None;
        }
        // SAFETY: a non-null ifaddrs address points to a sockaddr whose family
        // field is valid to read; AF_INET means it is a whole sockaddr_in.
        unsafe {
            if i32::from((*sa).sa_family) != libc::AF_INET {
                return None;
            }
            let sin = &*(sa as *const libc::sockaddr_in);
            Some(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
        }
    }
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head through the pointer to a live local.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        if let Some(addr) = v4(ifa.ifa_addr) {
            let flags = ifa.ifa_flags;
            let broadcast = if flags & libc::IFF_BROADCAST as u32 != 0 {
                v4(ifa.ifa_ifu)
            } else {
                None
            };
            let name = if ifa.ifa_name.is_null() {
                String::new()
            } else {
                // SAFETY: ifa_name is a NUL-terminated string inside the list.
                unsafe { CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned()
            };
            out.push(Ipv4Interface {
                name,
                addr,
                broadcast,
                up: flags & libc::IFF_UP as u32 != 0,
                loopback: flags & libc::IFF_LOOPBACK as u32 != 0,
            });
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once; nothing borrowed from it remains.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_uid_zero() {
        let root = user_by_uid(0).unwrap().expect("every system has uid 0");
        assert_eq!(root.name, "root");
        assert_eq!(user_by_name("root").unwrap().unwrap().uid, 0);
        assert_eq!(group_by_name("root").unwrap(), Some(0));
        assert_eq!(user_by_name("no-such-user-pipeslot").unwrap(), None);
    }

    #[test]
    fn outq_counts_until_the_peer_reads() {
        use std::io::{Read, Write};
        use std::os::fd::AsFd;
        let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.write_all(b"hello").unwrap();
        assert!(unread_by_peer(a.as_fd()).unwrap() > 0);
        let mut buf = [0; 5];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(unread_by_peer(a.as_fd()).unwrap(), 0);
        // The peer is this very process: its groups are ours.
        let mut groups = peer_groups(a.as_fd()).unwrap();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
        let mut ours: Vec<u32> = line[7..].split_whitespace().map(|g| g.parse().unwrap()).collect();
        groups.sort_unstable();
        ours.sort_unstable();
        assert_eq!(groups, ours);
    }

    #[test]
    fn interfaces_include_loopback() {
        let all = ipv4_interfaces().unwrap();
        let lo = all
            .iter()
            .find(|i| i.addr == std::net::Ipv4Addr::LOCALHOST)
            .expect("127.0.0.1");
        assert!(lo.loopback && lo.up, "{lo:?}");
    }
}
