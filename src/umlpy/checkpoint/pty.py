"""Pseudo-terminals in a checkpoint: every live pty pair of devpts
(drivers/pty.py) under its index (a restore makes /dev/pts/N again with
the same N), with the slave's termios, window size, session and
foreground group and n_tty's state (the input not yet through the line
discipline, the read buffer with its canonical line ends, the editing
state, output held by flow control), the master's side (the slave's
output not read yet, lock, packet mode) and the node's owner and mode.
Files on them are `ptmx` (a master) and `pts` (a slave) open
descriptions naming the pty by index; a process's controlling tty may be
one (`ctty_pty`).

Refused: a pty whose master is closed (its slave hung up), a slave file
hung up or opened as /dev/console, ttys that are neither the console nor
a pty slave, files on them with an F_SETOWN owner or O_ASYNC.  A
non-canonical read's VTIME timer is not carried: the read, made again,
waits its whole time again (as every relative timeout of a restore).
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import structs
from umlpy.checkpoint import image
from umlpy.drivers import n_tty
from umlpy.drivers import termbits as TB
from umlpy.drivers.pty import MASTER_LIMIT, PtmxFile, PtyPair, PtySlave
from umlpy.drivers.tty import TtyFile
from umlpy.fs.devpts import NR_UNIX98_PTY_MAX, devpts_instance
from umlpy.kernel.errors import KernelError
from umlpy.vfs import namei

U32 = 1 << 32
MAX_PID = 1 << 22
COLUMNS = 1 << 20
TERMIOS_WORDS = ("iflag", "oflag", "cflag", "lflag", "ispeed", "ospeed")
TTY_FLAGS = ("exclusive", "lnext", "erasing", "stopped", "tco_stopped")
PTMX_RDEV, TTY_RDEV = structs.makedev(5, 2), structs.makedev(5, 0)     # /dev/ptmx, /dev/tty
MAX_BUF = MASTER_LIMIT + (1 << 16)      # slave output waiting for the master (TIOCSTI may add a little)


def handles(f) -> bool:
    return isinstance(f, PtmxFile) or isinstance(f, TtyFile) and isinstance(f.tty, PtySlave)


def is_pty_slave(tty) -> bool:
    return isinstance(tty, PtySlave)


def unsaved_file(k, f) -> str | None:
    """Why a file on a pty cannot be saved, or None."""
    if isinstance(f, TtyFile) and (f.hung_up or f.redirect):
        return "a hung-up pty slave file"
    return None


def unsaved(k) -> str | None:
    """Why the machine's ptys cannot be saved, or None."""
    for index, pair in sorted(devpts_instance().ptys.items()):
        if not pair.master_open:
            return f"pty {index} whose master is closed"
        if pair.slave._echo:
            return f"pty {index} in the middle of its line discipline's work"
    return None


def _path(k, d) -> str | None:
    return None if d is None else d.path(k.root).decode("utf-8", "surrogateescape")


def save_file(k, f) -> dict:
    """A master (`ptmx`) or slave (`pts`) open description."""
    if isinstance(f, PtmxFile):
        return {"kind": "ptmx", "pty": f.pair.index, "path": _path(k, f.dentry)}
    return {"kind": "pts", "pty": f.tty.pair.index, "path": _path(k, f.dentry), "after_eof": f.after_eof}


def save_all(k) -> list:
    """Every live pty of devpts (checked by unsaved first)."""
    out = []
    for index, p in sorted(devpts_instance().ptys.items()):
        t = p.slave
        node = p.fs.nodes[index]
        tm = t.termios
        out.append({
            "index": index, "locked": p.locked, "packet": p.packet, "master_pktstatus": p.pktstatus,
            "other_closed": p.other_closed, "buf": bytes(p.buf).hex(),
            "node": {"mode": node.mode & 0o7777, "uid": node.uid, "gid": node.gid},
            "termios": {**{n: getattr(tm, n) for n in TERMIOS_WORDS}, "line": tm.line, "cc": bytes(tm.cc).hex()},
            "winsize": t.winsize.hex(), "session": t.session, "pgrp": t.pgrp,
            **{n: getattr(t, n) for n in TTY_FLAGS},
            "pending": bytes(t.pending).hex(), "rbuf": bytes(t.rbuf).hex(),
            "line_ends": [[end, int(eof)] for end, eof in t.line_ends],
            "column": t.column, "canon_column": t.canon_column, "held": bytes(t.held).hex(),
            "pktstatus": t.pktstatus,
        })
    return out


# -- restore --------------------------------------------------------------------
def _termios(o: image.Reader) -> TB.Termios:
    w = {n: o.int(n, 0, U32) for n in TERMIOS_WORDS}
    cc = o.hex("cc", TB.NCCS)
    if len(cc) != TB.NCCS:
        raise image.ImageError(f"manifest: {o.where}.cc: not {TB.NCCS} bytes")
    # c_line as TCSETS stored it: the discipline is N_TTY whatever it says (TIOCSETD takes no other)
    t = TB.Termios(w["iflag"], w["oflag"], w["cflag"], w["lflag"], cc, o.int("line", 0, 256))
    t.ispeed, t.ospeed = w["ispeed"], w["ospeed"]
    return t


