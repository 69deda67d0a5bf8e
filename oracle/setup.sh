#!/bin/sh
# Prepare the NUMA oracle on a Debian 12 (bookworm) x86_64 host, as root.
#  - installs qemu-system-x86, busybox-static, gcc + static glibc
#  - fetches two Debian kernels WITHOUT installing them on the host
#    (apt-get download + dpkg-deb -x) and puts their bzImages in $ORACLE_CACHE (default ~/.cache/numa-oracle):
#       vmlinuz-6.1.*   bookworm's linux-image-amd64
#       vmlinuz-6.12.*  bookworm-backports' linux-image-amd64
#    (backports is read through a private apt list under $ORACLE_CACHE/apt; the
#    host's apt sources are not touched)
#  - keeps each kernel's brd.ko (decompressed) in $ORACLE_CACHE/modules/<version>/ (guest swap)
#  - builds numaprobe there (static, as numaprobe-<sha256 prefix of src/numaprobe.c>)
# Usage: sh setup.sh [--no-install]
set -eu
cd "$(dirname "$0")"
HERE=$(pwd)

if [ "${1:-}" != "--no-install" ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        qemu-system-x86 busybox-static gcc libc6-dev python3
fi

# kernels and the built probe go to $ORACLE_CACHE (default: ~/.cache/numa-oracle), so this
# folder may stay read-only
CACHE=${ORACLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/numa-oracle}
mkdir -p "$CACHE"
AQ="-o APT::Sandbox::User=root"

fetch_kernel() {   # $1 = extra apt options ("" for the host's own sources)
    opts="$1"
    pkg=$(apt-cache $opts depends linux-image-amd64 2>/dev/null |
          awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$pkg" ] || { echo "cannot resolve linux-image-amd64 ($opts)" >&2; return 1; }
    ver=${pkg#linux-image-}
    if ls "$CACHE"/vmlinuz-"$ver" >/dev/null 2>&1 && [ -f "$CACHE/modules/$ver/brd.ko" ]; then
        echo "have $pkg"; return 0
    fi
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get $AQ $opts download "$pkg")
    dpkg-deb -x "$tmp"/*.deb "$tmp/x"
    cp "$tmp"/x/boot/vmlinuz-* "$CACHE"/
    cp "$tmp"/x/boot/config-* "$CACHE"/
    # brd (RAM block device, no module dependencies) gives the guest a swap device
    # (scenario header '#@ swap SIZE').  6.1 ships brd.ko, 6.12 brd.ko.xz; busybox insmod
    # reads neither .xz nor .zst, so store it decompressed.
    mkdir -p "$CACHE/modules/$ver"
    ko=$(ls "$tmp"/x/lib/modules/"$ver"/kernel/drivers/block/brd.ko* | head -n 1)
    case "$ko" in
        *.xz)  xz -dc "$ko" > "$CACHE/modules/$ver/brd.ko" ;;
        *.zst) zstd -dc "$ko" > "$CACHE/modules/$ver/brd.ko" ;;
        *)     cp "$ko" "$CACHE/modules/$ver/brd.ko" ;;
    esac
    rm -rf "$tmp"
    echo "fetched $pkg"
}

# 1. bookworm kernel (6.1)
fetch_kernel ""

# 2. bookworm-backports kernel (6.12; has MPOL_WEIGHTED_INTERLEAVE)
BP="$CACHE/apt"
mkdir -p "$BP/lists/partial" "$BP/archives/partial"
# the same Debian archive this host already uses, read from its own apt sources
MIRROR=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb" && $2 ~ /\/debian$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$MIRROR" ] || { echo "no Debian archive found in this host's apt sources" >&2; exit 1; }
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm-backports main" \
    > "$BP/sources.list"
BPOPT="-o Dir::Etc::SourceList=$BP/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$BP/lists -o Dir::Cache=$BP"
apt-get $AQ $BPOPT update
fetch_kernel "$BPOPT"

# 3. the guest-side probe
# named after the source's hash, so this copy's extended probe never replaces the numaprobe
# that ../shared/oracle builds into the same cache
sum=$(sha256sum src/numaprobe.c | cut -c1-12)
gcc -O2 -Wall -static -o "$CACHE"/numaprobe-"$sum" src/numaprobe.c
ls -la "$CACHE"
