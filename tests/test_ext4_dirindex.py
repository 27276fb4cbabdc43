"""ext4's directory index in the driver: indexed directories stay indexed.

Module tests drive Ext4Fs through the VFS Inode API (creates, renames
across two big directories, removals, readdir positions) over
metadata_csum on and off, the half_md4, tea and legacy hashes and 1 KiB
and 4 KiB blocks; e2fsck -fn must be clean and debugfs's htree_dump must
show the index.  The guest test makes 50 000 entries with t_bigdir.
"""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from arch_um.hostfile import HostFile
from conftest import sh
from umlpy.abi import errno as E
from umlpy.block.device import ImageDevice
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext4 import dirhash, mount_ext4
from umlpy.fs.ext4.dir import InodeBlocks
from umlpy.fs.ext4.htree import EOF_64BIT, Htree
from umlpy.kernel.errors import KernelError

pytestmark = pytest.mark.skipif(shutil.which("mke2fs") is None or shutil.which("debugfs") is None,
                                reason="e2fsprogs missing")

REG, DIR = 0o100644, 0o040755
VARIANTS = {
    "csum-1k": ["-b", "1024"],
    "nocsum-1k": ["-b", "1024", "-O", "^metadata_csum"],
    "tea-csum-4k": ["-b", "4096", "hash_alg=tea"],
    "legacy-nocsum-1k": ["-b", "1024", "-O", "^metadata_csum", "hash_alg=legacy"],
    "csum-4k": ["-b", "4096"],
}


def mkfs(path: Path, *opts: str, size: str = "128M") -> Path:
    """mke2fs with opts; hash_alg=X among them goes to tune2fs -E (mke2fs has no such option)."""
    hashes = [o for o in opts if o.startswith("hash_alg=")]
    opts = tuple(o for o in opts if o not in hashes)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-N", "40000", *opts, str(path), size],
                   check=True, capture_output=True)
    for h in hashes:
        subprocess.run(["tune2fs", "-E", h, str(path)], check=True, capture_output=True)
    return path


def mount(path: Path):
    return mount_ext4(ImageDevice(HostFile(str(path), writable=True), read_only=False), False)


