"""BPF maps: array, hash and ring buffer, as kernel/bpf/{arraymap,
hashtab,ringbuf}.c answer user space and programs.

A map's values live in bytearrays that programs address through the
interpreter's regions (bpf/memory.py); lookups hand out (buffer, offset)
so a program's stores land in the map itself, as Linux's pointers do.
"""
from __future__ import annotations

from collections import deque

from umlpy.abi import bpf as B
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.kernel.mm import Charge, MemBudget
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import File

PAGE_SIZE = 4096
KMALLOC_MAX_SIZE = 1 << 22       # a value no bigger than one kmalloc
HTAB_ELEM_OVERHEAD = 128         # what a hash element costs beside its key and value
_last_id = [0]                   # map ids, from 1 (Linux's idr, never reused here)
_CREATE_FLAGS = B.BPF_F_NUMA_NODE | B.BPF_F_RDONLY | B.BPF_F_WRONLY | \
    B.BPF_F_RDONLY_PROG | B.BPF_F_WRONLY_PROG


def _round8(n: int) -> int:
    return (n + 7) & ~7


class Map:
    """What every map type answers (bpf_map_ops)."""
    map_type = 0
    extra_flags = 0

    def __init__(self, key_size: int, value_size: int, max_entries: int, flags: int,
                 budget: MemBudget, footprint: int) -> None:
        """footprint: the most memory the map will hold (Linux allocates it
        up front), charged to the machine's RAM until the map is freed:
        ENOMEM past it."""
        Charge(budget, self).add(footprint)
        self.footprint = footprint
        _last_id[0] += 1
        self.id = _last_id[0]
        self.key_size, self.value_size = key_size, value_size
        self.max_entries, self.flags = max_entries, flags

    def lookup(self, key: bytes) -> tuple[bytearray, int] | None:
        raise KernelError(E.ENOTSUPP)

    def update(self, key: bytes, value: bytes, flags: int) -> None:
        raise KernelError(E.ENOTSUPP)

    def delete(self, key: bytes) -> None:
        raise KernelError(E.ENOTSUPP)

    def next_key(self, key: bytes | None) -> bytes:
        raise KernelError(E.ENOTSUPP)


class ArrayMap(Map):
    """Preallocated, zero-filled values indexed by a u32; nothing is ever
    deleted."""
    map_type = B.BPF_MAP_TYPE_ARRAY

    def __init__(self, key_size: int, value_size: int, max_entries: int, flags: int,
                 budget: MemBudget) -> None:
        if key_size != 4 or not value_size or not max_entries:
            raise KernelError(E.EINVAL)
        if value_size >= KMALLOC_MAX_SIZE:
            raise KernelError(E.E2BIG)
        self.elem_size = _round8(value_size)
        super().__init__(key_size, value_size, max_entries, flags, budget, self.elem_size * max_entries)
        self.storage = bytearray(self.elem_size * max_entries)

    def _index(self, key: bytes) -> int:
        return int.from_bytes(key[:4], "little")

    def lookup(self, key: bytes) -> tuple[bytearray, int] | None:
        i = self._index(key)
        return (self.storage, i * self.elem_size) if i < self.max_entries else None

    def update(self, key: bytes, value: bytes, flags: int) -> None:
        if flags & ~B.BPF_F_LOCK > B.BPF_EXIST:
            raise KernelError(E.EINVAL)
        i = self._index(key)
        if i >= self.max_entries:
            raise KernelError(E.E2BIG)
        if flags & ~B.BPF_F_LOCK == B.BPF_NOEXIST:
            raise KernelError(E.EEXIST)        # every element always exists
        off = i * self.elem_size
        self.storage[off:off + self.value_size] = value[:self.value_size]

    def delete(self, key: bytes) -> None:
        raise KernelError(E.EINVAL)

    def next_key(self, key: bytes | None) -> bytes:
        i = self._index(key) if key is not None else self.max_entries
        if i >= self.max_entries:
            return (0).to_bytes(4, "little")
        if i == self.max_entries - 1:
            raise KernelError(E.ENOENT)
        return (i + 1).to_bytes(4, "little")


