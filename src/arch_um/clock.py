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
