"""Memory as Linux manages it: overcommit policy, the OOM killer, oom_score."""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IMAGE, PATH_ENV, PROGS, ROOT, UMLPY, boot, sh

PROC = "mount -t proc proc /proc 2>/dev/null; "
HOLD = ("/t/bin/t_oom hold {map} {touch} > /tmp/r & P=$!; "
        "while ! grep -q ready /tmp/r 2>/dev/null; do sleep 0.1; done; ")


def _loud(script: str, *params: str):
    """A guest whose kernel log (every level) is in stderr."""
    return boot("loglevel=8", "init=/bin/sh", PATH_ENV, *params, init_args=["-c", PROC + script])


def test_hog_is_killed_and_the_rest_goes_on():
    r = _loud(HOLD.format(map=4, touch=4) + "/t/bin/t_oom hog; echo hog $?; "
              "kill -0 $P && echo idle alive; echo after", "mem=64M")
    out, log = r.stdout.decode(), r.stderr.decode()
    assert "hog 137\nidle alive\nafter\n" in out, (out, log[-3000:])
    m = re.search(r"Out of memory: Killed process (\d+) \(t_oom\) total-vm:\d+kB, anon-rss:(\d+)kB, "
                  r"file-rss:\d+kB, shmem-rss:\d+kB, UID:0 pgtables:\d+kB oom_score_adj:0", log)
    assert m, log[-3000:]
    assert int(m[2]) > 32 << 10        # the hog, not the 4 MiB one
    assert re.search(r"oom-kill:constraint=CONSTRAINT_NONE,.*,task=t_oom,pid=%s,uid=0" % m[1], log)
    assert f"oom_reaper: reaped process {m[1]} (t_oom)" in log
    assert log.count("Killed process") == 1


def test_oom_score_adj_picks_the_victim():
    """The small idle one at +1000 goes before the hog (at -500, so that
    what the hog touches past mem= before the sample cannot outweigh it)."""
    r = _loud(HOLD.format(map=4, touch=4) + "echo 1000 > /proc/$P/oom_score_adj; echo idle $P; "
              "sh -c 'echo -500 > /proc/self/oom_score_adj; exec /t/bin/t_oom hog'; echo hog $?; "
              "wait $P; echo idle $?", "mem=64M")
    out, log = r.stdout.decode(), r.stderr.decode()
    idle = re.search(r"idle (\d+)", out)[1]
    assert "hog 137\nidle 137\n" in out, (out, log[-3000:])
    first = re.findall(r"Killed process (\d+) .* oom_score_adj:(-?\d+)", log)
    assert first[0] == (idle, "1000"), log[-3000:]


def test_unkillable_and_allocating_task():
    """oom_score_adj -1000 is never chosen; vm.oom_kill_allocating_task
    takes the running hog over a bigger-scored idle one."""
    r = _loud(HOLD.format(map=4, touch=4) + "echo 1000 > /proc/$P/oom_score_adj; "
              "echo 1 > /proc/sys/vm/oom_kill_allocating_task; "
              "/t/bin/t_oom hog; echo hog $?; kill -0 $P && echo idle alive", "mem=64M")
    out, log = r.stdout.decode(), r.stderr.decode()
    assert "hog 137\nidle alive\n" in out, (out, log[-3000:])
    assert "Out of memory (oom_kill_allocating_task): Killed process" in log


def test_panic_on_oom():
    r = _loud("echo 1 > /proc/sys/vm/panic_on_oom; /t/bin/t_oom hog; echo survived", "mem=64M")
    assert b"Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled" in r.stderr
    assert b"survived" not in r.stdout


