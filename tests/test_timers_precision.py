"""High-resolution timers: every way a guest waits for a time (sleeps,
timerfd, POSIX timers, itimers, futex, poll/select/epoll timeouts) ends on
time, to the microsecond rather than the millisecond, and beside a busy
guest process, no fixed tick bounding the latency; and timers cost the
host no CPU while they wait, so an idle guest costs none.

Guest only.  Timings depend on the host's load: the bounds are wide, each
timing test has three tries, and when the guest misses them all while
Linux itself is slow on this host too, the test is skipped rather than
failed (LTP's timer tests skip their oversleep checks on any virtual
machine).  The figures go to the log (pytest -s shows them).
"""
from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from conftest import CPIO, IMAGE, PATH_ENV, PROGS, UMLPY, sh

ATTEMPTS = 3
_FIGURES = re.compile(r"^(\S+) +oversleep: median +(\d+) us, truncated mean +(\d+) us, "
                      r"mean +\d+ us, p99 +(\d+) us", re.M)


def _figures(out: str) -> dict[str, tuple[int, int, int]]:
    """{clock: (median, truncated mean, p99)} in us, from t_hrtimer's stderr."""
    return {m[1]: (int(m[2]), int(m[3]), int(m[4])) for m in _FIGURES.finditer(out)}


def _on_time(args: str, within, calm) -> None:
    """Run t_hrtimer ARGS in the guest until every clock's figures satisfy
    within(median, truncated mean, p99) in some run (ATTEMPTS at most).
    Clocks that never do fail the test if the host is calm: if Linux then
    shows calm(...) figures for every clock on the same CPU; otherwise the
    host is too busy to judge and the test is skipped."""
    cpu = min(os.sched_getaffinity(0))
    ok: set[str] = set()
    clocks: set[str] = set()
    for attempt in range(ATTEMPTS):
        r = sh(f"/t/bin/t_hrtimer {args}", f"umlpy_cpu={cpu}", timeout=180)
        out = r.stdout.decode()
        print(f"t_hrtimer {args}, run {attempt + 1} (host CPU {cpu}):\n{out}")
        assert out.endswith("done\n"), out + r.stderr.decode()[-2000:]
        assert "early" not in out and "failed" not in out, out
        figures = _figures(out)
        clocks = set(figures)
        assert len(clocks) == 10, out
        ok |= {c for c, f in figures.items() if within(*f)}
        if ok == clocks:
            return
    native = subprocess.run([str(PROGS / "t_hrtimer"), *args.split()], capture_output=True, timeout=120,
                            preexec_fn=lambda: os.sched_setaffinity(0, {cpu})).stderr.decode()
    print(f"natively on host CPU {cpu}:\n{native}")
    late = sorted(clocks - ok)
    linux = _figures(native)
    if set(linux) != clocks or not all(calm(*f) for f in linux.values()):
        pytest.skip(f"late in every run, {late}, but the host is too busy to judge: Linux is slow here too")
    raise AssertionError(f"late in every one of {ATTEMPTS} runs: {late}")


def test_short_waits_are_not_rounded_to_milliseconds():
    """t_hrtimer short: 200 waits of 100 us of each kind; the median
    oversleep stays under 500 us (a calm host: Linux's under 150 us).
    Before, the loop's epoll timeout in whole milliseconds made every one
    of them last 1 ms or more (median oversleep 1.1 ms; now 0.1 ms)."""
    _on_time("short", lambda median, mean, p99: median < 500,
             lambda median, mean, p99: median < 150)


def test_long_waits_meet_ltps_bound():
    """t_hrtimer long: 40 waits of 25 ms of each kind, the guest alone,
    the case of LTP's timer tests (poll02, select02, ...), where the host's
    CPU comes back from idle for every wake-up: each kind's truncated mean
    oversleep stays under LTP's 450 us (a calm host: Linux's under 250 us),
    and no wait ends early although the kernel wakes ahead of its deadlines
    (arch_um/_hostcall.c, epoll_until).  Before: poll 427-503 us in LTP's
    poll02."""
    _on_time("long", lambda median, mean, p99: mean < 450,
             lambda median, mean, p99: mean < 250)


def test_waits_end_on_time_beside_a_busy_process():
    """t_hrtimer: 200 waits of 1 ms of each kind beside a process that
    computes on the same CPU.  Each kind's oversleep stays under 2 ms on
    average (LTP's truncated mean) and 20 ms at the 99th percentile: twice
    and four times t_hrtimer's own bounds, which a quiet host meets (a calm
    host: Linux's under 0.5 and 5 ms).  Before: 2.2 ms on average and 17 ms
    at worst (while the guest computed, only the loop's 100 Hz tick ended
    its wait for the next trap)."""
    _on_time("", lambda median, mean, p99: mean < 2000 and p99 < 20000,
             lambda median, mean, p99: mean < 500 and p99 < 5000)


def _kernel_cpu_ns(pid: int) -> int:
    """CPU time the kernel process has run (its schedstat, in ns)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def _until(stream, marker: bytes) -> bytes:
    out = b""
    while marker not in out:
        chunk = stream.read1(4096)
        if not chunk:
            break
        out += chunk
    return out


def _kernel_cpu_while_waiting(script: str) -> tuple[float, bytes]:
    """The kernel's CPU time (ms) from when it settles after the guest's
    `ready` line (on a loaded host the guest's start, the sleep's fork and
    exec, outlasts any fixed wait) to the guest's `slept` line."""
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", PATH_ENV,
                          "--", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out = _until(p.stdout, b"ready\n")
        assert b"ready\n" in out, out
        time.sleep(0.5)
        start = _kernel_cpu_ns(p.pid)
        for _ in range(25):
            time.sleep(0.1)
            now = _kernel_cpu_ns(p.pid)
            if now == start:
                break
            start = now
        out += _until(p.stdout, b"slept\n")
        used = _kernel_cpu_ns(p.pid) - start
        assert b"slept\n" in out, out
        out += p.stdout.read()
        p.wait(timeout=60)
    finally:
        p.kill()
        p.wait()
    return used / 1e6, out


def test_an_idle_guest_costs_no_host_cpu():
    """A guest that sleeps: the kernel sleeps too (no periodic tick while
    no guest computes).  Before: 14 ms of CPU over 2.5 s (100 Hz); now
    about 1 ms, which is the end of the sleep itself."""
    ms, out = _kernel_cpu_while_waiting("echo ready; sleep 4; echo slept")
    print(f"kernel CPU while the guest slept: {ms:.1f} ms")
    assert ms < 5, out


def test_tiny_intervals_nobody_consumes_cost_no_host_cpu():
    """A 1 ns POSIX timer whose signal is blocked, a 1 ns SIGEV_NONE timer,
    a 1 ns timerfd nobody reads and a 1 us itimer with SIGALRM blocked:
    each expires once and waits to be consumed, as on Linux.  Before, the
    kernel fired them on every turn of its loop: 1.1 s of CPU over 2.5 s
    (timer_settime03's timer, left running, did the same)."""
    ms, out = _kernel_cpu_while_waiting("/t/bin/t_timelimits tiny 3")
    print(f"kernel CPU while the guest's tiny timers waited 2.5 s: {ms:.1f} ms")
    assert ms < 50, out
    assert out.endswith(b"done\n"), out
