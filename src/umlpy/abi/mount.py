"""Mount ABI: mount(2)'s MS_* flags, umount2's, mount_setattr's struct
mount_attr bits, open_tree/move_mount flags and statfs's ST_* flags."""
from __future__ import annotations

import struct

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_POSIXACL = 1 << 16
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_KERNMOUNT = 1 << 22
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MS_MGC_VAL = 0xC0ED0000
MS_PROPAGATION = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE

# umount2(2)
MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# A mount's own flags, kept as mount_setattr's MOUNT_ATTR_* bits.
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
MOUNT_ATTR_ALL = (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC
                  | MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSYMFOLLOW)
# A mount's atime policy: MOUNT_ATTR_NOATIME, MNT_RELATIME (the default) or
# neither (strictatime), as Linux's MNT_NOATIME/MNT_RELATIME.
MNT_RELATIME = 0x40000000
MNT_ATIME_MASK = MOUNT_ATTR_NOATIME | MOUNT_ATTR_NODIRATIME | MNT_RELATIME

# struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd; }
MOUNT_ATTR = struct.Struct("<QQQQ")
MOUNT_ATTR_SIZE_VER0 = 32

AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_SYMLINKS = 0x01
MOVE_MOUNT_F_AUTOMOUNTS = 0x02
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_SYMLINKS = 0x10
MOVE_MOUNT_T_AUTOMOUNTS = 0x20
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOVE_MOUNT_SET_GROUP = 0x100
MOVE_MOUNT_BENEATH = 0x200
MOVE_MOUNT__MASK = 0x377

# statfs's f_flags
ST_VALID = 0x20
ST_RELATIME = 0x1000
ST_NOSYMFOLLOW = 0x2000


def statfs_flags(mnt_flags: int, sb_read_only: bool) -> int:
    """flags_by_mnt + flags_by_sb: what statfs reports in f_flags."""
    out = ST_VALID
    if mnt_flags & MOUNT_ATTR_RDONLY or sb_read_only:
        out |= MS_RDONLY
    for attr, st in ((MOUNT_ATTR_NOSUID, MS_NOSUID), (MOUNT_ATTR_NODEV, MS_NODEV),
                     (MOUNT_ATTR_NOEXEC, MS_NOEXEC), (MOUNT_ATTR_NODIRATIME, MS_NODIRATIME),
                     (MOUNT_ATTR_NOSYMFOLLOW, ST_NOSYMFOLLOW), (MNT_RELATIME, ST_RELATIME)):
        if mnt_flags & attr:
            out |= st
    if mnt_flags & MOUNT_ATTR__ATIME == MOUNT_ATTR_NOATIME:
        out |= MS_NOATIME
    return out


def from_ms(flags: int) -> int:
    """path_mount: mount(2)'s MS_* per-mount flags as the mount's own bits;
    without an atime flag a mount is relatime, strictatime is neither."""
    out = 0
    for ms, attr in ((MS_RDONLY, MOUNT_ATTR_RDONLY), (MS_NOSUID, MOUNT_ATTR_NOSUID),
                     (MS_NODEV, MOUNT_ATTR_NODEV), (MS_NOEXEC, MOUNT_ATTR_NOEXEC),
                     (MS_NODIRATIME, MOUNT_ATTR_NODIRATIME), (MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW)):
        if flags & ms:
            out |= attr
    if flags & MS_NOATIME:
        out |= MOUNT_ATTR_NOATIME
    if not flags & (MS_NOATIME | MS_STRICTATIME):
        out |= MNT_RELATIME
    return out


def option_words(mnt_flags: int) -> str:
    """show_mnt_opts: the per-mount words of /proc/mounts' options."""
    words = ["ro" if mnt_flags & MOUNT_ATTR_RDONLY else "rw"]
    for bit, w in ((MOUNT_ATTR_NOSUID, "nosuid"), (MOUNT_ATTR_NODEV, "nodev"),
                   (MOUNT_ATTR_NOEXEC, "noexec"), (MOUNT_ATTR_NOATIME, "noatime"),
                   (MOUNT_ATTR_NODIRATIME, "nodiratime"), (MNT_RELATIME, "relatime"),
                   (MOUNT_ATTR_NOSYMFOLLOW, "nosymfollow")):
        if mnt_flags & bit:
            words.append(w)
    return ",".join(words)
