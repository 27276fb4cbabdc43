"""Checkpoint and restore (docs/checkpoint.md): a guest checkpointed
through its mconsole (`umlpy checkpoint`) halts; `umlpy restore` in a
fresh umlpy goes on where it was: a counting loop from its next value,
an open file at its offset, a pipe with its bytes, a parent still
waiting for its child.  A corrupted image, or one of another format
version, is refused before any guest runs."""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import CPIO, IMAGE, ROOT, TRAP_PARAMS, UMLPY

from umlpy.checkpoint.image import VERSION as IMAGE_VERSION

DISK = ROOT / "rootfs" / "busybox.img"
PROG = "/t/bin/t_ckpt"


_GUESTS: list[Guest] = []


@pytest.fixture(autouse=True)
def _no_guest_left():
    """A test that fails midway leaves no umlpy running behind it."""
    yield
    while _GUESTS:
        p = _GUESTS.pop().p
        if p.poll() is None:
            p.kill()
            p.wait()


class Guest:
    """A umlpy running `INIT ARGS` (t_ckpt by default) as init, its output collected."""

    def __init__(self, tmp: Path, root: list[str], *args: str, init: str = PROG) -> None:
        _GUESTS.append(self)
        self.uml = tmp / "uml"
        self.out = tmp / "out1.txt"
        self.err = tmp / "err1.txt"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.p = subprocess.Popen([str(UMLPY), str(IMAGE), *root, *TRAP_PARAMS, "umid=ck",
                                       f"uml_dir={self.uml}", "quiet", f"init={init}", "--", *args],
                                      stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def wait_for(self, line: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while line not in self.out.read_text():
            assert self.p.poll() is None and time.monotonic() < deadline, self.err.read_text()
            time.sleep(0.05)

    def checkpoint(self, image: Path, *opts: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(UMLPY), "checkpoint", "--uml-dir", str(self.uml), "ck", str(image), *opts],
                              capture_output=True, text=True, timeout=120)

    def finish(self) -> str:
        try:
            self.p.wait(timeout=60)
        finally:
            if self.p.poll() is None:
                self.p.kill()
        return self.out.read_text()


def restore(image: Path, *params: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(UMLPY), "restore", "--kernel", str(IMAGE), str(image), *params],
                          capture_output=True, text=True, timeout=120)


def numbers(text: str, word: str) -> list[int]:
    return [int(n) for n in re.findall(rf"^{word} (\d+)$", text, re.M)]


@pytest.fixture
def disk(tmp_path):
    d = tmp_path / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(DISK), str(d)], check=True)
    return d


def checkpointed(tmp: Path, root: list[str], args: list[str], word: str, procs: int) -> tuple[Path, list[int]]:
    """Run t_ckpt ARGS until it printed `WORD 3`, checkpoint it (the
    machine halts); the image and the numbers printed before."""
    g = Guest(tmp, root, *args)
    g.wait_for(f"{word} 3\n")
    image = tmp / "img"
    r = g.checkpoint(image)
    assert r.returncode == 0, r.stderr
    assert f"checkpoint: {procs} processes" in r.stdout
    first = numbers(g.finish(), word)
    assert g.p.returncode == 0      # halted after the checkpoint
    assert "System halted after checkpoint" in g.err.read_text()
    assert first == list(range(1, len(first) + 1))
    return image, first


def shell_restored(tmp: Path, root: list[str], script: str, word: str, last: int) -> str:
    """Run SCRIPT with /bin/sh as init until it printed `WORD 3`,
    checkpoint it, restore it: the count goes on from where it was to
    LAST; returns what the restored guest printed after that."""
    g = Guest(tmp, root, "-c", script, init="/bin/sh")
    g.wait_for(f"{word} 3\n")
    r = g.checkpoint(tmp / "img")
    assert r.returncode == 0, r.stderr
    first = numbers(g.finish(), word)
    r = restore(tmp / "img")
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, word) == list(range(first[-1] + 1, last + 1)), r.stdout + r.stderr
    return r.stdout.split(f"{word} {last}\n", 1)[1]


def test_counting_loop_and_file_continue(tmp_path, disk):
    image, first = checkpointed(tmp_path, [f"ubd0={disk}", "rw"], ["count", "/ckpt.log", "40"], "count", 1)
    moved = tmp_path / "moved.img"          # the disk elsewhere: ubd0= overrides the saved one
    disk.rename(moved)
    r = restore(image, f"ubd0={moved}")
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 41)), r.stdout + r.stderr
    assert "file ok 40" in r.stdout        # the file's offset went on: every count once, in order
    size = sum(len(b"count %d\n" % i) for i in range(1, 41))
    assert f"offset {size}" in r.stdout


@pytest.mark.parametrize("where", ["/mapped", "/tmp/mapped"])
def test_shared_file_mappings_carried(tmp_path, disk, where):
    """A file on the disk (or on a tmpfs) mapped MAP_SHARED, writable and
    read-only: after the restore both map the file again, what was written
    before and after reaches the file, and the read-only one still cannot
    be made writable."""
    rest = shell_restored(tmp_path, [f"ubd0={disk}", "rw"],
                          f"mount -t tmpfs none /tmp && exec {PROG} mapped {where} 40", "count", 40)
    assert rest == "read 8192: before after; seen read-only: before after\nmprotect Permission denied\n"



@pytest.mark.parametrize("mode", ["count", "mapped"])
def test_hostfs_mount_carried(tmp_path, mode):
    """A hostfs mount with a file on it appended to (count) or mapped
    MAP_SHARED (mapped): the restore mounts the host directory again
    below its hostfs= (here moved, and named anew on the restore's command
    line, as ubdN= is), the file goes on at its offset and what the
    mapping writes reaches the host file.  Without that directory the
    restore refuses."""
    top = tmp_path / "host"
    (top / "sub").mkdir(parents=True)
    rest = shell_restored_moved(tmp_path, top, f"mount none /mnt -t hostfs -o /sub && exec {PROG} {mode} /mnt/f 12")
    mounts = json.loads((tmp_path / "img" / "manifest.json").read_text())["mounts"]
    assert [(m["fstype"], m.get("hostfs")) for m in mounts] == [("hostfs", "/sub")]
    moved = tmp_path / "moved" / "sub" / "f"
    if mode == "count":
        assert rest.startswith("offset ") and rest.endswith("file ok 12\n"), rest
        assert moved.read_text() == "".join(f"count {i}\n" for i in range(1, 13))
    else:
        assert rest == "read 8192: before after; seen read-only: before after\nmprotect Permission denied\n"
        data = moved.read_bytes()
        assert len(data) == 8192 and data[:7] == b"before\0" and data[4096:4102] == b"after\0"
    r = restore(tmp_path / "img", f"hostfs={tmp_path / 'nowhere'}")
    assert r.returncode != 0 and "mount says ENOENT" in r.stderr and "count" not in r.stdout, r.stderr




def test_ramfs_carried(tmp_path):
    """A ramfs mount, its tree saved as a tmpfs's is: a file written before
    the checkpoint is still there, and one appended to goes on at its
    offset; still a ramfs (its magic), with the mode= it was mounted with."""
    rest = shell_restored(tmp_path, [f"initrd={CPIO}"],
                          "mount -t proc proc /proc && mount -t ramfs -o mode=750 none /mnt && echo kept > /mnt/x && "
                          f"{PROG} count /mnt/f 12 && cat /mnt/x && grep ' /mnt ' /proc/mounts && stat -f -c %t /mnt",
                          "count", 12)
    assert rest.endswith("file ok 12\nkept\nnone /mnt ramfs rw,relatime,mode=750 0 0\n858458f6\n"), rest


def test_tmpfs_on_dev_shm_carried(tmp_path):
    """A tmpfs on /dev/shm (where POSIX shared memory and semaphores live):
    mounted again there, its files kept."""
    rest = shell_restored(tmp_path, [f"initrd={CPIO}"],
                          f"mount -t tmpfs tmpfs /dev/shm && echo kept > /dev/shm/x && {PROG} count /dev/shm/f 12 && "
                          "cat /dev/shm/x", "count", 12)
    assert rest.endswith("file ok 12\nkept\n"), rest


def test_dev_tree_carried(tmp_path):
    """What the guest made and changed in /dev comes back: a directory
    with a tmpfs mounted on it, a file in /dev/shm (no tmpfs there: the
    devtmpfs's own, as shm_open makes it), a fifo held open, a symlink, a
    node's mode, a node removed; the boot's nodes stay usable, and
    /dev/null and /dev/urandom held open are opened again."""
    rest = shell_restored(tmp_path, [f"initrd={CPIO}"],
                          "mkdir /dev/mine && mount -t tmpfs none /dev/mine && echo inmine > /dev/mine/y && "
                          "echo plain > /dev/shm/p && ln -s /dev/shm/p /dev/plink && chmod 600 /dev/tty0 && "
                          f"rm /dev/full && mkfifo /dev/f && {PROG} count /dev/shm/f 12 3<>/dev/f 4</dev/null 5</dev/urandom && "
                          "cat /dev/mine/y /dev/plink && ls -l /dev/tty0 | cut -c1-10 && test -p /dev/f && "
                          "echo fifo && test ! -e /dev/full && echo gone && echo null > /dev/null && echo nulled",
                          "count", 12)
    assert rest.endswith("file ok 12\ninmine\nplain\ncrw-------\nfifo\ngone\nnulled\n"), rest
    doc = json.loads((tmp_path / "img" / "manifest.json").read_text())
    assert len(doc["dev"]["inodes"]) > 10
    assert {"/dev/null", "/dev/urandom", "/dev/f"} <= {e.get("path") for e in doc["files"]}


def test_named_unix_socket_in_dev(tmp_path):
    """A server's socket file in /dev (where syslogd binds /dev/log): its
    path reaches the socket again after the restore."""
    rest = shell_restored(tmp_path, [f"initrd={CPIO}"], f"exec {PROG} unix /dev 20", "count", 20)
    assert rest == UNIX_AFTER, rest


PROPAGATION = ("mount -t proc proc /proc && mount --make-rshared / && mount -t tmpfs t1 /mnt && mkdir /mnt/sub && "
               "mount --bind /mnt /tmp && mount --bind /mnt /home && mount --make-slave /home && "
               "mount -t tmpfs t2 /root && mount --make-unbindable /root && "
               "{count}"
               "mount -t tmpfs t3 /mnt/sub && echo propagated > /mnt/sub/x && cat /tmp/sub/x /home/sub/x && "
               "mount --bind /root /var 2>&1; "
               "while read a b c d mp opts rest; do echo \"$mp ${{rest%% - *}}\"; done < /proc/self/mountinfo")


def test_mount_propagation_carried(tmp_path):
    """A shared root, a shared tmpfs with a peer (a bind of it) and a slave,
    an unbindable tmpfs: after the restore mountinfo shows the same peer
    groups and masters, a mount under the shared one appears in its peer
    and its slave, and the unbindable one still refuses a bind, as in a
    run without a checkpoint."""
    g = Guest(tmp_path, [f"initrd={CPIO}"], "-c", PROPAGATION.format(count="true && "), init="/bin/sh")
    plain = g.finish()
    shutil.rmtree(tmp_path / "uml", ignore_errors=True)
    rest = shell_restored(tmp_path, [f"initrd={CPIO}"], PROPAGATION.format(count=f"{PROG} count /mnt/f 12 && "),
                          "count", 12)
    after = rest.split("file ok 12\n", 1)[1]
    assert "propagated\npropagated\n" in plain and "shared:" in plain and "master:" in plain \
        and "unbindable" in plain, plain
    assert after == plain, (after, plain)

