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


def test_io_uring_disabled():
    """kernel.io_uring_disabled: 0 lets everyone set up a ring, 1 only
    CAP_SYS_ADMIN, 2 nobody (EPERM); other values are refused."""
    knob = "/proc/sys/kernel/io_uring_disabled"
    t = "/t/bin/t_io_uring /tmp setup"
    r = sh(f"mount -t proc proc /proc; cat {knob}; su user -s /bin/sh -c '{t}'; "
           f"echo 1 > {knob}; {t}; su user -s /bin/sh -c '{t}'; "
           f"echo 2 > {knob}; {t}; (echo 3 > {knob}) 2>/dev/null || echo refused; cat {knob}")
    assert r.stdout.decode().splitlines() == [
        "0", "setup: 0", "setup: 0", "setup: -1 EPERM", "setup: -1 EPERM", "refused", "2"], r.stderr.decode()[-2000:]


def test_parked_requests_are_bounded_per_ring():
    """A ring holds at most 2 waiting requests per CQ entry (Linux: as many
    as memory allows): the next submission is EAGAIN and leaves its SQE in
    the ring, taken once requests complete."""
    r = sh("/t/bin/t_io_uring /tmp parked")
    assert r.stdout.decode().splitlines() == [
        "parked 16, then -1 EAGAIN", "all done: 0", "cqes 8, sq head 16 tail 17",
        "the refused one now: 1"], r.stderr.decode()[-2000:]


def test_many_waiting_requests_on_one_pipe():
    """4096 reads parked on one pipe are all served by one write, and 4096
    cancels of nothing each find nothing without walking them (both linear,
    whatever the guest queues)."""
    r = sh("/t/bin/t_io_uring /tmp many")
    assert r.stdout.decode().splitlines() == [
        "submit reads: 4096", "write: 4096", "reads done: 4096", "cancels: 4096"], r.stderr.decode()[-2000:]
