//! Remote mailslots: the Mailslot Protocol ([MS-MAIL]) over UDP.
//!
//! A remote write is one SMB1 Write Mail Slot in one RFC 1002 NetBIOS
//! datagram (built by `pipeslot_proto::wire::mailslot`), sent to UDP port 138
//! (`PIPESLOT_MAILSLOT_PORT`):
//!
//! | name                 | datagram                  | sent to                          | data limit |
//! |----------------------|---------------------------|----------------------------------|------------|
//! | `\\HOST\mailslot\…`  | Direct Unique, `HOST<00>` | HOST's address (hosts/DNS, or an IPv4 literal) | 432 − roundup4(len(PATH)) |
//! | `\\DOMAIN\mailslot\…`| Direct Group, `DOMAIN<00>`| every broadcast address          | that, and ≤ 424 |
//! | `\\*\mailslot\…`     | Direct Group, `WORKGROUP<00>` | every broadcast address      | that, and ≤ 424 |
//!
//! Datagrams leave from the service port (138) when this process runs the
//! host's receiver, as Windows' do, because peers answer request/response
//! mailslot protocols (NETLOGON) to the source port they saw (nmbd does);
//! otherwise from an ephemeral port, the header still naming 138.
//!
//! A name is a domain when it equals the workgroup (`PIPESLOT_WORKGROUP`,
//! default `WORKGROUP`) or does not resolve. Larger messages fail with
//! `ERROR_BAD_NETPATH (53)`, as on Windows. Delivery is unreliable by design:
//! a write succeeds once the datagram left this host.
//!
//! The [`DatagramReceiver`] is the other half: one per host, bound to port
//! 138, it hands each mailslot write to the local mailslot of that name
//! (case-insensitively) if that mailslot takes network messages, and drops
//! and counts everything else.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use pipeslot_proto::name::fold;
use pipeslot_proto::wire::mailslot::{build_datagram, parse_datagram, DropReason};
use pipeslot_proto::wire::netbios::{DatagramRepr, DatagramType, NetbiosName, DGM_PORT};
use pipeslot_proto::wire::smb1::{
    fits_one_datagram, max_broadcast_data_for, max_data_for, MailslotWriteRepr, WriteShape, MAILSLOT_PREFIX,
};
use pipeslot_proto::{Host, MailslotName};
use rustix::event::{PollFd, PollFlags};

use super::local::{hand_off, Handoff};
use crate::error::{err, Error, Win32Error};

/// Environment: the UDP port of the datagram service (default 138).
pub const PORT_ENV: &str = "PIPESLOT_MAILSLOT_PORT";
/// Environment: the local IPv4 address to send from and receive on
/// (default 0.0.0.0, every interface).
pub const BIND_ENV: &str = "PIPESLOT_BIND";
/// Environment: comma-separated IPv4 broadcast addresses for domain and
/// `\\*\` writes (default: the broadcast address of every up interface).
pub const BROADCAST_ENV: &str = "PIPESLOT_BROADCAST";
/// Environment: the workgroup (primary domain) `\\*\` writes go to.
pub const WORKGROUP_ENV: &str = "PIPESLOT_WORKGROUP";
/// The workgroup when `PIPESLOT_WORKGROUP` is not set.
pub const DEFAULT_WORKGROUP: &str = "WORKGROUP";

/// The receive buffer: any UDP payload fits, so nothing is ever cut.
const MAX_DATAGRAM: usize = 65536;

/// Where remote mailslot datagrams go and come from, and how they look.
/// [`NetConfig::from_env`] reads the `PIPESLOT_*` variables; the setters
/// override them (tests, the gateway): `cfg.port(13800).workgroup("MSLAB")`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetConfig {
    /// UDP port of the datagram service, on both ends (138).
    pub port: u16,
    /// Local address to send from and receive on (0.0.0.0: all). A receiver
    /// bound to one unicast address does not see broadcasts.
    pub bind: Ipv4Addr,
    /// Broadcast addresses for group writes; `None`: every up interface's.
    pub broadcast: Option<Vec<Ipv4Addr>>,
    /// The workgroup: the destination of `\\*\` writes, and a name that is
    /// always a domain.
    pub workgroup: String,
    /// Our NetBIOS computer name (the datagrams' source name): the host
    /// name's first label, upper-cased, at most 15 bytes.
    pub computer_name: String,
    /// How the SMB fields are filled: [`WriteShape::WINDOWS`] (default) or
    /// [`WriteShape::SAMBA`].
    pub shape: WriteShape,
}

