"""ext4 directory hashes against e2fsprogs: `debugfs dx_hash` is the reference."""
from __future__ import annotations

import random
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from umlpy.fs.ext4 import dirhash as H

pytestmark = pytest.mark.skipif(shutil.which("debugfs") is None, reason="e2fsprogs missing")

# bytes debugfs's command parser would split or unquote
_UNSAFE = set(b' \t\n\r\x0b\x0c"\\\x00/')
_BYTES = [b for b in range(1, 256) if b not in _UNSAFE]


def _names(n: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = [b"a", b"ab", b"abc", b"abcd", b"abcde", b"\xe9", b"x" * 255, b"\xff" * 33, b"\x80" * 16]
    while len(out) < n:
        k = rnd.choice((rnd.randint(1, 12), rnd.randint(13, 70), rnd.randint(1, 255)))
        alphabet = _BYTES if rnd.random() < 0.5 else list(b"abcdefghijklmnopqrstuvwxyz0123456789._-")
        name = bytes(rnd.choice(alphabet) for _ in range(k))
        if not name.startswith(b"-"):       # not an option to dx_hash
            out.append(name)
    return out


def _reference(tmp: Path, names: list[bytes], version: int, seed: str | None) -> list[tuple[int, int]]:
    opt = f" -s {seed}" if seed else ""
    script = tmp / "script"
    script.write_bytes(b"".join(b"dx_hash -h %d%s %s\n" % (version, opt.encode(), n) for n in names))
    out = subprocess.run(["debugfs", "-f", str(script)], capture_output=True, check=True).stdout
    got = re.findall(rb"^Hash of .* is 0x([0-9a-f]+) \(minor 0x([0-9a-f]+)\)$", out, re.M)
    assert len(got) == len(names)
    return [(int(a, 16), int(b, 16)) for a, b in got]


@pytest.mark.parametrize("version", [H.LEGACY, H.HALF_MD4, H.TEA,
                                     H.LEGACY_UNSIGNED, H.HALF_MD4_UNSIGNED, H.TEA_UNSIGNED])
@pytest.mark.parametrize("seed", [None, "d62a7bbd-ed00-4be4-893b-2ec53e38150f"])
def test_matches_debugfs(tmp_path: Path, version: int, seed: str | None) -> None:
    names = _names(300, version)
    words = H.seed_words(uuid.UUID(seed).bytes) if seed else None
    assert [H.dirhash(n, version, words) for n in names] == _reference(tmp_path, names, version, seed)


def test_flavours_differ_only_beyond_ascii() -> None:
    for base in (H.LEGACY, H.HALF_MD4, H.TEA):
        assert H.dirhash(b"plain", base) == H.dirhash(b"plain", base + H.UNSIGNED_OFFSET)
        assert H.dirhash(b"caf\xe9", base) != H.dirhash(b"caf\xe9", base + H.UNSIGNED_OFFSET)


def test_zero_seed_is_default_and_version_from_flags() -> None:
    assert H.dirhash(b"name", H.TEA, (0, 0, 0, 0)) == H.dirhash(b"name", H.TEA)
    assert H.effective_version(H.TEA, H.FLAGS_UNSIGNED_HASH) == H.TEA_UNSIGNED
    assert H.effective_version(H.TEA, H.FLAGS_SIGNED_HASH) == H.TEA
    assert H.effective_version(H.TEA, 0) == H.TEA


def test_siphash_refused() -> None:
    from umlpy.kernel.errors import KernelError
    with pytest.raises(KernelError):
        H.dirhash(b"x", H.SIPHASH)
