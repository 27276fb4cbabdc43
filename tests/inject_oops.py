"""A test's way to a kernel oops: `python tests/inject_oops.py SYSCALL
[umlpy's arguments]` boots through the umlpy launcher with SYSCALL's
handler replaced by one that raises, as a kernel bug would.  The fault is
injected from the host side, into this process's copy of the kernel only:
the kernel itself has no way for a guest to make it oops on purpose."""
from __future__ import annotations

import sys

from umlpy_cli import image, main


def injected_fault(name: str):
    def injected_fault_handler(t, *args):
        raise RuntimeError(f"injected fault in {name}")
    return injected_fault_handler


def load_with_fault(name: str):
    load = image._load_kernel

    def load_and_break(img: str):
        boot = load(img)
        from umlpy.abi.syscall_nr import NUMBERS
        from umlpy.syscalls import table
        table._entries[NUMBERS[name]].fn = injected_fault(name)
        return boot
    return load_and_break


if __name__ == "__main__":
    image._load_kernel = load_with_fault(sys.argv.pop(1))
    main.main()
