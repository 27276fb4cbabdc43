"""The guest's NTP state machine (kernel/ntp.py) without a guest: the
timekeeper's shortcut over quiet seconds must end where second_overflow
run for each second ends, and a leap second comes at midnight."""
from __future__ import annotations

from umlpy.abi import timex as X
from umlpy.kernel.ntp import Ntp

DAY = 86400


def _run(ntp: Ntp, start: int, end: int, shortcut: bool) -> tuple[int, list[tuple[int, int]]]:
    """Seconds start+1..end as the timekeeper runs them: (the excess the
    clock gained, scaled; the leaps as (second, leap))."""
    excess, leaps, sec = 0, [], start
    while sec < end:
        quiet = ntp.quiet_seconds(sec, end) if shortcut else 0
        if quiet:
            sec += quiet
            excess += quiet * ntp.second_excess()
            ntp.skip(quiet)
            continue
        sec += 1
        excess += ntp.second_excess()
        leap = ntp.second_overflow(sec)
        if leap:
            leaps.append((sec, leap))
            sec += leap
    return excess, leaps


def _state(ntp: Ntp) -> tuple:
    return (ntp.time_state, ntp.time_status, ntp.time_maxerror, ntp.time_offset, ntp.time_adjust,
            ntp.tick_length, ntp.next_leap_sec)


def _configured(now: int, **modes: int) -> Ntp:
    ntp = Ntp()
    tx = dict.fromkeys(X.TIMEX_FIELDS, 0)
    tx.update(modes)
    ntp.adjtimex(tx, now * 10**9, 0)
    return ntp


def test_the_shortcut_ends_where_every_second_does():
    start = 1_000_000 * DAY + DAY - 7
    for modes in (dict(modes=X.ADJ_FREQUENCY | X.ADJ_MAXERROR, freq=-(250 << 16), maxerror=100),
                  dict(modes=X.ADJ_STATUS, status=X.STA_INS),
                  dict(modes=X.ADJ_STATUS, status=X.STA_DEL),
                  dict(modes=X.ADJ_OFFSET_SINGLESHOT, offset=1700),
                  dict(modes=X.ADJ_TICK, tick=10500)):
        a, b = _configured(start, **modes), _configured(start, **modes)
        assert _run(a, start, start + 3 * DAY, True) == _run(b, start, start + 3 * DAY, False), modes
        assert _state(a) == _state(b), modes


def test_a_leap_second_is_inserted_at_midnight():
    start = 19_000 * DAY + DAY - 3
    ntp = _configured(start, modes=X.ADJ_STATUS, status=X.STA_INS)
    _excess, leaps = _run(ntp, start, start + 10, True)
    assert leaps == [(start + 3, -1)]
    assert ntp.time_state == X.TIME_WAIT
