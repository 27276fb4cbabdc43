"""loop: block devices backed by a file (Linux's drivers/block/loop.c, 6.1).

/dev/loop-control (char 10:237) adds, removes and finds free devices;
/dev/loop0..7 are there from boot (CONFIG_BLK_DEV_LOOP_MIN_COUNT) and
opening the node of another minor makes that one (loop_probe).  A device is
bound to an open file (LOOP_SET_FD, LOOP_CONFIGURE) and reads and writes
it through the VFS at lo_offset, for lo_sizelimit bytes at most, so an image
on ext2, tmpfs or hostfs, or another block device, can be formatted and
mounted in the guest.  The rules and errors are loop.c's: EBUSY to bind a
bound device, ENXIO for what needs a bound one, LOOP_CLR_FD of a device
others hold open only sets autoclear (it is detached at the last close),
LOOP_SET_STATUS changes only AUTOCLEAR and PARTSCAN of the flags, and clears
only AUTOCLEAR.  Partition tables are not scanned: a loop device has no
partitions here (BLKRRPART says EINVAL when it finds a table).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from types import SimpleNamespace

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.block.device import SECTOR, BlockDevice
from umlpy.block.file import PAGE, BlockFile
from umlpy.fs import devtmpfs
from umlpy.fs.procfs.pid import path_of
from umlpy.kernel import ioac, printk
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.kernel.task import Creds
from umlpy.kernel.uevent import device_env
from umlpy.vfs import devices
from umlpy.vfs.devices import MISC_MAJOR
from umlpy.vfs.file import File

LOOP_MAJOR = 7
LOOP_CTRL_MINOR = 237
MIN_COUNT = 8           # CONFIG_BLK_DEV_LOOP_MIN_COUNT
MINORMASK = (1 << 20) - 1

LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_SET_STATUS = 0x4C02
LOOP_GET_STATUS = 0x4C03
LOOP_SET_STATUS64 = 0x4C04
LOOP_GET_STATUS64 = 0x4C05
LOOP_CHANGE_FD = 0x4C06
LOOP_SET_CAPACITY = 0x4C07
LOOP_SET_DIRECT_IO = 0x4C08
LOOP_SET_BLOCK_SIZE = 0x4C09
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_ADD = 0x4C80
LOOP_CTL_REMOVE = 0x4C81
LOOP_CTL_GET_FREE = 0x4C82

LO_FLAGS_READ_ONLY = 1
LO_FLAGS_AUTOCLEAR = 4
LO_FLAGS_PARTSCAN = 8
LO_FLAGS_DIRECT_IO = 16
SET_STATUS_SETTABLE = LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN
SET_STATUS_CLEARABLE = LO_FLAGS_AUTOCLEAR
CONFIGURE_SETTABLE = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN | LO_FLAGS_DIRECT_IO

LO_NAME_SIZE = 64
LO_KEY_SIZE = 32
LO_CRYPT_NONE = 0
LO_CRYPT_XOR = 1
LO_CRYPT_CRYPTOAPI = 18
LLONG_MAX = (1 << 63) - 1
U64 = (1 << 64) - 1

# struct loop_info (x86-64: __kernel_old_dev_t and lo_inode are 64-bit)
_INFO = struct.Struct("<i4xQQQiiii64s32s2Q4s4x")
# struct loop_info64
_INFO64 = struct.Struct("<QQQQQIIII64s64s32s2Q")
# struct loop_config: fd, block_size, info, __reserved[8]
_CONFIG = struct.Struct(f"<II{_INFO64.size}s64x")

UNBOUND, BOUND, RUNDOWN, DELETING = range(4)


@dataclass
class Info:
    """What LOOP_SET_STATUS, LOOP_SET_STATUS64 and LOOP_CONFIGURE set."""
    offset: int = 0
    sizelimit: int = 0
    flags: int = 0
    file_name: bytes = bytes(LO_NAME_SIZE)
    encrypt_type: int = LO_CRYPT_NONE
    encrypt_key_size: int = 0


def info64_from(raw: bytes) -> Info:
    (_dev, _ino, _rdev, offset, sizelimit, _num, etype, keysize, flags,
     name, _crypt, _key, _i0, _i1) = _INFO64.unpack(raw)
    return Info(offset, sizelimit, flags, name, etype, keysize)


def info_from_old(raw: bytes) -> Info:
    """loop_info64_from_old: the int lo_offset widened with its sign (a
    negative one is then too big: EOVERFLOW), no sizelimit; with
    cryptoapi the name is the cipher's, not the file's."""
    (_num, _dev, _ino, _rdev, offset, etype, keysize, flags, name,
     _key, _i0, _i1, _res) = _INFO.unpack(raw)
    file_name = bytes(LO_NAME_SIZE) if etype == LO_CRYPT_CRYPTOAPI else name
    return Info(offset & U64, 0, flags, file_name, etype, keysize & 0xFFFFFFFF)


def backing_bdev(f: File) -> BlockDevice | None:
    """The block device a backing file is, if it is one."""
    return f.dev if isinstance(f, BlockFile) else None


def backing_size(f: File) -> int:
    """i_size of the file's mapping host: a block device's own size."""
    bdev = backing_bdev(f)
    return bdev.size if bdev is not None else f.inode.size()


class _Worker:
    """The caller of the backing file's operations: loop's worker, a kernel
    thread with init's credentials (its writes keep set-user-ID bits, as
    Linux's do) and no resource limits (RLIMIT_FSIZE does not bound it)."""

    def __init__(self) -> None:
        self.proc = SimpleNamespace(creds=Creds(), rlimit=lambda res: (C.RLIM_INFINITY, C.RLIM_INFINITY))
        self.mem = None


