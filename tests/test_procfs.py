"""procfs and sysfs: what ps, top, free, df, mount, pidof, mdev ... read."""
from __future__ import annotations

import re

import pytest

from conftest import CPIO, PATH_ENV, ROOT, sh

PROC = "mount -t proc proc /proc; "


def out(script: str, *params: str) -> str:
    r = sh(PROC + script, *params)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout.decode()


def test_ps_shows_guest_processes_with_guest_pids():
    text = out("sleep 30 & echo bg=$!; ps; kill $!; wait; true")
    bg = int(re.search(r"bg=(\d+)", text).group(1))
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["PID", "USER"])
    rows = {}
    for line in lines[head + 1:]:
        pid, user, cmd = line.split(None, 2)
        rows[int(pid)] = (user, cmd)
    assert rows[1][0] == "root" and rows[1][1].startswith("/bin/sh -c")
    # busybox runs the applet by exec'ing /proc/self/exe, then names itself:
    # a ps that comes between sees comm "exe" ("{exe} sleep 30"), on Linux too
    assert rows[bg][0] == "root" and rows[bg][1] in ("sleep 30", "{exe} sleep 30")
    assert any("{ps}" in cmd for _, cmd in rows.values())
    assert max(rows) < 100          # the guest's own pids, not the host's


def test_ls_proc_lists_pids_self_and_thread_self():
    names = out("ls /proc; true").split()
    assert {"1", "self", "thread-self", "meminfo", "sys", "mounts"} <= set(names)
    assert all(n.isdigit() for n in names if n[0].isdigit())


def _fields(status: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)


def test_self_status():
    text = out("echo sh=$$; cat /proc/self/status; true")
    f = _fields(text)
    assert f["Name"] == "cat"
    assert f["State"] == "R (running)"
    assert f["Tgid"] == f["Pid"] and int(f["Pid"]) > 1
    assert f["PPid"] == "1"
    assert f["Uid"] == "0\t0\t0\t0" and f["Gid"] == "0\t0\t0\t0"
    assert f["Threads"] == "1"
    assert f["Umask"] == "0022"
    assert re.fullmatch(r" *\d+ kB", f["VmRSS"]) and int(f["VmRSS"].split()[0]) > 0
    order = [line.split(":")[0] for line in text.splitlines() if ":\t" in line]
    assert order.index("Name") < order.index("State") < order.index("Tgid") < order.index("Pid") \
        < order.index("PPid") < order.index("Uid") < order.index("Gid") < order.index("VmSize")


def test_self_stat_has_52_fields_and_right_ids():
    text = out("cat /proc/self/stat; sh -c 'cat /proc/self/stat; true'; true")
    first, nested = text.splitlines()
    for line in (first, nested):
        m = re.fullmatch(r"(\d+) \((.*)\) (.*)", line)
        assert m and m.group(2) == "cat"
        rest = m.group(3).split()
        assert len(rest) + 2 == 52
        assert rest[0] == "R"
        assert all(re.fullmatch(r"-?\d+", v) for v in rest[1:])
    f = first.split(") ")[1].split()
    assert (f[1], f[2], f[3]) == ("1", "0", "0")         # ppid; init's group and session (Linux's 0)
    assert int(f[20]) > 0 and int(f[21]) > 0                # vsize bytes, rss pages
    g = nested.split(") ")[1].split()
    assert g[2] == "0" and g[3] == "0" and g[1] != "1"     # same group and session, new parent


def test_cmdline_environ_exe_cwd():
    r = sh(PROC + "cat /proc/self/cmdline; env -i A=1 B=two cat /proc/self/environ; "
           "cd /tmp && readlink /proc/self/exe && readlink /proc/self/cwd && readlink /proc/self/root; true")
    assert r.stdout == (b"cat\0/proc/self/cmdline\0" + b"A=1\0B=two\0"
                        + b"/bin/busybox\n/tmp\n/\n"), r.stdout


