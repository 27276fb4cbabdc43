#!/usr/bin/env python3
"""Ruby's own tests (test/ of Debian 12's ruby3.1 source) in the Debian
guest: natively (a chroot of the same tree, over an overlay), in umlpy and
in UML, run by the installed ruby with the source's own runner.

Ruby's core tests reach the kernel through its IO (nonblocking reads and
writes, IO.select on poll, pipes, IO.copy_stream with sendfile and
copy_file_range), Process (spawn with its fd redirections and rlimits,
fork, waitpid, daemon, setsid, process groups), signals and traps on a
timer thread, threads on futexes, File and Dir (flock, stat, utime,
chmod, links, xattr-less metadata), sockets of every family with
UNIXSocket's fd passing, and PTY.

  ruby.py build            the image: the Debian tree of rootfs/debian.sh
                           plus ruby3.1, and the tests of its source
                           package (Debian's patches applied) as /opt/ruby
  ruby.py run [--kernel native|umlpy|uml ...] [--tests PATH ...]
  ruby.py report           the tests whose outcome differs

One boot per kernel; the runner's -v names each test, and its report
the ones that failed, erred or skipped. The JIT's tests are left out:
MJIT compiles with a C compiler the image has not, and each of them waits
for it.
Results: $UMLPY_CACHE/ruby/<kernel>.json (each test's outcome), the whole
output in <kernel>.log.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from debian_boot import CACHE, debian_source, derived_image, source_suite_main

OUT = CACHE / "ruby"
SRC = OUT / "src"
MEM = "2048M"
# the parts that lean on the kernel, and the core classes' tests whole
TESTS = ["test/ruby", "test/socket", "test/io", "test/fileutils", "test/etc", "test/test_pty.rb",
         "test/test_open3.rb", "test/test_tempfile.rb", "test/test_tmpdir.rb", "test/test_timeout.rb"]


def build() -> None:
    """OUT/tree and OUT/root.img: the Debian tree, ruby, /opt/ruby."""
    debian_source("ruby3.1", SRC)
    with tempfile.TemporaryDirectory() as d:
        opt = Path(d)
        for part in ("test", "tool", "lib", "sample"):
            shutil.copytree(SRC / part, opt / part, symlinks=True)
        shutil.rmtree(OUT / "tree" / "opt" / "ruby", ignore_errors=True)     # the tests as fetched, not as run
        print(derived_image(OUT, "ruby3.1 ruby", "/usr/bin/ruby3.1", extra=(opt, "/opt/ruby")))


def command(tests: list[str]) -> str:
    return ("cd /opt/ruby && ruby test/runner.rb -v --ruby=/usr/bin/ruby --tty=no -x jit "
            + " ".join(tests)
            + " 2>&1 | grep -a -E -A1 '^\\[ *[0-9]+/[0-9]+\\] |^ +[0-9]+\\) (Error|Failure|Skipped):'")


# the runner's -v line for each test run: "[ 12/233] TestIO#test_pipe = 0.01 s";
# then each one that did not pass: "  3) Failure:" and its name on the next line
RAN = re.compile(r"^\[ *\d+/\d+\] (\S+#\S+) = [\d.]+ s", re.M)
NOT_PASSED = re.compile(r"^ +\d+\) (Error|Failure|Skipped):\n(\S+#[^\s:]+)", re.M)
VERDICT = {"Error": "error", "Failure": "fail", "Skipped": "skip"}


def outcomes(out: str) -> dict[str, str]:
    res = {m.group(1): "pass" for m in RAN.finditer(out)}
    for m in NOT_PASSED.finditer(out):
        res[m.group(2)] = VERDICT[m.group(1)]
    return res


def main() -> None:
    source_suite_main(__doc__, OUT, build, command, outcomes, TESTS, "test files or directories", MEM,
                      ("eth0=user", "ip=dhcp"))


if __name__ == "__main__":
    main()
