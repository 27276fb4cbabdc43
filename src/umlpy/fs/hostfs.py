"""hostfs: a host directory mounted in the guest (Linux's fs/hostfs).

The kernel half of UML's hostfs; arch_um.hostdir is the host half.  Mounts
are refused unless the command line names the host directory they are
confined to (hostfs=<dir>, `hostfs=/` for the whole host); each mount holds
its host directory open (a hostdir.HostTree), and every host operation is
resolved beneath it, never following a host symlink (docs/security.md).

Every inode keeps its place (parent inode and name), from which its path
below the mount is made, so renaming a directory moves everything below it.
Attributes are the host's lstat, read again whenever a cached dentry is
looked up (revalidate), so changes made on the host show; a host file
replaced behind the guest's back fails revalidation and is looked up afresh.

Ownership and permissions are the host's: the guest checks its own
permissions on the host's uid, gid and mode, then the host refuses what the
umlpy user may not do, and that errno is the guest's.  Attribute changes
the VFS makes by assignment (chmod, chown, utimes, kill_suid) go to the host
at once through the properties below; the host keeps ctime.

File data goes through a host fd the kernel holds per inode while the inode
is open (HostFd); guest mmap maps that fd (via /proc/<kernel>/fd/N), so a
MAP_SHARED write is a write to the host file.  The guest never holds a host
fd.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from arch_um import hostdir
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.vfs.file import RegularFile
from umlpy.vfs.inode import Filesystem, Inode, dtype_of

HOSTFS_SUPER_MAGIC = 0x00C0FFEE
HOST_TYPES = (C.S_IFIFO, C.S_IFSOCK)   # what mknod makes on the host

T = TypeVar("T")


def host(fn: Callable[..., T], *args) -> T:
    """Call the host half; its errno becomes the kernel's."""
    try:
        return fn(*args)
    except OSError as e:
        raise KernelError(e.errno or E.EIO) from None


def _host_attr(field: str, apply: Callable[[HostfsInode, int], object]) -> property:
    """An inode attribute the VFS assigns (chmod, chown, utimes, kill_suid):
    read from the last lstat, written to the host and read back."""
    def get(inode: HostfsInode) -> int:
        return getattr(inode, field)

    def put(inode: HostfsInode, value: int) -> None:
        apply(inode, value)
        inode.refresh()
    return property(get, put)


class HostfsFile(RegularFile):
    """A regular file: the inode's host fd is closed with its last open."""

    def release(self) -> None:
        if self.inode.open_count == 1:
            self.inode.close_host()