def test_fd_links_name_pipes_and_the_console():
    text = out("echo | ls -l /proc/self/fd | cat; true")
    links = dict(re.findall(r" (\d+) -> (\S+)", text))
    assert re.fullmatch(r"pipe:\[\d+\]", links["0"]) and re.fullmatch(r"pipe:\[\d+\]", links["1"])
    assert links["0"] != links["1"]
    assert links["2"] == "/dev/console"
    text = out("exec 3</etc/passwd; readlink /proc/$$/fd/3; cat /proc/$$/fdinfo/3; true")
    lines = text.splitlines()
    assert lines[0] == "/etc/passwd"
    assert lines[1] == "pos:\t0" and lines[2] == "flags:\t0100000"
    assert re.fullmatch(r"mnt_id:\t\d+", lines[3]) and re.fullmatch(r"ino:\t\d+", lines[4])


def test_mounts_and_mountinfo():
    text = out("cat /proc/mounts; echo --; cat /proc/self/mountinfo; echo --; mount; true")
    mounts, info, listing = text.split("--\n")
    rows = [line.split() for line in mounts.splitlines()]
    assert ["rootfs", "/", "rootfs", "rw", "0", "0"] in rows
    assert ["devtmpfs", "/dev", "devtmpfs", "rw,relatime,mode=755", "0", "0"] in rows    # as UML 6.1's
    assert ["proc", "/proc", "proc", "rw,relatime", "0", "0"] in rows     # mount(2)'s default atime policy
    points = {}
    for line in info.splitlines():
        f = line.split()
        assert f[f.index("-") + 1] in ("rootfs", "devtmpfs", "proc")
        points[f[4]] = (f[0], f[1])
    assert points["/dev"][1] == points["/"][0] and points["/proc"][1] == points["/"][0]
    assert "proc on /proc type proc (rw,relatime)" in listing


def test_free_uptime_uname_df_and_meminfo():
    text = out("free; uptime; uname -a; df /dev; grep -E '^(MemTotal|MemFree|SwapTotal):' /proc/meminfo; "
               "cat /proc/loadavg /proc/uptime; true", "mem=128M")
    mem = re.search(r"^Mem:\s+(\d+)\s+(\d+)\s+(\d+)", text, re.M)
    assert int(mem.group(1)) == 117492 and int(mem.group(2)) + int(mem.group(3)) == 117492
    assert re.search(r"up .*load average: 0\.00, 0\.00, 0\.00", text)
    assert re.search(r"^Linux umlpy 6\.\S+ #1 .* x86_64", text, re.M)
    assert re.search(r"^devtmpfs\s+\d+\s+\d+\s+\d+\s+\d+% /dev$", text, re.M)
    assert re.search(r"^MemTotal:\s+117492 kB$", text, re.M)
    assert re.search(r"^SwapTotal:\s+0 kB$", text, re.M)
    assert re.search(r"^\d+\.\d\d \d+\.\d\d \d+\.\d\d \d+/\d+ \d+$", text, re.M)
    assert re.search(r"^\d+\.\d\d \d+\.\d\d$", text, re.M)


def test_proc_cmdline_is_the_kernel_command_line():
    script = PROC + "cat /proc/cmdline"
    r = sh(script, "mem=128M")
    words = [f"initrd={CPIO}", "quiet", "init=/bin/sh", PATH_ENV, "mem=128M", "--", "-c", script]
    assert r.stdout.decode().endswith(" ".join(words) + "\n")


def test_pidof_killall_and_a_pgrep_by_comm():
    # this busybox has no pgrep/pkill: what they do is a walk over /proc/*/comm
    text = out("sleep 30 & echo bg=$!; pidof sleep; for d in /proc/[0-9]*; do "
               "[ \"$(cat $d/comm 2>/dev/null)\" = sleep ] && echo comm=${d#/proc/}; done; "
               "killall sleep; wait $!; echo rc=$?; pidof sleep || echo none; kill -l 9; true")
    bg = re.search(r"bg=(\d+)", text).group(1)
    lines = text.splitlines()
    assert lines[1] == bg and f"comm={bg}" in lines
    assert "rc=143" in lines and "none" in lines and "KILL" in lines


