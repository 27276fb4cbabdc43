"""The console's host input ending (a pipe or file at EOF) hangs the line
up, as UML's channels do: the session leader gets SIGHUP, open files read
EOF; a reader that opens the console afterwards waits instead of reading
EOF in a loop, so a respawning getty costs nothing."""
from __future__ import annotations

import signal
import subprocess
import time

from conftest import CPIO, IMAGE, PATH_ENV, UMLPY, boot


def test_input_end_hangs_up_after_the_input_is_read():
    inner = ('trap "echo HUP > /tmp/hup" HUP; exec 3<>/dev/tty0; while read l; do echo got:$l; done; echo eof; '
             'read x <&3; echo tty0 read rc=$?; echo x >&3 2>/dev/null || echo tty0 write failed; sleep 0.2')
    script = f"setsid -c sh -c '{inner}'; cat /tmp/hup; read y; echo console read rc=$?"
    r = boot("quiet", "init=/bin/sh", PATH_ENV, init_args=["-c", script], input=b"a\nb\n")
    out = r.stdout.decode()
    assert out.startswith("got:a\ngot:b\neof\ntty0 read rc=1\n"), out
    assert out.endswith("tty0 write failed\nHUP\nconsole read rc=1\n"), out


def test_a_respawning_getty_waits_once_the_input_ended():
    """getty on the console, respawned as init would: the first one reads
    EOF and leaves; the next opens a line whose input is gone and waits."""
    script = "while :; do getty -L 0 console vt100; echo respawn; done"
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", PATH_ENV, "--",
                          "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out = b""
        deadline = time.monotonic() + 60
        while out.count(b"login:") < 2 and time.monotonic() < deadline:
            chunk = p.stdout.read1(4096)
            if not chunk:
                break
            out += chunk
        time.sleep(2)           # a spinning getty would print many more prompts by now
        p.send_signal(signal.SIGTERM)
        rest, _ = p.communicate(timeout=60)
    finally:
        p.kill()
        p.wait()
    out += rest
    assert out.count(b"respawn") == 1 and out.count(b"login:") == 2, out
