"""Landlock (Linux's security/landlock, ABI 2 as in 6.1): an unprivileged
process confines itself and its future children to the file hierarchies
its rulesets name, stacking up to 16 layers.

Why it lives here and how:
- A rule ties rights to an inode (a directory's hold for everything below
  it), not to a name, so a bind mount or a rename does not lose it; the
  rule holds the inode as Linux's landlock_object does, which keeps the
  inode caches from evicting it.
- A check walks from the file up to the namespace's root, crossing mount
  points (the covered dentry itself is hidden, so skipped), and clears,
  for each right asked, the layers that a rule met on the way grants it
  to; what is left set is refused (EACCES).  Layers are bit positions in
  a mask per right (Linux's layer_masks matrix).
- A link or rename that moves a file to another directory needs REFER on
  both sides and may not give the file rights it did not have
  (`check_refer`, Linux's current_check_refer_path; EXDEV, or EACCES
  first when a creation or removal itself is refused).
- A landlocked task may not change the mount topology (EPERM) and may
  ptrace only tasks in its own domain or one nested in it.

The domain is per task, inherited by clone and kept by execve, as
Linux's credentials carry it; a ruleset is an fd until restrict_self
merges it into a new domain.  Internal files with no mount (pipes,
sockets, anonymous inodes) are never restricted."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import landlock as L
from umlpy.kernel.errors import KernelError

N = L.NUM_ACCESS_FS
_BITS = tuple(range(N))

# Every rule of a live ruleset or domain holds its inode, which the caches
# can then never evict: the kernel's memory for them is bounded as Linux's
# memcg bounds it, here by the open-file limit (the caller's bound), past
# which a new rule or domain is ENOMEM.
held = 0


def _charge(n: int, bound: int) -> None:
    global held
    if held + n > bound:
        raise KernelError(E.ENOMEM)
    held += n


def _uncharge(n: int) -> None:
    global held
    held -= n


# REFER is denied by every layer, handled or not (LANDLOCK_ACCESS_FS_INITIALLY_DENIED):
# a file moves to another directory only where a rule grants it
INITIALLY_DENIED = L.ACCESS_FS_REFER


class Ruleset:
    """A ruleset being built (landlock_create_ruleset's fd): the rights it
    handles, and per inode the rights its rules grant, made absolute (a
    right it does not handle is granted everywhere, but REFER)."""
    __slots__ = ("handled", "rules")

    def __init__(self, handled: int) -> None:
        self.handled = handled
        self.rules: dict[object, int] = {}

    def __del__(self) -> None:
        _uncharge(len(self.rules))

    def add(self, inode, access: int, bound: int) -> None:
        access |= L.MASK_ACCESS_FS & ~(self.handled | INITIALLY_DENIED)
        old = self.rules.get(inode)
        if old is None:
            _charge(1, bound)
            old = 0
        self.rules[inode] = old | access


class Domain:
    """What landlock_restrict_self enforces: the rights each layer handles
    and, per inode, (layer level from 1, rights granted) for each layer
    with a rule there.  parent is the domain this one was stacked on (the
    ptrace scope compares them)."""
    __slots__ = ("handled", "union", "rules", "parent")

    def __init__(self, handled: tuple[int, ...], rules: dict, parent: Domain | None) -> None:
        """rules are charged already (merge)."""
        self.handled = handled
        self.union = 0
        for h in handled:
            self.union |= h
        self.rules = rules
        self.parent = parent

    def __del__(self) -> None:
        _uncharge(len(self.rules))

    def covers(self, other: Domain | None) -> bool:
        """domain_scope_le: other is this domain or one stacked on it."""
        while other is not None:
            if other is self:
                return True
            other = other.parent
        return False


def merge(parent: Domain | None, rs: Ruleset, bound: int) -> Domain:
    """landlock_merge_ruleset: a new domain of parent's layers and rs as
    the top one (E2BIG past 16 layers; ENOMEM past the bound of rules)."""
    handled = (parent.handled if parent is not None else ()) + (rs.handled | INITIALLY_DENIED,)
    if len(handled) > L.MAX_NUM_LAYERS:
        raise KernelError(E.E2BIG)
    level = len(handled)
    rules = dict(parent.rules) if parent is not None else {}
    for inode, access in rs.rules.items():
        rules[inode] = rules.get(inode, ()) + ((level, access),)
    _charge(len(rules), bound)
    return Domain(handled, rules, parent)


def may_ptrace(tracer: Domain | None, tracee: Domain | None) -> bool:
    """hook_ptrace_access_check / hook_ptrace_traceme: a landlocked
    tracer reaches only its own domain and those nested in it."""
    return tracer is None or tracer.covers(tracee)


# -- layer masks ------------------------------------------------------------------

def _init_masks(dom: Domain, access: int) -> tuple[int, list[int]]:
    """landlock_init_layer_masks: per right asked, the layers that handle
    it (and so must grant it); and the rights asked that some layer handles."""
    masks = [0] * N
    asked = 0
    for i, h in enumerate(dom.handled):
        a = access & h
        if a:
            asked |= a
            bit = 1 << i
            for b in _BITS:
                if a >> b & 1:
                    masks[b] |= bit
    return asked, masks


def _unmask(rule, access: int, masks: list[int] | None) -> bool:
    """landlock_unmask_layers: the layers of rule that grant a right asked
    are cleared from its mask; whether every right asked is granted now."""
    if not access or masks is None:
        return True
    if rule is None:
        return False
    for level, granted in rule:
        keep = ~(1 << (level - 1))
        empty = True
        for b in _BITS:
            if access >> b & 1:
                if granted >> b & 1:
                    masks[b] &= keep
                if masks[b]:
                    empty = False
        if empty:
            return True
    return False


def _scope(access: int, masks: list[int] | None) -> bool:
    """scope_to_request: forget the rights not asked; whether none is left."""
    if masks is None:
        return True
    for b in _BITS:
        if not access >> b & 1:
            masks[b] = 0
    return not any(masks)


def _no_more_access(p1: list[int], c1: list[int] | None, c1_dir: bool,
                    p2: list[int], c2: list[int] | None, c2_dir: bool) -> bool:
    """no_more_access: the destination restricts at least what the source
    did (both ways for an exchange); a right that only directories have
    counts only when a directory moves."""
    for b in _BITS:
        file_right = bool(L.ACCESS_FILE >> b & 1)
        if c1 is not None and (c1_dir or file_right):
            if (p1[b] & c1[b]) | p2[b] != p2[b]:
                return False
        if c2 is not None and (c2_dir or file_right):
            if (p2[b] & c2[b]) | p1[b] != p1[b]:
                return False
    return True


def _is_eacces(masks: list[int], access: int) -> bool:
    """A right other than REFER is refused: the action itself is denied."""
    check = access & ~L.ACCESS_FS_REFER
    return any(masks[b] for b in _BITS if check >> b & 1)


# -- walks ------------------------------------------------------------------------

def _internal(d) -> bool:
    """is_nouser_or_private: a file of no mount (a pipe, a socket, an
    anonymous inode) is never restricted."""
    return d is None or d.mount is None


def _up(d):
    """The next dentry of a walk to the root, or None at the namespace's
    root or a detached tree's: a mount root gives way to the dentry it
    covers, which is skipped (its rules are hidden under the mount)."""
    while d.parent is None:
        m = d.mount
        if m is None or m.mountpoint is None or not m.attached:
            return None
        d = m.mountpoint
    return d.parent


def _child_masks(dom: Domain, child) -> tuple[list[int] | None, bool]:
    if child is None:
        return None, True
    asked, masks = _init_masks(dom, L.MASK_ACCESS_FS)
    _unmask(dom.rules.get(child.inode), asked, masks)
    return masks, child.inode.is_dir


def _paths_allowed(dom: Domain, start, access1: int, masks1: list[int], child1=None,
                   access2: int = 0, masks2: list[int] | None = None, child2=None) -> bool:
    """is_access_to_paths_allowed: one request (access1 at start), or a
    link or rename's two (source and destination masks collected up to
    their common mount, whose root is start), which may go on only while
    the destination restricts at least what the source did."""
    if not access1 and not access2:
        return True
    if _internal(start):
        return True
    allowed1 = not any(masks1)
    if masks2 is not None:
        allowed2 = not any(masks2)
        wanted1 = wanted2 = dom.union
        dom_check = True
    else:
        allowed2 = True
        wanted1, wanted2 = access1, 0
        dom_check = False
    c1, c1_dir = _child_masks(dom, child1)
    c2, c2_dir = _child_masks(dom, child2)
    d = start
    while d is not None:
        if dom_check and _no_more_access(masks1, c1, c1_dir, masks2, c2, c2_dir):
            dom_check = False
            wanted1, wanted2 = access1, access2
            allowed1 = allowed1 or _scope(wanted1, masks1)
            allowed2 = allowed2 or _scope(wanted2, masks2)
            if allowed1 and allowed2:
                break
        rule = dom.rules.get(d.inode)
        allowed1 = allowed1 or _unmask(rule, wanted1, masks1)
        allowed2 = allowed2 or _unmask(rule, wanted2, masks2)
        if allowed1 and allowed2:
            break
        d = _up(d)
    return allowed1 and allowed2


def _collect(dom: Domain, mnt_root, d, masks: list[int]) -> bool:
    """collect_domain_accesses: every handled right's layers, cleared by
    the rules from d up to its mount's root; whether all were granted."""
    if _internal(d):
        return True
    asked, fresh = _init_masks(dom, L.MASK_ACCESS_FS)
    masks[:] = fresh
    while True:
        if _unmask(dom.rules.get(d.inode), asked, masks):
            return True
        if d is mnt_root or d.parent is None:
            return False
        d = d.parent


