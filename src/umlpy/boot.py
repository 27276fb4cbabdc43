"""Booting the guest kernel: from the command line to init, and back.

`start_kernel` is what the launcher calls with the image's configuration
and the command line; it returns umlpy's exit status (init's, as UML users
in CI want it), and reboots in place when the guest asks for a restart.
"""
from __future__ import annotations

from collections.abc import Callable

from arch_um import clock, host, ptrace, umid
from arch_um import mconsole as host_mc
from arch_um.console import HostChannel, write_log
from arch_um import debugger
from arch_um.debugger import post_mortem
from arch_um.hostfile import read_host_file
from arch_um.stub import Stub
from umlpy import kconfig, syscalls
from umlpy.checkpoint import restore as checkpoint_restore
from umlpy.abi import consts as C
from umlpy.abi.capability import CAP_SYS_ADMIN
from umlpy.abi import errno as E
from umlpy.abi import mount as MS
from umlpy.drivers import console as console_drv
from umlpy.drivers import line as line_drv
from umlpy.debug import gdbstub
from umlpy.drivers import mconsole as mconsole_drv
from umlpy.syscalls import coredump, sys_userfaultfd
from umlpy.fs import cpio
from umlpy.fs import exec as exec_
from umlpy.drivers import ubd as ubd_drv
from umlpy.drivers.loop import Loop
from umlpy.net import ipconfig, netlink
from umlpy.net.netlink_abi import NETLINK_KOBJECT_UEVENT, UEVENT_KERNEL_GROUP
from umlpy.net.netdev import NetStack
from umlpy.net.slirp import eth as slirp_eth
from umlpy.net.unix_gc import Inflight
from umlpy.fs import devtmpfs, registry
from umlpy.fs.hostfs import mount_hostfs
from umlpy.fs.tmpfs import Tmpfs
from umlpy.block.genhd import Disks
from umlpy.kernel import cmdline, printk, timekeeping, timens
from umlpy.kernel.errors import KernelError
from umlpy.kernel.futex import Futexes
from umlpy.kernel.keys import KeyService
from umlpy.kernel.mm import MemBudget, mapped_ids, totalram
from umlpy.kernel.oom import OomKiller
from umlpy.kernel.uevent import Uevents
from umlpy.kernel import nsproxy
from umlpy.kernel.process import Halt, Procs
from umlpy.kernel.sched import Scheduler
from umlpy.kernel.signal import Signals, frame_xstate_size
from umlpy.kernel.strace import start as strace_start
from umlpy.kernel.task import FsContext, State
from umlpy.kernel.cred import capable
from umlpy.kernel.tunables import Tunables, icache_limit_for, max_files_for, max_threads_for, max_user_watches_for
from umlpy.kernel.vdso import Vdso
from umlpy.kernel.vdso import space_of as vdso_space
from umlpy.vfs import devices, evict, pagecache
from umlpy.vfs.dentry import Dentry
from umlpy.vfs.inode import now_ns as inode_clock
from umlpy.vfs.fdtable import FdTable
from umlpy.vfs.file import files_stat
from umlpy.vfs.mounts import MountTable

DEFAULT_INITS = [b"/sbin/init", b"/etc/init", b"/bin/init", b"/bin/sh"]


