//! pipeslot against the raw kernel transport it rides on, and against what a
//! user would pick instead, measured in one run: the workloads behind both
//! `cargo bench -p pipeslot-bench` and `pipeslot bench`.
//!
//! ```text
//!   cli_main(args) ──▶ BenchOptions ──▶ run() ──▶ Report ──▶ table, JSON, SVG
//!                                         │
//!        workloads/{rtt,bulk,small,connect,instances,mailslot,memory}.rs
//!           each case: this process measures, a re-executed copy of the
//!           current binary (the peer) serves ── peer.rs
//!                                         │
//!        baseline/{unix,seqpacket,datagram,interproc,zeromq}.rs: the others
//! ```
//!
//! Every figure is measured between two processes. The bench re-executes
//! [`std::env::current_exe`] with `PIPESLOT_BENCH_PEER` set to the case's
//! description; the binary's `main` must call [`peer_main_if_requested`]
//! first, which then plays the other side and exits. Cases of one workload
//! are interleaved run by run, so a ratio compares figures taken at the
//! same time on the same machine.
//!
//! A binary that offers the bench calls two functions, first thing in
//! `main` (this is `benches/compare.rs`):
//!
//! ```no_run
//! pipeslot_bench::peer_main_if_requested();
//! std::process::exit(pipeslot_bench::cli_main(std::env::args().skip(1)));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod baseline;
mod chart;
mod cli;
mod link;
mod peer;
mod pin;
mod report;
mod stats;
mod torture;
mod workloads;

use std::io;
use std::path::PathBuf;
use std::time::Instant;

pub use cli::cli_main;
pub use peer::peer_main_if_requested;
pub use report::{Better, Machine, Report, Row, TargetResult, Unit};
pub use torture::torture_main;

/// Which workloads exist, by the names `--only` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
#[non_exhaustive]
pub enum Workload {
    /// 1. Round trip, 64 B request and reply.
    Rtt,
    /// 2. One-way bulk, 64 KiB and 1 MiB messages.
    Bulk,
    /// 3. Small-message rate, 64 B one-way.
    Small,
    /// 4. Connection rate: open + handshake + close.
    Connect,
    /// 5. 1 to 254 concurrent clients against one server.
    Instances,
    /// 6. Local mailslot message rate, 64 B one-way.
    Mailslot,
    /// 7. Resident bytes per idle connected server instance.
    Memory,
    /// 8. Remote pipes: transact and bulk through a private Samba.
    Smb,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 8] = [
        Workload::Rtt,
        Workload::Bulk,
        Workload::Small,
        Workload::Connect,
        Workload::Instances,
        Workload::Mailslot,
        Workload::Memory,
        Workload::Smb,
    ];

    /// The name `--only` takes and the report shows.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Rtt => "rtt",
            Workload::Bulk => "bulk",
            Workload::Small => "small",
            Workload::Connect => "connect",
            Workload::Instances => "instances",
            Workload::Mailslot => "mailslot",
            Workload::Memory => "memory",
            Workload::Smb => "smb",
        }
    }
}

/// Which affinity the latency workloads run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[non_exhaustive]
pub enum Pinning {
    /// Both: each latency figure pinned and unpinned.
    #[default]
    Both,
    /// Both processes on one core (no cross-core wake-ups).
    Pinned,
    /// Wherever the scheduler puts them.
    Unpinned,
    /// One process on each of two CPUs (every wake-up crosses CPUs).
    Split,
}

/// What to run and where to write it.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BenchOptions {
    /// Short runs (under a minute on 2 cores) instead of the full set.
    pub quick: bool,
    /// Only these workloads; empty means all.
    pub only: Vec<Workload>,
    /// Pinned, unpinned or both, for the latency workloads.
    pub pinning: Pinning,
    /// Runs per figure (default: 3 quick, 5 full).
    pub runs: Option<usize>,
    /// Only cases whose name contains one of these; empty means all.
    pub cases: Vec<String>,
    /// Write the report as JSON here.
    pub json: Option<PathBuf>,
    /// Draw the chart (SVG) here.
    pub svg: Option<PathBuf>,
    /// Print one progress line per workload to stderr.
    pub progress: bool,
}

impl BenchOptions {
    /// The quick set: what CI runs.
    pub fn quick() -> BenchOptions {
        BenchOptions {
            quick: true,
            ..BenchOptions::default()
        }
    }

    /// The full set: what docs/BENCHMARKS.md shows.
    pub fn full() -> BenchOptions {
        BenchOptions::default()
    }

    fn wants(&self, w: Workload) -> bool {
        self.only.is_empty() || self.only.contains(&w)
    }
}

/// Runs the selected workloads and returns the report; writes the JSON and
/// SVG files when asked. A case that fails is reported in its row (and in
/// [`Report::failures`]); only problems with the bench itself (no temporary
/// folder, no peer binary, an unwritable output file) are errors here.
///
/// Sets `PIPESLOT_DIR` for this process to a private folder for the run:
/// call it before starting threads that read the environment.
pub fn run(opts: &BenchOptions) -> io::Result<Report> {
    let started = Instant::now();
    let plan = workloads::Plan::new(opts);
    let mut ctx = workloads::Ctx::new(plan)?;
    let mut report = Report::new(&ctx.plan);
    for w in Workload::ALL {
        if !opts.wants(w) {
            continue;
        }
        if opts.progress {
            eprintln!("pipeslot bench: {} ...", w.name());
        }
        let t = Instant::now();
        let out = workloads::run(w, &mut ctx);
        report.add(out);
        if opts.progress {
            eprintln!(
                "pipeslot bench: {} done in {:.1} s",
                w.name(),
                t.elapsed().as_secs_f64()
            );
        }
    }
    report.finish(started.elapsed());
    if let Some(path) = &opts.json {
        std::fs::write(path, report.to_json())?;
    }
    if let Some(path) = &opts.svg {
        report.write_svg(path)?;
    }
    Ok(report)
}