# -- hooks ------------------------------------------------------------------------

def check_path(t, d, access: int) -> None:
    """current_check_access_path: EACCES unless every layer grants access
    at d or above it."""
    dom = t.landlock
    if dom is None:
        return
    asked, masks = _init_masks(dom, access)
    if not _paths_allowed(dom, d, asked, masks):
        raise KernelError(E.EACCES)


def open_access(flags: int, is_dir: bool) -> int:
    """get_required_file_open_access: read (a directory's listing) and
    write as the open's mode has them; O_ACCMODE 3 asks for neither."""
    acc = flags & C.O_ACCMODE
    if acc == C.O_ACCMODE:
        return 0
    if is_dir:
        return L.ACCESS_FS_READ_DIR if acc == C.O_RDONLY else 0
    return (L.ACCESS_FS_READ_FILE if acc in (C.O_RDONLY, C.O_RDWR) else 0) \
        | (L.ACCESS_FS_WRITE_FILE if acc in (C.O_WRONLY, C.O_RDWR) else 0)


def check_open(t, d, flags: int) -> None:
    """hook_file_open for an open (not O_PATH)."""
    if t.landlock is not None:
        check_path(t, d, open_access(flags, d.inode.is_dir))


def check_exec(t, d) -> None:
    """hook_file_open for an execve's open of a program or its interpreter
    (FMODE_READ with __FMODE_EXEC)."""
    if t.landlock is not None:
        check_path(t, d, L.ACCESS_FS_READ_FILE | L.ACCESS_FS_EXECUTE)


