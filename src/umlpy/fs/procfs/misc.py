"""The machine-wide files at the top of /proc, in Linux 6.1's formats.

Memory: MemTotal is `mem=`, MemFree what the guest does not hold on the
host (its processes' anonymous and shmem pages and the shmem no process
maps, kernel/oom.usage) nor the kernel for its objects (Slab,
SUnreclaim: kernel/mm.Charge);
CommitLimit and Committed_AS are the commit accounting's (kernel/mm.py).
Cached is the disk filesystems' page cache (vfs/pagecache.py, host
memory beside the guest's, so MemFree does not count it); Buffers and the
other counters are zero.
CPU time: user time is what the guests' host processes ran, system time
what the kernel itself ran, the rest of the uptime is idle.
"""
from __future__ import annotations

from arch_um import clock, procinfo
from umlpy.abi import consts as C
from umlpy.abi import structs
from umlpy.fs import registry
from umlpy.fs.procfs.base import Spec, ro, symlink, text
from umlpy.fs.procfs.ipcfiles import sysvipc_files
from umlpy.fs.procfs.target import NS_PER_TICK, CONSOLE_TTY
from umlpy.kernel import oom, timekeeping, timens
from umlpy.kernel.task import State
from umlpy.vfs import devices as dev_registry
from umlpy.vfs import lease, locks, pagecache
from umlpy.vfs.devices import MEM_DEVICES, MISC_MAJOR

VMALLOC_TOTAL_KB = 34359738367
HUGEPAGE_KB = 2048

# name -> what it shows in kB (None: a count without unit), Linux's order
_MEMINFO = ["MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached",
            "Active", "Inactive", "Active(anon)", "Inactive(anon)", "Active(file)",
            "Inactive(file)", "Unevictable", "Mlocked", "SwapTotal", "SwapFree", "Zswap",
            "Zswapped", "Dirty", "Writeback", "AnonPages", "Mapped", "Shmem", "KReclaimable",
            "Slab", "SReclaimable", "SUnreclaim", "KernelStack", "PageTables", "NFS_Unstable",
            "Bounce", "WritebackTmp", "CommitLimit", "Committed_AS", "VmallocTotal",
            "VmallocUsed", "VmallocChunk", "Percpu", "HardwareCorrupted", "AnonHugePages",
            "ShmemHugePages", "ShmemPmdMapped", "FileHugePages", "FilePmdMapped",
            "HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp",
            "Hugepagesize", "Hugetlb", "DirectMap4k", "DirectMap2M", "DirectMap1G"]


def meminfo(kernel) -> str:
    b = kernel.mem_budget
    total = b.limit >> 10
    anon, shmem = (n >> 10 for n in oom.usage(kernel))
    slab = b.kmem >> 10
    active = min(anon + shmem, total)
    free = max(0, total - active - slab)
    vals = {"MemTotal": total, "MemFree": free, "MemAvailable": free,
            "Active": active, "Active(anon)": active, "AnonPages": anon, "Shmem": shmem,
            "Slab": slab, "SUnreclaim": slab,
            "Cached": pagecache.cache.total >> 10,
            "SwapTotal": b.swap >> 10, "SwapFree": b.swap >> 10,
            "CommitLimit": b.commit_limit() >> 10, "Committed_AS": b.used >> 10,
            "VmallocTotal": VMALLOC_TOTAL_KB,
            "Hugepagesize": HUGEPAGE_KB, "DirectMap4k": total}
    lines = []
    for name in _MEMINFO:
        unit = "" if name.startswith("HugePages_") else " kB"
        lines.append(f"{name + ':':<16}{vals.get(name, 0):>8}{unit}\n")
    return "".join(lines)


