"""Listing a directory of the union (Linux 6.1's fs/overlayfs/readdir.c).

A directory that cannot hold whiteouts (only one layer, never copied up)
is listed as its layer lists it.  Any other is merged: every layer's
names, top first, each name once as the topmost layer has it, whiteouts
left out; the lowest layer's names come first, in its order, then those
only the layers above have (ovl_dir_read_merged), so positions change
little as files are copied up.  The VFS numbers the list once per open
directory (at position 0), so positions stay while it is open.

d_ino is the layer's number; with every layer on one filesystem, an upper
entry of a directory marked impure (it holds copies with an origin) gets
the number stat reports, found by looking it up (ovl_cache_update_ino).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.fs.overlayfs import layer as R
from umlpy.fs.overlayfs import lookup
from umlpy.fs.overlayfs.marks import OPAQUE, is_whiteout

if TYPE_CHECKING:
    from umlpy.fs.overlayfs.inode import OvlInode


@dataclass(eq=False)
class Entry:
    """ovl_cache_entry."""
    name: bytes
    ino: int
    dtype: int
    is_upper: bool
    is_whiteout: bool


def entries(d: OvlInode) -> list[tuple[bytes, int, int]]:
    """(name, d_ino, d_type) of every name the directory shows."""
    if not d.whiteouts:
        ents = R.entries(d.fs, d.real())
        if d.impure and d.fs.samefs:
            return [(n, _d_ino(d, n, ino), t) for n, ino, t in ents]
        return ents
    out = []
    for e in merged(d):
        if e.is_whiteout:
            continue
        ino = _d_ino(d, e.name, e.ino) if e.is_upper and d.impure and d.fs.samefs else e.ino
        if ino:
            out.append((e.name, ino, e.dtype))
    return out


def _d_ino(d: OvlInode, name: bytes, ino: int) -> int:
    """The number stat gives the entry; 0 for one that no longer shows
    (a stale entry, left out)."""
    child = lookup.lookup(d, name)
    return child.ino if child is not None else 0


def merged(d: OvlInode) -> list[Entry]:
    """ovl_dir_read_merged: every layer's entries, each name once."""
    layers = ([d.upper] if d.upper is not None else []) + [lp.inode for lp in d.lowers]
    seen: dict[bytes, Entry] = {}
    above: list[Entry] = []
    lowest: list[Entry] = []
    for i, real in enumerate(layers):
        is_lowest = i == len(layers) - 1
        for name, ino, dtype in R.entries(d.fs, real):
            e = seen.get(name)
            if e is None:
                white = dtype == C.DT_CHR and _is_whiteout(real, name)
                e = seen[name] = Entry(name, ino, dtype, real is d.upper, white)
                (lowest if is_lowest else above).append(e)
            elif is_lowest:
                lowest.append(e)        # moved before the names only the layers above have
    placed = {id(e) for e in lowest}
    return lowest + [e for e in above if id(e) not in placed]


def _is_whiteout(real_dir, name: bytes) -> bool:
    child = real_dir.lookup(name)
    return child is not None and is_whiteout(child)


def check_empty(d: OvlInode) -> list[bytes]:
    """ovl_check_empty_dir: ENOTEMPTY unless the directory shows nothing;
    the names of the whiteouts its upper directory holds (to clear)."""
    out = []
    for e in merged(d):
        if not e.is_whiteout:
            raise KernelError(E.ENOTEMPTY)
        if e.is_upper:
            out.append(e.name)
    return out


def clear_whiteouts(d: OvlInode | None, names: list[bytes]) -> None:
    """ovl_clear_empty's effect on a directory about to go: marked opaque
    (EIO on an upper layer without xattrs), its upper directory's
    whiteouts removed."""
    if not names:
        return
    d.fs.xattrs.check_set(d.upper, OPAQUE, b"y", E.EIO)
    for name in names:
        R.cleanup(d.fs, d.upper, name)
