"""tmpfs mounts in a checkpoint: a tmpfs's limits and its whole tree,
every inode under its number (hard links are two entries naming one),
with its attributes, a directory's entries, a symlink's target and a
regular file's data as runs into a blob, holes left out, and the pages
fallocate(FALLOC_FL_KEEP_SIZE) reserved past its end (an open fifo's
pipe is saved with the files that hold it, which find the fifo again by
its path).  What a tmpfs inode holds beyond that (seals: only memfds
have them, checkpoint/unlinked.py) makes checkpoint/dump.py refuse the
machine; a manifest whose entries do not make one tree is refused by
the restore.
"""
from __future__ import annotations

import re

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.checkpoint import image
from umlpy.fs.tmpfs import FL_USER_MODIFIABLE, Tmpfs, TmpfsInode, xattr_space
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.sys_inotify import Watch

# a tmpfs inode's state the image carries or the restore makes again
# (the open and mapping counts, the dentry cache's generation, whether a
# writable shared mapping maps it, the unix socket bound to it, which
# checkpoint/unixsock.py saves and attaches again), and what else it may hold while
# empty; anything more is refused
CARRIED = frozenset(("fs", "ino", "mode", "uid", "gid", "rdev", "nlink", "atime", "mtime", "ctime",
                     "open_count", "pipe", "children", "data", "_size", "_prealloc_end", "_charged", "_falloc",
                     "_xattr_space",
                     "target", "_freed", "xattrs", "writecount", "readcount", "dgen", "shared_mapped", "mapped_bytes",
                     "socket", "fsflags",
                     "locks_state"))     # held by open descriptions, whose entries carry them (filelocks.py)
EMPTY_ATTRS = ("linkable",)
MARKS = "fsnotify_marks"     # inotify watches: saved with their instances (checkpoint/inotify.py)


def inodes(fs):
    """Every inode of a tmpfs tree once (hard links meet one), not going
    into another filesystem's root linked in (devtmpfs's pts)."""
    seen: set[int] = set()
    todo = [fs.root]
    while todo:
        i = todo.pop()
        if id(i) in seen:
            continue
        seen.add(id(i))
        yield i
        if i.is_dir:
            todo.extend(c for c in i.children.values() if c.fs is fs)


def unsaved(fs):
    """The first inode of a tmpfs holding what the image does not carry
    (a sealed or preallocated file, other inode state), None when there
    is none."""
    for i in inodes(fs):
        extra = set(vars(i)) - CARRIED
        if "seals" in extra \
                or any(getattr(i, a) for a in extra if a in EMPTY_ATTRS) or extra - set(EMPTY_ATTRS) - {MARKS} \
                or not all(isinstance(m, Watch) for m in getattr(i, MARKS, ())):
            return i
    return None


def save(fs, w, blob: str) -> dict:
    """A tmpfs's limits and tree: each inode with its number, attributes,
    a directory's entries, a symlink's target, a regular file's data as
    runs into the blob (holes left out)."""
    saved, pos = [], 0
    with w.blob(blob) as out:
        for i in inodes(fs):
            e = {"ino": i.ino, "mode": i.mode, "uid": i.uid, "gid": i.gid, "rdev": i.rdev,
                 "times": [i.atime, i.mtime, i.ctime],
                 "xattrs": [[n.hex(), v.hex()] for n, v in (getattr(i, "xattrs", None) or {}).items()]}
            if i.fsflags:
                e["fsflags"] = i.fsflags
            if i.is_dir:
                e["entries"] = [[n.hex(), c.ino] for n, c in i.children.items() if c.fs is fs]
            elif i.is_symlink:
                e["target"] = i.target.hex()
            elif i.is_reg:
                e["size"] = i.size()
                e["runs"], pos = save_data(i.data, i.size(), out, pos)
                if i._prealloc_end > i.size():
                    e["prealloc_end"] = i._prealloc_end
            saved.append(e)
    return {"size": fs.size_limit, "nr_inodes": fs.inode_limit, "root": fs.root.ino, "inodes": saved,
            "data": blob, "shown": fs.options_shown}


