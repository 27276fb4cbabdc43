"""ramfs: Linux's simplest memory filesystem, here a tmpfs without limits.

What tells it from a tmpfs, as Linux's fs/ramfs shows it: its magic
(RAMFS_MAGIC), a statfs that counts nothing (simple_statfs: no blocks, no
inodes), mode= as its only option (others ignored, as ramfs always has),
shown in /proc/mounts when it is not the default 0755.
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.tmpfs import Tmpfs, _u32
from umlpy.kernel.errors import KernelError
from umlpy.vfs.inode import Filesystem

RAMFS_MAGIC = 0x858458F6
DEFAULT_MODE = 0o755


class Ramfs(Tmpfs):
    name = "ramfs"
    magic = RAMFS_MAGIC

    def __init__(self, mode: int = DEFAULT_MODE, uid: int = 0, gid: int = 0, size: int = 0,
                 nr_inodes: int = 0, total: int = 1 << 32) -> None:
        super().__init__(mode, uid, gid, 0, 0, total)
        self.mount_mode = mode & 0o7777       # what mode= said, which /proc/mounts shows

    @classmethod
    def from_options(cls, data: str, mem_total: int) -> Ramfs:
        """ramfs_parse_param: mode= (octal), anything else ignored."""
        mode = DEFAULT_MODE
        for word in filter(None, data.split(",")):
            key, _, val = word.partition("=")
            if key == "mode":
                try:
                    mode = _u32(val, 8) & 0o7777
                except ValueError:
                    raise KernelError(E.EINVAL, "ramfs: Bad value for 'mode'") from None
        return cls(mode, total=mem_total)

    def statfs(self) -> dict:
        st = Filesystem.statfs(self)        # simple_statfs: nothing counted
        st.update(bsize=C.PAGE_SIZE)
        return st

    def show_options(self) -> str:
        return f"mode={self.mount_mode:o}" if self.mount_mode != DEFAULT_MODE else ""
