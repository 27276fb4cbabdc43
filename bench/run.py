#!/usr/bin/env python3
"""`make bench`: the anchor benchmarks natively, in umlpy and in UML.

Builds ../shared/anchors/src/bench_*.c (gcc -static -O2), runs them natively,
inside umlpy (booted from an ext2 disk image with the binaries under /bench,
made as run-uml.sh makes UML's) and inside real UML (../shared/anchors/run-uml.sh, when Debian's user-mode-linux is
installed), every side pinned to the same CPU in the same run, and prints
one table with the ratios, then getpid's cost over the native futex
ping-pong (bench/src/bench_futex.c, run natively only: the floor any trap
design is measured against).  Also: a whole-program figure (make -j1 of a
small C project with the Debian image's make and gcc) and the host CPU an
idle guest costs (bench/idle.py).  Never a test: figures go to
docs/performance.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from idle import blocked_cpu

ROOT = Path(__file__).resolve().parent.parent
ANCHORS = ROOT.parent / "shared" / "anchors"
BUILD = ROOT / "bench" / "build"
UMLPY = ROOT / ".venv" / "bin" / "umlpy"
IMAGE = ROOT / "linux-um"
BENCHES = ["getpid", "fork", "exec", "pipe", "file", "stat"]
OWN = ["unix", "net"]          # bench/src/: figures the anchors do not have
EXT4 = "ext4"                  # bench/src/bench_ext4.c: issue 14's figures, on an ext4 disk
NATIVE_ONLY = ["futex"]        # bench/src/: floors measured on the host alone
FIGURES = [("futex_rt_us", "native futex ping-pong round trip between two processes, us", False),
           ("getpid_ns", "getpid, ns", False),
           ("getpid_ptrace_ns", "getpid, umlpy's ptrace path (seccomp=off), ns", False),
           ("fork_us", "fork+exit+wait, us", False),
           ("exec_us", "fork+execve(busybox true)+wait, us", False),
           ("pipe_rt_us", "pipe round trip, us", False),
           ("pipe_rt_ptrace_us", "pipe round trip, umlpy's ptrace path (seccomp=off), us", False),
           ("file_write_fsync_MBps", "64 MiB write+fsync, MB/s", True),
           ("file_read_MBps", "64 MiB cached read, MB/s", True),
           ("open_stat_close_us", "stat+open+close, us", False),
           ("ext4_write_fsync_MBps", "ext4: 64 MiB write+fsync, MB/s", True),
           ("ext4_cold_read_MBps", "ext4: 64 MiB cold read, MB/s", True),
           ("ext4_cached_read_MBps", "ext4: 64 MiB cached read, MB/s", True),
           ("ext4_create_unlink_us", "ext4: create+unlink of 10 000 files, us per file", False),
           ("ext4_stat_open_close_us", "ext4: stat+open+close, us", False),
           ("unix_rt_us", "unix socket round trip, us", False),
           ("epoll_wake_us", "epoll_wait wake-up round trip, us", False),
           ("tcp_rt_us", "TCP loopback 1-byte round trip, us", False),
           ("tcp_bulk_MBps", "TCP loopback bulk (256 MiB), MB/s", True),
           ("udp_rt_us", "UDP loopback 1-byte round trip, us", False),
           ("tcp_conn_per_s", "TCP connect+accept+close, per s", True),
           ("python_pass_s", "python3 -c pass (dynamic, ext2), s", False),
           ("deb_bash_true_s", "Debian: bash -c true, s (boot subtracted)", False),
           ("deb_python_pass_s", "Debian: python3 -c pass, s (boot subtracted)", False),
           ("deb_fork_exec_s", "Debian: find -exec /bin/true (~100 dynamic fork+exec), s", False),
           ("deb_make_s", "Debian: make -j1 of a small C project (10 files, gcc -O2), s", False),
           ("idle_read_cpu_s", "idle: host CPU over 10 s of a guest blocked in read(console), s", False),
           ("idle_poll_cpu_s", "idle: host CPU over 10 s of a guest blocked in poll(no timeout), s", False),
           ("idle_sleep_cpu_s", "idle: host CPU over 10 s of a guest in nanosleep, s", False),
           ("userland_s", "boot to first userland line, s", False)]


def parse(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and "_" in parts[0]:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def build() -> None:
    (BUILD / "bin").mkdir(parents=True, exist_ok=True)
    for b in BENCHES:
        out = BUILD / "bin" / f"bench_{b}"
        src = ANCHORS / "src" / f"bench_{b}.c"
        if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
            subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(src)], check=True)
    for name in OWN + [EXT4] + NATIVE_ONLY:
        extra = BUILD / "bin" / f"bench_{name}"
        src = ROOT / "bench" / "src" / f"bench_{name}.c"
        if not extra.exists() or extra.stat().st_mtime < src.stat().st_mtime:
            subprocess.run(["gcc", "-static", "-O2", "-o", str(extra), str(src)], check=True)
    tree = BUILD / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(ROOT / "rootfs" / "tree", tree, symlinks=True)
    (tree / "bench").mkdir()
    for b in BENCHES + OWN + [EXT4]:
        shutil.copy(BUILD / "bin" / f"bench_{b}", tree / "bench")
    _add_python(tree)
    for s in ("bench.sh", "quick.sh"):
        shutil.copy(ANCHORS / "guest" / s, tree / s)
        os.chmod(tree / s, 0o755)
    # the same kind of disk as run-uml.sh gives UML: ext2 by mke2fs -d with
    # a small filesystem's 1 KiB blocks; 512M, not its 256M, so that
    # bench_file's 64 MiB still fit beside python3's tree
    img = BUILD / "root.img"
    img.unlink(missing_ok=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-T", "small", "-d", str(tree), str(img), "512M"],
                   check=True, capture_output=True)
    # the same tree on ext4 as Debian's mke2fs.conf makes it, with the file
    # the cold read reads: written by mke2fs, so no guest has it cached
    data = tree / "data"
    data.mkdir()
    with open(data / "cold.dat", "wb") as f:
        f.write(bytes((i * 7 + 1) & 0xFF for i in range(65536)) * 1024)
    img = BUILD / "ext4.img"
    img.unlink(missing_ok=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(img), "1G"],
                   check=True, capture_output=True)


PYTHON = Path("/usr/bin/python3.11")


def _add_python(tree: Path) -> None:
    """Debian's own dynamically linked python3 and its libraries, for python_pass_s."""
    if not PYTHON.exists():
        return
    (tree / "usr" / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(PYTHON, tree / "usr" / "bin")
    for word in subprocess.run(["ldd", str(PYTHON)], capture_output=True, text=True).stdout.split():
        if word.startswith("/"):
            dst = tree / word.lstrip("/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(word).resolve(), dst)
    shutil.copytree("/usr/lib/python3.11", tree / "usr/lib/python3.11", symlinks=True,
                    ignore=shutil.ignore_patterns("test", "idlelib", "tkinter", "ensurepip",
                                                  "lib2to3", "site-packages", "dist-packages"))


def _python_pass(cmd: list[str]) -> float | None:
    """Median wall time of `python3 -I -c pass` run by cmd + [python, args]."""
    if not PYTHON.exists():
        return None
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        subprocess.run(cmd, capture_output=True)
        times.append(time.monotonic() - t0)
    return statistics.median(times)


def native(cpu: int) -> dict[str, float]:
    res: dict[str, float] = {}
    work = BUILD / "native"
    work.mkdir(exist_ok=True)
    busybox = ROOT / "rootfs" / "cache" / "busybox"
    bin_ = BUILD / "bin"
    cmds = [[str(bin_ / "bench_getpid")], [str(bin_ / "bench_fork")],
            [str(bin_ / "bench_exec"), "500", str(busybox)], [str(bin_ / "bench_pipe")],
            [str(bin_ / "bench_file"), "64", str(work / "f.dat")],
            [str(bin_ / "bench_stat"), "20000", str(work / "s.dat")],
            [str(bin_ / "bench_unix")], [str(bin_ / "bench_net")], [str(bin_ / "bench_futex")]]
    for c in cmds:
        r = subprocess.run(["taskset", "-c", str(cpu), *c], capture_output=True, text=True, cwd=work)
        res.update(parse(r.stdout))
    p = _python_pass(["taskset", "-c", str(cpu), str(PYTHON), "-I", "-c", "pass"])
    if p is not None:
        res["python_pass_s"] = p
    t_idle = str(ROOT / "rootfs" / "tree" / "t" / "bin" / "t_idle")
    res.update(idle_figures(lambda mode: ["taskset", "-c", str(cpu), t_idle, mode]))
    return res


def umlpy(cpu: int) -> dict[str, float]:
    base = ["taskset", "-c", str(cpu), str(UMLPY), str(IMAGE), f"ubd0={BUILD / 'root.img'}", "rw",
            f"umlpy_cpu={cpu}", "quiet"]
    boots = []
    for _ in range(5):
        t0 = time.monotonic()
        p = subprocess.Popen(base + ["init=/quick.sh"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for line in p.stdout:
            if line.strip() == b"USERLAND_START":
                boots.append(time.monotonic() - t0)
                break
        p.wait()
    r = subprocess.run(base + ["init=/bench.sh"], capture_output=True, text=True, timeout=1800)
    res = parse(r.stdout)
    for name in OWN:
        r = subprocess.run(base + [f"init=/bench/bench_{name}"], capture_output=True, text=True,
                           timeout=600)
        res.update(parse(r.stdout))
    # the same round trips on the ptrace path alone, for the seccomp path's gain
    for name, key in (("getpid", "getpid_ns"), ("pipe", "pipe_rt_us")):
        r = subprocess.run(base + ["seccomp=off", f"init=/bench/bench_{name}"], capture_output=True,
                           text=True, timeout=600)
        got = parse(r.stdout)
        if key in got:
            res[key.replace("_ns", "_ptrace_ns").replace("_us", "_ptrace_us")] = got[key]
    # boot + python3 -c pass + poweroff, minus the boot alone: python's own start-up
    p = _python_pass(base + ["init=/usr/bin/python3.11", "--", "-I", "-c", "pass"])
    if p is not None and boots:
        res["python_pass_s"] = max(0.0, p - statistics.median(boots))
    if boots:
        res["userland_s"] = statistics.median(boots)
    res.update(idle_figures(guest_idle(base)))
    return res


IDLE_MODES = ["read", "poll", "sleep"]      # tests/progs/t_idle.c's ways to block
IDLE_WINDOW_S = 10


def idle_figures(command: Callable[[str], list[str]]) -> dict[str, float]:
    """Host CPU time over IDLE_WINDOW_S of t_idle blocked in each of its
    ways (run by command(mode)), its input an open, silent pipe."""
    return {f"idle_{mode}_cpu_s": blocked_cpu(command(mode), IDLE_WINDOW_S) for mode in IDLE_MODES}


def guest_idle(base: list[str], cow: Path | None = None) -> Callable[[str], list[str]]:
    """The command that boots base with t_idle MODE as init (the COW file
    of base's disk, if any, made afresh: a killed UML leaves its own)."""
    def command(mode: str) -> list[str]:
        if cow is not None:
            cow.unlink(missing_ok=True)
        return base + ["init=/t/bin/t_idle", "--", mode]
    return command


def uml(cpu: int) -> dict[str, float]:
    script = ANCHORS / "run-uml.sh"
    if not Path("/usr/bin/linux.uml").exists():
        if os.geteuid() == 0:
            subprocess.run(["apt-get", "install", "-y", "-qq", "user-mode-linux"],
                           capture_output=True)
        if not Path("/usr/bin/linux.uml").exists():
            print("UML: /usr/bin/linux.uml missing (apt-get install user-mode-linux); skipped",
                  file=sys.stderr)
            return {}
    work = BUILD / "uml"
    # run-uml.sh wants a `busybox` on PATH: the one rootfs/ fetched
    tools = BUILD / "path"
    tools.mkdir(exist_ok=True)
    if not (tools / "busybox").exists():
        (tools / "busybox").symlink_to(ROOT / "rootfs" / "cache" / "busybox")
    env = dict(os.environ, CPU=str(cpu), PATH=f"{tools}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    r = subprocess.run(["bash", str(script), str(work)], capture_output=True, text=True, env=env,
                       timeout=1800)
    res = parse(r.stdout)
    if r.returncode != 0 or not res:
        print(f"UML run failed ({r.returncode}): {r.stderr.strip()[-500:]}", file=sys.stderr)
    # the figures the anchors' image lacks (unix socket, epoll): our bench
    # image, booted by the same UML through a COW file
    shim = work / "shim.so"
    if shim.exists():
        cow = BUILD / "uml_extra.cow"
        cow.unlink(missing_ok=True)
        (BUILD / "uml_dir").mkdir(exist_ok=True)
        ubase = ["taskset", "-c", str(cpu), "env", f"LD_PRELOAD={shim}", "/usr/bin/linux.uml",
                 f"uml_dir={BUILD / 'uml_dir'}", f"ubd0={cow},{BUILD / 'root.img'}",
                 "root=/dev/ubda", "mem=256M", "con0=fd:0,fd:1", "con=null", "quiet"]
        for name in OWN:
            cow.unlink(missing_ok=True)
            r = subprocess.run(ubase + [f"init=/bench/bench_{name}"],
                               capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
            res.update(parse(r.stdout))
        res.update(idle_figures(guest_idle(ubase, cow)))
        cow.unlink(missing_ok=True)
    if "uml_userland_s" in res:
        res["userland_s"] = res["uml_userland_s"]
    return res


def ext4(cpu: int) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """bench_ext4 natively (in a directory of the host's file system), and as
    init of umlpy and of UML booted from a fresh COW over the same ext4 image."""
    work = BUILD / "native" / "ext4"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    r = subprocess.run(["taskset", "-c", str(cpu), str(BUILD / "bin" / f"bench_{EXT4}"), str(work)],
                       capture_output=True, text=True)
    nat = parse(r.stdout)
    shutil.rmtree(work, ignore_errors=True)
    cow = BUILD / "ext4.cow"
    common = [f"ubd0={cow},{BUILD / 'ext4.img'}", "root=/dev/ubda", "rw", "mem=256M", "quiet",
              f"init=/bench/bench_{EXT4}"]
    cow.unlink(missing_ok=True)
    r = subprocess.run(["taskset", "-c", str(cpu), str(UMLPY), str(IMAGE), f"umlpy_cpu={cpu}", *common],
                       capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    ump = parse(r.stdout)
    um: dict[str, float] = {}
    shim = BUILD / "uml" / "shim.so"
    if Path("/usr/bin/linux.uml").exists() and shim.exists():
        cow.unlink(missing_ok=True)
        (BUILD / "uml_dir").mkdir(exist_ok=True)
        r = subprocess.run(["taskset", "-c", str(cpu), "env", f"LD_PRELOAD={shim}", "/usr/bin/linux.uml",
                            f"uml_dir={BUILD / 'uml_dir'}", "con0=fd:0,fd:1", "con=null", *common],
                           capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
        um = parse(r.stdout)
    cow.unlink(missing_ok=True)
    return nat, ump, um


DEBIAN = Path(os.environ.get("UMLPY_CACHE", Path.home() / ".cache" / "umlpy")) / "debian"
DEB_CMDS = {"deb_bash_true_s": ["/bin/bash", "-c", "true"],
            "deb_python_pass_s": ["/usr/bin/python3", "-c", "pass"],
            # UML passes init's arguments as kernel command-line words (no spaces
            # inside) and appends `console=tty0`: the expression ends in `-name`
            # so that word completes it; the others get it added by hand
            "deb_fork_exec_s": ["/usr/bin/find", "/usr/share/doc", "-maxdepth", "1", "-exec", "/bin/true",
                                "{}", ";", "-o", "-name"]}
UML_TAIL = ["console=tty0"]


def _median_time(cmd: list[str], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        subprocess.run(cmd, capture_output=True, timeout=600)
        times.append(time.monotonic() - t0)
    return statistics.median(times)


def debian(cpu: int) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """The Debian image (rootfs/debian.sh): native chroot, umlpy and UML, each
    figure a whole boot running the command minus a boot running /bin/true."""
    img = DEBIAN / "root.img"
    if not img.exists():
        print("Debian figures skipped: build the image with rootfs/debian.sh", file=sys.stderr)
        return {}, {}, {}
    nat, ump, um = {}, {}, {}
    ubase: list[str] | None = None      # UML's command, when it runs here
    uidle = 0.0
    for key, cmd in DEB_CMDS.items():
        nat[key] = _median_time(["taskset", "-c", str(cpu), "chroot", str(DEBIAN / "tree"), *cmd, *UML_TAIL])
    base = ["taskset", "-c", str(cpu), str(UMLPY), str(IMAGE), f"ubd0={img}", "quiet", f"umlpy_cpu={cpu}"]
    idle = _median_time(base + ["init=/bin/true"])
    for key, cmd in DEB_CMDS.items():
        ump[key] = max(0.0, _median_time(base + [f"init={cmd[0]}", "--", *cmd[1:], *UML_TAIL]) - idle)
    shim = BUILD / "uml" / "shim.so"
    if Path("/usr/bin/linux.uml").exists() and shim.exists():
        udir = BUILD / "uml_dir"
        udir.mkdir(exist_ok=True)
        ubase = ["taskset", "-c", str(cpu), "env", f"LD_PRELOAD={shim}", "/usr/bin/linux.uml",
                 f"uml_dir={udir}", f"ubd0={BUILD / 'deb.cow'},{img}", "root=/dev/ubda", "mem=512M", "con0=fd:0,fd:1",
                 "con=null", "quiet"]
        (BUILD / "deb.cow").unlink(missing_ok=True)
        uidle = _median_time(ubase + ["init=/bin/true"])
        for key, cmd in DEB_CMDS.items():
            um[key] = max(0.0, _median_time(ubase + [f"init={cmd[0]}", "--", *cmd[1:]]) - uidle)
    n, u, m = debian_make(cpu, base, ubase)
    for side, value, boot in ((nat, n, 0.0), (ump, u, idle), (um, m, uidle)):
        if value is not None:
            side["deb_make_s"] = max(0.0, value - boot)
    return nat, ump, um


MAKE_MODULES = 9        # plus main.c: the small C project of deb_make_s
# init's arguments reach it as kernel command-line words, which hold no
# spaces (UML's rule): bash -c's script separates its words with ${IFS}
MAKE = "env PATH=/usr/bin:/bin TMPDIR=/mnt make -s -B -j1 -C /mnt && echo deb_make_ok"
MAKE_SCRIPT = "${IFS}".join(f"mount /dev/ubdb /mnt && {MAKE}; umount /mnt".split())


def c_project(dst: Path) -> None:
    """A small C project for `make -j1`: MAKE_MODULES modules of a dozen
    functions each (loops, switches, library calls: work for gcc -O2), a
    main.c calling them, one header, a Makefile with a pattern rule."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    names = [f"mod{i}" for i in range(MAKE_MODULES)]
    header = ["#include <stddef.h>", "#include <stdint.h>"]
    for m in names:
        header += [f"uint64_t {m}_f{j}(const char *s, size_t n, uint64_t seed);" for j in range(12)]
        header.append(f"uint64_t {m}_all(const char *s, size_t n);")
    (dst / "proj.h").write_text("\n".join(header) + "\n")
    for i, m in enumerate(names):
        body = ["#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>", '#include "proj.h"', ""]
        for j in range(12):
            body += [f"uint64_t {m}_f{j}(const char *s, size_t n, uint64_t seed)", "{",
                     f"    uint64_t h = seed ^ {i * 131 + j}u, t[16] = {{0}};",
                     "    char buf[64];",
                     "    for (size_t k = 0; k < n; k++) {",
                     "        switch ((s[k] + k) & 7) {",
                     *[f"        case {c}: h = (h << {c + 1}) ^ (h >> {7 - c}) ^ (uint64_t)s[k] * {j * 8 + c + 3}u; break;"
                       for c in range(8)],
                     "        }",
                     "        t[k & 15] += h;",
                     "    }",
                     "    for (int r = 0; r < 16; r++)",
                     "        for (int q = r + 1; q < 16; q++)",
                     "            if (t[q] < t[r]) { uint64_t x = t[q]; t[q] = t[r]; t[r] = x; }",
                     f'    snprintf(buf, sizeof buf, "%s-{j}-%llu", s, (unsigned long long)t[{j}]);',
                     "    return h + t[0] + strlen(buf) + strtoull(buf + n + 3, NULL, 10);",
                     "}", ""]
        body += [f"uint64_t {m}_all(const char *s, size_t n)", "{", "    uint64_t h = 0;",
                 *[f"    h += {m}_f{j}(s, n, h);" for j in range(12)], "    return h;", "}"]
        (dst / f"{m}.c").write_text("\n".join(body) + "\n")
    (dst / "main.c").write_text("\n".join(
        ["#include <stdio.h>", "#include <string.h>", '#include "proj.h"', "", "int main(int argc, char **argv)",
         "{", '    const char *s = argc > 1 ? argv[1] : "umlpy";', "    uint64_t h = 0;",
         *[f"    h += {m}_all(s, strlen(s));" for m in names],
         '    printf("%llu\\n", (unsigned long long)h);', "    return 0;", "}"]) + "\n")
    objs = " ".join(f"{m}.o" for m in ["main", *names])
    (dst / "Makefile").write_text(f"CC = gcc\nCFLAGS = -O2 -Wall\nOBJS = {objs}\n\n"
                                  "prog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n\n"
                                  "%.o: %.c proj.h\n\t$(CC) $(CFLAGS) -c $<\n")


def debian_make(cpu: int, umlpy_base: list[str],
                uml_base: list[str] | None) -> tuple[float | None, float | None, float | None]:
    """deb_make_s: the Debian image's make and gcc building c_project()
    natively (chroot, the project bind-mounted on its /mnt in a mount
    namespace of its own), in umlpy and in UML (an ext2 disk of the project
    as ubd1, mounted on /mnt by bash -c MAKE_SCRIPT as init): each median
    after a first, checked run; the guests' figures include their boot."""
    tree = DEBIAN / "tree"
    if not (tree / "usr" / "bin" / "gcc").exists():
        print("deb_make_s skipped: the Debian image has no gcc (rebuild it with rootfs/debian.sh)",
              file=sys.stderr)
        return None, None, None
    proj = BUILD / "cproj"
    c_project(proj)
    img = BUILD / "cproj.img"
    img.unlink(missing_ok=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-d", str(proj), str(img), "64M"],
                   check=True, capture_output=True)
    nat_cmd = ["taskset", "-c", str(cpu), "unshare", "-m", "sh", "-c",
               f"mount --bind {proj} {tree}/mnt && chroot {tree} {MAKE}"]
    guest_tail = [f"ubd1={img}", "init=/bin/bash", "--", "-c", MAKE_SCRIPT]
    sides = {"native": nat_cmd, "umlpy": umlpy_base + guest_tail,
             "UML": None if uml_base is None else uml_base + guest_tail}
    out: list[float | None] = []
    for side, cmd in sides.items():
        r = None if cmd is None else subprocess.run(cmd, capture_output=True, text=True, timeout=1800,
                                                    stdin=subprocess.DEVNULL)
        if r is not None and "deb_make_ok" not in r.stdout:
            print(f"deb_make_s: the build failed in {side}: {(r.stdout + r.stderr)[-800:]}", file=sys.stderr)
        out.append(_median_time(cmd) if r is not None and "deb_make_ok" in r.stdout else None)
    return out[0], out[1], out[2]


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if v >= 100 else f"{v:.2f}" if v < 10 else f"{v:.1f}"


def ratio(a: float | None, b: float | None, higher_better: bool) -> str:
    if not a or not b:
        return "-"
    return f"{(b / a if higher_better else a / b):.2f}x"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)))
    ap.add_argument("--no-uml", action="store_true")
    args = ap.parse_args()
    if not ANCHORS.exists():
        print(f"bench needs the anchors at {ANCHORS}", file=sys.stderr)
        return 1
    build()
    nat = native(args.cpu)
    ump = umlpy(args.cpu)
    um = {} if args.no_uml else uml(args.cpu)
    for n_, u_, m_ in (ext4(args.cpu), debian(args.cpu)):
        nat.update(n_)
        ump.update(u_)
        um.update(m_)
    print(f"# {time.strftime('%Y-%m-%d')}, pinned to CPU {args.cpu}; ratio = cost relative to native/UML "
          "(time ratio; for MB/s the inverse), lower is better")
    print("| figure | native | umlpy | UML | umlpy/native | umlpy/UML |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, label, hib in FIGURES:
        n, u, m = nat.get(key), ump.get(key), um.get(key)
        print(f"| {label} | {fmt(n)} | {fmt(u)} | {fmt(m)} | {ratio(u, n, hib)} | {ratio(u, m, hib)} |")
    floor = nat.get("futex_rt_us")
    if floor:
        # issue 16: "getpid at most 1.6x the native futex ping-pong measured in the same run"
        print(f"\ngetpid / native futex ping-pong round trip ({fmt(floor)} us): "
              f"umlpy {ratio(ump.get('getpid_ns', 0) / 1000, floor, False)}, "
              f"UML {ratio(um.get('getpid_ns', 0) / 1000, floor, False)} (issue 16's target: umlpy at most 1.6x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
