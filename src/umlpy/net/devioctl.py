"""The netdevice ioctls every socket answers (SIOCGIFCONF, SIOCGIFFLAGS, ...)."""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError


def dev_ioctl(t, req: int, arg: int) -> int:
    raise KernelError(E.ENOTTY)
