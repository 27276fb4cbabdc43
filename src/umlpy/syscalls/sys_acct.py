"""BSD process accounting (Linux's kernel/acct.c, CONFIG_BSD_PROCESS_ACCT_V3):
acct(2) names a file, and every process that dies in that pid namespace,
or below it, appends a struct acct_v3 there (what `lastcomm` and `sa`
read).  The kernel's exit path calls `Accounting.account` for each
namespace with accounting on; the record is written as the kernel's own
write, past the dying process's RLIMIT_FSIZE.  Accounting pauses while the
file's filesystem has less than 2% free and resumes at 4%, looked at every
30 s, as Linux's acct_parm default "4 2 30"."""
from __future__ import annotations

import struct

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.kernel import printk, timekeeping
from umlpy.kernel.cred import need
from umlpy.kernel.errors import Block, KernelError
from umlpy.syscalls.sys_file import dentry_open, open_walk
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import read_path
from umlpy.vfs import fsnotify as N
from umlpy.vfs.file import max_bytes

AHZ = 100                           # ACCT_HZ: USER_HZ
ACCT_VERSION = 3
AFORK, ASU, ACORE, AXSIG = 0x01, 0x02, 0x08, 0x10
RESUME, SUSPEND, CHECK_NS = 4, 2, 30 * 10**9       # acct_parm: % free to resume, to pause; how often
# struct acct_v3: flag, version, tty, exitcode, uid, gid, pid, ppid, btime,
# etime (a float's bits), utime, stime, mem, io, rw, minflt, majflt, swaps, comm
RECORD = struct.Struct("<BBH7I8H16s")
MANTSIZE, EXPSIZE, MAXFRACT = 13, 3, (1 << 13) - 1


def encode_comp_t(value: int) -> int:
    """comp_t: 13 bits of mantissa, 3 of base-8 exponent, rounded."""
    exp = rnd = 0
    while value > MAXFRACT:
        rnd = value & (1 << (EXPSIZE - 1))
        value >>= EXPSIZE
        exp += 1
    if rnd:
        value += 1
        if value > MAXFRACT:
            value >>= EXPSIZE
            exp += 1
    if exp > 0xFFFF >> MANTSIZE:
        return 0xFFFF
    return (exp << MANTSIZE) + value


def encode_float(value: int) -> int:
    """A u64 as an IEEE single's bits, truncated as Linux's encode_float."""
    if value == 0:
        return 0
    exp = 190
    value &= (1 << 64) - 1
    while not value >> 63:
        value <<= 1
        exp -= 1
    return ((value >> 40) & 0x7FFFFF) | (exp << 23)


def _ahz(ns: int) -> int:
    return ns * AHZ // 10**9


class Accounting:
    """One pid namespace's accounting file (its bsd_acct_struct)."""

    def __init__(self, f, k) -> None:
        self.file = f
        self.k = k
        self.active = True
        self.next_check = 0

    def close(self) -> None:
        self.file.put()

    def _space_ok(self) -> bool:
        """check_free_space: pause below SUSPEND% free, resume at RESUME%."""
        now = self.k.uptime_ns()
        if now < self.next_check:
            return self.active
        self.next_check = now + CHECK_NS
        st = self.file.inode.fs.statfs()
        blocks, avail = st.get("blocks", 0), st.get("bavail", 0)
        if not blocks:
            return self.active
        if self.active and avail * 100 <= blocks * SUSPEND:
            self.active = False
            printk.pr_info("Process accounting paused")
        elif not self.active and avail * 100 >= blocks * RESUME:
            self.active = True
            printk.pr_info("Process accounting resumed")
        return self.active

    def account(self, proc, wait_status: int, ns) -> None:
        """do_acct_process for proc, which just died with wait_status, its
        numbers as ns sees them."""
        if not self._space_ok():
            return
        mm = proc.mm
        vm_kb = sum(e - s for s, e, _ in mm.ranges) >> 10 if mm is not None else 0
        k = self.k
        elapsed = _ahz(max(0, k.uptime_ns() - proc.start_ns))
        btime = timekeeping.realtime_ns() // 10**9 - elapsed // AHZ
        flag = 0 if proc.execed else AFORK
        if wait_status & 0x7F:
            flag |= AXSIG | (ACORE if wait_status & 0x80 else 0)
        tty = proc.ctty
        dev = (structs.major(tty.rdev) << 8 | structs.minor(tty.rdev)) & 0xFFFF if tty is not None else 0
        usage = proc.usage
        parent = proc.parent
        vnr = k.procs.pidmap.vnr
        rec = RECORD.pack(flag, ACCT_VERSION, dev, wait_status & 0xFFFFFFFF, proc.creds.uid, proc.creds.gid,
                          vnr(ns, proc.pid), vnr(ns, parent.pid) if parent is not None else 0,
                          min(max(btime, 0), 0xFFFFFFFF), encode_float(elapsed),
                          encode_comp_t(_ahz(usage.utime)), encode_comp_t(_ahz(usage.stime)),
                          encode_comp_t(vm_kb), 0, 0, 0, 0, 0, proc.comm[:15])
        inode = self.file.inode
        try:
            end = inode.size()                  # opened O_APPEND: the end, whoever wrote last
            top = max_bytes(inode)
            if end >= top:
                return  # EFBIG (generic_write_check_limits; acct lifts RLIMIT_FSIZE): the record is lost
            inode.write(end, rec[:top - end])
        except KernelError:
            # a full or read-only disk, or a /proc file whose process is
            # gone (an oops before), loses the record: Linux's
            # __kernel_write's errors are not looked at
            return
        N.file_event(self.file, N.IN_MODIFY)


def _open(t, path: bytes):
    """acct_on's file_open_name(O_WRONLY|O_APPEND|O_LARGEFILE): a regular
    file (EACCES otherwise, after the open's own errors)."""
    flags = C.O_WRONLY | C.O_APPEND | C.O_LARGEFILE
    d, _ = open_walk(t, C.AT_FDCWD, path, flags, 0)
    if d.inode.fmt not in (C.S_IFREG, C.S_IFDIR):
        # not opened at all: a device's open could act, a fifo's would wait
        # for a reader (Linux opens first); EISDIR comes from the open below
        raise KernelError(E.EACCES)
    try:
        f = dentry_open(t, d, flags)
    except Block as b:
        b.retry = None                  # the whole call again once the open may go on
        raise
    return f.get()


@syscall("acct", note="BSD process accounting, version 3 records; ac_minflt and ac_majflt 0, no ASU flag")
def sys_acct(t, name, *_):
    need(t.proc.creds, K.CAP_SYS_PACCT)
    ns = t.proc.pidns
    new = Accounting(_open(t, read_path(t, name)), t.kernel) if name else None
    old, ns.acct = ns.acct, new
    if old is not None:
        old.close()
    return 0
