#!/usr/bin/env bash
# A minimal Debian 12 root (debootstrap --variant=minbase, plus netbase, python3,
# CPython's regression tests (libpython3.11-testsuite), strace and gdb for
# the guest's ptrace, and make, gcc and libc6-dev for the whole-program bench
# figure, a make -j1 build; systemd as /sbin/init, with dbus and procps, and
# root without a password, so that the image boots as a stock one does, to a
# login prompt) as
# an ext4 image (mke2fs -t ext4 defaults), for the Debian-userland tests.  Needs root (debootstrap
# makes device nodes and chowns) and Debian's mirror; the result is cached
# outside the repository, so it is built once per machine:
#   $UMLPY_CACHE (default ~/.cache/umlpy)/debian/{tree/,root.img}
# Prints the cache directory.  Exit 2: cannot be built here (not root).
set -euo pipefail
CACHE=${UMLPY_CACHE:-$HOME/.cache/umlpy}/debian
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
STAMP=7     # bump when the image recipe changes: the tree is kept, the image remade
# (a tree without a package the recipe has since gained is topped up below)
if [ -f "$CACHE/root.img" ] && [ -d "$CACHE/tree/usr" ] && [ "$(cat "$CACHE/stamp" 2>/dev/null)" = $STAMP ] \
        && [ -x "$CACHE/tree/usr/bin/gdb" ] && [ -x "$CACHE/tree/usr/bin/gcc" ] \
        && [ -x "$CACHE/tree/lib/systemd/systemd" ]; then
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
if [ ! -d "$CACHE/tree/usr" ]; then
rm -rf "$CACHE/tree.tmp"
# gdb comes later, from apt in the tree: its libsource-highlight needs a
# package named only by a Provides (libboost-regex1.74.0-icu72), which
# debootstrap's resolver cannot follow
debootstrap --variant=minbase --include=python3,libpython3.11-testsuite,strace,make,gcc,libc6-dev,netbase bookworm "$CACHE/tree.tmp" "$MIRROR" \
    > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
rm -rf "$CACHE/tree.tmp/var/cache/apt/archives/"*.deb
mv "$CACHE/tree.tmp" "$CACHE/tree"
fi
# a tree made before the test suite was part of the recipe
if [ ! -f "$CACHE/tree/usr/lib/python3.11/test/test_os.py" ]; then
    chroot "$CACHE/tree" apt-get install -y -qq libpython3.11-testsuite > "$CACHE/apt.log" 2>&1 \
        || { tail -20 "$CACHE/apt.log" >&2; exit 1; }
    rm -rf "$CACHE/tree/var/cache/apt/archives/"*.deb
fi
# gdb (see above), and a tree made before the tracers (the guest's ptrace
# is tested with them) or make and gcc were part of the recipe
if [ ! -x "$CACHE/tree/usr/bin/gdb" ] || [ ! -x "$CACHE/tree/usr/bin/gcc" ] || [ ! -x "$CACHE/tree/usr/bin/make" ]; then
    chroot "$CACHE/tree" apt-get install -y -qq --no-install-recommends strace gdb make gcc libc6-dev \
        > "$CACHE/apt.log" 2>&1 || { tail -20 "$CACHE/apt.log" >&2; exit 1; }
    rm -rf "$CACHE/tree/var/cache/apt/archives/"*.deb
fi
# /etc/services and /etc/protocols (netbase, in every Debian but minbase):
# without them getservbyname and getaddrinfo with a service name fail
if [ ! -f "$CACHE/tree/etc/services" ]; then
    chroot "$CACHE/tree" apt-get install -y -qq netbase > "$CACHE/apt.log" 2>&1 \
        || { tail -20 "$CACHE/apt.log" >&2; exit 1; }
    rm -rf "$CACHE/tree/var/cache/apt/archives/"*.deb
fi
# systemd as init (a stock Debian's /sbin/init), dbus for logind, procps;
# root may log in on the console without a password
if [ ! -x "$CACHE/tree/lib/systemd/systemd" ] || [ ! -x "$CACHE/tree/usr/bin/dbus-daemon" ]; then
    chroot "$CACHE/tree" apt-get install -y -qq --no-install-recommends systemd-sysv dbus procps \
        > "$CACHE/apt.log" 2>&1 || { tail -20 "$CACHE/apt.log" >&2; exit 1; }
    rm -rf "$CACHE/tree/var/cache/apt/archives/"*.deb
    chroot "$CACHE/tree" passwd -d root > /dev/null
fi
# mke2fs -d keeps whole seconds only: cut the tree's times to match, so that
# `ls --time-style=full-iso` reads the same in the chroot and in the guest
python3 - "$CACHE/tree" <<'PY'
import os, sys
for d, dirs, files in os.walk(sys.argv[1]):
    for n in dirs + files + [""]:
        p = os.path.join(d, n) if n else d
        st = os.lstat(p)
        os.utime(p, ns=(st.st_atime_ns // 10**9 * 10**9, st.st_mtime_ns // 10**9 * 10**9),
                 follow_symlinks=False)
PY
mke2fs -q -F -t ext4 -d "$CACHE/tree" "$CACHE/root.img.tmp" 1G >/dev/null
mv "$CACHE/root.img.tmp" "$CACHE/root.img"
echo $STAMP > "$CACHE/stamp"
echo "$CACHE"
