"""A minimal Debian 12 userland (debootstrap minbase + python3) booted from
an ext2 image: bash, coreutils, findutils, grep, tar/gzip, dpkg, python3,
su and useradd, each script run in the guest and natively in a chroot of the
same tree, outputs compared.  The image is built by rootfs/debian.sh where
root is available and cached outside the repository."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import IMAGE, UMLPY, as_nobody, make_traversable

ENV = "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C TZ=UTC COLUMNS=100"


def _wrap(script: str) -> str:
    """The same start on both sides: procfs, /root, a clean environment, stderr merged."""
    return f"mount -t proc proc /proc; cd /root; {ENV} /bin/bash -c {_quote(script)} 2>&1"


def guest(debian: Path, tmp_path: Path, script: str) -> subprocess.CompletedProcess:
    wrapped = _wrap(script)
    return subprocess.run([str(UMLPY), str(IMAGE), "quiet", f"ubd0={tmp_path / 'g.cow'},{debian / 'root.img'}",
                           "rw", "init=/bin/bash", "--", "-c", wrapped],
                          capture_output=True, timeout=300)


def native(debian: Path, script: str) -> subprocess.CompletedProcess:
    wrapped = _wrap(script)
    return subprocess.run(["unshare", "-m", "chroot", str(debian / "tree"), "/bin/sh", "-c", wrapped],
                          capture_output=True, timeout=300)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def same(debian: Path, tmp_path: Path, script: str) -> bytes:
    want = native(debian, script)
    got = guest(debian, tmp_path, script)
    assert got.stdout.decode() == want.stdout.decode(), got.stderr.decode()[-3000:]
    return got.stdout


SCRIPTS = {
    "bash": r"""
a=(one two three); echo "${#a[@]} ${a[1]} $((6 * 7))"
diff <(printf 'x\ny\n') <(printf 'x\ny\n') && echo procsub-same
while read -r w; do echo "[$w]"; done < <(printf 'p\nq\n')
trap 'echo trapped USR1' USR1; kill -USR1 $$
sleep 0.1 & pid=$!; wait $pid; echo "waited $?"
set -m; sleep 5 & kill -STOP %1; sleep 0.1; jobs; kill -CONT %1; jobs; kill %1; wait %1; echo "job $?"; set +m
( trap 'echo sub-trap EXIT' EXIT; true ); trap 'echo bye' EXIT
( exit 3 ); echo "subshell $?"
echo abc | tr a-c x-z | rev
f() { local v=$1; echo "f:$v"; }; f arg
""",
    "coreutils": r"""
ls -l --time-style=full-iso /etc/debian_version /etc/passwd /usr/bin/env
touch -d '2001-02-03 04:05:06.123456789' /tmp/stamp && ls -l --time-style=full-iso /tmp/stamp && rm /tmp/stamp
stat -c '%n %s %a %U %G %F %h %y' /etc/passwd /etc /usr/bin/env
cp -a /etc/apt /tmp/apt-copy && ls -lR --time-style=full-iso /tmp/apt-copy | grep -v '^total'
sort -S 1M -k2,2 -t: /etc/passwd | cut -d: -f1,3 | head -5
du --apparent-size -s -b /etc/apt /tmp/apt-copy
md5sum /etc/passwd /etc/group; wc -l /var/lib/dpkg/status
seq 1 5 | paste -sd+ | bc 2>/dev/null || seq 1 5 | awk '{s+=$1} END {print s}'
rm -rf /tmp/apt-copy
""",
    "tar-find-grep": r"""
cd /tmp && tar czf etc.tgz -C / etc/apt etc/dpkg && mkdir out && tar xzf etc.tgz -C out
find out | sort | head -30; find out -type f -exec md5sum {} + | sort -k2
gzip -9 -c /var/lib/dpkg/status | gzip -dc | md5sum
grep -r '^root' /etc/passwd /etc/group; grep -c . /var/lib/dpkg/status
find /usr/share/doc -maxdepth 1 -name 'lib*' | sort | head
rm -rf out etc.tgz
""",
    "dpkg": r"""