def test_write_comm_changes_ps():
    text = out("printf renamed > /proc/self/comm; cat /proc/$$/comm; ps -o pid,comm; true")
    assert "renamed\n" in text
    assert re.search(r"^\s*1 renamed$", text, re.M)


def test_hostname_sysctl_is_writable_by_root_only():
    text = out("echo newhost > /proc/sys/kernel/hostname; hostname; cat /proc/sys/kernel/hostname; "
               "su user -c 'echo x > /proc/sys/kernel/hostname' 2>&1; hostname; "
               "cat /proc/sys/kernel/ostype /proc/sys/kernel/osrelease; "
               "cat /proc/sys/kernel/random/boot_id /proc/sys/kernel/random/boot_id; "
               "cat /proc/sys/kernel/random/uuid /proc/sys/kernel/random/uuid; true")
    lines = text.splitlines()
    assert lines[:2] == ["newhost", "newhost"]
    assert "Permission denied" in lines[2] and lines[3] == "newhost"
    assert lines[4] == "Linux" and lines[5].startswith("6.")
    assert lines[6] == lines[7] and lines[8] != lines[9]
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", x)
               for x in lines[6:10])


def test_other_users_see_no_secrets():
    text = out("su user -c 'cat /proc/1/environ; ls /proc/1/fd; readlink /proc/1/cwd || echo nolink; "
               "cat /proc/1/stat >/dev/null && echo stat-ok' 2>&1; true")
    assert "can't open '/proc/1/environ': Permission denied" in text
    assert "can't open '/proc/1/fd': Permission denied" in text
    assert "nolink" in text and "stat-ok" in text


def test_maps_shows_the_guest_view():
    text = out("cat /proc/self/maps; true")
    lines = text.splitlines()
    row = re.compile(r"([0-9a-f]{8,16})-([0-9a-f]{8,16}) ([r-][w-][x-][ps]) [0-9a-f]{8} "
                     r"[0-9a-f]{2}:[0-9a-f]{2} \d+ ( *(\S.*))?")
    names = []
    for line in lines:
        m = row.fullmatch(line)
        assert m, line
        assert not 0x10000 <= int(m.group(1), 16) < 0x11000   # no stub page
        names.append(m.group(5) or "")
    assert "/bin/busybox" in names and "[stack]" in names
    assert not any(n.startswith("/") and n != "/bin/busybox" and "(deleted)" not in n for n in names)
    assert "umlpy" not in text
    text = out("cat /proc/self/statm; true")
    size, resident, *rest = map(int, text.split())
    assert size >= resident > 0 and len(rest) == 5


def test_dead_pids_disappear_and_proc_unmounts():
    text = out("sleep 30 & p=$!; cat /proc/$p/stat >/dev/null && echo alive; kill $p; wait; "
               "[ -e /proc/$p ] && echo stale || echo gone; cat /proc/$p/stat 2>&1; "
               "cd /; umount /proc && echo unmounted; ls /proc | wc -l; true")
    assert "alive\ngone\n" in text
    assert "No such file or directory" in text
    assert text.endswith("unmounted\n0\n")


def test_top_and_stat():
    text = out("top -b -n 1; head -1 /proc/stat; grep -c ^processor /proc/cpuinfo; nproc; true")
    assert re.search(r"^Mem: \d+K used, \d+K free", text, re.M)
    assert re.search(r"^\s*PID\s+PPID\s+USER\s+STAT\s+VSZ", text, re.M)
    assert re.search(r"^\s*1\s+0\s+root\s+S\s+\d+", text, re.M)
    assert re.search(r"^cpu  \d+ 0 \d+ \d+ 0 0 0 0 0 0$", text, re.M)
    assert text.endswith("1\n1\n")


def test_sysfs_and_mdev(tmp_path):
    img = tmp_path / "disk.img"
    img.write_bytes(bytes(1 << 20))
    text = out("mount -t sysfs sysfs /sys; cat /sys/devices/system/cpu/online; "
               "cat /sys/block/ubda/dev /sys/block/ubda/size /sys/class/tty/console/dev; "
               "cat /sys/kernel/mm/transparent_hugepage/enabled; ls /sys/dev/char | tr '\\n' ' '; echo; "
               "mdev -s; echo mdev=$?; echo hi > /dev/null && echo null-ok; ls /dev/ubda; true",
               f"ubd0={img}")
    lines = text.splitlines()
    assert lines[:5] == ["0", "98:0", "2048", "5:1", "always [madvise] never"]
    assert set(lines[5].split()) >= {"1:3", "5:1", "5:0"}
    assert lines[6:9] == ["mdev=0", "null-ok", "/dev/ubda"]