def test_hostfs_root_carried(tmp_path):
    """A host directory as the root (rootfstype=hostfs): a file on it
    appended to goes on at its offset after the restore, which boots the
    same root again."""
    root = tmp_path / "root"
    (root / "t" / "bin").mkdir(parents=True)
    (root / "dev").mkdir()
    shutil.copy2(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt", root / "t" / "bin")
    image, first = checkpointed(tmp_path, ["rootfstype=hostfs", f"hostfs={root}", "rw"],
                                ["count", "/ckpt.log", "12"], "count", 1)
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert "file ok 12" in r.stdout
    assert (root / "ckpt.log").read_text() == "".join(f"count {i}\n" for i in range(1, 13))

def shell_restored_moved(tmp: Path, top: Path, script: str) -> str:
    """shell_restored with hostfs=TOP, TOP moved to tmp/moved between the
    checkpoint and the restore, which names it with hostfs=."""
    g = Guest(tmp, [f"initrd={CPIO}", f"hostfs={top}"], "-c", script, init="/bin/sh")
    g.wait_for("count 3\n")
    r = g.checkpoint(tmp / "img")
    assert r.returncode == 0, r.stderr
    first = numbers(g.finish(), "count")
    top.rename(tmp / "moved")
    r = restore(tmp / "img", f"hostfs={tmp / 'moved'}")
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    return r.stdout.split("count 12\n", 1)[1]

def restored_as_native(tmp_path: Path, disk: Path, mode: str, where: str, last: int) -> dict:
    """t_ckpt MODE PATH LAST (proc mounted, a tmpfs on /tmp) checkpointed at count 3 and
    restored prints after its count what it prints natively; the manifest."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), mode, str(tmp_path / "native"), "3"],
                            capture_output=True, text=True, timeout=60).stdout
    rest = shell_restored(tmp_path, [f"ubd0={disk}", "rw"],
                          f"mount -t proc proc /proc && mount -t tmpfs none /tmp && exec {PROG} {mode} {where} {last}",
                          "count", last)
    assert rest == native.split("count 3\n", 1)[1], rest
    return json.loads((tmp_path / "img" / "manifest.json").read_text())


@pytest.mark.parametrize("where", ["/nameless", "/tmp/nameless"])
def test_nameless_files_carried(tmp_path, disk, where):
    """A file unlinked while open (with a hole) and an O_TMPFILE file, on
    the disk (or a tmpfs): after the restore both read what they held at
    their offsets, and linkat names the O_TMPFILE one (what the program
    run natively prints); the disk is clean for e2fsck."""
    doc = restored_as_native(tmp_path, disk, "nameless", where, 12)
    assert sorted(e["kind"] for e in doc["files"] if e["kind"] == "unlinked") == ["unlinked", "unlinked"]
    assert doc["unlinked_blob"] == "unlinked.bin"
    r = subprocess.run(["e2fsck", "-fn", str(disk)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


@pytest.mark.parametrize("where", ["/sharedgone", "/tmp/sharedgone"])
def test_shared_mapping_of_unlinked_file_carried(tmp_path, disk, where):
    """A file unlinked while open and mapped MAP_SHARED by a parent and
    its child (as Python's multiprocessing heap does), on the disk or a
    tmpfs: after the restore both map one file again, which its fd reads
    and writes (what the program run natively prints)."""
    doc = restored_as_native(tmp_path, disk, "sharedgone", where, 12)
    maps = [f for p in doc["processes"] if "mm" in p for f in p["mm"]["files"] if f.get("shared")]
    assert len(maps) == 2 and len({f["group"] for f in maps}) == 1
    r = subprocess.run(["e2fsck", "-fn", str(disk)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout

def test_tmpfs_preallocated_file_carried(tmp_path, disk):
    """A tmpfs file with 1 MiB reserved past its end by
    fallocate(FALLOC_FL_KEEP_SIZE): after the restore its size and its
    reserved blocks are as they were, and stay reserved when written into,
    as natively."""
    doc = restored_as_native(tmp_path, disk, "prealloc", "/tmp/p", 12)
    tmpfs = next(m for m in doc["mounts"] if m["fstype"] == "tmpfs")["tmpfs"]
    assert [i["prealloc_end"] for i in tmpfs["inodes"] if "prealloc_end" in i] == [1 << 20]

@pytest.mark.parametrize("where", ["/relinked", "/tmp/relinked"])
def test_file_by_a_gone_name_carried(tmp_path, disk, where):
    """A file opened and mapped by a name since unlinked, its inode named
    elsewhere, and a new file under the old name: after the restore the
    descriptor and the mapping still hold the first inode (found by its
    number, shown " (deleted)"), never the new file (what the program run
    natively prints); the disk is clean for e2fsck."""
    doc = restored_as_native(tmp_path, disk, "relinked", where, 12)
    assert [bytes.fromhex(e["name"]) for e in doc["files"] if "ino" in e] == [b"first"]
    r = subprocess.run(["e2fsck", "-fn", str(disk)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


@pytest.mark.parametrize("where", ["/deletedmap", "/tmp/deletedmap"])
def test_private_mappings_of_deleted_files_carried(tmp_path, disk, where):
    """Files mapped privately and then unlinked (one mapping written
    copy-on-write, one file's fd still open): after the restore the
    mappings read what they held and /proc/self/maps names each file
    " (deleted)", as the program run natively prints; e2fsck is clean."""
    doc = restored_as_native(tmp_path, disk, "deletedmap", where, 12)
    maps = [f for p in doc["processes"] if "mm" in p for f in p["mm"]["files"] if "group" in f]
    assert len(maps) == 3 and len({f["group"] for f in maps}) == 2
    r = subprocess.run(["e2fsck", "-fn", str(disk)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


@pytest.mark.parametrize("where", ["/deletedexe", "/tmp/deletedexe"])
def test_deleted_program_carried(tmp_path, disk, where):
    """A process running a program whose file it unlinked: after the
    restore it goes on, and /proc/self/exe shows the file " (deleted)",
    as the program run natively prints."""
    doc = restored_as_native(tmp_path, disk, "deletedexe", where, 12)
    assert any("exe_map" in p.get("mm", {}) for p in doc["processes"])


@pytest.mark.parametrize("where", ["/locked", "/tmp/locked"])
def test_file_locks_carried(tmp_path, disk, where):
    """A file flocked, record-locked and OFD-locked through three
    descriptions: after the restore another description and a child find
    each lock where it was, held by whom it was (what the program run
    natively prints)."""
    doc = restored_as_native(tmp_path, disk, "locks", where, 12)
    assert sorted(k[0] for e in doc["files"] for k in e.get("locks", [])) == ["flock", "ofd", "posix"]



@pytest.mark.parametrize("where", ["/leased", "/tmp/leased"])
def test_lease_carried(tmp_path, disk, where):
    """A read lease with F_SETSIG, on the disk (or a tmpfs): after the
    restore F_GETLEASE reads it, a writer's open breaks it, its holder
    gets the signal with the lease's fd, and the open works once the lease
    is given up (what the program run natively prints)."""
    doc = restored_as_native(tmp_path, disk, "leased", where, 12)
    assert [k[0] for e in doc["files"] for k in e.get("locks", [])] == ["lease"]

@pytest.mark.parametrize("where", ["/listed", "/tmp/listed"])
def test_open_directory_carried(tmp_path, disk, where):
    """A directory on the disk (or on a tmpfs) open and listed in part: the
    restored process lists the rest, every entry once, and opens and
    fchdirs through its fd."""
    rest = shell_restored(tmp_path, [f"ubd0={disk}", "rw"],
                          f"mount -t tmpfs none /tmp && exec {PROG} dir {where} 12", "count", 12)
    assert rest == "listed 22 entries, 22 names; openat through it 1; fchdir to it 1\n", rest


@pytest.mark.parametrize("where", ["/fifo", "/tmp/fifo"])
def test_open_fifo_carried(tmp_path, disk, where):
    """A fifo on the disk (or on a tmpfs) open by a non-blocking reader and
    a writer, sized to a page and full, a child blocked writing to it:
    after the restore the fifo is found again by its path, the page is
    read, then the child's bytes, and the readers and writers are counted
    as they were (what the program run natively prints)."""
    doc = restored_as_native(tmp_path, disk, "fifo", where, 30)
    assert sorted(e["flags"] & 3 for e in doc["files"] if e["kind"] == "fifo") == [0, 1, 1]
    (pipe,) = doc["pipes"]
    assert pipe["size"] == 4096 and len(pipe["data"]) == 2 * 4096


INOTIFY_AFTER = ("then wds 1 4\n"
                 "event wd 1 mask 0x100 cookie 0 name 'b'\nevent wd 3 mask 0x8000 cookie 0 name ''\n"
                 "event wd 2 mask 0x2 cookie 0 name ''\nevent wd 2 mask 0x8000 cookie 0 name ''\n"
                 "event wd 1 mask 0x100 cookie 0 name 'c'\nevent wd 1 mask 0x200 cookie 0 name 'c'\n"
                 "read EAGAIN\n")


@pytest.mark.parametrize("where", ["/watched", "/tmp/watched"])
def test_inotify_watches_and_queue_carried(tmp_path, disk, where):
    """An inotify instance on a directory of the disk (or of a tmpfs):
    its watches keep their numbers and masks (IN_ONESHOT, IN_MASK_ADD
    widened, IN_EXCL_UNLINK), the events queued before the checkpoint are
    read after it, before the new ones, and the next watch takes the next
    number (what the same program prints on Linux)."""
    rest = shell_restored(tmp_path, [f"ubd0={disk}", "rw"],
                          f"mount -t tmpfs none /tmp && exec {PROG} inotify {where} 40", "count", 40)
    assert rest == INOTIFY_AFTER, rest
    (f,) = [e for e in json.loads((tmp_path / "img" / "manifest.json").read_text())["files"]
            if e["kind"] == "inotify"]
    assert f["next_wd"] == 4 and [w["wd"] for w in f["watches"]] == [1, 2]
    assert f["watches"][1] == {"wd": 2, "mask": 0x80000006, "path": f"{where}/a"}
    assert f["events"] == [[1, 0x100, 0, "62"], [3, 0x8000, 0, ""]] and f["overflow"] == -1


PTY_AFTER = ("master: got two\\r\\ngot partial line\\r\\n\n"
             "master: session 1, foreground 1, /dev/tty 1, ttyname 1, winsize 30x100, echo 0, icanon 1\\r\\n\n"
             "child status 0\n")


@pytest.mark.parametrize("mount", [False, True])
def test_pty_session_carried(tmp_path, mount):
    """A pty pair: a child in its own session reading lines on the slave
    (its controlling tty), the parent typing on the master.  Checkpointed
    with echo turned off, the child's output to "two" not read yet and
    half a line typed: after the restore the line is finished and read
    whole, /dev/pts/0 is the same pty, still the child's controlling tty
    with its session, foreground group, window size and termios (what the
    same program prints on Linux).  With devpts mounted on /dev/pts too."""
    script = f"{'mount -t devpts devpts /dev/pts && ' if mount else ''}exec {PROG} pty 40"
    rest = shell_restored(tmp_path, [f"initrd={CPIO}"], script, "count", 40)
    assert rest == PTY_AFTER, rest
    doc = json.loads((tmp_path / "img" / "manifest.json").read_text())
    (pty,) = doc["ptys"]
    assert pty["index"] == 0 and bytes.fromhex(pty["rbuf"]) == b"partial" and not pty["line_ends"]
    assert bytes.fromhex(pty["buf"]) == b"got two\r\n" and not pty["termios"]["lflag"] & 0o10     # -echo
    assert [p["ctty_pty"] for p in doc["processes"] if "ctty_pty" in p] == [0]
    assert [m["fstype"] for m in doc["mounts"]] == (["devpts"] if mount else [])


def test_pipe_and_waiting_parent(tmp_path):
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["pipe", "20"], "child", 2)
    assert len(first) < 20
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "child") == list(range(first[-1] + 1, 21))
    assert "child read 17: bytes in the pipe" in r.stdout
    assert "parent: child reaped, status 7" in r.stdout


def test_zombies_carried(tmp_path):
    """Two children that exited and were not reaped (one with a status, in
    its own process group, one killed by a signal after using some CPU),
    their SIGCHLD pending while blocked: after the restore the parent
    takes the signal with the first one's information, /proc shows both
    as zombies of it, waitid sees the second, and wait4 reaps them in
    order with their statuses and the rusage they had (what the program
    run natively prints)."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "zombie", "3"],
                            capture_output=True, text=True, timeout=60).stdout
    rest = shell_restored(tmp_path, [f"initrd={CPIO}"], f"mount -t proc proc /proc && exec {PROG} zombie 30",
                          "count", 30)
    assert rest == native.split("count 3\n", 1)[1], rest
    doc = json.loads((tmp_path / "img" / "manifest.json").read_text())
    zombies = [p["zombie"] for p in doc["processes"] if "zombie" in p]
    assert [z["status"] for z in zombies] == [7 << 8, 15] and sum(zombies[1]["usage"][:2]) > 0


def test_pending_timer_signals_carried(tmp_path):
    """The signals of a periodic and a one-shot POSIX timer, blocked and
    pending at the checkpoint: after the restore each is taken once with
    its value and SI_TIMER (the periodic one's overrun counted), and the
    dequeue restarts the periodic timer, which fires again (as the
    program run natively)."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "ptpending", "3"],
                            capture_output=True, text=True, timeout=60).stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["ptpending", "30"], "count", 1)
    timers = json.loads((image / "manifest.json").read_text())["processes"][0]["posix_timers"]
    assert ["queued" in x for x in timers] == [True, True]
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 31)), r.stdout + r.stderr
    assert r.stdout.split("count 30\n", 1)[1] == native.split("count 3\n", 1)[1], r.stdout
    # forged: a queued signal naming a timer whose signal is not pending, or
    # a pending timer signal no queued signal names, is refused
    for n, forge in enumerate((lambda d: d["processes"][0]["posix_timers"][0].pop("queued"),
                               lambda d: d["processes"][0].update(shared_sigq=[]))):
        copy = tmp_path / f"forged{n}"
        shutil.copytree(image, copy)
        _rewrite(copy, forge)
        r = restore(copy)
        assert r.returncode != 0 and "timer" in r.stderr and "count" not in r.stdout, r.stderr


def test_o_path_descriptors_carried(tmp_path, disk):
    """A directory, a file and a symlink opened O_PATH: restored as places
    (fstat works, read is EBADF, openat through the directory opens, the
    symlink's is the link itself)."""
    image, first = checkpointed(tmp_path, [f"ubd0={disk}", "rw"], ["opath", "30"], "count", 1)
    assert [f["kind"] for f in json.loads((image / "manifest.json").read_text())["files"]].count("path") == 3
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 31)), r.stdout + r.stderr
    assert r.stdout.endswith("O_PATH: flags path path; fstat a file 1; read EBADF; "
                             "openat through the directory reads\n"
                             "O_PATH of a symlink: fstat a link, readlink busybox\n"), r.stdout



def test_seccomp_filters_and_strict_mode_carried(tmp_path):
    """Two stacked filters (an errno, a trap) and a child in strict mode
    blocked in read: after the restore the filters act as before, a new
    child inherits them, the strict child reads and dies at its getpid
    (as natively).  The image holds each filter once."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "seccomp", "3"],
                            capture_output=True, text=True, timeout=60).stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["seccomp", "12"], "count", 2)
    doc = json.loads((image / "manifest.json").read_text())
    assert [f["prev"] for f in doc["seccomp_filters"]] == [-1, 0]
    assert [p["tasks"][0]["seccomp"] for p in doc["processes"]] == [{"mode": 2, "filter": 1}, {"mode": 1, "filter": -1}]
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert r.stdout.split("count 12\n", 1)[1] == native.split("count 3\n", 1)[1], r.stdout
    # forged: a program seccomp(2) refuses (an opcode it does not take), a
    # strict task with a filter, a filter before itself
    for n, (forge, message) in enumerate((
            (lambda d: d["seccomp_filters"][0].update(prog="ff" * 8), "a program seccomp refuses"),
            (lambda d: d["processes"][1]["tasks"][0]["seccomp"].update(filter=0), "strict mode with a filter"),
            (lambda d: d["seccomp_filters"][0].update(prev=0), "seccomp_filters[0].prev: not an integer"))):
        copy = tmp_path / f"forged{n}"
        shutil.copytree(image, copy)
        _rewrite(copy, forge)
        _refused(copy, message)


def test_nested_epolls_carried(tmp_path):
    """Three epolls nested (one edge-triggered entry on an epoll): after the
    restore each write reaches the epolls above it as natively, and a loop
    is still ELOOP.  A forged image whose epolls watch each other is
    refused."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "nested", "3"],
                            capture_output=True, text=True, timeout=60).stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["nested", "12"], "count", 1)
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert r.stdout.split("count 12\n", 1)[1] == native.split("count 3\n", 1)[1], r.stdout

    def loop(d) -> None:
        files = d["files"]
        eps = [i for i, f in enumerate(files) if f["kind"] == "epoll" and len(f["entries"]) == 1]    # C
        tops = [i for i, f in enumerate(files) if f["kind"] == "epoll" and len(f["entries"]) == 2
                and any(f2["kind"] == "eventfd" for f2 in (files[e[1]] for e in f["entries"]))]  # A
        files[eps[0]]["entries"].append([3, tops[0], 1, 0, 0, 0])
    _forged_refused(image, tmp_path / "loop", loop, "makes a loop")



def test_shared_and_unshared_fd_tables_carried(tmp_path):
    """A child sharing its parent's fd table and filesystem context
    (clone CLONE_FILES|CLONE_FS, no CLONE_VM) and a thread with its own
    (unshare): after the restore the child sees the fd its parent opens
    and the directory it moves to, and moves it back, and the thread keeps
    its own cwd, umask and fds, as natively.  The image saves each table
    once and names it by tid."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "tables", "3"],
                            capture_output=True, text=True, timeout=60, cwd="/").stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["tables", "12"], "count", 2)
    doc = json.loads((image / "manifest.json").read_text())
    parent, kid = doc["processes"]
    assert kid["files_of"] == 1 and kid["fs_of"] == 1 and "fds" not in kid and "cwd" not in kid
    thread = parent["tasks"][1]
    assert thread["cwd"] == "/dev" and thread["umask"] == 0o77 and len(thread["fds"]) == len(parent["fds"]) - 1
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert r.stdout.split("count 12\n", 1)[1] == native.split("count 3\n", 1)[1], r.stdout
    # forged: a table named by a tid restored after it
    _forged_refused(image, tmp_path / "forged", lambda d: d["processes"][1].update(files_of=2),
                    "files_of: no task restored before it has that tid")


def test_process_whose_main_thread_exited_carried(tmp_path):
    """A child whose main thread called pthread_exit, two threads left:
    after the restore its pid is the same, the waiting thread wakes, a new
    thread starts, and its exit status reaches its parent, as natively."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "leaderless", "3"],
                            capture_output=True, text=True, timeout=60).stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["leaderless", "12"], "count", 2)
    kid = json.loads((image / "manifest.json").read_text())["processes"][1]
    assert kid["main_exited"] and len(kid["tasks"]) == 2 and kid["pid"] not in [x["tid"] for x in kid["tasks"]]
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert r.stdout.split("count 12\n", 1)[1] == native.split("count 3\n", 1)[1], r.stdout


def test_pidfds_carried(tmp_path):
    """pidfds of a running child, a zombie and a reaped one: after the
    restore poll, pidfd_send_signal and waitid(P_PIDFD) answer for each as
    natively, and the running one's becomes readable when it exits."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "pidfds", "3"],
                            capture_output=True, text=True, timeout=60).stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["pidfds", "12"], "count", 3)
    files = json.loads((image / "manifest.json").read_text())["files"]
    assert sorted(f["gone"] for f in files if f["kind"] == "pidfd") == [False, False, True]
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert r.stdout.split("count 12\n", 1)[1] == native.split("count 3\n", 1)[1], r.stdout


def test_unlinked_semaphore_carried(tmp_path):
    """A named semaphore sem_open made and sem_unlink removed, mapped by a
    parent and a child that waits on it: its file has neither a name nor
    an fd left, its pages are saved as shared anonymous memory, and the
    parent's post after the restore wakes the child (as natively)."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "semaphore", "3"],
                            capture_output=True, text=True, timeout=60).stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["semaphore", "12"], "count", 2)
    doc = json.loads((image / "manifest.json").read_text())
    assert len(doc["shared_anon"]) == 1
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert r.stdout.split("count 12\n", 1)[1] == native.split("count 3\n", 1)[1], r.stdout

