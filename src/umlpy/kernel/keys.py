"""The key retention service, as Linux's security/keys.

A key has a type, a description, an owner, a group and a permission mask of
four bytes (possessor, user, group, other); a keyring is a key whose payload
is a set of links, at most one per (type, description).  A key lives while
something holds it: a link from a keyring, or a credential slot (the
thread, process and session keyrings of a task).  The last put frees it and
gives its quota back at once, where Linux's RCU and garbage collector do it
a moment later in the background (a program can only race with them).
Dead links (to keys expired or revoked gc_delay seconds ago, or
invalidated) are reaped lazily, before the next operation that could see
them.

Quotas are key.c's: a key costs its description + 1 plus its payload, and
every link 4 bytes charged to the keyring's owner; root has limits of its
own.  Serials are random positive 31-bit numbers, as Linux's.  Root's
limits can be raised and root can own keys as any number of uids, so
every key is also kernel memory charged to the machine's RAM
(kernel/mm.Charge): struct key and its quota bytes, ENOMEM past it, as
key_alloc's allocations fail.

The user and user-session keyrings of a uid are found by name in the
.user_reg keyring, as Linux 6.1's user namespace keeps them; root's exist
from boot.  No request-key upcall is made: a key request_key(2) must
construct is negatively instantiated, as when /sbin/request-key fails, and
no authorisation key ever exists (so instantiation fails with EPERM).

Processes keep their keyring slots in a KeyCred (Linux keeps them in struct
cred, per thread); the thread keyring is the task's own.
"""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_SYS_ADMIN
from umlpy.kernel import timekeeping
from umlpy.kernel.cred import capable, in_group
from umlpy.kernel.errors import KernelError
from umlpy.kernel.mm import Charge, MemBudget
from umlpy.kernel.task import Creds, KeyCred

# permission masks: possessor, user, group, other
POS_VIEW, POS_READ, POS_WRITE, POS_SEARCH, POS_LINK, POS_SETATTR, POS_ALL = (
    0x01000000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x3F000000)
USR_VIEW, USR_READ, USR_LINK, USR_ALL = 0x00010000, 0x00020000, 0x00100000, 0x003F0000
GRP_ALL, OTH_ALL = 0x00003F00, 0x0000003F
PERM_MASK = POS_ALL | USR_ALL | GRP_ALL | OTH_ALL

# what an operation needs of a key (the "other" bits), and two special needs
VIEW, READ, WRITE, SEARCH, LINK, SETATTR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
UNLINK = 0x100      # KEY_NEED_UNLINK: neither state nor permission matters
DEFER = 0x200       # KEY_DEFER_PERM_CHECK: the caller checks state and permission

# the special keyring ids (KEY_SPEC_*; -6, the group keyring, Linux never had)
SPEC_THREAD, SPEC_PROCESS, SPEC_SESSION, SPEC_USER, SPEC_USER_SESSION = -1, -2, -3, -4, -5
SPEC_REQKEY_AUTH, SPEC_REQUESTOR = -7, -8

# request_key's default destination (KEY_REQKEY_DEFL_*; 6, the group keyring, is refused)
DEFL_NO_CHANGE, DEFL_DEFAULT, DEFL_THREAD, DEFL_PROCESS, DEFL_SESSION = -1, 0, 1, 2, 3
DEFL_USER, DEFL_USER_SESSION, DEFL_REQUESTOR = 4, 5, 7

MOVE_EXCL = 1                   # KEYCTL_MOVE_EXCL
LINK_BYTES = 4                  # KEYQUOTA_LINK_BYTES
SEARCH_MAX_DEPTH = 6            # KEYRING_SEARCH_MAX_DEPTH
NEGATIVE_TIMEOUT = 60           # seconds a key request_key failed to construct stays negative
USER_PAYLOAD_MAX = 32767
OVERFLOW_ID = 65534             # how an invalid gid shows (from_kgid_munged)
KEY_OBJ = 256                   # what the key_jar slab takes for a struct key


class KeyType:
    """What a type does with payloads (struct key_type): "user" is the
    model, the others differ in a method or two."""
    name = b"user"
    readable = True             # has ->read
    updatable = True            # has ->update

    def vet(self, desc: bytes) -> None:
        """->vet_description: nothing to check."""

    def preparse(self, data: bytes | None) -> int:
        """The payload's quota (->preparse): 1 to 32767 bytes."""
        if not data or len(data) > USER_PAYLOAD_MAX:
            raise KernelError(E.EINVAL)
        return len(data)

    def describe(self, key: Key) -> bytes:
        return key.desc + (b": %d" % key.datalen if not key.error else b"")

    def read(self, key: Key) -> bytes:
        return key.data or b""


class LogonType(KeyType):
    """A user key that cannot be read back, its description "service:name"."""
    name = b"logon"
    readable = False

    def vet(self, desc: bytes) -> None:
        if desc.find(b":") <= 0:
            raise KernelError(E.EINVAL)


class KeyringType(KeyType):
    name = b"keyring"
    updatable = False

    def preparse(self, data: bytes | None) -> int:
        if data:
            raise KernelError(E.EINVAL)
        return 0

    def describe(self, key: Key) -> bytes:
        n = len(key.links) if key.links is not None else 0
        return key.desc + (b": %d" % n if n else b": empty")

    def read(self, key: Key) -> bytes:
        return b"".join(struct.pack("<i", k.serial) for k in (key.links or {}).values())


