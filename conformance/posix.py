#!/usr/bin/env python3
"""LTP's Open POSIX Test Suite (conformance/interfaces) natively and in umlpy.

The suite is a tool used beside umlpy, as LTP is (conformance/ltp.py): its
source comes from LTP's tarball and everything built from it lives in the
cache ($UMLPY_CACHE, default ~/.cache/umlpy/posix).  Three steps:

  posix.py build [--src ltp-*.tar.gz]   build the conformance/interfaces tests
                                        with the suite's own make, install them
                                        into a copy of the Debian tree
                                        (rootfs/debian.sh) as /opt/posix, and
                                        make its ext4 image
  posix.py run --kernel umlpy|native    run them (or --tests REGEX); results.json
                                        and a log per test under the cache's
                                        results/<kernel>
  posix.py report                       the counts of both runs and the tests
                                        that pass natively and not in umlpy

Natively the tests run on the host's kernel in a chroot of the same tree
(an overlayfs over it, gone at the end, as a COW file is), in mount, pid,
uts and ipc namespaces of their own, with the same init script
(conformance/posix-init.sh) as a umlpy boot; so the two runs differ only by
kernel.  The boots, deadlines and fresh boot after a hang or a crash are
ltp.py's.  A test's verdict is its exit status as the suite's
Documentation/HOWTO_ResultCodes gives it.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ltp          # noqa: E402  (conformance/ltp.py: the boot loop)

ROOT = ltp.ROOT
POSIX = ltp.CACHE / "posix"
SRC = POSIX / "src"
TREE = POSIX / "tree"
IMAGE = POSIX / "posix.img"
TESTS = POSIX / "tests.txt"
RESULTS = POSIX / "results"
SUITE = "ltp/testcases/open_posix_testsuite"
INTERFACES = "conformance/interfaces"
MEM = "1024M"
CODES = {0: "pass", 1: "fail", 2: "unresolved", 4: "unsupported", 5: "untested", 124: "timeout",
         137: "timeout"}
STATUSES = ("pass", "fail", "unresolved", "unsupported", "untested", "timeout", "signaled", "other",
            "hang", "crash")


def verdict(rc: int) -> str:
    """The suite's exit codes (posixtest.h: PTS_PASS 0 ... PTS_UNTESTED 5);
    timeout(1)'s 124 and 137; a signal's 128+N."""
    return CODES.get(rc) or ("signaled" if rc > 128 else "other")


# -- build -----------------------------------------------------------------

def build(tarball: Path, jobs: int) -> None:
    """The suite's own build (autoconf, configure, generate-makefiles, make
    -k: a test that does not compile is left out, as the suite's
    run-tests.sh skips it), the tests installed into a copy of the Debian
    tree, its image."""
    for tool in ("autoconf", "make", "gcc", "mke2fs"):
        if shutil.which(tool) is None:
            sys.exit(f"building the Open POSIX suite needs {tool}")
    POSIX.mkdir(parents=True, exist_ok=True)
    log = POSIX / "build.log"
    stamp = POSIX / "built"
    if not (stamp.exists() and stamp.read_text() == tarball.name):
        shutil.rmtree(SRC, ignore_errors=True)
        SRC.mkdir()
        ltp.sh(f"tar -xzf {tarball} -C {SRC} --strip-components=3 {SUITE}")
        print(f"building the Open POSIX suite in {SRC} (log: {log})", flush=True)
        ltp.sh("autoconf && ./configure --prefix=/opt/posix && make generate-makefiles", cwd=SRC, log=log)
        ltp.sh(f"nice -n 10 make -j{jobs} -k conformance-all || true", cwd=SRC, log=log)
        stamp.write_text(tarball.name)
    tests = built_tests()
    TESTS.write_text("".join(f"{name} {d}\n" for name, d in tests))
    deb = Path(subprocess.run([str(ROOT / "rootfs" / "debian.sh")], check=True, capture_output=True,
                              text=True).stdout.strip())
    shutil.rmtree(TREE, ignore_errors=True)
    ltp.sh(f"cp -a {deb / 'tree'} {TREE} && mkdir -p {TREE / 'opt' / 'posix' / 'conformance'} && "
           f"cp -a {SRC / INTERFACES} {TREE / 'opt' / 'posix' / INTERFACES}")
    shutil.copy(ROOT / "conformance" / "posix-init.sh", TREE / "opt" / "posix" / "umlpy-init.sh")
    shutil.copy(ROOT / "conformance" / "guest-mounts.sh", TREE / "opt" / "posix" / "guest-mounts.sh")
    (TREE / "tmp").chmod(0o1777)
    ltp.sh(f"mke2fs -q -F -t ext4 -d {TREE} {IMAGE}.tmp 4G && mv {IMAGE}.tmp {IMAGE}")
    print(f"{len(tests)} tests; image: {IMAGE}; native tree: {TREE}")


def built_tests() -> list[tuple[str, str]]:
    """(name, directory) of each runnable test that compiled: the
    generated Makefiles' INSTALL_TARGETS ending in .run-test (the .sh
    targets only say "tested implicitly by assertion N" and exit 0)."""
    tests = []
    for mk in sorted((SRC / INTERFACES).glob("**/Makefile")):
        for line in mk.read_text().splitlines():
            if line.startswith("INSTALL_TARGETS"):
                for target in line.split()[1:]:
                    if target.endswith(".run-test") and (mk.parent / target).exists():
                        tests.append((target[:-len(".run-test")], str(mk.parent.relative_to(SRC))))
    return tests


# -- run -------------------------------------------------------------------

def command(kernel: str, work: Path, listfile: Path, timeout: int, out: Path) -> list[str]:
    """The boot's command line: umlpy over a COW file of the image, or the
    host's kernel in a chroot of an overlayfs over the tree."""
    env = [f"POSIX_TIMEOUT={timeout}"]
    if kernel == "umlpy":
        return [str(ROOT / ".venv" / "bin" / "umlpy"), str(out / "linux-um"), f"ubd0={work / 'root.cow'},{IMAGE}",
                f"ubd1={listfile}", "root=/dev/ubda", "rw", f"mem={MEM}", "quiet",
                "init=/opt/posix/umlpy-init.sh", *env]
    root, up = work / "root", work / "up"
    for d in (root, up, work / "wk"):
        d.mkdir()
    shutil.copy(listfile, up / "posix-list")
    # a pid namespace: killing its first process (the driver kills the
    # boot's process group) ends every test process, as a kernel's exit does
    return ["unshare", "--mount", "--pid", "--fork", "--uts", "--ipc", "--propagation", "private",
            "sh", "-c", f"mount -t overlay ov -o lowerdir={TREE},upperdir={up},workdir={work / 'wk'} {root} && "
            f"exec env -i {' '.join(env)} POSIX_LIST=/posix-list /usr/sbin/chroot {root} /opt/posix/umlpy-init.sh"]


