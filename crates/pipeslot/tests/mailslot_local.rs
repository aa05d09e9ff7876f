//! Local mailslots, one Win32 behaviour per test with its exact error:
//! create, one reader per name (also across processes and after a crash),
//! whole-message reads, timeouts, exact info, writers, sizes, load.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use pipeslot::blocking::{MailslotOptions, MailslotWriter};
use pipeslot::mailslot::{list_mailslots, mailslot_info, ReadTimeout, MAILSLOT_NO_MESSAGE};
use pipeslot::{Error, Win32Error};

use crate::mailslot_child::{check_load_message, load_message};
use crate::util::{self, assert_win32, watchdog, Peer, SECOND};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A mailslot name no other test uses: `\\.\mailslot\t\<tag>-<pid>-<n>`.
pub fn slot_name(tag: &str) -> String {
    util::init();
    format!(
        r"\\.\mailslot\t\{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

#[test]
fn info_is_exact_after_writes_and_reads() {
    let name = slot_name("info");
    let slot = MailslotOptions::new()
        .max_message_size(4096)
        .read_timeout(Duration::ZERO)
        .create(&name)
        .unwrap();
    let info = slot.info().unwrap();
    assert_eq!(info.max_message_size, 4096);
    assert_eq!(info.next_message_size, None);
    assert_eq!(info.next_size_win32(), MAILSLOT_NO_MESSAGE);
    assert_eq!(info.message_count, 0);
    assert_eq!(info.read_timeout, ReadTimeout::IMMEDIATE);

    // Far more than the kernel's per-socket datagram queue holds, from one
    // thread that never reads: the writes return, and info counts them all.
    let w = MailslotWriter::open(&name).unwrap();
    for i in 0..300u32 {
        w.write(&vec![b'x'; (i % 50) as usize + 1]).unwrap();
        if i % 97 == 0 {
            let info = slot.info().unwrap();
            assert_eq!(info.message_count, i + 1, "after {} writes", i + 1);
            assert_eq!(info.next_message_size, Some(1));
        }
    }
    assert_eq!(slot.info().unwrap().message_count, 300);
    let mut buf = [0u8; 64];
    for i in 0..300u32 {
        let info = slot.info().unwrap();
        assert_eq!(info.message_count, 300 - i);
        assert_eq!(info.next_message_size, Some(i % 50 + 1));
        assert_eq!(
            slot.read(&mut buf).unwrap(),
            (i % 50 + 1) as usize,
            "message {i} in order"
        );
    }
    let info = slot.info().unwrap();
    assert_eq!((info.message_count, info.next_message_size), (0, None));
}

#[test]
fn zero_length_messages_are_messages() {
    let name = slot_name("zero");
    let slot = MailslotOptions::new()
        .read_timeout(Duration::ZERO)
        .create(&name)
        .unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    w.write(b"a").unwrap();
    w.write(b"").unwrap();
    w.write(b"bc").unwrap();
    let info = slot.info().unwrap();
    assert_eq!((info.message_count, info.next_message_size), (3, Some(1)));
    let mut buf = [0u8; 4];
    assert_eq!(slot.read(&mut buf).unwrap(), 1);
    assert_eq!(
        slot.info().unwrap().next_message_size,
        Some(0),
        "the empty message is next"
    );
    assert_eq!(slot.read(&mut []).unwrap(), 0, "an empty buffer reads an empty message");
    assert_eq!(slot.read_message().unwrap(), b"bc");
    assert_win32(slot.read(&mut []), Win32Error::ERROR_SEM_TIMEOUT);
}

#[test]
fn a_short_buffer_is_insufficient_buffer_and_the_message_stays() {
    let name = slot_name("short");
    let slot = MailslotOptions::new()
        .read_timeout(Duration::ZERO)
        .create(&name)
        .unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    w.write(b"0123456789").unwrap();
    w.write(b"next").unwrap();
    let mut small = [0u8; 9];
    let e = slot.read(&mut small).unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_INSUFFICIENT_BUFFER));
    assert!(e.to_string().contains(&name), "the error names the mailslot: {e}");
    assert_eq!(small, [0; 9], "nothing was copied");
    let info = slot.info().unwrap();
    assert_eq!((info.message_count, info.next_message_size), (2, Some(10)));
    let mut buf = [0u8; 10];
    assert_eq!(slot.read(&mut buf).unwrap(), 10);
    assert_eq!(&buf, b"0123456789");
    assert_eq!(slot.read(&mut buf).unwrap(), 4);
}

