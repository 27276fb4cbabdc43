"""Unpacking a newc (SVR4, magic 070701/070702) cpio archive: the initramfs."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.kernel.errors import KernelError


class CpioError(Exception):
    pass


def entries(data: bytes):
    """Yield (name, mode, uid, gid, nlink, mtime, rdev, ino, body) per member."""
    off = 0
    n = len(data)
    while off + 110 <= n:
        magic = data[off:off + 6]
        if magic == b"\0" * 6:   # padding between concatenated archives
            off += 4
            continue
        if magic not in (b"070701", b"070702"):
            raise CpioError(f"bad cpio magic at offset {off}")
        f = [int(data[off + 6 + 8 * i: off + 14 + 8 * i], 16) for i in range(13)]
        ino, mode, uid, gid, nlink, mtime, fsize = f[0:7]
        rmaj, rmin, namesize = f[9], f[10], f[11]
        name_off = off + 110
        name = data[name_off:name_off + namesize - 1]
        body_off = (name_off + namesize + 3) & ~3
        body = data[body_off:body_off + fsize]
        off = (body_off + fsize + 3) & ~3
        if name == b"TRAILER!!!":
            continue
        yield name, mode, uid, gid, nlink, mtime, structs.makedev(rmaj, rmin), ino, body


def unpack(data: bytes, root) -> int:
    """Unpack into the directory inode `root`; returns the member count."""
    count = 0
    links: dict[tuple[int, int], object] = {}
    for name, mode, uid, gid, nlink, mtime, rdev, ino, body in entries(data):
        path = name.strip(b"/")
        if path in (b"", b"."):
            root.mode = (root.mode & C.S_IFMT) | (mode & 0o7777)
            continue
        *dirs, last = path.split(b"/")
        d = root
        for comp in dirs:
            nxt = d.lookup(comp)
            if nxt is None:
                nxt = d.create(comp, C.S_IFDIR | 0o755, 0, 0)
            d = nxt
        existing = d.lookup(last)
        fmt = mode & C.S_IFMT
        if existing is not None and not (fmt == C.S_IFDIR and existing.is_dir):
            if existing.is_dir:
                continue
            d.unlink(last)
            existing = None
        if fmt == C.S_IFLNK:
            node = d.symlink(last, body, uid, gid)
        elif fmt == C.S_IFDIR:
            node = existing or d.create(last, mode, uid, gid)
            node.mode = mode
        elif fmt == C.S_IFREG and nlink > 1 and (ino, rdev) in links:
            d.link(last, links[(ino, rdev)])
            node = links[(ino, rdev)]
            if body:
                node.write(0, body)
        else:
            node = d.create(last, mode, uid, gid, rdev)
            if fmt == C.S_IFREG:
                if nlink > 1:
                    links[(ino, rdev)] = node
                if body:
                    node.write(0, body)
        node.uid, node.gid = uid, gid
        t = mtime * 10**9
        node.mtime = node.ctime = node.atime = t
        count += 1
    if count == 0:
        raise KernelError(E.EINVAL, "empty initramfs")
    return count
