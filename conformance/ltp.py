#!/usr/bin/env python3
"""LTP's syscall tests in umlpy and in UML, side by side (issue 13).

LTP is a tool used beside umlpy, like UML: its source stays outside the
repository and everything built from it lives in the cache
($UMLPY_CACHE, default ~/.cache/umlpy/ltp).  Three steps:

  ltp.py build --src ltp-*.tar.gz   build the syscall tests, install them
                                    into a copy of the Debian image
                                    (rootfs/debian.sh) as /opt/ltp
  ltp.py run --kernel umlpy|uml     run runtest/syscalls (or --tests REGEX)
                                    in one kernel; results.json + a log per
                                    test under the cache's results/<kernel>
  ltp.py run --list mm ...          another of LTP's runtest lists (mm, pty,
                                    sched, containers, fs, cve, ...): built
                                    and installed by `build` too, results
                                    under results/<kernel>-<list>
  ltp.py report                     docs/conformance.md from both result sets

Each boot runs the list with conformance/ltp-init.sh as init; a test that
hangs past its deadline or takes the kernel down is recorded as such and the
run goes on with a fresh boot from the next test, so one bad test never
costs the rest.  The disk is a fresh COW over the image on every boot.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("UMLPY_CACHE", Path.home() / ".cache" / "umlpy"))
LTP = CACHE / "ltp"
SRC = LTP / "src"
IMAGE = LTP / "ltp.img"
RESULTS = LTP / "results"
SHARED = ROOT.parent / "shared"
UML_BIN = Path("/usr/bin/linux.uml")
MEM = "1024M"
EXCUSES = Path(__file__).resolve().parent / "ltp-excuses.txt"


def sh(cmd: str, cwd: Path | None = None, log: Path | None = None) -> None:
    out = open(log, "ab") if log else None
    try:
        subprocess.run(["bash", "-c", cmd], cwd=cwd, check=True, stdout=out, stderr=subprocess.STDOUT)
    finally:
        if out:
            out.close()


# -- build -----------------------------------------------------------------

BUILD_TOOLS = {"autoconf": "autoconf", "aclocal": "automake", "m4": "m4", "pkg-config": "pkgconf",
               "make": "make", "gcc": "gcc"}


# the source directories whose tests a runtest list runs (syscalls first:
# other lists, cve's above all, also run syscall tests)
LIST_DIRS = {
    "syscalls": ["testcases/kernel/syscalls", "testcases/lib"],
    "mm": ["testcases/kernel/mem", "testcases/kernel/security"],
    "pty": ["testcases/kernel/pty"],
    "sched": ["testcases/kernel/sched"],
    "nptl": ["testcases/kernel/sched"],
    "containers": ["testcases/kernel/containers"],
    "fs": ["testcases/kernel/fs"],
    "fs_perms_simple": ["testcases/kernel/fs"],
    "dio": ["testcases/kernel/io"],
    "cve": ["testcases/cve", "testcases/kernel/security", "testcases/kernel/sound", "testcases/network/packet",
            "testcases/network/sctp", "testcases/network/sockets", "testcases/network/can/cve",
            "testcases/kernel/controllers/cgroup", "testcases/network/iptables", "testcases/commands/keyctl"],
    "math": ["testcases/misc/math"],
    "watchqueue": ["testcases/kernel/watchqueue"],
    "crypto": ["testcases/kernel/crypto"],
    "uevent": ["testcases/kernel/uevents"],
    "tracing": ["testcases/kernel/tracing"],
}


def build(tarball: Path, jobs: int) -> None:
    """Build LTP's library and the tests of every list in LIST_DIRS (a
    directory that does not build whole is installed with what did), install
    them, make the image."""
    missing = sorted({pkg for tool, pkg in BUILD_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        sys.exit(f"building LTP needs: apt-get install {' '.join(missing)}")
    LTP.mkdir(parents=True, exist_ok=True)
    log = LTP / "build.log"
    stamp = LTP / "built"
    if not (stamp.exists() and stamp.read_text() == tarball.name):
        shutil.rmtree(SRC, ignore_errors=True)
        SRC.mkdir()
        sh(f"tar -xzf {tarball} -C {SRC} --strip-components=1")
        print(f"building LTP in {SRC} (about 15 minutes of CPU; log: {log})", flush=True)
        sh(f"make autotools && ./configure --prefix=/opt/ltp && make -j{jobs} -C lib", cwd=SRC, log=log)
        stamp.write_text(tarball.name)
    dirs = sorted({d for ds in LIST_DIRS.values() for d in ds})
    for d in dirs:
        # -k: one test that does not build (a header this host lacks) must
        # not keep the rest of its directory out
        strict = d == "testcases/kernel/syscalls"
        sh(f"make -j{jobs} {'' if strict else '-k '}-C {d}" + ("" if strict else " || true"), cwd=SRC, log=log)
    inst = LTP / "install"
    shutil.rmtree(inst, ignore_errors=True)
    for d in dirs:
        sh(f"make -k -C {d} DESTDIR={inst} install || true", cwd=SRC, log=log)
    sh(f"make -C runtest DESTDIR={inst} install", cwd=SRC, log=log)
    deb = Path(subprocess.run([str(ROOT / "rootfs" / "debian.sh")], check=True, capture_output=True,
                              text=True).stdout.strip())
    stage = LTP / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    sh(f"cp -a {deb / 'tree'} {stage} && cp -a {inst / 'opt' / 'ltp'} {stage / 'opt' / 'ltp'}")
    shutil.copy(ROOT / "conformance" / "ltp-init.sh", stage / "opt" / "ltp" / "umlpy-init.sh")
    shutil.copy(ROOT / "conformance" / "guest-mounts.sh", stage / "opt" / "ltp" / "guest-mounts.sh")
    (stage / "tmp").chmod(0o1777)
    sh(f"mke2fs -q -F -t ext4 -d {stage} {IMAGE}.tmp 4G && mv {IMAGE}.tmp {IMAGE}")
    shutil.rmtree(stage)
    print(f"image: {IMAGE}")


# -- run -------------------------------------------------------------------

def runtest(pattern: str | None, listname: str = "syscalls") -> list[tuple[str, str]]:
    """(name, command) of a runtest list, in order, optionally filtered."""
    tests = []
    for line in (SRC / "runtest" / listname).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, cmd = line.partition(" ")
        if pattern is None or re.search(pattern, name):
            tests.append((name, cmd.strip()))
    return tests


def status_of(rc: int | None) -> str:
    """LTP's exit status to a verdict (tst_res flags are ORed into it)."""
    if rc is None:
        return "hang"
    if rc == 0:
        return "pass"
    if rc == 32:
        return "conf"
    if rc in (124, 137):
        return "timeout"
    if rc >= 128 or rc & 2:
        return "broken"
    if rc & 1:
        return "fail"
    if rc & 4:
        return "warn"
    return "fail"


