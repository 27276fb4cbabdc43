"""Open file descriptions: what an fd refers to (position, flags, ops)."""
from __future__ import annotations

import struct

from arch_um.memory import GuestFault
from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi import structs
from umlpy.kernel import printk, userfaultfd
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.kernel.tunables import NR_FILE
from umlpy.kernel.uaccess import COPY_CHUNK, UserBuf, write_in_pieces
from umlpy.vfs import fiemap, fsnotify
from umlpy.vfs.perm import check_owner, kill_suid


def free_unused(inode) -> None:
    """An unlinked inode no file holds open and no address space maps any
    more is freed (inotify told first): at a last close (File.put), a last
    unmapping (Inode.mapped), an overlay's last hold (let_go)."""
    if inode.nlink == 0 and not inode.in_use:
        fsnotify.gone(inode)
        inode.evict()


class FilesStat:
    """fs.file-nr and fs.file-max: the open file descriptions alive (a
    file counts from the first reference an fd table, a queue or a
    mapping takes to the release of the last), and the most a task
    without CAP_SYS_ADMIN may make (alloc_empty_file's ENFILE).  Without
    the bound a guest user's processes, each under its RLIMIT_NOFILE,
    could together hold millions of files in the kernel's memory."""

    def __init__(self) -> None:
        self.nr = 0
        self.max = NR_FILE     # set at boot from mem= (kernel/tunables.max_files_for)
        self.reported = -1      # the count at the last log line (Linux's old_max)
        # whether the task in the kernel may pass file-max (set at boot:
        # CAP_SYS_ADMIN of the current task's creds)
        self.privileged = lambda: True

    def check(self) -> None:
        """ENFILE for a new file past file-max, with Linux's log line
        each time the count passes the last one reported."""
        if self.nr >= self.max and not self.privileged():
            if self.nr > self.reported:
                printk.pr_info(f"VFS: file-max limit {self.max} reached")
                self.reported = self.nr
            raise KernelError(E.ENFILE)


files_stat = FilesStat()

POLLIN = 0x001
POLLPRI = 0x002
POLLOUT = 0x004
POLLERR = 0x008
POLLHUP = 0x010
POLLNVAL = 0x020
POLLRDNORM = 0x040
POLLWRNORM = 0x100
POLLWRBAND = 0x200