USER, LOGON, KEYRING = KeyType(), LogonType(), KeyringType()
TYPES = {ty.name: ty for ty in (KEYRING, USER, LOGON)}     # no big_key, asymmetric, ...


class KeyUser:
    """A uid's quota record (struct key_user); every key here is in quota,
    so one count serves for nkeys, nikeys and qnkeys."""
    __slots__ = ("uid", "nkeys", "nbytes")

    def __init__(self, uid: int) -> None:
        self.uid = uid
        self.nkeys = 0
        self.nbytes = 0


class Key:
    __slots__ = ("serial", "type", "desc", "uid", "gid", "perm", "user", "quotalen", "datalen",
                 "data", "links", "error", "expiry", "revoked", "invalidated", "uid_keyring",
                 "restricted", "usage")

    def __init__(self, ktype: KeyType, desc: bytes, uid: int, gid: int | None, perm: int,
                 user: KeyUser) -> None:
        self.type = ktype
        self.desc = desc
        self.uid = uid
        self.gid = gid                  # None: INVALID_GID (the user keyrings')
        self.perm = perm
        self.user = user
        self.quotalen = len(desc) + 1
        self.datalen = 0
        self.data: bytes | None = None
        self.links: dict[tuple[KeyType, bytes], Key] | None = {} if ktype is KEYRING else None
        self.error = 0                  # an errno: negatively instantiated
        self.expiry: int | None = None  # realtime seconds
        self.revoked = False
        self.invalidated = False
        self.uid_keyring = False        # a user or user-session keyring
        self.restricted = False         # KEYCTL_RESTRICT_KEYRING without a type: links refused
        self.usage = 1
        self.serial = 0

    @property
    def index(self) -> tuple[KeyType, bytes]:
        return (self.type, self.desc)


def _now() -> int:
    return timekeeping.realtime_ns() // 10**9


def permitted(key: Key, possessed: bool, creds, need: int) -> bool:
    """key_task_permission: the user byte for the owner, the group byte for
    a member of its group, the other byte otherwise; a possessor also has the
    possessor byte."""
    perm = key.perm
    if key.uid == creds.fsuid:
        kperm = perm >> 16
    elif key.gid is not None and perm & GRP_ALL and in_group(creds, key.gid):
        kperm = perm >> 8
    else:
        kperm = perm
    if possessed:
        kperm |= perm >> 24
    return kperm & need == need


def validate(key: Key, now: int) -> int:
    """key_validate: the errno a key no longer usable gives, or 0."""
    if key.invalidated:
        return E.ENOKEY
    if key.revoked:
        return E.EKEYREVOKED
    if key.expiry is not None and now >= key.expiry:
        return E.EKEYEXPIRED
    return 0


def _id(v: int | None) -> int:
    """An id as "%d" shows it (munged: an invalid one is the overflow id)."""
    v = OVERFLOW_ID if v is None else v
    return v - (1 << 32) if v >= 1 << 31 else v


class _Search:
    """One search of a keyring tree (keyring_search_context): keys of a
    type and description, or one particular key; the result is the key found
    or the errno of the last near miss (EAGAIN: nothing at all)."""

    def __init__(self, creds, ktype: KeyType | None, desc: bytes, target: Key | None = None,
                 state_check: bool = True, skip_expired: bool = False, recurse: bool = True,
                 check_perm: bool = True, too_deep: bool = False) -> None:
        self.creds = creds
        self.index = (ktype, desc)
        self.target = target
        self.state_check = state_check
        self.skip_expired = skip_expired
        self.recurse = recurse
        self.check_perm = check_perm
        self.too_deep = too_deep        # KEYRING_SEARCH_DETECT_TOO_DEEP: ELOOP, not a silent skip
        self.now = _now()
        self.possessed = True
        self.result: Key | int = E.EAGAIN
        self.aborted = False

    def visit(self, key: Key, skipped: int) -> int:
        """keyring_search_iterator: 1 found, 0 not this one, `skipped` when
        a matching key is unusable (its errno becomes the result)."""
        if key.type is not self.index[0]:
            return 0
        if self.state_check:
            if key.invalidated or key.revoked:
                self.result = E.EKEYREVOKED
                return skipped
            if key.expiry is not None and self.now >= key.expiry:
                if not self.skip_expired:
                    self.result = E.EKEYEXPIRED
                return skipped
        if self.target is not None and key is not self.target:
            return 0
        if self.check_perm and not permitted(key, self.possessed, self.creds, SEARCH):
            self.result = E.EACCES
            return skipped
        if self.state_check and key.error:
            self.result = key.error
            return skipped
        self.result = key
        return 1

    def run(self, keyring: Key) -> bool:
        """search_nested_keyrings: the keyring itself, its own links, then
        the keyrings it links to (searchable ones, up to the depth limit)."""
        if keyring.index == self.index:
            r = self.visit(keyring, 2)
            if r:
                return r == 1
        return self._descend(keyring, 0)

    def _descend(self, keyring: Key, depth: int) -> bool:
        if keyring.revoked or keyring.invalidated:
            return False
        links = keyring.links or {}
        k = links.get(self.index)
        if k is not None and self.visit(k, 0):
            return True
        if not self.recurse:
            return False
        for sub in list(links.values()):
            if sub.type is not KEYRING:
                continue
            if depth >= SEARCH_MAX_DEPTH:
                if self.too_deep:
                    self.result = E.ELOOP
                    self.aborted = True
                return False
            if self.check_perm and not permitted(sub, self.possessed, self.creds, SEARCH):
                continue
            if self._descend(sub, depth + 1) or self.aborted:
                return not self.aborted
        return False


