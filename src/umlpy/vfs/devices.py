"""Character devices: the registry by (major, minor) and the mem devices."""
from __future__ import annotations

import struct
from typing import Callable

from arch_um import clock
from arch_um.memory import GuestFault
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.abi import consts as C
from umlpy.kernel import printk
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.uaccess import COPY_CHUNK
from umlpy.vfs.file import POLLERR, POLLIN, POLLPRI, POLLRDNORM, File

MISC_MAJOR = 10     # character devices of the misc class (loop-control)

_CHAR: dict[tuple[int, int], Callable] = {}
_BLOCK: dict[tuple[int, int], object] = {}
_BLOCK_MAJORS: dict[int, tuple[str, Callable[[int], None] | None]] = {}


def register_char(major: int, minor: int, opener: Callable) -> None:
    """opener(dentry, inode, flags, task) -> File"""
    _CHAR[(major, minor)] = opener


def unregister_char(major: int, minor: int) -> None:
    _CHAR.pop((major, minor), None)


def open_char(dentry, inode, flags: int, task) -> File:
    opener = _CHAR.get((structs.major(inode.rdev), structs.minor(inode.rdev)))
    if opener is None:
        raise KernelError(E.ENXIO)
    return opener(dentry, inode, flags, task)


def register_block(major: int, minor: int, dev) -> None:
    """dev: a umlpy.block.device.BlockDevice."""
    _BLOCK[(major, minor)] = dev


def unregister_block(major: int, minor: int) -> None:
    _BLOCK.pop((major, minor), None)


def register_blkdev(major: int, name: str, probe: Callable[[int], None] | None = None) -> None:
    """A block major's driver: its name (/proc/devices) and its probe, which
    an open of a node whose minor has no device calls first (Linux's
    blk_request_module: loop_probe makes /dev/loopN on demand)."""
    _BLOCK_MAJORS[major] = (name, probe)


def block_majors() -> list[tuple[int, str]]:
    return sorted((major, name) for major, (name, _) in _BLOCK_MAJORS.items())


def unregister_all() -> None:
    """Forget the devices of a previous boot (reboot in place)."""
    _BLOCK.clear()
    _BLOCK_MAJORS.clear()


def block_device(rdev: int):
    key = (structs.major(rdev), structs.minor(rdev))
    dev = _BLOCK.get(key)
    if dev is None:
        probe = _BLOCK_MAJORS.get(key[0], ("", None))[1]
        if probe is not None:
            probe(key[1])
            dev = _BLOCK.get(key)
    if dev is None:
        raise KernelError(E.ENXIO)
    return dev


def open_block(dentry, inode, flags: int, task) -> File:
    from umlpy.block.file import BlockFile
    return BlockFile(dentry, inode, flags, block_device(inode.rdev))


class DevFile(File):
    """A seekable char device whose reads and writes ignore the position."""
    kind = "chr"
    chunked_write = True

    @classmethod
    def open_dev(cls, dentry, inode, flags: int, task) -> File:
        """The device's open (register_char's opener)."""
        return cls(dentry, inode, flags)

    def read_into(self, task, addr: int, n: int) -> int:
        """Endless sources (/dev/zero, /dev/urandom) stream into the guest a
        piece at a time, stopping at the first byte that cannot be stored."""
        done = 0
        while done < n:
            want = min(n - done, COPY_CHUNK)
            data = self.read(task, want)
            stored = task.mem.write_prefix(addr + done, data)
            done += stored
            if stored < len(data):
                if not done:
                    raise GuestFault(addr)
                break
            if len(data) < want:
                break
        return done

    def lseek(self, off: int, whence: int) -> int:
        self.pos = 0
        return 0

    def pread(self, task, n: int, off: int) -> bytes:
        return self.read(task, n)

    def pwrite(self, task, data: bytes, off: int) -> int:
        return self.write(task, data)


class NullFile(DevFile):
    splice_write = True     # splice_write_null
    pollable = False            # null_fops has no poll: epoll_ctl refuses it

    def read(self, task, n: int) -> bytes:
        return b""

    def write(self, task, data: bytes) -> int:
        return len(data)

    def write_from(self, task, src) -> int:
        return len(src)         # write_null: the buffer is never read


class ZeroFile(NullFile):
    splice_read = True
    maps_as_zero = True  # mmap of /dev/zero is anonymous memory

    def read(self, task, n: int) -> bytes:
        return bytes(n)


class FullFile(ZeroFile):
    def write(self, task, data: bytes) -> int:
        raise KernelError(E.ENOSPC)

    def write_from(self, task, src) -> int:
        raise KernelError(E.ENOSPC)


class RandomFile(DevFile):
    splice_read = splice_write = True

    def read(self, task, n: int) -> bytes:
        return clock.random_bytes(n)

    def ioctl(self, task, req: int, arg: int) -> int:
        if req == RNDGETENTCNT:
            task.mem.write(arg, struct.pack("<i", ENTROPY_AVAIL))
            return 0
        return super().ioctl(task, req, arg)

    def write(self, task, data: bytes) -> int:
        return len(data)


