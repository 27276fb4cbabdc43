"""What execve holds before its point of no return (Linux's linux_binprm).

exec opens the program, each `#!` interpreter and the ELF interpreter as
Linux's do_open_execat does: an open file (FMODE_EXEC) after fanotify's
FAN_OPEN_EXEC_PERM and FAN_OPEN_PERM were allowed, write access denied,
then FAN_OPEN | FAN_OPEN_EXEC (and inotify's IN_OPEN).  The kernel's reads
of the headers are kernel_read's: FAN_ACCESS_PERM before, FAN_ACCESS after.

A permission event makes the task wait for the listener's answer, so
every step from here to the point of no return takes what follows it as
a continuation: the wait's retry runs the rest (`guarded`).  The files
stay with the Binprm until exec ends one way or another (their last put
is the close event); the new address space takes references of its own
(the mapping's vm_file and exe_file), put when it goes.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import mount as MS
from umlpy.kernel.errors import Block, KernelError
from umlpy.security import landlock
from umlpy.vfs import fanotify, fsnotify
from umlpy.vfs.perm import permission

R = TypeVar("R")
OPEN_EXEC_FLAGS = C.O_RDONLY | C.O_LARGEFILE


def mount_has(d, flag: int) -> bool:
    """Whether the mount d belongs to has a flag (MOUNT_ATTR_NOEXEC, _NOSUID)."""
    return d.mount is not None and d.mount.has(flag)


class Binprm:
    """The files an execve opened, in order, held until it ends."""

    def __init__(self) -> None:
        self.files: list = []

    def put(self, f) -> None:
        """Let one go now (a `#!` script once its interpreter is found)."""
        self.files.remove(f)
        f.put()

    def release(self) -> None:
        """exec is over (done, failed or interrupted): each file's last
        reference here goes; the address space keeps its own."""
        files, self.files = self.files, []
        for f in files:
            f.put()


def guarded(bprm: Binprm, step: Callable[[], R]) -> R:
    """Run step, an exec step before the point of no return: a failure
    releases the files; a wait goes on with the same guard (its retry is
    the rest of the exec) and releases them if it is interrupted."""
    try:
        return step()
    except Block as b:
        inner, undo = b.retry, b.on_interrupt
        if inner is None:       # the whole call again: nothing here survives
            bprm.release()
            raise
        b.retry = lambda: guarded(bprm, inner)

        def interrupted() -> None:
            try:
                if undo is not None:
                    undo()
            finally:
                bprm.release()
        b.on_interrupt = interrupted
        raise
    except BaseException:
        bprm.release()
        raise


def open_exec(t, bprm: Binprm, d, then: Callable[[object], R], report: bool = True) -> R:
    """do_open_execat on what the walk found: a regular file on a mount
    without noexec that the caller may execute, asked of fanotify's
    permission listeners (FAN_OPEN_EXEC_PERM, then FAN_OPEN_PERM); then
    ETXTBSY if it is open for writing, and the open reported (unless
    report is off: execveat of an fd with an empty name).  then() gets
    the open file."""
    ino = d.inode
    if not ino.is_reg or mount_has(d, MS.MOUNT_ATTR_NOEXEC):
        raise KernelError(E.EACCES)
    permission(ino, C.X_OK, t.proc.creds)
    landlock.check_exec(t, d)

    def opened() -> R:
        f = ino.open_file(d, OPEN_EXEC_FLAGS, t).get()
        bprm.files.append(f)
        if ino.writecount > 0:
            raise KernelError(E.ETXTBSY)    # deny_write_access: open for writing somewhere
        if report:
            fsnotify.file_event(f, fsnotify.IN_OPEN | fanotify.FAN_OPEN_EXEC)
        return then(f)

    return fanotify.permission(t, d, fanotify.FAN_OPEN_EXEC_PERM,
                               lambda: fanotify.permission(t, d, fanotify.FAN_OPEN_PERM, opened))


def kernel_read(t, f, off: int, n: int, then: Callable[[bytes], R]) -> R:
    """kernel_read of n bytes at off: asked of the listeners first
    (FAN_ACCESS_PERM), reported after (FAN_ACCESS) if it read anything."""
    def read() -> R:
        data = f.inode.read(off, n)
        if data:
            fsnotify.file_event(f, fsnotify.IN_ACCESS)
        return then(data)
    return fanotify.file_permission(t, f, fanotify.FAN_ACCESS_PERM, read)
