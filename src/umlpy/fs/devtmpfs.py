"""devtmpfs: a tmpfs at /dev holding the kernel's device nodes (one instance)."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import structs
from umlpy.fs import devpts
from umlpy.fs.tmpfs import Tmpfs
from umlpy.vfs.devices import MEM_DEVICES

TTY_DEVICES = [("console", 5, 1, 0o600), ("tty", 5, 0, 0o666), ("tty0", 4, 0, 0o620), ("ptmx", 5, 2, 0o666)]


_instance: Tmpfs | None = None
_block_nodes: list[tuple[str, int, int]] = []


def add_block_node(name: str, major: int, minor: int) -> None:
    _block_nodes.append((name, major, minor))
    if _instance is not None and _instance.root.lookup(name.encode()) is None:
        _instance.root.create(name.encode(), C.S_IFBLK | 0o660, 0, 6, structs.makedev(major, minor))


def remove_block_node(name: str) -> None:
    """A hot-removed disk (mconsole remove): its node goes (the caller
    drops what the mounts of /dev cached of it)."""
    _block_nodes[:] = [n for n in _block_nodes if n[0] != name]
    if _instance is not None and _instance.root.lookup(name.encode()) is not None:
        _instance.root.unlink(name.encode())


def instance() -> Tmpfs | None:
    return _instance


def reset() -> None:
    """A new boot: a new devtmpfs."""
    global _instance
    _instance = None
    _block_nodes.clear()
    devpts.reset()


def devtmpfs_instance() -> Tmpfs:
    """devtmpfs is one filesystem however often it is mounted, as Linux's."""
    global _instance
    if _instance is None:
        _instance = make_devtmpfs()
        _instance.shared_instance = True
        for name, ma, mi in _block_nodes:
            _instance.root.create(name.encode(), C.S_IFBLK | 0o660, 0, 6, structs.makedev(ma, mi))
    return _instance


def make_devtmpfs() -> Tmpfs:
    fs = Tmpfs(0o755)
    root = fs.root
    for name, ma, mi, mode, _cls in MEM_DEVICES:
        root.create(name.encode(), C.S_IFCHR | mode, 0, 0, structs.makedev(ma, mi))
    for name, ma, mi, mode in TTY_DEVICES:
        root.create(name.encode(), C.S_IFCHR | mode, 0, 0, structs.makedev(ma, mi))
    root.link(b"pts", devpts.devpts_instance().root)    # devpts, as if mounted at boot
    root.create(b"shm", C.S_IFDIR | 0o1777, 0, 0)
    for name, target in ((b"fd", b"/proc/self/fd"), (b"stdin", b"/proc/self/fd/0"),
                         (b"stdout", b"/proc/self/fd/1"), (b"stderr", b"/proc/self/fd/2")):
        root.symlink(name, target, 0, 0)
    return fs