class File:
    kind = "file"
    noexec_fs = False       # on a filesystem the kernel mounted noexec (sys_mmap's path_noexec)
    lazy_write = False      # write() takes a UserBuf: it only slices what it is given
    chunked_write = False   # write() never waits: a big write may go in pieces
    nowait_ok = False       # FMODE_NOWAIT: takes RWF_NOWAIT (preadv2/pwritev2)
    splice_read = False     # f_op->splice_read: splice may take data from it into a pipe
    splice_write = False    # f_op->splice_write: splice may give it data from a pipe
    has_fsync = False       # f_op->fsync: fsync and fdatasync are EINVAL without it
    # how long a read or a write may wait, in ns (None: as long as it takes;
    # 0: not at all), for files that have such timeouts (sockets' SO_RCVTIMEO/SO_SNDTIMEO)
    rcvtimeo: int | None = None
    sndtimeo: int | None = None
    owner = None            # fown.FileOwner once F_SETOWN/F_SETSIG/F_NOTIFY named one
    has_fasync = False      # O_ASYNC signals readiness (Linux's f_op->fasync)
    nonotify = False        # FMODE_NONOTIFY: a file fanotify opened for a listener reports nothing
    async_fd: int | None = None     # the fd the signals report, while O_ASYNC is on

    def __init__(self, dentry, inode, flags: int) -> None:
        self.dentry = dentry
        self.inode = inode
        self.flags = flags
        self.pos = 0
        self.refs = 0
        self.writer = self.reader = False   # counted in the inode's writecount, readcount
        if inode is not None:
            inode.open_count += 1
            acc = -1 if flags & C.O_PATH else flags & C.O_ACCMODE
            if acc in (C.O_WRONLY, C.O_RDWR) and inode.mode & C.S_IFMT == C.S_IFREG:
                self.writer = True
                inode.writecount += 1
            elif acc in (C.O_RDONLY, C.O_RDWR):
                self.reader = True
                inode.readcount += 1

    @property
    def readable(self) -> bool:
        return self.flags & C.O_ACCMODE in (C.O_RDONLY, C.O_RDWR) and not self.flags & C.O_PATH

    @property
    def writable(self) -> bool:
        return self.flags & C.O_ACCMODE in (C.O_WRONLY, C.O_RDWR) and not self.flags & C.O_PATH

    @property
    def nonblock(self) -> bool:
        return bool(self.flags & C.O_NONBLOCK)

    def read(self, task, n: int) -> bytes:
        raise KernelError(E.EINVAL)

    def read_into(self, task, addr: int, n: int) -> int:
        """read(2): into guest memory at addr (files with a page cache copy
        directly).  A copy that fails takes nothing, as on Linux: the data
        goes back (`unread`) and the call fails with EFAULT."""
        data = self.read(task, n)
        try:
            task.mem.write(addr, data)
        except GuestFault:
            self.unread(data)
            raise
        return len(data)

    def unread(self, data: bytes) -> None:
        """Give back what a failed read(2) took (nothing to give by default)."""

    def write(self, task, data: bytes) -> int:
        raise KernelError(E.EINVAL)

    def write_from(self, task, src: UserBuf) -> int:
        """write(2) of more than COPY_CHUNK bytes of guest memory: sinks that
        may wait take it lazily, sinks that never wait in pieces (what was
        written counts when a later piece faults), and the rest get the
        first COPY_CHUNK bytes (a short write)."""
        if self.lazy_write:
            return self.write(task, src)
        if not self.chunked_write:
            return self.write(task, src[0:COPY_CHUNK])
        return write_in_pieces(src, lambda piece, _: self.write(task, piece))

    def pread(self, task, n: int, off: int) -> bytes:
        raise KernelError(E.ESPIPE)

    def pwrite(self, task, data: bytes, off: int) -> int:
        raise KernelError(E.ESPIPE)

    @property
    def positional(self) -> bool:
        """FMODE_PREAD/FMODE_PWRITE: the file takes pread and pwrite, as
        Linux gives every file opened by name but streams (pipes, fifos,
        sockets, ttys) and anonymous files; the others are ESPIPE before
        anything else about the call is looked at."""
        return type(self).pread is not File.pread

    def lseek(self, off: int, whence: int) -> int:
        raise KernelError(E.ESPIPE)

    def ioctl(self, task, req: int, arg: int) -> int:
        if self.inode is not None and (self.inode.is_reg or self.inode.is_dir):
            if req in (C.FS_IOC_GETFLAGS, C.FS_IOC_SETFLAGS):
                return _fsflags(task, self, req, arg)
            if req == FS_IOC_FSGETXATTR:
                return _fsgetxattr(task, self.inode, arg)
            if req == fiemap.FS_IOC_FIEMAP:
                return fiemap.ioctl_fiemap(task, self.inode, arg)
        raise KernelError(E.ENOTTY)

    def getdents(self, bufsize: int, pack=structs.pack_dirent64) -> bytes:
        raise KernelError(E.ENOTDIR)

    def fsync(self) -> None:
        """fsync(2): what the file's filesystem holds written back."""
        if self.inode is not None:
            self.inode.fs.sync()

    def mmap_pages(self, off: int, size: int):
        """What mmap of [off, off + size) shows when it is not the inode's
        page cache: kernel pages (kernel/sharedpages.py: a packet socket's
        rings, an io_uring's),
        after the file's own checks of size and offset (its f_op->mmap);
        None maps the inode as every file."""
        return None

    def mapped_inode(self):
        """The inode whose pages a mapping of this file shows (a program's
        segments too): the file's own, but a stacked filesystem's file maps
        its layer's (overlayfs's ovl_mmap puts the real file in the vma)."""
        return self.inode

    # whether the file has a poll of its own (file_can_poll): None decides
    # by the inode, regular files and directories not, everything else yes
    pollable: bool | None = None

    def can_poll(self) -> bool:
        if self.pollable is not None:
            return self.pollable
        return self.inode is None or not (self.inode.is_reg or self.inode.is_dir)

    def poll(self) -> int:
        return POLLIN | POLLOUT

    def poll_queues(self) -> list:
        """The wait queues woken when poll() may change (none: always ready)."""
        return []

    def get(self) -> File:
        if not self.refs:
            files_stat.nr += 1
        self.refs += 1
        return self

    def put_unused(self) -> None:
        """fput of a file made for a descriptor or a queue that did not
        take it (a refused accept, a failed install): released as a
        closed one is."""
        if not self.refs:
            self.get()
        self.put()

    def put(self) -> None:
        self.refs -= 1
        if self.refs == 0:
            files_stat.nr -= 1
            # epoll entries watching this file go with it (each takes its
            # own hook off the list: the loop walks a copy)
            for forget in list(getattr(self, "on_last_close", ())):
                forget()
            if not self.flags & C.O_PATH:
                fsnotify.file_event(self, fsnotify.IN_CLOSE_WRITE if self.writable else fsnotify.IN_CLOSE_NOWRITE)
            self.release()
            inode = self.inode
            if inode is not None:
                inode.open_count -= 1
                if self.writer:
                    inode.writecount -= 1
                elif self.reader:
                    inode.readcount -= 1
                free_unused(inode)

    def fasync(self, fd: int, on: bool) -> None:
        """O_ASYNC turned on or off through fd (fasync_helper: the fd is
        what the signal's si_fd reports)."""
        self.async_fd = fd if on else None

    def kill_fasync(self, reason: int) -> None:
        """The file became ready (reason POLL_IN, POLL_OUT, ...): the owner's
        I/O signal, if O_ASYNC was turned on."""
        if self.async_fd is not None and self.owner is not None:
            self.owner.send(self.async_fd, reason)

    def flush(self, fdtable) -> None:
        """Every close of a descriptor of this file in fdtable (Linux's
        f_op->flush, with the closer's table as its id)."""

    def release(self) -> None:
        pass


