"""jbd2: journal recovery (and mount-time replay) against e2fsprogs.

Journals are written by debugfs's journal commands (jo/jw/jc), which leave
committed transactions that were never checkpointed, as a crash would;
`e2fsck -y -E journal_only` replays them as Linux does, and the image our
replay leaves must be the same bytes (the superblock's write time, and so
its checksum, and the kilobytes-written count, aside).
"""
from __future__ import annotations

import random
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from arch_um.hostfile import HostFile
from umlpy.abi import errno as E
from umlpy.block.device import ImageDevice
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2.journal import journal_map as ext2_journal_map
from umlpy.fs.ext4 import mount_ext4
from umlpy.fs.jbd2 import Journal, JournalWriter, recover
from umlpy.fs.jbd2 import format as F
from umlpy.kernel.errors import KernelError

from conftest import copy_image

pytestmark = pytest.mark.skipif(shutil.which("debugfs") is None, reason="e2fsprogs missing")

MAGIC = struct.pack(">I", F.MAGIC)


# -- helpers -------------------------------------------------------------------------
def mkfs(path: Path, fstype: str, *opts: str) -> Path:
    subprocess.run(["mke2fs", "-q", "-F", "-t", fstype, *opts, str(path), "32M"], check=True,
                   capture_output=True)
    return path


def sb_of(path: Path) -> L.Superblock:
    with open(path, "rb") as f:
        f.seek(L.SUPERBLOCK_OFFSET)
        return L.Superblock(f.read(L.SUPERBLOCK_SIZE))


def debugfs(path: Path, *cmds: str, write: bool = False) -> str:
    r = subprocess.run(["debugfs", *(["-w"] if write else []), "-f", "-", str(path)],
                       input="\n".join(cmds) + "\n", capture_output=True, text=True, check=True)
    return r.stdout


def query(path: Path, cmd: str) -> str:
    return subprocess.run(["debugfs", "-R", cmd, str(path)], capture_output=True, text=True,
                          check=True).stdout


def blocks_file(tmp: Path, bs: int, *fills: bytes) -> Path:
    """A file of len(fills) blocks, each its fill repeated."""
    p = tmp / f"blocks{random.random()}"
    p.write_bytes(b"".join((f * bs)[:bs] for f in fills))
    return p


def write_log(path: Path, csum: bool, transactions: list[str]) -> None:
    """Open the journal (checksums: v1, or v3 on metadata_csum), write, close."""
    debugfs(path, "jo -c" if csum else "jo", *transactions, "jc", write=True)


def logdump(path: Path) -> str:
    return query(path, "logdump")


def e2fsck_replay(path: Path, out: Path) -> None:
    copy_image(path, out)
    r = subprocess.run(["e2fsck", "-y", "-E", "journal_only", str(out)], capture_output=True,
                       text=True)
    assert r.returncode in (0, 1), r.stdout + r.stderr


def masked(path: Path) -> bytes:
    """The image without the primary superblock's write time, lifetime write
    count (statistics each writer keeps its own way) and checksum."""
    raw = bytearray(path.read_bytes())
    for off, n in ((48, 4), (0x178, 8), (L.SUPERBLOCK_CSUM_OFF, 4)):
        raw[L.SUPERBLOCK_OFFSET + off:L.SUPERBLOCK_OFFSET + off + n] = bytes(n)
    return bytes(raw)


def device(path: Path, read_only: bool = False) -> ImageDevice:
    return ImageDevice(HostFile(str(path), writable=not read_only), read_only=read_only)


def journal_map(path: Path) -> list[int]:
    """The journal inode's blocks, as the ext4 driver maps them (extents),
    read through a mount of a copy: the mount may replay the copy, the
    journal's blocks stay where they are."""
    copy = path.with_name(path.name + ".map")
    copy_image(path, copy)
    try:
        fs = mount_ext4(device(copy), True)
        try:
            return ext2_journal_map(fs)
        finally:
            fs.unmount()
    finally:
        copy.unlink()


def replay(path: Path) -> None:
    """Our replay: a read-only mount (a read-write one would also count the
    mount) as ext4, or as ext3 for an image without extents."""
    name = "ext4" if sb_of(path).feature_incompat & 0x40 else "ext3"
    mount_ext4(device(path), True, name=name).unmount()


