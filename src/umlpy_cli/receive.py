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
"""
from __future__ import annotations

import os

from arch_um import migwire
from umlpy.checkpoint import image

PAGE = 4096
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
    copy in the order the source wrote them."""

    def __init__(self, w: image.Writer, name: str) -> None:
        w.adopt(name)
        self.fd = os.open(os.path.join(w.path, name), os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self.at: dict[int, int] = {}
        self.size = 0
        self.order: list[int] | None = None

    def put(self, addr: int, data: bytes) -> list[int]:
        """Store pages from addr; their places."""
        n = len(data) // PAGE
        places = [self.at.get(addr + i * PAGE) for i in range(n)]
        if places.count(None) == n:         # all new: together at the end
            places = list(range(self.size, self.size + n * PAGE, PAGE))
            self.at.update(zip(range(addr, addr + n * PAGE, PAGE), places))
            self.size += n * PAGE
        if places == list(range(places[0], places[0] + n * PAGE, PAGE)):
            os.pwrite(self.fd, data, places[0])
            return places
        for i in range(n):
            if places[i] is None:
                places[i] = self.at[addr + i * PAGE] = self.size
                self.size += PAGE
            os.pwrite(self.fd, data[i * PAGE:(i + 1) * PAGE], places[i])
        return places

    def close(self) -> None:
        os.close(self.fd)


def receive(conn: migwire.Conn, directory: str, release: str) -> dict:
    """Read the stream into an image at directory; returns the hello (the
    migrating kernel's release and format version, checked)."""
    hello, _ = conn.recv()
    if hello.get("t") != "hello" or hello.get("version") != image.VERSION:
        raise migwire.WireError(f"not a migration this kernel reads (format {hello.get('version')!r}, "
                                f"this kernel's {image.VERSION})")
    if hello.get("kernel") != release:
        raise migwire.WireError(f"a machine of kernel {hello.get('kernel')!r}, not {release}")
    w = image.Writer(directory)
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
                m = mems.get(_blob(head))
                if m is None or m.order is None:
                    raise migwire.WireError("pages for a blob not opened")
                addr, count = _run(head, data, kind == "pages")
                if kind == "pages":
                    m.order += m.put(addr, data)
                    continue
                places = [m.at.get(addr + i * PAGE) for i in range(count)]
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
