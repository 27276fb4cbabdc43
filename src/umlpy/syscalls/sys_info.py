"""The machine and the caller: uname, limits, randomness."""
from __future__ import annotations

import re
import struct

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.abi.capability import CAP_SYS_ADMIN, CAP_SYS_RESOURCE
from umlpy.kernel import cpulimit, hostlimits, oom, printk, rusage, timens
from umlpy.kernel.cred import capable, need
from umlpy.kernel.errors import Block, KernelError
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import s32


def uname26(release: str) -> str:
    """The release UNAME26 shows (override_release): 2.6.(60 + patchlevel)
    with the rest of the release after its version numbers."""
    m = re.match(r"[0-9.]*", release)
    nums = m.group(0)
    cut = [i for i, ch in enumerate(nums) if ch == "."][2:3]
    rest = release[cut[0]:] if cut else release[len(nums):]
    parts = nums.split(".")
    patchlevel = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return f"2.6.{60 + patchlevel}{rest}"


@syscall("uname")
def sys_uname(t, buf, *_):
    """The machine; a PER_LINUX32 process is told i686, an UNAME26 one a
    2.6 release (personality(2))."""
    k = t.kernel
    uts = t.proc.ns.uts
    pers = t.proc.personality
    release = uname26(k.release) if pers & C.UNAME26 else k.release
    machine = "i686" if pers & C.PER_MASK == C.PER_LINUX32 else "x86_64"
    t.mem.write(buf, structs.pack_utsname(
        ["Linux", uts.hostname, release, k.version_string, machine, uts.domainname]))
    return 0


def _set_name(t, addr: int, length: int, attr: str) -> int:
    """The caller's UTS namespace's name (its own after unshare(CLONE_NEWUTS))."""
    need(t.proc.creds, CAP_SYS_ADMIN)
    if length > 64:
        raise KernelError(E.EINVAL)
    setattr(t.proc.ns.uts, attr, t.mem.read(addr, length).decode(errors="replace"))
    return 0


@syscall("sethostname")
def sys_sethostname(t, addr, length, *_):
    return _set_name(t, addr, length, "hostname")


@syscall("setdomainname")
def sys_setdomainname(t, addr, length, *_):
    return _set_name(t, addr, length, "domainname")


@syscall("getrandom")
def sys_getrandom(t, buf, count, flags, *_):
    if flags & ~(C.GRND_NONBLOCK | C.GRND_RANDOM | C.GRND_INSECURE):
        raise KernelError(E.EINVAL)
    n = min(count, 33554431)
    t.mem.write(buf, clock.random_bytes(n))
    return n


# -- limits and usage -----------------------------------------------------------

@syscall("prlimit64")
def sys_prlimit64(t, pid, res, new, old, *_):
    if res >= C.RLIM_NLIMITS:
        raise KernelError(E.EINVAL)
    proc = t.proc
    creds = proc.creds
    if s32(pid):
        proc = t.kernel.procs.find_proc(t.proc, s32(pid))
        if proc is None:
            raise KernelError(E.ESRCH)
        tc = proc.creds
        if proc is not t.proc and not capable(creds, CAP_SYS_RESOURCE) and not (
                {tc.uid, tc.euid, tc.suid} == {creds.uid} and {tc.gid, tc.egid, tc.sgid} == {creds.gid}):
            raise KernelError(E.EPERM)      # another user's process
    cur = proc.rlimit(res)
    if new:
        soft, hard = struct.unpack("<QQ", t.mem.read(new, 16))
        if soft > hard:
            raise KernelError(E.EINVAL)
        if hard > cur[1]:
            need(creds, CAP_SYS_RESOURCE)
        if res == C.RLIMIT_NOFILE and hard > t.kernel.tunables.nr_open:
            raise KernelError(E.EPERM)
    if old:
        t.mem.write(old, struct.pack("<QQ", *cur))
    if new:
        proc.rlimits[res] = (soft, hard)
        if res == C.RLIMIT_NOFILE:
            for th in proc.threads:
                th.files.limit = soft
        elif res == C.RLIMIT_CPU:
            cpulimit.update(t.kernel, proc)
        elif res in hostlimits.ENFORCED:
            hostlimits.apply(proc, res)
    return 0


@syscall("getrlimit")
def sys_getrlimit(t, res, addr, *_):
    if not addr:
        raise KernelError(E.EFAULT)     # prlimit64 takes NULL as "not asked"; getrlimit stores
    return sys_prlimit64(t, 0, res, 0, addr)


@syscall("setrlimit")
def sys_setrlimit(t, res, addr, *_):
    if not addr:
        raise KernelError(E.EFAULT)
    return sys_prlimit64(t, 0, res, addr, 0)


@syscall("getrusage", status=PARTIAL, note="CPU times and peak RSS of the host processes, ru_inblock and ru_oublock from the I/O accounting (kernel/ioac.py), ru_nvcsw from the kernel's waits and ru_nivcsw from the host's preemptions (kernel/rusage.py); the other counters zero")
def sys_getrusage(t, who, addr, *_):
    who = s32(who)
    t.mem.write(addr, rusage.of(t, who).pack(rusage.blocks(t, who), rusage.switches(t, who)))
    return 0


