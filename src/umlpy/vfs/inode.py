"""The inode and filesystem interfaces every filesystem implements."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import timekeeping
from umlpy.kernel.errors import KernelError
from umlpy.vfs import file as F

if TYPE_CHECKING:
    from umlpy.vfs.file import File

_next_anon_dev = [1]


def anon_dev() -> int:
    """A device number (dev_t) for a filesystem without a block device: major
    0, as Linux's get_anon_bdev; a disk's filesystem has its disk's."""
    _next_anon_dev[0] += 1
    n = _next_anon_dev[0]
    return (n & 0xFF) | (n & ~0xFF) << 12     # makedev(0, n)


def now_ns() -> int:
    return timekeeping.realtime_ns()


def dtype_of(mode: int) -> int:
    return (mode & C.S_IFMT) >> 12


class Filesystem:
    name = "none"
    magic = 0
    # FMODE_CAN_ODIRECT: its files do direct I/O (Linux's ext2 does; tmpfs
    # before 6.6 and hostfs do not), which a loop device on them may use
    direct_io = False
    statx_attributes = 0    # the STATX_ATTR_* its getattr reports (stx_attributes_mask)
    blksize = 4096          # st_blksize: the superblock's block size (PAGE_SIZE for most)
    mgtime = False          # FS_MGTIME: statx leaves out m/ctime unless asked (Linux 6.13+)
    notify_perm = True      # not FS_DISALLOW_NOTIFY_PERM: fanotify may ask about opens here
    # its unused inodes can be let go and read again (a disk's, a host's):
    # drop_caches evicts them (vfs/evict.py); a filesystem whose memory is
    # the only copy pins every dentry, as Linux's tmpfs does
    inodes_reclaimable = False
    uuid = bytes(16)        # s_uuid: a disk's, null for the others (overlayfs names its layers by it)
    # s_user_ns: the user namespace that mounted it (None: the initial
    # one); a user namespace's filesystem is SB_I_NODEV, its device nodes
    # cannot be opened
    user_ns = None
    stack_depth = 0         # s_stack_depth: how many stacked filesystems (overlays) lie below

    def __init__(self) -> None:
        self.dev = anon_dev()
        self.read_only = False
        self._next_ino = 1
        self.root: Inode

    def new_ino(self) -> int:
        self._next_ino += 1
        return self._next_ino

    def statfs(self) -> dict:
        return {"type": self.magic, "bsize": 4096, "blocks": 0, "bfree": 0,
                "bavail": 0, "files": 0, "ffree": 0, "namelen": 255}

    def show_options(self) -> str:
        """The filesystem's own options /proc/mounts shows after the mount's
        (s_op->show_options)."""
        return ""

    def fsid(self) -> tuple[int, int]:
        """statfs's f_fsid, which fanotify's info records name the filesystem by."""
        return self.dev & 0x7FFFFFFF, 0

    def sync(self, durable: bool = True) -> None:
        """Write back what is dirty; durable: and have the device keep it."""

    def drop_caches(self, in_use: Callable[[Inode], bool]) -> None:
        """vm.drop_caches: let go of the cached copies of what is on a disk
        (files' pages no mapping holds, per in_use; clean blocks).  A
        filesystem whose memory is its only copy (tmpfs, procfs) keeps all."""

    # -- file handles (name_to_handle_at, open_by_handle_at): Linux's
    # export operations, which most pseudo filesystems do not have --------
    def encode_fh(self, inode: Inode) -> tuple[int, bytes] | None:
        """(handle type, handle bytes) naming inode, or None: no export
        operations (name_to_handle_at is EOPNOTSUPP)."""
        return None

    def fh_to_inode(self, fh_type: int, fh: bytes) -> Inode:
        """The inode a handle names (fh_to_dentry); ESTALE if there is none."""
        raise KernelError(E.ESTALE)