impl NetConfig {
    /// The configuration the environment gives (see the `*_ENV` constants).
    ///
    /// # Errors
    /// `ERROR_INVALID_PARAMETER (87)` naming a variable that does not parse.
    pub fn from_env() -> io::Result<NetConfig> {
        NetConfig::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(get: impl Fn(&str) -> Option<String>) -> io::Result<NetConfig> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let bad =
            |k: &str, v: &str, want: &str| err(Win32Error::ERROR_INVALID_PARAMETER, format!("{k}={v:?} is not {want}"));
        let port = match var(PORT_ENV) {
            Some(v) => v.trim().parse().map_err(|_| bad(PORT_ENV, &v, "a UDP port"))?,
            None => DGM_PORT,
        };
        let bind = match var(BIND_ENV) {
            Some(v) => v.trim().parse().map_err(|_| bad(BIND_ENV, &v, "an IPv4 address"))?,
            None => Ipv4Addr::UNSPECIFIED,
        };
        let broadcast = match var(BROADCAST_ENV) {
            Some(v) => Some(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse()
                            .map_err(|_| bad(BROADCAST_ENV, &v, "a list of IPv4 addresses"))
                    })
                    .collect::<io::Result<Vec<Ipv4Addr>>>()?,
            ),
            None => None,
        };
        Ok(NetConfig {
            port,
            bind,
            broadcast,
            workgroup: var(WORKGROUP_ENV).unwrap_or_else(|| DEFAULT_WORKGROUP.to_owned()),
            computer_name: computer_name(),
            shape: WriteShape::WINDOWS,
        })
    }

    /// Sets [`NetConfig::port`].
    pub fn port(&mut self, port: u16) -> &mut Self {
        self.port = port;
        self
    }

    /// Sets [`NetConfig::bind`].
    pub fn bind(&mut self, addr: Ipv4Addr) -> &mut Self {
        self.bind = addr;
        self
    }

    /// Sets [`NetConfig::broadcast`] (an empty list: group writes fail).
    pub fn broadcast(&mut self, addrs: Vec<Ipv4Addr>) -> &mut Self {
        self.broadcast = Some(addrs);
        self
    }

    /// Sets [`NetConfig::workgroup`].
    pub fn workgroup(&mut self, workgroup: impl Into<String>) -> &mut Self {
        self.workgroup = workgroup.into();
        self
    }

    /// Sets [`NetConfig::computer_name`].
    pub fn computer_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.computer_name = name.into();
        self
    }

    /// Sets [`NetConfig::shape`].
    pub fn shape(&mut self, shape: WriteShape) -> &mut Self {
        self.shape = shape;
        self
    }
}

/// This host's NetBIOS computer name: the host name's first label,
/// upper-cased, at most 15 bytes (Windows truncates the same way).
pub(crate) fn computer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name = netbios_text(&host);
    if name.is_empty() {
        "PIPESLOT".to_owned()
    } else {
        name
    }
}

/// A host or domain name as a NetBIOS name's text: the first DNS label
/// (all of an IPv4 literal), upper-cased printable ASCII, at most 15 bytes.
fn netbios_text(host: &str) -> String {
    let host = host.trim();
    let label = if host.parse::<Ipv4Addr>().is_ok() {
        host
    } else {
        host.split('.').next().unwrap_or(host)
    };
    label
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .map(|c| c.to_ascii_uppercase())
        .take(15)
        .collect()
}

/// Where a remote writer's datagrams go.
#[derive(Debug, Clone)]
enum Target {
    /// Direct Unique to one address.
    Unique(SocketAddrV4),
    /// Direct Group to these broadcast addresses.
    Group(Vec<SocketAddrV4>),
}

/// A writer of a remote mailslot: the datagrams are prepared at open, sent
/// on each write.
#[derive(Debug)]
pub(crate) struct RemoteWriter {
    display: String,
    wire_name: String,
    target: Target,
    /// One per destination: the source address our header names.
    sources: Vec<Ipv4Addr>,
    source_name: NetbiosName,
    destination_name: NetbiosName,
    port: u16,
    bind: Ipv4Addr,
    shape: WriteShape,
    max_data: usize,
    socket: UdpSocket,
}

static DGM_ID: AtomicU16 = AtomicU16::new(0);

