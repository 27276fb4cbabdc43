"""The machine id directory, as UML keeps it: <uml_dir>/<umid>/pid.

A directory whose pid file names a live process is in use; a stale one is
taken over; the directory is removed when the machine stops.  Without
umid= a random one is made, as UML does.
"""
from __future__ import annotations

import os
import shutil
import tempfile


class UmidInUse(Exception):
    pass


def default_uml_dir() -> str:
    return os.path.join(os.path.expanduser("~"), ".uml")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(uml_dir: str | None, umid: str | None) -> tuple[str, str]:
    """Create and own the umid directory; returns (umid, path)."""
    base = uml_dir or default_uml_dir()
    os.makedirs(base, mode=0o700, exist_ok=True)
    if umid is None:
        path = tempfile.mkdtemp(prefix="", dir=base)
        umid = os.path.basename(path)
    else:
        path = os.path.join(base, umid)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            try:
                with open(os.path.join(path, "pid")) as f:
                    old = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                old = 0
            if old and old != os.getpid() and _alive(old):
                raise UmidInUse(f"umid '{umid}' is in use by pid {old} ({path})") from None
    with open(os.path.join(path, "pid"), "w") as f:
        f.write(f"{os.getpid()}\n")
    return umid, path


def release(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
