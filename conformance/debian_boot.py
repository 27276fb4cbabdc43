"""One command in a Debian tree, the same way on three kernels: natively (a
chroot of the tree in a mount namespace of its own), in umlpy and in UML,
each booting the tree's ext4 image over a fresh COW file with the command
as init.  The suites (cpython.py, golang.py, glib.py, pytest_suites.py)
share it, so that
their verdicts differ only by kernel.

The guest side mounts /proc, /sys, /dev, /dev/pts and /dev/shm, writes an
/etc/hosts (debootstrap's minbase writes none, so "localhost" would go to
DNS and every server test fail on all three sides) and brings lo up; the
native side gets the same through its mount namespace.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("UMLPY_CACHE", Path.home() / ".cache" / "umlpy"))
UML_BIN = Path("/usr/bin/linux.uml")
SHIM = CACHE / "ltp" / "uml_shim.so"        # conformance/ltp.py builds it
GUEST_ENV = "PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TMPDIR=/tmp"
HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
PREP = "mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; " \
       "mkdir -p /dev/pts /dev/shm; mount -t devpts pts /dev/pts; mount -t tmpfs shm /dev/shm; " \
       f"mount -o remount,rw /; printf '{HOSTS}' > /etc/hosts; " \
       "ip link set lo up 2>/dev/null; hostname localhost; "


def derived_image(out: Path, packages: str, ready: str, extra: tuple[Path, str] | None = None) -> Path:
    """out/tree and out/root.img: the Debian tree of rootfs/debian.sh with
    packages added by apt-get in a chroot (needs root and Debian's
    mirrors), skipped when `ready` (a path in the tree) says they are
    there; extra (a directory, where in the tree) copied in; the image is
    ext4, as Debian's installer makes it."""
    tree, debian = out / "tree", CACHE / "debian" / "tree"
    if not (debian / "usr").is_dir():
        sys.exit(f"{out.name}: no Debian tree: run rootfs/debian.sh first")
    out.mkdir(parents=True, exist_ok=True)
    if not (tree / ready.lstrip("/")).exists():
        shutil.rmtree(tree, ignore_errors=True)
        subprocess.run(["cp", "-a", str(debian), str(tree)], check=True)
        shutil.copy("/etc/resolv.conf", tree / "etc" / "resolv.conf")
        # apt in the chroot wants /proc; a mount namespace keeps it off the host
        subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        f"mount -t proc proc {tree}/proc && chroot {tree} sh -c "
                        "'apt-get update -qq && apt-get install -y -qq --no-install-recommends "
                        f"{packages}'"], check=True, stdout=subprocess.DEVNULL)
        for deb in (tree / "var" / "cache" / "apt" / "archives").glob("*.deb"):
            deb.unlink()
    (tree / "etc" / "hosts").write_text(HOSTS)
    if extra is not None:
        shutil.copytree(extra[0], tree / extra[1].lstrip("/"), symlinks=True, dirs_exist_ok=True)
    img, tmp = out / "root.img", out / "root.img.tmp"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(tmp), "4G"], check=True)
    tmp.rename(img)
    return img