def test_mdev_populates_an_empty_dev():
    text = out("mount -t sysfs sysfs /sys; mount -t tmpfs tmpfs /dev; "
               "mdev -s; ls -l /dev | grep -E ' (null|console|zero)$'; true")
    assert re.search(r"^c.* 1, +3 .* null$", text, re.M)
    assert re.search(r"^c.* 5, +1 .* console$", text, re.M)


def test_threads_limits_and_oom_score_adj():
    text = out("readlink /proc/thread-self; ls /proc/self/task; cat /proc/$$/task/*/comm; "
               "head -2 /proc/self/limits; echo 500 > /proc/self/oom_score_adj; "
               "cat /proc/self/oom_score_adj; echo 5000 > /proc/self/oom_score_adj 2>/dev/null || echo einval; "
               "true")
    lines = text.splitlines()
    pid = re.fullmatch(r"(\d+)/task/(\d+)", lines[0])
    assert pid and pid.group(1) == pid.group(2)
    assert re.fullmatch(r"\d+", lines[1]) and lines[2] == "sh"
    assert lines[3].split() == ["Limit", "Soft", "Limit", "Hard", "Limit", "Units"]
    assert lines[4].split() == ["Max", "cpu", "time", "unlimited", "unlimited", "seconds"]
    assert lines[5:] == ["500", "einval"]      # inherited by cat, as fork copies it


def test_smaps_lists_every_mapping_with_its_counters():
    r = sh("mount -t proc proc /proc; grep -c . /proc/self/maps; grep -c '^Rss:' /proc/self/smaps; "
           "grep -m1 '^Size:' /proc/self/smaps | awk '{print ($2 > 0)}'")
    maps, rss, size_ok = r.stdout.split()
    assert maps == rss and int(maps) > 3 and size_ok == b"1"


def test_smaps_rollup_adds_up_smaps():
    """psutil's memory_full_info reads smaps_rollup: its counters are the
    sums of smaps (of a sleeping process, whose pages do not change), its
    header spans the mappings without the vsyscall gate, and its lines
    come in Linux 6.1's order."""
    text = out("sleep 30 & p=$!; sleep 1; cat /proc/$p/smaps_rollup; echo ==; cat /proc/$p/smaps; echo ==; "
               "cat /proc/$p/maps; kill $p; true")
    rollup, smaps, maps = text.split("==\n")
    head, *rows = rollup.splitlines()
    first, last = maps.splitlines()[0], [m for m in maps.splitlines() if "[vsyscall]" not in m][-1]
    assert head.split()[0] == first.split("-")[0] + "-" + last.split()[0].split("-")[1]
    assert head.split()[1:] == ["---p", "00000000", "00:00", "0", "[rollup]"] and head.index("[rollup]") == 73
    fields = dict((k, int(v.split()[0])) for k, v in (row.split(":") for row in rows))
    assert list(fields) == ["Rss", "Pss", "Pss_Dirty", "Pss_Anon", "Pss_File", "Pss_Shmem", "Shared_Clean",
                            "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced", "Anonymous",
                            "LazyFree", "AnonHugePages", "ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb",
                            "Private_Hugetlb", "Swap", "SwapPss", "Locked"]
    assert all(re.fullmatch(r"[A-Za-z_]+: +\d+ kB", row) and len(row) == 27 for row in rows)

    def total(name: str) -> int:
        return sum(int(line.split()[1]) for line in smaps.splitlines() if line.startswith(name + ":"))
    # Pss moves with the readers that share busybox's pages: Rss does not
    assert fields["Rss"] == total("Rss") > 0 and fields["Pss"] > 0
    assert fields["Pss_Anon"] + fields["Pss_File"] + fields["Pss_Shmem"] == fields["Pss"]


