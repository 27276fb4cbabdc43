"""The kernel command line, parsed as Linux and UML do.

Known parameters are consumed; UML options umlpy does not implement
(uml_options.py) are consumed too, each with one warning; unknown
`name=value` words go to init's environment and bare words to init's argv
(Linux's unknown_bootoption); everything after `--` goes to init's argv.
A word that looks like a misspelt UML option is reported.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from umlpy.kernel import uml_options

# name (without unit number) -> one-line help; `N` marks a numbered option
PARAMS: dict[str, str] = {
    "initrd=": "initrd=<file>: a newc cpio archive (host file) unpacked into a tmpfs root",
    "restore=": "restore=<dir>: rebuild the processes of a checkpoint image instead of running init "
                "(`umlpy restore DIR` gives it with the image's command line; docs/checkpoint.md)",
    "init=": "init=<path>: the first guest program (default /sbin/init, /etc/init, /bin/init, /bin/sh)",
    "mem=": "mem=<size>[KMG]: guest memory (default 256M)",
    "quiet": "quiet: log warnings and errors only",
    "loglevel=": "loglevel=<0-8>: log messages of a level below this",
    "debug": "debug: log everything (loglevel=10)",
    "pdb": "pdb: a kernel oops stops in the host's pdb on its traceback, the guest frozen (umlpy --pdb)",
    "conN=": ("con<N>=<in>[,<out>]: virtual console N's channel (N 0-15; /dev/ttyN, con0 is /dev/console): "
              "fd:<n>, null, pts, port:<port> (127.0.0.1, raw TCP), file:<path> (output), none; "
              "pty and xterm are null here (default con0=fd:0,fd:1, others none, tty1 the console's own "
              "terminal unless con1= or con= names a channel)"),
    "con=": "con=<spec>: channel for every console without its own con<N>=",
    "sslN=": "ssl<N>=<in>[,<out>]: serial line N's channel (N 0-63; /dev/ttyS<N>), as con<N>= (default none)",
    "ssl=": "ssl=<spec>: channel for every serial line without its own ssl<N>=",
    "umid=": "umid=<name>: machine id naming the ~/.uml/<umid>/ directory",
    "uml_dir=": "uml_dir=<dir>: where umid directories live (default ~/.uml/)",
    "root=": "root=<dev>: the root device",
    "rootfstype=": "rootfstype=<type>: the root filesystem type (ext2, ext3, ext4; hostfs: a host directory, see rootflags=)",
    "rootflags=": "rootflags=<options>: the root's mount options; with rootfstype=hostfs the host directory, inside hostfs= (default: all of it)",
    "ro": "ro: mount the root filesystem read-only",
    "rw": "rw: mount the root filesystem read-write",
    "noreboot": "noreboot: a reboot(2) restart ends umlpy instead of booting again",
    "ubdN=": "ubd<N>[rsdct]=<file>[,<backing>]: block device /dev/ubdX on a host file; cow,backing or cow:backing for a COW overlay",
    "hostname=": "hostname=<name>: the guest's hostname (default umlpy)",
    "umlpy_cpu=": "umlpy_cpu=<n>: the host CPU to pin the kernel and guests to",
    "seccomp=": ("seccomp=on|off: guests trap through seccomp (on, the default: user notifications and "
                 "ptrace stops) or through ptrace alone (off), as UML's seccomp= chooses its mode"),
    "lsm=": ("lsm=<list>: the security modules to enable, as Linux's lsm= (capability is always on; "
             "landlock, the default, is off when the list leaves it out: its syscalls are then EOPNOTSUPP)"),
    "hostfs=": "hostfs=<dir>[,append]: allow hostfs mounts of this host directory and below (hostfs=/: the whole host; without it none); append: host files opened O_APPEND",
    "mconsole=": "mconsole=notify:<socket>: tell that host socket where the management console listens",
    "eth0=": "eth0=user[,hostfwd=tcp|udp:[hostaddr]:hostport-[guestaddr]:guestport...][,restrict=on][,hostdns=addr[:port]]: user-mode networking (QEMU's -netdev user; eth0=slirp,... is taken as eth0=user)",
    "ip=": "ip=dhcp | ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>: configure eth0 at boot, as Linux's ipconfig",
    "strace": "strace[=<file>]: print every guest syscall, signal and exit as strace -f (to the kernel log, or a host file)",
    "strace.syscalls=": "strace.syscalls=<list>: trace only these syscalls (names, %file %net %process %signal %memory %ipc)",
    "strace.pid=": "strace.pid=<n>: trace only the process with pid n",
    "gdb=": ("gdb=tcp:127.0.0.1:<port>[,exec=<path>]: a gdb server on that host port (0: a free one, "
             "logged) debugging init, or the first process that execs the guest program <path>, "
             "stopped at its first instruction until gdb continues it"),
    "unsupported": ("UML options umlpy lacks (ethN= but eth0=user, vecN:, xterm=, iomem=, "
                    "dsp=, mixer=, pci=, fakehd, ncpus=, skas0, time-travel, dtb=): one warning, ignored"),
}


@dataclass
class BootParams:
    words: list[str] = field(default_factory=list)
    initrd: str | None = None
    restore: str | None = None      # a checkpoint image to restore instead of running init
    init: str | None = None
    mem: int = 256 << 20
    loglevel: int | None = None
    quiet: bool = False
    pdb: bool = False                 # oopses stop in the host's pdb (arch_um/debugger.py)
    consoles: dict[int, str] = field(default_factory=dict)
    con_default: str | None = None
    serial: dict[int, str] = field(default_factory=dict)
    ssl_default: str | None = None
    umid: str | None = None
    uml_dir: str | None = None
    root: str | None = None
    rootfstype: str | None = None
    rootflags: str | None = None
    read_only: bool = True
    noreboot: bool = False
    hostname: str = "umlpy"
    cpu: int | None = None
    seccomp: bool = True
    lsm: str | None = None            # lsm=: the security modules on (None: every one, Landlock)
    ubd: list[tuple[str, str]] = field(default_factory=list)
    mconsole_notify: str | None = None
    hostfs_root: str | None = None
    hostfs_append: bool = False
    eth0: str | None = None           # eth0=user[,options] (net/slirp/config.py parses it)
    ip: str | None = None             # ip= (net/ipconfig.py)
    strace: str | None = None         # strace ("") or strace=FILE (kernel/strace)
    strace_syscalls: str | None = None
    strace_pid: int | None = None
    gdb_port: int | None = None       # gdb= (debug/gdbstub.py)
    gdb_exec: str | None = None
    init_argv: list[str] = field(default_factory=list)
    init_env: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unsupported: list[tuple[str, str]] = field(default_factory=list)     # (word, what it is in UML)

    def lsm_enabled(self, name: str) -> bool:
        """Whether lsm= (if given) names this security module."""
        return self.lsm is None or name in self.lsm.split(",")


def parse_size(text: str) -> int:
    """Linux's memparse: a decimal or 0x number, then K, M, G or T (a
    trailing B too, as UML's documentation writes mem=128MB)."""
    m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|\d+)([KkMmGgTt]?)[Bb]?", text.strip())
    if not m:
        raise ValueError(f"bad size {text!r}")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    return int(m.group(1), 16 if m.group(1)[:2] in ("0x", "0X") else 10) * mult


