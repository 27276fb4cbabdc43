"""UML's lines: virtual consoles con0..con15 (/dev/tty0 is con0, /dev/ttyN
major 4 minor N) and serial lines ssl0..ssl63 (/dev/ttySN, major 4 minor
64+N), each a Console (drivers/console.py) on a host channel, as UML's
stdio_console.c, ssl.c and line.c.

Channel syntax, as UML's chan_kern.c: `in,out` or one spec for both;
fd:N, null, pts (a host pseudo-terminal, logged as UML does), pty (BSD
ptys: refused unless the host has them), port:PORT (arch_um/channels.py:
127.0.0.1 only, a raw stream instead of UML's in.telnetd), file:PATH
(output only, an umlpy addition), xterm (no X terminals here: null), and
none, which leaves the line unconfigured: no device.  A channel that
cannot be had is logged and becomes null, so the line still exists.

Defaults as UML's stdio_init and ssl_init: conN= for one console, else
con=, else con0 gets fd:0,fd:1 and the others CON_CHAN; sslN=, else ssl=,
else SSL_CHAN.  UML's Kconfig has CON_CHAN "xterm" and SSL_CHAN "pty";
umlpy is built with both "none" (UML_CONSOLE_DEFAULTS), since neither
channel exists on a headless host: only lines the command line (or a
later mconsole `config`) names get a device.

But for tty1: with no con1= (nor con=), /dev/tty1 is the console's own
terminal, as on a PC, where /dev/console and /dev/tty0 name the foreground
virtual terminal and that is tty1 after boot.  A stock image's getty on
tty1 (systemd's getty@tty1, sysvinit's inittab) then gives its login
prompt on the terminal umlpy runs in, where UML would leave it on a host
pts nobody watches.
"""
from __future__ import annotations

import re

from arch_um import channels
from arch_um.console import HostChannel
from arch_um.events import EPOLLIN, EPOLLOUT
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.drivers import console as console_drv
from umlpy.drivers.tty import open_tty
from umlpy.fs import devtmpfs
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.vfs import devices

TTY_MAJOR = 4
MAX_CONSOLES = 16       # UML's MAX_TTYS
MAX_SERIAL = 64         # UML's NR_PORTS
SERIAL_MINOR = 64
CON_ZERO_CHAN = "fd:0,fd:1"
UML_CONSOLE_DEFAULTS = {"con": "none", "ssl": "none"}    # CONFIG_CON_CHAN, CONFIG_SSL_CHAN
_KINDS = {"con": ("Virtual console", "tty", 0), "ssl": ("Serial line", "ttyS", SERIAL_MINOR)}


class Line(console_drv.Console):
    """A console or serial line; con0 is one too (the console, which adopts)."""

    adopt_by_leader = False

    def __init__(self, k, channel, name: str, rdev: int, adopt: bool = False) -> None:
        super().__init__(k, channel, name, rdev)
        self.adopt_by_leader = adopt

    # -- port: one connection at a time ------------------------------------------------
    def connect(self) -> bool:
        """Take a waiting client of the port, if there is one."""
        if not self.ch.accept():
            return False
        self.attach(self.ch)
        if self.ch.pending_output():
            self._watch(self.ch.out_fd, EPOLLOUT, True)
        self.read_wq.wake_all()
        self.write_wq.wake_all()
        return True

    def _host_eof(self) -> None:
        """The client left: the line hangs up, as UML's does at its channel's
        EOF, and waits for the next connection."""
        if not isinstance(self.ch, channels.PortChannel):
            super()._host_eof()
            return
        self.detach()
        self.ch.disconnect()
        self.hangup()
        self.k.lines.listen(self.ch.port)

    def close(self) -> None:
        self.detach()
        self.ch.restore()


def split_name(name: str) -> tuple[str, int]:
    """con3 -> ("con", 3); ENODEV for anything that is not a line."""
    m = re.fullmatch(r"(con|ssl)(\d+)", name)
    if not m or int(m.group(2)) >= (MAX_CONSOLES if m.group(1) == "con" else MAX_SERIAL):
        raise KernelError(E.ENODEV, f"{name}: no such line")
    return m.group(1), int(m.group(2))


