"""overlay's mount options, parsed and shown as Linux 6.1's ovl_parse_opt
and ovl_show_options do.

The features this overlay does not build (redirect_dir=on/follow, index=on,
xino=on/auto, metacopy=on, nfs_export=on, volatile) are refused with
EINVAL and a log line naming them; their "off" values are the defaults and
are accepted.  Redirects are never followed: redirect_dir=off behaves as on
a kernel built without OVERLAY_FS_REDIRECT_ALWAYS_FOLLOW (a directory
carrying a redirect is refused at lookup, as nofollow refuses it).
"""
from __future__ import annotations

from dataclasses import dataclass

from umlpy.abi import errno as E
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

OVL_MAX_STACK = 500     # lower layers at most

# option=value -> whether the value is built; a bare word is a flag
_VALUES = {
    "redirect_dir": {"off": True, "nofollow": True, "on": False, "follow": False},
    "index": {"off": True, "on": False},
    "uuid": {"on": True, "off": True},
    "nfs_export": {"off": True, "on": False},
    "xino": {"off": True, "on": False, "auto": False},
    "metacopy": {"off": True, "on": False},
}
_PATHS = ("lowerdir", "upperdir", "workdir")
_FLAGS = {"default_permissions": True, "userxattr": True, "volatile": False}


def log(level, msg: str) -> None:
    """A log line with overlayfs's prefix (pr_fmt)."""
    level(f"overlayfs: {msg}")


def refuse(msg: str, errno: int = E.EINVAL) -> KernelError:
    """pr_err(msg) and the error to raise."""
    log(printk.pr_err, msg)
    return KernelError(errno)


@dataclass
class Config:
    """What the options asked for (the paths as given, escapes included,
    which is how /proc/mounts shows them)."""
    lowerdir: str | None = None
    upperdir: str | None = None
    workdir: str | None = None
    default_permissions: bool = False
    redirect_dir: str = "off"
    uuid: bool = True
    userxattr: bool = False


def _split(text: str, sep: str, unescape: bool) -> list[str]:
    """The pieces of text between separators that no backslash escapes;
    unescape: each backslash goes and keeps the character after it."""
    out, cur, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            cur.append(text[i + 1:i + 2] if unescape else text[i:i + 2])
            i += 2
            continue
        if ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def split_options(data: str) -> list[str]:
    """ovl_next_opt: the options between commas; a backslash keeps the
    next character (a comma too) in the option, and stays in it."""
    return _split(data, ",", False)


def parse(data: str) -> Config:
    """ovl_parse_opt over the mount's data; EINVAL (and Linux's log line)
    for an unknown option, a missing value or a feature not built."""
    cfg = Config()
    for opt in split_options(data):
        if not opt:
            continue
        key, eq, val = opt.partition("=")
        if key in _PATHS and eq and val:
            setattr(cfg, key, val)
        elif key in _VALUES and eq and val in _VALUES[key]:
            if not _VALUES[key][val]:
                raise refuse(f"option \"{opt}\" is not supported by this kernel")
            if key == "redirect_dir":
                cfg.redirect_dir = val
            elif key == "uuid":
                cfg.uuid = val == "on"
        elif key == "redirect_dir" and eq and val:
            raise refuse(f"bad mount option \"redirect_dir={val}\"")
        elif not eq and key in _FLAGS:
            if not _FLAGS[key]:
                raise refuse(f"option \"{opt}\" is not supported by this kernel")
            setattr(cfg, key, True)
        else:
            raise refuse(f"unrecognized mount option \"{opt}\" or missing value")
    if cfg.upperdir is None and cfg.workdir is not None:
        log(printk.pr_info, f"option \"workdir={cfg.workdir}\" is useless in a non-upper mount, ignore")
        cfg.workdir = None
    return cfg


def unescape(s: str) -> str:
    """ovl_unescape: a backslash stands for the character after it."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\":
            i += 1
            if i == len(s):
                break
        out.append(s[i])
        i += 1
    return "".join(out)


def split_lowerdirs(lowerdir: str) -> list[str]:
    """ovl_split_lowerdirs: the layers between unescaped colons, top
    first, unescaped; EINVAL past OVL_MAX_STACK."""
    out = _split(lowerdir, ":", True)
    if len(out) > OVL_MAX_STACK:
        raise refuse(f"too many lower directories, limit is {OVL_MAX_STACK}")
    return out


def _escape(value: str) -> str:
    """seq_show_option's escaping: comma, equals, blanks and backslash as
    octal escapes."""
    return "".join(f"\\{ord(c):03o}" if c in ",= \t\n\\" else c for c in value)


def show(cfg: Config, has_upper: bool) -> str:
    """ovl_show_options: the layers, then every option whose value is not
    the default."""
    words = [f"lowerdir={_escape(cfg.lowerdir or '')}"]
    if has_upper:
        words += [f"upperdir={_escape(cfg.upperdir or '')}", f"workdir={_escape(cfg.workdir or '')}"]
    if cfg.default_permissions:
        words.append("default_permissions")
    if cfg.redirect_dir != "off":
        words.append(f"redirect_dir={cfg.redirect_dir}")
    if not cfg.uuid:
        words.append("uuid=off")
    if cfg.userxattr:
        words.append("userxattr")
    return ",".join(words)
