"""fallocate, FIEMAP, SEEK_DATA/SEEK_HOLE and the inode flags on ext4 (and FIEMAP on ext2);
shared file mappings' times and page tails on ext4.

t_falloc and t_mmapfile run natively on a host ext4 directory and in the
guest on an ext4 image, and must print the same; module tests drive the inodes for
what a native run cannot show (ENOSPC, block-mapped files, 6.1's answers
where newer kernels differ), each ending with `e2fsck -fn` clean.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import PROGS, native, sh
from test_ext4 import REG, debugfs, errno_of, finish, fsck, mkfs, mount
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.ext2 import mount_ext2
from umlpy.vfs import fiemap as F

KEEP, PUNCH, ZERO = C.FALLOC_FL_KEEP_SIZE, C.FALLOC_FL_PUNCH_HOLE, C.FALLOC_FL_ZERO_RANGE
COLLAPSE, INSERT = C.FALLOC_FL_COLLAPSE_RANGE, C.FALLOC_FL_INSERT_RANGE


def fstype(path: Path) -> str:
    r = subprocess.run(["findmnt", "-no", "FSTYPE", "--target", str(path)], capture_output=True, text=True)
    return r.stdout.strip()


# the native run on one CPU: the host's mballoc keeps a preallocation per
# CPU, so a process that moves between CPUs gets blocks apart (extents that
# do not merge, a tree block more) where the guest's allocator never does
PINNED = ["taskset", "-c", str(min(os.sched_getaffinity(0)))]


def native_on_ext4(tmp: Path, prog: str = "t_falloc") -> bytes:
    """prog (t_falloc) on a host ext4 directory: as root a fresh loop-mounted image
    made like the guest's, else the scratch area when it is ext4.

    A fresh image first, pinned (PINNED): on a long-lived, busy filesystem,
    or from several CPUs, the host's allocator may place one file's blocks
    apart, so extents that would merge do not and an extent-tree block
    appears (st_blocks one higher)."""
    d = Path(tempfile.mkdtemp(prefix="umlpy-falloc-"))
    try:
        if os.geteuid() == 0:
            img = mkfs(tmp / "host.img", "128M", "-b", "4096")
            if subprocess.run(["mount", "-o", "loop", str(img), str(d)], capture_output=True).returncode == 0:
                try:
                    return native(PINNED + [str(PROGS / prog), str(d)])
                finally:
                    subprocess.run(["umount", str(d)], check=True)
        if fstype(d) == "ext4":
            return native(PINNED + [str(PROGS / prog), str(d)])
        pytest.skip("no fresh ext4 loop mount (needs root) and the host's scratch directory is not ext4")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_t_falloc_matches_native_ext4(tmp_path: Path) -> None:
    want = native_on_ext4(tmp_path)
    assert want.endswith(b"done\n") and b"no ext4" not in want, want
    img = mkfs(tmp_path / "g.img", "128M", "-b", "4096")
    got = sh("mount -t ext4 /dev/ubdb /mnt && /t/bin/t_falloc /mnt; umount /mnt", f"ubdb={img}")
    assert got.stdout.decode() == want.decode()
    assert b"Traceback" not in got.stderr
    fsck(img)


def test_t_mmapfile_matches_native_ext4(tmp_path: Path) -> None:
    """mmap's atime, a mapping's write's mtime, the zeroed tail past the end."""
    want = native_on_ext4(tmp_path, "t_mmapfile")
    assert want.endswith(b"done\n"), want
    img = mkfs(tmp_path / "g.img", "128M", "-b", "4096")
    got = sh("mount -t ext4 /dev/ubdb /mnt && /t/bin/t_mmapfile /mnt; umount /mnt", f"ubdb={img}")
    assert got.stdout.decode() == want.decode()
    assert b"Traceback" not in got.stderr
    fsck(img)


# -- module tests -------------------------------------------------------------------------
class Mem:
    """Guest memory for FiemapInfo: what the ioctl would copy out."""

    def __init__(self) -> None:
        self.bytes: dict[int, bytes] = {}

    def write(self, addr: int, data: bytes) -> None:
        self.bytes[addr] = data