def test_memfds_carried(tmp_path):
    """A sealed memfd open and mapped shared by a process and its child,
    and a memfd only mappings hold (its fd closed, the kernel's file let
    go, its pages saved as shared anonymous memory): after the restore
    each write through a mapping is seen by the other process and by the
    fd, and the seals hold, as natively."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "memfds", "3"],
                            capture_output=True, text=True, timeout=60).stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["memfds", "12"], "count", 2)
    doc = json.loads((image / "manifest.json").read_text())
    saved = [e for e in doc["files"] if e.get("memfd") and "runs" in e]
    saved += [e for p in doc["processes"] for e in p["mm"]["files"] if e.get("memfd") and "runs" in e]
    assert [(bytes.fromhex(e["name"]), e["seals"]) for e in saved] == [(b"memfd:shared", 6)]
    assert len(doc["shared_anon"]) == 1     # the one only mappings hold: its pages, by the host's inode
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert r.stdout.split("count 12\n", 1)[1] == native.split("count 3\n", 1)[1], r.stdout

def test_cpu_time_and_rlimit_cpu_carried(tmp_path):
    """A process with RLIMIT_CPU (soft 1 s) that used 0.8 s of CPU in two
    threads: after the restore its process, thread and getrusage CPU times
    go on from where they were (never back to 0), and SIGXCPU comes at
    about 1 s of CPU in all (not 1.8 s: the limit counts the time before
    the checkpoint), as natively."""
    run = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "cputime", "3"],
                         capture_output=True, text=True, timeout=60)
    native = run.stdout
    assert "in all: yes" in native, native
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["cputime", "12"], "count", 1)
    proc = json.loads((image / "manifest.json").read_text())["processes"][0]
    assert sum(proc["cpu"][:2]) >= 0.8e9 and sum(proc["tasks"][1]["cpu"][:2]) >= 0.2e9, proc["cpu"]
    assert proc["tasks"][0]["io"][1] >= len("count 1\n") and proc["tasks"][0]["io"][3] >= 1   # wchar, syscw
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert r.stdout.split("count 12\n", 1)[1] == native.split("count 3\n", 1)[1], r.stdout + r.stderr

def test_io_signal_owners_carried(tmp_path):
    """A pipe with O_ASYNC, F_SETOWN and F_SETSIG, another owned by a
    process group: after the restore the settings read back the same and a
    write brings the owner its signal with the pipe's fd (as natively)."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "sigio", "3"],
                            capture_output=True, text=True, timeout=60).stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["sigio", "12"], "count", 1)
    files = json.loads((image / "manifest.json").read_text())["files"]
    assert sum("async_fd" in f for f in files) == 1 and sum("owner" in f for f in files) == 2
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert r.stdout.split("count 12\n", 1)[1] == native.split("count 3\n", 1)[1], r.stdout


def test_wall_clock_timer_carried(tmp_path):
    """A POSIX timer set to an absolute CLOCK_REALTIME time: the image has
    that time, and the restored timer fires when the clock reaches it,
    never before (as natively)."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "ptwall", "3"],
                            capture_output=True, text=True, timeout=60).stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["ptwall", "30"], "count", 1)
    timers = json.loads((image / "manifest.json").read_text())["processes"][0]["posix_timers"]
    assert timers[0]["wall"]["clock"] == 0
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 31)), r.stdout + r.stderr
    assert r.stdout.split("count 30\n", 1)[1] == native.split("count 3\n", 1)[1], r.stdout


def _clocks_native() -> str:
    return subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "clocks", "3"],
                          capture_output=True, text=True, timeout=60).stdout.split("count 3\n", 1)[1]


def test_clocks_go_on_from_a_host_behind(tmp_path):
    """A machine whose clocks read 11.6 days more than this host's (the
    first image forged to say so: its restore gives the clocks offsets,
    which a second checkpoint then finds), restored here with its offsets
    forged away, as if saved on a host up that much longer: its monotonic
    and boot clocks go on from where they stopped, never back, in the
    vDSO as by the syscall; /proc/uptime agrees, and waits to an absolute
    monotonic time take what they asked, as natively."""
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["clocks", "60"], "count", 1)
    clock = json.loads((image / "manifest.json").read_text())["machine"]["clock"]
    assert clock["mono_offset_ns"] == clock["boot_offset_ns"] == 0
    ahead = 10**15

    def forward(doc):
        doc["machine"]["clock"]["mono_ns"] += ahead
        doc["machine"]["clock"]["boot_ns"] += ahead
    _rewrite(image, forward)
    out = tmp_path / "out2.txt"
    with open(out, "wb") as f:
        p = subprocess.Popen([str(UMLPY), "restore", "--kernel", str(IMAGE), str(image)],
                             stdout=f, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while f"count {first[-1] + 3}\n" not in out.read_text():
            assert p.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)
        again = tmp_path / "img2"
        r = subprocess.run([str(UMLPY), "checkpoint", "--uml-dir", str(tmp_path / "uml"), "ck", str(again)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    second = numbers(out.read_text(), "count")
    clock = json.loads((again / "manifest.json").read_text())["machine"]["clock"]
    assert ahead - 120 * 10**9 < clock["mono_offset_ns"] <= ahead, clock
    assert ahead - 120 * 10**9 < clock["boot_offset_ns"] <= ahead, clock

    def offsets_gone(doc):
        doc["machine"]["clock"].update(mono_offset_ns=0, boot_offset_ns=0)
    _rewrite(again, offsets_gone)
    r = restore(again)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(second[-1] + 1, 61)), r.stdout + r.stderr
    assert r.stdout.split("count 60\n", 1)[1] == _clocks_native(), r.stdout


def test_clocks_on_the_same_host_are_the_host_s(tmp_path):
    """Restored on the host it was saved on, the machine's clocks are the
    host's still (no offset, no trap): they moved on by the time it spent
    saved, and nothing went back."""
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["clocks", "30"], "count", 1)
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 31)), r.stdout + r.stderr
    assert r.stdout.split("count 30\n", 1)[1] == _clocks_native(), r.stdout


def test_time_namespace_carried(tmp_path):
    """A child in a time namespace with offsets (its parent, init, made
    it): the image has the namespace (number, offsets, frozen) and who is
    in it; restored, the child's clocks go on in it, through the vDSO as
    by the syscall, waits to an absolute monotonic time take what they
    asked, and its namespace, offsets file and offsets are as before (as
    natively, where it needs root)."""
    if os.geteuid() != 0:
        pytest.skip("t_ckpt timens needs root natively (a time namespace)")
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "timens", "3"],
                            capture_output=True, text=True, timeout=60).stdout.split("count 3\n", 1)[1]
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["timens", "30"], "count", 2)
    doc = json.loads((image / "manifest.json").read_text())
    [ns] = doc["time_namespaces"]
    assert (ns["monotonic"], ns["boottime"], ns["frozen"], ns["maker"]) == ([1000, 0], [2000, 0], True, 0), ns
    init, child = sorted(doc["processes"], key=lambda p: p["pid"])
    assert init["timens"] == [0xEFFFFFFA, ns["ino"]] and child["timens"] == [ns["ino"]] * 2
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 31)), r.stdout + r.stderr
    assert r.stdout.split("count 30\n", 1)[1] == native, r.stdout


def test_machine_settings_carried(tmp_path):
    """What the guest set of the machine itself: its host name, sysctls
    (a root-only one, a string, one that bounds the pids) and its wall
    clock (set to 2031) are as it left them after the restore, and init's
    start time is what it was."""
    script = ("mount -t proc proc /proc && hostname ckhost && echo 1 > /proc/sys/fs/protected_symlinks && "
              "echo 'core.%p' > /proc/sys/kernel/core_pattern && echo 12345 > /proc/sys/kernel/pid_max && "
              "date -s '2031-05-06 07:08:09' > /dev/null && s=$(awk '{print $22}' /proc/1/stat) && "
              "i=1; while [ $i -le 30 ]; do echo n $i; i=$((i+1)); "
              "usleep 100000; done; hostname; cat /proc/sys/fs/protected_symlinks /proc/sys/kernel/core_pattern "
              "/proc/sys/kernel/pid_max; date +%Y; [ $s = $(awk '{print $22}' /proc/1/stat) ] && echo same start")
    rest = shell_restored(tmp_path, [f"initrd={CPIO}"], script, "n", 30)
    assert rest == "ckhost\n1\ncore.%p\n12345\n2031\nsame start\n", rest
    sysctls = json.loads((tmp_path / "img" / "manifest.json").read_text())["machine"]["sysctls"]
    assert bytes.fromhex(sysctls["kernel/hostname"]) == b"ckhost\n"
    assert not any(p.startswith(("net/", "kernel/keys/", "fs/mqueue/")) or p in ("kernel/shmmax", "kernel/ns_last_pid")
                   for p in sysctls)


def test_own_wall_clock_keeps_the_trampoline(tmp_path):
    """A guest that set its wall clock, restored: its clock_gettime traps
    for the wall clocks only, through the trampoline made from the host's
    fresh vDSO (not from the restored one, whose entry is patched already:
    every clock would trap then), and its time is its own."""
    g = Guest(tmp_path, [f"initrd={CPIO}"], "-c", "date -s '2031-05-06 07:08:09' > /dev/null && i=1; "
              "while [ $i -le 20 ]; do echo n $i; i=$((i+1)); usleep 100000; done; date +%Y", init="/bin/sh")
    g.wait_for("n 3\n")
    r = g.checkpoint(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    g.finish()
    r = restore(tmp_path / "img", "loglevel=7")
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("n 20\n2031\n"), r.stdout
    assert "vdso:" not in r.stderr, r.stderr


def test_mlocked_ranges_carried(tmp_path):
    """mlock'd and mlock2(MLOCK_ONFAULT)'d ranges: after the restore VmLck
    counts both, the first is resident whole (as the mlock faulted it
    in), the second holds no page it did not, and munlock finds them (as
    the program run natively prints)."""
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "mlocked", "3"],
                            capture_output=True, text=True, timeout=60).stdout
    rest = shell_restored(tmp_path, [f"initrd={CPIO}"], f"mount -t proc proc /proc && exec {PROG} mlocked 30",
                          "count", 30)
    assert rest == native.split("count 3\n", 1)[1], rest
    mm = [p for p in json.loads((tmp_path / "img" / "manifest.json").read_text())["processes"]][0]["mm"]
    assert sorted(fl for _s, _e, fl in mm["locked"]) == [0x2000, 0x82000]


def test_job_control_stops_carried(tmp_path):
    """Four children stopped by SIGSTOP or SIGTSTP (in a nanosleep, a
    read, a poll with a timeout and a ppoll with a mask), their stops not
    yet waited for: after the restore they are still stopped,
    waitpid(WUNTRACED) reports each stop once, SIGCONT continues them
    (WCONTINUED sees it), and each ends its call as it would have: the
    sleeper counts on, the reader and the pollers get what was written
    while they were stopped (as the program run natively), and the ppoll's
    mask was not saved as its caller's own."""
    # natively in a process group of its own whose parent (pytest) is in
    # its session: never an orphaned group, which SIGTSTP would not stop
    # (a test run from a backgrounded shell is one)
    native = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "stopped", "3"],
                            capture_output=True, text=True, timeout=60, process_group=0).stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["stopped", "30"], "count", 5)
    doc = json.loads((image / "manifest.json").read_text())
    kids = [p for p in doc["processes"] if p["pid"] != 1]
    assert [p["flags"]["stopped"] for p in kids] == [True] * 4
    assert [p["flags"]["stop_report"] for p in kids] == [19 << 8 | 0x7f, 20 << 8 | 0x7f] + [19 << 8 | 0x7f] * 2
    assert [p["tasks"][0]["restart"]["kind"] for p in kids] == ["stopped"] * 4
    assert kids[3]["tasks"][0]["blocked"] == 0      # its own, not the ppoll's SIGUSR1
    r = restore(image)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert numbers(out, "count") == list(range(first[-1] + 1, 31)), out + r.stderr
    on = numbers(out, "sleeper")        # counted before the stop: 1, 2 and perhaps 3
    assert on and on == list(range(on[0], 6)) and 2 <= on[0] <= 4, out
    tail = sorted(line for line in native.split("count 3\n", 1)[1].splitlines() if not line.startswith("sleeper"))
    assert sorted(line for line in out.split("count 30\n", 1)[1].splitlines() if not line.startswith("sleeper")) \
        == tail, out
    assert tail == sorted(["stopped by 19 20 19 19", "continued 1 1 1 1", "reader got hello",
                           "poller: 1 ready, got world", "ppoller: 1 ready, got again, SIGUSR1 blocked 0",
                           "exited 0 0 0 0"]), native


def test_computing_task_interrupted_in_guest_code(tmp_path):
    """A task computing (no syscall for milliseconds) is interrupted where
    it is; its integer and floating-point registers go on from there."""
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["spin", "400"], "spin", 1)
    assert len(first) < 400
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "spin") == list(range(first[-1] + 1, 401))
    assert r.stdout.endswith("sum ok\n")


def saved_midway(tmp: Path, args: list[str], ready: str, later: str) -> dict:
    """Run t_ckpt ARGS until it printed READY, checkpoint it 0.3 s later,
    before it printed LATER; the process as the manifest saved it."""
    g = Guest(tmp, [f"initrd={CPIO}"], *args)
    g.wait_for(ready)
    time.sleep(0.3)
    r = g.checkpoint(tmp / "img")
    assert r.returncode == 0, r.stderr
    assert later not in g.finish()
    return json.loads((tmp / "img" / "manifest.json").read_text())["processes"][0]


