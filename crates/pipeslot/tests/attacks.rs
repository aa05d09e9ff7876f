//! Another local user attacks the namespace (docs/SECURITY.md): the
//! attacker runs as `nobody` (uid 65534) in a child process and tries every
//! trick on pipes and mailslots of this process (root) or of a third user
//! (uid 65533). Each trick is refused: by the file system (the victim's
//! folders are not writable by others), and where the harness plants the
//! attacker's sockets itself (as if a folder had been writable), by the
//! client's checks of whose socket it is. The victim's traffic reaches only
//! the victim's server, and no open is slower than 100 ms for it.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pipeslot::blocking::{ClientOptions, MailslotOptions, MailslotWriter, ServerOptions};
use pipeslot::{PipeMode, Win32Error};
use sha2::{Digest, Sha256};

use crate::util::{self, assert_win32, can_switch_uid, child_args, report, Peer, SECOND};

const NOBODY: u32 = 65534;
const THIRD: u32 = 65533;
const FAST: Duration = Duration::from_millis(100);

/// The folder a name's objects live in: `p-` or `m-` and the name's hash.
fn entry(prefix: &str, folded: &str) -> PathBuf {
    let d = Sha256::digest(folded.as_bytes());
    let hex: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    util::root().join(format!("{prefix}{hex}"))
}

pub(crate) fn pipe_dir(name: &str) -> PathBuf {
    entry("p-", pipeslot::PipeName::parse(name).unwrap().folded())
}

fn slot_dir(name: &str) -> PathBuf {
    entry("m-", pipeslot::MailslotName::parse(name).unwrap().folded())
}

fn errno_name(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::EPERM) => "EPERM".into(),
        Some(n) => format!("errno {n}"),
        None => format!("{e}"),
    }
}

