"""The kernel under pdb: an oops stops in the host's pdb on its traceback
(the `pdb` kernel parameter, `umlpy --pdb`; docs/debugging.md).

The kernel is one thread: while pdb runs, it does not return to its event
loop, so no syscall, interrupt, timer or mconsole request is served and
every guest task stops at its next trap (one computing in user mode runs
on until it traps).  pdb gets the host terminal cooked and blocking
(console.lent_to_debugger); SIGALRM, the event loop's deadline timer and
tick, is held so that it does not interrupt pdb's reads, and comes once pdb
is left; SIGINT, otherwise read from a signalfd and passed to the guest's
console, interrupts pdb's command instead, so a ^C typed at pdb never
reaches the guest.  `c` (or `q`) leaves pdb and the kernel goes on as
after any oops: the syscall fails, the guest keeps running.
"""
from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from typing import Iterator

from arch_um.console import lent_to_debugger


def post_mortem(what: str, exc: BaseException) -> None:
    import bdb
    import pdb
    with lent_to_debugger(), _signals_for_pdb():
        sys.stderr.write(f"umlpy: kernel oops in {what}: pdb on its traceback, the guest frozen "
                         f"('c' goes on: the oops's errno for a syscall)\n")
        sys.stderr.flush()
        try:
            pdb.post_mortem(exc.__traceback__)
        except (bdb.BdbQuit, KeyboardInterrupt):
            pass
        finally:
            sys.stdout.flush()


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
