"""The target's half of a live migration (`umlpy restore --listen SOCKET`):
the stream from the migrating kernel (checkpoint/migrate.py) made into a
checkpoint image, which the restore then boots as any other.

A process's pre-copied pages go straight into its memory blob, each at
the place it first came to (a page sent again overwrites itself), so that
the final copy moves nothing the target already holds: a page it names by
reference stays where it is, a page it sends is added at the end, and the
manifest's runs are moved to where the pages are (image.relocate_runs).
Other blobs (a tmpfs's) are written as they come.  What the stream
carries is checked as an image is: names through the image's own writer,
every value of the manifest by the restore.

Each page also goes into the process's host process, which the target
builds as the pages come (checkpoint/prebuild.py) for the restore to
adopt; and the memory blob's CRC is kept by pieces as they are written,
so that finishing the image reads none of it again.
"""
from __future__ import annotations

import os

import crc32c

from arch_um import imagedir, migwire
from umlpy.checkpoint import crcjoin, image
from umlpy.checkpoint.prebuild import Prebuilt

PAGE = 4096
PIECE = 1 << 20                 # the bytes of the memory blob summed together
MAX_PAGES = 1 << 16             # pages in one message at most


def _blob(head: dict) -> str:
    name = head.get("blob")
    if not isinstance(name, str) or not name.endswith(".bin") or "/" in name:
        raise migwire.WireError("a message naming no blob")
    return name


def _run(head: dict, data: bytes, with_data: bool) -> tuple[int, int]:
    """(address, page count) of a run of pages, checked."""
    addr, count = head.get("addr"), head.get("count")
    if type(addr) is not int or type(count) is not int or addr < 0 or addr % PAGE \
            or not 0 < count <= MAX_PAGES or len(data) != (count * PAGE if with_data else 0):
        raise migwire.WireError("a malformed run of pages")
    return addr, count


