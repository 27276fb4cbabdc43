"""UML's command line options that umlpy does not implement.

UML's drivers and arch code register their options with `__uml_setup`
(arch/um/drivers/*.c, arch/um/kernel/*.c, fs/hostfs) and Linux's
`__setup`; Linux consumes such words, so they never reach init's
environment or argv.  Those umlpy implements are parsed in cmdline.py;
the rest are named here, so that each gets one kernel log line saying
what it is and that it was ignored, and is still kept from init.
"""
from __future__ import annotations

import re

# (pattern matched against the option's name: the word up to its first `=` or `:`,
#  what the option is in UML)
UNSUPPORTED: tuple[tuple[str, str], ...] = (
    (r"ubd\w*", "UML block device option"),
    (r"mconsole", "UML management console option (umlpy has mconsole=notify:<socket>)"),
    (r"eth\d+", "UML network device (umlpy has eth0=user only)"),
    (r"vec\d+", "UML vector network device"),
    (r"xterm", "UML's xterm program for xterm channels"),
    (r"iomem", "UML host file mapped as I/O memory"),
    (r"dsp|mixer", "UML host sound device (hostaudio)"),
    (r"pci", "PCI options (UML's virtual PCI bus)"),
    (r"fakehd", "UML's ubd devices named as hd devices"),
    (r"ncpus", "UML's number of CPUs"),
    (r"seccomp|skas0|nosysemu|sysemu|mode", "UML's guest isolation mode (umlpy has seccomp=on|off)"),
    (r"time-travel|time-travel-start", "UML time travel"),
    (r"dtb", "UML device tree blob"),
    (r"stderr", "UML's stderr console"),
    (r"aio", "UML's host AIO selection"),
)
_UNSUPPORTED = [(re.compile(p), what) for p, what in UNSUPPORTED]

# every UML option name, for the misspelling hint (cmdline.py)
NAMES = ("ubd", "con", "ssl", "mem", "umid", "uml_dir", "hostfs", "mconsole", "root", "rootfstype",
         "rootflags", "init", "initrd", "eth", "vec", "xterm", "iomem", "loglevel", "noreboot",
         "hostname", "dsp", "mixer", "fakehd", "ncpus", "seccomp", "dtb")


def option_name(word: str) -> str:
    """vec0:transport=tap -> vec0; time-travel=inf-cpu -> time-travel; skas0 -> skas0."""
    return re.match(r"[^=:]*", word).group(0)


def unsupported(word: str) -> str | None:
    """What an option umlpy does not implement is, or None."""
    name = option_name(word)
    return next((what for rx, what in _UNSUPPORTED if rx.fullmatch(name)), None)
