"""A gdb server inside the kernel: host gdb debugs one guest process over
the remote serial protocol (`target remote 127.0.0.1:PORT`).

It is a kernel-side ptracer (kernel/ptracer.KernelTracer): the process's
threads are linked to it as to a guest tracer, and their ptrace-stops
(signal-delivery stops: a breakpoint's int3 and a single step arrive as
SIGTRAP) are reported to gdb instead of to wait().  Registers are the
ones the kernel holds for the stopped task (debug/regs.py); memory is the
task's, written as ptrace's POKETEXT does (read-only text included);
breakpoints are int3 bytes written there (debug/memory.py); a single
step resumes the task with the host's PTRACE_SYSEMU_SINGLESTEP
(Ptrace.stepping, as a guest tracer's PTRACE_SINGLESTEP), so a syscall is
still the kernel's; gdb reads files through debug/hostio.py.  All-stop:
when one thread's stop is reported, the others are stopped too (a SIGSTOP that is never reported, then discarded), and
gdb's Ctrl-C stops the process the same way (reported as SIGINT, as gdb's
native target does).

Whom it debugs (docs/architecture.md, "gdb server"): `gdb=tcp:127.0.0.1:
PORT[,exec=PATH]` waits for init's first exec, or with exec= for the first
exec of the program at guest path PATH, and holds that process stopped
there until gdb connects and continues it; mconsole's `gdb PID PORT`
attaches to a running process.  Detach (or the client going away) lets
the process go on; the server then closes.
"""
from __future__ import annotations

from collections import deque

from arch_um import ptrace as hptrace
from arch_um.gdbsock import GdbConn, GdbListener
from arch_um.memory import GuestFault
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import gdb as G
from umlpy.abi import signals as S
from umlpy.debug import packets
from umlpy.debug.hostio import HostIO
from umlpy.debug.memory import TargetMemory
from umlpy.debug.regs import RegisterFile
from umlpy.kernel import printk, ptracer
from umlpy.kernel.errors import KernelError
from umlpy.kernel.signal import discard, pack_siginfo
from umlpy.kernel.task import Process, State, Task
from umlpy.syscalls.sys_ptrace import _host, _putreg

EPOLLIN, EPOLLOUT = 0x1, 0x4
PACKET_SIZE = 0x4000
_FEATURES = (b"PacketSize=%x;qXfer:features:read+;qXfer:exec-file:read+;qXfer:auxv:read+;"
             b"qXfer:siginfo:read+;QStartNoAckMode+;QPassSignals+;vContSupported+" % PACKET_SIZE)


