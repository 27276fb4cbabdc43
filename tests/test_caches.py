"""The kernel's caches of the disks stay bounded.  The page cache
(vfs/pagecache.py) within its budget: files' caches beyond it go, least
recently used first, never one a process maps nor ext4's delayed data; a
file bigger than the budget is read and written through the buffer
cache.  The dentry and inode caches (vfs/evict.py) let go of what nothing
holds past a bound from mem=.  Data reads back the same, and every image
ends `e2fsck -fn` clean."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from arch_um.hostfile import HostFile
from conftest import copy_image
from test_disk import BASE, assert_clean, disk_boot
from test_ext4 import REG, fsck, mkfs, mount, pattern
from umlpy.block.device import ImageDevice
from umlpy.fs.ext2 import mount_ext2
from umlpy.vfs import pagecache

pytestmark = pytest.mark.skipif(shutil.which("mke2fs") is None, reason="e2fsprogs missing")

MiB = 1 << 20


@pytest.fixture
def budget():
    """A cache of its own for one test, 4 MiB, no mapping unless the test says so."""
    saved = pagecache.cache
    c = pagecache.cache = pagecache.PageCache()     # none of other tests' files
    c.budget = 4 * MiB
    yield c
    pagecache.cache = saved


def _mount(path: Path, fstype: str):
    """ext2's own driver for an ext2 image (mount() is ext4's)."""
    if fstype == "ext2":
        return mount_ext2(ImageDevice(HostFile(str(path), writable=True), read_only=False), False)
    return mount(path)


def _files(fs, n: int, size: int, prefix: bytes = b"f") -> list:
    out = []
    for i in range(n):
        f = fs.root.create(prefix + b"%d" % i, REG, 0, 0)
        f.write(0, pattern(size, i))
        out.append(f)
    return out


@pytest.mark.parametrize("fstype", ["ext2", "ext4"])
def test_caches_stay_within_the_budget(tmp_path: Path, budget, fstype: str) -> None:
    path = mkfs(tmp_path / "fs.img", "64M", fstype=fstype)
    fs = _mount(path, fstype)
    files = _files(fs, 12, MiB)
    fs.sync()                           # ext4: the delayed data written back, droppable
    for f in files:
        assert f.page_cache() is not None
        assert budget.total <= budget.budget
    assert sum(f._mem is not None for f in files) <= 4
    assert files[-1]._mem is not None                   # the one used last stays
    for i, f in enumerate(files):
        assert f.read(0, MiB) == pattern(MiB, i)
    fs.unmount()
    assert budget.total == 0
    fsck(path)


def test_a_mapped_cache_stays(tmp_path: Path, budget) -> None:
    path = mkfs(tmp_path / "fs.img", "64M")
    fs = mount(path)
    files = _files(fs, 3, MiB)
    fs.sync()
    mapped = files[0]
    mem = mapped.memfile()
    budget.mapped_ids = lambda: {id(mapped)}
    others = _files(fs, 8, MiB, b"g")
    fs.sync()
    for f in others:
        f.page_cache()
    assert mapped._mem is mem                   # the same host file the mapping has
    assert files[1]._mem is None
    fs.unmount()
    fsck(path)


def test_delayed_data_is_never_dropped(tmp_path: Path, budget) -> None:
    """ext4's delayed blocks have their data in the page cache alone: a
    file with them keeps its cache however far past the budget."""
    path = mkfs(tmp_path / "fs.img", "64M")
    fs = mount(path)
    files = _files(fs, 8, MiB)
    assert all(f._mem is not None for f in files if f.delayed)
    fs.unmount()
    fsck(path)
    fs = mount(path, read_only=True)
    for i in range(8):
        assert fs.root.lookup(b"f%d" % i).read(0, MiB) == pattern(MiB, i)
    fs.unmount()


@pytest.mark.parametrize("fstype", ["ext2", "ext4"])
def test_a_file_past_the_budget_goes_through_the_buffer_cache(tmp_path: Path, budget, fstype: str) -> None:
    path = mkfs(tmp_path / "fs.img", "64M", fstype=fstype)
    fs = _mount(path, fstype)
    big = fs.root.create(b"big", REG, 0, 0)
    data = pattern(6 * MiB, 7)
    for off in range(0, len(data), MiB):
        big.write(off, data[off:off + MiB])
    fs.sync()
    big.page_cache()
    assert big._mem is None and big.page_cache() is None
    assert big.read(0, len(data)) == data
    assert big.memfile() is not None            # mmap still gets one
    fs.unmount()
    fsck(path)


def _on_guest_disk(tmp_path: Path, script: str) -> list[str]:
    """The output lines of script run as init on a copy of the busybox
    image (ext4) at mem=64M, which e2fsck then finds clean."""
    img = tmp_path / "root.img"
    copy_image(BASE, img)
    r = disk_boot(f"ubd0={img}", "rw", "mem=64M", script=script)
    assert_clean(img)
    lines = r.stdout.decode().replace("\r", "").splitlines()
    print(lines, r.stderr[-2000:])      # shown if an assertion on them fails
    return lines


def test_a_guest_reading_its_disk_keeps_its_cache_bounded(tmp_path: Path) -> None:
    """Files written and read on the guest's ext4 root past the page
    cache's budget (mem=64M: 26 MiB) read back the same, a mapped file
    stays coherent with read and write, and /proc/meminfo's Cached stays
    within the budget."""
    script = (
        "mount -t proc p /proc; mount -t tmpfs t /tmp; "
        "for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=/tmp/f$i bs=1M count=6 2>/dev/null; done; "
        "cd /tmp && md5sum f* > /sums && cd /; "
        "for i in 1 2 3 4 5 6 7 8; do cat /tmp/f$i > /f$i; done; rm /tmp/f*; "
        "max=0; for r in 1 2; do for i in 1 2 3 4 5 6 7 8; do cat /f$i > /dev/null; "
        "c=$(awk '/^Cached:/ { print $2 }' /proc/meminfo); [ $c -gt $max ] && max=$c; done; done; "
        "echo cached within the budget: $((max <= 26 * 1024 + 2048)); "
        "md5sum -c /sums | grep -c OK; /t/bin/t_mmap_coherent /f1 /f2 /f3 /f4 /f5 /f6 /f7 /f8 && rm /f*; sync")
    assert _on_guest_disk(tmp_path, script)[-3:] == ["cached within the budget: 1", "8", "mapping and file agree"]


def test_inode_and_dentry_caches_let_go_of_what_nothing_holds(tmp_path: Path) -> None:
    """15 000 files made on the guest's root at mem=64M (a bound of 8 192
    cached inodes): the inode cache stays near the bound (it held all
    15 000 before), every file is still there, and what the guest holds
    meanwhile stays as it was: a shell's cwd deep in a directory (getcwd
    names it, not "(deleted)"), an open file (/proc/self/fd names it), a
    hard link's two names."""
    script = (
        "mount -t proc p /proc; mkdir -p /a/b/c /s; echo held > /a/b/c/kept; ln /a/b/c/kept /a/twin; "
        "cd /a/b/c; exec 3< /a/b/c/kept; "
        "for d in 1 2 3; do mkdir /s/$d; /t/bin/t_manyfiles /s/$d 5000 || echo failed; done; "
        "n=$(cut -f1 /proc/sys/fs/inode-nr); echo inodes cached under 10000: $((n < 10000)); "
        "pwd; readlink /proc/self/fd/3; cat <&3; "
        "echo twin >> /a/twin; cat kept; ls -i /a/twin /a/b/c/kept | awk '{ print $1 }' | uniq | wc -l; "
        "ls /s/1 /s/2 /s/3 | grep -c '^f'; cd /; sync")
    assert _on_guest_disk(tmp_path, script)[-8:] == [
        "inodes cached under 10000: 1", "/a/b/c", "/a/b/c/kept", "held", "held", "twin", "1", "15000"]