# /proc/vmstat's names, in Linux 6.1's order (UML's build: no NUMA, no
# THP, no swap devices)
_VMSTAT = """nr_free_pages nr_zone_inactive_anon nr_zone_active_anon nr_zone_inactive_file
nr_zone_active_file nr_zone_unevictable nr_zone_write_pending nr_mlock nr_bounce nr_zspages
nr_free_cma nr_inactive_anon nr_active_anon nr_inactive_file nr_active_file nr_unevictable
nr_slab_reclaimable nr_slab_unreclaimable nr_isolated_anon nr_isolated_file workingset_nodes
workingset_refault_anon workingset_refault_file workingset_activate_anon workingset_activate_file
workingset_restore_anon workingset_restore_file workingset_nodereclaim nr_anon_pages nr_mapped
nr_file_pages nr_dirty nr_writeback nr_writeback_temp nr_shmem nr_shmem_hugepages
nr_shmem_pmdmapped nr_file_hugepages nr_file_pmdmapped nr_anon_transparent_hugepages
nr_vmscan_write nr_vmscan_immediate_reclaim nr_dirtied nr_written nr_throttled_written
nr_kernel_misc_reclaimable nr_foll_pin_acquired nr_foll_pin_released nr_kernel_stack
nr_page_table_pages nr_sec_page_table_pages nr_swapcached nr_dirty_threshold
nr_dirty_background_threshold pgpgin pgpgout pswpin pswpout pgalloc_normal pgalloc_movable
allocstall_normal allocstall_movable pgskip_normal pgskip_movable pgfree pgactivate pgdeactivate
pglazyfree pgfault pgmajfault pglazyfreed pgrefill pgreuse pgsteal_kswapd pgsteal_direct
pgdemote_kswapd pgdemote_direct pgscan_kswapd pgscan_direct pgscan_direct_throttle pgscan_anon
pgscan_file pgsteal_anon pgsteal_file pginodesteal slabs_scanned kswapd_inodesteal
kswapd_low_wmark_hit_quickly kswapd_high_wmark_hit_quickly pageoutrun pgrotated drop_pagecache
drop_slab oom_kill pgmigrate_success pgmigrate_fail thp_migration_success thp_migration_fail
thp_migration_split compact_migrate_scanned compact_free_scanned compact_isolated compact_stall
compact_fail compact_success compact_daemon_wake compact_daemon_migrate_scanned
compact_daemon_free_scanned unevictable_pgs_culled unevictable_pgs_scanned unevictable_pgs_rescued
unevictable_pgs_mlocked unevictable_pgs_munlocked unevictable_pgs_cleared unevictable_pgs_stranded
balloon_inflate balloon_deflate balloon_migrate swap_ra swap_ra_hit zswpin zswpout
nr_unstable""".split()
DIRTY_RATIO, DIRTY_BACKGROUND_RATIO = 20, 10     # vm.dirty_ratio, vm.dirty_background_ratio


def vmstat(kernel) -> str:
    """/proc/vmstat with what the kernel counts, as meminfo: free and
    anonymous pages, shmem, the disks' reads and writes (pgpgin/pgpgout,
    in KiB), the dirty thresholds from the free memory (global_dirty_limits),
    drop_caches' writes and the OOM killer's kills; the rest 0."""
    b = kernel.mem_budget
    total = b.limit >> 12
    anon, shmem = (n >> 12 for n in oom.usage(kernel))
    slab = b.kmem >> 12
    free = max(0, total - anon - shmem - slab)
    sectors = [d.stats.fields() for d in kernel.disks]
    vals = {"nr_free_pages": free, "nr_zone_active_anon": anon + shmem, "nr_active_anon": anon + shmem,
            "nr_anon_pages": anon, "nr_shmem": shmem, "nr_file_pages": shmem,
            "nr_slab_unreclaimable": slab,
            "nr_dirty_threshold": free * DIRTY_RATIO // 100,
            "nr_dirty_background_threshold": free * DIRTY_BACKGROUND_RATIO // 100,
            "pgpgin": sum(f[2] for f in sectors) // 2, "pgpgout": sum(f[6] for f in sectors) // 2,
            **kernel.vm_events}
    return "".join(f"{name} {vals.get(name, 0)}\n" for name in _VMSTAT)