DIRECT_COPY_MIN = 16384   # below this, a Python copy is cheaper than mapping


def _fsflags(task, f: File, req: int, arg: int) -> int:
    """chattr/lsattr, as Linux's vfs_fileattr_get/set: the owner may set
    flags, only CAP_LINUX_IMMUTABLE may touch immutable and append-only."""
    inode = f.inode
    if req == C.FS_IOC_GETFLAGS:
        task.mem.write(arg, struct.pack("<I", inode.get_fsflags()))
        return 0
    new = struct.unpack("<I", task.mem.read(arg, 4))[0]
    creds = task.proc.creds
    if inode.fs.read_only:
        raise KernelError(E.EROFS)
    check_owner(inode, creds)
    old = inode.get_fsflags()
    if (old ^ new) & (C.FS_APPEND_FL | C.FS_IMMUTABLE_FL) and not capable(creds, K.CAP_LINUX_IMMUTABLE):
        raise KernelError(E.EPERM)
    inode.set_fsflags(new, lambda cap: capable(creds, cap))
    fsnotify.dentry_event(f.dentry, fsnotify.IN_ATTRIB, inode)
    return 0


FS_IOC_FSGETXATTR = 0x801C581F     # _IOR('X', 31, struct fsxattr)
FSXATTR = struct.Struct("<IIIII8x")  # fsx_xflags, fsx_extsize, fsx_nextents, fsx_projid, fsx_cowextsize
# FS_*_FL -> FS_XFLAG_*, as fileattr_fill_flags translates them
XFLAGS = ((0x8, 0x20), (C.FS_IMMUTABLE_FL, 0x8), (C.FS_APPEND_FL, 0x10), (0x40, 0x80),
          (0x80, 0x40), (0x2000000, 0x8000), (0x20000000, 0x200))


def _fsgetxattr(task, inode, arg: int) -> int:
    """FS_IOC_FSGETXATTR (vfs_fileattr_get): the chattr flags as xflags
    (no extent size hints or project ids here)."""
    flags = inode.get_fsflags()
    xflags = sum(x for fl, x in XFLAGS if flags & fl)
    task.mem.write(arg, FSXATTR.pack(xflags, 0, 0, 0, 0))
    return 0