#[test]
fn read_timeout_zero_answers_at_once() {
    let slot = MailslotOptions::new()
        .read_timeout(ReadTimeout::from_millis(0))
        .create(slot_name("t0"))
        .unwrap();
    let t = Instant::now();
    let e = slot.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_SEM_TIMEOUT));
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    assert!(t.elapsed() < Duration::from_millis(100), "{:?}", t.elapsed());
    assert_win32(slot.read_message(), Win32Error::ERROR_SEM_TIMEOUT);
}

#[test]
fn read_timeout_in_ms_expires_with_sem_timeout() {
    let slot = MailslotOptions::new()
        .read_timeout(Duration::from_millis(200))
        .create(slot_name("t200"))
        .unwrap();
    let t = Instant::now();
    assert_win32(slot.read(&mut [0u8; 8]), Win32Error::ERROR_SEM_TIMEOUT);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(195) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(slot.info().unwrap().read_timeout.as_millis(), 200);
}

#[test]
fn a_read_within_the_timeout_gets_the_message() {
    let name = slot_name("twait");
    let slot = MailslotOptions::new()
        .read_timeout(Duration::from_secs(5))
        .create(&name)
        .unwrap();
    let n2 = name.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        MailslotWriter::open(&n2).unwrap().write(b"late").unwrap();
    });
    let t = Instant::now();
    assert_eq!(slot.read_message().unwrap(), b"late");
    assert!(t.elapsed() < Duration::from_secs(4));
    writer.join().unwrap();
}

#[test]
fn read_timeout_forever_waits_for_a_writer() {
    let name = slot_name("tforever");
    let slot = MailslotOptions::new()
        .read_timeout(ReadTimeout::Forever)
        .create(&name)
        .unwrap();
    assert_eq!(slot.info().unwrap().read_timeout.as_millis(), u32::MAX);
    let n2 = name.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        MailslotWriter::open(&n2).unwrap().write(b"eventually").unwrap();
    });
    let got = watchdog(Duration::from_secs(10), move || {
        let t = Instant::now();
        let m = slot.read_message().unwrap();
        (m, t.elapsed())
    });
    assert_eq!(got.0, b"eventually");
    assert!(got.1 >= Duration::from_millis(250), "it waited: {:?}", got.1);
    writer.join().unwrap();
}

#[test]
fn set_read_timeout_applies_to_later_reads() {
    let name = slot_name("settimeout");
    let slot = MailslotOptions::new().create(&name).unwrap();
    assert_eq!(slot.info().unwrap().read_timeout, ReadTimeout::Forever);
    slot.set_read_timeout(Duration::from_millis(30)).unwrap();
    assert_eq!(slot.info().unwrap().read_timeout.as_millis(), 30);
    assert_win32(slot.read_message(), Win32Error::ERROR_SEM_TIMEOUT);
    slot.set_read_timeout(ReadTimeout::IMMEDIATE).unwrap();
    let t = Instant::now();
    assert_win32(slot.read_message(), Win32Error::ERROR_SEM_TIMEOUT);
    assert!(t.elapsed() < Duration::from_millis(25));
    assert_eq!(mailslot_info(&name).unwrap().read_timeout, ReadTimeout::IMMEDIATE);
}

#[test]
fn a_second_reader_is_already_exists_until_the_first_closes() {
    let name = slot_name("Second");
    let first = MailslotOptions::new().create(&name).unwrap();
    let e = MailslotOptions::new().create(name.to_uppercase()).unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_ALREADY_EXISTS));
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_win32(
        MailslotOptions::new().create(name.replace('\\', "/").to_lowercase()),
        Win32Error::ERROR_ALREADY_EXISTS,
    );
    drop(first);
    assert_win32(MailslotWriter::open(&name), Win32Error::ERROR_FILE_NOT_FOUND);
    let again = MailslotOptions::new().create(&name).unwrap();
    MailslotWriter::open(&name).unwrap().write(b"new reader").unwrap();
    assert_eq!(again.read_message().unwrap(), b"new reader");
}