WORKER = _Worker()


class LoopDevice(BlockDevice):
    def __init__(self, driver: Loop, number: int) -> None:
        super().__init__(0, False)
        self.driver = driver
        self.number = number
        self.name = f"loop{number}"
        self.major = LOOP_MAJOR
        self.minor = number
        self.sysfs_dir = f"virtual/block/{self.name}"
        self.state = UNBOUND
        self.backing: File | None = None
        self.offset = 0
        self.sizelimit = 0
        self.flags = 0
        self.file_name = bytes(LO_NAME_SIZE)
        self.use_dio = False

    # -- the medium ---------------------------------------------------------------
    def _read(self, off: int, n: int) -> bytes:
        """A read past the end of a backing file that shrank reads zeros
        (lo_read_simple zero-fills the rest of the request)."""
        self.check(off, n, False)
        with ioac.worker():
            data = self.backing.pread(WORKER, n, self.offset + off)
        return data if len(data) == n else data + bytes(n - len(data))

    def _write(self, off: int, data: bytes) -> None:
        self.check(off, len(data), True)
        pos = self.offset + off
        with ioac.worker():
            done = self.backing.pwrite(WORKER, data, pos)
        if done != len(data):
            printk.pr_err_ratelimited(f"{self.name}: Write error at byte offset {pos}, length {len(data)}.")
            raise KernelError(E.EIO)

    def _flush(self) -> None:
        """REQ_PREFLUSH: the backing file's fsync."""
        if self.backing is not None:
            self.backing.fsync()

    def last_close(self) -> None:
        """lo_release: autoclear detaches at the last close."""
        if self.flags & LO_FLAGS_AUTOCLEAR and self.state == BOUND:
            self._clr_fd()

    @property
    def partitionable(self) -> bool:  # type: ignore[override]
        return bool(self.flags & LO_FLAGS_PARTSCAN)

    # -- binding ------------------------------------------------------------------
    def _size_of(self, f: File) -> int:
        """get_loop_size: what of the file follows lo_offset, up to
        lo_sizelimit, in whole sectors."""
        size = backing_size(f) - self.offset
        if size < 0:
            return 0
        if 0 < self.sizelimit < size:
            size = self.sizelimit
        return size // SECTOR * SECTOR

    def _validate(self, f: File) -> None:
        """loop_validate_file: a regular file or a block device, and not a
        chain of loop devices that comes back to this one or passes an
        unbound one."""
        bdev = backing_bdev(f)
        while isinstance(bdev, LoopDevice):
            if bdev is self:
                raise KernelError(E.EBADF)
            if bdev.state != BOUND:
                raise KernelError(E.EINVAL)
            bdev = backing_bdev(bdev.backing)
        if not f.inode.is_reg and f.inode.fmt != C.S_IFBLK:
            raise KernelError(E.EINVAL)

    def _set_from_info(self, info: Info) -> None:
        """loop_set_status_from_info: the transfers are gone (xor and
        cryptoloop were removed in 5.19), offsets must fit a loff_t."""
        if info.encrypt_key_size > LO_KEY_SIZE:
            raise KernelError(E.EINVAL)
        if info.encrypt_type == LO_CRYPT_XOR:
            printk.pr_warn("support for the xor transformation has been removed.")
        elif info.encrypt_type == LO_CRYPT_CRYPTOAPI:
            printk.pr_warn("support for cryptoloop has been removed.  Use dm-crypt instead.")
        if info.encrypt_type != LO_CRYPT_NONE:
            raise KernelError(E.EINVAL)
        if info.offset > LLONG_MAX or info.sizelimit > LLONG_MAX:
            raise KernelError(E.EOVERFLOW)
        self.offset = info.offset
        self.sizelimit = info.sizelimit
        self.file_name = info.file_name[:LO_NAME_SIZE - 1] + b"\0"
        self.flags = info.flags

    def _update_dio(self, want: bool) -> None:
        """__loop_update_dio: direct I/O only if the backing file takes
        O_DIRECT, lo_offset is aligned to the logical block size of the
        device under its filesystem, and ours is no smaller."""
        f = self.backing
        sb_bsize = 0
        if backing_bdev(f) is None:
            under = getattr(f.inode.fs, "device", None)
            sb_bsize = under.block_size if under is not None else 0
        can = backing_bdev(f) is not None or getattr(f.inode.fs, "direct_io", False)
        use = want and can and self.block_size >= sb_bsize and not self.offset & max(sb_bsize - 1, 0)
        if use == self.use_dio:
            return
        self.use_dio = use
        self.flags = self.flags | LO_FLAGS_DIRECT_IO if use else self.flags & ~LO_FLAGS_DIRECT_IO

    def _loop_update_dio(self) -> None:
        self._update_dio(bool(self.backing.flags & C.O_DIRECT) or self.use_dio)

    def configure(self, task, via: BlockFile, fd: int, block_size: int, info: Info) -> int:
        """loop_configure (LOOP_SET_FD is LOOP_CONFIGURE with only the fd)."""
        f = task.proc.fdtable.get(fd)
        if not via.exclusive and self.holder is not None:
            raise KernelError(E.EBUSY)      # bd_prepare_to_claim
        if self.state != UNBOUND:
            raise KernelError(E.EBUSY)
        self._validate(f)
        if info.flags & ~CONFIGURE_SETTABLE:
            raise KernelError(E.EINVAL)
        if block_size:
            validate_block_size(block_size)
        self._set_from_info(info)
        if not (f.writable and via.writable):
            self.flags |= LO_FLAGS_READ_ONLY
        self.read_only = bool(self.flags & LO_FLAGS_READ_ONLY)
        self.use_dio = bool(self.flags & LO_FLAGS_DIRECT_IO)
        self.backing = f.get()
        if block_size:
            self.block_size = block_size
        else:
            under = getattr(f.inode.fs, "device", None)
            direct = f.flags & C.O_DIRECT and backing_bdev(f) is None and under is not None
            self.block_size = under.block_size if direct else SECTOR
        self._loop_update_dio()
        self.size = self._size_of(f)
        self.state = BOUND
        self.driver.kernel.disks.changed()
        if self.flags & LO_FLAGS_PARTSCAN:
            self.scan_partitions()
        self._changed()
        return 0

    def _changed(self) -> None:
        """The "change" uevent of a bind or an unbind."""
        self.driver.kernel.uevents.send("change", "/devices/" + self.sysfs_dir, "block",
                                        device_env(self.name, self.major, self.minor, "block"))

    def _clr_fd(self) -> None:
        """__loop_clr_fd: back to unbound; the disk's ro flag stays."""
        f = self.backing
        self.backing = None
        self.offset = self.sizelimit = 0
        self.file_name = bytes(LO_NAME_SIZE)
        self.block_size = SECTOR
        self.size = 0
        self.flags = 0
        self.use_dio = False
        self.state = UNBOUND
        self.driver.kernel.disks.changed()
        self._changed()
        f.put()

    def clr_fd(self) -> int:
        """loop_clr_fd: a device others hold open (or mounted) is only set
        to autoclear, detached at its last close."""
        if self.state != BOUND:
            raise KernelError(E.ENXIO)
        if self.openers > 1:
            self.flags |= LO_FLAGS_AUTOCLEAR
            return 0
        self._clr_fd()
        return 0

    def change_fd(self, task, fd: int) -> int:
        """loop_change_fd: a read-only device takes another file of the same size."""
        f = task.proc.fdtable.get(fd)
        if self.state != BOUND:
            raise KernelError(E.ENXIO)
        if not self.flags & LO_FLAGS_READ_ONLY:
            raise KernelError(E.EINVAL)
        self._validate(f)
        if self._size_of(f) != self._size_of(self.backing):
            raise KernelError(E.EINVAL)
        old, self.backing = self.backing, f.get()
        self._loop_update_dio()
        old.put()
        if self.flags & LO_FLAGS_PARTSCAN:
            self.scan_partitions()
        return 0

    def set_status(self, info: Info) -> int:
        """loop_set_status: a new offset or size limit resizes the device."""
        if self.state != BOUND:
            raise KernelError(E.ENXIO)
        resize = self.offset != info.offset or self.sizelimit != info.sizelimit
        prev = self.flags
        self._set_from_info(info)
        self.flags = (self.flags & SET_STATUS_SETTABLE) | (prev & ~SET_STATUS_SETTABLE) \
            | (prev & ~SET_STATUS_CLEARABLE)
        if resize:
            self.size = self._size_of(self.backing)
        self._update_dio(self.use_dio)
        if self.flags & LO_FLAGS_PARTSCAN and not prev & LO_FLAGS_PARTSCAN:
            self.scan_partitions()
        return 0

    def get_status(self) -> bytes:
        """loop_get_status, as a struct loop_info64; the device and inode
        numbers are the backing file's (vfs_getattr)."""
        if self.state != BOUND:
            raise KernelError(E.ENXIO)
        inode = self.backing.inode
        return _INFO64.pack(inode.fs.dev, inode.ino, inode.rdev, self.offset, self.sizelimit,
                            self.number, LO_CRYPT_NONE, 0, self.flags, self.file_name,
                            bytes(LO_NAME_SIZE), bytes(LO_KEY_SIZE), 0, 0)

    def get_status_old(self) -> bytes:
        """loop_info64_to_old: EOVERFLOW when lo_offset does not fit the int."""
        (dev, ino, rdev, offset, _limit, number, etype, keysize, flags, name,
         _crypt, key, i0, i1) = _INFO64.unpack(self.get_status())
        if offset > 0x7FFFFFFF:
            raise KernelError(E.EOVERFLOW)
        return _INFO.pack(number, dev, ino, rdev, offset, etype, keysize, flags, name, key,
                          i0, i1, bytes(4))

    def set_capacity(self) -> int:
        if self.state != BOUND:
            raise KernelError(E.ENXIO)
        self.size = self._size_of(self.backing)
        return 0

    def set_dio(self, arg: int) -> int:
        """loop_set_dio: EINVAL when direct I/O cannot be what was asked."""
        if self.state != BOUND:
            raise KernelError(E.ENXIO)
        self._update_dio(bool(arg))
        if self.use_dio != bool(arg):
            raise KernelError(E.EINVAL)
        return 0

    def set_block_size(self, arg: int) -> int:
        if self.state != BOUND:
            raise KernelError(E.ENXIO)
        validate_block_size(arg)
        if arg != self.block_size:
            self.block_size = arg
            self._loop_update_dio()
        return 0

    # -- ioctl --------------------------------------------------------------------
    def ioctl(self, task, file, req: int, arg: int) -> int:
        """lo_ioctl; what it does not know is EINVAL (lo_simple_ioctl)."""
        mem = task.mem
        if req == LOOP_SET_FD:
            return self.configure(task, file, arg & 0xFFFFFFFF, 0, Info())
        if req == LOOP_CONFIGURE:
            fd, bsize, raw = _CONFIG.unpack(mem.read(arg, _CONFIG.size))
            return self.configure(task, file, fd, bsize, info64_from(raw))
        if req == LOOP_CHANGE_FD:
            return self.change_fd(task, arg & 0xFFFFFFFF)
        if req == LOOP_CLR_FD:
            return self.clr_fd()
        if req in (LOOP_GET_STATUS, LOOP_GET_STATUS64):
            if not arg:
                raise KernelError(E.EINVAL)
            mem.write(arg, self.get_status() if req == LOOP_GET_STATUS64 else self.get_status_old())
            return 0
        if req not in (LOOP_SET_STATUS, LOOP_SET_STATUS64, LOOP_SET_CAPACITY,
                       LOOP_SET_DIRECT_IO, LOOP_SET_BLOCK_SIZE):
            raise KernelError(E.EINVAL)
        if not file.writable and not capable(task.proc.creds, K.CAP_SYS_ADMIN):
            raise KernelError(E.EPERM)
        if req == LOOP_SET_STATUS:
            return self.set_status(info_from_old(mem.read(arg, _INFO.size)))
        if req == LOOP_SET_STATUS64:
            return self.set_status(info64_from(mem.read(arg, _INFO64.size)))
        if req == LOOP_SET_CAPACITY:
            return self.set_capacity()
        if req == LOOP_SET_DIRECT_IO:
            return self.set_dio(arg)
        return self.set_block_size(arg)

    # -- sysfs --------------------------------------------------------------------
    def sysfs_groups(self) -> dict:
        """loop/, there while bound (loop_sysfs_init); backing_file is the
        file's path as the reader sees it (file_path)."""
        if self.state != BOUND:
            return {}
        flag = lambda bit: lambda task: str(int(bool(self.flags & bit)))    # noqa: E731
        return {"loop": {"backing_file": lambda task: path_of(self.backing.dentry, task),
                         "offset": lambda task: str(self.offset),
                         "sizelimit": lambda task: str(self.sizelimit),
                         "autoclear": flag(LO_FLAGS_AUTOCLEAR), "partscan": flag(LO_FLAGS_PARTSCAN),
                         "dio": flag(LO_FLAGS_DIRECT_IO)}}


