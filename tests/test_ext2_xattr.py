"""ext2 extended attributes: images made by mke2fs (-d from a host tree with
xattrs, debugfs ea_set), read and changed through Ext2Inode, then judged by
e2fsck -fn and debugfs ea_list/ea_get.
"""
from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import user_xattrs_work
from test_ext2 import REG, debugfs, dumpe2fs, errno_of, finish, fsck, mkfs, mount
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2 import xattr
from umlpy.kernel.errors import KernelError

pytestmark = pytest.mark.skipif(subprocess.run(["which", "debugfs"], capture_output=True).returncode,
                                reason="e2fsprogs missing")

CREATE, REPLACE = C.XATTR_CREATE, C.XATTR_REPLACE


# -- helpers -------------------------------------------------------------------------
def ea_get(path: Path, file: str, name: str, tmp: Path) -> bytes:
    """The value debugfs reads (raw bytes, through a file)."""
    out = tmp / "ea.out"
    out.unlink(missing_ok=True)
    debugfs(path, f"ea_get -f {out} {file} {name}")
    return out.read_bytes()


def ea_names(path: Path, file: str) -> set[str]:
    """The names debugfs ea_list shows (`  name (size) = ...` lines)."""
    text = debugfs(path, f"ea_list {file}").decode(errors="replace")
    return {line.split()[0] for line in text.splitlines() if line.startswith("  ")}


def ea_set(path: Path, *cmds: str) -> None:
    for cmd in cmds:
        r = subprocess.run(["debugfs", "-w", "-R", cmd, str(path)], capture_output=True, text=True)
        assert r.returncode == 0 and "rror" not in r.stderr, r.stderr


def stat_field(path: Path, file: str, field: str) -> int:
    text = debugfs(path, f"stat {file}").decode()
    return int(text.split(field + ":")[1].split()[0])


def host_tree_with_xattrs(root: Path) -> Path:
    """A host tree whose files carry user xattrs (skips if the host fs refuses them)."""
    src = root / "src"
    src.mkdir()
    for name in ("a", "b", "plain"):
        (src / name).write_bytes(name.encode())
    (src / "d").mkdir()
    if not user_xattrs_work(src):
        pytest.skip("the host filesystem refuses user xattrs")
    os.setxattr(src / "a", "user.color", b"blue")
    os.setxattr(src / "a", "user.x", b"1" * 100)
    for name in ("user.color", "user.x"):           # b: the same attributes as a
        os.setxattr(src / "b", name, os.getxattr(src / "a", name))
    os.setxattr(src / "d", "user.big", bytes(range(256)) * 3)
    os.setxattr(src / "d", "user.empty", b"")
    return src


def host_xattrs(p: Path) -> dict[bytes, bytes]:
    return {n.encode(): os.getxattr(p, n) for n in os.listxattr(p)}


def xattrs(inode) -> dict[bytes, bytes]:
    return {n: inode.getxattr(n) for n in inode.listxattr()}


def block_header(fs, blk: int) -> tuple[int, int]:
    hdr = xattr.block_header(fs.bcache.get(blk))
    assert hdr is not None
    return hdr


# -- the hash ------------------------------------------------------------------------
def test_hashes_match_what_mke2fs_wrote(tmp_path: Path) -> None:
    src = host_tree_with_xattrs(tmp_path)
    path = mkfs(tmp_path / "h.img", "8M", "-I", "128", "-d", str(src))
    fs = mount(path, read_only=True)
    inode = fs.root.lookup(b"d")
    buf = fs.bcache.get(inode.file_acl)
    off, seen = L.XATTR_HEADER_SIZE, 0
    while struct.unpack_from("<I", buf, off)[0]:
        nlen, _, voff, _, vsize, h = L.XATTR_ENTRY.unpack_from(buf, off)
        name = bytes(buf[off + 16:off + 16 + nlen])
        assert xattr.entry_hash(name, bytes(buf[voff:voff + vsize])) == h
        off += L.xattr_pad(16 + nlen)
        seen += 1
    assert seen == 2
    assert xattr.block_hash([1, 0, 2]) == 0
    assert xattr.block_hash([0x12345678]) == 0x12345678
    assert xattr.block_hash([1, 2]) == (1 << 16) ^ 2


# -- reading what mke2fs -d wrote ------------------------------------------------------
@pytest.mark.parametrize("isize", [128, 256])
def test_mke2fs_d_xattrs_are_read(tmp_path: Path, isize: int) -> None:
    src = host_tree_with_xattrs(tmp_path)
    path = mkfs(tmp_path / "d.img", "8M", "-I", str(isize), "-d", str(src))
    fs = mount(path, read_only=True)
    for name in ("a", "b", "d", "plain"):
        inode = fs.root.lookup(name.encode())
        assert xattrs(inode) == host_xattrs(src / name), name
        assert {n.decode() for n in inode.listxattr()} == ea_names(path, "/" + name)
    a = fs.root.lookup(b"a")
    assert bool(xattr._ibody(a)) == (isize == 256)      # mke2fs fills the inode body first
    assert errno_of(a.getxattr, b"user.nothere") == E.ENODATA
    assert errno_of(a.getxattr, b"system.posix_acl_access") == E.EOPNOTSUPP
    assert errno_of(a.setxattr, b"user.x", b"v", 0) == E.EROFS
    fs.unmount()


