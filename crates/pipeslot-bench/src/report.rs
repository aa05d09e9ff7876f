//! The report: one row per figure, the targets, the machine; printed as a
//! table, written as JSON, drawn as a chart.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::stats::median;
use crate::workloads::Plan;

/// Which way is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Latency, memory.
    Lower,
    /// Throughput, rates.
    Higher,
}

/// What a figure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unit {
    /// Microseconds (a latency).
    Micros,
    /// GiB per second (a throughput).
    GibPerSec,
    /// Operations per second (messages, connections, round trips).
    PerSec,
    /// Bytes.
    Bytes,
}

impl Unit {
    /// Lower or higher is better.
    pub fn better(self) -> Better {
        match self {
            Unit::Micros | Unit::Bytes => Better::Lower,
            Unit::GibPerSec | Unit::PerSec => Better::Higher,
        }
    }

    /// A value with its unit, for the table.
    pub fn format(self, v: f64) -> String {
        if !v.is_finite() {
            return "-".to_owned();
        }
        match self {
            Unit::Micros => format!("{v:.1} µs"),
            Unit::GibPerSec => format!("{v:.2} GiB/s"),
            Unit::PerSec if v >= 1e6 => format!("{:.2} M/s", v / 1e6),
            Unit::PerSec if v >= 1e3 => format!("{:.1} k/s", v / 1e3),
            Unit::PerSec => format!("{v:.0} /s"),
            Unit::Bytes if v >= 1024.0 => format!("{:.1} KiB", v / 1024.0),
            Unit::Bytes => format!("{v:.0} B"),
        }
    }
}

/// One figure: a case of a workload in one variant, over several runs.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Row {
    /// The workload (`rtt`, `bulk`, ...).
    pub workload: String,
    /// The case (`pipeslot-blocking`, `unix-stream`, ...).
    pub case: String,
    /// Size, pinning or client count.
    pub variant: String,
    /// What the figure counts.
    pub unit: Unit,
    /// Which way is better.
    pub better: Better,
    /// One figure per run, in run order.
    pub samples: Vec<f64>,
    /// The median of the samples.
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
    /// For latencies: the median over runs of each run's p99, in µs.
    pub p99: Option<f64>,
    /// The key of the row this one is compared with.
    pub baseline: Option<String>,
    /// This figure over the baseline's: the median of per-run ratios.
    pub ratio: Option<f64>,
    /// Why the case has no (or fewer) figures.
    pub error: Option<String>,
    /// The case could not run here (a missing optional feature).
    pub skipped: bool,
}

impl Row {
    pub(crate) fn new(workload: &str, case: &str, variant: &str, unit: Unit, samples: Vec<f64>) -> Row {
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Row {
            workload: workload.to_owned(),
            case: case.to_owned(),
            variant: variant.to_owned(),
            unit,
            better: unit.better(),
            median: median(&samples),
            min,
            max,
            samples,
            p99: None,
            baseline: None,
            ratio: None,
            error: None,
            skipped: false,
        }
    }

    /// `workload/case/variant`: how targets and baselines name a row.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.workload, self.case, self.variant)
    }

    /// Half the range of the samples, relative to the median.
    pub fn spread(&self) -> f64 {
        (self.max - self.min) / 2.0 / self.median
    }
}

/// The median over runs of subject ÷ baseline, where each run's baseline
/// is the best of `bases` in that run; `None` without paired samples.
pub(crate) fn paired_ratio(subject: &[f64], bases: &[&[f64]], better: Better) -> Option<f64> {
    let runs = bases.iter().map(|b| b.len()).chain([subject.len()]).min()?;
    let ratios: Vec<f64> = (0..runs)
        .map(|i| {
            let each = bases.iter().map(|b| b[i]);
            let best = match better {
                Better::Lower => each.fold(f64::INFINITY, f64::min),
                Better::Higher => each.fold(f64::NEG_INFINITY, f64::max),
            };
            subject[i] / best
        })
        .collect();
    (!ratios.is_empty()).then(|| median(&ratios))
}

/// Run by run, the best figure among `rows`.
fn best_per_run(rows: &[&Row], better: Better) -> Vec<f64> {
    let runs = rows.iter().map(|r| r.samples.len()).min().unwrap_or(0);
    (0..runs)
        .map(|i| {
            let each = rows.iter().map(|r| r.samples[i]);
            match better {
                Better::Lower => each.fold(f64::INFINITY, f64::min),
                Better::Higher => each.fold(f64::NEG_INFINITY, f64::max),
            }
        })
        .collect()
}

/// A target as a workload states it.
#[derive(Debug, Clone)]
pub(crate) struct TargetDef {
    what: String,
    /// The figure under test: the best of these in each run.
    subjects: Vec<String>,
    /// Empty: the limit applies to the subject's median itself.
    bases: Vec<String>,
    limit: f64,
    at_most: bool,
}

