"""tty_ioctl and the job-control ioctls (tty_io.c, tty_jobctrl.c) as the
half of a Tty that answers ioctls; a mixin of drivers/tty.py's Tty."""
from __future__ import annotations

import struct

from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi import structs
from umlpy.abi.capability import CAP_SYS_ADMIN
from umlpy.drivers.termbits import (FIONREAD, TCFLSH, TCGETA, TCGETS, TCGETS2, TCIFLUSH, TCIOFF, TCIOFLUSH,
                                    TCION, TCOFLUSH, TCOOFF, TCOON, TCSBRK, TCSBRKP, TCSETA, TCSETAF, TCSETAW,
                                    TCSETS, TCSETS2, TCSETSF, TCSETSF2, TCSETSW, TCSETSW2, TCXONC, TERMIOS2_T,
                                    TERMIOS_T, TERMIO_T, TIOCCBRK, TIOCEXCL, TIOCGDEV, TIOCGETD, TIOCGEXCL,
                                    TIOCGPGRP, TIOCGSID, TIOCGWINSZ, TIOCNOTTY, TIOCNXCL, TIOCOUTQ, TIOCSBRK,
                                    TIOCSCTTY, TIOCSETD, TIOCSPGRP, TIOCSTI, TIOCSWINSZ, TIOCVHANGUP, Termios,
                                    VSTART, VSTOP)
from umlpy.kernel import jobctl
from umlpy.kernel.cred import capable, need
from umlpy.kernel.errors import KernelError
from umlpy.vfs.file import File


_INT = struct.Struct("<i")

_SET_TERMIOS = {TCSETS: TCGETS, TCSETSW: TCGETS, TCSETSF: TCGETS, TCSETA: TCGETA, TCSETAW: TCGETA,
                TCSETAF: TCGETA, TCSETS2: TCGETS2, TCSETSW2: TCGETS2, TCSETSF2: TCGETS2}
_GET_TERMIOS = {TCGETS: (Termios.pack, TERMIOS_T.size), TCGETA: (Termios.pack_termio, TERMIO_T.size),
                TCGETS2: (Termios.pack2, TERMIOS2_T.size)}
_TERMIOS_SIZE = {TCGETS: TERMIOS_T.size, TCGETA: TERMIO_T.size, TCGETS2: TERMIOS2_T.size}


