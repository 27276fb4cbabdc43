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