/// The attacker: performs args[0] on the paths that follow and reports
/// "ok" or the errno; the listening tricks then stay alive until killed.
///
/// - `mkdir P`, `file P`, `fifo P`, `symlink TARGET P`, `link FROM P`, `rename FROM P`
/// - `fake P`: a fake server at P that reports `conn N` for every
///   connection it gets (N: bytes the client sent before closing)
/// - `silent P`: a listener at P that never accepts
/// - `hold-lock P`: opens P and holds an exclusive flock on it
/// - `fake-slot DIR`: a planted mailslot folder: reader.lock held, a
///   reader.sock that reports every datagram as `dgram TEXT`
#[test]
#[ignore]
fn attacker() {
    if std::env::var("PIPESLOT_CHILD").as_deref() != Ok("attacker") {
        return;
    }
    let a = child_args().unwrap();
    let p = |i: usize| PathBuf::from(&a[i]);
    let done = |r: std::io::Result<()>| match r {
        Ok(()) => report("ok"),
        Err(e) => report(errno_name(&e)),
    };
    match a[0].as_str() {
        "mkdir" => done(
            std::fs::create_dir(p(1))
                .and_then(|()| std::fs::set_permissions(p(1), std::fs::Permissions::from_mode(0o777))),
        ),
        "file" => done(std::fs::write(p(1), b"planted")),
        "fifo" => done(
            rustix::fs::mknodat(
                rustix::fs::CWD,
                p(1),
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o666),
                0,
            )
            .map_err(Into::into),
        ),
        "symlink" => done(std::os::unix::fs::symlink(p(1), p(2))),
        "link" => done(std::fs::hard_link(p(1), p(2))),
        "rename" => done(std::fs::rename(p(1), p(2))),
        "fake" => match UnixListener::bind(p(1)) {
            Err(e) => report(errno_name(&e)),
            Ok(l) => {
                let _ = std::fs::set_permissions(p(1), std::fs::Permissions::from_mode(0o777));
                report("ok");
                for mut s in l.incoming().flatten() {
                    let mut got = Vec::new();
                    let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
                    let _ = s.read_to_end(&mut got);
                    report(format!("conn {}", got.len()));
                }
            }
        },
        "silent" => match UnixListener::bind(p(1)) {
            Err(e) => report(errno_name(&e)),
            Ok(_l) => {
                let _ = std::fs::set_permissions(p(1), std::fs::Permissions::from_mode(0o777));
                report("ok");
                std::thread::sleep(Duration::from_secs(600));
            }
        },
        "hold-lock" => match std::fs::File::open(p(1)) {
            Err(e) => report(errno_name(&e)),
            Ok(f) => match rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive) {
                Err(e) => report(errno_name(&e.into())),
                Ok(()) => {
                    report("ok");
                    std::thread::sleep(Duration::from_secs(600));
                }
            },
        },
        "fake-slot" => {
            let dir = p(1);
            let made = std::fs::create_dir(&dir)
                .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)))
                .and_then(|()| std::fs::write(dir.join("reader.lock"), b""))
                .and_then(|()| std::fs::write(dir.join("meta"), "max=0\nlimit=4194304\nnetwork=1\npid=1\n"));
            if let Err(e) = made {
                return report(errno_name(&e));
            }
            let lock = std::fs::File::open(dir.join("reader.lock")).unwrap();
            rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
            let sock = std::os::unix::net::UnixDatagram::bind(dir.join("reader.sock")).unwrap();
            let _ = std::fs::set_permissions(dir.join("reader.sock"), std::fs::Permissions::from_mode(0o777));
            report("ok");
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                report(format!("dgram {}", String::from_utf8_lossy(&buf[..n])));
            }
        }
        // `spoof DIR NAME`: opens NAME at the socket in DIR claiming to be
        // the gateway: the REMOTE flag and a remote user it is not.
        "spoof" => {
            use pipeslot_proto::wire::local::{hello_ext, hello_flags};
            let mut s = raw_open(
                &p(1),
                &a[2],
                hello_flags::READ | hello_flags::WRITE | hello_flags::REMOTE,
                hello_ext::encode(&[(hello_ext::REMOTE_USER, r"CORP\admin")]),
            );
            let mut reply = [0u8; 40];
            s.read_exact(&mut reply).unwrap();
            report("ok");
            std::thread::sleep(Duration::from_secs(600));
        }
        // `shm-scribble DIR NAME`: opens NAME offering shared memory, then
        // writes garbage over the whole segment it is handed (through the
        // memfd: no mapping needed), rings both bells and sends junk on the
        // socket, again and again, and stays connected.
        "shm-scribble" => {
            use pipeslot_proto::wire::local::{data_path, hello_flags, Reply, REPLY_LEN};
            let mut s = raw_open(
                &p(1),
                &a[2],
                hello_flags::READ | hello_flags::WRITE | hello_flags::SHM,
                Vec::new(),
            );
            let mut reply = [0u8; REPLY_LEN];
            let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(3))];
            let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
            let got = rustix::net::recvmsg(
                &s,
                &mut [std::io::IoSliceMut::new(&mut reply)],
                &mut control,
                rustix::net::RecvFlags::CMSG_CLOEXEC,
            )
            .unwrap();
            let mut fds = Vec::new();
            for msg in control.drain() {
                if let rustix::net::RecvAncillaryMessage::ScmRights(f) = msg {
                    fds.extend(f);
                }
            }
            let r = Reply::parse(&reply[..got.bytes]).unwrap();
            if r.data_path != data_path::SHM || fds.len() != 3 {
                return report(format!("no segment: data path {} with {} fds", r.data_path, fds.len()));
            }
            let len = rustix::fs::fstat(&fds[0]).unwrap().st_size as u64;
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let mut junk = vec![0u8; 4096];
            report("ok shm");
            for round in 0..200u64 {
                for b in junk.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
                // Every page in turn, and the header (counters, flags) each round.
                let at = (round * 4096) % len;
                let _ = rustix::io::pwrite(&fds[0], &junk, at);
                let _ = rustix::io::pwrite(&fds[0], &junk[..512], 0);
                let _ = rustix::io::pwrite(&fds[0], &[0xff; 64], (round * 64) % 4096);
                for bell in &fds[1..] {
                    let _ = rustix::io::write(bell, &1u64.to_ne_bytes());
                }
                let _ = std::io::Write::write_all(&mut s, &junk[..16]);
                std::thread::sleep(Duration::from_millis(1));
            }
            report("scribbled");
            std::thread::sleep(Duration::from_secs(600));
        }
        other => report(format!("unknown trick {other}")),
    }
}

/// Connects to the server socket in `dir` and sends an OPEN hello for
/// `name` with these flags and extensions, as a client would by hand.
fn raw_open(dir: &std::path::Path, name: &str, flags: u16, extensions: Vec<u8>) -> std::os::unix::net::UnixStream {
    use pipeslot_proto::wire::local::{Hello, Request};
    let sock = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "sock"))
        .expect("a server socket");
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    let hello = Hello {
        request: Request::OPEN,
        flags,
        pid: std::process::id(),
        name: name.to_owned(),
        extensions,
    }
    .to_vec()
    .unwrap();
    std::io::Write::write_all(&mut s, &hello).unwrap();
    s
}

/// Runs one trick as `nobody`; the attacker (alive until dropped) and its
/// first report.
fn attack(args: &[&str]) -> (Peer, String) {
    attack_as(NOBODY, args)
}

fn attack_as(uid: u32, args: &[&str]) -> (Peer, String) {
    let p = Peer::spawn_as_user("attacks::attacker", args, &[], Some(uid));
    let said = p.expect_line(20 * SECOND);
    (p, said)
}

/// A pipe served by this process (root): message mode, replying `root:MSG`
/// to every message, one instance per thread.
fn serve_root(name: &str, instances: usize) {
    for _ in 0..instances {
        let s = ServerOptions::new()
            .pipe_mode(PipeMode::Message)
            .max_instances(instances)
            .create(name)
            .unwrap();
        std::thread::spawn(move || loop {
            if s.connect().is_err() {
                return;
            }
            let mut buf = [0u8; 512];
            while let Ok(m) = s.read_msg(&mut buf) {
                let mut reply = b"root:".to_vec();
                reply.extend_from_slice(&buf[..m.len]);
                if s.write_msg(&reply).is_err() {
                    break;
                }
            }
            let _ = s.disconnect();
        });
    }
}