def kernel_cmd(kernel: str, cow: Path, listfile: Path, timeout: int, work: Path,
               out: Path) -> list[str]:
    common = [f"ubd0={cow},{IMAGE}", f"ubd1={listfile}", "root=/dev/ubda", "rw", f"mem={MEM}",
              "quiet", "init=/opt/ltp/umlpy-init.sh", f"LTP_TIMEOUT={timeout}"]
    if kernel == "umlpy":
        # UMLPY_LTP_PARAMS: more kernel parameters for a trial (seccomp=off)
        extra = os.environ.get("UMLPY_LTP_PARAMS", "").split()
        return [str(ROOT / ".venv" / "bin" / "umlpy"), str(out / "linux-um"), *common, *extra]
    shim = LTP / "uml_shim.so"
    if not shim.exists():
        # UML 6.1 writes a short xstate through ptrace, which hosts with a
        # large XSAVE area refuse; the anchors' preload shim works around it
        sh(f"gcc -O2 -shared -fPIC -o {shim} {SHARED / 'anchors' / 'src' / 'uml_xstate_shim.c'} -ldl")
    return ["env", f"LD_PRELOAD={shim}", str(UML_BIN), f"uml_dir={work}", f"umid=ltp{os.getpid()}",
            "con0=fd:0,fd:1", "con=null", *common]