class Task:
    def __init__(self) -> None:
        self.mem = Mem()


def fiemap(inode, start: int = 0, length: int = 1 << 62, flags: int = 0, count: int = 64):
    """[(logical, physical, length, flags)] as FS_IOC_FIEMAP reports them."""
    task = Task()
    fi = F.FiemapInfo(task, flags, count, 0)
    inode.fiemap(fi, start, length)
    return [F.EXTENT.unpack(task.mem.bytes[i * F.EXTENT.size]) for i in range(fi.mapped)]


def extents(path: Path, name: str) -> str:
    return debugfs(path, f"ex {name}").decode()


def test_modes_keep_the_fs_clean(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "128M", "-b", "1024")
    fs = mount(path)
    bs = fs.block_size
    f = fs.root.create(b"f", REG, 0, 0)
    f.write(0, b"w" * 33000 * bs)             # a written extent longer than an unwritten one may be
    f.fallocate(0, 40000 * bs, 40000 * bs)    # more than one unwritten extent's length
    assert f.size() == 80000 * bs
    f.fallocate(ZERO | KEEP, 0, 33000 * bs)   # the long written extent turns unwritten, split
    assert f.read(0, 100) == bytes(100)
    f.write(5 * bs, b"x" * bs)
    f.fallocate(PUNCH | KEEP, 6 * bs + 7, 3 * bs)
    f.fallocate(COLLAPSE, 100 * bs, 50 * bs)
    f.fallocate(INSERT, 2 * bs, 20 * bs)
    assert f.read(25 * bs, bs) == b"x" * bs and f.read(26 * bs, 7) == bytes(7)
    size, blocks = f.size(), f.blocks()
    finish(fs, path)
    out = debugfs(path, "stat /f").decode()
    assert f"Size: {size}" in out and f"Blockcount: {blocks}" in out
    assert "Uninit" in extents(path, "/f")


def test_enospc_changes_nothing(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "16M", "-O", "^has_journal")
    fs = mount(path)
    f = fs.root.create(b"f", REG, 0, 0)
    f.write(0, b"a" * 8192)
    free, blocks, size = fs.sb.free_blocks_count, f.blocks(), f.size()
    assert errno_of(f.fallocate, 0, 0, 64 << 20) == E.ENOSPC
    assert errno_of(f.fallocate, ZERO, 4096, 64 << 20) == E.ENOSPC
    assert (fs.sb.free_blocks_count, f.blocks(), f.size()) == (free, blocks, size)
    finish(fs, path)


def test_page_cache_follows_moved_blocks(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "32M")
    fs = mount(path)
    bs = fs.block_size
    f = fs.root.create(b"f", REG, 0, 0)
    body = b"".join(bytes([65 + i]) * bs for i in range(10))
    f.write(0, body)
    mem = f.memfile()
    f.fallocate(COLLAPSE, 2 * bs, 3 * bs)
    want = body[:2 * bs] + body[5 * bs:]
    assert mem.pread(len(want) + 10, 0) == want == f._read_disk(0, len(want))
    f.fallocate(INSERT, bs, bs)
    want = want[:bs] + bytes(bs) + want[bs:]
    assert mem.pread(len(want) + 10, 0) == want == f._read_disk(0, len(want))
    f.fallocate(ZERO | KEEP, bs + 10, 2 * bs)
    f.fallocate(PUNCH | KEEP, 5 * bs - 3, 6)
    assert f.read(0, f.size()) == f._read_disk(0, f.size())
    finish(fs, path)


