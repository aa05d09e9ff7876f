#!/usr/bin/env bash
# Passes the tests on a fresh machine: installs the Debian packages the
# interop tests use (when run as root and they are missing), then runs the
# whole workspace's tests. The README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tools the tests drive as independent oracles and peers: iproute2 (network
# namespaces), samba (nmbd, a real mailslot peer), tshark (decodes our datagrams).
packages=(iproute2 samba tshark)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "test.sh: not root; interop tests that need ${missing[*]} will skip (they fail under CI=true)" >&2
  fi
fi

cargo test --workspace