fn next_dgm_id() -> u16 {
    if DGM_ID.load(Ordering::Relaxed) == 0 {
        let seed = std::process::id() as u16
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() as u16)
                .unwrap_or(1);
        let _ = DGM_ID.compare_exchange(0, seed | 1, Ordering::Relaxed, Ordering::Relaxed);
    }
    DGM_ID.fetch_add(1, Ordering::Relaxed)
}

fn bad_netpath(detail: String) -> io::Error {
    err(Win32Error::ERROR_BAD_NETPATH, detail)
}

impl RemoteWriter {
    /// CreateFile on `\\HOST\mailslot\…`, `\\DOMAIN\…` or `\\*\…`: resolves
    /// the destination (DNS may take a moment) and checks the name.
    pub(crate) fn open(name: &MailslotName, cfg: &NetConfig) -> io::Result<RemoteWriter> {
        let display = name.to_string();
        let wire_name = name.wire_name();
        if !wire_name.is_ascii() {
            return Err(err(
                Win32Error::ERROR_INVALID_NAME,
                format!("{display}: a remote mailslot name must be ASCII (the protocol carries OEM names)"),
            ));
        }
        let (target, dest_text, group) = match name.host() {
            Host::Broadcast => (
                Target::Group(broadcast_targets(cfg, &display)?),
                cfg.workgroup.clone(),
                true,
            ),
            Host::Server(host) => match resolve(host, cfg) {
                Some(addr) => (Target::Unique(addr), host.clone(), false),
                None => (Target::Group(broadcast_targets(cfg, &display)?), host.clone(), true),
            },
            _ => {
                return Err(err(
                    Win32Error::ERROR_INVALID_NAME,
                    format!("{display} is not a remote mailslot name"),
                ))
            }
        };
        let max_data = if group {
            max_broadcast_data_for(&wire_name)
        } else {
            max_data_for(&wire_name)
        }
        .filter(|&max| fits_one_datagram(&wire_name, max))
        .ok_or_else(|| bad_netpath(format!("{display}: the name leaves no room for data in a datagram")))?;
        let netbios = |text: &str, what: &str| {
            NetbiosName::new(&netbios_text(text), 0x00)
                .map_err(|_| bad_netpath(format!("{display}: {what} {text:?} is not a NetBIOS name")))
        };
        let destination_name = netbios(&dest_text, "the destination")?;
        let source_name = netbios(&cfg.computer_name, "the computer name")?;
        let socket = UdpSocket::bind((cfg.bind, 0))
            .map_err(|e| Error::from_io(&e, format!("{display}: cannot bind a UDP socket on {}", cfg.bind)))?;
        socket.set_broadcast(true)?;
        let dests: Vec<SocketAddrV4> = match &target {
            Target::Unique(a) => vec![*a],
            Target::Group(v) => v.clone(),
        };
        let sources = dests
            .iter()
            .map(|d| source_for(cfg.bind, *d))
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| bad_netpath(format!("{display}: no route to the destination: {e}")))?;
        Ok(RemoteWriter {
            display,
            wire_name,
            target,
            sources,
            source_name,
            destination_name,
            port: cfg.port,
            bind: cfg.bind,
            shape: cfg.shape,
            max_data,
            socket,
        })
    }

    /// The most data one write may carry.
    pub(crate) fn max_data(&self) -> usize {
        self.max_data
    }

    /// Builds the datagram of `msg` for the destination at `index`.
    pub(crate) fn datagram(&self, msg: &[u8], index: usize) -> io::Result<Vec<u8>> {
        if msg.len() > self.max_data {
            return Err(bad_netpath(format!(
                "a message of {} bytes is larger than the {} bytes one mailslot datagram to {} carries",
                msg.len(),
                self.max_data,
                self.display
            )));
        }
        let msg_type = match self.target {
            Target::Unique(_) => DatagramType::DIRECT_UNIQUE,
            Target::Group(_) => DatagramType::DIRECT_GROUP,
        };
        let source_ip = self.sources.get(index).copied().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let datagram = DatagramRepr::new(
            msg_type,
            next_dgm_id(),
            source_ip,
            self.port,
            self.source_name,
            self.destination_name,
        );
        let mut write = MailslotWriteRepr::new(self.wire_name.as_str(), msg);
        write.shape = self.shape;
        build_datagram(&datagram, &write)
            .map_err(|e| bad_netpath(format!("{}: cannot build the datagram: {e}", self.display)))
    }

    /// WriteFile: one datagram to each destination. Fails only when none
    /// could be sent.
    pub(crate) fn write(&self, msg: &[u8]) -> io::Result<()> {
        let dests: Vec<SocketAddrV4> = match &self.target {
            Target::Unique(a) => vec![*a],
            Target::Group(v) => v.clone(),
        };
        // From the service port when this process runs the receiver, as
        // Windows sends from 138: peers answer to the source port (nmbd does).
        let service = service_socket(self.port, self.bind);
        let socket = service.as_deref().unwrap_or(&self.socket);
        let mut last = None;
        let mut sent = 0;
        for (i, dest) in dests.iter().enumerate() {
            let dgram = self.datagram(msg, i)?;
            match socket.send_to(&dgram, dest) {
                Ok(_) => sent += 1,
                Err(e) => {
                    tracing::debug!(mailslot = self.display, %dest, error = %e, "mailslot datagram not sent");
                    last = Some(e);
                }
            }
        }
        match last {
            Some(e) if sent == 0 => Err(bad_netpath(format!("cannot send to {}: {e}", self.display))),
            _ => Ok(()),
        }
    }
}

