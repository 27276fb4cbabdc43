"""tmpfs: a filesystem in memory; file pages live in host memfds.

Each regular file with data owns one host memory file (arch_um.hostfile),
which is at once its storage and its page cache: guest mmap maps it.
Space is counted in the pages files hold (a hole costs nothing, as
shmem's blocks: the memfd's own allocated pages) and in inodes, against the
mount's size= and nr_inodes= (by default half the machine's memory, as
Linux); a write or fallocate that could go over the limit fails with
ENOSPC.  Pages a guest's shared mapping fills are counted when the mapping
goes or at the file's next write, truncate or fallocate (Linux refuses
them at the fault).  Every tmpfs of the machine (the memfds' and
devtmpfs too) also counts in its shmem (kernel/shmem.py): past the
machine's RAM a write or fallocate is ENOMEM.
"""
from __future__ import annotations

import struct
import weakref

from arch_um.hostfile import MemFile
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.cmdline import parse_size
from umlpy.kernel.cred import NO_ID
from umlpy.kernel.errors import KernelError
from umlpy.kernel.shmem import ShmemPool
from umlpy.vfs.inode import Filesystem, Inode, dtype_of

TMPFS_MAGIC = 0x01021994
BOGO_DIRENT_SIZE = 20
BOGO_INODE_SIZE = 1024      # what an inode takes of the inode space (nr_inodes x this)
SIMPLE_XATTR_SIZE = 48      # struct simple_xattr, before its name and value
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE, F_SEAL_FUTURE_WRITE, F_SEAL_EXEC = \
    0x1, 0x2, 0x4, 0x8, 0x10, 0x20
WRITE_SEALS = F_SEAL_WRITE | F_SEAL_FUTURE_WRITE
# the chattr flags shmem keeps (Linux 6.0+), and those a new inode takes
# from its directory
FL_USER_MODIFIABLE = C.FS_IMMUTABLE_FL | C.FS_APPEND_FL | C.FS_NODUMP_FL | C.FS_NOATIME_FL
FL_INHERITED = C.FS_NODUMP_FL | C.FS_NOATIME_FL