class HostfsInode(Inode):
    def __init__(self, fs: Hostfs, parent: HostfsInode | None, name: bytes, st) -> None:
        # not Inode.__init__: every attribute is the host's (and assigning
        # mode or times would write them to the host)
        self.fs = fs
        self.parent = parent
        self.name = name
        self.rdev = 0
        self.open_count = 0
        self.pipe = None
        self.kids: dict[bytes, HostfsInode] = {}   # looked-up children, by name
        self.hostfd: hostdir.HostFd | None = None
        self.load(st)

    @property
    def path(self) -> hostdir.Path:
        """Where the inode is, as components below the mounted host directory."""
        if self.parent is None:
            return ()
        return self.parent.path + (self.name,)

    def load(self, st) -> None:
        self.ino = st.st_ino
        self._mode = st.st_mode
        self._uid = st.st_uid
        self._gid = st.st_gid
        self.nlink = st.st_nlink
        self._size = st.st_size
        self._blocks = st.st_blocks
        self._atime = st.st_atime_ns
        self._mtime = st.st_mtime_ns
        self.ctime = st.st_ctime_ns

    def refresh(self) -> None:
        """Attributes again from the host (by the open fd if the name is gone)."""
        st = host(self.hostfd.fstat) if self.hostfd is not None else host(self.fs.tree.lstat, self.path)
        self.load(st)

    # -- attributes: the host's, set on the host ----------------------------
    mode = _host_attr("_mode", lambda i, v: None if i.is_symlink else host(i.fs.tree.chmod, i.path, v & 0o7777))
    uid = _host_attr("_uid", lambda i, v: host(i.fs.tree.chown, i.path, v, -1))
    gid = _host_attr("_gid", lambda i, v: host(i.fs.tree.chown, i.path, -1, v))
    atime = _host_attr("_atime", lambda i, v: host(i.fs.tree.set_times, i.path, v, None))
    mtime = _host_attr("_mtime", lambda i, v: host(i.fs.tree.set_times, i.path, None, v))

    def touch(self, m: bool = True, c: bool = True, a: bool = False) -> None:
        """The host keeps the times: only read them again."""
        self.refresh()

    def revalidate(self) -> bool:
        try:
            st = self.fs.tree.lstat(self.path)
        except OSError:
            return False
        if st.st_ino != self.ino or (st.st_mode ^ self._mode) & C.S_IFMT:
            return False
        self.load(st)
        return True

    def size(self) -> int:
        if self.hostfd is not None:
            self.refresh()      # writes through guest mappings change it
        return self._size

    def blocks(self) -> int:
        return self._blocks

    # -- directories -------------------------------------------------------
    def _child_path(self, name: bytes) -> hostdir.Path:
        if not self.is_dir:
            raise KernelError(E.ENOTDIR)
        return self.path + (name,)

    def _adopt(self, name: bytes, st) -> HostfsInode:
        ino = HostfsInode(self.fs, self, name, st)
        self.kids[name] = ino
        return ino

    def lookup(self, name: bytes) -> Inode | None:
        try:
            st = self.fs.tree.lstat(self._child_path(name))
        except OSError:
            self.kids.pop(name, None)
            return None
        old = self.kids.get(name)
        if old is not None and old.ino == st.st_ino and not (old.mode ^ st.st_mode) & C.S_IFMT:
            old.load(st)
            return old
        return self._adopt(name, st)

    def entries(self) -> list[tuple[bytes, int, int]]:
        if not self.is_dir:
            raise KernelError(E.ENOTDIR)
        return [(n, st.st_ino, dtype_of(st.st_mode)) for n, st in host(self.fs.tree.scandir, self.path)]

    def _made(self, name: bytes) -> HostfsInode:
        self.refresh()
        return self._adopt(name, host(self.fs.tree.lstat, self._child_path(name)))

    def create(self, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0) -> Inode:
        path = self._child_path(name)
        fmt = mode & C.S_IFMT
        tree = self.fs.tree
        if fmt == C.S_IFREG:
            host(tree.create, path, mode & 0o7777)
        elif fmt == C.S_IFDIR:
            host(tree.mkdir, path, mode & 0o7777)
        elif fmt in HOST_TYPES:
            host(tree.mknod, path, mode)
        else:
            raise KernelError(E.EPERM)      # no device nodes on the host
        return self._made(name)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        host(self.fs.tree.symlink, self._child_path(name), target)
        return self._made(name)

    def link(self, name: bytes, inode: Inode) -> None:
        if not isinstance(inode, HostfsInode) or inode.fs is not self.fs:
            raise KernelError(E.EXDEV)
        host(self.fs.tree.link, inode.path, self._child_path(name))
        self._made(name)
        inode.refresh()

    def _forget(self, name: bytes) -> None:
        gone = self.kids.pop(name, None)
        if gone is not None:
            gone.nlink = 0 if gone.is_dir else max(0, gone.nlink - 1)
        self.refresh()

    def unlink(self, name: bytes) -> None:
        host(self.fs.tree.unlink, self._child_path(name))
        self._forget(name)

    def rmdir(self, name: bytes) -> None:
        host(self.fs.tree.rmdir, self._child_path(name))
        self._forget(name)

    def rename(self, old: bytes, newdir: Inode, new: bytes, flags: int) -> None:
        if not isinstance(newdir, HostfsInode) or newdir.fs is not self.fs:
            raise KernelError(E.EXDEV)
        host(self.fs.tree.rename, self._child_path(old), newdir._child_path(new), flags)
        src = self.kids.pop(old, None)
        dst = newdir.kids.pop(new, None)
        if dst is not None and flags & C.RENAME_EXCHANGE:
            dst.parent, dst.name = self, old
            self.kids[old] = dst
        elif dst is not None:
            dst.nlink = 0 if dst.is_dir else max(0, dst.nlink - 1)
        if src is not None:
            src.parent, src.name = newdir, new
            newdir.kids[new] = src
            src.refresh()
        self.refresh()
        newdir.refresh()

    def getxattr(self, name: bytes) -> bytes:
        raise KernelError(E.EOPNOTSUPP)     # as Linux's hostfs: no xattr handlers

    def listxattr(self) -> list[bytes]:
        raise KernelError(E.EOPNOTSUPP)

    def setxattr(self, name: bytes, value: bytes, flags: int) -> None:
        raise KernelError(E.EOPNOTSUPP)

    def removexattr(self, name: bytes) -> None:
        raise KernelError(E.EOPNOTSUPP)

    def readlink(self) -> bytes:
        if not self.is_symlink:
            raise KernelError(E.EINVAL)
        return host(self.fs.tree.readlink, self.path)

    # -- data --------------------------------------------------------------
    def _fd(self, write: bool) -> hostdir.HostFd:
        """The inode's host fd, reopened read-write when a write needs it."""
        if self.is_dir:
            raise KernelError(E.EISDIR)
        fd = self.hostfd
        if fd is None or write and not fd.writable:
            fd = host(hostdir.HostFd, self.fs.tree, self.path, write, self.fs.append)
            self.close_host()
            self.hostfd = fd
        return fd

    def close_host(self) -> None:
        if self.hostfd is not None:
            self.hostfd.close()
            self.hostfd = None

    def read(self, off: int, n: int) -> bytes:
        if n <= 0:
            return b""
        return host(self._fd(False).pread, n, off)

    def write(self, off: int, data: bytes) -> int:
        if not data:
            return 0
        n = host(self._fd(True).pwrite, data, off)
        self.refresh()
        return n

    def truncate(self, size: int) -> None:
        if self.hostfd is not None and self.hostfd.writable:
            host(self.hostfd.truncate, size)
        else:
            host(self.fs.tree.truncate, self.path, size)
        self.refresh()

    def memfile(self) -> hostdir.HostFd:
        return self._fd(False)

    def evict(self) -> None:
        self.close_host()

    def open_file(self, dentry, flags: int, task):
        if self.is_reg:
            # opened on the host now: the host's refusal is open's, and the
            # file stays reachable when its name goes
            if not flags & C.O_PATH:
                self._fd(flags & C.O_ACCMODE != C.O_RDONLY)
            return HostfsFile(dentry, self, flags)
        return super().open_file(dentry, flags, task)


