"""inline_data (fs/ext4/inline.py): images `mke2fs -O inline_data -d` made.

A guest reads every file, symlink and directory of such an image (tiny
files and directories in their inodes, larger ones in blocks) and the
listing must match the tree it was made from; st_blocks as ext4_getattr
reports it.  Then the guest changes inline files and directories (in
place while they fit, converted as ext4_convert_inline_data does when
not), `e2fsck -fn` must find the image clean, and debugfs must read
what the guest wrote.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import sh
from test_ext4 import debugfs, fsck, mkfs, mount
from umlpy.fs.ext2 import xattr
from umlpy.fs.ext4 import layout as X

pytestmark = pytest.mark.skipif(shutil.which("mke2fs") is None or shutil.which("debugfs") is None,
                                reason="e2fsprogs missing")

BLOCK_SIZES = [1024, 4096]


def make_tree(root: Path) -> None:
    rnd = __import__("random").Random(7)
    for n in (0, 1, 30, 59, 60, 61, 100, 140, 160, 400, 5000):
        (root / f"f{n}").write_bytes(rnd.randbytes(n))
    (root / "tiny").mkdir()
    (root / "tiny" / "a").write_bytes(b"a\n")
    (root / "tiny" / "sub").mkdir()
    (root / "tiny" / "sub" / "deep").write_bytes(b"deep\n")
    (root / "empty").mkdir()
    (root / "many").mkdir()
    for i in range(40):
        (root / "many" / f"name{i}").write_bytes(b"%d\n" % i)
    (root / "mid").mkdir()
    for i in range(5):
        (root / "mid" / f"entry-with-a-longer-name-{i}").write_bytes(b"m%d\n" % i)
    os.symlink("f1", root / "short")
    os.symlink("t/" + "x" * 70, root / "long70")
    os.symlink("../" * 40 + "f100", root / "tiny" / "long120")


def image(tmp_path: Path, bs: int) -> tuple[Path, Path]:
    tree = tmp_path / "tree"
    tree.mkdir()
    make_tree(tree)
    img = mkfs(tmp_path / "fs.img", "16M", "-b", str(bs), "-O", "inline_data", src=tree)
    return img, tree


def listing(root: Path) -> str:
    """What the guest's script prints, computed on the host."""
    out = []
    for p in sorted(root.rglob("*"), key=lambda p: str(p.relative_to(root))):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out.append(f"L {rel} {os.readlink(p)}")
        elif p.is_dir():
            out.append(f"D {rel} {' '.join(sorted(x.name for x in p.iterdir()))}")
        else:
            out.append(f"F {rel} {hashlib.md5(p.read_bytes()).hexdigest()}")
    return "\n".join(out) + "\n"


GUEST_LISTING = r"""
cd /mnt && find . -mindepth 1 | sed 's|^\./||' | grep -v '^lost+found' | sort | while read p; do
  if [ -L "$p" ]; then echo "L $p $(readlink "$p")"
  elif [ -d "$p" ]; then echo "D $p $(ls -A "$p" | sort | tr '\n' ' ' | sed 's/ $//')"
  else echo "F $p $(md5sum < "$p" | cut -d' ' -f1)"; fi
done
"""


@pytest.mark.parametrize("bs", BLOCK_SIZES)
def test_guest_reads_an_inline_data_image(tmp_path: Path, bs: int) -> None:
    img, tree = image(tmp_path, bs)
    assert "inline_data" in subprocess.run(["dumpe2fs", "-h", str(img)], capture_output=True,
                                           text=True).stdout
    inline = [n for n in ("f1", "f59", "f100", "tiny", "empty", "long70")
              if int(debugfs(img, f"stat /{n}").split(b"Flags: ")[1].split()[0], 16)
              & X.FL_INLINE_DATA]
    assert len(inline) >= 5, inline            # what mke2fs put in inodes
    r = sh("mount -t ext4 -o ro /dev/ubdb /mnt || exit 1\n" + GUEST_LISTING +
           "echo STAT $(stat -c '%s:%b' /mnt/f100 /mnt/f0 /mnt/f5000)\n"
           "ls -a /mnt/tiny /mnt/empty | tr '\\n' ' '; echo\n"
           "cd /mnt/tiny/sub && cat ../../tiny/sub/deep && ls -id .. /mnt/tiny",
           f"ubdb={img}")
    out = r.stdout.decode()
    body = "".join(ln + "\n" for ln in out.splitlines() if ln[:2] in ("F ", "D ", "L "))
    assert body == listing(tree), out + r.stderr.decode()
    stat = next(ln for ln in out.splitlines() if ln.startswith("STAT"))
    bs_sectors = bs // 512
    assert stat.split()[1:] == ["100:1", "0:0", f"5000:{-(-5000 // bs) * bs_sectors}"], stat
    assert "/mnt/empty:\n" not in out and ". .. a long120 sub" in out.replace("  ", " ")
    assert "deep\n" in out
    ids = out.splitlines()[-1].split()         # ".." of tiny/sub is tiny
    assert ids[0] == ids[2] and ids[1] == "..", out


