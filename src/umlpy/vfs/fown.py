"""A file's owner for I/O signals (Linux's fown_struct and send_sigio).

F_SETOWN/F_SETOWN_EX name a thread, a process or a process group, and
F_SETSIG the signal: 0 sends a plain SIGIO, another signal carries the fd
and the poll band in its siginfo (si_code POLL_IN, POLL_OUT, POLL_MSG, ...).
Sent for O_ASYNC files when they become ready, and by dnotify.
"""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import signals as S
from umlpy.kernel import jobctl

F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP = 0, 1, 2
POLL_IN, POLL_OUT, POLL_MSG, POLL_ERR, POLL_PRI, POLL_HUP = range(1, 7)
# band_table: the poll bits each reason reports in si_band
_BAND = {POLL_IN: 0x41, POLL_OUT: 0x304, POLL_MSG: 0x441, POLL_ERR: 0x8, POLL_PRI: 0x82, POLL_HUP: 0x18}


class FileOwner:
    """Who gets a file's I/O signals, with the ids of whoever named them
    (sigio_perm checks those against each receiver)."""

    def __init__(self, kernel) -> None:
        self.kernel = kernel
        self.type = F_OWNER_TID     # a zeroed fown_struct: PIDTYPE_PID, no pid
        self.nr = 0
        self.uid = self.euid = 0
        self.signum = 0

    def set(self, task, kind: int, nr: int) -> None:
        """__f_setown: the owner, and the setter's uid and euid."""
        self.type, self.nr = kind, nr
        self.uid, self.euid = task.proc.creds.uid, task.proc.creds.euid

    def _alive(self) -> list:
        """The tasks (thread owner) or processes the owner names now."""
        procs = self.kernel.procs
        if self.nr <= 0:
            return []
        if self.type == F_OWNER_TID:
            t = procs.task(self.nr)
            return [t] if t is not None else []
        if self.type == F_OWNER_PID:
            p = procs.by_pid.get(self.nr)
            return [p] if p is not None and not p.exited else []
        return jobctl.pgrp_members(self.kernel, self.nr)

    def get(self) -> tuple[int, int]:
        """(type, nr) as F_GETOWN_EX reports it: nr 0 once nothing it named lives."""
        return self.type, self.nr if self._alive() else 0

    def _may_signal(self, proc) -> bool:
        """sigio_perm: the setter was root, or one of its uid and euid is the
        receiver's uid or saved uid."""
        c = proc.creds
        return self.euid == 0 or bool({self.uid, self.euid} & {c.uid, c.suid})

    def send(self, fd: int, reason: int) -> None:
        """send_sigio: F_SETSIG's signal with the fd and band, or SIGIO."""
        if self.signum:
            self._signal(self.signum, reason, ("raw", struct.pack("<qi", _BAND[reason], fd)))
        else:
            self._signal(S.SIGIO, C.SI_KERNEL, ())

    def send_urg(self) -> None:
        """send_sigurg: SIGURG (whatever F_SETSIG says)."""
        self._signal(S.SIGURG, C.SI_KERNEL, ())

    def _signal(self, sig: int, code: int, fields: tuple) -> None:
        """sig to each task or process the owner names that sigio_perm lets it reach."""
        signals = self.kernel.signals
        for x in self._alive():
            if not self._may_signal(x if self.type != F_OWNER_TID else x.proc):
                continue
            if self.type == F_OWNER_TID:
                signals.send_task(x, sig, code, fields)
            else:
                signals.send_proc(x, sig, code, fields)


def owner_of(f, kernel) -> FileOwner:
    """The file's owner record, made on first use (file_f_owner_allocate)."""
    if f.owner is None:
        f.owner = FileOwner(kernel)
    return f.owner


def send_sigio(f, fd: int, reason: int) -> None:
    if f.owner is not None:
        f.owner.send(fd, reason)
