"""An open regular file of the union (Linux 6.1's fs/overlayfs/file.c).

The data are its layer's: reads, writes, the page cache and mappings go to
the upper inode once there is one, else to the lower one (the inode
forwards them).  As ovl_open_realfile, the file also holds its layer's
inode open, reporting no events (FMODE_NONOTIFY), so that the layer's own
rules about open files hold (a host file descriptor for hostfs, the data
of an unlinked file); a copy-up made through another file moves it to the
upper inode, as ovl_real_fdget_meta opens the upper file when it finds
one.  The layer's file is counted in fs.file-nr (Linux's is not).
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.vfs.file import File, RegularFile
from umlpy.fs.overlayfs import layer as R


class OvlFile(RegularFile):
    def __init__(self, dentry, inode, flags: int, task) -> None:
        real = _open_real(inode, flags, task)
        super().__init__(dentry, inode, flags)
        self.real = real
        inode.files.add(self)

    def follow_copy_up(self) -> None:
        """The file was copied up: hold the upper inode open instead."""
        old, self.real = self.real, _open_real(self.inode, self.flags, None)
        old.put()

    def mapped_inode(self):
        """ovl_mmap: the layer's inode (the vma gets the real file)."""
        return self.real.inode

    def fsync(self) -> None:
        """ovl_fsync: the upper file; a lower one is never synced."""
        if self.real.inode is self.inode.upper:
            self.real.fsync()

    def release(self) -> None:
        self.inode.files.discard(self)
        self.real.put()


def _open_real(inode, flags: int, task) -> File:
    """ovl_open_realfile: the layer inode's own file, which the mounter
    may open, silent to fsnotify."""
    real = inode.real()
    acc = flags & C.O_ACCMODE
    R.may(inode.fs, real, (C.R_OK if acc != C.O_WRONLY else 0) | (C.W_OK if acc != C.O_RDONLY else 0))
    f = real.open_file(None, flags, task)
    f.nonotify = True
    return f.get()
