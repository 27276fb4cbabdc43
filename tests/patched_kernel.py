"""A test's way into the kernel: `python tests/patched_kernel.py HOW SYSCALL
[umlpy's arguments]` boots through the umlpy launcher with SYSCALL's
handler patched in this process's copy of the kernel only: HOW `fault`
makes it raise, as a kernel bug would (an oops); `breakpoint` makes it
call breakpoint() before doing its work.  The kernel itself gives a guest
no way to make it oops or stop on purpose."""
from __future__ import annotations

import sys
from typing import Callable

from umlpy_cli import image, main


def fault(name: str, handler: Callable) -> Callable:
    def injected_fault_handler(t, *args):
        raise RuntimeError(f"injected fault in {name}")
    return injected_fault_handler


def stop_first(name: str, handler: Callable) -> Callable:
    def breakpoint_before(t, *args):
        breakpoint()
        return handler(t, *args)
    return breakpoint_before


PATCHES = {"fault": fault, "breakpoint": stop_first}


def load_patched(how: str, name: str) -> Callable:
    load = image.load_kernel

    def load_and_patch(img: str):
        boot = load(img)
        from umlpy.abi.syscall_nr import NUMBERS
        from umlpy.syscalls import table
        entry = table._entries[NUMBERS[name]]
        entry.fn = PATCHES[how](name, entry.fn)
        return boot
    return load_and_patch


if __name__ == "__main__":
    image.load_kernel = load_patched(sys.argv.pop(1), sys.argv.pop(1))
    main.main()
