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


def _layouts(out: str, tag: str) -> list[dict[str, int]]:
    """The t_aslr layouts printed after `tag` lines."""
    runs = []
    for line in out.splitlines():
        if line.startswith(tag + " program "):
            words = line.split()[1:]
            runs.append({words[i]: int(words[i + 1], 16) for i in range(0, len(words), 2)})
    return runs


def _moved(runs: list[dict[str, int]], what) -> bool:
    """Whether what(layout) differs between every two of the runs."""
    values = [what(r) for r in runs]
    return len(set(values)) == len(values)


def _kept(runs: list[dict[str, int]], what) -> bool:
    return len({what(r) for r in runs}) == 1


def test_randomize_va_space():
    """kernel.randomize_va_space as Linux's: 2 (the default) moves a PIE's
    base, the stack, the mappings and the heap (a random distance past the
    program) at each exec; 1 all but the heap's distance; 0 nothing, as
    ADDR_NO_RANDOMIZE (setarch -R) does, unless the program is set-user-ID:
    then the exec drops that flag (PER_CLEAR_ON_SETID) before the layout."""
    run3 = "for i in 1 2 3; do echo $T $($P); done"
    script = ("mount -t proc proc /proc && mount -t tmpfs tmpfs /tmp && cat /proc/sys/kernel/randomize_va_space && "
              "cp /t/bin/t_aslr.pie /tmp/suid && chmod 4755 /tmp/suid && cp /t/bin/t_aslr.pie /tmp/plain && "
              "chmod 755 /tmp/plain && "
              + "; ".join(f"T={tag}; P='{prog}'; {run3}" for tag, prog in (
                  ("d2s", "/t/bin/t_aslr"), ("d2p", "/t/bin/t_aslr.pie"), ("R", "/t/bin/t_aslr -R /t/bin/t_aslr.pie"),
                  ("Rsuid", "/t/bin/t_aslr -R -u 1000 /tmp/suid"), ("Rplain", "/t/bin/t_aslr -R -u 1000 /tmp/plain")))
              + "; echo 1 > /proc/sys/kernel/randomize_va_space; "
              + "; ".join(f"T={tag}; P='{prog}'; {run3}" for tag, prog in (
                  ("d1s", "/t/bin/t_aslr"), ("d1p", "/t/bin/t_aslr.pie")))
              + "; echo 0 > /proc/sys/kernel/randomize_va_space; "
              + "; ".join(f"T={tag}; P='{prog}'; {run3}" for tag, prog in (
                  ("d0s", "/t/bin/t_aslr"), ("d0p", "/t/bin/t_aslr.pie"))))
    r = sh(script)
    out = r.stdout.decode()
    assert out.startswith("2\n"), out + r.stderr.decode()
    heap_gap = lambda r: r["heap"] - r["program"]      # noqa: E731
    runs = {tag: _layouts(out, tag) for tag in ("d2s", "d2p", "R", "Rsuid", "Rplain", "d1s", "d1p", "d0s", "d0p")}
    assert all(len(v) == 3 for v in runs.values()), out
    # 2: everything moves, the heap's distance from the program too
    assert _kept(runs["d2s"], lambda r: r["program"]) and _moved(runs["d2s"], heap_gap), out
    for part in ("program", "stack", "mmap"):
        assert _moved(runs["d2p"], lambda r: r[part]), (part, out)
    assert _moved(runs["d2s"], lambda r: r["stack"]) and _moved(runs["d2s"], lambda r: r["mmap"]), out
    # setarch -R: nothing moves, but for a set-user-ID program
    assert all(_kept(runs["R"], lambda r: r[p]) for p in ("program", "heap", "stack", "mmap")), out
    assert all(_kept(runs["Rplain"], lambda r: r[p]) for p in ("program", "heap", "stack", "mmap")), out
    assert _moved(runs["Rsuid"], lambda r: r["program"]) and _moved(runs["Rsuid"], lambda r: r["stack"]), out
    # 1: the heap right past the program; the rest moves
    assert _kept(runs["d1s"], heap_gap) and _kept(runs["d1p"], heap_gap), out
    assert _moved(runs["d1p"], lambda r: r["program"]) and _moved(runs["d1s"], lambda r: r["stack"]), out
    # 0: nothing moves
    for tag in ("d0s", "d0p"):
        assert all(_kept(runs[tag], lambda r: r[p]) for p in ("program", "heap", "stack", "mmap")), (tag, out)


def test_pty_limits():
    """kernel.pty: max (4096) ptys, nr of them live; with max lowered,
    opening /dev/ptmx past it fails with ENOSPC (devpts_new_index)."""
    script = ("mount -t proc proc /proc && cd /proc/sys/kernel/pty && cat max reserve nr && "
              "exec 3<>/dev/ptmx 4<>/dev/ptmx && cat nr && echo 2 > max && "
              "(exec 5<>/dev/ptmx) 2>/dev/null || echo refused; echo 3 > max; "
              "(exec 5<>/dev/ptmx && cat nr) && cat nr; (echo -1 > max) 2>/dev/null || echo EINVAL; cat max")
    r = sh(script)
    assert r.stdout.decode() == "4096\n1024\n0\n2\nrefused\n3\n2\nEINVAL\n3\n", r.stdout.decode() + r.stderr.decode()