class Inode:
    """Default behaviour: what a non-directory, non-file inode answers."""

    mapped_bytes = 0    # of address spaces mapping it (kernel/mm.py; set per inode once mapped)

    # i_writecount: > 0, files open for writing; < 0, address spaces running
    # it as their program (which refuse each other: ETXTBSY)
    writecount = 0
    # names removed from this directory so far: its dentries in other mounts
    # drop their cached children when it moves (vfs/dentry.py)
    dgen = 0
    # i_readcount: files open for reading only (leases look at both)
    readcount = 0
    # whether revalidate() may say no (a class overriding it): the path
    # walk asks only those, every other cached dentry is right as it is
    revalidates = False

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        cls.revalidates = cls.revalidate is not Inode.revalidate

    def __init__(self, fs: Filesystem, mode: int, uid: int = 0, gid: int = 0,
                 rdev: int = 0, ino: int | None = None) -> None:
        self.fs = fs
        self.ino = ino if ino is not None else fs.new_ino()
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.rdev = rdev
        self.nlink = 2 if self.is_dir else 1
        t = now_ns()
        self.atime = self.mtime = self.ctime = t
        self.open_count = 0
        self.pipe = None    # a fifo's pipe while it is open

    # -- type -----------------------------------------------------------
    @property
    def fmt(self) -> int:
        return self.mode & C.S_IFMT

    @property
    def is_dir(self) -> bool:
        return self.mode & C.S_IFMT == C.S_IFDIR

    @property
    def is_reg(self) -> bool:
        return self.mode & C.S_IFMT == C.S_IFREG

    @property
    def is_symlink(self) -> bool:
        return self.mode & C.S_IFMT == C.S_IFLNK

    # -- attributes -----------------------------------------------------
    def revalidate(self) -> bool:
        """Is a cached dentry for this inode still right? (procfs says no for the dead.)"""
        return True

    def size(self) -> int:
        return 0

    def blocks(self) -> int:
        return (self.size() + 511) // 512

    def check_chmod(self, mode: int) -> None:
        """The filesystem's own refusal of a new mode (shmem: F_SEAL_EXEC)."""

    def fallocate(self, mode: int, off: int, n: int) -> None:
        """f_op->fallocate; a filesystem without one refuses every mode."""
        raise KernelError(E.EOPNOTSUPP)

    def touch(self, m: bool = True, c: bool = True, a: bool = False) -> None:
        t = now_ns()
        if m:
            self.mtime = t
        if c:
            self.ctime = t
        if a:
            self.atime = t

    def direct_io(self) -> int | None:
        """What O_DIRECT transfers of this file must align to (vfs/directio):
        None when its filesystem has no direct I/O for it (most: an O_DIRECT
        open is EINVAL), 0 when they go buffered unchecked."""
        return None

    def dio_alignment(self) -> tuple[int, int] | None:
        """statx's STATX_DIOALIGN (memory, file offset) for direct I/O on
        this file: None when the filesystem does not say (most), (0, 0)
        when it says direct I/O cannot be done here."""
        return None

    def stat_fs(self) -> tuple[int, int]:
        """(st_dev, st_blksize) as getattr reports them: the filesystem's
        device and block size; a stacked filesystem's file reports those of
        the layer it comes from (overlayfs's ovl_getattr)."""
        fs = self.fs
        return fs.dev, fs.blksize

    def btime(self) -> int | None:
        """The birth time in ns for statx (STATX_BTIME), None when the filesystem
        keeps none for this inode: then the mask leaves it out, as Linux's."""
        return None

    # -- directories ----------------------------------------------------
    def lookup(self, name: bytes) -> Inode | None:
        raise KernelError(E.ENOTDIR)

    def entries(self) -> list[tuple[bytes, int, int]]:
        raise KernelError(E.ENOTDIR)

    def readdir(self, pos: int) -> Iterator[tuple[bytes, int, int, int]] | None:
        """For a directory whose positions are the filesystem's own cookies (ext4's
        hash order, where a position survives other entries coming and going):
        (name, ino, d_type, position after it) of each entry from position pos on,
        '.' and '..' included.  None: the VFS lists '.', '..' and entries() and
        numbers them itself."""
        return None

    def create(self, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0) -> Inode:
        raise KernelError(E.ENOTDIR)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        raise KernelError(E.ENOTDIR)

    def link(self, name: bytes, inode: Inode) -> None:
        raise KernelError(E.ENOTDIR)

    def unlink(self, name: bytes) -> None:
        raise KernelError(E.ENOTDIR)

    def rmdir(self, name: bytes) -> None:
        raise KernelError(E.ENOTDIR)

    def rename(self, old: bytes, newdir: Inode, new: bytes, flags: int) -> None:
        raise KernelError(E.ENOTDIR)

    # -- data -----------------------------------------------------------
    def read(self, off: int, n: int) -> bytes:
        raise KernelError(E.EINVAL)

    def write(self, off: int, data: bytes) -> int:
        raise KernelError(E.EINVAL)

    def truncate(self, size: int) -> None:
        raise KernelError(E.EINVAL)

    def readlink(self) -> bytes:
        raise KernelError(E.EINVAL)

    def memfile(self):
        """The host memory file holding this inode's pages, for mmap."""
        raise KernelError(E.ENODEV)

    def map_shared(self) -> None:
        """A shared mapping that may write was made of memfile(): the guest
        may write the pages behind the filesystem's back, so a disk
        filesystem copies them back on msync, munmap, exit and every sync."""
        self.shared_mapped = True

    # -- extended attributes: kept in memory (tmpfs); disk filesystems
    # override what they store --------------------------------------------
    def getxattr(self, name: bytes) -> bytes:
        v = (getattr(self, "xattrs", None) or {}).get(name)
        if v is None:
            raise KernelError(E.ENODATA)
        return v

    def listxattr(self) -> list[bytes]:
        return list(getattr(self, "xattrs", None) or {})

    def setxattr(self, name: bytes, value: bytes, flags: int) -> None:
        xa = getattr(self, "xattrs", None)
        if xa is None:
            xa = self.xattrs = {}
        if flags & C.XATTR_CREATE and name in xa:
            raise KernelError(E.EEXIST)
        if flags & C.XATTR_REPLACE and name not in xa:
            raise KernelError(E.ENODATA)
        xa[name] = value
        self.touch(m=False)

    def removexattr(self, name: bytes) -> None:
        xa = getattr(self, "xattrs", None) or {}
        if name not in xa:
            raise KernelError(E.ENODATA)
        del xa[name]
        self.touch(m=False)

    def get_fsflags(self) -> int:
        """FS_IOC_GETFLAGS (chattr's flags): none, unless the fs keeps them."""
        return 0

    def grants(self, creds) -> bool:
        """The inode's own rule letting in whom its mode bits refuse (an
        inode_operations.permission of its own): none by default."""
        return False

    def set_fsflags(self, flags: int, capable) -> None:
        """FS_IOC_SETFLAGS past the VFS's checks; capable(cap) asks whether
        the caller has a capability the filesystem wants for some flag."""
        raise KernelError(E.ENOTTY)

    def tmpfile(self, mode: int, uid: int, gid: int) -> Inode:
        """O_TMPFILE in this directory: a new regular file with no name
        (nlink 0), freed at its last close unless linkat gives it one."""
        raise KernelError(E.EOPNOTSUPP)

    def page_cache(self):
        """The memory file reads may copy from directly (always up to date
        with the file), or None."""
        return None

    def evict(self) -> None:
        """Last link and last open file gone: free the data."""

    @property
    def in_use(self) -> bool:
        """Open, or mapped: a mapping keeps its file as an open file does
        (Linux's vma holds vm_file), so an unlinked inode is freed, and its
        number given again, only once it is neither."""
        return self.open_count > 0 or self.mapped_bytes > 0

    def mapped(self, n: int) -> None:
        """n bytes more (fewer, negative) of address spaces map it (kernel/
        mm.py, at each map, unmap, fork and teardown); the last unmapping
        of an unlinked inode no file holds frees it, as a last close does."""
        self.mapped_bytes += n
        if n < 0:
            F.free_unused(self)

    def open_file(self, dentry, flags: int, task) -> File:
        fmt = self.mode & C.S_IFMT
        if fmt == C.S_IFREG:
            return F.RegularFile(dentry, self, flags)
        if fmt == C.S_IFDIR:
            return F.DirFile(dentry, self, flags)
        if fmt == C.S_IFCHR:
            from umlpy.vfs import devices
            return devices.open_char(dentry, self, flags, task)
        if fmt == C.S_IFIFO:
            from umlpy.vfs import pipe
            return pipe.open_fifo(dentry, self, flags, task)
        if fmt == C.S_IFBLK:
            from umlpy.vfs import devices
            return devices.open_block(dentry, self, flags, task)
        raise KernelError(E.ENXIO)
