//! `pipeslot bench`: the verb runs the shared workloads (peers are
//! re-executed copies of the command) and writes its JSON. No timing is
//! asserted: figures belong to benchmarks, not tests.

use std::time::Duration;

use super::util::test;

#[test]
fn bench_runs_a_workload_between_two_processes_and_writes_json() {
    test("bench", Duration::from_secs(120), |ctx| {
        let json = ctx.dir.join("bench.json");
        let run = ctx.run(&["bench", "--quick", "--only", "memory", "--json", json.to_str().unwrap()]);
        assert!(run.ok(), "{run:?}");
        // Progress goes to stderr, the table to stdout.
        assert!(run.stderr_str().contains("memory"), "{run:?}");
        let out = run.stdout_str();
        assert!(out.contains("pipeslot-blocking"), "{out}");
        assert!(out.contains("unix-stream"), "{out}");
        let text = std::fs::read_to_string(&json).expect("the JSON file");
        assert!(text.contains("\"pipeslot-blocking\""), "{text}");
        assert!(text.contains("memory"), "{text}");
    });
}

#[test]
fn bench_refuses_an_unknown_workload() {
    test("bench-bad", Duration::from_secs(30), |ctx| {
        let out = ctx.run(&["bench", "--only", "nosuch"]);
        assert_eq!(out.status.code(), Some(2), "usage error: {out:?}");
    });
}
