"""io_uring in the guest only (natively the differential t_io_uring covers
the ABI, the opcodes, errors, waits and credentials): a guest that fills
its rings with random SQEs, indices, heads and tails and submits them over
and over must not hurt the kernel, which must serve a clean ring after."""
from __future__ import annotations

from conftest import sh


def test_hostile_rings_do_not_hurt_the_kernel():
    r = sh("mkdir -p /tmp/s; /t/bin/t_io_uring /tmp/s hostile")
    assert r.stdout.decode().splitlines() == [
        "hostile: survived, child exited 0: 1", "clean ring after: ud=0x2a res=0", "done"], r.stderr.decode()[-3000:]
    assert b"Oops" not in r.stderr and b"Traceback" not in r.stderr
