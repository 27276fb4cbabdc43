"""Ext4Fs: ext2's driver with ext4's on-disk format (and the ext3 type name).

What is mounted, as Linux's ext4_feature_set_ok decides it: for "ext4"
the INCOMPAT features filetype, meta_bg, extent, 64bit, flex_bg,
metadata_csum_seed and inline_data (inline.py), RO_COMPAT sparse_super,
large_file, btree_dir, huge_file, uninit_bg (gdt_csum), dir_nlink,
extra_isize, metadata_csum and orphan_present (orphan.py); "ext3" only
ext3's.  Unknown RO_COMPAT features allow a
read-only mount; other INCOMPAT features refuse it, naming them, before
anything is written.

The journal: one that needs recovery is replayed at mount (fs/jbd2,
through Ext2Fs._recover); a journal superblock that still has a
transaction start afterwards is refused.  A read-write mount with a
journal journals every metadata change, in ordered mode (journal.py):
the superblock says needs_recovery while mounted (its state stays as it
was, as Linux's ext4_setup_super leaves it) and unmount leaves the
journal empty and the flag cleared.  Orphans (files unlinked while
open, truncates under way) are recorded in the same transactions and
finished at the next mount (orphan.py).  Without a journal, writes go
straight to their blocks with the superblock marked not clean while
mounted, as ext2's.

Checksums: the superblock's is checked at mount, each group descriptor's
as the table is read (a bad one refuses a read-write mount, as
ext4_check_descriptors), bitmaps', inodes', extent, directory and xattr
blocks' when first read (EBADMSG, Linux's EFSBADCRC, and one log line).
They are written with everything: descriptors (with their bitmaps'
checksums) at sync, inodes as they are stored, blocks by their sealers in
the buffer cache.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, NamedTuple

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.block.device import BlockDevice
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2.fs import Ext2Error, Ext2Fs
from umlpy.fs.ext4 import csum, dirhash
from umlpy.fs.ext4 import layout as X
from umlpy.fs.ext4.alloc import Ext4Allocator, init_block_bitmap, init_inode_bitmap
from umlpy.fs.ext4.delalloc import DEFM_NODELALLOC, DelayedAlloc
from umlpy.fs.ext4.dir import Ext4Dir
from umlpy.fs.ext4.extents import InodeMaps
from umlpy.fs.ext4.inode import Ext4Inode
from umlpy.fs.ext4.journal import DEFAULT_COMMIT_S, MetadataJournal, open_journal
from umlpy.fs.ext4.orphan import Orphans
from umlpy.fs.jbd2 import Journal
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.vfs import fsnotify

if TYPE_CHECKING:
    from umlpy.kernel.sched import Scheduler

SUPPORTED = {"ext3": (X.INCOMPAT_EXT3, X.RO_COMPAT_EXT3),
             "ext4": (X.INCOMPAT_EXT4, X.RO_COMPAT_EXT4)}


_FILE_TYPES = (C.S_IFREG, C.S_IFDIR, C.S_IFLNK, C.S_IFCHR, C.S_IFBLK, C.S_IFIFO, C.S_IFSOCK)


class _Named(NamedTuple):
    """An inode as a file handle names it, for an error about one that
    cannot be loaded."""
    ino: int
    generation: int


class Ext4Fs(Ext2Fs):
    superblock_class = X.Superblock
    allocator_class = Ext4Allocator
    dir_class = Ext4Dir
    inode_class = Ext4Inode
    sb: X.Superblock

    def __init__(self, dev: BlockDevice, read_only: bool, name: str = "ext4",
                 sched: Scheduler | None = None, commit_s: int = DEFAULT_COMMIT_S,
                 delalloc: bool = True, silent: bool = False) -> None:
        self.name = name
        self.devname = dev.name
        self.aborted = False                # remount,abort: read-only until mounted again
        self.silent = silent                # MS_SILENT: a probe, as the root mount's
        self.verified: set[int] = set()     # blocks whose checksum was checked or written here
        self.sched = sched                  # the commit interval's timers (none: commit points only)
        self.commit_s = commit_s
        self.jnl: Journal | None = None     # the journal, checked at mount
        self.journal: MetadataJournal | None = None     # journalling, while read-write
        self.delalloc_opt = delalloc        # mount -o delalloc (default) / nodelalloc
        self.delalloc: DelayedAlloc | None = None       # delaying, while journalling
        self.orphans: Orphans
        super().__init__(dev, read_only)
        self.orphans.cleanup()
        # __ext4_fill_super's last word (6.1's wording; data=ordered is the only mode here)
        self.msg("mounted filesystem " + ("with ordered data mode" if self.jnl is not None else "without journal")
                 + ". Quota mode: none.")

    def msg(self, text: str, level: Callable[[str], None] = printk.pr_info) -> None:
        """ext4_msg: one log line naming the device."""
        level(f"EXT4-fs ({self.devname}): {text}")

    # -- mount-time checks --------------------------------------------------------------
    def _refuse(self, msg: str, errno: int = E.EINVAL, logged: str | None = None,
                quiet: bool = False) -> KernelError:
        """The error that refuses the mount, logged as `logged` (Linux's
        words) or as msg, or not at all when quiet."""
        if not quiet:
            self.msg(logged or f"couldn't mount as {self.name}: {msg}", printk.pr_err)
        if errno == E.EINVAL:
            return Ext2Error(f"{self.name}: {msg}")
        return KernelError(errno, f"{self.name}: {msg}")

    def _accept_super(self, sb: L.Superblock, read_only: bool) -> None:
        assert isinstance(sb, X.Superblock)
        incompat, ro_compat = SUPPORTED[self.name]
        self.metadata_csum = bool(sb.feature_ro_compat & X.RO_COMPAT_METADATA_CSUM)
        if self.metadata_csum:
            if sb.checksum_type != X.CRC32C_CHKSUM:
                raise self._refuse(f"unknown checksum type {sb.checksum_type}")
            if sb.checksum != csum.superblock(sb.raw):
                raise self._refuse("invalid superblock checksum, run e2fsck", E.EBADMSG)
        if sb.feature_incompat & L.INCOMPAT_RECOVER and not sb.feature_compat & L.COMPAT_HAS_JOURNAL:
            raise self._refuse("needs_recovery without a journal: run e2fsck")
        bad_in = sb.feature_incompat & ~incompat
        bad_ro = self._unknown_ro_compat(sb)
        ro_names = L.feature_names(L.RO_COMPAT_NAMES, "R", bad_ro)
        if self.name == "ext3":
            self._accept_as_ext3(sb, read_only, bad_in, bad_ro)
        if bad_in:
            names = L.feature_names(L.INCOMPAT_NAMES, "I", bad_in) + ro_names
            raise self._refuse("unsupported features: " + ", ".join(names),
                               logged=f"Couldn't mount because of unsupported optional features ({bad_in:x}): "
                               + ", ".join(names))
        if bad_ro and not read_only:
            raise self._refuse("read-only mount only, unsupported features: " + ", ".join(ro_names),
                               logged=f"couldn't mount RDWR because of unsupported optional features "
                               f"({bad_ro:x}): " + ", ".join(ro_names))
        if sb.feature_incompat & X.INCOMPAT_64BIT:
            ds = sb.desc_size
            if not X.DESC_SIZE_MIN_64BIT <= ds <= X.DESC_SIZE_MAX or ds & (ds - 1):
                raise self._refuse(f"bad group descriptor size {ds}")
        self.group_csum = self.metadata_csum or bool(sb.feature_ro_compat & X.RO_COMPAT_GDT_CSUM)
        self.csum_seed = csum.fs_seed(sb) if self.metadata_csum else 0
        self.has_extents = bool(sb.feature_incompat & X.INCOMPAT_EXTENTS)

    def _accept_as_ext3(self, sb: L.Superblock, read_only: bool, bad_in: int, bad_ro: int) -> None:
        """ext3_feature_set_ok: a journal, no incompat feature ext3 lacks,
        none of its unknown ro_compat ones read-write.  A probe (MS_SILENT,
        the root mount trying each type) is refused quietly when the
        image is ext4's to mount, as __ext4_fill_super does."""
        if sb.feature_compat & X.COMPAT_HAS_JOURNAL and not bad_in and (read_only or not bad_ro):
            self.msg("mounting ext3 file system using the ext4 subsystem")
            return
        ext4_in, ext4_ro = SUPPORTED["ext4"]
        ext4_ok = not sb.feature_incompat & ~ext4_in and (read_only or not sb.feature_ro_compat & ~ext4_ro)
        why = L.feature_names(L.INCOMPAT_NAMES, "I", bad_in)
        why += [] if read_only else L.feature_names(L.RO_COMPAT_NAMES, "R", bad_ro)
        why += [] if sb.feature_compat & X.COMPAT_HAS_JOURNAL else ["no journal"]
        raise self._refuse("unsupported features: " + ", ".join(why),
                           logged="couldn't mount as ext3 due to feature incompatibilities",
                           quiet=self.silent and ext4_ok)

    def _unknown_ro_compat(self, sb: L.Superblock) -> int:
        return sb.feature_ro_compat & ~SUPPORTED[self.name][1]

    def rw_mountable(self) -> bool:
        """ext4_feature_set_ok(sb, 0): no RO_COMPAT feature this type name does not know."""
        return not self._unknown_ro_compat(self.sb)

    def _mark_mounted(self) -> None:
        """With dir_index, a superblock saying neither signed nor unsigned hash is
        made to say signed (x86's char), as Linux's ext4_fill_super does."""
        sb = self.sb
        if sb.feature_compat & X.COMPAT_DIR_INDEX and \
                not sb.flags & (dirhash.FLAGS_SIGNED_HASH | dirhash.FLAGS_UNSIGNED_HASH):
            sb.flags |= dirhash.FLAGS_SIGNED_HASH
        super()._mark_mounted()

    def _desc_size(self, sb: L.Superblock) -> int:
        return sb.desc_size if sb.feature_incompat & X.INCOMPAT_64BIT else L.GroupDesc.SIZE

    def _make_desc(self, g: int, raw: bytes) -> X.GroupDesc:
        gd = X.make_desc(raw)
        if self.group_csum and gd.checksum != self._desc_csum(g, raw):
            printk.pr_err(f"EXT4-fs ({self.devname}): checksum for group {g} failed")
            if not self.read_only:
                raise self._refuse("group descriptors corrupted", E.EUCLEAN)
        return gd

    def _desc_csum(self, g: int, raw: bytes) -> int:
        if self.metadata_csum:
            return csum.group_desc(self.csum_seed, g, raw)
        return csum.group_desc_crc16(self.sb.uuid, g, raw)

    def _make_bmap(self) -> InodeMaps:
        return InodeMaps(self)

    def _max_file_size(self) -> int:
        """ext4_max_size for extent-mapped files: 2^32 - 1 blocks, and without
        huge_file what i_blocks' 2^32 sectors can count."""
        if not self.has_extents:
            return super()._max_file_size()
        bits = self.block_size.bit_length() - 1
        size = ((1 << 32) - 1) << bits
        if not self.sb.feature_ro_compat & L.RO_COMPAT_HUGE_FILE:
            size = min(size, (((1 << 32) - 1) >> (bits - 9)) << bits)
        return size

    @property
    def bitmap_max_size(self) -> int:
        """s_bitmap_maxbytes: the largest block-mapped (indirect) file."""
        return super()._max_file_size()

    def _check_mountable(self) -> None:
        """Refuse a journal this driver cannot leave consistent (one with
        transactions to replay, an external one, or none where one should
        be) and an orphan file it cannot read."""
        sb = self.sb
        if sb.feature_compat & X.COMPAT_HAS_JOURNAL:
            self.jnl = self._check_journal()
        try:
            self.orphans = Orphans(self)      # ext4_init_orphan_info
        except KernelError as e:
            raise self._refuse(f"get orphan inode failed: {e}", e.errno) from e

    def _check_journal(self) -> Journal:
        sb = self.sb
        if sb.journal_inum == 0:
            raise self._refuse("external journals are not supported")
        if not sb.first_data_block < sb.journal_inum <= sb.inodes_count:
            raise self._refuse(f"bad journal inode {sb.journal_inum}", E.EUCLEAN)
        try:
            jnl = open_journal(self)
        except KernelError as e:
            raise self._refuse(f"no usable journal: {e}", E.EUCLEAN) from e
        if jnl.tail:
            raise self._refuse("the journal is not empty and needs recovery: "
                               "run e2fsck or mount it in Linux first")
        return jnl

    def _while_mounted(self) -> None:
        """With a journal (ext4_setup_super): needs_recovery set, the state
        left as it is, and from now on metadata goes through the log."""
        if self.jnl is None:
            super()._while_mounted()
            return
        self.journal = MetadataJournal(self, self.jnl, self.sched, self.commit_s)
        if self.name == "ext4" and self.delalloc_opt and \
                not self.sb.default_mount_opts & DEFM_NODELALLOC:
            self.delalloc = DelayedAlloc(self)
        self.sb.feature_incompat |= L.INCOMPAT_RECOVER
        if self.sb.feature_compat & X.COMPAT_ORPHAN_FILE:
            self.sb.feature_ro_compat |= X.RO_COMPAT_ORPHAN_PRESENT

    def _write_metadata(self, durable: bool) -> None:
        """Journalled: one transaction of every dirty block and the
        superblock.  A write-back that need not be durable (munmap, exit)
        leaves the metadata to the next commit, as Linux's page writeback."""
        if self.journal is None:
            super()._write_metadata(durable)
        elif durable:
            self.journal.stage_super()
            self.bcache.flush(self.journal.commit)

    def statfs(self) -> dict:
        """ext4_statfs: blocks promised to delayed writes are not free."""
        st = super().statfs()
        if self.delalloc is not None:
            promised = self.delalloc.reserved
            st.update(bfree=max(0, st["bfree"] - promised), bavail=max(0, st["bavail"] - promised))
        return st

    def _mark_clean(self) -> None:
        """ext4_put_super, ext4_mark_recovery_complete: the last commit,
        the journal checkpointed and empty, then needs_recovery cleared
        in place."""
        if self.journal is None:
            super()._mark_clean()
            return
        self.sync()
        self.delalloc = None
        self.journal.close()
        self.journal = None
        self.sb.state = self._mount_state
        self.sb.feature_incompat &= ~L.INCOMPAT_RECOVER
        if self.orphans.file is None or self.orphans.file.empty():
            self.sb.feature_ro_compat &= ~X.RO_COMPAT_ORPHAN_PRESENT
        self._write_super()
        self.device.flush()

    def set_read_only(self, ro: bool) -> None:
        """ext4_remount: read-write again only once the orphans are dealt
        with, never after an abort (EROFS)."""
        if not ro and self.aborted:
            raise KernelError(E.EROFS)
        if not ro and self.read_only and self.orphans.unprocessed():
            self.msg("Couldn't remount RDWR because of unprocessed orphan inode list.  "
                     "Please umount/remount instead", printk.pr_warn)
            raise KernelError(E.EINVAL)
        super().set_read_only(ro)

    @property
    def gdt_count(self) -> int:
        return self._gdt_count

    @property
    def itable_blocks(self) -> int:
        return -(-self.sb.inodes_per_group * self.inode_size // self.block_size)

    def error(self, msg: str, errno: int = E.EUCLEAN, inode=None) -> KernelError:
        """A corrupt structure found (__ext4_error, ext4_error_inode): one
        log line, FAN_FS_ERROR to whoever watches the filesystem (about
        inode, when the error is one's: anything with its number and
        generation), and the error for the syscall."""
        printk.pr_err(f"EXT4-fs error (device {self.devname}): {msg}")
        fsnotify.sb_error(self, inode, errno)
        return KernelError(errno, f"{self.name}: {msg}")

    def lookup_error(self, dir_inode, ino: int, deleted: bool) -> KernelError:   # type: ignore[override]
        """ext4_lookup: an entry naming a reserved, out-of-range or freed
        inode is the directory's corruption (EFSCORRUPTED)."""
        what = "deleted inode referenced" if deleted else "bad inode number"
        return self.error(f"ext4_lookup: inode #{dir_inode.ino}: {what}: {ino}", inode=dir_inode)

    def abort(self) -> None:
        """mount -o remount,abort (ext4_abort): an error of no inode
        (ESHUTDOWN), and the filesystem read-only until it is mounted
        again."""
        self.error("ext4_reconfigure: Abort forced by user", E.ESHUTDOWN)
        self.aborted = True
        self.msg("Remounting filesystem read-only", printk.pr_crit)
        super().set_read_only(True)

    def remount_options(self, options: str) -> None:
        """The options a remount gives that change the filesystem itself."""
        if "abort" in options.split(","):
            self.abort()

    # -- bitmaps ------------------------------------------------------------------------
    def block_bitmap(self, g: int) -> bytearray:
        gd = self.gds[g]
        if self.group_csum and gd.flags & X.BG_BLOCK_UNINIT:
            bm = self.bcache.get(gd.block_bitmap)
            init_block_bitmap(self, g, bm)
            gd.flags &= ~X.BG_BLOCK_UNINIT
            self._fresh(g, gd.block_bitmap, bm)
            return bm
        bm = self.bcache.get(gd.block_bitmap)
        if self.metadata_csum and gd.block_bitmap not in self.verified:
            n = self.sb.blocks_per_group // 8
            if self._bitmap_csum(bm, n) != gd.block_bitmap_csum & self._bitmap_csum_mask():
                raise self.error(f"group {g}: bad block bitmap checksum", E.EBADMSG)
            self.verified.add(gd.block_bitmap)
        return bm

    def inode_bitmap(self, g: int) -> bytearray:
        gd = self.gds[g]
        if self.group_csum and gd.flags & X.BG_INODE_UNINIT:
            bm = self.bcache.get(gd.inode_bitmap)
            init_inode_bitmap(self, bm)
            gd.flags &= ~X.BG_INODE_UNINIT
            self._fresh(g, gd.inode_bitmap, bm)
            return bm
        bm = self.bcache.get(gd.inode_bitmap)
        if self.metadata_csum and gd.inode_bitmap not in self.verified:
            n = self.sb.inodes_per_group // 8
            if self._bitmap_csum(bm, n) != gd.inode_bitmap_csum & self._bitmap_csum_mask():
                raise self.error(f"group {g}: bad inode bitmap checksum", E.EBADMSG)
            self.verified.add(gd.inode_bitmap)
        return bm

    def _fresh(self, g: int, blk: int, bm: bytearray) -> None:
        self.bcache.mark_dirty(blk, bm)
        self.verified.add(blk)
        self.gd_dirty(g)

    def _bitmap_csum(self, bm: bytearray, n: int) -> int:
        return csum.bitmap(self.csum_seed, memoryview(bm)[:n]) & self._bitmap_csum_mask()

    def _bitmap_csum_mask(self) -> int:
        """Only the low 16 bits live in a 32-byte descriptor."""
        return 0xFFFFFFFF if self.desc_size >= X.GroupDesc64.SIZE else 0xFFFF

    # -- inodes -------------------------------------------------------------------------
    def _checked_slot(self, ino: int) -> bytes:
        raw = self._slot(ino)
        if self.metadata_csum and raw.count(0) != len(raw):
            stored, calc = self._inode_csum(ino, raw)
            if stored != calc:
                raise self.error(f"inode #{ino}: checksum invalid", E.EBADMSG)
        return raw

    def _has_csum_hi(self, raw: bytes | bytearray) -> bool:
        """i_checksum_hi exists when i_extra_isize covers it."""
        return self.inode_size > L.GOOD_OLD_INODE_SIZE and \
            L.U16.unpack_from(raw, L.EXTRA_ISIZE_OFF)[0] >= 4

    def _inode_csum(self, ino: int, raw: bytes | bytearray) -> tuple[int, int]:
        """(stored, computed) checksum of an on-disk inode."""
        gen = L.U32.unpack_from(raw, 100)[0]
        has_hi = self._has_csum_hi(raw)
        c = csum.inode(csum.inode_seed(self.csum_seed, ino, gen), raw, has_hi)
        stored = L.U16.unpack_from(raw, X.INODE_CSUM_LO)[0]
        if has_hi:
            return stored | L.U16.unpack_from(raw, X.INODE_CSUM_HI)[0] << 16, c
        return stored, c & 0xFFFF

    def iget(self, ino: int) -> Ext4Inode:
        if ino not in self.icache and 1 <= ino <= self.sb.inodes_count:
            raw = self._checked_slot(ino)
            mode, links = L.INODE_HEAD.unpack_from(raw, L.INODE_HEAD_OFF)[0:9:8]
            if links and mode & C.S_IFMT not in _FILE_TYPES and ino != X.BOOT_LOADER_INO:
                gen = L.U32.unpack_from(raw, 100)[0]
                raise self.error(f"__ext4_iget: inode #{ino}: iget: bogus i_mode ({mode:o})",
                                 inode=_Named(ino, gen))
        return super().iget(ino)    # type: ignore[return-value]

    def orphan_iget(self, ino: int) -> Ext4Inode:
        """An inode the orphan list names (in range and in use: the caller
        checked): loaded even with no link, its i_dtime the next orphan."""
        inode = self.icache.get(ino)
        if inode is None:
            inode = self.inode_class(self, ino, self._checked_slot(ino))
            if inode.mode == 0:
                raise KernelError(E.ESTALE, "deleted inode")
            self.cache_inode(inode)
        return inode    # type: ignore[return-value]

    def inode_bytes(self, inode: Ext4Inode) -> bytes:   # type: ignore[override]
        raw = bytearray(inode.encode())
        if self.metadata_csum:
            has_hi = self._has_csum_hi(raw)
            c = csum.inode(inode.csum_seed(), raw, has_hi)      # the inode's cached seed
            L.U16.pack_into(raw, X.INODE_CSUM_LO, c & 0xFFFF)
            if has_hi:
                L.U16.pack_into(raw, X.INODE_CSUM_HI, c >> 16)
        return bytes(raw)

    # -- xattr blocks -------------------------------------------------------------------
    def xattr_block(self, blk: int) -> bytearray:
        buf = self.bcache.get(blk)
        if self.metadata_csum:
            if blk not in self.verified:
                stored = L.U32.unpack_from(buf, X.XATTR_CSUM_OFF)[0]
                if stored != csum.xattr_block(self.csum_seed, blk, buf):
                    raise self.error(f"xattr block {blk}: checksum invalid", E.EBADMSG)
            self._seal_xattr(blk)
        return buf

    def new_xattr_block(self, blk: int) -> bytearray:
        buf = self.bcache.zeroed(blk)
        if self.metadata_csum:
            self._seal_xattr(blk)
        return buf

    def _seal_xattr(self, blk: int) -> None:
        seed = self.csum_seed
        self.bcache.set_sealer(blk, lambda b: L.U32.pack_into(
            b, X.XATTR_CSUM_OFF, csum.xattr_block(seed, blk, b)))
        self.verified.add(blk)

    # -- superblock and descriptors -------------------------------------------------------
    def _encode_super(self) -> bytes:
        raw = bytearray(self.sb.pack())
        if self.metadata_csum:
            self.sb.checksum = csum.superblock(raw)
            L.U32.pack_into(raw, 1020, self.sb.checksum)
            self.sb.raw[1020:1024] = raw[1020:1024]
        return bytes(raw)

    def _encode_desc(self, g: int) -> bytes:
        gd = self.gds[g]
        if self.metadata_csum:
            if not gd.flags & X.BG_BLOCK_UNINIT:
                bm = self.bcache.get(gd.block_bitmap)
                gd.block_bitmap_csum = self._bitmap_csum(bm, self.sb.blocks_per_group // 8)
            if not gd.flags & X.BG_INODE_UNINIT:
                bm = self.bcache.get(gd.inode_bitmap)
                gd.inode_bitmap_csum = self._bitmap_csum(bm, self.sb.inodes_per_group // 8)
        if self.group_csum:
            gd.checksum = self._desc_csum(g, gd.pack())
        return gd.pack()


def mount_ext4(dev: BlockDevice, read_only: bool, name: str = "ext4",
               sched: Scheduler | None = None, commit_s: int = DEFAULT_COMMIT_S,
               delalloc: bool = True, silent: bool = False) -> Ext4Fs:
    return Ext4Fs(dev, read_only, name, sched, commit_s, delalloc, silent)