def _misspelt(name: str) -> str | None:
    base = re.sub(r"\d+$", "", name)
    if base in uml_options.NAMES:
        return None
    close = difflib.get_close_matches(base, uml_options.NAMES, n=1, cutoff=0.6)
    return close[0] if close else None


# words without a value: the field each sets and to what
_FLAGS = {"quiet": ("quiet", True), "debug": ("loglevel", 10), "pdb": ("pdb", True),
          "ro": ("read_only", True), "rw": ("read_only", False), "noreboot": ("noreboot", True),
          "strace": ("strace", "")}
# name=value taken as it is written: the field it sets
_STRINGS = {"initrd": "initrd", "restore": "restore", "init": "init", "con": "con_default",
            "ssl": "ssl_default", "umid": "umid", "uml_dir": "uml_dir", "root": "root",
            "rootfstype": "rootfstype", "rootflags": "rootflags", "hostname": "hostname", "lsm": "lsm"}
# name=number: the field, how it is read, and what it is not when it cannot be
_NUMBERS = {"mem": ("mem", parse_size, "a size"), "loglevel": ("loglevel", int, "a number"),
            "umlpy_cpu": ("cpu", int, "a number")}


def parse(words: list[str]) -> BootParams:
    p = BootParams(words=list(words))
    after_dashes = False
    for w in words:
        if after_dashes:
            p.init_argv.append(w)
            continue
        if w == "--":
            after_dashes = True
            continue
        name, eq, value = w.partition("=")
        if not eq:
            if w in _FLAGS:
                setattr(p, *_FLAGS[w])
            elif not _unsupported(p, w):
                p.init_argv.append(w)
            continue
        if name in _STRINGS:
            setattr(p, _STRINGS[name], value)
        elif name in _NUMBERS:
            attr, parse_value, what = _NUMBERS[name]
            try:
                setattr(p, attr, parse_value(value))
            except ValueError:
                p.warnings.append(f"{name}={value}: not {what}"
                                  + (f", using {p.mem >> 20}M" if name == "mem" else ""))
        elif re.fullmatch(r"con\d+", name):
            p.consoles[int(name[3:])] = value
        elif re.fullmatch(r"ssl\d+", name):
            p.serial[int(name[3:])] = value
        elif name == "seccomp" and value in ("on", "off"):
            p.seccomp = value == "on"
        elif re.fullmatch(r"ubd([0-9]+|[a-z])[a-z]*", name):
            p.ubd.append((name, value))
        elif name == "mconsole" and value.startswith("notify:"):
            p.mconsole_notify = value[len("notify:"):]
        elif name == "hostfs":
            root, _, opt = value.partition(",")
            p.hostfs_root = root or None
            p.hostfs_append = opt == "append"
        elif name == "eth0" and value.partition(",")[0] in ("user", "slirp"):
            p.eth0 = value
        elif name in ("ip", "nfsaddrs"):
            p.ip = value
        elif name in ("strace", "strace.syscalls", "strace.pid"):
            _strace(p, name, value)
        elif name == "gdb":
            _gdb(p, value)
        elif _unsupported(p, w):
            pass
        elif "." in name:
            pass  # module parameters are not init's business (Linux)
        else:
            guess = _misspelt(name)
            if guess:
                p.warnings.append(f"Unknown kernel command line parameter \"{w}\": did you mean \"{guess}\"?")
            p.init_env.append(w)
    return p