def test_io_accounting_of_the_disk(tmp_path):
    """/proc/PID/io's read_bytes and write_bytes and getrusage's
    ru_inblock/ru_oublock for the ext4 disk: a cold read of a file reads at
    least the file from the disk, a cached one nothing, one after
    vm.drop_caches (write-only, 1 to 4) the file again (and it loses no
    data not yet on the disk, no page a mapping holds or wrote), a
    10 000-byte write
    dirties three pages (24 blocks of 512 bytes), a child's write comes to
    its parent with the wait: what Linux gives on a host ext4 file system
    after drop_caches (t_ioac -disk)."""
    r = sh("mount -t proc proc /proc; mkdir -p /mnt; mount /dev/ubda /mnt; "
           "/t/bin/t_ioac -disk /mnt/t/bin/t_statx.pie /mnt/tmp; umount /mnt",
           f"ubd0={tmp_path / 'cow'},{ROOT / 'rootfs' / 'busybox.img'}")
    lines = r.stdout.decode().splitlines()
    assert re.fullmatch(r"cold read of \d+ bytes: read_bytes at least the file", lines[0]), (r.stdout, r.stderr)
    assert lines[1:] == ["cached read: read_bytes 0",
                         "drop_caches read: EACCES",
                         "drop_caches write: 0 EINVAL, 1 1",
                         "read after drop_caches: read_bytes at least the file",
                         "unsynced write after drop_caches: unsynced",
                         "a mapped page after drop_caches: mapped-1",
                         "an unmapped page after drop_caches: mapped-2",
                         "write of 10000 bytes: write_bytes 12288, ru_oublock 24, cancelled 0",
                         "ru_inblock at least the file",
                         "unlinked before write-back: cancelled 12288",
                         "child's write: wait4 ru_oublock 8, RUSAGE_CHILDREN ru_oublock 8",
                         "done"], (r.stdout, r.stderr)


@pytest.mark.parametrize("where", ["ext4", "tmpfs"])
def test_drop_caches_evicts_evictable_fanotify_marks(where, tmp_path):
    """vm.drop_caches' 2 evicts the inodes nothing holds: an evictable
    fanotify mark (FAN_MARK_EVICTABLE, which does not hold its inode) goes
    with its inode on a disk; one on an open file or the cwd stays, as does
    an ordinary mark, and on tmpfs, whose dentries are pinned, all stay
    (LTP fanotify10, fanotify23)."""
    mount = "mount /dev/ubda /mnt" if where == "ext4" else "mount -t tmpfs t /mnt"
    r = sh(f"mount -t proc proc /proc; mkdir -p /mnt; {mount}; /t/bin/t_fanotify /mnt evict",
           f"ubd0={tmp_path / 'cow'},{ROOT / 'rootfs' / 'busybox.img'}")
    evicted = "-1 ENOENT" if where == "ext4" else "0"
    assert r.stdout.decode().splitlines() == [
        "evictable mark on f: 0", "evictable mark on open g: 0", "evictable mark on the cwd: 0", "mark on h: 0",
        "drop_caches 2: 1", f"remove f's (evicted): {evicted}", "remove g's (held open): 0",
        "remove the cwd's (held): 0", "remove h's (pins h): 0", "done"], (r.stdout, r.stderr[-3000:])


