#!/usr/bin/env python3
"""An ext4 image written by umlpy, read and written by real UML, and back (issue 14).

Our own tests check what umlpy writes with e2fsck and debugfs; this checks
it against Linux's ext4 itself, which runs here only as UML (Debian's
user-mode-linux, with ../shared/anchors' xstate shim, as conformance/ltp.py
runs it).  The steps, on a copy of rootfs/busybox.img (ext4 as Debian's
mke2fs makes it):

1. umlpy writes: a directory of 3,000 entries (an htree of several
   leaves), renames across directories, deletions, a 5 MB file, a sparse
   file past 4 GiB, symlinks, hard links; it records an md5 manifest and
   syncs;
2. `e2fsck -fn` and debugfs read the image;
3. UML mounts it, compares every file with the manifest, then writes,
   renames and deletes in it, and records a second manifest;
4. `e2fsck -fn` again, and umlpy boots the image UML wrote and checks the
   second manifest.

Prints one line per step and exits non-zero at the first that fails.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UMLPY = ROOT / ".venv" / "bin" / "umlpy"
BASE = ROOT / "rootfs" / "busybox.img"
SHIM_SRC = ROOT.parent / "shared" / "anchors" / "src" / "uml_xstate_shim.c"
UML_BIN = Path("/usr/bin/linux.uml")

MANIFEST = "find /w -xdev | sort | while read f; do " \
           "if [ -L \"$f\" ]; then echo \"L $f $(readlink \"$f\")\"; " \
           "elif [ -f \"$f\" ]; then echo \"F $f $(stat -c %s:%h \"$f\") $(md5sum < \"$f\" | cut -c1-32)\"; " \
           "else echo \"D $f\"; fi; done"

WRITE = f"""
set -e
mkdir -p /w/big /w/a/b /w/c
i=0
while [ $i -lt 3000 ]; do echo "entry $i" > /w/big/a_rather_long_file_name_number_$i; i=$((i+1)); done
i=0
while [ $i -lt 3000 ]; do rm /w/big/a_rather_long_file_name_number_$i; i=$((i+7)); done
mv /w/big/a_rather_long_file_name_number_1 /w/a/b/moved
mv /w/big/a_rather_long_file_name_number_2 /w/c/
dd if=/dev/urandom of=/w/rand bs=1024 count=5000 2>/dev/null
dd if=/dev/zero of=/w/sparse bs=1 count=1 seek=5368709120 2>/dev/null
echo tail >> /w/sparse
ln -s ../rand /w/a/link
ln -s /w/a/b/moved/with/a/long/target/that/does/not/fit/in/the/inode/itself/padding/padding /w/longlink
ln /w/rand /w/c/hard
{MANIFEST} > /manifest1
"""

UML_CHECK = f"""#!/bin/sh
mount -t proc proc /proc
{MANIFEST} > /tmp/m1
if cmp -s /tmp/m1 /manifest1; then echo UML-READ-OK; else echo UML-READ-DIFF; diff /manifest1 /tmp/m1 | head -20; fi
echo "written by UML" > /w/a/from_uml
i=0
while [ $i -lt 500 ]; do echo "uml $i" > /w/big/u_$i; i=$((i+1)); done
rm -r /w/c
mv /w/a/b /w/b2
dd if=/dev/urandom of=/w/rand bs=1024 count=100 seek=2000 conv=notrunc 2>/dev/null
{MANIFEST} > /manifest2
sync
echo UML-WROTE
poweroff -f
"""

UMLPY_CHECK = f"""
{MANIFEST} > /tmp/m2
if cmp -s /tmp/m2 /manifest2; then echo UMLPY-READ-OK; else echo UMLPY-READ-DIFF; diff /manifest2 /tmp/m2 | head -20; fi
"""


def fsck(img: Path, when: str) -> None:
    r = subprocess.run(["e2fsck", "-fn", str(img)], capture_output=True, text=True)
    ok = r.returncode == 0
    print(f"e2fsck -fn {when}: {'clean' if ok else 'FAILED'}")
    if not ok:
        sys.exit(r.stdout[-3000:])


def guest(cmd: list[str], init: list[str], want: str, what: str) -> None:
    r = subprocess.run(cmd + init, capture_output=True, text=True, timeout=1200,
                       stdin=subprocess.DEVNULL)
    ok = want in r.stdout
    print(f"{what}: {'ok' if ok else 'FAILED'}")
    if not ok:
        sys.exit(r.stdout[-3000:] + r.stderr[-3000:])


def main() -> int:
    if not UML_BIN.exists() or not SHIM_SRC.exists():
        sys.exit("needs Debian's user-mode-linux and ../shared/anchors (the xstate shim)")
    work = Path(tempfile.mkdtemp(prefix="ext4-uml-"))
    try:
        img = work / "disk.img"
        subprocess.run(["cp", "--sparse=always", str(BASE), str(img)], check=True)
        shim = work / "shim.so"
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(shim), str(SHIM_SRC), "-ldl"], check=True)
        umlpy = [str(UMLPY), str(ROOT / "linux-um"), f"ubd0={img}", "rw", "quiet"]
        uml = ["env", f"LD_PRELOAD={shim}", str(UML_BIN), f"uml_dir={work}", f"umid=e4x{os.getpid()}",
               "con0=fd:0,fd:1", "con=null", f"ubd0={img}", "root=/dev/ubda", "rw", "mem=256M", "quiet"]
        # UML passes init's arguments as kernel command-line words (no spaces
        # in them): its script goes onto the disk with the workload
        write = WRITE + f"cat > /uml_check.sh <<'EOF'\n{UML_CHECK}EOF\nchmod 755 /uml_check.sh\nsync\necho UMLPY-WROTE\n"
        guest(umlpy, ["init=/bin/sh", "--", "-c", write], "UMLPY-WROTE", "umlpy writes the workload")
        fsck(img, "after umlpy")
        r = subprocess.run(["debugfs", "-R", "ls -l /w/big", str(img)], capture_output=True, text=True)
        n = sum(1 for line in r.stdout.splitlines() if "a_rather_long_file_name" in line)
        print(f"debugfs lists /w/big: {n} entries ({'ok' if n == 3000 - 429 - 2 else 'FAILED'})")
        if n != 3000 - 429 - 2:
            return 1
        guest(uml, ["init=/uml_check.sh"], "UML-READ-OK", "UML reads every file as umlpy wrote it")
        fsck(img, "after UML wrote")
        guest(umlpy, ["init=/bin/sh", "--", "-c", UMLPY_CHECK], "UMLPY-READ-OK", "umlpy reads every file as UML wrote it")
        fsck(img, "after umlpy read")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
