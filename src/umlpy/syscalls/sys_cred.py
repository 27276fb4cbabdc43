"""Credentials: user and group ids, supplementary groups, capabilities.

The rules of who may become whom, and what capabilities a change of uid
takes along, are Linux's (kernel/sys.c, kernel/capability.c); they live in
kernel/cred.py.  Credentials are per process here: Linux's are per thread,
which only capset(2) can tell apart (glibc makes set*id process-wide).
"""
from __future__ import annotations

import struct

from umlpy.abi import capability as K
from umlpy.abi import errno as E
from umlpy.kernel import cred, userns
from umlpy.kernel.cred import NO_ID, id_arg
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import put_u32, s32, u32

NGROUPS_MAX = 65536
_CAP_HEADER = struct.Struct("<Ii")      # version, pid
_CAP_DATA = struct.Struct("<III")       # effective, permitted, inheritable: one 32-bit word of each


def _ids(c, kind: str) -> tuple[int, int, int]:
    """(real, effective, saved) ids of kind ("uid" or "gid")."""
    return getattr(c, kind), getattr(c, "e" + kind), getattr(c, "s" + kind)


def _privileged(c, kind: str) -> bool:
    """ns_capable_setid: in the caller's own user namespace (the ids it
    may name are only those its namespace maps)."""
    return userns.ns_capable(c, c.user_ns, K.CAP_SETUID if kind == "uid" else K.CAP_SETGID)


def _seen(t, kind: str, kid: int) -> int:
    """An id as the caller's user namespace shows it (overflow id if unmapped)."""
    return userns.munged(t.proc.creds.user_ns, kind + "_map", kid)


def _arg(t, kind: str, v: int) -> int:
    """An id argument as a kernel id: NO_ID stays, an unmapped one is EINVAL."""
    v = id_arg(v)
    return v if v == NO_ID else userns.need_kernel(t.proc.creds.user_ns, kind + "_map", v)


def _getres(t, kind: str, r: int, e: int, s: int) -> int:
    for addr, v in zip((r, e, s), _ids(t.proc.creds, kind)):
        t.mem.write(addr, struct.pack("<I", _seen(t, kind, v) & 0xFFFFFFFF))     # NULL is EFAULT here
    return 0


def _set_ids(t, kind: str, want: tuple[int, int, int], allowed: tuple[tuple[int, ...], ...]) -> int:
    """Set the real, effective and saved ids of kind (NO_ID keeps one); the fs
    id follows the effective one.  Without CAP_SETUID (CAP_SETGID) each id
    set must be one of its `allowed` old ones."""
    old = t.proc.creds
    if not _privileged(old, kind) and any(v != NO_ID and v not in ok for v, ok in zip(want, allowed)):
        raise KernelError(E.EPERM)
    new = old.copy()
    r, e, s = (v if v != NO_ID else o for v, o in zip(want, _ids(old, kind)))
    for prefix, v in (("", r), ("e", e), ("s", s), ("fs", e)):
        setattr(new, prefix + kind, v)
    if kind == "uid":
        cred.fix_setuid(new, old)
        if new.uid != old.uid:
            # flag_nproc_exceeded: a set*uid to a user over its RLIMIT_NPROC
            # succeeds (programs run as root seldom check it); the next
            # execve fails instead, if the user is still over it then
            t.nproc_exceeded = t.kernel.procs.over_nproc(t, new.uid)
    cred.commit(t.proc, new)
    return 0


def _setres(t, kind: str, r: int, e: int, s: int) -> int:
    cur = _ids(t.proc.creds, kind)
    return _set_ids(t, kind, (_arg(t, kind, r), _arg(t, kind, e), _arg(t, kind, s)), (cur, cur, cur))


def _setre(t, kind: str, r: int, e: int) -> int:
    """The real id may become the effective one; the saved id follows the
    effective once the real one is set or the effective one leaves it."""
    real, eff, saved = _ids(t.proc.creds, kind)
    r, e = _arg(t, kind, r), _arg(t, kind, e)
    s = NO_ID
    if r != NO_ID or (e != NO_ID and e != real):
        s = e if e != NO_ID else eff
    return _set_ids(t, kind, (r, e, s), ((real, eff), (real, eff, saved), (s,)))


def _set_one(t, kind: str, v: int) -> int:
    """With CAP_SETUID (CAP_SETGID) all three ids; otherwise only the
    effective one, back to the real or saved id."""
    if id_arg(v) == NO_ID:
        raise KernelError(E.EINVAL)
    v = _arg(t, kind, v)
    c = t.proc.creds
    real, _, saved = _ids(c, kind)
    want = (v, v, v) if _privileged(c, kind) else (NO_ID, v, NO_ID)
    return _set_ids(t, kind, want, ((), (real, saved), ()))