MAX_LFS_FILESIZE = (1 << 63) - 1    # the largest file offset (loff_t)


def get_write_access(inode) -> None:
    """A regular file that some process runs as its program cannot be
    opened for writing or truncated (ETXTBSY)."""
    if inode.is_reg and inode.writecount < 0:
        raise KernelError(E.ETXTBSY)


def verify_area(pos: int, n: int) -> None:
    """rw_verify_area: a negative position, or a range whose end passes the
    largest loff_t, is EINVAL."""
    if pos < 0 or pos + n > MAX_LFS_FILESIZE:
        raise KernelError(E.EINVAL)


def max_bytes(inode) -> int:
    """The largest file inode's filesystem holds (s_maxbytes)."""
    return getattr(inode.fs, "max_file_size", MAX_LFS_FILESIZE)


def file_size_limit(task) -> int:
    """The writer's RLIMIT_FSIZE (RLIM_INFINITY: none)."""
    return task.proc.rlimit(C.RLIMIT_FSIZE)[0]


def exceed_fsize(task) -> KernelError:
    """Going past RLIMIT_FSIZE: SIGXFSZ to the writer, and EFBIG."""
    task.kernel.signals.send_proc(task.proc, S.SIGXFSZ, C.SI_USER, (task.proc.pid, task.proc.creds.uid))
    return KernelError(E.EFBIG)


def write_check_limits(task, off: int, n: int, top: int = MAX_LFS_FILESIZE) -> int:
    """generic_write_check_limits: n bytes at off that start at or past the
    writer's RLIMIT_FSIZE fail (SIGXFSZ, EFBIG), ones that would cross it
    stop there; likewise, without the signal, at top (the filesystem's
    largest file).  Returns how many may be written."""
    limit = file_size_limit(task)
    if limit != C.RLIM_INFINITY:
        if off >= limit:
            raise exceed_fsize(task)
        n = min(n, limit - off)
    if off >= top:
        raise KernelError(E.EFBIG)
    return min(n, top - off)


def _write_limit(task, off: int, data: bytes) -> bytes:
    """The part of data a write at off may write (write_check_limits)."""
    return data[:write_check_limits(task, off, len(data))] if data else data


class RegularFile(File):
    chunked_write = True
    nowait_ok = True
    splice_read = splice_write = True
    has_fsync = True

    def read(self, task, n: int) -> bytes:
        verify_area(self.pos, n)
        data = self.inode.read(self.pos, n)
        self.pos += len(data)
        return data

    def unread(self, data: bytes) -> None:
        self.pos -= len(data)

    def _read_copy(self, task, addr: int, n: int) -> int:
        """A file read stops at the first byte it cannot store and returns
        what it stored (filemap_read), EFAULT only if that is nothing."""
        data = self.read(task, n)
        stored = task.mem.write_prefix(addr, data)
        if stored < len(data):
            if userfaultfd.waits_at(task, addr + stored):
                self.unread(data)       # the copy waits for the page, then goes on
                raise GuestFault(addr + stored)
            self.unread(data[stored:])
            if not stored:
                raise GuestFault(addr)
        return stored

    def read_into(self, task, addr: int, n: int) -> int:
        verify_area(self.pos, n)
        pc = self.inode.page_cache() if n >= DIRECT_COPY_MIN else None
        if pc is None:
            return self._read_copy(task, addr, n)
        n = max(0, min(n, self.inode.size() - self.pos))
        if not n:
            return 0
        got = pc.copy_to_guest(task.hpid, self.pos, n, addr)
        if got < 0:
            raise KernelError(E.EFAULT)
        if got < n and userfaultfd.waits_at(task, addr + got):
            raise GuestFault(addr + got)    # the copy waits for the page, then goes on
        self.pos += got
        return got

    def write(self, task, data: bytes) -> int:
        verify_area(self.pos, len(data))
        if self.flags & C.O_APPEND:
            self.pos = self.inode.size()
        data = _write_limit(task, self.pos, data)
        if data:        # generic_write_checks: nothing to write keeps the bits
            kill_suid(self.inode, task.proc.creds)
        n = self.inode.write(self.pos, data)
        self.pos += n
        return n

    def pread(self, task, n: int, off: int) -> bytes:
        verify_area(off, n)
        return self.inode.read(off, n)

    def pwrite(self, task, data: bytes, off: int) -> int:
        verify_area(off, len(data))
        # Linux: pwrite on an O_APPEND file appends
        if self.flags & C.O_APPEND:
            off = self.inode.size()
        data = _write_limit(task, off, data)
        if data:
            kill_suid(self.inode, task.proc.creds)
        return self.inode.write(off, data)

    def lseek(self, off: int, whence: int) -> int:
        size = self.inode.size()
        if whence == C.SEEK_SET:
            new = off
        elif whence == C.SEEK_CUR:
            new = self.pos + off
        elif whence == C.SEEK_END:
            new = size + off
        elif whence in (C.SEEK_DATA, C.SEEK_HOLE):
            seek = getattr(self.inode, "seek_data", None)    # a filesystem that knows its holes
            if seek is not None:
                new = seek(off, whence)
            elif not 0 <= off < size:     # compared unsigned, as Linux's
                raise KernelError(E.ENXIO)
            else:
                new = off if whence == C.SEEK_DATA else size     # generic: all data
        else:
            raise KernelError(E.EINVAL)
        if not 0 <= new <= MAX_LFS_FILESIZE:
            raise KernelError(E.EINVAL)
        self.pos = new
        return new