/// The socket of the receiver this process runs, if any: the datagram
/// service's own port, which writers send from.
static SERVICE: Mutex<Option<Arc<UdpSocket>>> = Mutex::new(None);

fn service() -> std::sync::MutexGuard<'static, Option<Arc<UdpSocket>>> {
    SERVICE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The service socket, if it is bound to `port` on `bind` (or on all).
fn service_socket(port: u16, bind: Ipv4Addr) -> Option<Arc<UdpSocket>> {
    let s = service().clone()?;
    match s.local_addr().ok()? {
        SocketAddr::V4(a) if a.port() == port && (bind.is_unspecified() || *a.ip() == bind) => Some(s),
        _ => None,
    }
}

/// Makes `socket` the one writers send from, unless another is.
fn register_service(socket: &Arc<UdpSocket>) {
    let mut s = service();
    if s.is_none() {
        *s = Some(Arc::clone(socket));
    }
}

/// Stops sending from `socket`.
fn unregister_service(socket: &Arc<UdpSocket>) {
    let mut s = service();
    if s.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, socket)) {
        *s = None;
    }
}

/// HOST as one address: an IPv4 literal, or a name the resolver knows.
/// `None` for the workgroup and for names that do not resolve (domains).
fn resolve(host: &str, cfg: &NetConfig) -> Option<SocketAddrV4> {
    if fold(host) == fold(&cfg.workgroup) {
        return None;
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(SocketAddrV4::new(ip, cfg.port));
    }
    (host, cfg.port).to_socket_addrs().ok()?.find_map(|a| match a {
        SocketAddr::V4(v4) => Some(v4),
        SocketAddr::V6(_) => None,
    })
}

/// The broadcast destinations of a group write.
fn broadcast_targets(cfg: &NetConfig, display: &str) -> io::Result<Vec<SocketAddrV4>> {
    let addrs: BTreeSet<Ipv4Addr> = match &cfg.broadcast {
        Some(list) => list.iter().copied().collect(),
        None => crate::sys::ipv4_interfaces()?
            .into_iter()
            .filter(|i| i.up && !i.loopback)
            .filter(|i| cfg.bind.is_unspecified() || i.addr == cfg.bind)
            .filter_map(|i| i.broadcast)
            .collect(),
    };
    if addrs.is_empty() {
        return Err(bad_netpath(format!(
            "{display}: no up IPv4 interface has a broadcast address (set {BROADCAST_ENV})"
        )));
    }
    Ok(addrs.into_iter().map(|a| SocketAddrV4::new(a, cfg.port)).collect())
}

/// The address our datagrams to `dest` leave from (the header's SOURCE_IP).
fn source_for(bind: Ipv4Addr, dest: SocketAddrV4) -> io::Result<Ipv4Addr> {
    if !bind.is_unspecified() {
        return Ok(bind);
    }
    let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    probe.set_broadcast(true)?;
    probe.connect(dest)?;
    match probe.local_addr()? {
        SocketAddr::V4(a) => Ok(*a.ip()),
        SocketAddr::V6(_) => Ok(Ipv4Addr::UNSPECIFIED),
    }
}

/// Why the receiver did not deliver a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropCause {
    /// A NetBIOS fragment or a multi-packet transaction (never reassembled).
    Fragment,
    /// Truncated or malformed bytes.
    Malformed,
    /// Well-formed, but not a mailslot write (another datagram type, SMB
    /// command, transaction or name).
    NotMailslot,
    /// No local mailslot of that name takes network messages.
    NoMailslot,
    /// Over the local mailslot's maximum message size.
    TooBig,
    /// The local mailslot's queue is full (its reader is not reading).
    QueueFull,
}