fn transact_root(name: &str) -> Vec<u8> {
    let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(name).unwrap();
    let mut reply = [0u8; 512];
    let r = c.transact(b"hello", &mut reply).unwrap();
    reply[..r.len].to_vec()
}

/// The attacker's own scratch folder (its sockets start there).
fn attacker_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pipeslot-attacker-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let v = f();
    assert!(
        t.elapsed() < FAST,
        "{what} took {:?} because of the attacker",
        t.elapsed()
    );
    v
}

#[test]
fn moved_linked_and_symlinked_sockets_of_another_user_never_capture_clients() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("capture");
    serve_root(&name, 1);
    let holder = ClientOptions::new().open(&name).unwrap(); // the one instance is busy
    let folder = pipe_dir(&name);
    let mine = attacker_dir("capture");
    let fake = mine.join("fake.sock");
    let (fake_server, said) = attack(&["fake", fake.to_str().unwrap()]);
    assert_eq!(said, "ok");

    // The attacker cannot put anything in the victim's folder.
    for (trick, dst) in [("rename", "moved.sock"), ("link", "hard.sock"), ("symlink", "sym.sock")] {
        let (_p, said) = attack(&[trick, fake.to_str().unwrap(), folder.join(dst).to_str().unwrap()]);
        assert_eq!(said, "EACCES", "{trick} into the victim's folder");
    }
    // Had it managed (a folder writable by mistake), clients would still
    // skip its socket: the harness plants it by hand.
    std::fs::hard_link(&fake, folder.join("0-hard.sock")).unwrap();
    std::os::unix::fs::symlink(&fake, folder.join("0-sym.sock")).unwrap();
    std::fs::rename(&fake, folder.join("0-moved.sock")).unwrap();
    for _ in 0..3 {
        let e = timed("an open", || ClientOptions::new().open(&name).unwrap_err());
        assert_eq!(util::code(&e), Some(Win32Error::ERROR_PIPE_BUSY), "{e}");
    }
    let listing = timed("info", || pipeslot::pipe_listing(&name).unwrap());
    assert_eq!(
        (listing.instances, listing.owner),
        (1, 0),
        "only root's instance counts"
    );
    assert_eq!(
        fake_server.next_line(Duration::from_millis(500)),
        None,
        "the fake never got a client"
    );

    // A socket file that says root but whose listener is nobody: the
    // kernel's word (SO_PEERCRED) wins, and nothing is sent to it.
    let other = mine.join("other.sock");
    let (other_server, said) = attack(&["fake", other.to_str().unwrap()]);
    assert_eq!(said, "ok");
    let planted = folder.join("0-root-looking.sock");
    std::fs::rename(&other, &planted).unwrap();
    rustix::fs::chown(&planted, Some(rustix::fs::Uid::ROOT), None).unwrap();
    let e = timed("an open", || ClientOptions::new().open(&name).unwrap_err());
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_PIPE_BUSY), "{e}");
    assert_eq!(
        other_server.expect_line(5 * SECOND),
        "conn 0",
        "connected, but not one byte sent"
    );
    std::fs::remove_file(&planted).unwrap();

    // The victim's traffic reaches the victim's server.
    drop(holder);
    pipeslot::wait_named_pipe(&name, pipeslot::WaitTimeout::After(5 * SECOND)).unwrap();
    assert_eq!(transact_root(&name), b"root:hello");
    assert_eq!(fake_server.next_line(Duration::from_millis(300)), None);
    assert_eq!(other_server.next_line(Duration::from_millis(100)), None);
}

#[test]
fn a_silent_socket_stalls_no_open_list_info_or_wait() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("stall");
    serve_root(&name, 4);
    let folder = pipe_dir(&name);
    let (_direct, said) = attack(&["silent", folder.join("9-silent.sock").to_str().unwrap()]);
    assert_eq!(said, "EACCES", "no binding in the victim's folder");
    let mine = attacker_dir("stall");
    let mut silent = Vec::new();
    for i in 0..3 {
        let p = mine.join(format!("{i}.sock"));
        let (peer, said) = attack(&["silent", p.to_str().unwrap()]);
        assert_eq!(said, "ok");
        // Planted by hand, one of them made to look like root's.
        let planted = folder.join(format!("0{i}-silent.sock"));
        std::fs::rename(&p, &planted).unwrap();
        if i == 0 {
            rustix::fs::chown(&planted, Some(rustix::fs::Uid::ROOT), None).unwrap();
        }
        silent.push(peer);
    }
    for _ in 0..3 {
        let reply = timed("an open and transact", || transact_root(&name));
        assert_eq!(reply, b"root:hello");
        timed("list", || pipeslot::list_pipes().unwrap());
        assert_eq!(timed("info", || pipeslot::pipe_listing(&name).unwrap()).instances, 4);
        timed("wait", || {
            pipeslot::wait_named_pipe(&name, pipeslot::WaitTimeout::After(Duration::ZERO)).unwrap()
        });
    }
}

