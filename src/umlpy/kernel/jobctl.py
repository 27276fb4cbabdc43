"""Job control on the process side: controlling terminals, sessions, groups.

What Linux's drivers/tty/tty_jobctrl.c and kernel/exit.c do with a
process's controlling tty and its process group, kept apart from the line
discipline (drivers/tty.py) because process exit and signal delivery need
it too:

- `check_change` is __tty_check_change: a background process group that
  reads its controlling tty (or writes it with TOSTOP, or changes its
  settings) gets SIGTTIN/SIGTTOU and the syscall restarts once it is
  continued; EIO if it ignores the signal (reads) or its group is orphaned.
- `disassociate_ctty` runs when a session leader exits or gives up its tty:
  the foreground group gets SIGHUP, and the session loses the tty.
- `exit_hook` also sends SIGHUP+SIGCONT to process groups that the exit
  orphans while they have stopped members (POSIX 3.2.2.2), so no stopped
  job waits forever for a shell that is gone.
- `resume_stopped` restarts the syscall a job-control stop interrupted, as
  Linux's signal delivery does after the stop ends.

A tty here is any object with `session` and `pgrp` (ints, 0 for none),
`is_pty` and `hangup(exit_session)`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.kernel.task import Process, Task

_MASK64 = (1 << 64) - 1


# -- groups and sessions ---------------------------------------------------------

def live(k) -> list[Process]:
    return [p for p in k.procs.by_pid.values() if not p.exited]


def pgrp_members(k, pgid: int) -> list[Process]:
    return [p for p in live(k) if p.pgid == pgid]


def session_members(k, sid: int) -> list[Process]:
    return [p for p in live(k) if p.sid == sid]


def pid_in_use(k, nr: int) -> bool:
    """find_vpid: some process (zombies too) has nr as pid, group or
    session; never 0, init's group and session, which no lookup finds."""
    return nr > 0 and any(nr in (p.pid, p.pgid, p.sid) for p in k.procs.by_pid.values())


def session_of_pgrp(k, nr: int) -> int:
    """Linux's session_of_pgrp: the session of group nr, or of process nr."""
    for p in k.procs.by_pid.values():
        if p.pgid == nr:
            return p.sid
    p = k.procs.by_pid.get(nr)
    return p.sid if p is not None else 0


def send(k, proc: Process, sig: int) -> None:
    """A signal from the kernel (SEND_SIG_PRIV)."""
    k.signals.send_proc(proc, sig, C.SI_KERNEL)


def kill_pgrp(k, pgid: int, sig: int) -> None:
    if pgid > 0:
        for p in pgrp_members(k, pgid):
            send(k, p, sig)


def will_become_orphaned(k, pgid: int, ignored: Process | None = None) -> bool:
    """No member has a parent in another group of the same session (init does not count)."""
    for p in pgrp_members(k, pgid):
        par = p.parent
        if p is ignored or par is None or par.pid == 1:
            continue
        if par.pgid != pgid and par.sid == p.sid:
            return False
    return True


def has_stopped_jobs(k, pgid: int) -> bool:
    return any(p.stopped for p in pgrp_members(k, pgid))


# -- the controlling tty -----------------------------------------------------------

def set_ctty(proc: Process, tty) -> None:
    """__proc_set_tty: the tty now belongs to proc's session, its group in front."""
    tty.session, tty.pgrp = proc.sid, proc.pgid
    proc.ctty = tty


def session_clear_tty(k, sid: int) -> None:
    for p in k.procs.by_pid.values():
        if p.sid == sid:
            p.ctty = None


def signal_session_leader(k, tty, exit_session: bool) -> None:
    """A hangup: the session loses the tty; its leader gets SIGHUP and SIGCONT."""
    if tty.session:
        for p in session_members(k, tty.session):
            if p.ctty is tty:
                p.ctty = None
            if p.pid == p.sid:
                send(k, p, S.SIGHUP)
                send(k, p, S.SIGCONT)
    if exit_session:
        kill_pgrp(k, tty.pgrp, S.SIGHUP)


def disassociate_ctty(k, proc: Process, on_exit: bool) -> None:
    """A session leader leaves its tty (exit, or TIOCNOTTY)."""
    if proc.sid != proc.pid:
        return
    tty = proc.ctty
    if tty is None:
        return
    if on_exit and not tty.is_pty:
        tty.hangup(exit_session=True)
    else:
        pg = tty.pgrp
        kill_pgrp(k, pg, S.SIGHUP)
        if not on_exit:
            kill_pgrp(k, pg, S.SIGCONT)
    if proc.ctty is tty:
        tty.session = tty.pgrp = 0
    session_clear_tty(k, proc.sid)


def is_ignored(t: Task, sig: int) -> bool:
    return bool(t.blocked & S.sigbit(sig)) or t.proc.sighand.actions[sig].handler == C.SIG_IGN


def check_change(t: Task, tty, sig: int) -> None:
    """__tty_check_change: may this process use tty as its foreground would?

    A background member of tty's session gets `sig` (SIGTTIN or SIGTTOU) sent
    to its whole group and the syscall restarts when the group is continued.
    """
    proc = t.proc
    if proc.ctty is not tty or not tty.pgrp or proc.pgid == tty.pgrp:
        return
    if is_ignored(t, sig):
        if sig == S.SIGTTIN:
            raise KernelError(E.EIO)
        return
    if will_become_orphaned(t.kernel, proc.pgid):
        raise KernelError(E.EIO)
    kill_pgrp(t.kernel, proc.pgid, sig)
    raise KernelError(E.ERESTARTSYS)


# -- hooks for process exit and continue ------------------------------------------

def _hup_orphaned(k, pgid: int) -> None:
    kill_pgrp(k, pgid, S.SIGHUP)
    kill_pgrp(k, pgid, S.SIGCONT)


def exit_hook(k, proc: Process) -> None:
    """Called by exit_process once proc is dead and its children are init's."""
    disassociate_ctty(k, proc, on_exit=True)
    done = set()
    for c in proc.children:     # groups orphaned because their link outside was proc
        pg = c.pgid
        if pg in done or pg == proc.pgid or c.sid != proc.sid:
            continue
        done.add(pg)
        if will_become_orphaned(k, pg) and has_stopped_jobs(k, pg):
            _hup_orphaned(k, pg)
    par = proc.parent           # proc's own group, if proc was its link outside
    if par is not None and par.pgid != proc.pgid and par.sid == proc.sid \
            and will_become_orphaned(k, proc.pgid, proc) and has_stopped_jobs(k, proc.pgid):
        _hup_orphaned(k, proc.pgid)
