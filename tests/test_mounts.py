"""The mount table's bound: binds of a shared mount below itself double the
tree each time (propagation), as on Linux, until fs.mount-max says ENOSPC;
the kernel stays responsive on the way."""
from __future__ import annotations

from conftest import sh


def test_propagating_binds_stop_at_mount_max():
    r = sh("mount -t proc proc /proc; mkdir /m; mount -t tmpfs t /m; mkdir /m/x; mount --make-shared /m; "
           "i=0; while [ $i -lt 40 ]; do mount --bind /m /m/x 2>/dev/null || break; i=$((i+1)); done; "
           "echo stopped=$((i < 40)); [ $(wc -l < /proc/self/mountinfo) -le 100000 ] && echo bounded",
           timeout=600)
    assert r.stdout.decode() == "stopped=1\nbounded\n", r.stderr.decode()[-2000:]


def test_mount_max_sysctl_bounds_the_mounts():
    """fs.mount-max (100000 by default, at least 1) bounds a namespace's
    mounts: past it mount(2) is ENOSPC."""
    r = sh("mount -t proc p /proc; cat /proc/sys/fs/mount-max; n=$(grep -c . /proc/mounts); "
           "echo $((n + 3)) > /proc/sys/fs/mount-max; i=0; "
           "while [ $i -lt 20 ]; do mount -t tmpfs x /mnt 2>/dev/null || break; i=$((i+1)); done; echo $i; "
           "mount -t tmpfs x /mnt; echo 0 > /proc/sys/fs/mount-max; echo rc=$?")
    assert r.stdout.startswith(b"100000\n3\n") and r.stdout.endswith(b"rc=1\n")
    assert b"No space left on device" in r.stdout