/// In a child: reports `ok` or `error NAME: detail`.
fn report_outcome(r: std::io::Result<()>, ok: &str) {
    match r {
        Ok(()) => report(ok),
        Err(e) => report(format!(
            "error {}: {e}",
            pipeslot::Error::win32(&e).and_then(|c| c.name()).unwrap_or("OTHER")
        )),
    }
}

/// A role for the third user: creates a pipe (or, with "slot", a mailslot)
/// and reports `created` or `error NAME: detail`.
#[test]
#[ignore]
fn third_user_creates() {
    if std::env::var("PIPESLOT_CHILD").as_deref() != Ok("third_user_creates") {
        return;
    }
    let a = child_args().unwrap();
    let r = if a.get(1).map(String::as_str) == Some("slot") {
        MailslotOptions::new().create(&a[0]).map(drop)
    } else {
        ServerOptions::new().create(&a[0]).map(drop)
    };
    report_outcome(r, "created");
}

fn third_creates(name: &str, kind: &str) -> String {
    Peer::spawn_as_user("attacks::third_user_creates", &[name, kind], &[], Some(THIRD)).expect_line(20 * SECOND)
}

#[test]
fn what_another_user_plants_before_the_first_create_is_reclaimed_by_root_and_named_to_others() {
    if !can_switch_uid() {
        return;
    }
    let target = attacker_dir("plant-target");
    for trick in ["mkdir", "file", "fifo", "symlink", "fake"] {
        let name = util::name(&format!("plant-{trick}"));
        let at = pipe_dir(&name);
        let at_s = at.to_str().unwrap();
        let (_p, said) = match trick {
            "symlink" => attack(&["symlink", target.to_str().unwrap(), at_s]),
            _ => attack(&[trick, at_s]),
        };
        assert_eq!(said, "ok", "{trick}: the root is 1777, so planting works");
        // A third user is told who holds the name and how to clear it.
        let said = third_creates(&name, "pipe");
        assert!(said.starts_with("error ERROR_ACCESS_DENIED"), "{trick}: {said}");
        assert!(
            said.contains("uid 65534") && said.contains("root can clear"),
            "{trick}: {said}"
        );
        // Root takes the name back, and its clients reach only its server.
        timed("creating over a plant", || serve_root(&name, 1));
        assert_eq!(transact_root(&name), b"root:hello", "{trick}");
        assert!(
            target.exists() && std::fs::read_dir(&target).unwrap().next().is_none(),
            "{trick}: a link's target is untouched"
        );
    }
}

#[test]
fn a_folder_with_another_users_live_server_is_refused_to_root_too() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("plant-live");
    let at = pipe_dir(&name);
    let (_d, said) = attack(&["mkdir", at.to_str().unwrap()]);
    assert_eq!(said, "ok");
    let (fake, said) = attack(&["fake", at.join("1-fake.sock").to_str().unwrap()]);
    assert_eq!(said, "ok");
    let e = ServerOptions::new().create(&name).unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_ACCESS_DENIED), "{e}");
    assert!(e.to_string().contains("uid 65534"), "names the holder: {e}");
    // Deciding that, root connected to see that the server lives, but sent nothing.
    assert_eq!(fake.expect_line(5 * SECOND), "conn 0");
}

#[test]
fn lock_files_cannot_be_held_by_another_user() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("lock");
    serve_root(&name, 2);
    let lock = pipe_dir(&name).join("lock");
    assert_eq!(std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777, 0o600);
    let (_p, said) = attack(&["hold-lock", lock.to_str().unwrap()]);
    assert_eq!(said, "EACCES");
    // Creating and closing instances goes on at full speed.
    for _ in 0..5 {
        let s = timed("creating an instance", || {
            ServerOptions::new().pipe_mode(PipeMode::Message).create(&name)
        });
        drop(s);
    }

    let slot = util::name("lock-slot").replace(r"\pipe\", r"\mailslot\");
    let reader = MailslotOptions::new().create(&slot).unwrap();
    let (_p, said) = attack(&["hold-lock", slot_dir(&slot).join("reader.lock").to_str().unwrap()]);
    assert_eq!(said, "EACCES");
    drop(reader);
    timed("creating a mailslot again", || {
        MailslotOptions::new().create(&slot).unwrap()
    });
}