def test_sleep_keeps_its_remaining_time(tmp_path):
    """A task in nanosleep is saved with the time it has left (not its
    whole request), and wakes once after the restore."""
    restart = saved_midway(tmp_path, ["sleep", "2000"], "sleeping\n", "woke")["tasks"][0]["restart"]
    assert restart["kind"] == "block" and restart["block"]["kind"] == "sleep"
    assert 0 < restart["block"]["left_ns"] < 2_000_000_000
    r = restore(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "woke 0\n", r.stdout


def test_relative_waits_keep_their_time_left(tmp_path):
    """Nine threads in 4 s waits, poll, select, a FUTEX_WAIT, epoll_wait,
    rt_sigtimedwait, epoll_pwait with a mask, epoll_pwait2 without and
    with one and semtimedop, checkpointed 2 s in: all but select are saved
    as restart_syscall with what they had left, select with that time
    written back to its timeout; after the restore each waits what it had
    left, not its whole 4 s again, and ends as it would have.  The waits
    with a mask wait under it again: the SIGUSR2 it blocks, sent before
    the checkpoint, stays pending (the task's own mask lets it in) until
    the wait ends, then its handler runs."""
    g = Guest(tmp_path, [f"initrd={CPIO}"], "waits", "4000")
    g.wait_for("waiting\n")
    time.sleep(2)
    r = g.checkpoint(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    assert g.finish() == "waiting\n"
    tasks = json.loads((tmp_path / "img" / "manifest.json").read_text())["processes"][0]["tasks"]
    blocks = [t["restart"]["block"] for t in tasks if t["restart"]["kind"] == "block"]
    assert sorted(b["kind"] for b in blocks) == ["epoll", "epoll", "epoll_masked", "epoll_masked", "futex", "poll",
                                                 "sem", "sigwait"], blocks
    assert all(0 < b["left_ns"] < 2_100_000_000 for b in blocks), blocks
    usr2 = 1 << 11      # SIGUSR2's bit: in the waits' masks, not in their tasks' own
    assert all(b["mask"] & usr2 for b in blocks if b["kind"] == "epoll_masked"), blocks
    assert all(not t["blocked"] & usr2 and t["pending"] & usr2 for t in tasks
               if t["restart"].get("block", {}).get("kind") == "epoll_masked"), tasks
    started = time.monotonic()
    r = restore(tmp_path / "img")
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["epoll 0", "epoll_pwait 0 usr2 1", "epoll_pwait2 0",
                                             "epoll_pwait2 mask 0 usr2 1", "futex -1 Connection timed out",
                                             "poll 0", "select 0 left 0",
                                             "semtimedop -1 Resource temporarily unavailable",
                                             "sigtimedwait -1 Resource temporarily unavailable"], r.stdout
    left = max(b["left_ns"] for b in blocks) / 1e9
    assert left <= took < 3.6, took     # never early; not the whole 4 s again


def test_interval_timer_keeps_its_remaining_time(tmp_path):
    """An ITIMER_REAL of 2 s, checkpointed 0.3 s in, is saved with what it
    has left; after the restore it fires once that is over, and then every
    200 ms as it was set to."""
    (timer,) = saved_midway(tmp_path, ["itimer", "2000"], "armed\n", "alarm")["itimers"]
    assert timer["which"] == 0 and timer["interval"] == 200_000_000 and not timer["expired"]
    assert 0 < timer["left_ns"] < 1_800_000_000
    started = time.monotonic()
    r = restore(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - started >= timer["left_ns"] / 1e9 + 2 * 0.2     # never early
    assert r.stdout == "alarm 1\nalarm 2\nalarm 3\ninterval 200000 us\n", r.stdout


def test_eventfd_and_timerfd_carried(tmp_path):
    """Eventfds keep their counts and semaphore mode; a timerfd its time
    left and its interval, and a reader blocked on it reads once it fires
    after the restore; a signalfd reads the signal pending since before."""
    proc = saved_midway(tmp_path, ["fds", "2000"], "ready\n", "timerfd")
    kinds = {e["kind"]: e for e in json.loads((tmp_path / "img" / "manifest.json").read_text())["files"]}
    tf = kinds["timerfd"]
    assert tf["interval"] == 200_000_000 and 0 < tf["left_ns"] < 1_800_000_000 and tf["ticks"] == 0
    assert proc["tasks"][0]["restart"]["kind"] == "regs"
    started = time.monotonic()
    r = restore(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - started >= tf["left_ns"] / 1e9      # never early
    assert r.stdout == ("timerfd 1\neventfd 7\nsemaphore 3 then EAGAIN\n"
                        "timerfd again 1, interval 200 ms\n"
                        "signalfd 128: signal 10 from self\nsignalfd then EAGAIN\n"), r.stdout


def test_posix_timers_keep_their_ids_and_remaining_time(tmp_path):
    """POSIX timers keep their ids, sigevents and what they had left: a
    periodic one signals after the restore with its value, a SIGEV_NONE
    one still counts down, and the next timer_create takes the next id."""
    proc = saved_midway(tmp_path, ["ptimer", "2000"], "ready\n", "timer 1")
    signalling, none = proc["posix_timers"]
    assert (signalling["id"], none["id"], proc["next_timer_id"]) == (0, 1, 2)
    assert signalling["interval"] == 200_000_000 and 0 < signalling["left_ns"] < 1_800_000_000
    started = time.monotonic()
    r = restore(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - started >= signalling["left_ns"] / 1e9 + 2 * 0.2     # never early
    assert r.stdout == "".join(f"timer {i}: code SI_TIMER value 42\n" for i in (1, 2, 3)) + \
        "ids 0 1 2, none left ok\n", r.stdout


def test_epoll_interest_list_carried(tmp_path):
    """An epoll_wait blocked on a pipe, an eventfd (edge-triggered) and a
    timerfd (one-shot) wakes when the timer fires after the restore; then
    the level-triggered pipe reports again, the edge and the spent
    one-shot do not."""
    saved_midway(tmp_path, ["epoll", "1500"], "ready\n", "first")
    r = restore(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("first: 1 events, data 300\nthen: 2 events, data 33\n"
                        "again: 1 events, data 11\n"), r.stdout


def test_socketpairs_keep_their_queues(tmp_path):
    """Stream, datagram and seqpacket socketpairs shared by a parent and
    its child, with bytes, datagrams (one carrying credentials) and a
    record queued: the child reads them all after the restore, and the
    parent blocked in read gets the child's answer."""
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["pairs", "15"], "child", 2)
    kinds = [e["kind"] for e in json.loads((image / "manifest.json").read_text())["files"]]
    assert kinds.count("unix") == 6
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "child") == list(range(first[-1] + 1, 16))
    assert r.stdout.split("child 15\n")[1] == ("stream stream bytes\ndgram first from parent\ndgram second\n"
                                                "record rec (3 of 6)\nparent got back\n"), r.stdout


UNIX_AFTER = ("server got to server\nclient got to client\nbacklog got queued before accept\n"
              "then fd with an fd\nthe fd read in the pipe, then 0\norphan got orphan, then 0\n"
              "dgram dgram one from autobound\ndgram dgram two from autobound with a file reading content\n"
              "dgram connected dgram from unnamed with a file reading nested\nreconnected: hello again\nabstract name reached: after\n")


def test_named_unix_sockets_on_tmpfs(tmp_path):
    """A server listening on a tmpfs path with a connection accepted and
    two in its backlog (one whose client closed, one with a pipe end in
    flight), an abstract-named datagram socket with datagrams queued (one
    passing an open file, one a unix socket holding bytes): after the restore everything is received as
    it was sent, the path and the abstract name reach the sockets again
    (what t_ckpt prints run natively, too)."""
    rest = shell_restored(tmp_path, [f"initrd={CPIO}"], f"mount -t tmpfs none /tmp && exec {PROG} unix /tmp 20",
                          "count", 20)
    assert rest == UNIX_AFTER, rest
    files = json.loads((tmp_path / "img" / "manifest.json").read_text())["files"]
    listening = [e for e in files if e["kind"] == "unix" and e["listening"]]
    assert len(listening) == 1 and len(listening[0]["pending"]) == 2 and listening[0]["bound_path"] == "/tmp/s"
    held = {i for e in files if e["kind"] == "unix" for m in e["msg_files"] for i in m} | \
        {i for e in files if e["kind"] == "unix" for _off, fs in e["stream_files"] for i in fs}
    assert sorted(files[i]["kind"] for i in held) == ["file", "pipe", "unix"]


def test_named_unix_socket_on_the_disk(tmp_path, disk):
    """The same with the server's socket file on the root disk."""
    image, first = checkpointed(tmp_path, [f"ubd0={disk}", "rw"], ["unix", "/tmp", "20"], "count", 1)
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 21)), r.stdout + r.stderr
    assert r.stdout.split("count 20\n", 1)[1] == UNIX_AFTER, r.stdout


def test_native_unix_named_mode(tmp_path):
    """t_ckpt's unix mode prints the same lines run on the host."""
    r = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "unix", str(tmp_path), "3"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "count 1\ncount 2\ncount 3\n" + UNIX_AFTER, r.stdout


def test_pending_signals_keep_their_information(tmp_path):
    """Signals pending while blocked (one sigqueue'd with a value, one
    kill'ed) are carried with their siginfo, delivered once unblocked."""
    g = Guest(tmp_path, [f"initrd={CPIO}"], "pending", "1500")
    g.wait_for("sleeping\n")
    r = g.checkpoint(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    g.finish()
    r = restore(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("woke 0\ngot USR2 code 0 value 0 pid-ok 1\ngot USR1 code -1 value 42 pid-ok 1\n"
                        "unblocked\n"), r.stdout


def test_leave_running(tmp_path):
    g = Guest(tmp_path, [f"initrd={CPIO}"], "pipe", "30")
    g.wait_for("child 3\n")
    r = g.checkpoint(tmp_path / "img", "--leave-running")
    assert r.returncode == 0, r.stderr
    out = g.finish()
    assert numbers(out, "child") == list(range(1, 31))
    assert "parent: child reaped, status 7" in out


SYSV_AFTER = ("same ids: 1 1, removed key: No such file or directory\n"
              "shm size 6000 nattch 2 mode 1600 cpid-ok 1\n"
              "msg qnum 4 cbytes 13 qbytes 1000 mode 640 lspid-ok 1\n"
              'msgrcv 2: type 2 "two-a"\nmsgrcv -2: type 1 "one"\nmsgrcv 0: type 2 "two-b"\nmsgrcv 3: type 3 ""\n'
              "msgrcv 0: No message of desired type\n"
              "sem 2 before the child exits: 5\nchild sees: before after\nsems 0 7 0\n"
              "shm: before after child was here\nshm after the last shmdt: Invalid argument\n")
MQUEUE_AFTER = ("attr flags 0 maxmsg 8 msgsize 64 curmsgs 4\nwriter flags O_NONBLOCK\n"
                "got high prio 9\ngot high2 prio 9\ngot mid prio 5\ngot low prio 1\n"
                "unlinked queue: orphan prio 3\nopen /gone: No such file or directory\n"
                "notified: signal 10 code -3 value 77 pid-ok 1\n")


@pytest.mark.parametrize("mode, procs, after", [("sysv", 2, SYSV_AFTER), ("mqueue", 1, MQUEUE_AFTER)])
def test_ipc_native_run(tmp_path, mode, procs, after):
    """The IPC modes, run without a checkpoint, print what the restored
    ones must (the same lines as the program run on the host, which
    `rootfs/cache/progs/t_ckpt sysv 3` shows)."""
    g = Guest(tmp_path, [f"initrd={CPIO}"], mode, "3")
    assert g.finish() == "count 1\ncount 2\ncount 3\n" + after


def test_sysv_ipc_carried(tmp_path):
    """A SysV segment (attached by a parent and its child, its removal
    pending), a semaphore set (one value with a SEM_UNDO adjustment of the
    child, blocked in semop) and a message queue with four messages:
    after the restore the ids are the same, IPC_STAT says what it said,
    the messages come by type in order, the segment holds what was
    written before and is shared again by both processes, the undo is
    applied at the child's exit and the segment goes with its last
    detach."""
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["sysv", "40"], "count", 2)
    doc = json.loads((image / "manifest.json").read_text())
    ipc = doc["ipc"]
    (seg,), (sem,), (msg,) = (ipc[k]["objects"] for k in ("shm", "sem", "msg"))
    assert seg["nattch"] == 2 and seg["mode"] == 0o1600 and seg["key"] == 0 and seg["runs"]
    assert sem["values"] == [0, 7, 5] and [len(m) for m in msg["msgs"]] == [3, 3, 3, 3]
    assert [p["ipc"]["sem_undo"] for p in doc["processes"]] == [[], [[sem["seq"] * 32768 + sem["index"], 2, -5]]]
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 41)), r.stdout + r.stderr
    assert r.stdout.split("count 40\n", 1)[1] == SYSV_AFTER


def test_posix_mqueues_carried(tmp_path):
    """POSIX queues: messages of three priorities, a non-blocking
    write-only descriptor, an unlinked queue held by its descriptor and
    an mq_notify by signal: after the restore mq_getattr says the same,
    messages come in priority order, and a send signals as registered."""
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["mqueue", "40"], "count", 1)
    doc = json.loads((image / "manifest.json").read_text())
    queues = doc["ipc"]["mq"]["queues"]
    assert [(bytes.fromhex(q["name"]), q["unlinked"], len(q["msgs"])) for q in queues] == \
        [(b"ckn", False, 0), (b"ckq", False, 4), (b"gone", True, 1)]
    assert [e["queue"] for e in doc["files"] if e["kind"] == "mqueue"] == [1, 1, 2, 0]
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 41)), r.stdout + r.stderr
    assert r.stdout.split("count 40\n", 1)[1] == MQUEUE_AFTER