def fsck(path: Path) -> None:
    r = subprocess.run(["e2fsck", "-fn", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def debugfs(path: Path, cmd: str, write: bool = False) -> str:
    args = ["debugfs", *(["-w"] if write else []), "-R", cmd, str(path)]
    return subprocess.run(args, capture_output=True, check=True).stdout.decode(errors="replace")


def levels(path: Path, d: str) -> int:
    """The index's indirect levels as htree_dump shows them (-1: not indexed)."""
    m = re.search(r"Indirect levels: (\d+)", debugfs(path, f"htree_dump {d}"))
    return int(m.group(1)) if m else -1


def debugfs_names(path: Path, d: str) -> set[str]:
    out = debugfs(path, f"ls -p {d}")
    names = {m.group(2) for m in re.finditer(r"^/(\d+)/\d+/\d+/\d+/(.*)/\d*/$", out, re.M)
             if m.group(1) != "0"}
    return names - {".", ".."}


def name(i: int) -> bytes:
    return b"e%07d%s" % (i, b"x" * (i % 13))


def hash_key(fs, n: bytes) -> tuple[int, int]:
    """(major, minor) of a name in an index made on fs (its default hash)."""
    sb = fs.sb
    version = dirhash.effective_version(sb.def_hash_version, sb.flags)
    return dirhash.dirhash(n, version, dirhash.seed_words(sb.hash_seed))


def check_readdir(fs, d, names: set[bytes]) -> None:
    """readdir: hash order, every name once, each d_off the next entry's position,
    and resuming from any d_off gives the rest."""
    got = list(d.readdir(0))
    assert [g[0] for g in got[:2]] == [b".", b".."]
    rest = [g[0] for g in got[2:]]
    assert len(rest) == len(names) and set(rest) == names
    assert rest == sorted(rest, key=lambda n: hash_key(fs, n))
    offs = [g[3] for g in got]
    assert offs[-1] == EOF_64BIT and offs == sorted(offs)
    for i in range(2, len(got) - 1):
        major, minor = hash_key(fs, got[i + 1][0])
        assert offs[i] == (major >> 1) << 32 | minor
    for i in (0, 1, len(got) // 3, len(got) - 2):
        assert list(d.readdir(offs[i])) == got[i + 1:]
    assert list(d.readdir(EOF_64BIT)) == []
    assert sorted(n for n, *_ in d.entries()) == sorted(names)


@pytest.mark.parametrize("variant", VARIANTS)
def test_big_directories(tmp_path: Path, variant: str) -> None:
    img = mkfs(tmp_path / "fs.img", *VARIANTS[variant])
    fs = mount(img)
    a = fs.root.create(b"a", DIR, 0, 0)
    b = fs.root.create(b"b", DIR, 0, 0)
    n = 8000 if "1k" in variant else 20000
    for i in range(n):
        a.create(name(i), REG, 0, 0)
        if i == 300:
            assert a.flags & L.FL_INDEX          # the first block filled: indexed
    for i in range(n, n + 3000):
        b.create(name(i), REG, 0, 0)
    keep = dict.fromkeys(range(n))
    moved = set(range(n, n + 3000))
    for i in range(0, n, 7):                     # a -> b
        a.rename(name(i), b, name(i), 0)
        del keep[i]
        moved.add(i)
    for i in range(n, n + 3000, 5):              # b -> a
        b.rename(name(i), a, name(i), 0)
        moved.discard(i)
        keep[i] = None
    for i in range(3, n, 14):                    # never moved (i % 7 == 3)
        a.unlink(name(i))
        del keep[i]
    a.rename(name(1), a, name(2), 0)             # replace: retarget in place
    del keep[1]
    for i in (2, n + 5, 10):
        assert a.lookup(name(i)) is not None
    assert a.lookup(name(0)) is None and b.lookup(name(0)) is not None
    # an indexed directory moved: its '..' (in the index root) follows
    b.create(b"sub", DIR, 0, 0)
    fs.root.rename(b"a", b, b"a-moved", 0)
    check_readdir(fs, a, {name(i) for i in keep})
    check_readdir(fs, b, {name(i) for i in moved} | {b"sub", b"a-moved"})
    fs.unmount()
    fsck(img)
    assert "Flags: 0x81000" in debugfs(img, "stat /b/a-moved")
    assert levels(img, "/b/a-moved") >= (1 if "1k" in variant else 0)
    assert debugfs_names(img, "/b/a-moved") == {name(i).decode() for i in keep}
    assert debugfs_names(img, "/b") == {name(i).decode() for i in moved} | {"sub", "a-moved"}


def test_lookups_read_a_path_not_the_directory(tmp_path: Path) -> None:
    img = mkfs(tmp_path / "fs.img", "-b", "1024")
    fs = mount(img)
    a = fs.root.create(b"a", DIR, 0, 0)
    for i in range(6000):
        a.create(name(i), REG, 0, 0)
    fs.unmount()
    fs = mount(img)                      # cold: nothing of /a cached or verified
    a = fs.root.lookup(b"a")
    assert a.size() // 1024 > 150
    d = a._dirx()
    reads = []
    get = fs.bcache.get
    fs.bcache.get = lambda blk: reads.append(blk) or get(blk)
    for i in range(0, 6000, 60):
        assert d.get(name(i)).ino
    assert d.get(b"absent") is None
    # root, one index node, one leaf (a hash run rarely continues into the next)
    assert len(reads) <= 101 * 5
    assert len(set(reads)) < 101 * 2
    fs.bcache.get = get
    fs.unmount()
    fsck(img)


def corrupt_root(img: Path, d: bytes) -> None:
    """An unknown hash version in dx_root (with its checksum made right again): the
    index is unusable (dx_probe's ERR_BAD_DX_DIR), the leaves are fine."""
    fs = mount(img)
    blocks = InodeBlocks(fs.root.lookup(d))
    root = blocks.read(0)
    root[28] = 9                                  # dx_root_info.hash_version
    if blocks.metadata_csum:
        t, c = Htree(blocks)._dx_csum(root, 32)
        struct.pack_into("<I", root, t + 4, c)
    blocks.mark_dirty(0)
    fs.unmount()


@pytest.mark.parametrize("variant", ["nocsum", "csum"])
def test_corrupt_index_falls_back_as_linux(tmp_path: Path, variant: str) -> None:
    opts = ["-b", "1024"] + (["-O", "^metadata_csum"] if variant == "nocsum" else [])
    img = mkfs(tmp_path / "fs.img", *opts)
    fs = mount(img)
    a = fs.root.create(b"a", DIR, 0, 0)
    for i in range(500):
        a.create(name(i), REG, 0, 0)
    fs.unmount()
    corrupt_root(img, b"a")
    fs = mount(img)
    a = fs.root.lookup(b"a")
    assert a.lookup(name(321)) is not None            # ext4_find_entry's linear fallback
    a.unlink(name(5))
    if variant == "csum":
        with pytest.raises(KernelError) as ei:
            a.create(b"new", REG, 0, 0)
        assert ei.value.errno == E.EUCLEAN            # "Directory has corrupted htree index."
        assert a.flags & L.FL_INDEX
        fs.unmount()
        return
    a.create(b"new", REG, 0, 0)                       # the index is dropped, linear from now
    assert not a.flags & L.FL_INDEX
    assert len(a.entries()) == 500
    fs.unmount()
    fsck(img)
    assert len(debugfs_names(img, "/a")) == 500


def test_guest_50000_entries(tmp_path: Path) -> None:
    """t_bigdir in a guest: 50 000 files in /a, 20 000 in /b, renames both ways,
    removals, then the listing in hash order and lseek/seekdir to cookies."""
    img = mkfs(tmp_path / "fs.img", "-b", "1024", "-N", "80000", size="256M")
    script = " && ".join([
        "mount -t ext4 /dev/ubdb /mnt", "mkdir /mnt/a /mnt/b",
        "/t/bin/t_bigdir create /mnt/a 0 50000",
        "/t/bin/t_bigdir create /mnt/b 100000 20000",
        "/t/bin/t_bigdir rename /mnt/a /mnt/b 0 50000 7",
        "/t/bin/t_bigdir rename /mnt/b /mnt/a 100000 20000 5",
        "/t/bin/t_bigdir unlink /mnt/a 3 50000 14",
        "/t/bin/t_bigdir check /mnt/a",
        "/t/bin/t_bigdir list /mnt/a > /mnt/list",
        "ls /mnt/a | wc -l", "ls /mnt/b | wc -l", "umount /mnt"])
    r = sh(script, f"ubdb={img}", timeout=600)
    out = r.stdout.decode()
    keep = {i for i in range(50000) if i % 7 and i % 14 != 3} | set(range(100000, 120000, 5))
    moved = {i for i in range(0, 50000, 7)} | (set(range(100000, 120000)) - set(range(100000, 120000, 5)))
    assert f"entries {len(keep) + 2} duplicates 0" in out, out + r.stderr.decode()[-2000:]
    assert "lseek to d_off: 97 of 97 resume right" in out
    assert re.search(r"seekdir to telldir: (\d+) of \1 resume right", out)
    lines = [line.strip() for line in out.split("\n")]
    assert str(len(keep)) in lines and str(len(moved)) in lines
    fsck(img)
    assert levels(img, "/a") >= 1 and levels(img, "/b") >= 1
    assert debugfs_names(img, "/a") == {name(i).decode() for i in keep}
    # the guest's listing: hash order, each d_off the next entry's position
    lines = debugfs(img, "cat /list").splitlines()
    assert lines[-1] == "done"
    listing = [line.split(" ", 1) for line in lines[:-1]]
    names = [n.encode() for _, n in listing]
    assert names[:2] == [b".", b".."] and set(names[2:]) == {name(i) for i in keep}
    fs = mount(img)
    keys = [hash_key(fs, n) for n in names[2:]]
    fs.unmount()
    assert keys == sorted(keys)
    assert [int(o) for o, _ in listing[1:-1]] == [(mj >> 1) << 32 | mn for mj, mn in keys]
    assert int(listing[-1][0]) == EOF_64BIT
