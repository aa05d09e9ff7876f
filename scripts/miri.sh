#!/usr/bin/env bash
# Miri on the unsafe code it can run: the C ABI's pointer helpers and its
# error guard (crates/pipeslot-ffi, unit tests), and the shared-memory
# region and ring over private memory (crates/pipeslot/src/shm, two
# threads streaming through a ring). The syscall layer
# (crates/pipeslot/src/sys.rs) and mapped segments call the kernel, which
# Miri cannot.
# Needs the nightly toolchain; adds its miri component when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "miri: no nightly toolchain; skipped"
  exit 0
fi
if ! cargo +nightly miri --version >/dev/null 2>&1; then
  rustup component add --toolchain nightly miri rust-src
fi
cargo +nightly miri test -q -p pipeslot-ffi --lib
cargo +nightly miri test -q -p pipeslot --no-default-features --lib -- shm::ring shm::mem
