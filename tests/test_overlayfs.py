"""overlayfs in a guest, beyond what tests/progs/t_overlay compares with
the host: layers on an ext4 disk (e2fsck -fn clean afterwards, the
overlay's marks as debugfs reads them, st_ino kept across a remount),
layers on several filesystems, hostfs layers, and what Linux 6.1 answers
where the host's newer kernel answers otherwise."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import sh

pytestmark = pytest.mark.skipif(shutil.which("mke2fs") is None or shutil.which("debugfs") is None,
                                reason="e2fsprogs missing")

OVL = "mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m"


def _mkfs(path: Path, src: Path) -> Path:
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(src), str(path), "64M"],
                   check=True, capture_output=True)
    return path


def _fsck(path: Path) -> None:
    r = subprocess.run(["e2fsck", "-fn", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _debugfs(path: Path, cmd: str, write: bool = False) -> str:
    args = ["debugfs", *(["-w"] if write else []), "-R", cmd, str(path)]
    return subprocess.run(args, capture_output=True, check=True).stdout.decode(errors="replace")


def _tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for d in ("l/dir/sub", "l/keep", "l/x/rdir", "u/x/rdir", "w", "m"):
        (src / d).mkdir(parents=True)
    (src / "l" / "big").write_bytes(bytes(range(256)) * 12288)       # 3 MiB: copied up in chunks
    (src / "l" / "gone").write_text("gone\n")
    (src / "l" / "mvme").write_text("move me\n")
    (src / "l" / "dir" / "a").write_text("a\n")
    (src / "l" / "dir" / "sub" / "b").write_text("b\n")
    (src / "l" / "keep" / "k").write_text("k\n")
    return src


WORK = (f"mount -t ext4 /dev/ubdb /mnt && cd /mnt && {OVL} && "
        "stat -c %i m/big > /tmp/i0 && echo tail >> m/big && stat -c %i m/big > /tmp/i1 && "
        "cmp -s /tmp/i0 /tmp/i1 && echo same ino && "
        "rm m/gone && rm -r m/dir && mkdir m/dir && echo new > m/dir/n && "
        "mv m/mvme m/moved && ln m/moved m/hard && "
        "dd if=/dev/zero of=m/zeros bs=64k count=16 2>/dev/null && "
        "ls m | tr '\\n' ' ' && echo && cd m/x/rdir; "
        "umount m && cd / && umount /mnt && echo done")
AGAIN = (f"mount -t ext4 /dev/ubdb /mnt && cd /mnt && {OVL} && "
         "ls m | tr '\\n' ' ' && echo && cat m/dir/n m/moved && "
         "[ $(stat -c %i m/big) = $(stat -c %i l/big) ] && echo same ino after remount && "
         "tail -c 5 m/big && rm m/hard m/moved && ls m/dir; "
         "umount m && cd / && umount /mnt && echo done")


def test_ext4_layers(tmp_path: Path) -> None:
    """Upper, work and lower directories on one ext4 disk: the guest's
    work leaves whiteouts, an opaque directory and origins where Linux
    puts them, a clean filesystem, and the same view (and st_ino of a
    copied-up file) after a remount; a directory with a redirect is
    refused (redirect_dir=off follows none)."""
    img = _mkfs(tmp_path / "o.img", _tree(tmp_path))
    _debugfs(img, "ea_set /u/x/rdir trusted.overlay.redirect /keep", write=True)
    r = sh(WORK, f"ubdb={img}")
    out = r.stdout.decode()
    assert "same ino\nbig dir hard keep moved x zeros \n" in out, out + r.stderr.decode()
    assert "Operation not permitted" in out + r.stderr.decode()
    assert out.endswith("done\n"), out + r.stderr.decode()
    assert b"Traceback" not in r.stderr
    _fsck(img)
    assert "Type: character special" in _debugfs(img, "stat /u/gone")
    assert "Type: character special" in _debugfs(img, "stat /u/mvme")
    assert _debugfs(img, "ea_get /u/dir trusted.overlay.opaque").strip().endswith("= \"y\"")
    assert "trusted.overlay.origin" in _debugfs(img, "ea_list /u/big")
    assert "trusted.overlay.impure" in _debugfs(img, "ea_list /u")
    assert _debugfs(img, "cat /u/big").endswith("\ufffdtail\n")
    temps = [n for n in _debugfs(img, "ls /w/work").split() if n.startswith("#")]
    assert len(temps) == 1      # the shared whiteout stays till the next mount, as Linux's
    assert "Type: character special" in _debugfs(img, f"stat /w/work/{temps[0]}")
    r = sh(AGAIN, f"ubdb={img}")
    out = r.stdout.decode()
    assert "big dir hard keep moved x zeros \nnew\nmove me\nsame ino after remount\ntail\nn\n" in out, \
        out + r.stderr.decode()
    assert out.endswith("done\n")
    _fsck(img)


def test_layers_on_several_filesystems(tmp_path: Path) -> None:
    """An ext4 lower layer under a tmpfs upper one (xino=off): directories
    show the overlay's st_dev, files one per layer's filesystem; st_ino
    is the layer's, and a copied-up file keeps its lower st_dev and
    st_ino (its origin's)."""
    img = _mkfs(tmp_path / "o.img", _tree(tmp_path))
    script = ("mount -t ext4 -o ro /dev/ubdb /mnt && mount -t tmpfs t /tmp && mkdir /tmp/u /tmp/w /tmp/m && "
              "mount -t overlay overlay -o lowerdir=/mnt/l,upperdir=/tmp/u,workdir=/tmp/w /tmp/m && cd /tmp/m && "
              "echo new > new && d=$(stat -c %d .) && "
              "[ $(stat -c %d dir) = $d ] && echo dir on the overlay && "
              "[ $(stat -c %d gone) != $d ] && [ $(stat -c %d gone) != $(stat -c %d new) ] && echo files apart && "
              "[ $(stat -c %i gone) = $(stat -c %i /mnt/l/gone) ] && echo lower ino && "
              "b=$(stat -c %d.%i big) && echo x >> big && [ $(stat -c %d.%i big) = $b ] && echo copied up && "
              "[ $(stat -c %d .) = $(stat -c %d dir) ] && cd / && umount /tmp/m && echo done")
    r = sh(script, f"ubdb={img}")
    assert r.stdout.decode().endswith("dir on the overlay\nfiles apart\nlower ino\ncopied up\ndone\n"), \
        r.stdout + r.stderr
    _fsck(img)


def test_a_layers_filesystem_unmounted_under_the_overlay(tmp_path: Path) -> None:
    """The ext4 filesystem under an overlay's layers outlives its umount
    (Linux's overlay holds private clones of its layers' mounts) and goes,
    clean, with the overlay."""
    img = _mkfs(tmp_path / "o.img", _tree(tmp_path))
    script = ("mkdir /ovl && mount -t ext4 /dev/ubdb /mnt && "
              "mount -t overlay overlay -o lowerdir=/mnt/l,upperdir=/mnt/u,workdir=/mnt/w /ovl && "
              "umount /mnt && echo ext4 unmounted && echo more >> /ovl/gone && cat /ovl/gone && "
              "umount /ovl && mount -t ext4 /dev/ubdb /mnt && cat /mnt/u/gone && umount /mnt && echo done")
    r = sh(script, f"ubdb={img}")
    assert r.stdout.decode().endswith("ext4 unmounted\ngone\nmore\ngone\nmore\ndone\n"), r.stdout + r.stderr
    _fsck(img)


@pytest.mark.skipif(os.geteuid() != 0, reason="the host directories overlay makes (W/work) have mode 0")
def test_hostfs_layers(tmp_path: Path) -> None:
    """hostfs below: read and copied up into a tmpfs.  hostfs above: no
    xattrs, no whiteouts (it makes no device nodes), so the mount warns as
    Linux's does and a removal needing a whiteout fails; the rest works."""
    host = tmp_path / "host"
    (host / "l").mkdir(parents=True)
    (host / "l" / "f").write_text("from the host\n")
    (host / "u").mkdir()
    (host / "w").mkdir()
    script = ("mount -t proc p /proc; mount -t hostfs none /mnt && mount -t tmpfs t /tmp && "
              "mkdir /tmp/l /tmp/u /tmp/w /tmp/m /tmp/m2 && echo lower > /tmp/l/g && "
              "mount -t overlay overlay -o lowerdir=/mnt/l,upperdir=/tmp/u,workdir=/tmp/w /tmp/m && "
              "cat /tmp/m/f && echo changed >> /tmp/m/f && cat /tmp/u/f && umount /tmp/m && "
              "mount -t overlay overlay -o lowerdir=/tmp/l,upperdir=/mnt/u,workdir=/mnt/w /tmp/m2 && "
              "echo new > /tmp/m2/new && echo more >> /tmp/m2/g; rm /tmp/m2/g; echo rm=$?; "
              "ls /tmp/m2 | tr '\\n' ' '; umount /tmp/m2; dmesg | grep overlayfs")
    r = sh(script, f"hostfs={host}")
    out = r.stdout.decode()
    assert "from the host\nfrom the host\nchanged\n" in out, out + r.stderr.decode()
    assert "rm=1\ng new " in out, out + r.stderr.decode()
    for line in ("upper fs does not support tmpfile.", "upper fs does not support RENAME_WHITEOUT.",
                 "failed to set xattr on upper"):
        assert f"overlayfs: {line}" in out
    assert (host / "l" / "f").read_text() == "from the host\n"
    assert (host / "u" / "new").read_text() == "new\n"
    assert (host / "u" / "g").read_text() == "lower\nmore\n"


def test_linux61_answers() -> None:
    """The overlay's own xattrs are refused through it (6.7 escapes them
    instead), unbuilt features are EINVAL with a log line."""
    r = sh("mount -t proc p /proc; mkdir -p /tmp/s; /t/bin/t_overlay /tmp/s --linux61; dmesg | grep overlayfs:")
    out = r.stdout.decode()
    assert out.startswith(
        "mount: 0\n"
        "getxattr trusted.overlay.origin: -1 EOPNOTSUPP\n"
        "setxattr trusted.overlay.x: -1 EOPNOTSUPP\n"
        "removexattr trusted.overlay.x: -1 EOPNOTSUPP\n"
        "setxattr trusted.x: 0\n"
        "listxattr m/new trusted.*: trusted.x\n"
        "listxattr u/new trusted.*: trusted.x\n"
        "stat m/cu: 0\n"
        "mount index=on: -1 EINVAL\n"
        "mount xino=auto: -1 EINVAL\n"
        "mount metacopy=on: -1 EINVAL\n"
        "mount volatile: -1 EINVAL\n"
        "mount redirect_dir=on: -1 EINVAL\n"
        "umount: 0\n"), out + r.stderr.decode()
    for opt in ("index=on", "xino=auto", "metacopy=on", "volatile", "redirect_dir=on"):
        assert f'overlayfs: option "{opt}" is not supported by this kernel' in out