def default_spec(params, kind: str, n: int) -> str:
    own = params.consoles if kind == "con" else params.serial
    dflt = params.con_default if kind == "con" else params.ssl_default
    if n in own:
        return own[n]
    if dflt is not None:
        return dflt
    return CON_ZERO_CHAN if (kind, n) == ("con", 0) else UML_CONSOLE_DEFAULTS[kind]


def open_channel(spec: str, who: str) -> HostChannel:
    """The host end for spec; what cannot be had is logged and is null."""
    ins, _, outs = spec.partition(",")
    outs = outs or ins
    if outs.startswith("file:"):
        if ins != "null" and not ins.startswith("file:"):
            printk.pr_warn(f"{who}: input '{ins}' with a file: output, using null for input")
        try:
            return channels.open_file(outs[5:])
        except OSError as e:
            printk.pr_warn(f"{who}: cannot open '{outs[5:]}' ({e.strerror}), using null")
            return HostChannel(None, None)
    if ins == outs:
        whole = _whole(ins, who)
        if whole is not None:
            return whole
    return HostChannel(_side(ins, "in", who), _side(outs, "out", who))


def _whole(spec: str, who: str) -> HostChannel | None:
    """A channel that is both directions at once (pts, port), or None."""
    try:
        if spec == "pts":
            ch = HostChannel.open_pty()
            printk.pr_info(f"{who} assigned device '{ch.name}'")
            return ch
        if spec.startswith("port:"):
            port = int(spec[5:])
            if not 0 < port < 65536:
                raise ValueError(port)
            ch = channels.PortChannel(port)
            printk.pr_info(f"{who} assigned port {port} on 127.0.0.1 (raw TCP, no telnet)")
            return ch
    except (OSError, ValueError) as e:
        printk.pr_warn(f"{who}: channel '{spec}' failed ({e}), using null")
        return HostChannel(None, None)
    return None


def _side(spec: str, which: str, who: str) -> int | None:
    if spec == "null":
        return None
    if spec.startswith("fd:") and spec[3:].isdigit():
        return int(spec[3:])
    if spec == "xterm":
        printk.pr_warn(f"{who}: xterm channels are not available in umlpy, using null for {which}put")
    elif spec == "pty":
        printk.pr_warn(f"{who}: pty (BSD pseudo-terminal) channels are not available "
                       f"{'in umlpy' if channels.has_bsd_ptys() else 'on this host'}; use pts; "
                       f"using null for {which}put")
    elif spec in ("pts",) or spec.startswith("port:"):
        printk.pr_warn(f"{who}: '{spec}' must be both input and output, using null for {which}put")
    elif spec.startswith("file:"):
        pass        # input from a file: null, as documented
    else:
        printk.pr_warn(f"{who}: channel '{spec}' not supported, using null for {which}put")
    return None