def cpuinfo() -> str:
    """The host CPU's description, as the one processor the guest has."""
    block = procinfo.cpuinfo().decode(errors="replace").split("\n\n")[0]
    fixed = {"processor": "0", "physical id": "0", "siblings": "1", "core id": "0",
             "cpu cores": "1", "apicid": "0", "initial apicid": "0"}
    lines = []
    for line in block.splitlines():
        key, sep, _ = line.partition(":")
        if sep and key.strip() in fixed:
            line = f"{key}: {fixed[key.strip()]}"
        lines.append(line)
    if not lines:
        lines = ["processor\t: 0", "vendor_id\t: umlpy", "model name\t: umlpy virtual CPU"]
    return "\n".join(lines) + "\n\n"


def _tasks(kernel):
    return [t for p in kernel.procs.by_pid.values() if not p.exited for t in p.threads]


def cpu_ticks(kernel) -> tuple[int, int, int]:
    """(user, system, idle) clock ticks since boot."""
    user = sum(clock.host_task_cpu_ns(t.hpid) for t in _tasks(kernel)
               if t.state is not State.DEAD) // NS_PER_TICK
    up = kernel.uptime_ns() // NS_PER_TICK
    # the kernel's CPU time counts from umlpy's start, a little before boot
    system = min(clock.process_cpu_ns() // NS_PER_TICK, max(0, up - user))
    return user, system, max(0, up - user - system)


def _running(kernel) -> int:
    return sum(1 for t in _tasks(kernel) if t.state in (State.USER, State.KERNEL)) or 1


def stat(kernel) -> str:
    user, system, idle = cpu_ticks(kernel)
    cpu = f"{user} 0 {system} {idle} 0 0 0 0 0 0"
    btime = (timekeeping.realtime_ns() - kernel.uptime_ns()) // 10**9
    # the timer's ticks as the interrupts (UML's timer is IRQ 0); the
    # switches the scheduler made, a task's wait each (nr_switches)
    ticks = kernel.uptime_ns() // NS_PER_TICK
    return (f"cpu  {cpu}\ncpu0 {cpu}\nintr {ticks} {ticks}\nctxt {kernel.sched.switches}\nbtime {btime}\n"
            f"processes {max(kernel.procs.by_pid, default=0)}\n"
            f"procs_running {_running(kernel)}\nprocs_blocked 0\n"
            "softirq 0 0 0 0 0 0 0 0 0 0 0\n")


def _centis(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"    # USER_HZ is 100


def uptime(kernel, reader) -> str:
    """The uptime in the reader's time namespace, the idle time the machine's."""
    _, _, idle = cpu_ticks(kernel)
    up = kernel.uptime_ns() + timens.offset_of(reader, C.CLOCK_BOOTTIME)
    return f"{_centis(up // NS_PER_TICK)} {_centis(idle)}\n"


def loadavg(kernel) -> str:
    total = len(_tasks(kernel))
    return f"0.00 0.00 0.00 {_running(kernel)}/{total} {max(kernel.procs.by_pid, default=0)}\n"


def filesystems() -> str:
    virtual = [f"nodev\t{t}\n" for t in registry.VIRTUAL_TYPES]
    return "".join(virtual + [f"\t{t}\n" for t in registry.DISK_TYPES])


def partitions(kernel) -> str:
    """Disks with a size (show_partition skips empty ones: unbound loops)."""
    out = ["major minor  #blocks  name\n\n"]
    for d in kernel.disks:
        if d.size:
            out.append(f"{d.major:4d}  {d.minor:7d} {d.size >> 10:10d} {d.name}\n")
    return "".join(out)


def devices(kernel) -> str:
    chars = sorted({(ma, "mem") for _, ma, _, _, _ in MEM_DEVICES}) + [
        (CONSOLE_TTY[0], "/dev/tty"), (CONSOLE_TTY[0], "/dev/console"), (MISC_MAJOR, "misc")]
    return ("Character devices:\n" + "".join(f"{ma:3d} {n}\n" for ma, n in chars)
            + "\nBlock devices:\n" + "".join(f"{ma:3d} {n}\n" for ma, n in dev_registry.block_majors()))


def diskstats(kernel) -> str:
    """diskstats_show: each disk's numbers, name and 17 figures (block/stats.py)."""
    return "".join(f"{d.major:4d} {d.minor:7d} {d.name} " + " ".join(map(str, d.stats.fields())) + "\n"
                   for d in kernel.disks)


_LOCK_TYPES = {locks.F_WRLCK: "WRITE", locks.F_RDLCK: "READ"}


def locks_text(kernel, task) -> bytes:
    """/proc/locks in Linux's lock_get_status format, newest first: flock,
    POSIX, OFD locks and leases, pids as the reader's pid namespace numbers
    them (an OFD lock's is -1).  Waiters (Linux's "->" lines) are not shown."""
    rows = []
    for serial, inode, kind, lk in locks.listing():
        pid = -1 if kind == "OFDLCK" else kernel.procs.vnr(task.proc, lk.pid)
        span = "0 EOF" if kind == "FLOCK" else f"{lk.start} EOF" if lk.end == locks.OFFSET_MAX \
            else f"{lk.start} {lk.end}"
        rows.append((serial, inode, f"{kind:6s} ADVISORY  {_LOCK_TYPES[lk.type]}", pid, span))
    for inode, ls in lease.listing():
        state = "BREAKING  " if ls.breaking else "ACTIVE    "
        ltype = _LOCK_TYPES.get(ls.target_type(), "UNLCK")
        rows.append((ls.serial, inode, f"LEASE  {state}{ltype}", kernel.procs.vnr(task.proc, ls.pid), "0 EOF"))
    rows.sort(key=lambda r: -r[0])
    return "".join(f"{n}: {what} {pid} {structs.major(i.fs.dev):02x}:{structs.minor(i.fs.dev):02x}:{i.ino} {span}\n"
                   for n, (_, i, what, pid, span) in enumerate(rows, 1)).encode()


def global_files(kernel) -> Spec:
    """The top of /proc other than the pids, self and sys."""
    k = kernel
    cpu_text = []

    def cpuinfo_once() -> str:
        if not cpu_text:
            cpu_text.append(cpuinfo())
        return cpu_text[0]
    return {
        "cmdline": ro(text(lambda: " ".join(k.params.words))),
        "config.gz": ro(lambda task: k.kconfig_gz, size=len(k.kconfig_gz)),
        "cpuinfo": ro(text(cpuinfo_once)),
        "devices": ro(text(lambda: devices(k))),
        "diskstats": ro(text(lambda: diskstats(k))),
        "key-users": ro(text(lambda: k.keys.proc_key_users())),
        "keys": ro(k.keys.proc_keys),
        "filesystems": ro(text(filesystems)),
        "loadavg": ro(text(lambda: loadavg(k))),
        "locks": ro(lambda task: locks_text(k, task)),
        "meminfo": ro(text(lambda: meminfo(k))),
        "modules": ro(lambda task: b""),
        "mounts": symlink("self/mounts"),
        "net": symlink("self/net"),
        "partitions": ro(text(lambda: partitions(k))),
        "stat": ro(text(lambda: stat(k))),
        "swaps": ro("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority"),
        "sysvipc": sysvipc_files(k),
        "uptime": ro(lambda task: uptime(k, task).encode()),
        "vmstat": ro(text(lambda: vmstat(k))),
        "version": ro(text(lambda: f"Linux version {k.release} (umlpy {k.version}) "
                                   f"{k.version_string}")),
    }