def _strace(p: BootParams, name: str, value: str) -> None:
    """strace=FILE, strace.syscalls=LIST, strace.pid=N (kernel/strace/start.py)."""
    if name == "strace":
        p.strace = value
    elif name == "strace.syscalls":
        p.strace_syscalls = value
    elif value.isdigit():
        p.strace_pid = int(value)
    else:
        p.warnings.append(f"strace.pid={value}: not a number")


def _gdb(p: BootParams, value: str) -> None:
    """gdb=tcp:127.0.0.1:PORT[,exec=PATH]: the host end listens on the
    loopback only, whatever address is written."""
    spec, _, opt = value.partition(",")
    m = re.fullmatch(r"tcp:(?:(?:127\.0\.0\.1|localhost):)?(\d+)", spec)
    if m is None or int(m.group(1)) > 65535 or (opt and not opt.startswith("exec=/")):
        p.warnings.append(f"gdb={value}: expected tcp:127.0.0.1:<port>[,exec=<absolute path>]")
        return
    p.gdb_port = int(m.group(1))
    p.gdb_exec = opt[len("exec="):] or None if opt else None


def _unsupported(p: BootParams, word: str) -> bool:
    """A UML option umlpy does not implement: noted for one warning, kept from init."""
    what = uml_options.unsupported(word)
    if what is not None:
        p.unsupported.append((word, what))
    return what is not None
