"""Netlink and rtnetlink wire formats: Linux's numbers and structs (uapi
linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h),
and the attribute (nlattr) packing both directions use."""
from __future__ import annotations

import struct

# -- netlink.h ------------------------------------------------------------------
NETLINK_ROUTE = 0
NETLINK_KOBJECT_UEVENT = 15
UEVENT_KERNEL_GROUP = 1      # the kernel's own uevents (udev re-sends on group 2)
MAX_LINKS = 32
SOL_NETLINK = 270

NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
NLMSG_MIN_TYPE = 0x10

NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_ECHO = 0x1, 0x2, 0x4, 0x8
NLM_F_DUMP_INTR, NLM_F_DUMP_FILTERED = 0x10, 0x20
NLM_F_ROOT, NLM_F_MATCH, NLM_F_ATOMIC = 0x100, 0x200, 0x400
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x100, 0x200, 0x400, 0x800
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200

NLMSGERR_ATTR_MSG = 1

# SOL_NETLINK options
NETLINK_ADD_MEMBERSHIP, NETLINK_DROP_MEMBERSHIP, NETLINK_PKTINFO = 1, 2, 3
NETLINK_BROADCAST_ERROR, NETLINK_NO_ENOBUFS = 4, 5
NETLINK_LISTEN_ALL_NSID, NETLINK_LIST_MEMBERSHIPS = 8, 9
NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK = 10, 11, 12

NLMSGHDR = struct.Struct("<IHHII")          # len, type, flags, seq, pid
SOCKADDR_NL = struct.Struct("<HHII")        # family, pad, pid, groups
NLATTR = struct.Struct("<HH")               # len, type
NLA_F_NESTED, NLA_F_NET_BYTEORDER = 0x8000, 0x4000
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF

PAGE_SIZE = 4096
SKB_SHINFO = 320                            # SKB_DATA_ALIGN(sizeof(struct skb_shared_info))
NLMSG_GOODSIZE = PAGE_SIZE - SKB_SHINFO     # a dump's first datagram at most
MAX_RECVMSG = 32768 - SKB_SHINFO            # what a reader's buffer can make dumps grow to

# -- rtnetlink.h ------------------------------------------------------------------
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE = 32, 33, 34
RTM_BASE = 16
RTM_MAX = 123                               # ((__RTM_MAX + 3) & ~3) - 1

RTNLGRP_LINK, RTNLGRP_NOTIFY, RTNLGRP_NEIGH, RTNLGRP_TC = 1, 2, 3, 4
RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_MROUTE, RTNLGRP_IPV4_ROUTE = 5, 6, 7
RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_ROUTE = 9, 11
RTNLGRP_MAX = 36

RTEXT_FILTER_VF = 1 << 0

IFINFOMSG = struct.Struct("<BxHiII")        # family, type, index, flags, change
IFADDRMSG = struct.Struct("<BBBBI")         # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("<BBBBBBBBI")         # family, dst_len, src_len, tos, table, protocol, scope, type, flags
FIB_RULE_HDR = struct.Struct("<BBBBBBBBI")  # family, dst_len, src_len, tos, table, res1, res2, action, flags

# link attributes (if_link.h)
IFLA_ADDRESS, IFLA_BROADCAST, IFLA_IFNAME, IFLA_MTU, IFLA_LINK = 1, 2, 3, 4, 5
IFLA_QDISC, IFLA_STATS, IFLA_MASTER = 6, 7, 10
IFLA_TXQLEN, IFLA_MAP, IFLA_OPERSTATE, IFLA_LINKMODE = 13, 14, 16, 17
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_STATS64 = 18, 20, 23
IFLA_AF_SPEC, IFLA_GROUP, IFLA_EXT_MASK, IFLA_PROMISCUITY = 26, 27, 29, 30
IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES, IFLA_CARRIER = 31, 32, 33
IFLA_CARRIER_CHANGES, IFLA_PROTO_DOWN = 35, 39
IFLA_GSO_MAX_SEGS, IFLA_GSO_MAX_SIZE = 40, 41
IFLA_XDP, IFLA_CARRIER_UP_COUNT, IFLA_CARRIER_DOWN_COUNT = 43, 47, 48
IFLA_MIN_MTU, IFLA_MAX_MTU = 50, 51
IFLA_ALT_IFNAME = 53
IFLA_PROTINFO = 12
IFLA_INET6_FLAGS, IFLA_INET6_CACHEINFO, IFLA_INET6_ADDR_GEN_MODE = 1, 5, 8
IF_READY = 0x80000000                       # IFLA_INET6_FLAGS: the device is up
IFLA_GRO_MAX_SIZE, IFLA_TSO_MAX_SIZE, IFLA_TSO_MAX_SEGS = 58, 59, 60
IFLA_XDP_ATTACHED = 2
IFNAMSIZ = 16