def test_vmstat(tmp_path):
    """/proc/vmstat (procps' vmstat, sar and psutil read it): Linux 6.1's
    123 names in its order (UML's), the free and anonymous pages as
    meminfo has them, the disks' reads in pgpgin, drop_caches' writes and
    the dirty thresholds."""
    r = sh("mount -t proc proc /proc; mkdir -p /mnt; mount /dev/ubda /mnt; cat /proc/vmstat > /v1; "
           "cat /mnt/bin/busybox > /dev/null; echo 3 > /proc/sys/vm/drop_caches; cat /proc/vmstat; "
           "echo @@; cat /v1; echo @@; grep -E 'MemFree' /proc/meminfo",
           f"ubd0={tmp_path / 'cow'},{ROOT / 'rootfs' / 'busybox.img'}")
    after, before, meminfo = r.stdout.decode().split("@@\n")
    v = dict(line.split() for line in after.splitlines())
    v0 = dict(line.split() for line in before.splitlines())
    names = [line.split()[0] for line in after.splitlines()]
    assert len(names) == 123 and names[0] == "nr_free_pages" and names[-1] == "nr_unstable", names
    assert names.index("pgpgin") < names.index("drop_pagecache") < names.index("oom_kill")
    assert int(v["pgpgin"]) - int(v0["pgpgin"]) >= 1000, (v["pgpgin"], v0["pgpgin"])     # busybox: 1+ MB read
    assert (v["drop_pagecache"], v["drop_slab"], v0["drop_pagecache"]) == ("1", "1", "0")
    free_kb = int(meminfo.split()[1])
    assert abs(int(v["nr_free_pages"]) * 4 - free_kb) < 4096
    assert int(v["nr_dirty_threshold"]) == int(v["nr_free_pages"]) * 20 // 100


def test_disk_stats(tmp_path):
    """/sys/block/DISK/stat and /proc/diskstats count the disk's requests
    as Linux's part_stat_show and diskstats_show print them (17 figures,
    fields of 8): a 4 MiB file written and synced adds at least its 8192
    sectors to the written ones, a flush, and busy time (io_ticks, which
    LTP's tst_dev_bytes_written needs above 0 before it trusts the rest)."""
    r = sh("mount -t proc proc /proc; mount -t sysfs sysfs /sys; mkdir -p /mnt; mount /dev/ubda /mnt; "
           "cat /sys/block/ubda/stat; dd if=/dev/zero of=/mnt/tmp/x bs=1M count=4 2>/dev/null; sync; "
           "cat /sys/block/ubda/stat; grep ' ubda ' /proc/diskstats; rm /mnt/tmp/x; umount /mnt",
           f"ubd0={tmp_path / 'cow'},{ROOT / 'rootfs' / 'busybox.img'}")
    before, after, proc = r.stdout.decode().splitlines()[:3]
    assert re.fullmatch(r"( {0,7}\d+ ){16} {0,7}\d+", after), after
    b, a = [int(v) for v in before.split()], [int(v) for v in after.split()]
    assert len(a) == 17 and a[0] > 0 and a[2] > 0           # reads: the mount's
    assert a[6] - b[6] >= 8192 and a[4] > b[4]             # written sectors, writes
    assert a[9] > 0 and a[15] > b[15]                       # io_ticks, flushes
    assert a[8] == 0 and a[1] == a[5] == 0                  # nothing in flight, no merges
    assert proc.split()[:3] == ["98", "0", "ubda"] and [int(v) for v in proc.split()[3:]] == a


def test_config_gz_tells_what_the_kernel_has():
    """/proc/config.gz (IKCONFIG_PROC): test suites read it to skip what the
    kernel lacks; it must say what umlpy has and what it does not."""
    text = out("ls -l /proc/config.gz; zcat /proc/config.gz")
    size = int(text.splitlines()[0].split()[4])
    assert size > 0
    opts = text.splitlines()[1:]
    assert "CONFIG_UML=y" in opts and "CONFIG_EXT2_FS=y" in opts and "CONFIG_INET=y" in opts
    assert "CONFIG_EPOLL=y" in opts and "CONFIG_SYSVIPC=y" in opts
    assert "# CONFIG_MODULES is not set" in opts and "CONFIG_USER_NS=y" in opts
    assert "CONFIG_BPF_SYSCALL=y" in opts and "# CONFIG_BPF_JIT is not set" in opts


def test_unprivileged_bpf_disabled_sysctl():
    """kernel.unprivileged_bpf_disabled: 0 (UML 6.1's default) to 2; once 1
    it stays 1 (EPERM), as bpf_unpriv_handler."""
    text = out("cd /proc/sys/kernel; cat unprivileged_bpf_disabled; echo 2 > unprivileged_bpf_disabled; "
               "cat unprivileged_bpf_disabled; (echo 3 > unprivileged_bpf_disabled) 2>/dev/null || echo refused; "
               "echo 1 > unprivileged_bpf_disabled; (echo 0 > unprivileged_bpf_disabled) 2>/dev/null || echo stuck; "
               "cat unprivileged_bpf_disabled")
    assert text.split() == ["0", "2", "refused", "stuck", "1"]