def _setfs(t, kind: str, v: int) -> int:
    """To any of the caller's ids (any id with CAP_SETUID/CAP_SETGID);
    answers the old fs id whether it changed or not."""
    old = t.proc.creds
    prev = getattr(old, "fs" + kind)
    try:
        v = _arg(t, kind, v)
    except KernelError:
        return _seen(t, kind, prev)     # setfsuid answers the old id, never an error
    if v not in (NO_ID, prev) and (v in _ids(old, kind) or _privileged(old, kind)):
        new = old.copy()
        setattr(new, "fs" + kind, v)
        if kind == "uid":
            cred.fix_setfsuid(new, old)
        cred.commit(t.proc, new)
    return _seen(t, kind, prev)


# each call twice over: the uid one and the gid one
for _kind in ("uid", "gid"):
    syscall("get" + _kind)(lambda t, *_, k=_kind: _seen(t, k, getattr(t.proc.creds, k)))
    syscall("gete" + _kind)(lambda t, *_, k=_kind: _seen(t, k, getattr(t.proc.creds, "e" + k)))
    syscall("getres" + _kind)(lambda t, r, e, s, *_, k=_kind: _getres(t, k, r, e, s))
    syscall("setres" + _kind)(lambda t, r, e, s, *_, k=_kind: _setres(t, k, r, e, s))
    syscall("setre" + _kind)(lambda t, r, e, *_, k=_kind: _setre(t, k, r, e))
    syscall("set" + _kind)(lambda t, v, *_, k=_kind: _set_one(t, k, v))
    syscall("setfs" + _kind)(lambda t, v, *_, k=_kind: _setfs(t, k, v))


@syscall("getgroups")
def sys_getgroups(t, size, lst, *_):
    g = tuple(_seen(t, "gid", x) for x in t.proc.creds.groups)
    size = s32(size)
    if size < 0:
        raise KernelError(E.EINVAL)
    if size == 0:
        return len(g)
    if size < len(g):
        raise KernelError(E.EINVAL)
    t.mem.write(lst, struct.pack(f"<{len(g)}I", *g))
    return len(g)


@syscall("setgroups")
def sys_setgroups(t, size, lst, *_):
    old = t.proc.creds
    cred.need(old, K.CAP_SETGID)
    size = u32(size)
    if size > NGROUPS_MAX:
        raise KernelError(E.EINVAL)
    groups = struct.unpack(f"<{size}I", t.mem.read(lst, 4 * size)) if size else ()
    if NO_ID in groups:
        raise KernelError(E.EINVAL)
    groups = tuple(_arg(t, "gid", x) for x in groups)
    new = old.copy()
    new.groups = tuple(sorted(groups))      # sorted, as Linux's (getgroups answers in that order)
    cred.commit(t.proc, new)
    return 0


# -- capabilities ---------------------------------------------------------------

def _cap_header(t, header: int) -> tuple[int | None, int]:
    """(32-bit words per set for the header's version, pid); an unknown
    version gets None, and the kernel's own version is written back."""
    version, pid = _CAP_HEADER.unpack(t.mem.read(header, _CAP_HEADER.size))
    words = K.CAPABILITY_U32S.get(version)
    if words is None:
        put_u32(t, header, K._LINUX_CAPABILITY_VERSION_3)
    return words, pid


@syscall("capget")
def sys_capget(t, header, data, *_):
    words, pid = _cap_header(t, header)
    if not data:
        return 0        # how libraries ask for the version
    if words is None or pid < 0:
        raise KernelError(E.EINVAL)
    c = t.proc.creds
    if pid not in (0, t.kernel.procs.vnr(t.proc, t.tid)):
        target = t.kernel.procs.find_task(t.proc, pid)
        if target is None:
            raise KernelError(E.ESRCH)
        c = target.proc.creds
    t.mem.write(data, b"".join(
        _CAP_DATA.pack(*(s >> 32 * i & 0xFFFFFFFF for s in (c.cap_effective, c.cap_permitted, c.cap_inheritable)))
        for i in range(words)))
    return 0


@syscall("capset", status=PARTIAL, note="on the caller only, as Linux; sets the whole process's capabilities, "
                                        "not one thread's")
def sys_capset(t, header, data, *_):
    words, pid = _cap_header(t, header)
    if words is None:
        raise KernelError(E.EINVAL)
    if pid not in (0, t.kernel.procs.vnr(t.proc, t.tid)):
        raise KernelError(E.EPERM)
    raw = t.mem.read(data, words * _CAP_DATA.size)
    sets = [0, 0, 0]
    for i in range(words):
        for j, v in enumerate(_CAP_DATA.unpack_from(raw, i * _CAP_DATA.size)):
            sets[j] |= v << 32 * i
    effective, permitted, inheritable = (s & K.CAP_FULL_SET for s in sets)
    cred.capset(t.proc, effective, permitted, inheritable)
    return 0
