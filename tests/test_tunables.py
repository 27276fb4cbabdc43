"""The sysctls the kernel honours (kernel/tunables.py), guest only: they
are machine-wide, so the native side of a differential test cannot set them.
tests/progs/t_tunables.c prints what it finds; this is Linux's answer on a
one-CPU machine at HZ=100 (UML's)."""
from __future__ import annotations

from conftest import sh

EXPECTED = """\
kernel/pid_max: 32768; 300 EINVAL 4194305 EINVAL -1 EINVAL abc EINVAL 2147483648 EINVAL 400x EINVAL 0x190 ok
now 400; after 399 came 300; pids below 400 1
vm/max_map_count: 65530; -1 EINVAL x EINVAL
max_map_count 200: mmap refused with ENOMEM after 150..199 mappings; a hole in one ENOMEM, its end ok, its start ok
fs/nr_open: 1048576; 63 EINVAL 2147483585 EINVAL
a shared table with fd 65, nr_open 64: unshare(CLONE_FILES) EMFILE, without fd 65 ok
RLIMIT_NOFILE hard 65 EPERM, 64 ok; fork with fd 65 open EMFILE
sched_rr_timeslice_ms 100; 25: 25, interval 0.030000000; 0: 100, interval 0.100000000
core_pattern core; RLIMIT_CORE unlimited: core flag 1; 4095: 0; |/bin/false %p: 1; with RLIMIT_CORE 0 too: 1
DEADLINE: all of the one CPU EBUSY, 28/30 ok, then 29/30 EBUSY; fork of it EAGAIN
done
"""


def test_tunables():
    r = sh("/t/bin/t_tunables; true")
    assert r.stdout.decode() == EXPECTED
