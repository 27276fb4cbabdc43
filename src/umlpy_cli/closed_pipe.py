"""A reader that went away (`umlpy syscalls | head -1`) ends umlpy as it
ends any Unix tool: silently, by SIGPIPE, without a Python traceback.

Python ignores SIGPIPE, so a write to a closed pipe raises
BrokenPipeError instead; this turns that back into the signal's ending.
The booted kernel never gets here for its own output: it ignores SIGPIPE
as UML does (the console and the log handle EPIPE themselves)."""
from __future__ import annotations

import os
import signal
import sys
from typing import Callable


def quiet_on_closed_pipe(run: Callable[[], int | None]) -> int | None:
    try:
        return run()
    except BrokenPipeError:
        # what is still buffered can go nowhere: stdout becomes /dev/null, so
        # that a final flush (SIGPIPE blocked by whoever started us) cannot fail
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
        return 128 + signal.SIGPIPE     # not reached
