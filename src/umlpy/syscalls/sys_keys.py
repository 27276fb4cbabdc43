"""add_key(2), request_key(2), keyctl(2): the key retention service's
syscalls (kernel/keys.py keeps the keys), argument for argument as Linux's
security/keys/keyctl.c copies and checks them."""
from __future__ import annotations

from typing import Callable

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import keys as K
from umlpy.kernel import printk
from umlpy.kernel.cred import NO_ID
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.table import PARTIAL, SUPPORTED, syscall
from umlpy.syscalls.util import MAX_RW_COUNT, access_ok, read_cstr, read_iovecs, s32, u32
from umlpy.vfs import namei

KEY_MAX_DESC_SIZE = 4096
PAGE_SIZE = 4096
PAYLOAD_MAX = (1 << 20) - 1         # add_key's and instantiation's limit
UPDATE_MAX = PAGE_SIZE              # KEYCTL_UPDATE's
MAX_ERRNO = 4095
RESTART_ERRNOS = (512, 513, 514, 516)   # ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK
REQUEST_KEY = b"/sbin/request-key"
# bits of KEYCTL_CAPABILITIES: capabilities, invalidate, restrict_keyring,
# move; namespaced keyring names and key tags.  No persistent keyrings,
# Diffie-Hellman, public keys, big_key or notifications.
CAPABILITIES = bytes([0x01 | 0x20 | 0x40 | 0x80, 0x01 | 0x02])

(GET_KEYRING_ID, JOIN_SESSION_KEYRING, UPDATE, REVOKE, CHOWN, SETPERM, DESCRIBE, CLEAR, LINK,
 UNLINK, SEARCH, READ, INSTANTIATE, NEGATE, SET_REQKEY_KEYRING, SET_TIMEOUT, ASSUME_AUTHORITY,
 GET_SECURITY, SESSION_TO_PARENT, REJECT, INSTANTIATE_IOV, INVALIDATE, GET_PERSISTENT, DH_COMPUTE,
 PKEY_QUERY, PKEY_ENCRYPT, PKEY_DECRYPT, PKEY_SIGN, PKEY_VERIFY, RESTRICT_KEYRING, MOVE,
 CAPABILITIES_OP, WATCH_KEY) = range(33)
# what a kernel without these options answers (CONFIG_PERSISTENT_KEYRINGS,
# CONFIG_KEY_DH_OPERATIONS, CONFIG_ASYMMETRIC_KEY_TYPE, CONFIG_KEY_NOTIFICATIONS)
NOT_CONFIGURED = {GET_PERSISTENT: "persistent keyrings", DH_COMPUTE: "Diffie-Hellman",
                  PKEY_ENCRYPT: "public-key operations", PKEY_DECRYPT: "public-key operations",
                  PKEY_SIGN: "public-key operations", PKEY_VERIFY: "public-key operations",
                  PKEY_QUERY: "public-key operations", WATCH_KEY: "key notifications"}

_logged: set[str] = set()


def _log_once(what: str) -> None:
    if what not in _logged:
        _logged.add(what)
        printk.pr_notice(what)


def _string(t, addr: int, limit: int) -> bytes:
    """strndup_user: a NUL-terminated string shorter than `limit` (EINVAL
    if longer, EFAULT if unreadable)."""
    try:
        return read_cstr(t, addr, limit)
    except KernelError as e:
        raise KernelError(E.EINVAL if e.errno == E.ENAMETOOLONG else e.errno) from None


def _type(t, addr: int) -> bytes:
    """key_get_type_from_user: 1 to 31 bytes, not beginning with '.' (the
    kernel's internal types)."""
    name = _string(t, addr, 32)
    if not name:
        raise KernelError(E.EINVAL)
    if name.startswith(b"."):
        raise KernelError(E.EPERM)
    return name


