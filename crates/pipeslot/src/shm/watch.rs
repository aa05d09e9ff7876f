//! One thread per process that watches the sockets of its shared-memory
//! connections and wakes a sleeping reader when its peer goes.
//!
//! Why: a reader that sleeps in a blocking `read` of its eventfd costs one
//! system call per wake-up, half of what `poll` on the eventfd and the
//! socket and then a `read` cost, and that is most of a round trip. But a
//! peer that dies rings no bell. The kernel still closes its socket, so
//! this thread's epoll sees the hang-up, marks the connection gone and
//! rings the reader's own bell for it. A writer that sleeps for room waits
//! on the socket itself, which wakes it without help.
//!
//! Entries are keyed by slot and generation, so an event left over for a
//! closed connection never touches the one that took its slot.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::event::epoll;

/// What the watcher does when a connection's socket hangs up.
#[derive(Debug)]
struct Entry {
    generation: u32,
    gone: Arc<AtomicBool>,
    bell: Arc<OwnedFd>,
}

#[derive(Debug)]
struct Watcher {
    epoll: OwnedFd,
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    generation: u32,
}

/// A connection's registration; dropping it forgets the connection.
#[derive(Debug)]
pub(crate) struct Watched {
    slot: usize,
    generation: u32,
}

impl Drop for Watched {
    fn drop(&mut self) {
        let Some(Ok(w)) = WATCHER.get() else { return };
        let mut s = w.slots.lock().unwrap_or_else(|p| p.into_inner());
        if s.entries.get(self.slot).and_then(|e| e.as_ref()).map(|e| e.generation) == Some(self.generation) {
            s.entries[self.slot] = None;
            s.free.push(self.slot);
        }
    }
}

static WATCHER: OnceLock<io::Result<Watcher>> = OnceLock::new();

fn watcher() -> io::Result<&'static Watcher> {
    let w = WATCHER.get_or_init(|| {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let thread_epoll = rustix::io::fcntl_dupfd_cloexec(&epoll, 0)?;
        std::thread::Builder::new()
            .name("pipeslot-shm-watch".into())
            .spawn(move || run(thread_epoll))?;
        Ok(Watcher {
            epoll,
            slots: Mutex::new(Slots::default()),
        })
    });
    w.as_ref().map_err(|e| io::Error::new(e.kind(), e.to_string()))
}

fn run(epoll: OwnedFd) {
    let mut events = Vec::with_capacity(64);
    loop {
        events.clear();
        match epoll::wait(&epoll, rustix::buffer::spare_capacity(&mut events), None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
        let Some(Ok(w)) = WATCHER.get() else { continue };
        let s = w.slots.lock().unwrap_or_else(|p| p.into_inner());
        for ev in &events {
            let key = ev.data.u64();
            let (slot, generation) = ((key >> 32) as usize, key as u32);
            if let Some(Some(e)) = s.entries.get(slot) {
                if e.generation == generation {
                    e.gone.store(true, Ordering::Release);
                    let _ = rustix::io::write(&*e.bell, &1u64.to_ne_bytes());
                }
            }
        }
    }
}

/// Watches `sock`: when it hangs up, `gone` is set and `bell` rung. Once
/// only (the socket is about to close anyway).
pub(crate) fn watch(sock: BorrowedFd<'_>, gone: Arc<AtomicBool>, bell: Arc<OwnedFd>) -> io::Result<Watched> {
    let w = watcher()?;
    let (slot, generation) = {
        let mut s = w.slots.lock().unwrap_or_else(|p| p.into_inner());
        s.generation = s.generation.wrapping_add(1);
        let generation = s.generation;
        let entry = Some(Entry { generation, gone, bell });
        let slot = match s.free.pop() {
            Some(i) => {
                s.entries[i] = entry;
                i
            }
            None => {
                s.entries.push(entry);
                s.entries.len() - 1
            }
        };
        (slot, generation)
    };
    let watched = Watched { slot, generation };
    let key = (slot as u64) << 32 | u64::from(generation);
    epoll::add(
        &w.epoll,
        sock.as_fd(),
        epoll::EventData::new_u64(key),
        epoll::EventFlags::RDHUP | epoll::EventFlags::HUP | epoll::EventFlags::ONESHOT,
    )?;
    Ok(watched)
}
