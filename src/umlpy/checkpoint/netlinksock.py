"""Netlink sockets in a checkpoint (net/netlink.py): NETLINK_ROUTE, the
only protocol with a kernel side, raw or datagram.

Saved: the common socket options (checkpoint/sockbase.py); the port id
and whether the socket is bound (it takes that port id again in the
table: two sockets of one id are refused, as bind refuses them), the
multicast groups it is a member of, the destination connect gave, the
NETLINK_ flag options, SO_PASSCRED, whether its opener had
CAP_NET_ADMIN (netlink_ns_capable's file check), the largest read it
made (which sizes a dump's datagrams); the datagrams queued, each with
its sender's port id, group and credentials; and a dump under way: the
messages it has not queued yet, its sequence number and error, which go
on as the reader takes the queued ones, as netlink_dump does.  The
table's rover (the next negative id of an autobind) is the machine's
`netlink` entry.
"""
from __future__ import annotations

from collections import deque

from umlpy.checkpoint import image, sockbase
from umlpy.kernel.errors import KernelError
from umlpy.net import netlink
from umlpy.net import netlink_abi as NL
from umlpy.net.netlink import NetlinkSocket
from umlpy.net.socket import SOCK_DGRAM, SOCK_RAW
from umlpy.net.unix import truesize

S32 = (-(1 << 31), 1 << 31)
U32 = 1 << 32
MAX_PID = 1 << 22
MAX_DATAGRAM = 1 << 20
FLAG_NAMES = frozenset(netlink._FLAG_OPTS.values())


def savable(f) -> bool:
    return isinstance(f, NetlinkSocket) and f.sk_filter is None


def save(f: NetlinkSocket) -> dict:
    return {"kind": "netlink", "type": f.stype, "protocol": f.protocol, **sockbase.save(f),
            "portid": f.portid, "bound": f.bound, "groups": f.groups, "dst_portid": f.dst_portid,
            "dst_group": f.dst_group, "opener_admin": f.opener_admin, "passcred": f.passcred,
            "opt_flags": sorted(f.opt_flags), "max_recvmsg_len": f.max_recvmsg_len,
            "queue": [[data.hex(), sender, group, list(creds)] for data, sender, group, creds in f.queue],
            "dump": None if f.dump is None else [m.hex() for m in f.dump], "dump_seq": f.dump_seq,
            "dump_err": f.dump_err}


def save_table(k) -> dict | None:
    """The machine's netlink table's own state (None: no netlink socket
    was ever made)."""
    tbl = k.net.netlink
    return None if tbl is None else {"rover": tbl.rover}


def restore_table(k, r: image.Reader) -> None:
    if r.doc.get("netlink") is not None:
        netlink.table(k.net).rover = r.sub("netlink").int("rover", S32[0], -4096)


def make(t, o: image.Reader, flags: int) -> NetlinkSocket:
    """The socket with its queue and dump, holding its port id again."""
    stype, proto = o.int("type", 0, 16), o.int("protocol", 0, NL.MAX_LINKS)
    if stype not in (SOCK_RAW, SOCK_DGRAM) or proto != NL.NETLINK_ROUTE:
        raise image.ImageError(f"manifest: {o.where}: not a NETLINK_ROUTE socket")
    s = NetlinkSocket(t, stype, proto, flags)
    sockbase.make(s, o)
    s.opener_admin, s.passcred = o.bool("opener_admin"), o.bool("passcred")
    s.groups = o.int("groups", 0, 1 << NL.RTNLGRP_MAX)
    s.dst_portid, s.dst_group = o.int("dst_portid", *S32), o.int("dst_group", 0, 33)
    s.max_recvmsg_len = o.int("max_recvmsg_len", 0, NL.MAX_RECVMSG + 1)
    names = o.doc.get("opt_flags")
    if not isinstance(names, list) or not set(names) <= FLAG_NAMES:
        raise image.ImageError(f"manifest: {o.where}.opt_flags: not NETLINK_ flag options")
    s.opt_flags = set(names)
    portid = o.int("portid", *S32)
    if o.bool("bound"):
        try:
            s._insert(portid)
        except KernelError:
            raise image.ImageError(f"manifest: {o.where}.portid: {portid} is taken") from None
    elif portid:
        raise image.ImageError(f"manifest: {o.where}.portid: an unbound socket with a port id")
    q = o.doc.get("queue")
    if not isinstance(q, list):
        raise image.ImageError(f"manifest: {o.where}.queue: not a list")
    for i, d in enumerate(q):
        r = image.Reader({"data": d[0], "sender": d[1], "group": d[2], "creds": d[3]}
                         if isinstance(d, list) and len(d) == 4 else {}, f"{o.where}.queue[{i}]")
        data = r.hex("data", MAX_DATAGRAM)
        pid, uid, gid = r.ints("creds", 0, U32, 3)
        if pid >= MAX_PID:
            raise image.ImageError(f"manifest: {r.where}.creds: not a pid")
        s.queue.append((data, r.int("sender", *S32), r.int("group", 0, NL.RTNLGRP_MAX + 1), (pid, uid, gid)))
        s.queued += truesize(len(data))
    if o.doc.get("dump") is not None:
        msgs = o.doc["dump"]
        if not isinstance(msgs, list):
            raise image.ImageError(f"manifest: {o.where}.dump: not a list")
        s.dump = deque(image.Reader({"m": m}, f"{o.where}.dump[{i}]").hex("m", NL.MAX_RECVMSG)
                       for i, m in enumerate(msgs))
        if not s.queue:
            raise image.ImageError(f"manifest: {o.where}.dump: a dump under way with nothing queued")
    s.dump_seq, s.dump_err = o.int("dump_seq", 0, U32), o.int("dump_err", 0, 4096)
    return s