def say(out: Path, line: str, quiet: bool) -> None:
    """A progress line to the run's log (and stdout unless quiet)."""
    with open(out / "run.log", "a") as f:
        f.write(line + "\n")
    if not quiet:
        print(line, flush=True)


def boot(kernel: str, tests: list[tuple[str, str]], timeout: int, out: Path,
         results: dict, quiet: bool, save,
         command: Callable[[Path, Path], list[str]], verdict: Callable[[int], str] = status_of) -> int:
    """One boot running tests in order; returns how many it got through.

    command(work, listfile) is the boot's command line (work: a scratch
    directory for its COW file, listfile: the tests, one "name command" a
    line, for the init script); verdict maps a test's exit status to its
    status.  conformance/posix.py boots the Open POSIX suite through here.
    A test whose END marker never comes is a hang (silence past its deadline)
    or a crash (the kernel exited mid-test); either way it counts as done."""
    work = Path(tempfile.mkdtemp(prefix=f"ltp-{kernel}-"))
    try:
        listfile = work / "list"
        data = "".join(f"{n} {c}\n" for n, c in tests).encode() + b"@@END\n"
        listfile.write_bytes(data + b"\0" * (-len(data) % 4096))
        cmd = command(work, listfile)
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=work)
        done = 0
        cur: str | None = None
        t0 = 0.0
        buf: list[bytes] = []
        boot_log: list[bytes] = []
        last = time.monotonic()
        pending = b""
        finished = False
        while True:
            r, _, _ = select.select([p.stdout], [], [], 5)
            now = time.monotonic()
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                last = now
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.rstrip(b"\r")
                    text = line.decode(errors="replace")
                    if text.startswith("@@LTP-BEGIN "):
                        cur, t0, buf = text.split()[1], now, []
                    elif text.startswith("@@LTP-END ") and cur is not None:
                        _, name, rc, secs = text.split()[:4]
                        results[name] = {"rc": int(rc), "status": verdict(int(rc)), "secs": int(secs)}
                        (out / "logs" / f"{name}.log").write_bytes(b"\n".join(buf) + b"\n")
                        cur, done = None, done + 1
                        save()
                        say(out, f"{kernel} {len(results):5d} {name:28s} {results[name]['status']}", quiet)
                    elif text == "@@LTP-DONE":
                        finished = True
                    elif cur is not None:
                        buf.append(line)
                    else:
                        boot_log.append(line)
                if finished:
                    break
            elif now - last > timeout + 60:
                break
            if p.poll() is not None and not r:
                break
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        if cur is not None:
            hung = p.returncode == -signal.SIGKILL and not finished
            ended = "hang" if hung else "crash"
            results[cur] = {"rc": None, "status": ended, "secs": int(time.monotonic() - t0)}
            (out / "logs" / f"{cur}.log").write_bytes(b"\n".join(buf + boot_log[-50:]) + b"\n")
            say(out, f"{kernel} {cur:34s} {ended} (kernel exit {p.returncode})", quiet)
            done += 1
        elif not finished and done == 0:
            (out / "boot-failure.log").write_bytes(b"\n".join(boot_log) + pending)
        return done
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(kernel: str, pattern: str | None, timeout: int, fresh: bool, quiet: bool,
        resume: bool, out: Path | None = None, listname: str = "syscalls") -> None:
    if not IMAGE.exists():
        sys.exit(f"no {IMAGE}: run `ltp.py build --src ...` first")
    if kernel == "uml" and not UML_BIN.exists():
        sys.exit("UML: /usr/bin/linux.uml missing (apt-get install user-mode-linux)")
    out = out or RESULTS / (kernel if listname == "syscalls" else f"{kernel}-{listname}")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    rfile = out / "results.json"
    if kernel == "umlpy":
        # the kernel image as it was at the start: rebuilding ./linux-um
        # while the run goes must not change the kernel under it
        shutil.copy(ROOT / "linux-um", out / "linux-um")
    results = {} if fresh or not rfile.exists() else json.loads(rfile.read_text())
    todo = runtest(pattern, listname)
    if resume:
        todo = [(n, c) for n, c in todo if n not in results]
    for name, _ in todo:
        results.pop(name, None)

    def save() -> None:
        rfile.write_text(json.dumps(results, indent=1, sort_keys=True))
    i = failures = 0
    while i < len(todo):
        n = boot(kernel, todo[i:], timeout, out, results, quiet, save,
                 lambda work, listfile: kernel_cmd(kernel, work / "root.cow", listfile, timeout, work, out))
        save()
        if n == 0:
            failures += 1
            if failures == 3:
                sys.exit(f"{kernel}: three boots in a row ran no test; see {out / 'boot-failure.log'}")
        else:
            failures = 0
        i += n
    say(out, summary_line(kernel, results), False)


