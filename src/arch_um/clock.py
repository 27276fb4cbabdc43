"""Host time and entropy, the kernel's only clocks and random source."""
import os
import time


def monotonic_ns() -> int:
    return time.monotonic_ns()


def realtime_ns() -> int:
    return time.time_ns()


def process_cpu_ns() -> int:
    return time.process_time_ns()


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


def host_usage(pid: int, tid: int = 0) -> tuple[int, int, int]:
    """(user ns, system ns, peak resident KiB) of a host process (all its
    threads, live and gone), or of one of its threads when tid is given;
    zeros once it is gone."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    try:
        with open(path, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open(f"/proc/{pid}/status", "rb") as f:
            status = f.read()
    except (OSError, IndexError):
        return 0, 0, 0
    hwm = status.find(b"VmHWM:")
    peak = int(status[hwm + 6:status.index(b"kB", hwm)]) if hwm >= 0 else 0
    return int(fields[11]) * _TICK_NS, int(fields[12]) * _TICK_NS, peak


CPUCLOCK_SCHED = 2


def host_process_cpu_ns(pid: int) -> int:
    """CPU time a host process and all its threads, live and gone, have
    used (its CPUCLOCK_SCHED process clock: precise, not tick-sampled)."""
    try:
        return time.clock_gettime_ns((~pid << 3) | CPUCLOCK_SCHED)
    except OSError:
        return 0
