#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, when run as
# root and they are missing (a no-op otherwise, with a note):
#   libzmq3-dev pkg-config   the ZeroMQ baseline in the benchmarks
#   iproute2                 network namespaces for the mailslot tests
#   samba                    nmbd, a real mailslot peer; smbd, a real SMB server
#   smbclient                rpcclient/smbclient, Samba's own clients beside ours
#   python3-impacket         impacket's SMB 2.0.2 server, a second SMB peer
#   tshark                   an independent decoder of our datagrams and frames
#   systemd                  systemd-analyze checks the gateway's unit
#   perl make libffi-platypus-perl   the Perl modules (perl/Win32-Pipe) on the C ABI
set -euo pipefail
packages=(libzmq3-dev pkg-config iproute2 samba smbclient python3-impacket tshark systemd perl make libffi-platypus-perl)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: not root, cannot install ${missing[*]}; tests that need them skip (they fail under CI=true)" >&2
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup.sh: installed ${missing[*]}"
