"""File descriptors: dup family, fcntl, pipes, ioctl."""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.syscalls import sys_memfd
from umlpy.syscalls.sys_read_write import FICLONE, FICLONERANGE, FIDEDUPERANGE, remap_ioctl
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import install_pair, s32
from umlpy.abi import signals as S
from umlpy.vfs import directio, dnotify, lease, locks
from umlpy.vfs.fown import F_OWNER_PGRP, F_OWNER_PID, F_OWNER_TID, owner_of
from umlpy.vfs.pipe import Pipe, PipeFile

FIONBIO = 0x5421
FIOASYNC = 0x5452
FIOCLEX = 0x5451
FIONCLEX = 0x5450


@syscall("dup")
def sys_dup(t, fd, *_):
    fdt = t.files
    return fdt.install(fdt.get_raw(s32(fd)))


def _dup_to(t, old: int, new: int, cloexec: bool) -> int:
    fdt = t.files
    f = fdt.get_raw(old)
    if new < 0 or new >= fdt.limit:
        raise KernelError(E.EBADF)
    fdt.install_at(new, f, cloexec)
    return new


@syscall("dup2")
def sys_dup2(t, old, new, *_):
    old, new = s32(old), s32(new)
    if old == new:
        t.files.get_raw(old)
        return new
    return _dup_to(t, old, new, False)


@syscall("dup3")
def sys_dup3(t, old, new, flags, *_):
    old, new = s32(old), s32(new)
    if old == new or flags & ~C.O_CLOEXEC:
        raise KernelError(E.EINVAL)
    return _dup_to(t, old, new, bool(flags & C.O_CLOEXEC))


F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
_FLOCK = struct.Struct("<hh4xqqi4x")   # struct flock on x86-64: 32 bytes


