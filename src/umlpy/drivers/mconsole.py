"""UML's management console: `uml_mconsole <umid> <command>` drives the
machine from the host (version, halt, reboot, cad, sysrq, stop/go, log,
proc, config/remove of ubd disks and of lines: conN, sslN).

The host half (arch_um.mconsole) owns the socket in the umid directory;
requests arrive as a device interrupt of the event loop and are answered
there, as UML's mconsole_interrupt does.  `stop` holds the machine: guests
running guest code are interrupted, and until `go` the kernel serves only
the console socket, so no guest task is resumed.
"""
from __future__ import annotations

from arch_um import clock
from arch_um import mconsole as host
from arch_um import migwire
from umlpy.abi import consts as C
from umlpy.abi import signals as S
from umlpy.checkpoint import dump, migrate
from umlpy.debug import gdbstub
from umlpy.kernel import oom, printk, slabinfo, taskstack
from umlpy.kernel.errors import KernelError
from umlpy.kernel.process import Halt

HELP = """Commands:
    version - Get kernel version
    help - Print this message
    halt - Halt UML
    reboot - Reboot UML
    config <dev>=<config> - Add a new device to UML;
        same syntax as command line
    config <dev> - Query the configuration of a device
    remove <dev> - Remove a device from UML
    sysrq <letter> - Performs the SysRq action controlled by the letter
    cad - invoke the Ctrl-Alt-Del handler
    stop - pause the UML; it will do nothing until it receives a 'go'
    go - continue the UML after a 'stop'
    log <string> - make UML enter <string> into the kernel log
    proc <file> - returns the contents of the UML's /proc/<file>
    stack <pid> - returns the stack of the specified pid
    gdb <pid> <port> - stop that process for gdb on 127.0.0.1:<port> (0: a free port)
    checkpoint <dir> [--leave-running] - save the machine to <dir> (docs/checkpoint.md),
        then halt it, unless --leave-running
    migrate <socket> - move the machine to the umlpy restore --listen waiting at <socket>
"""
SYSRQ_HELP = ("sysrq: HELP : loglevel(0-9) reboot(b) show-memory-usage(m) poweroff(o) "
              "sync(s) show-task-states(t) unmount(u) terminate-all-tasks(e) kill-all-tasks(i)")


class McError(Exception):
    """An answer with err set (the client prints it and exits 1)."""


BUSY = object()                 # _unless_busy: not now, in a moment
BUSY_WAIT_NS = 2_000_000_000    # how long a checkpoint waits for a vfork's child to exec or exit
BUSY_STEP_NS = 10_000_000       # and how often it looks again


HALTED = "the machine halted before it could answer"


class Later:
    """An answer given once work the event loop must do first is done:
    `run(reply)` runs from an idle hook and answers through reply(err, text)."""

    def __init__(self, run) -> None:
        self.run = run