def _upcall(t) -> int:
    """How running /sbin/request-key ends, as call_sbin_request_key sees it:
    its absence fails the exec (ENOENT, as Linux's usermode helper); umlpy
    runs no usermode helper, so a present one is as one that did not
    instantiate the key (ENOKEY)."""
    init = t.kernel.procs.by_pid.get(1)
    try:
        namei.lookup(init.leader if init is not None and init.threads else t, C.AT_FDCWD, REQUEST_KEY)
    except KernelError as e:
        return e.errno
    _log_once("request_key: /sbin/request-key is not run (no usermode helpers): ENOKEY")
    return E.ENOKEY


def _service(t) -> K.KeyService:
    svc = t.kernel.keys
    svc.gc()
    return svc


@syscall("add_key", status=SUPPORTED, note="key types keyring, user, logon")
def sys_add_key(t, utype, udesc, upayload, plen, ringid, *_):
    if plen > PAYLOAD_MAX:
        raise KernelError(E.EINVAL)
    tname = _type(t, utype)
    desc = _string(t, udesc, KEY_MAX_DESC_SIZE) or None if udesc else None
    if desc is not None and desc.startswith(b".") and tname.startswith(b"keyring"):
        raise KernelError(E.EPERM)
    data = t.mem.read(upayload, plen) if plen else None
    svc = _service(t)
    keyring, possessed = svc.lookup(t, s32(ringid), create=True, need=K.WRITE)
    ktype = K.TYPES.get(tname)
    if ktype is None:
        raise KernelError(E.ENODEV)
    return svc.add(t, keyring, possessed, ktype, desc, data).serial


@syscall("request_key", status=PARTIAL,
         note="no /sbin/request-key upcall: a key to construct is made negative (ENOENT without the helper)")
def sys_request_key(t, utype, udesc, ucallout, destringid, *_):
    tname = _type(t, utype)
    desc = _string(t, udesc, KEY_MAX_DESC_SIZE)
    if ucallout:
        _string(t, ucallout, PAGE_SIZE)
    svc = _service(t)
    dest = svc.lookup(t, s32(destringid), create=True, need=K.WRITE)[0] if s32(destringid) else None
    ktype = K.TYPES.get(tname)
    if ktype is None:
        raise KernelError(E.ENOKEY)
    return svc.request(t, ktype, desc, bool(ucallout), dest, lambda: _upcall(t)).serial


# -- keyctl -------------------------------------------------------------------
Op = Callable[..., int]
_OPS: dict[int, Op] = {}


def _op(option: int) -> Callable[[Op], Op]:
    def register(fn: Op) -> Op:
        _OPS[option] = fn
        return fn
    return register


@syscall("keyctl", status=PARTIAL,
         note="no instantiation authority (no upcall), persistent keyrings, DH, public-key ops or "
              "notifications: EPERM / EOPNOTSUPP")
def sys_keyctl(t, option, a2, a3, a4, a5, *_):
    option = s32(option)
    if option == PKEY_QUERY and a3:
        raise KernelError(E.EINVAL)
    op = _OPS.get(option)
    if op is None:
        if option in NOT_CONFIGURED:
            _log_once(f"keyctl: {NOT_CONFIGURED[option]} not configured: EOPNOTSUPP")
        raise KernelError(E.EOPNOTSUPP)
    return op(t, _service(t), a2, a3, a4, a5)


@_op(GET_KEYRING_ID)
def _get_keyring_id(t, svc, a2, a3, a4, a5) -> int:
    return svc.lookup(t, s32(a2), create=bool(s32(a3)), need=K.SEARCH)[0].serial


@_op(JOIN_SESSION_KEYRING)
def _join(t, svc, a2, a3, a4, a5) -> int:
    name = _string(t, a2, KEY_MAX_DESC_SIZE) if a2 else None
    if name is not None and name.startswith(b"."):
        raise KernelError(E.EPERM)
    return svc.join_session(t, name)


@_op(UPDATE)
def _update(t, svc, a2, a3, a4, a5) -> int:
    if a4 > UPDATE_MAX:
        raise KernelError(E.EINVAL)
    data = t.mem.read(a3, a4) if a4 else None
    key, possessed = svc.lookup(t, s32(a2), need=K.WRITE)
    svc.update(key, possessed, t.proc.creds, data)
    return 0