class HashMap(Map):
    """Values by key bytes, at most max_entries of them; iteration follows
    insertion order (Linux's follows its buckets: no order is promised)."""
    map_type = B.BPF_MAP_TYPE_HASH
    extra_flags = B.BPF_F_NO_PREALLOC | B.BPF_F_ZERO_SEED

    def __init__(self, key_size: int, value_size: int, max_entries: int, flags: int,
                 budget: MemBudget) -> None:
        if not key_size or not value_size or not max_entries:
            raise KernelError(E.EINVAL)
        if key_size > B.MAX_BPF_STACK or value_size >= KMALLOC_MAX_SIZE:
            raise KernelError(E.E2BIG)
        super().__init__(key_size, value_size, max_entries, flags, budget,
                         (_round8(key_size) + _round8(value_size) + HTAB_ELEM_OVERHEAD) * max_entries)
        self.values: dict[bytes, bytearray] = {}

    def lookup(self, key: bytes) -> tuple[bytearray, int] | None:
        v = self.values.get(bytes(key))
        return (v, 0) if v is not None else None

    def update(self, key: bytes, value: bytes, flags: int) -> None:
        how = flags & ~B.BPF_F_LOCK
        if how > B.BPF_EXIST:
            raise KernelError(E.EINVAL)
        key = bytes(key)
        old = self.values.get(key)
        if old is not None and how == B.BPF_NOEXIST:
            raise KernelError(E.EEXIST)
        if old is None and how == B.BPF_EXIST:
            raise KernelError(E.ENOENT)
        if old is None and len(self.values) >= self.max_entries:
            raise KernelError(E.E2BIG)
        # a fresh element, as htab_map_update_elem replaces it (a program
        # holding the old value keeps writing the old one)
        self.values[key] = bytearray(value[:self.value_size])

    def delete(self, key: bytes) -> None:
        if self.values.pop(bytes(key), None) is None:
            raise KernelError(E.ENOENT)

    def next_key(self, key: bytes | None) -> bytes:
        keys = list(self.values)
        if key is not None and bytes(key) in self.values:
            i = keys.index(bytes(key)) + 1
        else:
            i = 0
        if i >= len(keys):
            raise KernelError(E.ENOENT)
        return keys[i]


class RingBufMap(Map):
    """A ring of records programs reserve and submit.  User space reads a
    ring by mmap, which this kernel does not offer: records are kept (as
    room allows) and counted, so a full ring refuses reservations as
    Linux's does when nobody consumes."""
    map_type = B.BPF_MAP_TYPE_RINGBUF

    def __init__(self, key_size: int, value_size: int, max_entries: int, flags: int,
                 budget: MemBudget) -> None:
        if key_size or value_size or max_entries & (max_entries - 1) or \
                max_entries % PAGE_SIZE or not max_entries:
            raise KernelError(E.EINVAL)
        super().__init__(key_size, value_size, max_entries, flags, budget, max_entries)
        self.records: deque[bytes] = deque()
        self.used = 0                  # bytes reserved or submitted, headers included
        self.produced = 0              # the producer position

    @staticmethod
    def record_size(size: int) -> int:
        return _round8(size + B.BPF_RINGBUF_HDR_SZ)

    def reserve(self, size: int) -> bytearray | None:
        need = self.record_size(size)
        if size > self.max_entries - B.BPF_RINGBUF_HDR_SZ or self.used + need > self.max_entries:
            return None
        self.used += need
        return bytearray(size)

    def commit(self, record: bytearray, keep: bool) -> None:
        need = self.record_size(len(record))
        self.produced += need
        if keep:
            self.records.append(bytes(record))
        else:
            self.used -= need         # a discarded record is skipped by the consumer

    def query(self, what: int) -> int:
        return {B.BPF_RB_AVAIL_DATA: self.used, B.BPF_RB_RING_SIZE: self.max_entries,
                B.BPF_RB_CONS_POS: 0, B.BPF_RB_PROD_POS: self.produced}.get(what, 0)


MAP_TYPES: dict[int, type[Map]] = {m.map_type: m for m in (ArrayMap, HashMap, RingBufMap)}


def create(map_type: int, key_size: int, value_size: int, max_entries: int, flags: int,
           budget: MemBudget) -> Map:
    """map_create's checks, then the type's own (EINVAL for a type this
    kernel lacks, as for one not built in)."""
    cls = MAP_TYPES.get(map_type)
    if cls is None or flags & ~(_CREATE_FLAGS | cls.extra_flags):
        raise KernelError(E.EINVAL)
    if flags & B.BPF_F_RDONLY and flags & B.BPF_F_WRONLY:
        raise KernelError(E.EINVAL)
    return cls(key_size, value_size, max_entries, flags, budget)


class MapFile(File):
    """The fd bpf(BPF_MAP_CREATE) returns: anon_inode:bpf-map."""
    kind = "bpf-map"

    def __init__(self, bpf_map: Map, flags: int) -> None:
        super().__init__(None, anon_inode(), flags)
        self.map = bpf_map

    def fdinfo(self) -> bytes:
        """bpf_map_show_fdinfo (the kernel's %#x shows 0 as 0x0)."""
        m = self.map
        memlock = (m.footprint + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE
        return (f"map_type:\t{m.map_type}\nkey_size:\t{m.key_size}\nvalue_size:\t{m.value_size}\n"
                f"max_entries:\t{m.max_entries}\nmap_flags:\t{m.flags:#x}\nmap_extra:\t0x0\n"
                f"memlock:\t{memlock}\nmap_id:\t{m.id}\nfrozen:\t0\n").encode()