class TmpfsInode(Inode):
    # memfd seals (shmem's info->seals): a tmpfs file is sealed against
    # sealing; memfd_create with MFD_ALLOW_SEALING starts with none
    seals = F_SEAL_SEAL

    def __init__(self, fs: Tmpfs, mode: int, uid: int = 0, gid: int = 0, rdev: int = 0,
                 fsflags: int = 0) -> None:
        fs.charge_inode()
        super().__init__(fs, mode, uid, gid, rdev)
        self.fsflags = fsflags      # chattr's (FL_USER_MODIFIABLE)
        self.children: dict[bytes, TmpfsInode] | None = {} if self.is_dir else None
        self.data: MemFile | None = None
        self._size = 0
        self._prealloc_end = 0      # fallocate(FALLOC_FL_KEEP_SIZE) reserved pages up to here
        self._charged = 0           # what the filesystem counts for it: its memfd's pages
        self._falloc: list[tuple[int, int]] = []     # page spans fallocate reserved
        self.target = b""
        self._freed = False
        self._xattr_space = 0       # what its xattrs take of the inode space

    # -- attributes -------------------------------------------------------
    def size(self) -> int:
        if self.is_symlink:
            return len(self.target)
        if self.is_dir:
            return BOGO_DIRENT_SIZE * (len(self.children or ()) + 2)     # as Linux's shmem
        return self._size

    def blocks(self) -> int:
        if self.data is not None:
            return self.data.blocks()
        return 0

    def get_fsflags(self) -> int:
        return self.fsflags

    def set_fsflags(self, flags: int, capable) -> None:
        """shmem_fileattr_set: a flag tmpfs does not keep is EOPNOTSUPP, not ignored."""
        if flags & ~FL_USER_MODIFIABLE:
            raise KernelError(E.EOPNOTSUPP)
        self.fsflags = flags
        self.touch(m=False)

    # -- directories ------------------------------------------------------
    def _dir(self) -> dict[bytes, TmpfsInode]:
        if self.children is None:
            raise KernelError(E.ENOTDIR)
        return self.children

    def lookup(self, name: bytes) -> Inode | None:
        return self._dir().get(name)

    def entries(self) -> list[tuple[bytes, int, int]]:
        return [(n, i.ino, dtype_of(i.mode)) for n, i in self._dir().items()]

    def _add(self, name: bytes, inode: TmpfsInode) -> TmpfsInode:
        d = self._dir()
        if name in d:
            raise KernelError(E.EEXIST)
        d[name] = inode
        if inode.is_dir:
            self.nlink += 1
        self.touch()
        return inode

    def create(self, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0) -> Inode:
        if name in self._dir():
            raise KernelError(E.EEXIST)
        return self._add(name, TmpfsInode(self.fs, mode, uid, gid, rdev, self.fsflags & FL_INHERITED))

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        ino = TmpfsInode(self.fs, C.S_IFLNK | 0o777, uid, gid, fsflags=self.fsflags & FL_INHERITED)
        ino.target = target
        return self._add(name, ino)

    def tmpfile(self, mode: int, uid: int, gid: int) -> Inode:
        self._dir()
        ino = TmpfsInode(self.fs, C.S_IFREG | mode, uid, gid, fsflags=self.fsflags & FL_INHERITED)
        ino.nlink = 0
        return ino

    def link(self, name: bytes, inode: Inode) -> None:
        self._add(name, inode)
        inode.nlink += 1
        inode.touch(m=False)

    def _drop(self, inode: TmpfsInode) -> None:
        inode.nlink = 0 if inode.is_dir else inode.nlink - 1
        inode.touch(m=False)
        if inode.nlink == 0 and not inode.in_use:
            inode.evict()

    def unlink(self, name: bytes) -> None:
        d = self._dir()
        ino = d.get(name)
        if ino is None:
            raise KernelError(E.ENOENT)
        if ino.is_dir:
            raise KernelError(E.EISDIR)
        del d[name]
        self.touch()
        self._drop(ino)

    @staticmethod
    def _not_grafted(ino: Inode | None) -> None:
        """Another filesystem's root linked in here (devtmpfs's pts) stands
        for a mount point: rmdir and rename of it are EBUSY, as Linux's."""
        if ino is not None and not isinstance(ino, TmpfsInode):
            raise KernelError(E.EBUSY)

    def rmdir(self, name: bytes) -> None:
        d = self._dir()
        ino = d.get(name)
        if ino is None:
            raise KernelError(E.ENOENT)
        if not ino.is_dir:
            raise KernelError(E.ENOTDIR)
        self._not_grafted(ino)
        if ino.children:
            raise KernelError(E.ENOTEMPTY)
        del d[name]
        self.nlink -= 1
        self.touch()
        self._drop(ino)

    def rename(self, old: bytes, newdir: Inode, new: bytes, flags: int) -> None:
        if not isinstance(newdir, TmpfsInode) or newdir.fs is not self.fs:
            raise KernelError(E.EXDEV)
        src_d, dst_d = self._dir(), newdir._dir()
        src = src_d.get(old)
        if src is None:
            raise KernelError(E.ENOENT)
        dst = dst_d.get(new)
        self._not_grafted(src)
        self._not_grafted(dst)
        if flags & C.RENAME_EXCHANGE:
            if dst is None:
                raise KernelError(E.ENOENT)
            src_d[old], dst_d[new] = dst, src
            if src.is_dir != dst.is_dir and self is not newdir:
                delta = 1 if src.is_dir else -1
                newdir.nlink += delta
                self.nlink -= delta
            self.touch()
            newdir.touch()
            return
        if dst is src:
            return
        # the VFS checked NOREPLACE, dir/non-dir and emptiness (sys_file.do_rename)
        del src_d[old]
        if dst is not None:
            if dst.is_dir:
                newdir.nlink -= 1
            self._drop(dst)
        dst_d[new] = src
        if src.is_dir and self is not newdir:
            self.nlink -= 1
            newdir.nlink += 1
        src.touch(m=False)
        self.touch()
        newdir.touch()

    # -- data -------------------------------------------------------------
    def read(self, off: int, n: int) -> bytes:
        if self.is_dir:
            raise KernelError(E.EISDIR)
        if off >= self._size or n <= 0 or self.data is None:
            return b"" if off >= self._size or n <= 0 else bytes(min(n, self._size - off))
        return self.data.pread(min(n, self._size - off), off)

    def _resize(self, size: int, prealloc_end: int | None = None) -> None:
        """A new size (and end of reserved pages).  A size that does not
        grow frees the pages past it (shmem_setattr), reserved ones too."""
        if prealloc_end is None:
            prealloc_end = self._prealloc_end if size > self._size else 0
        self._size, self._prealloc_end = size, prealloc_end

    def _settle(self) -> None:
        """What the filesystem (and the machine's shmem) counts for this
        file: the pages its memfd holds now."""
        now = self.data.blocks() * 512 if self.data is not None else 0
        delta, self._charged = now - self._charged, now
        self.fs.used += delta
        if delta and self.fs.pool is not None:
            self.fs.pool.counted(self, delta)

    settle_shmem = _settle          # a mapping of it went (kernel/mm.settle_shmem)

    @property
    def shmem_bytes(self) -> int:
        return self._charged

    def _room(self, off: int, end: int) -> None:
        """ENOSPC unless the pages of [off, end) not allocated yet fit in
        what size= leaves (shmem_inode_acct_blocks), then ENOMEM unless they
        fit in the machine's RAM; counted only near either."""
        fs, pool = self.fs, self.fs.pool
        lo, hi = C.page_down(off), C.page_up(end)
        over = fs.size_limit and fs.used + (hi - lo) > fs.size_limit
        short = pool is not None and not pool.room(hi - lo)
        if not (over or short):
            return
        new = hi - lo - self._data_in(lo, hi)
        if over and fs.used + new > fs.size_limit:
            raise KernelError(E.ENOSPC)
        if short and not pool.room(new):
            pool.refuse()
            raise KernelError(E.ENOMEM)

    def _data_in(self, lo: int, hi: int) -> int:
        """Bytes of allocated pages between the page-aligned lo and hi:
        those SEEK_DATA finds on the memfd (below its end) and those
        fallocate reserved, which shmem shows as holes until written."""
        spans = [(max(a, lo), min(b, hi)) for a, b in self._falloc if a < hi and b > lo]
        if self.data is not None:
            end, pos = min(hi, self.data.size()), lo
            while pos < end:
                try:
                    d = self.data.seek(pos, C.SEEK_DATA)
                except OSError:         # ENXIO: no data from pos on
                    break
                if d >= end:
                    break
                h = min(C.page_up(self.data.seek(d, C.SEEK_HOLE)), hi)
                spans.append((C.page_down(d), h))
                pos = h
        n, reach = 0, lo
        for a, b in sorted(spans):
            a = max(a, reach)
            if b > a:
                n += b - a
                reach = b
        return n

    def _reserved(self, lo: int, hi: int, keep: bool) -> None:
        """The page-aligned [lo, hi) added to what fallocate reserved
        (keep), or taken from it (a punch, a truncate)."""
        out = []
        for a, b in self._falloc:
            if b <= lo or a >= hi:
                out.append((a, b))
                continue
            if keep:
                lo, hi = min(a, lo), max(b, hi)
            else:
                out += [(x, y) for x, y in ((a, lo), (hi, b)) if x < y]
        if keep:
            out.append((lo, hi))
        self._falloc = sorted(out)

    def write(self, off: int, data: bytes) -> int:
        if not data:
            return 0
        if self.seals & (WRITE_SEALS | F_SEAL_GROW):
            data = self._sealed_write(off, data)
        self._room(off, off + len(data))
        if off + len(data) > self._size:
            self._resize(off + len(data))
        if self.data is None:
            self.data = MemFile("tmpfs")
        self.data.pwrite(data, off)
        self._settle()
        self.touch()
        return len(data)

    def _sealed_write(self, off: int, data: bytes) -> bytes:
        """shmem_write_begin, a page at a time: a write seal refuses every
        write, F_SEAL_GROW the first page that would end past the file
        (what went before it is written: a short write)."""
        if self.seals & WRITE_SEALS:
            raise KernelError(E.EPERM)
        end, stop = off, off + len(data)
        while end < stop:
            nxt = min(C.page_down(end) + C.PAGE_SIZE, stop)
            if nxt > self._size:
                break
            end = nxt
        if end == off:
            raise KernelError(E.EPERM)
        return data[:end - off]

    def check_resize(self, size: int) -> None:
        """shmem_setattr: F_SEAL_SHRINK and F_SEAL_GROW fix the size."""
        if size < self._size and self.seals & F_SEAL_SHRINK or size > self._size and self.seals & F_SEAL_GROW:
            raise KernelError(E.EPERM)

    def check_chmod(self, mode: int) -> None:
        """shmem_setattr: F_SEAL_EXEC fixes the execute bits."""
        if self.seals & F_SEAL_EXEC and (self.mode ^ mode) & 0o111:
            raise KernelError(E.EPERM)

    def fallocate(self, mode: int, off: int, n: int) -> None:
        """shmem_fallocate: reserve pages (growing the file unless
        FALLOC_FL_KEEP_SIZE) or punch a hole; the VFS checked the rest."""
        if mode & ~(C.FALLOC_FL_KEEP_SIZE | C.FALLOC_FL_PUNCH_HOLE):
            raise KernelError(E.EOPNOTSUPP)
        mf = self.memfile()
        if mode & C.FALLOC_FL_PUNCH_HOLE:
            if self.seals & WRITE_SEALS:
                raise KernelError(E.EPERM)
            mf.fallocate(mode, off, n)
            self._reserved(C.page_up(off), C.page_down(off + n), False)
            self._settle()
            return
        if self.seals & F_SEAL_GROW and off + n > self._size:
            raise KernelError(E.EPERM)
        # the pages are real host memory: no more than the filesystem holds
        # (its size=, or the machine's memory)
        if C.page_up(n) > self.fs.capacity():
            raise KernelError(E.ENOSPC)
        self._room(off, off + n)
        old = (self._size, self._prealloc_end)
        if mode & C.FALLOC_FL_KEEP_SIZE:
            self._resize(self._size, max(self._prealloc_end, off + n))
        else:
            self._resize(max(self._size, off + n))
        try:
            mf.fallocate(mode, off, n)
            self._reserved(C.page_down(off), C.page_up(off + n), True)
        except OSError as e:
            self._resize(*old)
            raise KernelError(e.errno) from None
        finally:
            self._settle()
        if (self._size, self._prealloc_end) != old:
            self.touch()

    def seek_data(self, off: int, whence: int) -> int:
        """SEEK_DATA/SEEK_HOLE: where the pages are (mapping_seek_hole_data)."""
        if not 0 <= off < self._size:
            raise KernelError(E.ENXIO)
        if self.data is None:           # never written: one hole
            if whence == C.SEEK_DATA:
                raise KernelError(E.ENXIO)
            return off
        try:
            return min(self.data.seek(off, whence), self._size)
        except OSError as e:
            raise KernelError(e.errno) from None

    def truncate(self, size: int) -> None:
        if self.is_dir:
            raise KernelError(E.EISDIR)
        self.check_resize(size)
        shrinks = size <= self._size
        self._resize(size)
        if self.data is None:
            self.data = MemFile("tmpfs")
        self.data.truncate(size)
        if shrinks:         # the pages past it go, reserved ones too
            self._reserved(C.page_up(size), 1 << 63, False)
        self._settle()
        self.touch()

    def readlink(self) -> bytes:
        if not self.is_symlink:
            raise KernelError(E.EINVAL)
        return self.target

    # -- extended attributes: in memory, their space taken from the inode
    # space of a mount with an inode limit (as shmem since Linux 6.6, whose
    # user.* xattrs this tmpfs has too), so that they cannot grow the
    # kernel without bound ----------------------------------------------
    def setxattr(self, name: bytes, value: bytes, flags: int) -> None:
        old = (getattr(self, "xattrs", None) or {}).get(name)
        delta = xattr_space(name, value) - (xattr_space(name, old) if old is not None else 0)
        self.fs.charge_space(delta)
        try:
            super().setxattr(name, value, flags)
        except KernelError:
            self.fs.charge_space(-delta)
            raise
        self._xattr_space += delta

    def removexattr(self, name: bytes) -> None:
        old = (getattr(self, "xattrs", None) or {}).get(name)
        super().removexattr(name)
        delta = xattr_space(name, old)
        self.fs.charge_space(-delta)
        self._xattr_space -= delta

    def memfile(self) -> MemFile:
        if self.data is None:
            self.data = MemFile("tmpfs")
            self.data.truncate(self._size)
        return self.data

    def page_cache(self) -> MemFile | None:
        return self.data if self.is_reg else None

    @property
    def freed(self) -> bool:
        """Evicted: no name and no open file left (a mapping may still show
        the host pages, as a memfd mapped after its fd was closed)."""
        return self._freed

    def evict(self) -> None:
        if self.data is not None:
            self.data.close()
            self.data = None
        if not self._freed:         # once: a freed inode gives back its space
            self._freed = True
            self.fs.used -= self._charged
            charged, self._charged = self._charged, 0
            if charged and self.fs.pool is not None:
                self.fs.pool.counted(self, -charged)
            self.fs.inodes -= 1
            self.fs.charge_space(-self._xattr_space)
            self._xattr_space = 0
            self._size = 0


