"""Checkpoint, restore and live migration (issue 18), beside a boot: for an
idle busybox guest, and for guests with memory touched and rewritten at
10 MB/s (tests/progs/t_ckpt's `dirty` mode): boot to the guest's first
line, the checkpoint as `umlpy checkpoint` reports it (the kernel's own
time) and as the client waits for it, the image's size, a restore to the
kernel's "restore:" line (its processes rebuilt, about to run), and the
downtime `umlpy migrate` reports for a migration to a `umlpy restore
--listen` on this machine.

    python3 bench/checkpoint.py [--runs N]     (median of N runs, default 3)

The idle guest is a shell in a loop around `sleep 1` (at the checkpoint it
waits for its child, which sleeps).  Wall-clock figures: meaningful on a
quiet machine only (the host's writeback of an earlier run's image makes
the final copy's fsync of the disk wait: the bench syncs first).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "linux-um"
DISK = ROOT / "rootfs" / "busybox.img"
UMLPY = Path(sys.executable).parent / "umlpy"
GUESTS = {      # name -> (init and its arguments, mem=)
    "idle busybox guest": (["/bin/sh", "-c", "echo ready; while true; do sleep 1; done"], "256M"),
    "16 MiB rewritten at 10 MB/s": (["/t/bin/t_ckpt", "dirty", "100000", "16"], "256M"),
    "64 MiB rewritten at 10 MB/s": (["/t/bin/t_ckpt", "dirty", "100000", "64"], "256M"),
    "256 MiB rewritten at 10 MB/s": (["/t/bin/t_ckpt", "dirty", "100000", "256"], "512M"),
}
READY = r"ready|count 3\n"


def _wait_line(path: Path, pattern: str, proc: subprocess.Popen, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, path.read_text(errors="replace")):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{pattern!r} never came: {path.read_text(errors='replace')[-500:]}")
        time.sleep(0.005)
    return time.monotonic()


def _boot(tmp: Path, name: str, umid: str) -> tuple[subprocess.Popen, float]:
    """The guest booted from a fresh copy of the disk; (it, seconds to its first line)."""
    (init, *args), mem = GUESTS[name]
    disk = tmp / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(DISK), str(disk)], check=True)
    out, err = tmp / "out", tmp / "err"
    start = time.monotonic()
    with open(out, "wb") as o, open(err, "wb") as e:
        p = subprocess.Popen([str(UMLPY), str(IMAGE), f"ubd0={disk}", "rw", f"umid={umid}", f"uml_dir={tmp / 'uml'}",
                              f"mem={mem}", "quiet", f"init={init}", "--", *args], stdout=o, stderr=e,
                             stdin=subprocess.DEVNULL)
    return p, _wait_line(out, READY, p) - start


def checkpoint_run(tmp: Path, name: str) -> dict[str, float]:
    p, boot = _boot(tmp, name, "b")
    time.sleep(0.5)
    t0 = time.monotonic()
    r = subprocess.run([str(UMLPY), "checkpoint", "--uml-dir", str(tmp / "uml"), "b", str(tmp / "img")],
                       capture_output=True, text=True, timeout=120)
    client = time.monotonic() - t0
    p.wait(timeout=60)
    m = re.search(r"(\d+)K written .* in ([\d.]+)s", r.stdout)
    if r.returncode or m is None:
        raise RuntimeError(r.stdout + r.stderr)
    out2, err2 = tmp / "out2", tmp / "err2"
    start = time.monotonic()
    with open(out2, "wb") as o, open(err2, "wb") as e:
        q = subprocess.Popen([str(UMLPY), "restore", "--kernel", str(IMAGE), str(tmp / "img"), "loglevel=7"],
                             stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    restored = _wait_line(err2, r"restore: \d+ processes", q) - start
    q.kill()
    q.wait()
    return {"boot to first line, s": boot, "checkpoint (kernel), s": float(m.group(2)),
            "checkpoint (client), s": client, "image, KiB": float(m.group(1)),
            "restore to processes rebuilt, s": restored}


def migration_run(tmp: Path, name: str) -> dict[str, float]:
    sock = tmp / "mig.sock"
    q = subprocess.Popen([str(UMLPY), "restore", "--kernel", str(IMAGE), "--listen", str(sock), "umid=b2",
                          f"uml_dir={tmp / 'uml2'}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    p, _boot_s = _boot(tmp, name, "b")
    try:
        time.sleep(1.0)
        # the final copy syncs the guest's disk (fsync): with the host's
        # writeback of the run before still going, that fsync waits for it
        os.sync()
        r = subprocess.run([str(UMLPY), "migrate", "--uml-dir", str(tmp / "uml"), "b", str(sock)],
                           capture_output=True, text=True, timeout=300)
        m = re.search(r"\((\d+)K\), final copy (\d+)K sent .* downtime ([\d.]+) ms", r.stdout)
        if r.returncode or m is None:
            raise RuntimeError(r.stdout + r.stderr)
        p.wait(timeout=60)
    finally:
        for x in (p, q):
            if x.poll() is None:
                x.terminate()       # the target removes its temporary image as it exits
            x.wait()
    return {"migration: pre-copied, KiB": float(m.group(1)), "migration: final copy, KiB": float(m.group(2)),
            "migration downtime, ms": float(m.group(3))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    n = ap.parse_args().runs
    for name in GUESTS:
        runs = []
        for _ in range(n):
            with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
                runs.append({**checkpoint_run(Path(d1), name), **migration_run(Path(d2), name)})
        print(f"\n{name}\n")
        for key in runs[0]:
            print(f"| {key} | {statistics.median(r[key] for r in runs):.3f} |")


if __name__ == "__main__":
    main()