# -- writing ---------------------------------------------------------------------------
@pytest.mark.parametrize("isize,bs", [(128, 1024), (256, 1024), (256, 4096)])
def test_set_replace_remove_and_reopen(tmp_path: Path, isize: int, bs: int) -> None:
    path = mkfs(tmp_path / "w.img", "8M", "-I", str(isize), "-b", str(bs))
    fs = mount(path)
    free = fs.statfs()["bfree"]
    f = fs.root.create(b"f", REG, 0, 0)
    f.write(0, b"data")
    blocks = f.blocks()
    t0 = f.ctime
    f.setxattr(b"user.one", b"1", 0)
    assert f.ctime > t0 and f.file_acl and f.blocks() == blocks + bs // 512
    assert fs.statfs()["bfree"] == free - 2
    f.setxattr(b"user.two", b"2" * 300, CREATE)
    f.setxattr(b"trusted.t", b"tee", 0)
    f.setxattr(b"security.s", b"", 0)
    assert errno_of(f.setxattr, b"user.one", b"x", CREATE) == E.EEXIST
    assert errno_of(f.setxattr, b"user.nope", b"x", REPLACE) == E.ENODATA
    assert errno_of(f.removexattr, b"user.nope") == E.ENODATA
    assert errno_of(f.setxattr, b"system.foo", b"x", 0) == E.EOPNOTSUPP
    f.setxattr(b"user.one", b"uno", REPLACE)
    d = fs.root.create(b"d", C.S_IFDIR | 0o755, 0, 0)
    d.setxattr(b"user.dir", b"dv", 0)
    link = fs.root.symlink(b"l", b"f", 0, 0)
    link.setxattr(b"trusted.lnk", b"lv", 0)
    finish(fs, path)
    assert ea_names(path, "/f") == {"user.one", "user.two", "trusted.t", "security.s"}
    assert ea_get(path, "/f", "user.two", tmp_path) == b"2" * 300
    assert ea_get(path, "/f", "user.one", tmp_path) == b"uno"
    assert ea_get(path, "/d", "user.dir", tmp_path) == b"dv"
    assert ea_get(path, "/l", "trusted.lnk", tmp_path) == b"lv"
    assert "ext_attr" in dumpe2fs(path)

    fs = mount(path)
    f = fs.root.lookup(b"f")
    assert xattrs(f) == {b"user.one": b"uno", b"user.two": b"2" * 300, b"trusted.t": b"tee",
                         b"security.s": b""}
    assert fs.root.lookup(b"l").readlink() == b"f"
    assert f.read(0, 10) == b"data"
    t0 = f.ctime
    f.removexattr(b"user.two")
    assert f.ctime > t0
    finish(fs, path)
    assert ea_names(path, "/f") == {"user.one", "trusted.t", "security.s"}

    fs = mount(path)
    f = fs.root.lookup(b"f")
    for name in f.listxattr():
        f.removexattr(name)
    assert f.listxattr() == [] and f.file_acl == 0 and f.blocks() == blocks
    fs.root.unlink(b"l")
    fs.root.rmdir(b"d")
    assert fs.statfs()["bfree"] == free - 1      # only f's data block is left
    finish(fs, path)
    assert stat_field(path, "/f", "File ACL") == 0


def test_in_inode_xattrs_are_kept_and_leave_the_body_when_changed(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "i.img", "8M", "-I", "256")
    ea_set(path, "write /dev/null f", "ea_set f user.in1 one", "ea_set f user.in2 two",
           "ea_set f trusted.in3 three")
    assert stat_field(path, "/f", "File ACL") == 0            # all in the inode body
    fs = mount(path)
    f = fs.root.lookup(b"f")
    assert xattrs(f) == {b"user.in1": b"one", b"user.in2": b"two", b"trusted.in3": b"three"}
    f.setxattr(b"user.new", b"blockval", CREATE)               # to the block, the body stays
    assert f.file_acl and xattr._ibody(f) and len(xattr._ibody(f)) == 3
    f.setxattr(b"user.in1", b"ONE", REPLACE)                   # moves to the block
    f.removexattr(b"user.in2")                                 # leaves the body
    assert [e.name for e in xattr._ibody(f)] == [b"in3"]
    finish(fs, path)
    assert ea_names(path, "/f") == {"user.new", "user.in1", "trusted.in3"}
    assert ea_get(path, "/f", "user.in1", tmp_path) == b"ONE"
    assert ea_get(path, "/f", "trusted.in3", tmp_path) == b"three"
    fs = mount(path)
    f = fs.root.lookup(b"f")
    assert xattrs(f) == {b"user.new": b"blockval", b"user.in1": b"ONE", b"trusted.in3": b"three"}
    f.removexattr(b"trusted.in3")                              # the body is empty: no magic left
    assert xattr._ibody(f) == []
    start = L.GOOD_OLD_INODE_SIZE + f.extra_isize
    assert f._raw[start:] == bytes(len(f._raw) - start)
    finish(fs, path)
    assert ea_names(path, "/f") == {"user.new", "user.in1"}