def validate_block_size(bsize: int) -> None:
    """blk_validate_block_size: a power of two from 512 to a page."""
    if not SECTOR <= bsize <= PAGE or bsize & (bsize - 1):
        raise KernelError(E.EINVAL)


class ControlFile(File):
    """/dev/loop-control: only ioctls (reads and writes are EINVAL, epoll EPERM)."""
    kind = "chr"
    pollable = False

    def __init__(self, dentry, inode, flags: int, driver: Loop) -> None:
        super().__init__(dentry, inode, flags)
        self.driver = driver

    def lseek(self, off: int, whence: int) -> int:
        return self.pos      # noop_llseek

    def ioctl(self, task, req: int, arg: int) -> int:
        """loop_control_ioctl: the argument is an int; anything else is ENOSYS."""
        idx = arg & 0xFFFFFFFF
        idx = idx - (1 << 32) if idx >= 1 << 31 else idx
        if req == LOOP_CTL_ADD:
            return self.driver.add(idx)
        if req == LOOP_CTL_REMOVE:
            return self.driver.remove(idx)
        if req == LOOP_CTL_GET_FREE:
            return self.driver.get_free()
        raise KernelError(E.ENOSYS)


class Loop:
    """The loop driver of one kernel: its devices by number."""

    def __init__(self, kernel) -> None:
        self.kernel = kernel
        self.devs: dict[int, LoopDevice] = {}
        devices.register_blkdev(LOOP_MAJOR, "loop", self.probe)
        devices.register_char(MISC_MAJOR, LOOP_CTRL_MINOR,
                              lambda d, i, fl, t: ControlFile(d, i, fl, self))
        devtmpfs.add_char_node("loop-control", MISC_MAJOR, LOOP_CTRL_MINOR, 0o600)
        for i in range(MIN_COUNT):
            self.add(i)

    def add(self, idx: int) -> int:
        """loop_add: idx, or (negative) the lowest number free; EEXIST if
        taken; EINVAL past what a minor number holds."""
        if idx < 0:
            idx = next(i for i in range(len(self.devs) + 1) if i not in self.devs)
        elif idx in self.devs:
            raise KernelError(E.EEXIST)
        if idx > MINORMASK:
            raise KernelError(E.EINVAL)
        dev = self.devs[idx] = LoopDevice(self, idx)
        self.kernel.disks.add(dev)
        return idx

    def remove(self, idx: int) -> int:
        """loop_control_remove: only an unbound device nobody has open."""
        if idx < 0:
            printk.pr_warn_ratelimited("deleting an unspecified loop device is not supported.")
            raise KernelError(E.EINVAL)
        dev = self.devs.get(idx)
        if dev is None:
            raise KernelError(E.ENODEV)
        if dev.state != UNBOUND or dev.openers > 0:
            raise KernelError(E.EBUSY)
        dev.state = DELETING
        del self.devs[idx]
        self.kernel.disks.remove(dev)
        return 0

    def get_free(self) -> int:
        for idx in sorted(self.devs):
            if self.devs[idx].state == UNBOUND:
                return idx
        return self.add(-1)

    def probe(self, minor: int) -> None:
        """loop_probe: an open of /dev/loopN's number makes loopN."""
        if minor not in self.devs:
            self.add(minor)

    def backing_files(self) -> list[File]:
        """The files bound devices hold open (they keep their filesystem busy)."""
        return [d.backing for d in self.devs.values() if d.backing is not None]
