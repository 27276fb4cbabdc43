"""Delayed allocation on ext4 (fs/ext4/delalloc.py): writes into holes
reserve blocks and allocate at write-back; a file gone before then never
had any; reservations keep ENOSPC at write; a crash between a commit and
the write-back leaves the size the disk's data covers.  Every image ends
`e2fsck -fn` clean."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from test_ext4 import REG, fsck, mkfs, mount
from test_ext4_falloc import fiemap
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.vfs import fiemap as F

pytestmark = pytest.mark.skipif(shutil.which("mke2fs") is None, reason="e2fsprogs missing")


def free_blocks(fs) -> int:
    return fs.sb.free_blocks_count


def test_a_file_gone_before_write_back_never_had_blocks(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "32M", "-b", "4096")
    fs = mount(path)
    fs.sync()
    before = free_blocks(fs)
    for i in range(200):
        f = fs.root.create(b"f%d" % i, REG, 0, 0)
        f.write(0, b"x" * 5000)
        assert f.blocks() == 2 * fs.block_size // 512        # counted as it will be
    assert free_blocks(fs) == before                          # nothing allocated yet
    assert fs.statfs()["bfree"] <= before - 400               # but promised
    for i in range(200):
        fs.root.unlink(b"f%d" % i)
    fs.sync()
    assert free_blocks(fs) == before
    assert fs.delalloc.reserved == 0
    fs.unmount()
    fsck(path)


def test_write_back_gives_blocks_and_data(tmp_path: Path) -> None:
    """fsync's write-back allocates the delayed blocks of a piecewise-written
    file in one run, and the data reads back from the disk after a remount."""
    path = mkfs(tmp_path / "fs.img", "32M")
    fs = mount(path)
    f = fs.root.create(b"f", REG, 0, 0)
    data = bytes(range(256)) * 300
    for off in range(0, len(data), 1000):
        f.write(off, data[off:off + 1000])
    ((_, phys, _, flags),) = fiemap(f)                 # before write-back: no place yet
    assert phys == 0 and flags == F.FIEMAP_EXTENT_DELALLOC | F.FIEMAP_EXTENT_UNKNOWN | F.FIEMAP_EXTENT_LAST
    ((_, phys, _, flags),) = fiemap(f, flags=F.FIEMAP_FLAG_SYNC)     # written back: one extent
    assert phys and flags == F.FIEMAP_EXTENT_LAST
    assert not f.delayed
    g = fs.root.create(b"g", REG, 0, 0)
    g.write(0, b"tail")
    fs.sync()
    assert not g.delayed and g.i_blocks
    fs.unmount()
    fsck(path)
    fs = mount(path, read_only=True)
    assert fs.root.lookup(b"f").read(0, len(data) + 1) == data
    assert fs.root.lookup(b"g").read(0, 10) == b"tail"
    fs.unmount()


def test_a_commit_before_write_back_records_the_size_on_disk(tmp_path: Path) -> None:
    """i_disksize: a commit while blocks are delayed (the metadata's periodic
    commit) records the size the disk's data covers, so a crash then leaves
    the old contents (here: an empty file), never a size over missing data."""
    path = mkfs(tmp_path / "fs.img", "32M")
    fs = mount(path)
    old = fs.root.create(b"old", REG, 0, 0)
    old.write(0, b"A" * 4096)
    fs.sync()
    f = fs.root.create(b"f", REG, 0, 0)
    f.write(0, b"hello")
    old.truncate(2)                                  # a truncate sets the disk's size too
    old.write(8192, b"B" * 10)                       # a delayed block past it
    assert old.size() == 8202 and old.disk_size() == 2
    fs.commit()                                      # not a write-back: the blocks stay delayed
    assert f.delayed and f.disk_size() == 0 and f.size() == 5
    crashed = tmp_path / "crash.img"
    shutil.copy(path, crashed)                       # the device as a SIGKILL would leave it
    fs.unmount()
    fs2 = mount(crashed)                             # the journal replayed
    assert fs2.root.lookup(b"f").size() == 0
    assert fs2.root.lookup(b"old").read(0, 100) == b"AA"
    fs2.unmount()
    fsck(crashed)
    fsck(path)


def test_truncate_and_holes_among_delayed_blocks(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "32M")
    fs = mount(path)
    bs = fs.block_size
    f = fs.root.create(b"f", REG, 0, 0)
    f.write(0, b"a" * (10 * bs))
    f.truncate(3 * bs + 5)                      # delayed blocks past it given back
    assert len(f.delayed) == 4 and fs.delalloc.reserved == 4
    f.write(20 * bs, b"z")                      # a hole between
    assert f.seek_data(4 * bs, C.SEEK_DATA) == 20 * bs      # written back first
    assert f.seek_data(0, C.SEEK_HOLE) == 4 * bs
    assert fs.delalloc.reserved == 0
    fs.unmount()
    fsck(path)
    fs = mount(path, read_only=True)
    g = fs.root.lookup(b"f")
    assert g.read(0, 20 * bs + 1) == b"a" * (3 * bs + 5) + bytes(17 * bs - 5) + b"z"
    fs.unmount()


def test_reservations_keep_enospc_at_write(tmp_path: Path) -> None:
    """Filling the disk with delayed writes: each write either takes all its
    bytes or fails with ENOSPC there (never later, at write-back), and every
    byte a write took is on the disk after the sync."""
    path = mkfs(tmp_path / "fs.img", "16M", "-b", "1024")
    fs = mount(path)
    chunk = b"q" * 3000
    written: dict[bytes, int] = {}
    full = False
    for i in range(10000):
        name = b"f%d" % i
        f = fs.root.create(name, REG, 0, 0)
        size = 0
        for _ in range(8):
            try:
                size += f.write(size, chunk)
            except KernelError as e:
                assert e.errno == E.ENOSPC
                full = True
                break
        written[name] = size
        if full:
            break
    assert full
    assert fs.delalloc.reserved > 0 or fs.statfs()["bfree"] == 0
    fs.sync()
    assert fs.delalloc.reserved == 0
    fs.unmount()
    fsck(path)
    fs = mount(path, read_only=True)
    for name, size in written.items():
        assert fs.root.lookup(name).read(0, size + 1) == b"q" * size, name
    fs.unmount()


def test_nodelalloc_and_ext3_allocate_at_write(tmp_path: Path) -> None:
    from test_ext4 import ImageDevice, HostFile, mount_ext4
    for name in ("ext3", "ext4"):
        path = mkfs(tmp_path / f"{name}.img", "32M", fstype=name)
        dev = ImageDevice(HostFile(str(path), writable=True), read_only=False)
        fs = mount_ext4(dev, False, name, delalloc=name == "ext3")
        assert fs.delalloc is None
        before = free_blocks(fs)
        f = fs.root.create(b"f", REG, 0, 0)
        f.write(0, b"x" * 5000)
        assert free_blocks(fs) < before and not f.delayed
        fs.unmount()
        fsck(path)


def test_delayed_data_is_bounded(tmp_path: Path) -> None:
    """Past DIRTY_LIMIT of delayed data a write writes back the oldest
    files first: what is left for a commit stays bounded."""
    from umlpy.fs.ext4.delalloc import DIRTY_LIMIT
    path = mkfs(tmp_path / "fs.img", "256M", "-b", "4096")
    fs = mount(path)
    chunk = b"z" * (1 << 20)
    files = []
    for i in range(3 * DIRTY_LIMIT // len(chunk) // 2):
        f = fs.root.create(b"f%d" % i, REG, 0, 0)
        f.write(0, chunk)
        files.append(f)
        assert fs.delalloc.reserved * fs.block_size <= DIRTY_LIMIT
    assert not files[0].delayed and files[-1].delayed      # the oldest went first
    fs.unmount()
    fsck(path)
    fs = mount(path, read_only=True)
    assert all(fs.root.lookup(b"f%d" % i).read(0, len(chunk)) == chunk for i in range(len(files)))
    fs.unmount()
