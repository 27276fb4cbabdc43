"""sysfs: the device model as far as userspace device managers read it.

Every device the kernel has (the disks, the console and tty, the mem
devices, loop-control) is a directory under /sys/devices with `dev`
("MAJ:MIN"), `uevent` (MAJOR, MINOR, DEVNAME) and a `subsystem` link,
reached from /sys/block, /sys/class/<subsystem> and /sys/dev/{block,char}/
MAJ:MIN by symlinks as in Linux; busybox `mdev -s` walks /sys/dev (older
ones /sys/block and /sys/class) and creates the nodes.  A disk has its
size, ro flag and queue limits, and what its driver adds (loop's `loop/`
while bound).  The initial network namespace's devices are under
/sys/class/net (mtu, address, flags, operstate, statistics/...: what
scripts and psutil read; Linux shows the mounter's namespace's, umlpy's
one sysfs the initial one's).  Plus the few attributes tools read: cpu
online masks and transparent hugepage modes.

Disks and network devices come and go (loop devices, hot-plugged ubds),
so the tree is made again whenever they change; a disk's attributes find
their disk by name, a network device's by index, when read.
"""
from __future__ import annotations

from typing import Callable

from umlpy.abi import errno as E
from umlpy.abi.userfaultfd import USERFAULTFD_MINOR
from umlpy.block.device import DMA_ALIGN
from umlpy.kernel.uevent import device_env
from umlpy.drivers.loop import LOOP_CTRL_MINOR
from umlpy.fs.devtmpfs import TTY_DEVICES
from umlpy.fs.procfs.base import Dir, GenFile, Spec, VirtFs, ro, symlink, text
from umlpy.kernel.errors import KernelError
from umlpy.net.netdev import IF_OPER_DOWN, IF_OPER_UP, IFF_LOWER_UP, IFF_RUNNING
from umlpy.vfs.devices import MEM_DEVICES, MISC_MAJOR

SYSFS_MAGIC = 0x62656572
PAGE = 4096     # what stat says of an attribute's size


def _attr(value: str | Callable[[], str]):
    """A read-only attribute, shown at the first read as sysfs shows one
    (an attribute that fails, a down device's carrier, fails the read, not
    the open)."""
    show = text(value)
    return lambda fs, key: GenFile(fs, key, show, mode=0o444, size=PAGE, pollable=True, lazy=True)


def _disk(kernel, name: str):
    for dev in kernel.disks:
        if dev.name == name:
            return dev
    raise KernelError(E.ENOENT)


def stat_line(dev) -> str:
    """A disk's `stat` (part_stat_show): its 17 figures (block/stats.py),
    each right-aligned in a field of 8 (the 4th, 8th and 11th, ms, of 8 too)."""
    return " ".join(f"{v:8d}" for v in dev.stats.fields())


