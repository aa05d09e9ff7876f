//! The shared-memory data path: which connections take it, and what a
//! server that hands over a bad segment gets (a refused open, never a
//! crash or a hang). The rest of the suite runs once on each data path
//! (shared memory by default; `scripts/test.sh` runs it again with
//! `PIPESLOT_SHM=0`, the socket path).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use pipeslot::blocking::{ClientOptions, ServerOptions};
use pipeslot::{PipeMode, Win32Error};
use pipeslot_proto::wire::local::{data_path, Reply, ReplyStatus};

use crate::util::{self, assert_win32};

fn shm_on() -> bool {
    std::env::var("PIPESLOT_SHM").as_deref() != Ok("0")
}

/// Our segments' descriptors in this process (each end holds its own).
fn segments_held() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|p| p.to_string_lossy().starts_with("/memfd:pipeslot"))
        .count()
}

/// Mappings of our segments in this process (each end maps its own at its
/// first use of the rings).
fn segments_mapped() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains("/memfd:pipeslot"))
        .count()
}

#[test]
fn the_data_path_follows_pipeslot_shm_and_carries_the_bytes() {
    let name = util::name("shm-path");
    let s = ServerOptions::new().pipe_mode(PipeMode::Message).create(&name).unwrap();
    let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&name).unwrap();
    s.connect().unwrap();
    // Other tests of this binary run at the same time and come and go:
    // at least ours, whatever they do.
    if shm_on() {
        let now = segments_held();
        assert!(now >= 2, "both ends hold the segment ({now})");
    }
    let big = vec![7u8; 300_000];
    let t = std::thread::spawn(move || {
        let mut buf = vec![0u8; 300_000];
        let m = s.read_msg(&mut buf).unwrap();
        s.write_msg(&buf[..m.len]).unwrap();
        s
    });
    let mut back = vec![0u8; 300_000];
    let r = c.transact(&big, &mut back).unwrap();
    assert_eq!((r.len, r.more), (300_000, false));
    assert!(back == big, "a message larger than the rings went and came back whole");
    let s = t.join().unwrap();
    if shm_on() {
        let now = segments_mapped();
        assert!(now >= 2, "both ends mapped it to carry data ({now})");
    }
    drop(c);
    let mut buf = [0u8; 4];
    assert_win32(s.read_msg(&mut buf), Win32Error::ERROR_BROKEN_PIPE);
    drop(s);
    if !shm_on() {
        // With PIPESLOT_SHM=0 no connection of this process takes it.
        assert_eq!(segments_mapped(), 0, "no segment on the socket path");
    }
}

/// What a fake server sends with its reply.
type Gift = fn() -> Vec<OwnedFd>;

/// A fake server of our own user in the pipe's folder: answers every
/// hello with ACCEPTED, data path "shared memory" and these descriptors.
fn fake_server(name: &str, give: Gift) -> std::thread::JoinHandle<usize> {
    let sock = crate::attacks::pipe_dir(name).join("0-fake.sock");
    let l = UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        let mut asked = 0;
        l.set_nonblocking(false).unwrap();
        if let Ok((mut s, _)) = l.accept() {
            asked += 1;
            let mut hello = [0u8; 16];
            let _ = s.read_exact(&mut hello);
            let reply = Reply {
                status: ReplyStatus::ACCEPTED,
                pipe_type: 1,
                access: 3,
                max_instances: 255,
                data_path: data_path::SHM,
                flags: 0,
                in_buffer: 4096,
                out_buffer: 4096,
                default_timeout_ms: 50,
                server_pid: std::process::id(),
                instances: 1,
                listening: 0,
            };
            let fds = give();
            let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(3))];
            let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
            if !borrowed.is_empty() {
                assert!(control.push(rustix::net::SendAncillaryMessage::ScmRights(&borrowed)));
            }
            let bytes = reply.emit();
            rustix::net::sendmsg(
                &s,
                &[std::io::IoSlice::new(&bytes)],
                &mut control,
                rustix::net::SendFlags::empty(),
            )
            .unwrap();
            let _ = s.flush();
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = std::fs::remove_file(&sock);
        asked
    })
}

fn eventfd() -> OwnedFd {
    rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap()
}

