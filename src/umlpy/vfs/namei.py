"""Path walk: components, `..`, mounts, symlinks (at most 40), permissions."""
from __future__ import annotations

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.mount import MOUNT_ATTR_NOSYMFOLLOW
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.vfs.dentry import Dentry
from umlpy.vfs.perm import may_follow_link, permission

MAXSYMLINKS = 40
PATH_MAX = C.PATH_MAX
NAME_MAX = 255

# openat2's how->resolve
RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS = 0x01, 0x02, 0x04
RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_CACHED = 0x08, 0x10, 0x20
RESOLVE_ALL = 0x3F
_SCOPED = RESOLVE_BENEATH | RESOLVE_IN_ROOT


class Scope:
    """The RESOLVE_* restrictions of an openat2 while it walks.  Linux keeps
    the walk's state per task (current->nameidata); so does umlpy
    (task.nd), so every lookup the open makes obeys them."""
    __slots__ = ("flags", "root", "mount")

    def __init__(self, flags: int, start: Dentry) -> None:
        self.flags = flags
        self.root = start           # BENEATH/IN_ROOT: the walk's own root
        self.mount = start.mount    # NO_XDEV: the one mount it may use


def start_of(task, dirfd: int, path: bytes) -> Dentry:
    if path.startswith(b"/"):
        return task.fs.root
    if dirfd == C.AT_FDCWD:
        return task.fs.cwd
    f = task.files.get_raw(dirfd)
    if f.dentry is None or not f.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    return f.dentry


def _follow_mounts(d: Dentry) -> Dentry:
    while d.mounted is not None:
        d = d.mounted.root
    return d


_S_IFMT, _S_IFDIR, _S_IFLNK = C.S_IFMT, C.S_IFDIR, C.S_IFLNK


def _walk(task, cur: Dentry, path: bytes, follow: bool, budget: list[int]) -> Dentry:
    # the hot loop of every call taking a path: the inode's type from its
    # mode, no per-component call but the permission check and the lookup
    if len(path) >= PATH_MAX:
        raise KernelError(E.ENAMETOOLONG)
    nd: Scope | None = task.nd
    root = task.fs.root
    if nd is not None and nd.flags & _SCOPED:
        root = nd.root
    if path[:1] == b"/":
        if nd is not None and (nd.flags & RESOLVE_BENEATH or
                               nd.flags & RESOLVE_NO_XDEV and root.mount is not nd.mount):
            raise KernelError(E.EXDEV)
        cur = root
        comps = path[1:].split(b"/")
    else:
        comps = path.split(b"/")
    last = comps[-1]
    must_dir = not last or last == b"." or last == b".."
    if b"" in comps or b"." in comps:       # "//", "/./", a trailing "/"
        comps = [p for p in comps if p and p != b"."]
    creds = task.proc.creds
    search_all = capable(creds, K.CAP_DAC_READ_SEARCH)     # searches every directory
    n = len(comps)
    for i, name in enumerate(comps):
        ino = cur.inode
        if ino.mode & _S_IFMT != _S_IFDIR:
            raise KernelError(E.ENOTDIR)
        if not search_all:
            permission(ino, C.X_OK, creds)
        if name == b"..":
            if cur is root:
                if nd is not None and nd.flags & RESOLVE_BENEATH:
                    raise KernelError(E.EXDEV)
            else:
                cur = _follow_mounts(cur.up())
                if nd is not None and nd.flags & RESOLVE_NO_XDEV and cur.mount is not nd.mount:
                    raise KernelError(E.EXDEV)
            continue
        if len(name) > NAME_MAX:
            raise KernelError(E.ENAMETOOLONG)
        nxt = cur.child(name)
        if nxt is None:
            raise KernelError(E.ENOENT)
        if nxt.mounted is not None:
            if nd is not None and nd.flags & RESOLVE_NO_XDEV:
                raise KernelError(E.EXDEV)
            nxt = _follow_mounts(nxt)
        if nxt.inode.mode & _S_IFMT == _S_IFLNK and (i < n - 1 or follow or must_dir):
            magic = may_step_into(task, cur, nxt, budget)
            nxt = _magic(magic) if magic is not None else \
                _walk(task, cur, nxt.inode.readlink(), True, budget)
        cur = nxt
    if must_dir and cur.inode.mode & _S_IFMT != _S_IFDIR:
        raise KernelError(E.ENOTDIR)
    return cur


