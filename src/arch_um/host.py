"""Process-wide host facts and policies (CPU affinity, limits, exit)."""
import os
import resource
import sys


def pin_to_one_cpu(cpu: int | None = None) -> int:
    """Pin the kernel (and so every guest it starts) to one CPU.

    Measured here: a wake-up on the other vCPU costs up to 10x, so the kernel
    and its guests share one CPU.  Without a choice, instances spread over the
    allowed CPUs by host pid, so parallel test runs do not all pile on one.
    """
    allowed = sorted(os.sched_getaffinity(0))
    if cpu is None or cpu not in allowed:
        cpu = allowed[os.getpid() % len(allowed)]
    os.sched_setaffinity(0, {cpu})
    return cpu


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def host_pid() -> int:
    return os.getpid()


def kill_host(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def exit_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
