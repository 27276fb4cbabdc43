"""devtmpfs: a tmpfs at /dev holding the kernel's device nodes (one instance)."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import structs
from umlpy.fs import devpts
from umlpy.fs.tmpfs import Tmpfs
from umlpy.kernel.shmem import ShmemPool
from umlpy.vfs.devices import MEM_DEVICES

TTY_DEVICES = [("console", 5, 1, 0o600), ("tty", 5, 0, 0o666), ("tty0", 4, 0, 0o620), ("ptmx", 5, 2, 0o666)]


DISK_GID = 6     # disks belong to group disk, mode 0660

_instance: Tmpfs | None = None
_driver_nodes: list[tuple[str, int, int, int]] = []     # name, mode, gid, rdev


def _mknod(name: str, mode: int, gid: int, rdev: int) -> None:
    if _instance is not None and _instance.root.lookup(name.encode()) is None:
        _instance.root.create(name.encode(), mode, 0, gid, rdev)


def add_block_node(name: str, major: int, minor: int) -> None:
    node = (name, C.S_IFBLK | 0o660, DISK_GID, structs.makedev(major, minor))
    _driver_nodes.append(node)
    _mknod(*node)


def add_char_node(name: str, major: int, minor: int, mode: int) -> None:
    """A driver's character device (misc_register: /dev/loop-control)."""
    node = (name, C.S_IFCHR | mode, 0, structs.makedev(major, minor))
    _driver_nodes.append(node)
    _mknod(*node)


def remove_node(name: str) -> None:
    """A removed disk (mconsole remove, LOOP_CTL_REMOVE) or line: its node
    goes (the caller drops what the mounts of /dev cached of it)."""
    _driver_nodes[:] = [n for n in _driver_nodes if n[0] != name]
    if _instance is not None and _instance.root.lookup(name.encode()) is not None:
        _instance.root.unlink(name.encode())


def add_missing_nodes() -> None:
    """The drivers' nodes a tree made otherwise lacks (a restored /dev)."""
    for node in _driver_nodes:
        _mknod(*node)


def instance() -> Tmpfs | None:
    return _instance


def reset() -> None:
    """A new boot: a new devtmpfs."""
    global _instance
    _instance = None
    _driver_nodes.clear()
    devpts.reset()


def devtmpfs_instance(pool: ShmemPool) -> Tmpfs:
    """devtmpfs is one filesystem however often it is mounted, as Linux's
    (the machine's: what its files hold is the machine's shmem)."""
    global _instance
    if _instance is None:
        _instance = make_devtmpfs(pool)
        _instance.shared_instance = True
        add_missing_nodes()
    return _instance


def make_devtmpfs(pool: ShmemPool) -> Tmpfs:
    fs = Tmpfs(pool, 0o755)
    fs.options_shown = "mode=755"       # devtmpfs_init's kernel mount options, as shmem_show_options shows them
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
