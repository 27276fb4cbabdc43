#!/usr/bin/env python3
"""CPython's own regression tests in the Debian guest: natively (a chroot
of the same tree), in umlpy and in UML, module by module (issue 13).

The Debian image (rootfs/debian.sh) carries libpython3.11-testsuite.  Each
module runs with `python3 -m test` in a fresh boot over a fresh COW disk,
with a deadline; a module passes when regrtest says "Tests result: SUCCESS".

  cpython.py run [--kernel native|umlpy|uml ...] [--modules m1,m2]
  cpython.py whole [--kernel ...]   the whole suite in one boot (-j2)
  cpython.py report          the table in docs/conformance.md's CPython part

Results: $UMLPY_CACHE/cpython/<kernel>.json and a log per module;
`whole`: whole-<kernel>.json (regrtest's failed and skipped modules, its
result, the time) and whole-<kernel>.log.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time

from debian_boot import CACHE, ROOT, boot, status

DEBIAN = CACHE / "debian"
OUT = CACHE / "cpython"
MEM = "1024M"
# the modules that exercise the kernel: processes, signals, files, sockets,
# terminals, time, memory, threads; and a few pure ones as a baseline
MODULES = [
    "test_os", "test_posix", "test_signal", "test_subprocess", "test_socket", "test_selectors",
    "test_select", "test_poll", "test_epoll", "test_socketserver", "test_fcntl", "test_pty",
    "test_ioctl", "test_threading", "test_thread", "test_time", "test_mmap", "test_shutil",
    "test_tempfile", "test_pathlib", "test_glob", "test_fileio", "test_stat", "test_pwd",
    "test_grp", "test_resource", "test_sched", "test_wait3", "test_wait4", "test_fork1",
    "test_faulthandler", "test_timeout", "test_asyncio.test_events", "test_asyncio.test_subprocess",
    "test_asyncio.test_unix_events", "test_asyncio.test_sendfile", "test_asyncio.test_sock_lowlevel",
    "test_httplib", "test_urllib2_localnet", "test_logging", "test_queue", "test_tarfile",
    "test_zipfile", "test_sqlite3", "test_concurrent_futures",
    # added 2026-12-05: more of the modules that reach the kernel
    "test_eintr", "test_file_eintr", "test_io", "test_file", "test_fileinput", "test_largefile",
    "test_mailbox", "test_dbm_dumb", "test_dbm_gnu", "test_openpty", "test_popen", "test_pipes",
    "test_getpass", "test_threadsignals", "test_threading_local", "test_sys", "test_builtin", "test_cmd_line",
    "test_cmd_line_script", "test_genericpath", "test_posixpath", "test_multiprocessing_main_handling",
    "test_httpservers", "test_ftplib", "test_smtplib", "test_imaplib", "test_poplib", "test_telnetlib",
    "test_xmlrpc", "test_docxmlrpc", "test_ssl", "test_zipimport", "test_compileall", "test_py_compile",
    "test_uuid", "test_platform", "test_syslog", "test_support", "test_shelve", "test_unicode_file_functions",
    "test_gzip", "test_ctypes", "test_gc", "test_tracemalloc", "test_site", "test_sysconfig", "test_venv",
    "test_asyncio.test_streams", "test_asyncio.test_server", "test_asyncio.test_base_events",
    "test_asyncio.test_selector_events", "test_asyncio.test_ssl", "test_asyncio.test_tasks",
    "test_asyncio.test_locks", "test_asyncio.test_pep492", "test_asyncio.test_waitfor",
    "test_asyncio.test_runners", "test_asyncio.test_timeouts", "test_multiprocessing_fork",
    "test_multiprocessing_forkserver", "test_multiprocessing_spawn",
    # added 2026-12-06
    "test_importlib", "test_import", "test_unittest", "test_bz2", "test_lzma", "test_zlib", "test_filecmp",
    "test_threadedtempfile", "test_runpy", "test_pkgutil", "test_modulefinder", "test_locale", "test__locale",
    "test_utf8_mode", "test_c_locale_coercion", "test_repl", "test_pdb", "test_trace", "test_profile",
    "test_cprofile", "test_atexit", "test_audit", "test_readline", "test_exceptions", "test_traceback",
    "test_hashlib", "test_random", "test_datetime", "test_strftime", "test_strptime", "test_calendar",
    "test_wsgiref", "test_urllib", "test_urllib2", "test_robotparser", "test_netrc", "test_mimetypes",
    "test_gettext", "test_pydoc", "test_unicode_file", "test_univnewlines", "test_bufio", "test_memoryio",
    "test_dbm", "test_dbm_ndbm", "test_crypt", "test_sys_settrace", "test_finalization", "test_weakref",
    "test_tabnanny", "test_tokenize", "test_getpath", "test_fileutils", "test_embed", "test_regrtest",
    "test_asyncio.test_futures", "test_asyncio.test_queues", "test_asyncio.test_context",
    "test_asyncio.test_protocols", "test_asyncio.test_sslproto", "test_asyncio.test_buffered_proto",
    "test_zipapp", "test_curses", "test_dtrace", "test_keyword", "test_lib2to3",
]
def run_one(kernel: str, module: str, timeout: int) -> tuple[str, str]:
    """(verdict, log) for one module."""
    t0 = time.monotonic()
    # the output kept in a file and shown at the end: the console does not
    # interleave it with the kernel's
    out = boot(kernel, DEBIAN / "tree", DEBIAN / "root.img", OUT / "linux-um",
               f"timeout -k 5 {timeout} python3 -m test -q {module} > /tmp/.out 2>&1; r=$?; cat /tmp/.out; "
               "(exit $r)", timeout + 120, MEM)
    rc = status(out)
    if "Tests result: SUCCESS" in out:
        verdict = "pass"
    elif out.endswith("@@HANG") or rc in (124, 137):
        verdict = "timeout"
    elif "NO TESTS RAN" in out:
        verdict = "skip"
    elif rc is None:
        verdict = "crash"
    else:
        verdict = "fail"
    return verdict, f"# {kernel} {module}: {verdict} in {time.monotonic() - t0:.0f}s\n{out}"


def run(kernels: list[str], modules: list[str], timeout: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    # the kernel as it is now: rebuilding ./linux-um meanwhile changes nothing here
    shutil.copy(ROOT / "linux-um", OUT / "linux-um")
    for kernel in kernels:
        rfile = OUT / f"{kernel}.json"
        res = json.loads(rfile.read_text()) if rfile.exists() else {}
        logs = OUT / kernel
        logs.mkdir(exist_ok=True)
        for m in modules:
            verdict, log = run_one(kernel, m, timeout)
            res[m] = verdict
            (logs / f"{m}.log").write_text(log)
            rfile.write_text(json.dumps(res, indent=1, sort_keys=True))
            print(f"{kernel:6s} {m:36s} {verdict}", flush=True)


WHOLE_TIMEOUT = 4 * 3600


def _listed(out: str, heading: str) -> list[str]:
    """The module names regrtest lists under "N tests <heading>:"."""
    m = re.search(rf"^\d+ tests? {heading}:\n((?:    .*\n)+)", out, re.M)
    return sorted(m.group(1).split()) if m else []


def whole(kernels: list[str]) -> None:
    """regrtest's whole default selection, two workers, 15 minutes a module."""
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "linux-um", OUT / "linux-um")
    for kernel in kernels:
        t0 = time.monotonic()
        out = boot(kernel, DEBIAN / "tree", DEBIAN / "root.img", OUT / "linux-um",
                   "python3 -m test -j2 --timeout 900 > /tmp/.out 2>&1; r=$?; tail -c 200000 /tmp/.out; "
                   "(exit $r)", WHOLE_TIMEOUT, "2048M", overlay=True)
        res = {"failed": _listed(out, "failed"), "skipped": _listed(out, "skipped"),
               "result": (re.findall(r"^Tests result: (.*)$", out, re.M) or ["none (it did not end)"])[-1],
               "secs": round(time.monotonic() - t0)}
        (OUT / f"whole-{kernel}.log").write_text(out)
        (OUT / f"whole-{kernel}.json").write_text(json.dumps(res, indent=1))
        print(f"{kernel:6s} {res['result']}: failed {' '.join(res['failed']) or 'none'}", flush=True)


