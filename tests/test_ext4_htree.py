"""The ext4 directory index (fs/ext4/htree.py) on images made and judged by e2fsprogs.

mke2fs -d puts a few thousand files in /d and `e2fsck -fyD` indexes it; the
index is then driven through a thin DirBlocks adapter over the image's
blocks of /d (their list from `debugfs blocks`).  Room to grow is made
beforehand with debugfs `expand_dir`; after the writes the unused blocks are
punched, i_size set, and e2fsck -fn must find nothing.
"""
from __future__ import annotations

import copy
import os
import random
import re
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from umlpy.abi import errno as E
from umlpy.fs.ext4 import dirhash
from umlpy.fs.ext4.htree import BadDxDir, Htree
from umlpy.kernel.errors import KernelError

from conftest import copy_image

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
        for i in range(40):       # 24-byte entries: block 0 of /small all but full
            (src / "small" / f"small-{i:05d}-x").touch()
        for name in _file_names(n, 1):
            (src / "d" / os.fsdecode(name)).touch()
        (src / "target").touch()
        img = base / "img"
        opts = {"csum": [], "nocsum": ["-O", "^metadata_csum"]}.get(variant, [])
        subprocess.run(["mke2fs", "-F", "-q", "-t", "ext4", "-b", str(BS), *opts, "-U", FIXED_UUID,
                        "-d", str(src), str(img), "64M"], check=True, capture_output=True)
        if variant in ("tea", "legacy"):
            subprocess.run(["tune2fs", "-E", f"hash_alg={variant}", str(img)], check=True,
                           capture_output=True)
        if variant == "unsigned":
            debugfs(img, "ssv flags 2", write=True)
        debugfs(img, f"ssv hash_seed {HASH_SEED}", write=True)     # the same splits every run
        assert run("e2fsck", "-fyD", str(img)).returncode in (0, 1)
        fsck_clean(img)
        _BASE[key] = img
    img = tmp / "img"
    copy_image(_BASE[key], img)
    return img