def summary_line(kernel: str, results: dict) -> str:
    counts = defaultdict(int)
    for r in results.values():
        counts[r["status"]] += 1
    return f"{kernel}: {len(results)} tests, " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


# -- report ----------------------------------------------------------------

def family(name: str) -> str:
    """fcntl27_64 -> fcntl, epoll_wait01 -> epoll_wait, futex_wait_bitset01 -> futex_wait_bitset."""
    base = re.sub(r"_(64|16)$", "", name)
    base = re.sub(r"\d+[a-z]?$", "", base).rstrip("_")
    return base or name


def load(kernel: str) -> dict:
    """Results by runtest name (a test that set OLCUC on the console before
    the runner reset it each time left names upper-cased: matched by case)."""
    f = RESULTS / kernel / "results.json"
    res = json.loads(f.read_text()) if f.exists() else {}
    names = {n.lower(): n for n, _ in runtest(None)}
    return {names.get(k.lower(), k): v for k, v in res.items()}


def excuses() -> dict[str, str]:
    """conformance/ltp-excuses.txt: `test: why it cannot pass in a user-mode kernel`."""
    out = {}
    if EXCUSES.exists():
        for line in EXCUSES.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                name, _, why = line.partition(":")
                out[name.strip()] = why.strip()
    return out


def first_failure(kernel: str, name: str) -> str:
    """The first TFAIL/TBROK/TWARN (else TCONF) line of a test's log, for the table."""
    log = RESULTS / kernel / "logs" / f"{name}.log"
    if not log.exists():
        return ""
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace"))
    lines = text.splitlines()
    hits = [ln for ln in lines if re.search(r"TFAIL|TBROK|TWARN", ln)] or \
        [ln for ln in lines if "TCONF" in ln] or lines[-1:]
    line = hits[0].strip() if hits else ""
    return line[:160].replace("|", "/")


STATUSES = ("pass", "conf", "fail", "broken", "warn", "timeout", "hang", "crash")