@_op(REVOKE)
def _revoke(t, svc, a2, a3, a4, a5) -> int:
    try:
        key, _ = svc.lookup(t, s32(a2), need=K.WRITE)
    except KernelError as e:
        if e.errno != E.EACCES:
            raise
        key, _ = svc.lookup(t, s32(a2), need=K.SETATTR)
    svc.revoke(key)
    return 0


@_op(CHOWN)
def _chown(t, svc, a2, a3, a4, a5) -> int:
    uid, gid = u32(a3), u32(a4)
    if uid == NO_ID and gid == NO_ID:
        return 0
    key, _ = svc.lookup(t, s32(a2), create=True, partial=True, need=K.SETATTR)
    svc.chown(t, key, None if uid == NO_ID else uid, None if gid == NO_ID else gid)
    return 0


@_op(SETPERM)
def _setperm(t, svc, a2, a3, a4, a5) -> int:
    perm = u32(a3)
    if perm & ~K.PERM_MASK:
        raise KernelError(E.EINVAL)
    key, _ = svc.lookup(t, s32(a2), create=True, partial=True, need=K.SETATTR)
    svc.setperm(t, key, perm)
    return 0


@_op(DESCRIBE)
def _describe(t, svc, a2, a3, a4, a5) -> int:
    key, _ = svc.lookup(t, s32(a2), partial=True, need=K.VIEW)
    info = svc.describe(key) + b"\0"
    if a3 and u32(a4) >= len(info):       # all or nothing
        t.mem.write(a3, info)
    return len(info)


@_op(CLEAR)
def _clear(t, svc, a2, a3, a4, a5) -> int:
    svc.clear(svc.lookup(t, s32(a2), create=True, need=K.WRITE)[0])
    return 0


@_op(LINK)
def _link(t, svc, a2, a3, a4, a5) -> int:
    keyring, _ = svc.lookup(t, s32(a3), create=True, need=K.WRITE)
    key, _ = svc.lookup(t, s32(a2), create=True, need=K.LINK)
    svc.link(keyring, key)
    return 0


@_op(UNLINK)
def _unlink(t, svc, a2, a3, a4, a5) -> int:
    keyring, _ = svc.lookup(t, s32(a3), need=K.WRITE)
    key, _ = svc.lookup(t, s32(a2), partial=True, need=K.UNLINK)
    svc.unlink(keyring, key)
    return 0


@_op(SEARCH)
def _search(t, svc, a2, a3, a4, a5) -> int:
    tname = _type(t, a3)
    desc = _string(t, a4, KEY_MAX_DESC_SIZE)
    keyring, possessed = svc.lookup(t, s32(a2), need=K.SEARCH)
    dest = svc.lookup(t, s32(a5), create=True, need=K.WRITE)[0] if s32(a5) else None
    ktype = K.TYPES.get(tname)
    if ktype is None:
        raise KernelError(E.ENOKEY)
    return svc.search(t, keyring, possessed, ktype, desc, dest).serial


@_op(READ)
def _read(t, svc, a2, a3, a4, a5) -> int:
    """keyctl_read_key: the whole payload's length; the payload is copied
    only if it fits (a smaller buffer is left alone), and a keyring's list
    only into a buffer of whole serials."""
    try:
        key, possessed = svc.lookup(t, s32(a2), need=K.DEFER)
    except KernelError:
        raise KernelError(E.ENOKEY) from None
    data = svc.read(t, key, possessed)
    if a3 and a4:
        if key.type is K.KEYRING and a4 <= PAGE_SIZE and a4 % 4:
            raise KernelError(E.EINVAL)
        if len(data) <= a4:
            t.mem.write(a3, data)
    return len(data)


@_op(INSTANTIATE)
def _instantiate(t, svc, a2, a3, a4, a5) -> int:
    """What instantiation checks before it finds it has no authority: the
    payload's range (no payload is an empty one), then its size."""
    plen = min(a4, MAX_RW_COUNT) if a3 and a4 else 0
    if plen and not access_ok(a3, plen):
        raise KernelError(E.EFAULT)
    if plen > PAYLOAD_MAX:
        raise KernelError(E.EINVAL)
    raise KernelError(E.EPERM)      # no authorisation key assumed