def test_overcommit_modes():
    script = PROC + "".join(
        f"echo {mode} > /proc/sys/vm/overcommit_memory; /t/bin/t_oom map 8; /t/bin/t_oom map 48; "
        "/t/bin/t_oom map 100; /t/bin/t_oom map 1024; "
        for mode in (2, 1, 0))
    script += ("echo 2 > /proc/sys/vm/overcommit_memory; echo 1048576 > /proc/sys/vm/overcommit_kbytes; "
               "cat /proc/sys/vm/overcommit_ratio; /t/bin/t_oom map 512; grep CommitLimit /proc/meminfo; "
               "echo 100 > /proc/sys/vm/overcommit_ratio; cat /proc/sys/vm/overcommit_kbytes; "
               "grep CommitLimit /proc/meminfo; (echo 3 > /proc/sys/vm/overcommit_memory) 2>/dev/null || echo EINVAL")
    out = sh(script, "mem=64M").stdout.decode().split("\n")
    assert out[:12] == ["map 8 MiB: ok", "map 48 MiB: ENOMEM", "map 100 MiB: ENOMEM", "map 1024 MiB: ENOMEM",
                        "map 8 MiB: ok", "map 48 MiB: ok", "map 100 MiB: ok", "map 1024 MiB: ok",
                        "map 8 MiB: ok", "map 48 MiB: ok", "map 100 MiB: ENOMEM", "map 1024 MiB: ENOMEM"]
    assert out[12:] == ["0", "map 512 MiB: ok", "CommitLimit:     1048576 kB", "0",
                        "CommitLimit:       53268 kB", "EINVAL", ""]


def test_oom_score_files():
    script = PROC + HOLD.format(map=4, touch=4) + (
        "cat /proc/1/oom_score /proc/$P/oom_score; echo 1000 > /proc/$P/oom_score_adj; "
        "cat /proc/$P/oom_score /proc/$P/oom_adj; echo -1000 > /proc/$P/oom_score_adj; "
        "cat /proc/$P/oom_score /proc/$P/oom_adj; echo 8 > /proc/$P/oom_adj; cat /proc/$P/oom_score_adj; "
        "echo 500 > /proc/self/oom_score_adj; sh -c 'cat /proc/self/oom_score_adj'; "
        "(echo 1001 > /proc/self/oom_score_adj) 2>/dev/null || echo EINVAL; "
        "(echo 16 > /proc/self/oom_adj) 2>/dev/null || echo EINVAL; "
        "/t/bin/t_oom unpriv")
    out = sh(script, "mem=64M").stdout.decode().split("\n")
    init, small, high, adj15, zero, adj_min, from_adj = (int(v) for v in out[:7])
    assert init == 0 and 666 < small < 800 and 1333 < high <= 2000 and adj15 == 15
    assert zero == 0 and adj_min == -17 and from_adj == 8 * 1000 // 17
    assert out[7:] == ["500", "EINVAL", "EINVAL", "write 100: ok", "write 50: EACCES", "write 300: ok",
                       "write 100: ok", "write 2000: EINVAL", ""]


def test_meminfo_follows_use():
    script = PROC + ("echo 1 > /proc/sys/vm/overcommit_memory; "
                     "m() { awk -v k=$1: '$1 == k {print $2}' /proc/meminfo; }; "
                     "echo $(m MemTotal) $(m MemFree) $(m Committed_AS); "
                     + HOLD.format(map=200, touch=32) +
                     "echo $(m MemFree) $(m Committed_AS) $(m AnonPages); "
                     "free | awk '$1 == \"Mem:\" {print $2, $4}'; kill $P")
    out = sh(script, "mem=128M").stdout.decode().split()
    total, free0, commit0, free1, commit1, anon1, ftotal, ffree = (int(v) for v in out)
    assert total == ftotal == 117492          # mem=128M less the kernel's own
    assert free0 - free1 >= 30 << 10                # touched: used
    assert commit1 - commit0 >= 200 << 10           # mapped: committed, not used
    assert anon1 >= 32 << 10
    assert abs(ffree - free1) < 4 << 10


def test_touching_without_syscalls_is_caught():
    """One mapping, then page faults only: the kernel's timer still sees it."""
    r = _loud("echo 1 > /proc/sys/vm/overcommit_memory; /t/bin/t_oom hold 256 256; echo hold $?", "mem=64M")
    assert b"hold 137\n" in r.stdout, r.stderr[-3000:]
    assert b"Out of memory: Killed process" in r.stderr


