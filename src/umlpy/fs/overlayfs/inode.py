"""The overlay's inode: one object per file of the union (Linux's struct
ovl_inode), standing for an upper inode, lower ones, or both.

Its attributes are its layer's, read through (the upper inode once there
is one, else the top lower one); changing one copies the file up first,
then changes the upper inode, as ovl_setattr does, whatever the VFS
assigns (mode, owner, times).  Data, links and extended attributes go the
same way; the overlay's own xattrs are hidden.

Numbers follow ovl_getattr with xino=off.  With every layer on one
filesystem, st_dev is the overlay's and st_ino the layer inode's: the
lower one's for a file copied up from it (an "origin" whose link count
is 1, or a directory), so it does not change with the copy-up.  With
layers on several filesystems, a directory has the overlay's st_dev and a
number of its own (given as its inode is made), and any other file the
st_ino of its layer inode and an st_dev standing for that layer's
filesystem (a pseudo device per filesystem, the upper one's first).
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.vfs.inode import Inode
from umlpy.fs.overlayfs import copyup, dirops, lookup, readdir
from umlpy.fs.overlayfs import layer as R
from umlpy.fs.overlayfs.file import OvlFile

if TYPE_CHECKING:
    from umlpy.fs.overlayfs.super import Lower, OvlFs


def _upper_attr(field: str) -> property:
    """An attribute read from the layer; assigning it copies up first and
    sets it on the upper inode (ovl_setattr)."""
    def get(inode: OvlInode) -> int:
        return getattr(inode.real(), field)

    def put(inode: OvlInode, value: int) -> None:
        inode.copy_up()
        setattr(inode.upper, field, value)
    return property(get, put)


def _release(held: list) -> None:
    while held:
        R.let_go(held.pop())


class OvlInode(Inode):
    def __init__(self, fs: OvlFs, upper, lowers: list[Lower], parent: OvlInode | None, name: bytes,
                 bylower: bool) -> None:
        # not Inode.__init__: every attribute is a layer's
        self.fs = fs
        self.upper = upper
        self.lowers = lowers        # top first; a non-directory's one is its copy-up origin
        self.parent = parent        # where a copy-up puts it (its one name while it is not upper)
        self.name = name
        self.bylower = bylower      # OVL_CONST_INO: keeps its lower inode's number
        self.open_count = 0
        self.pipe = None
        self.dead = False           # its name went through the overlay (its nlink reads 0)
        self.files: weakref.WeakSet = weakref.WeakSet()     # its open files (they follow a copy-up)
        self.held: list = []        # layer inodes kept alive past their last name (layer.hold)
        weakref.finalize(self, _release, self.held).atexit = False
        real = self.real()
        self.dir_ino = fs.next_ino() if real.is_dir and not fs.samefs else 0
        xa = fs.xattrs
        # OVL_WHITEOUTS: may hold whiteouts, so is listed merged, never as is
        self.whiteouts = real.is_dir and (upper is not None and bool(lowers) or len(lowers) > 1 or
                                          xa.has_origin(real))
        self.impure = upper is not None and xa.is_impure(upper)    # holds copied-up entries
        self.opaque = upper is not None and xa.is_opaque(upper)

    # -- which layer ------------------------------------------------------------
    def real(self):
        """ovl_inode_real: the upper inode once there is one, else the top lower one."""
        return self.upper if self.upper is not None else self.lowers[0].inode

    def is_merge(self) -> bool:
        """OVL_TYPE_MERGE of a directory: more than one layer to list."""
        return self.upper is not None and bool(self.lowers) or len(self.lowers) > 1

    def copy_up(self, size: int | None = None) -> None:
        """ovl_copy_up (ovl_copy_up_with_data): this file (its parents
        first) in the upper layer; size: the data a truncate keeps."""
        if self.upper is None:
            copyup.copy_up(self, size)

    def hold_upper(self) -> None:
        """The upper inode is about to lose a name: keep it while this
        inode lives (an O_PATH fd, a cwd, an exec in progress)."""
        if self.upper is not None and self.upper not in self.held:
            R.hold(self.upper)
            self.held.append(self.upper)

    def _st_source(self):
        """(layer inode, fsid) whose st_ino getattr reports for a file (a
        directory too, with every layer on one filesystem)."""
        if self.upper is None:
            lw = self.lowers[0]
            return lw.inode, lw.layer.fsid
        if self.lowers and self.bylower and (self.upper.is_dir or self.lowers[0].inode.nlink == 1):
            lw = self.lowers[0]
            return lw.inode, lw.layer.fsid
        return self.upper, 0

    # -- attributes ---------------------------------------------------------------
    mode = _upper_attr("mode")
    uid = _upper_attr("uid")
    gid = _upper_attr("gid")
    atime = _upper_attr("atime")
    mtime = _upper_attr("mtime")
    ctime = _upper_attr("ctime")

    @property
    def ino(self) -> int:
        return self.dir_ino or self._st_source()[0].ino

    @property
    def rdev(self) -> int:
        return self.real().rdev

    @property
    def nlink(self) -> int:
        """The layer's count; a merged directory says 1 (ovl_getattr), and a
        name removed through the overlay leaves 0."""
        if self.dead:
            return 0
        real = self.real()
        return 1 if real.is_dir and self.is_merge() else real.nlink

    def stat_fs(self) -> tuple[int, int]:
        fs = self.fs
        real = self.real()
        dev = fs.dev if fs.samefs or self.dir_ino else fs.pseudo_devs[self._st_source()[1]]
        return dev, real.fs.blksize

    def size(self) -> int:
        return self.real().size()

    def blocks(self) -> int:
        return self.real().blocks()

    def btime(self) -> int | None:
        return self.real().btime()

    def direct_io(self) -> int | None:
        """ovl_open opens the real file with the caller's flags: its rules
        (for regular files: only they have overlay's direct_IO)."""
        return self.real().direct_io() if self.is_reg else None

    def dio_alignment(self) -> tuple[int, int] | None:
        """ovl_getattr asks the real file's filesystem (STATX_DIOALIGN too)."""
        return self.real().dio_alignment()

    def check_chmod(self, mode: int) -> None:
        self.real().check_chmod(mode)

    def touch(self, m: bool = True, c: bool = True, a: bool = False) -> None:
        """A change copies up first; an access moves only an upper inode's
        atime (ovl_update_time: the lower layers are mounted noatime)."""
        if not (m or c):
            if self.upper is not None:
                self.upper.touch(m=False, c=False, a=a)
            return
        self.copy_up()
        self.upper.touch(m, c, a)

    def get_fsflags(self) -> int:
        return self.real().get_fsflags()

    def set_fsflags(self, flags: int, capable) -> None:
        """ovl_fileattr_set: on the upper inode, after a copy-up."""
        self.fs.want_write()
        self.copy_up()
        self.upper.set_fsflags(flags, capable)

    # -- directories ----------------------------------------------------------------
    def lookup(self, name: bytes) -> Inode | None:
        return lookup.lookup(self, name)

    def entries(self) -> list[tuple[bytes, int, int]]:
        return readdir.entries(self)

    def create(self, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0) -> Inode:
        return dirops.create(self, name, mode, uid, gid, rdev)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        return dirops.create(self, name, C.S_IFLNK | 0o777, uid, gid, target=target)

    def link(self, name: bytes, inode: Inode) -> None:
        dirops.link(self, name, inode)

    def unlink(self, name: bytes) -> None:
        dirops.remove(self, name, False)

    def rmdir(self, name: bytes) -> None:
        dirops.remove(self, name, True)

    def rename(self, old: bytes, newdir: Inode, new: bytes, flags: int) -> None:
        dirops.rename(self, old, newdir, new, flags)

    def tmpfile(self, mode: int, uid: int, gid: int) -> Inode:
        return dirops.tmpfile(self, mode, uid, gid)

    # -- data -----------------------------------------------------------------------
    def read(self, off: int, n: int) -> bytes:
        return self.real().read(off, n)

    def write(self, off: int, data: bytes) -> int:
        self.copy_up()
        return self.upper.write(off, data)

    def truncate(self, size: int) -> None:
        """ovl_setattr with a size: a copy-up with the data that stays."""
        self.copy_up(size)
        self.upper.truncate(size)

    def fallocate(self, mode: int, off: int, n: int) -> None:
        self.copy_up()
        self.upper.fallocate(mode, off, n)

    def seek_data(self, off: int, whence: int) -> int:
        """SEEK_DATA/SEEK_HOLE as the layer answers them (ovl_llseek)."""
        seek = getattr(self.real(), "seek_data", None)
        if seek is not None:
            return seek(off, whence)
        if not 0 <= off < self.size():
            raise KernelError(E.ENXIO)
        return off if whence == C.SEEK_DATA else self.size()

    def fiemap(self, fi, start: int, length: int) -> None:
        """ovl_fiemap: the layer's, if it has one."""
        fiemap = getattr(self.real(), "fiemap", None)
        if fiemap is None:
            raise KernelError(E.EOPNOTSUPP)
        fiemap(fi, start, length)

    def readlink(self) -> bytes:
        return self.real().readlink()

    def memfile(self):
        return self.real().memfile()

    def page_cache(self):
        return self.real().page_cache()

    # -- extended attributes: the layer's, the overlay's own hidden -------------
    def _private(self, name: bytes) -> None:
        if self.fs.xattrs.is_private(name):
            raise KernelError(E.EOPNOTSUPP)     # ovl_own_xattr_get/set

    def getxattr(self, name: bytes) -> bytes:
        self._private(name)
        return self.real().getxattr(name)

    def listxattr(self) -> list[bytes]:
        xa = self.fs.xattrs
        return [n for n in self.real().listxattr() if not xa.is_private(n)]

    def setxattr(self, name: bytes, value: bytes, flags: int) -> None:
        self._private(name)
        self.fs.want_write()
        self.copy_up()
        self.upper.setxattr(name, value, flags)

    def removexattr(self, name: bytes) -> None:
        """ovl_xattr_set with no value: an xattr the lower file lacks is
        ENODATA before anything is copied up."""
        self._private(name)
        self.fs.want_write()
        if self.upper is None:
            self.real().getxattr(name)
        self.copy_up()
        self.upper.removexattr(name)

    # -- files ----------------------------------------------------------------------
    def open_file(self, dentry, flags: int, task):
        """ovl_open: a regular file opened for writing is copied up first;
        devices and fifos open as the overlay's own inodes."""
        if self.is_reg:
            if flags & C.O_ACCMODE != C.O_RDONLY:
                self.copy_up()
            return OvlFile(dentry, self, flags, task)
        return super().open_file(dentry, flags, task)

    def evict(self) -> None:
        """Its last name and last file went: the layer inodes it held go."""
        _release(self.held)