dpkg -l | head -n 12
dpkg -S /bin/bash; dpkg-query -W -f='${Package} ${Status}\n' bash coreutils python3
""",
    # users: su and setpriv as root, a user added with useradd/chpasswd, a set-user-ID
    # program (passwd -S reads /etc/shadow); tmpfs over /tmp and /etc keeps the tree clean
    "su": r"""
mount -t tmpfs tmpfs /tmp && chmod 1777 /tmp
tar -C /etc -cf /tmp/etc.tar . && mount -t tmpfs tmpfs /etc && tar -C /etc -xpf /tmp/etc.tar && rm /tmp/etc.tar
cd /
su -s /bin/bash nobody -c 'id; whoami; echo x > /root/f; ls /root; cd /tmp && echo hi > nobody.txt && ls -l --time-style=+ nobody.txt
grep -E "^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Amb)|NoNewPrivs)" /proc/self/status'
echo "su: $?"
setpriv --reuid=65534 --regid=65534 --clear-groups id
setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs grep -E "^(Uid|CapEff|NoNewPrivs)" /proc/self/status
useradd -M -d /tmp/alice -s /bin/bash alice && mkdir -m 700 /tmp/alice && chown alice: /tmp/alice
echo 'alice:secret' | chpasswd && grep -c '^alice:\$' /etc/shadow
stat -c '%A %U %n' /usr/bin/passwd /etc/shadow
su alice -c 'id; cd; touch mine; ls -l --time-style=+ mine; cat /etc/shadow; passwd -S alice | cut -d" " -f1,2'
su - alice -c 'echo login shell in $PWD as $USER; kill -0 1'
nice -n 5 nice; su -s /bin/sh nobody -c 'nice -n -5 nice; nice -n 3 nice'
""",
    "python3": r"""
