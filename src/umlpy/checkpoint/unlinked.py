"""Open files with no name left (unlinked while open, or made with
O_TMPFILE) in a checkpoint: no path finds them again, so their contents
travel in the image.

Each such inode is saved once, on the first of its descriptions: its
mode, owner, size, whether linkat may still name it (O_TMPFILE without
O_EXCL), and its nonzero pieces as runs into the blob `unlinked.bin`;
every description of it names it by `group`, with the directory it was
in (`dir`).  The restore makes a new nameless file in that directory's
filesystem (the filesystem's own tmpfile, as O_TMPFILE), writes the
runs, sets the size, and opens each description on it: what the
programs read and write is as it was; the inode's number is new.  A
disk's own copy of the old inode is an orphan the mount frees, as after
a crash.  Refused (checkpoint/dump.py): a nameless file in a directory
that has no name either, with locks or a lease, or mapped shared.
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.checkpoint import image
from umlpy.kernel.errors import KernelError
from umlpy.vfs.dentry import Dentry

BLOB = "unlinked.bin"
U32 = 1 << 32
MAX_SIZE = 1 << 44          # the largest a restore takes


def savable(f) -> bool:
    """A nameless regular file in a directory that still has a name."""
    d = f.dentry
    up = d.up() if d is not None else None
    return f.inode.is_reg and f.inode.nlink == 0 and up is not None and up.inode.nlink > 0


def save_all(w, opens: dict, path_of) -> str | None:
    """Turn the entries of nameless files into `unlinked` ones, their
    contents into the blob; returns the blob's name (None: none)."""
    todo = [(e, f) for _i, e, f in sorted(opens.values(), key=lambda x: x[0])
            if e.get("kind") == "file" and f.inode.nlink == 0]
    if not todo:
        return None
    groups: dict[int, int] = {}
    pos = 0
    with w.blob(BLOB) as out:
        for e, f in todo:
            del e["path"]
            e.update(kind="unlinked", dir=path_of(f.dentry.up()))
            g = groups.get(id(f.inode))
            if g is not None:
                e["group"] = g
                continue
            i = f.inode
            e["group"] = groups[id(i)] = len(groups)
            size = i.size()
            runs = []
            for off in range(0, size, image.CHUNK):
                data = i.read(off, min(image.CHUNK, size - off))
                for o, n in image.nonzero_runs(data):
                    out.write(data[o:o + n])
                    runs.append([off + o, n, pos])
                    pos += n
            e.update(mode=i.mode, uid=i.uid, gid=i.gid, size=size, runs=runs,
                     linkable=bool(getattr(i, "linkable", False)))
    return BLOB


class Restorer:
    """The nameless files of an image, each made once, at the first open
    of any of its descriptions."""

    def __init__(self, r: image.Reader, opens: list[image.Reader]) -> None:
        self.r = r
        self.first = {o.int("group", 0, U32): o for o in opens if o.str("kind") == "unlinked" and o.has("runs")}
        self.made: dict[int, Dentry] = {}

    def open(self, t, o: image.Reader, flags: int, lookup):
        """The description o of a nameless file (lookup: a guest path to
        its dentry)."""
        g = o.int("group", 0, U32)
        d = self.made.get(g)
        if d is None:
            d = self.made[g] = self._make(t, g, lookup)
        if d.up() is not lookup(o.path("dir")):
            raise image.ImageError(f"manifest: {o.where}.dir: not the directory of its group's file")
        f = d.inode.open_file(d, flags & ~(C.O_CREAT | C.O_EXCL | C.O_TRUNC | C.O_TMPFILE), t)
        f.pos = o.int("pos", 0, 1 << 63)
        return f

    def _make(self, t, g: int, lookup) -> Dentry:
        e = self.first.get(g)
        if e is None:
            raise image.ImageError(f"manifest: unlinked group {g}: no description carries its file")
        parent = lookup(e.path("dir"))
        mode = e.int("mode", 0, 1 << 16)
        size = e.int("size", 0, MAX_SIZE + 1)
        if not parent.inode.is_dir or mode & C.S_IFMT != C.S_IFREG:
            raise image.ImageError(f"manifest: {e.where}: not a regular file in a directory")
        try:
            inode = parent.inode.tmpfile(mode & 0o7777, e.int("uid", 0, U32), e.int("gid", 0, U32))
        except KernelError as err:
            raise image.ImageError(f"manifest: {e.where}: cannot make it again (errno {err.errno})") from None
        inode.linkable = e.bool("linkable")
        blob = self.r.blob("unlinked_blob")
        try:
            for off, n, at in e.list_of_ints("runs", 3, (0, 1, 0), (size, size + 1, blob.size)):
                if off + n > size or at + n > blob.size:
                    raise image.ImageError(f"manifest: {e.where}: a run past the file or the blob")
                inode.write(off, bytes(blob.read_at(at, n)))
        finally:
            blob.close()
        inode.truncate(size)
        return Dentry(b"#%d" % inode.ino, parent, inode, parent.mount)