#[test]
fn a_planted_mailslot_with_a_held_reader_lock_neither_blocks_nor_catches() {
    if !can_switch_uid() {
        return;
    }
    let slot = util::name("fake-slot").replace(r"\pipe\", r"\mailslot\");
    let (fake, said) = attack(&["fake-slot", slot_dir(&slot).to_str().unwrap()]);
    assert_eq!(said, "ok");
    // The planted reader answers no queries: writers find no mailslot.
    assert_win32(MailslotWriter::open(&slot), Win32Error::ERROR_FILE_NOT_FOUND);
    assert!(pipeslot::mailslot::list_mailslots()
        .unwrap()
        .iter()
        .all(|m| m.name != slot));
    // A third user is not told a false ERROR_ALREADY_EXISTS.
    let said = third_creates(&slot, "slot");
    assert!(
        said.starts_with("error ERROR_ACCESS_DENIED") && said.contains("uid 65534"),
        "{said}"
    );
    // Root takes the name back; messages reach only root's reader.
    let reader = timed("creating the mailslot", || {
        MailslotOptions::new()
            .read_timeout(Duration::from_secs(5))
            .create(&slot)
            .unwrap()
    });
    MailslotWriter::open(&slot).unwrap().write(b"for root").unwrap();
    assert_eq!(reader.read_message().unwrap(), b"for root");
    assert_eq!(
        fake.next_line(Duration::from_millis(300)),
        None,
        "the fake reader got nothing"
    );
    let info = pipeslot::mailslot::list_mailslots()
        .unwrap()
        .into_iter()
        .find(|m| m.name == slot)
        .unwrap();
    assert_eq!(info.owner, 0);
}

#[test]
fn a_mailslot_read_by_another_user_is_already_exists_naming_the_reader() {
    if !can_switch_uid() {
        return;
    }
    let slot = util::name("their-slot").replace(r"\pipe\", r"\mailslot\");
    let reader = Peer::spawn_as_user("mailslot_child::ms_reader", &[&slot], &[], Some(NOBODY));
    assert_eq!(reader.expect_line(20 * SECOND), "ready");
    let e = MailslotOptions::new().create(&slot).unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_ALREADY_EXISTS), "{e}");
    assert!(e.to_string().contains("uid 65534"), "{e}");
    let reader_lock = slot_dir(&slot).join("reader.lock");
    assert_eq!(
        std::fs::metadata(reader_lock).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn names_with_control_characters_are_kept_raw_and_listed_with_their_owner() {
    let name = util::name("ctl\x1b[31m\n\tx");
    let _s = ServerOptions::new().create(&name).unwrap();
    let l = pipeslot::list_pipes()
        .unwrap()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap();
    assert_eq!(l.owner, rustix::process::geteuid().as_raw());
    assert_eq!(
        pipeslot::escape_controls(&l.name),
        name.replace('\x1b', r"\x1b")
            .replace('\n', r"\x0a")
            .replace('\t', r"\x09")
    );
}

/// A role: uses the namespace root in `PIPESLOT_DIR` and reports `created`
/// or `error NAME: detail`.
#[test]
#[ignore]
fn use_root() {
    if std::env::var("PIPESLOT_CHILD").as_deref() != Ok("use_root") {
        return;
    }
    let a = child_args().unwrap();
    report_outcome(ServerOptions::new().create(&a[0]).map(drop), "created");
}

#[test]
fn a_namespace_root_that_is_a_link_a_file_or_another_users_is_refused_by_path() {
    if !can_switch_uid() {
        return;
    }
    let base = attacker_dir("roots");
    let theirs = base.join("theirs");
    let (_p, said) = attack(&["mkdir", theirs.to_str().unwrap()]);
    assert_eq!(said, "ok");
    let (_p, said) = attack(&[
        "symlink",
        util::root().to_str().unwrap(),
        base.join("link").to_str().unwrap(),
    ]);
    assert_eq!(said, "ok");
    let (_p, said) = attack(&["file", base.join("file").to_str().unwrap()]);
    assert_eq!(said, "ok");
    for (sub, code, words) in [
        ("theirs", "ERROR_ACCESS_DENIED", "uid 65534"),
        ("link", "ERROR_DIRECTORY", "symbolic link"),
        ("file", "ERROR_DIRECTORY", "not a folder"),
    ] {
        let root = base.join(sub);
        for uid in [None, Some(THIRD)] {
            let peer = Peer::spawn_as_user(
                "attacks::use_root",
                &[r"\\.\pipe\anything"],
                &[("PIPESLOT_DIR", root.to_str().unwrap())],
                uid,
            );
            let said = peer.expect_line(20 * SECOND);
            assert!(said.starts_with(&format!("error {code}")), "{sub} as {uid:?}: {said}");
            assert!(
                said.contains(root.to_str().unwrap()) && said.contains(words),
                "{sub}: {said}"
            );
        }
    }
    assert!(
        std::fs::read_dir(&theirs).unwrap().next().is_none(),
        "nothing made in another user's root"
    );
}

/// A role: serves args[0] (message mode, open to every user, replying
/// `UID:MSG`) as a user the owner may or may not have granted; reports
/// `ready` or `error NAME: detail`.
#[test]
#[ignore]
fn joiner() {
    if std::env::var("PIPESLOT_CHILD").as_deref() != Ok("joiner") {
        return;
    }
    let a = child_args().unwrap();
    let s = match ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .security(pipeslot::PipeSecurity::owner_only().allow_everyone())
        .create(&a[0])
    {
        Ok(s) => s,
        Err(e) => return report_outcome(Err(e), ""),
    };
    report("ready");
    loop {
        if s.connect().is_err() {
            return;
        }
        let mut buf = [0u8; 512];
        while let Ok(m) = s.read_msg(&mut buf) {
            let mut reply = format!("{}:", rustix::process::geteuid().as_raw()).into_bytes();
            reply.extend_from_slice(&buf[..m.len]);
            if s.write_msg(&reply).is_err() {
                break;
            }
        }
        let _ = s.disconnect();
    }
}

#[test]
fn a_granted_user_adds_instances_and_no_one_else_does() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("granted");
    let s = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .security(
            pipeslot::PipeSecurity::owner_only()
                .allow_user(NOBODY)
                .allow_create_instance_user(NOBODY),
        )
        .create(&name)
        .unwrap();
    let holder = ClientOptions::new().open(&name).unwrap(); // root's instance is busy
    s.connect().unwrap();
    let granted = Peer::spawn_as_user("attacks::joiner", &[&name], &[], Some(NOBODY));
    assert_eq!(granted.expect_line(20 * SECOND), "ready");
    let refused = Peer::spawn_as_user("attacks::joiner", &[&name], &[], Some(THIRD));
    let said = refused.expect_line(20 * SECOND);
    assert!(
        said.starts_with("error ERROR_ACCESS_DENIED") && said.contains("uid 0"),
        "{said}"
    );
    // The third user plants a folder of its own among the granted ones.
    let joiners = pipe_dir(&name).join("joiners");
    assert_eq!(
        std::fs::metadata(&joiners).unwrap().permissions().mode() & 0o7777,
        0o1777
    );
    let planted = joiners.join(THIRD.to_string());
    let (_p, said) = attack_as(THIRD, &["mkdir", planted.to_str().unwrap()]);
    assert_eq!(said, "ok", "joiners/ is 1777");
    let (fake, said) = attack_as(THIRD, &["fake", planted.join("0.sock").to_str().unwrap()]);
    assert_eq!(said, "ok");
    let (_p, said) = attack_as(
        THIRD,
        &[
            "fake",
            joiners.join(NOBODY.to_string()).join("0.sock").to_str().unwrap(),
        ],
    );
    assert_eq!(said, "EACCES", "the granted user's folder is its own");

    // Root's instance is busy: a client reaches the granted user's.
    assert_eq!(timed("info", || pipeslot::pipe_listing(&name).unwrap()).instances, 2);
    for _ in 0..3 {
        pipeslot::wait_named_pipe(&name, pipeslot::WaitTimeout::After(5 * SECOND)).unwrap();
        let reply = timed("an open", || transact_root(&name));
        assert_eq!(reply, format!("{NOBODY}:hello").into_bytes());
    }
    assert_eq!(
        fake.next_line(Duration::from_millis(300)),
        None,
        "a user never granted is never asked"
    );
    // A client that requires root's server waits for root's instance only;
    // one that requires the granted user reaches its instances only.
    assert_win32(
        ClientOptions::new().require_server_user(0).open(&name),
        Win32Error::ERROR_PIPE_BUSY,
    );
    let theirs = ClientOptions::new()
        .pipe_mode(PipeMode::Message)
        .require_server_user(NOBODY)
        .open(&name)
        .unwrap();
    assert_eq!(theirs.server_identity().unwrap().uid, NOBODY);
    drop(theirs);
    drop(holder);
    drop(granted);
    drop(s);
}

/// A user who creates a name first serves it, as on Windows, where the
/// first CreateNamedPipe of a name wins. A client can tell whose server it
/// reached (GetNamedPipeServerProcessId, and the user); one that says
/// whose server it wants is refused at once by a squatter's name, and the
/// squatter never sees it.
#[test]
fn a_squatter_is_told_by_server_identity_and_never_reached_by_a_client_that_requires_its_server() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("squat");
    let squatter = Peer::spawn_as_user("attacks::joiner", &[&name], &[], Some(NOBODY));
    assert_eq!(squatter.expect_line(20 * SECOND), "ready");
    // Unwary: the client reaches the squatter, and can tell.
    let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
    let who = c.server_identity().unwrap();
    assert_eq!((who.uid, who.gid, who.pid), (NOBODY, NOBODY, squatter.pid()));
    assert_eq!(who.user.as_deref(), Some("nobody"));
    assert_eq!(c.server_process_id().unwrap(), squatter.pid());
    drop(c);
    // Wary: refused before any byte is sent, naming who serves the name.
    let e = timed("a refused open", || {
        ClientOptions::new().require_server_user(0).open(&name)
    })
    .unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_ACCESS_DENIED), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("uid 65534 (nobody)") && text.contains("uid 0 (root)"),
        "{text}"
    );

    // A squatter with a fake server that reports every connection: the wary
    // client never connects, the unwary one does (and gives up on it).
    let fake_name = util::name("squat-fake");
    let at = pipe_dir(&fake_name);
    let (_d, said) = attack(&["mkdir", at.to_str().unwrap()]);
    assert_eq!(said, "ok");
    let (fake, said) = attack(&["fake", at.join("1-fake.sock").to_str().unwrap()]);
    assert_eq!(said, "ok");
    let e = timed("a refused open", || {
        ClientOptions::new().require_server_user(0).open(&fake_name)
    })
    .unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_ACCESS_DENIED), "{e}");
    assert_eq!(fake.next_line(Duration::from_millis(300)), None, "never connected to");
    assert_win32(ClientOptions::new().open(&fake_name), Win32Error::ERROR_FILE_NOT_FOUND);
    let said = fake.expect_line(5 * SECOND);
    assert!(
        said.starts_with("conn ") && said != "conn 0",
        "the unwary client sent its hello: {said}"
    );
}

