"""devpts: /dev/pts, where pty slaves appear as they are created.

One instance per boot, however often it is mounted (as devtmpfs here; since
Linux 4.7 every devpts mount is a new instance, a difference only a guest
juggling several devpts mounts can see).  devtmpfs shows it at /dev/pts,
so ptys work without a `mount -t devpts` at boot.

The filesystem holds only names: `ptmx` (5,2) and one node per live pty,
`N` (136,N), owned by the process that opened /dev/ptmx, mode 0600 (Linux's
defaults without gid=/mode= options).  The ptys themselves are
drivers/pty.py's; `ptys` maps an index to its pair.
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.kernel.errors import KernelError
from umlpy.vfs.inode import Filesystem, Inode, dtype_of

DEVPTS_MAGIC = 0x1CD1
PTY_MAJOR = 136
NR_PTYS = 4096          # /proc/sys/kernel/pty/max's default
NR_UNIX98_PTY_MAX = 1 << 20     # the most it may be set to
NR_RESERVE = 1024       # kernel.pty.reserve: kept from mounts outside the first mount namespace


class PtsNode(Inode):
    """/dev/pts/N: valid while the master is open (cached lookups then fail)."""

    alive = True

    def revalidate(self) -> bool:
        return self.alive


class DevptsRoot(Inode):
    """The directory: ptmx and the live slaves, in index order."""

    @property
    def nlink(self) -> int:
        return 2            # however often devtmpfs links it in

    @nlink.setter
    def nlink(self, value: int) -> None:
        pass

    def lookup(self, name: bytes) -> Inode | None:
        fs = self.fs
        if name == b"ptmx":
            return fs.ptmx
        if name.isdigit() and (name == b"0" or not name.startswith(b"0")):
            return fs.nodes.get(int(name))
        return None

    def entries(self) -> list[tuple[bytes, int, int]]:
        fs = self.fs
        out = [(b"ptmx", fs.ptmx.ino, dtype_of(fs.ptmx.mode))]
        out += [(str(i).encode(), n.ino, dtype_of(n.mode)) for i, n in sorted(fs.nodes.items())]
        return out

    def _refuse(self, *_a, **_k):
        raise KernelError(E.EPERM)

    create = symlink = link = unlink = rmdir = rename = _refuse


class DevptsFs(Filesystem):
    blksize = 1024
    name = "devpts"
    magic = DEVPTS_MAGIC
    shared_instance = True

    def __init__(self) -> None:
        super().__init__()
        self.root = DevptsRoot(self, C.S_IFDIR | 0o755)
        self.ptmx = Inode(self, C.S_IFCHR | 0o000, rdev=structs.makedev(5, 2))
        self.nodes: dict[int, Inode] = {}
        self.ptys: dict[int, object] = {}
        self.limit = NR_PTYS        # kernel.pty.max
        # kernel.pty.reserve: this one instance is the first mount
        # namespace's, which may use all of max (devpts_new_index)
        self.reserve = NR_RESERVE

    def alloc(self, pty, uid: int, gid: int, index: int | None = None) -> int:
        """A new pty: the lowest free index (or the one given, free: a
        restore's), and its node; ENOSPC with kernel.pty.max of them live."""
        if len(self.ptys) >= self.limit or index in self.ptys:
            raise KernelError(E.ENOSPC)
        if index is None:
            index = next(i for i in range(len(self.ptys) + 1) if i not in self.ptys)
        self.ptys[index] = pty
        self.nodes[index] = PtsNode(self, C.S_IFCHR | 0o600, uid, gid, structs.makedev(PTY_MAJOR, index))
        self.root.touch()
        return index

    def kill(self, index: int) -> None:
        """The master is gone: the name goes (devpts_pty_kill)."""
        node = self.nodes.pop(index, None)
        if node is not None:
            node.alive = False
            node.nlink = 0
            self.root.touch()

    def release(self, index: int) -> None:
        """Both sides are gone: the index may be reused."""
        self.kill(index)
        self.ptys.pop(index, None)

    def statfs(self) -> dict:
        d = super().statfs()
        d["bsize"] = 1024
        return d


_instance: DevptsFs | None = None


def devpts_instance() -> DevptsFs:
    global _instance
    if _instance is None:
        _instance = DevptsFs()
    return _instance


def reset() -> None:
    """A new boot: no ptys."""
    global _instance
    _instance = None