impl DropCause {
    /// A short fixed label for logs.
    pub fn label(self) -> &'static str {
        match self {
            DropCause::Fragment => "fragment",
            DropCause::Malformed => "malformed",
            DropCause::NotMailslot => "not-mailslot",
            DropCause::NoMailslot => "no-mailslot",
            DropCause::TooBig => "too-big",
            DropCause::QueueFull => "queue-full",
        }
    }

    fn of(reason: &DropReason) -> DropCause {
        match reason {
            DropReason::Fragment | DropReason::MultiPacket => DropCause::Fragment,
            DropReason::Malformed(_) => DropCause::Malformed,
            _ => DropCause::NotMailslot,
        }
    }
}

/// What the receiver did with one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Handed to the local mailslot `\\.\mailslot\<path>` (path as sent).
    Delivered {
        /// `[PATH\]NAME` after `\MAILSLOT\`, as the sender spelled it.
        path: String,
        /// Message bytes.
        len: usize,
    },
    /// Dropped, and counted under this cause.
    Dropped(DropCause),
}

/// The receiver's counters. `received` = `delivered` + every `dropped_*`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiverCounters {
    /// Datagrams received.
    pub received: u64,
    /// Messages handed to a local mailslot.
    pub delivered: u64,
    /// Fragments and multi-packet transactions.
    pub dropped_fragment: u64,
    /// Truncated or malformed datagrams.
    pub dropped_malformed: u64,
    /// Datagrams that are not mailslot writes.
    pub dropped_not_mailslot: u64,
    /// Writes to a name no local network mailslot has.
    pub dropped_no_mailslot: u64,
    /// Writes over the local mailslot's maximum message size.
    pub dropped_too_big: u64,
    /// Writes to a mailslot whose queue was full.
    pub dropped_queue_full: u64,
}

impl ReceiverCounters {
    /// Every dropped datagram, whatever the cause.
    pub fn dropped(&self) -> u64 {
        self.dropped_fragment
            + self.dropped_malformed
            + self.dropped_not_mailslot
            + self.dropped_no_mailslot
            + self.dropped_too_big
            + self.dropped_queue_full
    }
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    delivered: AtomicU64,
    dropped: [AtomicU64; 6],
}

