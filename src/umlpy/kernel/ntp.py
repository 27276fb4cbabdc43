"""The guest's NTP state, as Linux's kernel/time/ntp.c keeps it.

adjtimex(2) reads and changes it; once a second (second_overflow, run by
kernel/timekeeping.py as the guest's CLOCK_REALTIME passes each second)
the state machine moves on: the leap second states, the maximum error
that grows until the clock counts as unsynchronised, the PLL's phase
offset and adjtime(3)'s slew that are spent a chunk a second, and the
length of the next second (tick_length: tick, frequency and those chunks)
that the timekeeper applies to the guest's wall clock.  No PPS
(CONFIG_NTP_PPS is off, as in UML's kernel): those fields read 0.
"""
from __future__ import annotations

from umlpy.abi import timex as X
from umlpy.kernel import printk

TIME64_MAX = (1 << 63) - 1
SECS_PER_DAY = 86400
NS = 10**9


def shift_right(x: int, s: int) -> int:
    """Linux's shift_right: a signed shift that rounds toward zero."""
    return -((-x) >> s) if x < 0 else x >> s


def div_trunc(a: int, b: int) -> int:
    """C's signed division (div_s64, div64_long): toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


class Ntp:
    """One machine's NTP variables, with Linux's boot values."""

    def __init__(self) -> None:
        self.tick_usec = 1000000 // X.USER_HZ
        self.time_state = X.TIME_OK
        self.time_status = X.STA_UNSYNC
        self.time_offset = 0            # scaled ns, spent by the second
        self.time_constant = 2
        self.time_maxerror = X.NTP_PHASE_LIMIT
        self.time_esterror = X.NTP_PHASE_LIMIT
        self.time_freq = 0              # scaled ns/s
        self.time_reftime = 0
        self.time_adjust = 0            # us, adjtime(3)'s slew still to go
        self.next_leap_sec = TIME64_MAX
        self.tick_length_base = 0
        self.tick_length = 0
        self.update_frequency()
        self.tick_length = self.tick_length_base

    # -- the length of a second ----------------------------------------------------
    def update_frequency(self) -> None:
        """ntp_update_frequency: the tick's length from tick and frequency,
        applied to the current second at once."""
        second_length = ((self.tick_usec * 1000 * X.USER_HZ) << X.NTP_SCALE_SHIFT) + self.time_freq
        new_base = second_length // X.NTP_INTERVAL_FREQ
        self.tick_length += new_base - self.tick_length_base
        self.tick_length_base = new_base

    def second_excess(self) -> int:
        """How much longer than 10^9 ns (scaled by 2^32) the current second
        runs: what its ticks add to the wall clock beyond the host's."""
        return self.tick_length * X.NTP_INTERVAL_FREQ - (NS << X.NTP_SCALE_SHIFT)

    def clear(self) -> None:
        """ntp_clear: the clock was set."""
        self.time_adjust = 0
        self.time_status |= X.STA_UNSYNC
        self.time_maxerror = X.NTP_PHASE_LIMIT
        self.time_esterror = X.NTP_PHASE_LIMIT
        self.update_frequency()
        self.tick_length = self.tick_length_base
        self.time_offset = 0
        self.next_leap_sec = TIME64_MAX

    def _chunk(self) -> int:
        return shift_right(self.time_offset, X.SHIFT_PLL + self.time_constant)

    # -- once a second -------------------------------------------------------------
    def quiet_seconds(self, now: int, target: int) -> int:
        """How many of the seconds after now up to target pass with no
        more than the maximum error growing (no phase or slew to spend, no
        leap second due): the timekeeper skips over those at once."""
        if self._chunk() or self.time_adjust or self.tick_length != self.tick_length_base:
            return 0
        leap_flags = self.time_status & (X.STA_INS | X.STA_DEL)
        if (self.time_state == X.TIME_OK and not leap_flags) or (self.time_state == X.TIME_WAIT and leap_flags):
            return target - now
        if (self.time_state == X.TIME_INS and self.time_status & X.STA_INS) or \
                (self.time_state == X.TIME_DEL and self.time_status & X.STA_DEL):
            return max(0, min(target, self.next_leap_sec - 1) - now)
        return 0

    def skip(self, n: int) -> None:
        """n quiet seconds (see quiet_seconds) at once."""
        self._bump_maxerror(n)

    def _bump_maxerror(self, n: int) -> None:
        self.time_maxerror += n * (X.MAXFREQ // 1000)
        if self.time_maxerror > X.NTP_PHASE_LIMIT:
            self.time_maxerror = X.NTP_PHASE_LIMIT
            self.time_status |= X.STA_UNSYNC

    def second_overflow(self, secs: int) -> int:
        """The wall clock reached second secs: move the leap second state
        on and work out the next second's length.  Returns the leap: -1
        to set the clock back a second (23:59:60), 1 to skip 23:59:59."""
        leap = 0
        state, status = self.time_state, self.time_status
        if state == X.TIME_OK:
            if status & X.STA_INS:
                self.time_state = X.TIME_INS
                self.next_leap_sec = secs + SECS_PER_DAY - secs % SECS_PER_DAY
            elif status & X.STA_DEL:
                self.time_state = X.TIME_DEL
                self.next_leap_sec = secs + SECS_PER_DAY - (secs + 1) % SECS_PER_DAY
        elif state == X.TIME_INS:
            if not status & X.STA_INS:
                self.time_state, self.next_leap_sec = X.TIME_OK, TIME64_MAX
            elif secs == self.next_leap_sec:
                leap, self.time_state = -1, X.TIME_OOP
                printk.pr_notice("Clock: inserting leap second 23:59:60 UTC")
        elif state == X.TIME_DEL:
            if not status & X.STA_DEL:
                self.time_state, self.next_leap_sec = X.TIME_OK, TIME64_MAX
            elif secs == self.next_leap_sec:
                leap, self.time_state, self.next_leap_sec = 1, X.TIME_WAIT, TIME64_MAX
                printk.pr_notice("Clock: deleting leap second 23:59:59 UTC")
        elif state == X.TIME_OOP:
            self.time_state, self.next_leap_sec = X.TIME_WAIT, TIME64_MAX
        elif state == X.TIME_WAIT and not status & (X.STA_INS | X.STA_DEL):
            self.time_state = X.TIME_OK
        self._bump_maxerror(1)
        self.tick_length = self.tick_length_base
        delta = self._chunk()
        self.time_offset -= delta
        self.tick_length += delta
        adj = self.time_adjust
        if adj > X.MAX_TICKADJ:
            self.time_adjust -= X.MAX_TICKADJ
            self.tick_length += X.MAX_TICKADJ_SCALED
        elif adj < -X.MAX_TICKADJ:
            self.time_adjust += X.MAX_TICKADJ
            self.tick_length -= X.MAX_TICKADJ_SCALED
        elif adj:
            self.tick_length += div_trunc(adj * 1000, X.NTP_INTERVAL_FREQ) << X.NTP_SCALE_SHIFT
            self.time_adjust = 0
        return leap

    # -- adjtimex --------------------------------------------------------------------
    def _update_offset(self, offset: int, now_sec: int) -> None:
        """ntp_update_offset: a phase offset for the PLL/FLL to steer out."""
        if not self.time_status & X.STA_PLL:
            return
        if not self.time_status & X.STA_NANO:
            offset = max(-1000000, min(offset, 1000000)) * 1000
        offset = max(-X.MAXPHASE, min(offset, X.MAXPHASE))
        secs = 0 if self.time_status & X.STA_FREQHOLD else now_sec - self.time_reftime
        self.time_reftime = now_sec
        freq_adj = self._update_offset_fll(offset, secs)
        secs = min(secs, 1 << (X.SHIFT_PLL + 1 + self.time_constant))
        freq_adj += (offset * secs) << (X.NTP_SCALE_SHIFT - 2 * (X.SHIFT_PLL + 2 + self.time_constant))
        self.time_freq = max(min(freq_adj + self.time_freq, X.MAXFREQ_SCALED), -X.MAXFREQ_SCALED)
        self.time_offset = div_trunc(offset << X.NTP_SCALE_SHIFT, X.NTP_INTERVAL_FREQ)

    def _update_offset_fll(self, offset: int, secs: int) -> int:
        self.time_status &= ~X.STA_MODE
        if secs < X.MINSEC or (not self.time_status & X.STA_FLL and secs <= X.MAXSEC):
            return 0
        self.time_status |= X.STA_MODE
        return div_trunc(offset << (X.NTP_SCALE_SHIFT - X.SHIFT_FLL), secs)

    def _adj_status(self, status: int, now_sec: int) -> None:
        if self.time_status & X.STA_PLL and not status & X.STA_PLL:
            self.time_state = X.TIME_OK
            self.time_status = X.STA_UNSYNC
            self.next_leap_sec = TIME64_MAX
        if not self.time_status & X.STA_PLL and status & X.STA_PLL:
            self.time_reftime = now_sec
        self.time_status = (self.time_status & X.STA_RONLY) | (status & ~X.STA_RONLY)

    def _modes(self, tx: dict[str, int], now_sec: int, tai: int) -> int:
        """process_adjtimex_modes; returns the (new) TAI offset."""
        modes = tx["modes"]
        if modes & X.ADJ_STATUS:
            self._adj_status(tx["status"], now_sec)
        if modes & X.ADJ_NANO:
            self.time_status |= X.STA_NANO
        if modes & X.ADJ_MICRO:
            self.time_status &= ~X.STA_NANO
        if modes & X.ADJ_FREQUENCY:
            self.time_freq = max(min(tx["freq"] * X.PPM_SCALE, X.MAXFREQ_SCALED), -X.MAXFREQ_SCALED)
        if modes & X.ADJ_MAXERROR:
            self.time_maxerror = max(0, min(tx["maxerror"], X.NTP_PHASE_LIMIT))
        if modes & X.ADJ_ESTERROR:
            self.time_esterror = max(0, min(tx["esterror"], X.NTP_PHASE_LIMIT))
        if modes & X.ADJ_TIMECONST:
            tc = max(0, min(tx["constant"], X.MAXTC))
            if not self.time_status & X.STA_NANO:
                tc += 4
            self.time_constant = max(0, min(tc, X.MAXTC))
        if modes & X.ADJ_TAI and 0 <= tx["constant"] <= X.MAX_TAI_OFFSET:
            tai = tx["constant"]
        if modes & X.ADJ_OFFSET:
            self._update_offset(tx["offset"], now_sec)
        if modes & X.ADJ_TICK:
            self.tick_usec = tx["tick"]
        if modes & (X.ADJ_TICK | X.ADJ_FREQUENCY | X.ADJ_OFFSET):
            self.update_frequency()
        return tai

    def adjtimex(self, tx: dict[str, int], now: int, tai: int) -> tuple[int, int]:
        """__do_adjtimex on a checked struct timex (fields by name), at
        wall time now (ns): fills tx in; returns (clock state, TAI offset)."""
        now_sec = now // NS
        modes = tx["modes"]
        if modes & X.ADJ_ADJTIME:
            saved = self.time_adjust
            if not modes & X.ADJ_OFFSET_READONLY:
                self.time_adjust = tx["offset"]
                self.update_frequency()
            tx["offset"] = saved
        else:
            if modes:
                tai = self._modes(tx, now_sec, tai)
            offset = shift_right(self.time_offset * X.NTP_INTERVAL_FREQ, X.NTP_SCALE_SHIFT)
            tx["offset"] = offset if self.time_status & X.STA_NANO else div_trunc(offset, 1000)
        result = self.time_state
        if self.time_status & (X.STA_UNSYNC | X.STA_CLOCKERR):
            result = X.TIME_ERROR
        tx.update(freq=shift_right((self.time_freq >> X.PPM_SCALE_INV_SHIFT) * X.PPM_SCALE_INV, X.NTP_SCALE_SHIFT),
                  maxerror=self.time_maxerror, esterror=self.time_esterror, status=self.time_status,
                  constant=self.time_constant, precision=1, tolerance=X.MAXFREQ_SCALED // X.PPM_SCALE,
                  tick=self.tick_usec, tai=tai, ppsfreq=0, jitter=0, shift=0, stabil=0,
                  jitcnt=0, calcnt=0, errcnt=0, stbcnt=0,
                  tv_sec=now_sec, tv_usec=now % NS if self.time_status & X.STA_NANO else now % NS // 1000)
        if now_sec >= self.next_leap_sec:     # the second overflow is still to come
            if self.time_state == X.TIME_INS and self.time_status & X.STA_INS:
                result = X.TIME_OOP
                tx["tai"] += 1
                tx["tv_sec"] -= 1
            if self.time_state == X.TIME_DEL and self.time_status & X.STA_DEL:
                result = X.TIME_WAIT
                tx["tai"] -= 1
                tx["tv_sec"] += 1
            if self.time_state == X.TIME_OOP and now_sec == self.next_leap_sec:
                result = X.TIME_WAIT
        return result, tai
