"""Linux AIO where umlpy differs from Linux by design (the differential
t_aio covers the rest): a read of a pipe that must wait is parked and
completes later rather than holding io_submit, and a process may exit
with requests parked and contexts alive; fs.aio-nr counts the live
contexts' events and goes back to 0."""
from __future__ import annotations

from conftest import sh


def test_parked_pipe_read_and_exit():
    r = sh("mount -t proc proc /proc; /t/bin/t_aio /tmp parked; echo rc=$?; cat /proc/sys/fs/aio-nr; "
           "echo 3 > /proc/sys/fs/aio-max-nr; /t/bin/t_aio /tmp parked | head -1; echo 65536 > /proc/sys/fs/aio-max-nr")
    out = r.stdout.decode()
    assert out.splitlines() == [
        "submit a read of an empty pipe: 1", "getevents: 0", "io_cancel of a read: -22",
        "getevents after a write: 1", "  event data=1 res=4 res2=0 obj-ok=1", "read 'late'",
        "another parked: 1", "rc=0", "0",
        "submit a read of an empty pipe: -22",     # no context: 4 events are past aio-max-nr
    ], out