impl Counters {
    fn count(&self, v: &Verdict) {
        self.received.fetch_add(1, Ordering::Relaxed);
        let slot = match v {
            Verdict::Delivered { .. } => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Verdict::Dropped(DropCause::Fragment) => 0,
            Verdict::Dropped(DropCause::Malformed) => 1,
            Verdict::Dropped(DropCause::NotMailslot) => 2,
            Verdict::Dropped(DropCause::NoMailslot) => 3,
            Verdict::Dropped(DropCause::TooBig) => 4,
            Verdict::Dropped(DropCause::QueueFull) => 5,
        };
        self.dropped[slot].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ReceiverCounters {
        let d = |i: usize| self.dropped[i].load(Ordering::Relaxed);
        ReceiverCounters {
            received: self.received.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped_fragment: d(0),
            dropped_malformed: d(1),
            dropped_not_mailslot: d(2),
            dropped_no_mailslot: d(3),
            dropped_too_big: d(4),
            dropped_queue_full: d(5),
        }
    }
}

/// The host's mailslot datagram service: receives Mailslot Protocol
/// datagrams on UDP port 138 and hands each write to the local mailslot of
/// that name, if it was created with [`network(true)`]. Everything else —
/// fragments, malformed bytes, other datagrams, unknown names — is dropped,
/// counted and logged at debug level; nothing is ever answered.
///
/// One runs per host: a network mailslot starts one in-process when none
/// runs, and a gateway may host one (bind it, then [`spawn`] or [`run`]).
///
/// ```
/// # std::env::set_var("PIPESLOT_DIR", std::env::temp_dir().join(format!("pipeslot-doc-recv-{}", std::process::id())));
/// # std::env::set_var("PIPESLOT_BIND", "127.0.0.1"); // the in-process receiver: loopback,
/// # std::env::set_var("PIPESLOT_MAILSLOT_PORT", "0"); // any port (a doc test, not a host)
/// use pipeslot::blocking::MailslotOptions;
/// use pipeslot::mailslot::{DatagramReceiver, NetConfig, Verdict};
/// let slot = MailslotOptions::new().network(true).create(r"\\.\mailslot\doc\recv")?;
/// let mut cfg = NetConfig::from_env()?;
/// cfg.bind("127.0.0.1".parse().unwrap()).port(0); // a test port; 138 in real life
/// let receiver = DatagramReceiver::bind(&cfg)?;
/// // A datagram as Windows would send it (see MailslotWriter for the sender).
/// let hex = include_str!("../../../pipeslot-proto/testdata/mailslot/v8_win_msmail_example.hex");
/// let bytes: Vec<u8> = (0..hex.trim().len()).step_by(2)
///     .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
/// assert!(matches!(receiver.handle_datagram(&bytes), Verdict::Dropped(_))); // \test1\sample_mailslot: none here
/// assert_eq!(receiver.counters().dropped_no_mailslot, 1);
/// # drop(slot);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// [`network(true)`]: super::MailslotOptions::network
/// [`spawn`]: DatagramReceiver::spawn
/// [`run`]: DatagramReceiver::run
#[derive(Debug)]
pub struct DatagramReceiver {
    socket: Arc<UdpSocket>,
    unix: UnixDatagram,
    counters: Arc<Counters>,
}

impl DatagramReceiver {
    /// Binds the service's UDP port on `config.bind`.
    ///
    /// # Errors
    /// `ERROR_ALREADY_EXISTS (183)` when the port is taken (another receiver
    /// runs on this host); `ERROR_ACCESS_DENIED (5)` when binding a port
    /// below 1024 needs root or CAP_NET_BIND_SERVICE.
    pub fn bind(config: &NetConfig) -> io::Result<DatagramReceiver> {
        let addr = SocketAddrV4::new(config.bind, config.port);
        let socket = UdpSocket::bind(addr).map_err(|e| -> io::Error {
            match e.raw_os_error() {
                Some(libc::EADDRINUSE) => err(
                    Win32Error::ERROR_ALREADY_EXISTS,
                    format!("UDP {addr} is taken: another mailslot datagram receiver runs on this host"),
                ),
                Some(libc::EACCES) => err(
                    Win32Error::ERROR_ACCESS_DENIED,
                    format!("binding UDP {addr} needs root or CAP_NET_BIND_SERVICE (or set {PORT_ENV})"),
                ),
                _ => Error::from_io(&e, format!("cannot bind UDP {addr}")).into(),
            }
        })?;
        DatagramReceiver::from_socket(socket)
    }

    /// A receiver on a socket the caller bound.
    ///
    /// # Errors
    /// When the local datagram socket for hand-offs cannot be made.
    pub fn from_socket(socket: UdpSocket) -> io::Result<DatagramReceiver> {
        let unix = UnixDatagram::unbound()?;
        unix.set_nonblocking(true)?;
        // Writers in this process send from this socket, broadcasts too.
        socket.set_broadcast(true)?;
        Ok(DatagramReceiver {
            socket: Arc::new(socket),
            unix,
            counters: Arc::new(Counters::default()),
        })
    }

    /// The address the receiver is bound to.
    ///
    /// # Errors
    /// As `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The counters so far.
    pub fn counters(&self) -> ReceiverCounters {
        self.counters.snapshot()
    }

    /// Processes one UDP payload (as received on the port): parse, hand to
    /// the local mailslot, count. Never panics, whatever the bytes.
    pub fn handle_datagram(&self, payload: &[u8]) -> Verdict {
        let verdict = match parse_datagram(payload) {
            Err(reason) => {
                tracing::debug!(reason = reason.label(), detail = %reason, len = payload.len(), "mailslot datagram dropped");
                Verdict::Dropped(DropCause::of(&reason))
            }
            Ok((_, write)) => {
                let path = write.name().get(MAILSLOT_PREFIX.len()..).unwrap_or_default().to_owned();
                let data = write.data();
                match hand_off(&self.unix, &path, data) {
                    Handoff::Delivered => Verdict::Delivered { path, len: data.len() },
                    other => {
                        let cause = match other {
                            Handoff::TooBig => DropCause::TooBig,
                            Handoff::Full => DropCause::QueueFull,
                            _ => DropCause::NoMailslot,
                        };
                        tracing::debug!(reason = cause.label(), mailslot = %path, len = data.len(), "mailslot datagram dropped");
                        Verdict::Dropped(cause)
                    }
                }
            }
        };
        self.counters.count(&verdict);
        verdict
    }