#[test]
fn one_reader_per_name_across_processes_and_a_crashed_reader_does_not_block() {
    let name = slot_name("xproc");
    let mut child = Peer::spawn_with("mailslot_child::ms_reader", &[&name], &[], &[]);
    assert_eq!(child.expect_line(5 * SECOND), "ready");
    assert_win32(MailslotOptions::new().create(&name), Win32Error::ERROR_ALREADY_EXISTS);
    // Our writes reach the other process's reader.
    MailslotWriter::open(&name).unwrap().write(b"to the child").unwrap();
    assert_eq!(child.expect_line(5 * SECOND), "msg to the child");
    // And a child sees our reader the same way.
    let mine = slot_name("xproc-mine");
    let _slot = MailslotOptions::new().create(&mine).unwrap();
    let other = Peer::spawn_with("mailslot_child::ms_create", &[&mine], &[], &[]);
    assert_eq!(other.expect_line(5 * SECOND), "error ERROR_ALREADY_EXISTS");

    // SIGKILL: no destructor runs, the files stay; the name is free anyway.
    let w = MailslotWriter::open(&name).unwrap();
    child.kill();
    assert_win32(w.write(b"to a dead reader"), Win32Error::ERROR_FILE_NOT_FOUND);
    assert_win32(MailslotWriter::open(&name), Win32Error::ERROR_FILE_NOT_FOUND);
    assert!(
        list_mailslots().unwrap().iter().all(|l| l.name != name),
        "a dead reader is not listed"
    );
    let slot = MailslotOptions::new()
        .read_timeout(Duration::from_secs(5))
        .create(&name)
        .unwrap();
    // A handle belongs to the reader it opened (Win32's mailslot object):
    // the one opened before the crash never reaches the new reader, which
    // may be another user's; a handle opened now does.
    assert_win32(w.write(b"meant for the dead reader"), Win32Error::ERROR_FILE_NOT_FOUND);
    MailslotWriter::open(&name).unwrap().write(b"after the crash").unwrap();
    assert_eq!(slot.read_message().unwrap(), b"after the crash");
    assert_eq!(slot.info().unwrap().message_count, 0, "nothing else arrived");
}

#[test]
fn a_writer_to_a_missing_mailslot_is_file_not_found() {
    let name = slot_name("missing");
    let e = MailslotWriter::open(&name).unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_FILE_NOT_FOUND));
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains(&name), "the error names the mailslot: {e}");
    assert_win32(mailslot_info(&name), Win32Error::ERROR_FILE_NOT_FOUND);
    // A writer whose reader closed, with nobody reading the name now.
    let slot = MailslotOptions::new().create(&name).unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    drop(slot);
    assert_win32(w.write(b"x"), Win32Error::ERROR_FILE_NOT_FOUND);
}

#[test]
fn over_the_max_size_is_invalid_parameter() {
    let name = slot_name("max");
    let slot = MailslotOptions::new()
        .max_message_size(100)
        .read_timeout(Duration::ZERO)
        .create(&name)
        .unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    assert_eq!(w.max_message_size(), 100);
    w.write(&[7; 100]).unwrap();
    let e = w.write(&[7; 101]).unwrap_err();
    assert_eq!(util::code(&e), Some(Win32Error::ERROR_INVALID_PARAMETER));
    assert!(e.to_string().contains(&name) && e.to_string().contains("100"), "{e}");
    let info = slot.info().unwrap();
    assert_eq!((info.message_count, info.next_message_size), (1, Some(100)));
    assert_eq!(slot.read_message().unwrap(), [7; 100]);
    assert_eq!(slot.dropped(), 0);
}

#[test]
fn large_messages_arrive_whole() {
    let name = slot_name("large");
    let slot = MailslotOptions::new()
        .max_message_size(300_000)
        .read_timeout(Duration::from_secs(5))
        .create(&name)
        .unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    w.write(&big[..65_536]).unwrap();
    w.write(&big).unwrap();
    assert_eq!(slot.info().unwrap().next_message_size, Some(65_536));
    assert_eq!(slot.read_message().unwrap(), &big[..65_536]);
    let mut buf = vec![0u8; 300_000];
    assert_eq!(slot.read(&mut buf).unwrap(), 300_000);
    assert_eq!(buf, big);

    // Max size 0 means any size (a 1 MiB message).
    let any = slot_name("any");
    let slot = MailslotOptions::new()
        .read_timeout(Duration::from_secs(5))
        .create(&any)
        .unwrap();
    assert_eq!(slot.info().unwrap().max_message_size, 0);
    let mib: Vec<u8> = (0..1_048_576u32).map(|i| (i % 253) as u8).collect();
    let w = MailslotWriter::open(&any).unwrap();
    w.write(&mib).unwrap();
    assert_eq!(slot.read_message().unwrap(), mib);
}

