#!/usr/bin/env bash
# A minimal Debian 12 root (debootstrap --variant=minbase, plus python3) as
# an ext2 image, for the Debian-userland tests.  Needs root (debootstrap
# makes device nodes and chowns) and Debian's mirror; the result is cached
# outside the repository, so it is built once per machine:
#   $UMLPY_CACHE (default ~/.cache/umlpy)/debian/{tree/,root.img}
# Prints the cache directory.  Exit 2: cannot be built here (not root).
set -euo pipefail
CACHE=${UMLPY_CACHE:-$HOME/.cache/umlpy}/debian
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ -f "$CACHE/root.img" ] && [ -d "$CACHE/tree/usr" ]; then
    echo "$CACHE"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "rootfs/debian.sh: debootstrap needs root" >&2
    exit 2
fi
command -v debootstrap >/dev/null || {
    apt-get install -y -qq debootstrap >/dev/null 2>&1 || { echo "rootfs/debian.sh: no debootstrap" >&2; exit 2; }
}
mkdir -p "$CACHE"
rm -rf "$CACHE/tree.tmp"
debootstrap --variant=minbase --include=python3 bookworm "$CACHE/tree.tmp" "$MIRROR" \
    > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
rm -rf "$CACHE/tree.tmp/var/cache/apt/archives/"*.deb
mv "$CACHE/tree.tmp" "$CACHE/tree"
mke2fs -q -F -t ext2 -d "$CACHE/tree" "$CACHE/root.img.tmp" 1G >/dev/null
mv "$CACHE/root.img.tmp" "$CACHE/root.img"
echo "$CACHE"