def run(kernel: str, pattern: str | None, timeout: int, quiet: bool, resume: bool, out: Path | None) -> None:
    """Every test (or those pattern matches) in as many boots as hangs and
    crashes need; results.json kept up to date as they come."""
    if not (IMAGE.exists() and TESTS.exists()):
        sys.exit(f"no {IMAGE}: run `posix.py build` first")
    out = out or RESULTS / kernel
    (out / "logs").mkdir(parents=True, exist_ok=True)
    rfile = out / "results.json"
    if kernel == "umlpy":
        # the kernel image as it was at the start (ltp.py's reason)
        shutil.copy(ROOT / "linux-um", out / "linux-um")
    results = json.loads(rfile.read_text()) if rfile.exists() else {}
    todo = [(n, d) for n, d in (line.split() for line in TESTS.read_text().splitlines())
            if pattern is None or re.search(pattern, n)]
    if resume:
        todo = [(n, d) for n, d in todo if n not in results]

    def save() -> None:
        rfile.write_text(json.dumps(results, indent=1, sort_keys=True))
    i = failures = 0
    while i < len(todo):
        n = ltp.boot(kernel, todo[i:], timeout, out, results, quiet, save,
                     lambda work, listfile: command(kernel, work, listfile, timeout, out), verdict)
        save()
        failures = failures + 1 if n == 0 else 0
        if failures == 3:
            sys.exit(f"{kernel}: three boots in a row ran no test; see {out / 'boot-failure.log'}")
        i += n
    print(summary(kernel, results))


# -- report ----------------------------------------------------------------

def load(kernel: str) -> dict:
    f = RESULTS / kernel / "results.json"
    return json.loads(f.read_text()) if f.exists() else {}


def summary(kernel: str, results: dict) -> str:
    c = Counter(r["status"] for r in results.values())
    return f"{kernel}: {len(results)} tests, " + ", ".join(f"{s} {c[s]}" for s in STATUSES if c[s])


def report() -> None:
    """Counts per kernel and the tests that pass natively and not in umlpy,
    with the last lines each printed in umlpy."""
    nat, up = load("native"), load("umlpy")
    print("| kernel | tests | " + " | ".join(STATUSES) + " |")
    print("|---|---|" + "---|" * len(STATUSES))
    for k, res in (("native", nat), ("umlpy", up)):
        c = Counter(r["status"] for r in res.values())
        print(f"| {k} | {len(res)} | " + " | ".join(str(c[s]) for s in STATUSES) + " |")
    worse = sorted(n for n, r in nat.items() if r["status"] == "pass" and up.get(n, {}).get("status") != "pass")
    better = sorted(n for n, r in up.items() if r["status"] == "pass" and nat.get(n, {}).get("status") != "pass")
    print(f"\npass natively, not in umlpy: {len(worse)}")
    for n in worse:
        log = RESULTS / "umlpy" / "logs" / f"{n}.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        print(f"  {n:40s} {up.get(n, {}).get('status', 'not run'):11s} {' '.join(tail)[:140]}")
    print(f"pass in umlpy, not natively: {len(better)} " + " ".join(better))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    tarballs = sorted(ltp.SHARED.glob("ltp/ltp-*.tar.gz"))
    b.add_argument("--src", type=Path, default=tarballs[0] if tarballs else None, help="LTP's source tarball")
    b.add_argument("--jobs", type=int, default=2)
    r = sub.add_parser("run")
    r.add_argument("--kernel", choices=("umlpy", "native"), required=True)
    r.add_argument("--tests", help="a regex of test names (default: all)")
    r.add_argument("--timeout", type=int, default=30, help="seconds per test")
    r.add_argument("--resume", action="store_true", help="skip tests that already have a result")
    r.add_argument("--quiet", action="store_true", help="progress only to results/<kernel>/run.log")
    r.add_argument("--out", type=Path, help="results here instead of the cache's results/<kernel>"
                   " (a trial run that must not touch the recorded ones)")
    sub.add_parser("report")
    a = ap.parse_args()
    if a.cmd == "build":
        if a.src is None:
            sys.exit("no LTP tarball: --src")
        build(a.src.resolve(), a.jobs)
    elif a.cmd == "run":
        run(a.kernel, a.tests, a.timeout, a.quiet, a.resume, a.out)
    else:
        report()


if __name__ == "__main__":
    main()