def _rewrite(image: Path, change) -> None:
    """Edit the manifest and make its digest match again (a forged image)."""
    doc = json.loads((image / "manifest.json").read_text())
    change(doc)
    data = json.dumps(doc).encode()
    (image / "manifest.json").write_bytes(data)
    (image / "manifest.sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("saved")
    g = Guest(tmp, [f"initrd={CPIO}"], "pipe", "100")
    g.wait_for("child 2\n")
    r = g.checkpoint(tmp / "img")
    assert r.returncode == 0, r.stderr
    g.finish()
    return tmp / "img"


def _copy(saved: Path, tmp: Path) -> Path:
    image = tmp / "img"
    shutil.copytree(saved, image)
    return image


def _refused(image: Path, message: str) -> None:
    r = restore(image)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert "child" not in r.stdout      # no guest ran


def _forged_refused(saved: Path, tmp: Path, forge, message: str) -> None:
    """A copy of the saved image changed by forge is refused with message."""
    image = _copy(saved, tmp)
    _rewrite(image, forge)
    _refused(image, message)


def test_corrupted_memory_refused(saved, tmp_path):
    image = _copy(saved, tmp_path)
    blob = image / "mem-2.bin"
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x40
    blob.write_bytes(bytes(data))
    _refused(image, "corrupted image: mem-2.bin does not match its checksum")


def test_corrupted_manifest_refused(saved, tmp_path):
    image = _copy(saved, tmp_path)
    m = image / "manifest.json"
    data = bytearray(m.read_bytes())
    data[100] ^= 0x01
    m.write_bytes(bytes(data))
    _refused(image, "corrupted image: manifest.json does not match manifest.sha256")


def test_wrong_version_refused(saved, tmp_path):
    image = _copy(saved, tmp_path)
    _rewrite(image, lambda d: d.update(version=99))
    _refused(image, f"checkpoint format version 99, this kernel reads version {IMAGE_VERSION}")


def test_forged_thread_refused(saved, tmp_path):
    """A thread whose tid another task has (here the main thread's own)."""
    image = _copy(saved, tmp_path)
    _rewrite(image, lambda d: d["processes"][0]["tasks"].append(dict(d["processes"][0]["tasks"][0])))
    _refused(image, "processes[0].tasks[1].tid: 1 is taken")


@pytest.mark.parametrize("forge, message", [
    (lambda d: d["net"]["devices"][0].update(name="lo9"), "the network devices differ"),
    (lambda d: d["net"]["routes"].append(dict(d["net"]["routes"][0], ifindex=77)), "ifindex: no such device"),
    (lambda d: d["net"]["devices"][0]["addrs"][0].update(addr="0a00"), "not an address of family 2"),
])
def test_forged_network_state_refused(saved, tmp_path, forge, message):
    image = _copy(saved, tmp_path)
    _rewrite(image, forge)
    _refused(image, message)


def test_forged_shared_anonymous_mapping_refused(saved, tmp_path):
    """A mapping of a shared anonymous object the image does not hold."""
    def forge(d) -> None:
        v = d["processes"][0]["vmas"][0]
        v.update(shared_anon=5, offset=0, runs=[])
    image = _copy(saved, tmp_path)
    _rewrite(image, forge)
    _refused(image, "a mapping of no saved object")


def _forge_zombie(**change):
    """A zombie child of process 1 added to the image, changed so."""
    def forge(d) -> None:
        keep = ("ppid", "pgid", "sid", "comm", "start_ns", "exit_signal", "console_ctty", "creds", "sigactions",
                "shared_pending", "shared_sigq", "keyrings", "cgroup")
        z = {key: d["processes"][1][key] for key in keep}
        z.update(pid=9, ppid=1, zombie={"status": 7 << 8, "usage": [1, 2, 3], "cusage": [0, 0, 0], "io": [0] * 7,
                                        "task": {"tid": 9, "blocked": 0, "pending": 0, "sigq": [], "thread_keyring": 0,
                                                 "sched": d["processes"][1]["tasks"][0]["sched"]}})
        z.update(change)
        d["processes"].append(z)
    return forge


@pytest.mark.parametrize("forge, message", [
    (_forge_zombie(ppid=99), "process 9: no parent 99"),
    (_forge_zombie(ppid=0), "process 9: a zombie with no parent"),
    (_forge_zombie(zombie={"status": 0x17f}), "zombie.status: not an exit status"),
    (_forge_zombie(zombie={"status": 0, "usage": [1, 2, 3], "cusage": [0, 0, 0], "io": [0, 0, 0, 0, 0, 0, -1]}),
     "zombie.io: not a list of 7 integers"),
])
def test_forged_zombie_refused(saved, tmp_path, forge, message):
    """A zombie whose parent is not in the image (or that has none, which
    nothing could reap) or whose status no exit gives: refused before any
    guest runs; so is I/O accounting below 0."""
    image = _copy(saved, tmp_path)
    _rewrite(image, forge)
    _refused(image, message)


def _forge_pipe(kind: str, size: int = 65536, data: str = "", **more):
    """A pipe added to the image, held by an fd of process 1 through a file of kind."""
    def forge(d) -> None:
        d["pipes"].append({"id": len(d["pipes"]), "data": data, "size": size})
        _add_files(d, {"kind": kind, "flags": 0, "pipe": len(d["pipes"]) - 1, **more})
    return forge


@pytest.mark.parametrize("forge, message", [
    (_forge_pipe("fifo", path="/"), "path: not the fifo of its pipe"),
    (_forge_pipe("pipe", 4096, "00" * 5000), "more bytes than the pipe holds"),
])
def test_forged_fifo_refused(saved, tmp_path, forge, message):
    """A fifo's file whose path names no fifo, a pipe holding more bytes
    than its size: refused before any guest runs."""
    image = _copy(saved, tmp_path)
    _rewrite(image, forge)
    _refused(image, message)


def _forge_mount(**change):
    """A mount added to the image: ext4 of a third ubd disk on /mnt, changed so."""
    mount = {"fstype": "ext4", "source": "/dev/ubdc", "path": "/mnt", "flags": 0, "on": 0, "root": "/",
             "dev": [98, 32], "ro": False, "commit": 0}
    return lambda d: d["mounts"].append({**mount, **change})


@pytest.mark.parametrize("forge, message", [
    (_forge_mount(), "dev: no ubd disk 98:32 (is it on the command line?)"),
    (_forge_mount(dev=[1, 3]), "dev: no ubd disk 1:3"),         # /dev/null's numbers
    (_forge_mount(on=1), "path: not on mount 1"),
    (_forge_mount(fstype="rootfs", of=2), "of: not an integer in [0, 2)"),
    (_forge_mount(fstype="rootfs", of=0, root="/nowhere"), "root: not a directory of the filesystem"),
    (_forge_mount(fstype="nfs"), "fstype: 'nfs' is not restored"),
    (_forge_mount(fstype="hostfs", hostfs="/"), "mount says EPERM"),       # no hostfs= to confine it
])
def test_forged_mount_refused(saved, tmp_path, forge, message):
    """A mount of a disk not on the command line (or of no disk), on
    another mount than the one named, a bind mount of no mount before it
    or of no directory, a filesystem type a restore does not make:
    refused before any guest runs."""
    image = _copy(saved, tmp_path)
    _rewrite(image, forge)
    _refused(image, message)


def test_forged_value_refused(saved, tmp_path):
    image = _copy(saved, tmp_path)
    _rewrite(image, lambda d: d["processes"][0]["tasks"][0]["regs"].update(rip=-1))
    _refused(image, "processes[0].tasks[0].regs.rip: not an integer")


@pytest.mark.parametrize("forge, message", [
    (lambda d: d["machine"]["sysctls"].update({"kernel/pid_max": b"7\n".hex()}),
     "machine.sysctls: kernel/pid_max: value refused"),
    (lambda d: d["machine"]["sysctls"].update({"net/ipv4/ip_forward": b"1\n".hex()}),
     "'net/ipv4/ip_forward' is not a sysctl an image carries"),
    (lambda d: d["machine"]["clock"]["ntp"].update(time_constant=99), "machine.clock.ntp.time_constant"),
    (lambda d: d["processes"][1].update(start_ns=1 << 62), "processes[1].start_ns"),
])
def test_forged_machine_state_refused(saved, tmp_path, forge, message):
    """Sysctls, the clocks' state and start times from the image are
    checked as the guest's own writes would be, or against their bounds."""
    _forged_refused(saved, tmp_path, forge, message)


def _forge_block(**block) -> object:
    """The first task restarting by restart_syscall into this wait."""
    def forge(d):
        d["processes"][0]["tasks"][0]["restart"] = {"kind": "block", "block": {"left_ns": 1, **block}}
    return forge


_EPOLL_BLOCK = {"kind": "epoll_masked", "epfd": 3, "events": 4096, "maxevents": 1, "mask": 0}
_SEM_BLOCK = {"kind": "sem", "semid": 0, "sops": 4096, "nsops": 1}


@pytest.mark.parametrize("forge, message", [
    (_forge_block(**dict(_EPOLL_BLOCK, mask=1 << 64)), "block.mask: not an integer in [0, 18446744073709551616)"),
    (_forge_block(**{k: v for k, v in _EPOLL_BLOCK.items() if k != "mask"}), "block.mask missing"),
    (_forge_block(**dict(_EPOLL_BLOCK, maxevents=0)), "block.maxevents: not an integer in [1, "),
    (_forge_block(**dict(_SEM_BLOCK, semid=-1)), "block.semid: not an integer in [0, 2147483648)"),
    (_forge_block(**dict(_SEM_BLOCK, nsops=0)), "block.nsops: not an integer in [1, 4294967296)"),
    (_forge_block(**dict(_SEM_BLOCK, sops=1 << 60)), "block.sops: not an integer in [0, "),
    (_forge_block(**dict(_SEM_BLOCK, left_ns=1 << 62)), "block.left_ns: not an integer in [0, 4611686018427387904)"),
    (_forge_block(**dict(_SEM_BLOCK, kind="semop")), "restart block kind 'semop'"),
])
def test_forged_restart_block_refused(saved, tmp_path, forge, message):
    """A restart block out of its ranges: an epoll wait's mask past 64
    bits or missing, no events; a semtimedop's negative id, no or
    unreadable operations, more time left than any wait has; a kind no
    wait has: refused before any guest runs."""
    _forged_refused(saved, tmp_path, forge, message)


def _forge_ipc(objects=(), queues=(), sem_undo=()) -> object:
    """An image's `ipc` with these SysV semaphore sets and POSIX queues."""
    def forge(d):
        d["ipc"]["sem"]["objects"] = list(objects)
        d["ipc"]["mq"]["queues"] = list(queues)
        d["processes"][0]["ipc"]["sem_undo"] = list(sem_undo)
    return forge


_SEM = {"key": 5, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "mode": 0o600, "seq": 0, "index": 0, "ctime": 0,
        "values": [1], "pids": [0], "otime": 0}
_MQ = {"name": "71", "unlinked": False, "maxmsg": 4, "msgsize": 8, "mode": 0o600, "uid": 0, "gid": 0, "msgs": [],
       "notify": None}


@pytest.mark.parametrize("forge, message", [
    (_forge_ipc([dict(_SEM, values=[40000], pids=[0])]), "values: not a list of  integers in [0, 32768)"),
    (_forge_ipc([_SEM, dict(_SEM, index=1)]), "an index or a key taken twice"),
    (_forge_ipc([_SEM], sem_undo=[[0, 3, -1]]), "sem_undo: semaphore 3 of 0"),
    (_forge_ipc(queues=[dict(_MQ, msgs=[[40000, 0, 0]])]), "more than maxmsg, or priorities out of order"),
    (_forge_ipc(queues=[dict(_MQ, name="2f78")]), "name: not a queue's name"),
    (_forge_ipc(queues=[dict(_MQ, unlinked=True)]), "an unlinked queue no fd holds"),
])
def test_forged_ipc_refused(saved, tmp_path, forge, message):
    """A semaphore value SETVAL refuses, two objects at one index, an undo
    for no semaphore, a message priority mq_send refuses, a name mq_open
    refuses, an unlinked queue nothing holds: refused before any guest runs."""
    image = _copy(saved, tmp_path)
    _rewrite(image, forge)
    _refused(image, message)


def _inode(ino: int, mode: int, **more) -> dict:
    return {"ino": ino, "mode": mode, "uid": 0, "gid": 0, "rdev": 0, "times": [0, 0, 0], "xattrs": [], **more}


D, F = 0o40755, 0o100644


@pytest.mark.parametrize("inodes, message", [
    ([_inode(2, D, entries=[["64", 3]]), _inode(3, D, entries=[["78", 3]])], "a directory linked twice"),
    ([_inode(2, D, entries=[["64", 9]])], "a bad entry"),
    ([_inode(2, D, entries=[["2f", 3]]), _inode(3, F, size=5, runs=[])], "a bad entry"),
    ([_inode(2, D, entries=[]), _inode(3, F, size=5, runs=[])], "an inode no entry reaches"),
    ([_inode(2, F, size=0, runs=[])], "a bad inode"),
    ([_inode(2, D, entries=[["61", 3]]), _inode(3, F, size=5, runs=[[0, 10, 0]])], "runs"),
])
def test_forged_tmpfs_tree_refused(saved, tmp_path, inodes, message):
    """A tmpfs tree that is not one (a loop, an entry to nothing or with a
    slash, an unreachable inode, a file root, data past a file's end) is
    refused before any guest runs."""
    image = _copy(saved, tmp_path)
    tree = {"size": 0, "nr_inodes": 0, "root": 2, "inodes": inodes, "data": "mem-2.bin"}
    _rewrite(image, lambda d: d.update(mounts=[{"fstype": "tmpfs", "source": "none", "path": "/tmp",
                                                "flags": 0, "on": 0, "root": "/", "ro": False, "tmpfs": tree}]))
    _refused(image, message)


def _sock(**more) -> dict:
    return {"kind": "unix", "flags": 2, "type": 1, "shut": 0, "peer_shut": 0, "passcred": False,
            "peercred": None, "connected_once": True, "gone_peer": False, "error": 0, "sndbuf": 4096,
            "rcvbuf": 4096, "rcvbuf_locked": False, "rcvlowat": 1, "opts": [], "linger": [0, 0],
            "rcvtimeo": None, "sndtimeo": None, "bound_dev": 0, "stream": "", "stream_creds": [], "msgs": [],
            "peer": -1, "charged_to": [], **more}


def _add_files(d, *entries, fds=True) -> int:
    """entries appended to files (each held by an fd of process 1 if fds);
    the index of the first."""
    first = len(d["files"])
    for n, e in enumerate(entries):
        d["files"].append(e)
        if fds:
            d["processes"][0]["fds"].append({"fd": 50 + n, "cloexec": False, "open": first + n})
    return first


def test_forged_unix_socket_link_refused(saved, tmp_path):
    """A unix socket whose peer or sender is no unix socket (here a pipe)
    is refused before any guest runs."""
    image = _copy(saved, tmp_path)
    _rewrite(image, lambda d: _add_files(d, _sock(peer=0)))
    _refused(image, "a link to no unix socket")


def _listener(**more) -> dict:
    return _sock(name=b"\0x".hex(), abstract=True, listening=True, backlog=4, connected_once=False, **more)


@pytest.mark.parametrize("forge, message", [
    # a connection in a backlog that an fd holds too
    (lambda d: _add_files(d, _listener(pending=[len(d["files"]) + 1]), _sock()), "held elsewhere"),
    # a file no fd, backlog nor message holds
    (lambda d: _add_files(d, _sock(), fds=False), "a file nothing holds"),
    # a file in flight past the end of files
    (lambda d: _add_files(d, _sock(type=2, msgs=[["61", None, 768]], charged_to=[-1], msg_files=[[999]])),
     "a file in flight that is not in files"),
    (lambda d: _add_files(d, _sock(name=b"/a\0b".hex(), bound_path="/a")), "not a unix socket name"),
    (lambda d: _add_files(d, _sock(name=b"/".hex(), bound_path="/")), "not a free socket inode"),
    (lambda d: _add_files(d, _listener(), _listener()), "an abstract name bound twice"),
    (lambda d: _add_files(d, _listener(type=2)), "a listening socket that could not listen"),
])
def test_forged_named_unix_socket_refused(saved, tmp_path, forge, message):
    """Named and listening unix sockets, their backlogs and the files in
    flight that do not hold together are refused before any guest runs."""
    image = _copy(saved, tmp_path)
    _rewrite(image, forge)
    _refused(image, message)


def _forge_epoll(d) -> None:
    me = len(d["files"])
    d["files"].append({"kind": "epoll", "flags": 2, "entries": [[7, me, 1, 0, 0, 0]]})     # watching itself
    d["processes"][0]["fds"].append({"fd": 51, "cloexec": False, "open": me})


def _forge_locks(d) -> None:
    """Two descriptions of one file, each with a write flock."""
    for fd in (51, 52):
        d["files"].append({"kind": "file", "flags": 0, "path": "/t/bin/t_ckpt", "pos": 0, "locks": [["flock", 1]]})
        d["processes"][0]["fds"].append({"fd": fd, "cloexec": False, "open": len(d["files"]) - 1})


def _forge_nameless(d) -> None:
    """A nameless file's description whose file no entry carries."""
    d["files"].append({"kind": "unlinked", "flags": 2, "dir": "/", "group": 7, "pos": 0})
    d["processes"][0]["fds"].append({"fd": 51, "cloexec": False, "open": len(d["files"]) - 1})


def _forge_relinked(name: str, ino: int):
    """A description of a file by a gone name: its inode by number."""
    def forge(d) -> None:
        d["files"].append({"kind": "file", "flags": 0, "dir": "/", "ino": ino, "name": name, "pos": 0})
        d["processes"][0]["fds"].append({"fd": 51, "cloexec": False, "open": len(d["files"]) - 1})
    return forge


def _forge_nameless_map(d) -> None:
    """A private mapping of a nameless file whose file no entry carries."""
    d["processes"][0]["mm"]["files"].append({"start": 4096, "end": 8192, "origin": 4096, "shared": False,
                                             "maywrite": False, "dir": "/", "group": 9})


def _forge_exe_map(d) -> None:
    d["processes"][0]["mm"]["exe_map"] = 999


def _forge_timer(d) -> None:
    d["processes"][0]["posix_timers"] = [{"id": 0, "clock": 99, "notify": 0, "signo": 10, "value": 0,
                                          "left_ns": 1, "interval": 0, "overrun_last": 0}]


def _forge_inotify(d) -> None:
    d["files"].append({"kind": "inotify", "flags": 0, "uid": 0, "next_wd": 3, "overflow": -1,
                       "watches": [{"wd": 1, "mask": 2, "path": "/"}], "events": [[1, 2, 0, "2f"]]})
    d["processes"][0]["fds"].append({"fd": 52, "cloexec": False, "open": len(d["files"]) - 1})


def _forge_inotify_wd(d) -> None:
    _forge_inotify(d)
    d["files"][-1]["watches"][0]["wd"] = 3      # not below next_wd


def _pty(**change) -> dict:
    termios = {"iflag": 0o2400, "oflag": 5, "cflag": 0o277, "lflag": 0o105073, "line": 0, "ispeed": 15,
               "ospeed": 15, "cc": "031c7f15040001001113" + "1a0012" + "0f171600" + "0000"}
    return {"index": 0, "locked": False, "packet": False, "master_pktstatus": 0, "other_closed": False,
            "buf": "", "node": {"mode": 0o600, "uid": 0, "gid": 0}, "termios": termios, "winsize": "00" * 8,
            "session": 0, "pgrp": 0, "exclusive": False, "lnext": False, "erasing": False, "stopped": False,
            "tco_stopped": False, "pending": "", "rbuf": "", "line_ends": [], "column": 0, "canon_column": 0,
            "held": "", "pktstatus": 0, **change}


def _forge_pty(**change):
    def forge(d):
        d["ptys"] = [_pty(**change)]
        d["files"].append({"kind": "ptmx", "flags": 2, "pty": 0, "path": "/dev/ptmx"})
        d["processes"][0]["fds"].append({"fd": 53, "cloexec": False, "open": len(d["files"]) - 1})
    return forge


def _forge_pty_termios(d) -> None:
    _forge_pty()(d)
    d["ptys"][0]["termios"]["line"] = 256


def _forge_pty_no_master(d) -> None:
    d["ptys"] = [_pty()]


def _forge_tcp(d) -> None:
    """A TCP connection whose far end is itself."""
    me = len(d["files"])
    d["files"].append({"kind": "inet", "flags": 2, "family": 2, "type": 1, "protocol": 6, "uid": 0,
                       "opts": [], "ints": [], "groups": [], "linger": [0, 0], "rcvtimeo": None, "sndtimeo": None,
                       "local": [bytes(10).hex() + "ffff7f000001", 5000], "remote": None, "saddr": None,
                       "in_table": False, "error": 0, "sndbuf": 16384, "rcvbuf": 131072, "rcvlowat": 1,
                       "ttl": -1, "tos": 0, "mcast_ttl": 1, "hops": -1, "mcast_hops": -1, "bound_dev": 0, "mc_index": 0, "mc_addr": "00000000",
                       "rcvbuf_locked": False, "listening": False, "bound_port": True, "bound_addr": True,
                       "v6only": False, "state": 1, "sock_state": 3, "shut": 0, "backlog": 0, "maxseg": 0,
                       "bytes_received": 0, "bytes_acked": 0, "rx": "", "far_closed": False,
                       "fin_received": False, "nat_reset": False, "tcp_ints": [], "congestion": b"cubic".hex(),
                       "peer": me})
    d["processes"][0]["fds"].append({"fd": 52, "cloexec": False, "open": me})


def _forge_udp(**change):
    """A UDP-Lite socket bound to port 5000 (a UDP one with protocol 17)."""
    def forge(d) -> None:
        d["files"].append({"kind": "inet", "flags": 2, "family": 2, "type": 2, "protocol": 136, "uid": 0,
                           "opts": [], "ints": [], "groups": [], "linger": [0, 0], "rcvtimeo": None, "sndtimeo": None,
                           "local": [bytes(10).hex() + "ffff7f000001", 5000], "remote": None,
                           "saddr": None, "in_table": True, "error": 0, "sndbuf": 16384,
                           "rcvbuf": 131072, "rcvlowat": 1, "ttl": -1, "tos": 0, "mcast_ttl": 1,
                           "hops": -1, "mcast_hops": -1, "bound_dev": 0, "mc_index": 0, "mc_addr": "00000000", "rcvbuf_locked": False,
                           "listening": False, "bound_port": True, "bound_addr": True, "v6only": False,
                           "shut": 0, "cork": 1, "drops": 0, "rxq": [], "pending": None,
                           "pcslen": 0, "pcrlen": 0, "pcflag": 0, "peer": -1, **change})
        d["processes"][0]["fds"].append({"fd": 52, "cloexec": False, "open": len(d["files"]) - 1})
    return forge


def _forge_accept_q(d) -> None:
    """A listener whose queue holds a connection an fd also holds."""
    _forge_tcp(d)
    conn = d["files"][-1]
    lst = dict(conn, state=10, sock_state=1, listening=True, backlog=4, peer=-1, accept_q=[len(d["files"]) - 1])
    d["files"].append(lst)
    d["processes"][0]["fds"].append({"fd": 53, "cloexec": False, "open": len(d["files"]) - 1})
    conn["peer"] = -1


@pytest.mark.parametrize("forge, message", [
    (_forge_epoll, "a bad entry for fd 7"),
    (_forge_pty(index=1 << 20), "ptys[0].index: not an integer in [0, 1048576)"),
    (_forge_pty(line_ends=[[3, 0]]), "ptys[0].line_ends: not a list of 2-integer lists"),   # past rbuf
    (_forge_pty(winsize="00"), "ptys[0].winsize: not 8 bytes"),
    (_forge_pty_termios, "termios.line: not an integer in [0, 256)"),
    (_forge_pty_no_master, "pty 0: no file holds its master"),
    (_forge_inotify, "events: a bad event"),        # a name with a slash
    (_forge_inotify_wd, "watches[0].wd: not an integer in [1, 3)"),
    (_forge_timer, "timer_create says EINVAL"),
    (_forge_tcp, "peer: not the far end of a connection"),
    (_forge_accept_q, "a connection not accepted that is held elsewhere"),
    (_forge_udp(pcslen=3), "a checksum coverage setsockopt refuses"),
    (_forge_udp(protocol=17, pending=[bytes(16).hex(), [bytes(16).hex(), 53], "00" * 65508, 64, 0]),
     "pending.data: more than a datagram holds"),
    (_forge_udp(pending=[bytes(16).hex(), None, "00", 64, 0]), "a corked datagram with no addresses"),
    (_forge_udp(groups=[[bytes(10).hex() + "ffff0a000001", 1]]), "groups[0]: not a multicast group"),
    (_forge_locks, "locks: locks that conflict"),
    (_forge_nameless, "unlinked group 7: no description carries its file"),
    (_forge_relinked(b"x".hex(), 2), ".ino: no such file"),         # inode 2: the root, a directory
    (_forge_relinked(b"a/b".hex(), 12), ".name: not a file name"),
    (_forge_nameless_map, "unlinked group 9: no description carries its file"),
    (_forge_exe_map, "exe_map: not an integer in"),
])
def test_forged_epoll_timer_and_socket_refused(saved, tmp_path, forge, message):
    """An epoll entry on no pollable file of the image (here itself), a
    timer on a clock timer_create refuses, a TCP connection that is its
    own far end, a UDP-Lite coverage setsockopt refuses, a corked
    datagram too big for IPv4 or with no destination, a file by a gone
    name whose inode is a directory or whose
    name has a slash, an inotify event named with a
    slash or a watch numbered past the next, a pty out of devpts's range,
    with canonical line ends past its buffer, a short window size, a c_line
    past a byte or no master: refused before any guest runs."""
    image = _copy(saved, tmp_path)
    _rewrite(image, forge)
    _refused(image, message)


@pytest.mark.parametrize("script, refusal", [
    (f"echo x > /made; exec {PROG} socket 20", "checkpoint: changes to the initramfs root"),
    (f"mount -t tmpfs none /tmp && exec {PROG} unwatched 20",
     "checkpoint: process 1 (t_ckpt): fd 3: inotify watch 1 on an inode with no name (or on proc or sysfs) "
     "not supported"),
    (f"exec {PROG} hungup 20", "checkpoint: pty 0 whose master is closed not supported"),
    (f"exec {PROG} landlocked 20", "checkpoint: process 1 (t_ckpt): a Landlock domain not supported"),
    (f"mount -t tmpfs none /tmp && exec {PROG} accounting 20",
     "checkpoint: process accounting (acct), whose file a restore would not write again not supported"),
    (f"exec {PROG} pfilter 20", "a packet socket with a socket filter not supported"),
])
def test_unsupported_refused_and_machine_goes_on(tmp_path, script, refusal):
    """A machine holding what a checkpoint cannot save yet (an initramfs
    root the guest changed, which a restore would unpack afresh; an
    inotify watch on a nameless inode; a pty whose master is closed; a
    Landlock sandbox, which a restore would drop; process accounting; a
    packet socket's filter, which is not saved) is refused, named,
    writes no image, and keeps running."""
    g = Guest(tmp_path, [f"initrd={CPIO}"], "-c", script, init="/bin/sh")
    g.wait_for("count 2\n")
    r = g.checkpoint(tmp_path / "x")
    assert r.returncode != 0
    assert refusal in r.stderr
    assert not (tmp_path / "x" / "manifest.json").exists()
    assert numbers(g.finish(), "count") == list(range(1, 21))


def test_busybox_shell_loop_with_ctty(tmp_path):
    """A shell in its own session on the console (setsid -c), forking and
    exec'ing `sleep` each tick: after the restore it counts on, and the
    console is still its controlling tty (/dev/tty opens)."""
    loop = 'i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo tick $i; sleep 0.1; done; echo ctty > /dev/tty && echo ok'
    rest = shell_restored(tmp_path, [f"initrd={CPIO}"], f"setsid -c sh -c '{loop}'; echo done", "tick", 40)
    assert rest == "ctty\nok\ndone\n"



def test_console_tty_and_line_files_carried(tmp_path):
    """A shell in its own session on the console holding /dev/tty (as an
    interactive shell does) and a second line's /dev/tty1 (con1=null, as
    a getty holds its line): after the restore both write on, on the
    restoring boot's lines, and the manifest names the line."""
    loop = ('exec 9>/dev/tty 8<>/dev/tty1; i=0; while [ $i -lt 12 ]; do i=$((i+1)); echo tick $i; sleep 0.1; done; '
            'echo via-tty >&9 && echo to-line >&8 && echo ok')
    rest = shell_restored(tmp_path, [f"initrd={CPIO}", "con1=null"], f"setsid -c sh -c '{loop}'; echo done", "tick", 12)
    assert rest == "via-tty\nok\ndone\n"
    files = json.loads((tmp_path / "img" / "manifest.json").read_text())["files"]
    assert sorted((f["line"], f["path"]) for f in files if f["kind"] == "line") == [("console", "/dev/tty"),
                                                                                    ("tty1", "/dev/tty1")]

def test_proc_and_sysfs_mounted_again(tmp_path):
    """/proc and /sys that init mounted are mounted again by the restore,
    where they were and with their flags: the shell reads them after."""
    script = ("mount -t proc -o nosuid,nodev proc /proc && mount -t sysfs sysfs /sys && i=0; "
              "while [ $i -lt 30 ]; do i=$((i+1)); echo count $i; sleep 0.1; done; "
              "grep -E '^(proc|sysfs) ' /proc/mounts | cut -d' ' -f1-4; cat /proc/1/comm; "
              "[ -d /sys/kernel ] && echo sys ok")
    g = Guest(tmp_path, [f"initrd={CPIO}"], "-c", script, init="/bin/sh")
    g.wait_for("count 3\n")
    r = g.checkpoint(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    first = numbers(g.finish(), "count")
    doc = json.loads((tmp_path / "img" / "manifest.json").read_text())
    assert [(m["fstype"], m["path"]) for m in doc["mounts"]] == [("proc", "/proc"), ("sysfs", "/sys")]
    r = restore(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 31)), r.stdout + r.stderr
    assert r.stdout.endswith("proc /proc proc rw,nosuid,nodev,relatime\nsysfs /sys sysfs rw,relatime\n"
                             "sh\nsys ok\n"), r.stdout


def test_disk_and_bind_mounts_carried(tmp_path):
    """A second disk mounted (ext4 on /dev/ubdb), a directory of it bound
    elsewhere and made read-only, nosuid, nodev and noexec, a tmpfs on a
    directory of the disk bound elsewhere too, /proc/sys bound, and a file
    of the disk open: after the restore
    the mounts are there again in their order with their flags, the file
    goes on at its offset, the bind mount still refuses writes, and the
    disk is clean for e2fsck once the guest is done."""
    disk2 = tmp_path / "disk2.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(disk2), "16M"], check=True, capture_output=True)
    state = "grep -E ' /(mnt|home|root|run)' /proc/mounts; cat /home/f; ls /home /root /run/kernel | head -9"
    script = ("mount -t proc proc /proc && mount -t ext4 /dev/ubdb /mnt && mkdir -p /mnt/sub/t && "
              "echo kept > /mnt/sub/f && mount --bind /mnt/sub /home && "
              "mount -o remount,bind,ro,nosuid,nodev,noexec /home && mount -t tmpfs -o size=1m none /mnt/sub/t && "
              "mount --bind /mnt/sub/t /root && mount --bind /proc/sys /run && "
              f"echo in the tmpfs > /mnt/sub/t/x; {state}; echo ===; {PROG} count /mnt/ckpt.log 30; "
              f"{state}; cat /mnt/sub/t/x; touch /home/new 2>/dev/null || echo read-only")
    rest = shell_restored(tmp_path, [f"initrd={CPIO}", f"ubd1={disk2}"], script, "count", 30)
    before = (tmp_path / "out1.txt").read_text().split("===\n")[0]
    assert "/dev/ubdb /home ext4 ro,nosuid,nodev,noexec" in before, before
    size = sum(len(b"count %d\n" % i) for i in range(1, 31))
    assert rest == f"offset {size}\nfile ok 30\n" + before + "in the tmpfs\nread-only\n", rest
    doc = json.loads((tmp_path / "img" / "manifest.json").read_text())
    assert [(m["fstype"], m["path"], m["on"], m["root"], m.get("of")) for m in doc["mounts"]] == [
        ("proc", "/proc", 0, "/", None), ("ext4", "/mnt", 0, "/", None), ("ext4", "/home", 0, "/sub", 3),
        ("tmpfs", "/mnt/sub/t", 3, "/", None), ("tmpfs", "/root", 0, "/", 5), ("proc", "/run", 0, "/sys", 2)]
    fsck = subprocess.run(["e2fsck", "-fn", str(disk2)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout


def test_tmpfs_tree_carried(tmp_path):
    """A tmpfs on /tmp with its size limit, a file with a hole and data
    after it, a hard link, a symlink, a subdirectory, a device node,
    modes, owners and times: after the restore the shell, which holds one
    of its files open, finds all of it as it was before the checkpoint."""
    setup = ("mount -t tmpfs -o size=8m,mode=1777 none /tmp && mount -t proc proc /proc && cd /tmp && "
             "mkdir -p d/e && echo hello > d/f && ln d/f hard && ln -s d/f sym && mknod null c 1 3 && "
             "dd if=/dev/zero of=sparse bs=1k seek=1024 count=1 2>/dev/null && echo tail >> sparse && "
             "chown 7:8 d/e && chmod 640 d/f && touch -d '2001-02-03 04:05:06' d/f && exec 3<d/f")
    state = ("echo state; stat -c '%n %A %u %g %h %s %b %i %Y %t,%T' . d d/e d/f hard sym null sparse; "
             "readlink sym; tail -c 5 sparse; df -k /tmp | tail -1 | tr -s ' ' | cut -d' ' -f2-4")
    script = (f"{setup}; {state}; i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo count $i; sleep 0.1; done; "
              f"{state}; read -r line <&3; echo \"fd: $line\"; echo new > made; cat made")
    g = Guest(tmp_path, [f"initrd={CPIO}"], "-c", script, init="/bin/sh")
    g.wait_for("count 3\n")
    r = g.checkpoint(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    before = g.finish()
    first = numbers(before, "count")
    was = before.split("count 1\n")[0]
    assert was.startswith("state\n. drwxrwxrwt 0 0 3 ") and "d/f -rw-r----- 0 0 2 6 " in was, before
    r = restore(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 31)), r.stdout + r.stderr
    now, rest = r.stdout.split("count 30\n", 1)[1].split("fd: ")
    assert now == was
    assert rest == "hello\nnew\n"


def test_stopped_machine_says_go_first(tmp_path):
    from arch_um.mconsole import request
    g = Guest(tmp_path, [f"initrd={CPIO}"], "spin", "100")
    g.wait_for("spin 2\n")
    sock = str(g.uml / "ck" / "mconsole")
    assert request(sock, "stop", 30) == (0, "")
    r = g.checkpoint(tmp_path / "img")
    assert r.returncode != 0 and "the machine is stopped (mconsole stop): go first" in r.stderr
    assert request(sock, "go", 30) == (0, "")
    assert g.finish().endswith("sum ok\n")


def test_threads_carried(tmp_path):
    """A process of four threads: the main one counting, one holding a
    robust mutex and waiting on a condition variable, one waiting with a
    signal pending for it alone, one computing in guest code.  After the
    restore each goes on with its own thread-local value, registers,
    mask and pending signal; the robust mutex's owner exits holding it."""
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["threads", "30"], "count", 1)
    proc = json.loads((image / "manifest.json").read_text())["processes"][0]
    assert len(proc["tasks"]) == 4
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 31)), r.stdout + r.stderr
    assert r.stdout.split("count 30\n")[1] == (
        "holder tls 101 tid same\nmasked tls 202 pending 1 handled here 1\nspinner tls 303 x 2.0\n"
        "main tls 7, robust mutex EOWNERDEAD\n"), r.stdout