class Tmpfs(Filesystem):
    name = "tmpfs"
    magic = TMPFS_MAGIC
    swap_backed = True      # its pages are shmem to Linux's mm counters (kernel/oom.rss_kb)
    statx_attributes = 0x20 | 0x10 | 0x40     # append, immutable, nodump (shmem_getattr)
    mgtime = True

    def __init__(self, pool: ShmemPool | None, mode: int = 0o1777, uid: int = 0, gid: int = 0,
                 size: int = 0, nr_inodes: int = 0) -> None:
        super().__init__()
        self.pool = pool                # the machine's shmem (None: a filesystem of no machine, a unit test's)
        self.size_limit = size          # bytes; 0: no limit (statfs shows `total`)
        self.inode_limit = nr_inodes    # 0: no limit
        self.total = pool.limit if pool is not None else 1 << 32
        self.used = 0                   # bytes in the pages files hold
        self.inodes = 0
        self.xattr_bytes = 0            # bytes the xattrs take (simple_xattr_space)
        self.root = TmpfsInode(self, C.S_IFDIR | mode, uid, gid)
        self.exported: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # ino -> inode
        self.options_shown = ""         # what /proc/mounts shows of the mount's options

    @classmethod
    def from_options(cls, data: str, pool: ShmemPool) -> Tmpfs:
        """mount -t tmpfs -o mode=,uid=,gid=,size=,nr_inodes= as Linux's
        shmem_parse_one (sizes take k, m, g or % of memory)."""
        mem_total = pool.limit
        opts = {"mode": 0o1777, "uid": 0, "gid": 0, "size": mem_total // 2,
                "nr_inodes": _default_inodes(mem_total)}
        given = set()
        for word in filter(None, data.split(",")):
            key, _, val = word.partition("=")
            try:
                if key == "mode":
                    opts[key] = _u32(val, 8) & 0o7777
                elif key in ("uid", "gid"):
                    opts[key] = _u32(val)
                    if opts[key] == NO_ID:
                        raise ValueError(val)
                elif key == "nr_inodes":
                    opts[key] = _size(val, 0)
                elif key == "size":
                    opts[key] = C.page_up(_size(val, mem_total))
                elif key not in _IGNORED:
                    raise KernelError(E.EINVAL, f"tmpfs: Unknown parameter '{key}'")
            except ValueError:
                raise KernelError(E.EINVAL, f"tmpfs: Bad value for '{key}'") from None
            given.add(key)
        fs = cls(pool, opts["mode"], opts["uid"], opts["gid"], opts["size"], opts["nr_inodes"])
        fs.options_shown = _shown(opts, given, mem_total)
        return fs

    def show_options(self) -> str:
        return self.options_shown

    def capacity(self) -> int:
        """Bytes the filesystem may hold: size=, or else the machine's."""
        return self.size_limit or self.total

    def _ispace_left(self) -> int:
        """shmem's free_ispace: the inode space (nr_inodes x BOGO_INODE_SIZE)
        that inodes and xattrs have not taken (no limit: nr_inodes=0, or a
        kernel mount's)."""
        return self.inode_limit * BOGO_INODE_SIZE - self.inodes * BOGO_INODE_SIZE - self.xattr_bytes

    def charge_inode(self) -> None:
        if self.inode_limit and self._ispace_left() < BOGO_INODE_SIZE:
            raise KernelError(E.ENOSPC)
        self.inodes += 1

    def charge_space(self, n: int) -> None:
        """Xattr bytes taken (n > 0: ENOSPC past the inode space) or given back."""
        if n > 0 and self.inode_limit and self._ispace_left() < n:
            raise KernelError(E.ENOSPC)
        self.xattr_bytes += n

    def statfs(self) -> dict:
        st = super().statfs()
        blocks = (self.size_limit or self.total) // C.PAGE_SIZE
        free = max(0, blocks - self.used // C.PAGE_SIZE)
        if self.inode_limit:
            files, ffree = self.inode_limit, max(0, self._ispace_left() // BOGO_INODE_SIZE)
        else:
            files = max(self.inodes, _default_inodes(self.total))
            ffree = files - self.inodes
        st.update(blocks=blocks, bfree=free, bavail=free, files=files, ffree=ffree)
        return st

    def encode_fh(self, inode: Inode) -> tuple[int, bytes]:
        """shmem_encode_fh: generation (0: inode numbers are never reused
        here), then the 64-bit inode number in two halves.  The inode is
        remembered while it lives, for fh_to_inode."""
        self.exported[inode.ino] = inode
        return C.FILEID_INO32_GEN, struct.pack("<III", 0, inode.ino & 0xFFFFFFFF, inode.ino >> 32)

    def fh_to_inode(self, fh_type: int, fh: bytes) -> Inode:
        """shmem_fh_to_dentry: any handle type; a live inode with that number
        and generation (one a handle was made for), else ESTALE."""
        if len(fh) < 12:
            raise KernelError(E.ESTALE)
        gen, lo, hi = struct.unpack_from("<III", fh)
        inode = self.exported.get(hi << 32 | lo)
        if inode is None or gen:
            raise KernelError(E.ESTALE)
        return inode


# generic mount options the VFS handles, and tmpfs options that change nothing here
_IGNORED = ("rw", "ro", "nosuid", "nodev", "noexec", "relatime", "noatime", "strictatime", "sync",
            "async", "defaults", "huge", "mpol", "inode64", "inode32", "noswap", "quota", "silent")


def _shown(opts: dict, given: set, mem_total: int) -> str:
    """shmem_show_options: each option whose value is not the default (a
    size or an inode count given differs from the default unless equal
    to it; 0 is no limit and shows as 0)."""
    out = []
    pages = opts["size"] // C.PAGE_SIZE
    if "size" in given and pages != mem_total // C.PAGE_SIZE // 2:
        out.append(f"size={pages * (C.PAGE_SIZE // 1024)}k")
    if opts["nr_inodes"] != _default_inodes(mem_total):
        out.append(f"nr_inodes={opts['nr_inodes']}")
    if opts["mode"] != 0o1777:
        out.append(f"mode={opts['mode']:03o}")
    out += [f"{k}={opts[k]}" for k in ("uid", "gid") if opts[k]]
    return ",".join(out)


def _default_inodes(mem_total: int) -> int:
    """shmem_default_max_inodes: half the machine's pages."""
    return mem_total // C.PAGE_SIZE // 2


def xattr_space(name: bytes, value: bytes) -> int:
    """simple_xattr_space: what one xattr takes."""
    return SIMPLE_XATTR_SIZE + len(name) + 1 + len(value)


def _size(val: str, whole: int) -> int:
    """memparse (the mem= syntax), or a % of whole, as shmem's size=."""
    if val.endswith("%"):
        return whole * _u32(val[:-1], 10) // 100
    return parse_size(val)


def _u32(val: str, base: int = 0) -> int:
    """kstrtouint, as fsparam_u32 parses: an unsigned number (base 0: 0x
    hex, a leading 0 octal, else decimal) that fits 32 bits; else ValueError."""
    digits = val[1:] if val.startswith("+") else val
    if base == 0:
        base, digits = ((16, digits[2:]) if digits[:2].lower() == "0x" else
                        (8, digits) if digits[:1] == "0" else (10, digits))
    if not (digits.isascii() and digits.isalnum()):
        raise ValueError(val)
    n = int(digits, base)
    if n > 0xFFFFFFFF:
        raise ValueError(val)
    return n