class PositionedFile(File):
    """A file whose read(2) and write(2) are its pread/pwrite at the file
    position (block devices, /proc/PID/mem)."""

    def read(self, task, n: int) -> bytes:
        data = self.pread(task, n, self.pos)
        self.pos += len(data)
        return data

    def write(self, task, data: bytes) -> int:
        n = self.pwrite(task, data, self.pos)
        self.pos += n
        return n


class DirFile(File):
    kind = "dir"
    has_fsync = True

    def __init__(self, dentry, inode, flags: int) -> None:
        super().__init__(dentry, inode, flags)
        self._snapshot: list[tuple[bytes, int, int]] | None = None

    def read(self, task, n: int) -> bytes:
        raise KernelError(E.EISDIR)

    def pread(self, task, n: int, off: int) -> bytes:
        raise KernelError(E.EISDIR)      # generic_read_dir, at any offset

    def write(self, task, data: bytes) -> int:
        raise KernelError(E.EISDIR)

    def lseek(self, off: int, whence: int) -> int:
        if whence == C.SEEK_SET and off >= 0:
            self.pos = off
        elif whence == C.SEEK_CUR and self.pos + off >= 0:
            self.pos += off
        else:
            raise KernelError(E.EINVAL)
        if self.pos == 0:
            self._snapshot = None
        return self.pos

    def getdents(self, bufsize: int, pack=structs.pack_dirent64) -> bytes:
        """Entries from self.pos on, as many as fit (each a record as pack
        makes it: linux_dirent64, or the old getdents' linux_dirent); d_off (and the new position)
        is the position after each.  A filesystem with its own positions
        (Inode.readdir) is asked from the position every time, as Linux's
        iterate_shared; the others are listed once (at position 0) and the
        position is the entry's number."""
        it = self.inode.readdir(self.pos)
        if it is None:
            if self._snapshot is None or self.pos == 0:
                parent = self.dentry.up() if self.dentry is not None else None
                pino = parent.inode.ino if parent is not None else self.inode.ino
                self._snapshot = [(b".", self.inode.ino, C.DT_DIR), (b"..", pino, C.DT_DIR)]
                self._snapshot += self.inode.entries()
            snap = self._snapshot
            it = ((*snap[i], i + 1) for i in range(self.pos, len(snap)))
        out = []
        used = 0
        for name, ino, dtype, nxt in it:
            rec = pack(ino, nxt, dtype, name)
            if used + len(rec) > bufsize:
                if not out:
                    raise KernelError(E.EINVAL)
                break
            out.append(rec)
            used += len(rec)
            self.pos = nxt
        return b"".join(out)