# -- recovery against e2fsck ---------------------------------------------------------
VARIANTS = {
    "ext3-1k": ("ext3", "-b", "1024"),
    "ext3-4k": ("ext3", "-b", "4096"),
    "ext4": ("ext4",),
    "ext4-4k": ("ext4", "-b", "4096"),
    "ext4-32bit-nocsum": ("ext4", "-O", "^64bit,^metadata_csum"),
}


@pytest.mark.parametrize("csum", [False, True], ids=["plain", "csum"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_replay_matches_e2fsck(tmp_path: Path, variant: str, csum: bool) -> None:
    fstype, *opts = VARIANTS[variant]
    img = mkfs(tmp_path / "a.img", fstype, *opts)
    sb = sb_of(img)
    bs, x = sb.block_size, sb.blocks_count - 300
    data = blocks_file(tmp_path, bs, MAGIC + b"\1" * 60, b"\2", b"\3")
    data2 = blocks_file(tmp_path, bs, b"\4", b"\5")
    data3 = blocks_file(tmp_path, bs, b"\6")
    # v1 checksums: debugfs sums revoke blocks too, Linux does not; no revokes then
    v1 = csum and not sb.feature_ro_compat & L.RO_COMPAT_METADATA_CSUM
    last = f"jw -b {x + 4} {data3}" if v1 else f"jw -b {x + 4} -r {x + 3},{x + 200} {data3}"
    write_log(img, csum, [f"jw -b {x},{x + 1},{x + 2} {data}", f"jw -b {x + 3},{x + 1} {data2}",
                          last])
    dump = logdump(img)
    assert dump.count("(commit block)") == 3, dump
    assert "needs_recovery" in subprocess.run(["dumpe2fs", "-h", str(img)], capture_output=True,
                                              text=True).stdout
    e2fsck_replay(img, tmp_path / "ref.img")
    replay(img)
    assert masked(img) == masked(tmp_path / "ref.img")
    blk = img.read_bytes()
    assert blk[x * bs:x * bs + 5] == MAGIC + b"\1"          # the escaped block came back
    assert blk[(x + 1) * bs:(x + 1) * bs + 1] == b"\5"      # the later transaction wins
    want3 = b"\4" if v1 else b"\0"                          # revoked by transaction 3
    assert blk[(x + 3) * bs:(x + 3) * bs + 1] == want3
    jsb = re.search(r"Journal start:\s+(\d+)", query(img, "logdump -S"))
    assert jsb and jsb[1] == "0"


def test_uncommitted_transaction_is_not_replayed(tmp_path: Path) -> None:
    img = mkfs(tmp_path / "a.img", "ext3")
    x = sb_of(img).blocks_count - 300
    data = blocks_file(tmp_path, 1024, b"\7")
    write_log(img, False, [f"jw -b {x} {data}", f"jw -b {x + 1} -c {data}"])
    e2fsck_replay(img, tmp_path / "ref.img")
    replay(img)
    assert masked(img) == masked(tmp_path / "ref.img")
    raw = img.read_bytes()
    assert raw[x * 1024] == 7 and raw[(x + 1) * 1024] == 0


def test_bad_commit_checksum_ends_replay(tmp_path: Path) -> None:
    """Transaction 2's commit block is damaged: 1 is replayed, 2 and 3 are not."""
    img = mkfs(tmp_path / "a.img", "ext4", "-b", "4096")
    x = sb_of(img).blocks_count - 300
    write_log(img, True, [f"jw -b {x + i} {blocks_file(tmp_path, 4096, bytes([i + 1]))}"
                          for i in range(3)])
    dev = device(img)
    jmap = journal_map(img)
    commit2 = jmap[6]       # journal: superblock, d1 1 c1, d2 2 c2, ...
    assert F.header(dev.read(commit2 * 4096, 4096)) == (F.COMMIT_BLOCK, 2)
    dev.write(commit2 * 4096 + F.COMMIT_CHKSUM_OFF, b"\xff")   # (past the header is not summed)
    e2fsck_replay(img, tmp_path / "ref.img")
    with pytest.raises(KernelError) as ei:      # as jbd2_journal_load: EFSCORRUPTED
        replay(img)
    assert ei.value.errno == E.EUCLEAN
    raw, ref = img.read_bytes(), (tmp_path / "ref.img").read_bytes()
    assert [raw[(x + i) * 4096] for i in range(3)] == [1, 0, 0]
    # the superblocks aside (Linux leaves the journal to e2fsck, which resets
    # it and marks the filesystem as having errors), the same bytes
    jsb = jmap[0] * 4096
    assert raw[4096:jsb] == ref[4096:jsb] and raw[jsb + 4096:] == ref[jsb + 4096:]


# -- the mount -------------------------------------------------------------------------
def test_mount_replays_then_mounts(tmp_path: Path) -> None:
    img = mkfs(tmp_path / "a.img", "ext3")
    debugfs(img, "mkdir d", "write /etc/hostname d/f", write=True)
    before = img.read_bytes()
    # a transaction that renames lost+found's entry in the root directory block
    root_blk = int(query(img, "blocks /").split()[0])
    blk = bytearray(before[root_blk * 1024:(root_blk + 1) * 1024])
    i = blk.index(b"lost+found")
    blk[i:i + 10] = b"lost+fOund"
    data = tmp_path / "root"
    data.write_bytes(bytes(blk))
    write_log(img, False, [f"jw -b {root_blk} {data}"])
    fs = mount_ext4(device(img), False, name="ext3")
    assert {n for n, _, _ in fs.root.entries()} >= {b"lost+fOund", b"d"}
    fs.unmount()
    assert "needs_recovery" not in subprocess.run(["dumpe2fs", "-h", str(img)],
                                                  capture_output=True, text=True).stdout
    r = subprocess.run(["e2fsck", "-fn", str(img)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_read_only_mount_replays_but_read_only_device_refuses(tmp_path: Path) -> None:
    img = mkfs(tmp_path / "a.img", "ext3")
    x = sb_of(img).blocks_count - 300
    write_log(img, False, [f"jw -b {x} {blocks_file(tmp_path, 1024, b'9')}"])
    before = img.read_bytes()
    with pytest.raises(KernelError) as ei:
        mount_ext4(device(img, read_only=True), True, name="ext3")
    assert ei.value.errno == E.EROFS and img.read_bytes() == before
    fs = mount_ext4(device(img), True, name="ext3")
    assert fs.read_only
    fs.unmount()
    assert img.read_bytes()[x * 1024] == ord("9")
    assert not sb_of(img).feature_incompat & L.INCOMPAT_RECOVER


def test_ext3_metadata_csum_read_only_mount(tmp_path: Path) -> None:
    """Checksum v3 through the mount path; the superblock checksum stays right."""
    img = mkfs(tmp_path / "a.img", "ext3", "-O", "metadata_csum")
    x = sb_of(img).blocks_count - 300
    write_log(img, True, [f"jw -b {x},{x + 1} {blocks_file(tmp_path, 1024, MAGIC, b'8')}"])
    assert "checksum_v3" in query(img, "logdump -S")
    e2fsck_replay(img, tmp_path / "ref.img")
    replay(img)
    assert masked(img) == masked(tmp_path / "ref.img")
    r = subprocess.run(["e2fsck", "-fn", str(img)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


# -- untrusted journals ------------------------------------------------------------------
class FenceDevice(ImageDevice):
    """An image whose writes must stay inside the filesystem."""

    def __init__(self, path: Path, fs_bytes: int) -> None:
        super().__init__(HostFile(str(path), writable=True), read_only=False)
        self.fs_bytes = fs_bytes

    def write(self, off: int, data: bytes) -> None:
        assert 0 <= off and off + len(data) <= self.fs_bytes
        super().write(off, data)


@pytest.mark.parametrize("fstype", ["ext3", "ext4"])
def test_corrupt_journals_fail_cleanly(tmp_path: Path, fstype: str) -> None:
    """Random damage to a journal's live blocks: recovery replays a prefix or
    fails with a KernelError, never another exception, never a wild write."""
    img = mkfs(tmp_path / "a.img", fstype)
    sb = sb_of(img)
    bs, x = sb.block_size, sb.blocks_count - 300
    files = [blocks_file(tmp_path, bs, bytes([i + 1]), bytes([i + 2])) for i in range(3)]
    write_log(img, True, [f"jw -b {x + 2 * i},{x + 2 * i + 1} -r {x + 50} {f}"
                          for i, f in enumerate(files[:1])]
              + [f"jw -b {x + 2 * i},{x + 2 * i + 1} {f}" for i, f in enumerate(files[1:], 1)])
    pristine = img.read_bytes()
    jmap = journal_map(img)
    rng = random.Random(7)
    for _ in range(40):
        raw = bytearray(pristine)
        for _ in range(rng.randint(1, 4)):
            lblk = rng.choice([0, 0] + list(range(1, 12)))
            off = jmap[lblk] * bs + rng.choice([0, 4, 8, 12, 13, 16, 20, 24, 28, 0x30,
                                                rng.randrange(bs)])
            raw[off:off + 4] = rng.choice([b"\xff\xff\xff\xff", b"\0\0\0\0",
                                           struct.pack(">I", rng.randrange(1 << 32)),
                                           struct.pack(">I", sb.blocks_count + 5)])
        img.write_bytes(bytes(raw))
        dev = FenceDevice(img, sb.blocks_count * bs)
        try:
            recover(Journal(dev, bs, jmap, sb.blocks_count))
        except KernelError:
            pass


def test_bad_journal_superblocks_are_refused(tmp_path: Path) -> None:
    img = mkfs(tmp_path / "a.img", "ext3")
    x = sb_of(img).blocks_count - 300
    write_log(img, False, [f"jw -b {x} {blocks_file(tmp_path, 1024, b'1')}"])
    dev = device(img)
    jmap = journal_map(img)
    for off, value, errno in ((0xC, 4096, E.EINVAL), (0x10, 100, E.EINVAL), (0x14, 0, E.EINVAL),
                              (0x28, 0x80, E.EINVAL), (0x28, F.INCOMPAT_FAST_COMMIT, E.EINVAL),
                              (0x1C, 99999, E.EINVAL)):
        raw = bytearray(dev.read(jmap[0] * 1024, 1024))
        saved = bytes(raw)
        struct.pack_into(">I", raw, off, value)
        dev.write(jmap[0] * 1024, bytes(raw))
        with pytest.raises(KernelError) as ei:
            Journal(dev, 1024, jmap, sb_of(img).blocks_count)
        assert ei.value.errno == errno, hex(off)
        dev.write(jmap[0] * 1024, saved)


# -- the writer ----------------------------------------------------------------------------
def open_journal(img: Path) -> Journal:
    """Our Journal on img."""
    sb = sb_of(img)
    return Journal(device(img), sb.block_size, journal_map(img), sb.blocks_count)


def set_needs_recovery(img: Path) -> None:
    """What a journalling mount does before its first transaction."""
    debugfs(img, "feature needs_recovery", write=True)


def crash_and_compare(img: Path, tmp_path: Path, tids: list[int]) -> None:
    """The journal was written and not checkpointed: e2fsck sees it, lists
    the transactions, and replays it to the bytes our replay gives."""
    r = subprocess.run(["e2fsck", "-fn", str(img)], capture_output=True, text=True)
    assert "journal recovery" in r.stdout + r.stderr, r.stdout + r.stderr
    dump = logdump(img)
    for tid in tids:
        assert f"Found expected sequence {tid}, type 2 (commit block)" in dump, dump
    e2fsck_replay(img, tmp_path / "ref.img")
    replay(img)
    assert masked(img) == masked(tmp_path / "ref.img")


WRITER_VARIANTS = {        # mke2fs options; whether debugfs turns journal checksums on
    "ext3-1k": (("ext3",), False),
    "ext3-4k-csum-v1": (("ext3", "-b", "4096"), True),
    "ext4-csum-v3": (("ext4",), True),
    "ext4-4k-32bit": (("ext4", "-b", "4096", "-O", "^64bit,^metadata_csum"), False),
}


@pytest.mark.parametrize("variant", list(WRITER_VARIANTS))
def test_writer_commit_crash_replay(tmp_path: Path, variant: str) -> None:
    """Rename a file by hand (its directory block) and touch its inode (the
    inode table block) in one transaction, log a block that begins with the
    magic and revoke another in a second; crash before the checkpoint."""
    opts, csum = WRITER_VARIANTS[variant]
    img = mkfs(tmp_path / "a.img", *opts)
    debugfs(img, "mkdir d", "write /etc/hostname d/f", *(["jo -c", "jc"] if csum else []),
            write=True)
    sb = sb_of(img)
    bs, x = sb.block_size, sb.blocks_count - 300
    raw = img.read_bytes()
    dirblk = int(query(img, "blocks d").split()[0])
    m = re.search(r"located at block (\d+), offset (0x[0-9a-f]+)", query(img, "imap d/f"))
    assert m
    itblk, ioff = int(m[1]), int(m[2], 16)
    new_dir = bytearray(raw[dirblk * bs:(dirblk + 1) * bs])
    i = new_dir.index(b"\x01\x01f")               # name_len 1, file type 1, "f"
    new_dir[i + 2:i + 3] = b"g"
    new_it = bytearray(raw[itblk * bs:(itblk + 1) * bs])
    struct.pack_into("<I", new_it, ioff + 16, 1234567890)       # i_mtime
    j = open_journal(img)
    assert csum == bool(j.csum or j.sb.feature_compat & F.COMPAT_CHECKSUM)
    set_needs_recovery(img)
    w = JournalWriter(j)
    t = w.begin(2)
    t.add(dirblk, new_dir)
    t.add(itblk, new_it)
    tid1 = w.commit()
    t = w.begin(2)
    t.add(x, MAGIC + bytes(bs - 4))
    t.add(x + 1, b"\x11" * bs)
    t.revoke(x + 1)                 # freed again: not replayed
    t.revoke(x + 2)
    tid2 = w.commit()
    assert tid2 == tid1 + 1
    after = img.read_bytes()
    for blk in (dirblk, itblk, x):   # nothing went home before a checkpoint
        assert after[blk * bs:(blk + 1) * bs] == raw[blk * bs:(blk + 1) * bs]
    crash_and_compare(img, tmp_path, [tid1, tid2])
    done = img.read_bytes()
    assert done[dirblk * bs:(dirblk + 1) * bs] == new_dir and done[x * bs:x * bs + 4] == MAGIC
    assert done[(x + 1) * bs:(x + 2) * bs] == bytes(bs)
    if not j.csum:      # (by-hand changes leave metadata checksums stale)
        assert "g" in query(img, "ls d").split()
        r = subprocess.run(["e2fsck", "-fn", str(img)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout


def test_writer_wraps_checkpoints_and_bounds(tmp_path: Path) -> None:
    """Many transactions through a small journal: the log wraps, full
    journals are checkpointed, large transactions are committed early."""
    img = mkfs(tmp_path / "a.img", "ext3", "-J", "size=1")
    sb = sb_of(img)
    bs, x = sb.block_size, sb.blocks_count - 2000
    j = open_journal(img)
    assert j.last - j.first == 1023
    set_needs_recovery(img)
    w = JournalWriter(j)
    cap = w.max_log_blocks
    t = w.begin(cap - 1)
    with pytest.raises(KernelError) as ei:
        for k in range(cap):
            t.add(x + k, bytes([k % 251]) * bs)
    assert ei.value.errno == E.ENOSPC
    tids, heads = [], []
    for n in range(15):
        t = w.begin(100)                    # commits the running one when it cannot take 100
        for k in range(100):
            t.add(x + (n * 100 + k) % 1500, bytes([n + 1]) * bs)
        if n % 3 == 2:
            tids.append(w.commit())
        heads.append(j.head)
    assert any(b < a for a, b in zip(heads, heads[1:]))      # it went round
    assert tids[-1] - tids[0] > len(tids) - 1               # some were committed early
    t = w.begin(3)
    t.add(x + 1600, b"\x77" * bs)
    tids.append(w.commit())
    crash_and_compare(img, tmp_path, tids[-1:])
    assert img.read_bytes()[(x + 1600) * bs] == 0x77
    r = subprocess.run(["e2fsck", "-fn", str(img)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_writer_close_leaves_an_empty_journal(tmp_path: Path) -> None:
    img = mkfs(tmp_path / "a.img", "ext4")
    x = sb_of(img).blocks_count - 300
    j = open_journal(img)
    w = JournalWriter(j)
    w.begin(1).add(x, b"\x42" * 1024)
    w.close()
    assert img.read_bytes()[x * 1024] == 0x42
    assert re.search(r"Journal start:\s+0\b", query(img, "logdump -S"))
    assert "needs_recovery" not in query(img, "features")
    # the next mount's journal starts clean and the writer goes on
    w = JournalWriter(open_journal(img))
    assert w.j.next_tid == j.next_tid + 1 and w.j.tail == 0
