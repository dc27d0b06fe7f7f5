#!/usr/bin/env bash
# Install Caffe 1.0's `caffe` command-line tool on Debian 12 (bookworm), for framework: caffe.
#
# Debian 12 dropped Caffe; Debian 11 (bullseye) still ships the CPU build. This adds bullseye as
# an extra apt source pinned low (so every other package stays on bookworm), installs `caffe`
# with the few libraries it needs from bullseye, and checks `caffe --version` prints 1.0.0.
# Idempotent: re-running rewrites the same two apt files and installs nothing new.
# Run as root. DEBIAN_MIRROR overrides the mirror (default: the one bookworm already uses).
set -euo pipefail

want="caffe version 1.0.0"
if [[ "$(caffe --version 2>/dev/null || true)" == "$want" ]]; then
    echo "install-caffe: $want already installed"
    exit 0
fi
if [[ $EUID -ne 0 ]]; then
    echo "install-caffe: must run as root (it uses apt-get)" >&2
    exit 1
fi

# The mirror bookworm comes from, so bullseye is fetched from the same place (and proxy).
mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" && -f /etc/apt/sources.list.d/debian.sources ]]; then
    mirror="$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' \
        /etc/apt/sources.list.d/debian.sources)"
fi
if [[ -z "$mirror" && -f /etc/apt/sources.list ]]; then
    mirror="$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

cat >/etc/apt/sources.list.d/bullseye-caffe.sources <<EOF
# Added by sweeper's .ci/install-caffe.sh: Caffe 1.0 and the libraries it needs.
Types: deb
URIs: $mirror
Suites: bullseye
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Below the default 500: nothing comes from bullseye unless asked for by name or needed.
cat >/etc/apt/preferences.d/bullseye-caffe <<'EOF'
Package: *
Pin: release n=bullseye
Pin-Priority: 100
EOF

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Why each bullseye library (bookworm's versions break caffe):
#   libboost-python1.74.0: caffe's libboost-python1.74.0-py39 needs it;
#   libdap27, libdapclient6v5: else `undefined symbol: _ZN6libdap3DDS7var_endEv`;
#   libgeotiff5 ... libgeos-3.9.0: else two libproj versions load and caffe segfaults at exit.
apt-get install -y -q --no-install-recommends \
    caffe \
    libboost-python1.74.0/bullseye \
    libdap27/bullseye \
    libdapclient6v5/bullseye \
    libgeotiff5/bullseye \
    libspatialite7/bullseye \
    librttopo1/bullseye \
    libgeos-c1v5/bullseye \
    libgeos-3.9.0/bullseye

got="$(caffe --version 2>&1 || true)"
if [[ "$got" != "$want" ]]; then
    echo "install-caffe: expected '$want' from caffe --version, got: $got" >&2
    exit 1
fi
echo "install-caffe: $got"