THREADED_PY = r"""
import sys, threading, time
N, STEPS = 4, 6000000
out = [0] * N
gate = threading.Barrier(N + 1)
done = threading.Condition()
def work(i):
    gate.wait()
    s = 0
    for k in range(STEPS):
        s = (s * 31 + k + i) % 1000003
        if k % 20000 == 0:
            time.sleep(0.005)
    with done:
        out[i] = s
        done.notify_all()
threads = [threading.Thread(target=work, args=(i,)) for i in range(N)]
for t in threads:
    t.start()
gate.wait()
print("started", flush=True)
for t in threads:
    t.join()
print(" ".join(map(str, out)), threading.active_count(), flush=True)
"""


def debian_python_carried(tmp_path: Path, debian: Path, program: str) -> dict:
    """Debian's python3 running PROGRAM checkpointed once it printed
    "started" and restored from the image: it finishes with the output of
    a run never stopped (the host's python3 runs the same program); the
    manifest."""
    want = subprocess.run(["python3", "-c", program], capture_output=True, text=True, timeout=120).stdout
    g = Guest(tmp_path, [f"ubd0={tmp_path / 'g.cow'},{debian / 'root.img'}", "rw"],
              "-c", f"exec python3 -c '{program}'", init="/bin/bash")
    g.wait_for("started\n", timeout=120)
    time.sleep(0.3)
    r = g.checkpoint(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    out = g.finish()
    r = restore(tmp_path / "img")
    assert r.returncode == 0, r.stderr
    assert out + r.stdout == want, r.stdout + r.stderr[-3000:]
    return json.loads((tmp_path / "img" / "manifest.json").read_text())


def test_debian_python_threads_carried(tmp_path, debian):
    """Debian's python3 running four threads (a barrier, sleeps, the GIL's
    condition variables, a Condition) checkpointed mid-run and restored
    from the image: it finishes with the output of a run never stopped
    (the host's python3 runs the same program)."""
    doc = debian_python_carried(tmp_path, debian, THREADED_PY)
    assert len(doc["processes"][0]["tasks"]) == N_PY_TASKS


N_PY_TASKS = 5      # the main thread and the four workers


MULTIPROCESSING_PY = """
import multiprocessing as mp, time
def work(x):
    s = 0
    for k in range(100000):
        s = (s * 31 + k + x) % 1000003
        if k % 10000 == 0:
            time.sleep(0.08)       # the pool runs 1.6 s: a checkpoint lands mid-run
    return s
if __name__ == "__main__":
    ctx = mp.get_context("fork")
    total = ctx.Value("i", 0)
    with ctx.Pool(3) as pool:
        print("started", flush=True)
        res = pool.map(work, range(6), chunksize=1)
    with total.get_lock():
        total.value = sum(res) % 1000
    print(res, total.value, flush=True)
"""


def test_debian_python_multiprocessing_carried(tmp_path, debian):
    """Debian's python3 with a multiprocessing pool of three forked
    workers (queues over pipes, SemLock semaphores: files sem_open made
    and sem_unlink removed, mapped by every process; /dev/null open in
    each worker) and a shared Value (an arena: a file of /dev/shm
    unlinked while open, mapped shared), checkpointed mid-run and
    restored: it finishes with the output of a run never stopped."""
    doc = debian_python_carried(tmp_path, debian, MULTIPROCESSING_PY)
    assert len(doc["processes"]) >= 4 and doc.get("shared_anon")


@pytest.mark.parametrize("args, last_line, target_args", [
    (["count", "/ckpt.log", "40"], "file ok 40", []),
    (["dirty", "40"], "memory ok", []),
    # the target restores without the processes it built during the pre-copy
    # (made with the seccomp filter, which this boot goes without)
    (["dirty", "40"], "memory ok", ["seccomp=off"]),
    (["churn", "40"], "churn ok", []),     # pages dropped, written by the kernel, moved: the write log sees each
    (["sysv", "40"], "shm after the last shmdt: Invalid argument", []),     # the ipc blob down the stream
    # processes born, exec'd and gone between the rounds and the final copy:
    # the target's prebuilt ones adopted, given up or made at the restore
    (["spawner", "40"], "spawner ok", []),
])
def test_live_migration_keeps_every_byte(tmp_path, disk, args, last_line, target_args):
    """A guest appending to a file on its disk every 100 ms (or rewriting
    64 MiB of memory at 10 MB/s), migrated while it runs to a `umlpy
    restore --listen` on a unix socket: the source halts, the target
    counts on from where it was, the file holds every count once, in
    order (every word of the memory what was last written), and the
    migration reports its downtime."""
    shm = set(Path("/dev/shm").glob("umlpy-migration-*"))
    out, said = _migrated(tmp_path, [f"ubd0={disk}", "rw"], args, target_args)
    assert re.search(r"pre-copy rounds .* downtime \d+\.\d ms", said), said
    assert out.endswith(last_line + "\n"), out
    assert set(Path("/dev/shm").glob("umlpy-migration-*")) <= shm     # its image went once restored


def _migrated(tmp_path: Path, root: list[str], args: list[str], target_args: list[str],
              through=None, meanwhile=None) -> tuple[str, str]:
    """Boot t_ckpt ARGS (counting to 40), migrate it at count 3 to a
    `umlpy restore --listen`, through(guest, socket) the socket to give
    `migrate` instead; meanwhile(target) while the target runs it.  The
    source halts, the target counts on from where it was; returns what
    the target printed and what `migrate` said."""
    sock = tmp_path / "mig.sock"
    target = subprocess.Popen([str(UMLPY), "restore", "--kernel", str(IMAGE), "--listen", str(sock),
                               "umid=ck2", f"uml_dir={tmp_path / 'uml2'}", *target_args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    g = Guest(tmp_path, root, *args)
    try:
        g.wait_for("count 3\n")
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert time.monotonic() < deadline and target.poll() is None
            time.sleep(0.05)
        r = subprocess.run([str(UMLPY), "migrate", "--uml-dir", str(g.uml), "ck",
                            str(sock if through is None else through(g, sock))],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        first = numbers(g.finish(), "count")
        assert g.p.returncode == 0 and "System halted after migration" in g.err.read_text()
        if meanwhile is not None:
            meanwhile(target)
        out, err = target.communicate(timeout=120)
    finally:
        if target.poll() is None:
            target.kill()
    assert target.returncode == 0, err
    assert first and numbers(out, "count") == list(range(first[-1] + 1, 41)), out + err
    return out, r.stdout


def test_blob_crc_joined_from_its_pieces():
    """The migration target's CRC-32C of a memory blob, joined from its
    pieces' (checkpoint/crcjoin.py), is the CRC of the whole, for pieces
    of every length the receiver makes (1 MiB, a page, a partial last one,
    none)."""
    import random

    import crc32c
    from umlpy.checkpoint import crcjoin
    rnd = random.Random(7)
    for sizes in ([1 << 20, 1 << 20, 4096], [4096], [0, 5], [5, 0], [1, 1, 1], [3 << 19, 12345, 1 << 20]):
        pieces = [rnd.randbytes(n) for n in sizes]
        crc = 0
        for p in pieces:
            crc = crcjoin.join(crc, crc32c.crc32c(p), len(p))
        assert crc == crc32c.crc32c(b"".join(pieces)), sizes
    by = crcjoin.shift(1 << 20)
    a, b = rnd.randbytes(777), rnd.randbytes(1 << 20)
    assert crcjoin.join(crc32c.crc32c(a), crc32c.crc32c(b), 1 << 20, by) == crc32c.crc32c(a + b)


def _relay(listen: Path, target: Path, extra: list[tuple[dict, bytes]]) -> None:
    """A man in the middle of a migration: what the source sends goes on
    to the target, `extra` right after the greeting, and the target's
    answer back."""
    from arch_um import migwire
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(listen))
    server.listen(1)

    def run() -> None:
        src = migwire.Conn(server.accept()[0])
        server.close()
        dst = migwire.connect(str(target))
        dst.send(*src.recv())
        for head, data in extra:
            dst.send(head, data)
        while True:
            head, data = src.recv(120)
            dst.send(head, data)
            if head["t"] == "final":
                break
        src.send(*dst.recv(120))
    threading.Thread(target=run, daemon=True).start()


def test_migration_target_builds_only_where_a_guest_may_live(tmp_path, disk):
    """Pages a stream names where no guest memory may be (the stub's page,
    where the restore moves the vDSO through, the null page, the top of
    the address space) and for a process that does not exist: the target,
    which builds its processes' host memory as the pages come, leaves out
    or gives up each, and the guest goes on with its memory intact; no
    host process of the target maps the top page afterwards, nor those it
    was sent where the guest has no mapping.  A page sent
    in the pre-copy that the final image has as zeros (here: one the
    guest never wrote) reads as zeros."""
    from arch_um.memory import TASK_SIZE
    from arch_um.stub import STUB_BASE
    from hostview import alive, children
    from umlpy.checkpoint.restore import TEMP
    page = b"\xa5" * 4096

    def through(g: Guest, sock: Path) -> Path:
        zeros = int(re.search(r"zeros at (0x[0-9a-f]+)", g.out.read_text())[1], 16)
        extra = [({"t": "pre", "blob": "mem-1.bin", "addr": a, "count": 1}, page)
                 for a in (STUB_BASE, TEMP, 0, TASK_SIZE - 4096, zeros + 8192)]
        extra.append(({"t": "pre", "blob": "mem-4000.bin", "addr": 1 << 30, "count": 1}, page))
        # pages where the guest has nothing, the second run's first page new and its second not
        extra += [({"t": "pre", "blob": "mem-1.bin", "addr": a, "count": n}, page * n)
                  for a, n in ((1 << 30, 1), ((1 << 30) - 4096, 2))]
        _relay(tmp_path / "relay.sock", sock, extra)
        return tmp_path / "relay.sock"

    def meanwhile(target: subprocess.Popen) -> None:
        hosts = [h for h in children(target.pid) if alive(h)]
        assert len(hosts) == 1, hosts      # the guest's one process; the template and pid 4000's gone
        maps = Path(f"/proc/{hosts[0]}/maps").read_text()
        assert f"{TASK_SIZE - 4096:x}-" not in maps and f"{(1 << 30) - 4096:x}-" not in maps, maps

    out, _said = _migrated(tmp_path, [f"ubd0={disk}", "rw"], ["dirty", "40", "16"], [], through, meanwhile)
    assert out.endswith("memory ok\n"), out


def test_migration_to_a_failing_target_goes_on_here(tmp_path):
    """A target that hangs up after the greeting: `migrate` fails saying
    so, and the machine goes on counting where it is."""
    sock = tmp_path / "bad.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock))
    server.listen(1)

    def hang_up() -> None:
        c, _ = server.accept()
        c.recv(4096)
        c.close()
    th = threading.Thread(target=hang_up, daemon=True)
    th.start()
    g = Guest(tmp_path, [f"initrd={CPIO}"], "pipe", "30")
    g.wait_for("child 3\n")
    r = subprocess.run([str(UMLPY), "migrate", "--uml-dir", str(g.uml), "ck", str(sock)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "migrate:" in r.stderr and "kernel bug" not in r.stderr, r.stderr
    out = g.finish()
    assert numbers(out, "child") == list(range(1, 31))
    assert "parent: child reaped, status 7" in out
    server.close()


def test_network_configuration_carried(tmp_path):
    """eth0=user configured by hand in the guest (up, two addresses, a
    default route, an MTU, a sysctl): after the restore, whose boot makes
    eth0 down and bare, `ip` shows the same and the guest reaches a host
    server through the gateway again."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "x.txt").write_text("hello from the host\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    show = "ip addr show eth0 | grep -v valid_lft; ip route; ip link show lo | head -1; " \
           "cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/net/ipv4/ip_unprivileged_port_start"
    script = ("mount -t proc proc /proc; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0; "
              "ip addr add 10.0.2.99/24 dev eth0; ip route add default via 10.0.2.2; ip link set lo mtu 1234; "
              f"echo '40000 50000' > /proc/sys/net/ipv4/ip_local_port_range; "
              f"echo 80 > /proc/sys/net/ipv4/ip_unprivileged_port_start; {show}; echo ===; "
              "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo count $i; sleep 0.1; done; "
              f"{show}; wget -q -O - http://10.0.2.2:{server.server_port}/x.txt")
    try:
        rest = shell_restored(tmp_path, [f"initrd={CPIO}", "eth0=user"], script, "count", 30)
    finally:
        server.shutdown()
    before = (tmp_path / "out1.txt").read_text().split("===\n")[0]
    assert "inet 10.0.2.99/24" in before and "mtu 1234" in before and "40000\t50000\n80\n" in before, before
    assert rest == before + "hello from the host\n"


def test_restored_machine_reboots_afresh(tmp_path, disk):
    """A restored machine that reboots boots its init from the disk, as
    the machine it was taken from would: it is not restored again."""
    script = ("if [ -e /rebooted ]; then echo second boot; exec poweroff -f; fi; "
              "i=0; while [ $i -lt 20 ]; do i=$((i+1)); echo count $i; sleep 0.1; done; "
              "touch /rebooted; sync; reboot -f")
    rest = shell_restored(tmp_path, [f"ubd0={disk}", "rw"], script, "count", 20)
    assert rest == "second boot\n", rest


def test_checkpoint_waits_for_a_vfork_child_to_exec(tmp_path):
    """A checkpoint asked for while a vfork's child runs (its parent waiting
    on it, sharing its memory) waits until the child has exec'd, as Linux's
    freezer does, rather than refusing; the restored parent counts on and
    reaps the child."""
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["vfork", "12"], "count", 2)
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert "child exited 0" in r.stdout


def test_inet_sockets_on_loopback_carried(tmp_path):
    """A TCP listener with an accepted connection and bytes queued both
    ways and a connection not yet accepted (its server end in no fd, with
    bytes queued), and a UDP socket on ::1 with datagrams queued: after the restore
    every byte and datagram is read as a run never stopped reads it (the
    program run natively says the same), the listener takes a new
    connection, and a half-close reaches the far end."""
    want = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "inet", "30"],
                          capture_output=True, text=True, timeout=60).stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["inet", "30"], "count", 1)
    kinds = [e["kind"] for e in json.loads((image / "manifest.json").read_text())["files"]]
    assert kinds.count("inet") == 7
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert "".join(f"count {i}\n" for i in first) + r.stdout == want, r.stdout + r.stderr


def test_tcp_bytes_held_back_carried(tmp_path):
    """Bytes MSG_MORE holds back on a loopback connection (pushed at the
    latest 200 ms later) are saved with the time they have left: a
    checkpoint taken while some are held (--leave-running, again until
    one is) restores to a run where every byte comes, in order, none
    twice, as in the run that went on."""
    g = Guest(tmp_path, [f"initrd={CPIO}"], "tcpheld", "30")
    g.wait_for("count 3\n")
    held = None
    for i in range(20):
        image = tmp_path / f"img{i}"
        r = g.checkpoint(image, "--leave-running")
        assert r.returncode == 0, r.stderr
        corked = [e for e in json.loads((image / "manifest.json").read_text())["files"] if e.get("corked")]
        if corked:
            held = image
            assert 0 <= corked[0]["cork_left_ns"] <= 200_000_000
            break
    assert held is not None
    want = "tcp bytes: 61 of 61, in order: yes\n"
    assert g.finish().endswith(want)
    r = restore(held)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(want), r.stdout


def test_corked_udp_udplite_and_tcp_cork_carried(tmp_path):
    """The datagram UDP_CORK and MSG_MORE are building stays unsent over
    the restore and leaves whole when the cork goes off; UDP-Lite's
    coverages are kept (a datagram covering too little is dropped); and
    TCP_CORK still holds a write back.  Output as the program's run
    natively."""
    want = subprocess.run([str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt"), "corked", "12"],
                          capture_output=True, text=True, timeout=60).stdout
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["corked", "12"], "count", 1)
    socks = [e for e in json.loads((image / "manifest.json").read_text())["files"] if e["kind"] == "inet"]
    assert [e["protocol"] for e in socks].count(136) == 2
    assert any(e.get("pending") for e in socks)
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert "".join(f"count {i}\n" for i in first) + r.stdout == want, r.stdout + r.stderr


def test_nat_connection_reset_on_restore(tmp_path):
    """A TCP connection through eth0=user to a host server is reset by the
    restore, as after a network outage: the guest's read says ECONNRESET."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    port = server.getsockname()[1]
    try:
        image, first = checkpointed(tmp_path, [f"initrd={CPIO}", "eth0=user", "ip=dhcp"],
                                    ["nat", "30", str(port)], "count", 1)
        r = restore(image)
    finally:
        server.close()
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("count 30\n")[1] == "read -1 Connection reset by peer\n", r.stdout


def test_shared_anonymous_memory_carried(tmp_path):
    """Shared anonymous memory and /dev/zero mapped shared, shared by a
    parent and its child: after the restore what the child writes, the
    parent sees, beside what was there before the checkpoint."""
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["shanon", "30"], "child", 2)
    manifest = json.loads((image / "manifest.json").read_text())
    assert len(manifest["shared_anon"]) == 2        # one object each, however many map it
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "child") == list(range(first[-1] + 1, 31))
    assert r.stdout.split("child 30\n")[1] == \
        "parent sees: before / from the child / zero before / child wrote\n", r.stdout


SCHED_AFTER = ("main: nice 10 policy 3 reset 1 slack 123456\nthread: nice 15 policy 5 reset 0 slack 7777\n"
               "child: nice 10 policy 3 reset 0 slack 123456\n")


def test_native_sched_and_keys_modes(tmp_path):
    """The sched and keys modes run natively print what the restored
    guests must (keys only where the host lets a root process use its
    keyrings: a container's seccomp profile may refuse keyctl)."""
    prog = str(ROOT / "rootfs" / "cache" / "progs" / "t_ckpt")
    r = subprocess.run([prog, "sched", "1"], capture_output=True, text=True, timeout=60)
    assert r.stdout == "count 1\n" + SCHED_AFTER
    r = subprocess.run([prog, "keys", "1"], capture_output=True, text=True, timeout=60)
    if r.returncode == 0 and subprocess.run(["id", "-u"], capture_output=True, text=True).stdout == "0\n":
        assert r.stdout == "count 1\n" + KEYS_AFTER


def test_scheduling_attributes_carried(tmp_path):
    """Nice values, policies (SCHED_BATCH with reset-on-fork, SCHED_IDLE)
    and timer slacks, each thread's own: after the restore each thread
    finds its own, and a child forked then inherits them as sched_fork
    gives them."""
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["sched", "12"], "count", 1)
    tasks = json.loads((image / "manifest.json").read_text())["processes"][0]["tasks"]
    assert [(t["sched"]["nice"], t["sched"]["policy"]) for t in tasks] == [(10, 3), (15, 5)]
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert r.stdout.split("count 12\n")[1] == SCHED_AFTER


KEYS_AFTER = ("session: same 1 describe keyring;0;0;3f130000;ckses read 8\n"
              "user: same 1 describe user;0;0;3f3f0000;ckuser read 11\n"
              "ring: same 1 describe keyring;0;0;3f010000;ckring read 4\n"
              "logon: same 1 describe logon;0;0;3d010000;ck:logon read Operation not supported\n"
              "process: same 1 describe user;0;0;3f010000;ckproc read 22\n"
              "thread: same 1 describe keyring;0;0;3f010000;_tid read 0\n"
              "join again (not searchable by name: a new one): 1\n")


def test_keyrings_carried(tmp_path):
    """A session keyring joined by name, a process and a thread keyring,
    user and logon keys with their permissions and timeout, a keyring in
    a keyring: after the restore every key is found again under its
    serial, with its payload (what the program prints on Linux)."""
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["keys", "12"], "count", 1)
    keys = json.loads((image / "manifest.json").read_text())["keys"]["keys"]
    (user,) = [k for k in keys if bytes.fromhex(k["desc"]) == b"ckuser"]
    assert user["perm"] == 0x3f3f0000 and bytes.fromhex(user["data"]) == b"the payload" and user["expiry"]
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert r.stdout.split("count 12\n")[1] == KEYS_AFTER


