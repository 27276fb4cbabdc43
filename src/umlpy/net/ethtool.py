"""SIOCETHTOOL, as Linux's dev_ethtool answers it for the devices umlpy
has: lo (loopback_ethtool_ops: a link that is always on, software time
stamps) and the user-mode NICs (UML's uml_net driver: its name, the
carrier as the link, software time stamps).  Neither has
link settings, so ETHTOOL_GSET and GLINKSETTINGS are EOPNOTSUPP, which
tools (psutil's net_if_stats, ethtool) read as "speed and duplex unknown";
anything else is EOPNOTSUPP too, after the CAP_NET_ADMIN that every
command but the getters needs (EPERM).
"""
from __future__ import annotations

import struct

from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_NET_ADMIN
from umlpy.kernel.errors import KernelError
from umlpy.net.netdev import ARPHRD_LOOPBACK, IFF_RUNNING, IFF_UP, NetDevice, net_capable

ETHTOOL_GDRVINFO, ETHTOOL_GLINK, ETHTOOL_GET_TS_INFO = 0x3, 0xA, 0x41
# the commands anyone may give (dev_ethtool's first switch): the getters
UNPRIVILEGED = frozenset((
    0x01, 0x03, 0x07, 0x0A, 0x0E, 0x10, 0x12, 0x14, 0x16, 0x18, 0x1B, 0x1D, 0x1E, 0x20, 0x21, 0x23,
    0x25, 0x27, 0x29, 0x2B, 0x2D, 0x2E, 0x2F, 0x30, 0x37, 0x38, 0x3A, 0x3C, 0x41, 0x44, 0x46, 0x48,
    0x4A, 0x4C, 0x4E, 0x50))
DRVINFO = struct.Struct("<I32s32s32s32s32s12sIIIII")      # struct ethtool_drvinfo
TS_INFO = struct.Struct("<IIiI3II3I")                     # struct ethtool_ts_info
# ethtool_op_get_ts_info's, which both have: TX_SOFTWARE, RX_SOFTWARE, SOFTWARE
SOFTWARE_STAMPS = 1 << 1 | 1 << 3 | 1 << 4


def ethtool(t, net, dev_name: str, useraddr: int) -> int:
    (cmd,) = struct.unpack("<I", t.mem.read(useraddr, 4))
    dev = net.by_name(dev_name)         # ENODEV
    if cmd not in UNPRIVILEGED and not net_capable(t, CAP_NET_ADMIN):
        raise KernelError(E.EPERM)
    lo = dev.type == ARPHRD_LOOPBACK
    if cmd == ETHTOOL_GDRVINFO and not lo:      # uml_net_get_drvinfo; lo has neither it nor a parent
        t.mem.write(useraddr, DRVINFO.pack(cmd, b"uml-netdev", b"42", b"", b"", b"", b"", 0, 0, 0, 0, 0))
    elif cmd == ETHTOOL_GLINK:
        t.mem.write(useraddr, struct.pack("<II", cmd, int(_link(dev, lo))))
    elif cmd == ETHTOOL_GET_TS_INFO:
        t.mem.write(useraddr, TS_INFO.pack(cmd, SOFTWARE_STAMPS, -1, 0, 0, 0, 0, 0, 0, 0, 0))
    else:
        raise KernelError(E.EOPNOTSUPP)
    return 0


def _link(dev: NetDevice, lo: bool) -> bool:
    """ethtool_get_link: running, and lo's always_on or the NIC's carrier."""
    return bool(dev.flags & IFF_UP) and (lo or bool(dev.flags & IFF_RUNNING))