def save_data(mem, size: int, out, pos: int) -> tuple[list, int]:
    """The data of a memfd (a tmpfs file's, a SysV segment's) up to size,
    holes left out, written to the blob out from pos: its runs
    ([offset, length, offset in the blob]) and where the blob now ends."""
    runs, off = [], 0
    while mem is not None and off < size:
        try:
            start = mem.seek(off, C.SEEK_DATA)
        except OSError:         # ENXIO: holes to the end
            break
        end = min(mem.seek(start, C.SEEK_HOLE), size)
        runs.append([start, end - start, pos])
        for piece, n in image.pieces(start, end):
            data = mem.pread(n, piece)
            if len(data) != n:
                raise KernelError(E.EIO, "checkpoint: a file changed while saved")
            out.write(data)
        pos += end - start
        off = end
    return runs, pos


def load_data(write, e: image.Reader, size: int, blob) -> None:
    """Write back what save_data saved (e's `runs` into blob), each run
    checked to lie inside size and the blob: write(offset, bytes)."""
    for off, n, pos in e.list_of_ints("runs", 3, (0, 1, 0), (size, size + 1, blob.size)):
        if off + n > size or pos + n > blob.size:
            raise image.ImageError(f"manifest: {e.where}.runs: outside the file or the blob")
        for at in range(0, n, image.CHUNK):
            write(off + at, bytes(blob.read_at(pos + at, min(image.CHUNK, n - at))))


SHOWN = re.compile(r"([a-z_]+=[0-9]+k?(,[a-z_]+=[0-9]+k?)*)?")
KINDS = (C.S_IFDIR, C.S_IFREG, C.S_IFLNK, C.S_IFCHR, C.S_IFBLK, C.S_IFIFO, C.S_IFSOCK)


def make(k, t: image.Reader, into: Tmpfs | None = None, cls: type[Tmpfs] = Tmpfs) -> Tmpfs:
    """A tmpfs and its tree, as `save` wrote it: every
    inode under its number, linked where the entries say; a tree that is
    not one (a directory twice, a loop, an inode no entry reaches) is
    refused.  into: a tmpfs whose own tree this one replaces (the boot's
    devtmpfs), keeping its limits and another filesystem's root linked in;
    cls: the filesystem to make (a ramfs)."""
    if into is None:
        fs = cls(k.mem_budget.shmem, 0o1777, 0, 0, t.int("size", 0, 1 << 62), t.int("nr_inodes", 0, 1 << 62))
        foreign = {}
        if t.has("shown"):          # the mount's options as /proc/mounts showed them
            fs.options_shown = t.str("shown")
            if len(fs.options_shown) > 256 or not SHOWN.fullmatch(fs.options_shown):
                raise image.ImageError(f"manifest: {t.where}.shown: not options a tmpfs or ramfs shows")
    else:
        fs = into
        foreign = {n: c for n, c in fs.root.children.items() if c.fs is not fs}
        for i in list(inodes(fs)):
            if i is not fs.root:
                i.evict()
        fs.root.children.clear()
        fs.root.dgen += 1           # a dentry cached of the old tree is looked up again
    root = t.int("root", 1, 1 << 62)
    made: dict[int, TmpfsInode] = {}
    entries: dict[int, list] = {}
    blob = t.blob("data")
    try:
        for e in t.list("inodes"):
            ino, mode = e.int("ino", 1, 1 << 62), e.int("mode", 0, 1 << 16)
            if ino in made or mode & C.S_IFMT not in KINDS or ino == root and mode & C.S_IFMT != C.S_IFDIR:
                raise image.ImageError(f"manifest: {e.where}: a bad inode")
            if ino == root:
                i = fs.root
                i.mode = mode
                i.uid, i.gid = e.int("uid", 0, 1 << 32), e.int("gid", 0, 1 << 32)
            else:
                i = TmpfsInode(fs, mode, e.int("uid", 0, 1 << 32), e.int("gid", 0, 1 << 32),
                               e.int("rdev", 0, 1 << 32))
            i.ino = ino
            made[ino] = i
            if i.is_dir:
                entries[ino] = [(bytes.fromhex(n), c) for n, c in _pairs(e, "entries")]
            elif i.is_symlink:
                i.target = e.hex("target", 4096)
            elif i.is_reg:
                size = e.int("size", 0, 1 << 62)
                load_data(i.write, e, size, blob)
                i.truncate(size)
                if e.has("prealloc_end"):       # reserved again, as fallocate(KEEP_SIZE) did
                    end = e.int("prealloc_end", size + 1, 1 << 62)
                    try:
                        i.fallocate(C.FALLOC_FL_KEEP_SIZE, size, end - size)
                    except KernelError as err:
                        raise image.ImageError(f"manifest: {e.where}.prealloc_end: fallocate says "
                                               f"{E.NAMES.get(err.errno, err.errno)}") from None
            for n, v in _pairs(e, "xattrs"):
                i.xattrs = getattr(i, "xattrs", None) or {}
                name, value = bytes.fromhex(n), bytes.fromhex(v)
                i.xattrs[name] = value
                i._xattr_space += xattr_space(name, value)
                fs.xattr_bytes += xattr_space(name, value)
            if e.has("fsflags"):
                i.fsflags = e.int("fsflags", 0, FL_USER_MODIFIABLE)
                if i.fsflags & ~FL_USER_MODIFIABLE:
                    raise image.ImageError(f"manifest: {e.where}: chattr flags tmpfs does not keep")
            i.atime, i.mtime, i.ctime = e.ints("times", -(1 << 63), 1 << 63, 3)
    finally:
        blob.close()
    _link_tree(fs, made, entries, t.where)
    for name, c in foreign.items():
        if name in fs.root.children:
            raise image.ImageError(f"manifest: {t.where}: a bad entry {name!r}")
        fs.root.children[name] = c
    fs._next_ino = max(made)
    return fs


