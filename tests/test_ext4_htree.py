"""The ext4 directory index (fs/ext4/htree.py) on images made and judged by e2fsprogs.

mke2fs -d puts a few thousand files in /d and `e2fsck -fyD` indexes it; the
index is then driven through a thin DirBlocks adapter over the image's
blocks of /d (their list from `debugfs blocks`).  Room to grow is made
beforehand with debugfs `expand_dir`; after the writes the unused blocks are
punched, i_size set, and e2fsck -fn must find nothing.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from umlpy.abi import errno as E
from umlpy.fs.ext4 import dirhash
from umlpy.fs.ext4.htree import Htree
from umlpy.kernel.errors import KernelError

pytestmark = pytest.mark.skipif(shutil.which("debugfs") is None, reason="e2fsprogs missing")

BS = 1024                      # small blocks: few names per leaf, so levels come quickly
RO_COMPAT_METADATA_CSUM = 0x400
INCOMPAT_FILETYPE, INCOMPAT_CSUM_SEED, INCOMPAT_LARGEDIR = 0x2, 0x2000, 0x4000


def _crc_table() -> list[int]:
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC = _crc_table()


def crc32c(crc: int, data: bytes) -> int:
    """Linux's raw crc32c (no final inversion), as ext4's checksums use it."""
    t = _CRC
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True)


def debugfs(img: Path, cmd: str, write: bool = False) -> bytes:
    return run("debugfs", *(["-w"] if write else []), "-R", cmd, str(img)).stdout


def debugfs_script(img: Path, lines: list[str]) -> None:
    script = img.with_suffix(".cmds")
    script.write_text("".join(line + "\n" for line in lines))
    run("debugfs", "-w", "-f", str(script), str(img))


def fsck_clean(img: Path) -> None:
    r = subprocess.run(["e2fsck", "-fn", str(img)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


class ImageDir:
    """DirBlocks over the blocks of one directory of an image file, in memory until flush()."""

    def __init__(self, img: Path, path: str, spare: int = 0) -> None:
        self.img, self.path = img, path
        if spare:
            debugfs_script(img, [f"expand_dir {path}"] * spare)
        sb = img.read_bytes()[1024:2048]
        (self.inodes_count,) = struct.unpack_from("<I", sb, 0)
        self.block_size = 1024 << struct.unpack_from("<I", sb, 24)[0]
        incompat, ro_compat = struct.unpack_from("<II", sb, 0x60)
        self.hash_seed = dirhash.seed_words(sb[0xEC:0xFC])
        self.def_hash_version = sb[0xFC]
        (self.sb_flags,) = struct.unpack_from("<I", sb, 0x160)
        self.metadata_csum = bool(ro_compat & RO_COMPAT_METADATA_CSUM)
        self.largedir = bool(incompat & INCOMPAT_LARGEDIR)
        self.filetype = bool(incompat & INCOMPAT_FILETYPE)
        stat = debugfs(img, f"stat {path}").decode()
        self.ino = int(re.search(r"Inode: (\d+)", stat).group(1))
        size = int(re.search(r"Size: (\d+)", stat).group(1))
        gen = int(re.search(r"Generation: (\d+)", stat).group(1))
        fs_seed = struct.unpack_from("<I", sb, 0x270)[0] if incompat & INCOMPAT_CSUM_SEED \
            else crc32c(0xFFFFFFFF, sb[0x68:0x78])
        self._seed = crc32c(crc32c(fs_seed, struct.pack("<I", self.ino)), struct.pack("<I", gen))
        self.pblks = [int(b) for b in debugfs(img, f"blocks {path}").split()]
        self.used = len(self.pblks) - spare
        assert self.used * self.block_size == size - spare * self.block_size
        self.bufs: dict[int, bytearray] = {}
        self.dirty: set[int] = set()
        self.indexed_now = False

    # -- DirBlocks ---------------------------------------------------------------
    def nblocks(self) -> int:
        return self.used

    def read(self, lblk: int) -> bytearray:
        buf = self.bufs.get(lblk)
        if buf is None:
            with open(self.img, "rb") as f:
                f.seek(self.pblks[lblk] * self.block_size)
                buf = self.bufs[lblk] = bytearray(f.read(self.block_size))
        return buf

    def mark_dirty(self, lblk: int) -> None:
        assert lblk < self.used
        self.dirty.add(lblk)

    def append_block(self) -> tuple[int, bytearray]:
        if self.used == len(self.pblks):
            raise KernelError(E.ENOSPC)
        lblk = self.used
        self.used += 1
        buf = self.bufs[lblk] = bytearray(self.block_size)
        return lblk, buf

    def set_indexed(self) -> None:
        self.indexed_now = True

    def csum(self, data: bytes) -> int:
        return crc32c(self._seed, data)

    # -- the test's side -----------------------------------------------------------
    def flush(self) -> None:
        """Dirty blocks to the image; spare blocks punched, i_size and flags set."""
        with open(self.img, "r+b") as f:
            for lblk in sorted(self.dirty):
                f.seek(self.pblks[lblk] * self.block_size)
                f.write(self.bufs[lblk])
        cmds = [f"sif {self.path} size {self.used * self.block_size}"]
        if self.used < len(self.pblks):
            cmds.insert(0, f"punch {self.path} {self.used}")
        if self.indexed_now:
            cmds.append(f"sif {self.path} flags 0x{0x81000:x}")
        debugfs_script(self.img, cmds)


def listing(img: Path, path: str) -> dict[bytes, int]:
    """name -> inode of every entry but . and .., as debugfs `ls -p` shows them (it also
    shows the empty dirent opening an index node or a block whose first entry was removed)."""
    out = debugfs(img, f"ls -p {path}")
    names = {}
    for line in out.split(b"\n"):
        m = re.match(rb"^/(\d+)/\d+/\d+/\d+/(.*)/\d*/$", line)
        if m and m.group(2) not in (b".", b"..") and m.group(1) != b"0":   # not empty slots
            names[m.group(2)] = int(m.group(1))
    return names


def _file_names(n: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    names = {b"f%05d_%s" % (i, b"x" * (i % 17)) for i in range(n - n // 10)}
    while len(names) < n:     # some with bytes >= 0x80, where signed and unsigned hashes differ
        names.add(bytes(rnd.choice(b"abc\xe9\xf1\x80\xff") for _ in range(rnd.randint(3, 20))))
    return sorted(names)


_BASE: dict[str, Path] = {}


def make_image(tmp: Path, variant: str, n: int = 3000) -> Path:
    """A 1 KiB-block ext4 image with n files in /d, indexed by e2fsck -D (made once per variant)."""
    key = f"{variant}-{n}"
    if key not in _BASE:
        base = Path(tmp.parent / f"base-{key}")
        base.mkdir(exist_ok=True)
        src = base / "src"
        (src / "d").mkdir(parents=True, exist_ok=True)
        (src / "small").mkdir(exist_ok=True)
        for name in _file_names(n, 1):
            (src / "d" / os.fsdecode(name)).touch()
        (src / "target").touch()
        img = base / "img"
        opts = {"csum": [], "nocsum": ["-O", "^metadata_csum"]}.get(variant, [])
        subprocess.run(["mke2fs", "-F", "-q", "-t", "ext4", "-b", str(BS), *opts, "-d", str(src),
                        str(img), "64M"], check=True, capture_output=True)
        if variant in ("tea", "legacy"):
            subprocess.run(["tune2fs", "-E", f"hash_alg={variant}", str(img)], check=True,
                           capture_output=True)
        if variant == "unsigned":
            debugfs(img, "ssv flags 2", write=True)
        assert run("e2fsck", "-fyD", str(img)).returncode in (0, 1)
        fsck_clean(img)
        _BASE[key] = img
    img = tmp / "img"
    shutil.copyfile(_BASE[key], img)
    return img


VARIANTS = ["csum", "nocsum", "tea", "legacy", "unsigned"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_lookup_matches_debugfs(tmp_path: Path, variant: str) -> None:
    img = make_image(tmp_path, variant)
    assert b"Root node dump" in debugfs(img, "htree_dump /d")
    want = listing(img, "/d")
    assert len(want) == 3000
    d = ImageDir(img, "/d")
    t = Htree(d)
    for name, ino in want.items():
        hit = t.lookup(name)
        assert hit is not None and hit.ino == ino and hit.name == name, name
    for name in (b"absent", b"f00001_y", b"\xe9\xe9\xe9\xe9"):
        assert t.lookup(name) is None


@pytest.mark.parametrize("variant", ["csum", "unsigned"])
def test_readdir_hash_order(tmp_path: Path, variant: str) -> None:
    img = make_image(tmp_path, variant)
    d = ImageDir(img, "/d")
    t = Htree(d)
    got = list(t.readdir())
    assert [g[1] for g in got[:2]] == [b".", b".."]
    assert {g[1]: g[2] for g in got[2:]} == listing(img, "/d")
    cookies = [g[0] for g in got]
    assert cookies == sorted(cookies) and len(set(cookies)) == len(cookies)
    version = dirhash.effective_version(d.def_hash_version, d.sb_flags)
    for cookie, name, *_ in got[2:50]:
        major, minor = dirhash.dirhash(name, version, d.hash_seed)
        assert cookie == (major >> 1) << 32 | minor
    # seekdir to any cookie gives the rest, from that entry on
    mid = got[1234]
    assert list(t.readdir(mid[0])) == got[1234:]
    got32 = list(t.readdir(is32=True))
    assert [g[1] for g in got32] == [g[1] for g in got]


@pytest.mark.parametrize("variant,count", [("nocsum", 20000), ("csum", 4000), ("tea", 2000),
                                           ("legacy", 2000), ("unsigned", 2000)])
def test_insert_splits_and_fsck(tmp_path: Path, variant: str, count: int) -> None:
    img = make_image(tmp_path, variant)
    before = listing(img, "/d")
    d = ImageDir(img, "/d", spare=count // 20 + 50)
    t = Htree(d)
    target = int(re.search(rb"Inode: (\d+)", debugfs(img, "stat /target")).group(1))
    rnd = random.Random(count)
    new: dict[bytes, int] = {}
    while len(new) < count:
        tail = bytes(rnd.choice(b"qrstuv\xe2\x82\xac") for _ in range(rnd.randint(0, 12)))
        new[b"n%d-%s" % (len(new), tail)] = target      # hard links to one file
    for name in new:
        t.insert(name, target, 1)
    for name in list(new)[::97]:
        assert t.lookup(name).ino == target
    with pytest.raises(KernelError) as ei:
        t.insert(next(iter(new)), target, 1)
    assert ei.value.errno == E.EEXIST
    d.flush()
    debugfs(img, f"sif /target links_count {1 + count}", write=True)
    fsck_clean(img)
    dump = debugfs(img, "htree_dump /d")
    levels = int(re.search(rb"Indirect levels: (\d+)", dump).group(1))
    assert levels == 1          # the root filled and moved down a level
    assert listing(img, "/d") == {**before, **new}