class TtyIoctl:
    """The ioctl half of a Tty."""

    # -- ioctl ------------------------------------------------------------------------------
    def ioctl(self, f: File, task, req: int, arg: int, via_master: bool = False) -> int:
        """tty_ioctl.  via_master: the request came on the pty master, for this slave."""
        if getattr(f, "hung_up", False):
            raise KernelError(E.ENOTTY if req == TIOCSPGRP else E.EIO)
        mem = task.mem
        if req in _GET_TERMIOS:
            pack, _ = _GET_TERMIOS[req]
            mem.write(arg, pack(self.termios))
            return 0
        if req in _SET_TERMIOS:
            return self._tcsets(task, req, arg)
        handler = _IOCTLS.get(req)
        if handler is None:
            raise KernelError(E.ENOTTY)
        return handler(self, f, task, arg, via_master)

    def _tcsets(self, task, req: int, arg: int) -> int:
        jobctl.check_change(task, self, S.SIGTTOU)
        new = self.termios.with_user(req, task.mem.read(arg, _TERMIOS_SIZE[_SET_TERMIOS[req]]))
        if req not in (TCSETS, TCSETA, TCSETS2):
            self.drain()
        if req in (TCSETSF, TCSETAF, TCSETSF2):
            self.flush(TCIFLUSH)
        self.set_termios(new)
        return 0

    def _ctty_of(self, task, via_master: bool) -> None:
        """tiocgpgrp/tiocgsid: only the session's own tty answers (or the master)."""
        proc = task.proc
        if via_master or proc.ctty is self:
            return
        if self.adopt_by_leader and proc.ctty is None and proc.sid == proc.pid and not self.session:
            jobctl.set_ctty(proc, self)
            return
        raise KernelError(E.ENOTTY)

    def _tiocgpgrp(self, f, task, arg, via_master) -> int:
        self._ctty_of(task, via_master)
        task.mem.write(arg, _INT.pack(self.k.procs.vnr(task.proc, self.pgrp)))
        return 0

    def _tiocspgrp(self, f, task, arg, via_master) -> int:
        try:
            jobctl.check_change(task, self, S.SIGTTOU)
        except KernelError as e:
            raise KernelError(E.ENOTTY if e.errno == E.EIO else e.errno) from None
        (pg,) = _INT.unpack(task.mem.read(arg, 4))
        if pg < 0:
            raise KernelError(E.EINVAL)
        pg = self.k.procs.global_nr(task.proc, pg)     # 0 (ESRCH) if its pid namespace has none
        proc = task.proc
        if proc.ctty is not self or self.session != proc.sid:
            raise KernelError(E.ENOTTY)
        if not jobctl.pid_in_use(self.k, pg):
            raise KernelError(E.ESRCH)
        if jobctl.session_of_pgrp(self.k, pg) != proc.sid:
            raise KernelError(E.EPERM)
        self.pgrp = pg
        return 0

    def _tiocgsid(self, f, task, arg, via_master) -> int:
        if not via_master and task.proc.ctty is not self:
            raise KernelError(E.ENOTTY)
        if not self.session:
            raise KernelError(E.ENOTTY)
        task.mem.write(arg, _INT.pack(self.k.procs.vnr(task.proc, self.session)))
        return 0

    def _tiocsctty(self, f, task, arg, via_master) -> int:
        proc = task.proc
        if proc.sid == proc.pid and self.session == proc.sid:
            return 0
        if proc.sid != proc.pid or proc.ctty is not None:
            raise KernelError(E.EPERM)
        admin = capable(proc.creds, CAP_SYS_ADMIN)
        if self.session:
            if arg != 1 or not admin:
                raise KernelError(E.EPERM)
            jobctl.session_clear_tty(self.k, self.session)    # steal it
        if not f.readable and not admin:
            raise KernelError(E.EPERM)
        jobctl.set_ctty(proc, self)
        return 0

    def _tiocnotty(self, f, task, arg, via_master) -> int:
        proc = task.proc
        if via_master or proc.ctty is not self:
            raise KernelError(E.ENOTTY)
        jobctl.disassociate_ctty(self.k, proc, on_exit=False)
        proc.ctty = None
        return 0

    def _tiocgwinsz(self, f, task, arg, via_master) -> int:
        task.mem.write(arg, self.winsize)
        return 0

    def _tiocswinsz(self, f, task, arg, via_master) -> int:
        self.resize(task.mem.read(arg, 8))
        return 0

    def _fionread(self, f, task, arg, via_master) -> int:
        if self.canonical:
            n = self.line_ends[-1][0] if self.line_ends else 0
        else:
            n = len(self.rbuf)
        task.mem.write(arg, _INT.pack(n))
        return 0

    def _tiocoutq(self, f, task, arg, via_master) -> int:
        task.mem.write(arg, _INT.pack(self.chars_in_buffer() + len(self.held)))
        return 0

    def _tcflsh(self, f, task, arg, via_master) -> int:
        jobctl.check_change(task, self, S.SIGTTOU)
        if arg not in (TCIFLUSH, TCOFLUSH, TCIOFLUSH):
            raise KernelError(E.EINVAL)
        self.flush(arg)
        return 0

    def _tcxonc(self, f, task, arg, via_master) -> int:
        jobctl.check_change(task, self, S.SIGTTOU)
        if arg == TCOOFF:
            if not self.tco_stopped:
                self.tco_stopped = True
                self.stop()
        elif arg == TCOON:
            if self.tco_stopped:
                self.tco_stopped = False
                self.start()
        elif arg in (TCIOFF, TCION):
            self.send_xchar(self.termios.cc[VSTOP if arg == TCIOFF else VSTART])
        else:
            raise KernelError(E.EINVAL)
        return 0

    def _tcsbrk(self, f, task, arg, via_master) -> int:
        jobctl.check_change(task, self, S.SIGTTOU)
        self.drain()
        return 0

    def _tiocsti(self, f, task, arg, via_master) -> int:
        """Linux 6.2+ with legacy_tiocsti off: CAP_SYS_ADMIN only."""
        need(task.proc.creds, CAP_SYS_ADMIN, E.EIO)
        self.receive(task.mem.read(arg, 1))
        return 0

    def _excl(self, f, task, arg, via_master) -> int:
        self.exclusive = True
        return 0

    def _nxcl(self, f, task, arg, via_master) -> int:
        self.exclusive = False
        return 0

    def _gexcl(self, f, task, arg, via_master) -> int:
        task.mem.write(arg, _INT.pack(int(self.exclusive)))
        return 0

    def _getd(self, f, task, arg, via_master) -> int:
        task.mem.write(arg, _INT.pack(self.termios.line))
        return 0

    def _setd(self, f, task, arg, via_master) -> int:
        (ld,) = _INT.unpack(task.mem.read(arg, 4))
        if ld != 0:
            raise KernelError(E.EINVAL)     # only N_TTY here
        return 0

    def _gdev(self, f, task, arg, via_master) -> int:
        ma, mi = structs.major(self.rdev), structs.minor(self.rdev)
        task.mem.write(arg, struct.pack("<I", (mi & 0xFF) | (ma << 8) | ((mi & ~0xFF) << 12)))
        return 0

    def _vhangup(self, f, task, arg, via_master) -> int:
        need(task.proc.creds, CAP_SYS_ADMIN)
        self.hangup()
        return 0

    def _nop(self, f, task, arg, via_master) -> int:
        return 0

_IOCTLS = {
    TIOCGPGRP: TtyIoctl._tiocgpgrp, TIOCSPGRP: TtyIoctl._tiocspgrp, TIOCGSID: TtyIoctl._tiocgsid,
    TIOCSCTTY: TtyIoctl._tiocsctty, TIOCNOTTY: TtyIoctl._tiocnotty,
    TIOCGWINSZ: TtyIoctl._tiocgwinsz, TIOCSWINSZ: TtyIoctl._tiocswinsz,
    FIONREAD: TtyIoctl._fionread, TIOCOUTQ: TtyIoctl._tiocoutq,
    TCFLSH: TtyIoctl._tcflsh, TCXONC: TtyIoctl._tcxonc, TCSBRK: TtyIoctl._tcsbrk, TCSBRKP: TtyIoctl._tcsbrk,
    TIOCSBRK: TtyIoctl._nop, TIOCCBRK: TtyIoctl._nop, TIOCSTI: TtyIoctl._tiocsti,
    TIOCEXCL: TtyIoctl._excl, TIOCNXCL: TtyIoctl._nxcl, TIOCGEXCL: TtyIoctl._gexcl,
    TIOCGETD: TtyIoctl._getd, TIOCSETD: TtyIoctl._setd, TIOCGDEV: TtyIoctl._gdev, TIOCVHANGUP: TtyIoctl._vhangup,
}