    /// Waits up to `timeout` (`None`: forever) for one datagram and handles
    /// it. `Ok(None)` when the time ran out.
    ///
    /// # Errors
    /// A failing socket.
    pub fn receive(&self, timeout: Option<Duration>) -> io::Result<Option<(SocketAddr, Verdict)>> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        self.receive_into(&mut buf, timeout)
    }

    fn receive_into(&self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<Option<(SocketAddr, Verdict)>> {
        let ts = timeout.map(|d| rustix::event::Timespec {
            tv_sec: d.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: d.subsec_nanos().into(),
        });
        let mut fds = [PollFd::new(&*self.socket, PollFlags::IN)];
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let (n, from) = match rustix::net::recvfrom(&*self.socket, &mut *buf, rustix::net::RecvFlags::DONTWAIT) {
            Ok((got, _, Some(from))) => {
                let from = SocketAddr::try_from(from).unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                (got, from)
            }
            Ok((got, _, None)) => (got, SocketAddr::from(([0, 0, 0, 0], 0))),
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let verdict = self.handle_datagram(buf.get(..n).unwrap_or_default());
        Ok(Some((from, verdict)))
    }

    /// Serves until the socket fails.
    ///
    /// # Errors
    /// A failing socket.
    pub fn run(&self) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            self.receive_into(&mut buf, None)?;
        }
    }

    /// Serves on a thread until the handle is dropped.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn spawn(self) -> io::Result<ReceiverHandle> {
        let local_addr = self.local_addr()?;
        let counters = Arc::clone(&self.counters);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let socket = Arc::clone(&self.socket);
        let thread = std::thread::Builder::new()
            .name("pipeslot-dgram".into())
            .spawn(move || serve_until(&self, &stop2))?;
        register_service(&socket);
        Ok(ReceiverHandle {
            local_addr,
            counters,
            socket,
            stop,
            thread: Some(thread),
        })
    }
}

