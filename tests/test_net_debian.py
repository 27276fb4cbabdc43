"""Debian's python3 over the guest's own loopback, compared with native:
socket, socketserver, http.server with urllib, asyncio streams and
selectors over TCP (tests/net/py_net.py).  Natively the same program
talks over the host's loopback only."""
from __future__ import annotations

from pathlib import Path

from test_debian import same

HERE = Path(__file__).resolve().parent


def test_debian_python_networking(debian, tmp_path):  # noqa: F811
    prog = (HERE / "net" / "py_net.py").read_text()
    out = same(debian, tmp_path, f"python3 -I - <<'PYEOF'\n{prog}\nPYEOF")
    assert out.endswith(b"done\n")
