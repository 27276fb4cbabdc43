"""The kernel is a boundary: no guest stalls the others or the kernel.

Costs that grow with what a guest holds, values that overflow the event
loop, devices that block the boot, processes that survive SIGKILL, state
that leaks from one program to the next.  Timings are only ever compared
with each other, with wide margins.
"""
from __future__ import annotations

from conftest import sh


def test_fd_allocation_does_not_slow_down_as_the_table_fills():
    """20 000 opens: the last thousand cost what the first did (a scan from
    fd 0 made them 20 times slower, and every other guest waited)."""
    r = sh("/t/bin/t_fdalloc /tmp scale")
    out = r.stdout.decode().split()
    assert out[-1] == "done", r.stdout + r.stderr
    first, last = int(out[1]), int(out[3])
    assert last < 8 * first, (first, last)
