"""Ext2Inode: one on-disk inode behind the VFS Inode interface.

The VFS assigns mode/uid/gid/nlink/times directly, so an Ext2Inode keeps
them as plain attributes and the filesystem compares the serialized inode
with what is on disk at sync time.  The object for an inode number is
unique (the filesystem's inode cache), which hard links and dentries rely
on.  Data goes through the block map (bmap.py), directories through an
in-memory index of their blocks (dir.py).
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Callable, Iterator

from arch_um.hostfile import HostFdsExhausted, MemFile
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2 import xattr
from umlpy.fs.ext2.bcache import extents, runs
from umlpy.fs.ext2.dir import Directory
from umlpy.vfs import pagecache
from umlpy.kernel import ioac
from umlpy.kernel.errors import KernelError
from umlpy.vfs.fiemap import FIEMAP_EXTENT_MERGED, FiemapInfo
from umlpy.vfs.inode import Inode, now_ns

if TYPE_CHECKING:
    from umlpy.fs.ext2.fs import Ext2Fs

_IBLOCK = struct.Struct("<15I")
FAST_SYMLINK_MAX = 59       # the target and its NUL must fit in i_block's 60 bytes
_RENAME_FLAGS = C.RENAME_NOREPLACE | C.RENAME_EXCHANGE

SEEK_CHUNK = 4096      # blocks of the map looked at per step of a SEEK_DATA/SEEK_HOLE walk


class Ext2Inode(Inode):
    link_max = L.LINK_MAX       # links an inode may have

    def __init__(self, fs: Ext2Fs, ino: int, raw: bytes) -> None:
        super().__init__(fs, 0, ino=ino)
        self.fs: Ext2Fs = fs
        self._disk = bytes(raw)            # the inode as the device has it now
        self._written: tuple | None = None  # disk_key() when _disk was last made from it
        self._raw = bytearray(raw)         # template: bytes we do not model survive
        self._dir: Directory | None = None
        self._mem: MemFile | None = None
        self.shared_mapped = False
        self._freed = False
        self._goal = 0
        self._decode()

    # -- (de)serialization ------------------------------------------------------
    @property
    def extra_isize(self) -> int:
        if len(self._raw) <= L.GOOD_OLD_INODE_SIZE:
            return 0
        v = L.U16.unpack_from(self._raw, L.EXTRA_ISIZE_OFF)[0]
        return v if v & 3 == 0 and v <= len(self._raw) - L.GOOD_OLD_INODE_SIZE else 0

    def _decode(self) -> None:
        raw, ei = self._raw, self.extra_isize
        mode, uid, size, atime, ctime, mtime, dtime, gid, links, blocks, flags = \
            L.INODE_HEAD.unpack_from(raw, L.INODE_HEAD_OFF)
        *block, self.generation, self.file_acl = L.INODE_MAP.unpack_from(raw, L.INODE_MAP_OFF)
        uid_high, gid_high = L.INODE_IDS_HIGH.unpack_from(raw, L.INODE_IDS_HIGH_OFF)
        self.mode = mode
        self.uid = uid | uid_high << 16
        self.gid = gid | gid_high << 16
        self.nlink = links
        self.flags = flags
        self.block = block
        self.dtime = dtime
        self.atime = L.decode_time(atime, L.extra_get(raw, ei, "atime_extra"))
        self.mtime = L.decode_time(mtime, L.extra_get(raw, ei, "mtime_extra"))
        self.ctime = L.decode_time(ctime, L.extra_get(raw, ei, "ctime_extra"))
        self._size = size | (L.U32.unpack_from(raw, L.INODE_SIZE_HIGH_OFF)[0] << 32 if self.is_reg else 0)
        self.i_blocks = blocks
        if self.fs.sb.feature_ro_compat & L.RO_COMPAT_HUGE_FILE:
            self.i_blocks |= L.U16.unpack_from(raw, L.INODE_BLOCKS_HI_OFF)[0] << 32
            if self.flags & L.FL_HUGE_FILE:
                self.i_blocks *= self.fs.block_size // 512
        self.rdev = 0
        if self.fmt in (C.S_IFCHR, C.S_IFBLK):
            self.rdev = structs.makedev(*L.decode_rdev(self.block[0], self.block[1]))

    def encode(self) -> bytes:
        """The inode as it should be on disk now: the fields this code models
        written over the bytes as last read or written (the rest kept)."""
        raw, ei = self._raw, self.extra_isize
        size = self.disk_size()
        a_lo, a_extra = L.encode_time(self.atime)
        c_lo, c_extra = L.encode_time(self.ctime)
        m_lo, m_extra = L.encode_time(self.mtime)
        blocks = self.i_blocks
        huge = self.flags & L.FL_HUGE_FILE      # i_blocks in fs blocks: the disk's words stay
        L.INODE_HEAD.pack_into(
            raw, L.INODE_HEAD_OFF, self.mode & 0xFFFF, self.uid & 0xFFFF, size & 0xFFFFFFFF, a_lo, c_lo, m_lo,
            self.dtime & 0xFFFFFFFF, self.gid & 0xFFFF, min(max(self.nlink, 0), 0xFFFF),
            L.U32.unpack_from(raw, L.INODE_BLOCKS_OFF)[0] if huge else blocks & 0xFFFFFFFF, self.flags)
        L.INODE_MAP.pack_into(raw, L.INODE_MAP_OFF, *self.block, self.generation, self.file_acl)
        if self.is_reg:
            L.U32.pack_into(raw, L.INODE_SIZE_HIGH_OFF, size >> 32)
        if not huge and self.fs.sb.feature_ro_compat & L.RO_COMPAT_HUGE_FILE:
            L.U16.pack_into(raw, L.INODE_BLOCKS_HI_OFF, blocks >> 32)
        L.INODE_IDS_HIGH.pack_into(raw, L.INODE_IDS_HIGH_OFF, (self.uid >> 16) & 0xFFFF, (self.gid >> 16) & 0xFFFF)
        L.extra_set(raw, ei, "atime_extra", a_extra)
        L.extra_set(raw, ei, "ctime_extra", c_extra)
        L.extra_set(raw, ei, "mtime_extra", m_extra)
        return bytes(raw)

    def disk_key(self) -> tuple:
        """Everything encode() reads: equal keys, equal bytes.  A commit
        writes every cached inode that changed, and telling an unchanged one
        by this costs a tenth of encoding it (and its checksum) again."""
        return (self.mode, self.uid, self.gid, self.nlink, self.disk_size(), self.atime, self.mtime,
                self.ctime, self.dtime, self.flags, self.i_blocks, tuple(self.block),
                self.generation, self.file_acl, bytes(self._raw))

    def init_new(self, mode: int, uid: int, gid: int, parent: Ext2Inode) -> None:
        """Fields of a just-allocated inode (its slot was zeroed by the caller)."""
        fs = self.fs
        self.mode, self.uid, self.gid = mode, uid, gid
        self.nlink = 1
        t = now_ns()
        self.atime = self.mtime = self.ctime = t
        self.generation = fs.next_generation()
        inherit = parent.flags & L.FL_INHERITED       # as Linux's ext2_mask_flags
        if self.is_reg:
            inherit &= ~L.FL_DIR_ONLY
        elif not self.is_dir:
            inherit &= L.FL_OTHER
        self.flags = inherit
        ei = fs.new_extra_isize
        if ei:
            L.U16.pack_into(self._raw, L.EXTRA_ISIZE_OFF, ei)
            lo, extra = L.encode_time(t)
            L.extra_set(self._raw, ei, "crtime", lo)
            L.extra_set(self._raw, ei, "crtime_extra", extra)

    # -- attributes -------------------------------------------------------------
    def size(self) -> int:
        return self._size

    def blocks(self) -> int:
        return self.i_blocks

    def set_size(self, size: int) -> None:
        self._size = size
        if self.is_reg and size > 0x7FFFFFFF:
            self.fs.note_large_file()

    def disk_size(self) -> int:
        """The size the inode has on the disk (ext4's delayed blocks keep it back)."""
        return self._size

    def goal(self) -> int:
        """Where the next block of this inode should go: after its last one."""
        return self._goal or self.home_block()

    def home_block(self) -> int:
        """The first block of the inode's group, where Linux starts looking."""
        sb = self.fs.sb
        return sb.group_first_block((self.ino - 1) // sb.inodes_per_group)

    def set_goal(self, blk: int) -> None:
        self._goal = blk

    def _is_fast_symlink(self) -> bool:
        ea = self.fs.block_size // 512 if self.file_acl else 0
        return self.is_symlink and self.i_blocks - ea == 0

    def _has_blocks(self) -> bool:
        return self.is_reg or self.is_dir or (self.is_symlink and not self._is_fast_symlink())

    def _check_mutable(self, append_at: int | None = None) -> None:
        """chattr +i / +a, which Linux's VFS enforces with EPERM: here the fs must."""
        if self.flags & L.FL_IMMUTABLE or \
                (self.flags & L.FL_APPEND and (append_at is None or append_at != self._size)):
            raise KernelError(E.EPERM)

    # -- directories ------------------------------------------------------------
    def _dirx(self) -> Directory:
        if not self.is_dir:
            raise KernelError(E.ENOTDIR)
        if self._dir is None:
            self._dir = self.fs.dir_class(self)
        return self._dir

    def lookup(self, name: bytes) -> Inode | None:
        e = self._dirx().get(name)
        if e is None:
            return None
        fs = self.fs
        if not fs.valid_inum(e.ino):
            raise fs.lookup_error(self, e.ino, False)
        try:
            return fs.iget(e.ino)
        except KernelError as err:
            if err.errno == E.ESTALE:
                raise fs.lookup_error(self, e.ino, True) from None
            raise

    def entries(self) -> list[tuple[bytes, int, int]]:
        return self._dirx().listing()

    def readdir(self, pos: int) -> Iterator[tuple[bytes, int, int, int]] | None:
        return self._dirx().cookies(pos)

    def _check_new_name(self, name: bytes) -> Directory:
        self.fs.check_rw()
        d = self._dirx()
        if self.nlink == 0:
            raise KernelError(E.ENOENT)
        if self.flags & L.FL_IMMUTABLE:
            raise KernelError(E.EPERM)
        if len(name) > L.NAME_LEN:
            raise KernelError(E.ENAMETOOLONG)
        if name in (b".", b"..") or d.get(name) is not None:
            raise KernelError(E.EEXIST)
        return d

    def _new_child(self, name: bytes, mode: int, uid: int, gid: int, setup) -> Ext2Inode:
        """Allocate an inode, let setup() fill it, then link it under name."""
        d = self._check_new_name(name)
        is_dir = mode & C.S_IFMT == C.S_IFDIR
        if is_dir and self._dir_links_full():
            raise KernelError(E.EMLINK)
        child = self.fs.new_inode(self, mode, uid, gid)
        try:
            setup(child)
            d.add(name, child.ino, L.ft_of_mode(mode))
        except BaseException:
            child.nlink = 0
            child.release()
            raise
        if is_dir:
            self._dir_link(1)
        self.touch()
        return child

    def create(self, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0) -> Inode:
        fmt = mode & C.S_IFMT or C.S_IFREG
        if fmt == C.S_IFLNK:
            raise KernelError(E.EINVAL)
        mode = fmt | (mode & 0o7777)

        def setup(child: Ext2Inode) -> None:
            if fmt == C.S_IFDIR:
                child.nlink = 2
                self.fs.dir_class.format_new(child, child._alloc_single(), self.ino)
                child.set_size(self.fs.block_size)
            elif fmt in (C.S_IFCHR, C.S_IFBLK):
                child.rdev = rdev
                child.block[0], child.block[1] = L.encode_rdev(structs.major(rdev),
                                                               structs.minor(rdev))
        return self._new_child(name, mode, uid, gid, setup)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        if len(target) + 1 > self.fs.block_size:
            raise KernelError(E.ENAMETOOLONG)

        def setup(child: Ext2Inode) -> None:
            if len(target) <= FAST_SYMLINK_MAX:
                child._set_fast_symlink(target)
            else:
                blk = child._alloc_single()
                self.fs.bcache.zeroed(blk)[:len(target)] = target
            child.set_size(len(target))
        return self._new_child(name, C.S_IFLNK | 0o777, uid, gid, setup)

    def _set_fast_symlink(self, target: bytes) -> None:
        """A short target lives in i_block itself."""
        self.block = list(_IBLOCK.unpack(target.ljust(60, b"\0")))

    def _dir_links_full(self) -> bool:
        """Whether this directory can take no more subdirectories (EMLINK)."""
        return self.nlink >= self.link_max

    def _dir_link(self, delta: int) -> None:
        """A subdirectory's '..' came (1) or went (-1)."""
        self.nlink += delta

    def _alloc_single(self) -> int:
        got = self.fs.bmap.alloc(self, 0, 1)
        if not got:
            raise KernelError(E.ENOSPC)
        return got[0]

    def get_fsflags(self) -> int:
        return self.flags & L.FL_USER_VISIBLE

    def set_fsflags(self, flags: int, capable: Callable[[int], bool]) -> None:
        if not self.is_dir:
            flags &= L.FL_REG_MASK
        self.flags = (self.flags & ~L.FL_USER_MODIFIABLE) | (flags & L.FL_USER_MODIFIABLE)
        self.touch(m=False)

    def tmpfile(self, mode: int, uid: int, gid: int) -> Inode:
        """As Linux's ext2_tmpfile: an allocated inode in no directory; a
        crash leaves it for e2fsck to free, as an unlinked open file."""
        self._check_mutable()
        child = self.fs.new_inode(self, C.S_IFREG | mode, uid, gid)
        child.nlink = 0
        return child

    def link(self, name: bytes, inode: Inode) -> None:
        if not isinstance(inode, Ext2Inode) or inode.fs is not self.fs:
            raise KernelError(E.EXDEV)
        d = self._check_new_name(name)
        if inode.is_dir:
            raise KernelError(E.EPERM)
        if inode.nlink >= self.link_max:
            raise KernelError(E.EMLINK)
        inode._check_mutable()
        d.add(name, inode.ino, L.ft_of_mode(inode.mode))
        inode.nlink += 1
        inode.touch(m=False)
        self.touch()

    def _child(self, name: bytes) -> Ext2Inode:
        """The inode name leads to, about to lose that name (unlink, rmdir, rename)."""
        self.fs.check_rw()
        e = self._dirx().get(name)
        if e is None:
            raise KernelError(E.ENOENT)
        child = self.fs.iget(e.ino)
        self._check_mutable()
        child._check_mutable()
        return child

    def _drop(self, inode: Ext2Inode) -> None:
        inode.nlink = 0 if inode.is_dir else inode.nlink - 1
        inode.touch(m=False)
        if inode.nlink <= 0 and not inode.in_use:
            inode.release()

    def unlink(self, name: bytes) -> None:
        child = self._child(name)
        if child.is_dir:
            raise KernelError(E.EISDIR)
        self._dirx().remove(name)
        self.touch()
        self._drop(child)

    def rmdir(self, name: bytes) -> None:
        child = self._child(name)
        if not child.is_dir:
            raise KernelError(E.ENOTDIR)
        if not child._dirx().is_empty():
            raise KernelError(E.ENOTEMPTY)
        self._dirx().remove(name)
        self._dir_link(-1)
        self.touch()
        self._drop(child)

    def rename(self, old: bytes, newdir: Inode, new: bytes, flags: int) -> None:
        if not isinstance(newdir, Ext2Inode) or newdir.fs is not self.fs:
            raise KernelError(E.EXDEV)
        if flags & ~_RENAME_FLAGS or flags == _RENAME_FLAGS:
            raise KernelError(E.EINVAL)
        src = self._child(old)
        sd, dd = self._dirx(), newdir._dirx()
        if newdir.nlink == 0:
            raise KernelError(E.ENOENT)
        if len(new) > L.NAME_LEN:
            raise KernelError(E.ENAMETOOLONG)
        de = dd.get(new)
        dst = self.fs.iget(de.ino) if de is not None else None
        if newdir.flags & L.FL_IMMUTABLE:
            raise KernelError(E.EPERM)
        if dst is not None:
            newdir._check_mutable()
            dst._check_mutable()
        moved = self is not newdir
        if flags & C.RENAME_EXCHANGE:
            if dst is None:
                raise KernelError(E.ENOENT)
            sd.retarget(old, dst.ino, L.ft_of_mode(dst.mode))
            dd.retarget(new, src.ino, L.ft_of_mode(src.mode))
            if moved:
                for node, parent in ((src, newdir), (dst, self)):
                    if node.is_dir:
                        node._dirx().retarget(b"..", parent.ino, L.FT_DIR)
                if src.is_dir != dst.is_dir:
                    delta = 1 if src.is_dir else -1
                    newdir._dir_link(delta)
                    self._dir_link(-delta)
            src.touch(m=False)
            dst.touch(m=False)
            self.touch()
            newdir.touch()
            return
        if dst is src:
            return
        if dst is not None:
            # the VFS checked NOREPLACE, dir/non-dir and emptiness (sys_file.do_rename)
            dd.retarget(new, src.ino, L.ft_of_mode(src.mode))
        else:
            if src.is_dir and moved and newdir._dir_links_full():
                raise KernelError(E.EMLINK)
            dd.add(new, src.ino, L.ft_of_mode(src.mode))
        sd.remove(old)
        if dst is not None:
            if dst.is_dir:
                newdir._dir_link(-1)
            self._drop(dst)
        if src.is_dir and moved:
            src._dirx().retarget(b"..", newdir.ino, L.FT_DIR)
            self._dir_link(-1)
            newdir._dir_link(1)
        src.touch(m=False)
        self.touch()
        newdir.touch()

    # -- data -------------------------------------------------------------------
    def direct_io(self) -> int | None:
        """ext2's address space, with its direct_IO, serves regular files
        and directories; blockdev_direct_IO settles for the disk's logical
        block size when the filesystem's is not met."""
        return self.fs.device.block_size if self.is_reg or self.is_dir else None

    def _check_data(self) -> None:
        if self.is_dir:
            raise KernelError(E.EISDIR)
        if not self.is_reg:
            raise KernelError(E.EINVAL)

    def read(self, off: int, n: int) -> bytes:
        self._check_data()
        size = self._size
        if n <= 0 or off >= size:
            return b""
        n = min(n, size - off)
        if self._mem is not None:
            return self._mem.pread(n, off)
        return self._read_disk(off, n)

    def seek_data(self, off: int, whence: int) -> int:
        """SEEK_DATA/SEEK_HOLE from the block map: a hole is a run of
        unallocated blocks (ext2 writes allocate at once), the end of the
        file the last hole; ENXIO at or past the end, or no data after off."""
        size = self._size
        if not 0 <= off < size:
            raise KernelError(E.ENXIO)
        bs = self.fs.block_size
        want_data = whence == C.SEEK_DATA
        end = (size + bs - 1) // bs
        lo = off // bs
        while lo < end:
            hi = min(end, lo + SEEK_CHUNK)
            for i, k, p in extents(self.fs.bmap.map(self, lo, hi)):
                if bool(p) == want_data:
                    return min(max(off, (lo + i) * bs), size)
            lo = hi
        if want_data:
            raise KernelError(E.ENXIO)
        return size

    def fiemap(self, fi: FiemapInfo, start: int, length: int) -> None:
        """ext2_fiemap: the request checked as given (a zero length is
        EINVAL, unknown flags EBADR), then its length (not its end) cut to
        i_size, as Linux's (6.18: an empty file maps nothing), and iomap's
        walk of the block map."""
        limit = self.fs.max_file_size
        length = min(fi.prep(start, length, limit), self._size)
        if length:
            self._fiemap_indirect(fi, start, length, limit)

    def _fiemap_indirect(self, fi: FiemapInfo, start: int, length: int, limit: int) -> None:
        """Report [start, start + length) of a block-mapped file as
        ext2_get_blocks maps it for iomap: runs of physically contiguous
        blocks that stop where a pointer block ends (block 12, then every
        pointers-per-block), each flagged MERGED; nothing at or past limit."""
        if fi.sync:
            self.writeback()
        bs = self.fs.block_size
        ppb = bs // 4
        lo = start // bs
        hi = min((start + length - 1) // bs + 1, -(-limit // bs), self._mapped_end(ppb))
        going = True
        while going and lo < hi:
            # one pointer block's span at a time: no run crosses its end
            edge = L.NDIR_BLOCKS if lo < L.NDIR_BLOCKS else \
                lo + ppb - (lo - L.NDIR_BLOCKS) % ppb
            top = min(hi, edge)
            for i, k, p in extents(self.fs.bmap.map(self, lo, top)):
                if p and not fi.add((lo + i) * bs, p * bs, k * bs, FIEMAP_EXTENT_MERGED):
                    going = False
                    break
            lo = top
        fi.finish()

    def _mapped_end(self, ppb: int) -> int:
        """No block of a block-mapped file lies at or past this logical
        block: the end of what its last non-null pointer in i_block covers
        (a FIEMAP of a small file need not walk to the largest file's end)."""
        b, n = self.block, L.NDIR_BLOCKS
        for i in (14, 13, 12):     # triple, double, single indirect
            if b[i]:
                return n + sum(ppb ** k for k in range(1, i - n + 2))
        return max((i + 1 for i in range(n) if b[i]), default=0)

    def _read_disk(self, off: int, n: int) -> bytes:
        bs = self.fs.block_size
        lo, hi = off // bs, (off + n + bs - 1) // bs
        buf = bytearray((hi - lo) * bs)
        self._read_disk_into(lo * bs, memoryview(buf))
        s = off - lo * bs
        return bytes(buf[s:s + n])

    def _read_disk_into(self, off: int, buf: memoryview) -> None:
        """The file's bytes from off (block-aligned) into buf, a fresh page
        cache's pages: holes and unwritten blocks are left as they are
        (zero), the rest read straight in, a block past the end of buf
        (the file's last) through a copy."""
        bs, n = self.fs.block_size, len(buf)
        lo = off // bs
        bc = self.fs.bcache
        for i, k, p in extents(self.fs.bmap.map(self, lo, (off + n + bs - 1) // bs)):
            if not p:
                continue
            a = i * bs
            whole = min(k, (n - a) // bs)
            if whole:
                bc.read_run_into(p, buf[a:a + whole * bs])
            if whole < k:
                a += whole * bs
                buf[a:n] = bc.read_run(p + whole, 1)[:n - a]

    def write(self, off: int, data: bytes) -> int:
        self.fs.check_rw()
        self._check_data()
        self._check_mutable(off)
        if not data:
            return 0
        limit = self.fs.max_file_size
        if off >= limit:
            raise KernelError(E.EFBIG)
        if off + len(data) > limit:
            data = data[:limit - off]
        if self._mem is None and self._size == 0:
            try:
                self._mem = MemFile("ext2")    # a file written here has its page cache from the start
            except HostFdsExhausted:
                pass                # no host fd to spare: it goes to the disk only
        n = self._store(off, data)
        if n == 0:
            raise KernelError(E.ENOSPC)
        ioac.dirtied(off, n)
        if off + n > self._size:
            self.set_size(off + n)
        if self._mem is not None:
            self._mem.pwrite(bytes(data[:n]), off)
            self._cache_used()
        self.touch()
        return n

    def _cache_used(self) -> None:
        """The page cache was used: counted against the budget, or let go
        when the file has outgrown it (the writes go to the disk alone)."""
        if pagecache.cache.may_cache(self._size):
            pagecache.cache.used(self, self._size)
        elif id(self) not in pagecache.cache.mapped_ids():
            self.drop_page_cache()

    def _store(self, off: int, data: bytes) -> int:
        """Where write() puts data besides the page cache: on the disk, at
        once (ext4 may delay it)."""
        return self._write_disk(off, data)

    def _edge(self, lblk: int) -> bytes:
        """The current contents of one block (zeros for a hole)."""
        p = self.fs.bmap.map(self, lblk, lblk + 1)[0]
        return self.fs.bcache.read_run(p, 1) if p else bytes(self.fs.block_size)

    def _write_disk(self, off: int, data: bytes) -> int:
        """Write data at off, allocating blocks; returns how much fit on the disk."""
        fs, bs = self.fs, self.fs.block_size
        end = off + len(data)
        lo, hi = off // bs, (end + bs - 1) // bs
        head, tail = off - lo * bs, hi * bs - end
        first = self._edge(lo) if head else b""
        last = self._edge(hi - 1) if tail else b""
        if not self._goal and lo:
            prev = fs.bmap.map(self, lo - 1, lo)[0]
            if prev:
                self.set_goal(prev + 1)
        pblks = fs.bmap.alloc(self, lo, hi)
        if len(pblks) < hi - lo:          # the disk is full: write the part that fits
            end = min(end, (lo + len(pblks)) * bs)
            if end <= off:
                self._trim_to(self._size)
                return 0
            data, tail = data[:end - off], 0
        if head or tail:
            data = b"".join((first[:head], data, last[bs - tail:] if tail else b""))
        mv = memoryview(data)
        for i, k, p in extents(pblks):
            fs.bcache.write_run(p, mv[i * bs:(i + k) * bs])
        if len(pblks) < hi - lo:
            self._trim_to(max(self._size, end))
        return end - off

    def _trim_to(self, size: int) -> None:
        """Free blocks wholly past size (left by a write the disk could not hold)."""
        bs = self.fs.block_size
        self.fs.bmap.free_from(self, (size + bs - 1) // bs)

    def truncate(self, size: int) -> None:
        self.fs.check_rw()
        self._check_data()
        self._check_mutable()
        if size < 0:
            raise KernelError(E.EINVAL)
        if size > self.fs.max_file_size:
            raise KernelError(E.EFBIG)
        bs = self.fs.block_size
        if size <= self._size:
            # at the same size too: blocks past it go (ext4's fallocate
            # KEEP_SIZE ones; ext4_setattr truncates for that reason)
            self._trim_to(size)
        if size < self._size and size % bs:
            # what a later extension exposes must read as zeros
            p = self.fs.bmap.map(self, size // bs, size // bs + 1)[0]
            if p:
                blk = bytearray(self.fs.bcache.read_run(p, 1))
                blk[size % bs:] = bytes(bs - size % bs)
                self.fs.bcache.write_run(p, blk)
        self.set_size(size)
        if self._mem is not None:
            self._mem.truncate(size)
        self.touch()

    def readlink(self) -> bytes:
        if not self.is_symlink:
            raise KernelError(E.EINVAL)
        if self._is_fast_symlink():
            return _IBLOCK.pack(*self.block)[:self._size]
        p = self.fs.bmap.map(self, 0, 1)[0]
        if not p or self._size >= self.fs.block_size:
            raise KernelError(E.EIO)
        return bytes(self.fs.bcache.get(p)[:self._size])

    # -- extended attributes (xattr.py) ----------------------------------------------
    def getxattr(self, name: bytes) -> bytes:
        return xattr.get(self, name)

    def listxattr(self) -> list[bytes]:
        return xattr.names(self)

    def setxattr(self, name: bytes, value: bytes, flags: int) -> None:
        xattr.change(self, name, value, flags)

    def removexattr(self, name: bytes) -> None:
        xattr.change(self, name, None, C.XATTR_REPLACE)

    # -- page cache -------------------------------------------------------------
    def memfile(self) -> MemFile:
        """The host memory file mmap maps: filled once, then kept coherent."""
        if not self.is_reg:
            raise KernelError(E.ENODEV)
        if self._mem is None:
            mem = MemFile("ext2")
            mem.truncate(self._size)
            step = 8 << 20
            for off in range(0, self._size, step):
                with mem.window(off, min(step, self._size - off)) as buf:
                    self._read_disk_into(off, buf)
            self._mem = mem
        pagecache.cache.used(self, self._size)
        return self._mem

    @property
    def freed(self) -> bool:
        """Evicted: its blocks and number given back, no name and no open
        file left (a shared mapping may still show its page cache)."""
        return self._freed

    def page_cache(self) -> MemFile | None:
        """Reads copy from the memfile, kept coherent with writes (see memfile)."""
        if not self.is_reg or self._freed:
            return None
        if not pagecache.cache.may_cache(self._size):
            if self._mem is not None:
                self._cache_used()      # let go, unless mapped or holding delayed data
            if self._mem is None:
                return None     # a file past the page cache's budget is read through the buffer cache
        return self.memfile()

    def drop_page_cache(self) -> None:
        """drop_caches: the page cache let go (the caller made sure no
        mapping holds it), what a shared mapping wrote written back first;
        the next read goes to the disk."""
        if self._mem is None or self._freed:
            return
        self.writeback()
        self._mem.close()
        self._mem = None
        pagecache.cache.forget(self)

    def writeback(self) -> None:
        """Copy what the guest wrote through a shared mapping to the blocks."""
        if self._mem is None or not self.shared_mapped or self._freed or self.fs.read_only:
            return
        bs, size = self.fs.block_size, self._size
        step = 8 << 20                     # bounded memory for big files
        changed = False
        for base in range(0, size, step):
            n = min(step, size - base)
            mem, disk = self._mem.pread(n, base), self._read_disk(base, n)
            if mem == disk:
                continue
            dirty = [i // bs for i in range(0, n, bs) if mem[i:i + bs] != disk[i:i + bs]]
            for first, k in runs(dirty):
                a = first * bs
                self._write_disk(base + a, mem[a:min(a + k * bs, n)])
            changed = True
        self._zero_tail()
        if changed:
            self.touch()

    def _zero_tail(self) -> None:
        """The page that straddles the end of the file is zeroed past it at
        every write-back, as Linux's writepage does (block_write_full_page,
        ext4_bio_write_page): what a mapping wrote there is never written
        out, and a later mapping reads zeros (POSIX mmap).  The host's
        memfd, tmpfs, keeps those bytes until it is cut short: a byte
        longer, then back, and its truncate zeroes them."""
        if self._size % C.PAGE_SIZE:
            self._mem.truncate(self._size + 1)
            self._mem.truncate(self._size)

    def evictable(self) -> bool:
        """Whether the cache may let this inode go when nothing holds it:
        linked, its page cache gone, nothing of its own outside its bytes."""
        return self.nlink > 0 and not self._freed and self._mem is None

    def drop_parsed(self) -> None:
        """Let go of what is parsed from the disk (a directory's blocks)."""
        self._dir = None

    def evict(self) -> None:
        if self._freed:
            return
        if self.nlink <= 0:
            self.release()
        else:
            self.writeback()

    def release(self) -> None:
        """Free the inode and everything it owns (last link and last user gone)."""
        if self._freed:
            return
        fs = self.fs
        if self._mem is not None:
            self._mem.close()
            self._mem = None
            pagecache.cache.forget(self)
        if fs.read_only:
            return
        if self._has_blocks():
            fs.bmap.free_from(self, 0)
        if self.file_acl:
            xattr.drop_block(self)
        self._size = 0
        self.nlink = 0
        self.dtime = now_ns() // 10**9
        self._dir = None
        fs.forget_inode(self)
        self._freed = True