def test_pipe_sysctls():
    """fs.pipe-max-size is stored as a power-of-two count of pages (EINVAL
    past 2 GiB); the per-user page limits take any number; root only."""
    text = out("cd /proc/sys/fs; cat pipe-max-size pipe-user-pages-soft pipe-user-pages-hard; "
               "echo 5000 > pipe-max-size; cat pipe-max-size; echo 0 > pipe-max-size; cat pipe-max-size; "
               "(echo 2147483649 > pipe-max-size) 2>/dev/null || echo refused; cat pipe-max-size; "
               "echo 2147483648 > pipe-max-size; cat pipe-max-size; "
               "(echo x > pipe-user-pages-soft) 2>/dev/null || echo refused; echo 7 > pipe-user-pages-hard; "
               "cat pipe-user-pages-hard; su user -c 'echo 1 > pipe-user-pages-soft' 2>/dev/null || echo denied; "
               "cat pipe-user-pages-soft; true")
    assert text.split() == ["1048576", "16384", "0", "8192", "4096", "refused", "4096",
                            "2147483648", "refused", "7", "denied", "16384"], text


def test_lease_break_time():
    """An ignored lease break ends after fs.lease-break-time seconds: the
    write lease becomes a read lease for a reader and goes for a writer."""
    text = out("cat /proc/sys/fs/lease-break-time /proc/sys/fs/leases-enable; "
               "(echo x > /proc/sys/fs/lease-break-time) 2>/dev/null || echo refused; "
               "mkdir -p /tmp/s; /t/bin/t_lease /tmp/s timeout; cat /proc/sys/fs/lease-break-time; true")
    assert text.split("\n") == [
        "45", "1", "refused", "write lease: 0",
        "an open for reading breaks it: SIGIO, si_code 128", "  the child's call: done",
        "  waited about a second: yes", "  F_GETLEASE: F_RDLCK",
        "an open for writing breaks it: SIGIO, si_code 128", "  the child's call: done",
        "  F_GETLEASE: F_UNLCK", "done", "1", ""], text


def test_dmesg_reads_the_kernel_log_and_dmesg_restrict_guards_it():
    """syslog(2): dmesg shows the boot log, -c clears it; unprivileged users
    are refused while kernel.dmesg_restrict is 1 (the default, as Debian)."""
    as_user = "su user -s /bin/sh -c "
    text = out("dmesg | head -2; dmesg -c > /dev/null; echo cleared $(dmesg | wc -l); "
               f"{as_user}dmesg 2>&1; echo nobody=$?; echo 0 > /proc/sys/kernel/dmesg_restrict; "
               f"{as_user}dmesg > /dev/null; echo open=$?; echo 5 > /proc/sys/kernel/dmesg_restrict; "
               "cat /proc/sys/kernel/dmesg_restrict")
    lines = text.splitlines()
    assert lines[0].startswith("[") and "Linux version" in lines[0]
    assert "cleared 0" in lines
    assert "nobody=1" in lines and "open=0" in lines
    assert lines[-1] == "0"


def test_dev_kmsg_reads_and_writes_the_log():
    """/dev/kmsg (tests/progs/t_kmsg.c): records one a read, user space's
    lines logged, seeks and poll; syslog(2) shows the lines written there.
    Its node is root's, mode 0644, as Linux's devtmpfs makes it; a reader
    needs what dmesg needs (kernel.dmesg_restrict)."""
    as_user = "su user -s /bin/sh -c "
    text = out("/t/bin/t_kmsg; echo rc=$?; dmesg | grep -c '] t_kmsg s[a]ys hello'; ls -l /dev/kmsg; "
               f"{as_user}'cat /dev/kmsg' 2>&1 | grep -c 'Operation not permitted'; "
               "echo 0 > /proc/sys/kernel/dmesg_restrict; "
               f"{as_user}'dd if=/dev/kmsg bs=8192 count=1 2>/dev/null' | grep -c 'Linux version'")
    assert "FAIL" not in text and "rc=0" in text, text
    after = text.split("rc=0")[1].split()
    assert after[0] == "1" and after[1] == "crw-r--r--" and after[5:7] == ["1,", "11"], text
    assert after[-2:] == ["1", "1"], text


