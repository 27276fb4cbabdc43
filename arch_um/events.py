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
import struct

from arch_um._hostcall import ffi, lib
from arch_um import ptrace
from arch_um.ptrace import PTRACE_SYSEMU
from arch_um.ptrace import light_answer as _light_answer

EV_TASK = 0
EV_FD = 1
_MAX_EVENTS = 64
_MAX_RESUMES = 256
NO_DEADLINE = -1

# What the scheduler reads of every event, in one unpack (a cffi field
# read costs about 75 ns here, an unpack of all of these 150 ns): kind, id,
# status, has_regs, compat, notif, msg, then from its registers r10, r9,
# r8, rdx, rsi, rdi and orig_rax (the syscall's arguments 3-5, 2-0 and its
# number).  A resume is written the same way: pid, op, sig, how, rax, the
# regs pointer (set apart, only for a full register load) and notif_id.
EVENT_HEAD = struct.Struct("6iQ56x3Q16x3QQ")
EVENT_SIZE = ffi.sizeof("struct umlpy_event")
_RESUME = struct.Struct("4iQ8xQ")
_RESUME_SIZE = ffi.sizeof("struct umlpy_resume")
_R = ffi.offsetof("struct umlpy_event", "regs")
assert EVENT_HEAD.size == _R + ffi.offsetof("struct user_regs_struct", "orig_rax") + 8
assert ffi.offsetof("struct user_regs_struct", "r10") == 56
assert ffi.offsetof("struct user_regs_struct", "rdx") == 96
assert ffi.offsetof("struct umlpy_resume", "notif_id") == 32 and _RESUME.size == _RESUME_SIZE

HOST_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH,
                signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
EPOLLERR = select.EPOLLERR
EPOLLHUP = select.EPOLLHUP


class EventLoop:
    def __init__(self) -> None:
        self.epoll = select.epoll()
        self._epfd = self.epoll.fileno()
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
        self.event_buf = memoryview(ffi.buffer(self._events))
        self._resumes = ffi.new("struct umlpy_resume[]", _MAX_RESUMES)
        self._resume_buf = memoryview(ffi.buffer(self._resumes))
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
        i = self._nres
        _RESUME.pack_into(self._resume_buf, i * _RESUME_SIZE, pid, op, sig, how, regs.rax, nid or 0)
        if how == ptrace.REGS_ALL:
            self._resumes[i].regs = regs
        self._nres = i + 1

    def flush(self) -> None:
        for i in range(self._nres):
            lib.umlpy_resume(self._resumes + i)
        self._nres = 0

    def run(self, deadline: int):
        """Resume queued tasks, then wait until an event or the deadline
        (monotonic ns; 0: do not wait, NO_DEADLINE: no timer); returns a
        cffi array and a count.

        Each event has kind (EV_TASK/EV_FD), id (host pid or fd), status,
        has_regs/regs (syscall stops) and msg (ptrace event message); the
        hot path reads them with EVENT_HEAD from event_buf.
        """
        died = ptrace.take_died()
        k = len(died)
        if k:
            for i, (pid, status) in enumerate(died):      # exits seen by ensure_stopped
                e = self._events[i]
                e.kind, e.id, e.status, e.has_regs, e.notif = EV_TASK, pid, status, 0, 0
        n = lib.umlpy_run(self._resumes, self._nres, self._epfd, self.chld_fd,
                          self._events + k if k else self._events, _MAX_EVENTS - k, 0 if k else deadline)
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
