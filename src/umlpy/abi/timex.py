"""struct timex and the constants of adjtimex(2) (include/uapi/linux/timex.h)
and of Linux's NTP code (include/linux/timex.h)."""
from __future__ import annotations

import struct

# struct __kernel_timex (x86-64): modes, offset, freq, maxerror, esterror,
# status, constant, precision, tolerance, time (sec, usec), tick, ppsfreq,
# jitter, shift, stabil, jitcnt, calcnt, errcnt, stbcnt, tai, padding
TIMEX = struct.Struct("<I4xqqqqi4xqqqqqqqqi4xqqqqqi44x")
TIMEX_SIZE = TIMEX.size     # 208

# modes
ADJ_OFFSET = 0x0001
ADJ_FREQUENCY = 0x0002
ADJ_MAXERROR = 0x0004
ADJ_ESTERROR = 0x0008
ADJ_STATUS = 0x0010
ADJ_TIMECONST = 0x0020
ADJ_TAI = 0x0080
ADJ_SETOFFSET = 0x0100
ADJ_MICRO = 0x1000
ADJ_NANO = 0x2000
ADJ_TICK = 0x4000
ADJ_ADJTIME = 0x8000                # the kernel's: adjtime(3)'s single shot
ADJ_OFFSET_READONLY = 0x2000        # with ADJ_ADJTIME
ADJ_OFFSET_SINGLESHOT = 0x8001
ADJ_OFFSET_SS_READ = 0xA001

# status
STA_PLL = 0x0001
STA_PPSFREQ = 0x0002
STA_PPSTIME = 0x0004
STA_FLL = 0x0008
STA_INS = 0x0010
STA_DEL = 0x0020
STA_UNSYNC = 0x0040
STA_FREQHOLD = 0x0080
STA_PPSSIGNAL = 0x0100
STA_PPSJITTER = 0x0200
STA_PPSWANDER = 0x0400
STA_PPSERROR = 0x0800
STA_CLOCKERR = 0x1000
STA_NANO = 0x2000
STA_MODE = 0x4000
STA_CLK = 0x8000
STA_RONLY = (STA_PPSSIGNAL | STA_PPSJITTER | STA_PPSWANDER | STA_PPSERROR
             | STA_CLOCKERR | STA_NANO | STA_MODE | STA_CLK)

# clock states (adjtimex's return value)
TIME_OK, TIME_INS, TIME_DEL, TIME_OOP, TIME_WAIT, TIME_ERROR = range(6)

# the NTP code's scales and limits
USER_HZ = 100
NTP_INTERVAL_FREQ = 100     # HZ
NTP_SCALE_SHIFT = 32
SHIFT_PLL = 2
SHIFT_FLL = 2
SHIFT_USEC = 16
MAXPHASE = 500000000        # ns
MAXFREQ = 500000            # ns/s
MAXFREQ_SCALED = MAXFREQ << NTP_SCALE_SHIFT
MINSEC = 256
MAXSEC = 2048
MAXTC = 10
NTP_PHASE_LIMIT = (MAXPHASE // 1000) << 5       # us
PPM_SCALE = 1000 << (NTP_SCALE_SHIFT - SHIFT_USEC)
PPM_SCALE_INV_SHIFT = 19
PPM_SCALE_INV = (1 << (PPM_SCALE_INV_SHIFT + NTP_SCALE_SHIFT)) // PPM_SCALE + 1
MAX_TICKADJ = 500           # us per second of adjtime(3) slewing
MAX_TICKADJ_SCALED = ((MAX_TICKADJ * 1000) << NTP_SCALE_SHIFT) // NTP_INTERVAL_FREQ
MAX_TAI_OFFSET = 100000

TIMEX_FIELDS = ("modes", "offset", "freq", "maxerror", "esterror", "status", "constant",
                "precision", "tolerance", "tv_sec", "tv_usec", "tick", "ppsfreq", "jitter",
                "shift", "stabil", "jitcnt", "calcnt", "errcnt", "stbcnt", "tai")


def unpack_timex(data: bytes) -> dict[str, int]:
    return dict(zip(TIMEX_FIELDS, TIMEX.unpack(data)))


def pack_timex(tx: dict[str, int]) -> bytes:
    return TIMEX.pack(*(tx[name] for name in TIMEX_FIELDS))