def test_fiemap_reports_extents_cut_to_the_range(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "32M", "-b", "4096")
    fs = mount(path)
    f = fs.root.create(b"f", REG, 0, 0)
    f.write(0, b"d" * 8192)
    f.fallocate(KEEP, 4 * 4096, 2 * 4096)
    got = fiemap(f)
    assert [(lg, n, fl) for lg, _, n, fl in got] == [(0, 8192, 0), (16384, 8192, F.FIEMAP_EXTENT_UNWRITTEN
                                                                      | F.FIEMAP_EXTENT_LAST)]
    assert [(lg, n, fl) for lg, _, n, fl in fiemap(f, 4096 + 5, 1)] == [(4096, 4096, F.FIEMAP_EXTENT_LAST)]
    assert [fl for *_, fl in fiemap(f, count=1)] == [0]          # full: not the last one
    f.setxattr(b"user.big", b"v" * 600, 0)                          # goes to an EA block
    ((lg, phys, n, fl),) = fiemap(f, flags=F.FIEMAP_FLAG_XATTR)
    assert (lg, phys, n, fl) == (0, f.file_acl * 4096, 4096, F.FIEMAP_EXTENT_LAST)
    assert errno_of(fiemap, f, 0, 0) == E.EINVAL
    finish(fs, path)


def test_ext2_fiemap_stops_runs_at_pointer_blocks(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "32M", "-b", "1024", fstype="ext2")
    dev_fs = mount_ext2_image(path)
    f = dev_fs.root.create(b"f", REG, 0, 0)
    assert fiemap(f) == []                          # empty: nothing mapped (Linux 6.18; 6.1 said EINVAL)
    assert errno_of(fiemap, f, 0, 0) == E.EINVAL    # a zero length as asked
    assert errno_of(fiemap, f, 0, 1 << 62, 0xFFFFFFFF) == E.EBADR
    f.write(0, b"e" * 300 * 1024)
    got = fiemap(f)
    assert [(lg // 1024, n // 1024) for lg, _, n, _ in got] == [(0, 12), (12, 256), (268, 32)]
    assert all(fl & F.FIEMAP_EXTENT_MERGED for *_, fl in got) and got[-1][3] & F.FIEMAP_EXTENT_LAST
    assert errno_of(f.fallocate, 0, 0, 4096) == E.EOPNOTSUPP
    finish(dev_fs, path)


def mount_ext2_image(path: Path):
    from arch_um.hostfile import HostFile
    from umlpy.block.device import ImageDevice
    return mount_ext2(ImageDevice(HostFile(str(path), writable=True), read_only=False), False)


def test_block_mapped_file_on_ext4(tmp_path: Path) -> None:
    """Clearing the extents flag (ext4_ind_migrate) of a small file; then
    only punching is offered, and FIEMAP flags its runs MERGED."""
    path = mkfs(tmp_path / "fs.img", "32M", "-b", "4096")
    fs = mount(path)
    yes = lambda cap: True    # noqa: E731
    f = fs.root.create(b"f", REG, 0, 0)
    f.write(0, b"m" * 3 * 4096)
    g = fs.root.create(b"g", REG, 0, 0)
    g.write(0, b"m" * 4096)
    g.write(20 * 4096, b"m" * 4096)
    ext = f.get_fsflags()
    assert ext & 0x80000
    assert errno_of(g.set_fsflags, 0, yes) == E.EOPNOTSUPP      # reaches past block 12
    f.set_fsflags(0, yes)
    assert f.get_fsflags() == 0
    assert errno_of(f.fallocate, 0, 0, 4096) == E.EOPNOTSUPP
    assert errno_of(f.fallocate, COLLAPSE, 0, 4096) == E.EOPNOTSUPP
    f.fallocate(PUNCH | KEEP, 4096, 4096)
    assert [fl for *_, fl in fiemap(f)] == [F.FIEMAP_EXTENT_MERGED,
                                            F.FIEMAP_EXTENT_MERGED | F.FIEMAP_EXTENT_LAST]
    assert f.read(4096, 4096) == bytes(4096)
    assert errno_of(f.set_fsflags, ext, yes) == E.EOPNOTSUPP     # back to extents: not done here
    assert errno_of(g.set_fsflags, ext | 0x4000, lambda cap: False) == E.EPERM   # data journalling
    assert errno_of(g.set_fsflags, ext | 0x10000, yes) == E.EOPNOTSUPP           # dirsync on a file
    finish(fs, path)
    assert "Flags: 0x0" in debugfs(path, "stat /f").decode()
