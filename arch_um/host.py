"""Process-wide host facts and policies (CPU affinity, limits, exit)."""
import os
import resource
import sys


def pin_to_one_cpu(cpu: int | None = None) -> int:
    """Pin the kernel (and so every guest it starts) to one CPU.

    Measured here: a wake-up on the other vCPU costs up to 10x, so the kernel
    and its guests share one CPU.  Without a choice, an instance takes the
    allowed CPU with the fewest processes pinned to it alone (other
    instances and their guests), so instances side by side spread out.
    """
    allowed = sorted(os.sched_getaffinity(0))
    if cpu is None or cpu not in allowed:
        load = _pinned_load(allowed)
        cpu = min(allowed, key=lambda c: (load[c], (c - os.getpid()) % len(allowed)))
    os.sched_setaffinity(0, {cpu})
    return cpu


def _pinned_load(cpus: list[int]) -> dict[int, int]:
    """For each CPU, how many user processes may run only there (runnable
    ones count twice).  Kernel threads (children of kthreadd) are left out."""
    load = dict.fromkeys(cpus, 0)
    try:
        pids = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return load
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() in ("0", "2"):
            continue
        only = fields.get("Cpus_allowed_list", "").strip()
        if only.isdigit() and int(only) in load:
            load[int(only)] += 2 if fields.get("State", "").strip().startswith("R") else 1
    return load


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# the limits the host enforces on a guest process's host process: it
# grows the stack and maps memory for the guest (host numbering by name)
HOST_ENFORCED = {3: resource.RLIMIT_STACK, 9: resource.RLIMIT_AS, 2: resource.RLIMIT_DATA}


def set_host_limit(hpid: int, res: int, soft: int, hard: int) -> None:
    """A guest process's limit res (RLIMIT_STACK, _AS or _DATA) on its host
    process, within umlpy's own hard limit, which an unprivileged process
    cannot pass."""
    host_res = HOST_ENFORCED[res]
    cap = resource.getrlimit(host_res)[1]       # RLIM_INFINITY is -1 here

    def host_value(v: int) -> int:
        if v >= 1 << 63:            # the guest's RLIM_INFINITY
            return cap
        return v if cap == resource.RLIM_INFINITY else min(v, cap)
    try:
        resource.prlimit(hpid, host_res, (host_value(soft), host_value(hard)))
    except (OSError, ValueError):
        pass        # the host process is gone


def refcount(obj) -> int:
    """The references the interpreter counts to obj, as its caller sees
    them (its own variables included, this call's argument not): what
    the kernel's caches take for "nothing else holds it"."""
    return sys.getrefcount(obj) - 2


def host_pid() -> int:
    return os.getpid()


def share_affinity(pid: int) -> None:
    """Pin host process pid where this process is pinned (one made before
    pin_to_one_cpu)."""
    try:
        os.sched_setaffinity(pid, os.sched_getaffinity(0))
    except ProcessLookupError:
        pass


def kill_host(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def exit_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
