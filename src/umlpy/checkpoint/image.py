"""The checkpoint image: a directory holding `manifest.json` (an explicit
schema, never a pickle), `manifest.sha256` (the manifest's own digest) and
one raw file per process with the contents of its memory, each named in
the manifest with its size and CRC-32C (computed as it is written: a
migration's downtime includes making and checking the image, and crc32c
runs at several GB/s where sha256 runs at under two).

Reading an image checks everything before any of it is used: the digests,
the format name and version, the kernel release; `Reader` then hands out
values through typed getters that refuse a wrong type or a value out of
range, so a corrupted or forged image is refused with a message, never
half-restored.
"""
from __future__ import annotations

import hashlib
import json

import crc32c

from arch_um import imagedir

FORMAT = "umlpy-checkpoint"
VERSION = 15
MANIFEST = "manifest.json"
DIGEST = "manifest.sha256"
MAX_MANIFEST = 64 << 20
PAGE = 4096
ZERO_PAGE = bytes(PAGE)
CHUNK = 1 << 20         # what is read or written of a blob at a time


def nonzero_runs(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of the runs of nonzero pages in data."""
    runs: list[tuple[int, int]] = []
    first = None
    for i in range(0, len(data), PAGE):
        if not data.startswith(ZERO_PAGE, i):       # (a compare in place: no slice)
            first = i if first is None else first
        elif first is not None:
            runs.append((first, i - first))
            first = None
    if first is not None:
        runs.append((first, len(data) - first))
    return runs


def changed_pages(data: bytes, old: bytes | None, runs: list[tuple[int, int]]):
    """(offset, length) of the nonzero runs of data (its `runs`) that differ
    from old (what a migration's target holds of the piece, if it holds
    it), cut where pages are the same."""
    if old is None:
        yield from runs
        return
    for off, n in runs:
        first = None
        for i in range(off, off + n, PAGE):
            if data[i:i + PAGE] != old[i:i + PAGE]:
                first = i if first is None else first
            elif first is not None:
                yield first, i - first
                first = None
        if first is not None:
            yield first, off + n - first


class ImageError(Exception):
    """The image cannot be used (the message says why)."""


class Writer:
    """Builds an image in a directory: blobs first, the manifest last (an
    interrupted checkpoint leaves no manifest, so nothing restorable)."""

    def __init__(self, path: str) -> None:
        self.path = imagedir.make(path, (DIGEST, MANIFEST))
        self.blobs: dict[str, FileBlob | None] = {}

    def blob(self, name: str) -> FileBlob:
        """The raw blob `name`, open for writing (closed by the caller)."""
        if name in (MANIFEST, DIGEST):
            raise ValueError(name)
        b = self.blobs[name] = FileBlob(imagedir.create(self.path, name))
        return b

    def adopt(self, name: str) -> None:
        """A blob made in the directory otherwise (a migration's staging
        file, written at offsets): digested when the image is finished."""
        if name in (MANIFEST, DIGEST):
            raise ValueError(name)
        self.blobs[name] = None

    def finish(self, manifest: dict) -> int:
        """Digest the blobs, write the manifest and its digest; returns the
        image's size in bytes."""
        sums = {name: (b.size, b.crc) if b is not None else imagedir.digest(self.path, name)
                for name, b in self.blobs.items()}
        blobs = {name: {"size": size, "crc32c": crc} for name, (size, crc) in sums.items()}
        total = sum(size for size, _crc in sums.values())
        doc = {"format": FORMAT, "version": VERSION, **manifest, "blobs": blobs}
        data = json.dumps(doc, indent=1, sort_keys=True).encode()
        imagedir.write_durably(self.path, MANIFEST, data)
        imagedir.write_durably(self.path, DIGEST, (hashlib.sha256(data).hexdigest() + "\n").encode())
        return total + len(data)


class FileBlob:
    """A blob being written: bytes, or a process's pages by address (which
    a migration's stream may send as "the page you already have")."""

    def __init__(self, f) -> None:
        self.f = f
        self.size = 0
        self.crc = 0

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.size += len(data)
        self.crc = crc32c.crc32c(data, self.crc)

    def write_memory(self, t, start: int, end: int, ino: int, pieces) -> list[tuple[int, int]]:
        """The nonzero pages of a task's private mapping [start, end), read
        through pieces(t, start, end, ino) (the rest is zeros the restore
        need not write); returns their runs (address, length), in the
        order written."""
        runs = []
        for addr, data in pieces(t, start, end, ino):
            for off, n in nonzero_runs(data):
                self.write(data[off:off + n])
                runs.append((addr + off, n))
        return runs

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> FileBlob:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def relocate_runs(manifest: dict, blob: str, where: list[int]) -> None:
    """The memory runs of the process whose blob is `blob`, moved: page i
    of the blob as it was written is now at where[i] (a migration's
    target keeps pages where they first came); a run is cut where its
    pages are no longer neighbours.  A run past `where` is left for the
    restore to refuse."""
    page = PAGE
    for p in manifest.get("processes", []):
        if not isinstance(p, dict) or p.get("memory") != blob:
            continue
        for v in p.get("vmas", []):
            out = []
            for off, n, pos in v.get("runs", []):
                first = pos // page
                if pos % page or n % page or pos < 0 or n <= 0 or first + n // page > len(where):
                    out.append([off, n, pos])
                    continue
                places = where[first:first + n // page]
                if places == list(range(places[0], places[0] + n, page)):
                    pieces = [(off, n, places[0])]     # still neighbours: one compare in C
                else:
                    pieces = [(off + i * page, page, at) for i, at in enumerate(places)]
                for o, m, at in pieces:
                    if out and out[-1][2] + out[-1][1] == at and out[-1][0] + out[-1][1] == o:
                        out[-1][1] += m
                    else:
                        out.append([o, m, at])
            v["runs"] = out


def open_image(path: str, release: str | None = None) -> Reader:
    """The image at path, every digest and the version checked; release:
    the running kernel's, which must be the one that wrote the image."""
    try:
        data = imagedir.read(path, MANIFEST, MAX_MANIFEST)
        want = imagedir.read(path, DIGEST, 100).strip().decode(errors="replace")
    except OSError as e:
        raise ImageError(f"{path}: not a checkpoint image ({e.strerror}: {e.filename})") from None
    if len(data) > MAX_MANIFEST:
        raise ImageError(f"{path}: manifest larger than {MAX_MANIFEST} bytes")
    if hashlib.sha256(data).hexdigest() != want:
        raise ImageError(f"{path}: corrupted image: {MANIFEST} does not match {DIGEST}")
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ImageError(f"{path}: corrupted image: {MANIFEST}: {e}") from None
    r = Reader(doc, "")
    if r.str("format") != FORMAT:
        raise ImageError(f"{path}: not a umlpy checkpoint image")
    version = r.int("version", 0, 1 << 31)
    if version != VERSION:
        raise ImageError(f"{path}: checkpoint format version {version}, this kernel reads version {VERSION}")
    written_by = r.str("kernel")
    if release is not None and written_by != release:
        raise ImageError(f"{path}: image written by kernel {written_by}, this is {release}")
    blobs = r.sub("blobs")
    for name in blobs.keys():
        b = blobs.sub(name)
        size, digest = b.int("size", 0, 1 << 48), b.int("crc32c", 0, 1 << 32)
        try:
            got = imagedir.digest(path, name)
        except ValueError:
            raise ImageError(f"{path}: bad blob name {name!r}") from None
        except OSError as e:
            raise ImageError(f"{path}: missing {name} ({e.strerror})") from None
        if got != (size, digest):
            raise ImageError(f"{path}: corrupted image: {name} does not match its checksum")
    r.dir = path
    r.blobs = frozenset(blobs.keys())
    return r


class Reader:
    """Typed, range-checked access to one object of the manifest."""

    def __init__(self, doc, where: str, dir: str = "", blobs: frozenset = frozenset()) -> None:
        if not isinstance(doc, dict):
            raise ImageError(f"manifest: {where or 'top'} is not an object")
        self.doc = doc
        self.where = where
        self.dir = dir
        self.blobs = blobs      # the names open_image checked

    def _get(self, key: str):
        if key not in self.doc:
            raise ImageError(f"manifest: {self.where}.{key} missing")
        return self.doc[key]

    def _bad(self, key: str, what: str):
        return ImageError(f"manifest: {self.where}.{key}: {what}")

    def has(self, key: str) -> bool:
        return key in self.doc

    def keys(self) -> list[str]:
        return list(self.doc)

    def int(self, key: str, lo: int, hi: int) -> int:
        v = self._get(key)
        if type(v) is not int or not lo <= v < hi:
            raise self._bad(key, f"not an integer in [{lo}, {hi})")
        return v

    def bool(self, key: str) -> bool:
        v = self._get(key)
        if type(v) is not bool:
            raise self._bad(key, "not a boolean")
        return v

    def str(self, key: str) -> str:
        v = self._get(key)
        if type(v) is not str:
            raise self._bad(key, "not a string")
        return v

    def path(self, key: str) -> bytes:
        """A guest path: absolute, no NUL."""
        v = self.str(key).encode("utf-8", "surrogateescape")
        if not v.startswith(b"/") or b"\0" in v or len(v) > 4096:
            raise self._bad(key, "not an absolute path")
        return v

    def hex(self, key: str, limit: int) -> bytes:
        try:
            v = bytes.fromhex(self.str(key))
        except ValueError:
            raise self._bad(key, "not hex") from None
        if len(v) > limit:
            raise self._bad(key, f"longer than {limit} bytes")
        return v

    def filename(self, key: str) -> bytes:
        """A file's name (hex): one path component, not . or .."""
        v = self.hex(key, 255)
        if not v or b"/" in v or b"\0" in v or v in (b".", b".."):
            raise self._bad(key, "not a file name")
        return v

    def ints(self, key: str, lo: int, hi: int, n: int | None = None) -> list[int]:
        v = self._get(key)
        if not isinstance(v, list) or (n is not None and len(v) != n) or \
                any(type(x) is not int or not lo <= x < hi for x in v):
            raise self._bad(key, f"not a list of {n or ''} integers in [{lo}, {hi})")
        return v

    def sub(self, key: str) -> Reader:
        return Reader(self._get(key), f"{self.where}.{key}", self.dir, self.blobs)

    def list(self, key: str) -> list[Reader]:
        v = self._get(key)
        if not isinstance(v, list):
            raise self._bad(key, "not a list")
        return [Reader(x, f"{self.where}.{key}[{i}]", self.dir, self.blobs) for i, x in enumerate(v)]

    def blob(self, key: str, populate: bool = True) -> imagedir.Blob:
        """A blob the manifest names (checked by open_image), open (its
        pages mapped at once unless the caller reads little of it)."""
        name = self.str(key)
        if name not in self.blobs:
            raise self._bad(key, "names no blob of the image")
        return imagedir.Blob(self.dir, name, populate)

    def list_of_ints(self, key: str, n: int, lo: tuple, hi: tuple) -> list[list[int]]:
        """A list of n-integer lists, each item i in [lo[i], hi[i])."""
        v = self._get(key)
        if not isinstance(v, list) or any(
                not isinstance(x, list) or len(x) != n
                or any(type(a) is not int or not lo[i] <= a < hi[i] for i, a in enumerate(x)) for x in v):
            raise self._bad(key, f"not a list of {n}-integer lists in range")
        return v


def pieces(start: int, end: int):
    """[start, end) in runs of at most CHUNK: (address, length)."""
    for addr in range(start, end, CHUNK):
        yield addr, min(CHUNK, end - addr)