# Debian's source packages, which the host's apt lists may not cover (they
# are fetched with lists of their own under a temporary directory)
DEB_SRC = """Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def debian_source(package: str, dest: Path) -> Path:
    """dest: Debian 12's source of `package` with Debian's patches applied
    (apt-get source and dpkg-source, needing Debian's mirrors), unless
    already there."""
    if dest.is_dir():
        return dest
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        (work / "lists" / "partial").mkdir(parents=True)
        (work / "src.sources").write_text(DEB_SRC)
        opts = ["-o", f"Dir::Etc::SourceList={work / 'src.sources'}", "-o", "Dir::Etc::SourceParts=/nonexistent",
                "-o", f"Dir::State::Lists={work / 'lists'}", "-qq"]
        subprocess.run(["apt-get", *opts, "update"], check=True)
        subprocess.run(["apt-get", *opts, "source", "--download-only", package], check=True, cwd=work,
                       stdout=subprocess.DEVNULL)
        dsc = next(work.glob(f"{package}_*.dsc"))
        subprocess.run(["dpkg-source", "-x", str(dsc), str(work / "src")], check=True, stdout=subprocess.DEVNULL)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(work / "src", dest)
    return dest


def boot(kernel: str, tree: Path, image: Path, kernel_image: Path, command: str, timeout: int,
         mem: str = "1024M", overlay: bool = False, log: Path | None = None,
         stderr: Path | None = None, umlpy_args: tuple[str, ...] = ()) -> str:
    """The console output of `command` run by /bin/sh in /tmp, followed by
    a line @@RC=<its status>; "@@HANG" at the end if the whole run passed
    timeout (the command should bound itself below that).  Natively the
    command writes into the tree itself, or with `overlay` into an
    overlayfs over it that goes at the end (as a COW file does).  With
    `log`, the output goes to that file as it comes (a long run can be
    followed); with `stderr`, the kernel's own log (the emulator's stderr)
    goes to that file, where an oops or a traceback would show;
    `umlpy_args`, more kernel parameters for umlpy (a network, where the
    native side has the host's)."""
    with tempfile.TemporaryDirectory(prefix=f"deb-{kernel}-") as work:
        script = f"cd /tmp && {command}; echo @@RC=$?"
        if kernel == "native":
            # the tree's /etc with HOSTS, over it (the cached tree stays as built)
            shutil.copytree(tree / "etc", f"{work}/etc", symlinks=True)
            Path(f"{work}/etc/hosts").write_text(HOSTS)
            root, mounts = tree, ""
            if overlay:
                root = Path(work) / "root"
                for d in ("root", "up", "wk"):
                    (Path(work) / d).mkdir()
                mounts = f"mount -t overlay ov -o lowerdir={tree},upperdir={work}/up,workdir={work}/wk {root} && "
            cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   # the host's /dev, read-only: a suite run as root chmod'ed
                   # the host's /dev/null through it (twisted's, 0555)
                   mounts + f"mount -t proc proc {root}/proc && mount --rbind /dev {root}/dev && "
                   f"mount -o remount,bind,ro {root}/dev && "
                   f"mount -t sysfs sys {root}/sys && mount -t tmpfs shm {root}/dev/shm && "
                   f"mount --bind {work}/etc {root}/etc && "
                   f"exec chroot {root} /bin/sh -c {shlex.quote(script)}"]
            env = dict(kv.split("=", 1) for kv in GUEST_ENV.split())     # the guest's, not the host's
        else:
            cow = f"{work}/root.cow"
            common = [f"ubd0={cow},{image}", "root=/dev/ubda", "rw", f"mem={mem}", "quiet"]
            text = f"export {GUEST_ENV}; {PREP}{script}; sync"
            if kernel == "umlpy":
                cmd = [str(ROOT / ".venv" / "bin" / "umlpy"), str(kernel_image), *common, *umlpy_args,
                       "init=/bin/sh", "--", "-c", text]
            else:
                # UML passes init's arguments as kernel command-line words,
                # split at spaces: the script goes on a second disk, padded
                # with newlines to whole sectors (a ubd is read in them)
                data = (text + "\n").encode()
                (Path(work) / "s").write_bytes(data + b"\n" * (-len(data) % 4096))
                cmd = ["env", f"LD_PRELOAD={SHIM}", str(UML_BIN), f"uml_dir={work}", f"umid=deb{os.getpid()}",
                       "con0=fd:0,fd:1", "con=null", f"ubd1={work}/s", *common, "init=/bin/sh", "/dev/ubdb"]
            env = None
        out_f = open(log, "wb") if log is not None else None
        err_f = open(stderr, "wb") if stderr is not None else None
        try:
            # stdin: /dev/null; a pipe closed at once hangs up UML's console, and init with it
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=timeout, env=env,
                               stdout=out_f or subprocess.PIPE, stderr=err_f or subprocess.PIPE)
            out, hang = p.stdout, ""
        except subprocess.TimeoutExpired as e:
            out, hang = e.stdout, "\n@@HANG"
        finally:
            for f in (out_f, err_f):
                if f is not None:
                    f.close()
        if log is not None:
            out = log.read_bytes()
        return (out or b"").decode(errors="replace").replace("\r", "") + hang


