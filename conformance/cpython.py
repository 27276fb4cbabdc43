#!/usr/bin/env python3
"""CPython's own regression tests in the Debian guest: natively (a chroot
of the same tree), in umlpy and in UML, module by module (issue 13).

The Debian image (rootfs/debian.sh) carries libpython3.11-testsuite.  Each
module runs with `python3 -m test` in a fresh boot over a fresh COW disk,
with a deadline; a module passes when regrtest says "Tests result: SUCCESS".

  cpython.py run [--kernel native|umlpy|uml ...] [--modules m1,m2]
  cpython.py report          the table in docs/conformance.md's CPython part

Results: $UMLPY_CACHE/cpython/<kernel>.json and a log per module.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("UMLPY_CACHE", Path.home() / ".cache" / "umlpy"))
DEBIAN = CACHE / "debian"
OUT = CACHE / "cpython"
UML_BIN = Path("/usr/bin/linux.uml")
SHIM = CACHE / "ltp" / "uml_shim.so"        # conformance/ltp.py builds it
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
GUEST_ENV = "PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TMPDIR=/tmp"
# debootstrap's minbase writes no /etc/hosts: without one "localhost" goes to
# DNS and fails, and test_socket, asyncio's and the network modules' servers
# never start (on both sides); each side gets this one
HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
PREP = "mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; " \
       "mkdir -p /dev/pts /dev/shm; mount -t devpts pts /dev/pts; mount -t tmpfs shm /dev/shm; " \
       f"mount -o remount,rw /; printf '{HOSTS}' > /etc/hosts; " \
       "ip link set lo up 2>/dev/null; hostname localhost; "


def guest_script(module: str, timeout: int) -> str:
    return (PREP + f"cd /tmp && timeout -k 5 {timeout} python3 -m test -q {module} > /tmp/out 2>&1; "
            "echo @@RC=$?; cat /tmp/out; echo @@END; sync")


def run_one(kernel: str, module: str, timeout: int) -> tuple[str, str]:
    """(verdict, log) for one module."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"cpy-{kernel}-") as work:
        if kernel == "native":
            # a mount namespace of its own gives the chroot /proc, /dev and
            # /dev/shm without touching the host's mounts
            tree = DEBIAN / "tree"
            # the tree's /etc with HOSTS, over it (the cached tree stays as built)
            shutil.copytree(tree / "etc", f"{work}/etc", symlinks=True)
            Path(f"{work}/etc/hosts").write_text(HOSTS)
            cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   f"mount -t proc proc {tree}/proc && mount --rbind /dev {tree}/dev && "
                   f"mount -t sysfs sys {tree}/sys && mount -t tmpfs shm {tree}/dev/shm && "
                   f"mount --bind {work}/etc {tree}/etc && "
                   f"exec chroot {tree} /bin/sh -c 'cd /tmp && timeout -k 5 {timeout} "
                   f"python3 -m test -q {module} 2>&1; echo @@RC=$?'"]
            env = dict(os.environ, HOME="/root", LANG="C.UTF-8", TMPDIR="/tmp")
        else:
            cow = f"{work}/root.cow"
            common = [f"ubd0={cow},{DEBIAN / 'root.img'}", "root=/dev/ubda", "rw", f"mem={MEM}", "quiet",
                      "init=/bin/sh"]
            script = guest_script(module, timeout)
            if kernel == "umlpy":
                cmd = [str(ROOT / ".venv" / "bin" / "umlpy"), str(OUT / "linux-um"), *common, "--",
                       "-c", f"export {GUEST_ENV}; {script}"]
            else:
                # UML passes init's arguments as kernel command-line words,
                # split at spaces: the script goes on a second disk, padded
                # with newlines to whole sectors (a ubd is read in them)
                text = f"export {GUEST_ENV}; {script}\n".encode()
                (Path(work) / "s").write_bytes(text + b"\n" * (-len(text) % 4096))
                cmd = ["env", f"LD_PRELOAD={SHIM}", str(UML_BIN), f"uml_dir={work}", f"umid=cpy{os.getpid()}",
                       "con0=fd:0,fd:1", "con=null", f"ubd1={work}/s", *common[:-1],
                       "init=/bin/sh", "/dev/ubdb"]
            env = None
        try:
            # stdin: /dev/null; a pipe closed at once hangs up UML's console, and init with it
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 120,
                               env=env)
            out = p.stdout.decode(errors="replace").replace("\r", "")
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace") + "\n@@HANG"
    rc = None
    for line in out.splitlines():
        if line.startswith("@@RC="):
            rc = int(line[5:])
    if "Tests result: SUCCESS" in out:
        verdict = "pass"
    elif "@@HANG" in out or rc in (124, 137):
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
    sub.add_parser("report")
    a = ap.parse_args()
    if a.cmd == "run":
        run(a.kernel or ["native", "umlpy", "uml"], a.modules.split(",") if a.modules else MODULES, a.timeout)
    else:
        sys.stdout.write(report())


if __name__ == "__main__":
    main()
