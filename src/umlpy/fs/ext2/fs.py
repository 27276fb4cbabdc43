"""Ext2Fs: mounting, the inode cache, sync and unmount.

What Linux's fs/ext2 accepts is accepted here: INCOMPAT filetype and
meta_bg, RO_COMPAT sparse_super, large_file and btree_dir; any COMPAT
feature (an ext3 journal is otherwise left alone, as Linux's ext2 driver
does when it mounts ext3).  Other RO_COMPAT features allow a read-only
mount; other INCOMPAT features refuse the mount before anything is
written; so is a journal that needs recovery, as Linux's ext2 refuses it.
The ext3 and ext4 types (fs/ext4, built on this class) replay it first
(`_recover`, fs/ext2/journal.py), then the mount goes on from the
superblock the replay left.
"""
from __future__ import annotations

import struct

from arch_um import host
from umlpy.abi import errno as E
from umlpy.abi.consts import FILEID_INO32_GEN, FILEID_INO32_GEN_PARENT
from umlpy.block.device import BlockDevice
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2.alloc import Allocator
from umlpy.fs.ext2.bcache import BufferCache
from umlpy.fs.ext2.bmap import BlockMap, max_blocks
from umlpy.fs.ext2.dir import DirIndex, Directory
from umlpy.fs.ext2.inode import Ext2Inode
from umlpy.fs.ext2.journal import replay_journal
from umlpy.fs.ext2.xattr import block_header
from umlpy.vfs import evict, pagecache
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.vfs.inode import Filesystem, now_ns


# Ext2Inode._written of an inode allocated and not yet written: never equal
# to a disk_key(), so the first write_inode always encodes it
NEVER_WRITTEN: tuple = ()


class Ext2Error(KernelError):
    """An image this driver will not mount (as asked); errno EINVAL."""

    def __init__(self, msg: str) -> None:
        super().__init__(E.EINVAL, msg)


def check_features(sb: L.Superblock, read_only: bool) -> None:
    """Refuse what Linux's ext2 refuses, naming each feature as e2fsprogs
    does: needs_recovery too (ext2 has no journal; ext3 and ext4 replay it)."""
    bad_in = sb.feature_incompat & ~L.INCOMPAT_SUPPORTED
    bad_ro = sb.feature_ro_compat & ~L.RO_COMPAT_SUPPORTED
    ro_names = L.feature_names(L.RO_COMPAT_NAMES, "R", bad_ro)
    if bad_in:
        names = L.feature_names(L.INCOMPAT_NAMES, "I", bad_in) + ro_names
        msg = "ext2: unsupported features: " + ", ".join(names)
        if bad_in & L.INCOMPAT_RECOVER:
            msg += " (the journal needs recovery: mount it as ext3 or ext4)"
        raise Ext2Error(msg)
    if bad_ro and not read_only:
        raise Ext2Error("ext2: read-only mount only, unsupported features: " + ", ".join(ro_names))


def _check_geometry(sb: L.Superblock, dev: BlockDevice) -> None:
    if sb.rev_level > L.DYNAMIC_REV:
        raise Ext2Error(f"ext2: revision {sb.rev_level} unsupported")
    if sb.log_block_size > 6:
        raise Ext2Error("ext2: bad block size")
    bs = sb.block_size
    isz = sb.inode_size_bytes
    if isz < L.GOOD_OLD_INODE_SIZE or isz > bs or isz & (isz - 1):
        raise Ext2Error(f"ext2: bad inode size {isz}")
    if not 0 < sb.blocks_per_group <= 8 * bs or not 0 < sb.inodes_per_group <= 8 * bs:
        raise Ext2Error("ext2: bad blocks or inodes per group")
    if sb.first_data_block >= sb.blocks_count or sb.first_data_block != (1 if bs == 1024 else 0):
        raise Ext2Error("ext2: bad first data block")
    if sb.blocks_count * bs > dev.size:
        raise Ext2Error(f"ext2: bad geometry: {sb.blocks_count} blocks exceed the device")
    if sb.groups_count * sb.inodes_per_group != sb.inodes_count:
        raise Ext2Error("ext2: inode count does not match the groups")
    if sb.first_inode < L.GOOD_OLD_FIRST_INO or sb.first_inode > sb.inodes_count:
        raise Ext2Error("ext2: bad first inode")


