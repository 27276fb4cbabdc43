"""Shared anonymous memory in a checkpoint: MAP_SHARED|MAP_ANONYMOUS, and
/dev/zero mapped shared, which the host backs with one shmem object
however many processes map it (a fork shares it).

Each object, told apart by the host's inode number of it, is saved once:
its nonzero pages as runs into one blob, read through whichever
mapping shows them.  Each process's mapping names its object and the
offset it maps.  The restore makes every object a memfd of the kernel's
and maps it shared where it was in every process, so that what one
writes the others see again; once every mapping is made the kernel lets
its own descriptor go (the mappings keep the memory).  Pages are read
whole, not by the page map: a page another process touched is in the
object without being in this process's page tables.
"""
from __future__ import annotations

from arch_um import hostfile
from umlpy.abi import consts as C
from umlpy.checkpoint import image

HOST_NAME = b"/dev/zero (deleted)"      # how the host's maps show shared anonymous memory
BLOB = "shared-anon.bin"
PAGE = C.PAGE_SIZE
MAX_SIZE = 1 << 40


class Saver:
    """The objects met while the processes' memory is saved."""

    def __init__(self) -> None:
        self.objects: dict[int, dict] = {}      # host inode -> {"id", "size", "pages": {offset: bytes}}

    def vma(self, pages, start: int, end: int, prot: int, off: int, ino: int) -> dict:
        """A process's mapping [start, end) at offset off of object ino
        (pages: its nonzero (address, bytes))."""
        obj = self.objects.setdefault(ino, {"id": len(self.objects), "size": 0, "pages": {}})
        obj["size"] = max(obj["size"], off + end - start)
        for addr, page in pages:
            obj["pages"].setdefault(off + addr - start, page)
        return {"start": start, "end": end, "prot": prot, "stack": False, "shared": False,
                "shared_anon": obj["id"], "offset": off, "runs": []}

    def save(self, w) -> list:
        """Write every object's pages to the blob; the manifest's list."""
        out, pos = [], 0
        with w.blob(BLOB) as blob:
            for obj in self.objects.values():
                runs: list = []
                for off in sorted(obj["pages"]):
                    if runs and runs[-1][0] + runs[-1][1] == off:
                        runs[-1][1] += PAGE
                    else:
                        runs.append([off, PAGE, pos])
                    blob.write(obj["pages"][off])
                    pos += PAGE
                out.append({"id": obj["id"], "size": obj["size"], "runs": runs})
        return out


def make(r: image.Reader) -> dict[int, hostfile.MemFile]:
    """Each saved object as a memfd holding its pages (none when the image
    has no shared anonymous memory)."""
    if not r.has("shared_anon"):
        return {}
    objs = r.list("shared_anon")
    made: dict[int, hostfile.MemFile] = {}
    blob = r.blob("shared_anon_blob") if objs else None
    try:
        for o in objs:
            i, size = o.int("id", 0, len(objs)), o.int("size", PAGE, MAX_SIZE)
            if i in made or size % PAGE:
                raise image.ImageError(f"manifest: {o.where}: an object twice, or not whole pages")
            mf = made[i] = hostfile.MemFile("shared-anon")
            mf.truncate(size)
            for off, n, pos in o.list_of_ints("runs", 3, (0, 1, 0), (size, size + 1, blob.size)):
                if off % PAGE or off + n > size or pos + n > blob.size:
                    raise image.ImageError(f"manifest: {o.where}.runs: outside the object or the blob")
                mf.pwrite(bytes(blob.read_at(pos, n)), off)
    except BaseException:
        for mf in made.values():
            mf.close()
        raise
    finally:
        if blob is not None:
            blob.close()
    return made


def map_again(has, objs: dict, start: int, end: int, prot: int, v: image.Reader) -> None:
    """A process's shared anonymous mapping, made again on its object."""
    mf = objs.get(v.int("shared_anon", 0, 1 << 31))
    off = v.int("offset", 0, MAX_SIZE)
    if mf is None or off % PAGE or off + end - start > mf.size():
        raise image.ImageError(f"manifest: {v.where}: a mapping of no saved object, or past its end")
    has.map_shared(mf.fd, True, start, end - start, prot, off)


def close(objs: dict) -> None:
    """The kernel's descriptors of the objects, once every mapping is made."""
    for mf in objs.values():
        mf.close()
