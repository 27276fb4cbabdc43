"""No new cost when idle (issue 16): a guest blocked in read on the console
(its input open and silent), in poll with no timeout or in a nanosleep
costs its host no CPU: no polling loop, no tick while every task sleeps.
CPU time (utime+stime of umlpy and its guest processes, /proc/PID/stat),
not wall-clock speed, so it holds on a loaded machine."""
from __future__ import annotations

import sys

import pytest

from conftest import CPIO, IMAGE, ROOT, UMLPY

sys.path.insert(0, str(ROOT / "bench"))
from idle import blocked_cpu  # noqa: E402  (bench/idle.py: the bench's idle figures measure the same way)

WINDOW_S = 3
BOUND_S = 0.05          # five clock ticks at 100 Hz: room for a rare wake-up, none for a poll loop


@pytest.mark.parametrize("mode", ["read", "poll", "sleep"])
def test_blocked_guest_costs_no_host_cpu(mode):
    cmd = [str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/t/bin/t_idle", "--", mode]
    used = blocked_cpu(cmd, WINDOW_S)
    assert used < BOUND_S, f"{mode}: {used:.2f} s of host CPU in {WINDOW_S} s of a blocked guest"