@pytest.mark.parametrize("user", ["root", "user"])
def test_host_side_faulting_stops_at_mem(user):
    """The calls that have the host fault memory in for the guest, in one
    injected call the kernel waits on (MADV_POPULATE_WRITE, MAP_POPULATE,
    mlock), over 4 GiB of MAP_NORESERVE memory in a 64M guest: the kernel
    faults in pieces and stops at mem= (the OOM killer takes the caller, as
    Linux's when the faulting finds no memory); before, the host faulted
    all of it in, past mem= and the OOM timer, while the kernel waited."""
    hows = ["madvise", "map"] + (["mlock"] if user == "root" else [])
    run = "{}" if user == "root" else "su user -s /bin/sh -c '{}'"
    script = "".join(run.format(f"/t/bin/t_oom populate {how}") + f"; echo {how} $?; " for how in hows)
    r = _loud(script, "mem=64M")
    out, log = r.stdout.decode(), r.stderr.decode()
    for how in hows:
        assert f"{how} 137\n" in out, (out, log[-3000:])
    assert "populate" not in out, out       # killed inside the call, never back from it
    assert log.count("t_oom invoked oom-killer") == len(hows), log[-3000:]
    # what each held when killed: about mem=, not the 4 GiB asked for
    held = [int(kb) for kb in re.findall(r"Killed process \d+ \(t_oom\) total-vm:\d+kB, anon-rss:(\d+)kB", log)]
    assert len(held) == len(hows) and max(held) < 96 << 10, held


MEMCG_LIMIT = 64 << 20          # the guest's mem=64M
KILLED = (r"Killed process (\d+) \(t_oomkill\) total-vm:\d+kB, anon-rss:\d+kB, file-rss:(\d+)kB, "
          r"shmem-rss:(\d+)kB, UID:0 pgtables:\d+kB oom_score_adj:(-?\d+)")


def _killed(log: str, prefix: str, pids: tuple[str, ...]) -> list[tuple[str, bool, bool]]:
    """For each of pids, the last "Killed process" line's (oom_score_adj,
    file-rss > 0, shmem-rss > 0)."""
    lines = {pid: (adj, file != "0", shmem != "0") for pid, file, shmem, adj in re.findall(prefix + KILLED, log)}
    return [lines.get(pid) for pid in pids]


def _own_cgroup(version: str) -> Path | None:
    """This process's group in the cgroup hierarchy that has the memory
    controller (version "2": the unified one; "1": the v1 memory one)."""
    mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _hid, ctrls, path = line.split(":", 2)
        if (version == "2" and ctrls == "") or (version == "1" and "memory" in ctrls.split(",")):
            for _dev, where, fstype, opts, *_ in mounts:
                if (version == "2" and fstype == "cgroup2") or \
                        (version == "1" and fstype == "cgroup" and "memory" in opts.split(",")):
                    return Path(where) / path.lstrip("/")
    return None


def _make_memcg(name: str) -> Path | None:
    """A memory cgroup limited to MEMCG_LIMIT without swap, under our own
    group (v2 if it offers the memory controller, else v1); None if
    neither can be made here."""
    parent = _own_cgroup("2")
    if parent is not None and "memory" in (parent / "cgroup.controllers").read_text().split():
        try:
            (parent / "cgroup.subtree_control").write_text("+memory")
            group = parent / name
            group.mkdir()
            (group / "memory.max").write_text(str(MEMCG_LIMIT))
            if (group / "memory.swap.max").exists():
                (group / "memory.swap.max").write_text("0")
            return group
        except OSError:
            pass
    parent = _own_cgroup("1")
    if parent is None or not parent.is_dir():
        return None
    try:
        group = parent / name
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(MEMCG_LIMIT))
        if (group / "memory.memsw.limit_in_bytes").exists():
            (group / "memory.memsw.limit_in_bytes").write_text(str(MEMCG_LIMIT))
        return group
    except OSError:
        return None


def _lowers_oom_score_adj() -> bool:
    """CAP_SYS_RESOURCE, which oom_score_adj below its floor needs: a
    container may lack it even as root."""
    caps = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("CapEff"))
    return bool(int(caps.split()[1], 16) >> 24 & 1)


@pytest.fixture
def memcg():
    if os.geteuid() != 0:
        pytest.skip("a memory cgroup needs root")
    group = _make_memcg(f"umlpy-oom-{os.getpid()}")
    if group is None:
        pytest.skip("no memory cgroup can be made here (neither v2 with the memory controller nor v1)")
    yield group
    for _ in range(50):
        try:
            group.rmdir()
            break
        except OSError:
            time.sleep(0.1)


