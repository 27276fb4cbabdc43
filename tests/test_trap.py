"""The trap path: seccomp (the default) and ptrace alone (seccomp=off).

On the seccomp path the syscalls of kernel/trapset.FAST reach the kernel as
user notifications, answered with a value; everything else as ptrace stops
(docs/architecture.md, "The trap path").  t_trapmix (differential) checks
that each syscall answers the thread that made it and runs exactly once
while signals land in the middle of syscalls, on both paths.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import textwrap

import pytest

from conftest import PROGS, boot, native, sh

PATHS = ["seccomp=on", "seccomp=off"]


@pytest.mark.parametrize("path", PATHS)
def test_trapmix(path):
    want = native([str(PROGS / "t_trapmix")])
    got = sh("/t/bin/t_trapmix", path, timeout=300)
    assert got.stdout.decode() == want.decode()


def test_fast_handlers_read_only_their_arguments():
    """A notification carries a syscall's number, arguments and rip, and
    its answer a value: a handler of the fast set must not look at the
    task's registers, nor set them."""
    importlib.import_module("umlpy.syscalls")      # its modules fill the table
    from umlpy.abi.syscall_nr import NUMBERS
    from umlpy.kernel.trapset import FAST
    from umlpy.syscalls import table
    bad = []
    for name in FAST:
        entry = table.Table().get(NUMBERS[name])
        assert entry is not None, f"{name} has no handler"
        tree = ast.parse(textwrap.dedent(inspect.getsource(entry.fn)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("regs", "regs_dirty"):
                bad.append(f"{name}: {entry.fn.__module__}.{entry.fn.__name__}")
    assert not bad, bad


def test_boot_names_the_trap_path():
    on = boot("init=/bin/true", "seccomp=on")
    assert b"guests trap through seccomp" in on.stderr + on.stdout
    off = boot("init=/bin/true", "seccomp=off")
    assert b"guests trap through seccomp" not in off.stderr + off.stdout
    assert b"seccomp trap path" not in off.stderr + off.stdout     # no fallback warning either


def test_event_head_reads_the_syscall_arguments_in_order():
    """The trap loop reads an event's number and arguments with one unpack
    (arch_um.events.EVENT_HEAD), the registers in their struct order: the
    scheduler must hand them on as rdi, rsi, rdx, r10, r8, r9."""
    from arch_um._hostcall import ffi
    from arch_um.events import EVENT_HEAD
    ev = ffi.new("struct umlpy_event *")
    ev.kind, ev.id, ev.status, ev.has_regs, ev.compat, ev.notif, ev.msg = 0, 7, 0x857f, 1, 0, 1, 99
    for v, name in enumerate(("rdi", "rsi", "rdx", "r10", "r8", "r9", "orig_rax"), 1):
        setattr(ev.regs, name, v)
    _, pid, _, has_regs, _, notif, msg, a3, a5, a4, a2, a1, a0, nr = \
        EVENT_HEAD.unpack_from(ffi.buffer(ev))
    assert (pid, has_regs, notif, msg) == (7, 1, 1, 99)
    assert (a0, a1, a2, a3, a4, a5, nr) == (1, 2, 3, 4, 5, 6, 7)
