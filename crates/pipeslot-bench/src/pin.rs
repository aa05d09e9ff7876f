//! CPU affinity and process limits.
//!
//! Pinning applies to the calling thread and to every thread and process
//! it starts afterwards (they inherit the mask), so the bench pins itself
//! before it starts a peer and its own runtime, and restores the mask after.

use std::io;

use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

/// Runs the calling thread (and what it starts from now on) on `cpu` alone.
pub(crate) fn pin_thread(cpu: usize) -> io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set)?;
    Ok(())
}

/// The first CPU this thread may run on: the one pinned cases use.
pub(crate) fn first_cpu() -> usize {
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU).find(|&c| set.is_set(c)).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Another CPU this thread may run on than `cpu`: where split cases put
/// their peer.
pub(crate) fn second_cpu(cpu: usize) -> Option<usize> {
    let set = sched_getaffinity(None).ok()?;
    (0..CpuSet::MAX_CPU).find(|&c| c != cpu && set.is_set(c))
}

/// Pins the calling thread while alive; restores the previous mask on drop.
pub(crate) struct PinGuard {
    saved: Option<CpuSet>,
}

impl PinGuard {
    /// Pins to `cpu` when given; a no-op guard otherwise.
    pub(crate) fn new(cpu: Option<usize>) -> io::Result<PinGuard> {
        let Some(cpu) = cpu else {
            return Ok(PinGuard { saved: None });
        };
        let saved = sched_getaffinity(None)?;
        pin_thread(cpu)?;
        Ok(PinGuard { saved: Some(saved) })
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        if let Some(set) = &self.saved {
            let _ = sched_setaffinity(None, set);
        }
    }
}

/// Raises the open-file limit to its maximum (1,000 connections need
/// 1,000 descriptors in each process).
pub(crate) fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    if let Some(max) = lim.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(max),
                maximum: Some(max),
            },
        );
    }
}

/// Resident memory of this process in bytes (`VmRSS` in /proc/self/status).
pub(crate) fn resident_bytes() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::other("no VmRSS in /proc/self/status"))
}