class GdbServer(ptracer.KernelTracer):
    def __init__(self, kernel, port: int, exec_path: str | None = None,
                 proc: Process | None = None) -> None:
        super().__init__()
        self.k = kernel
        self.listener = GdbListener(port)
        self.port = self.listener.port
        self.exec_path = exec_path
        self.proc: Process | None = None
        self.conn: GdbConn | None = None
        self.reader = packets.Reader()
        self.noack = False
        self.last_sent = b""
        self.waiting = False            # gdb waits for a stop reply
        self.events: deque[Task] = deque()     # stops not yet reported to gdb
        self.held: set[Task] = set()           # left stopped by gdb's last resume: their stops
                                               # wait until gdb resumes them (gdbserver's rule)
        self.pass_signals = 0                  # QPassSignals: delivered without a stop (mask)
        self.report_as: dict[Task, int] = {}   # a stop reported as another signal (gdb's numbers)
        self.requested: set[Task] = set()      # sent our SIGSTOP, stop still to come
        self.quiet: set[Task] = set()          # stopped by our SIGSTOP: resumed without it
        self.pending: Task | None = None       # a stop to report once all threads are stopped
        self.current: Task | None = None       # the thread of the last reported stop
        self.gthread: Task | None = None       # Hg: whose registers and memory
        self.memory = TargetMemory()
        self.regfile: RegisterFile | None = None
        self.hostio = HostIO()
        kernel.sched.watch_fd(self.listener.fd, EPOLLIN, self._accept)
        kernel.exec_hooks.append(self._exec_hook)
        if proc is not None:
            try:
                self._attach(proc, exec_stop=False)
            except KernelError:
                self.close()
                raise
        what = f"pid {proc.pid}" if proc is not None else (exec_path or "init")
        printk.pr_info(f"gdb: listening on 127.0.0.1:{self.port} for {what}")

    # -- the target -------------------------------------------------------------
    def _exec_hook(self, t: Task) -> None:
        """The process waited for exec'd: it stops at its first instruction.
        The debugged one exec'd: its breakpoints went with the old image."""
        proc = t.proc
        if self.proc is not None:
            if proc is self.proc:
                self.memory.breakpoints.clear()
            return
        if (self.exec_path is None and proc.pid != 1) or \
                (self.exec_path is not None and proc.exe_path != self.exec_path):
            return
        if t.ptrace is not None:
            printk.pr_warn(f"gdb: pid {proc.pid} is traced already; not debugging it")
            self.close()
            return
        self._attach(proc, exec_stop=True)

    def _attach(self, proc: Process, exec_stop: bool) -> None:
        """Link every thread; stop the process (exec: SIGTRAP, as a traced
        exec's; attach: our SIGSTOP, reported as no signal)."""
        if proc.exited or any(t.ptrace is not None for t in proc.threads):
            raise KernelError(E.EPERM, f"pid {proc.pid} is gone or traced already")
        self.proc = proc
        for t in proc.threads:
            if t.state is not State.DEAD:
                ptracer.link(t, self)       # as PTRACE_ATTACH: no event stops
                ptracer.attach_stopped(self.k, t)
        lead = proc.threads[0]
        if exec_stop:
            self.k.signals.send_task(lead, S.SIGTRAP, C.SI_USER, (0, 0))
        else:
            self.report_as[lead] = 0
            self._stop_others(None)
        printk.pr_info(f"gdb: pid {proc.pid} ({proc.comm.decode(errors='replace')}) "
                       f"stopped for gdb on 127.0.0.1:{self.port}")

    def _threads(self) -> list[Task]:
        if self.proc is None:
            return []
        return [t for t in self.proc.threads if t.ptrace is not None and t.ptrace.tracer is self]

    def _stop_others(self, reported: Task | None) -> None:
        for t in self._threads():
            if t is not reported and t.state is not State.TRACED and t not in self.requested:
                self.requested.add(t)
                self.k.signals.send_task(t, S.SIGSTOP, C.SI_KERNEL, (0, 0))

    # -- ptracer callbacks --------------------------------------------------------
    def stopped(self, t: Task) -> None:
        sig = t.ptrace.info[0]
        if t in self.requested and sig == S.SIGSTOP:
            self.requested.discard(t)
            self.quiet.add(t)
            if t not in self.report_as:     # all-stop's: held, never reported
                if self.waiting and self.pending is None and t not in self.held:
                    self.quiet.discard(t)   # late: gdb has resumed the process since
                    ptracer.restart(t, 0)
                self._flush()
                return
        if self.pass_signals & S.sigbit(sig) and self.waiting and self.pending is None:
            ptracer.restart(t, sig)     # gdb would only pass it on: no round trip
            return
        self.events.append(t)
        self._report()

    def gone(self, t: Task) -> None:
        for s in (self.requested, self.quiet, self.held):
            s.discard(t)
        self.report_as.pop(t, None)
        if t in self.events:
            self.events.remove(t)
        if t is self.current:
            self.current = None
        if t is self.pending:       # died before its stop was told: the next one
            self.pending = None
            self.waiting = True
        if self.proc is not None and not self.proc.exited:
            self._report()
        if self.proc is not None and self.proc.exited and not self.ptraced:
            st = self.proc.wait_status
            if self.waiting:
                self._send(b"X%02x" % G.from_linux(st & 0x7f) if st & 0x7f else b"W%02x" % (st >> 8 & 0xff))
            printk.pr_info(f"gdb: pid {self.proc.pid} exited; gdb server on port {self.port} closed")
            self.close()

    def cloned(self, parent: Task, child: Task) -> None:
        """A new thread is traced from its start; a new process is not
        (gdb's detach-on-fork): the int3 bytes its copied memory holds go,
        unless it shares the memory (vfork, CLONE_VM)."""
        if child.proc is self.proc:
            ptracer.link(child, self)
        elif child.mem is not None and child.proc.mm is not None and child.proc.mm is not parent.proc.mm:
            self.memory.restore_in(child.mem)

    def _report(self) -> None:
        """Report the next stop once every other thread is stopped too
        (gdb then reads any thread's registers)."""
        t = next((x for x in self.events if x not in self.held), None) \
            if self.pending is None and self.waiting else None
        if t is not None:
            self.events.remove(t)
            self.pending = t
            self.waiting = False
            self._stop_others(t)
        self._flush()

    def _flush(self) -> None:
        t = self.pending
        if t is None or any(x.state is not State.TRACED for x in self._threads()):
            return
        self.pending = None
        self.current = self.gthread = t
        self._send(self._stop_reply(t))

    def _stop_reply(self, t: Task) -> bytes:
        gsig = self.report_as.pop(t, None)
        if gsig is None:
            gsig = G.from_linux(t.ptrace.info[0])
        return b"T%02xthread:%x;" % (gsig, t.tid)

    # -- the connection -------------------------------------------------------------
    def _accept(self, events: int) -> None:
        conn = self.listener.accept()
        if conn is None:
            return
        if self.conn is not None:
            conn.close()        # one client at a time
            return
        self.conn = conn
        self.noack = False
        self.reader = packets.Reader()
        self.k.sched.watch_fd(conn.fd, EPOLLIN, self._input)
        printk.pr_info(f"gdb: client connected on port {self.port}")

    def _input(self, events: int) -> None:
        conn = self.conn
        if conn is None:
            return
        if events & EPOLLOUT and not conn.send(b""):
            self.k.sched.watch_fd(conn.fd, EPOLLIN, self._input)
        data = conn.recv()
        if data is None:
            printk.pr_info("gdb: client gone; the process goes on")
            self._detach()
            return
        for pkt in self.reader.feed(data):
            if self.conn is None:
                return
            if pkt is packets.INTERRUPT:
                self._interrupt()
            elif pkt == b"-":
                self._write(self.last_sent)
            elif pkt == b"+":
                continue
            elif pkt is None:
                if not self.noack:
                    self._write(b"-")
            else:
                if not self.noack:
                    self._write(b"+")
                self._packet(pkt)

    def _write(self, data: bytes) -> None:
        if self.conn is not None and self.conn.send(data):
            self.k.sched.watch_fd(self.conn.fd, EPOLLIN | EPOLLOUT, self._input)

    def _send(self, body: bytes) -> None:
        self.last_sent = packets.frame(body)
        self._write(self.last_sent)

    def close(self) -> None:
        """The server ends (detach, kill, exit): it lets go of everything."""
        self.hostio.close_all()
        self.events.clear()
        self.proc = self.pending = self.current = self.gthread = None
        if self._exec_hook in self.k.exec_hooks:
            self.k.exec_hooks.remove(self._exec_hook)
        if self.conn is not None:
            self.k.sched.unwatch_fd(self.conn.fd)
            self.conn.close()
            self.conn = None
        if self.listener is not None:
            self.k.sched.unwatch_fd(self.listener.fd)
            self.listener.close()
            self.listener = None

    # -- commands ---------------------------------------------------------------------
    def _packet(self, pkt: bytes) -> None:
        try:
            reply = self._command(pkt)
        except (KernelError, GuestFault, ValueError, IndexError):
            reply = b"E01"
        if reply is not None:
            self._send(reply)

    def _command(self, pkt: bytes) -> bytes | None:
        """The reply to a packet; None: none now (a resume: the stop comes later)."""
        op, arg = pkt[:1], pkt[1:]
        if pkt.startswith(b"qSupported"):
            return _FEATURES
        if pkt == b"QStartNoAckMode":
            self._send(b"OK")
            self.noack = True
            return None
        if pkt.startswith(b"QPassSignals:"):
            self.pass_signals = 0
            for g in filter(None, pkt[13:].split(b";")):
                sig = G.to_linux(int(g, 16))
                if sig and sig not in (S.SIGTRAP, S.SIGINT, S.SIGSTOP, S.SIGKILL):
                    self.pass_signals |= S.sigbit(sig)
            return b"OK"
        if pkt.startswith(b"qXfer:"):
            return self._xfer(pkt[6:])
        if pkt == b"?":
            return self._question()
        if pkt in (b"qfThreadInfo", b"qsThreadInfo"):
            if pkt == b"qsThreadInfo":
                return b"l"
            return b"m" + b",".join(b"%x" % t.tid for t in self._threads())
        if pkt == b"qC":
            t = self._thread()
            return b"QC%x" % t.tid if t is not None else b""
        if pkt.startswith(b"qAttached"):
            return b"1"         # quitting gdb detaches, never kills
        if pkt.startswith(b"qSymbol"):
            return b"OK"
        if pkt.startswith(b"vFile:"):
            t = self._thread()
            return self.hostio.packet(t, pkt[6:]) if t is not None else b"F-1,9"
        if pkt == b"vCont?":
            return b"vCont;c;C;s;S"
        if pkt.startswith(b"vCont;"):
            return self._vcont(pkt[6:])
        if pkt.startswith(b"vKill"):
            self._send(b"OK")
            self._kill()
            return None
        if op == b"H":
            return self._select(arg)
        if op == b"T":
            return b"OK" if self._find(int(arg, 16)) is not None else b"E01"
        if op == b"g":
            return self._regs().read_all(self._stopped_thread()).hex().encode()
        if op == b"G":
            self._regs().write_all(self._stopped_thread(), bytes.fromhex(arg.decode()))
            return b"OK"
        if op == b"p":
            return self._regs().read_one(self._stopped_thread(), int(arg, 16)).hex().encode()
        if op == b"P":
            n, _, v = arg.partition(b"=")
            self._regs().write_one(self._stopped_thread(), int(n, 16), bytes.fromhex(v.decode()))
            return b"OK"
        if op == b"m":
            addr, n = (int(x, 16) for x in arg.split(b","))
            data = self.memory.read(self._mem(), addr, min(n, PACKET_SIZE // 2))
            return data.hex().encode() if data or not n else b"E01"
        if op in (b"M", b"X"):
            where, _, data = arg.partition(b":")
            addr, n = (int(x, 16) for x in where.split(b","))
            raw = bytes.fromhex(data.decode()) if op == b"M" else data
            self.memory.write(self._mem(), addr, raw[:n])
            return b"OK"
        if op in (b"Z", b"z"):
            return self._breakpoint(op == b"Z", arg)
        if op in (b"c", b"s", b"C", b"S"):
            return self._resume_cmd(op, arg)
        if op == b"D":
            self._send(b"OK")
            self._detach()
            return None
        if op == b"k":
            self._kill()
            return None
        return b""      # unsupported: gdb's convention is an empty reply

    def _question(self) -> bytes | None:
        if self.current is not None and self.current.state is State.TRACED:
            return self._stop_reply(self.current)
        self.waiting = True         # no stop yet (the program is not there): it answers
        self._report()
        return None

    def _xfer(self, rest: bytes) -> bytes:
        obj, _, rest = rest.partition(b":")
        verb, _, rest = rest.partition(b":")
        annex, _, span = rest.partition(b":")
        off, n = (int(x, 16) for x in span.split(b","))
        if verb != b"read":
            return b""
        if obj == b"features":
            if annex != b"target.xml":
                return b"E00"
            data = self._regs().target_xml()
        elif obj == b"exec-file":
            data = self.proc.exe_bytes if self.proc is not None else b""
        elif obj == b"siginfo":
            t = self._stopped_thread()
            if t.ptrace.info is None:
                return b"E01"
            data = pack_siginfo(*t.ptrace.info)
        elif obj == b"auxv":
            mm = self.proc.mm if self.proc is not None else None
            data = mm.saved_auxv if mm is not None else b""
        else:
            return b""
        chunk = data[off:off + min(n, PACKET_SIZE // 2)]
        return (b"m" if off + len(chunk) < len(data) else b"l") + packets.escape(chunk)

    # -- threads and registers -------------------------------------------------------------
    def _find(self, tid: int) -> Task | None:
        for t in self._threads():
            if t.tid == tid:
                return t
        return None

    def _thread(self) -> Task | None:
        for t in (self.gthread, self.current):
            if t is not None and t.ptrace is not None and t.ptrace.tracer is self:
                return t
        threads = self._threads()
        return threads[0] if threads else None

    def _stopped_thread(self) -> Task:
        t = self._thread()
        if t is None or t.state is not State.TRACED:
            raise KernelError(E.ESRCH)    # ESRCH: no stopped thread to look at
        return t

    def _select(self, arg: bytes) -> bytes:
        kind, tid = arg[:1], int(arg[1:], 16)
        if kind == b"g" and tid > 0:
            t = self._find(tid)
            if t is None:
                return b"E01"
            self.gthread = t
        return b"OK"

    def _regs(self) -> RegisterFile:
        if self.regfile is None:
            self.regfile = RegisterFile(_host(hptrace.get_xstate, self._stopped_thread().hpid))
        return self.regfile

    # -- memory --------------------------------------------------------------------------
    def _mem(self):
        t = self._thread()
        if t is None or t.mem is None:
            raise KernelError(E.ESRCH)
        return t.mem

    def _breakpoint(self, insert: bool, arg: bytes) -> bytes:
        kind, addr, _ = arg.split(b",", 2)
        if kind != b"0":
            return b""          # hardware breakpoints and watchpoints: not here
        if not insert:
            self.memory.remove(self._mem(), int(addr, 16))
        elif not self.memory.insert(self._mem(), int(addr, 16)):
            return b"E01"
        return b"OK"

    # -- running -------------------------------------------------------------------------
    def _resume_cmd(self, op: bytes, arg: bytes) -> bytes | None:
        """c [addr], C sig[;addr], s [addr], S sig[;addr]: the current thread."""
        sig = 0
        if op in (b"C", b"S"):
            s, _, arg = arg.partition(b";")
            sig = int(s, 16)
        t = self._stopped_thread()
        if arg:
            _putreg(t, "rip", int(arg, 16))
        return self._resume({t: (op.lower(), sig)}, (b"c", 0))     # the others go on

    def _vcont(self, spec: bytes) -> bytes | None:
        per: dict[Task, tuple[bytes, int]] = {}
        default = None
        for action in spec.split(b";"):
            what, _, tid = action.partition(b":")
            kind = what[:1].lower()
            if kind not in (b"c", b"s"):
                return b""
            act = (kind, int(what[1:], 16) if what[:1] in (b"C", b"S") else 0)
            if not tid or int(tid, 16) in (0, -1) or tid == b"-1":
                if default is None:
                    default = act
                continue
            t = self._find(int(tid, 16))
            if t is not None and t not in per:
                per[t] = act
        return self._resume(per, default)

    def _resume(self, per: dict, default) -> None:
        """Restart the stopped threads as gdb says (per thread, else the
        default action; none: the thread stays stopped).  A stop gdb has
        not heard of yet, of a thread this resumes, is reported at once
        instead; the stops of threads gdb leaves stopped (stepping one
        over a breakpoint) wait for their own resume, as gdbserver keeps
        them: gdb stepping one thread expects no other's."""
        self.waiting = True
        go = {t: act for t in self._threads() if (act := per.get(t, default)) is not None}
        self.held = {t for t in self._threads() if t not in go}
        if any(t not in self.held for t in self.events):
            self._report()
            return None
        for t, (kind, gsig) in go.items():
            if t.state is not State.TRACED:
                continue
            sig = G.to_linux(gsig) or 0
            if t in self.quiet:
                self.quiet.discard(t)
                if t is not self.current or not gsig:
                    sig = 0         # our SIGSTOP: never the program's
            t.ptrace.stepping = kind == b"s"
            ptracer.restart(t, sig)
        return None

    def _interrupt(self) -> None:
        """Ctrl-C: stop the process; gdb hears SIGINT from the thread that stops first."""
        if not self.waiting or self.proc is None:
            return
        threads = [t for t in self._threads() if t.state is not State.TRACED]
        if threads:
            self.report_as[threads[0]] = G.from_linux(S.SIGINT)
        self._stop_others(None)

    def _detach(self) -> None:
        """The process goes on: breakpoints out, every thread restarted
        with the signal it stopped with, but SIGTRAP, SIGINT and our own
        SIGSTOP (gdbserver's get_detach_signal without QPassSignals)."""
        if self.proc is not None:
            t = self._thread()
            self.memory.remove_all(t.mem if t is not None else None)
            if self.requested:      # our SIGSTOPs still on their way: never the program's
                discard(self.proc, S.sigbit(S.SIGSTOP))
                self.requested.clear()
            for t in self._threads():
                sig = 0
                if t.state is State.TRACED and t not in self.quiet and t.ptrace.info is not None \
                        and t.ptrace.info[0] not in (S.SIGTRAP, S.SIGINT):
                    sig = t.ptrace.info[0]
                ptracer.detach(self.k, t, sig)
            printk.pr_info(f"gdb: detached from pid {self.proc.pid}")
        self.close()

    def _kill(self) -> None:
        if self.proc is not None and not self.proc.exited:
            self.waiting = False
            self.k.procs.kill_process(self.proc, S.SIGKILL)
        self.close()