def _disk_attrs(kernel, name: str) -> Spec:
    """A disk's attributes (disk_attrs and the queue's), read from the disk
    of that name when opened."""
    def live(get: Callable) -> Callable:
        return _attr(lambda: str(get(_disk(kernel, name))))

    dev = _disk(kernel, name)
    bsize = live(lambda d: d.block_size)
    spec: Spec = {
        "size": live(lambda d: d.size // 512), "ro": live(lambda d: int(d.read_only)),
        "removable": _attr("0"), "range": _attr(str(dev.minors)), "alignment_offset": _attr("0"),
        "discard_alignment": _attr("0"), "stat": _attr(lambda: stat_line(_disk(kernel, name))),
        "queue": {"logical_block_size": bsize, "physical_block_size": bsize, "hw_sector_size": bsize,
                  "minimum_io_size": bsize, "optimal_io_size": _attr("0"),
                  "dma_alignment": _attr(str(DMA_ALIGN - 1)),
                  "read_ahead_kb": live(lambda d: d.readahead // 2)}}
    for group, attrs in dev.sysfs_groups().items():
        spec[group] = {a: ro(lambda task, g=group, a=a: text(
            _disk(kernel, name).sysfs_groups()[g][a](task))(task), size=PAGE) for a in attrs}
    return spec


def _device(name: str, major: int, minor: int, subsystem: str, up: int, extra: Spec) -> Spec:
    """A device directory `up` levels below /sys."""
    uevent = "\n".join(device_env(name, major, minor, subsystem))
    spec: Spec = {"dev": _attr(f"{major}:{minor}"), "uevent": _attr(uevent),
                  "subsystem": symlink("../" * up + f"class/{subsystem}")}
    spec.update(extra)
    return spec


def _devices(kernel) -> list[tuple[str, str, int, int, str, Spec]]:
    """(subsystem, name, major, minor, path under devices/, attributes)."""
    out = []
    for d in kernel.disks:
        out.append(("block", d.name, d.major, d.minor, d.sysfs_dir, _disk_attrs(kernel, d.name)))
    for name, ma, mi, _mode in TTY_DEVICES:
        out.append(("tty", name, ma, mi, f"virtual/tty/{name}", {}))
    for name, ma, mi, _mode, _cls in MEM_DEVICES:
        out.append(("mem", name, ma, mi, f"virtual/mem/{name}", {}))
    out.append(("misc", "loop-control", MISC_MAJOR, LOOP_CTRL_MINOR, "virtual/misc/loop-control", {}))
    out.append(("misc", "userfaultfd", MISC_MAJOR, USERFAULTFD_MINOR, "virtual/misc/userfaultfd", {}))
    return out


_OPERSTATE = {IF_OPER_DOWN: "down", IF_OPER_UP: "up"}
# statistics/ counts only packets and bytes (as /proc/net/dev): the rest read 0
_ZERO_STATS = ("collisions", "multicast", "rx_compressed", "rx_crc_errors", "rx_dropped", "rx_errors",
               "rx_fifo_errors", "rx_frame_errors", "rx_length_errors", "rx_missed_errors", "rx_nohandler",
               "rx_over_errors", "tx_aborted_errors", "tx_carrier_errors", "tx_compressed", "tx_dropped",
               "tx_errors", "tx_fifo_errors", "tx_heartbeat_errors", "tx_window_errors")


def _netdev(kernel, index: int):
    dev = kernel.net.devices.get(index)
    if dev is None:
        raise KernelError(E.ENOENT)     # gone since the directory was listed
    return dev


def _carrier(dev) -> str:
    if not dev.up:
        raise KernelError(E.EINVAL)     # carrier_show: netif_running, else EINVAL
    return "1"


def _netdev_attrs(kernel, index: int, name: str) -> Spec:
    """/sys/class/net/NAME (net-sysfs.c's attributes umlpy's devices have),
    read live from the device; `flags` is dev->flags, without the
    RUNNING and LOWER_UP that dev_get_flags (ip, SIOCGIFFLAGS) adds."""
    def live(get: Callable) -> Callable:
        return _attr(lambda: str(get(_netdev(kernel, index))))

    def hexbytes(b: bytes) -> str:
        return ":".join(f"{x:02x}" for x in b)
    stats = {k: live(lambda d, k=k: getattr(d.stats, k)) for k in ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets")}
    stats.update({k: _attr("0") for k in _ZERO_STATS})
    return {"addr_len": live(lambda d: len(d.hwaddr)), "address": live(lambda d: hexbytes(d.hwaddr)),
            "broadcast": live(lambda d: hexbytes(d.hw_broadcast)), "carrier": live(_carrier),
            "dev_id": _attr("0x0"), "flags": live(lambda d: f"{d.flags & ~(IFF_RUNNING | IFF_LOWER_UP):#x}"),
            "ifindex": _attr(str(index)), "iflink": _attr(str(index)), "mtu": live(lambda d: d.mtu),
            "operstate": live(lambda d: _OPERSTATE.get(d.operstate, "unknown")),
            "tx_queue_len": live(lambda d: d.txqlen), "type": live(lambda d: d.type),
            "uevent": _attr(f"INTERFACE={name}\nIFINDEX={index}"),
            "subsystem": symlink("../../../../class/net"), "statistics": stats}


def _put(tree: Spec, path: str, leaf) -> None:
    *dirs, last = path.split("/")
    for d in dirs:
        tree = tree.setdefault(d, {})
    tree[last] = leaf


def sysfs_spec(kernel) -> Spec:
    tree: Spec = {"block": {}, "bus": {}, "class": {"block": {}, "mem": {}, "misc": {}, "net": {}, "tty": {}},
                  "dev": {"block": {}, "char": {}}, "devices": {}, "firmware": {},
                  "fs": {"cgroup": {}}, "kernel": {"uevent_seqnum": _attr(lambda: str(kernel.uevents.seqnum))},
                  "module": {}, "power": {}}
    for subsystem, name, ma, mi, path, attrs in _devices(kernel):
        up = path.count("/") + 2
        _put(tree, f"devices/{path}", _device(name, ma, mi, subsystem, up, attrs))
        _put(tree, f"class/{subsystem}/{name}", symlink(f"../../devices/{path}"))
        kind = "block" if subsystem == "block" else "char"
        _put(tree, f"dev/{kind}/{ma}:{mi}", symlink(f"../../devices/{path}"))
        if subsystem == "block":
            _put(tree, f"block/{name}", symlink(f"../devices/{path}"))
    for dev in sorted(kernel.net.devices.values(), key=lambda d: d.index):
        _put(tree, f"devices/virtual/net/{dev.name}", _netdev_attrs(kernel, dev.index, dev.name))
        _put(tree, f"class/net/{dev.name}", symlink(f"../../devices/virtual/net/{dev.name}"))
    cpus = {"online": _attr("0"), "possible": _attr("0"), "present": _attr("0"),
            "offline": _attr("\n"), "kernel_max": _attr("0"), "cpu0": {}}
    _put(tree, "devices/system/cpu", cpus)
    _put(tree, "kernel/mm/transparent_hugepage", {
        "enabled": _attr("always [madvise] never"),
        "defrag": _attr("always defer defer+madvise [madvise] never")})
    return tree


class LiveDir(Dir):
    """A directory of the tree spec() makes now: its children are looked up
    in a fresh spec each time, and each is gone (ENOENT to a cached
    dentry) once its name is."""

    def __init__(self, fs: VirtFs, key: str, spec: Callable[[], Spec],
                 alive: Callable[[], bool] | None = None) -> None:
        self.key = key
        self.spec = spec
        super().__init__(fs, key, self._children, 0o555, alive=alive)

    def _children(self) -> dict:
        out = {}
        for name, v in self.spec().items():
            out[name.encode()] = lambda n=name, v=v: self._make(n, v)
        return out

    def _make(self, name: str, v):
        key = f"{self.key}/{name}"
        if isinstance(v, dict):
            return LiveDir(self.fs, key, lambda: self.spec().get(name, {}),
                           lambda: isinstance(self.spec().get(name), dict))
        node = v(self.fs, key)
        node.alive = lambda: name in self.spec()
        return node


class SysFs(VirtFs):
    blksize = 4096
    name = "sysfs"
    magic = SYSFS_MAGIC

    def __init__(self, kernel) -> None:
        super().__init__(kernel)
        self._spec: tuple[tuple[int, int], Spec] | None = None
        self.root = LiveDir(self, "", self.spec)

    def spec(self) -> Spec:
        """The tree as the disks and the network devices are now (made
        again after they change)."""
        gen = (self.kernel.disks.generation, self.kernel.net.gen)
        if self._spec is None or self._spec[0] != gen:
            self._spec = (gen, sysfs_spec(self.kernel))
        return self._spec[1]


def sysfs_instance(kernel) -> SysFs:
    """The kernel's sysfs (made at its first mount)."""
    fs = kernel.mounts.singletons.get("sysfs")
    if fs is None:
        fs = kernel.mounts.singletons["sysfs"] = SysFs(kernel)
    return fs
