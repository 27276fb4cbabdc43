#!/usr/bin/env python3
"""Other languages' runtimes in the Debian guest, natively (a chroot of the
same tree, over an overlay), in umlpy and in UML: OpenJDK 17, Node.js 18,
Ruby 3.1 and Perl 5.36, each running a program of its own
(conformance/langs/) that leans on the kernel the way the runtime does:
thread pools, TCP and UDP over loopback, Java's NIO selector and libuv's
epoll, inotify through WatchService and fs.watch, mmap and file locks,
child processes, worker threads, signals, timers.  A runtime passes when
its output is the native one's.

  langs.py build      the image: the Debian tree of rootfs/debian.sh plus
                      the runtimes and the programs (needs root)
  langs.py run [--kernel native|umlpy|uml ...]
  langs.py report     the table in docs/conformance.md's part

Results: $UMLPY_CACHE/langs/<kernel>.json, each runtime's output.
"""
from __future__ import annotations

import json
import re
import sys

from debian_boot import CACHE, ROOT, boot, derived_image, status, suite_cli

LANGS = CACHE / "langs"
MEM = "2048M"
PROGRAMS = ROOT / "conformance" / "langs"
RUNS = {        # runtime -> its command, in /opt/langs
    "java": "javac -d /tmp/jc T.java && java -cp /tmp/jc T",
    "node": "node t.js",
    "ruby": "ruby t.rb",
    "perl": "perl t.pl",
}
# where a runtime's output may differ by the machine, not the kernel:
# Java's availableProcessors (UML and umlpy give the guest one CPU), and
# Node's colours when its stdout is the guest's console, a tty
MACHINE = [(re.compile(r"^gc ok \d+$"), "gc ok N"), (re.compile(r"\x1b\[[0-9;]*m"), "")]


def build() -> None:
    # iproute2: the guest side brings lo up with ip (UML starts with it down)
    print(derived_image(LANGS, "openjdk-17-jdk-headless nodejs ruby perl iproute2", "/usr/bin/ip",
                        extra=(PROGRAMS, "/opt/langs")))


def command() -> str:
    return "; ".join(f"echo @@BEGIN {name}; (cd /opt/langs && {cmd}) 2>&1; echo @@END {name} rc=$?"
                     for name, cmd in RUNS.items())


def outputs(out: str) -> dict[str, dict[str, object]]:
    """Each runtime's output (machine-dependent bits evened out) and status."""
    res: dict[str, dict[str, object]] = {}
    for m in re.finditer(r"^@@BEGIN (\S+)\n(.*?)^@@END \1 rc=(\d+)$", out, re.M | re.S):
        lines = []
        for line in m.group(2).splitlines():
            for pat, repl in MACHINE:
                line = pat.sub(repl, line)
            lines.append(line)
        res[m.group(1)] = {"rc": int(m.group(3)), "out": lines}
    for name in RUNS:
        res.setdefault(name, {"rc": None, "out": []})
    return res


def run(kernels: list[str]) -> None:
    img = LANGS / "root.img"
    if not img.exists():
        sys.exit("langs: no image: run `langs.py build` first")
    for k in kernels:
        out = boot(k, LANGS / "tree", img, ROOT / "linux-um", command(), 900, mem=MEM, overlay=True,
                   stderr=LANGS / f"{k}.err")
        res = outputs(out)
        (LANGS / f"{k}.json").write_text(json.dumps(res, indent=1))
        print(k, "status", status(out), {n: r["rc"] for n, r in res.items()})


def verdict(mine: dict, native: dict) -> str:
    if mine["rc"] is None:
        return "did not finish"
    if mine["out"] == native["out"] and mine["rc"] == native["rc"]:
        return "same"
    diff = next((f"`{a}` for `{b}`" for a, b in zip(mine["out"], native["out"]) if a != b),
                f"{len(mine['out'])} lines for {len(native['out'])}, rc {mine['rc']}")
    return "differs: " + diff


def report() -> None:
    got = {k: json.loads((LANGS / f"{k}.json").read_text())
           for k in ("native", "umlpy", "uml") if (LANGS / f"{k}.json").exists()}
    if "native" not in got:
        sys.exit("langs: no native run")
    print("| runtime | lines (native) | umlpy | UML |")
    print("|---|---:|---|---|")
    for name in RUNS:
        nat = got["native"][name]
        cells = [verdict(got[k][name], nat) if k in got else "-" for k in ("umlpy", "uml")]
        print(f"| {name} | {len(nat['out'])} | {cells[0]} | {cells[1]} |")


def main() -> None:
    ap, r = suite_cli(__doc__, ("native", "umlpy", "uml"))
    args = ap.parse_args()
    if args.cmd == "build":
        build()
    elif args.cmd == "run":
        run(args.kernel or ["native", "umlpy", "uml"])
    else:
        report()


if __name__ == "__main__":
    main()
