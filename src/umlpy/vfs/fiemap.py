"""FS_IOC_FIEMAP: the generic half (fs/ioctl.c and fs/iomap/fiemap.c).

The ioctl reads struct fiemap, refuses an fm_extent_count above
FIEMAP_MAX_EXTENTS, and hands a FiemapInfo to the inode's fiemap(), which
checks the range and flags (prep, Linux's fiemap_prep) and reports each
mapped extent in order (add), then finish().  As iomap_fiemap does, an
extent is written out only when the next one is known, so the last of
the range carries FIEMAP_EXTENT_LAST; with fm_extent_count 0 extents are
only counted.  Extents go to guest memory one by one as they are found:
nothing the guest asks for sizes a buffer here.
"""
from __future__ import annotations

import struct

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError

FS_IOC_FIEMAP = 0xC020660B                  # _IOWR('f', 11, struct fiemap)
FIEMAP = struct.Struct("<QQIII4x")          # fm_start, fm_length, fm_flags, fm_mapped_extents, fm_extent_count
EXTENT = struct.Struct("<QQQ16xI12x")       # fe_logical, fe_physical, fe_length, fe_flags
FIEMAP_MAX_EXTENTS = 0xFFFFFFFF // EXTENT.size

FIEMAP_FLAG_SYNC = 0x1
FIEMAP_FLAG_XATTR = 0x2
FIEMAP_FLAG_CACHE = 0x4
FIEMAP_FLAGS_COMPAT = FIEMAP_FLAG_SYNC | FIEMAP_FLAG_XATTR

FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_UNKNOWN = 0x2
FIEMAP_EXTENT_DELALLOC = 0x4
FIEMAP_EXTENT_UNWRITTEN = 0x800
FIEMAP_EXTENT_MERGED = 0x1000
FIEMAP_EXTENT_DATA_INLINE = 0x200
FIEMAP_EXTENT_NOT_ALIGNED = 0x100


def clamp_range(start: int, length: int, maxbytes: int) -> int:
    """A FIEMAP range against a size limit: EINVAL when empty, EFBIG when it
    starts past the limit, else its length cut to the limit."""
    if length == 0:
        raise KernelError(E.EINVAL)
    if start > maxbytes:
        raise KernelError(E.EFBIG)
    if length > maxbytes or maxbytes - length < start:
        length = maxbytes - start
    return length


class FiemapInfo:
    """struct fiemap_extent_info: the caller's flags, where extents go, how many fit."""

    def __init__(self, task, flags: int, max_extents: int, dest: int) -> None:
        self.task = task
        self.flags = flags
        self.max = max_extents
        self.mapped = 0
        self.dest = dest
        self._prev: tuple[int, int, int, int] | None = None
        self._full = False

    def prep(self, start: int, length: int, maxbytes: int, supported: int = 0) -> int:
        """fiemap_prep: EINVAL for an empty range, EFBIG past maxbytes,
        EBADR (fm_flags then holding them) for flags the filesystem does not
        know; returns the length cut to maxbytes."""
        length = clamp_range(start, length, maxbytes)
        bad = self.flags & ~((supported | FIEMAP_FLAG_SYNC) & FIEMAP_FLAGS_COMPAT)
        if bad:
            self.flags = bad
            raise KernelError(E.EBADR)
        return length

    @property
    def sync(self) -> bool:
        return bool(self.flags & FIEMAP_FLAG_SYNC)

    def add(self, logical: int, physical: int, length: int, flags: int = 0) -> bool:
        """The next mapped extent of the range; False once the array is full
        (the caller stops looking)."""
        prev, self._prev = self._prev, (logical, physical, length, flags)
        return prev is None or self._fill(*prev)

    def finish(self) -> None:
        """The range is walked: the extent held back is the last one."""
        if self._prev is not None:
            logical, physical, length, flags = self._prev
            self._fill(logical, physical, length, flags | FIEMAP_EXTENT_LAST)
            self._prev = None

    def _fill(self, logical: int, physical: int, length: int, flags: int) -> bool:
        """fiemap_fill_next_extent; False when no more extents are wanted."""
        if self.max == 0:
            self.mapped += 1
            return not flags & FIEMAP_EXTENT_LAST
        if self._full or self.mapped >= self.max:
            self._full = True
            return False
        if flags & FIEMAP_EXTENT_DATA_INLINE:
            flags |= FIEMAP_EXTENT_NOT_ALIGNED
        if flags & FIEMAP_EXTENT_DELALLOC:
            flags |= FIEMAP_EXTENT_UNKNOWN      # no place on the disk yet
        self.task.mem.write(self.dest + self.mapped * EXTENT.size,
                            EXTENT.pack(logical, physical, length, flags))
        self.mapped += 1
        self._full = self.mapped == self.max
        return not self._full and not flags & FIEMAP_EXTENT_LAST


def ioctl_fiemap(task, inode, arg: int) -> int:
    """ioctl_fiemap: EOPNOTSUPP where the filesystem has no fiemap (before
    the header is read); the header's fm_flags and fm_mapped_extents are
    written back even when the filesystem refused (EBADR says which flags)."""
    fiemap = getattr(inode, "fiemap", None)
    if fiemap is None:
        raise KernelError(E.EOPNOTSUPP)
    start, length, flags, _, count = FIEMAP.unpack(task.mem.read(arg, FIEMAP.size))
    if count > FIEMAP_MAX_EXTENTS:
        raise KernelError(E.EINVAL)
    fi = FiemapInfo(task, flags, count, arg + FIEMAP.size)
    err: KernelError | None = None
    try:
        fiemap(fi, start, length)
    except KernelError as e:
        err = e
    task.mem.write(arg, FIEMAP.pack(start, length, fi.flags, fi.mapped, count))
    if err is not None:
        raise err
    return 0
