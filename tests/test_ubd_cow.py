"""ubd specs, the COW v3 format and overlay semantics, checked against uml_moo."""
from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from umlpy.drivers import cow
from umlpy.drivers.ubd import UbdError, open_ubd, parse_spec

MB = 1 << 20


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def base(tmp_path):
    p = tmp_path / "base.img"
    p.write_bytes(bytes(range(256)) * (4 * MB // 256))
    os.utime(p, (1_700_000_000, 1_700_000_000))
    return p


def test_parse_spec_forms():
    s = parse_spec("ubd0", "a.img")
    assert (s.unit, s.flags, s.file, s.backing) == (0, set(), "a.img", None)
    s = parse_spec("ubd1rs", "cow,base")
    assert (s.unit, s.flags, s.file, s.backing) == (1, {"r", "s"}, "cow", "base")
    s = parse_spec("ubdb", "cow:base")
    assert (s.unit, s.name, s.backing) == (1, "ubdb", "base")
    with pytest.raises(UbdError, match="Can't specify both 'd' and a cow file"):
        parse_spec("ubd0d", "cow,base")
    with pytest.raises(UbdError):
        parse_spec("ubd0x", "a")


def test_cow_file_layout_matches_uml(base, tmp_path):
    c = tmp_path / "c.cow"
    u = open_ubd(parse_spec("ubd0", f"{c},{base}"))
    u.close()
    head = c.read_bytes()[:cow.HEADER_SIZE]
    magic, version, mtime, size, sector, align, fmt = struct.unpack(">IIIQIII", head[:32])
    assert (magic, version, mtime, size, sector, align, fmt) == (0x4F4F4F4D, 3, 1_700_000_000, 4 * MB, 512, 4096, 0)
    assert head[32:].split(b"\0")[0] == str(base).encode()
    h = cow.parse(head)
    assert h.bitmap_offset == 8192
    assert h.bitmap_len == 4 * MB // 512 // 8
    assert h.data_offset == 8192 + 4096
    assert c.stat().st_size == h.data_offset + 4 * MB
    assert c.stat().st_blocks * 512 < 64 * 1024          # sparse


def test_writes_land_in_the_cow_only_and_uml_moo_merges(base, tmp_path):
    before = _sha(base)
    c = tmp_path / "c.cow"
    u = open_ubd(parse_spec("ubd0", f"{c},{base}"))
    dev = u.dev
    dev.write(4096, b"A" * 4096)
    dev.write(1000, b"xyz")                    # partial sectors
    dev.write(4 * MB - 512, b"Z" * 512)
    expect = bytearray(base.read_bytes())
    expect[4096:8192] = b"A" * 4096
    expect[1000:1003] = b"xyz"
    expect[-512:] = b"Z" * 512
    assert dev.read(0, 4 * MB) == bytes(expect)
    u.close()
    assert _sha(base) == before
    # reopened from the COW file alone (auto-detection of the header)
    u = open_ubd(parse_spec("ubd0", str(c)))
    assert u.dev.read(0, 4 * MB) == bytes(expect)
    u.close()
    assert shutil.which("uml_moo"), "uml_moo (Debian uml-utilities) is needed"
    merged = tmp_path / "merged.img"
    subprocess.run(["uml_moo", str(c), str(merged)], check=True, capture_output=True)
    assert merged.read_bytes() == bytes(expect)
    assert _sha(base) == before


def test_changed_backing_file_is_refused(base, tmp_path):
    c = tmp_path / "c.cow"
    open_ubd(parse_spec("ubd0", f"{c},{base}")).close()
    os.utime(base, (1_700_000_100, 1_700_000_100))
    with pytest.raises(UbdError, match="Failed to open"):
        open_ubd(parse_spec("ubd0", f"{c},{base}"))
    with open(base, "ab") as f:
        f.write(b"more")
    os.utime(base, (1_700_000_000, 1_700_000_000))
    with pytest.raises(UbdError):
        open_ubd(parse_spec("ubd0", f"{c},{base}"))


def test_host_locking(base, tmp_path):
    a = open_ubd(parse_spec("ubd0", str(base)))
    try:
        with pytest.raises(UbdError, match="in use"):
            open_ubd(parse_spec("ubd1", str(base)))
        # read-only users of a base image share it (COW layers), `c` turns locks off
        open_ubd(parse_spec("ubd1c", str(base))).close()
    finally:
        a.close()
    c1, c2 = tmp_path / "1.cow", tmp_path / "2.cow"
    u1 = open_ubd(parse_spec("ubd0", f"{c1},{base}"))
    u2 = open_ubd(parse_spec("ubd0", f"{c2},{base}"))
    with pytest.raises(UbdError, match="in use"):
        open_ubd(parse_spec("ubd0", f"{c1},{base}"))
    u1.close()
    u2.close()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 64 * 1024 - 1), st.binary(min_size=1, max_size=3000)
                          | st.integers(1, 40).map(lambda k: os.urandom(k * 512))), max_size=12),
       st.lists(st.tuples(st.integers(0, 127), st.integers(1, 128)), max_size=6))
def test_overlay_behaves_like_a_disk(tmp_path_factory, ops, windows):
    """Writes of any size and place, then reads: whole, and sector-aligned
    windows read straight into memory (read_into, the page cache's fill),
    whose runs of COW and backing sectors are found a bitmap byte at a time."""
    d = tmp_path_factory.mktemp("cowprop")
    base = d / "base.img"
    base.write_bytes(os.urandom(64 * 1024))
    model = bytearray(base.read_bytes())
    u = open_ubd(parse_spec("ubd0", f"{d / 'c.cow'},{base}"))
    for off, data in ops:
        data = data[:64 * 1024 - off]
        u.dev.write(off, data)
        model[off:off + len(data)] = data
    assert u.dev.read(0, 64 * 1024) == bytes(model)
    for first, count in windows:
        count = min(count, 128 - first)
        buf = bytearray(count * 512)
        u.dev.read_into(first * 512, memoryview(buf))
        assert buf == model[first * 512:(first + count) * 512]
    u.close()
