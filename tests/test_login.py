"""The disk image as a user meets it on a terminal: busybox init runs
/etc/inittab, getty and login check /etc/passwd and /etc/shadow, the
pagers and top work on the console, poweroff ends it."""
from __future__ import annotations


from conftest import ROOT, copy_image
from test_tty import Terminal

BASE = ROOT / "rootfs" / "busybox.img"


def test_getty_login_pagers_top_and_poweroff(tmp_path):
    base = tmp_path / "base.img"
    copy_image(BASE, base)
    term = Terminal(root=f"ubd0={tmp_path / 'run.cow'},{base}", rows=24, cols=80)
    try:
        term.expect(rb"login: ")
        term.send(b"root\r")
        term.expect(rb"Password: ")
        term.send(b"wrong\r")
        term.expect(rb"Login incorrect")
        term.expect(rb"login: ")
        term.send(b"root\r")
        term.expect(rb"Password: ")
        term.send(b"umlpy\r")
        term.expect(rb"# ")
        term.send(b"id -u; tty; echo shell-$$-ok\r")
        term.expect(rb"shell-\d+-ok")
        term.expect(rb"# ")
        # ash's line editing: history with the up arrow, tab completion
        term.send(b"echo $((5*5))\r")
        term.expect(rb"\r\n25\r\n")
        term.expect(rb"# ")
        term.send(b"\x1b[A\r")                  # the same line again, from history
        term.expect(rb"\r\n25\r\n")
        term.expect(rb"# ")
        term.send(b"ech\t $((6*7))\r")          # `ech` completes to `echo`
        term.expect(rb"\r\n42\r\n")
        term.expect(rb"# ")
        term.send(b"more /etc/inittab\r")
        term.expect(rb"getty")
        term.expect(rb"# ")
        term.send(b"less /etc/passwd\r")
        term.expect(rb"root:x:0:0")
        term.send(b"q")
        term.expect(rb"# ")
        term.send(b"top -b -n 1 | head -5\r")
        term.expect(rb"PID\s+PPID\s+USER")
        term.expect(rb"# ")
        term.send(b"poweroff\r")
        assert term.wait(60) == 0
    finally:
        term.close()
