"""anon_inodefs: the inode behind eventfd, timerfd, signalfd, epoll and
inotify files.

Linux gives all these files one shared anonymous inode (anon_inode_inode):
fstat shows the same inode, mode 0600 without a file type, for every one;
/proc/PID/fd shows `anon_inode:NAME`, the name each kind gives its files
(File.kind: "[eventfd]", "inotify", ...).
"""
from __future__ import annotations

from umlpy.vfs.inode import Filesystem, Inode


class AnonFs(Filesystem):
    name = "anon_inodefs"
    magic = 0x09041934


class AnonInode(Inode):
    def __init__(self, fs: AnonFs) -> None:
        super().__init__(fs, 0o600)


_inode: AnonInode | None = None


def anon_inode() -> AnonInode:
    global _inode
    if _inode is None:
        _inode = AnonInode(AnonFs())
    return _inode