RTNL_LINK_STATS = 24                        # u32 counters in struct rtnl_link_stats
RTNL_LINK_STATS64 = 25                      # u64 counters in struct rtnl_link_stats64
RTNL_LINK_IFMAP = struct.Struct("<QQQHBB4x")  # mem_start, mem_end, base_addr, irq, dma, port

# address attributes (if_addr.h)
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST = 1, 2, 3, 4
IFA_ANYCAST, IFA_CACHEINFO, IFA_MULTICAST, IFA_FLAGS, IFA_RT_PRIORITY = 5, 6, 7, 8, 9
IFA_CACHEINFO_S = struct.Struct("<IIII")    # prefered, valid, cstamp, tstamp
IFA_F_OPTIMISTIC = 0x04
INFINITY_LIFE_TIME = 0xFFFFFFFF

# route attributes (rtnetlink.h)
RTA_DST, RTA_SRC, RTA_IIF, RTA_OIF, RTA_GATEWAY = 1, 2, 3, 4, 5
RTA_PRIORITY, RTA_PREFSRC, RTA_METRICS, RTA_MULTIPATH = 6, 7, 8, 9
RTA_CACHEINFO, RTA_TABLE, RTA_MARK, RTA_VIA, RTA_PREF, RTA_UID = 12, 15, 16, 18, 20, 25
RTA_CACHEINFO_S = struct.Struct("<IIiIIIII")  # clntref, lastuse, expires, error, used, id, ts, tsage
RTM_F_CLONED, RTM_F_PREFIX = 0x200, 0x800
RT_TABLE_COMPAT = 252                       # rtm_table of a table id beyond 255
RTCF_BROADCAST, RTCF_LOCAL = 0x10000000, 0x80000000

FRA_PRIORITY, FRA_SUPPRESS_PREFIXLEN, FRA_TABLE, FRA_PROTOCOL = 6, 14, 15, 21
FR_ACT_TO_TBL = 1


def align(n: int) -> int:
    return (n + 3) & ~3


def attr(atype: int, payload: bytes) -> bytes:
    """One nlattr, padded to four bytes (nla_put)."""
    n = NLATTR.size + len(payload)
    return NLATTR.pack(n, atype) + payload + bytes(align(n) - n)


def u8(atype: int, v: int) -> bytes:
    return attr(atype, struct.pack("<B", v))


def u32(atype: int, v: int) -> bytes:
    return attr(atype, struct.pack("<I", v & 0xFFFFFFFF))


def string(atype: int, s: str) -> bytes:
    return attr(atype, s.encode() + b"\0")


def nested(atype: int, *attrs: bytes) -> bytes:
    """A nest as rtnetlink makes it (nla_nest_start_noflag: no NLA_F_NESTED)."""
    return attr(atype, b"".join(attrs))


def message(mtype: int, flags: int, seq: int, pid: int, body: bytes) -> bytes:
    """One nlmsghdr and its body, padded (nlmsg_put + nlmsg_end)."""
    n = NLMSGHDR.size + len(body)
    return NLMSGHDR.pack(n, mtype, flags, seq & 0xFFFFFFFF, pid & 0xFFFFFFFF) + body + bytes(align(n) - n)


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """nlattrs by type (the last of a repeated type wins, as nla_parse);
    parsing stops at the first malformed attribute, as Linux's
    non-strict parsers ignore trailing bytes."""
    out: dict[int, bytes] = {}
    off = 0
    while off + NLATTR.size <= len(data):
        n, atype = NLATTR.unpack_from(data, off)
        if n < NLATTR.size or off + n > len(data):
            break
        out[atype & NLA_TYPE_MASK] = data[off + NLATTR.size:off + n]
        off += align(n)
    return out
