#!/usr/bin/env python3
"""Node.js's own tests (test/parallel of Debian 12's nodejs source) in the
Debian guest: natively (a chroot of the same tree, over an overlay), in
umlpy and in UML.

Node leans on the kernel through libuv: epoll for every socket, pipe and
timer, a thread pool for file calls, signalfd-less signal handling through
a self-pipe, fork+exec with CLONE_VFORK and pipes or socketpairs to each
child, IPC channels passing fds over unix sockets, worker threads, inotify
for fs.watch, sendfile and copy_file_range in fs.copyFile.  Each test is a
script of its own that tools/test.py runs in a fresh node.

  nodejs.py build            the image: the Debian tree of rootfs/debian.sh
                             plus nodejs, and the tests of its source
                             package (Debian's patches applied) as /opt/node
  nodejs.py run [--kernel native|umlpy|uml ...] [--tests GLOB ...]
                             (TESTS by default; `--tests parallel` for
                             all of test/parallel, half an hour a side here)
  nodejs.py report           the tests whose outcome differs

The run is tools/test.py's, one test at a time (-j1: the guest has one
CPU) with its TAP output; umlpy boots with user-mode networking, as the
native side has the host's network (the DNS tests want a name server that
can be reached, the link-local ones an interface with such an address).
Results: $UMLPY_CACHE/nodejs/<kernel>.json (each test's outcome), the
whole output in <kernel>.log.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from debian_boot import CACHE, debian_source, derived_image, source_suite_main

OUT = CACHE / "nodejs"
SRC = OUT / "src"
MEM = "2048M"
# the families that reach the kernel most (files, processes, sockets,
# signals, workers, the event loop's timers and pipes)
TESTS = ["parallel/test-fs-*", "parallel/test-child-process-*", "parallel/test-net-*",
         "parallel/test-dgram-*", "parallel/test-process-*", "parallel/test-pipe-*",
         "parallel/test-signal-*", "parallel/test-os-*", "parallel/test-worker-*",
         "parallel/test-cluster-*", "parallel/test-stdio-*", "parallel/test-stdout-*",
         "parallel/test-timers-*", "parallel/test-http-server-*", "parallel/test-dns-*"]
def build() -> None:
    """OUT/tree and OUT/root.img: the Debian tree, nodejs, /opt/node."""
    debian_source("nodejs", SRC)
    with tempfile.TemporaryDirectory() as d:
        opt = Path(d)
        shutil.copytree(SRC / "test", opt / "test", symlinks=True)
        shutil.copytree(SRC / "tools", opt / "tools", symlinks=True)
        (opt / "node").symlink_to("/usr/bin/node")      # Debian's test.py runs ./node whatever --shell says
        shutil.rmtree(OUT / "tree" / "opt" / "node", ignore_errors=True)     # the tests as fetched, not as run
        print(derived_image(OUT, "nodejs python3 openssl", "/usr/bin/node", extra=(opt, "/opt/node")))


def command(tests: list[str]) -> str:
    return ("cd /opt/node && python3 tools/test.py -j1 --progress=tap --timeout=120 "
            + " ".join(f"'{t}'" for t in tests) + " 2>&1 | grep -a -E '^(not )?ok [0-9]+ '")


# TAP: "ok 12 parallel/test-fs-access", "ok 13 parallel/test-x # skip why", "not ok 14 parallel/test-y"
TAP = re.compile(r"^(not )?ok \d+ (\S+)(?: # (skip|SKIP|TODO)\b)?", re.M)


def outcomes(out: str) -> dict[str, str]:
    res: dict[str, str] = {}
    for m in TAP.finditer(out):
        res[m.group(2)] = "skip" if m.group(3) else "fail" if m.group(1) else "pass"
    return res


def main() -> None:
    source_suite_main(__doc__, OUT, build, command, outcomes, TESTS, "tools/test.py's patterns", MEM,
                      ("eth0=user", "ip=dhcp"))


if __name__ == "__main__":
    main()
