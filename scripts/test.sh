#!/usr/bin/env bash
# Passes the tests on a fresh machine: installs what they need (see
# setup.sh), builds and runs the whole workspace's tests, then the Perl
# modules' tests on the C ABI that build made. The README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The build first: `cargo test` links the tests with rlibs, and the C
# example's test and the Perl modules need the shared library and the command.
cargo build --workspace
cargo test --workspace
# The local suites again on the socket data path: the default is shared
# memory (crates/pipeslot/src/shm), the socket path is what a peer gets
# that turned it off or is short of descriptors.
PIPESLOT_SHM=0 cargo test -p pipeslot --test main
PIPESLOT_SHM=0 cargo test -p pipeslot-ffi
PIPESLOT_SHM=0 cargo test -p pipeslot-cli

# perl/Win32-Pipe, on this build's libpipeslot_ffi.so and pipeslot command.
if perl -MFFI::Platypus -e1 2>/dev/null; then
  export PIPESLOT_FFI_LIB="$PWD/target/debug/libpipeslot_ffi.so" PIPESLOT_BIN="$PWD/target/debug/pipeslot"
  (cd perl/Win32-Pipe && perl Makefile.PL >/dev/null && make >/dev/null && make test)
elif [ "${CI:-}" = true ]; then
  echo "test.sh: FFI::Platypus is missing (apt-get install libffi-platypus-perl); CI must run the Perl tests" >&2
  exit 1
else
  echo "test.sh: skipped the Perl tests: FFI::Platypus is missing (apt-get install libffi-platypus-perl)" >&2
fi
