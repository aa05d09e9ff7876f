//! The shared-memory data path's only `unsafe`: a region of memory that
//! another process maps too.
//!
//! Invariants, which every function here relies on:
//! - `ptr..ptr + len` stays mapped read-write (or allocated) for the
//!   region's whole life and is 64-byte aligned. A mapped segment is a memfd
//!   sealed against shrinking (`F_SEAL_SHRINK`, checked before mapping by
//!   [`super::segment`]), so no access through it can fault.
//! - The peer writes these bytes whenever it likes. No Rust reference to
//!   shared bytes is ever made, except to atomics: control words are
//!   `AtomicU64`/`AtomicU32` in place; data is copied with
//!   `ptr::copy_nonoverlapping` between the region and private buffers. A
//!   peer that scribbles concurrently changes what is copied (the caller
//!   validates every value it reads), never our memory.
//! - Offsets come from our own layout and masked ring positions, never
//!   from the peer; a bounds check still guards every access, and failing
//!   it is a bug (a panic), which the fuzz target `shm_ring` looks for.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// Control words are aligned to cache lines by the layout; the region
/// itself must be at least this aligned.
const ALIGN: usize = 64;

/// One cache line of heap memory, for regions that are not mapped.
#[repr(C, align(64))]
struct Line([AtomicU64; 8]);

enum Backing {
    /// `mmap(MAP_SHARED)` of a memfd; unmapped on drop.
    Map,
    /// Private memory (tests, Miri): `Box::into_raw` of
    /// this many lines, freed on drop.
    #[cfg_attr(not(test), allow(dead_code))]
    Heap(usize),
}

/// Memory shared with one peer process.
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
    backing: Backing,
}

// SAFETY: the region is plain memory; every access goes through atomics or
// raw copies (never references), so sharing it between threads is as sound
// as sharing it with the peer process, which the design already assumes.
unsafe impl Send for Region {}
// SAFETY: as for Send.
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region").field("len", &self.len).finish_non_exhaustive()
    }
}

impl Region {
    /// Maps `len` bytes of `fd` shared, read-write. The caller has checked
    /// that the file is at least `len` long and cannot shrink.
    pub(crate) fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<Region> {
        use rustix::mm::{MapFlags, ProtFlags};
        if len == 0 {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        // SAFETY: a new mapping at an address of the kernel's choice (null
        // hint, no MAP_FIXED), so no existing memory is replaced; the result
        // is checked before use and owned by the Region, which unmaps it.
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }?;
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from(io::ErrorKind::Other))?;
        // Page-aligned by mmap's contract.
        debug_assert_eq!(ptr.as_ptr() as usize % ALIGN, 0);
        Ok(Region {
            ptr,
            len,
            backing: Backing::Map,
        })
    }

    /// `len` bytes of zeroed private memory laid out as a mapping would be.
    #[cfg(test)]
    pub(crate) fn heap(len: usize) -> Region {
        let lines = len.div_ceil(ALIGN).max(1);
        let mem: Box<[Line]> = (0..lines)
            .map(|_| Line(std::array::from_fn(|_| AtomicU64::new(0))))
            .collect();
        // A raw pointer from the start, so that no later move of a Box
        // invalidates it.
        let raw = Box::into_raw(mem);
        let ptr = NonNull::new(raw.cast::<u8>()).unwrap_or(NonNull::dangling());
        Region {
            ptr,
            len,
            backing: Backing::Heap(lines),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn check(&self, off: usize, n: usize, align: usize) {
        assert!(
            off.checked_add(n).is_some_and(|end| end <= self.len) && off.is_multiple_of(align),
            "shared region access out of bounds: {off}+{n} of {}",
            self.len
        );
    }

    /// The control word at `off` (8-aligned, inside the region).
    pub(crate) fn u64_at(&self, off: usize) -> &AtomicU64 {
        self.check(off, 8, 8);
        // SAFETY: in bounds and aligned (checked), valid for the region's
        // life (invariant); AtomicU64 has the size and alignment of u64 and
        // any bit pattern is a valid value; all access to these bytes is
        // atomic, here and in the peer.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU64>() }
    }

    /// The control word at `off` (4-aligned, inside the region).
    pub(crate) fn u32_at(&self, off: usize) -> &AtomicU32 {
        self.check(off, 4, 4);
        // SAFETY: as for u64_at.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU32>() }
    }

    /// Copies `dst.len()` bytes out of the region from `off`.
    pub(crate) fn read(&self, off: usize, dst: &mut [u8]) {
        self.check(off, dst.len(), 1);
        // SAFETY: the source range is in bounds (checked) and valid
        // (invariant); `dst` is a private buffer, so the ranges cannot
        // overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), dst.as_mut_ptr(), dst.len()) }
    }

    /// Copies `src` into the region at `off`.
    pub(crate) fn write(&self, off: usize, src: &[u8]) {
        self.check(off, src.len(), 1);
        // SAFETY: the destination range is in bounds (checked) and valid
        // (invariant); `src` is a private buffer, never the region.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(off), src.len()) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        match self.backing {
            Backing::Map => {
                // SAFETY: ptr/len are exactly what mmap returned; no
                // reference into the region outlives it (atomics are
                // borrowed from &self).
                let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
            }
            Backing::Heap(lines) => {
                let raw = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr().cast::<Line>(), lines);
                // SAFETY: exactly the pointer and length Box::into_raw gave
                // in `heap`, freed once, here.
                drop(unsafe { Box::from_raw(raw) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn heap_region_reads_back_what_was_written() {
        let r = Region::heap(200);
        assert_eq!(r.len(), 200);
        r.write(3, b"hello");
        let mut b = [0u8; 5];
        r.read(3, &mut b);
        assert_eq!(&b, b"hello");
        r.u64_at(64).store(7, Ordering::Relaxed);
        r.u32_at(132).store(9, Ordering::Relaxed);
        assert_eq!(r.u64_at(64).load(Ordering::Relaxed), 7);
        assert_eq!(r.u32_at(132).load(Ordering::Relaxed), 9);
        let mut all = [0u8; 200];
        r.read(0, &mut all);
        assert_eq!(&all[3..8], b"hello");
        assert_eq!(all[64], 7);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn an_access_past_the_end_is_refused() {
        let r = Region::heap(64);
        r.write(60, b"hello");
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn a_misaligned_word_is_refused() {
        Region::heap(64).u64_at(4);
    }

    #[test]
    fn offsets_that_overflow_are_refused_not_wrapped() {
        let r = Region::heap(64);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.read(usize::MAX, &mut [0u8; 2])));
        assert!(caught.is_err());
    }
}
