#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer and runs each for a short while on
# its seeds (SECONDS_PER_TARGET, default 30; TARGETS="a b" runs only those).
# Needs a nightly toolchain; with only stable it checks that the targets
# compile.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${SECONDS_PER_TARGET:-30}
targets=${TARGETS:-$(sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' Cargo.toml | grep -v '^pipeslot-fuzz$' || true)}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz-smoke: no nightly toolchain; checking that the targets build on stable"
  cargo check --bins
  exit 0
fi
# The flags cargo-fuzz passes, without needing cargo-fuzz installed.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# --target keeps the flags off build scripts, as cargo-fuzz does.
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
cargo +nightly build --release --bins --target "$triple"
for t in $targets; do
  corpus=$(mktemp -d)
  cp -r "seeds/$t/." "$corpus/" 2>/dev/null || true
  echo "fuzz-smoke: $t for ${secs}s"
  "target/$triple/release/$t" -max_total_time="$secs" -print_final_stats=1 "$corpus" 2>&1 | tail -n 3
  rm -rf "$corpus"
done
