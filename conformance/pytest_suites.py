#!/usr/bin/env python3
"""Python test suites Debian 12 ships with its packages, run by pytest in
the Debian guest: natively (a chroot of the same tree, over an overlay),
in umlpy and in UML.  Each suite has an image of its own (the tree of
rootfs/debian.sh plus its packages) and one boot per kernel.

- numpy (python3-numpy 1.24): the kernel through memory more than files:
  large anonymous mappings and calloc of fresh pages, madvise, mremap for
  growing arrays, memmap'd files, floating-point exceptions delivered as
  signals, threads and fork, /proc/meminfo (requires_memory).  Run with
  `-m "not slow"` (numpy.test()'s default).  The f2py, distutils and
  limited-API tests compile C and Fortran, for which the image has no
  compiler: they fail or error on every side alike.
- psutil (5.9.4): /proc and /sys as a process monitor reads them (every
  field of stat, status, statm, smaps, io, limits, fd, net/*, meminfo,
  cpuinfo, diskstats), each checked against what the tests make or what
  ps, free and friends print; rlimits, nice, ionice, affinity, signals.
- trio (0.22): the event loop on epoll and signals: sockets of every
  family and their errors, socketpair, subprocesses with pidfds and
  SIGCHLD, threads waking the loop, signal wakeup fds, KI protection.
- tornado (6.2): an IOLoop on epoll under asyncio: TCP clients and servers
  with their timeouts and closes, HTTP/1.1 both ways, the resolvers,
  subprocesses and SIGCHLD, autoreload's re-exec.
- twisted (22.4): reactors on epoll, poll and select; TCP, UDP,
  multicast and unix sockets with fd passing and credentials; processes
  on ptys and pipes with their fds remapped; inotify; file locks; conch's
  ptys.  Run by its own runner, trial (under pytest a test that waits
  for good waits for good: trial gives each 120 s).
- zmq (pyzmq 24, libzmq 4.3): libzmq's I/O threads on epoll and
  eventfds, TCP, IPC (unix) and inproc transports, zmq_poll, monitors,
  devices in threads and processes, tornado and asyncio integration.
- cherrypy (CherryPy 18 and its server, cheroot 9): threaded HTTP servers
  on TCP and unix sockets, keep-alive and pipelining, timeouts, SSL,
  sessions in files with locks, the autoreloader's re-exec.
- greenlet (2.0): stack switching in and across threads, the GC of
  suspended frames.

  pytest_suites.py build SUITE     its image
  pytest_suites.py run SUITE [--kernel native|umlpy|uml ...] [--mem 2048M]
  pytest_suites.py report SUITE    the tests whose outcome differs

Results: $UMLPY_CACHE/<suite>/<kernel>.json (each test's outcome), the
whole output in <kernel>.log, the kernel's own log in <kernel>.stderr.
"""
from __future__ import annotations

import re

from debian_boot import CACHE, derived_image, differing, run_suite, suite_cli