def may_step_into(task, parent: Dentry, link: Dentry, budget: list[int]):
    """pick_link's checks before a symlink is followed: the budget of 40
    links a walk, no nosymfollow mount, a scoped walk's rules, protected
    symlinks.  The magic link's file getter, or None for a plain link."""
    budget[0] -= 1
    if budget[0] < 0 or link.mount is not None and link.mount.has(MOUNT_ATTR_NOSYMFOLLOW):
        raise KernelError(E.ELOOP)      # too many, or on a nosymfollow mount
    nd: Scope | None = task.nd
    if nd is not None:
        _check_link(nd, getattr(link.inode, "is_magic", False))
    may_follow_link(task.kernel.tunables, task.proc.creds, parent.inode, link.inode)
    return getattr(link.inode, "magic_file", None)


def _check_link(nd: Scope, magic: bool) -> None:
    """What a scoped walk may follow: no symlinks at all, or no magic links
    (/proc/PID/fd/N, /proc/self/exe...), which BENEATH and IN_ROOT refuse too."""
    if nd.flags & RESOLVE_NO_SYMLINKS or (magic and nd.flags & RESOLVE_NO_MAGICLINKS):
        raise KernelError(E.ELOOP)
    if magic and nd.flags & _SCOPED:
        raise KernelError(E.EXDEV)


def _magic(magic) -> Dentry:
    """Follow a magic link to the open file it names (its dentry, or one made
    for a file that has none: a pipe, a socket)."""
    f = magic()
    if f is None or f.inode is None:
        raise KernelError(E.ENOENT)
    if f.dentry is not None and f.dentry.inode is f.inode:
        return f.dentry
    return Dentry(b"", None, f.inode, None)


def lookup(task, dirfd: int, path: bytes, follow: bool = True, empty_ok: bool = False,
           keep_expiry: bool = False) -> Dentry:
    """The dentry at path.  Using a mount clears its MNT_EXPIRE mark (mntput),
    except for umount2's own lookup (keep_expiry)."""
    if not path:
        if not empty_ok:
            raise KernelError(E.ENOENT)
        if dirfd == C.AT_FDCWD:
            d = task.fs.cwd
        else:
            f = task.files.get_raw(dirfd)
            if f.dentry is None:
                raise KernelError(E.EBADF)
            d = f.dentry
    else:
        d = _walk(task, start_of(task, dirfd, path), path, follow, [MAXSYMLINKS])
    if d.mount is not None and not keep_expiry:
        d.mount.expiry_mark = False
    return d


def lookup_parent(task, dirfd: int, path: bytes) -> tuple[Dentry, bytes, bool]:
    """(parent directory, last component, trailing slash) for creating ops."""
    if not path:
        raise KernelError(E.ENOENT)
    return parent_at(task, start_of(task, dirfd, path), path, [MAXSYMLINKS])


def parent_at(task, start: Dentry, path: bytes, budget: list[int]) -> tuple[Dentry, bytes, bool]:
    """lookup_parent from a directory (a relative path's start) with what is
    left of a walk's symlink budget: an open following a trailing symlink
    walks the link's body from the link's directory."""
    if not path:
        raise KernelError(E.ENOENT)
    if len(path) >= PATH_MAX:
        raise KernelError(E.ENAMETOOLONG)
    stripped = path.rstrip(b"/")
    trailing = len(stripped) != len(path)
    if not stripped:
        return task.fs.root, b".", trailing
    head, _, last = stripped.rpartition(b"/")
    if b"/" in stripped:
        parent = _walk(task, start, head or b"/", True, budget)
    else:
        parent = task.fs.root if path.startswith(b"/") else start
    if not parent.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    if len(last) > NAME_MAX:
        raise KernelError(E.ENAMETOOLONG)
    return parent, last, trailing
