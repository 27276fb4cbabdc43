"""The key retention service in a checkpoint (kernel/keys.py): every key
the kernel holds, under its serial, and the keyring slots of the
processes and threads.

Saved (the manifest's `keys`): the /proc/sys/kernel/keys limits and
gc_delay, the serial of the user keyring register (.user_reg, which
holds the user and user-session keyrings), and each key: its type,
description, owner (uid, gid: null for the user keyrings' invalid gid),
permission mask, payload (a user or logon key's bytes; a keyring's
links, by serial, in the order KEYCTL_READ gives them), the bytes its
owner's quota was charged for the payload (a keyring keeps the 4 bytes of
a link the collector reaped, as Linux's does), the error of a negative
key, the expiry (realtime seconds, as Linux keeps it), whether it is
revoked, invalidated, a user keyring, or restricted.  A process's
`keyrings` (`process`, `session`: serials, 0 for none, and
`reqkey_default`) and a task's `thread_keyring` name them.

What holds a key is counted again at the restore: links, the register,
the slots.  A checkpoint refuses a key held by anything else (none is,
between two syscalls), and a restore a key nothing holds (Linux would
have freed it), a link to no key, a cycle of keyrings, a keyring's name
beginning with '.' other than the register's, and anything add_key,
KEYCTL_SETPERM or the types' checks would refuse.  The quotas are
computed again from the keys.
"""
from __future__ import annotations

from collections import Counter

from umlpy.abi import errno as E
from umlpy.checkpoint import image
from umlpy.kernel import keys as K
from umlpy.kernel.errors import KernelError

U32 = 1 << 32
DESC_MAX = 4096                     # KEY_MAX_DESC_SIZE
RESTART_ERRNOS = (512, 513, 514, 516)
REQKEY_DEFAULTS = (K.DEFL_DEFAULT, K.DEFL_THREAD, K.DEFL_PROCESS, K.DEFL_SESSION, K.DEFL_USER,
                   K.DEFL_USER_SESSION, K.DEFL_REQUESTOR)
_FLAGS = ("revoked", "invalidated", "uid_keyring", "restricted")
_LIMITS = {"maxkeys": 1, "maxbytes": 1, "root_maxkeys": 1, "root_maxbytes": 1, "gc_delay": 0}


def _serial(key) -> int:
    return 0 if key is None else key.serial


def _holders(k) -> Counter:
    """How many holds each key (by id) has that an image carries: links
    from live keyrings, the register (the service's own), and the
    processes' and threads' slots, zombies' too (they keep their
    credentials until they are reaped)."""
    n: Counter = Counter({id(k.keys.register): 1})
    for key in k.keys.keys.values():
        for sub in (key.links or {}).values():
            n[id(sub)] += 1
    for p in k.procs.by_pid.values():
        for key in (p.keyrings.process, p.keyrings.session, *(t.thread_keyring for t in p.threads)):
            if key is not None:
                n[id(key)] += 1
    return n


def unsaved(k) -> str | None:
    """Why the keys cannot be saved (a key held by something the image
    does not carry), or None."""
    n = _holders(k)
    for key in k.keys.keys.values():
        if n[id(key)] != key.usage:
            return f"key {key.serial} held by something a checkpoint does not carry"
    return None


def save(k) -> dict:
    svc = k.keys
    return {**{name: getattr(svc, name) for name in _LIMITS}, "register": svc.register.serial,
            "keys": [{"serial": key.serial, "type": key.type.name.decode(), "desc": key.desc.hex(),
                      "uid": key.uid, "gid": key.gid, "perm": key.perm, "datalen": key.datalen,
                      "data": None if key.data is None else key.data.hex(),
                      "links": None if key.links is None else [sub.serial for sub in key.links.values()],
                      "error": key.error, "expiry": key.expiry, **{f: getattr(key, f) for f in _FLAGS}}
                     for _s, key in sorted(svc.keys.items())]}


def save_process(p) -> dict:
    kc = p.keyrings
    return {"process": _serial(kc.process), "session": _serial(kc.session), "reqkey_default": kc.reqkey_default}


def save_task(t) -> int:
    return _serial(t.thread_keyring)


