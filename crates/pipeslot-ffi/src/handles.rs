//! Handles are numbers, as Win32's are, looked up in one table: a stale,
//! closed or made-up handle is `ERROR_INVALID_HANDLE (6)`, never a wild
//! pointer. A call holds its object (an `Arc`) while it runs, so a close on
//! another thread cannot free it under the call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use pipeslot::blocking::{MailslotServer, MailslotWriter, NamedPipeClient, NamedPipeServer};
use pipeslot::Win32Error;

use crate::errors::Fail;

/// What a handle stands for.
#[derive(Debug)]
pub(crate) enum Object {
    Pipe(Pipe),
    Mailslot(MailslotServer),
    Writer(MailslotWriter),
}

/// Either end of a pipe, with the modes the calls dispatch on.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub(crate) end: End,
    /// PIPE_TYPE_MESSAGE: each WriteFile is one message.
    pub(crate) message_type: bool,
    /// PIPE_READMODE_MESSAGE: each ReadFile takes from one message.
    pub(crate) message_reads: AtomicBool,
}

// Each pipe lives in an Arc of its own: a box would only add a hop per call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum End {
    Server(NamedPipeServer),
    Client(NamedPipeClient),
}

impl Pipe {
    pub(crate) fn reads_messages(&self) -> bool {
        self.message_reads.load(Ordering::Relaxed)
    }
}

struct Table {
    next: u64,
    objects: HashMap<u64, Arc<Object>>,
}

static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(|| {
    Mutex::new(Table {
        next: 0x100,
        objects: HashMap::new(),
    })
});

fn table() -> std::sync::MutexGuard<'static, Table> {
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A new handle for `o` (never 0, never one given before).
pub(crate) fn insert(o: Object) -> u64 {
    let mut t = table();
    let h = t.next;
    t.next += 4;
    t.objects.insert(h, Arc::new(o));
    h
}

fn invalid(h: u64) -> Fail {
    Fail::new(
        Win32Error::ERROR_INVALID_HANDLE,
        format!("{h:#x} is not an open pipeslot handle"),
    )
}

pub(crate) fn get(h: u64) -> Result<Arc<Object>, Fail> {
    table().objects.get(&h).cloned().ok_or_else(|| invalid(h))
}

/// Runs `f` on the handle's pipe; `ERROR_INVALID_HANDLE` when it is not one.
pub(crate) fn with_pipe<T>(h: u64, f: impl FnOnce(&Pipe) -> Result<T, Fail>) -> Result<T, Fail> {
    match &*get(h)? {
        Object::Pipe(p) => f(p),
        _ => Err(Fail::new(
            Win32Error::ERROR_INVALID_HANDLE,
            format!("{h:#x} is not a pipe handle"),
        )),
    }
}

pub(crate) fn remove(h: u64) -> Result<Arc<Object>, Fail> {
    table().objects.remove(&h).ok_or_else(|| invalid(h))
}

/// Open handles (the tests check that closing frees them).
pub(crate) fn count() -> usize {
    table().objects.len()
}