/// Whose server a client reached is the kernel's word, and remote names
/// (whose server is proven by SMB signing) refuse the requirement.
#[test]
fn server_identity_is_the_serving_process_and_remote_names_refuse_a_required_user() {
    let name = util::name("server-who");
    let s = ServerOptions::new().create(&name).unwrap();
    let c = ClientOptions::new().open(&name).unwrap();
    let who = c.server_identity().unwrap();
    assert_eq!(who.pid, std::process::id());
    assert_eq!(who.uid, rustix::process::geteuid().as_raw());
    let me = ClientOptions::new()
        .require_server_user(rustix::process::geteuid().as_raw())
        .open(&name);
    assert_win32(me, Win32Error::ERROR_PIPE_BUSY);
    drop(c);
    drop(s);
    assert_win32(
        ClientOptions::new().require_server_user(0).open(r"\\192.0.2.1\pipe\x"),
        Win32Error::ERROR_INVALID_PARAMETER,
    );
}

#[test]
fn a_crashed_server_of_another_user_leaves_a_name_only_root_reclaims() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("crashed");
    let mut theirs = Peer::spawn_as_user("attacks::joiner", &[&name], &[], Some(NOBODY));
    assert_eq!(theirs.expect_line(20 * SECOND), "ready");
    let said = third_creates(&name, "pipe");
    assert!(
        said.starts_with("error ERROR_ACCESS_DENIED") && said.contains("server is running"),
        "{said}"
    );
    theirs.kill(); // SIGKILL: its folder and socket stay behind
    assert_win32(ClientOptions::new().open(&name), Win32Error::ERROR_FILE_NOT_FOUND);
    let said = third_creates(&name, "pipe");
    assert!(
        said.contains("left behind by user nobody (uid 65534)") && said.contains("rm -r"),
        "{said}"
    );
    timed("reclaiming", || serve_root(&name, 1));
    assert_eq!(transact_root(&name), b"root:hello");
    assert_eq!(pipeslot::pipe_listing(&name).unwrap().owner, 0);
}