# -- restoring ------------------------------------------------------------------------
def _key(svc: K.KeyService, e: image.Reader) -> K.Key:
    """One key, checked as the calls that make and change one check it."""
    ktype = K.TYPES.get(e.str("type").encode())
    if ktype is None:
        raise image.ImageError(f"manifest: {e.where}.type: not a key type of this kernel")
    desc = e.hex("desc", DESC_MAX - 1)
    try:
        if not desc or b"\0" in desc:
            raise KernelError(E.EINVAL)
        ktype.vet(desc)
    except KernelError:
        raise image.ImageError(f"manifest: {e.where}.desc: not a description of a {ktype.name.decode()} key") \
            from None
    gid = None if e.doc.get("gid", 0) is None else e.int("gid", 0, U32)
    key = K.Key(ktype, desc, e.int("uid", 0, U32), gid, e.int("perm", 0, U32), svc.users.get(0))
    if key.perm & ~K.PERM_MASK:
        raise image.ImageError(f"manifest: {e.where}.perm: bits KEYCTL_SETPERM refuses")
    key.serial = e.int("serial", 3, 1 << 31)
    key.revoked, key.invalidated, key.uid_keyring, key.restricted = (e.bool(f) for f in _FLAGS)
    key.error = e.int("error", 0, 4096)
    key.expiry = None if e.doc.get("expiry", 0) is None else e.int("expiry", 0, 1 << 63)
    key.datalen = e.int("datalen", 0, 1 << 31)
    key.data = None if e.doc.get("data", "") is None else e.hex("data", K.USER_PAYLOAD_MAX)
    bad = None
    if key.error in RESTART_ERRNOS:
        bad = "error: not an error a key is rejected with"
    elif ktype is K.KEYRING:
        if key.data is not None or key.error or key.datalen % K.LINK_BYTES:
            bad = "not a keyring's payload"
    elif key.links is not None or e.doc.get("links", 0) is not None:
        bad = "links of a key that is no keyring"
    elif key.revoked or key.error:
        if key.data is not None or key.datalen:
            bad = "a payload of a revoked or negative key"
    elif not key.data or key.datalen != len(key.data):
        bad = "a payload that is not its size"
    if key.uid_keyring and (ktype is not K.KEYRING or gid is not None
                            or desc not in (b"_uid.%d" % key.uid, b"_uid_ses.%d" % key.uid)):
        bad = "a user keyring that is not one"
    if bad is not None:
        raise image.ImageError(f"manifest: {e.where}: {bad}")
    key.quotalen = len(desc) + 1 + key.datalen
    key.usage = 0
    return key


def make(k, r: image.Reader) -> dict[int, K.Key]:
    """The saved keys in place of the boot's (serials, links, quotas);
    returns them by serial for the processes' slots (take), counted by
    finish."""
    svc = k.keys
    ks = r.sub("keys")
    limits = {name: ks.int(name, lo, 1 << 31) for name, lo in _LIMITS.items()}
    svc.users = {0: K.KeyUser(0)}
    made: dict[int, K.Key] = {}
    entries = ks.list("keys")
    for e in entries:
        key = _key(svc, e)
        if key.serial in made:
            raise image.ImageError(f"manifest: {e.where}.serial: {key.serial} twice")
        key.user = svc.users.setdefault(key.uid, K.KeyUser(key.uid))
        key.user.nkeys += 1
        key.user.nbytes += key.quotalen
        made[key.serial] = key
    for e in entries:
        key = made[e.int("serial", 3, 1 << 31)]
        if key.links is None:
            continue
        for serial in e.ints("links", 3, 1 << 31):
            sub = made.get(serial)
            if sub is None or sub.index in key.links:
                raise image.ImageError(f"manifest: {e.where}.links: {serial} is no key, or a second of its kind")
            key.links[sub.index] = sub
            sub.usage += 1
        if key.revoked and key.links or key.datalen < K.LINK_BYTES * len(key.links):
            raise image.ImageError(f"manifest: {e.where}.links: more than the keyring was charged for")
    _acyclic(made)
    register = made.get(ks.int("register", 3, 1 << 31))
    if register is None or register.type is not K.KEYRING or register.desc != b".user_reg" or register.uid:
        raise image.ImageError(f"manifest: {ks.where}.register: not the user keyring register")
    register.usage += 1
    for key in made.values():
        if key.type is K.KEYRING and key.desc.startswith(b".") and key is not register:
            raise image.ImageError(f"manifest: {ks.where}: key {key.serial}: a keyring named as the kernel's")
    svc.keys, svc.register = made, register
    for name, v in limits.items():
        setattr(svc, name, v)
    svc.gc_delay_changed()          # the collector looks at the expiries afresh
    return made


def _acyclic(made: dict[int, K.Key]) -> None:
    """No keyring reaches itself (key_link refuses the link that would
    close a cycle: EDEADLK)."""
    done: set[int] = set()
    for root in made.values():
        if id(root) in done:
            continue
        stack, on_path = [(root, iter((root.links or {}).values()))], {id(root)}
        while stack:
            key, it = stack[-1]
            sub = next(it, None)
            if sub is None:
                stack.pop()
                on_path.discard(id(key))
                done.add(id(key))
            elif id(sub) in on_path:
                raise image.ImageError(f"manifest: keys: keyring {sub.serial} links to itself")
            elif id(sub) not in done:
                on_path.add(id(sub))
                stack.append((sub, iter((sub.links or {}).values())))


def take(keys: dict[int, K.Key], e: image.Reader, key_name: str) -> K.Key | None:
    """The keyring a slot names (0: none), held once more."""
    serial = e.int(key_name, 0, 1 << 31)
    if not serial:
        return None
    key = keys.get(serial)
    if key is None or key.type is not K.KEYRING:
        raise image.ImageError(f"manifest: {e.where}.{key_name}: {serial} is no keyring")
    key.usage += 1
    return key


def restore_process(proc, e: image.Reader, keys: dict[int, K.Key]) -> None:
    kr = e.sub("keyrings")
    proc.keyrings = K.KeyCred(take(keys, kr, "process"), take(keys, kr, "session"),
                              kr.int("reqkey_default", 0, 8))
    if proc.keyrings.reqkey_default not in REQKEY_DEFAULTS:
        raise image.ImageError(f"manifest: {kr.where}.reqkey_default: not a KEY_REQKEY_DEFL_ value")


def finish(keys: dict[int, K.Key]) -> None:
    """Every key is held by something (a link, the register, a slot)."""
    for key in keys.values():
        if not key.usage:
            raise image.ImageError(f"manifest: keys: key {key.serial} is held by nothing")
