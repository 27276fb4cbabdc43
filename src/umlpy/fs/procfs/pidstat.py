"""The text of /proc/PID/{stat,status,statm,limits}, field for field as
Linux 6.1's fs/proc/array.c and base.c print them, since ps, top, pgrep
and friends parse them by position or by name.

What umlpy does not keep is shown as Linux shows an idle, fault-free
process: page-fault and context-switch counts and wchan are zeros.  CPU times are the host processes' (kernel/rusage.py).
"""
from __future__ import annotations

from arch_um import procinfo
from umlpy.abi import consts as C
from umlpy.fs.procfs.target import (MemUse, NS_PER_TICK, STATE_NAMES, Target, layout, live, nthreads,
                                    state_letter, tpgid, tty_nr)
from umlpy.kernel import rusage, timens, userns
from umlpy.kernel.task import RLIM_INFINITY

PF_RANDOMIZE = 0x00400000     # the flags word of an ordinary user process
KB_PER_PAGE = C.PAGE_SIZE // 1024


def _sigbits(proc) -> tuple[int, int]:
    """(ignored, caught) signal sets from the dispositions."""
    ign = catch = 0
    for sig in range(1, len(proc.sighand.actions)):
        h = proc.sighand.actions[sig].handler
        if h == C.SIG_IGN:
            ign |= 1 << (sig - 1)
        elif h != C.SIG_DFL:
            catch |= 1 << (sig - 1)
    return ign, catch


