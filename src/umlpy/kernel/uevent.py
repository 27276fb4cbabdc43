"""Kernel uevents (kobject_uevent): what udev, systemd and `udevadm
monitor` hear on NETLINK_KOBJECT_UEVENT when a device changes.

The kernel keeps the sequence number and makes the message; the network
side (net/netlink, set at boot) delivers it to the listeners of group 1 in
the initial network namespace (Linux: every namespace its initial user
namespace owns).  Devices made at boot send none (no listener is up yet);
a loop device bound or unbound sends "change", as loop_configure and
__loop_clr_fd do.
"""
from __future__ import annotations

from typing import Callable


def device_env(name: str, major: int, minor: int, subsystem: str) -> list[str]:
    """A device's own uevent variables (its sysfs `uevent` file too)."""
    env = [f"MAJOR={major}", f"MINOR={minor}", f"DEVNAME={name}"]
    if subsystem == "block":
        env.append("DEVTYPE=disk")
    return env


class Uevents:
    """The sequence (/sys/kernel/uevent_seqnum) and the one deliverer."""

    def __init__(self) -> None:
        self.seqnum = 0
        self.deliver: Callable[[bytes], None] | None = None

    def send(self, action: str, devpath: str, subsystem: str, env: list[str]) -> None:
        """kobject_uevent_env: "ACTION@DEVPATH", then NUL-ended variables."""
        self.seqnum += 1
        words = [f"{action}@{devpath}", f"ACTION={action}", f"DEVPATH={devpath}",
                 f"SUBSYSTEM={subsystem}", *env, f"SEQNUM={self.seqnum}"]
        if self.deliver is not None:
            self.deliver("".join(w + "\0" for w in words).encode())