class _Memory:
    """A process's memory blob in the making: pages by address, each at a
    fixed place in the file; `order`, the place of each page of the final
    copy in the order the source wrote them.  The file's CRC is kept by
    pieces of PIECE bytes (`sums`, one per piece begun): pages added at
    the end are summed as they come, a piece where pages were written
    again is read and summed again (`stale`); the sums are joined at the
    end (crcjoin), so the blob is not read again in the downtime."""

    def __init__(self, w: image.Writer, name: str) -> None:
        w.adopt(name)
        self.fd = os.open(os.path.join(w.path, name), os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self.at: dict[int, int] = {}
        self.size = 0
        self.order: list[int] | None = None
        self.sums: list[int] = []
        self.stale: set[int] = set()

    def put(self, addr: int, data: bytes) -> list[int]:
        """Store pages from addr; their places."""
        n = len(data) // PAGE
        places = list(map(self.at.get, range(addr, addr + n * PAGE, PAGE)))
        if places.count(None) == n:         # all new: together at the end
            places = list(range(self.size, self.size + n * PAGE, PAGE))
            self.at.update(zip(range(addr, addr + n * PAGE, PAGE), places))
            self.size += n * PAGE
            os.pwrite(self.fd, data, places[0])
            self._sum_added(places[0], data)
            return places
        if places[0] is not None and places == list(range(places[0], places[0] + n * PAGE, PAGE)):
            os.pwrite(self.fd, data, places[0])
            self.stale.update(range(places[0] // PIECE, (places[-1] + PAGE - 1) // PIECE + 1))
            return places
        for i in range(n):
            page = data[i * PAGE:(i + 1) * PAGE]
            if places[i] is None:
                places[i] = self.at[addr + i * PAGE] = self.size
                self.size += PAGE
                self._sum_added(places[i], page)
            else:
                self.stale.add(places[i] // PIECE)
            os.pwrite(self.fd, page, places[i])
        return places

    def _sum_added(self, at: int, data: bytes) -> None:
        """data was added at the end of the file, from at: the sums go on
        from it (crc32c's running value), a new piece begun where one ends."""
        view, off = memoryview(data), 0
        while off < len(view):
            i, within = divmod(at + off, PIECE)
            part = view[off:off + PIECE - within]
            if not within:
                self.sums.append(crc32c.crc32c(part))
            elif i not in self.stale:
                self.sums[i] = crc32c.crc32c(part, self.sums[i])
            off += len(part)

    def resum(self) -> None:
        """Sum again the pieces where pages were written again."""
        for i in self.stale:
            self.sums[i] = crc32c.crc32c(os.pread(self.fd, PIECE, i * PIECE))
        self.stale.clear()

    def digest(self) -> None:
        """The whole file's CRC, from its pieces', left for the image's
        digest to find (imagedir.remember)."""
        self.resum()
        crc, by = 0, crcjoin.shift(PIECE)
        for i, piece in enumerate(self.sums):
            n = min(PIECE, self.size - i * PIECE)
            crc = crcjoin.join(crc, piece, n, by if n == PIECE else None)
        imagedir.remember(self.fd, crc)

    def close(self) -> None:
        os.close(self.fd)


def receive(conn: migwire.Conn, directory: str, release: str, pre: Prebuilt | None = None) -> dict:
    """Read the stream into an image at directory; returns the hello (the
    migrating kernel's release and format version, checked).  pre: host
    processes to put the memory's pages in as they come, for the restore
    to adopt."""
    hello, _ = conn.recv()
    if hello.get("t") != "hello" or hello.get("version") != image.VERSION:
        raise migwire.WireError(f"not a migration this kernel reads (format {hello.get('version')!r}, "
                                f"this kernel's {image.VERSION})")
    if hello.get("kernel") != release:
        raise migwire.WireError(f"a machine of kernel {hello.get('kernel')!r}, not {release}")
    w = image.Writer(directory)
    if pre is not None:
        pre.start()
    mems: dict[str, _Memory] = {}
    blobs: dict[str, image.FileBlob] = {}
    try:
        while True:
            head, data = conn.recv()
            kind = head["t"]
            if kind == "pre":
                name = _blob(head)
                addr, _count = _run(head, data, True)
                if name not in mems:
                    mems[name] = _Memory(w, name)
                mems[name].put(addr, data)
                mems[name].resum()
                if pre is not None:
                    pre.put(name, addr, data)
            elif kind == "blob":
                name = _blob(head)
                if name in blobs or (name in mems and mems[name].order is not None):
                    raise migwire.WireError(f"{name} twice")
                if name.startswith("mem-"):
                    if name not in mems:
                        mems[name] = _Memory(w, name)
                    mems[name].order = []
                else:
                    blobs[name] = w.blob(name)
            elif kind in ("pages", "ref"):
                name = _blob(head)
                m = mems.get(name)
                if m is None or m.order is None:
                    raise migwire.WireError("pages for a blob not opened")
                addr, count = _run(head, data, kind == "pages")
                if kind == "pages":
                    m.order += m.put(addr, data)
                    if pre is not None:
                        pre.put(name, addr, data)
                    continue
                places = list(map(m.at.get, range(addr, addr + count * PAGE, PAGE)))
                if None in places:
                    raise migwire.WireError("a reference to a page never sent")
                m.order += places
            elif kind == "bytes":
                out = blobs.get(_blob(head))
                if out is None:
                    raise migwire.WireError("bytes for a blob not opened")
                out.write(data)
            elif kind == "final":
                manifest = head.get("manifest")
                if not isinstance(manifest, dict):
                    raise migwire.WireError("a final message without a manifest")
                try:
                    for name, m in mems.items():
                        image.relocate_runs(manifest, name, m.order or [])
                except (TypeError, ValueError, AttributeError):
                    raise migwire.WireError("a malformed manifest") from None
                for m in mems.values():
                    m.digest()
                    m.close()
                for out in blobs.values():
                    out.close()
                mems, blobs = {}, {}
                w.finish(manifest)
                return hello
            else:
                raise migwire.WireError(f"a message of unknown type {kind!r}")
    finally:
        for m in mems.values():
            m.close()
        for out in blobs.values():
            out.close()
