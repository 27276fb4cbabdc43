"""Generic inodes of generated filesystems (procfs, and sysfs reuses them).

Nothing here is stored: a file's text is made by a `show(task)` function
when it is opened (a snapshot per open file, as Linux's seq_file gives a
reader a consistent record), a directory's children by a table function at
lookup and readdir, a symlink's target at readlink.  Inode numbers come from
a key naming the object (("pid", 42, "stat"), "sys/kernel/hostname"), so
they stay the same however often the VFS looks the object up again.
"""
from __future__ import annotations

from typing import Callable

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.kernel.errors import KernelError
from umlpy.vfs.file import POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, DirFile, File
from umlpy.vfs.inode import Filesystem, Inode, dtype_of

Show = Callable[[object], bytes]              # (reading task) -> content
Store = Callable[[object, bytes], None]       # (writing task, data)
Owner = Callable[[], tuple[int, int]]         # -> (uid, gid), asked at each use
Table = Callable[[], dict[bytes, Callable[[], Inode]]]


class VirtFs(Filesystem):
    blksize = 1024          # proc_fill_super's s_blocksize (sysfs: a page)
    """A filesystem of generated inodes; one instance per kernel (Linux mounts
    share procfs's and sysfs's superblock too)."""
    shared_instance = True

    def __init__(self, kernel) -> None:
        super().__init__()
        self.kernel = kernel
        self._inos: dict[object, int] = {}

    def ino_for(self, key: object) -> int:
        ino = self._inos.get(key)
        if ino is None:
            ino = self._inos[key] = self.new_ino()
        return ino

    def current(self):
        """The task whose syscall runs now: readlink and lookup are not given
        the caller, and /proc/self depends on it."""
        return self.kernel.sched.current


