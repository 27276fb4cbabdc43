"""The kernel's disks, as Linux's add_disk and del_gendisk keep them.

Adding a disk gives it its node in devtmpfs and makes its number open it;
/sys/block and /proc/partitions list what is here.  Drivers (ubd, loop)
make the BlockDevice; this is the one place disks come and go.
"""
from __future__ import annotations

from umlpy.block.device import BlockDevice
from umlpy.fs import devtmpfs
from umlpy.vfs import devices


class Disks:
    def __init__(self, mounts) -> None:
        self.mounts = mounts
        self.all: list[BlockDevice] = []
        self.generation = 0     # counts changes of what sysfs shows of the disks

    def changed(self) -> None:
        """A disk's sysfs directories changed (loop's loop/ at bind and unbind)."""
        self.generation += 1

    def __iter__(self):
        return iter(list(self.all))

    def add(self, dev: BlockDevice) -> None:
        self.all.append(dev)
        self.changed()
        devices.register_block(dev.major, dev.minor, dev)
        devtmpfs.add_block_node(dev.name, dev.major, dev.minor)

    def remove(self, dev: BlockDevice) -> None:
        """The node goes, and the dentries the mounts of /dev cached of it."""
        self.all.remove(dev)
        self.changed()
        devices.unregister_block(dev.major, dev.minor)
        devtmpfs.remove_node(dev.name)
        for m in self.mounts.mounts:
            if m.fs is devtmpfs.instance():
                m.root.forget(dev.name.encode())