@pytest.mark.parametrize("root", ["disk", "initramfs"])
def test_oom_victims_match_native_memcg(memcg, root, tmp_path):
    """t_oomkill in a 64 MiB memory cgroup on the host and in a mem=64M
    guest: the same victims in the same order (badness with oom_score_adj),
    SIGKILL, the same oom_score order, and Linux's "Killed process" lines
    with the victims' oom_score_adj (natively "Memory cgroup out of
    memory", the guest's OOM being global).  The program's own pages are
    file-rss when it runs from a disk, as natively, and shmem-rss from the
    initramfs (tmpfs, as Linux's rootfs).  The host may deny oom_score_adj
    -1000 (no CAP_SYS_RESOURCE): both sides then run with 0, and
    test_unkillable_and_allocating_task covers -1000 in the guest."""
    adj = "-1000" if _lowers_oom_score_adj() else "0"
    nat = subprocess.run(["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(memcg / "cgroup.procs"),
                          str(PROGS / "t_oomkill"), "victims", adj], capture_output=True, text=True, timeout=120)
    assert "died 1: A: killed by signal 9\n" in nat.stdout, (nat.stdout, nat.stderr)
    script = f"/t/bin/t_oomkill victims {adj} 2>/tmp/v; cat /tmp/v"        # the console is one stream
    if root == "disk":
        r = subprocess.run([str(UMLPY), str(IMAGE), "loglevel=8", PATH_ENV, "mem=64M", "rw", "init=/bin/sh",
                            f"ubd0={tmp_path / 'cow'},{ROOT / 'rootfs' / 'busybox.img'}", "--", "-c", PROC + script],
                           capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    else:
        r = _loud(script, "mem=64M")
    out, log = r.stdout.decode(), r.stderr.decode()
    out, _, victims = out.rpartition("victims ")
    assert out == nat.stdout, log[-3000:]
    in_disk = root == "disk"
    assert _killed(log, "Out of memory: ", tuple(victims.split())) == \
        [("800", in_disk, not in_disk), ("0", in_disk, not in_disk)], log[-3000:]
    dmesg = subprocess.run(["dmesg"], capture_output=True, text=True)
    if dmesg.returncode != 0:
        return              # the host's log is not ours to read: the outcomes matched
    nat_victims = tuple(re.search(r"victims (\d+) (\d+)", nat.stderr).groups())
    assert _killed(dmesg.stdout, "Memory cgroup out of memory: ", nat_victims) == \
        [("800", True, False), ("0", True, False)]


def test_overcommit_heuristic_matches_native():
    """vm.overcommit_memory 0 against RAM + swap as /proc/meminfo gives
    them: natively (the host's global sysctl, read, never changed: compared
    only when it is 0) and in the guest; then 1 and 2 in the guest alone,
    as Documentation/mm/overcommit-accounting.rst says (2: CommitLimit,
    half of RAM here, is already passed by half of RAM plus what is
    committed)."""
    script = PROC + "".join(f"echo {m} > /proc/sys/vm/overcommit_memory; /t/bin/t_oomkill overcommit; "
                            for m in (0, 1, 2))
    out = sh(script, "mem=64M").stdout.decode()
    mode0, mode1, mode2 = ("overcommit_memory " + part for part in out.split("overcommit_memory ")[1:])
    assert mode1.splitlines()[1:] == ["map RAM+swap / 2: ok", "map RAM+swap - 1 MiB: ok",
                                      "map RAM+swap + 1 MiB: ok", "map 4 x (RAM+swap): ok"]
    assert mode2.splitlines()[1:] == ["map RAM+swap / 2: ENOMEM", "map RAM+swap - 1 MiB: ENOMEM",
                                      "map RAM+swap + 1 MiB: ENOMEM", "map 4 x (RAM+swap): ENOMEM"]
    if Path("/proc/sys/vm/overcommit_memory").read_text().strip() != "0":
        pytest.skip("the host's vm.overcommit_memory is not 0: the heuristic cannot be compared")
    nat = subprocess.run([str(PROGS / "t_oomkill"), "overcommit"], capture_output=True, text=True, timeout=60)
    assert mode0 == nat.stdout
