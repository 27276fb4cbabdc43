"""Socket ioctl numbers and the structs they carry (uapi linux/sockios.h,
net/if.h, net/route.h, linux/ipv6.h), x86-64 layouts."""
from __future__ import annotations

import struct

SOCK_IOC_TYPE = 0x89

SIOCADDRT, SIOCDELRT = 0x890B, 0x890C
SIOCGIFNAME, SIOCSIFLINK, SIOCGIFCONF = 0x8910, 0x8911, 0x8912
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
SIOCGIFADDR, SIOCSIFADDR = 0x8915, 0x8916
SIOCGIFDSTADDR, SIOCSIFDSTADDR = 0x8917, 0x8918
SIOCGIFBRDADDR, SIOCSIFBRDADDR = 0x8919, 0x891A
SIOCGIFNETMASK, SIOCSIFNETMASK = 0x891B, 0x891C
SIOCGIFMETRIC, SIOCSIFMETRIC = 0x891D, 0x891E
SIOCGIFMEM, SIOCSIFMEM = 0x891F, 0x8920
SIOCGIFMTU, SIOCSIFMTU = 0x8921, 0x8922
SIOCSIFNAME, SIOCSIFHWADDR = 0x8923, 0x8924
SIOCGIFHWADDR, SIOCGIFSLAVE = 0x8927, 0x8929
SIOCADDMULTI, SIOCDELMULTI, SIOCGIFINDEX = 0x8931, 0x8932, 0x8933
SIOCSIFPFLAGS, SIOCGIFPFLAGS, SIOCDIFADDR = 0x8934, 0x8935, 0x8936
SIOCSIFHWBROADCAST = 0x8937
SIOCGIFTXQLEN, SIOCSIFTXQLEN = 0x8942, 0x8943
SIOCETHTOOL, SIOCGMIIPHY, SIOCGMIIREG, SIOCSMIIREG = 0x8946, 0x8947, 0x8948, 0x8949
SIOCGIFMAP, SIOCSIFMAP = 0x8970, 0x8971

IFNAMSIZ = 16
IFREQ_SIZE = 40                              # name, then a 24-byte union at IFR_DATA
IFR_DATA = 16
IFCONF = struct.Struct("<i4xQ")              # ifc_len, ifc_buf
SOCKADDR = struct.Struct("<H14s")            # sa_family, sa_data
SOCKADDR_IN = struct.Struct("<HH4s8x")       # sin_family, sin_port, sin_addr
IN6_IFREQ = struct.Struct("<16sIi")          # ifr6_addr, ifr6_prefixlen, ifr6_ifindex

# struct rtentry: rt_dst, rt_gateway, rt_genmask (sockaddrs), rt_flags,
# rt_metric, rt_dev (a pointer to the device name)
RTENTRY_SIZE = 120
RTENTRY = struct.Struct("<8x16s16s16sH22xh6xQ")
RTF_UP, RTF_GATEWAY, RTF_HOST, RTF_REJECT = 0x1, 0x2, 0x4, 0x200
