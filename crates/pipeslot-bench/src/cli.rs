//! `[--quick] [--json FILE] [--svg FILE] [--only NAME]… [--pin MODE] [--runs N] [--case TEXT]…`:
//! the arguments of `pipeslot bench` and of `cargo bench -p pipeslot-bench`.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;

use crate::{BenchOptions, Pinning, Workload};

/// pipeslot against raw Unix sockets and its peers, in one run.
#[derive(Debug, Parser)]
#[command(name = "pipeslot bench", disable_version_flag = true)]
struct Args {
    /// Short runs (under a minute on 2 cores), as CI runs them.
    #[arg(long)]
    quick: bool,
    /// Write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw the chart (SVG) to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Run only this workload (repeatable).
    #[arg(long, value_name = "NAME", value_enum)]
    only: Vec<Workload>,
    /// Latency workloads pinned to one core, unpinned, or both.
    #[arg(long, value_name = "MODE", value_enum, default_value = "both")]
    pin: Pinning,
    /// Runs per figure (default 3 quick, 5 full).
    #[arg(long, value_name = "N")]
    runs: Option<usize>,
    /// Run only cases whose name contains TEXT (repeatable; for profiling).
    #[arg(long, value_name = "TEXT")]
    case: Vec<String>,
}

/// Options that take a value.
const WITH_VALUE: [&str; 6] = ["--json", "--svg", "--only", "--pin", "--runs", "--case"];
/// Options without one.
const FLAGS: [&str; 3] = ["--quick", "--help", "-h"];

/// Keeps the arguments we know. Unknown flags are dropped (cargo bench
/// passes `--bench`, test harness flags may follow); a bare word that names
/// a workload means `--only` it (as `cargo bench -- rtt`).
fn known(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = vec!["pipeslot bench".to_owned()];
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.next() {
        let name = a.split('=').next().unwrap_or("");
        if WITH_VALUE.contains(&name) {
            let inline = a.contains('=');
            out.push(a);
            if !inline {
                if let Some(v) = it.next() {
                    out.push(v);
                }
            }
        } else if FLAGS.contains(&a.as_str()) {
            out.push(a);
        } else if !a.starts_with('-') && Workload::ALL.iter().any(|w| w.name() == a) {
            out.push("--only".to_owned());
            out.push(a);
        } else if a != "--bench" {
            eprintln!("pipeslot bench: ignoring {a:?}");
        }
    }
    out
}

/// Parses the arguments, runs, prints the table to stdout; returns the exit
/// status: 0, 1 when a case or the run failed, 2 for bad arguments.
///
/// `args` excludes the program name (and the `bench` verb).
pub fn cli_main(args: impl IntoIterator<Item = String>) -> i32 {
    let args = match Args::try_parse_from(known(args)) {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let opts = BenchOptions {
        quick: args.quick,
        only: args.only,
        pinning: args.pin,
        runs: args.runs,
        cases: args.case,
        json: args.json,
        svg: args.svg,
        progress: true,
    };
    let report = match crate::run(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pipeslot bench: {e}");
            return 1;
        }
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = report.print_table(&mut out).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("pipeslot bench: {e}");
            return 1;
        }
    }
    let failed = report.failures();
    for r in &failed {
        eprintln!(
            "pipeslot bench: {} failed: {}",
            r.key(),
            r.error.as_deref().unwrap_or("")
        );
    }
    i32::from(!failed.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Args {
        Args::try_parse_from(known(a.iter().map(|s| s.to_string()))).unwrap()
    }

    #[test]
    fn cargo_bench_flags_are_ignored_and_words_filter() {
        let a = parse(&[
            "--bench",
            "--quick",
            "rtt",
            "--nocapture",
            "--json=x.json",
            "--only",
            "bulk",
        ]);
        assert!(a.quick);
        assert_eq!(a.json, Some(PathBuf::from("x.json")));
        assert_eq!(a.only, vec![Workload::Rtt, Workload::Bulk]);
        assert_eq!(a.pin, Pinning::Both);
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(Args::try_parse_from(known(["--only".to_owned(), "nope".to_owned()])).is_err());
    }
}