class Hostfs(Filesystem):
    name = "hostfs"
    magic = HOSTFS_SUPER_MAGIC
    blksize = 1024      # hostfs_fill_sb's s_blocksize
    inodes_reclaimable = True

    def __init__(self, tree: hostdir.HostTree, append: bool, data: str) -> None:
        super().__init__()
        self.tree = tree
        self.data = data            # the mount's HOSTDIR, below hostfs= (a checkpoint mounts it again)
        self.host_root = tree.path
        self.append = append
        st = host(tree.lstat, ())
        self.root = HostfsInode(self, None, b"", st)

    def statfs(self) -> dict:
        v = host(self.tree.statvfs)
        return {"type": self.magic, "bsize": v.f_bsize, "blocks": v.f_blocks, "bfree": v.f_bfree,
                "bavail": v.f_bavail, "files": v.f_files, "ffree": v.f_ffree, "namelen": v.f_namemax}

    def show_options(self) -> str:
        """hostfs_show_options: the host directory."""
        return self.host_root.decode(errors="replace")

    def unmount(self) -> None:
        """The held host directory goes with the mount: later lookups
        through a lazily detached one fail (EBADF), open files keep theirs."""
        self.tree.close()


def mount_hostfs(data: str, confine: str | None, append: bool) -> Hostfs:
    """`mount none DIR -t hostfs [-o HOSTDIR]`: HOSTDIR (default /) is below
    hostfs=<dir>, as in UML; without hostfs= the host is closed (EPERM).
    HOSTDIR is resolved beneath <dir>: leading out of it is EPERM too."""
    if confine is None:
        printk.pr_err("hostfs: mount refused: no hostfs=<dir> on the command line "
                      "(hostfs=<dir> allows mounts of <dir> and below, hostfs=/ the whole host)")
        raise KernelError(E.EPERM)
    try:
        tree = hostdir.HostTree(confine.encode(), data.encode())
    except OSError as e:
        if e.errno != E.EXDEV:
            raise KernelError(e.errno or E.EIO) from None
        printk.pr_err(f"hostfs: mount refused: {data!r} leads out of hostfs={confine}")
        raise KernelError(E.EPERM) from None
    try:
        return Hostfs(tree, append, data)
    except KernelError:
        tree.close()
        raise
