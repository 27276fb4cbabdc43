"""ramfs: Linux's simplest memory filesystem, here a tmpfs without limits.

What tells it from a tmpfs, as Linux's fs/ramfs shows it: its magic
(RAMFS_MAGIC), a statfs that counts nothing (simple_statfs: no blocks, no
inodes), mode= as its only option (others ignored, as ramfs always has),
shown in /proc/mounts when it is not the default 0755.  Its pages count
in the machine's shmem (kernel/shmem.py), as Linux's take from its RAM.
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

    @classmethod
    def from_options(cls, data: str, pool) -> Ramfs:
        """ramfs_parse_param: mode= (octal), anything else ignored."""
        mode = DEFAULT_MODE
        for word in filter(None, data.split(",")):
            key, _, val = word.partition("=")
            if key == "mode":
                try:
                    mode = _u32(val, 8) & 0o7777
                except ValueError:
                    raise KernelError(E.EINVAL, "ramfs: Bad value for 'mode'") from None
        fs = cls(pool, mode)
        fs.options_shown = f"mode={mode:o}" if mode != DEFAULT_MODE else ""
        return fs

    def statfs(self) -> dict:
        st = Filesystem.statfs(self)        # simple_statfs: nothing counted
        st.update(bsize=C.PAGE_SIZE)
        return st
