//! The workloads: what each measures, its cases, and the peer's side.
//!
//! A workload lists its [`Case`]s; [`run_cases`] runs them interleaved,
//! run after run (case A, case B, ..., then again), each run against a
//! fresh peer process, so slow drift of the machine hits every case alike
//! and a ratio pairs figures taken moments apart.

pub(crate) mod bulk;
pub(crate) mod connect;
pub(crate) mod instances;
pub(crate) mod mailslot;
pub(crate) mod memory;
pub(crate) mod rtt;
pub(crate) mod small;
pub(crate) mod smb;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::peer::{Control, Peer, PeerSpec};
use crate::pin::PinGuard;
use crate::report::{paired_ratio, Outcome, Row, Unit};
use crate::{BenchOptions, Pinning, Workload};

/// How much of everything: the quick and full sets.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) quick: bool,
    pub(crate) runs: usize,
    pub(crate) pinning: Pinning,
    /// Round trips timed per run, after `rtt_warmup` untimed ones.
    pub(crate) rtt_iters: usize,
    pub(crate) rtt_warmup: usize,
    /// Bytes sent per bulk run.
    pub(crate) bulk_bytes: u64,
    /// Messages sent per small-message run.
    pub(crate) small_msgs: u64,
    /// Connections opened per connection-rate run.
    pub(crate) connects: u64,
    /// Client counts of the instances workload.
    pub(crate) clients: Vec<usize>,
    /// Closed-loop phase (aggregate rate) and paced phase (p99) lengths.
    pub(crate) saturate: Duration,
    pub(crate) paced: Duration,
    /// Round trips per second offered in total in the paced phase.
    pub(crate) paced_rate: f64,
    /// Idle instances of the memory workload.
    pub(crate) memory_instances: u64,
    /// Only cases whose name contains one of these (empty: all).
    pub(crate) cases: Vec<String>,
}

impl Plan {
    pub(crate) fn new(opts: &BenchOptions) -> Plan {
        let runs = opts.runs.unwrap_or(if opts.quick { 3 } else { 5 }).max(1);
        if opts.quick {
            Plan {
                quick: true,
                runs,
                pinning: opts.pinning,
                rtt_iters: 2_000,
                rtt_warmup: 200,
                bulk_bytes: 256 << 20,
                small_msgs: 200_000,
                connects: 300,
                clients: vec![1, 4, 16, 64, 254],
                saturate: Duration::from_millis(150),
                paced: Duration::from_millis(300),
                paced_rate: 5_000.0,
                memory_instances: 1_000,
                cases: opts.cases.clone(),
            }
        } else {
            Plan {
                quick: false,
                runs,
                pinning: opts.pinning,
                rtt_iters: 20_000,
                rtt_warmup: 2_000,
                bulk_bytes: 2 << 30,
                small_msgs: 1_000_000,
                connects: 3_000,
                clients: vec![1, 4, 16, 64, 254],
                saturate: Duration::from_millis(600),
                paced: Duration::from_millis(1_500),
                paced_rate: 5_000.0,
                memory_instances: 1_000,
                cases: opts.cases.clone(),
            }
        }
    }

    /// The placements latency workloads run under. Split needs a second
    /// CPU; on one it is left out.
    pub(crate) fn pin_variants(&self, cpu: usize) -> Vec<Place> {
        let split = crate::pin::second_cpu(cpu).map(|other| Place::Split(cpu, other));
        match self.pinning {
            Pinning::Both => [Some(Place::Pinned(cpu)), Some(Place::Unpinned), split]
                .into_iter()
                .flatten()
                .collect(),
            Pinning::Pinned => vec![Place::Pinned(cpu)],
            Pinning::Unpinned => vec![Place::Unpinned],
            Pinning::Split => split.into_iter().collect(),
        }
    }
}

/// The state of one bench run: the plan, a private namespace root, names.
pub(crate) struct Ctx {
    pub(crate) plan: Plan,
    dir: TempDir,
    seq: u32,
    /// The CPU pinned cases run on.
    pub(crate) cpu: usize,
}

impl Ctx {
    pub(crate) fn new(plan: Plan) -> io::Result<Ctx> {
        let dir = TempDir::new()?;
        // This process's pipes (clients and, in some workloads, servers)
        // live in the run's own root, as the peers' do.
        std::env::set_var(pipeslot::ROOT_ENV, dir.path());
        crate::pin::raise_fd_limit();
        Ok(Ctx {
            plan,
            dir,
            seq: 0,
            cpu: crate::pin::first_cpu(),
        })
    }

    /// A fresh address of the kind a case listens on.
    fn addr(&mut self, kind: Addr) -> String {
        self.seq += 1;
        match kind {
            Addr::Pipe => format!(r"\\.\pipe\bench-{}-{}", std::process::id(), self.seq),
            Addr::Mailslot => format!(r"\\.\mailslot\bench\{}-{}", std::process::id(), self.seq),
            Addr::Path => self
                .dir
                .path()
                .join(format!("s{}.sock", self.seq))
                .display()
                .to_string(),
        }
    }

    /// Starts a peer for `case` (pinned if the case is) and runs its
    /// measurement; the peer is stopped and reaped before returning.
    fn run_once(&mut self, workload: Workload, case: &Case<'_>) -> io::Result<Sample> {
        let mut spec = case.spec.clone();
        spec.workload = workload.name().to_owned();
        spec.case = case.name.to_owned();
        spec.addr = self.addr(case.addr);
        let (here, there) = match case.place {
            Place::Pinned(cpu) => (Some(cpu), Some(cpu)),
            Place::Unpinned => (None, None),
            Place::Split(here, there) => (Some(here), Some(there)),
        };
        spec.pin = there;
        spec.lifetime_secs = if self.plan.quick { 60 } else { 300 };
        let _pin = PinGuard::new(here)?;
        let mut peer = Peer::spawn(&spec, self.dir.path())?;
        let sample = (case.measure)(&mut peer, &spec)?;
        peer.finish()?;
        Ok(sample)
    }
}

