"""Checkpoint and restore of an idle busybox guest, beside its boot
(issue 18): boot to the guest's first line, the checkpoint as
`umlpy checkpoint` reports it (the kernel's own time) and as the client
waits for it, the image's size, and a restore to the kernel's "restore:"
line (its processes rebuilt, about to run).

    python3 bench/checkpoint.py [--runs N]     (median of N runs, default 3)

The guest boots from a copy of rootfs/busybox.img: a shell in a loop
around `sleep 1`, so at the checkpoint it waits for its child, which
sleeps.  Wall-clock figures: meaningful on a quiet machine only.
"""
from __future__ import annotations

import argparse
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
SCRIPT = "echo ready; while true; do sleep 1; done"


def _wait_line(path: Path, pattern: str, proc: subprocess.Popen, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, path.read_text(errors="replace")):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{pattern!r} never came: {path.read_text(errors='replace')[-500:]}")
        time.sleep(0.005)
    return time.monotonic()


def one_run(tmp: Path) -> dict[str, float]:
    disk = tmp / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(DISK), str(disk)], check=True)
    out, err = tmp / "out", tmp / "err"
    start = time.monotonic()
    with open(out, "wb") as o, open(err, "wb") as e:
        p = subprocess.Popen([str(UMLPY), str(IMAGE), f"ubd0={disk}", "rw", "umid=b", f"uml_dir={tmp / 'uml'}",
                              "quiet", "init=/bin/sh", "--", "-c", SCRIPT], stdout=o, stderr=e,
                             stdin=subprocess.DEVNULL)
    boot = _wait_line(out, r"ready", p) - start
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    runs = []
    for _ in range(ap.parse_args().runs):
        with tempfile.TemporaryDirectory() as d:
            runs.append(one_run(Path(d)))
    for key in runs[0]:
        print(f"| {key} | {statistics.median(r[key] for r in runs):.3f} |")


if __name__ == "__main__":
    main()