def test_shared_block_is_copied_on_write(tmp_path: Path) -> None:
    src = host_tree_with_xattrs(tmp_path)
    path = mkfs(tmp_path / "s.img", "8M", "-I", "128", "-b", "1024", "-d", str(src))
    # mke2fs gives a and b a block each: make b share a's, as Linux's mbcache would
    shared, own = stat_field(path, "/a", "File ACL"), stat_field(path, "/b", "File ACL")
    ea_set(path, f"sif /b file_acl {shared}", f"freeb {own}")
    with open(path, "r+b") as fh:
        fh.seek(shared * 1024 + 4)
        fh.write(struct.pack("<I", 2))
    subprocess.run(["e2fsck", "-fy", str(path)], capture_output=True)   # the free counts
    fsck(path)
    fs = mount(path)
    a, b = fs.root.lookup(b"a"), fs.root.lookup(b"b")
    assert a.file_acl == b.file_acl == shared and block_header(fs, shared)[0] == 2
    blocks, free = a.blocks(), fs.statfs()["bfree"]
    a.setxattr(b"user.color", b"red", REPLACE)
    assert a.file_acl != shared and b.file_acl == shared
    assert block_header(fs, shared)[0] == 1 and block_header(fs, a.file_acl)[0] == 1
    assert a.blocks() == blocks and fs.statfs()["bfree"] == free - 1
    assert b.getxattr(b"user.color") == b"blue" and a.getxattr(b"user.color") == b"red"
    assert a.getxattr(b"user.x") == b.getxattr(b"user.x") == b"1" * 100
    finish(fs, path)
    assert ea_get(path, "/a", "user.color", tmp_path) == b"red"
    assert ea_get(path, "/b", "user.color", tmp_path) == b"blue"

    # shared again; this time the last attribute of one sharer goes, then the file
    ea_set(path, f"sif /a file_acl {shared}", f"freeb {stat_field(path, '/a', 'File ACL')}")
    with open(path, "r+b") as fh:
        fh.seek(shared * 1024 + 4)
        fh.write(struct.pack("<I", 2))
    subprocess.run(["e2fsck", "-fy", str(path)], capture_output=True)
    fsck(path)
    fs = mount(path)
    a, b = fs.root.lookup(b"a"), fs.root.lookup(b"b")
    a.removexattr(b"user.color")
    a.removexattr(b"user.x")                     # a lets go of the block, b keeps it
    assert a.file_acl == 0 and a.blocks() == blocks - 2 and block_header(fs, shared)[0] == 1
    fs.root.unlink(b"b")                         # the last user: the block is freed
    finish(fs, path)
    assert ea_names(path, "/a") == set()


def test_enospc_erange_and_nothing_changes(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "n.img", "8M", "-I", "256", "-b", "1024")
    ea_set(path, "write /dev/null f", "ea_set f user.body bodyval")
    fs = mount(path)
    f = fs.root.lookup(b"f")
    f.setxattr(b"user.a", b"a" * 500, 0)
    assert errno_of(f.setxattr, b"user.b", b"b" * 500, 0) == E.ENOSPC
    assert errno_of(f.setxattr, b"user.body", b"b" * 600, REPLACE) == E.ENOSPC
    assert errno_of(f.setxattr, b"user.c", b"c" * 1025, 0) == E.ERANGE   # > the block size
    f.setxattr(b"user.b", b"b" * 400, 0)        # what fits still goes in
    free = fs.statfs()["bfree"]
    assert xattrs(f) == {b"user.body": b"bodyval", b"user.a": b"a" * 500, b"user.b": b"b" * 400}
    g = fs.root.create(b"g", REG, 0, 0)
    g.setxattr(b"user.max", b"m" * (1024 - 32 - 20 - 4), 0)   # header, entry "max", end word
    assert errno_of(g.setxattr, b"user.z", b"", 0) == E.ENOSPC
    assert fs.statfs()["bfree"] == free - 1
    finish(fs, path)
    assert ea_get(path, "/f", "user.body", tmp_path) == b"bodyval"