#[test]
fn a_local_user_claiming_to_be_the_gateway_is_not_believed() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("spoofed");
    let server = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .reject_remote_clients(false)
        .security(pipeslot::PipeSecurity::owner_only().allow_everyone())
        .create(&name)
        .unwrap();
    let folded = pipeslot::PipeName::parse(&name).unwrap().folded().to_owned();
    let dir = pipe_dir(&name);
    let (_spoofer, said) = attack(&["spoof", dir.to_str().unwrap(), &folded]);
    assert_eq!(said, "ok");
    server.connect().unwrap();
    let who = server.client_identity().unwrap();
    // The kernel's word for who it is, and nothing of what it claimed.
    assert_eq!(who.uid, NOBODY, "{who:?}");
    assert_eq!((who.remote_user, who.remote_address, who.computer), (None, None, None));
}

/// A client of another user allowed by the ACL asks for the shared-memory
/// path and is given the socket path (memory is shared within one user
/// only, SECURITY.md 11.). A client of the server's own user takes it and
/// scribbles over its segment: it can spoil only its own connection. The
/// server process keeps serving its other instance at once, and when the
/// scribbler dies its instance serves again.
#[test]
fn a_client_that_scribbles_on_its_shared_memory_spoils_only_its_own_connection() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("shm-scribbled");
    let opts = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .shared_memory(true)
        .max_instances(2)
        .security(pipeslot::PipeSecurity::owner_only().allow_everyone())
        .clone();
    // How each connection ended, seen by the server.
    let (ends_tx, ends) = std::sync::mpsc::channel();
    for _ in 0..2 {
        let s = opts.create(&name).unwrap();
        let ends_tx = ends_tx.clone();
        std::thread::spawn(move || loop {
            if s.connect().is_err() {
                return;
            }
            let mut buf = [0u8; 512];
            let end = loop {
                match s.read_msg(&mut buf) {
                    Ok(m) => {
                        let mut reply = b"root:".to_vec();
                        reply.extend_from_slice(&buf[..m.len]);
                        if let Err(e) = s.write_msg(&reply) {
                            break e;
                        }
                    }
                    Err(e) => break e,
                }
            };
            let _ = ends_tx.send(util::code(&end));
            let _ = s.disconnect();
        });
    }
    let folded = pipeslot::PipeName::parse(&name).unwrap().folded().to_owned();
    let dir = pipe_dir(&name);
    let (_nobody, said) = attack(&["shm-scribble", dir.to_str().unwrap(), &folded]);
    assert_eq!(said, "no segment: data path 0 with 0 fds", "another user got a segment");
    let (mut scribbler, said) = attack_as(0, &["shm-scribble", dir.to_str().unwrap(), &folded]);
    assert_eq!(said, "ok shm", "the attacker of our own user got a segment");
    // An instance that just served a client listens again a moment later:
    // a client that finds both busy waits, as Win32's clients do.
    let client = || {
        let deadline = Instant::now() + 2 * SECOND;
        loop {
            match ClientOptions::new()
                .pipe_mode(PipeMode::Message)
                .shared_memory(true)
                .open(&name)
            {
                Err(e) if util::code(&e) == Some(Win32Error::ERROR_PIPE_BUSY) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                r => return r,
            }
        }
    };
    let round = |i: usize| {
        let c = timed("an open beside the scribbler", || client().unwrap());
        let mut reply = [0u8; 512];
        let msg = format!("hello {i}");
        let r = timed("a transact beside the scribbler", || {
            c.transact(msg.as_bytes(), &mut reply).unwrap()
        });
        assert_eq!(&reply[..r.len], format!("root:{msg}").as_bytes());
    };
    // While it scribbles, and after.
    for i in 0..50 {
        round(i);
    }
    assert_eq!(scribbler.expect_line(20 * SECOND), "scribbled");
    for i in 50..60 {
        round(i);
    }
    // The server saw the garbage for what it is.
    let mut seen = Vec::new();
    while !seen.contains(&Some(Win32Error::ERROR_BAD_PIPE)) {
        match ends.recv_timeout(2 * SECOND) {
            Ok(end) => seen.push(end),
            Err(_) => panic!("the scribbled connection did not end with ERROR_BAD_PIPE: {seen:?}"),
        }
    }
    // Its instance comes back once it is gone: two clients at once.
    scribbler.kill();
    let first = client().unwrap();
    let second = client().unwrap_or_else(|e| panic!("the scribbler's instance did not come back: {e}"));
    for c in [&first, &second] {
        let mut reply = [0u8; 512];
        let r = c.transact(b"again", &mut reply).unwrap();
        assert_eq!(&reply[..r.len], b"root:again");
    }
}