class Lines:
    """The machine's configured lines (k.lines), con0 among them."""

    def __init__(self, k) -> None:
        self.k = k
        self.lines: dict[tuple[str, int], console_drv.Console] = {}

    def console(self) -> console_drv.Console:
        """con0, first of all, so that the boot log has its terminal."""
        spec = default_spec(self.k.params, "con", 0)
        self.add("con", 0, spec if spec != "none" else "null")
        return self.lines[("con", 0)]

    def setup(self) -> None:
        """The other lines the command line configures (devtmpfs is ready)."""
        params = self.k.params
        for kind, own, count in (("con", params.consoles, MAX_CONSOLES), ("ssl", params.serial, MAX_SERIAL)):
            for n in sorted(own):
                if n >= count:
                    printk.pr_warn(f"{kind}{n}: no such line ({kind}0-{kind}{count - 1}), ignored")
            for n in range(1 if kind == "con" else 0, count):
                spec = default_spec(params, kind, n)
                if spec != "none":
                    self.add(kind, n, spec)
                elif (kind, n) == ("con", 1) and n not in own and params.con_default is None:
                    self._first_vt()

    def _first_vt(self) -> None:
        """/dev/tty1 as the console's terminal (the foreground VT)."""
        console = self.lines[("con", 0)]
        devices.register_char(TTY_MAJOR, 1, lambda d, i, fl, t: open_tty(d, i, fl, t, console))
        devtmpfs.add_char_node("tty1", TTY_MAJOR, 1, 0o620)

    def add(self, kind: str, n: int, spec: str) -> None:
        who_kind, node, base = _KINDS[kind]
        ch = open_channel(spec, f"{who_kind} {n}")
        self.k.channels.append(ch)
        if (kind, n) == ("con", 0):
            line = Line(self.k, ch, "console", structs.makedev(TTY_MAJOR, 0), adopt=True)
            console_drv.register(line)
        else:
            rdev = structs.makedev(TTY_MAJOR, base + n)
            line = Line(self.k, ch, f"{node}{n}", rdev)
            devices.register_char(TTY_MAJOR, base + n, lambda d, i, fl, t: open_tty(d, i, fl, t, line))
            devtmpfs.add_char_node(f"{node}{n}", TTY_MAJOR, base + n, 0o620 if kind == "con" else 0o660)
        line.spec = spec
        self.lines[(kind, n)] = line
        if isinstance(ch, channels.PortChannel):
            self.listen(ch.port)

    # -- ports: lines given the same port share its listener, as UML's ---------------------
    def _port_lines(self, port: int) -> list[Line]:
        return [line for _, line in sorted(self.lines.items())
                if isinstance(line.ch, channels.PortChannel) and line.ch.port == port]

    def listen(self, port: int) -> None:
        lines = self._port_lines(port)
        if lines:
            self.k.sched.watch_fd(lines[0].ch.listen_fd, EPOLLIN, lambda ev: self._port_ready(port))

    def _port_ready(self, port: int) -> None:
        """A client connects: the first line of the port without one gets it;
        while every line has one, clients wait in the backlog."""
        lines = self._port_lines(port)
        free = [line for line in lines if line.ch.conn is None]
        if free and not free[0].connect():
            return
        if len(free) <= 1:
            self.k.sched.unwatch_fd(lines[0].ch.listen_fd)

    def remove(self, kind: str, n: int) -> None:
        line = self.lines.get((kind, n))
        if line is None:
            raise KernelError(E.ENODEV, "Device doesn't exist")
        if (kind, n) == ("con", 0) or line.files:
            raise KernelError(E.EBUSY, "Device is already open")
        _, node, base = _KINDS[kind]
        devices.unregister_char(TTY_MAJOR, base + n)
        devtmpfs.remove_node(f"{node}{n}")
        for m in self.k.mounts.mounts:
            if m.fs is devtmpfs.instance():
                m.root.forget(f"{node}{n}".encode())
        port_ch = line.ch if isinstance(line.ch, channels.PortChannel) else None
        del self.lines[(kind, n)]
        if port_ch is not None:
            self.k.sched.unwatch_fd(port_ch.listen_fd)
        line.close()
        self.k.channels.remove(line.ch)
        if port_ch is not None:
            self.listen(port_ch.port)      # the port's other lines, if any

    # -- mconsole ---------------------------------------------------------------------
    def config(self, name: str, spec: str | None) -> str:
        """`config conN=spec` (re)configures a line not open in the guest;
        `config conN` tells its channel ("none": not configured)."""
        kind, n = split_name(name)
        line = self.lines.get((kind, n))
        if spec is None:
            return line.spec if line is not None else "none"
        if line is not None:
            self.remove(kind, n)
        elif spec == "none":
            raise KernelError(E.EINVAL, "Device doesn't exist")     # setup_one_line: EINVAL
        if spec != "none":
            self.add(kind, n, spec)
        return ""
