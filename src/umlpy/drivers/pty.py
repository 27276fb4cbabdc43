"""Pseudo-terminals (Unix 98): /dev/ptmx masters and /dev/pts/N slaves.

Opening /dev/ptmx (5,2) makes a pair: the master file and a slave `Tty`
(drivers/tty.py) that shows up as /dev/pts/N (fs/devpts.py), locked until
TIOCSPTLCK(0) (unlockpt).  What the master writes is the slave's input,
through the slave's line discipline; what the slave writes, after its
output processing, is what the master reads.  Master termios requests
act on the slave, as Linux's pty_unix98 driver does.

Lifetimes follow Linux: closing the master hangs the slave up (SIGHUP to
its session leader, EOF on slave reads, EIO on writes) and removes its
name; once every slave file is closed the master's reads fail with EIO
after the data already there; the index is free again when both sides
are closed.  Packet mode (TIOCPKT) is supported for programs like
`script` and terminal emulators.
"""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi import structs
from umlpy.abi.capability import CAP_SYS_ADMIN
from umlpy.drivers import n_tty
from umlpy.drivers import termbits as TB
from umlpy.drivers import tty as T
from umlpy.fs.devpts import PTY_MAJOR, devpts_instance
from umlpy.kernel import jobctl
from umlpy.kernel.cred import need
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs import devices
from umlpy.vfs.file import POLLHUP, POLLIN, POLLOUT, POLLPRI, POLLRDNORM, POLLWRNORM, File

MASTER_LIMIT = 65536        # slave output the master has not read yet
_INT = struct.Struct("<i")
_PACKET_CLEARS = {TB.TIOCPKT_STOP: TB.TIOCPKT_START, TB.TIOCPKT_START: TB.TIOCPKT_STOP,
                  TB.TIOCPKT_NOSTOP: TB.TIOCPKT_DOSTOP, TB.TIOCPKT_DOSTOP: TB.TIOCPKT_NOSTOP}


def _slave_termios() -> TB.Termios:
    t = TB.Termios.std()
    t.cflag = TB.B38400 | TB.CS8 | TB.CREAD
    return t


class PtySlave(T.Tty):
    is_pty = True

    def __init__(self, k, pair: PtyPair, index: int) -> None:
        super().__init__(k, f"pts/{index}", structs.makedev(PTY_MAJOR, index), _slave_termios())
        self.pair = pair

    def transmit(self, data: bytes) -> None:
        p = self.pair
        if p.master_open:
            p.buf += data
            p.read_wq.wake_all()

    def write_room(self) -> int:
        return max(0, MASTER_LIMIT - len(self.pair.buf))

    def input_consumed(self) -> None:
        self.pair.room_wq.wake_all()

    def packet_event(self, bits: int) -> None:
        p = self.pair
        if p.packet:
            p.pktstatus = (p.pktstatus & ~_PACKET_CLEARS.get(bits, 0)) | bits
            p.read_wq.wake_all()

    def fixup_termios(self, t: TB.Termios) -> None:
        t.cflag = (t.cflag & ~(TB.CSIZE | TB.PARENB)) | TB.CS8 | TB.CREAD

    def open_check(self, task) -> None:
        p = self.pair
        if not p.master_open or p.locked:
            raise KernelError(E.EIO)
        super().open_check(task)
        p.other_closed = False

    def last_close(self) -> None:
        self.pair.slave_closed()


class PtyPair:
    """One pty: the slave Tty and the master's side of it."""

    def __init__(self, k, task, index: int | None = None) -> None:
        self.fs = devpts_instance()
        creds = task.proc.creds
        self.index = self.fs.alloc(self, creds.fsuid, creds.fsgid, index)
        self.slave = PtySlave(k, self, self.index)
        self.buf = bytearray()              # slave output for the master to read
        self.read_wq = WaitQueue(f"ptm{self.index} read")
        self.room_wq = WaitQueue(f"ptm{self.index} room")
        self.locked = True
        self.master_open = True
        self.other_closed = False           # every slave file closed (after one was open)
        self.packet = False
        self.pktstatus = 0
        devices.register_char(PTY_MAJOR, self.index, open_slave)

    def slave_closed(self) -> None:
        self.other_closed = True
        self.read_wq.wake_all()
        self.room_wq.wake_all()
        if not self.master_open:
            self.fs.release(self.index)

    def master_closed(self) -> None:
        self.master_open = False
        self.packet = False
        self.fs.kill(self.index)
        self.slave.hangup()
        if not self.slave.files:
            self.fs.release(self.index)


def open_slave(dentry, inode, flags: int, task) -> T.TtyFile:
    pair = devpts_instance().ptys.get(structs.minor(inode.rdev))
    if pair is None:
        raise KernelError(E.EIO)
    return T.open_tty(dentry, inode, flags, task, pair.slave)