#[test]
fn a_full_mailslot_holds_writers_back_and_loses_nothing() {
    use pipeslot::mailslot::QUOTA_BYTES;
    let name = slot_name("quota");
    let slot = MailslotOptions::new()
        .read_timeout(Duration::from_secs(10))
        .create(&name)
        .unwrap();
    let total = (QUOTA_BYTES >> 20) as u32 + 16; // MiB messages: past the quota
    let done = std::sync::Arc::new(AtomicU32::new(0));
    let d2 = std::sync::Arc::clone(&done);
    let n2 = name.clone();
    let writer = std::thread::spawn(move || {
        let w = MailslotWriter::open(&n2).unwrap();
        for i in 0..total {
            w.write(&vec![i as u8; 1 << 20]).unwrap();
            d2.store(i + 1, Ordering::SeqCst);
        }
    });
    // Wait until the writer stops making progress (or finishes: a failure).
    let until = Instant::now() + Duration::from_secs(30);
    let mut written = done.load(Ordering::SeqCst);
    loop {
        std::thread::sleep(Duration::from_millis(400));
        let now = done.load(Ordering::SeqCst);
        if now == written || now == total || Instant::now() > until {
            written = now;
            break;
        }
        written = now;
    }
    assert!(
        written < total,
        "the writer waits once the reader's queue is full ({written} of {total})"
    );
    assert!(
        written >= (QUOTA_BYTES >> 20) as u32,
        "the queue took the quota first ({written})"
    );
    for i in 0..total {
        let m = slot.read_message().unwrap();
        assert_eq!((m.len(), m[0]), (1 << 20, i as u8), "message {i}");
    }
    writer.join().unwrap();
    assert_eq!(slot.info().unwrap().message_count, 0);
}

#[test]
fn bad_names_are_invalid_name() {
    util::init();
    for bad in [
        r"\\.\mailslot\",
        "plain",
        r"\\.\pipe\not-a-mailslot",
        r"\\.\mailslot\a\0b",
    ] {
        let bad = bad.replace(r"\0", "\0");
        assert_win32(MailslotOptions::new().create(&bad), Win32Error::ERROR_INVALID_NAME);
        assert_win32(MailslotWriter::open(&bad), Win32Error::ERROR_INVALID_NAME);
    }
    for remote in [r"\\server\mailslot\x", r"\\*\mailslot\x"] {
        assert_win32(MailslotOptions::new().create(remote), Win32Error::ERROR_INVALID_NAME);
    }
    let long = format!(r"\\.\mailslot\{}", "m".repeat(257));
    assert_win32(MailslotOptions::new().create(&long), Win32Error::ERROR_INVALID_NAME);
    // 256 characters (a path with levels) is fine.
    let ok = format!(r"\\.\mailslot\{}\{}", std::process::id(), "m".repeat(240));
    let slot = MailslotOptions::new().read_timeout(Duration::ZERO).create(&ok).unwrap();
    MailslotWriter::open(&ok).unwrap().write(b"deep").unwrap();
    assert_eq!(slot.read_message().unwrap(), b"deep");
}

#[test]
fn info_and_listing_from_another_process() {
    let name = slot_name("Listed");
    let mut child = Peer::spawn_with("mailslot_child::ms_reader", &[&name, "512"], &[], &[]);
    assert_eq!(child.expect_line(5 * SECOND), "ready");
    let info = mailslot_info(&name).unwrap();
    assert_eq!(
        (info.max_message_size, info.message_count, info.next_message_size),
        (512, 0, None)
    );
    let listed = list_mailslots().unwrap();
    let me = listed.iter().find(|l| l.name == name).expect("listed");
    assert_eq!(
        (me.max_message_size, me.reader_pid, me.network),
        (512, child.pid(), false)
    );
    assert_win32(mailslot_info(r"\\host\mailslot\x"), Win32Error::ERROR_NOT_SUPPORTED);
    child.kill();
    assert_win32(mailslot_info(&name), Win32Error::ERROR_FILE_NOT_FOUND);
}

