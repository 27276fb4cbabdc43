"""process_vm_readv, process_vm_writev: copies between two guest address
spaces (mm/process_vm_access.c).

Both sides are guest memory, reached the way the kernel reaches any guest
memory (arch_um's GuestMemory: the host's process_vm_readv/writev into the
tasks' host processes), so the pages' protections hold on both: a read
from a page the target cannot read, or a write into one it cannot write,
stops the copy there.  What was copied before the first fault counts (a
partial transfer); a copy that moved nothing is EFAULT.  The caller must
be allowed to attach to the target (PTRACE_MODE_ATTACH_REALCREDS: the same
real ids, a dumpable target, or CAP_SYS_PTRACE), else EPERM.
"""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.kernel.cred import ptrace_may_access
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import read_iovecs, s32

CHUNK = 1 << 16     # the most one host copy moves


def _copy(src, src_vecs: list[tuple[int, int]], dst, dst_vecs: list[tuple[int, int]]) -> tuple[int, bool]:
    """Copy the bytes of src_vecs (in src's memory) into dst_vecs (in dst's)
    in order, as far as both go: (bytes copied, whether a fault stopped it)."""
    total = 0
    si = di = 0
    s_off = d_off = 0
    while si < len(src_vecs) and di < len(dst_vecs):
        (sb, sn), (db, dn) = src_vecs[si], dst_vecs[di]
        n = min(sn - s_off, dn - d_off, CHUNK)
        if n > 0:
            data = src.read_prefix(sb + s_off, n)
            done = dst.write_prefix(db + d_off, data)
            total += done
            if done < n:
                return total, True
            s_off += n
            d_off += n
        if s_off >= sn:
            si, s_off = si + 1, 0
        if d_off >= dn:
            di, d_off = di + 1, 0
    return total, False


def _process_vm_rw(t, pid, lvec, liovcnt, rvec, riovcnt, flags, write: bool) -> int:
    if flags:
        raise KernelError(E.EINVAL)
    local = read_iovecs(t, lvec, liovcnt)
    if not any(n for _, n in local):
        return 0
    remote = read_iovecs(t, rvec, riovcnt, local=False)
    if not any(n for _, n in remote):
        return 0
    target = t.kernel.procs.find_task(t.proc, s32(pid))
    if target is None or target.proc.exited or target.proc.mm is None or target.mem is None:
        raise KernelError(E.ESRCH)
    if not ptrace_may_access(t, target.proc, fscreds=False, target_task=target):
        raise KernelError(E.EPERM)
    if write:
        done, fault = _copy(t.mem, local, target.mem, remote)
    else:
        done, fault = _copy(target.mem, remote, t.mem, local)
    if not done and fault:
        raise KernelError(E.EFAULT)
    return done


@syscall("process_vm_readv")
def sys_process_vm_readv(t, pid, lvec, liovcnt, rvec, riovcnt, flags, *_):
    return _process_vm_rw(t, pid, lvec, liovcnt, rvec, riovcnt, flags, write=False)


@syscall("process_vm_writev")
def sys_process_vm_writev(t, pid, lvec, liovcnt, rvec, riovcnt, flags, *_):
    return _process_vm_rw(t, pid, lvec, liovcnt, rvec, riovcnt, flags, write=True)
