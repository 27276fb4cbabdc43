"""The one event loop: guest traps, device fds and host signals.

Host signals are never handled asynchronously: SIGCHLD ("a guest CPU
trapped") is read from a signalfd inside the hot-path helper; SIGINT, SIGTERM,
SIGHUP and SIGWINCH come from a second signalfd that is an ordinary device fd.
Timers are the loop's timeout: the kernel passes its next deadline (an
absolute CLOCK_MONOTONIC time in nanoseconds), which a host timer meets to
the nanosecond even while guests compute (see umlpy_run).
"""
from __future__ import annotations

import os
import select
import signal

from arch_um._hostcall import ffi, lib
from arch_um import ptrace
from arch_um.ptrace import PTRACE_SYSEMU
from arch_um.ptrace import light_answer as _light_answer

EV_TASK = 0
EV_FD = 1
_MAX_EVENTS = 64
_MAX_RESUMES = 256
NO_DEADLINE = -1

HOST_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH,
                signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
EPOLLERR = select.EPOLLERR
EPOLLHUP = select.EPOLLHUP


class EventLoop:
    def __init__(self) -> None:
        self.epoll = select.epoll()
        sigs = ffi.new("int[]", [signal.SIGCHLD])
        self.chld_fd = lib.umlpy_signalfd(sigs, 1)
        hs = ffi.new("int[]", list(HOST_SIGNALS))
        self.sig_fd = lib.umlpy_signalfd(hs, len(HOST_SIGNALS))
        if self.chld_fd < 0 or self.sig_fd < 0:
            raise OSError(-min(self.chld_fd, self.sig_fd), "signalfd")
        self.epoll.register(self.chld_fd, select.EPOLLIN)
        self.epoll.register(self.sig_fd, select.EPOLLIN)
        # the deadline timer and the tick that interrupt the trap loop's
        # blocking waitpid while guests compute (see umlpy_run)
        r = lib.umlpy_timers_init()
        if r < 0:
            raise OSError(-r, "timer_create")
        self.listener = -1
        self._events = ffi.new("struct umlpy_event[]", _MAX_EVENTS)
        self._resumes = ffi.new("struct umlpy_resume[]", _MAX_RESUMES)
        self._nres = 0

    def watch_seccomp(self) -> None:
        """Guests now trap through seccomp: watch its notifications."""
        fd = ptrace.seccomp_listener()
        if fd >= 0:     # after a reboot, a new one (the old one's close left epoll)
            self.listener = fd
            self.register(fd, select.EPOLLIN)

    def register(self, fd: int, events: int) -> bool:
        """Watch a device fd; False if the host cannot poll it (regular files)."""
        try:
            self.epoll.register(fd, events)
        except PermissionError:
            return False
        except FileExistsError:
            self.epoll.modify(fd, events)
        return True

    def modify(self, fd: int, events: int) -> None:
        self.epoll.modify(fd, events)

    def unregister(self, fd: int) -> None:
        try:
            self.epoll.unregister(fd)
        except (FileNotFoundError, OSError):
            pass

    def queue_resume(self, pid: int, regs, how: int, op: int = PTRACE_SYSEMU,
                     sig: int = 0) -> None:
        """Resume a task with the next run() (or now, if the batch is full)."""
        if self._nres == _MAX_RESUMES:
            self.flush()
        nid = _light_answer(pid)
        if nid is not None:
            if how == ptrace.REGS_ALL or sig:
                raise ptrace.HostError(0, "registers set for a task in a seccomp notification")
            op = ptrace.OP_NOTIF
        r = self._resumes[self._nres]
        r.notif_id = nid or 0
        r.pid, r.op, r.sig, r.how = pid, op, sig, how
        r.rax = regs.rax & 0xFFFFFFFFFFFFFFFF
        r.regs = regs
        self._nres += 1

    def flush(self) -> None:
        for i in range(self._nres):
            lib.umlpy_resume(self._resumes + i)
        self._nres = 0

    def run(self, deadline: int):
        """Resume queued tasks, then wait until an event or the deadline
        (monotonic ns; 0: do not wait, NO_DEADLINE: no timer); returns a
        cffi array and a count.

        Each event has kind (EV_TASK/EV_FD), id (host pid or fd), status,
        has_regs/regs (syscall stops) and msg (ptrace event message).
        """
        died = ptrace.take_died()
        k = len(died)
        if k:
            for i, (pid, status) in enumerate(died):      # exits seen by ensure_stopped
                e = self._events[i]
                e.kind, e.id, e.status, e.has_regs, e.notif = EV_TASK, pid, status, 0, 0
        n = lib.umlpy_run(self._resumes, self._nres, self.epoll.fileno(),
                          self.chld_fd, self._events + k, _MAX_EVENTS - k, 0 if k else deadline)
        self._nres = 0
        if n < 0:
            raise OSError(-n, "epoll_wait")
        return self._events, n + k

    def poll_tasks(self):
        n = lib.umlpy_poll_tasks(self._events, _MAX_EVENTS)
        return self._events, n

    def read_host_signal(self) -> int:
        return lib.umlpy_signalfd_read(self.sig_fd)

    def close(self) -> None:
        lib.umlpy_timers_stop()
        self.epoll.close()
        os.close(self.chld_fd)
        os.close(self.sig_fd)
