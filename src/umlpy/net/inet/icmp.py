"""ICMP echo sockets (ping): being written (net/slirp helper)."""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError


def new(t, family: int, stype: int, protocol: int, flags: int):
    raise KernelError(E.EPROTONOSUPPORT)
