"""Ext4Inode: what an ext4 inode does beyond an ext2 one.

New regular files, directories and long symlinks are extent-mapped
(EXT4_EXTENTS_FL and an empty tree in i_block), as ext4_new_inode makes
them; fast symlinks keep their target in i_block without the flag.
Directories count links as ext4_inc_count/ext4_dec_count do under
dir_nlink: an indexed directory past EXT4_LINK_MAX subdirectories has
i_links_count 1 ("many"), which stays until the count is exact again.

fallocate follows ext4_fallocate: preallocation, zero range, collapse and
insert exist for extent-mapped files only (EOPNOTSUPP otherwise), punch
hole for both kinds.  Whole blocks move in the extent tree; the partial
blocks at a range's edges are zeroed through the write path, which is
what Linux's write-back of the zeroed page amounts to.  The page cache
(the inode's memfd) is edited alongside: zeroed where the range was,
read again from the blocks where extents moved.  Shared mappings are
written back first, as Linux writes dirty pages before moving blocks.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.block.device import DMA_ALIGN
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2 import xattr
from umlpy.fs.ext2.bcache import runs
from umlpy.fs.ext2.inode import Ext2Inode
from umlpy.fs.ext2.dir import Directory
from umlpy.fs.ext4 import csum, inline
from umlpy.fs.ext4 import layout as X
from umlpy.fs.ext4.extents import ExtentMap, NoSpace, Tree, empty_root
from umlpy.fs.ext4.inline import InlineDir
from umlpy.abi.capability import CAP_SYS_RESOURCE
from umlpy.kernel.errors import KernelError
from umlpy.vfs import fiemap as F
from umlpy.vfs.inode import Inode

if TYPE_CHECKING:
    from umlpy.fs.ext4.fs import Ext4Fs

_EXTENT_KINDS = (C.S_IFREG, C.S_IFDIR, C.S_IFLNK)
FALLOC_MODES = C.FALLOC_FL_KEEP_SIZE | C.FALLOC_FL_PUNCH_HOLE | C.FALLOC_FL_COLLAPSE_RANGE \
    | C.FALLOC_FL_ZERO_RANGE | C.FALLOC_FL_INSERT_RANGE       # what ext4_fallocate takes
RELOAD_STEP = 2048         # blocks read per step when the page cache is filled again


class Ext4Inode(Ext2Inode):
    link_max = X.EXT4_LINK_MAX

    def __init__(self, fs: Ext4Fs, ino: int, raw: bytes) -> None:
        self.ext_tree: Tree | None = None      # extents.ExtentMap's parsed tree
        self._seed: tuple[int, int] | None = None
        self.orphan_slot: int | None = None    # its slot in the orphan file (orphan.py)
        self.delayed: set[int] = set()      # logical blocks written, not yet allocated (delalloc.py)
        self.disksize = 0                   # i_disksize while there are delayed blocks
        super().__init__(fs, ino, raw)
        self.fs: Ext4Fs = fs

    def direct_io(self) -> int | None:
        """Regular files only (ext4's directories have no direct_IO); an
        inline file's transfers go buffered (ext4_should_use_dio)."""
        if not self.is_reg:
            return None
        return 0 if self.is_inline else self.fs.device.block_size

    def dio_alignment(self) -> tuple[int, int] | None:
        """ext4_getattr: a regular file's direct I/O goes by its disk's
        queue (its DMA alignment, 512, and its logical block size), except
        an inline file's, which has none (ext4_dio_alignment)."""
        align = self.direct_io()
        if align is None:
            return None
        return (DMA_ALIGN, align) if align else (0, 0)

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

    # -- the orphan list (orphan.py) ---------------------------------------------------
    def _drop(self, inode: Ext2Inode) -> None:
        """The last link of an inode still open goes: it becomes an orphan
        (ext4_unlink, ext4_rmdir), freed at the last close or after a crash."""
        super()._drop(inode)
        if inode.nlink <= 0 and not inode._freed:
            self.fs.orphans.add(inode)      # type: ignore[arg-type]

    def tmpfile(self, mode: int, uid: int, gid: int) -> Inode:
        """ext4_tmpfile: born an orphan."""
        child = super().tmpfile(mode, uid, gid)
        self.fs.orphans.add(child)      # type: ignore[arg-type]
        return child

    def link(self, name: bytes, inode: Inode) -> None:
        """ext4_link: a linked O_TMPFILE inode is no orphan any more."""
        was_orphan = inode.nlink == 0
        super().link(name, inode)
        if was_orphan:
            self.fs.orphans.remove(inode)       # type: ignore[arg-type]

    def truncate(self, size: int) -> None:
        """ext4_truncate: an orphan while blocks are freed, so that a crash
        before the end has the next mount finish the job."""
        if self.is_inline and self.is_reg and size >= 0:
            self.fs.check_rw()
            self._check_mutable()
            if self._store_inline(size):        # ext4_inline_data_truncate
                self.set_size(size)
                if self._mem is not None:
                    self._mem.truncate(size)
                self.touch()
                return
            self.uninline()
        trims = self.is_reg and 0 <= size <= self._size
        if trims:
            self.fs.orphans.add(self)
        try:
            super().truncate(size)
            self.disksize = self._size      # ext4_setattr: i_disksize too
        finally:
            if trims and self.nlink > 0:
                self.fs.orphans.remove(self)

    def finish_truncate(self) -> None:
        """An orphan with links found at mount: the blocks past i_size go
        (ext4_truncate, which the flags the VFS checks do not stop)."""
        if self.is_reg and not self.is_inline:     # an inline file has no blocks to free
            self.fs.check_rw()
            self._trim_to(self._size)

    def release(self) -> None:
        """ext4_evict_inode: off the orphan list, its delayed blocks never
        allocated, then freed."""
        if not self._freed and not self.fs.read_only:
            self.fs.orphans.remove(self)
        if self.fs.delalloc is not None:
            self.fs.delalloc.drop(self)
        super().release()

    # -- delayed allocation (delalloc.py) ----------------------------------------------
    def write(self, off: int, data: bytes) -> int:
        n = super().write(off, data)
        if self.fs.delalloc is not None:
            self.fs.delalloc.balance()      # the data is in the page cache now
        return n

    def _store(self, off: int, data: bytes) -> int:
        """ext4_da_write_begin: into holes, the page cache alone for now;
        elsewhere (or short of room to promise) allocated and written at
        once, after this file's delayed blocks."""
        da = self.fs.delalloc
        if da is not None:
            if da.delay(self, off, len(data)):
                return len(data)
            da.flush(self)
        return self._write_disk(off, data)

    def evictable(self) -> bool:
        """Nor delayed blocks, nor a slot in the orphan file."""
        return super().evictable() and not self.delayed and self.orphan_slot is None

    def drop_page_cache(self) -> None:
        """Never while delayed blocks have their data there alone (only
        clean pages are dropped)."""
        if not self.delayed:
            super().drop_page_cache()

    def disk_size(self) -> int:
        """i_disksize: short of the delayed blocks (delalloc.py)."""
        return self.disksize if self.delayed else self._size

    def _flush_delayed(self) -> None:
        if self.fs.delalloc is not None:
            self.fs.delalloc.flush(self)

    def writeback(self) -> None:
        """The delayed blocks get theirs, then a shared mapping's pages are
        compared with the blocks."""
        self._flush_delayed()
        super().writeback()

    def map_shared(self) -> None:
        """The delayed blocks get theirs first, and no write delays more
        while the file is mapped (delalloc.delay): a write-back finds what
        the mapping wrote by comparing the pages with the blocks, and
        delayed data has no blocks to differ from, so a write through the
        mapping to them changed no mtime (the Open POSIX suite's mmap
        14-1)."""
        self._flush_delayed()
        super().map_shared()

    def _trim_to(self, size: int) -> None:
        if self.fs.delalloc is not None:
            self.fs.delalloc.drop(self, -(-size // self.fs.block_size))
        super()._trim_to(size)

    # -- inline data (inline.py) ------------------------------------------------------
    @property
    def is_inline(self) -> bool:
        return bool(self.flags & X.FL_INLINE_DATA)

    def _dirx(self) -> Directory:
        if self._dir is None and self.is_dir and self.is_inline:
            self._dir = InlineDir(self)     # type: ignore[assignment]
        return super()._dirx()

    def blocks(self) -> int:
        """ext4_getattr: an inline inode counts the sectors its bytes would
        take, so that tools do not take it for a sparse file, and delayed
        blocks count as the blocks they will be."""
        if self.is_inline:
            return self.i_blocks + (self._size + 511 >> 9)
        return self.i_blocks + len(self.delayed) * (self.fs.block_size >> 9)

    def _read_disk(self, off: int, n: int) -> bytes:
        if self.is_inline:
            return inline.read(self, off, n)
        return super()._read_disk(off, n)

    def _read_disk_into(self, off: int, buf: memoryview) -> None:
        if self.is_inline:
            data = inline.read(self, off, len(buf))
            buf[:len(data)] = data
        else:
            super()._read_disk_into(off, buf)

    def readlink(self) -> bytes:
        if self.is_symlink and self.is_inline:
            if self._size >= self.fs.block_size:
                raise KernelError(E.EIO)
            return inline.read(self)
        return super().readlink()

    def _write_disk(self, off: int, data: bytes) -> int:
        """ext4_try_to_write_inline_data: in the inode while it fits there."""
        if self.is_inline and self._store_inline(max(self._size, off + len(data)), off, data):
            return len(data)
        self.uninline()
        return super()._write_disk(off, data)

    def _store_inline(self, size: int, off: int = 0, data: bytes = b"") -> bool:
        """The inline bytes become size long, data at off (zeros where the
        file grows); False when that does not fit in the inode."""
        if size > self.fs.block_size or not self.is_reg:
            return False
        new = bytearray(inline.read(self)[:size].ljust(max(size, off + len(data)), b"\0"))
        new[off:off + len(data)] = data
        return inline.store(self, bytes(new))

    def seek_data(self, off: int, whence: int) -> int:
        """An inline file is all data (iomap's IOMAP_INLINE); delayed blocks
        are data too (written back first, so the block map shows them)."""
        if not self.is_inline:
            self._flush_delayed()
            return super().seek_data(off, whence)
        if not 0 <= off < self._size:
            raise KernelError(E.ENXIO)
        return off if whence == C.SEEK_DATA else self._size

    def _drop_inline(self) -> None:
        """system.data and the flag go; i_block becomes an empty map."""
        inline.drop(self)
        self.flags &= ~X.FL_INLINE_DATA
        self.ext_tree = None
        if self.fs.has_extents:
            self.flags |= X.FL_EXTENTS
            self.block = empty_root()
        else:
            self.block = [0] * L.N_BLOCKS

    def _undo(self) -> Callable[[], None]:
        """What puts the inode back as it is now (a conversion short of space)."""
        flags, block, raw = self.flags, list(self.block), bytes(self._raw)

        def undo() -> None:
            self.fs.bmap.free_from(self, 0)
            self.flags, self.block, self._raw[:] = flags, block, raw
            self.ext_tree = None
        return undo

    def uninline(self) -> None:
        """ext4_convert_inline_data: a file about to change gets its bytes
        into a block of its own (ENOSPC leaves it inline)."""
        if not self.is_inline or not self.is_reg:
            return
        self.fs.check_rw()
        if self._size > self.fs.block_size:
            raise self.fs.error(f"inode #{self.ino}: inline data larger than a block")
        data = inline.read(self)
        undo = self._undo()
        self._drop_inline()
        if data and super()._write_disk(0, data) < len(data):
            undo()
            raise KernelError(E.ENOSPC)

    def uninline_dir(self) -> Ext4Inode:
        """ext4_convert_inline_data_nolock for a directory about to change:
        one block with '.', '..' and the same entries."""
        fs = self.fs
        fs.check_rw()
        if not self.is_inline:
            return self
        old = self._dir if isinstance(self._dir, InlineDir) else InlineDir(self)
        undo = self._undo()
        self._drop_inline()
        self._dir = None
        try:
            blk = self._alloc_single()
        except KernelError:
            undo()
            raise
        fs.dir_class.format_new(self, blk, old.dots[b".."].ino)
        self.set_size(fs.block_size)
        new = self._dirx()
        for name, e in old.names.items():
            new.add(name, e.ino, e.ftype)
        return self

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
        """ext4_fileattr_get: the visible flags; project inheritance is a directory's."""
        flags = self.flags & X.FL_USER_VISIBLE
        return flags & ~X.FL_PROJINHERIT if self.is_reg else flags

    def set_fsflags(self, flags: int, capable: Callable[[int], bool]) -> None:
        """ext4_fileattr_set and ext4_ioctl_setflags, after the VFS's owner
        and CAP_LINUX_IMMUTABLE checks: unknown flags and flags the file
        type cannot have are EOPNOTSUPP (visible, unchangeable ones are
        dropped quietly, as chattr sends back what lsattr read); an
        immutable file that stays so may change nothing else (EPERM);
        data journalling needs CAP_SYS_RESOURCE; clearing the extents flag
        turns a small extent file back into a block-mapped one."""
        if flags & ~X.FL_USER_VISIBLE:
            raise KernelError(E.EOPNOTSUPP)
        flags &= X.FL_USER_MODIFIABLE
        mask = -1 if self.is_dir else X.FL_REG_MASK if self.is_reg else X.FL_OTHER_MASK
        if flags & mask != flags:
            raise KernelError(E.EOPNOTSUPP)
        old = self.flags
        if old & flags & L.FL_IMMUTABLE and old & ~L.FL_IMMUTABLE != flags & ~L.FL_IMMUTABLE:
            raise KernelError(E.EPERM)
        changed = old ^ flags
        if changed & X.FL_JOURNAL_DATA and not capable(CAP_SYS_RESOURCE):
            raise KernelError(E.EPERM)
        if flags & X.FL_DAX and old & X.FL_DAX_MUT_EXCL or flags & X.FL_DAX_MUT_EXCL and old & X.FL_DAX:
            raise KernelError(E.EOPNOTSUPP)
        if changed & X.FL_CASEFOLD:
            raise KernelError(E.EOPNOTSUPP)       # no casefold feature here
        plain = X.FL_USER_MODIFIABLE & ~X.FL_EXTENTS
        if not self.fs.sb.feature_compat & X.COMPAT_HAS_JOURNAL:
            plain &= ~X.FL_JOURNAL_DATA     # ext4_change_inode_journal_flag: nothing to journal to
        self.flags = old & ~plain | flags & plain
        self.touch(m=False)
        if changed & X.FL_EXTENTS:
            if flags & X.FL_EXTENTS:
                raise KernelError(E.EOPNOTSUPP if self.fs.has_extents else E.EINVAL)
            self._to_block_map()

    def _to_block_map(self) -> None:
        """ext4_ind_migrate: an extent tree of one level and at most one
        written extent ending by block 12 becomes direct block pointers."""
        if not self.fs.has_extents:
            raise KernelError(E.EINVAL)
        self._flush_delayed()
        t = self.fs.bmap.extent.tree(self)
        if self.fs.sb.blocks_count > 0xFFFFFFFF or t.nodes or len(t.extents) > 1:
            raise KernelError(E.EOPNOTSUPP)
        block = [0] * len(self.block)
        for e in t.extents:
            if e.unwritten or e.end > L.NDIR_BLOCKS:
                raise KernelError(E.EOPNOTSUPP)
            block[e.lblk:e.end] = range(e.pblk, e.pblk + e.count)
        self.flags &= ~X.FL_EXTENTS
        self.block = block
        self.ext_tree = None

    # -- fallocate --------------------------------------------------------------------
    def fallocate(self, mode: int, off: int, n: int) -> None:
        """ext4_fallocate, after vfs_fallocate's checks (sys_fallocate)."""
        if mode & ~FALLOC_MODES:
            raise KernelError(E.EOPNOTSUPP)
        self.fs.check_rw()
        self.writeback()
        self.uninline()
        try:
            if mode & C.FALLOC_FL_PUNCH_HOLE:
                self._punch_hole(off, n)
            elif mode & C.FALLOC_FL_COLLAPSE_RANGE:
                self._collapse_range(off, n)
            elif mode & C.FALLOC_FL_INSERT_RANGE:
                self._insert_range(off, n)
            elif mode & C.FALLOC_FL_ZERO_RANGE:
                self._zero_range(mode, off, n)
            else:
                self._extents_only().preallocate(self, off // self.fs.block_size,
                                                  -(-(off + n) // self.fs.block_size))
                self._grow(mode, off + n)
                self.touch()
        except NoSpace:
            raise KernelError(E.ENOSPC) from None

    def _extents_only(self) -> ExtentMap:
        """The extent map, for the modes Linux offers extent files alone."""
        if not self.flags & X.FL_EXTENTS:
            raise KernelError(E.EOPNOTSUPP)
        return self.fs.bmap.extent

    def _aligned(self, off: int, n: int) -> None:
        """Collapse and insert move whole blocks (clusters): EINVAL otherwise."""
        if (off | n) % self.fs.block_size:
            raise KernelError(E.EINVAL)

    def _grow(self, mode: int, end: int) -> None:
        """Without FALLOC_FL_KEEP_SIZE the file reaches end (the new part reads as zeros)."""
        if not mode & C.FALLOC_FL_KEEP_SIZE and end > self._size:
            self.set_size(end)
            if self._mem is not None:
                self._mem.truncate(end)

    def _mapped(self, lblk: int) -> bool:
        """A block behind lblk, written or not (a hole has none)."""
        if self.flags & X.FL_EXTENTS:
            return self.fs.bmap.extent.extent_at(self, lblk) is not None
        return bool(self.fs.bmap.map(self, lblk, lblk + 1)[0])

    def _zero_cache(self, off: int, end: int) -> None:
        """The page cache reads zeros in [off, end) (within the file)."""
        end = min(end, self._size)
        if self._mem is not None and off < end:
            self._mem.fallocate(C.FALLOC_FL_PUNCH_HOLE | C.FALLOC_FL_KEEP_SIZE, off, end - off)

    def _zero_edges(self, off: int, end: int) -> None:
        """ext4_zero_partial_blocks: the bytes of [off, end) in the blocks it
        covers only in part become zeros, within i_size and where a block is
        mapped (a hole reads as zeros already); written through, so an
        unwritten edge becomes a written block as Linux's write-back makes it."""
        bs = self.fs.block_size
        end = min(end, self._size)
        for lblk in {off // bs, end // bs} if off < end else ():
            a, b = max(off, lblk * bs), min(end, (lblk + 1) * bs)
            if a < b and b - a < bs and self._mapped(lblk):
                if self._write_disk(a, bytes(b - a)) < b - a:
                    raise KernelError(E.ENOSPC)

    def _punch_hole(self, off: int, n: int) -> None:
        """ext4_punch_hole: nothing at or past EOF; the range stops at the
        end of the page holding EOF; whole blocks are freed, partial ones zeroed."""
        if off >= self._size:
            return
        bs = self.fs.block_size
        end = min(off + n, C.page_up(self._size))
        self._zero_edges(off, end)
        lo, hi = -(-off // bs), end // bs
        if lo < hi:
            self.fs.bmap.punch(self, lo, hi)
        self._zero_cache(off, end)
        self.touch()

    def _zero_range(self, mode: int, off: int, n: int) -> None:
        """ext4_zero_range: whole blocks become unwritten extents (on the
        blocks they had, holes allocated), the partial edges are allocated
        and zeroed; the file grows unless FALLOC_FL_KEEP_SIZE."""
        em = self._extents_only()
        bs = self.fs.block_size
        end = off + n
        em.preallocate(self, off // bs, -(-end // bs), (-(-off // bs), end // bs))
        self._grow(mode, end)
        self._zero_cache(off, end)
        self._zero_edges(off, end)
        self.touch()

    def _collapse_range(self, off: int, n: int) -> None:
        """ext4_collapse_range: [off, off + n) goes and what follows moves
        down; the range must end before EOF."""
        em = self._extents_only()
        self._aligned(off, n)
        if off + n >= self._size:
            raise KernelError(E.EINVAL)
        bs = self.fs.block_size
        em.collapse(self, off // bs, (off + n) // bs)
        self.set_size(self._size - n)
        self._reload_cache(off)
        self.touch()

    def _insert_range(self, off: int, n: int) -> None:
        """ext4_insert_range: a hole of n bytes at off, what follows moving up."""
        em = self._extents_only()
        self._aligned(off, n)
        if n > self.fs.max_file_size - self._size:
            raise KernelError(E.EFBIG)
        if off >= self._size:
            raise KernelError(E.EINVAL)
        bs = self.fs.block_size
        em.insert(self, off // bs, n // bs)
        self.set_size(self._size + n)
        self._reload_cache(off)
        self.touch()

    def _reload_cache(self, off: int) -> None:
        """After extents moved: the page cache from off (block-aligned) on is
        read again from the written extents, a bounded step at a time."""
        mem = self._mem
        if mem is None:
            return
        bs, size = self.fs.block_size, self._size
        mem.truncate(off)
        mem.truncate(size)
        last = -(-size // bs)
        for e in self.fs.bmap.extent.tree(self).extents:
            a, b = max(e.lblk, off // bs), min(e.end, last)
            if e.unwritten or a >= b:
                continue
            for s in range(a, b, RELOAD_STEP):
                k = min(RELOAD_STEP, b - s)
                data = self.fs.bcache.read_run(e.pblk + s - e.lblk, k)
                mem.pwrite(data[:max(0, min(k * bs, size - s * bs))], s * bs)

    # -- FIEMAP -----------------------------------------------------------------------
    def fiemap(self, fi: F.FiemapInfo, start: int, length: int) -> None:
        """ext4_fiemap: the range checked against the file's own limit
        (s_bitmap_maxbytes for block-mapped files), then iomap's report:
        each extent cut to the range, unwritten ones flagged, blocks past
        EOF included; FIEMAP_FLAG_XATTR reports where the xattrs are."""
        if self.is_inline and not fi.flags & F.FIEMAP_FLAG_XATTR:
            self._fiemap_inline(fi, start, length)
            return
        extent_mapped = self.flags & X.FL_EXTENTS
        limit = self.fs.max_file_size if extent_mapped else self.fs.bitmap_max_size
        fi.flags &= ~F.FIEMAP_FLAG_CACHE       # the extent cache is the tree itself
        length = F.clamp_range(start, length, limit)      # ext4_fiemap_check_ranges
        if fi.flags & F.FIEMAP_FLAG_XATTR:
            fi.flags &= ~F.FIEMAP_FLAG_XATTR
            fi.prep(start, length, self.fs.max_file_size)
            self._fiemap_xattr(fi, start)
            return
        length = fi.prep(start, length, self.fs.max_file_size)
        if not extent_mapped:
            self._flush_delayed()       # (a block map has no place to show them)
            self._fiemap_indirect(fi, start, length, limit)
            return
        bs = self.fs.block_size
        lo = start // bs
        if lo > X.EXT_MAX_BLOCKS - 1:
            raise KernelError(E.EINVAL)      # ext4_iomap_begin_report: past EXT4_MAX_LOGICAL_BLOCK
        if fi.sync:
            self.writeback()
        hi = min((start + length - 1) // bs, X.EXT_MAX_BLOCKS - 1) + 1
        # the extents, and the delayed blocks as iomap's IOMAP_DELALLOC: no place yet
        spans = [(e.lblk, e.end, e.pblk, F.FIEMAP_EXTENT_UNWRITTEN if e.unwritten else 0)
                 for e in self.fs.bmap.extent.tree(self).extents]
        if self.delayed:
            spans += [(a, a + k, 0, F.FIEMAP_EXTENT_DELALLOC) for a, k in runs(sorted(self.delayed))]
            spans.sort()
        for lblk, end, pblk, flags in spans:
            a, b = max(lblk, lo), min(end, hi)
            if a >= b:
                if lblk >= hi:
                    break
                continue
            if not fi.add(a * bs, (pblk + a - lblk) * bs if pblk else 0, (b - a) * bs, flags):
                break
        fi.finish()

    def _fiemap_inline(self, fi: F.FiemapInfo, start: int, length: int) -> None:
        """ext4_inline_data_iomap: one extent, the bytes in the inode table
        from i_block on (flagged DATA_INLINE and NOT_ALIGNED)."""
        fs = self.fs
        fi.prep(start, length, fs.max_file_size)
        blk, off = fs.inode_loc(self.ino)
        if start < self._size:
            fi.add(0, blk * fs.block_size + off + X.IBLOCK_OFF, self._size,
                   F.FIEMAP_EXTENT_DATA_INLINE)
        fi.finish()

    def _fiemap_xattr(self, fi: F.FiemapInfo, start: int) -> None:
        """ext4_iomap_xattr_fiemap: the in-inode xattr area (inline data),
        else the xattr block; nothing when there is neither or start lies
        past it."""
        fs = self.fs
        if xattr.has_ibody(self):
            blk, off = fs.inode_loc(self.ino)
            inside = L.GOOD_OLD_INODE_SIZE + self.extra_isize
            where, length, flags = blk * fs.block_size + off + inside, fs.inode_size - inside, \
                F.FIEMAP_EXTENT_DATA_INLINE
        elif self.file_acl:
            where, length, flags = self.file_acl * fs.block_size, fs.block_size, 0
        else:
            return
        if start < length:
            fi.add(0, where, length, flags)
            fi.finish()