class MConsole:
    def __init__(self, kernel, path: str) -> None:
        self.k = kernel
        self.sock = host.McSocket(path)
        self.stopped = False
        self._owed: list = []       # reply addresses of Later answers not yet given
        kernel.sched.watch_fd(self.sock.fd, 1, self.interrupt)    # EPOLLIN
        printk.pr_info(f"mconsole (version {host.VERSION}) initialized on {path}")

    def close(self) -> None:
        """The machine halts: every request it took and has not answered
        (a checkpoint whose turn never came, one still in the socket) is
        told so, not left waiting for an answer that cannot come."""
        for addr in self._owed:
            self._reply(addr, 1, HALTED)
        self._owed.clear()
        for addr, _magic, _version, _text in self.sock.requests():
            self._reply(addr, 1, HALTED)
        self.sock.close()

    # -- requests -------------------------------------------------------------
    def interrupt(self, events: int) -> None:
        for addr, magic, version, text in self.sock.requests():
            self._serve(addr, magic, version, text)

    def _serve(self, addr, magic: int, version: int, text: bytes | None) -> None:
        after = None
        try:
            if magic != host.MAGIC:
                raise McError("ERROR: Version 0 mconsole clients are not supported by this driver")
            if text is None:
                raise McError("Request too large")
            if version != host.VERSION:
                raise McError(f"This driver only supports version {host.VERSION} clients")
            answer = self._command(text.decode(errors="replace").strip())
            if isinstance(answer, Later):
                self._later(addr, answer)
                return
            if isinstance(answer, tuple):
                answer, after = answer
            self._reply(addr, 0, answer)
        except McError as e:
            self._reply(addr, 1, str(e))
        if after is not None:
            after()

    def _later(self, addr, answer: Later) -> None:
        """Run answer's work at the top of the event loop, where every
        event of the last batch has been handled (no task's stop is then
        taken but not yet seen), and reply from there."""
        hooks = self.k.sched.idle_hooks
        self._owed.append(addr)

        def reply(err: int, text: str) -> None:
            if addr in self._owed:
                self._owed.remove(addr)
            self._reply(addr, err, text)

        def hook() -> bool:
            hooks.remove(hook)
            answer.run(reply)
            return False
        hooks.append(hook)

    def _again_soon(self, fn) -> None:
        """fn() at the top of the event loop, BUSY_STEP_NS from now."""
        hooks = self.k.sched.idle_hooks

        def hook() -> bool:
            hooks.remove(hook)
            fn()
            return False
        self.k.sched.add_timer(clock.monotonic_ns() + BUSY_STEP_NS, lambda: hooks.append(hook))

    def _reply(self, addr, err: int, text: str) -> None:
        """Long answers go in 511-byte packets, `more` set on all but the last."""
        data = text.encode()
        chunks = [data[i:i + host.DATA_MAX - 1] for i in range(0, len(data), host.DATA_MAX - 1)] or [b""]
        for i, chunk in enumerate(chunks):
            self.sock.reply(addr, err if i == 0 else 0, int(i < len(chunks) - 1), chunk)

    def _command(self, line: str):
        """The answer text, or (text, what to do once it is sent)."""
        for name, fn in COMMANDS:
            if line.startswith(name):
                return fn(self, line[len(name):].strip())
        raise McError("Unknown command")

    # -- commands ---------------------------------------------------------------
    def version(self, arg: str) -> str:
        k = self.k
        return f"Linux {k.init_ns.uts.hostname} {k.release} {k.version_string} x86_64"

    def help(self, arg: str) -> str:
        return HELP

    def halt(self, arg: str):
        return "", lambda: self._halt(False)

    def reboot(self, arg: str):
        return "", lambda: self._halt(True)

    def _halt(self, reboot: bool) -> None:
        self.k.sync_all()
        printk.pr_emerg("reboot: Restarting system" if reboot else "reboot: System halted")
        raise Halt(0, reboot=reboot)

    def cad(self, arg: str):
        """Ctrl-Alt-Del: a reboot while enabled (reboot(2) CAD_ON, the
        default), else SIGINT to init, which busybox and sysvinit turn
        into their ctrlaltdel action."""
        if self.k.cad_enabled:
            return "", lambda: self._halt(True)
        init = self.k.procs.by_pid.get(1)
        if init is not None:
            self.k.signals.send_proc(init, S.SIGINT, C.SI_KERNEL)
        return ""

    def log(self, arg: str) -> str:
        printk.pr_warn(arg)
        return ""

    def proc(self, arg: str) -> str:
        from umlpy.fs.procfs import procfs_instance
        init = self.k.procs.task(1)
        inode = procfs_instance(self.k).root
        try:
            for part in filter(None, arg.encode().split(b"/")):
                inode = inode.lookup(part)
                if inode is None:
                    raise McError(f"Failed to open file: {arg}")
            if inode.is_dir:
                raise McError(f"Failed to read file: {arg} is a directory")
            f = inode.open_file(None, C.O_RDONLY, init)
            return f.read(init, 1 << 20).decode(errors="replace")
        except KernelError as e:
            raise McError(f"Failed to open file: {arg} ({e})") from None

    def stack(self, arg: str) -> str:
        """The kernel side of a guest task (kernel/taskstack.py), to the
        client and the log, as UML's show_stack through with_console."""
        try:
            pid = int(arg.split()[0])
        except (ValueError, IndexError):
            raise McError("Please specify a pid") from None
        t = self.k.procs.task(pid) if pid > 0 else None
        if t is None:
            raise McError("Couldn't find that pid")
        lines = taskstack.describe(t)
        for line in lines:
            printk.pr_info(line)
        return "\n".join(lines)

    def gdb(self, arg: str) -> str:
        """A gdb server attached to a running process (debug/gdbstub.py)."""
        try:
            pid, port = (int(x) for x in arg.split())
        except ValueError:
            raise McError("gdb: usage: gdb <pid> <port>") from None
        proc = self.k.procs.by_pid.get(pid)
        if proc is None or proc.exited or not 0 <= port <= 65535:
            raise McError(f"gdb: no process {pid}" if proc is None or proc.exited else f"gdb: bad port {port}")
        try:
            server = gdbstub.GdbServer(self.k, port, proc=proc)
        except OSError as e:
            raise McError(f"gdb: cannot listen on 127.0.0.1:{port} ({e.strerror})") from None
        except KernelError as e:
            raise McError(f"gdb: {e}") from None
        return f"gdb: pid {pid} stopped; target remote 127.0.0.1:{server.port}"

    def sysrq(self, arg: str):
        key = arg[:1]
        out: list[str] = []
        after = None

        def say(line: str) -> None:
            printk.pr_info(line)
            out.append(line)

        if key.isdigit():
            say("sysrq: Changing Loglevel")
            printk.set_level(int(key))
            say(f"sysrq: Loglevel set to {key}")
        elif key == "b":
            say("sysrq: Resetting")
            after = lambda: _raise(Halt(0, reboot=True))     # noqa: E731 -- no sync, as emergency_restart
        elif key == "o":
            say("sysrq: Power Off")
            after = lambda: self._halt(False)     # noqa: E731
        elif key == "s":
            say("sysrq: Emergency Sync")
            self.k.sync_all()
            say("Emergency Sync complete")
        elif key == "u":
            say("sysrq: Emergency Remount R/O")
            self.k.mounts.remount_all_read_only()
            say("Emergency Remount complete")
        elif key in ("e", "i"):
            say("sysrq: Terminate All Tasks" if key == "e" else "sysrq: Kill All Tasks")
            for p in list(self.k.procs.by_pid.values()):
                if p.pid != 1 and not p.exited:
                    self.k.signals.send_proc(p, S.SIGTERM if key == "e" else S.SIGKILL, C.SI_KERNEL)
        elif key == "t":
            say("sysrq: Show State")
            for p in sorted(self.k.procs.by_pid.values(), key=lambda p: p.pid):
                for t in p.threads:
                    say(f"task:{p.comm.decode(errors='replace'):<15} state:{t.state.value:<10} "
                        f"pid:{t.tid:<5} ppid:{p.parent.pid if p.parent else 0}")
        elif key == "m":
            say("sysrq: Show Memory")
            b = self.k.mem_budget
            used = sum(oom.usage(self.k))
            say(f"Mem-Info: {b.limit >> 10}kB total, {used >> 10}kB used by processes, "
                f"{b.used >> 10}kB committed")
            for line in slabinfo.report(self.k):
                say(line)
        else:
            say(SYSRQ_HELP)
        text = "\n".join(out)
        return (text, after) if after is not None else text

    def stop(self, arg: str):
        if self.stopped:
            raise McError("Already stopped")
        return "", self._stopped

    def go(self, arg: str) -> str:
        raise McError("Not stopped")

    def _stopped(self) -> None:
        """Hold every guest until `go`: tasks in guest code are interrupted;
        their stops, like every other guest event, wait in the host until
        the event loop runs again."""
        self.stopped = True
        self.k.hold_guests()
        printk.pr_info("mconsole: machine stopped")
        try:
            while self.stopped:
                self.sock.wait()
                for addr, magic, version, text in self.sock.requests():
                    if magic == host.MAGIC and text is not None and text.strip().startswith(b"go"):
                        self.stopped = False
                        self._reply(addr, 0, "")
                    else:
                        self._serve(addr, magic, version, text)
        finally:
            self.stopped = False
        printk.pr_info("mconsole: machine continued")

    def checkpoint(self, arg: str) -> Later:
        """Save the machine (checkpoint/dump.py), then halt it unless
        --leave-running; a refusal leaves it running and says why."""
        words = arg.split()
        leave = "--leave-running" in words
        paths = [w for w in words if w != "--leave-running"]
        if len(paths) != 1:
            raise McError("checkpoint: usage: checkpoint <dir> [--leave-running]")
        if self.stopped:        # its stops wait unseen in the host until `go`
            raise McError("checkpoint: the machine is stopped (mconsole stop): go first")
        deadline = clock.monotonic_ns() + BUSY_WAIT_NS

        def run(reply) -> None:
            done = _answered(reply, "checkpoint", lambda: _unless_busy(deadline, lambda: dump.checkpoint(
                self.k, paths[0])))
            if done is BUSY:
                self._again_soon(lambda: run(reply))
                return
            if done is None:
                return
            frozen, summary = done
            reply(0, summary)
            if leave:
                dump.thaw(self.k, frozen)
                return
            printk.pr_emerg("reboot: System halted after checkpoint")
            raise Halt(0)
        return Later(run)

    def migrate(self, arg: str) -> Later:
        """Move the machine to a `umlpy restore --listen SOCKET` waiting at
        the unix socket arg (checkpoint/migrate.py): memory pre-copied in
        rounds while the guest runs, then the final copy; this machine
        halts once the target runs it.  A target that is not a socket is a
        directory: the machine is checkpointed to it."""
        target = arg.strip()
        if not target or len(target.split()) != 1:
            raise McError("migrate: usage: migrate <socket or dir>")
        if not migwire.is_socket(target):
            return self.checkpoint(target)
        if self.stopped:
            raise McError("migrate: the machine is stopped (mconsole stop): go first")
        hooks = self.k.sched.idle_hooks

        def run(reply) -> None:
            m = _answered(reply, "migrate", lambda: migrate.start(self.k, target))
            if m is None:
                return
            deadline = [0]

            def round_() -> bool:
                """One pre-copy round per turn of the loop, then the final
                copy (more rounds while a vfork's child has not exec'd)."""
                going = _answered(reply, "migrate", m.precopy)
                if going:
                    return True
                deadline[0] = deadline[0] or clock.monotonic_ns() + BUSY_WAIT_NS
                done = going is not None and _answered(reply, "migrate", lambda: _unless_busy(deadline[0], m.final))
                if done is BUSY:
                    return True
                hooks.remove(round_)
                m.close()
                if not done:
                    return False
                reply(0, done[1])
                printk.pr_emerg("reboot: System halted after migration")
                raise Halt(0)
            hooks.append(round_)
        return Later(run)

    def config(self, arg: str) -> str:
        name, eq, value = arg.partition("=")
        name = name.strip()
        if name.startswith(("con", "ssl")):
            return self._line_config(name, value.strip() if eq else None)
        if not name.startswith("ubd"):
            raise McError("Bad configuration option")
        if not eq:
            return self.k.ubd_config(name)
        try:
            self.k.add_ubd(name, value)
        except KernelError as e:
            raise McError(str(e) or "Failed to add the device") from None
        return ""

    def _line_config(self, name: str, spec: str | None) -> str:
        """UML's line_config / line_get_config: a console or serial line."""
        try:
            return self.k.lines.config(name, spec)
        except KernelError as e:
            raise McError(str(e)) from None

    def remove(self, arg: str) -> str:
        arg = arg.strip()
        if arg.startswith(("con", "ssl")):
            return self._line_config(arg, "none")
        if not arg.startswith("ubd"):
            raise McError("Bad remove option")
        try:
            self.k.remove_ubd(arg)
        except KernelError as e:
            raise McError(str(e)) from None
        return ""