#[test]
fn a_server_that_hands_over_a_bad_segment_gets_a_refused_open() {
    let gifts: [(&str, Gift); 3] = [
        ("three descriptors", Vec::new),
        ("shrink", || {
            // An unsealed memfd: it could shrink under the mapping (SIGBUS).
            let m = rustix::fs::memfd_create("pipeslot", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
            rustix::fs::ftruncate(&m, 1 << 20).unwrap();
            vec![m, eventfd(), eventfd()]
        }),
        ("eventfd", || {
            // A sealed memfd of the right size, but a pipe for bells.
            use rustix::fs::{MemfdFlags, SealFlags};
            let m = rustix::fs::memfd_create("pipeslot", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
            rustix::fs::ftruncate(&m, 1 << 20).unwrap();
            rustix::fs::fcntl_add_seals(&m, SealFlags::SHRINK | SealFlags::SEAL).unwrap();
            let (r, w) = rustix::pipe::pipe().unwrap();
            vec![m, r, w]
        }),
    ];
    for (why, give) in gifts {
        let name = util::name("shm-bad");
        // A real instance (max 1, busy) makes the folder and answers BUSY.
        let real = ServerOptions::new()
            .max_instances(1)
            .pipe_mode(PipeMode::Message)
            .create(&name)
            .unwrap();
        let _taken = ClientOptions::new().open(&name).unwrap();
        let fake = fake_server(&name, give);
        let e = ClientOptions::new()
            .pipe_mode(PipeMode::Message)
            .open(&name)
            .unwrap_err();
        assert_eq!(util::code(&e), Some(Win32Error::ERROR_BAD_PIPE), "{why}: {e}");
        assert!(e.to_string().contains(why), "{why}: {e}");
        assert_eq!(fake.join().unwrap(), 1, "{why}: the fake was asked");
        drop(real);
    }
}

/// Messages of every size around the ring's, in both directions, between
/// a tokio client and a blocking server, both asked for shared memory
/// (whatever PIPESLOT_SHM says): whole, in parts and by transact.
#[test]
fn tokio_ends_take_the_shared_memory_path_with_every_message_size() {
    let name = util::name("shm-tokio");
    let s = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .shared_memory(true)
        .create(&name)
        .unwrap();
    let sizes = [0usize, 1, 100, 4000, 65_531, 65_532, 65_536, 65_537, 300_000];
    let echo = std::thread::spawn(move || {
        s.connect().unwrap();
        let mut buf = vec![0u8; 400_000];
        let mut n = 0;
        loop {
            match s.read_msg(&mut buf) {
                Ok(m) => {
                    s.write_msg(&buf[..m.len]).unwrap();
                    n += 1;
                }
                Err(_) => return n,
            }
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = pipeslot::tokio::ClientOptions::new()
            .pipe_mode(PipeMode::Message)
            .shared_memory(true)
            .open(&name)
            .unwrap();
        for (i, &len) in sizes.iter().enumerate() {
            let msg: Vec<u8> = (0..len).map(|k| (k * 7 + i) as u8).collect();
            let mut back = vec![0u8; len + 1];
            let r = c.transact(&msg, &mut back).await.unwrap();
            assert_eq!((r.len, r.more), (len, false), "transact of {len}");
            assert!(back[..len] == msg[..], "transact of {len} came back whole");
            if i == 0 {
                // Ours are mapped now, whatever the other tests do.
                assert!(segments_mapped() >= 2, "both ends mapped the segment to carry data");
            }
            // Again in parts of 1000 bytes.
            c.write_msg(&msg).await.unwrap();
            let mut got = Vec::new();
            let mut part = vec![0u8; 1000];
            loop {
                let r = c.read_msg(&mut part).await.unwrap();
                got.extend_from_slice(&part[..r.len]);
                if !r.more {
                    break;
                }
            }
            assert!(got == msg, "{len} bytes in parts came back as {}", got.len());
        }
        drop(c);
    });
    assert_eq!(echo.join().unwrap(), 2 * sizes.len());
}

/// Two tokio ends on shared memory: a reader parked on an empty ring wakes
/// for data and for the peer's end; a writer parked on a full ring wakes
/// when the reader makes room; byte streams through AsyncRead/AsyncWrite.
#[test]
fn tokio_waits_on_shared_memory_end_when_they_should() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let name = util::name("shm-tokio-wait");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = pipeslot::tokio::ServerOptions::new()
            .pipe_mode(PipeMode::Message)
            .out_buffer_size(4096)
            .in_buffer_size(4096)
            .shared_memory(true)
            .create(&name)
            .unwrap();
        let client = pipeslot::tokio::ClientOptions::new()
            .pipe_mode(PipeMode::Message)
            .shared_memory(true)
            .open(&name)
            .unwrap();
        server.connect().await.unwrap();
        // A parked reader, then the data.
        let reader = tokio::spawn(async move {
            let mut b = [0u8; 16];
            let m = client.read_msg(&mut b).await.unwrap();
            assert_eq!(&b[..m.len], b"late");
            client
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.write_msg(b"late").await.unwrap();
        let client = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap();
        // A writer parked on the full ring (4 KiB), then the reads.
        let writer = tokio::spawn(async move {
            for i in 0..64u8 {
                server.write_msg(&[i; 1000]).await.unwrap();
            }
            server
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!writer.is_finished(), "64 KB do not fit a 4 KiB ring unread");
        let mut b = [0u8; 1000];
        for i in 0..64u8 {
            let m = tokio::time::timeout(Duration::from_secs(5), client.read_msg(&mut b))
                .await
                .expect("a message within 5 s")
                .unwrap();
            assert!(m.len == 1000 && b.iter().all(|&x| x == i), "message {i}");
        }
        let server = tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .unwrap()
            .unwrap();
        // A parked reader wakes when the peer goes.
        let reader = tokio::spawn(async move {
            let mut b = [0u8; 16];
            client.read_msg(&mut b).await.map(|m| m.len)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(server);
        let r = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the reader woke when the server went")
            .unwrap();
        assert_win32(r, Win32Error::ERROR_BROKEN_PIPE);

        // A byte pipe through AsyncRead and AsyncWrite, larger than the ring.
        let name = util::name("shm-tokio-bytes");
        let mut server = pipeslot::tokio::ServerOptions::new()
            .out_buffer_size(4096)
            .in_buffer_size(4096)
            .shared_memory(true)
            .create(&name)
            .unwrap();
        let mut client = pipeslot::tokio::ClientOptions::new()
            .shared_memory(true)
            .open(&name)
            .unwrap();
        server.connect().await.unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let d2 = data.clone();
        let w = tokio::spawn(async move {
            client.write_all(&d2).await.unwrap();
            client.shutdown().await.unwrap();
            client.flush().await.unwrap();
            client
        });
        let mut got = vec![0u8; data.len()];
        tokio::time::timeout(Duration::from_secs(10), server.read_exact(&mut got))
            .await
            .expect("200 KB within 10 s")
            .unwrap();
        assert!(got == data, "the byte stream came through whole");
        let client = w.await.unwrap();
        drop(client);
        let mut rest = Vec::new();
        assert_eq!(server.read_to_end(&mut rest).await.unwrap(), 0, "the end of the stream");
    });
}

/// A role: plays args[1] on the pipe args[0] with default options:
/// `server` (open to every user) takes one client and echoes one message,
/// `client` transacts one. With args[2] `crowded` it first lowers its
/// `ulimit -n` to three times the descriptors it has open (so its next
/// descriptor is past a quarter of the limit: too few left for a
/// segment's). Reports how many segment descriptors it held while
/// connected, then `echoed`.
#[test]
#[ignore]
fn shm_peer() {
    if std::env::var("PIPESLOT_CHILD").as_deref() != Ok("shm_peer") {
        return;
    }
    let a = util::child_args().unwrap();
    if a[2] == "crowded" {
        // The holes in the descriptor table filled first, so that the next
        // descriptor's number is the table's size.
        let top = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .max()
            .unwrap();
        let mut fill = Vec::new();
        loop {
            let f = std::fs::File::open("/dev/null").unwrap();
            let n = std::os::fd::AsRawFd::as_raw_fd(&f);
            fill.push(f);
            if n >= top {
                break;
            }
        }
        std::mem::forget(fill);
        let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
        let old = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(3 * open + 3),
                maximum: old.maximum,
            },
        )
        .unwrap();
    }
    let mut buf = [0u8; 64];
    if a[1] == "server" {
        let s = ServerOptions::new()
            .pipe_mode(PipeMode::Message)
            .security(pipeslot::PipeSecurity::owner_only().allow_everyone())
            .create(&a[0])
            .unwrap();
        util::report("ready");
        s.connect().unwrap();
        let m = s.read_msg(&mut buf).unwrap();
        util::report(format!("segments {}", segments_held()));
        s.write_msg(&buf[..m.len]).unwrap();
        let _ = s.read_msg(&mut buf); // until the client goes
    } else {
        let c = ClientOptions::new().pipe_mode(PipeMode::Message).open(&a[0]).unwrap();
        let r = c.transact(b"crowded", &mut buf).unwrap();
        assert_eq!(&buf[..r.len], b"crowded");
        util::report(format!("segments {}", segments_held()));
    }
    util::report("echoed");
}

/// A `shm_peer` client (`how`, as `uid`) against a server of ours on
/// `name` that takes shared memory when it may: says how many segment
/// descriptors the child held. Returns the uid the server saw.
fn their_client(name: &str, security: pipeslot::PipeSecurity, how: &str, uid: Option<u32>) -> (String, u32) {
    let s = ServerOptions::new()
        .pipe_mode(PipeMode::Message)
        .security(security)
        .create(name)
        .unwrap();
    let server = std::thread::spawn(move || {
        s.connect().unwrap();
        let mut buf = [0u8; 64];
        let m = s.read_msg(&mut buf).unwrap();
        s.write_msg(&buf[..m.len]).unwrap();
        s.client_identity().unwrap().uid
    });
    let child = util::Peer::spawn_as_user("shm::shm_peer", &[name, "client", how], &[], uid);
    let said = child.expect_line(10 * util::SECOND);
    assert_eq!(child.expect_line(10 * util::SECOND), "echoed");
    let seen = server.join().unwrap();
    assert_eq!(child.wait(10 * util::SECOND), 0);
    (said, seen)
}

/// A `shm_peer` server (`how`, as `uid`) on `name`, and a client of ours
/// that asks for shared memory: says how many segment descriptors the
/// child held.
fn their_server(name: &str, how: &str, uid: Option<u32>) -> String {
    let child = util::Peer::spawn_as_user("shm::shm_peer", &[name, "server", how], &[], uid);
    assert_eq!(child.expect_line(10 * util::SECOND), "ready");
    let c = ClientOptions::new()
        .pipe_mode(PipeMode::Message)
        .shared_memory(true)
        .open(name)
        .unwrap();
    let mut buf = [0u8; 64];
    let r = c.transact(b"crowded", &mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"crowded");
    let said = child.expect_line(10 * util::SECOND);
    drop(c); // the server reads on until its client goes
    assert_eq!(child.expect_line(10 * util::SECOND), "echoed");
    assert_eq!(child.wait(10 * util::SECOND), 0);
    said
}

/// A process short of descriptors (each shared-memory end holds four, the
/// socket path one) neither offers nor grants shared memory: its
/// connections take the socket path and work, whichever end it is, while
/// its peer has descriptors to spare and asks for it.
#[test]
fn an_end_short_of_descriptors_keeps_the_socket_path() {
    let name = util::name("crowded-client");
    let (said, _) = their_client(&name, pipeslot::PipeSecurity::owner_only(), "crowded", None);
    assert_eq!(said, "segments 0", "the crowded client did not offer it");
    let said = their_server(&util::name("crowded-server"), "crowded", None);
    assert_eq!(said, "segments 0", "the crowded server did not grant it");
}

/// Shared memory is shared with our own user and root only: a granted
/// user's client, or a server of another user, gets the socket path (an
/// eventfd bell's blocking flag and counter belong to every holder, so
/// another user could make our ring of its bell block; SECURITY.md). Both
/// ends take the default, shared memory on.
#[test]
fn another_user_never_shares_memory_with_us() {
    if !util::can_switch_uid() {
        return;
    }
    const NOBODY: u32 = 65534;
    let name = util::name("shm-nobody-client");
    let security = pipeslot::PipeSecurity::owner_only().allow_user(NOBODY);
    let (said, seen) = their_client(&name, security, "plain", Some(NOBODY));
    assert_eq!(
        (said.as_str(), seen),
        ("segments 0", NOBODY),
        "nobody's client got shared memory"
    );
    let said = their_server(&util::name("shm-nobody-server"), "plain", Some(NOBODY));
    assert_eq!(said, "segments 0", "nobody's server got shared memory");
}
