"""Setting the guest's clock (tests/progs/t_settime.c), in the guest only:
natively, as root, the program would set the host's clock.  So its output
is held against a fixed expectation (Linux's behaviour): steps read back
through the vDSO and the syscalls, in forked children and new images;
monotonic unchanged; absolute CLOCK_REALTIME sleeps and timerfds that
follow a step; TFD_TIMER_CANCEL_ON_SET; adjtimex's NTP state, its checks
and a leap second; EPERM for an unprivileged user."""
from __future__ import annotations

import time

from conftest import sh

# each way of reading the clock, after a step
READS = [
    '  clock_gettime (vdso): ok',
    '  clock_gettime (syscall): ok',
    '  gettimeofday: ok',
    '  time: ok',
    '  coarse: ok',
    '  monotonic unchanged: ok',
]

EXPECTED = [
    'adjtimex read: 5 freq 0 maxerror 16000000 esterror 16000000 status 0x40 constant 2 tick 10000 precision 1 tolerance 32768000',
    'adjtimex set: 5 freq 6553600 maxerror 16000000 esterror 1000 status 0x40 constant 7 tick 10000 precision 1 tolerance 32768000',
    'status PLL: 0 freq 6553600 maxerror 16000000 esterror 1000 status 0x1 constant 7 tick 10000 precision 1 tolerance 32768000',
    'status 0: 0 freq 6553600 maxerror 16000000 esterror 1000 status 0 constant 7 tick 10000 precision 1 tolerance 32768000',
    'tick too small: Invalid argument',
    'tick too large: Invalid argument',
    'freq overflow: Invalid argument',
    'singleshot ignores other modes: 0 status 0',
    'bad pointer: Bad address',
    'adjtime pending: ok',
    'setoffset +10 s: 0',
    '  realtime: ok',
    'setoffset -20 s (nano): 0',
    '  realtime: ok',
    'setoffset usec 10^6: Invalid argument',
    'settime nsec 10^9: Invalid argument',
    'settime monotonic: Invalid argument',
    'settime negative: Invalid argument',
    'forward a day: 0',
    *READS,
    '  process CPU clock: 0',
    '  tai follows: ok',
    '  file mtime: ok',
    'back a year: 0',
    *READS,
    '  forked child: ok',
    "  exec'd image: ok",
    'absolute realtime sleep woken by a step: ok',
    'FUTEX_CLOCK_REALTIME wait timed out by a step: ok',
    'timerfd an hour ahead: poll 0',
    '  after a step past it: poll 1 read 8 ticks 1',
    '  armed 1-2 s ahead, clock back an hour: poll 0',
    'cancel on set: 0',
    '  read after a step: -1 Operation canceled',
    '  read again: -1 Resource temporarily unavailable',
    '  a monotonic one is not cancelled: -1 Resource temporarily unavailable',
    'first zone, no time: 0',
    '  the clock warps an hour: ok',
    '  zone read back: 60 0',
    'second zone: 0',
    '  no warp: ok',
    'zone out of range: Invalid argument',
    'usec 10^6: Invalid argument',
    'settimeofday: 0',
    '  realtime: ok',
    'leap second states: 0 1 3 4',
    '  the clock went back a second: ok',
    '  TAI - UTC grew by 1',
    'nobody: clock_settime Operation not permitted',
    'nobody: settimeofday Operation not permitted',
    'nobody: adjtimex set Operation not permitted',
    'nobody: adjtimex read 0',
    'nobody: adjtime Operation not permitted',
    'done',
]


def test_the_guest_sets_its_own_clock():
    host_skew = time.time() - time.monotonic()
    r = sh("/t/bin/t_settime")
    out = r.stdout.decode().splitlines()
    assert out == EXPECTED, r.stderr.decode()[-3000:]
    assert b"Traceback" not in r.stderr
    # the host's wall clock went on as it was (the guest moved its own by
    # days and an hour): its distance to the monotonic clock is the same
    assert abs(time.time() - time.monotonic() - host_skew) < 5
