"""Shell-level signal behaviour, the same busybox natively and in the guest:
trap, timeout, kill -STOP/-CONT with the state procfs shows."""
from __future__ import annotations

import pytest

from conftest import BUSYBOX, native, sh

SCRIPTS = {
    "trap": "trap 'echo got USR1' USR1; kill -USR1 $$; trap 'echo bye' EXIT; echo after",
    "timeout": "timeout 1 sleep 5; echo rc=$?; timeout 5 sleep 0.1; echo rc=$?",
    "stop-cont": ("sleep 5 & pid=$!; sleep 0.1; kill -STOP $pid; sleep 0.2; "
                  "grep State /proc/$pid/status | cut -c1-10; kill -CONT $pid; sleep 0.2; "
                  "grep State /proc/$pid/status | cut -c1-10; kill $pid; wait $pid; echo rc=$?"),
    "wait-status": "sh -c 'kill -9 $$'; echo rc=$?; sh -c 'exit 3'; echo rc=$?",
}


def _q(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_shell_signals(name):
    # the script runs in its own shell (not init, which ignores unhandled
    # signals), its output one stream and not a tty on both sides; whether
    # ash reports a killed job ("Terminated") depends on timing, natively too
    tail = " 2>&1 | grep -v -e Terminated -e Killed"
    want = native([str(BUSYBOX), "sh", "-c", f"{BUSYBOX} sh -c {_q(SCRIPTS[name])}{tail}"])
    got = sh(f"mount -t proc proc /proc; sh -c {_q(SCRIPTS[name])}{tail}")
    assert got.stdout.decode() == want.decode()