def make_access(mode: int) -> int:
    """get_mode_access: the MAKE_* right for a new inode of this type (a
    zero or unknown type is a regular file)."""
    return _MAKE.get(mode & C.S_IFMT, L.ACCESS_FS_MAKE_REG)


_MAKE = {C.S_IFLNK: L.ACCESS_FS_MAKE_SYM, C.S_IFDIR: L.ACCESS_FS_MAKE_DIR, C.S_IFCHR: L.ACCESS_FS_MAKE_CHAR,
         C.S_IFBLK: L.ACCESS_FS_MAKE_BLOCK, C.S_IFIFO: L.ACCESS_FS_MAKE_FIFO, C.S_IFSOCK: L.ACCESS_FS_MAKE_SOCK}


def check_make(t, parent, mode: int) -> None:
    """hook_path_mknod/mkdir/symlink: a new name in parent."""
    if t.landlock is not None:
        check_path(t, parent, make_access(mode))


def check_remove(t, parent, victim) -> None:
    """hook_path_unlink/rmdir."""
    if t.landlock is not None:
        check_path(t, parent, L.ACCESS_FS_REMOVE_DIR if victim.inode.is_dir else L.ACCESS_FS_REMOVE_FILE)


def _maybe_remove(d) -> int:
    if d is None:
        return 0
    return L.ACCESS_FS_REMOVE_DIR if d.inode.is_dir else L.ACCESS_FS_REMOVE_FILE


def check_refer(t, old, old_dir, new_dir, new, removable: bool, exchange: bool) -> None:
    """current_check_refer_path for link (removable off) and rename: old
    (in old_dir) goes to new_dir, replacing or exchanged with new (None:
    a new name).  Both on one mount (the caller checked)."""
    dom = t.landlock
    if dom is None:
        return
    if exchange:
        if new is None:
            raise KernelError(E.ENOENT)
        access1 = make_access(new.inode.mode)
    else:
        access1 = 0
    access2 = make_access(old.inode.mode)
    if removable:
        access1 |= _maybe_remove(old)
        access2 |= _maybe_remove(new)
    if old_dir is new_dir:
        # no reparenting: REFER is not needed, only the creation and removal
        asked, masks = _init_masks(dom, access1 | access2)
        if _paths_allowed(dom, new_dir, asked, masks):
            return
        raise KernelError(E.EACCES)
    access1 |= L.ACCESS_FS_REFER
    access2 |= L.ACCESS_FS_REFER
    mnt_root = new_dir.mount.root if new_dir.mount is not None else None
    old_parent = old if old is mnt_root else old_dir
    masks1, masks2 = [0] * N, [0] * N
    allowed1 = _collect(dom, mnt_root, old_parent, masks1)
    allowed2 = _collect(dom, mnt_root, new_dir, masks2)
    if allowed1 and allowed2:
        return
    if mnt_root is None or _paths_allowed(dom, mnt_root, access1, masks1, old, access2, masks2,
                                          new if exchange else None):
        return
    if _is_eacces(masks1, access1) or _is_eacces(masks2, access2):
        raise KernelError(E.EACCES)
    raise KernelError(E.EXDEV)


def check_topology(t) -> None:
    """hook_sb_mount, move_mount, sb_umount, sb_pivotroot: a landlocked task
    changes no mount (its rules hold for the tree as it stands)."""
    if t.landlock is not None:
        raise KernelError(E.EPERM)
