"""Credentials and capabilities: the rules of Linux's security/commoncap.c.

Privilege is a capability in the effective set, never `euid == 0`.  Root
holds every capability because exec and the set*id calls keep the sets in
step with the uids (the "root is all-powerful" legacy, without file
capabilities); a root process that dropped some is root without them, and a
non-root one can hold some (ambient capabilities, PR_SET_KEEPCAPS).

Changes are made on a copy and committed, as prepare_creds/commit_creds:
the rules compare the old and new sets.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import userns
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.kernel.task import Creds, Process, Task

PRCTL_OPTIONS = (K.PR_CAPBSET_READ, K.PR_CAPBSET_DROP, K.PR_GET_SECUREBITS, K.PR_SET_SECUREBITS,
                 K.PR_GET_KEEPCAPS, K.PR_SET_KEEPCAPS, K.PR_CAP_AMBIENT)


NO_ID = 0xFFFFFFFF     # (uid_t)-1: "leave unchanged" where a call allows it, invalid otherwise


def id_arg(v: int) -> int:
    """A uid_t or gid_t from a guest register: its low 32 bits, as the C ABI
    passes it (every other 32-bit value is a valid id, as in Linux's
    initial user namespace)."""
    return v & 0xFFFFFFFF


def capable(creds: Creds, cap: int) -> bool:
    """Capable in the init user namespace: what every global resource
    (files, devices, mounts, hosts's network...) asks.  A task in a user
    namespace it made holds its capabilities there only, never here."""
    return creds.user_ns is None and bool(creds.cap_effective >> cap & 1)


def need(creds: Creds, cap: int, errno: int = E.EPERM) -> None:
    """Raise errno unless creds has cap in its effective set."""
    if not capable(creds, cap):
        raise KernelError(errno)


def ptrace_may_access(caller: Task, target: Process, fscreds: bool, target_task: Task | None = None) -> bool:
    """__ptrace_may_access for a task over a process (procfs, pidfd_getfd,
    process_vm_*, ...): its own thread group; or the caller's fs ids
    (FSCREDS) or real ids (REALCREDS) are every real, effective and saved
    id of a dumpable target; or the caller has CAP_SYS_PTRACE.  Then a
    landlocked caller reaches only its domain and those nested in it
    (target_task's, else the target's leader's)."""
    cp = caller.proc
    if cp is target:
        return True
    c, tc = cp.creds, target.creds
    if not capable(c, K.CAP_SYS_PTRACE):
        uid, gid = (c.fsuid, c.fsgid) if fscreds else (c.uid, c.gid)
        if {tc.uid, tc.euid, tc.suid} != {uid} or {tc.gid, tc.egid, tc.sgid} != {gid}:
            return False
        if target.mm is not None and target.dumpable != K.SUID_DUMP_USER:
            return False
    dom = caller.landlock
    if dom is None:
        return True
    if target_task is None:
        target_task = target.threads[0] if target.threads else None
    return dom.covers(target_task.landlock if target_task is not None else None)


def in_group(creds: Creds, gid: int) -> bool:
    """in_group_p: the fs gid or a supplementary group."""
    return gid == creds.fsgid or gid in creds.groups


def suid_dumpable(proc: Process) -> int:
    """What a process that changed its ids becomes: fs.suid_dumpable
    (Linux's set_dumpable(mm, suid_dumpable))."""
    k = proc.threads[0].kernel if proc.threads else None
    return k.tunables.suid_dumpable if k is not None else K.SUID_DUMP_DISABLE


def commit(proc: Process, new: Creds) -> None:
    """Install new creds (commit_creds).  Changing the effective or fs ids, or
    gaining permitted capabilities, makes the process undumpable and forgets
    its parent-death signal, so the parent cannot signal a privileged child;
    thread keyrings follow the fs ids."""
    from umlpy.kernel import keys      # it uses these rules itself
    old = proc.creds
    if (old.euid, old.egid, old.fsuid, old.fsgid) != (new.euid, new.egid, new.fsuid, new.fsgid) \
            or _caps_gained(old, new):
        proc.dumpable = suid_dumpable(proc)
        proc.pdeath_signal = 0
    keys.fsid_changed(proc, old, new)
    held = proc.sig_held if old.uid != new.uid else 0
    proc.charge_sigpending(-held)       # RLIMIT_SIGPENDING's count follows the real uid
    proc.creds = new
    proc.charge_sigpending(held)


def _caps_gained(old: Creds, new: Creds) -> bool:
    """!cred_cap_issubset: new holds capabilities old did not; those in a
    user namespace below old's, made by old's euid, do not count (entering
    a new user namespace keeps the process dumpable)."""
    if new.user_ns is old.user_ns:
        return bool(new.cap_permitted & ~old.cap_permitted)
    ns = new.user_ns
    while ns is not None:
        parent = ns.parent if userns.level(ns.parent) else None
        if parent is old.user_ns and ns.owner_uid == old.euid:
            return False
        ns = parent
    return True


def ns_root(creds: Creds) -> int | None:
    """make_kuid(user_ns, 0): the kernel id that counts as root for the
    capability rules of a task in creds' user namespace (its uid 0 there,
    not the machine's: none if the namespace does not map 0)."""
    return userns.to_kernel(creds.user_ns, "uid_map", 0)


def fix_setuid(new: Creds, old: Creds) -> None:
    """Capabilities follow a change of real/effective/saved uid (cap_emulate_setxuid):
    leaving root (its user namespace's) altogether drops them (permitted kept
    with PR_SET_KEEPCAPS), euid leaving root clears the effective set and
    euid becoming root refills it."""
    if old.securebits & K.SECBIT_NO_SETUID_FIXUP:
        return
    root = ns_root(old)
    if root in (old.uid, old.euid, old.suid) and root not in (new.uid, new.euid, new.suid):
        if not old.securebits & K.SECBIT_KEEP_CAPS:
            new.cap_permitted = new.cap_effective = 0
        new.cap_ambient = 0     # setresuid to non-root then exec must drop everything
    if old.euid == root and new.euid != root:
        new.cap_effective = 0
    if old.euid != root and new.euid == root:
        new.cap_effective = new.cap_permitted


def fix_setfsuid(new: Creds, old: Creds) -> None:
    """The file-system capabilities follow fsuid leaving or returning to
    root (its user namespace's)."""
    if old.securebits & K.SECBIT_NO_SETUID_FIXUP:
        return
    root = ns_root(old)
    if old.fsuid == root and new.fsuid != root:
        new.cap_effective &= ~K.CAP_FS_MASK
    elif old.fsuid != root and new.fsuid == root:
        new.cap_effective |= new.cap_permitted & K.CAP_FS_MASK


def access_creds(creds: Creds) -> Creds:
    """What access(2) checks with (access_override_creds): the real ids, and
    the permitted capabilities only if the real uid is root (its user
    namespace's)."""
    c = creds.copy()
    c.fsuid, c.fsgid = c.uid, c.gid
    if not c.securebits & K.SECBIT_NO_SETUID_FIXUP:
        c.cap_effective = c.cap_permitted if c.uid == ns_root(c) else 0
    return c


def capset(proc: Process, effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) on oneself (cap_capset): no new permitted capabilities, no
    inheritable ones beyond what was permitted (without CAP_SETPCAP) or bounded."""
    old = proc.creds
    if not capable(old, K.CAP_SETPCAP) and inheritable & ~(old.cap_inheritable | old.cap_permitted):
        raise KernelError(E.EPERM)
    if inheritable & ~(old.cap_inheritable | old.cap_bset) or permitted & ~old.cap_permitted \
            or effective & ~permitted:
        raise KernelError(E.EPERM)
    new = old.copy()
    new.cap_effective, new.cap_permitted, new.cap_inheritable = effective, permitted, inheritable
    new.cap_ambient &= permitted & inheritable
    commit(proc, new)


def _valid_cap(cap: int) -> int:
    if cap > K.CAP_LAST_CAP:
        raise KernelError(E.EINVAL)
    return 1 << cap


def task_prctl(proc: Process, option: int, a2: int, a3: int, a4: int, a5: int) -> int:
    """The capability options of prctl(2) (cap_task_prctl): bounding set,
    securebits, keep-caps and the ambient set."""
    old = proc.creds
    new = old.copy()
    if option == K.PR_CAPBSET_READ:
        return int(bool(old.cap_bset & _valid_cap(a2)))
    if option == K.PR_GET_SECUREBITS:
        return old.securebits
    if option == K.PR_GET_KEEPCAPS:
        return int(bool(old.securebits & K.SECBIT_KEEP_CAPS))
    if option == K.PR_CAPBSET_DROP:
        need(old, K.CAP_SETPCAP)
        new.cap_bset &= ~_valid_cap(a2)
    elif option == K.PR_SET_SECUREBITS:
        bits = old.securebits
        if ((bits & K.SECURE_ALL_LOCKS) >> 1) & (bits ^ a2) or bits & K.SECURE_ALL_LOCKS & ~a2 \
                or a2 & ~(K.SECURE_ALL_LOCKS | K.SECURE_ALL_BITS) or not capable(old, K.CAP_SETPCAP):
            raise KernelError(E.EPERM)     # locked bits stay, locks stay, and it takes CAP_SETPCAP
        new.securebits = a2
    elif option == K.PR_SET_KEEPCAPS:
        if a2 > 1:
            raise KernelError(E.EINVAL)
        if old.securebits & K.SECBIT_KEEP_CAPS_LOCKED:
            raise KernelError(E.EPERM)
        new.securebits = old.securebits & ~K.SECBIT_KEEP_CAPS | (K.SECBIT_KEEP_CAPS if a2 else 0)
    elif a2 == K.PR_CAP_AMBIENT_CLEAR_ALL:
        if a3 | a4 | a5:
            raise KernelError(E.EINVAL)
        new.cap_ambient = 0
    else:
        if a4 | a5:
            raise KernelError(E.EINVAL)
        bit = _valid_cap(a3)
        if a2 == K.PR_CAP_AMBIENT_IS_SET:
            return int(bool(old.cap_ambient & bit))
        if a2 == K.PR_CAP_AMBIENT_RAISE:
            if not old.cap_permitted & old.cap_inheritable & bit \
                    or old.securebits & K.SECBIT_NO_CAP_AMBIENT_RAISE:
                raise KernelError(E.EPERM)
            new.cap_ambient |= bit
        elif a2 == K.PR_CAP_AMBIENT_LOWER:
            new.cap_ambient &= ~bit
        else:
            raise KernelError(E.EINVAL)
    commit(proc, new)
    return 0


def setid_bits(mode: int) -> int:
    """The set-ID bits of a file's mode that make an exec set-ID:
    S_ISUID, and S_ISGID only with group execute (without it, S_ISGID
    marks mandatory locking)."""
    return mode & C.S_ISUID | (mode & C.S_ISGID if mode & C.S_IXGRP else 0)


def exec_setid_bits(proc: Process, inode, nosuid: bool) -> int:
    """bprm_fill_uid's first checks: the set-ID bits an exec of inode by
    proc honours (none on a nosuid mount or under no_new_privs)."""
    return 0 if nosuid or proc.no_new_privs else setid_bits(inode.mode)


def exec_creds(proc: Process, inode, nosuid: bool, readable: bool, tracer: Process | None = None) -> bool:
    """Commit the credentials a program runs with (bprm_fill_uid and
    cap_bprm_creds_from_file, without file capabilities); answers whether
    the exec is secure (AT_SECURE: the C library then ignores LD_* and friends).

    A set-user-ID (set-group-ID) file runs with its owner's (group's) id
    unless the mount is nosuid or the process has no_new_privs.  With uid or
    euid 0 the permitted set is the bounding and inheritable sets, effective
    too for euid 0; otherwise only ambient capabilities survive.
    readable: the caller may read the file (else the process is not dumpable).
    tracer: the guest process ptracing it: unless that one has CAP_SYS_PTRACE
    the exec gains nothing (LSM_UNSAFE_PTRACE), so that a tracer cannot
    drive a set-user-ID program; the ids stay too without CAP_SETUID.
    """
    old = proc.creds
    new = old.copy()
    honoured = exec_setid_bits(proc, inode, nosuid)
    if honoured & C.S_ISUID:
        new.euid = inode.uid
    if honoured & C.S_ISGID:
        new.egid = inode.gid
    root = ns_root(old)
    legacy_root = not old.securebits & K.SECBIT_NOROOT and root is not None
    new.cap_permitted = old.cap_bset | old.cap_inheritable if legacy_root and root in (new.uid, new.euid) else 0
    effective = legacy_root and new.euid == root
    setid = new.euid != old.uid or new.egid != old.gid
    unsafe_ptrace = tracer is not None and not capable(tracer.creds, K.CAP_SYS_PTRACE)
    if (proc.no_new_privs or unsafe_ptrace) and (setid or new.cap_permitted & ~old.cap_permitted):
        if proc.no_new_privs or not capable(old, K.CAP_SETUID):
            new.euid, new.egid = new.uid, new.gid     # no more than it had, and maybe less
        new.cap_permitted &= old.cap_permitted
    new.suid = new.fsuid = new.euid
    new.sgid = new.fsgid = new.egid
    if setid:
        new.cap_ambient = 0
    new.cap_permitted |= new.cap_ambient
    new.cap_effective = new.cap_permitted if effective else new.cap_ambient
    new.securebits &= ~K.SECBIT_KEEP_CAPS
    secure = setid or (new.uid != root and (effective or bool(new.cap_permitted & ~new.cap_ambient)))
    # dumpability goes by the caller's ids, as Linux's (commit below may clear it again)
    proc.dumpable = K.SUID_DUMP_USER if readable and old.euid == old.uid and old.egid == old.gid \
        else suid_dumpable(proc)
    if secure:
        proc.pdeath_signal = 0
    commit(proc, new)
    return secure