class Kernel:
    def __init__(self, config: dict, params: cmdline.BootParams) -> None:
        self.config = config
        self.params = params
        self.on_restored: Callable[[], None] | None = None
        self.prebuilt = None        # a migration's target's host processes (checkpoint/prebuild.py)
        self.version = config.get("version", "0.0")
        self.release = config.get("release", f"6.1.0-umlpy-{self.version}")
        self.version_string = config.get("uts_version", "#1 umlpy")
        self.log = printk.Log(write_log)
        if params.loglevel is not None:
            self.log.console_loglevel = params.loglevel
        elif params.quiet:
            self.log.console_loglevel = printk.NOTICE
        printk.set_log(self.log)
        self.mem_budget = MemBudget(totalram(params.mem))
        self.tunables = Tunables(threads_max=max_threads_for(self.mem_budget.limit),
                                 epoll_max_user_watches=max_user_watches_for(self.mem_budget.limit))
        pagecache.cache.budget = self.mem_budget.limit // 2
        pagecache.cache.mapped_ids = lambda: mapped_ids(self.procs)
        evict.icache_limit = icache_limit_for(self.mem_budget.limit)
        evict.schedule = lambda: self.sched.add_timer(clock.monotonic_ns(), lambda: evict.shrink_caches(self))
        files_stat.max = max_files_for(self.mem_budget.limit)
        files_stat.privileged = self._may_pass_file_max
        self.epoll_watches: dict[int, int] = {}     # epoll watches per user (syscalls/sys_epoll.py)
        self.aio_nr = 0         # AIO events the live contexts asked for (fs.aio-nr; syscalls/sys_aio.py)
        self.pipe_pages: dict[int, int] = {}    # pipe buffer pages per real uid (vfs/pipe.py)
        self.unix_inflight = Inflight()         # files in flight in unix sockets (net/unix_gc.py)
        # the events /proc/vmstat counts that the kernel has (the rest are 0)
        self.vm_events = {"drop_pagecache": 0, "drop_slab": 0, "oom_kill": 0}
        self.vdso = Vdso()
        self.timekeeper = timekeeping.boot()
        self.timekeeper.on_diverge = lambda: self.trap_time(wall=True)
        self.sched = Scheduler(self)
        printk.set_oops_hook(post_mortem if params.pdb else None)
        debugger.attach(self.hold_guests)       # pdb's stops hold the guests; breakpoint() stops
        self.sched.table = syscalls.Table()
        self.signals = Signals(self)
        self.oom = OomKiller(self)
        self.dump_core = coredump.do_coredump      # kernel/signal.py's way to the core writer
        self.init_ns = nsproxy.init_nsproxy(params.hostname, self.signals, self.tunables)
        self.procs = Procs(self)
        self.futexes = Futexes()
        self.keys = KeyService(self.mem_budget)
        self.stub = Stub()
        self.mounts = MountTable()
        self.mounts.busy_check = self._mount_busy
        self.ubds: list[ubd_drv.Ubd] = []
        self.disks = Disks(self.mounts)
        self.loop: Loop | None = None
        self.console: console_drv.Console | None = None
        self.channels: list[HostChannel] = []
        self.lines: line_drv.Lines | None = None
        self.xstate_size = 0            # the host's xstate regset
        self.frame_xstate_size = 0      # the xsave area of a guest signal frame (kernel/signal.py)
        self.exit_code: int | None = None
        self.umid_path: str | None = None
        self.mconsole = None
        self.exec_hooks: list = []      # called with each task that exec'd (the gdb server's)
        self.net = NetStack()       # the init network namespace's
        self.net.sk_mem_limit = max(8 << 20, self.mem_budget.limit // 8)
        self.init_ns.net.stack = self.net
        self.uevents = Uevents()
        self.uevents.deliver = lambda data: netlink.broadcast(self.net, NETLINK_KOBJECT_UEVENT,
                                                              UEVENT_KERNEL_GROUP, data)
        self.cad_enabled = True         # Ctrl-Alt-Del reboots until init says CAD_OFF
        self.kconfig_gz = kconfig.gz(self.release)      # /proc/config.gz
        # syslog(2) for CAP_SYSLOG only, as Debian's kernels: the log names
        # host paths (disk images) an unprivileged guest user need not see
        self.dmesg_restrict = 1
        self.initramfs_unpacked_ns: int | None = None

    def _may_pass_file_max(self) -> bool:
        """alloc_empty_file's capable(CAP_SYS_ADMIN), of the task whose
        call the kernel runs (none at boot: the kernel's own files)."""
        t = self.sched.current
        return t is None or capable(t.proc.creds, CAP_SYS_ADMIN)

    @property
    def root(self) -> Dentry | None:
        """The root of the init mount namespace."""
        return self.init_ns.mnt.root

    @root.setter
    def root(self, d: Dentry) -> None:
        self.init_ns.mnt.root = d

    def trap_time(self, wall: bool = False, clocks: bool = False) -> None:
        """The guest's wall clock (with clocks: its monotonic and boot
        clocks too) leaves the host's: every address space's vDSO time
        calls for them trap from now on (kernel/vdso.py)."""
        spaces = {}
        for p in self.procs.by_pid.values():
            space = vdso_space(p.mm)
            if space is not None:
                spaces[id(p.mm)] = (*space, timens.traps(p.ns.time))
        self.vdso.trap_time(spaces.values(), wall, clocks)

    def hold_guests(self) -> None:
        """Stop every task running guest code (PTRACE_INTERRUPT; queued
        resumes go first), so that no guest code runs until the event loop
        takes their stops: mconsole `stop`, pdb."""
        self.sched.loop.flush()
        for t in self.sched.tasks.values():
            if t.state is State.USER:
                ptrace.interrupt(t.hpid)

    def set_xstate_sizes(self, xstate: bytes) -> None:
        """From a task's xstate as the host gives it: its size, and the
        part of it a signal frame carries."""
        self.xstate_size = len(xstate)
        self.frame_xstate_size = frame_xstate_size(xstate)

    def uptime_ns(self) -> int:
        """Linux's uptime is CLOCK_BOOTTIME, which guest code reads from the
        host (its vDSO): the host's (after a restore that had to move it, the
        guest's: kernel/timekeeping.py), so that /proc/uptime, sysinfo and
        the start times in /proc agree with what clock_gettime says."""
        return self.timekeeper.boottime_ns()

    def sync_all(self) -> None:
        self.mounts.sync_all()

    def new_net_stack(self) -> NetStack:
        """A new network namespace's stack (kernel/nsproxy.py asks): its
        sockets share the init stack's memory budget."""
        return NetStack(self.net.budget)

    def init_died(self, status: int) -> None:
        printk.pr_emerg(f"Kernel panic - not syncing: Attempted to kill init! exitcode=0x{status:08x}")
        self.sync_all()
        if status & 0x7f:
            raise Halt(128 + (status & 0x7f))
        raise Halt((status >> 8) & 0xff)

    # -- mounts -----------------------------------------------------------------
    def open_files(self):
        """Every open file: the threads' (tables may be per thread) and the
        ones the kernel holds (loop devices' backing files)."""
        for p in self.procs.by_pid.values():
            if not p.exited:
                for t in p.threads:
                    yield from t.files.files.values()
        if self.loop is not None:
            yield from self.loop.backing_files()

    def _mount_busy(self, m) -> bool:
        for p in self.procs.by_pid.values():
            if not p.exited and any(t.fs.cwd.mount is m or t.fs.root.mount is m for t in p.threads):
                return True
        return any(f.dentry is not None and f.dentry.mount is m for f in self.open_files())

    def _block(self) -> None:
        """The block drivers: ubd's disks from the command line, loop's
        eight devices (and the misc /dev/userfaultfd)."""
        devices.unregister_all()
        devtmpfs.reset()
        devices.register_blkdev(ubd_drv.UBD_MAJOR, "ubd")
        for name, value in self.params.ubd:
            self.add_ubd(name, value)
        self.loop = Loop(self)
        sys_userfaultfd.register_device()

    def add_ubd(self, name: str, value: str) -> None:
        """A disk from the command line, or hot-added (mconsole config)."""
        spec = ubd_drv.parse_spec(name, value)
        if any(u.spec.unit == spec.unit for u in self.ubds):
            raise KernelError(E.EBUSY, f"{spec.name} is already configured")
        u = ubd_drv.open_ubd(spec)
        self.ubds.append(u)
        self.disks.add(u.dev)
        printk.pr_info(f" {spec.name}: {u.desc}, {u.dev.size >> 10}K"
                       + (" (read-only)" if u.dev.read_only else ""))

    def _find_ubd(self, name: str):
        spec = ubd_drv.parse_spec(name, "x")
        u = next((u for u in self.ubds if u.spec.unit == spec.unit), None)
        if u is None:
            raise KernelError(E.ENODEV, "Device doesn't exist")
        return u

    def ubd_config(self, name: str) -> str:
        """mconsole `config ubdN`: the disk's files as the command line gave them."""
        try:
            return self._find_ubd(name).spec.text()
        except KernelError:
            return ""

    def remove_ubd(self, name: str) -> None:
        u = self._find_ubd(name)
        if u.dev.openers:
            raise KernelError(E.EBUSY, "Device is currently open")
        self.disks.remove(u.dev)
        self.ubds.remove(u)
        u.close()
        printk.pr_info(f" {u.spec.name}: removed")

    def _root_device(self):
        p = self.params
        name = p.root or "/dev/ubda"
        for u in self.ubds:
            if name in (f"/dev/{u.spec.name}", f"/dev/ubd{u.spec.unit}", f"{u.dev.major}:{u.dev.minor}"):
                return u
        raise KernelError(E.ENODEV, f"VFS: Cannot open root device \"{name}\"")

    # -- boot -------------------------------------------------------------------
    def _banner(self) -> None:
        p = self.params
        printk.pr_notice(f"Linux version {self.release} (umlpy {self.version}) {self.version_string}")
        printk.pr_info("Command line: " + " ".join(p.words))
        total = self.mem_budget.limit >> 10
        printk.pr_info(f"Memory: {total}K/{p.mem >> 10}K available ({(p.mem >> 10) - total}K reserved)")
        printk.pr_info("LSM: Security Framework initializing")
        if p.lsm_enabled("landlock"):
            printk.pr_info("landlock: Up and running.")
        for w in p.warnings:
            printk.pr_warn(w)
        for w, what in p.unsupported:
            printk.pr_warn(f"\"{w}\": {what}: not supported by umlpy, ignored")

    def _host_signal(self, events: int) -> None:
        """Signals sent to umlpy itself: the host's interrupts for the machine."""
        from umlpy.abi import signals as S
        while True:
            sig = self.sched.loop.read_host_signal()
            if not sig:
                return
            if sig in (S.SIGTERM, S.SIGHUP):
                printk.pr_emerg(f"umlpy: host SIG{S.NAMES[sig]}: halting")
                self.sync_all()
                raise Halt(128 + sig)
            if sig == S.SIGWINCH and self.console is not None:
                self.console.host_resized()
            elif sig in (S.SIGINT, S.SIGQUIT) and self.console is not None:
                # only `kill` sends these (the host terminal is raw, ^C is the guest's)
                self.console.host_signal(sig)

    def _console(self) -> None:
        """UML's lines: con0 is the console, the others as configured (drivers/line.py)."""
        self.lines = line_drv.Lines(self)
        self.console = self.lines.console()

    def _root(self) -> None:
        p = self.params
        if p.initrd:
            self._root_initramfs()
        elif p.rootfstype == "hostfs":
            self._root_hostfs()
        elif p.rootfstype and p.rootfstype not in registry.DISK_TYPES:
            raise KernelError(E.ENODEV, f"VFS: Unable to mount root fs: rootfstype={p.rootfstype} is not "
                              f"a root filesystem type here (ext2, ext3, ext4, or hostfs for a host directory)")
        elif self.ubds:
            self._root_disk()
        else:
            raise KernelError(E.ENODEV, "VFS: Unable to mount root fs: give initrd=, ubd0= "
                              "or rootfstype=hostfs")
        dev = self.root.child(b"dev")
        if dev is not None and dev.inode.is_dir:
            # devtmpfs_mount's flags without CONFIG_DEVTMPFS_SAFE (as UML 6.1 shows it: rw,relatime,mode=755)
            fs = devtmpfs.devtmpfs_instance(self.mem_budget.shmem)
            self.mounts.mount(fs, dev, "devtmpfs", "devtmpfs", MS.MNT_RELATIME, fs.show_options())
            printk.pr_info("devtmpfs: mounted")
        else:
            printk.pr_warn("devtmpfs: no /dev in the root filesystem, not mounted")

    def _root_disk(self) -> None:
        p = self.params
        u = self._root_device()
        ro = p.read_only or u.dev.read_only
        fstype, fs = registry.mount_root(p.rootfstype, u.dev, ro, self.sched, p.rootflags or "")
        # do_new_mount's default atime policy, relatime, as UML shows it ("/dev/root / ext4 ro,relatime")
        m = self.mounts.mount(fs, None, "/dev/root", fstype, (MS.MOUNT_ATTR_RDONLY if ro else 0) | MS.MNT_RELATIME)
        self.root = m.root
        printk.pr_info(f"VFS: Mounted root ({fstype} filesystem) {'readonly' if ro else ''} "
                       f"on device {u.dev.major}:{u.dev.minor}.".replace("  ", " "))

    def _root_hostfs(self) -> None:
        """rootfstype=hostfs: the root is a host directory, rootflags=DIR
        (UML's default: the host's /), whatever root= says, as UML boots
        `root=/dev/root rootfstype=hostfs rootflags=DIR`.  DIR is taken
        inside hostfs=<dir> as every hostfs mount's is (fs/hostfs.py), so
        without hostfs= there is no hostfs root at all."""
        p = self.params
        if p.hostfs_root is None:
            raise KernelError(E.EPERM, "VFS: Unable to mount root fs: rootfstype=hostfs needs hostfs=<dir> "
                              "to open the host directory (hostfs=/ opens the whole host, as UML)")
        where = p.rootflags or "/"
        try:
            fs = mount_hostfs(where, p.hostfs_root, p.hostfs_append)
        except KernelError as e:
            raise KernelError(e.errno, f"VFS: Unable to mount root fs: hostfs rootflags={where} inside "
                              f"hostfs={p.hostfs_root}: {E.NAMES.get(e.errno, e.errno)}") from None
        if not fs.root.is_dir:
            raise KernelError(E.ENOTDIR, f"VFS: Unable to mount root fs: hostfs rootflags={where}: "
                              f"not a directory")
        m = self.mounts.mount(fs, None, "/dev/root", "hostfs", MS.MOUNT_ATTR_RDONLY if p.read_only else 0)
        self.root = m.root
        printk.pr_info(f"VFS: Mounted root (hostfs filesystem) {'readonly ' if p.read_only else ''}"
                       f"on host directory {fs.host_root.decode(errors='replace')}.")

    def _root_initramfs(self) -> None:
        p = self.params
        fs = Tmpfs(self.mem_budget.shmem, 0o755)
        m = self.mounts.mount(fs, None, "rootfs", "rootfs")
        self.root = m.root
        printk.pr_info("Trying to unpack rootfs image as initramfs...")
        try:
            data = read_host_file(p.initrd)
        except OSError as e:
            raise KernelError(E.ENOENT, f"Initramfs unpacking failed: {p.initrd}: {e.strerror}") from e
        try:
            n = self.mem_budget.shmem.unpack(lambda: cpio.unpack(data, fs.root))
        except cpio.CpioError as e:
            raise KernelError(E.EINVAL, f"Initramfs unpacking failed: {e}") from e
        printk.pr_info(f"Freeing initrd memory: {len(data) >> 10}K ({n} entries)")
        self.initramfs_unpacked_ns = inode_clock()     # what changed after is not in the cpio (checkpoint)

    def init_fds(self) -> FdTable:
        """fds 0, 1 and 2 on /dev/console, as init gets them."""
        fdt = FdTable()
        console = self.root.child(b"dev")
        inode = None
        dentry = None
        if console is not None:
            while console.mounted is not None:
                console = console.mounted.root
            dentry = console.child(b"console")
            inode = dentry.inode if dentry is not None else None
        if inode is None:
            printk.pr_warn("Warning: unable to open an initial console.")
            from umlpy.abi import structs
            from umlpy.vfs.inode import Inode
            inode = Inode(self.root.inode.fs, C.S_IFCHR | 0o600, rdev=structs.makedev(5, 1))
        f = console_drv.ConsoleFile(dentry, inode, C.O_RDWR, self.console)
        for fd in (0, 1, 2):
            fdt.install_at(fd, f, False)
        return fdt

    def start(self) -> int:
        p = self.params
        self._banner()
        self.sched.fd_handlers[self.sched.loop.sig_fd] = self._host_signal
        host.raise_fd_limit()
        cpu = host.pin_to_one_cpu(p.cpu)
        printk.pr_info(f"umlpy: kernel and guests pinned to host CPU {cpu}")
        self._console()
        if p.strace is not None:
            strace_start.start(self, p.strace, p.strace_syscalls, p.strace_pid)
        try:
            self._claim_umid()
            self._mconsole()
            self._gdb()
            self._block()
            self.lines.setup()
            self._net()
            self._root()
            if p.restore is not None:
                checkpoint_restore.restore(self, p.restore)
                if self.on_restored is not None:
                    self.on_restored()
                self.sched.run()
                return self._shutdown(0)
            fdt = self.init_fds()
            fs = FsContext(self.root, self.root)
            if p.init:
                candidates, explicit = [p.init.encode()], True
            else:
                candidates, explicit = DEFAULT_INITS, False
            envp = [b"HOME=/", b"TERM=" + (b"linux")] + [e.encode() for e in p.init_env]
            argv_tail = [a.encode() for a in p.init_argv]
            init, host_aux = self.procs.spawn_init(fdt, fs)
            exec_.run_init(self, init, host_aux, candidates, argv_tail, envp, explicit)
            self.set_xstate_sizes(ptrace.get_xstate(init.hpid))
            self.sched.run()
        except KernelError as e:
            printk.pr_emerg(f"Kernel panic - not syncing: {e}")
            return self._shutdown(1)
        except Halt as h:
            if h.code == -1:
                cause = h.__cause__
                printk.pr_emerg(f"Kernel panic - not syncing: {cause}")
                return self._shutdown(1)
            self.exit_code = h.code
            if h.reboot:
                self._shutdown(h.code)
                return -1
            return self._shutdown(h.code)
        return self._shutdown(0)

    def _claim_umid(self) -> None:
        p = self.params
        try:
            name, self.umid_path = umid.claim(p.uml_dir, p.umid)
        except umid.UmidInUse as e:
            raise KernelError(E.EBUSY, str(e)) from None
        except OSError as e:
            printk.pr_warn(f"umid: cannot create the umid directory ({e}); going on without it")
            return
        printk.pr_info(f"umid: machine id {name} at {self.umid_path}")

    def _mconsole(self) -> None:
        if self.umid_path is None:
            return
        path = f"{self.umid_path}/mconsole"
        try:
            self.mconsole = mconsole_drv.MConsole(self, path)
        except OSError as e:
            printk.pr_warn(f"mconsole: cannot listen on {path} ({e})")
            return
        if self.params.mconsole_notify:
            host_mc.notify(self.params.mconsole_notify, host_mc.NOTIFY_SOCKET, path.encode())

    def _gdb(self) -> None:
        p = self.params
        if p.gdb_port is None:
            return
        try:
            gdbstub.GdbServer(self, p.gdb_port, p.gdb_exec)
        except OSError as e:
            printk.pr_warn(f"gdb: cannot listen on 127.0.0.1:{p.gdb_port} ({e})")

    def _net(self) -> None:
        """eth0=user's device and NAT, then ip= (Linux's ipconfig runs
        before the root is mounted)."""
        if self.params.eth0 is not None:
            slirp_eth.create(self, self.params.eth0)
        if self.params.ip is not None:
            ipconfig.configure(self, self.params.ip)

    def _shutdown(self, code: int) -> int:
        if self.mconsole is not None:
            self.mconsole.close()
        if self.net.nat is not None:
            self.net.nat.close()
        for t in list(self.sched.tasks.values()):
            host.kill_host(t.hpid, 9)
        self.mounts.unmount_all()
        for u in self.ubds:
            u.close()
        if self.umid_path is not None:
            umid.release(self.umid_path)
        for ch in self.channels:
            ch.restore()
        self.sched.loop.close()
        return code


def preload() -> None:
    """Import every module of the kernel now.  A migration's target calls
    it while it waits for the machine, so that no import the boot leaves
    to first use (a filesystem's driver at the root's mount, a family's
    sockets, ...) falls in the downtime."""
    import importlib
    import pkgutil

    import umlpy
    for m in pkgutil.walk_packages(umlpy.__path__, "umlpy."):
        if not m.name.endswith(".__main__"):
            importlib.import_module(m.name)


def start_kernel(config: dict, words: list[str], on_restored: Callable[[], None] | None = None,
                 prebuilt=None) -> int:
    """Boot (and reboot) the guest; returns umlpy's exit status.
    on_restored: the launcher's, called once a restore (restore=) has
    rebuilt the processes, before they run (a migration's target tells
    the source and lets the image go); prebuilt: a migration target's
    checkpoint.prebuild.Prebuilt, for the restore to adopt."""
    while True:
        params = cmdline.parse(config.get("cmdline", "").split() + list(words))
        k = Kernel(config, params)
        k.on_restored, on_restored = on_restored, None
        k.prebuilt, prebuilt = prebuilt, None
        code = k.start()
        if code != -1:
            return code
        if params.noreboot:
            return 0
        printk.pr_notice("Restarting system.")
        # a restored machine that reboots boots afresh, as the one it was
        # taken from would have: the image is not restored twice
        words = [w for w in words if not w.startswith("restore=")]