fn serve_until(r: &DatagramReceiver, stop: &AtomicBool) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = r.receive_into(&mut buf, Some(Duration::from_millis(100))) {
            tracing::debug!(error = %e, "mailslot datagram receiver: socket error");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A [`DatagramReceiver`] serving on its own thread; dropping it stops it.
#[derive(Debug)]
pub struct ReceiverHandle {
    local_addr: SocketAddr,
    counters: Arc<Counters>,
    socket: Arc<UdpSocket>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ReceiverHandle {
    /// The address the receiver is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The counters so far.
    pub fn counters(&self) -> ReceiverCounters {
        self.counters.snapshot()
    }
}

impl Drop for ReceiverHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        unregister_service(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The in-process receiver's address and counters (see
/// [`embedded_receiver`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiverStatus {
    /// Where it is bound.
    pub local_addr: SocketAddr,
    /// What it has done.
    pub counters: ReceiverCounters,
}

/// The in-process receiver network mailslots start: serving while this
/// process has one, retrying the port while another process holds it.
struct Embedded {
    users: usize,
    running: bool,
    current: Option<(SocketAddr, Arc<Counters>)>,
}

static EMBEDDED: Mutex<Embedded> = Mutex::new(Embedded {
    users: 0,
    running: false,
    current: None,
});
static WARNED: AtomicBool = AtomicBool::new(false);

fn embedded() -> std::sync::MutexGuard<'static, Embedded> {
    EMBEDDED.lock().unwrap_or_else(|p| p.into_inner())
}

/// The receiver this process runs for its network mailslots, if it holds
/// the port now (another process or a gateway may be the host's receiver).
pub fn embedded_receiver() -> Option<ReceiverStatus> {
    let e = embedded();
    e.current.as_ref().map(|(addr, c)| ReceiverStatus {
        local_addr: *addr,
        counters: c.snapshot(),
    })
}

/// Held by each network mailslot: keeps the in-process receiver going.
#[derive(Debug)]
pub(crate) struct EmbeddedGuard(());

impl EmbeddedGuard {
    pub(crate) fn acquire() -> EmbeddedGuard {
        let mut e = embedded();
        e.users += 1;
        if !e.running {
            // Bind now, so a mailslot created with network reception receives
            // from the moment create returns.
            let first = NetConfig::from_env().and_then(|c| DatagramReceiver::bind(&c));
            if let Ok(r) = &first {
                if let Ok(addr) = r.local_addr() {
                    e.current = Some((addr, Arc::clone(&r.counters)));
                }
                register_service(&r.socket);
            }
            let started = std::thread::Builder::new()
                .name("pipeslot-dgram".into())
                .spawn(move || embedded_thread(first));
            match started {
                Ok(_) => e.running = true,
                Err(err) => {
                    e.current = None;
                    tracing::warn!(error = %err, "cannot start the mailslot datagram receiver");
                }
            }
        }
        EmbeddedGuard(())
    }
}

impl Drop for EmbeddedGuard {
    fn drop(&mut self) {
        let mut e = embedded();
        e.users = e.users.saturating_sub(1);
    }
}

/// Serves while network mailslots exist; when the port is taken, tries
/// again every half second (the holder may exit).
fn embedded_thread(mut attempt: io::Result<DatagramReceiver>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match attempt {
            Ok(r) => {
                let addr = r.local_addr().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                tracing::debug!(%addr, "mailslot datagram receiver started");
                embedded().current = Some((addr, Arc::clone(&r.counters)));
                register_service(&r.socket);
                loop {
                    {
                        let mut e = embedded();
                        if e.users == 0 {
                            e.running = false;
                            e.current = None;
                            unregister_service(&r.socket);
                            return;
                        }
                    }
                    if let Err(err) = r.receive_into(&mut buf, Some(Duration::from_millis(100))) {
                        tracing::debug!(error = %err, "mailslot datagram receiver: socket error");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
            Err(err) => {
                if Error::win32(&err) == Some(Win32Error::ERROR_ALREADY_EXISTS) {
                    tracing::debug!(error = %err, "another mailslot datagram receiver runs; standing by");
                } else if !WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %err, "network mailslots will not receive until this works");
                }
                for _ in 0..5 {
                    std::thread::sleep(Duration::from_millis(100));
                    let mut e = embedded();
                    if e.users == 0 {
                        e.running = false;
                        return;
                    }
                }
                attempt = NetConfig::from_env().and_then(|c| DatagramReceiver::bind(&c));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netbios_names_from_hosts() {
        assert_eq!(netbios_text("server1.corp.example"), "SERVER1");
        assert_eq!(netbios_text("10.99.0.1"), "10.99.0.1");
        assert_eq!(netbios_text("a-very-long-host-name-indeed"), "A-VERY-LONG-HOS");
        assert!(!computer_name().is_empty());
        assert!(computer_name().len() <= 15);
    }

    #[test]
    fn the_environment_is_parsed_or_named() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        let d = NetConfig::from_vars(vars(&[])).unwrap();
        assert_eq!(
            (d.port, d.bind, d.broadcast.clone()),
            (138, Ipv4Addr::UNSPECIFIED, None)
        );
        assert_eq!((d.workgroup.as_str(), d.shape), ("WORKGROUP", WriteShape::WINDOWS));
        let c = NetConfig::from_vars(vars(&[
            (PORT_ENV, "13800"),
            (BIND_ENV, "10.0.0.2"),
            (BROADCAST_ENV, "10.0.0.255, 10.1.255.255,"),
            (WORKGROUP_ENV, "MSLAB"),
        ]))
        .unwrap();
        assert_eq!((c.port, c.bind), (13800, Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(
            c.broadcast,
            Some(vec![Ipv4Addr::new(10, 0, 0, 255), Ipv4Addr::new(10, 1, 255, 255)])
        );
        assert_eq!(c.workgroup, "MSLAB");
        for bad in [(PORT_ENV, "http"), (BIND_ENV, "::1"), (BROADCAST_ENV, "10.0.0.255;x")] {
            let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([bad]));
            let e = NetConfig::from_vars(vars(pairs)).unwrap_err();
            assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_INVALID_PARAMETER));
            assert!(e.to_string().contains(bad.0), "{e}");
        }
    }

    #[test]
    fn the_workgroup_and_literals_never_touch_dns() {
        let mut cfg = NetConfig::from_env().unwrap();
        cfg.workgroup("MSLAB").port(13800);
        assert_eq!(resolve("mslab", &cfg), None);
        assert_eq!(
            resolve("10.1.2.3", &cfg),
            Some(SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 13800))
        );
    }

    #[test]
    fn counters_add_up() {
        let c = Counters::default();
        c.count(&Verdict::Delivered {
            path: "x".into(),
            len: 1,
        });
        c.count(&Verdict::Dropped(DropCause::Fragment));
        c.count(&Verdict::Dropped(DropCause::QueueFull));
        let s = c.snapshot();
        assert_eq!(s.received, 3);
        assert_eq!(s.delivered + s.dropped(), s.received);
        assert_eq!(DropCause::TooBig.label(), "too-big");
    }
}
