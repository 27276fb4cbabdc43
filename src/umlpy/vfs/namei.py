"""Path walk: components, `..`, mounts, symlinks (at most 40), permissions."""
from __future__ import annotations

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.vfs.dentry import Dentry
from umlpy.vfs.perm import permission

MAXSYMLINKS = 40
PATH_MAX = 4096
NAME_MAX = 255


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


def _walk(task, cur: Dentry, path: bytes, follow: bool, budget: list[int]) -> Dentry:
    if len(path) >= PATH_MAX:
        raise KernelError(E.ENAMETOOLONG)
    root = task.fs.root
    if path[:1] == b"/":
        cur = root
    parts = path.split(b"/")
    last = parts[-1]
    must_dir = not last or last == b"." or last == b".."
    comps = [p for p in parts if p and p != b"."]
    creds = task.proc.creds
    search_all = capable(creds, K.CAP_DAC_READ_SEARCH)     # searches every directory
    n = len(comps)
    for i, name in enumerate(comps):
        ino = cur.inode
        if not ino.is_dir:
            raise KernelError(E.ENOTDIR)
        if not search_all:
            permission(ino, C.X_OK, creds)
        if name == b"..":
            if cur is not root:
                cur = _follow_mounts(cur.up())
            continue
        if len(name) > NAME_MAX:
            raise KernelError(E.ENAMETOOLONG)
        nxt = cur.child(name)
        if nxt is None:
            raise KernelError(E.ENOENT)
        if nxt.mounted is not None:
            nxt = _follow_mounts(nxt)
        if nxt.inode.is_symlink and (i < n - 1 or follow or must_dir):
            budget[0] -= 1
            if budget[0] < 0:
                raise KernelError(E.ELOOP)
            magic = getattr(nxt.inode, "magic_file", None)
            nxt = _magic(magic) if magic is not None else \
                _walk(task, cur, nxt.inode.readlink(), True, budget)
        cur = nxt
    if must_dir and not cur.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    return cur


def _magic(magic) -> Dentry:
    """Follow a magic link to the open file it names (its dentry, or one made
    for a file that has none: a pipe, a socket)."""
    f = magic()
    if f is None or f.inode is None:
        raise KernelError(E.ENOENT)
    if f.dentry is not None and f.dentry.inode is f.inode:
        return f.dentry
    return Dentry(b"", None, f.inode, None)


def lookup(task, dirfd: int, path: bytes, follow: bool = True, empty_ok: bool = False) -> Dentry:
    if not path:
        if empty_ok:
            if dirfd == C.AT_FDCWD:
                return task.fs.cwd
            f = task.files.get_raw(dirfd)
            if f.dentry is None:
                raise KernelError(E.EBADF)
            return f.dentry
        raise KernelError(E.ENOENT)
    return _walk(task, start_of(task, dirfd, path), path, follow, [MAXSYMLINKS])


def lookup_parent(task, dirfd: int, path: bytes) -> tuple[Dentry, bytes, bool]:
    """(parent directory, last component, trailing slash) for creating ops."""
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
        parent = _walk(task, start_of(task, dirfd, path), head or b"/", True, [MAXSYMLINKS])
    else:
        parent = start_of(task, dirfd, path)
    if not parent.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    if len(last) > NAME_MAX:
        raise KernelError(E.ENAMETOOLONG)
    return parent, last, trailing