def _sched_of(**change):
    return lambda d: d["processes"][0]["tasks"][0]["sched"].update(change)


def _new_key(d, **change) -> dict:
    """A user key added to the image's keys (held by nothing yet)."""
    key = {"serial": 4242, "type": "user", "desc": b"forged".hex(), "uid": 0, "gid": 0, "perm": 0x3f010000,
           "datalen": 2, "data": "6869", "links": None, "error": 0, "expiry": None, "revoked": False,
           "invalidated": False, "uid_keyring": False, "restricted": False, **change}
    d["keys"]["keys"].append(key)
    return key


def _register(d) -> dict:
    return next(k for k in d["keys"]["keys"] if k["serial"] == d["keys"]["register"])


def _link(d, serial: int) -> None:
    """A link from the register to serial, its 4 bytes charged."""
    reg = _register(d)
    reg["links"].append(serial)
    reg["datalen"] += 4


def _link_new(d, **change) -> None:
    _link(d, _new_key(d, **change)["serial"])


@pytest.mark.parametrize("forge, message", [
    (_sched_of(policy=4), "not a scheduling policy"),
    (_sched_of(rt_priority=5), "a real-time priority that does not go with the policy"),
    (_sched_of(nice=20), "sched.nice: not an integer in [-20, 20)"),
    (_sched_of(policy=6, dl_runtime=10, dl_deadline=10, dl_period=10), "deadline parameters sched_setattr refuses"),
    (_new_key, "key 4242 is held by nothing"),
    (lambda d: _link(d, 99), "99 is no key"),
    (lambda d: _link(d, d["keys"]["register"]), "links to itself"),
    (lambda d: _register(d)["links"].append(_new_key(d)["serial"]), "more than the keyring was charged for"),
    (lambda d: _link_new(d, datalen=3), "a payload that is not its size"),
    (lambda d: _link_new(d, type="big_key"), "not a key type of this kernel"),
    (lambda d: _link_new(d, perm=0x40000000), "perm: bits KEYCTL_SETPERM refuses"),
    (lambda d: _link_new(d, type="keyring", data=None, datalen=0, links=[], desc=b".evil".hex()),
     "a keyring named as the kernel's"),
    (lambda d: (_new_key(d), d["processes"][0]["keyrings"].update(session=4242)), "session: 4242 is no keyring"),
])
def test_forged_sched_and_keys_refused(saved, tmp_path, forge, message):
    """Scheduling attributes the sched_* calls would refuse, keys that no
    syscall could have made so (a link to nothing, a cycle, a payload not
    its size, a type or permission bits Linux has not, a keyring named as
    the kernel's own, a key nothing holds, a session that is no keyring):
    refused before any guest runs."""
    _forged_refused(saved, tmp_path, forge, message)