python3 -I -c '
import concurrent.futures, json, mmap, os, sqlite3, subprocess, tempfile, threading
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    print(sorted(ex.map(lambda x: x * x, range(10))))
print(subprocess.run(["sh", "-c", "echo child $((1+1))"], capture_output=True, text=True).stdout.strip())
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "f")
    with open(p, "wb") as f:
        f.write(b"-" * 8192)
    with open(p, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[:4] = b"mmap"
    print(open(p, "rb").read(6))
db = sqlite3.connect(":memory:")
db.execute("create table t(a, b)")
db.executemany("insert into t values (?, ?)", [(i, i * i) for i in range(100)])
print(db.execute("select count(*), sum(b) from t").fetchone())
print(json.dumps({"ok": True, "threads": threading.active_count()}))
'
""",
    # the guest's ptrace: strace -ff follows a pipeline's forks and execs
    # (a file per process, as their order varies: sorted); gdb runs a shell to a
    # breakpoint, a backtrace, single steps and the fatal signal, at the
    # addresses it finds natively (its ADDR_NO_RANDOMIZE reaches the host's
    # layout of the inferior), reading the inferior through /proc/PID/mem
    "tracers": r"""
rm -f /tmp/st.*
strace -ff -qq -e trace=execve,exit_group -e signal=none -o /tmp/st sh -c 'echo a | cat'
cat /tmp/st.* | sed -E 's/0x[0-9a-f]+/X/g' | sort
echo 'kill -SEGV $$' > /tmp/s.sh
gdb -nx -batch -ex 'break kill' -ex run -ex bt -ex stepi -ex stepi -ex 'x/i $pc' -ex continue \
    -ex 'info registers rip' --args /bin/sh /tmp/s.sh 2>&1
""",
    # the files a process mapped, by name, as Linux's maps names them
    # (shared libraries, a locale's MAP_SHARED gconv cache), whatever the
    # kernel backs them with
    "maps": r"""
grep -o ' /.*' /proc/self/maps | sort -u
python3 -c 'import codecs; codecs.lookup("cp1252"); print(open("/proc/self/maps").read())' \
    | grep -o ' /.*' | grep -v python3 | sort -u
""",
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_debian_userland(debian, tmp_path, name):
    out = same(debian, tmp_path, SCRIPTS[name])
    assert out.strip()


def test_debian_writes_leave_a_clean_filesystem(debian, tmp_path):
    mmap_write = ("python3 -c 'import mmap; f = open(\"/srv/m\", \"w+b\"); f.write(bytes(8192)); f.flush(); "
                  "m = mmap.mmap(f.fileno(), 0); m[100:106] = b\"mapped\"; m.close(); f.close()'")
    r = guest(debian, tmp_path, "mkdir -p /srv/t && cd /srv/t && for i in $(seq 200); do echo $i > f$i; done; "
                                f"tar czf /srv/t.tgz . && rm f1* && {mmap_write} && sync && echo ok")
    assert r.stdout == b"ok\n", r.stderr.decode()[-2000:]
    merged = tmp_path / "merged.img"
    subprocess.run(["uml_moo", str(tmp_path / "g.cow"), str(merged)], check=True, capture_output=True)
    fsck = subprocess.run(["e2fsck", "-fn", str(merged)], capture_output=True)
    assert fsck.returncode == 0, fsck.stdout.decode()
    data = subprocess.run(["debugfs", "-R", "cat /srv/m", str(merged)], capture_output=True).stdout
    assert data[100:106] == b"mapped" and len(data) == 8192     # a shared mapping reached the disk
    assert os.path.getsize(debian / "root.img") > 0


def test_debian_df_counts_what_is_written(debian, tmp_path):
    """df and df -i in the guest follow a 10 MiB file: 2560 data blocks in
    use (its few extents fit in the inode: no tree blocks on ext4), one
    inode, then all back."""
    r = guest(debian, tmp_path, "df -P -k / | tail -1; df -P -i / | tail -1; "
                                "dd if=/dev/zero of=/srv/ten bs=1M count=10 status=none; sync; "
                                "df -P -k / | tail -1; df -P -i / | tail -1; rm /srv/ten; sync; "
                                "df -P -k / | tail -1; df -P -i / | tail -1")
    rows = [line.split() for line in r.stdout.decode().splitlines()]
    assert len(rows) == 6 and all(row[0] == "/dev/root" and row[-1] == "/" for row in rows), r.stdout
    (blk0, ino0, blk1, ino1, blk2, ino2) = [[int(x) for x in row[1:4]] for row in rows]
    assert blk1[0] == blk0[0] and blk1[1] - blk0[1] == 10240 and blk0[2] - blk1[2] == 10240
    assert ino1[1] - ino0[1] == 1 and ino0[2] - ino1[2] == 1
    assert blk2 == blk0 and ino2 == ino0


def _as_nobody_on_a_read_only_base(debian: Path, tmp_path: Path) -> tuple[list[str], Path, Path, dict]:
    """For a boot as the host user nobody (skipped unless root): the command
    prefix, a work directory nobody owns (the COW goes there), a copy of the
    image that nobody may only read, and the environment to run with."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another host user")
    prefix = as_nobody()
    work = tmp_path / "nobody"
    work.mkdir()
    base = work / "base.img"
    subprocess.run(["cp", "--sparse=always", str(debian / "root.img"), str(base)], check=True)
    base.chmod(0o444)
    os.chown(work, 65534, 65534)
    make_traversable(work)
    return prefix, work, base, {"HOME": str(work), "PATH": "/usr/bin:/bin"}


def test_debian_boots_for_an_unprivileged_host_user(debian, tmp_path):
    """The Debian guest as uid 65534 on the host: root inside, threads,
    su and a COW overlay on a base image that user may only read."""
    prefix, work, base, env = _as_nobody_on_a_read_only_base(debian, tmp_path)
    script = ("mount -t proc proc /proc; id -u; python3 -c 'import threading; t = threading.Thread(target=print, "
              "args=(\"thread ok\",)); t.start(); t.join()'; su -s /bin/sh nobody -c 'id -un'")
    r = subprocess.run(prefix + [str(UMLPY), str(IMAGE), "quiet", f"ubd0={work / 'g.cow'},{base}", "rw",
                                 "init=/bin/bash", "--", "-c", script],
                       capture_output=True, timeout=300, cwd="/", env=env)
    assert r.stdout == b"0\nthread ok\nnobody\n", r.stderr.decode()[-2000:]
    assert (work / "g.cow").stat().st_uid == 65534