class Ptys(dict):
    """The restored ptys, index -> PtyPair; mastered: the indexes a
    master file was made for."""

    def __init__(self) -> None:
        super().__init__()
        self.mastered: set[int] = set()


def make_all(k, init, r: image.Reader) -> Ptys:
    """Every saved pty made again under its index."""
    out = Ptys()
    for o in r.list("ptys") if r.has("ptys") else []:
        index = o.int("index", 0, NR_UNIX98_PTY_MAX)
        if index in devpts_instance().ptys:
            raise image.ImageError(f"manifest: {o.where}.index: pty {index} twice")
        p = out[index] = PtyPair(k, init, index)
        node = o.sub("node")
        n = p.fs.nodes[index]
        n.mode = C.S_IFCHR | node.int("mode", 0, 0o10000)
        n.uid, n.gid = node.int("uid", 0, U32), node.int("gid", 0, U32)
        p.locked, p.packet, p.other_closed = o.bool("locked"), o.bool("packet"), o.bool("other_closed")
        p.pktstatus = o.int("master_pktstatus", 0, 256)
        p.buf = bytearray(o.hex("buf", MAX_BUF))
        t = p.slave
        t.termios = _termios(o.sub("termios"))
        t.fixup_termios(t.termios)
        t.winsize = o.hex("winsize", 8)
        if len(t.winsize) != 8:
            raise image.ImageError(f"manifest: {o.where}.winsize: not 8 bytes")
        t.session, t.pgrp = o.int("session", 0, MAX_PID), o.int("pgrp", 0, MAX_PID)
        for name in TTY_FLAGS:
            setattr(t, name, o.bool(name))
        t.pending = bytearray(o.hex("pending", n_tty.INPUT_LIMIT))
        t.rbuf = bytearray(o.hex("rbuf", n_tty.N_TTY_BUF_SIZE))
        ends = o.list_of_ints("line_ends", 2, (0, 0), (len(t.rbuf) + 1, 2))
        if any(b[0] < a[0] for a, b in zip(ends, ends[1:])) or not t.canonical and ends:
            raise image.ImageError(f"manifest: {o.where}.line_ends: not canonical line ends in order")
        t.line_ends.extend([end, bool(eof)] for end, eof in ends)
        t.column, t.canon_column = o.int("column", 0, COLUMNS), o.int("canon_column", 0, COLUMNS)
        t.held = bytearray(o.hex("held", MAX_BUF))
        t.pktstatus = o.int("pktstatus", 0, 256)
    return out


def _pair(ptys: Ptys, o: image.Reader, key: str = "pty") -> PtyPair:
    p = ptys.get(o.int(key, 0, NR_UNIX98_PTY_MAX))
    if p is None:
        raise image.ImageError(f"manifest: {o.where}.{key}: no such pty")
    return p


def _dentry(t, o: image.Reader):
    if o.doc.get("path") is None:
        return None
    path = o.path("path")
    try:
        return namei.lookup(t, C.AT_FDCWD, path)
    except KernelError as e:
        raise image.ImageError(f"manifest: {o.where}.path: {path.decode(errors='replace')}: cannot look it up "
                               f"again (errno {e.errno})") from None


def make_file(t, o: image.Reader, flags: int, ptys: Ptys):
    """A `ptmx` or `pts` open description on its restored pty."""
    p = _pair(ptys, o)
    d = _dentry(t, o)
    if o.str("kind") == "ptmx":
        if d is None or d.inode.rdev != PTMX_RDEV:
            raise image.ImageError(f"manifest: {o.where}.path: not a ptmx")
        ptys.mastered.add(p.index)
        return PtmxFile(d, d.inode, flags, p)
    node = d.inode if d is not None else p.fs.nodes[p.index]
    if node.rdev not in (p.slave.rdev, TTY_RDEV):
        raise image.ImageError(f"manifest: {o.where}.path: not the pty's slave nor /dev/tty")
    f = TtyFile(d, node, flags, p.slave)
    f.after_eof = o.bool("after_eof")
    return f


def check(ptys: Ptys) -> None:
    """Every restored pty has its master open in some file (else nothing
    would ever hang its slave up)."""
    for index in ptys.keys() - ptys.mastered:
        raise image.ImageError(f"manifest: pty {index}: no file holds its master")


def restore_ctty(proc, o: image.Reader, ptys: Ptys) -> None:
    """A process whose controlling tty is a pty (`ctty_pty`, absent
    otherwise): that pty's slave, whose session must be the process's."""
    if not o.has("ctty_pty"):
        return
    p = _pair(ptys, o, "ctty_pty")
    if p.slave.session != proc.sid or o.bool("console_ctty"):
        raise image.ImageError(f"manifest: {o.where}.ctty_pty: a pty of another session")
    proc.ctty = p.slave