RNDGETENTCNT = 0x80045200
# what the pool holds: Linux 5.18+ reports a full pool once it is seeded
# (/proc/sys/kernel/random/entropy_avail says the same)
ENTROPY_AVAIL = 256


LOG_LINE_MAX = 1024 - 32        # what one write to /dev/kmsg may log (CONSOLE_LOG_MAX - PREFIX_MAX)
DEFAULT_MESSAGE_LOGLEVEL = 4    # a line written without "<N>" is a warning
LOG_USER = 1                    # and comes from the user facility


class KmsgFile(DevFile):
    """/dev/kmsg: the kernel log one record a read, from the oldest held,
    as systemd-journald and util-linux's dmesg read it ("prio,seq,usec,-;
    text", unprintable bytes as \\xNN); a write logs one line from user
    space (devkmsg_write), ten lines in five seconds per open file."""

    def __init__(self, dentry, inode, flags: int, log: printk.Log) -> None:
        super().__init__(dentry, inode, flags)
        self.log = log
        self.seq = log.first_seq
        self.limit = printk.RateLimit(on_release=True)
        self.comm = ""

    @classmethod
    def open_dev(cls, dentry, inode, flags: int, task) -> KmsgFile:
        """devkmsg_open: a reader needs what syslog(2)'s READ_ALL needs."""
        if flags & C.O_ACCMODE != C.O_WRONLY and \
                not printk.syslog_allowed(task.proc.creds, task.kernel.dmesg_restrict, True):
            raise KernelError(E.EPERM)
        return cls(dentry, inode, flags, task.kernel.log)

    def read(self, task, n: int) -> bytes:
        log = self.log
        if self.seq >= log.next_seq:
            if self.nonblock:
                raise KernelError(E.EAGAIN)
            raise Block(log.wq)
        if self.seq < log.first_seq:        # overwritten since: told once, then the oldest held
            self.seq = log.first_seq
            raise KernelError(E.EPIPE)
        prio, t_ns, msg = log.record(self.seq)
        text = f"{prio},{self.seq},{t_ns // 1000},-;".encode() + _escaped(msg.encode(errors="replace")) + b"\n"
        self.seq += 1           # even when the buffer is too small for it, as Linux
        if len(text) > n:
            raise KernelError(E.EINVAL)
        return text

    def write(self, task, data: bytes) -> int:
        if len(data) > LOG_LINE_MAX:
            raise KernelError(E.EINVAL)
        self.comm = task.proc.comm
        if not self.limit(self.comm):
            return len(data)
        line = bytes(data).split(b"\0", 1)[0]
        facility, level = LOG_USER, DEFAULT_MESSAGE_LOGLEVEL
        if line[:1] == b"<" and b">" in line[1:12] and line[1:line.index(b">")].isdigit():
            prio = int(line[1:line.index(b">")])
            level, facility = prio & 7, (prio >> 3) or LOG_USER
            line = line[line.index(b">") + 1:]
        if line.endswith(b"\n"):
            line = line[:-1]
        self.log.emit(facility << 3 | level, line.decode(errors="replace"))
        return len(data)

    def lseek(self, off: int, whence: int) -> int:
        if off:
            raise KernelError(E.ESPIPE)
        if whence == C.SEEK_SET:
            self.seq = self.log.first_seq
        elif whence == C.SEEK_DATA:         # where the last clear (dmesg -c) left the log
            self.seq = self.log.clear_seq
        elif whence == C.SEEK_END:
            self.seq = self.log.next_seq
        else:
            raise KernelError(E.EINVAL)
        return 0

    def poll(self) -> int:
        if self.seq >= self.log.next_seq:
            return 0
        if self.seq < self.log.first_seq:
            return POLLIN | POLLRDNORM | POLLERR | POLLPRI
        return POLLIN | POLLRDNORM

    def poll_queues(self) -> list:
        return [self.log.wq]

    def put(self) -> None:
        super().put()
        if self.refs == 0:
            self.limit.release(self.comm)


def _escaped(text: bytes) -> bytes:
    """msg_add_ext_text: control bytes, bytes past ASCII and the backslash as \\xNN."""
    return b"".join(b"\\x%02x" % c if c < 32 or c >= 127 or c == 92 else bytes((c,)) for c in text)


# (name, major, minor, mode, File class): Linux's mem devices
MEM_DEVICES = [
    ("null", 1, 3, 0o666, NullFile),
    ("zero", 1, 5, 0o666, ZeroFile),
    ("full", 1, 7, 0o666, FullFile),
    ("random", 1, 8, 0o666, RandomFile),
    ("urandom", 1, 9, 0o666, RandomFile),
    ("kmsg", 1, 11, 0o644, KmsgFile),
]

for _name, _ma, _mi, _mode, _cls in MEM_DEVICES:
    register_char(_ma, _mi, _cls.open_dev)
