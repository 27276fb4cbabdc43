"""What overlay reads and leaves on its layers' inodes: whiteouts (a
character device 0/0, Linux 6.1's only kind), and its private extended
attributes, "trusted.overlay.*" (or "user.overlay.*" with userxattr):
opaque directories, copy-up origins, impure directories, redirects.

The origin of a copy-up is a file handle of the lower inode in Linux's
struct ovl_fb (version, magic 0xfb, length, flags, handle type, the lower
filesystem's uuid, the handle), or an empty value when the lower
filesystem has no file handles; a later lookup of the upper file decodes
it to find the lower inode again, which keeps st_ino across copy-up,
remounts and evictions (ovl_set_origin, ovl_check_origin_fh).
"""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.fs.overlayfs.options import log

OPAQUE, REDIRECT, ORIGIN, IMPURE = b"opaque", b"redirect", b"origin", b"impure"

_FB = struct.Struct("<BBBBB16s")      # version, magic, len, flags, type, uuid; the fid follows
FH_VERSION, FH_MAGIC = 0, 0xFB
FH_FLAG_BIG_ENDIAN, FH_FLAG_ANY_ENDIAN, FH_FLAG_PATH_UPPER = 1, 2, 4
FH_FLAG_ALL = FH_FLAG_BIG_ENDIAN | FH_FLAG_ANY_ENDIAN | FH_FLAG_PATH_UPPER
NULL_UUID = bytes(16)


def is_whiteout(real) -> bool:
    """IS_WHITEOUT: a character device numbered 0/0."""
    return real.mode & C.S_IFMT == C.S_IFCHR and real.rdev == 0


class Private:
    """The overlay's own xattrs on one mount's layers.  usable: the mounter
    may use the namespace (trusted.* needs CAP_SYS_ADMIN, which a mounter
    in a user namespace lacks); noxattr: the upper layer turned out not to
    keep them (ofs->noxattr), after which marks that are only an
    optimisation are skipped and the others fail with their own errno."""

    def __init__(self, userxattr: bool, privileged: bool) -> None:
        self.prefix = b"user.overlay." if userxattr else b"trusted.overlay."
        self.userxattr = userxattr
        self.usable = userxattr or privileged
        self.noxattr = False

    def is_private(self, name: bytes) -> bool:
        """ovl_is_private_xattr: hidden from listxattr, refused to get and set."""
        return name.startswith(self.prefix)

    def _allowed(self, real) -> bool:
        """xattr_permission as the mounter meets it: user.* lives only on
        regular files and directories."""
        return self.usable and (not self.userxattr or real.is_reg or real.is_dir)

    def get(self, real, what: bytes) -> bytes | None:
        """The value, or None when absent or unreadable (ovl_getxattr's
        errors all mean "not marked")."""
        if not self._allowed(real):
            return None
        try:
            return real.getxattr(self.prefix + what)
        except KernelError:
            return None

    def set(self, real, what: bytes, value: bytes) -> None:
        """ovl_setxattr: EPERM where the mounter may not write the namespace."""
        if not self._allowed(real):
            raise KernelError(E.EPERM)
        real.setxattr(self.prefix + what, value, 0)

    def check_set(self, real, what: bytes, value: bytes, xerr: int) -> None:
        """ovl_check_setxattr: on an upper layer without xattrs, xerr (0:
        the mark was only an optimisation and its absence is fine)."""
        if self.noxattr:
            if xerr:
                raise KernelError(xerr)
            return
        try:
            self.set(real, what, value)
        except KernelError as e:
            if e.errno != E.EOPNOTSUPP:
                raise
            log(printk.pr_warn, f"cannot set {(self.prefix + what).decode()} xattr on upper")
            self.noxattr = True
            if xerr:
                raise KernelError(xerr) from None

    def remove(self, real, what: bytes) -> None:
        """ovl_removexattr, best effort."""
        try:
            real.removexattr(self.prefix + what)
        except KernelError:
            pass

    def is_opaque(self, real) -> bool:
        """ovl_is_opaquedir: a directory marked "y"."""
        return real.is_dir and self.get(real, OPAQUE) == b"y"

    def is_impure(self, real) -> bool:
        return real.is_dir and self.get(real, IMPURE) == b"y"

    def has_origin(self, real) -> bool:
        """ovl_path_check_origin_xattr: copied up (an empty value: origin unknown)."""
        return self.get(real, ORIGIN) is not None


def encode_origin(lower, uuid: bytes) -> bytes:
    """ovl_encode_real_fh of a lower inode: empty when its filesystem has
    no file handles (a "null" origin, which still says "copied up")."""
    fh = lower.fs.encode_fh(lower)
    if fh is None:
        return b""
    ftype, fid = fh
    return _FB.pack(FH_VERSION, FH_MAGIC, _FB.size + len(fid), 0, ftype, uuid) + fid


def decode_origin(value: bytes) -> tuple[int, bytes, bytes] | None:
    """(handle type, uuid, fid) of an origin value, None for "origin
    unknown" (empty, a newer version, unknown flags, the other endianness)
    and for a malformed one, which is logged (ovl_check_fb_len)."""
    if not value:
        return None
    if len(value) < _FB.size or value[1] != FH_MAGIC or value[2] > len(value):
        log(printk.pr_warn_ratelimited, f"invalid origin ({value.hex()})")
        return None
    version, _magic, length, flags, ftype, uuid = _FB.unpack_from(value)
    if version > FH_VERSION or flags & ~FH_FLAG_ALL:
        return None
    if not flags & FH_FLAG_ANY_ENDIAN and flags & FH_FLAG_BIG_ENDIAN:
        return None     # written by a big-endian kernel
    return ftype, uuid, value[_FB.size:length]
