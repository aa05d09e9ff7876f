//! `cargo bench -p pipeslot-bench [-- --quick] [-- --json FILE --svg FILE]`:
//! the same workloads and table as `pipeslot bench`. This binary is also
//! its own peer: the bench re-executes it with `PIPESLOT_BENCH_PEER` set.

fn main() {
    pipeslot_bench::peer_main_if_requested();
    std::process::exit(pipeslot_bench::cli_main(std::env::args().skip(1)));
}