def test_debian_chattr_flags_on_ext4(debian, tmp_path):
    """e2fsprogs' chattr/lsattr through FS_IOC_[GS]ETFLAGS: immutable and
    append-only are enforced, only CAP_LINUX_IMMUTABLE changes them, the
    flags reach the disk; ext4's files show their extents flag (e)."""
    r = guest(debian, tmp_path, "cd /srv; echo data > f; lsattr f; chattr +i f; lsattr f; echo x >> f; rm f; "
                                "chattr -i f; chattr +a f; echo more >> f; echo over > f; cat f; "
                                "mkdir d; chmod 777 d; su nobody -s /bin/sh -c 'touch d/n; chattr +i d/n; "
                                "chattr +d d/n; lsattr d/n'; chattr +i d/n; sync")
    # com_err ends lines with \r\n on a terminal without ONLCR (the console
    # when umlpy's stdout is not a terminal)
    assert r.stdout.decode().replace("\r\n", "\n") == (
        "--------------e------- f\n"
        "----i---------e------- f\n"
        "/bin/bash: line 1: f: Operation not permitted\n"
        "rm: cannot remove 'f': Operation not permitted\n"
        "/bin/bash: line 1: f: Operation not permitted\n"
        "data\nmore\n"
        "chattr: Operation not permitted while setting flags on d/n\n"
        "------d-------e------- d/n\n"), r.stderr.decode()[-2000:]
    merged = tmp_path / "merged.img"
    subprocess.run(["uml_moo", str(tmp_path / "g.cow"), str(merged)], check=True, capture_output=True)
    assert subprocess.run(["e2fsck", "-fn", str(merged)], capture_output=True).returncode == 0
    stat = subprocess.run(["debugfs", "-R", "stat /srv/d/n", str(merged)], capture_output=True).stdout
    assert b"Flags: 0x80050" in stat     # extents | immutable | nodump


def test_inotify_user_limits(debian, tmp_path):
    """fs.inotify.max_user_instances and max_user_watches: readable, root may
    set them, and inotify_init (EMFILE) and inotify_add_watch (ENOSPC) obey."""
    script = r"""cat /proc/sys/fs/inotify/max_user_instances /proc/sys/fs/inotify/max_user_watches
python3 - <<'PY'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def init():
    fd = libc.inotify_init()
    return fd if fd >= 0 else os.strerror(ctypes.get_errno())
open("/proc/sys/fs/inotify/max_user_instances", "w").write("2")
fds = [init() for _ in range(3)]
print("instances:", [f if isinstance(f, str) else "ok" for f in fds])
open("/proc/sys/fs/inotify/max_user_watches", "w").write("1")
w = [libc.inotify_add_watch(fds[0], p, 0x100) for p in (b"/tmp", b"/etc")]
print("watches:", w[0] > 0, w[1], os.strerror(ctypes.get_errno()))
PY
"""
    r = guest(debian, tmp_path, script)
    out = r.stdout.decode().split()
    assert out[:2] == ["128", "8192"], r.stderr.decode()[-2000:]
    text = r.stdout.decode()
    assert "instances: ['ok', 'ok', 'Too many open files']" in text
    assert "watches: True -1 No space left on device" in text


def test_seek_data_and_hole_on_ext2(debian, tmp_path):
    """SEEK_DATA/SEEK_HOLE find the allocated blocks of a sparse file on the
    ext2 root as Linux's ext4 driver (Debian's for ext2) does on the host."""
    same(debian, tmp_path, r"""python3 - <<'PY'
import os
fd = os.open("/tmp/sparse", os.O_RDWR | os.O_CREAT | os.O_TRUNC)
os.pwrite(fd, b"x" * 10, 100000)
os.pwrite(fd, b"y", 500000)
os.ftruncate(fd, 900000)
for whence, name in ((os.SEEK_DATA, "data"), (os.SEEK_HOLE, "hole")):
    for off in (0, 99000, 100005, 200000, 500000, 600000, 899999, 900000):
        try:
            print(name, off, os.lseek(fd, off, whence))
        except OSError as e:
            print(name, off, os.strerror(e.errno))
os.unlink("/tmp/sparse")
PY
""")


