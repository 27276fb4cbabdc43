#!/usr/bin/env python3
"""GLib's installed tests in the Debian guest: natively (a chroot of the
same tree, over an overlay) and in umlpy.

GLib is the C library under most of a Linux desktop, and its tests reach
the kernel in ways the language suites do not: GMainContext's poll loop
over eventfd, pipes and signalfd-less SIGCHLD handling, g_spawn's
close_range and fork/posix_spawn paths, inotify for GFileMonitor,
pidfd-less child watches, futex-based GMutex/GCond with timeouts on
CLOCK_MONOTONIC, unix-socket credentials and fd passing in GDBus,
xattrs, fallocate/copy_file_range in GFile copies, /proc/self/mountinfo
in unix-mounts.  Debian's libglib2.0-tests installs them as
/usr/libexec/installed-tests/glib/*, each named by a .test file in
/usr/share/installed-tests/glib/ (its Exec= line).

  glib.py build              the image: the Debian tree of rootfs/debian.sh
                             plus libglib2.0-tests (and its dependencies:
                             dbus, shared-mime-info, python3-gi, ...)
  glib.py run [--kernel native|umlpy ...] [--tests t1,t2] [--timeout S]
              [--cases] [--user UID] [--tag NAME]
  glib.py report             which tests pass natively and fail in umlpy

All tests run in one boot, one after another, each in a fresh directory
under a `timeout`; a GTest binary gets --tap, so its failing test cases
show as "not ok" lines.  A test passes when it exits 0 (77 is a skip,
124 and 137 a timeout).  A GTest binary stops at its first failing case,
which hides the cases after it: --cases runs each case by itself.  As
root, a few tests fail natively (they expect permission checks to
apply): --user 65534 runs them as nobody.  Results:
$UMLPY_CACHE/glib/<kernel>[-cases][-u<uid>].json, the whole output in
<kernel>[-<tag>].log and the kernel's own log (umlpy's stderr, where an
oops or a traceback would be) in <kernel>[-<tag>].stderr.
"""
from __future__ import annotations

import json
import re
import shutil
import sys

from debian_boot import CACHE, GUEST_ENV, ROOT, boot, derived_image, status, suite_cli

OUT = CACHE / "glib"
TESTS_DIR = "/usr/share/installed-tests/glib"
MEM = "2048M"
PACKAGES = "libglib2.0-tests dbus shared-mime-info"


def build() -> None:
    """$OUT/tree and $OUT/root.img: the Debian tree plus GLib's tests."""
    print(derived_image(OUT, PACKAGES, TESTS_DIR))


def all_tests() -> list[str]:
    """The tests' names (their .test files' stems), from the built tree."""
    return sorted(p.stem for p in (OUT / "tree" / TESTS_DIR.lstrip("/")).glob("*.test"))


def guest_script(tests: list[str], timeout: int, cases: bool = False, user: int | None = None) -> str:
    """The shell loop the guest runs: each test's output between @@BEGIN
    and @@END lines, the latter with its exit status and seconds.  With
    `cases`, each GTest case of each test runs by itself (-l lists them,
    -p runs one), named test/case: a test that aborts at its first failing
    case (as some do natively, run as root) still has its later cases run.
    With `user`, the tests run as that uid and gid (no groups), in a
    directory of theirs that is also their HOME: as upstream runs them,
    where root's overrides of permissions do not make tests fail."""
    # the same environment on every side (natively the chroot inherits the
    # host's, whose PATH has directories an unprivileged user may not search)
    env = f"env -i {GUEST_ENV} "
    if user is not None:
        env = f"setpriv --reuid={user} --regid={user} --clear-groups {env}HOME=$d "
    one = ("d=$(mktemp -d /tmp/glib-$t.XXXXXX); cd $d; echo \"@@BEGIN $n\"; s=$(date +%s); "
           + (f"chown {user}:{user} $d; " if user is not None else "")
           + f"timeout -k 10 {timeout} {env}$exe $args </dev/null 2>&1; rc=$?; "
           "echo \"@@END $n rc=$rc secs=$(( $(date +%s) - s ))\"; cd /tmp; rm -rf $d; ")
    if cases:
        one = ("for c in $($exe -l 2>/dev/null | grep '^/'); do n=$t$c; args=\"--tap -p $c\"; "
               + one + "done; ")
    else:
        one = "n=$t; " + one
    return (
        f"for t in {' '.join(tests)}; do "
        f"f={TESTS_DIR}/$t.test; exe=$(sed -n 's/^Exec=//p' $f); args=; "
        # a GTest binary (an ELF) whose runner wants TAP: the Python tests print TAP by themselves
        "if grep -q '^Output=TAP' $f && head -c4 ${exe%% *} | grep -q ELF; then args=--tap; fi; "
        + one + "done"
    )


END = re.compile(r"^@@END (\S+) rc=(\d+) secs=(\d+)", re.M)


def verdict(rc: int) -> str:
    if rc == 0:
        return "pass"
    if rc == 77:
        return "skip"
    if rc in (124, 137):
        return "timeout"
    return "fail"


def sections(out: str) -> dict[str, str]:
    """Each test's output, by name (a test that never ended: to the end)."""
    res: dict[str, str] = {}
    for m in re.finditer(r"^@@BEGIN (\S+)\n(.*?)(?=^@@BEGIN |\Z)", out, re.M | re.S):
        res[m.group(1)] = m.group(2)
    return res


