"""Packing of the structs guest programs exchange with the kernel."""
import struct

_STAT = struct.Struct("<QQQIIIiQqqqqqqqqq24x")
_TIMESPEC = struct.Struct("<qq")
_DIRENT64_HDR = struct.Struct("<QqHB")
_DIRENT_HDR = struct.Struct("<QqH")
_STATX_HEAD = struct.Struct("<IIQIIIHHQQQQ")
_STATX_TS = struct.Struct("<qIi")
NS = 10**9


def makedev(major: int, minor: int) -> int:
    return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)
            | ((major & ~0xfff) << 32))


def major(dev: int) -> int:
    return ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff)


def minor(dev: int) -> int:
    return (dev & 0xff) | ((dev >> 12) & ~0xff)


def pack_stat(dev: int, ino: int, nlink: int, mode: int, uid: int, gid: int, rdev: int,
              size: int, blksize: int, blocks: int, atime: int, mtime: int, ctime: int) -> bytes:
    return _STAT.pack(dev, ino, nlink, mode, uid, gid, 0, rdev, size, blksize, blocks,
                      *divmod(atime, NS), *divmod(mtime, NS), *divmod(ctime, NS))


STATX_BASIC_STATS = 0x7ff
STATX_BTIME = 0x800
STATX_DIOALIGN = 0x2000


def pack_statx(mask: int, dev: int, ino: int, nlink: int, mode: int, uid: int, gid: int,
               rdev: int, size: int, blksize: int, blocks: int, atime: int, btime: int,
               ctime: int, mtime: int, attributes: int = 0, attributes_mask: int = 0,
               mnt_id: int = 0, dio_align: tuple[int, int] = (0, 0)) -> bytes:
    head = _STATX_HEAD.pack(mask, blksize, attributes, nlink, uid, gid, mode, 0, ino, size, blocks,
                            attributes_mask)
    ts = b"".join(_STATX_TS.pack(t // 10**9, t % 10**9, 0) for t in (atime, btime, ctime, mtime))
    devs = struct.pack("<IIIIQII", major(rdev), minor(rdev), major(dev), minor(dev), mnt_id, *dio_align)
    out = head + ts + devs
    return out + b"\0" * (256 - len(out))


def pack_timespec(ns: int) -> bytes:
    return _TIMESPEC.pack(ns // 10**9, ns % 10**9)


def unpack_timespec(data: bytes) -> tuple[int, int]:
    return _TIMESPEC.unpack(data)


def pack_timeval(ns: int) -> bytes:
    return struct.pack("<qq", ns // 10**9, (ns % 10**9) // 1000)


def pack_dirent64(ino: int, off: int, dtype: int, name: bytes) -> bytes:
    reclen = (19 + len(name) + 1 + 7) & ~7
    rec = _DIRENT64_HDR.pack(ino, off, reclen, dtype) + name
    return rec + b"\0" * (reclen - len(rec))


def pack_dirent(ino: int, off: int, dtype: int, name: bytes) -> bytes:
    """struct linux_dirent of the old getdents(2): d_type in the record's
    last byte, after the name's NUL and the padding (filldir)."""
    reclen = (18 + len(name) + 2 + 7) & ~7
    rec = _DIRENT_HDR.pack(ino, off, reclen) + name
    return rec + b"\0" * (reclen - len(rec) - 1) + bytes((dtype,))


def pack_utsname(fields: list[str]) -> bytes:
    return b"".join(f.encode()[:64].ljust(65, b"\0") for f in fields)
