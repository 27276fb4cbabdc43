"""The kernel under pdb (docs/debugging.md): an oops stops in the host's
pdb on its traceback (the `pdb` kernel parameter, `umlpy --pdb`), and a
`breakpoint()` in kernel code stops there.

The kernel is one thread: while pdb waits for a command, the kernel does
not return to its event loop, so no syscall, interrupt, timer or mconsole
request is served; at every stop the tasks running guest code are
interrupted first (the kernel's hold_guests, as mconsole `stop`), so no
guest code runs either.  Each time pdb stops, it
gets the host terminal cooked and blocking (console.lent_to_debugger);
SIGALRM, the event loop's deadline timer and tick, is held so that it
does not interrupt pdb's reads (it comes once pdb lets go); SIGINT,
otherwise read from a signalfd and passed to the guest's console,
interrupts pdb's command instead, so a ^C typed at pdb never reaches the
guest.  `c` goes on: after an oops as after any (the syscall fails), after
a breakpoint from the line it stopped at.  pdb is imported at the first
stop, not at boot.
"""
from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from functools import cache
from typing import Callable, Iterator

from arch_um.console import lent_to_debugger


def _no_guests() -> None:
    """Until the kernel attaches: no guests to hold."""


_hold_guests: Callable[[], None] = _no_guests


def post_mortem(what: str, exc: BaseException) -> None:
    """The oops hook (kernel/printk.py): pdb on the exception's traceback."""
    p = _kernel_pdb()(nosigint=True)
    p.banner = (f"umlpy: kernel oops in {what}: pdb on its traceback, the guest frozen "
                f"('c' goes on: the oops's errno for a syscall)")
    p.reset()
    p.interaction(None, exc.__traceback__)


def attach(hold_guests: Callable[[], None]) -> None:
    """The kernel's, at boot: hold_guests() stops its guests at every pdb
    stop, and `breakpoint()` in kernel code stops at the caller's next line."""
    global _hold_guests
    _hold_guests = hold_guests
    sys.breakpointhook = _breakpoint


def _breakpoint(*args, **kws) -> None:
    _kernel_pdb()(nosigint=True).set_trace(sys._getframe().f_back)


@cache
def _kernel_pdb() -> type:
    import pdb

    class KernelPdb(pdb.Pdb):
        """pdb whose every stop holds the guests, borrows the terminal and
        holds the tick."""
        banner = ""     # said at the first stop, on the cooked terminal

        def interaction(self, frame, traceback) -> None:
            _hold_guests()
            with lent_to_debugger(), _signals_for_pdb():
                if self.banner:
                    self.message(self.banner)
                    self.banner = ""
                try:
                    super().interaction(frame, traceback)
                except KeyboardInterrupt:
                    pass
                finally:
                    sys.stdout.flush()
    return KernelPdb


@contextmanager
def _signals_for_pdb() -> Iterator[None]:
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.signal(signal.SIGINT, old_int)