# suite -> (its packages, a path that says they are installed, pytest's target and options)
SUITES = {
    "numpy": ("python3-numpy python3-pytest python3-hypothesis python3-distutils python3-typing-extensions",
              "/usr/lib/python3/dist-packages/numpy/core/tests", "-m 'not slow' --pyargs numpy"),
    "psutil": ("python3-psutil python3-pytest procps", "/usr/lib/python3/dist-packages/psutil/tests",
               "--pyargs psutil.tests"),
    # (its SSL and code-generation tests want pyOpenSSL and astor, which
    # the image has not: left out, as on every side)
    "trio": ("python3-trio python3-pytest python3-trustme", "/usr/lib/python3/dist-packages/trio/_core/tests",
             "--continue-on-collection-errors --pyargs trio"),
    "tornado": ("python3-tornado python3-pytest", "/usr/lib/python3/dist-packages/tornado/test",
                "--pyargs tornado.test"),
    "twisted": ("python3-twisted python3-hypothesis", "/usr/lib/python3/dist-packages/twisted/test",
                "twisted.internet twisted.python twisted.test"),
    "zmq": ("python3-zmq python3-pytest python3-tornado", "/usr/lib/python3/dist-packages/zmq/tests",
            "--pyargs zmq.tests"),
    "cherrypy": ("python3-cherrypy3 python3-pytest python3-requests python3-requests-toolbelt "
                 "python3-jaraco.text python3-objgraph python3-path python3-pytest-mock python3-requests-unixsocket "
                 "python3-trustme python3-portend python3-openssl python3-distutils",
                 "/usr/lib/python3/dist-packages/cherrypy/test",
                 "--pyargs cheroot.test cherrypy.test"),
    "greenlet": ("python3-greenlet python3-pytest python3-psutil python3-objgraph",
                 "/usr/lib/python3/dist-packages/greenlet/tests",
                 "--pyargs greenlet.tests"),
}
# the suites trial runs rather than pytest
TRIAL = {"twisted"}
# the suites whose tests want an interface with addresses and a default
# route, as the native side has the host's (IPv6 link-local, multicast):
# umlpy boots with user-mode networking for them
NETWORKED = {"twisted"}
# trial's verdicts as pytest names them
TRIAL_VERDICTS = {"OK": "PASSED", "FAILURE": "FAILED", "ERROR": "ERROR", "SKIPPED": "SKIPPED",
                  "TODO": "XFAIL", "SUCCESS!?!": "XPASS"}


def command(suite: str) -> str:
    """Each test's outcome on its own line (pytest -v; -rA's summary of
    numpy's 27 000 tests is quadratic in pytest; trial's bwverbose)."""
    if suite in TRIAL:
        return (f"python3 -m twisted.trial --reporter=bwverbose {SUITES[suite][2]} 2>&1 "
                "| grep -a -E ' \\.\\.\\. .*\\[[A-Z!?]+\\]$|^(PASSED|FAILED) '")
    return (f"python3 -m pytest -v --color=no -p no:cacheprovider {SUITES[suite][2]} 2>&1 "
            "| grep -a -E '::.* (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)( +\\[ *[0-9]+%\\])?$|^=+ .* in [0-9.]+s'")


OUTCOME = re.compile(r"^(\S.*?::.*?) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)(?: +\[ *\d+%\])?$", re.M)
TRIAL_OUTCOME = re.compile(r"^(\S+) \.\.\. .*?\[(OK|FAILURE|ERROR|SKIPPED|TODO|SUCCESS!\?!)\]", re.M)


def outcomes(out: str) -> dict[str, str]:
    """Each test's outcome (a test that failed in its teardown as well
    keeps its first)."""
    res: dict[str, str] = {}
    for m in OUTCOME.finditer(out):
        res.setdefault(m.group(1), m.group(2))
    for m in TRIAL_OUTCOME.finditer(out):
        res.setdefault(m.group(1), TRIAL_VERDICTS[m.group(2)])
    return res


def run(suite: str, kernels: list[str], mem: str, deadline: int) -> None:
    out_dir = CACHE / suite
    out_dir.mkdir(parents=True, exist_ok=True)
    run_suite(out_dir, kernels, command(suite), outcomes, deadline, mem,
              ("eth0=user", "ip=dhcp") if suite in NETWORKED else ())


def main() -> None:
    ap, r = suite_cli(__doc__, ("native", "umlpy", "uml"), SUITES)
    r.add_argument("--mem", default="2048M")
    r.add_argument("--deadline", type=int, default=3600, help="seconds for the whole run")
    a = ap.parse_args()
    if a.cmd == "build":
        packages, ready, _ = SUITES[a.suite]
        print(derived_image(CACHE / a.suite, packages, ready))
    elif a.cmd == "run":
        run(a.suite, a.kernel or ["native", "umlpy"], a.mem, a.deadline)
    else:
        print(differing(CACHE / a.suite))


if __name__ == "__main__":
    main()