class PtmxFile(File):
    """The master side of a pty."""

    kind = "ptmx"
    lazy_write = True

    def __init__(self, dentry, inode, flags: int, pair: PtyPair) -> None:
        super().__init__(dentry, inode, flags)
        self.pair = pair

    def read(self, task, n: int) -> bytes:
        p = self.pair
        if p.packet and p.pktstatus and n:
            status, p.pktstatus = p.pktstatus, 0
            return bytes([status])
        if p.buf and n:
            k = n - 1 if p.packet else n
            data = bytes(p.buf[:k])
            del p.buf[:k]
            p.slave.write_wq.wake_all()
            return b"\0" + data if p.packet else data
        if p.other_closed:
            raise KernelError(E.EIO)
        if n == 0:
            return b""
        if self.nonblock:
            raise KernelError(E.EAGAIN)
        raise Block(p.read_wq)

    def write(self, task, data: bytes) -> int:
        return self._write(data, 0)

    def _write(self, data: bytes, done: int) -> int:
        """Input for the slave, as much as its queue takes; then wait for room."""
        slave = self.pair.slave
        while done < len(data):
            room = slave.input_room()
            if not room:
                return n_tty.wait_for_room(self.pair.room_wq, self.nonblock, done,
                                       lambda d: self._write(data, d))
            chunk = data[done:done + room]
            slave.receive(chunk)
            done += len(chunk)
        return done

    def poll(self) -> int:
        p = self.pair
        ev = 0
        if p.buf:
            ev |= POLLIN | POLLRDNORM
        if p.packet and p.pktstatus:
            ev |= POLLPRI | POLLIN | POLLRDNORM
        if p.other_closed:
            ev |= POLLHUP
        if p.slave.input_room():
            ev |= POLLOUT | POLLWRNORM
        return ev

    def poll_queues(self) -> list:
        return [self.pair.read_wq, self.pair.room_wq]

    def ioctl(self, task, req: int, arg: int) -> int:
        p = self.pair
        mem = task.mem
        if req == TB.TIOCGPTN:
            mem.write(arg, struct.pack("<I", p.index))
        elif req == TB.TIOCSPTLCK:
            p.locked = bool(_INT.unpack(mem.read(arg, 4))[0])
        elif req == TB.TIOCGPTLCK:
            mem.write(arg, _INT.pack(int(p.locked)))
        elif req == TB.TIOCPKT:
            on = bool(_INT.unpack(mem.read(arg, 4))[0])
            if on and not p.packet:
                p.pktstatus = 0
            p.packet = on
        elif req == TB.TIOCGPKT:
            mem.write(arg, _INT.pack(int(p.packet)))
        elif req == TB.TIOCSIG:
            if arg not in (S.SIGINT, S.SIGQUIT, S.SIGTSTP):
                raise KernelError(E.EINVAL)
            jobctl.kill_pgrp(task.kernel, p.slave.pgrp, arg)
        elif req == TB.FIONREAD:
            mem.write(arg, _INT.pack(len(p.buf)))
        elif req == TB.TIOCOUTQ:
            mem.write(arg, _INT.pack(0))
        elif req == TB.TIOCGPTPEER:
            return self._open_peer(task, arg)
        elif req in (TB.TCFLSH, TB.TCXONC, TB.TIOCSTI):
            return self._own_ioctl(task, req, arg)
        else:
            return p.slave.ioctl(self, task, req, arg, via_master=True)
        return 0

    def _own_ioctl(self, task, req: int, arg: int) -> int:
        """Requests Linux applies to the master's own tty, not to the slave."""
        p = self.pair
        if req == TB.TCFLSH:
            if arg not in (TB.TCIFLUSH, TB.TCOFLUSH, TB.TCIOFLUSH):
                raise KernelError(E.EINVAL)
            if arg != TB.TCOFLUSH:
                p.buf.clear()                   # the slave's output not read yet
                p.slave.write_wq.wake_all()
            if arg != TB.TCIFLUSH:
                p.slave.pending.clear()         # input the slave has not taken yet
                p.room_wq.wake_all()
        elif req == TB.TCXONC:
            if arg not in (TB.TCOOFF, TB.TCOON, TB.TCIOFF, TB.TCION):
                raise KernelError(E.EINVAL)
            if arg in (TB.TCIOFF, TB.TCION):      # the master's VSTOP/VSTART (its defaults)
                p.slave.receive(b"\023" if arg == TB.TCIOFF else b"\021")
        else:                                   # TIOCSTI: input of the master itself
            need(task.proc.creds, CAP_SYS_ADMIN, E.EIO)
            p.buf += task.mem.read(arg, 1)
            p.read_wq.wake_all()
        return 0

    def _open_peer(self, task, flags: int) -> int:
        """TIOCGPTPEER: the slave, opened without a path lookup (Linux checks no flags)."""
        node = self.pair.fs.nodes.get(self.pair.index)
        if node is None:
            raise KernelError(E.EIO)
        f = T.open_tty(None, node, flags & ~(C.O_CLOEXEC | C.O_NOCTTY), task, self.pair.slave,
                       noctty=bool(flags & C.O_NOCTTY))
        try:
            return task.files.install(f, bool(flags & C.O_CLOEXEC))
        except KernelError:
            f.get().put()       # no fd for it: close it again
            raise

    def release(self) -> None:
        self.pair.master_closed()


def open_ptmx(dentry, inode, flags: int, task) -> PtmxFile:
    return PtmxFile(dentry, inode, flags, PtyPair(task.kernel, task))


def register() -> None:
    devices.register_char(5, 2, open_ptmx)
