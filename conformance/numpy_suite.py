#!/usr/bin/env python3
"""NumPy's test suite in the Debian guest: natively (a chroot of the same
tree, over an overlay), in umlpy and in UML.

NumPy's tests reach the kernel through memory more than through files:
large anonymous mappings and calloc of fresh pages, madvise, mremap for
growing arrays, memmap'd files, floating-point exceptions delivered as
signals, threads and fork in its multiprocessing tests, and the
requires_memory checks that read /proc/meminfo.  Debian's python3-numpy
installs the tests with the package; pytest runs them with
`-m "not slow"` (numpy.test()'s default), one boot per kernel.  The
f2py, distutils and limited-API tests compile C and Fortran, for which
the image has no compiler: they fail or error on every side alike.

  numpy_suite.py build      the image: the tree of rootfs/debian.sh plus
                            python3-numpy, pytest and hypothesis
  numpy_suite.py run [--kernel native|umlpy|uml ...] [--mem 2048M]
  numpy_suite.py report     the tests whose outcome differs

Results: $UMLPY_CACHE/numpy/<kernel>.json (each test's outcome), the
whole output in <kernel>.log, the kernel's own log in <kernel>.stderr.
"""
from __future__ import annotations

import json
import re
import shutil

from debian_boot import CACHE, ROOT, boot, derived_image, status, suite_cli

OUT = CACHE / "numpy"
PACKAGES = "python3-numpy python3-pytest python3-hypothesis python3-distutils python3-typing-extensions"
READY = "/usr/lib/python3/dist-packages/numpy/core/tests"
# each test's outcome on its own line (pytest -v; -rA's summary of 27 000
# tests is quadratic in pytest)
COMMAND = ("python3 -m pytest -v --color=no -p no:cacheprovider -m 'not slow' --pyargs numpy 2>&1 "
           "| grep -a -E '::.* (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)( +\\[ *[0-9]+%\\])?$|^=+ .* in [0-9.]+s'")
OUTCOME = re.compile(r"^(\S.*?::.*?) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)(?: +\[ *\d+%\])?$", re.M)


def outcomes(out: str) -> dict[str, str]:
    """Each test's outcome (a test that failed in its teardown as well
    keeps its first)."""
    res: dict[str, str] = {}
    for m in OUTCOME.finditer(out):
        res.setdefault(m.group(1), m.group(2))
    return res


def run(kernels: list[str], mem: str, deadline: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    kimage = OUT / "linux-um-run"       # the kernel as it is now: rebuilding ./linux-um meanwhile changes nothing
    shutil.copy(ROOT / "linux-um", kimage)
    for kernel in kernels:
        out = boot(kernel, OUT / "tree", OUT / "root.img", kimage, COMMAND, deadline, mem, overlay=True,
                   log=OUT / f"{kernel}.log", stderr=OUT / f"{kernel}.stderr")
        res = outcomes(out)
        (OUT / f"{kernel}.json").write_text(json.dumps(res, indent=1, sort_keys=True))
        counts = {v: list(res.values()).count(v) for v in sorted(set(res.values()))}
        print(f"{kernel}: {counts}" + ("" if status(out) is not None else " (the run did not end)"), flush=True)


def report() -> str:
    res = {k: json.loads((OUT / f"{k}.json").read_text()) for k in ("native", "umlpy", "uml")
           if (OUT / f"{k}.json").exists()}
    named = sorted({t for r in res.values() for t in r})
    lines = ["| test | " + " | ".join(res) + " |", "|---|" + "---|" * len(res)]
    for t in named:
        row = [r.get(t, "-") for r in res.values()]
        if len(set(row)) > 1:
            lines.append(f"| {t} | " + " | ".join(row) + " |")
    for k, r in res.items():
        counts = {v: list(r.values()).count(v) for v in sorted(set(r.values()))}
        lines.append(f"\n{k}: " + ", ".join(f"{n} {v.lower()}" for v, n in counts.items()))
    return "\n".join(lines)


def main() -> None:
    ap, r = suite_cli(__doc__, ("native", "umlpy", "uml"))
    r.add_argument("--mem", default="2048M")
    r.add_argument("--deadline", type=int, default=3600, help="seconds for the whole run")
    a = ap.parse_args()
    if a.cmd == "build":
        print(derived_image(OUT, PACKAGES, READY))
    elif a.cmd == "run":
        run(a.kernel or ["native", "umlpy"], a.mem, a.deadline)
    else:
        print(report())


if __name__ == "__main__":
    main()
