"""Ext4Inode: what an ext4 inode does beyond an ext2 one.

New regular files, directories and long symlinks are extent-mapped
(EXT4_EXTENTS_FL and an empty tree in i_block), as ext4_new_inode makes
them; fast symlinks keep their target in i_block without the flag.
Directories count links as ext4_inc_count/ext4_dec_count do under
dir_nlink: an indexed directory past EXT4_LINK_MAX subdirectories has
i_links_count 1 ("many"), which stays until the count is exact again.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import consts as C
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2.inode import Ext2Inode
from umlpy.fs.ext4 import csum
from umlpy.fs.ext4 import layout as X
from umlpy.fs.ext4.extents import Tree, empty_root

if TYPE_CHECKING:
    from umlpy.fs.ext4.fs import Ext4Fs

_EXTENT_KINDS = (C.S_IFREG, C.S_IFDIR, C.S_IFLNK)


class Ext4Inode(Ext2Inode):
    link_max = X.EXT4_LINK_MAX

    def __init__(self, fs: Ext4Fs, ino: int, raw: bytes) -> None:
        self.ext_tree: Tree | None = None      # extents.ExtentMap's parsed tree
        self._seed: tuple[int, int] | None = None
        super().__init__(fs, ino, raw)
        self.fs: Ext4Fs = fs

    def csum_seed(self) -> int:
        """ei->i_csum_seed: the filesystem's seed, this inode's number and generation."""
        if self._seed is None or self._seed[0] != self.generation:
            self._seed = (self.generation,
                          csum.inode_seed(self.fs.csum_seed, self.ino, self.generation))
        return self._seed[1]

    def init_new(self, mode: int, uid: int, gid: int, parent: Ext2Inode) -> None:
        super().init_new(mode, uid, gid, parent)
        if self.fs.has_extents and self.fmt in _EXTENT_KINDS:
            self.flags |= X.FL_EXTENTS
            self.block = empty_root()

    def _set_fast_symlink(self, target: bytes) -> None:
        self.flags &= ~X.FL_EXTENTS
        super()._set_fast_symlink(target)

    def btime(self) -> int | None:
        """i_crtime (with its extra word when i_extra_isize covers that too), when
        i_extra_isize covers it: ext4_getattr's EXT4_FITS_IN_INODE.  ext2 keeps
        the field but Linux's ext2 does not report it, so only this driver does."""
        raw, ei = self._raw, self.extra_isize
        lo = L.extra_get(raw, ei, "crtime")
        if lo is None:
            return None
        return L.decode_time(lo, L.extra_get(raw, ei, "crtime_extra"))

    def is_dx(self) -> bool:
        """An htree-indexed directory (is_dx in Linux)."""
        return bool(self.fs.sb.feature_compat & X.COMPAT_DIR_INDEX and self.flags & L.FL_INDEX)

    def _dir_links_full(self) -> bool:
        return not self.is_dx() and self.nlink >= X.EXT4_LINK_MAX

    def _dir_link(self, delta: int) -> None:
        if delta > 0:
            self.nlink += 1
            if self.is_dx() and (self.nlink > X.EXT4_LINK_MAX or self.nlink == 2):
                self.nlink = 1
        elif self.nlink > 2:
            self.nlink -= 1

    def get_fsflags(self) -> int:
        return self.flags & X.FL_USER_VISIBLE