def test_udp_sendmsg_hop_limit_and_tos_cmsgs(debian, tmp_path):
    """A datagram's own IP_TTL/IP_TOS and IPV6_HOPLIMIT/IPV6_TCLASS control
    messages reach the receiver's IP_RECVTTL/IPV6_RECVHOPLIMIT (CPython's
    test_socket RFC3542 tests); a wrong length or value is EINVAL, another
    level's are ignored."""
    same(debian, tmp_path, "python3 - <<'PY'\n" + r'''import array, socket
def run(fam, host, lvl, rcv, opts):
    r = socket.socket(fam, socket.SOCK_DGRAM); r.bind((host, 0))
    for o in rcv:
        r.setsockopt(lvl, o, 1)
    s = socket.socket(fam, socket.SOCK_DGRAM); s.connect(r.getsockname())
    for name, cm in opts:
        try:
            s.sendmsg([b"x"], cm)
            _, anc, _, _ = r.recvmsg(16, 1024)
            print(name, sorted((t, int.from_bytes(d, "little")) for _, t, d in anc))
        except OSError as e:
            print(name, e.strerror)
i = lambda v: array.array("i", [v]).tobytes()
T6, H6 = socket.IPV6_TCLASS, socket.IPV6_HOPLIMIT
run(socket.AF_INET6, "::1", 41, [socket.IPV6_RECVHOPLIMIT, socket.IPV6_RECVTCLASS], [
    ("none", []), ("hop 2", [(41, H6, i(2))]), ("hop -1", [(41, H6, i(-1))]),
    ("tclass+hop", [(41, T6, i(0x24)), (41, H6, i(7))]), ("odd", [(41, T6, i(1) + b"\0"), (41, H6, i(2))]),
    ("hop 256", [(41, H6, i(256))]), ("tclass -2", [(41, T6, i(-2))]), ("other level", [(0, 2, i(9))])])
run(socket.AF_INET, "127.0.0.1", 0, [12, socket.IP_RECVTOS], [
    ("none", []), ("ttl 3", [(0, 2, i(3))]), ("tos byte", [(0, 1, b"\x10")]),
    ("tos int", [(0, 1, i(0x20)), (0, 2, i(200))]), ("ttl 0", [(0, 2, i(0))]),
    ("ttl short", [(0, 2, b"\1\0")]), ("tos 256", [(0, 1, i(256))]), ("v6 level", [(41, H6, i(9))])])
''' + "PY\n")


def test_udplite_sockets(debian, tmp_path):
    """UDP-Lite (CPython's test_socket runs its UDP tests over it too): its
    own port space, UDPLITE_SEND_CSCOV/RECV_CSCOV clamped as Linux clamps
    them, a partly covered datagram dropped by a receiver asking for more,
    the UDP options at either level, the coverage options ENOPROTOOPT on UDP."""
    same(debian, tmp_path, "python3 - <<'PY'\n" + r'''
import socket
L = socket.IPPROTO_UDPLITE
SEND, RECV = 10, 11
def pair(fam, host):
    r = socket.socket(fam, socket.SOCK_DGRAM, L); r.bind((host, 0)); r.settimeout(0.2)
    s = socket.socket(fam, socket.SOCK_DGRAM, L)
    return r, s
for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    r, s = pair(fam, host)
    print(r.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL), r.getsockopt(L, SEND), r.getsockopt(socket.IPPROTO_UDP, RECV))
    s.sendto(b"hello", r.getsockname()); print(r.recvfrom(64)[0])
    u = socket.socket(fam, socket.SOCK_DGRAM)          # plain UDP: another port space
    u.sendto(b"to udp", r.getsockname())
    try:
        print(r.recv(64))
    except socket.timeout:
        print("udp datagram not delivered to udplite")
    u2 = socket.socket(fam, socket.SOCK_DGRAM); u2.bind((host, r.getsockname()[1])); print("udp bound the same port")
    for v in (-5, 3, 20, 70000, 0):
        s.setsockopt(L, SEND, v); print("send", v, s.getsockopt(L, SEND))
    s.setsockopt(L, SEND, 20)
    for rv, msg in ((0, b"x" * 30), (30, b"x" * 30), (20, b"x" * 30), (8, b"x" * 5)):
        r.setsockopt(L, RECV, rv)
        s.sendto(msg, r.getsockname())
        try:
            print("recv", rv, len(msg), len(r.recv(64)))
        except socket.timeout:
            print("recv", rv, len(msg), "dropped")
    for lvl, opt in ((socket.IPPROTO_UDP, SEND), (L, 1)):
        print(u.getsockopt(lvl, opt))
    try:
        u.setsockopt(socket.IPPROTO_UDP, SEND, 20)
    except OSError as e:
        print("udp SEND_CSCOV:", e.strerror)
    u.setsockopt(L, 1, 1); print("udp cork at SOL_UDPLITE", u.getsockopt(socket.IPPROTO_UDP, 1))
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM, L)
except OSError as e:
    print("stream:", e.strerror)
''' + "PY\n")