def test_pipe_max_size_is_a_limit_for_the_unprivileged():
    """/proc/sys/fs/pipe-max-size takes what round_pipe_size makes of a
    value (a page at least, past 2^31 EINVAL); new pipes of users without
    CAP_SYS_RESOURCE are no bigger, and they may not grow past it (LTP
    fcntl35).  Guest only: natively it would change the host's limit."""
    text = out("/t/bin/t_pipe - max-size")
    assert text == ("write 0: 1\n  now 4096\nwrite 5000: 4\n  now 8192\n"
                    "write 4294967295: -1 EINVAL\n  now 8192\nwrite -1: -1 EINVAL\n  now 8192\n"
                    "write x: -1 EINVAL\n  now 8192\nwrite 1048576: 7\n  now 1048576\n"
                    "write 8192: 4\n  now 8192\n"
                    "root's new pipe: 65536\nroot sets 64K: 65536\n"
                    "user's new pipe: 8192\nuser sets 64K: -1 EPERM\nuser sets 8K: 8192\ndone\n")



def test_init_rlimits_are_linux_init_task_s():
    """init's resource limits as Linux's INIT_RLIMITS leave them (what UML
    shows in /proc/1/limits): RLIMIT_NPROC and RLIMIT_SIGPENDING half of
    threads-max, RLIMIT_RTTIME unlimited."""
    text = out("cat /proc/sys/kernel/threads-max; cat /proc/1/limits")
    threads_max, *limits = text.splitlines()
    half = int(threads_max) // 2
    rows = [re.split(r"\s{2,}", line.strip()) for line in limits[1:]]
    assert rows == [
        ["Max cpu time", "unlimited", "unlimited", "seconds"],
        ["Max file size", "unlimited", "unlimited", "bytes"],
        ["Max data size", "unlimited", "unlimited", "bytes"],
        ["Max stack size", "8388608", "unlimited", "bytes"],
        ["Max core file size", "0", "unlimited", "bytes"],
        ["Max resident set", "unlimited", "unlimited", "bytes"],
        ["Max processes", str(half), str(half), "processes"],
        ["Max open files", "1024", "4096", "files"],
        ["Max locked memory", "8388608", "8388608", "bytes"],
        ["Max address space", "unlimited", "unlimited", "bytes"],
        ["Max file locks", "unlimited", "unlimited", "locks"],
        ["Max pending signals", str(half), str(half), "signals"],
        ["Max msgqueue size", "819200", "819200", "bytes"],
        ["Max nice priority", "0", "0"],
        ["Max realtime priority", "0", "0"],
        ["Max realtime timeout", "unlimited", "unlimited", "us"],
    ], rows


def test_prctl_set_mm_moves_argv():
    """prctl(PR_SET_MM) as systemd uses it to name its services'
    processes: /proc/PID/cmdline follows ARG_START/ARG_END, a child keeps
    it; Linux's checks; the exe file is not moved (EINVAL and a log line).
    Not compared with the host: the host's sandbox lacks CAP_SYS_RESOURCE."""
    r = sh("mount -t proc proc /proc; /t/bin/t_setmm; dmesg | grep -c 'prctl PR_SET_MM_EXE_FIL[E] not supported'")
    assert r.stdout.decode() == """\
arg_start: ok
arg_end: ok
cmdline: renamed-process (16 bytes)
below mmap_min_addr: EINVAL
past the address space: EINVAL
a fourth argument: EINVAL
end before start: EINVAL
start_brk past brk: EINVAL
map_size: ok
struct prctl_mm_map: 104 bytes
exe_file: EINVAL
option 99: EINVAL
child's cmdline: renamed-process
as nobody: EPERM
done
1
"""