class _OwnerId:
    """uid or gid of a VNode: its owner's when it has one, else stored."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __set_name__(self, cls, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, inode, cls=None):
        if inode is None:
            return self
        return inode.owner()[self.index] if inode.owner is not None else getattr(inode, self.slot)

    def __set__(self, inode, value: int) -> None:
        setattr(inode, self.slot, value)


class VNode(Inode):
    """An inode whose owner may follow an object (a process) instead of
    being stored: /proc/PID belongs to the process's effective uid.

    `alive` says whether the object is still there.  The VFS keeps positive
    dentries and does not revalidate them (Linux's d_revalidate), so a dead
    pid's cached /proc/PID would still stat; stat asks size() first, and
    that fails with ENOENT once the object is gone, as do open and readlink.
    """
    owner: Owner | None = None
    alive: Callable[[], bool] | None = None

    def __init__(self, fs: VirtFs, key: object, mode: int, owner: Owner | None = None,
                 alive: Callable[[], bool] | None = None) -> None:
        super().__init__(fs, mode, ino=fs.ino_for(key))
        self.owner = owner
        self.alive = alive

    uid = _OwnerId(0)
    gid = _OwnerId(1)

    def revalidate(self) -> bool:
        """False when the object behind a cached dentry is gone (for a VFS
        that asks, as Linux's d_revalidate)."""
        return self.alive is None or self.alive()

    def check_alive(self) -> None:
        if not self.revalidate():
            raise KernelError(E.ENOENT)

    def size(self) -> int:
        self.check_alive()
        return 0

    def blocks(self) -> int:
        return 0        # nothing is stored


class GenFile(VNode):
    """A regular file whose content is generated at open (lazy: at the first
    read, so that its checks refuse the read, not the open); writable only
    when it has a `store`, as Linux's files without a write method.
    pollable: poll and epoll take it, always ready, as proc_reg_poll and
    proc_sys_poll answer for /proc's own files and /proc/sys (systemd
    watches /proc/swaps and the hostname so); /proc/PID's files have no
    poll (epoll_ctl: EPERM)."""

    def __init__(self, fs: VirtFs, key: object, show: Show, store: Store | None = None,
                 mode: int | None = None, owner: Owner | None = None, size: int = 0,
                 alive: Callable[[], bool] | None = None, lazy: bool = False, pollable: bool = False) -> None:
        if mode is None:
            mode = 0o644 if store is not None else 0o444
        super().__init__(fs, key, C.S_IFREG | mode, owner, alive)
        self.show = show
        self.store = store
        self.lazy = lazy
        self.pollable = pollable
        self._size = size     # procfs says 0, sysfs a page

    @property
    def seq_class(self) -> type:
        """What an open of it is (SeqFile, or a subclass that adds poll)."""
        return PolledSeqFile if self.pollable else SeqFile

    def size(self) -> int:
        self.check_alive()
        return self._size

    def truncate(self, size: int) -> None:
        if self.store is None:
            raise KernelError(E.EACCES)

    def open_file(self, dentry, flags: int, task) -> File:
        self.check_alive()
        if flags & C.O_ACCMODE != C.O_RDONLY and self.store is None:
            raise KernelError(E.EACCES)
        return self.seq_class(dentry, self, flags, task)


class SeqFile(File):
    """An open generated file: the text made at open, read at any offset;
    seeking back to 0 makes it again (as a seq_file restarts)."""
    splice_read = splice_write = True    # /proc/sys's iter_file_splice_write among them

    def __init__(self, dentry, inode: GenFile, flags: int, task) -> None:
        super().__init__(dentry, inode, flags)
        self.text = inode.show(task) if self.readable and not inode.lazy else b""
        self.stale = inode.lazy

    def _text(self, task) -> bytes:
        if self.stale:
            self.text = self.inode.show(task)
            self.stale = False
        return self.text

    def read(self, task, n: int) -> bytes:
        data = self._text(task)[self.pos:self.pos + n]
        self.pos += len(data)
        return data

    def pread(self, task, n: int, off: int) -> bytes:
        if off == 0:
            self.stale = True
        return self._text(task)[off:off + n]

    def write(self, task, data: bytes) -> int:
        self.inode.store(task, data)
        self.pos += len(data)
        return len(data)

    def pwrite(self, task, data: bytes, off: int) -> int:
        self.inode.store(task, data)
        return len(data)

    def lseek(self, off: int, whence: int) -> int:
        if whence == C.SEEK_SET:
            new = off
        elif whence == C.SEEK_CUR:
            new = self.pos + off
        elif whence == C.SEEK_END:
            new = len(self.text) + off
        else:
            raise KernelError(E.EINVAL)
        if new < 0:
            raise KernelError(E.EINVAL)
        if new == 0 and self.readable:
            self.stale = True
        self.pos = new
        return new


class PolledSeqFile(SeqFile):
    """An open generated file that poll and epoll take: always readable
    and writable (DEFAULT_POLLMASK); what it shows changes no wait queue."""
    pollable = True

    def poll(self) -> int:
        return POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM


class Link(VNode):
    """A symlink whose target is computed at each readlink."""

    def __init__(self, fs: VirtFs, key: object, target: Callable[[], bytes],
                 owner: Owner | None = None, mode: int = 0o777,
                 alive: Callable[[], bool] | None = None,
                 magic: Callable[[], object] | None = None, size: int = 0) -> None:
        super().__init__(fs, key, C.S_IFLNK | mode, owner, alive)
        self.target = target
        self._size = size       # what stat says: 64 for fd/N, as Linux's proc_fd_instantiate sets
        # /proc/PID/fd/N: following the link reaches the open file itself
        # (Linux's magic links), even a pipe or a deleted file
        self.magic_file = magic
        # a magic link for openat2's RESOLVE_NO_MAGICLINKS: fd/N, and exe,
        # cwd and root, which umlpy follows by their paths
        self.is_magic = magic is not None

    def readlink(self) -> bytes:
        self.check_alive()
        return self.target()

    def size(self) -> int:
        self.check_alive()
        return self._size


class Dir(VNode):
    """A directory whose children a table function names (in listing
    order); a child inode, once made, is kept for the next lookup."""

    def __init__(self, fs: VirtFs, key: object, table: Table, mode: int = 0o555,
                 owner: Owner | None = None, alive: Callable[[], bool] | None = None,
                 find: Callable[[bytes], Callable | None] | None = None) -> None:
        super().__init__(fs, key, C.S_IFDIR | mode, owner, alive)
        self.table = table
        # find(name): the table's entry for one name, without making the
        # table (/proc's pids, a process's fds: a lookup costing the whole
        # table made a read of every /proc/PID/stat quadratic)
        self.find = find
        self._made: dict[bytes, Inode] = {}

    def lookup(self, name: bytes) -> Inode | None:
        make = self.find(name) if self.find is not None else self.table().get(name)
        if make is None:
            self._made.pop(name, None)
            return None
        node = self._made.get(name)
        if node is None:
            node = self._made[name] = make()
        return node

    def entries(self) -> list[tuple[bytes, int, int]]:
        out = []
        for name, make in self.table().items():
            node = self._made.get(name)
            if node is None:
                node = self._made[name] = make()
            out.append((name, node.ino, dtype_of(node.mode)))
        return out

    def forget_except(self, names: set[bytes]) -> None:
        for name in [n for n in self._made if n not in names]:
            del self._made[name]

    def made(self, name: bytes) -> Inode | None:
        """The child inode made for name, if one was."""
        return self._made.get(name)

    def forget(self, name: bytes) -> None:
        self._made.pop(name, None)

    def open_file(self, dentry, flags: int, task) -> File:
        self.check_alive()
        return ListingFile(dentry, self, flags)


class ListingFile(DirFile):
    """A generated directory open for readdir.  Each listing from the start
    drops the cached dentries of names that went away (dead pids, closed
    fds): the VFS keeps positive dentries and has no revalidation."""
    has_fsync = False       # procfs and sysfs directories have no fsync

    def getdents(self, bufsize: int, pack=structs.pack_dirent64) -> bytes:
        fresh = self._snapshot is None or self.pos == 0
        out = super().getdents(bufsize, pack)
        if fresh:
            names = {e[0] for e in self._snapshot}
            self.inode.forget_except(names)
            if self.dentry is not None:
                kids = self.dentry.children
                for name in [n for n, d in kids.items()
                             if n not in names and n not in (b".", b"..") and d.mounted is None]:
                    del kids[name]
        return out


def number(name: bytes) -> int | None:
    """A directory entry's name as /proc reads a pid or an fd (name_to_int):
    decimal digits, no leading zero but in "0" itself; else None."""
    if not name.isdigit() or len(name) > 1 and name[0] == 0x30 or len(name) > 10:
        return None
    return int(name)


def static_table(nodes: dict[bytes, Inode]) -> Table:
    """A table for children made once (sysfs, /proc/sys)."""
    makers = {name: (lambda n=node: n) for name, node in nodes.items()}
    return lambda: makers


def text(value: str | bytes | Callable[[], str | bytes]) -> Show:
    """A show function for a fixed or computed value, ended by a newline
    as Linux prints attributes (an empty value stays empty)."""
    def show(task) -> bytes:
        v = value() if callable(value) else value
        b = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v     # names' raw bytes
        return b + b"\n" if b and not b.endswith(b"\n") else b
    return show


Spec = dict  # name -> Spec (a directory) | factory (fs, key) -> Inode


def build_nodes(fs: VirtFs, key: str, spec: Spec) -> dict[bytes, Inode]:
    """The inodes of a nested dict of directories and leaf factories taking
    (fs, key); keys are the paths, so inode numbers follow names."""
    nodes: dict[bytes, Inode] = {}
    for name, v in spec.items():
        k = f"{key}/{name}"
        nodes[name.encode()] = build_tree(fs, k, v) if isinstance(v, dict) else v(fs, k)
    return nodes


def build_tree(fs: VirtFs, key: str, spec: Spec, mode: int = 0o555) -> Dir:
    """A static directory tree from a nested dict (see build_nodes)."""
    return Dir(fs, key, static_table(build_nodes(fs, key, spec)), mode)


def ro(show: Show | str, size: int = 0, mode: int = 0o444):
    """A read-only leaf for build_tree."""
    s = text(show) if isinstance(show, str) else show
    return lambda fs, key: GenFile(fs, key, s, mode=mode, size=size, pollable=True)


def rw(show: Show, store: Store, size: int = 0, mode: int = 0o644):
    """A writable leaf for build_tree; its show and store are kept on it
    (a checkpoint reads and writes the sysctls through them)."""
    def leaf(fs, key):
        return GenFile(fs, key, show, store, mode=mode, size=size, pollable=True)
    leaf.show, leaf.store = show, store
    return leaf


def wo(store: Store):
    """A write-only leaf (0200, as vm.drop_caches): sysctl_perm refuses
    to open it for reading, root too (EACCES); nothing to show, so nothing
    a checkpoint saves."""
    def refuse(task) -> bytes:
        raise KernelError(E.EACCES)
    return lambda fs, key: GenFile(fs, key, refuse, store, mode=0o200)


def parse_int(word: bytes) -> int:
    """One value as proc_dointvec reads it: an integer in C's notation (0x
    hex, 0 octal), else EINVAL; its range is the sysctl's to check."""
    neg = word[:1] == b"-"
    digits = word[neg:]
    base = 16 if digits[:2].lower() == b"0x" else 8 if digits[:1] == b"0" and len(digits) > 1 else 10
    try:
        v = int(digits[2:] if base == 16 else digits, base) if digits[:1].isdigit() and b"_" not in digits else None
    except ValueError:
        v = None
    if v is None:
        raise KernelError(E.EINVAL)
    return -v if neg else v


def parse_ints(data: bytes) -> list[int]:
    """The integers a sysctl write gives (whitespace-separated)."""
    return [parse_int(w) for w in data.split()]


def ints(get: Callable[[], list[int]], put: Callable[[list[int]], None],
         lo: int | None = None, hi: int | None = None, mode: int = 0o644):
    """A writable sysctl of integers, as proc_dointvec_minmax: shown
    tab-separated; a write sets as many as it gives, in order, each within
    [lo, hi] (else EINVAL and nothing changes)."""
    def show(task) -> bytes:
        return ("\t".join(str(v) for v in get()) + "\n").encode()

    def store(task, data: bytes) -> None:
        cur = get()
        vals = parse_ints(data)[:len(cur)]
        if not vals or any(lo is not None and v < lo or hi is not None and v > hi for v in vals):
            raise KernelError(E.EINVAL)
        put(vals + cur[len(vals):])
    return rw(show, store, mode=mode)


def symlink(target: str):
    """A fixed symlink leaf for build_tree."""
    t = target.encode()
    return lambda fs, key: Link(fs, key, lambda: t)