impl TargetDef {
    /// subject ÷ best of `bases` ≤ `limit`.
    pub(crate) fn ratio(what: String, subject: String, bases: Vec<String>, limit: f64) -> TargetDef {
        TargetDef {
            what,
            subjects: vec![subject],
            bases,
            limit,
            at_most: true,
        }
    }

    /// subject ÷ best of `bases` ≥ `limit`.
    pub(crate) fn ratio_at_least(what: String, subject: String, bases: Vec<String>, limit: f64) -> TargetDef {
        TargetDef {
            at_most: false,
            ..TargetDef::ratio(what, subject, bases, limit)
        }
    }

    /// The best of `subjects` ÷ the best of `bases` ≥ `limit`, run by run
    /// (each side in its best configuration).
    pub(crate) fn best_at_least(what: String, subjects: Vec<String>, bases: Vec<String>, limit: f64) -> TargetDef {
        TargetDef {
            subjects,
            ..TargetDef::ratio_at_least(what, String::new(), bases, limit)
        }
    }

    /// The subject's median ≤ `limit`.
    pub(crate) fn absolute(what: String, subject: String, limit: f64) -> TargetDef {
        TargetDef::ratio(what, subject, Vec::new(), limit)
    }

    fn evaluate(&self, rows: &[Row]) -> TargetResult {
        let find = |k: &str| rows.iter().find(|r| r.key() == k);
        let subjects: Option<Vec<&Row>> = self.subjects.iter().map(|k| find(k)).collect();
        let subject = subjects.as_ref().and_then(|s| s.first().copied());
        let value = subject.and_then(|s| {
            if self.bases.is_empty() {
                return s.median.is_finite().then_some(s.median);
            }
            let bases: Option<Vec<&[f64]>> = self.bases.iter().map(|b| find(b).map(|r| &r.samples[..])).collect();
            let best = best_per_run(subjects.as_deref()?, s.better);
            paired_ratio(&best, &bases?, s.better)
        });
        TargetResult {
            what: self.what.clone(),
            value,
            limit: self.limit,
            at_most: self.at_most,
            is_ratio: !self.bases.is_empty(),
            unit: subject.map(|s| s.unit),
            met: value.map(|v| if self.at_most { v <= self.limit } else { v >= self.limit }),
        }
    }
}

/// A target and how this run did against it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TargetResult {
    /// The target in words.
    pub what: String,
    /// The measured ratio (or figure); `None` when a side did not run.
    pub value: Option<f64>,
    /// The limit.
    pub limit: f64,
    /// `value ≤ limit` (else `value ≥ limit`).
    pub at_most: bool,
    /// The value is a ratio (else a figure in `unit`).
    pub is_ratio: bool,
    /// The subject's unit.
    pub unit: Option<Unit>,
    /// Met, missed, or unknown.
    pub met: Option<bool>,
}

/// What one workload produced.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) rows: Vec<Row>,
    pub(crate) targets: Vec<TargetDef>,
    pub(crate) notes: Vec<String>,
}

impl Outcome {
    pub(crate) fn note(s: impl Into<String>) -> Outcome {
        Outcome {
            notes: vec![s.into()],
            ..Outcome::default()
        }
    }
}

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Machine {
    /// CPU model name.
    pub cpu: String,
    /// CPUs this process may use.
    pub cpus: usize,
    /// `uname -r`.
    pub kernel: String,
    /// The load average (1, 5, 15 min) when the run started.
    pub load_at_start: String,
}

impl Machine {
    fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            kernel,
            load_at_start: load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        }
    }
}

/// Everything one bench run measured.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// `quick` or `full`.
    pub mode: String,
    /// Runs per figure.
    pub runs: usize,
    /// Where it ran.
    pub machine: Machine,
    /// Seconds since the Unix epoch when it started.
    pub started_unix: u64,
    /// How long the whole run took, in seconds.
    pub seconds: f64,
    /// Every figure.
    pub rows: Vec<Row>,
    /// Every target, met or not.
    pub targets: Vec<TargetResult>,
    /// Remarks: skipped workloads, how figures were taken.
    pub notes: Vec<String>,
}