def _record_lock(t, f, cmd: int, arg: int) -> int:
    if f.inode is None:
        raise KernelError(E.EBADF)
    ltype, whence, start, length, pid = _FLOCK.unpack(t.mem.read(arg, _FLOCK.size))
    ofd = cmd in (F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
    if ofd and pid:
        raise KernelError(E.EINVAL)
    owner = f if ofd else t.files     # POSIX locks belong to the fd table, as Linux
    if cmd in (C.F_GETLK, F_OFD_GETLK):
        if ltype not in (locks.F_RDLCK, locks.F_WRLCK):
            raise KernelError(E.EINVAL)
        lk = locks.getlk(f, owner, ltype, whence, start, length)
        if lk is None:
            t.mem.write(arg, _FLOCK.pack(locks.F_UNLCK, whence, start, length, pid))
        else:
            n = 0 if lk.end == locks.OFFSET_MAX else lk.end - lk.start + 1
            owner_pid = -1 if lk.ofd else t.kernel.procs.vnr(t.proc, lk.pid)  # OFD: -1
            t.mem.write(arg, _FLOCK.pack(lk.type, 0, lk.start, n, owner_pid))
        return 0
    return locks.setlk(f, owner, t.proc.pid, ltype, whence, start, length,
                       cmd in (C.F_SETLKW, F_OFD_SETLKW))


@syscall("flock")
def sys_flock(t, fd, op, *_):
    f = t.files.get(s32(fd))
    if f.inode is None or op & ~(locks.LOCK_SH | locks.LOCK_EX | locks.LOCK_NB | locks.LOCK_UN) \
            or bin(op & (locks.LOCK_SH | locks.LOCK_EX | locks.LOCK_UN)).count("1") != 1:
        raise KernelError(E.EINVAL)
    return locks.flock(f, op, True, t.proc.pid)


# what fcntl does with an O_PATH file (check_fcntl_cmd); the rest is EBADF
_PATH_FCNTLS = (C.F_DUPFD, C.F_DUPFD_CLOEXEC, C.F_GETFD, C.F_SETFD, C.F_GETFL)
_OWNER = struct.Struct("<ii")       # struct f_owner_ex


def _setfl(f, fd: int, arg: int) -> None:
    """setfl: O_APPEND is not cleared on an append-only file; O_ASYNC
    turned on or off tells the file (f_op->fasync), and a file without
    fasync keeps it off (as Linux 6.18 does)."""
    if (arg ^ f.flags) & C.O_APPEND and f.inode is not None and f.inode.get_fsflags() & C.FS_APPEND_FL:
        raise KernelError(E.EPERM)      # an append-only file stays O_APPEND
    if arg & C.O_DIRECT:
        if f.inode is None:
            raise KernelError(E.EINVAL)     # an anonymous inode's file: no direct I/O
        if f.inode.fmt != C.S_IFIFO:        # a pipe's O_DIRECT is its packet mode
            directio.check_open(f.inode, arg)
    if not f.has_fasync:
        arg &= ~C.O_ASYNC
    elif (arg ^ f.flags) & C.O_ASYNC:
        f.fasync(fd, bool(arg & C.O_ASYNC))
    f.flags = (f.flags & ~C.SETFL_MASK) | (arg & C.SETFL_MASK)


def _owner_cmd(t, f, cmd: int, arg: int) -> int:
    """F_SETOWN/F_GETOWN(_EX), F_SETSIG/F_GETSIG."""
    if cmd in (C.F_GETOWN, C.F_GETOWN_EX):
        kind, nr = f.owner.get() if f.owner is not None else (F_OWNER_TID, 0)
        nr = t.kernel.procs.vnr(t.proc, nr)     # as the caller's pid namespace sees it
        if cmd == C.F_GETOWN:
            return -nr if kind == F_OWNER_PGRP else nr
        t.mem.write(arg, _OWNER.pack(kind, nr))
        return 0
    if cmd == C.F_GETSIG:
        return f.owner.signum if f.owner is not None else 0
    if cmd == C.F_SETSIG:
        if not 0 <= arg <= S.NSIG:
            raise KernelError(E.EINVAL)
        owner_of(f, t.kernel).signum = arg
        return 0
    if cmd == C.F_SETOWN:
        nr, kind = s32(arg), F_OWNER_PID
        if nr < 0:
            if nr == -(1 << 31):
                raise KernelError(E.EINVAL)
            nr, kind = -nr, F_OWNER_PGRP
    else:
        kind, nr = _OWNER.unpack(t.mem.read(arg, _OWNER.size))
        if kind not in (F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP):
            raise KernelError(E.EINVAL)
    gnr = t.kernel.procs.global_nr(t.proc, nr)
    if nr and not (gnr and _pid_exists(t.kernel, gnr)):
        raise KernelError(E.ESRCH)
    owner_of(f, t.kernel).set(t, kind, gnr)
    return 0


def _pid_exists(k, nr: int) -> bool:
    """find_vpid: a live task, process or group (or session) has the number."""
    return nr > 0 and (k.procs.task(nr) is not None
                       or any(nr in (p.pid, p.pgid, p.sid) and not p.exited for p in k.procs.by_pid.values()))


def _notify(t, f, fd: int, arg: int) -> int:
    """F_NOTIFY: DN_* events of a directory (vfs/dnotify.py); no event bit
    drops this table's registration.  The caller becomes the file's owner."""
    if not arg & ~dnotify.DN_MULTISHOT:
        dnotify.flush(t.files, f)
        return 0
    if f.inode is None or not f.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    dnotify.register(t.files, f, fd, arg)
    owner_of(f, t.kernel).set(t, F_OWNER_PID, t.proc.pid)
    return 0


@syscall("fcntl", status="partial", note="seals on tmpfs files and memfds; a lease break sends the file owner's signal (SIGIO unless F_SETSIG)")
def sys_fcntl(t, fd, cmd, arg, *_):
    fd = s32(fd)
    fdt = t.files
    f = fdt.get_raw(fd)
    cmd = s32(cmd)
    if f.flags & C.O_PATH and cmd not in _PATH_FCNTLS:
        raise KernelError(E.EBADF)
    if cmd in (C.F_DUPFD, C.F_DUPFD_CLOEXEC):
        minfd = s32(arg)
        if minfd < 0 or minfd >= fdt.limit:
            raise KernelError(E.EINVAL)
        return fdt.install(f, cmd == C.F_DUPFD_CLOEXEC, minfd)
    if cmd == C.F_GETFD:
        return C.FD_CLOEXEC if fd in fdt.cloexec else 0
    if cmd == C.F_SETFD:
        if arg & C.FD_CLOEXEC:
            fdt.cloexec.add(fd)
        else:
            fdt.cloexec.discard(fd)
        return 0
    if cmd == C.F_GETFL:
        return f.flags | C.O_LARGEFILE
    if cmd == C.F_SETFL:
        _setfl(f, fd, arg)
        return 0
    if cmd in (C.F_GETPIPE_SZ, C.F_SETPIPE_SZ):
        if not isinstance(f, PipeFile):
            raise KernelError(E.EBADF)      # pipe_fcntl: not a pipe
        if cmd == C.F_GETPIPE_SZ:
            return f.pipe.capacity
        return f.pipe.set_size(t.proc.creds, arg)
    if cmd in (lease.F_SETLEASE, lease.F_GETLEASE):
        return lease.fcntl_lease(t, f, fd, cmd, arg)
    if cmd in (C.F_GETLK, C.F_SETLK, C.F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW):
        return _record_lock(t, f, cmd, arg)
    if cmd in (C.F_SETOWN, C.F_GETOWN, C.F_SETOWN_EX, C.F_GETOWN_EX, C.F_SETSIG, C.F_GETSIG):
        return _owner_cmd(t, f, cmd, arg)
    if cmd == C.F_NOTIFY:
        return _notify(t, f, fd, arg & 0xFFFFFFFF)
    if cmd in (sys_memfd.F_ADD_SEALS, sys_memfd.F_GET_SEALS):
        return sys_memfd.seals_fcntl(t, f, cmd, arg)
    raise KernelError(E.EINVAL)


def do_pipe(t, addr: int, flags: int) -> int:
    if flags & ~(C.O_CLOEXEC | C.O_NONBLOCK | C.O_DIRECT):
        raise KernelError(E.EINVAL)
    p = Pipe(t)
    keep = flags & (C.O_NONBLOCK | C.O_DIRECT)
    return install_pair(t, PipeFile(p, C.O_RDONLY | keep), PipeFile(p, C.O_WRONLY | keep),
                        bool(flags & C.O_CLOEXEC), addr)


@syscall("pipe")
def sys_pipe(t, addr, *_):
    return do_pipe(t, addr, 0)


@syscall("pipe2")
def sys_pipe2(t, addr, flags, *_):
    return do_pipe(t, addr, flags)


@syscall("ioctl", status="partial", note="generic FIONBIO/FIOASYNC/FIOCLEX/FIONCLEX, FIOQSIZE, FIGETBSZ, FIONREAD (regular files), FS_IOC_GETFLAGS/SETFLAGS (ext2; ext4 with its own flags and rules), FS_IOC_FSGETXATTR, FS_IOC_FIEMAP (ext4 extents, unwritten ones flagged, and xattrs; ext2 and block-mapped runs as iomap reports them, MERGED); ttys, pipes and sockets their own (sockets: the netdevice ioctls SIOCGIFCONF, SIOCGIF*/SIOCSIF*, SIOCADDRT/SIOCDELRT); block devices the generic BLK* ones and loop devices LOOP_* (/dev/loop-control LOOP_CTL_*)")
def sys_ioctl(t, fd, req, arg, *_):
    fd = s32(fd)
    fdt = t.files
    f = fdt.get(fd)
    req &= 0xFFFFFFFF
    if req == FIONBIO:
        on = struct.unpack("<i", t.mem.read(arg, 4))[0]
        f.flags = f.flags | C.O_NONBLOCK if on else f.flags & ~C.O_NONBLOCK
        return 0
    if req == FIOASYNC:
        on = bool(struct.unpack("<i", t.mem.read(arg, 4))[0])
        if on != bool(f.flags & C.O_ASYNC):
            if not f.has_fasync:
                raise KernelError(E.ENOTTY)
            f.fasync(fd, on)
        f.flags = f.flags | C.O_ASYNC if on else f.flags & ~C.O_ASYNC
        return 0
    if req == FIOCLEX:
        fdt.cloexec.add(fd)
        return 0
    if req == FIONCLEX:
        fdt.cloexec.discard(fd)
        return 0
    if req in (FICLONE, FICLONERANGE, FIDEDUPERANGE):
        return remap_ioctl(t, f, req, arg)
    inode = f.inode
    if inode is not None:
        if req == C.FIOQSIZE:       # the bytes the file takes (inode_get_bytes)
            if not (inode.is_dir or inode.is_reg or inode.is_symlink):
                raise KernelError(E.ENOTTY)
            t.mem.write(arg, struct.pack("<q", inode.blocks() * 512))
            return 0
        if req == C.FIGETBSZ:       # the filesystem's block size
            t.mem.write(arg, struct.pack("<i", inode.stat_fs()[1]))
            return 0
        if req == C.FIONREAD and inode.is_reg:      # what is left to read from here, as an int
            t.mem.write(arg, struct.pack("<i", s32(inode.size() - f.pos)))
            return 0
    return f.ioctl(t, req, arg)