def test_page_cache_and_seek_of_inline_files(tmp_path: Path) -> None:
    """mmap maps the page cache the inline bytes fill; SEEK_DATA/HOLE see
    one run of data; FIEMAP reports it inline."""
    from umlpy.abi import consts as C
    from umlpy.vfs.fiemap import (EXTENT, FIEMAP_EXTENT_DATA_INLINE, FIEMAP_EXTENT_LAST,
                                  FIEMAP_EXTENT_NOT_ALIGNED, FiemapInfo)
    img, tree = image(tmp_path, 1024)
    fs = mount(img, read_only=True)
    f = fs.root.lookup(b"f100")
    assert f.is_inline
    want = (tree / "f100").read_bytes()
    assert f.memfile().pread(200, 0) == want
    assert f.seek_data(5, C.SEEK_DATA) == 5 and f.seek_data(5, C.SEEK_HOLE) == 100
    written: list[bytes] = []
    task = SimpleNamespace(mem=SimpleNamespace(write=lambda addr, data: written.append(data)))
    f.fiemap(FiemapInfo(task, 0, 10, 0x1000), 0, 1 << 20)
    logical, _, length, flags = EXTENT.unpack(written[0])[:4]
    assert (logical, length) == (0, 100)
    assert flags == FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_LAST
    fs.unmount()


GUEST_WRITES = r"""
mount -t ext4 /dev/ubdb /mnt && cd /mnt || exit 1
printf 'appended past the inline area %0200d\n' 7 >> f30
printf 'x' >> f1
printf '0123456789' >> f61
echo new > tiny/new
rm tiny/a
mkdir empty/d && echo inside > empty/d/file
mv f59 tiny/sub/moved
truncate -s 10 f100
truncate -s 300 f140
echo over > f60
ln -s f1 tiny/link
rm mid/entry-with-a-longer-name-0
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do : > tiny/sub/file-number-$i; done
mv tiny/sub/deep tiny/sub/deeper
echo LS $(ls tiny) / $(ls empty)
cd / && umount /mnt && echo done
"""


def cat(img: Path, path: str, size: int) -> bytes:
    """debugfs's cat, cut to i_size (it dumps all of i_block for an inline
    file shorter than that)."""
    out = debugfs(img, f"cat {path}")
    assert len(out) == size or len(out) == X.IBLOCK_SIZE > size, (path, len(out))
    return out[:size]


@pytest.mark.parametrize("bs", BLOCK_SIZES)
def test_guest_writes_convert_and_stay_clean(tmp_path: Path, bs: int) -> None:
    """Writes and names that still fit stay in the inode, larger ones
    convert (files to extents, directories to a block)."""
    img, tree = image(tmp_path, bs)
    old = {n: (tree / n).read_bytes() for n in ("f1", "f30", "f59", "f60", "f61", "f100", "f140")}
    r = sh(GUEST_WRITES, f"ubdb={img}")
    assert b"done" in r.stdout, r.stdout + r.stderr
    fsck(img)
    want = {
        "/f30": (old["f30"] + b"appended past the inline area %0200d\n" % 7, False),
        "/f1": (old["f1"] + b"x", True),
        "/f61": (old["f61"] + b"0123456789", True),
        "/f100": (old["f100"][:10], True),
        "/f140": (old["f140"] + bytes(160), False),
        "/f60": (b"over\n", True),
        "/tiny/new": (b"new\n", False),
        "/empty/d/file": (b"inside\n", False),
        "/tiny/sub/moved": (old["f59"], True),
    }
    fs = mount(img, read_only=True)
    for path, (data, inline) in want.items():
        assert cat(img, path, len(data)) == data, path
        f = fs.root
        for part in path.strip("/").split("/"):
            f = f.lookup(part.encode())
        assert f.read(0, 1000) == data and f.is_inline == inline, path
    tiny = fs.root.lookup(b"tiny")
    assert tiny.is_inline and fs.root.lookup(b"empty").is_inline       # the names fit
    sub = tiny.lookup(b"sub")
    assert not sub.is_inline and sub.lookup(b"deeper").read(0, 9) == b"deep\n"
    assert sorted(n for n, _, _ in sub.entries()) == sorted(
        [b"deeper", b"moved"] + [b"file-number-%d" % i for i in range(1, 13)])
    assert tiny.lookup(b"link").readlink() == b"f1"
    assert sorted(n for n, _, _ in tiny.entries()) == [b"link", b"long120", b"new", b"sub"]
    assert b"LS link long120 new sub / d" in r.stdout
    assert " file-number-12" in debugfs(img, "ls /tiny/sub").decode()
    assert " new " in debugfs(img, "ls /tiny").decode()
    assert fs.root.lookup(b"mid").lookup(b"entry-with-a-longer-name-0") is None
    fs.unmount()


def test_overwrites_and_truncates_in_the_inode(tmp_path: Path) -> None:
    """Writes inside, past the end (a gap reads as zeros) and truncates
    keep an inline file inline while it fits; one byte more converts it."""
    img, tree = image(tmp_path, 1024)
    fs = mount(img)
    f = fs.root.lookup(b"f100")
    want = bytearray((tree / "f100").read_bytes())
    f.write(10, b"hello")
    want[10:15] = b"hello"
    f.write(110, b"!")
    want += bytes(10) + b"!"
    f.truncate(105)
    del want[105:]
    f.truncate(120)
    want += bytes(15)
    assert f.is_inline and f.read(0, 1000) == bytes(want)
    room = X.IBLOCK_SIZE + xattr.ibody_value_room(f, 7, b"data")     # the most the inode holds
    f.truncate(room)
    assert f.is_inline
    f.write(room, b"+")
    assert not f.is_inline
    want = want.ljust(room, b"\0") + b"+"
    assert f.read(0, 1000) == bytes(want)
    fs.unmount()
    fsck(img)
    fs = mount(img, read_only=True)
    assert fs.root.lookup(b"f100").read(0, 1000) == bytes(want)
    fs.unmount()