def _pairs(e: image.Reader, key: str) -> list[tuple[str, object]]:
    """A list of [hex name, value] pairs (entries: value an inode number;
    xattrs: a hex value), names at most NAME_MAX bytes, values at most 64 KiB."""
    v = e.doc.get(key, [])
    bad = image.ImageError(f"manifest: {e.where}.{key}: not a list of pairs")
    if not isinstance(v, list):
        raise bad
    for p in v:
        if not (isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and 0 < len(p[0]) <= 510
                and (type(p[1]) is int or isinstance(p[1], str) and len(p[1]) <= 1 << 17)):
            raise bad
        try:
            bytes.fromhex(p[0]) + (bytes.fromhex(p[1]) if isinstance(p[1], str) else b"")
        except ValueError:
            raise bad from None
    return [tuple(p) for p in v]


def _link_tree(fs: Tmpfs, made: dict, entries: dict, where: str) -> None:
    """Hang every inode under its names, count the links, and check that
    the entries make one tree from the root."""
    for dino, ents in entries.items():
        d = made[dino]
        for name, c in ents:
            child = made.get(c) if type(c) is int else None
            if child is None or b"/" in name or b"\0" in name or name in (b".", b"..") or name in d.children \
                    or child is fs.root:
                raise image.ImageError(f"manifest: {where}: a bad entry {name!r}")
            d.children[name] = child
    links: dict[int, int] = {}
    for d in made.values():
        if d.is_dir:
            for c in d.children.values():
                links[id(c)] = links.get(id(c), 0) + 1
    seen, todo = {id(fs.root)}, [fs.root]
    while todo:
        d = todo.pop()
        for c in d.children.values():
            if c.is_dir and (links[id(c)] != 1 or id(c) in seen):
                raise image.ImageError(f"manifest: {where}: a directory linked twice")
            if id(c) not in seen:
                seen.add(id(c))
                if c.is_dir:
                    todo.append(c)
    if len(seen) != len(made):
        raise image.ImageError(f"manifest: {where}: an inode no entry reaches")
    for i in made.values():
        i.nlink = 2 + sum(c.is_dir for c in i.children.values()) if i.is_dir else links[id(i)]
