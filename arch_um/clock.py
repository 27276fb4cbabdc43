"""Host time and entropy, the kernel's only clocks and random source."""
import os
import time


monotonic_ns = time.monotonic_ns     # itself, not wrapped: the loop reads it at every turn


def realtime_ns() -> int:
    return time.time_ns()


def process_cpu_ns() -> int:
    return time.process_time_ns()


def host_clock_ns(clk: int) -> int:
    """A host clock by its id (wall, monotonic, boot, TAI, coarse, raw):
    what the guest's vDSO reads without a trap."""
    return time.clock_gettime_ns(clk)


def host_clock_res_ns(clk: int) -> int:
    """The resolution of a host clock (a coarse clock's is the host's tick)."""
    return round(time.clock_getres(clk) * 10**9)


def boottime_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def host_task_cpu_ns(pid: int) -> int:
    """CPU time a guest task's host process has used (from its schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


_TICK_NS = 10**9 // os.sysconf("SC_CLK_TCK")


def _stat_times(pid: int, tid: int) -> tuple[int, int] | None:
    """(user ns, system ns) from a host process's stat (of one of its
    threads when tid is given); None once it is gone."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    try:
        with open(path, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) * _TICK_NS, int(fields[12]) * _TICK_NS


def host_usage(pid: int, tid: int = 0) -> tuple[int, int, int]:
    """(user ns, system ns, peak resident KiB) of a host process (all its
    threads, live and gone), or of one of its threads when tid is given;
    zeros once it is gone."""
    times = _stat_times(pid, tid)
    if times is None:
        return 0, 0, 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            status = f.read()
    except OSError:
        return 0, 0, 0
    hwm = status.find(b"VmHWM:")
    peak = int(status[hwm + 6:status.index(b"kB", hwm)]) if hwm >= 0 else 0
    return times[0], times[1], peak


CPUCLOCK_PROF, CPUCLOCK_VIRT, CPUCLOCK_SCHED = 0, 1, 2


def host_process_cpu_ns(tgid: int, which: int) -> int | None:
    """A host process's CPU-time clock, all its threads live and gone
    (which: CPUCLOCK_PROF user+system, CPUCLOCK_VIRT user,
    CPUCLOCK_SCHED the scheduler's runtime); the host lets anyone read
    it.  None once the process is gone."""
    try:
        return time.clock_gettime_ns(((~tgid) << 3) | which)
    except OSError:
        return None


def host_thread_cpu_ns(tid: int, which: int) -> int:
    """One host thread's CPU time as its CPU-time clock counts it (see
    host_process_cpu_ns); 0 once it is gone."""
    if which == CPUCLOCK_SCHED:
        return host_task_cpu_ns(tid)
    user, system = _stat_times(tid, tid) or (0, 0)
    return user + system if which == CPUCLOCK_PROF else user


def host_cpu_clock_res_ns(which: int) -> int:
    """The resolution of a CPU-time clock of that kind: 1 ns for
    CPUCLOCK_SCHED, the host's tick for the sampled ones."""
    return host_clock_res_ns(((~0) << 3) | which)
