"""Block devices: byte-addressed reads and writes of a fixed-size disk.

Filesystems see only this interface (never a host file): `read`, `write`,
`flush`.  Drivers implement it: a plain host image (`ImageDevice`), a UML
COW overlay (drivers/ubd.py), a guest file (drivers/loop.py).  Besides the
medium, a device carries what Linux keeps in its gendisk and block_device:
the name and numbers, the queue's block sizes, the disk's read-only flag
and the one BLKROSET sets, who has it open and who holds it exclusively.
"""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.block.stats import READ, WRITE, DiskStats
from umlpy.kernel import ioac, printk
from umlpy.kernel.errors import KernelError

SECTOR = 512
DMA_ALIGN = 512         # a queue's dma_alignment + 1 (blk_set_default_limits: 511), statx's dio_mem_align
MOUNT_HOLDER = "mount"      # what a mount claims its disk as (blkdev_get's holder)


class BlockDevice:
    name = "block"
    major = 0
    minor = 0
    minors = 1                  # sysfs `range`: the disk and its partitions' minors
    partitionable = True        # BLKRRPART may scan it (GENHD_FL_NO_PART and the like not set)
    sysfs_dir = ""              # its directory under /sys/devices

    def __init__(self, size: int, read_only: bool) -> None:
        self.size = size
        self.read_only = read_only      # the disk's flag (set_disk_ro; sysfs `ro`)
        self.bdev_ro = False            # BLKROSET's, on top of it
        self.block_size = SECTOR        # the queue's logical (= physical) block size
        self.readahead = 256            # sectors (BLKRAGET; VM_READAHEAD_PAGES)
        self.openers = 0                # open files and mounts (disk_openers)
        self.holder: object | None = None   # an exclusive opener: a mount, an O_EXCL open
        self.mounted_fs = None
        self.stats = DiskStats()

    @property
    def write_protected(self) -> bool:
        """bdev_read_only: the disk's flag or BLKROSET's."""
        return self.read_only or self.bdev_ro

    # -- requests: counted (block/stats.py; a read also as the current
    # task's read_bytes, as submit_bio charges it), then the driver's ----------
    def read(self, off: int, n: int) -> bytes:
        t0 = self.stats.start()
        data = self._read(off, n)
        self.stats.done(READ, n, t0)
        ioac.disk_read(n)
        return data

    def read_into(self, off: int, buf: memoryview) -> None:
        """read(), straight into buf: the page cache's fill (no bytes object
        between the host file and the pages, where the driver can)."""
        t0 = self.stats.start()
        self._read_into(off, buf)
        self.stats.done(READ, len(buf), t0)
        ioac.disk_read(len(buf))

    def write(self, off: int, data: bytes) -> None:
        t0 = self.stats.start()
        self._write(off, data)
        self.stats.done(WRITE, len(data), t0)

    def flush(self) -> None:
        t0 = self.stats.start()
        self._flush()
        self.stats.flushed(t0)

    # -- the driver's side ---------------------------------------------------------
    def _read(self, off: int, n: int) -> bytes:
        raise NotImplementedError

    def _read_into(self, off: int, buf: memoryview) -> None:
        buf[:] = self._read(off, len(buf))

    def _write(self, off: int, data: bytes) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        pass

    def check(self, off: int, n: int, write: bool) -> None:
        if write and self.read_only:
            raise KernelError(E.EROFS)
        if off < 0 or off + n > self.size:
            raise KernelError(E.EIO)

    # -- openers ----------------------------------------------------------------
    def open(self, holder: object | None = None) -> None:
        """blkdev_get: one more opener; holder claims the device exclusively
        (a mount, an O_EXCL open), EBUSY while another holds it.  A writable
        open of a read-only disk is let through, its writes fail (UML's
        ubd_open stopped refusing it in 2005; loop never did)."""
        if holder is not None:
            if self.holder is not None:
                raise KernelError(E.EBUSY)
            self.holder = holder
        self.openers += 1

    def release(self, holder: object | None = None) -> None:
        """blkdev_put: the last release is the driver's to act on (loop's autoclear)."""
        self.openers -= 1
        if holder is not None and self.holder is holder:
            self.holder = None
        if self.openers == 0:
            self.last_close()

    def last_close(self) -> None:
        pass

    def unmounted(self) -> None:
        """The filesystem mounted on it went (the VFS's last unmount): the
        mount's claim and open end (loop's autoclear may detach it now)."""
        self.mounted_fs = None
        self.release(holder=MOUNT_HOLDER)

    # -- ioctls the driver adds to the generic ones (block/file.py) --------------
    def ioctl(self, task, file, req: int, arg: int) -> int:
        raise KernelError(E.ENOTTY)

    def sysfs_groups(self) -> dict:
        """The driver's attribute directories under the disk's in sysfs:
        {directory: {attribute: show(reading task) -> str}}."""
        return {}

    def scan_partitions(self) -> bool:
        """A partition scan: whether the first sectors hold an MS-DOS or a
        GPT partition table, which is logged, since partitions are not
        supported yet (the disk stays whole)."""
        if self.size < 2 * SECTOR:
            return False
        head = self.read(0, 2 * SECTOR)
        entries = [head[0x1BE + 16 * i:0x1BE + 16 * (i + 1)] for i in range(4)]
        found = head[512:520] == b"EFI PART" or (head[510:512] == b"\x55\xaa" and any(e[4] for e in entries)
                                                 and all(e[0] in (0, 0x80) for e in entries))
        if found:
            printk.pr_notice(f"{self.name}: partition tables are not supported yet")
        return found


class ImageDevice(BlockDevice):
    """A whole host file as a disk (arch_um.hostfile.HostFile underneath)."""

    def __init__(self, host, read_only: bool) -> None:
        size = (host.size() + SECTOR - 1) // SECTOR * SECTOR
        super().__init__(size, read_only)
        self.host = host

    def _read(self, off: int, n: int) -> bytes:
        self.check(off, n, False)
        data = self.host.pread(n, off)
        return data if len(data) == n else data + bytes(n - len(data))

    def _read_into(self, off: int, buf: memoryview) -> None:
        self.check(off, len(buf), False)
        got = self.host.readinto(buf, off)
        if got < len(buf):
            buf[got:] = bytes(len(buf) - got)

    def _write(self, off: int, data: bytes) -> None:
        self.check(off, len(data), True)
        self.host.pwrite(data, off)

    def _flush(self) -> None:
        if not self.read_only:
            self.host.fsync()