FIXED_UUID = "6d1c7e55-0b4a-4e52-9f0e-1c2d3e4f5a6b"
HASH_SEED = "d62a7bbd-ed00-4be4-893b-2ec53e38150f"
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
    d = ImageDir(img, "/d", spare=count // 15 + 150)
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


def _links(img: Path, count: int) -> tuple[int, list[bytes]]:
    """/target's inode and count names to link it under."""
    target = int(re.search(rb"Inode: (\d+)", debugfs(img, "stat /target")).group(1))
    return target, [b"link-%06d" % i for i in range(count)]


@pytest.mark.parametrize("variant", ["csum", "nocsum"])
def test_make_indexed_then_grow(tmp_path: Path, variant: str) -> None:
    img = make_image(tmp_path, variant)
    assert b"Root node dump" not in debugfs(img, "htree_dump /small")
    before = listing(img, "/small")
    d = ImageDir(img, "/small", spare=30)
    assert d.nblocks() == 1
    t = Htree(d)
    target, names = _links(img, 300)
    t.make_indexed(names[0], target, 1)
    assert d.indexed_now and d.nblocks() == 3          # root and the moved leaf split in two
    for name in names[1:]:
        t.insert(name, target, 1)
    assert all(t.lookup(n).ino == ino for n, ino in before.items())
    d.flush()
    debugfs(img, f"sif /target links_count {1 + len(names)}", write=True)
    fsck_clean(img)
    assert b"Root node dump" in debugfs(img, "htree_dump /small")
    assert listing(img, "/small") == {**before, **dict.fromkeys(names, target)}


def test_remove_leaves_index(tmp_path: Path) -> None:
    img = make_image(tmp_path, "csum")
    d = ImageDir(img, "/d", spare=200)
    t = Htree(d)
    target, names = _links(img, 1000)
    for name in names:
        t.insert(name, target, 1)
    d.flush()
    dump_entries = debugfs(img, "htree_dump /d").count(b"Entry #")
    gone = names[::2]
    for name in gone:
        assert t.remove(name).ino == target
    assert all(t.lookup(n) is None for n in gone)
    assert all(t.lookup(n).ino == target for n in names[1::2])
    with pytest.raises(KernelError) as ei:
        t.remove(gone[0])
    assert ei.value.errno == E.ENOENT
    d.flush()
    debugfs(img, f"sif /target links_count {1 + len(names) - len(gone)}", write=True)
    fsck_clean(img)
    assert debugfs(img, "htree_dump /d").count(b"Entry #") == dump_entries   # index untouched
    assert set(listing(img, "/d")).isdisjoint(gone)


def test_hash_collisions_continue_into_next_leaf(tmp_path: Path, monkeypatch) -> None:
    """With a hash that collides often, leaves split inside runs of equal hashes (the
    continuation bit) and lookups must go on into the following leaves."""
    img = make_image(tmp_path, "nocsum")
    d = ImageDir(img, "/d", spare=200)
    t = Htree(d)
    real = t.hash
    monkeypatch.setattr(t, "hash", lambda name, v: (real(name, v)[0] & 0xF0000000, 0))
    target, names = _links(img, 3000)
    for name in names:
        t.insert(name, target, 1)
    assert all(t.lookup(n).ino == target for n in names)
    frames, starts = t._probe(0), []
    while True:
        starts.append(frames[-1].entry(frames[-1].at)[0])
        if not t._next_leaf(frames, None):
            break
    assert sum(h & 1 for h in starts) > 10        # leaves that continue the previous hash
    got = [n for _, n, *_ in t.readdir()]
    assert set(names) <= set(got) and len(got) == len(set(got))


def _snapshot(img: Path, grow: int) -> ImageDir:
    d = ImageDir(img, "/d", spare=grow // 15 + 150)
    if grow:
        t = Htree(d)
        target, names = _links(img, grow)
        for name in names:
            t.insert(name, target, 1)
    for lblk in range(d.nblocks()):
        d.read(lblk)
    return d


def _fresh(d: ImageDir) -> ImageDir:
    c = copy.copy(d)
    c.bufs = {k: bytearray(v) for k, v in d.bufs.items()}
    c.dirty = set()
    return c


def _errno(fn, *args) -> int:
    with pytest.raises(KernelError) as ei:
        fn(*args)
    return ei.value.errno


def _broken(base: ImageDir, lblk: int, off: int, data: bytes) -> Htree:
    d = _fresh(base)
    d.bufs[lblk][off:off + len(data)] = data
    return Htree(d)


def test_corrupt_index_is_euclean(tmp_path: Path) -> None:
    base = _snapshot(make_image(tmp_path, "nocsum"), 0)
    name = b"f00010_xxxxxxxxxx"
    assert _broken(base, 0, 0, b"").lookup(name).name == name
    for off, data, what in ((28, b"\x07", "hash code"), (30, b"\x05", "depth"), (31, b"\x01", "flags"),
                            (32, b"\x00\x01", "limit"), (34, b"\x00\x00", "count"),
                            (34, b"\xff\x00", "count")):
        with pytest.raises(BadDxDir, match=what):
            _broken(base, 0, off, data).lookup(name)
    assert _errno(lambda: list(_broken(base, 0, 36, struct.pack("<I", 99999)).readdir())) == E.EUCLEAN
    assert _errno(lambda: list(_broken(base, 5, 4, b"\x03\x00").readdir())) == E.EUCLEAN


def test_checksum_mismatch_is_ebadmsg(tmp_path: Path) -> None:
    base = _snapshot(make_image(tmp_path, "csum"), 0)
    assert len(list(Htree(_fresh(base)).readdir())) == 3002
    for lblk in (0, 5):        # a byte changed behind the checksum's back
        assert _errno(lambda: list(_broken(base, lblk, 300, b"\x5a").readdir())) == E.EBADMSG


@pytest.mark.parametrize("variant", ["nocsum", "csum"])
def test_fuzzed_index_never_crashes(tmp_path: Path, variant: str) -> None:
    """Random bytes in index and leaf blocks: only KernelErrors, no endless loops."""
    img = make_image(tmp_path, variant)
    base = _snapshot(img, 1500)
    rnd = random.Random(7)
    probes = [b"f%05d_%s" % (i, b"x" * (i % 17)) for i in range(0, 2700, 300)]
    nodes = [0] + [f.lblk for f in Htree(base)._probe(0)[1:]]
    outcomes: Counter[str] = Counter()
    for _ in range(60 if variant == "nocsum" else 20):
        d = _fresh(base)
        for _ in range(rnd.randint(1, 4)):
            lblk = rnd.choice(nodes + [rnd.randrange(d.nblocks())])
            off = rnd.choice((rnd.randrange(64), rnd.randrange(d.block_size)))
            d.bufs[lblk][off] = rnd.randrange(256)
        t = Htree(d)
        try:
            for p in probes:
                t.lookup(p)
            for _ in t.readdir():
                pass
            for i in range(40):
                t.insert(b"fuzz-%d" % i, 11, 1)
            outcomes["ok"] += 1
        except KernelError as e:
            outcomes[E.NAMES.get(e.errno, str(e.errno))] += 1
    assert "ok" in outcomes or variant == "csum"
    assert set(outcomes) <= {"ok", "EUCLEAN", "EBADMSG", "ENOSPC", "EEXIST"}, outcomes