def test_accepted_socket_keeps_listeners_rcvbuf_lock(debian, tmp_path):
    """A listener's SO_RCVBUF bounds its connections' windows (the lock is
    inherited, sk_userlocks): a sender with a small SO_SNDBUF blocks after a
    few KiB instead of queueing everything (asyncio's test_sendfile
    close_peer_in_the_middle_of_receiving), and a close with unread data resets it."""
    same(debian, tmp_path, "python3 - <<'PY'\n" + r'''import socket
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
c = socket.create_connection(ls.getsockname()); a, _ = ls.accept()
c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096); c.setblocking(False)
sent = 0
try:
    while sent < 1 << 20:
        sent += c.send(b"x" * 65536)
except BlockingIOError:
    pass
print(a.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), "blocks before 64K:", sent < 65536)
a.recv(100); a.close()
try:
    c.send(b"x"); c.send(b"x")
    print("no error")
except OSError as e:
    print("after the peer closed with unread data:", type(e).__name__)
''' + "PY\n")


def _read_until(fd: int, want: bytes, seen: bytearray, timeout: float) -> bool:
    """Read fd into seen until want shows in it (True) or timeout passes."""
    import select
    import time
    deadline = time.monotonic() + timeout
    while want not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return False
        chunk = os.read(fd, 65536)
        if not chunk:
            return want in seen
        seen += chunk
    return True


@pytest.mark.parametrize("host_user", ["invoker", "nobody"])
def test_debian_boots_with_systemd_to_a_login_on_the_terminal(debian, tmp_path, host_user):
    """The image's own init, systemd 252 as a stock Debian 12 has it: every
    unit starts (logind listens for uevents on a netlink socket with a
    classic BPF filter, services name their processes with PR_SET_MM, a
    private network's lo takes systemd's addresses before it goes up), and
    getty@tty1's login prompt shows on umlpy's own terminal (tty1 is the
    console's without con1=).  root logs in, the system is running with no
    failed unit, and poweroff ends umlpy with status 0.  Also as the
    unprivileged host user nobody, on a base image it may only read."""
    if host_user == "nobody":
        prefix, work, base, env = _as_nobody_on_a_read_only_base(debian, tmp_path)
    else:
        prefix, work, base, env = [], tmp_path, debian / "root.img", None
    log = open(tmp_path / "log", "wb")
    p = subprocess.Popen(prefix + [str(UMLPY), str(IMAGE), f"ubd0={work / 'g.cow'},{base}", "rw", "mem=512M"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd="/", env=env)
    seen = bytearray()
    try:
        assert _read_until(p.stdout.fileno(), b"login: ", seen, 180), seen.decode(errors="replace")[-3000:]
        p.stdin.write(b"root\n")
        p.stdin.flush()
        assert _read_until(p.stdout.fileno(), b"# ", seen, 60), seen.decode(errors="replace")[-3000:]
        p.stdin.write(b"systemctl is-system-running --wait; systemctl --failed --no-legend --plain | wc -l; "
                      b"cat /proc/$(pidof systemd-journald)/cmdline; echo; poweroff\n")
        p.stdin.flush()
        _read_until(p.stdout.fileno(), b"\0never", seen, 120)
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()
    text = seen.decode(errors="replace").replace("\r", "")
    assert "FAILED" not in text, text[max(0, text.find("FAILED") - 1500):text.find("FAILED") + 500]
    assert "running\n0\n/lib/systemd/systemd-journald\0\n" in text, text[-3000:]