def stat_text(tg: Target, reader) -> bytes:
    """The start time is on the boot clock of the reader's time namespace
    (an unsigned 64-bit count: one from before a negative offset's zero
    wraps, as Linux's)."""
    proc = tg.proc()
    task = tg.task()
    mm = proc.mm
    is_live = live(proc)
    mem = MemUse(proc)
    lay = layout(proc)
    own = rusage.own(proc)
    ign, catch = _sigbits(proc)
    pending = (task.pending | proc.shared_pending) & 0x7fffffff
    vnr = tg.fs.vnr         # every pid as the instance's pid namespace sees it
    ppid = vnr(proc.parent.pid) if proc.parent is not None else 0
    arg = mm.arg_range if is_live else (0, 0)
    env = mm.env_range if is_live else (0, 0)
    fields = [
        state_letter(proc, task), ppid, vnr(proc.pgid), vnr(proc.sid), tty_nr(proc), tpgid(proc, vnr),
        PF_RANDOMIZE, 0, 0, 0, 0,               # flags, minflt, cminflt, majflt, cmajflt
        *(ns // NS_PER_TICK for ns in (own.utime, own.stime, proc.cusage.utime, proc.cusage.stime)),
        task.sched.prio(), task.sched.nice, nthreads(proc), 0,    # priority, nice, num_threads, itrealvalue
        (proc.start_ns + timens.offset_of(reader, C.CLOCK_BOOTTIME)) % (1 << 64) // NS_PER_TICK,
        mem.size * C.PAGE_SIZE, mem.resident, proc.rlimit(C.RLIMIT_RSS)[0],
        lay["start_code"], lay["end_code"], mm.start_stack if is_live else 0,
        0, 0,                                   # kstkesp, kstkeip
        pending, task.blocked & 0x7fffffff, ign & 0x7fffffff, catch & 0x7fffffff,
        0, 0, 0,                                # wchan, nswap, cnswap
        proc.exit_signal, 0,                    # exit signal, processor
        task.sched.rt_priority, task.sched.policy, 0, 0, 0,     # delayacct, guest times
        lay["start_data"], lay["end_data"], mm.brk_start if is_live else 0,
        arg[0], arg[1], env[0], env[1],
        proc.wait_status if proc.zombie else 0,
    ]
    head = f"{vnr(task.tid)} (".encode() + proc.comm + b") "
    return head + " ".join(str(f) for f in fields).encode() + b"\n"


def statm_text(tg: Target) -> bytes:
    m = MemUse(tg.proc())
    return f"{m.size} {m.resident} {m.shared} {m.text} 0 {m.data} 0\n".encode()


def _kb(name: str, pages: int) -> str:
    return f"{name}:\t{pages * KB_PER_PAGE:8d} kB"


def _escape_comm(comm: bytes) -> bytes:
    return comm.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")


def _levels(tg: Target, nr: int) -> str:
    """A pid in each namespace from the instance's down (the NS* lines)."""
    return "\t".join(str(n) for n in tg.kernel.procs.pidmap.levels(tg.fs.pidns, nr)) or "0"


def status_text(tg: Target, vm: dict[str, int] | None = None, viewer_ns=None) -> bytes:
    """vm: the Vm* sizes in pages from the mappings (maps.vm_sizes), if
    known; viewer_ns: the reader's user namespace, the ids shown in it."""
    proc = tg.proc()
    task = tg.task()
    c = proc.creds
    letter = state_letter(proc, task)
    vnr = tg.fs.vnr
    ppid = vnr(proc.parent.pid) if proc.parent is not None else 0
    tracer = vnr(task.ptrace.tracer.pid) if task.ptrace is not None else 0
    fdmax = max(proc.fdtable.files, default=0)
    ign, catch = _sigbits(proc)
    lines = [
        f"Umask:\t{proc.fs.umask:04o}",
        f"State:\t{letter} ({STATE_NAMES[letter]})",
        f"Tgid:\t{vnr(proc.pid)}", "Ngid:\t0", f"Pid:\t{vnr(task.tid)}", f"PPid:\t{ppid}", f"TracerPid:\t{tracer}",
        "Uid:\t" + "\t".join(str(userns.munged(viewer_ns, "uid_map", i)) for i in (c.uid, c.euid, c.suid, c.fsuid)),
        "Gid:\t" + "\t".join(str(userns.munged(viewer_ns, "gid_map", i)) for i in (c.gid, c.egid, c.sgid, c.fsgid)),
        f"FDSize:\t{max(64, (fdmax + 64) // 64 * 64)}",
        "Groups:\t" + " ".join(str(userns.munged(viewer_ns, "gid_map", g)) for g in c.groups) + " ",
        f"NStgid:\t{_levels(tg, proc.pid)}", f"NSpid:\t{_levels(tg, task.tid)}",
        f"NSpgid:\t{_levels(tg, proc.pgid)}", f"NSsid:\t{_levels(tg, proc.sid)}",
    ]
    if live(proc):
        lines += _vm_lines(MemUse(proc), vm or {})
    sc = task.seccomp
    lines += [
        "CoreDumping:\t0", "THP_enabled:\t1", f"Threads:\t{nthreads(proc)}",
        f"SigQ:\t0/{proc.rlimit(11)[0]}",
        f"SigPnd:\t{task.pending:016x}", f"ShdPnd:\t{proc.shared_pending:016x}",
        f"SigBlk:\t{task.blocked:016x}", f"SigIgn:\t{ign:016x}", f"SigCgt:\t{catch:016x}",
        f"CapInh:\t{c.cap_inheritable:016x}", f"CapPrm:\t{c.cap_permitted:016x}",
        f"CapEff:\t{c.cap_effective:016x}", f"CapBnd:\t{c.cap_bset:016x}", f"CapAmb:\t{c.cap_ambient:016x}",
        f"NoNewPrivs:\t{int(proc.no_new_privs)}", f"Seccomp:\t{sc.mode if sc is not None else 0}",
        f"Seccomp_filters:\t{sc.filter.count() if sc is not None and sc.filter is not None else 0}",
        "Speculation_Store_Bypass:\tnot vulnerable", "SpeculationIndirectBranch:\tnot affected",
        "Cpus_allowed:\t1", "Cpus_allowed_list:\t0", "Mems_allowed:\t00000001", "Mems_allowed_list:\t0",
        f"voluntary_ctxt_switches:\t{task.nvcsw}",
        f"nonvoluntary_ctxt_switches:\t{procinfo.involuntary_switches(task.hpid) if task.mem is not None else 0}",
    ]
    return b"Name:\t" + _escape_comm(proc.comm) + b"\n" + "\n".join(lines).encode() + b"\n"


def _vm_lines(m: MemUse, vm: dict[str, int]) -> list[str]:
    size = vm.get("size", m.size)
    stack = vm.get("stack", 0)
    exe = vm.get("exe", m.text)
    lib = vm.get("lib", 0)
    data = vm.get("data", max(0, m.data - stack))
    return [
        _kb("VmPeak", size), _kb("VmSize", size), _kb("VmLck", vm.get("locked", 0)), _kb("VmPin", 0),
        _kb("VmHWM", m.resident), _kb("VmRSS", m.resident),
        _kb("RssAnon", m.resident - m.shared), _kb("RssFile", m.shared), _kb("RssShmem", 0),
        _kb("VmData", data), _kb("VmStk", stack), _kb("VmExe", exe), _kb("VmLib", lib),
        _kb("VmPTE", 0), _kb("VmSwap", 0), _kb("HugetlbPages", 0),
    ]


# (name, units) in RLIMIT order, as fs/proc/base.c's lnames
_LIMITS = [("Max cpu time", "seconds"), ("Max file size", "bytes"), ("Max data size", "bytes"),
           ("Max stack size", "bytes"), ("Max core file size", "bytes"),
           ("Max resident set", "bytes"), ("Max processes", "processes"),
           ("Max open files", "files"), ("Max locked memory", "bytes"),
           ("Max address space", "bytes"), ("Max file locks", "locks"),
           ("Max pending signals", "signals"), ("Max msgqueue size", "bytes"),
           ("Max nice priority", ""), ("Max realtime priority", ""),
           ("Max realtime timeout", "us")]


def limits_text(tg: Target) -> bytes:
    proc = tg.proc()
    out = [f"{'Limit':<25} {'Soft Limit':<20} {'Hard Limit':<20} {'Units':<10}"]
    for res, (name, units) in enumerate(_LIMITS):
        vals = ["unlimited" if v == RLIM_INFINITY else str(v) for v in proc.rlimit(res)]
        line = f"{name:<25} {vals[0]:<20} {vals[1]:<20} "
        out.append(line + (f"{units:<10}" if units else ""))
    return ("\n".join(out) + "\n").encode()
