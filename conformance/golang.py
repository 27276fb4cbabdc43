#!/usr/bin/env python3
"""Go's standard-library tests in the Debian guest: natively (a chroot of
the same tree, over an overlay), in umlpy and in UML.

Go's runtime leans on the kernel differently from CPython: many threads
from the start, futexes, signals for goroutine preemption (SIGURG by
tgkill), edge-triggered epoll for every socket and pipe, splice and
sendfile in io.Copy, pidfd-less fork+exec with CLONE_VFORK.  Debian's
golang-go carries the standard library's sources with their tests.

  golang.py build            the image: the Debian tree of rootfs/debian.sh
                             plus golang-go and tzdata (needs root)
  golang.py run [--kernel native|umlpy|uml ...] [--packages p1,p2]
  golang.py report           the table in docs/conformance.md's Go part

All packages run in one boot, `go test -short -count=1` with a deadline per
package; a package passes when go test prints "ok" for it.  Results:
$UMLPY_CACHE/golang/<kernel>.json, and the whole output in <kernel>.log.
"""
from __future__ import annotations

import json
import re
import shutil
import sys

from debian_boot import CACHE, ROOT, boot, derived_image, status, suite_cli

GO = CACHE / "go"
OUT = CACHE / "golang"
MEM = "2048M"
# the packages that reach the kernel: files, processes, signals, sockets,
# time, the runtime itself; and a few that only compute, as a baseline
PACKAGES = [
    "os", "os/exec", "os/signal", "os/user", "syscall", "net", "net/http", "net/http/httptest", "net/rpc",
    "net/textproto", "net/smtp", "net/url", "time", "io", "io/fs", "io/ioutil", "path/filepath",
    "internal/poll", "sync", "sync/atomic", "context", "archive/tar", "archive/zip", "compress/gzip",
    "compress/flate", "bufio", "log", "log/syslog", "crypto/rand", "mime/multipart", "testing",
    "runtime", "runtime/debug", "runtime/pprof", "embed", "debug/elf",
]


def build() -> None:
    """$GO/tree and $GO/root.img: the Debian tree plus Go."""
    print(derived_image(GO, "golang-go tzdata ca-certificates", "/usr/bin/go"))


# go test's line for each package: "ok  \tPKG 1.2s", "FAIL\tPKG 3.4s", "?   \tPKG [no test files]"
SUMMARY = re.compile(r"^(ok|FAIL|\?)\s+(\S+)")


def verdicts(out: str, packages: list[str]) -> dict[str, str]:
    """pass/fail/skip per package from go test's summary lines; a package
    that printed none (the run stopped before it) is "crash"."""
    res: dict[str, str] = {}
    for line in out.splitlines():
        m = SUMMARY.match(line)
        if m and m.group(2) in packages:
            res[m.group(2)] = {"ok": "pass", "FAIL": "fail", "?": "skip"}[m.group(1)]
    for p in packages:
        if p not in res:
            res[p] = "timeout" if out.endswith("@@HANG") else "crash"
        elif res[p] == "fail" and "panic: test timed out" in _section(out, p):
            res[p] = "timeout"
    return res


def _section(out: str, package: str) -> str:
    """The part of the output that belongs to one package: from the end of
    the previous package's summary line to its own."""
    lines, start = out.splitlines(), 0
    for i, line in enumerate(lines):
        m = SUMMARY.match(line)
        if m:
            if m.group(2) == package:
                return "\n".join(lines[start:i + 1])
            start = i + 1
    return ""


def run(kernels: list[str], packages: list[str], timeout: int, deadline: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    # the kernel as it is now: rebuilding ./linux-um meanwhile changes nothing here
    shutil.copy(ROOT / "linux-um", OUT / "linux-um")
    # the time package's tests load zones from $GOROOT/lib/time, which
    # Debian does not ship: timetzdata embeds them (the same on every side)
    cmd = f"go test -short -count=1 -tags=timetzdata -timeout {timeout}s {' '.join(packages)} 2>&1"
    for kernel in kernels:
        out = boot(kernel, GO / "tree", GO / "root.img", OUT / "linux-um", cmd,
                   deadline, MEM, overlay=True)
        (OUT / f"{kernel}.log").write_text(out)
        rfile = OUT / f"{kernel}.json"
        res = json.loads(rfile.read_text()) if rfile.exists() else {}
        res.update(verdicts(out, packages))
        rfile.write_text(json.dumps(res, indent=1, sort_keys=True))
        for p in packages:
            failed = re.findall(r"^--- FAIL: (\S+)", _section(out, p), re.M)
            print(f"{kernel:6s} {p:24s} {res[p]} {' '.join(failed)}".rstrip(), flush=True)
        if status(out) is None:
            print(f"{kernel}: the run did not end (see {OUT / kernel}.log)")


def report() -> str:
    res = {k: json.loads((OUT / f"{k}.json").read_text()) if (OUT / f"{k}.json").exists() else {}
           for k in ("native", "uml", "umlpy")}
    lines = ["| package | native | UML 6.1 | umlpy |", "|---|---|---|---|"]
    for p in PACKAGES:
        lines.append(f"| {p} | " + " | ".join(res[k].get(p, "-") for k in ("native", "uml", "umlpy")) + " |")
    both = [p for p in PACKAGES if res["native"].get(p) == "pass"]
    ok = [p for p in both if res["umlpy"].get(p) == "pass"]
    lines += ["", f"Packages passing natively: {len(both)}; of those, umlpy passes {len(ok)}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap, r = suite_cli(__doc__, ("native", "umlpy", "uml"))
    r.add_argument("--packages", help="comma-separated (default: the built-in list)")
    r.add_argument("--timeout", type=int, default=600, help="seconds per package")
    r.add_argument("--deadline", type=int, default=5400, help="seconds for the whole run")
    a = ap.parse_args()
    if a.cmd == "build":
        build()
    elif a.cmd == "run":
        run(a.kernel or ["native", "umlpy"], a.packages.split(",") if a.packages else PACKAGES, a.timeout,
            a.deadline)
    else:
        sys.stdout.write(report())


if __name__ == "__main__":
    main()
