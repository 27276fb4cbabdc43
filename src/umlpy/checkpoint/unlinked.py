"""Open files with no name left (unlinked while open, or made with
O_TMPFILE) in a checkpoint: no path finds them again, so their contents
travel in the image.

Each such inode is saved once, on the first of its descriptions: its
mode, owner, size, whether linkat may still name it (O_TMPFILE without
O_EXCL), and its nonzero pieces as runs into the blob `unlinked.bin`;
every description of it, and every private mapping of it, names it by
`group`, with the directory it was in (`dir`), and the first also by the
name it had (`name`, shown " (deleted)"; an O_TMPFILE file's is its new
number).  The restore makes a new nameless file in that directory's
filesystem (the filesystem's own tmpfile, as O_TMPFILE), writes the
runs, sets the size, and opens each description on it: what the
programs read and write is as it was; the inode's number is new.  A
disk's own copy of the old inode is an orphan the mount frees, as after
a crash.  A memfd is such a file too, with `memfd` in place of `dir`
and its `seals`, made again as memfd_create makes one (its name kept,
"memfd:NAME") and mapped shared again where it was; the seals are set
once its contents are written.  Refused (checkpoint/dump.py): a nameless
file in a directory that has no name either, with locks or a lease, or
mapped shared (but a memfd).
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.checkpoint import image
from umlpy.kernel.errors import KernelError
from umlpy.syscalls import sys_memfd
from umlpy.vfs.dentry import Dentry
from umlpy.vfs.inode import Inode

BLOB = "unlinked.bin"
U32 = 1 << 32
MAX_SIZE = 1 << 44          # the largest a restore takes


def savable(f) -> bool:
    """A nameless regular file in a directory that still has a name."""
    return f.dentry is not None and dentry_savable(f.dentry)


def dentry_savable(d) -> bool:
    """The file of d (open, or mapped privately) is regular, has no name
    left, and was in a directory that still has one, of a filesystem that
    makes nameless files (O_TMPFILE: not hostfs)."""
    up = d.up()
    return d.inode.is_reg and d.inode.nlink == 0 and up is not d and up.inode.nlink > 0 \
        and type(up.inode).tmpfile is not Inode.tmpfile


def save_all(w, opens: dict, path_of, maps: list) -> str | None:
    """Turn the entries of nameless files into `unlinked` ones, and those
    of the file mappings in maps ((entry, dentry) of a private mapping of
    a nameless file) into ones naming its group; their contents into the
    blob; returns the blob's name (None: none)."""
    todo = [(e, f.dentry, True) for _i, e, f in sorted(opens.values(), key=lambda x: x[0])
            if e.get("kind") == "file" and f.inode.nlink == 0]
    todo += [(e, d, False) for e, d in maps]
    if not todo:
        return None
    groups: dict[int, int] = {}
    pos = 0
    with w.blob(BLOB) as out:
        for e, d, is_open in todo:
            e.pop("path", None)
            memfd = sys_memfd.is_memfd(d)
            if memfd:
                e["memfd"] = True
            else:
                e["dir"] = path_of(d.up())
            if is_open:
                e["kind"] = "unlinked"
            g = groups.get(id(d.inode))
            if g is not None:
                e["group"] = g
                continue
            i = d.inode
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
            if memfd:
                e["seals"] = i.seals
            if d.name != b"#%d" % i.ino:      # the name it had (an O_TMPFILE's shows its new number)
                e["name"] = d.name.hex()
    return BLOB


class Restorer:
    """The nameless files of an image, each made once, at the first open
    of any of its descriptions."""

    def __init__(self, r: image.Reader, opens: list[image.Reader]) -> None:
        self.r = r
        self.first = {o.int("group", 0, U32): o for o in opens if o.str("kind") == "unlinked" and o.has("runs")}
        for p in r.list("processes"):       # a file only a mapping holds is carried by that mapping
            if p.has("mm"):
                self.first.update((o.int("group", 0, U32), o) for o in p.sub("mm").list("files")
                                  if o.has("group") and o.has("runs"))
        self.made: dict[int, Dentry] = {}

    def dentry(self, t, o: image.Reader, lookup) -> Dentry:
        """The nameless file an entry (a description's, a mapping's) names
        by its group, made at the first (lookup: a guest path to its dentry)."""
        g = o.int("group", 0, U32)
        d = self.made.get(g)
        if d is None:
            d = self.made[g] = self._make(t, g, lookup)
        if o.has("memfd") != sys_memfd.is_memfd(d) or not o.has("memfd") and d.up() is not lookup(o.path("dir")):
            raise image.ImageError(f"manifest: {o.where}.dir: not the directory of its group's file")
        return d

    def open(self, t, o: image.Reader, flags: int, lookup):
        """The description o of a nameless file."""
        d = self.dentry(t, o, lookup)
        f = d.inode.open_file(d, flags & ~(C.O_CREAT | C.O_EXCL | C.O_TRUNC | C.O_TMPFILE), t)
        f.pos = o.int("pos", 0, 1 << 63)
        return f

    def _make(self, t, g: int, lookup) -> Dentry:
        e = self.first.get(g)
        if e is None:
            raise image.ImageError(f"manifest: unlinked group {g}: no description carries its file")
        mode = e.int("mode", 0, 1 << 16)
        size = e.int("size", 0, MAX_SIZE + 1)
        if mode & C.S_IFMT != C.S_IFREG:
            raise image.ImageError(f"manifest: {e.where}: not a regular file")
        if e.has("memfd"):
            name = e.hex("name", 255)
            if not name.startswith(b"memfd:") or b"\0" in name:
                raise image.ImageError(f"manifest: {e.where}.name: not a memfd's name")
            made = sys_memfd.memfd_dentry(t.kernel, name, mode & 0o7777, e.int("uid", 0, U32), e.int("gid", 0, U32))
            inode = made.inode
            seals = e.int("seals", 0, sys_memfd.F_ALL_SEALS + 1)
        else:
            parent = lookup(e.path("dir"))
            if not parent.inode.is_dir:
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
        if e.has("memfd"):
            inode.seals = seals         # once its contents are in
            return made
        name = e.filename("name") if e.has("name") else b"#%d" % inode.ino
        return Dentry(name, parent, inode, parent.mount)       # no lookup finds it: " (deleted)"