def report() -> str:
    res = {k: json.loads((OUT / f"{k}.json").read_text()) if (OUT / f"{k}.json").exists() else {}
           for k in ("native", "uml", "umlpy")}
    lines = ["| module | native | UML 6.1 | umlpy |", "|---|---|---|---|"]
    for m in MODULES:
        lines.append(f"| {m} | " + " | ".join(res[k].get(m, "-") for k in ("native", "uml", "umlpy")) + " |")
    both = [m for m in MODULES if res["native"].get(m) == "pass" and res["uml"].get(m) == "pass"]
    ok = [m for m in both if res["umlpy"].get(m) == "pass"]
    lines += ["", f"Modules passing natively and under UML: {len(both)}; of those, umlpy passes {len(ok)}."]
    missing = [m for m in both if m not in ok]
    if missing:
        lines.append("Not yet in umlpy: " + ", ".join(missing) + ".")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--kernel", action="append", choices=("native", "umlpy", "uml"))
    r.add_argument("--modules", help="comma-separated (default: the built-in list)")
    r.add_argument("--timeout", type=int, default=600)
    w = sub.add_parser("whole")
    w.add_argument("--kernel", action="append", choices=("native", "umlpy", "uml"))
    sub.add_parser("report")
    a = ap.parse_args()
    if a.cmd == "run":
        run(a.kernel or ["native", "umlpy", "uml"], a.modules.split(",") if a.modules else MODULES, a.timeout)
    elif a.cmd == "whole":
        whole(a.kernel or ["native", "umlpy", "uml"])
    else:
        sys.stdout.write(report())


if __name__ == "__main__":
    main()