def results(out: str, tests: list[str]) -> dict[str, dict[str, object]]:
    """Per test: its verdict, exit status, seconds, failing GTest cases
    ("not ok" lines that are not TODO or SKIP) and the message of a failed
    assertion (GTest's "Bail out!" line, for a case that aborted); a test that printed no
    @@END (the run stopped in it or before it) is "hang" or "crash"."""
    secs = sections(out)
    res: dict[str, dict[str, object]] = {}
    for m in END.finditer(out):
        name, rc = m.group(1), int(m.group(2))
        failed = [line.split(" ", 3)[-1] for line in secs.get(name, "").splitlines()
                  if line.startswith("not ok ") and "# TODO" not in line and "# SKIP" not in line]
        bail = [line[len("Bail out! "):] for line in secs.get(name, "").splitlines() if line.startswith("Bail out! ")]
        res[name] = {"verdict": verdict(rc), "rc": rc, "secs": int(m.group(3)), "failed": failed,
                     "bail": bail[0][:200] if bail else ""}
    for t in tests:
        if t not in res:
            res[t] = {"verdict": "hang" if out.endswith("@@HANG") else "crash", "rc": None,
                      "secs": None, "failed": [], "bail": ""}
    return res


def suffix(cases: bool, user: int | None) -> str:
    """The results file's name after the kernel's: which kind of run."""
    return ("-cases" if cases else "") + (f"-u{user}" if user is not None else "")


def run(kernels: list[str], tests: list[str], timeout: int, deadline: int, tag: str, cases: bool,
        user: int | None) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    # the kernel as it is now, a copy per run (runs side by side each keep
    # theirs): rebuilding ./linux-um meanwhile changes nothing here
    kimage = OUT / f"linux-um-{tag or 'run'}"
    shutil.copy(ROOT / "linux-um", kimage)
    cmd = guest_script(tests, timeout, cases, user)
    for kernel in kernels:
        name = kernel + (f"-{tag}" if tag else "")
        out = boot(kernel, OUT / "tree", OUT / "root.img", kimage, cmd, deadline, MEM, overlay=True,
                   log=OUT / f"{name}.log", stderr=OUT / f"{name}.stderr")
        rfile = OUT / f"{kernel}{suffix(cases, user)}.json"
        res = json.loads(rfile.read_text()) if rfile.exists() else {}
        new = results(out, [] if cases else tests)
        res.update(new)
        rfile.write_text(json.dumps(res, indent=1, sort_keys=True))
        for t in sorted(new):
            r = new[t]
            print(f"{kernel:6s} {t:36s} {r['verdict']:7s} rc={r['rc']} {r['secs']}s "
                  f"{' '.join(r['failed'])} {r['bail']}".rstrip(), flush=True)
        if status(out) is None:
            print(f"{kernel}: the run did not end (see {OUT / name}.log)")
        err = (OUT / f"{name}.stderr").read_text(errors="replace")
        if "Oops" in err or "Traceback" in err:
            print(f"{kernel}: the kernel's log has an oops or a traceback (see {OUT / name}.stderr)")


def report() -> str:
    lines: list[str] = []
    for suf, what in (("", "Tests"), ("-cases", "Cases run one by one"), ("-u65534", "Tests as nobody"),
                      ("-cases-u65534", "Cases run one by one as nobody")):
        res = {k: json.loads((OUT / f"{k}{suf}.json").read_text()) if (OUT / f"{k}{suf}.json").exists()
               else {} for k in ("native", "umlpy")}
        tests = sorted(set(res["native"]) | set(res["umlpy"]))
        if not tests:
            continue
        lines += [f"| {what.lower()} | native | umlpy | umlpy's failing cases, or its assertion |", "|---|---|---|---|"]
        for t in tests:
            n, u = res["native"].get(t, {}), res["umlpy"].get(t, {})
            if n.get("verdict") != u.get("verdict"):
                why = " ".join(u.get("failed", [])) or u.get("bail", "")
                lines.append(f"| {t} | {n.get('verdict', '-')} | {u.get('verdict', '-')} | {why.replace('|', '/')} |")
        both = [t for t in tests if res["native"].get(t, {}).get("verdict") == "pass"]
        ok = [t for t in both if res["umlpy"].get(t, {}).get("verdict") == "pass"]
        lines += ["", f"{what}: {len(tests)}; passing natively: {len(both)}; of those, umlpy passes {len(ok)} "
                  "(the table lists those whose verdicts differ).", ""]
    return "\n".join(lines)


def main() -> None:
    ap, r = suite_cli(__doc__, ("native", "umlpy"))
    r.add_argument("--tests", help="comma-separated (default: every .test file)")
    r.add_argument("--timeout", type=int, default=300, help="seconds per test")
    r.add_argument("--deadline", type=int, default=4 * 3600, help="seconds for the whole run")
    r.add_argument("--tag", default="", help="names this run's log files (runs of parts of the list side by side)")
    r.add_argument("--cases", action="store_true", help="each GTest case by itself (as test/case)")
    r.add_argument("--user", type=int, help="run the tests as this uid (65534: nobody) rather than root")
    a = ap.parse_args()
    if a.cmd == "build":
        build()
    elif a.cmd == "run":
        run(a.kernel or ["native", "umlpy"], a.tests.split(",") if a.tests else all_tests(), a.timeout,
            a.deadline, a.tag, a.cases, a.user)
    else:
        sys.stdout.write(report())


if __name__ == "__main__":
    main()
