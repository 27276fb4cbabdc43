"""eth0=user: the device and the NAT behind it, made at boot.

eth0 starts down and unconfigured, as Linux's does: DHCP (udhcpc in the
guest, or ip=dhcp) or ip=/ifconfig/ip bring it up.  A malformed eth0=
value, or a hostfwd= port the host will not let us listen on, stops the
boot with a panic naming it (as QEMU refuses to start).
"""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.net import netdev
from umlpy.net.slirp import config, vnet
from umlpy.net.slirp.nat import Nat


def create(kernel, value: str) -> None:
    try:
        cfg = config.parse(value)
    except ValueError as e:
        raise KernelError(E.EINVAL, f"eth0: {e}") from None
    for note in cfg.notes:
        printk.pr_warn(f"eth0: {note}")
    dev = kernel.net.add_device(netdev.NetDevice(
        "eth0", 0, netdev.ARPHRD_ETHER, hwaddr=vnet.GUEST_MAC, mtu=1500,
        flags=netdev.IFF_BROADCAST | netdev.IFF_MULTICAST))
    try:
        kernel.net.nat = Nat(kernel, cfg, dev)
    except OSError as e:
        raise KernelError(E.EADDRINUSE, f"eth0: could not set up host forwarding: {e.strerror}") from None
    printk.pr_info(f"eth0: user-mode networking, hwaddr {vnet.GUEST_MAC.hex(':')}: guest "
                   f"10.0.2.15/24, gateway 10.0.2.2 (the host's loopback), DNS 10.0.2.3"
                   + (", restrict=on (nothing beyond the gateway and DNS)" if cfg.restrict else ""))