@syscall("sysinfo")
def sys_sysinfo(t, addr, *_):
    k = t.kernel
    up = -(-(k.uptime_ns() + timens.offset_of(t, C.CLOCK_BOOTTIME)) // 10**9)    # a second begun counts
    total = k.mem_budget.limit
    anon, shmem = oom.usage(k)
    free = max(0, total - anon - shmem - k.mem_budget.kmem)
    data = struct.pack("<q3Q6QH6xQQI", up, 0, 0, 0, total, free, shmem, 0, 0, 0,
                       len(k.procs.by_pid), 0, 0, 1)
    t.mem.write(addr, data.ljust(112, b"\0"))
    return 0


# flags whose effect umlpy does not give: the host lays out address spaces
_UNHONOURED = {C.MMAP_PAGE_ZERO: "MMAP_PAGE_ZERO (no page at address 0 on exec)",
               C.ADDR_COMPAT_LAYOUT: "ADDR_COMPAT_LAYOUT (the host's mmap layout stays)"}


@syscall("personality", status=PARTIAL, note="any persona and flags are kept and reported, as Linux; "
         "honoured: PER_LINUX32 and UNAME26 (uname), ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, "
         "STICKY_TIMEOUTS; MMAP_PAGE_ZERO and ADDR_COMPAT_LAYOUT logged, not honoured")
def sys_personality(t, persona, *_):
    """0xffffffff asks; anything else is the new personality (Linux keeps
    whatever it is given: personas other than Linux's only name the ABI,
    and most flags concern 32-bit programs)."""
    old = t.proc.personality
    persona &= 0xFFFFFFFF
    if persona != 0xFFFFFFFF:
        for flag, what in _UNHONOURED.items():
            if persona & flag and not old & flag:
                printk.pr_notice(f"personality {persona:#x}: {what} not supported")
        t.proc.personality = persona
    return old


# syslog(2) actions
(SYSLOG_CLOSE, SYSLOG_OPEN, SYSLOG_READ, SYSLOG_READ_ALL, SYSLOG_READ_CLEAR, SYSLOG_CLEAR,
 SYSLOG_CONSOLE_OFF, SYSLOG_CONSOLE_ON, SYSLOG_CONSOLE_LEVEL, SYSLOG_SIZE_UNREAD,
 SYSLOG_SIZE_BUFFER) = range(11)


def _syslog_allowed(t, action: int) -> None:
    """check_syslog_permissions: reading the whole buffer or its size is
    open to all unless kernel.dmesg_restrict; everything else needs
    CAP_SYSLOG (CAP_SYS_ADMIN too, as Linux still accepts it)."""
    if not printk.syslog_allowed(t.proc.creds, t.kernel.dmesg_restrict,
                                 action in (SYSLOG_READ_ALL, SYSLOG_SIZE_BUFFER)):
        raise KernelError(E.EPERM)


@syscall("syslog")
def sys_syslog(t, action, buf, length, *_):
    action, length = s32(action), s32(length)
    if action in (SYSLOG_CLOSE, SYSLOG_OPEN):
        return 0
    _syslog_allowed(t, action)
    log = t.kernel.log
    if action in (SYSLOG_READ, SYSLOG_READ_ALL, SYSLOG_READ_CLEAR):
        if not buf or length < 0:
            raise KernelError(E.EINVAL)
        if not length:
            return 0
        if action == SYSLOG_READ:
            if log.read_seq >= log.next_seq:
                raise Block(log.wq)
            data = log.take(length)
        else:
            data = log.tail(length)
            if action == SYSLOG_READ_CLEAR:
                log.clear_seq = log.next_seq
        t.mem.write(buf, data)
        return len(data)
    if action == SYSLOG_CLEAR:
        log.clear_seq = log.next_seq
        return 0
    if action == SYSLOG_CONSOLE_OFF:
        if log.saved_loglevel == -1:
            log.saved_loglevel = log.console_loglevel
        log.console_loglevel = printk.MINIMUM_CONSOLE_LOGLEVEL
        return 0
    if action == SYSLOG_CONSOLE_ON:
        if log.saved_loglevel != -1:
            log.console_loglevel, log.saved_loglevel = log.saved_loglevel, -1
        return 0
    if action == SYSLOG_CONSOLE_LEVEL:
        if not 1 <= length <= 8:
            raise KernelError(E.EINVAL)
        log.console_loglevel = max(length, printk.MINIMUM_CONSOLE_LOGLEVEL)
        log.saved_loglevel = -1
        return 0
    if action == SYSLOG_SIZE_UNREAD:
        return log.unread()
    if action == SYSLOG_SIZE_BUFFER:
        return printk.LOG_BUF_LEN
    raise KernelError(E.EINVAL)