impl Report {
    pub(crate) fn new(plan: &Plan) -> Report {
        Report {
            mode: if plan.quick { "quick" } else { "full" }.to_owned(),
            runs: plan.runs,
            machine: Machine::probe(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            seconds: 0.0,
            rows: Vec::new(),
            targets: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, out: Outcome) {
        let all: Vec<Row> = self.rows.iter().chain(&out.rows).cloned().collect();
        self.targets.extend(out.targets.iter().map(|t| t.evaluate(&all)));
        self.rows.extend(out.rows);
        self.notes.extend(out.notes);
    }

    pub(crate) fn finish(&mut self, took: Duration) {
        self.seconds = took.as_secs_f64();
    }

    /// Cases that failed (skipped ones do not count).
    pub fn failures(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| r.error.is_some() && !r.skipped).collect()
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Draws the chart (latency and throughput per transport) as SVG.
    pub fn write_svg(&self, path: &Path) -> io::Result<()> {
        crate::chart::write_svg(self, path)
    }

    /// Prints the table: each figure's median, spread (± half the range
    /// over the runs) and ratio to its baseline; then the targets.
    pub fn print_table(&self, w: &mut impl Write) -> io::Result<()> {
        writeln!(
            w,
            "pipeslot bench, {} run: {} runs per figure; median, ±half-range over runs, ratio to the \
             baseline from the same runs",
            self.mode, self.runs
        )?;
        writeln!(
            w,
            "machine: {} ({} CPUs), Linux {}, load at start {}",
            self.machine.cpu, self.machine.cpus, self.machine.kernel, self.machine.load_at_start
        )?;
        let mut last = "";
        for r in &self.rows {
            if r.workload != last {
                writeln!(w)?;
                writeln!(
                    w,
                    "{:<10} {:<25} {:<26} {:>12} {:>6} {:>7}  baseline",
                    r.workload, "case", "variant", "median", "±", "ratio"
                )?;
                last = &r.workload;
            }
            let base = r.baseline.as_deref().and_then(|b| b.split('/').nth(1)).unwrap_or("");
            if let Some(e) = &r.error {
                if r.samples.is_empty() {
                    let what = if r.skipped { "skipped" } else { "FAILED" };
                    writeln!(w, "{:<10} {:<25} {:<26} {what}: {e}", "", r.case, r.variant)?;
                    continue;
                }
            }
            let ratio = r.ratio.map_or(String::new(), |x| format!("{x:.2}×"));
            let line = format!(
                "{:<10} {:<25} {:<26} {:>12} {:>5.0}% {:>7}  {}",
                "",
                r.case,
                r.variant,
                r.unit.format(r.median),
                r.spread() * 100.0,
                ratio,
                base
            );
            writeln!(w, "{}", line.trim_end())?;
        }
        writeln!(w)?;
        writeln!(w, "targets")?;
        for t in &self.targets {
            let verdict = match t.met {
                Some(true) => "met   ",
                Some(false) => "MISSED",
                None => "n/a   ",
            };
            let value = match (t.value, t.is_ratio, t.unit) {
                (None, ..) => "-".to_owned(),
                (Some(v), true, _) => format!("{v:.2}×"),
                (Some(v), false, Some(u)) => u.format(v),
                (Some(v), false, None) => format!("{v:.2}"),
            };
            writeln!(w, "  [{verdict}] {:<72} {value}", t.what)?;
        }
        for n in &self.notes {
            writeln!(w, "note: {n}")?;
        }
        writeln!(w, "took {:.1} s", self.seconds)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(case: &str, unit: Unit, samples: &[f64]) -> Row {
        Row::new("w", case, "v", unit, samples.to_vec())
    }

    #[test]
    fn ratios_pair_runs_and_take_the_best_baseline_of_each() {
        // Run 2 is slow for everyone: pairing cancels it out.
        let r = paired_ratio(&[11.0, 22.0, 11.0], &[&[10.0, 20.0, 10.0]], Better::Lower);
        assert!((r.unwrap() - 1.1).abs() < 1e-9);
        let best = paired_ratio(&[9.0], &[&[10.0], &[12.0]], Better::Higher);
        assert!((best.unwrap() - 0.75).abs() < 1e-9, "divided by the faster baseline");
        assert_eq!(paired_ratio(&[1.0], &[&[]], Better::Lower), None);
    }

    #[test]
    fn targets_say_met_missed_or_unknown() {
        let rows = vec![
            row("a", Unit::Micros, &[11.0, 12.0]),
            row("b", Unit::Micros, &[10.0, 10.0]),
            row("m", Unit::Bytes, &[2048.0]),
        ];
        let within = TargetDef::ratio("x".into(), "w/a/v".into(), vec!["w/b/v".into()], 1.15).evaluate(&rows);
        assert_eq!(within.met, Some(true));
        let tight = TargetDef::ratio("x".into(), "w/a/v".into(), vec!["w/b/v".into()], 1.05).evaluate(&rows);
        assert_eq!(tight.met, Some(false));
        let absent = TargetDef::ratio("x".into(), "w/a/v".into(), vec!["w/zz/v".into()], 1.0).evaluate(&rows);
        assert_eq!(absent.met, None);
        let mem = TargetDef::absolute("m".into(), "w/m/v".into(), 16384.0).evaluate(&rows);
        assert_eq!((mem.met, mem.is_ratio), (Some(true), false));
    }

    #[test]
    fn the_table_and_json_hold_every_row() {
        let mut report = Report::new(&Plan::new(&crate::BenchOptions::quick()));
        report.add(Outcome {
            rows: vec![row("a", Unit::PerSec, &[1e6, 2e6])],
            targets: Vec::new(),
            notes: vec!["a note".into()],
        });
        let mut out = Vec::new();
        report.print_table(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("1.50 M/s"), "{text}");
        assert!(text.contains("note: a note"));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["rows"][0]["case"], "a");
        assert_eq!(json["mode"], "quick");
    }
}
