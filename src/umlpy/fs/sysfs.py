"""sysfs: the device model as far as userspace device managers read it.

Every device the kernel has (the ubd disks, the console and tty, the mem
devices) is a directory under /sys/devices with `dev` ("MAJ:MIN"), `uevent`
(MAJOR, MINOR, DEVNAME) and a `subsystem` link, reached from /sys/block,
/sys/class/<subsystem> and /sys/dev/{block,char}/MAJ:MIN by symlinks as in
Linux; busybox `mdev -s` walks /sys/dev (older ones /sys/block and
/sys/class) and creates the nodes.  Plus the few attributes tools read:
cpu online masks and transparent hugepage modes.  Made once per kernel:
the devices are all known at boot.
"""
from __future__ import annotations

from umlpy.drivers.ubd import MINORS_PER_DISK
from umlpy.fs.devtmpfs import TTY_DEVICES
from umlpy.fs.procfs.base import Spec, VirtFs, build_tree, ro, symlink
from umlpy.vfs.devices import MEM_DEVICES

SYSFS_MAGIC = 0x62656572
PAGE = 4096     # what stat says of an attribute's size


def _attr(value: str):
    return ro(value, size=PAGE)


def _device(name: str, major: int, minor: int, subsystem: str, up: int, extra: Spec) -> Spec:
    """A device directory `up` levels below /sys."""
    uevent = f"MAJOR={major}\nMINOR={minor}\nDEVNAME={name}"
    if subsystem == "block":
        uevent += "\nDEVTYPE=disk"
    spec: Spec = {"dev": _attr(f"{major}:{minor}"), "uevent": _attr(uevent),
                  "subsystem": symlink("../" * up + f"class/{subsystem}")}
    spec.update(extra)
    return spec


def _devices(kernel) -> list[tuple[str, str, int, int, str, Spec]]:
    """(subsystem, name, major, minor, path under devices/, attributes)."""
    out = []
    for u in kernel.ubds:
        d = u.dev
        attrs = {"size": _attr(str(d.size // 512)), "ro": _attr("1" if d.read_only else "0"),
                 "removable": _attr("0"), "range": _attr(str(MINORS_PER_DISK)),
                 "stat": _attr(" ".join(["0"] * 17))}
        out.append(("block", u.spec.name, d.major, d.minor,
                    f"platform/ubd.{u.spec.unit}/block/{u.spec.name}", attrs))
    for name, ma, mi, _mode in TTY_DEVICES:
        out.append(("tty", name, ma, mi, f"virtual/tty/{name}", {}))
    for name, ma, mi, _mode, _cls in MEM_DEVICES:
        out.append(("mem", name, ma, mi, f"virtual/mem/{name}", {}))
    return out


def _put(tree: Spec, path: str, leaf) -> None:
    *dirs, last = path.split("/")
    for d in dirs:
        tree = tree.setdefault(d, {})
    tree[last] = leaf


def sysfs_spec(kernel) -> Spec:
    tree: Spec = {"block": {}, "bus": {}, "class": {"block": {}, "mem": {}, "tty": {}},
                  "dev": {"block": {}, "char": {}}, "devices": {}, "firmware": {},
                  "fs": {"cgroup": {}}, "kernel": {}, "module": {}, "power": {}}
    for subsystem, name, ma, mi, path, attrs in _devices(kernel):
        up = path.count("/") + 2
        _put(tree, f"devices/{path}", _device(name, ma, mi, subsystem, up, attrs))
        _put(tree, f"class/{subsystem}/{name}", symlink(f"../../devices/{path}"))
        kind = "block" if subsystem == "block" else "char"
        _put(tree, f"dev/{kind}/{ma}:{mi}", symlink(f"../../devices/{path}"))
        if subsystem == "block":
            _put(tree, f"block/{name}", symlink(f"../devices/{path}"))
    cpus = {"online": _attr("0"), "possible": _attr("0"), "present": _attr("0"),
            "offline": _attr("\n"), "kernel_max": _attr("0"), "cpu0": {}}
    _put(tree, "devices/system/cpu", cpus)
    _put(tree, "kernel/mm/transparent_hugepage", {
        "enabled": _attr("always [madvise] never"),
        "defrag": _attr("always defer defer+madvise [madvise] never")})
    return tree


class SysFs(VirtFs):
    blksize = 4096
    name = "sysfs"
    magic = SYSFS_MAGIC

    def __init__(self, kernel) -> None:
        super().__init__(kernel)
        self.root = build_tree(self, "", sysfs_spec(kernel), 0o555)


def sysfs_instance(kernel) -> SysFs:
    """The kernel's sysfs (made at its first mount)."""
    fs = kernel.mounts.singletons.get("sysfs")
    if fs is None:
        fs = kernel.mounts.singletons["sysfs"] = SysFs(kernel)
    return fs
