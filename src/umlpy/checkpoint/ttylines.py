"""The machine's lines in a checkpoint: the console and the other UML
lines (con1-con63 as /dev/ttyN, ssl0- as /dev/ttySN, drivers/line.py).

The lines themselves are the restoring boot's, made from the same command
line (a line's host side, a pts or a port, is the host's and begins again
there); the image names them by their names.  Saved: every open file of a
line that is not /dev/console's (those are `console` descriptions): a
/dev/tty of the console, as an interactive shell holds one, a getty's
/dev/ttyN, by the path it was opened by; a process's controlling line; the
session and foreground process group of each line but the console's (the
manifest's `console` has those).  A hung-up file of a line is refused.
"""
from __future__ import annotations

from umlpy.checkpoint import image
from umlpy.drivers.line import Line
from umlpy.drivers.tty import TtyFile
from umlpy.abi import structs

TTY_RDEV = structs.makedev(5, 0)     # /dev/tty: the caller's controlling terminal
MAX_PID = 1 << 22


def _lines(k) -> dict[str, Line]:
    return {line.name: line for line in k.lines.lines.values() if isinstance(line, Line)}


def is_line(tty) -> bool:
    return isinstance(tty, Line)


def handles(f) -> bool:
    """A file of a line other than a /dev/console one (drivers/console.py's
    ConsoleFile, saved as `console`)."""
    return type(f) is TtyFile and not f.redirect and is_line(f.tty)


def unsaved_file(k, f) -> str | None:
    if f.hung_up or f.dentry is None or f.dentry.mount is None:
        return "a hung-up line file, or one with no path"
    return None


def save_file(k, f) -> dict:
    return {"kind": "line", "line": f.tty.name, "path": f.dentry.path(k.root).decode("utf-8", "surrogateescape"),
            "after_eof": f.after_eof}


def make_file(k, o: image.Reader, flags: int, lookup) -> TtyFile:
    """A line's file again, on the restoring boot's line of that name, by
    its path (the line's own node, or /dev/tty)."""
    line = _line(k, o, "line")
    d = lookup(o.path("path"))
    if d.inode.rdev not in (line.rdev, TTY_RDEV):
        raise image.ImageError(f"manifest: {o.where}.path: not the line's node nor /dev/tty")
    f = TtyFile(d, d.inode, flags, line)
    f.after_eof = o.bool("after_eof")
    return f


def _line(k, o: image.Reader, key: str) -> Line:
    line = _lines(k).get(o.str(key))
    if line is None:
        raise image.ImageError(f"manifest: {o.where}.{key}: no such line (is the command line the one checkpointed?)")
    return line


def save_ctty(k, p) -> dict:
    """A process's controlling line other than the console (`console_ctty`)."""
    return {"ctty_line": p.ctty.name} if p.ctty is not k.console and is_line(p.ctty) else {}


def restore_ctty(k, proc, p: image.Reader) -> None:
    if p.has("ctty_line"):
        proc.ctty = _line(k, p, "ctty_line")


def save_all(k) -> list:
    """Each line's session and foreground group, but the console's."""
    return [{"name": line.name, "session": line.session, "pgrp": line.pgrp}
            for line in _lines(k).values() if line is not k.console and (line.session or line.pgrp)]


def restore_all(k, r: image.Reader) -> None:
    for e in r.list("lines") if r.has("lines") else []:
        line = _line(k, e, "name")
        line.session, line.pgrp = e.int("session", 0, MAX_PID), e.int("pgrp", 0, MAX_PID)