class Ext2Fs(Filesystem):
    """The ext2 driver; fs/ext4 subclasses it, overriding the hooks below
    (superblock_class, allocator_class, dir_class, _accept_super, _desc_size,
    _make_desc, _make_bmap, _max_file_size, _check_mountable, inode_bytes,
    block_bitmap, inode_bitmap, xattr_block, new_xattr_block, _encode_super,
    _encode_desc) where the on-disk format differs."""
    statx_attributes = 0x20 | 0x4 | 0x800 | 0x10 | 0x40    # append, compressed, encrypted, immutable, nodump
    name = "ext2"
    magic = L.MAGIC
    direct_io = True
    inodes_reclaimable = True
    superblock_class: type[L.Superblock] = L.Superblock
    allocator_class: type[Allocator] = Allocator
    dir_class: type[Directory] = DirIndex
    inode_class: type[Ext2Inode] = Ext2Inode

    def __init__(self, dev: BlockDevice, read_only: bool) -> None:
        super().__init__()
        if not read_only and dev.read_only:
            raise KernelError(E.EACCES, "ext2: the device is read-only")
        self.device = dev
        self.read_only = read_only
        self._load(self._read_super(dev, read_only))
        if self.sb.feature_incompat & L.INCOMPAT_RECOVER:
            self._recover()
        sb = self.sb
        self._generation = now_ns() & 0xFFFFFFFF
        self._mount_state = sb.state
        self._unmounted = False
        if not sb.state & L.STATE_VALID:
            printk.pr_warn("ext2: mounting unchecked fs, running e2fsck is recommended")
        self.root = self.iget(L.ROOT_INO)
        if not self.root.is_dir:
            raise Ext2Error("ext2: root inode is not a directory")
        self._check_mountable()
        if not read_only:
            self._mark_mounted()

    @property
    def uuid(self) -> bytes:
        """s_uuid: the superblock's."""
        return self.sb.uuid

    def _read_super(self, dev: BlockDevice, read_only: bool) -> L.Superblock:
        if dev.size < L.SUPERBLOCK_OFFSET + L.SUPERBLOCK_SIZE:
            raise Ext2Error("ext2: device too small")
        sb = self.superblock_class(dev.read(L.SUPERBLOCK_OFFSET, L.SUPERBLOCK_SIZE))
        if sb.magic != L.MAGIC:
            raise Ext2Error(f"{self.name}: no {self.name} superblock (bad magic)")
        self._accept_super(sb, read_only)
        _check_geometry(sb, dev)
        return sb

    def _load(self, sb: L.Superblock) -> None:
        """The state read from the superblock and group descriptors (again
        after a journal replay, which may have rewritten any of them)."""
        self.sb = sb
        self.block_size = self.blksize = sb.block_size
        self.inode_size = sb.inode_size_bytes
        self.has_filetype = bool(sb.feature_incompat & L.INCOMPAT_FILETYPE)
        self.bcache = BufferCache(self.device, self.block_size)
        self.desc_size = self._desc_size(sb)
        self._desc_per_block = self.block_size // self.desc_size
        self._gdt_count = -(-sb.groups_count // self._desc_per_block)
        self.gds = self._read_gdt()
        self._gds_dirty: set[int] = set()
        self.alloc = self.allocator_class(self)
        self.bmap = self._make_bmap()
        self.max_file_size = self._max_file_size()
        self.new_extra_isize = self._choose_extra_isize()
        self.icache: dict[int, Ext2Inode] = {}
        self._icache_high = evict.icache_limit     # past it, a shrink is due

    def _recover(self) -> None:
        """Replay the journal (ext4_load_journal), read what it left, and
        clear needs_recovery; an error the journal recorded marks the
        filesystem as having errors (ext4_clear_journal_err).  Only the
        ext3/ext4 types get here: ext2's feature check refuses first."""
        err = replay_journal(self)
        self._load(self._read_super(self.device, self.read_only))
        self.sb.feature_incompat &= ~L.INCOMPAT_RECOVER
        if err:
            printk.pr_warn(f"{self.name}: filesystem error recorded from previous mount: {err}; "
                           "marking fs in need of filesystem check")
            self.sb.state |= L.STATE_ERROR
        self._write_super()
        self.device.flush()
        printk.pr_info(f"{self.name}: recovery complete")

    # -- what a subclass for another on-disk format changes -----------------------
    def _accept_super(self, sb: L.Superblock, read_only: bool) -> None:
        """Refuse (Ext2Error) a superblock this driver does not mount."""
        check_features(sb, read_only)

    def _desc_size(self, sb: L.Superblock) -> int:
        return L.GroupDesc.SIZE

    def _make_desc(self, g: int, raw: bytes) -> L.GroupDesc:
        return L.GroupDesc(raw)

    def _make_bmap(self) -> BlockMap:
        return BlockMap(self)

    def _max_file_size(self) -> int:
        size = max_blocks(self.block_size // 4, self.block_size) * self.block_size
        return min(size, 0x7FFFFFFF) if self.sb.rev_level == L.GOOD_OLD_REV else size

    def _check_mountable(self) -> None:
        """Last look before anything is written (ext4: its journal)."""

    def block_bitmap(self, g: int) -> bytearray:
        """Group g's block bitmap in the cache (mark_dirty after changing it)."""
        return self.bcache.get(self.gds[g].block_bitmap)

    def inode_bitmap(self, g: int) -> bytearray:
        return self.bcache.get(self.gds[g].inode_bitmap)

    def xattr_block(self, blk: int) -> bytearray:
        """An EA block (in range: the caller checked), as the cache has it."""
        return self.bcache.get(blk)

    def new_xattr_block(self, blk: int) -> bytearray:
        """A just-allocated EA block, zeroed, to be filled by the caller."""
        return self.bcache.zeroed(blk)

    def inode_bytes(self, inode: Ext2Inode) -> bytes:
        """The inode as its slot in the table should hold it."""
        return inode.encode()

    def _encode_super(self) -> bytes:
        return self.sb.pack()

    def _encode_desc(self, g: int) -> bytes:
        return self.gds[g].pack()

    # -- geometry ---------------------------------------------------------------
    def _gdt_block(self, j: int) -> int:
        """Where descriptor block j lives (meta_bg moves later ones into their groups)."""
        sb = self.sb
        if not sb.feature_incompat & L.INCOMPAT_META_BG or j < sb.first_meta_bg:
            return sb.first_data_block + 1 + j
        g = j * self._desc_per_block
        return sb.group_first_block(g) + (1 if sb.has_super(g) else 0)

    def _read_gdt(self) -> list[L.GroupDesc]:
        sb, size = self.sb, self.desc_size
        out = []
        for j in range(self._gdt_count):
            buf = self.bcache.get(self._gdt_block(j))
            for k in range(min(self._desc_per_block, sb.groups_count - j * self._desc_per_block)):
                gd = self._make_desc(len(out), bytes(buf[k * size:(k + 1) * size]))
                itb = -(-sb.inodes_per_group * self.inode_size // self.block_size)
                for blk in (gd.block_bitmap, gd.inode_bitmap):
                    if not sb.first_data_block <= blk < sb.blocks_count:
                        raise Ext2Error(f"ext2: group {len(out)} has a bad bitmap block")
                if not sb.first_data_block <= gd.inode_table <= sb.blocks_count - itb:
                    raise Ext2Error(f"ext2: group {len(out)} has a bad inode table")
                out.append(gd)
        return out

    def _choose_extra_isize(self) -> int:
        """i_extra_isize of new large inodes: what mke2fs asks for (32 by default)."""
        room = self.inode_size - L.GOOD_OLD_INODE_SIZE
        if room < 4:
            return 0
        want = self.sb.want_extra_isize or self.sb.min_extra_isize or 32
        return min(want, room) & ~3

    def inode_loc(self, ino: int) -> tuple[int, int]:
        """(block, byte offset in it) of inode ino in its group's table."""
        g, idx = divmod(ino - 1, self.sb.inodes_per_group)
        byte = idx * self.inode_size
        return self.gds[g].inode_table + byte // self.block_size, byte % self.block_size

    # -- inode cache --------------------------------------------------------------
    def _slot(self, ino: int) -> bytes:
        blk, off = self.inode_loc(ino)
        return bytes(self.bcache.get(blk)[off:off + self.inode_size])

    def iget(self, ino: int) -> Ext2Inode:
        inode = self.icache.get(ino)
        if inode is not None:
            return inode
        if not 1 <= ino <= self.sb.inodes_count:
            raise KernelError(E.EIO, f"ext2: bad inode number {ino}")
        inode = self.inode_class(self, ino, self._slot(ino))
        if inode.nlink == 0 and (inode.mode == 0 or inode.dtime):
            raise KernelError(E.ESTALE, f"ext2: deleted inode {ino} referenced")
        return self.cache_inode(inode)

    def valid_inum(self, ino: int) -> bool:
        """A number a directory entry may hold: the root's, or past the
        reserved inodes and within the table (ext2/ext4_valid_inum)."""
        return ino == L.ROOT_INO or self.sb.first_inode <= ino <= self.sb.inodes_count

    def lookup_error(self, dir_inode: Ext2Inode, ino: int, deleted: bool) -> KernelError:
        """ext2_lookup: an entry naming a freed inode is EIO, one naming a
        reserved or out-of-range number EINVAL (ext2_get_inode's); each
        with ext2_error's line."""
        if deleted:
            printk.pr_err(f"EXT2-fs ({self.device.name}): error: ext2_lookup: deleted inode referenced: {ino}")
            return KernelError(E.EIO)
        printk.pr_err(f"EXT2-fs ({self.device.name}): error: ext2_get_inode: bad inode number: {ino}")
        return KernelError(E.EINVAL)

    def cache_inode(self, inode: Ext2Inode) -> Ext2Inode:
        """inode into the inode cache; past its bound, a shrink is due."""
        self.icache[inode.ino] = inode
        if len(self.icache) > self._icache_high:
            evict.pressure()
        return inode

    def shrink_icache(self, keep: set[int]) -> None:
        """Evict the cached inodes that nothing but the cache holds (vfs/
        evict.py): clean (their bytes in the inode table), linked, with no
        page cache (vfs/pagecache.py lets those go) nor other state of
        their own; keep: the ids of those a dentry or a user holds, whose
        caches stay as they are.  If most are held, the next shrink waits
        until the cache has grown by half the limit again."""
        if self._unmounted:
            return
        root = L.ROOT_INO
        for ino in list(self.icache):
            inode = self.icache[ino]
            if ino == root or id(inode) in keep or not inode.evictable():
                continue
            if not self.read_only:
                self.write_inode(inode)
            inode.drop_parsed()     # a directory's parsed blocks refer back to it
            if host.refcount(inode) == 2:       # the cache and this variable
                del self.icache[ino]
        inode = None
        self._icache_high = max(evict.icache_limit, len(self.icache) + evict.icache_limit // 2)

    def new_inode(self, parent: Ext2Inode, mode: int, uid: int, gid: int) -> Ext2Inode:
        ino = self.alloc.alloc_inode(parent.ino, mode & 0o170000 == 0o040000)
        inode = self.inode_class(self, ino, bytes(self.inode_size))
        inode._disk = self._slot(ino)
        inode._written = NEVER_WRITTEN
        inode.init_new(mode, uid, gid, parent)
        return self.cache_inode(inode)

    def write_inode(self, inode: Ext2Inode) -> None:
        if inode._written is not None and inode.disk_key() == inode._written:
            return      # nothing encode() reads changed since it was written
        data = self.inode_bytes(inode)
        if data != inode._disk:
            blk, off = self.inode_loc(inode.ino)
            buf = self.bcache.get(blk)
            buf[off:off + self.inode_size] = data
            self.bcache.mark_dirty(blk, buf)
            inode._disk = data
        inode._written = inode.disk_key()

    def drop_caches(self, in_use) -> None:
        """drop_pagecache_sb, then the disk's clean buffers."""
        if self._unmounted:
            return
        for inode in list(self.icache.values()):
            if inode._mem is not None and not in_use(inode):
                inode.drop_page_cache()
        self.bcache.drop_clean()

    def forget_inode(self, inode: Ext2Inode) -> None:
        """The inode was freed: store its last state and give its number back.
        One made since the last commit and never written is not: its slot
        still holds what it held as a free inode (zeros, or a freed inode's
        last state), so a short-lived file costs no inode encoding at all."""
        if inode._written is not NEVER_WRITTEN:
            self.write_inode(inode)
        self.alloc.free_inode(inode.ino, inode.is_dir)
        if self.icache.get(inode.ino) is inode:
            del self.icache[inode.ino]

    def encode_fh(self, inode) -> tuple[int, bytes]:
        """export_encode_fh: FILEID_INO32_GEN, the inode number and generation."""
        return FILEID_INO32_GEN, struct.pack("<II", inode.ino, inode.generation)

    def fh_to_inode(self, fh_type: int, fh: bytes) -> Ext2Inode:
        """generic_fh_to_dentry with ext2_nfs_get_inode: a number past the
        reserved ones (or the root's), in range, of a live inode whose
        generation matches (0 matches any); ESTALE otherwise."""
        if fh_type not in (FILEID_INO32_GEN, FILEID_INO32_GEN_PARENT) or len(fh) < 8:
            raise KernelError(E.ESTALE)
        ino, gen = struct.unpack_from("<II", fh)
        if ino < self.sb.first_inode and ino != L.ROOT_INO or ino > self.sb.inodes_count:
            raise KernelError(E.ESTALE)
        inode = self.iget(ino)
        if gen and inode.generation != gen:
            raise KernelError(E.ESTALE)
        return inode

    def next_generation(self) -> int:
        self._generation = (self._generation + 1) & 0xFFFFFFFF
        return self._generation

    def release_xattr_block(self, blk: int) -> None:
        """Drop one reference to a shared extended-attribute block; free it with the last."""
        if not self.sb.first_data_block <= blk < self.sb.blocks_count:
            return
        buf = self.xattr_block(blk)
        hdr = block_header(buf)
        if hdr is None:
            printk.pr_warn(f"ext2: xattr block {blk} has a bad header")
            return
        refcount = hdr[0]
        if refcount > 1:
            L.U32.pack_into(buf, 4, refcount - 1)
            self.bcache.mark_dirty(blk, buf)
        else:
            self.bcache.forget(blk)
            self.alloc.free_blocks([blk])

    # -- dirty state ----------------------------------------------------------
    def gd_dirty(self, g: int) -> None:
        self._gds_dirty.add(g)

    def note_large_file(self) -> None:
        if not self.sb.feature_ro_compat & L.RO_COMPAT_LARGE_FILE:
            self._update_dynamic_rev()
            self.sb.feature_ro_compat |= L.RO_COMPAT_LARGE_FILE

    def note_ext_attr(self) -> None:
        """An EA block was written: say so, as ext2_xattr_update_super_block does."""
        if not self.sb.feature_compat & L.COMPAT_EXT_ATTR:
            self._update_dynamic_rev()
            self.sb.feature_compat |= L.COMPAT_EXT_ATTR

    def _update_dynamic_rev(self) -> None:
        """Feature bits mean nothing in revision 0: move to revision 1 first, as Linux does."""
        sb = self.sb
        if sb.rev_level != L.GOOD_OLD_REV:
            return
        printk.pr_warn("ext2: updating to revision 1 because of a new feature flag")
        sb.first_ino = L.GOOD_OLD_FIRST_INO
        sb.inode_size = L.GOOD_OLD_INODE_SIZE
        sb.rev_level = L.DYNAMIC_REV

    def check_rw(self) -> None:
        if self.read_only:
            raise KernelError(E.EROFS)

    def _mark_mounted(self) -> None:
        """Linux's ext2 at a read-write mount: not clean while mounted, count it."""
        sb = self.sb
        self._while_mounted()
        sb.mnt_count = (sb.mnt_count + 1) & 0xFFFF
        sb.mtime = now_ns() // 10**9
        self._write_super()
        self.device.flush()

    def _while_mounted(self) -> None:
        """What the superblock says while mounted read-write: ext2 has no
        journal, so "not clean" (ext4's journal says needs_recovery instead)."""
        self.sb.state &= ~L.STATE_VALID & 0xFFFF

    def _mark_clean(self) -> None:
        """Unmount and remount read-only: everything written, the state
        back to what it was at mount."""
        self.sb.state = self._mount_state
        self.sync()

    def _write_super(self) -> None:
        self.sb.wtime = now_ns() // 10**9
        self.device.write(L.SUPERBLOCK_OFFSET, self._encode_super())

    def _store_gdt(self) -> None:
        size = self.desc_size
        for g in sorted(self._gds_dirty):
            j, k = divmod(g, self._desc_per_block)
            blk = self._gdt_block(j)
            buf = self.bcache.get(blk)
            buf[k * size:(k + 1) * size] = self._encode_desc(g)
            self.bcache.mark_dirty(blk, buf)
        self._gds_dirty.clear()

    # -- the Filesystem interface -------------------------------------------------
    def statfs(self) -> dict:
        sb = self.sb
        itb = -(-sb.inodes_per_group * self.inode_size // self.block_size)
        # Linux's ext2_statfs: metadata does not count as blocks of the fs
        overhead = sb.first_data_block + sb.groups_count * (2 + itb)
        overhead += sum(1 + self._gdt_count for g in range(sb.groups_count) if sb.has_super(g))
        st = super().statfs()
        st.update(bsize=self.block_size, blocks=sb.blocks_count - overhead,
                  bfree=sb.free_blocks_count,
                  bavail=max(0, sb.free_blocks_count - sb.r_blocks_count),
                  files=sb.inodes_count, ffree=sb.free_inodes_count, namelen=L.NAME_LEN)
        return st

    def sync(self, durable: bool = True) -> None:
        """Write back everything dirty: pages of shared maps, inodes, metadata,
        counts; durable: and fsync the image (a plain write-back leaves the
        data in the host's page cache, which survives this process)."""
        if self.read_only or self._unmounted:
            return
        for inode in list(self.icache.values()):
            inode.writeback()
        self.commit(durable)

    def commit(self, durable: bool = True) -> None:
        """Metadata to the device: inodes into their table blocks, the
        descriptors, every dirty block, the superblock (ext4's journal
        overrides _write_metadata: all of it in one transaction)."""
        if self.read_only or self._unmounted:
            return
        for inode in list(self.icache.values()):
            self.write_inode(inode)
        self._store_gdt()
        self._write_metadata(durable)

    def _write_metadata(self, durable: bool) -> None:
        """The dirty blocks and the superblock, home at once; durable: and flushed."""
        self.bcache.flush()
        self._write_super()
        if durable:
            self.device.flush()

    def unmount(self) -> None:
        if self._unmounted:
            return
        if not self.read_only:
            for inode in list(self.icache.values()):
                if inode.nlink <= 0:
                    inode.release()     # unlinked while open: nobody can reach it now
            self._mark_clean()
        for inode in self.icache.values():
            if inode._mem is not None:
                inode._mem.close()
                inode._mem = None
                pagecache.cache.forget(inode)
        self._unmounted = True
        self.read_only = True

    def set_read_only(self, ro: bool) -> None:
        """mount -o remount,ro / rw."""
        if ro == self.read_only:
            return
        if ro:
            self._mark_clean()
            self.read_only = True
            return
        self._accept_super(self.sb, False)
        if self.device.read_only:
            raise KernelError(E.EACCES)
        self.read_only = False
        self._mount_state = self.sb.state
        self._mark_mounted()


def mount_ext2(dev: BlockDevice, read_only: bool) -> Ext2Fs:
    return Ext2Fs(dev, read_only)
