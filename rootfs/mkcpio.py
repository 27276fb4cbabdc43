#!/usr/bin/env python3
"""Write a deterministic newc ("070701", SVR4 without CRC) cpio archive.

Usage: mkcpio.py TREE OUT

Every file, directory and symlink below TREE is stored under its path
relative to TREE (no leading "./", the root itself is not stored), sorted
by path so that a parent directory always precedes its children.  Owner
and group are 0, mtime is a constant, inode numbers are sequential from 1,
nlink is 2 for directories and 1 otherwise, device numbers are 0.  File
type and permission bits (including setuid/sticky) come from lstat().
The archive ends with the usual "TRAILER!!!" entry and is padded to a
512-byte boundary like GNU cpio does.  OUT is only rewritten when its
content would change, so its mtime stays stable for make.
"""

import os
import stat
import sys

MTIME = 1700000000
MAGIC = b"070701"


def _pad4(n):
    return (4 - n % 4) % 4


def _entry(name, ino, mode, nlink, data, rdev=(0, 0)):
    bname = name.encode("utf-8", "surrogateescape") + b"\0"
    fields = (ino, mode, 0, 0, nlink, MTIME, len(data),
              0, 0, rdev[0], rdev[1], len(bname), 0)
    hdr = MAGIC + b"".join(b"%08X" % f for f in fields)
    out = hdr + bname + b"\0" * _pad4(len(hdr) + len(bname))
    out += data + b"\0" * _pad4(len(data))
    return out


def collect(tree):
    paths = []
    for dirpath, dirnames, filenames in os.walk(tree, followlinks=False):
        rel = os.path.relpath(dirpath, tree)
        for n in dirnames + filenames:
            paths.append(n if rel == "." else rel + "/" + n)
    paths.sort()
    return paths


def build(tree):
    chunks = []
    ino = 0
    for rel in collect(tree):
        full = os.path.join(tree, rel)
        st = os.lstat(full)
        perm = stat.S_IMODE(st.st_mode)
        ino += 1
        if stat.S_ISDIR(st.st_mode):
            chunks.append(_entry(rel, ino, stat.S_IFDIR | perm, 2, b""))
        elif stat.S_ISLNK(st.st_mode):
            target = os.fsencode(os.readlink(full))
            chunks.append(_entry(rel, ino, stat.S_IFLNK | 0o777, 1, target))
        elif stat.S_ISREG(st.st_mode):
            with open(full, "rb") as f:
                data = f.read()
            chunks.append(_entry(rel, ino, stat.S_IFREG | perm, 1, data))
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            kind = stat.S_IFMT(st.st_mode)
            rdev = (os.major(st.st_rdev), os.minor(st.st_rdev))
            chunks.append(_entry(rel, ino, kind | perm, 1, b"", rdev))
        elif stat.S_ISFIFO(st.st_mode):
            chunks.append(_entry(rel, ino, stat.S_IFIFO | perm, 1, b""))
        else:
            sys.exit("mkcpio: unsupported file type: %s" % full)
    chunks.append(_entry("TRAILER!!!", 0, 0, 1, b""))
    blob = b"".join(chunks)
    return blob + b"\0" * ((512 - len(blob) % 512) % 512)


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: mkcpio.py TREE OUT")
    tree, out = argv[1], argv[2]
    if not os.path.isdir(tree):
        sys.exit("mkcpio: not a directory: %s" % tree)
    blob = build(tree)
    try:
        with open(out, "rb") as f:
            if f.read() == blob:
                return 0
    except FileNotFoundError:
        pass
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