class KeyService:
    """The kernel's keys: the serial tree, the quota records, the limits of
    /proc/sys/kernel/keys and the user keyring register."""

    def __init__(self, budget: MemBudget) -> None:
        self.kmem = Charge(budget, self)
        self.keys: dict[int, Key] = {}
        self.users: dict[int, KeyUser] = {0: KeyUser(0)}
        self.maxkeys, self.maxbytes = 200, 20000
        self.root_maxkeys, self.root_maxbytes = 1000000, 25000000
        self.gc_delay = 300
        self._gc_at: float = float("inf")
        self.register = self._alloc(KEYRING, b".user_reg", 0, None,
                                    POS_WRITE | POS_SEARCH | USR_VIEW | USR_READ)
        self.user_keyrings(Creds())     # init_root_keyring: root's exist from boot

    # -- quota and lifetime ---------------------------------------------------
    def limits(self, uid: int) -> tuple[int, int]:
        return (self.root_maxkeys, self.root_maxbytes) if uid == 0 else (self.maxkeys, self.maxbytes)

    def _user(self, uid: int) -> KeyUser:
        u = self.users.get(uid)
        if u is None:
            u = self.users[uid] = KeyUser(uid)
        return u

    def _drop_user(self, u: KeyUser) -> None:
        if not u.nkeys and u.uid != 0:
            self.users.pop(u.uid, None)

    def _alloc(self, ktype: KeyType, desc: bytes, uid: int, gid: int | None, perm: int,
               overrun: bool = False) -> Key:
        """key_alloc: a new instantiated key, its owner charged one key and
        len(desc) + 1 bytes (refused past the limits unless `overrun`)."""
        if not desc:
            raise KernelError(E.EINVAL)
        ktype.vet(desc)
        u = self._user(uid)
        maxkeys, maxbytes = self.limits(uid)
        if not overrun and (u.nkeys + 1 > maxkeys or u.nbytes + len(desc) + 1 > maxbytes):
            self._drop_user(u)
            raise KernelError(E.EDQUOT)
        try:
            self.kmem.add(KEY_OBJ + len(desc) + 1)
        except KernelError:
            self._drop_user(u)
            raise
        key = Key(ktype, desc, uid, gid, perm, u)
        u.nkeys += 1
        u.nbytes += key.quotalen
        key.serial = self._serial()
        self.keys[key.serial] = key
        return key

    def _serial(self) -> int:
        """key_alloc_serial: random, at least 3; taken ones step to the next free."""
        s = 0
        while s < 3:
            s = int.from_bytes(clock.random_bytes(4), "little") >> 1
        while s in self.keys:
            s = s + 1 if s < 0x7FFFFFFF else 3
        return s

    def reserve(self, key: Key, datalen: int) -> None:
        """key_payload_reserve: the owner pays for the payload growing."""
        delta = datalen - key.datalen
        u = key.user
        if delta > 0 and u.nbytes + delta > self.limits(u.uid)[1]:
            raise KernelError(E.EDQUOT)
        if delta > 0:
            self.kmem.add(delta)
        else:
            self.kmem.sub(-delta)
        u.nbytes += delta
        key.quotalen += delta
        key.datalen = datalen

    @staticmethod
    def get(key: Key) -> Key:
        key.usage += 1
        return key

    def put(self, key: Key | None) -> None:
        """The last holder gone, the key is freed: serial, quota, links."""
        if key is None:
            return
        key.usage -= 1
        if key.usage:
            return
        self.keys.pop(key.serial, None)
        u = key.user
        u.nkeys -= 1
        u.nbytes -= key.quotalen
        self.kmem.sub(KEY_OBJ + key.quotalen)
        self._drop_user(u)
        links, key.links = key.links, None
        for k in (links or {}).values():
            self.put(k)

    def _instantiate(self, key: Key, data: bytes | None) -> Key:
        """generic_key_instantiate with the payload preparse accepted."""
        quota = key.type.preparse(data)
        try:
            self.reserve(key, quota)
        except KernelError:
            self.put(key)
            raise
        key.data = data if key.links is None else None
        return key

    def set_expiry(self, key: Key, expiry: int | None) -> None:
        key.expiry = expiry
        if expiry is not None:
            self._gc_at = min(self._gc_at, expiry + self.gc_delay)

    def gc_delay_changed(self) -> None:
        self._gc_at = 0

    def gc(self) -> None:
        """Reap the links to dead keys, as key_garbage_collector: expired
        gc_delay seconds ago, or invalidated.  As Linux's keyring_gc, the
        keyring keeps the link bytes it was charged."""
        now = _now()
        if now < self._gc_at:
            return
        limit = now - self.gc_delay
        for keyring in list(self.keys.values()):
            if not keyring.usage or not keyring.links or keyring.revoked or keyring.invalidated:
                continue
            for idx, k in list(keyring.links.items()):
                if k.invalidated or (k.expiry is not None and k.expiry <= limit):
                    del keyring.links[idx]
                    self.put(k)
        pending = [k.expiry + self.gc_delay for k in self.keys.values()
                   if k.expiry is not None and k.expiry > limit]
        self._gc_at = min(pending, default=float("inf"))

    # -- links ----------------------------------------------------------------
    def _link_begin(self, keyring: Key, index: tuple) -> bool:
        """__key_link_begin: a new link is paid for (a replaced one is not);
        answers whether one is replaced."""
        if keyring.revoked:
            raise KernelError(E.EKEYREVOKED)
        assert keyring.links is not None
        replacing = index in keyring.links
        if not replacing:
            self.reserve(keyring, keyring.datalen + LINK_BYTES)
        return replacing

    def _link_abort(self, keyring: Key, replacing: bool) -> None:
        if not replacing:
            self.reserve(keyring, keyring.datalen - LINK_BYTES)

    def _link_set(self, keyring: Key, key: Key) -> None:
        assert keyring.links is not None
        old = keyring.links.get(key.index)
        keyring.links[key.index] = self.get(key)
        self.put(old)

    def _link_checks(self, keyring: Key, key: Key) -> None:
        """The restriction, and no cycle: the keyring must not be reachable
        from the key (EDEADLK), nor the key's tree too deep (ELOOP)."""
        if keyring.restricted:
            raise KernelError(E.EPERM)
        if key.type is KEYRING:
            s = _Search(None, KEYRING, keyring.desc, target=keyring, state_check=False,
                        check_perm=False, too_deep=True)
            if s.run(key) and not s.aborted:
                raise KernelError(E.EDEADLK)
            if s.aborted:
                raise KernelError(E.ELOOP)

    def link(self, keyring: Key, key: Key) -> None:
        """key_link: keyring -> key, replacing a link of the same index."""
        if keyring.type is not KEYRING:
            raise KernelError(E.ENOTDIR)
        replacing = self._link_begin(keyring, key.index)
        try:
            self._link_checks(keyring, key)
        except KernelError:
            self._link_abort(keyring, replacing)
            raise
        self._link_set(keyring, key)

    def unlink(self, keyring: Key, key: Key) -> None:
        """key_unlink: the link of the key's index goes (as Linux's
        assoc_array_delete, whichever key of that type and description it is)."""
        if keyring.type is not KEYRING:
            raise KernelError(E.ENOTDIR)
        assert keyring.links is not None
        old = keyring.links.pop(key.index, None)
        if old is None:
            raise KernelError(E.ENOENT)
        self.reserve(keyring, keyring.datalen - LINK_BYTES)
        self.put(old)

    def move(self, key: Key, src: Key, dst: Key, flags: int) -> None:
        """key_move: a link from src becomes one from dst."""
        if src is dst:
            return
        if src.type is not KEYRING or dst.type is not KEYRING:
            raise KernelError(E.ENOTDIR)
        assert src.links is not None
        if key.index not in src.links:
            raise KernelError(E.ENOENT)
        replacing = self._link_begin(dst, key.index)
        try:
            if replacing and flags & MOVE_EXCL:
                raise KernelError(E.EEXIST)
            self._link_checks(dst, key)
        except KernelError:
            self._link_abort(dst, replacing)
            raise
        self.get(key)
        self.unlink(src, key)
        self._link_set(dst, key)
        self.put(key)

    def clear(self, keyring: Key) -> None:
        if keyring.type is not KEYRING:
            raise KernelError(E.ENOTDIR)
        self._drop_links(keyring)

    def _drop_links(self, keyring: Key) -> None:
        links, keyring.links = keyring.links or {}, {}
        self.reserve(keyring, 0)
        for k in links.values():
            self.put(k)

    # -- state ----------------------------------------------------------------
    def revoke(self, key: Key) -> None:
        """key_revoke: the payload goes (a keyring's links, a user key's
        data) and with it its quota; the key expires now at the latest
        (Linux's revoked_at shares the expiry's place), so the collector
        reaps it gc_delay later."""
        if key.revoked:
            return
        key.revoked = True
        if key.type is KEYRING:
            self._drop_links(key)
        else:
            self.reserve(key, 0)
            key.data = None
        now = _now()
        if key.expiry is None or key.expiry > now:
            self.set_expiry(key, now)

    def invalidate(self, key: Key) -> None:
        key.invalidated = True
        self._gc_at = 0

    def negate(self, key: Key, timeout: int, error: int) -> None:
        """A negative key: found, it fails with `error` until it expires."""
        key.error = error
        self.set_expiry(key, _now() + timeout)

    def update(self, key: Key, possessed: bool, creds, data: bytes | None) -> None:
        """key_update: a new payload (a negative key becomes positive, a
        timeout is cleared, as user_update does)."""
        if not permitted(key, possessed, creds, WRITE):
            raise KernelError(E.EACCES)
        if not key.type.updatable:
            raise KernelError(E.EOPNOTSUPP)
        self._update(key, data)

    def _update(self, key: Key, data: bytes | None) -> None:
        self.reserve(key, key.type.preparse(data))
        key.data = data
        key.expiry = None
        key.error = 0

    # -- a task's keyrings ----------------------------------------------------
    def _new_keyring(self, desc: bytes, creds, perm: int, overrun: bool) -> Key:
        """keyring_alloc with the task's real ids as owner."""
        return self._instantiate(self._alloc(KEYRING, desc, creds.uid, creds.gid, perm, overrun), None)

    def install_thread(self, t) -> Key:
        if t.thread_keyring is None:
            t.thread_keyring = self._new_keyring(b"_tid", t.proc.creds, POS_ALL | USR_VIEW, True)
        return t.thread_keyring

    def install_process(self, t) -> Key:
        kc = t.proc.keyrings
        if kc.process is None:
            kc.process = self._new_keyring(b"_pid", t.proc.creds, POS_ALL | USR_VIEW, True)
        return kc.process

    def _install_session(self, proc, keyring: Key) -> None:
        old, proc.keyrings.session = proc.keyrings.session, keyring
        self.put(old)

    def join_session(self, t, name: bytes | None) -> int:
        """join_session_keyring: a new anonymous session keyring, or the
        named one (searchable by the caller, else made), as the session."""
        proc = t.proc
        creds = proc.creds
        if name is None:
            keyring = self._new_keyring(b"_ses", creds, POS_ALL | USR_VIEW | USR_READ,
                                        proc.keyrings.session is None)
            self._install_session(proc, keyring)
            return keyring.serial
        keyring = self._find_named(name, creds)
        if keyring is None:
            keyring = self._new_keyring(name, creds, POS_ALL | USR_VIEW | USR_READ | USR_LINK, False)
        elif keyring is proc.keyrings.session:
            return 0
        else:
            self.get(keyring)
        self._install_session(proc, keyring)
        return keyring.serial

    def _find_named(self, name: bytes, creds) -> Key | None:
        """find_keyring_by_name: a keyring of that name the caller may search
        (names beginning with '.' are never published)."""
        if name.startswith(b"."):
            return None
        for k in self.keys.values():
            if k.type is KEYRING and k.desc == name and not k.revoked \
                    and permitted(k, False, creds, SEARCH):
                return k
        return None

    def user_keyrings(self, creds) -> tuple[Key, Key]:
        """look_up_user_keyrings: _uid.UID and _uid_ses.UID of the real uid,
        from the register, made (and linked there) if missing.  Only keyrings
        made this way can be them, whatever keyrings of those names users make."""
        reg = self.register
        uid = creds.uid
        perm = (POS_ALL & ~POS_SETATTR) | USR_ALL
        found = self._register_search(creds, b"_uid.%d" % uid)
        if found is None:
            uk = self._alloc(KEYRING, b"_uid.%d" % uid, uid, None, perm)
            uk.uid_keyring = True
            self._instantiate(uk, None)
            try:
                self.link(reg, uk)
            finally:
                self.put(uk)
        else:
            uk = found
        found = self._register_search(creds, b"_uid_ses.%d" % uid)
        if found is not None:
            return uk, found
        usk = self._alloc(KEYRING, b"_uid_ses.%d" % uid, uid, None, perm)
        usk.uid_keyring = True
        self._instantiate(usk, None)
        try:
            self.link(usk, uk)
            self.link(reg, usk)
        finally:
            self.put(usk)
        return uk, usk

    def _register_search(self, creds, desc: bytes) -> Key | None:
        """A keyring of the register (possessed, as the kernel holds it)."""
        r = self.keyring_search(self.register, True, _Search(creds, KEYRING, desc, recurse=False))
        if isinstance(r, Key):
            return r
        if r != E.EAGAIN:
            raise KernelError(r)
        return None

    # -- process lifecycle hooks ----------------------------------------------
    def fork(self, parent, child) -> None:
        """A new process shares its parent's session keyring and
        request_key default; the process keyring is not inherited."""
        pk = parent.keyrings
        if pk.session is not None:
            self.get(pk.session)
        child.keyrings = KeyCred(None, pk.session, pk.reqkey_default)

    def new_thread(self, parent_task, child_task) -> None:
        """A thread of a task that has a thread keyring gets one of its own
        (copy_creds; a failure leaves it without)."""
        if parent_task.thread_keyring is not None:
            try:
                self.install_thread(child_task)
            except KernelError:
                pass

    def exec(self, t) -> None:
        """prepare_exec_creds: no thread keyring, a new (absent) process
        keyring; the session keyring stays."""
        self.drop_thread(t)
        proc = t.proc
        old, proc.keyrings.process = proc.keyrings.process, None
        self.put(old)

    def drop_thread(self, t) -> None:
        old, t.thread_keyring = t.thread_keyring, None
        self.put(old)

    def release(self, proc) -> None:
        """A reaped process's credentials go, and the keyrings they held."""
        for t in proc.threads:
            self.drop_thread(t)
        kc = proc.keyrings
        proc.keyrings = KeyCred()
        self.put(kc.process)
        self.put(kc.session)

    # -- searching ------------------------------------------------------------
    def search_cred(self, t, s: _Search) -> Key | int:
        """search_cred_keyrings_rcu: the thread, process and session keyrings
        (the user-session one if there is no session), possessed; a key, or
        ENOKEY before EAGAIN before the other errors."""
        proc = t.proc
        kc = proc.keyrings
        session = kc.session
        if session is None:         # the user-session keyring if there is one, not made
            r = self.keyring_search(self.register, True, _Search(proc.creds, KEYRING, b"_uid_ses.%d"
                                                                 % proc.creds.uid, recurse=False))
            session = r if isinstance(r, Key) else None
        ret: int | None = None
        err: int = E.EAGAIN
        for root in (t.thread_keyring, kc.process, session):
            if root is None:
                continue
            r = self.keyring_search(root, True, s)
            if isinstance(r, Key):
                return r
            if r == E.ENOKEY or (r == E.EAGAIN and ret is None):
                ret = r
            elif r != E.EAGAIN:
                err = r
        return ret if ret is not None else err

    @staticmethod
    def keyring_search(keyring: Key, possessed: bool, s: _Search) -> Key | int:
        """keyring_search_rcu: the keyring must be one, and searchable."""
        if keyring.type is not KEYRING:
            return E.ENOTDIR
        if s.check_perm and not permitted(keyring, possessed, s.creds, SEARCH):
            return E.EACCES
        s.possessed = possessed
        s.result = E.EAGAIN
        s.run(keyring)
        return s.result

    def possessed(self, t, key: Key) -> bool:
        """Whether the key can be found from the task's keyrings (searchable
        all the way, the key itself too): then the possessor bits apply."""
        s = _Search(t.proc.creds, key.type, key.desc, target=key, state_check=False)
        return isinstance(self.search_cred(t, s), Key)

    def authkey_error(self, t) -> int:
        """What looking for an instantiation authorisation key gives: none
        ever exists (no upcall makes one), so ENOKEY, or EACCES if none of
        the task's keyrings may be searched."""
        r = self.search_cred(t, _Search(t.proc.creds, None, b""))
        return E.ENOKEY if r == E.EAGAIN else r     # type: ignore[return-value]

    # -- lookup_user_key ------------------------------------------------------
    def lookup(self, t, serial: int, create: bool = False, partial: bool = False,
               need: int = VIEW) -> tuple[Key, bool]:
        """lookup_user_key: a serial or a special keyring id (made on demand
        with `create`, the session keyring always) to (key, possessed),
        checked for state (unless `partial`) and for `need`."""
        creds = t.proc.creds
        try:
            key = self._special(t, serial, create)
        except KernelError as e:
            # lookup_user_key turns failures to make the session and user
            # keyrings into ENOKEY (its error path returns the initial value)
            raise KernelError(E.ENOKEY if serial in (SPEC_SESSION, SPEC_USER, SPEC_USER_SESSION)
                              else e.errno) from None
        possessed = True
        if key is None:
            key = self.keys.get(serial)
            if key is None:
                raise KernelError(E.ENOKEY)
            possessed = self.possessed(t, key)
        if need != UNLINK:
            err = validate(key, _now()) if partial else (key.error or validate(key, _now()))
            if err and need != DEFER:
                raise KernelError(err)
        if need not in (UNLINK, DEFER) and not permitted(key, possessed, creds, need):
            raise KernelError(E.EACCES)
        return key, possessed

    def _special(self, t, serial: int, create: bool) -> Key | None:
        """The keyring a special id names (None for a serial)."""
        proc = t.proc
        kc = proc.keyrings
        if serial == SPEC_THREAD:
            if t.thread_keyring is None and not create:
                raise KernelError(E.ENOKEY)
            return self.install_thread(t)
        if serial == SPEC_PROCESS:
            if kc.process is None and not create:
                raise KernelError(E.ENOKEY)
            return self.install_process(t)
        if serial == SPEC_SESSION:
            if kc.session is None:
                _, usk = self.user_keyrings(proc.creds)
                if create:
                    self.join_session(t, None)
                else:
                    self._install_session(proc, self.get(usk))
            elif kc.session.uid_keyring and create:
                self.join_session(t, None)
            return kc.session
        if serial in (SPEC_USER, SPEC_USER_SESSION):
            return self.user_keyrings(proc.creds)[serial == SPEC_USER_SESSION]
        if serial in (SPEC_REQKEY_AUTH, SPEC_REQUESTOR):
            raise KernelError(E.ENOKEY)      # no authorisation key is ever assumed
        if serial < 1:
            raise KernelError(E.EINVAL)      # the group keyring too
        return None

    # -- the operations of the syscalls ---------------------------------------
    def add(self, t, keyring: Key, possessed: bool, ktype: KeyType, desc: bytes | None,
            data: bytes | None) -> Key:
        """key_create_or_update: update the key of that type and description
        the keyring links to (if the type can be updated), else make one."""
        if keyring.type is not KEYRING:
            raise KernelError(E.ENOTDIR)
        ktype.preparse(data)
        if desc is None:
            raise KernelError(E.EINVAL)
        creds = t.proc.creds
        index = (ktype, desc)
        replacing = self._link_begin(keyring, index)
        try:
            if keyring.restricted:
                raise KernelError(E.EPERM)
            if not permitted(keyring, possessed, creds, WRITE):
                raise KernelError(E.EACCES)
            old = keyring.links.get(index) if keyring.links is not None else None
            if ktype.updatable and old is not None and not old.revoked and not old.invalidated:
                if not permitted(old, possessed, creds, WRITE):
                    raise KernelError(E.EACCES)
                self._update(old, data)
                return old
            key = self._alloc(ktype, desc, creds.fsuid, creds.fsgid, self.default_perm(ktype))
            self._instantiate(key, data)
        except KernelError:
            self._link_abort(keyring, replacing)
            raise
        self._link_set(keyring, key)
        self.put(key)
        return key

    @staticmethod
    def default_perm(ktype: KeyType) -> int:
        perm = POS_VIEW | POS_SEARCH | POS_LINK | POS_SETATTR | USR_VIEW
        if ktype.readable:
            perm |= POS_READ
        if ktype is KEYRING or ktype.updatable:
            perm |= POS_WRITE
        return perm

    def request(self, t, ktype: KeyType, desc: bytes, callout: bool, dest: Key | None,
                upcall) -> Key:
        """request_key_and_link: a usable key of the process's keyrings
        (linked into dest if given), else one constructed by the upcall if
        there is callout information; `upcall()` gives the errno running
        /sbin/request-key ends in."""
        creds = t.proc.creds
        s = _Search(creds, ktype, desc, skip_expired=True)
        found = self.search_cred(t, s)
        if isinstance(found, Key):
            if dest is not None:
                if not permitted(found, s.possessed, creds, LINK):
                    raise KernelError(E.EACCES)
                self.link(dest, found)
            return found
        if found != E.EAGAIN:
            raise KernelError(found)
        if not callout:
            raise KernelError(E.ENOKEY)
        return self._construct(t, ktype, desc, dest, upcall)

    def _construct(self, t, ktype: KeyType, desc: bytes, dest: Key | None, upcall) -> Key:
        """construct_key_and_link without a helper that answers: the key is
        made, linked, and negated when the upcall fails."""
        if ktype is KEYRING:
            raise KernelError(E.EPERM)
        creds = t.proc.creds
        if dest is None:
            dest = self._reqkey_dest(t)
            if dest is not None and not permitted(dest, True, creds, WRITE):
                raise KernelError(E.EACCES)
        key = self._alloc(ktype, desc, creds.fsuid, creds.fsgid, self.default_perm(ktype))
        try:
            if dest is not None:
                self._link_begin(dest, key.index)
                self._link_set(dest, key)
            try:
                self.user_keyrings(creds)       # call_sbin_request_key looks them up
                err = upcall()
            except KernelError as e:
                err = e.errno
            self.negate(key, NEGATIVE_TIMEOUT, E.ENOKEY)
        finally:
            self.put(key)
        raise KernelError(err)

    def _reqkey_dest(self, t) -> Key | None:
        """construct_get_dest_keyring: the default the process set, falling
        through thread, process, session to the user-session keyring."""
        kc = t.proc.keyrings
        order = [DEFL_THREAD, DEFL_PROCESS, DEFL_SESSION, DEFL_USER_SESSION]
        d = kc.reqkey_default
        if d == DEFL_USER:
            return self.user_keyrings(t.proc.creds)[0]
        start = 0 if d in (DEFL_DEFAULT, DEFL_REQUESTOR) else order.index(d)
        for which in order[start:]:
            if which == DEFL_THREAD and t.thread_keyring is not None:
                return t.thread_keyring
            if which == DEFL_PROCESS and kc.process is not None:
                return kc.process
            if which == DEFL_SESSION and kc.session is not None:
                return kc.session
        return self.user_keyrings(t.proc.creds)[1]

    def set_reqkey_default(self, t, which: int) -> int:
        """KEYCTL_SET_REQKEY_KEYRING: the old setting."""
        kc = t.proc.keyrings
        old = kc.reqkey_default
        if which == DEFL_NO_CHANGE:
            return old
        if which == DEFL_THREAD:
            self.install_thread(t)
        elif which == DEFL_PROCESS:
            self.install_process(t)
        elif which not in (DEFL_DEFAULT, DEFL_SESSION, DEFL_USER, DEFL_USER_SESSION, DEFL_REQUESTOR):
            raise KernelError(E.EINVAL)
        kc.reqkey_default = which
        return old

    def search(self, t, keyring: Key, possessed: bool, ktype: KeyType, desc: bytes,
               dest: Key | None) -> Key:
        """keyctl_keyring_search: a usable key in the tree (ENOKEY for none),
        linked into dest if given and the key grants Link."""
        s = _Search(t.proc.creds, ktype, desc)
        r = self.keyring_search(keyring, possessed, s)
        if not isinstance(r, Key):
            raise KernelError(E.ENOKEY if r == E.EAGAIN else r)
        if dest is not None:
            if not permitted(r, possessed, t.proc.creds, LINK):
                raise KernelError(E.EACCES)
            self.link(dest, r)
        return r

    def read(self, t, key: Key, possessed: bool) -> bytes:
        """keyctl_read_key: a negative key fails with its error; without Read
        permission the key must be possessed; then the type must read and
        the key be valid."""
        if key.error:
            raise KernelError(key.error)
        if not permitted(key, possessed, t.proc.creds, READ) and not possessed:
            raise KernelError(E.EACCES)
        if not key.type.readable:
            raise KernelError(E.EOPNOTSUPP)
        err = validate(key, _now())
        if err:
            raise KernelError(err)
        return key.type.read(key)

    @staticmethod
    def describe(key: Key) -> bytes:
        return b"%s;%d;%d;%08x;%s" % (key.type.name, _id(key.uid), _id(key.gid), key.perm, key.desc)

    def chown(self, t, key: Key, uid: int | None, gid: int | None) -> None:
        """keyctl_chown_key: another uid, or a group the caller is not in,
        takes CAP_SYS_ADMIN; the new owner must have quota for the key."""
        creds = t.proc.creds
        if ((uid is not None and uid != key.uid) or
                (gid is not None and gid != key.gid and not in_group(creds, gid))) \
                and not capable(creds, CAP_SYS_ADMIN):
            raise KernelError(E.EACCES)
        if uid is not None and uid != key.uid:
            new = self._user(uid)
            maxkeys, maxbytes = self.limits(uid)
            if new.nkeys + 1 > maxkeys or new.nbytes + key.quotalen > maxbytes:
                self._drop_user(new)
                raise KernelError(E.EDQUOT)
            new.nkeys += 1
            new.nbytes += key.quotalen
            old = key.user
            old.nkeys -= 1
            old.nbytes -= key.quotalen
            self._drop_user(old)
            key.user, key.uid = new, uid
        if gid is not None:
            key.gid = gid

    def setperm(self, t, key: Key, perm: int) -> None:
        creds = t.proc.creds
        if key.uid != creds.fsuid and not capable(creds, CAP_SYS_ADMIN):
            raise KernelError(E.EACCES)
        key.perm = perm

    def set_timeout(self, key: Key, timeout: int) -> None:
        self.set_expiry(key, _now() + timeout if timeout else None)

    def restrict(self, keyring: Key, tname: bytes | None) -> None:
        """keyring_restrict: only "no more links" (a NULL type) exists;
        no type here has restrictions of its own to look up."""
        if keyring.type is not KEYRING:
            raise KernelError(E.ENOTDIR)
        if tname is not None:
            raise KernelError(E.ENOKEY if tname not in TYPES else E.ENOENT)
        if keyring.restricted:
            raise KernelError(E.EEXIST)
        keyring.restricted = True

    def session_to_parent(self, t) -> None:
        """keyctl_session_to_parent: the parent (single-threaded, not init,
        of the same ids and not set-id) takes this session keyring."""
        session, _ = self.lookup(t, SPEC_SESSION, need=LINK)
        me = t.proc
        parent = me.parent
        if parent is None or parent.pid <= 1 or len(parent.threads) != 1:
            raise KernelError(E.EPERM)
        psession = parent.keyrings.session
        if psession is session:
            return
        my, pc = me.creds, parent.creds
        if (pc.uid, pc.euid, pc.suid) != (my.euid,) * 3 or (pc.gid, pc.egid, pc.sgid) != (my.egid,) * 3:
            raise KernelError(E.EPERM)
        if (psession is not None and psession.uid != my.euid) or session.uid != my.euid:
            raise KernelError(E.EPERM)
        self._install_session(parent, self.get(session))

    # -- /proc ----------------------------------------------------------------
    def proc_keys(self, t) -> bytes:
        """/proc/keys: the keys the reader may view, by serial."""
        self.gc()
        now = _now()
        creds = t.proc.creds
        out: list[bytes] = []
        for serial in sorted(self.keys):
            key = self.keys[serial]
            possessed = bool(key.perm & POS_VIEW) and self.possessed(t, key)
            if not permitted(key, possessed, creds, VIEW):
                continue
            if key.expiry is None:
                timo = "perm"
            elif now >= key.expiry:
                timo = "expd"
            else:
                left = key.expiry - now
                timo = next(f"{left // d}{u}" for lim, d, u in
                            ((60, 1, "s"), (3600, 60, "m"), (86400, 3600, "h"),
                             (604800, 86400, "d"), (float("inf"), 604800, "w")) if left < lim)
            flags = "I" + ("R" if key.revoked else "-") + "-Q-" + ("N" if key.error else "-") + \
                ("i" if key.invalidated else "-")
            out.append(f"{serial:08x} {flags} {key.usage:5d} {timo:>4} {key.perm:08x} "
                       f"{_id(key.uid):5d} {_id(key.gid):5d} "
                       f"{key.type.name.decode():<9.9} ".encode() + key.type.describe(key) + b"\n")
        return b"".join(out)

    def proc_key_users(self) -> str:
        """/proc/key-users: per uid, its records' holders (its keys; root's
        record is pinned too), keys, instantiated keys and the quotas."""
        out = []
        for uid in sorted(self.users):
            u = self.users[uid]
            maxkeys, maxbytes = self.limits(uid)
            usage = u.nkeys + (uid == 0)
            out.append(f"{uid:5d}: {usage:5d} {u.nkeys}/{u.nkeys} {u.nkeys}/{maxkeys} "
                       f"{u.nbytes}/{maxbytes}\n")
        return "".join(out)


def fsid_changed(proc, old, new) -> None:
    """key_fsuid_changed/key_fsgid_changed: thread keyrings follow the fs ids."""
    for t in proc.threads:
        k = t.thread_keyring
        if k is None:
            continue
        if new.fsuid != old.fsuid:
            k.uid = new.fsuid
        if new.fsgid != old.fsgid:
            k.gid = new.fsgid