/// What a case listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Addr {
    /// A pipe name.
    Pipe,
    /// A socket path in the run's folder.
    Path,
    /// A mailslot name.
    Mailslot,
}

/// One run's figure, and its p99 where the figure is a latency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) value: f64,
    pub(crate) p99: Option<f64>,
}

impl Sample {
    pub(crate) fn of(value: f64) -> Sample {
        Sample { value, p99: None }
    }
}

/// The measuring side of a case: given the running peer and its spec.
pub(crate) type Measure<'a> = &'a dyn Fn(&mut Peer, &PeerSpec) -> io::Result<Sample>;

/// One case of a workload.
pub(crate) struct Case<'a> {
    /// The case's name (also tells the peer what to serve).
    pub(crate) name: &'static str,
    /// Size, pinning or client count, as shown in the table.
    pub(crate) variant: String,
    pub(crate) unit: Unit,
    /// The case in the same variant whose figure this one is divided by.
    pub(crate) baseline: Option<&'static str>,
    /// Where this process and its peer run.
    pub(crate) place: Place,
    pub(crate) addr: Addr,
    /// The peer's parameters (workload, case, address and pin are filled in).
    pub(crate) spec: PeerSpec,
    pub(crate) measure: Measure<'a>,
}

/// Where a case's two processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Both on this CPU (no wake-up crosses CPUs).
    Pinned(usize),
    /// Wherever the scheduler puts them.
    Unpinned,
    /// This process on the first CPU, its peer on the second: every
    /// wake-up crosses CPUs.
    Split(usize, usize),
}

/// The variant label of a placement.
pub(crate) fn pin_label(place: Place) -> &'static str {
    match place {
        Place::Pinned(_) => "pinned",
        Place::Unpinned => "unpinned",
        Place::Split(..) => "split",
    }
}

/// Runs every case `plan.runs` times, interleaved, and makes their rows
/// (with ratios to their baselines). A case that fails once is not run
/// again; its row carries the error.
pub(crate) fn run_cases(ctx: &mut Ctx, workload: Workload, cases: &[Case<'_>]) -> Vec<Row> {
    let filter = ctx.plan.cases.clone();
    let cases: Vec<&Case<'_>> = cases
        .iter()
        .filter(|c| filter.is_empty() || filter.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); cases.len()];
    let mut errors: Vec<Option<io::Error>> = cases.iter().map(|_| None).collect();
    for _ in 0..ctx.plan.runs {
        for (i, case) in cases.iter().enumerate() {
            if errors[i].is_some() {
                continue;
            }
            match ctx.run_once(workload, case) {
                Ok(s) => samples[i].push(s),
                Err(e) => errors[i] = Some(e),
            }
        }
    }
    let mut rows: Vec<Row> = cases
        .iter()
        .zip(samples.iter().zip(errors))
        .map(|(case, (s, e))| {
            let values: Vec<f64> = s.iter().map(|s| s.value).collect();
            let p99s: Vec<f64> = s.iter().filter_map(|s| s.p99).collect();
            let mut row = Row::new(workload.name(), case.name, &case.variant, case.unit, values);
            row.p99 = (!p99s.is_empty()).then(|| crate::stats::median(&p99s));
            row.baseline = case
                .baseline
                .map(|b| format!("{}/{}/{}", workload.name(), b, case.variant));
            if let Some(e) = e {
                row.skipped = e.kind() == io::ErrorKind::Unsupported;
                row.error = Some(e.to_string());
            }
            row
        })
        .collect();
    link_ratios(&mut rows);
    rows
}

/// Fills each row's ratio to its baseline row, paired run by run.
pub(crate) fn link_ratios(rows: &mut [Row]) {
    for i in 0..rows.len() {
        let Some(base) = rows[i].baseline.clone() else { continue };
        let Some(b) = rows.iter().find(|r| r.key() == base) else {
            continue;
        };
        let ratio = paired_ratio(&rows[i].samples, &[&b.samples], rows[i].better);
        rows[i].ratio = ratio;
    }
}

/// Runs one workload on the bench's side.
pub(crate) fn run(w: Workload, ctx: &mut Ctx) -> Outcome {
    let result = match w {
        Workload::Rtt => rtt::run(ctx),
        Workload::Bulk => bulk::run(ctx),
        Workload::Small => small::run(ctx),
        Workload::Connect => connect::run(ctx),
        Workload::Instances => instances::run(ctx),
        Workload::Memory => memory::run(ctx),
        Workload::Mailslot => mailslot::run(ctx),
        Workload::Smb => smb::run(ctx),
    };
    result.unwrap_or_else(|e| Outcome::note(format!("{}: failed: {e}", w.name())))
}

/// Serves one case on the peer's side.
pub(crate) fn serve(spec: &PeerSpec, ctl: &mut Control) -> io::Result<()> {
    match spec.workload.as_str() {
        "rtt" => rtt::serve(spec, ctl),
        "bulk" | "small" | "mailslot" => bulk::serve(spec, ctl),
        "connect" => connect::serve(spec, ctl),
        "instances" => instances::serve(spec, ctl),
        "memory" => memory::serve(spec, ctl),
        "torture" => crate::torture::serve(spec, ctl),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no workload named {other}"),
        )),
    }
}

/// A folder removed with everything in it on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("pipeslot-bench-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