@_op(INSTANTIATE_IOV)
def _instantiate_iov(t, svc, a2, a3, a4, a5) -> int:
    vecs = read_iovecs(t, a3, u32(a4) if a3 else 0)
    if sum(n for _, n in vecs) > PAYLOAD_MAX:
        raise KernelError(E.EINVAL)
    raise KernelError(E.EPERM)


@_op(NEGATE)
def _negate(t, svc, a2, a3, a4, a5) -> int:
    raise KernelError(E.EPERM)


@_op(REJECT)
def _reject(t, svc, a2, a3, a4, a5) -> int:
    error = u32(a4)
    if not 0 < error < MAX_ERRNO or error in RESTART_ERRNOS:
        raise KernelError(E.EINVAL)
    raise KernelError(E.EPERM)


@_op(SET_REQKEY_KEYRING)
def _set_reqkey(t, svc, a2, a3, a4, a5) -> int:
    return svc.set_reqkey_default(t, s32(a2))


@_op(SET_TIMEOUT)
def _set_timeout(t, svc, a2, a3, a4, a5) -> int:
    key, _ = svc.lookup(t, s32(a2), create=True, partial=True, need=K.SETATTR)
    svc.set_timeout(key, u32(a3))
    return 0


@_op(ASSUME_AUTHORITY)
def _assume(t, svc, a2, a3, a4, a5) -> int:
    serial = s32(a2)
    if serial < 0:
        raise KernelError(E.EINVAL)
    if serial == 0:
        return 0                    # divest: there is no authority to give up
    raise KernelError(svc.authkey_error(t))


@_op(GET_SECURITY)
def _get_security(t, svc, a2, a3, a4, a5) -> int:
    """No LSM: an empty label, as its NUL alone."""
    try:
        svc.lookup(t, s32(a2), partial=True, need=K.VIEW)
    except KernelError as e:
        if e.errno != E.EACCES:
            raise
        raise KernelError(svc.authkey_error(t)) from None
    if a3 and a4:
        t.mem.write(a3, b"\0")
    return 1


@_op(SESSION_TO_PARENT)
def _session_to_parent(t, svc, a2, a3, a4, a5) -> int:
    svc.session_to_parent(t)
    return 0


@_op(INVALIDATE)
def _invalidate(t, svc, a2, a3, a4, a5) -> int:
    svc.invalidate(svc.lookup(t, s32(a2), need=K.SEARCH)[0])
    return 0


@_op(RESTRICT_KEYRING)
def _restrict(t, svc, a2, a3, a4, a5) -> int:
    keyring, _ = svc.lookup(t, s32(a2), need=K.SETATTR)
    if bool(a3) != bool(a4):
        raise KernelError(E.EINVAL)
    tname = None
    if a3:
        tname = _type(t, a3)
        _string(t, a4, PAGE_SIZE)
    svc.restrict(keyring, tname)
    return 0


@_op(MOVE)
def _move(t, svc, a2, a3, a4, a5) -> int:
    flags = u32(a5)
    if flags & ~K.MOVE_EXCL:
        raise KernelError(E.EINVAL)
    key, _ = svc.lookup(t, s32(a2), create=True, need=K.LINK)
    src, _ = svc.lookup(t, s32(a3), need=K.WRITE)
    dst, _ = svc.lookup(t, s32(a4), create=True, need=K.WRITE)
    svc.move(key, src, dst, flags)
    return 0


@_op(CAPABILITIES_OP)
def _capabilities(t, svc, a2, a3, a4, a5) -> int:
    """The capability bytes, as many as fit, the rest of the buffer zeroed."""
    if a3:
        n = min(a3, len(CAPABILITIES))
        t.mem.write(a2, CAPABILITIES[:n])
        if a3 > n and not access_ok(a2 + n, a3 - n):
            raise KernelError(E.EFAULT)
        off = n
        while off < a3:
            chunk = min(a3 - off, 1 << 16)
            t.mem.write(a2 + off, bytes(chunk))
            off += chunk
    return len(CAPABILITIES)
