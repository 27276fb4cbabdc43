#!/usr/bin/env python3
"""The kernel's own Python time per syscall, apart from the trap.

Boots the source tree's kernel in this process from a small ext2 disk made
of the bench binaries (bench/build/bin, made by `bench/run.py`) with one
bench as init, and measures what the kernel does between a trap and the
answer: each syscall's time from its registers being read to its resume
being queued (Scheduler._enter: handler, result, signals), summed
by syscall.  `--repeat N` (bench_stat, bench_file) also runs, at the bench's
second iteration, the handlers of its stat, open and close (or of its cached
read) N times more straight from Python, with the guest stopped: the
handlers' own cost, without the trap, the dispatch or the scheduler.  `--cprofile FILE` also records the run with cProfile (slower,
but names the hot functions; with --repeat, only the repeated handlers; read it with `python3 -m pstats FILE`).
Never a test: the figures go to a report.

    python3 bench/profile_syscalls.py stat 20000 /tmp/s.dat
    python3 bench/profile_syscalls.py --cprofile /tmp/stat.prof stat 20000 /tmp/s.dat
    python3 bench/profile_syscalls.py --repeat 20000 stat 100 /tmp/s.dat
    python3 bench/profile_syscalls.py --repeat 5000 file 64 /tmp/f.dat
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "bench" / "build" / "bin"
KERNEL = ROOT / "linux-um"


def make_image(fstype: str) -> Path:
    """A disk (ext2 unless asked) with /bench/bench_* and an empty /tmp,
    room for bench_file's 64 MiB."""
    image = ROOT / "bench" / "build" / f"profile-{fstype}.img"
    newest = max(p.stat().st_mtime for p in BIN.iterdir())
    if image.exists() and image.stat().st_mtime > newest:
        return image
    with tempfile.TemporaryDirectory() as d:
        tree = Path(d)
        (tree / "bench").mkdir()
        (tree / "tmp").mkdir()
        for p in BIN.iterdir():
            shutil.copy(p, tree / "bench")
        subprocess.run(["mke2fs", "-q", "-F", "-t", fstype, "-d", str(tree), str(image), "256M"],
                       check=True, capture_output=True)
    return image


