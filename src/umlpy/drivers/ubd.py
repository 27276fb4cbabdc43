"""ubd: UML's block devices, backed by host files, with COW overlays.

`ubdN[flags]=file`, `ubdN=cow,backing` and `ubdN=cow:backing`, flags as
UML's: r (read-only), s (O_SYNC), d (no COW probe), c (shared: no host
lock), t (no TRIM: accepted).  A COW file is created sparse when missing;
a backing file whose mtime or size changed since is refused as UML does;
a single file that is a COW file is found out and its backing file used.
Writable images are locked on the host (shared locks for backing files), so
a second instance on the same writable image fails.  The host half is
arch_um.hostfile.HostFile.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from arch_um.hostfile import HostFile, NotADisk, absolute_path, file_stat
from umlpy.abi import errno as E
from umlpy.block.device import SECTOR, BlockDevice, ImageDevice
from umlpy.drivers import cow
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

UBD_MAJOR = 98
MINORS_PER_DISK = 16
MAX_UNITS = 16

_NOT_ALL_CLEAR = re.compile(rb"[^\x00]")     # a bitmap byte with a sector in the COW file
_NOT_ALL_SET = re.compile(rb"[^\xff]")       # one with a sector still in the backing file


class UbdError(KernelError):
    def __init__(self, msg: str) -> None:
        super().__init__(E.EINVAL, msg)


@dataclass
class UbdSpec:
    unit: int
    flags: set[str] = field(default_factory=set)
    file: str = ""
    backing: str | None = None

    @property
    def name(self) -> str:
        return "ubd" + chr(ord("a") + self.unit)

    def text(self) -> str:
        """The files as the command line names them (mconsole `config ubdN`)."""
        return f"{self.file},{self.backing}" if self.backing else self.file


def parse_spec(name: str, value: str) -> UbdSpec:
    """`ubd0rs` + `cow,backing` -> UbdSpec (UML's parse_unit and flag letters)."""
    m = re.fullmatch(r"ubd([0-9]+|[a-z])([a-z]*)", name)
    if not m:
        raise UbdError(f"ubd: can't parse device name '{name}'")
    u = m.group(1)
    unit = int(u) if u.isdigit() else ord(u) - ord("a")
    if unit >= MAX_UNITS:
        raise UbdError(f"ubd: device number {unit} out of range")
    flags = set(m.group(2))
    bad = flags - set("rsdct")
    if bad:
        raise UbdError(f"ubd: unknown flag(s) '{''.join(sorted(bad))}' in '{name}'")
    if not value:
        raise UbdError(f"ubd: no file given for {name}")
    if "," in value:
        f, backing = value.split(",", 1)
    elif ":" in value:
        f, backing = value.split(":", 1)
    else:
        f, backing = value, None
    if backing is not None and "d" in flags:
        raise UbdError("Can't specify both 'd' and a cow file")
    return UbdSpec(unit, flags, f, backing or None)


class CowDevice(BlockDevice):
    """Reads take each sector from the COW file if its bit is set, else from
    the backing file; writes go to the COW file and set the bits."""

    def __init__(self, cowf: HostFile, backing: HostFile, header: cow.CowHeader, read_only: bool) -> None:
        super().__init__((header.size + SECTOR - 1) // SECTOR * SECTOR, read_only)
        self.cowf = cowf
        self.backing = backing
        self.h = header
        self.bitmap = bytearray(cowf.pread(header.bitmap_len, header.bitmap_offset).ljust(header.bitmap_len, b"\0"))
        self.data_off = header.data_offset

    def _bit(self, s: int) -> bool:
        return bool(self.bitmap[s >> 3] & (1 << (s & 7)))

    def _run_end(self, s: int, last: int) -> int:
        """Where the run of sectors sharing s's bit ends (at most last): bit
        by bit to a byte boundary, then whole bytes by a search in C, the
        bitmap being mostly long runs of 0x00 (backing) or 0xff (COW)."""
        c = self._bit(s)
        e = s + 1
        while e < last and e & 7:
            if self._bit(e) != c:
                return e
            e += 1
        if e >= last:
            return last
        m = (_NOT_ALL_SET if c else _NOT_ALL_CLEAR).search(self.bitmap, e >> 3, (last + 7) >> 3)
        if m is None:
            return last
        e = m.start() << 3
        while e < last and self._bit(e) == c:
            e += 1
        return min(e, last)

    def _runs(self, first: int, last: int) -> Iterator[tuple[int, int, bool]]:
        """(start, count, in_cow) runs of sectors first..last-1."""
        s = first
        while s < last:
            e = self._run_end(s, last)
            yield s, e - s, self._bit(s)
            s = e

    def _fill(self, first: int, buf: memoryview) -> None:
        """Sectors from first into buf (whole sectors), each run from the
        COW file or the backing file; past either file's end, zeros."""
        for s, k, in_cow in self._runs(first, first + len(buf) // SECTOR):
            part = buf[(s - first) * SECTOR:(s - first + k) * SECTOR]
            if in_cow:
                got = self.cowf.readinto(part, self.data_off + s * SECTOR)
            else:
                got = self.backing.readinto(part, s * SECTOR)
            if got < len(part):
                part[got:] = bytes(len(part) - got)

    def _read_sectors(self, first: int, count: int) -> bytes:
        buf = bytearray(count * SECTOR)
        self._fill(first, memoryview(buf))
        return bytes(buf)

    def _read_into(self, off: int, buf: memoryview) -> None:
        if off % SECTOR or len(buf) % SECTOR:
            return super()._read_into(off, buf)
        self.check(off, len(buf), False)
        self._fill(off // SECTOR, buf)

    def _read(self, off: int, n: int) -> bytes:
        self.check(off, n, False)
        first = off // SECTOR
        last = (off + n + SECTOR - 1) // SECTOR
        data = self._read_sectors(first, last - first)
        skip = off - first * SECTOR
        return data[skip:skip + n]

    def _write(self, off: int, data: bytes) -> None:
        self.check(off, len(data), True)
        first = off // SECTOR
        last = (off + len(data) + SECTOR - 1) // SECTOR
        head = off - first * SECTOR
        if head or (off + len(data)) % SECTOR:
            # partial sectors: read-modify-write through the overlay
            buf = bytearray(self._read_sectors(first, last - first))
            buf[head:head + len(data)] = data
            data = bytes(buf)
        self.cowf.pwrite(data, self.data_off + first * SECTOR)
        self._set_bits(first, last)
        lo, hi = first >> 3, ((last - 1) >> 3) + 1
        self.cowf.pwrite(bytes(self.bitmap[lo:hi]), self.h.bitmap_offset + lo)

    def _set_bits(self, first: int, last: int) -> None:
        """Mark sectors first..last-1 as in the COW file: whole bytes at once."""
        bm = self.bitmap
        s = first
        while s < last and s & 7:
            bm[s >> 3] |= 1 << (s & 7)
            s += 1
        whole = (last - s) >> 3
        if whole:
            bm[s >> 3:(s >> 3) + whole] = b"\xff" * whole
            s += whole << 3
        while s < last:
            bm[s >> 3] |= 1 << (s & 7)
            s += 1

    def _flush(self) -> None:
        if not self.read_only:
            self.cowf.fsync()

    def close(self) -> None:
        self.cowf.close()
        self.backing.close()


class Ubd:
    """One ubd disk: the guest's /dev/ubdX."""

    def __init__(self, spec: UbdSpec, dev: BlockDevice, files: list[HostFile], desc: str) -> None:
        self.spec = spec
        self.dev = dev
        self.files = files
        self.desc = desc
        self.dev.name = spec.name
        self.dev.major = UBD_MAJOR
        self.dev.minor = spec.unit * MINORS_PER_DISK
        self.dev.minors = MINORS_PER_DISK
        self.dev.sysfs_dir = f"platform/ubd.{spec.unit}/block/{spec.name}"

    def unlock(self) -> None:
        """Give up the host locks (a migration hands the disk over)."""
        for f in self.files:
            f.unlock()

    def lock_again(self) -> bool:
        """Take the host locks back (a migration that failed); False if
        another instance has them now."""
        return all(f.lock() for f in self.files if "c" not in self.spec.flags)

    def close(self) -> None:
        """Flush and let go of the host files; a host that fails the
        flush (EIO, a full disk) gets a log line, not a crash at shutdown."""
        try:
            self.dev.flush()
        except OSError as e:
            printk.pr_err(f"{self.spec.name}: flushing {self.desc} failed: {e.strerror}")
        finally:
            for f in self.files:
                f.close()


def _open(path: str, writable: bool, sync: bool, lock: bool) -> HostFile:
    try:
        f = HostFile(path, writable, sync)
    except NotADisk as e:
        raise UbdError(f"Failed to open '{path}': it is {e.kind}; "
                       "a disk must be a regular file or a block device") from None
    except OSError as e:
        raise UbdError(f"Failed to open '{path}', errno = {e.errno} ({e.strerror})") from None
    if lock and not f.lock():
        f.close()
        raise UbdError(f"Failed to lock '{path}': it is in use by another instance "
                       "(give the 'c' flag to share it)")
    return f


def _create_cow(path: str, backing: str) -> None:
    back = _open(backing, False, False, False)
    size, mtime = back.size(), back.mtime()
    back.close()
    h = cow.CowHeader(3, absolute_path(backing), mtime, size)
    try:
        f = HostFile(path, True, create=True)
    except OSError as e:
        raise UbdError(f"Failed to create COW file '{path}', errno = {e.errno}") from None
    try:
        f.pwrite(h.pack(), 0)
        f.pwrite(b"\0", h.data_offset + size - 1)   # sparse, as UML's init_cow_file
        f.fsync()
    finally:
        f.close()
    printk.pr_info(f"Creating \"{path}\" as COW file for \"{backing}\"")


def open_ubd(spec: UbdSpec) -> Ubd:
    ro = "r" in spec.flags
    sync = "s" in spec.flags
    lock = "c" not in spec.flags
    cow_path, backing = None, spec.backing
    if backing is not None:
        cow_path = spec.file
        if file_stat(cow_path) is None:
            _create_cow(cow_path, backing)
    elif "d" not in spec.flags and file_stat(spec.file) is not None:
        try:
            probe = HostFile(spec.file, False)
            head = probe.pread(cow.HEADER_SIZE, 0)
            probe.close()
        except OSError:
            head = b""
        if cow.is_cow(head):
            cow_path = spec.file
    if cow_path is None:
        f = _open(spec.file, not ro, sync, lock)
        return Ubd(spec, ImageDevice(f, ro), [f], spec.file)
    cowf = _open(cow_path, not ro, sync, lock)
    try:
        header = cow.parse(cowf.pread(cow.HEADER_SIZE, 0))
    except cow.CowFormatError as e:
        cowf.close()
        raise UbdError(f"'{cow_path}': {e}") from None
    if backing is None:
        backing = header.backing
    elif absolute_path(backing) != header.backing:
        old, new = file_stat(header.backing), file_stat(backing)
        if new is not None and (old is None or new == old):
            printk.pr_notice(f"Switching backing file to '{backing}'")
            header.backing = absolute_path(backing)
            if not ro:
                cowf.pwrite(header.pack(), 0)
    back = _open(backing, False, False, lock)
    size, mtime = back.size(), back.mtime()
    problem = None
    if size != header.size:
        problem = f"Size mismatch ({size} vs {header.size}) of COW header vs backing file"
    elif mtime & 0xFFFFFFFF != header.mtime & 0xFFFFFFFF:
        problem = f"mtime mismatch ({header.mtime} vs {mtime}) of COW header vs backing file"
    if problem:
        cowf.close()
        back.close()
        printk.pr_err(problem)
        raise UbdError(f"Failed to open '{cow_path}', errno = {E.EINVAL}")
    dev = CowDevice(cowf, back, header, ro)
    return Ubd(spec, dev, [cowf, back], f"{cow_path} (COW of {backing})")
