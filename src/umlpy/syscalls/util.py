"""Argument helpers shared by the syscall families."""
from __future__ import annotations

import struct

from arch_um.memory import TASK_SIZE, GuestFault
from arch_um.memory import user_range_ok as access_ok   # Linux's name for it
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.kernel.uaccess import COPY_CHUNK, UserBuf

PATH_MAX = C.PATH_MAX
MAX_RW_COUNT = 0x7FFFF000       # INT_MAX & PAGE_MASK: the most one read or write moves
UIO_MAXIOV = 1024
TASK_SIZE_MAX = TASK_SIZE      # user addresses end here


def s32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def s64(x: int) -> int:
    return x - (1 << 64) if x >= (1 << 63) else x


def u32(x: int) -> int:
    return x & 0xFFFFFFFF


def read_cstr(t, addr: int, limit: int = PATH_MAX) -> bytes:
    """strncpy_from_user's string: EFAULT at a bad byte before the NUL,
    ENAMETOOLONG when the first limit bytes hold no NUL."""
    if not addr:
        raise KernelError(E.EFAULT)
    try:
        out = t.mem.read_cstr(addr, limit)
    except GuestFault:
        raise KernelError(E.EFAULT) from None
    if out is None:
        raise KernelError(E.ENAMETOOLONG)
    return out


def read_path(t, addr: int) -> bytes:
    return read_cstr(t, addr, PATH_MAX)


def put_u32(t, addr: int, v: int) -> None:
    if addr:
        t.mem.write(addr, struct.pack("<I", v & 0xFFFFFFFF))


def put_i32(t, addr: int, v: int) -> None:
    if addr:
        t.mem.write(addr, struct.pack("<i", v))


def put_u64(t, addr: int, v: int) -> None:
    if addr:
        t.mem.write(addr, struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF))


def get_u64(t, addr: int) -> int:
    return struct.unpack("<Q", t.mem.read(addr, 8))[0]


def read_iovecs(t, iov: int, cnt: int, local: bool = True) -> list[tuple[int, int]]:
    """An iovec array, as Linux's import_iovec: at most UIO_MAXIOV entries
    (the count is an unsigned int), then the array copied in, where a length
    that is negative as an ssize_t is EINVAL at once (copy_iovec_from_user,
    so before any bad buffer is seen); then every buffer must be a user
    range (EFAULT); the total is cut down to MAX_RW_COUNT.  The buffers of
    another address space (local False: process_vm_*'s remote ones) are
    taken as they are (iovec_from_user only)."""
    cnt = u32(cnt)
    if cnt > UIO_MAXIOV:
        raise KernelError(E.EINVAL)
    if not cnt:
        return []
    if not access_ok(iov, 16 * cnt):
        raise KernelError(E.EFAULT)
    raw = t.mem.read_prefix(iov, 16 * cnt)
    vecs = list(struct.iter_unpack("<QQ", raw[:len(raw) & ~15]))
    if any(n >> 63 for _, n in vecs):
        raise KernelError(E.EINVAL)
    if len(vecs) < cnt:
        raise KernelError(E.EFAULT)
    if not local:
        return vecs
    out, total = [], 0
    for base, n in vecs:
        if not access_ok(base, n):
            raise KernelError(E.EFAULT)
        n = min(n, MAX_RW_COUNT - total)
        out.append((base, n))
        total += n
    return out


def scatter(t, vecs: list[tuple[int, int]], data: bytes) -> int:
    """Write data across the iovec buffers, in order; the bytes written."""
    off = 0
    for base, n in vecs:
        if off >= len(data):
            break
        piece = data[off:off + n]
        t.mem.write(base, piece)
        off += len(piece)
    return off


def gather(t, vecs: list[tuple[int, int]]) -> bytes:
    if len(vecs) == 1:          # send, write: one buffer, no join
        base, n = vecs[0]
        return t.mem.read(base, n) if n else b""
    return b"".join(t.mem.read(base, n) for base, n in vecs if n)


def user_data(t, vecs: list[tuple[int, int]]) -> bytes | UserBuf:
    """What a write or a send takes from the guest: bytes, or a UserBuf
    read as the sink takes it when more than COPY_CHUNK."""
    if (vecs[0][1] if len(vecs) == 1 else sum(n for _, n in vecs)) <= COPY_CHUNK:
        return gather(t, vecs)
    return UserBuf(t, vecs)


def install_pair(t, a, b, cloexec: bool, addr: int) -> int:
    """pipe(2) and socketpair(2): two new fds stored at addr as int[2]; if
    either install or the store fails, neither fd is left behind."""
    fdt = t.files
    try:
        fa = fdt.install(a, cloexec)
    except KernelError:
        b.put_unused()      # a went with the failed install
        raise
    try:
        fb = fdt.install(b, cloexec)
    except KernelError:
        fdt.close(fa)
        raise
    try:
        t.mem.write(addr, struct.pack("<ii", fa, fb))
    except GuestFault:
        fdt.close(fa)
        fdt.close(fb)
        raise
    return 0


def result_or_errno(attempt) -> int:
    """attempt()'s result, or -errno for a KernelError (EFAULT for a bad
    guest address met on the way, as in the syscall): what an operation
    done on a task's behalf outside its syscall posts (io_uring's CQE,
    an AIO io_event)."""
    try:
        return attempt()
    except KernelError as e:
        return -e.errno
    except GuestFault:
        return -E.EFAULT