/// A client remembers where a name's servers listened. Once the name's
/// server has gone and its folder with it, another user may put a link at
/// the name's place, leading to a folder of its own where a link of the
/// old socket's name leads to some root service's socket: a client that
/// knocked where it knocked before would follow both links and hand its
/// hello to that root service (trusted, since root runs it). The client
/// must see that the folder it read is no longer there and read afresh,
/// where the planted link is refused.
#[test]
fn a_link_planted_where_a_served_name_was_does_not_lead_a_client_that_opened_it_before() {
    if !can_switch_uid() {
        return;
    }
    let name = util::name("relink");
    let at = pipe_dir(&name);
    let old_sock = {
        let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
        drop(ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap());
        // The socket's name, which the client now remembers (and anyone
        // can read while the name is served).
        let sock = std::fs::read_dir(&at)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .find(|f| f.to_string_lossy().ends_with(".sock"))
            .expect("the server's socket");
        drop(s);
        sock
    };
    // The acceptor thread takes the folder away as it ends.
    let deadline = Instant::now() + 10 * SECOND;
    while at.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!at.exists(), "the folder goes with the last instance");
    // A root service's socket that must never hear from a pipe client.
    let bait_dir = attacker_dir("relink-bait");
    let bait = bait_dir.join("root-service.sock");
    let service = UnixListener::bind(&bait).unwrap();
    service.set_nonblocking(true).unwrap();
    // nobody: a folder of its own holding a link named like the old socket,
    // and a link at the name's place to that folder.
    let lure = attacker_dir("relink-lure");
    let (_p, said) = attack(&[
        "symlink",
        bait.to_str().unwrap(),
        lure.join(&old_sock).to_str().unwrap(),
    ]);
    assert_eq!(said, "ok");
    let (_p, said) = attack(&["symlink", lure.to_str().unwrap(), at.to_str().unwrap()]);
    assert_eq!(said, "ok", "the root is 1777: the planting works");
    assert_win32(
        ClientOptions::new().pipe_mode(PipeMode::Message).open(&name),
        Win32Error::ERROR_FILE_NOT_FOUND,
    );
    match service.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the client followed the planted links to a root service: {other:?}"),
    }
    let _ = std::fs::remove_file(&at);
}