def _raise(exc: BaseException) -> None:
    raise exc


def _unless_busy(deadline: int, work):
    """work()'s result; or BUSY while the machine is in a state that passes
    by itself (dump.Busy: a vfork's child has not yet exec'd) and the
    monotonic deadline has not come: Linux's freezer waits for such a
    child too (the vfork parent freezes once the child is done)."""
    try:
        return work()
    except dump.Busy:
        if clock.monotonic_ns() >= deadline:
            raise
        return BUSY


def _answered(reply, what: str, work):
    """work()'s result; or None when it failed, having answered why: a
    refusal (KernelError) or a host error as it is, anything else as the
    kernel bug it is (logged; the machine goes on)."""
    try:
        return work()
    except KernelError as e:
        printk.pr_warn(str(e))
        reply(1, str(e))
    except OSError as e:
        printk.pr_warn(f"{what}: {e}")
        reply(1, f"{what}: {e}")
    except Exception as e:
        printk.oops(f"mconsole {what}", e)
        reply(1, f"{what}: kernel bug ({type(e).__name__}), see the kernel log")
    return None


COMMANDS = [(name, getattr(MConsole, name)) for name in
            ("version", "help", "halt", "reboot", "config", "remove", "sysrq", "cad", "stop",
             "go", "log", "proc", "stack", "gdb", "checkpoint", "migrate")]