def _time_calls(name: str) -> tuple[str, tuple[list[int], list[int]]]:
    """Wrap MODULE:QUALNAME so that its calls and their time are counted."""
    mod, _, qual = name.partition(":")
    owner = importlib.import_module(mod)
    *path, attr = qual.split(".")
    for p in path:
        owner = getattr(owner, p)
    fn = getattr(owner, attr)
    n, ns = [0], [0]
    clock = time.perf_counter_ns

    def timed(*args, **kw):
        t0 = clock()
        try:
            return fn(*args, **kw)
        finally:
            ns[0] += clock() - t0
            n[0] += 1

    setattr(owner, attr, timed)
    return name, (n, ns)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cprofile", metavar="FILE")
    ap.add_argument("--repeat", type=int, default=0, metavar="N")
    ap.add_argument("--time", action="append", default=[], metavar="MODULE:QUALNAME",
                    help="also time this function per call (e.g. arch_um.hostfile:MemFile.copy_to_guest)")
    ap.add_argument("--fstype", default="ext2", help="the disk's filesystem as mke2fs -t takes it")
    ap.add_argument("--top", type=int, default=12, help="syscalls shown")
    ap.add_argument("bench", help="getpid, stat, file, ... (bench/build/bin/bench_NAME)")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    if not (BIN / f"bench_{a.bench}").exists():
        print(f"no {BIN}/bench_{a.bench}: run bench/run.py once", file=sys.stderr)
        return 1
    image = make_image(a.fstype)
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT))
    importlib.import_module("umlpy.syscalls")       # its modules fill the table
    from umlpy import boot
    from umlpy.abi.syscall_nr import NAMES, NUMBERS
    from umlpy.syscalls.table import _entries
    from umlpy.kernel.sched import Scheduler
    from umlpy_cli.image import read_config

    spent: dict[int, int] = defaultdict(int)
    calls: dict[int, int] = defaultdict(int)
    plain = Scheduler._enter
    clock = time.perf_counter_ns

    # --repeat: the handlers of the bench's loop (stat, open, close; or a
    # cached read, its file position put back each time) called again and
    # again when the loop's last call comes the second time
    if a.bench == "file":
        loop = [NUMBERS["read"]]
    else:
        loop = [NUMBERS["newfstatat"], NUMBERS["openat"], NUMBERS["close"]]
    seen: dict[int, tuple] = {}
    direct: dict[int, list[int]] = {}

    def one_round(t, fns) -> list[int]:
        """One pass of the loop's handlers: each one's time."""
        if len(fns) == 1:       # read: at a 64 KiB step of the (cached) file
            f = t.files.get(seen[loop[0]][0])
            f.pos = (f.pos + (1 << 16)) % max(f.inode.size(), 1 << 16) & ~0xFFFF
            t0 = clock()
            fns[0](t, *seen[loop[0]])
            return [clock() - t0]
        t0 = clock()
        fns[0](t, *seen[loop[0]])
        t1 = clock()
        fd = fns[1](t, *seen[loop[1]])
        t2 = clock()
        fns[2](t, fd, 0, 0, 0, 0, 0)
        return [t1 - t0, t2 - t1, clock() - t2]

    def repeat(t) -> None:
        fns = [_entries[nr].fn for nr in loop]
        times: list[list[int]] = [[] for _ in loop]
        prof = None
        if a.cprofile:
            import cProfile
            prof = cProfile.Profile()
            prof.enable()
        for _ in range(a.repeat):
            for i, dt in enumerate(one_round(t, fns)):
                times[i].append(dt)
        if prof is not None:
            prof.disable()
            prof.dump_stats(a.cprofile)
        for nr, ts in zip(loop, times):
            direct[nr] = sorted(ts)

    def timed(self, t, nr: int, args: tuple[int, ...]) -> None:
        nr &= 0xFFFFFFFF
        if a.repeat and not direct and nr in loop:
            if nr == loop[-1] and loop[0] in seen:
                repeat(t)
            seen[nr] = args
        t0 = clock()
        try:
            plain(self, t, nr, args)
        finally:
            spent[nr] += clock() - t0
            calls[nr] += 1

    Scheduler._enter = timed
    wrapped = [_time_calls(name) for name in a.time]
    with tempfile.TemporaryDirectory() as d:
        cow = os.path.join(d, "cow")
        words = [f"ubd0={cow},{image}", "rw", "quiet", f"init=/bench/bench_{a.bench}", "--", *a.args]
        config = read_config(str(KERNEL))
        if a.cprofile and not a.repeat:
            import cProfile
            prof = cProfile.Profile()
            prof.runcall(boot.start_kernel, config, words)
            prof.dump_stats(a.cprofile)
        else:
            boot.start_kernel(config, words)
    print(f"{'syscall':16s} {'calls':>8s} {'us/call':>9s} {'total ms':>9s}", file=sys.stderr)
    for nr in sorted(spent, key=spent.__getitem__, reverse=True)[:a.top]:
        print(f"{NAMES.get(nr, str(nr)):16s} {calls[nr]:8d} {spent[nr] / calls[nr] / 1e3:9.2f} "
              f"{spent[nr] / 1e6:9.1f}", file=sys.stderr)
    for name, (n, ns) in wrapped:
        if n[0]:
            print(f"{name}: {n[0]} calls, {ns[0] / n[0] / 1e3:.2f} us/call", file=sys.stderr)
    for nr, ts in direct.items():
        print(f"{NAMES[nr]:16s} handler alone: median {ts[len(ts) // 2] / 1e3:.2f} us, "
              f"best {ts[0] / 1e3:.2f} us ({len(ts)} calls)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