def test_disk_full_gives_enospc_for_a_new_block(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "full.img", "2M", "-b", "1024", "-m", "0")
    fs = mount(path)
    f = fs.root.create(b"f", REG, 0, 0)
    f.write(0, b"x" * (4 << 20))                 # fills the disk (a short write)
    assert fs.statfs()["bfree"] == 0
    assert errno_of(f.setxattr, b"user.a", b"v", 0) == E.ENOSPC
    assert f.listxattr() == [] and f.file_acl == 0
    finish(fs, path)


def test_other_name_indexes_are_kept(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "acl.img", "8M", "-I", "128")
    ea_set(path, "write /dev/null f", "ea_set -r f system.posix_acl_access ACLBYTES",
           "ea_set f user.u 1")
    fs = mount(path)
    f = fs.root.lookup(b"f")
    assert f.listxattr() == [b"user.u"]
    f.setxattr(b"user.v", b"2", 0)
    f.removexattr(b"user.u")
    finish(fs, path)
    assert ea_names(path, "/f") == {"user.v", "system.posix_acl_access"}
    out = debugfs(path, "ea_get -r /f system.posix_acl_access")   # raw, no translation
    assert b"ACLBYTES" in out
    fs = mount(path)
    fs.root.lookup(b"f").removexattr(b"user.v")  # the ACL alone keeps the block
    assert fs.root.lookup(b"f").file_acl
    finish(fs, path)
    assert ea_names(path, "/f") == {"system.posix_acl_access"}


@pytest.mark.parametrize("opts", [("-O", "^ext_attr"), ("-r", "0")], ids=["no-ext_attr", "rev0"])
def test_first_block_sets_the_ext_attr_feature(tmp_path: Path, opts) -> None:
    path = mkfs(tmp_path / "f.img", "8M", *opts)
    assert "ext_attr" not in dumpe2fs(path)
    fs = mount(path)
    f = fs.root.create(b"f", REG, 0, 0)
    f.setxattr(b"user.a", b"1", 0)
    finish(fs, path)
    hdr = dumpe2fs(path)
    assert "ext_attr" in hdr.split("Filesystem features:")[1].split("\n")[0]
    assert "Filesystem revision #:    1" in hdr
    assert ea_get(path, "/f", "user.a", tmp_path) == b"1"


def test_immutable_inode_refuses_xattr_changes(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "imm.img", "8M")
    fs = mount(path)
    f = fs.root.create(b"f", REG, 0, 0)
    f.setxattr(b"user.a", b"1", 0)
    f.flags |= L.FL_IMMUTABLE
    assert errno_of(f.setxattr, b"user.a", b"2", 0) == E.EPERM
    assert errno_of(f.removexattr, b"user.a") == E.EPERM
    assert f.getxattr(b"user.a") == b"1"
    f.flags &= ~L.FL_IMMUTABLE
    finish(fs, path)


# -- property: attributes of two files under random set/remove ----------------------------
_XNAMES = [b"user.a", b"user.bb", b"user.ccc", b"trusted.t", b"security.s", b"user." + b"n" * 200]
_xops = st.lists(st.tuples(st.integers(0, 1), st.sampled_from(_XNAMES),
                           st.one_of(st.none(), st.integers(0, 700)), st.sampled_from([0, 1, 2])),
                 min_size=1, max_size=30)


@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_xops, isize=st.sampled_from([128, 256]))
def test_random_xattr_ops_match_model(tmp_path: Path, ops, isize: int) -> None:
    path = mkfs(tmp_path / f"x{isize}.img", "4M", "-b", "1024", "-I", str(isize))
    fs = mount(path)
    files = [fs.root.create(b"f0", REG, 0, 0), fs.root.create(b"f1", REG, 0, 0)]
    model: list[dict[bytes, bytes]] = [{}, {}]
    for i, name, size, flags in ops:
        f, m = files[i], model[i]
        if size is None:
            if name in m:
                f.removexattr(name)
                del m[name]
            else:
                assert errno_of(f.removexattr, name) == E.ENODATA
            continue
        value = bytes([len(m) + 65]) * size
        if flags == CREATE and name in m:
            assert errno_of(f.setxattr, name, value, flags) == E.EEXIST
        elif flags == REPLACE and name not in m:
            assert errno_of(f.setxattr, name, value, flags) == E.ENODATA
        else:
            try:
                f.setxattr(name, value, flags)
                m[name] = value
            except KernelError as e:        # only "does not fit" may refuse it
                assert e.errno == E.ENOSPC
        assert xattrs(f) == m
    finish(fs, path)
    for i in range(2):
        assert ea_names(path, f"/f{i}") == {n.decode() for n in model[i]}
    fs = mount(path)
    assert [xattrs(fs.root.lookup(b"f%d" % i)) for i in range(2)] == model
    fs.unmount()
