"""The machine's own state in a checkpoint, what no process holds: its
clocks and its sysctls.

The clocks.  The wall clock is carried as the guest left it relative to
the host's (an offset: 0 unless the guest set its time), with the NTP
state adjtimex sets, the TAI offset and the time zone; a guest that set
its clock keeps it, and its vDSO goes on trapping for it.  The monotonic
and boot clocks are the host's, so a restore on the same host finds them
moved on by the time the machine spent saved, as after a suspend with
the clock running.  On a host whose clocks read less than the saved
machine's (another host, or this one rebooted) they would go back, which
no program expects of them: the restore then gives them offsets so that
they go on from where they stopped (a time namespace's offsets, as CRIU
sets them), and from then on clock_gettime traps for every clock
(kernel/vdso.py).

The sysctls: every one root may write in /proc/sys (fs/procfs/sysctl.py's
`writable`), shown as the guest left it, except those another part of the
image carries (the network's, the IPC namespace's, the keys', the last
pid).  The restore writes each one that differs from what the fresh boot
shows through the file's own write, so an image's value is checked as a
guest root's write would be.
"""
from __future__ import annotations

from arch_um import clock
from umlpy.abi import timex as X
from umlpy.checkpoint import image
from umlpy.fs.procfs.ipcfiles import kernel_sysctls
from umlpy.fs.procfs.sysctl import writable
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

I64 = 1 << 63
SYSCTL_MAX = 4096
MAX_TZ_MINUTES = 15 * 60
# the NTP variables, each with the bounds adjtimex keeps it in
_NTP = {
    "tick_usec": (900000 // X.USER_HZ, 1100000 // X.USER_HZ + 1),
    "time_state": (X.TIME_OK, X.TIME_ERROR + 1),
    "time_status": (0, 1 << 16),
    "time_offset": (-(X.MAXPHASE << X.NTP_SCALE_SHIFT), (X.MAXPHASE << X.NTP_SCALE_SHIFT) + 1),
    "time_constant": (0, X.MAXTC + 1),
    "time_maxerror": (0, X.NTP_PHASE_LIMIT + 1),
    "time_esterror": (0, X.NTP_PHASE_LIMIT + 1),
    "time_freq": (-X.MAXFREQ_SCALED, X.MAXFREQ_SCALED + 1),
    "time_reftime": (-I64, I64),
    "time_adjust": (-I64, I64),
    "next_leap_sec": (-I64, I64),
    "tick_length_base": (-I64, I64),
    "tick_length": (-I64, I64),
}


def _carried(k) -> dict:
    """The sysctls this part of the image carries, by path."""
    elsewhere = {f"kernel/{name}" for name in kernel_sysctls(k)} | {"kernel/ns_last_pid"}
    return {path: ops for path, ops in writable(k).items()
            if path not in elsewhere and not path.startswith(("net/", "kernel/keys/", "fs/mqueue/"))}


def save(k) -> dict:
    tk = k.timekeeper
    tk.realtime_ns()            # the NTP state brought up to this second
    return {
        "clock": {"wall_offset_ns": tk.offset, "tai": tk.tai, "tz": list(tk.tz), "tz_set": tk.tz_set,
                  "steps": tk.steps, "diverged": tk.diverged, "second": tk.second, "frac": tk.frac,
                  "ntp": {name: getattr(tk.ntp, name) for name in _NTP},
                  "mono_ns": tk.monotonic_ns(), "boot_ns": tk.boottime_ns(),
                  "mono_offset_ns": tk.mono_offset, "boot_offset_ns": tk.boot_offset},
        "sysctls": {path: show(None).hex() for path, (show, _store) in sorted(_carried(k).items())},
    }


def restore(k, r: image.Reader) -> None:
    """Before anything that reads a clock or a sysctl is rebuilt."""
    m = r.sub("machine")
    _clock(k, m.sub("clock"))
    table = _carried(k)
    saved = m.sub("sysctls")
    for path in sorted(saved.keys()):
        if path not in table:
            raise image.ImageError(f"manifest: machine.sysctls: {path!r} is not a sysctl an image carries")
        show, store = table[path]
        value = saved.hex(path, SYSCTL_MAX)
        if value == show(None):
            continue
        try:
            store(None, value)
        except KernelError:
            raise image.ImageError(f"manifest: machine.sysctls: {path}: value refused") from None


def _clock(k, c: image.Reader) -> None:
    tk = k.timekeeper
    tk.offset = c.int("wall_offset_ns", -I64, I64)
    tk.tai = c.int("tai", -X.MAX_TAI_OFFSET, X.MAX_TAI_OFFSET + 1)
    minutes, dst = c.ints("tz", -(1 << 31), 1 << 31, 2)
    if abs(minutes) > MAX_TZ_MINUTES:
        raise image.ImageError("manifest: machine.clock.tz: out of range")
    tk.tz, tk.tz_set = (minutes, dst), c.bool("tz_set")
    tk.steps = c.int("steps", 0, I64)
    tk.second = c.int("second", 0, I64)
    tk.frac = c.int("frac", 0, 1 << 32)
    ntp = c.sub("ntp")
    for name, (lo, hi) in _NTP.items():
        setattr(tk.ntp, name, ntp.int(name, lo, hi))
    tk.diverged = c.bool("diverged")
    mono, boot = c.int("mono_ns", 0, I64), c.int("boot_ns", 0, I64)
    mono_off, boot_off = c.int("mono_offset_ns", -I64, I64), c.int("boot_offset_ns", -I64, I64)
    host_mono, host_boot = clock.monotonic_ns(), clock.boottime_ns()
    if host_mono + mono_off < mono or host_boot + boot_off < boot:
        mono_off, boot_off = mono - host_mono, boot - host_boot
        printk.pr_info("restore: this host's clocks read less than the machine's: its monotonic and "
                       "boot clocks go on from where they stopped, read by a trap")
    tk.mono_offset, tk.boot_offset = mono_off, boot_off


def finish(k) -> None:
    """Once the processes are back: their vDSOs trap for the clocks the
    guest has of its own (the bytes the image gave them may be older)."""
    tk = k.timekeeper
    if tk.diverged or tk.clocks_offset():
        k.trap_time(wall=tk.diverged, clocks=tk.clocks_offset())