def status(out: str) -> int | None:
    """The command's exit status from boot()'s output, None if it never ended."""
    rc = None
    for line in out.splitlines():
        if line.startswith("@@RC="):
            rc = int(line[5:])
    return rc


def _counts(res: dict[str, str]) -> str:
    values = list(res.values())
    return ", ".join(f"{values.count(v)} {v.lower()}" for v in sorted(set(values)))


def save_outcomes(out_dir: Path, kernel: str, res: dict[str, str], ended: bool) -> None:
    """A run's outcome per test into out_dir/<kernel>.json, and a line of counts."""
    (out_dir / f"{kernel}.json").write_text(json.dumps(res, indent=1, sort_keys=True))
    print(f"{kernel}: {_counts(res)}" + ("" if ended else " (the run did not end)"), flush=True)


def run_suite(out_dir: Path, kernels: list[str], command: str, outcomes, deadline: int, mem: str,
              umlpy_args: tuple[str, ...] = ()) -> None:
    """`command` in out_dir's image (tree and root.img) on each kernel, the
    outcome per test that outcomes(output) finds saved (save_outcomes).
    The kernel is copied first: rebuilding ./linux-um meanwhile changes
    nothing."""
    kimage = out_dir / "linux-um-run"
    shutil.copy(ROOT / "linux-um", kimage)
    for kernel in kernels:
        out = boot(kernel, out_dir / "tree", out_dir / "root.img", kimage, command, deadline, mem,
                   overlay=True, log=out_dir / f"{kernel}.log", stderr=out_dir / f"{kernel}.stderr",
                   umlpy_args=umlpy_args)
        save_outcomes(out_dir, kernel, outcomes(out), status(out) is not None)


def source_suite_main(doc: str, out_dir: Path, build, command, outcomes, tests: list[str], what: str,
                      mem: str, umlpy_args: tuple[str, ...]) -> None:
    """The command line of a runner of a source package's own tests
    (nodejs.py, ruby.py): build; run [--kernel K ...] [--tests T ...]
    [--deadline S]; report."""
    ap, r = suite_cli(doc, ("native", "umlpy", "uml"))
    r.add_argument("--tests", action="append", help=f"{what} (default: TESTS)")
    r.add_argument("--deadline", type=int, default=4 * 3600, help="seconds for the whole run")
    a = ap.parse_args()
    if a.cmd == "build":
        build()
    elif a.cmd == "run":
        run_suite(out_dir, a.kernel or ["native", "umlpy"], command(a.tests or tests), outcomes, a.deadline, mem,
                  umlpy_args)
    else:
        print(differing(out_dir))


def differing(out_dir: Path) -> str:
    """The tests whose outcome differs between the kernels run (a table),
    then each kernel's counts."""
    res = {k: json.loads((out_dir / f"{k}.json").read_text()) for k in ("native", "umlpy", "uml")
           if (out_dir / f"{k}.json").exists()}
    lines = ["| test | " + " | ".join(res) + " |", "|---|" + "---|" * len(res)]
    for t in sorted({t for r in res.values() for t in r}):
        row = [r.get(t, "-") for r in res.values()]
        if len(set(row)) > 1:
            lines.append(f"| {t} | " + " | ".join(row) + " |")
    lines += [f"\n{k}: {_counts(r)}" for k, r in res.items()]
    return "\n".join(lines)


def suite_cli(doc: str, kernels: tuple[str, ...], suites: dict | None = None
              ) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """A suite runner's command line, `build`, `run [--kernel K ...]` and
    `report`, each naming one of `suites` first if the runner has several:
    the parser and its `run` subcommand's, for the runner's own options."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    cmds = [sub.add_parser(c) for c in ("build", "run", "report")]
    if suites:
        for c in cmds:
            c.add_argument("suite", choices=sorted(suites))
    cmds[1].add_argument("--kernel", action="append", choices=kernels)
    return ap, cmds[1]