#[test]
fn the_tokio_front_end_reads_writes_and_times_out() {
    use pipeslot::tokio::{MailslotOptions, MailslotWriter};
    let name = slot_name("tokio");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let slot = MailslotOptions::new()
            .read_timeout(Duration::from_millis(100))
            .create(&name)
            .unwrap();
        let t = Instant::now();
        assert_win32(slot.read_message().await, Win32Error::ERROR_SEM_TIMEOUT);
        assert!(t.elapsed() >= Duration::from_millis(95));
        slot.set_read_timeout(ReadTimeout::Forever).unwrap();
        let w = MailslotWriter::open(&name).await.unwrap();
        assert!(!w.is_remote());
        assert_eq!(w.max_message_size(), pipeslot::mailslot::MAX_LOCAL_MESSAGE);
        // More messages than the kernel queue holds, while nobody reads.
        for i in 0..200u32 {
            w.write(&i.to_le_bytes()).await.unwrap();
        }
        assert_eq!(slot.info().unwrap().message_count, 200);
        let mut small = [0u8; 3];
        assert_win32(slot.read(&mut small).await, Win32Error::ERROR_INSUFFICIENT_BUFFER);
        for i in 0..200u32 {
            let mut buf = [0u8; 4];
            assert_eq!(slot.read(&mut buf).await.unwrap(), 4);
            assert_eq!(u32::from_le_bytes(buf), i);
        }
        // A reader waiting for ever is woken by a writer task.
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            w.write(b"wake").await.unwrap();
        });
        let got = tokio::time::timeout(Duration::from_secs(5), slot.read_message()).await;
        assert_eq!(got.expect("woken").unwrap(), b"wake");
        writer.await.unwrap();
        let missing = slot_name("tokio-missing");
        let e = MailslotWriter::open(&missing).await.unwrap_err();
        assert_eq!(Error::win32(&e), Some(Win32Error::ERROR_FILE_NOT_FOUND));
    });
}

#[test]
fn load_eight_writer_processes_every_message_once_none_torn() {
    const WRITERS: u32 = 8;
    const EACH: u32 = 10_000;
    let name = slot_name("load");
    let slot = MailslotOptions::new()
        .read_timeout(Duration::from_secs(20))
        .create(&name)
        .unwrap();
    let t = Instant::now();
    let peers: Vec<Peer> = (0..WRITERS)
        .map(|id| {
            Peer::spawn_with(
                "mailslot_child::ms_load_writer",
                &[&name, &id.to_string(), &EACH.to_string()],
                &[],
                &[],
            )
        })
        .collect();
    let (seen, next) = watchdog(Duration::from_secs(120), move || {
        let mut seen = HashSet::new();
        let mut next = vec![0u32; WRITERS as usize];
        for _ in 0..WRITERS * EACH {
            let m = slot.read_message().expect("every message arrives");
            let (id, seq) = check_load_message(&m).unwrap();
            assert!(id < WRITERS, "writer {id}");
            assert!(seen.insert((id, seq)), "writer {id} message {seq} read twice");
            assert_eq!(seq, next[id as usize], "one writer's messages keep their order");
            next[id as usize] += 1;
        }
        assert_win32(
            {
                slot.set_read_timeout(Duration::from_millis(50)).unwrap();
                slot.read_message()
            },
            Win32Error::ERROR_SEM_TIMEOUT,
        );
        (seen.len(), next)
    });
    assert_eq!(seen, (WRITERS * EACH) as usize);
    assert!(next.iter().all(|&n| n == EACH));
    for p in &peers {
        assert_eq!(p.expect_line(10 * SECOND), "sent");
    }
    eprintln!(
        "load: {} messages from {WRITERS} processes in {:?}",
        WRITERS * EACH,
        t.elapsed()
    );
    // The generator is deterministic: the checker agrees with it.
    let mut m = Vec::new();
    load_message(3, 96, &mut m);
    assert_eq!(check_load_message(&m), Ok((3, 96)));
    m.pop();
    assert!(check_load_message(&m).is_err(), "a torn message is caught");
}