def report(dest: Path) -> None:
    um, up = load("uml"), load("umlpy")
    names = [n for n, _ in runtest(None)]
    why = excuses()
    fams: dict[str, list[str]] = defaultdict(list)
    for n in names:
        fams[family(n)].append(n)

    def count(res: dict, tests: list[str]) -> dict[str, int]:
        c = defaultdict(int)
        for t in tests:
            if t in res:
                c[res[t]["status"]] += 1
        return c

    def cell(c: dict[str, int], tests: list[str], res: dict) -> str:
        ran = sum(c.values())
        bad = c["fail"] + c["broken"] + c["warn"] + c["timeout"] + c["hang"] + c["crash"]
        return f"{ran} | {c['pass']} | {c['conf']} | {bad}"

    regress = [n for n in names if um.get(n, {}).get("status") == "pass"
               and up.get(n, {}).get("status") != "pass"]
    lines = [
        "# Conformance: LTP's syscall tests, umlpy beside UML",
        "",
        f"Generated by `make ltp` (conformance/ltp.py) on {time.strftime('%Y-%m-%d')}: LTP's "
        "`runtest/syscalls` list, built from ../shared/ltp's source, run in a Debian 12 guest "
        f"(rootfs/debian.sh plus /opt/ltp) under umlpy and under UML 6.1 (Debian's user-mode-linux), "
        f"both with mem={MEM}, a fresh COW disk per boot and a per-test deadline. A test that hangs "
        "or takes the kernel down is recorded and the run goes on from the next test in a new boot.",
        "",
        "Verdicts are LTP's exit status: pass (0), conf (TCONF: the test found something missing and "
        "skipped), fail (TFAIL), broken (TBROK, or killed by a signal), warn (TWARN), timeout "
        "(past the deadline), hang (the kernel stopped answering), crash (the kernel exited).",
        "",
        "## Totals",
        "",
        "| kernel | tests | " + " | ".join(STATUSES) + " |",
        "|---|---|" + "---|" * len(STATUSES),
    ]
    for k, res in (("UML 6.1", um), ("umlpy", up)):
        c = count(res, names)
        lines.append(f"| {k} | {sum(c.values())} | " + " | ".join(str(c[s]) for s in STATUSES) + " |")
    lines += ["", f"Tests that pass under UML and not under umlpy: **{len(regress)}**.", ""]
    if regress:
        lines += ["| test | umlpy | what umlpy did (the first failure LTP printed) | why |", "|---|---|---|---|"]
        for n in regress:
            lines.append(f"| {n} | {up.get(n, {}).get('status', 'not run')} | {first_failure('umlpy', n)} "
                         f"| {why.get(n, '')} |")
        lines.append("")
    better = [n for n in names if up.get(n, {}).get("status") == "pass"
              and um.get(n, {}).get("status") not in (None, "pass")]
    if better:
        lines += [f"Tests that pass under umlpy and not under UML: {len(better)} ("
                  + ", ".join(better) + ").", ""]
    lines += ["## Per syscall family", "",
              "ran | pass | conf | not passing (fail, broken, warn, timeout, hang, crash)", "",
              "| family | UML ran | pass | conf | bad | umlpy ran | pass | conf | bad |",
              "|---|---|---|---|---|---|---|---|---|"]
    for fam in sorted(fams):
        tests = fams[fam]
        lines.append(f"| {fam} | {cell(count(um, tests), tests, um)} | {cell(count(up, tests), tests, up)} |")
    lines.append("")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import cpython      # conformance/cpython.py: the same for CPython's suite
    if any((cpython.OUT / f"{k}.json").exists() for k in ("native", "uml", "umlpy")):
        lines += ["## CPython's regression suite", "",
                  "`conformance/cpython.py`: `python3 -m test MODULE` in the Debian image natively (a chroot "
                  "with /proc and /dev), under UML 6.1 and under umlpy, one boot per module.", "",
                  cpython.report()]
    dest.write_text("\n".join(lines))
    print(summary_line("uml", um))
    print(summary_line("umlpy", up))
    print(f"{len(regress)} pass under UML and not under umlpy; wrote {dest}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--src", type=Path, required=True, help="LTP's source tarball")
    b.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    r = sub.add_parser("run")
    r.add_argument("--kernel", choices=("umlpy", "uml"), required=True)
    r.add_argument("--list", default="syscalls", choices=sorted(LIST_DIRS),
                   help="which of LTP's runtest lists (default: syscalls)")
    r.add_argument("--tests", help="a regex of test names (default: the whole list)")
    r.add_argument("--timeout", type=int, default=120, help="seconds per test")
    r.add_argument("--fresh", action="store_true", help="forget earlier results of this kernel")
    r.add_argument("--resume", action="store_true", help="skip tests that already have a result")
    r.add_argument("--quiet", action="store_true", help="progress only to results/<kernel>/run.log")
    r.add_argument("--out", type=Path, help="results here instead of the cache's results/<kernel>"
                   " (a trial run that must not touch the recorded ones)")
    rp = sub.add_parser("report")
    rp.add_argument("--out", type=Path, default=ROOT / "docs" / "conformance.md")
    a = ap.parse_args()
    if a.cmd == "build":
        build(a.src.resolve(), a.jobs)
    elif a.cmd == "run":
        run(a.kernel, a.tests, a.timeout, a.fresh, a.quiet, a.resume, a.out, a.list)
    else:
        report(a.out)


if __name__ == "__main__":
    main()
