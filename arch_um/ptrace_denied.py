"""Why the host refuses to let umlpy ptrace its guests, in one sentence.

umlpy runs every guest process under ptrace; when the host says EPERM to
the first PTRACE_SEIZE, the user needs the cause, not a traceback.  The
known causes, most specific first: umlpy is itself traced (`strace -f`,
gdb: the tracer already holds the child, and a tracee's own ptrace is
refused), Yama's ptrace_scope (3: ptrace is off for everyone; 2: only with
CAP_SYS_PTRACE), a seccomp filter (containers' default policies), and
otherwise an LSM or policy we cannot name.
"""
from __future__ import annotations

CAP_SYS_PTRACE = 19


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _status() -> dict[str, str]:
    out = {}
    for line in (_read("/proc/self/status") or "").splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def reason() -> str:
    st = _status()
    tracer = st.get("TracerPid", "0")
    if tracer not in ("", "0"):
        comm = (_read(f"/proc/{tracer}/comm") or "?").strip()
        return (f"umlpy is itself being traced (by pid {tracer}, {comm}), and a traced process "
                f"cannot trace its guests: run umlpy without strace -f/gdb, or trace only the kernel "
                f"(strace without -f)")
    scope = (_read("/proc/sys/kernel/yama/ptrace_scope") or "").strip()
    if scope == "3":
        return "the host forbids ptrace to everyone (kernel.yama.ptrace_scope=3, until reboot)"
    caps = int(st.get("CapEff", "0") or "0", 16)
    if scope == "2" and not caps & (1 << CAP_SYS_PTRACE):
        return ("the host allows ptrace only with CAP_SYS_PTRACE (kernel.yama.ptrace_scope=2): "
                "set it to 0 or 1, or give umlpy the capability")
    if st.get("Seccomp", "0") not in ("", "0"):
        return ("a seccomp filter on umlpy forbids ptrace (a container's default policy?): "
                "allow ptrace, e.g. docker run --security-opt seccomp=unconfined or --cap-add SYS_PTRACE")
    return "the host refused ptrace (EPERM): an LSM or a policy forbids tracing here"
