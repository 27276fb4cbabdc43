"""The overlay filesystem object and its mount (Linux 6.1's ovl_fill_super):
the layers, their checks and the work directory.

`mount -t overlay overlay -o lowerdir=L1:L2,upperdir=U,workdir=W MNT`
resolves the layers as the mounter's paths, refuses what Linux refuses
(with its log lines), creates W/work afresh (removing what a previous
mount left there) and probes what the upper layer keeps: O_TMPFILE,
whiteouts, the overlay's xattrs.  An upper layer without xattrs degrades
as Linux's does (no opaque directories: mkdir over a whiteout is EIO,
moving a directory EXDEV); one without whiteouts fails each removal that
needs one.  Without an upper layer (at least two lower ones) the mount is
read-only, as it is when W/work cannot be made.

Layers are held, not mounted: the filesystems under them stay alive after
their own umount, as Linux's private clones keep them, until the overlay
goes (MountTable.hold).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.mount import MOUNT_ATTR_RDONLY
from umlpy.kernel import printk
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.vfs import namei
from umlpy.vfs.inode import Filesystem, anon_dev
from umlpy.fs.overlayfs import layer as R
from umlpy.fs.overlayfs import options
from umlpy.fs.overlayfs.marks import OPAQUE, Private
from umlpy.fs.overlayfs.options import log, refuse

OVERLAYFS_SUPER_MAGIC = 0x794C7630
FILESYSTEM_MAX_STACK_DEPTH = 2
WORK = b"work"
INCOMPAT = b"incompat"

# upper and work directories of the mounted overlays (Linux's I_OVL_INUSE):
# id -> inode
_in_use: dict[int, object] = {}


@dataclass(eq=False)
class Layer:
    """One layer: its top directory, the filesystem below it and its fsid
    (0 the upper filesystem's, each other filesystem its own)."""
    root: object
    fs: Filesystem
    fsid: int


@dataclass(frozen=True, eq=False)
class Lower:
    """An entry found in a lower layer (Linux's struct ovl_path)."""
    inode: object
    layer: Layer


class OvlFs(Filesystem):
    name = "overlay"
    magic = OVERLAYFS_SUPER_MAGIC
    statx_attributes = 0x10 | 0x20      # generic_fill_statx_attr: immutable, append
    inodes_reclaimable = True

    def __init__(self, cfg: options.Config, mounts, creds, current) -> None:
        super().__init__()
        self.cfg = cfg
        self.mounts = mounts
        self.current = current      # the task whose call the kernel runs (copy-up's owner check)
        self.creds = creds.copy()   # the mounter's (creator_cred): owns what the overlay makes, bounds what it does
        self.xattrs = Private(cfg.userxattr, capable(creds, K.CAP_SYS_ADMIN))
        self.can_decode = capable(creds, K.CAP_DAC_READ_SEARCH)
        self.user_ns = creds.user_ns
        self.upper: Layer | None = None
        self.upper_dentry = None
        self.workbase_dentry = None
        self.lowers: list[Layer] = []
        self.workbase = None        # W
        self.workdir = None         # W/work
        self.fss: list[Filesystem] = []     # the layers' filesystems, by fsid
        self.bad_uuid: set[int] = set()     # fsids whose handles are not decoded
        self.pseudo_devs: list[int] = []    # by fsid: st_dev of their non-directories when layers differ
        self.samefs = True
        self.namelen = 0
        self.last_ino = 1
        self.traps: dict[int, object] = {}
        self.marked: list[object] = []     # what this mount marked in use
        self.held: list[Filesystem] = []
        self.icache: weakref.WeakValueDictionary = weakref.WeakValueDictionary()    # real inode -> OvlInode
        self.whiteout_name: bytes | None = None     # the shared whiteout in W/work
        self.share_whiteout = True

    # -- the filesystem's own answers ----------------------------------------
    def real_root(self):
        """ovl_path_real of the root: the upper layer's, or the top lower one's."""
        return (self.upper or self.lowers[0]).root

    def statfs(self) -> dict:
        """ovl_statfs: the upper layer's figures (writes go there), the
        overlay's type and longest name."""
        st = dict(self.real_root().fs.statfs())
        st.update(type=self.magic, namelen=self.namelen)
        return st

    def fsid(self) -> tuple[int, int]:
        return self.real_root().fs.fsid()

    def show_options(self) -> str:
        return options.show(self.cfg, self.upper is not None)

    def sync(self, durable: bool = True) -> None:
        """ovl_sync_fs: the upper layer's filesystem."""
        if self.upper is not None:
            self.upper.fs.sync(durable)

    def set_read_only(self, ro: bool) -> None:
        """ovl_remount: read-write only with an upper layer and W/work
        (EROFS); going read-only syncs the upper layer first."""
        if not ro and (self.upper is None or self.workdir is None):
            raise KernelError(E.EROFS)
        if ro and not self.read_only:
            self.sync()
        self.read_only = ro

    def shrink_icache(self, keep: set[int]) -> None:
        """Nothing: overlay inodes are cached weakly and go with the last
        dentry (or file, or mark) holding them; vfs/evict.py prunes the
        dentries."""

    def want_write(self) -> None:
        """ovl_want_write: the upper layer writable (its filesystem: the
        overlay's private clone of its mount keeps the flags it had when
        mounted)."""
        if self.upper is None or self.workdir is None or self.upper.fs.read_only:
            raise KernelError(E.EROFS)

    def next_ino(self) -> int:
        """ovl_next_ino: a directory's number when the layers' inode
        numbers would collide (layers on several filesystems)."""
        self.last_ino += 1
        return self.last_ino

    @property
    def stack_depth(self) -> int:
        return 1 + max([lay.fs.stack_depth for lay in self.layers()], default=0)

    def layers(self) -> list[Layer]:
        return ([self.upper] if self.upper is not None else []) + self.lowers

    def unmount(self) -> None:
        """ovl_free_fs: the in-use marks and the holds on the layers go."""
        for real in self.marked:
            _in_use.pop(id(real), None)
        self.marked = []
        held, self.held = self.held, []
        for fs in held:
            self.mounts.release(fs)

    # -- mounting ---------------------------------------------------------------
    def _trap(self, real, what: str) -> None:
        """ovl_setup_trap: a layer's directory, which no lookup may meet
        again and no other layer may be (ELOOP)."""
        if id(real) in self.traps:
            raise refuse(f"conflicting {what} path", E.ELOOP)
        self.traps[id(real)] = real

    def _namelen(self, real) -> None:
        self.namelen = max(self.namelen, real.fs.statfs()["namelen"])

    def _in_use(self, real, what: str) -> None:
        """ovl_report_in_use with index=off: a warning, and on it goes."""
        if id(real) in _in_use:
            log(printk.pr_warn, f"{what} is in-use as upperdir/workdir of another mount, "
                                "accessing files from both mounts will result in undefined behavior.")

    def _mark_in_use(self, real, what: str) -> None:
        if id(real) in _in_use:
            self._in_use(real, what)
            return
        _in_use[id(real)] = real
        self.marked.append(real)

    def _hold(self, fs: Filesystem) -> None:
        if fs not in self.held:
            self.mounts.hold(fs)
            self.held.append(fs)

    def get_upper(self, t) -> None:
        """ovl_get_upper."""
        d = resolve(t, options.unescape(self.cfg.upperdir))
        if isinstance(d.inode.fs, OvlFs):
            raise refuse(f"filesystem on '{self.cfg.upperdir}' not supported as upperdir")
        if d.inode.fs.read_only or d.mount is not None and d.mount.has(MOUNT_ATTR_RDONLY):
            raise refuse("upper fs is r/o, try multi-lower layers mount")
        self._namelen(d.inode)
        self._trap(d.inode, "upperdir")
        self.upper = Layer(d.inode, d.inode.fs, 0)
        self._hold(d.inode.fs)
        self._mark_in_use(d.inode, "upperdir")
        self.upper_dentry = d

    def get_workdir(self, t) -> None:
        """ovl_get_workdir: W on the upper layer's mount, neither inside
        the other; then W/work."""
        d = resolve(t, options.unescape(self.cfg.workdir))
        if d.mount is not self.upper_dentry.mount:
            raise refuse("workdir and upperdir must reside under the same mount")
        if d.inode is self.upper.root or _below(d, self.upper_dentry) or _below(self.upper_dentry, d):
            raise refuse("workdir and upperdir must be separate subtrees")
        self.workbase = d.inode
        self.workbase_dentry = d
        self._mark_in_use(d.inode, "workdir")
        self._trap(d.inode, "workdir")
        self._make_workdir()

    def _make_workdir(self) -> None:
        """ovl_make_workdir: W/work made afresh, then what the upper
        filesystem keeps is probed."""
        work = self._workdir_create()
        if work is None:
            return
        self.workdir = work
        self._trap(work, "workdir")
        uid, gid = self.creds.fsuid, self.creds.fsgid
        try:
            probe = work.tmpfile(0, uid, gid)
        except KernelError:
            log(printk.pr_warn, "upper fs does not support tmpfile.")
        else:
            probe.evict()
        if not self._whiteouts_work():
            log(printk.pr_warn, "upper fs does not support RENAME_WHITEOUT.")
        try:
            self.xattrs.set(work, OPAQUE, b"0")
        except KernelError as e:
            log(printk.pr_warn, "failed to set xattr on upper")
            self.xattrs.noxattr = True
            if e.errno == E.EPERM and not self.cfg.userxattr:
                log(printk.pr_info, "try mounting with 'userxattr' option")
        else:
            self.xattrs.remove(work, OPAQUE)

    def _whiteouts_work(self) -> bool:
        """ovl_check_rename_whiteout's question: can the upper layer hold
        a whiteout (a character device 0/0)?"""
        name = R.temp_name(self.workdir)
        try:
            R.create(self, self.workdir, name, C.S_IFCHR, self.creds.fsuid, self.creds.fsgid)
        except KernelError as e:
            if e.errno in (E.EPERM, E.EOPNOTSUPP, E.EINVAL):
                return False
            raise
        R.cleanup(self, self.workdir, name)
        return True

    def _workdir_create(self):
        """ovl_workdir_create: W/work, emptied of what a previous mount
        left (or the mount goes read-only, with Linux's warning)."""
        base = self.workbase
        errno = E.EEXIST
        for retried in (False, True):
            try:
                old = R.lookup(self, base, WORK)
                if old is None:
                    return R.create(self, base, WORK, C.S_IFDIR, self.creds.fsuid, self.creds.fsgid)
            except KernelError as e:
                errno = e.errno
                break
            if retried:
                break
            try:
                _workdir_cleanup(self, base, WORK, old, 0)
            except KernelError as e:
                if e.errno == E.EINVAL:
                    raise
        log(printk.pr_warn, f"failed to create directory {self.cfg.workdir}/work (errno: {errno}); "
                            "mounting read-only")
        return None

    def get_lowers(self, t, names: list[str]) -> None:
        """ovl_get_lowerstack and ovl_get_layers."""
        if self.upper is None and len(names) == 1:
            raise refuse("at least 2 lowerdir are needed while upperdir nonexistent")
        found = []
        for name in names:
            if not name:
                raise refuse("empty lowerdir")
            d = resolve(t, name)
            self._namelen(d.inode)
            found.append(d)
        if max([d.inode.fs.stack_depth for d in found] + [self.upper.fs.stack_depth if self.upper else 0]) \
                + 1 > FILESYSTEM_MAX_STACK_DEPTH:
            raise refuse("maximum fs stacking depth exceeded")
        self.fss = [self.upper.fs if self.upper is not None else None]
        self.pseudo_devs = [anon_dev()]
        for d in found:
            fsid = self._fsid(d.inode.fs)
            self._trap(d.inode, "lowerdir")
            self._in_use(d.inode, "lowerdir")
            self.lowers.append(Layer(d.inode, d.inode.fs, fsid))
            self._hold(d.inode.fs)
        self.samefs = len(self.fss) - (self.upper is None) == 1
        if not self.cfg.uuid and len(self.fss) > 1:
            log(printk.pr_warn, "The uuid=off requires a single fs for lower and upper, falling back to uuid=on.")
            self.cfg.uuid = True
        self._check_overlapping(found)

    def _fsid(self, fs: Filesystem) -> int:
        """ovl_get_fsid: the index of fs among the layers' filesystems (0
        the upper one's); a new lower filesystem whose uuid cannot tell it
        apart (null, or another lower one's) has its handles left alone."""
        if fs in self.fss:
            return self.fss.index(fs)
        if self.upper is not None:
            twins = [i for i, f in enumerate(self.fss) if i and f.uuid == fs.uuid]
            if fs.uuid == bytes(16) or twins:
                self.bad_uuid.update(twins + [len(self.fss)])
        self.fss.append(fs)
        self.pseudo_devs.append(anon_dev())
        return len(self.fss) - 1

    def _check_overlapping(self, lowers: list) -> None:
        """ovl_check_overlapping_layers: no lower layer below another
        layer of this overlay (ELOOP); layers below another overlay's
        upper or work directory only warn (index=off)."""
        checks = [(lowers_d, "lowerdir", True) for lowers_d in lowers]
        if self.upper is not None:
            checks = [(self.upper_dentry, "upperdir", False)] + \
                ([(self.workbase_dentry, "workdir", False)] if self.workbase is not None else []) + checks
        for d, what, is_lower in checks:
            a = d.parent
            while a is not None:
                if is_lower and id(a.inode) in self.traps:
                    raise refuse(f"overlapping {what} path", E.ELOOP)
                self._in_use(a.inode, what)
                a = a.parent


def _below(d, top) -> bool:
    """d is strictly inside top (the same mount's dentries)."""
    a = d.parent
    while a is not None:
        if a is top or a.inode is top.inode:
            return True
        a = a.parent
    return False


def _workdir_cleanup(ofs: OvlFs, parent, name: bytes, real, level: int) -> None:
    """ovl_workdir_cleanup: remove what a previous mount left in W/work,
    three levels down at most; a non-empty work/incompat refuses the
    mount (EINVAL), naming the feature."""
    if not real.is_dir or level > 1:
        R.cleanup(ofs, parent, name)
        return
    try:
        R.remove(ofs, parent, name)
        return
    except KernelError:
        pass
    for child, _ino, _t in R.entries(ofs, real):
        if level == 1 and name == INCOMPAT:
            raise refuse(f"overlay with incompat feature '{child.decode(errors='replace')}' cannot be mounted")
        sub = R.lookup(ofs, real, child)
        if sub is not None:
            _workdir_cleanup(ofs, real, child, sub, level + 1)
    R.cleanup(ofs, parent, name)


def resolve(t, path: str):
    """ovl_mount_dir_noesc: a layer's directory as the mounter's path."""
    try:
        d = namei.lookup(t, C.AT_FDCWD, path.encode())
    except KernelError as e:
        log(printk.pr_err, f"failed to resolve '{path}': {-e.errno}")
        raise
    if not d.inode.is_dir:
        raise refuse(f"'{path}' not a directory")
    return d
