"""Boot guests that run the syscall fuzzer (tests/progs/fuzz.c) and judge them.

Used by tests/test_fuzz.py and by `make fuzz`, which runs this file:

    python tests/fuzzing.py [--seeds N] [--first S] [--calls C] [--user UID]
                            [--jobs J] [--timeout SECONDS] [--keep DIR]

Every seed gets its own boot (a boot costs a fraction of a second, and the
kernel log then belongs to that seed): "ok", "oops" (the kernel log has an
Oops), "died" (the kernel did not survive: no end line), "hung" (the boot
timed out) or "fuzzer failed".  It ends with the oopses, grouped by what
failed and where, and the reproduction command of every seed that was not ok.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "linux-um"
CPIO = ROOT / "rootfs" / "busybox.cpio"
UMLPY = Path(sys.executable).parent / "umlpy"
END = "fuzz-boot-end"

_OOPS = re.compile(r"\] Oops: (.*)")
_FRAME = re.compile(r'File "([^"]*)", line (\d+), in (\S+)')


@dataclass
class Boot:
    seeds: list[int]
    returncode: int | None          # None: timed out
    stdout: str
    stderr: str
    done: list[int] = field(default_factory=list)   # seeds that printed their marker

    @property
    def survived(self) -> bool:
        return self.returncode is not None and END in self.stdout

    def oopses(self) -> list[str]:
        """One line per oops: what failed and the innermost frame of umlpy's."""
        out, lines = [], self.stderr.splitlines()
        for i, line in enumerate(lines):
            m = _OOPS.search(line)
            if not m:
                continue
            where = ""
            for later in lines[i + 1:]:
                if _OOPS.search(later) or "]   " not in later:
                    break
                f = _FRAME.search(later)
                if f and "umlpy" in f.group(1):
                    where = f"{Path(f.group(1)).name}:{f.group(2)} {f.group(3)}"
            out.append(re.sub(r" of task \d+", "", f"{m.group(1)} [{where}]"))
        return out


def fuzz_command(seed: int, calls: int, user: int | None = None, verbose: bool = False,
                 scratch: str = "/tmp/fuzz") -> str:
    opts = " -v" if verbose else ""
    if user is not None:
        opts += f" -u {user}"
    return f"/t/bin/fuzz{opts} -d {scratch} {seed} {calls}"


def script(seeds: list[int], calls: int, user: int | None = None) -> str:
    """The guest's shell script: each seed, its marker, then the end line."""
    scratch = "/tmp/fuzz" if user is None else f"/tmp/fuzz-{user}"
    runs = "; ".join(f"{fuzz_command(s, calls, user, scratch=scratch)}; echo fuzz-seed-{s}-exit=$?"
                     for s in seeds)
    return f"{runs}; echo {END}"


def boot(seeds: list[int], calls: int, user: int | None = None, timeout: float = 600,
         prefix: list[str] | None = None, params: tuple[str, ...] = ()) -> Boot:
    cmd = [*(prefix or []), str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh",
           *params, "--", "-c", script(seeds, calls, user)]
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, cwd="/")
        b = Boot(seeds, r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace"))
    except subprocess.TimeoutExpired as e:
        b = Boot(seeds, None, (e.stdout or b"").decode(errors="replace"),
                 (e.stderr or b"").decode(errors="replace"))
    b.done = [s for s in seeds if f"fuzz-seed-{s}-exit=0" in b.stdout and f"seed {s}: done" in b.stdout]
    return b


def reproduce(seed: int, calls: int, user: int | None) -> str:
    return (f"{UMLPY} {IMAGE} initrd={CPIO} quiet init=/bin/sh -- -c "
            f"'{fuzz_command(seed, calls, user, verbose=True)}'")


def judge(b: Boot, seed: int) -> str:
    if b.returncode is None:
        return "hung (boot timed out)"
    if not b.survived:
        tail = [ln for ln in b.stderr.splitlines() if "]   " not in ln][-2:]
        return f"died (umlpy exit {b.returncode})" + "".join(f"\n      {ln}" for ln in tail)
    if seed not in b.done:
        return "fuzzer failed: " + (b.stdout.strip().splitlines() or ["no output"])[-1]
    return "oops" if b.oopses() else "ok"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--user", type=int, default=None, help="fuzz as this guest uid")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--keep", type=Path, default=None, help="save each boot's stdout and stderr here")
    a = ap.parse_args()
    if a.keep:
        a.keep.mkdir(parents=True, exist_ok=True)

    def one(seed: int) -> tuple[int, Boot]:
        b = boot([seed], a.calls, a.user, a.timeout)
        if a.keep:
            (a.keep / f"{seed}.out").write_text(b.stdout)
            (a.keep / f"{seed}.err").write_text(b.stderr)
        print(f"seed {seed}: {judge(b, seed).splitlines()[0]}", flush=True)
        return seed, b

    seeds = range(a.first, a.first + a.seeds)
    with ThreadPoolExecutor(max_workers=a.jobs) as ex:
        boots = dict(ex.map(one, seeds))
    verdict = {s: judge(b, s) for s, b in boots.items()}
    oops_by_sig: dict[str, list[int]] = {}
    for s, b in boots.items():
        for o in b.oopses():
            oops_by_sig.setdefault(o, []).append(s)
    bad = [s for s in seeds if verdict[s] != "ok"]
    print(f"fuzz: {len(verdict) - len(bad)} of {len(verdict)} seeds x {a.calls} calls ok"
          + (f" (guest uid {a.user})" if a.user is not None else ""))
    for s in bad:
        print(f"  seed {s}: {verdict[s]}")
    if oops_by_sig:
        print("oopses:")
        for sig, ss in sorted(oops_by_sig.items(), key=lambda kv: -len(kv[1])):
            print(f"  {sig}\n      seeds {', '.join(map(str, sorted(set(ss))))}")
    if bad:
        print("reproduce with:")
        for s in bad:
            print(f"  {reproduce(s, a.calls, a.user)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
