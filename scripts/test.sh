#!/usr/bin/env bash
# Passes the tests on a fresh machine: installs what they need (see
# setup.sh), then runs the whole workspace's tests. The README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace
