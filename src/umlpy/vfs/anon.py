"""anon_inodefs: the inodes behind eventfd, timerfd and signalfd files.

Linux gives these files one shared anonymous inode each kind; fstat shows
mode 0600 without a file type, /proc/PID/fd shows `anon_inode:[name]`.
"""
from __future__ import annotations

from umlpy.vfs.inode import Filesystem, Inode


class AnonFs(Filesystem):
    name = "anon_inodefs"
    magic = 0x09041934


class AnonInode(Inode):
    def __init__(self, fs: AnonFs, kind: str) -> None:
        super().__init__(fs, 0o600)
        self.kind = kind

    def link_name(self) -> str:
        return f"anon_inode:[{self.kind}]"


_fs: AnonFs | None = None
_inodes: dict[str, AnonInode] = {}


def anon_inode(kind: str) -> AnonInode:
    global _fs
    if _fs is None:
        _fs = AnonFs()
    ino = _inodes.get(kind)
    if ino is None:
        ino = _inodes[kind] = AnonInode(_fs, kind)
    return ino
