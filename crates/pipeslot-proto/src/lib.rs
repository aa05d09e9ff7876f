//! The deterministic core of pipeslot: Win32 names, the Win32 error table and
//! the wire codecs.
//!
//! Determinism contract: nothing in this crate performs I/O, reads a clock,
//! draws a random number or spawns a thread. Every function's result depends
//! only on its arguments, so codecs and state machines can be tested byte for
//! byte and fuzzed. The `pipeslot` crate adds sockets, time and threads on top.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod name;
pub mod status;
pub mod wire;

pub use name::{Host, MailslotName, Name, NameError, PipeName};
pub use status::Win32Error;