NETSOCK_AFTER = ("ping4: 14 bytes, type 0 id 4321 seq 1 ckping\nping4: 14 bytes, type 0 id 4321 seq 2 ckping\n"
                 "ping6: 14 bytes, type 129 id 0 seq 3 ckping\n"
                 "raw: 34 bytes, type 0 seq 1\nraw: 34 bytes, type 0 seq 2\nraw: Resource temporarily unavailable\n"
                 "netlink: port id is the pid 1, groups 0x11, ext_ack 1, links 1, done 1\n")


def test_ping_raw_and_netlink_sockets_carried(tmp_path):
    """Ping sockets (IPv4 bound to an identifier, IPv6), a raw ICMP socket
    with a filter and a NETLINK_ROUTE socket bound to groups, a link dump
    under way: after the restore every echo reply is read, the raw socket
    sees what its filter lets through, and the dump goes on to its end
    on the same port id (a host's ping_group_range of "1 0" keeps the
    program from running natively)."""
    image, first = checkpointed(tmp_path, [f"initrd={CPIO}"], ["netsock", "12"], "count", 1)
    files = json.loads((image / "manifest.json").read_text())["files"]
    (nl,) = [e for e in files if e["kind"] == "netlink"]
    assert nl["bound"] and nl["dump"] == [] and len(nl["queue"]) == 1
    r = restore(image)
    assert r.returncode == 0, r.stderr
    assert numbers(r.stdout, "count") == list(range(first[-1] + 1, 13)), r.stdout + r.stderr
    assert r.stdout.split("count 12\n")[1] == NETSOCK_AFTER


def _netlink_file(**change) -> dict:
    return {"kind": "netlink", "flags": 2, "type": 3, "protocol": 0, "error": 0, "sndbuf": 212992,
            "rcvbuf": 212992, "rcvbuf_locked": False, "rcvlowat": 1, "opts": [], "linger": [0, 0],
            "rcvtimeo": None, "sndtimeo": None, "bound_dev": 0, "portid": 1, "bound": True, "groups": 0, "dst_portid": 0,
            "dst_group": 0, "opener_admin": True, "passcred": False, "opt_flags": [], "max_recvmsg_len": 0,
            "queue": [], "dump": None, "dump_seq": 0, "dump_err": 0, **change}


def _ping_file(**change) -> dict:
    return {"kind": "inet", "flags": 2, "family": 2, "type": 2, "protocol": 1, "uid": 0, "opts": [], "ints": [], "groups": [],
            "linger": [0, 0], "rcvtimeo": None, "sndtimeo": None, "local": None, "remote": None, "saddr": None,
            "in_table": False, "error": 0, "sndbuf": 212992, "rcvbuf": 212992, "rcvlowat": 1, "ttl": -1,
            "tos": 0, "mcast_ttl": 1, "hops": -1, "mcast_hops": -1, "bound_dev": 0, "mc_index": 0, "mc_addr": "00000000", "rcvbuf_locked": False,
            "listening": False, "bound_port": False, "bound_addr": False, "v6only": False, "shut": 0,
            "icmp_filter": 0, "icmp6_filter": "00" * 32, "checksum_offset": -1, "rfc2292_hoplimit": 0,
            "drops": 0, "queue": [], "peer": -1, **change}


@pytest.mark.parametrize("forge, message", [
    (lambda d: _add_files(d, _netlink_file(protocol=16)), "not a NETLINK_ROUTE socket"),
    (lambda d: _add_files(d, _netlink_file(), _netlink_file()), "portid: 1 is taken"),
    (lambda d: _add_files(d, _netlink_file(bound=False)), "an unbound socket with a port id"),
    (lambda d: _add_files(d, _netlink_file(opt_flags=["root"])), "not NETLINK_ flag options"),
    (lambda d: _add_files(d, _netlink_file(dump=[])), "a dump under way with nothing queued"),
    (lambda d: d.update(netlink={"rover": 5}), "netlink.rover: not an integer"),
    (lambda d: _add_files(d, _ping_file(type=3, protocol=17)), "not an ICMP or raw socket's"),
    (lambda d: _add_files(d, _ping_file(queue=[["0000", "0a00" + "00" * 26, 64]])),
     "src: not an address of the socket's family"),
    (lambda d: _add_files(d, _ping_file(checksum_offset=3)), "filters setsockopt refuses"),
])
def test_forged_netlink_and_ping_sockets_refused(saved, tmp_path, forge, message):
    """A netlink socket of a protocol with no kernel side, two bound to
    one port id, an unbound one with an id, flag options Linux has not, a
    dump with nothing queued to go on from, an autobind rover among the
    ids it never gives; an ICMP socket of another protocol, a reply from
    an address of another family, an odd IPV6_CHECKSUM offset: refused
    before any guest runs."""
    _forged_refused(saved, tmp_path, forge, message)


CGROUPS_AFTER = ("0::/a/b\n/sys/a:\nb\ncgroup.controllers\ncgroup.events\ncgroup.procs\ncgroup.stat\n"
                 "cgroup.subtree_control\ncgroup.threads\ncgroup.type\n\n/sys/c:\n"
                 "cgroup.controllers\ncgroup.events\ncgroup.procs\ncgroup.stat\ncgroup.subtree_control\n"
                 "cgroup.threads\ncgroup.type\nnr_descendants 3\nnr_dying_descendants 0\n"
                 "populated 1\nfrozen 0\nnone /sys cgroup2\nnone /mnt mqueue\n"
                 "755 1000 100 /sys/a/b\n644 1000 100 /sys/a/b/cgroup.procs\n700 0 0 /sys/c\n755 0 0 /sys/a\n")


def test_control_groups_and_mqueue_mount_carried(tmp_path):
    """A cgroup2 mount with groups made in it, one delegated (chown of its
    directory and cgroup.procs), one chmod'ed, and the shell moved into
    one, and an mqueue mount: after the restore the shell and its
    children are in the same group, the tree, modes and owners are the
    same, and both mounts are there again."""
    script = (f"mount -t proc proc /proc && mount -t cgroup2 none /sys && mount -t mqueue none /mnt && "
              f"mkdir /sys/a /sys/a/b /sys/c && echo $$ > /sys/a/b/cgroup.procs && {PROG} mqueue 1 >/dev/null; "
              "chown 1000:100 /sys/a/b /sys/a/b/cgroup.procs && chmod 700 /sys/c; "
              "i=0; while [ $i -lt 20 ]; do i=$((i+1)); echo count $i; sleep 0.1; done; "
              "cat /proc/self/cgroup; ls -1 /sys/a /sys/c; cat /sys/cgroup.stat /sys/a/cgroup.events; "
              "grep -E '^[a-z]+ /(sys|mnt) ' /proc/mounts | cut -d' ' -f1-3; "
              "stat -c '%a %u %g %n' /sys/a/b /sys/a/b/cgroup.procs /sys/c /sys/a")
    rest = shell_restored(tmp_path, [f"initrd={CPIO}"], script, "count", 20)
    doc = json.loads((tmp_path / "img" / "manifest.json").read_text())
    assert [bytes.fromhex(c) for c in doc["cgroups"]] == [b"/a", b"/c", b"/a/b"]
    assert sorted((bytes.fromhex(p), m, u, g) for p, m, u, g in doc["cgroup_attrs"]) == \
        [(b"/a/b", 0o755, 1000, 100), (b"/a/b/cgroup.procs", 0o644, 1000, 100), (b"/c", 0o700, 0, 0)]
    assert rest == CGROUPS_AFTER, rest


@pytest.mark.parametrize("forge, message", [
    (lambda d: d.update(cgroups=[b"/a/b".hex()]), "cgroups[0]: not a group mkdir makes there"),
    (lambda d: d.update(cgroups=[b"/a".hex(), b"/a".hex()]), "cgroups[1]: not a group mkdir makes there"),
    (lambda d: d.update(cgroups=[b"/cgroup.procs".hex()]), "cgroups[0]: not a group mkdir makes there"),
    (lambda d: d.update(cgroups=[b"/a\nb".hex()]), "cgroups[0]: a name mkdir refuses"),
    (lambda d: d["processes"][0].update(cgroup=b"/x".hex()), "processes[0].cgroup: no such group"),
    (lambda d: d.update(cgroup_attrs=[[b"/x/cgroup.procs".hex(), 0o600, 0, 0]]), "cgroup_attrs[0].path: nothing there"),
    (lambda d: d.update(cgroup_attrs=[[b"/".hex(), 0o10000, 0, 0]]), "cgroup_attrs[0].mode: not an integer"),
])
def test_forged_control_groups_refused(saved, tmp_path, forge, message):
    """A group under one not made before it, twice, named as a group's
    file or with a newline, a process in no group of the tree, a mode or
    owner for nothing of the hierarchy or not a mode: refused before any
    guest runs."""
    _forged_refused(saved, tmp_path, forge, message)


PACKET_AFTER = ("offer: 1, udp 67->68, op 2, xid 12345678, from eth0 1, pkttype 1, aux len 1\n"
                "stats 1 packets 0 drops, version 1, reserve 64, then -1\n")


def test_packet_socket_carried(tmp_path):
    """A packet socket bound to eth0 (behind eth0=user) with its options,
    holding the DHCP offer the user-mode network queued for its
    DHCPDISCOVER: after the restore the offer is read with its sender
    and auxdata, and the options and statistics are the same."""
    rest = shell_restored(tmp_path, [f"initrd={CPIO}", "eth0=user"],
                          f"ip link set eth0 up && exec {PROG} packet 20", "count", 20)
    (f,) = [e for e in json.loads((tmp_path / "img" / "manifest.json").read_text())["files"]
            if e["kind"] == "packet"]
    assert len(f["queue"]) == 1 and f["reserve"] == 64
    assert rest == PACKET_AFTER, rest


def _packet_file(**change) -> dict:
    return {"kind": "packet", "flags": 2, "type": 2, "protocol": 8, "proto_be": 8, "ifindex": 1, "version": 0,
            "error": 0, "sndbuf": 212992, "rcvbuf": 212992, "rcvbuf_locked": False, "rcvlowat": 1, "opts": [],
            "linger": [0, 0], "rcvtimeo": None, "sndtimeo": None, "bound_dev": 0, "auxdata": False, "origdev": False,
            "ignore_outgoing": False, "loss": False, "tx_has_off": False, "qdisc_bypass": False,
            "reserve": 0, "tstamp": 0, "copy_thresh": 0, "tp_packets": 0, "tp_drops": 0, "queue": [], "drops": 0,
            **change}


@pytest.mark.parametrize("forge, message", [
    (lambda d: _add_files(d, _packet_file(type=1)), "type: not a packet socket type"),
    (lambda d: _add_files(d, _packet_file(ifindex=9)), "ifindex: no device 9"),
    (lambda d: _add_files(d, _packet_file(version=5)), "version: not a TPACKET_ version"),
    (lambda d: _add_files(d, _packet_file(queue=[["45", "0200" + "00" * 18]])), "sender: not a sockaddr_ll"),
])
def test_forged_packet_socket_refused(saved, tmp_path, forge, message):
    """A packet socket of another type, bound to no device of the
    machine, of a TPACKET_ version Linux has not, or holding a packet
    from no sockaddr_ll: refused before any guest runs."""
    _forged_refused(saved, tmp_path, forge, message)
