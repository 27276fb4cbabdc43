"""AF_NETLINK sockets (SOCK_RAW and SOCK_DGRAM): datagrams between guest
programs and the kernel, as Linux's af_netlink.

NETLINK_ROUTE has a kernel side (net/rtnetlink.py).  NETLINK_KOBJECT_UEVENT
sockets are what udev's and systemd's device monitors listen on (logind
will not start without one): they join group 1, the kernel's uevents, and
group 2, udevd's; the kernel's own come from kernel/uevent.py (a loop
device bound or unbound).  A socket of any other protocol is refused with
EPROTONOSUPPORT, which is what tools without it (ss without sock_diag,
journald's audit socket) are ready for.

A socket is addressed by a port id: bind with nl_pid 0, a send or a
connect before any bind, picks the process's pid, or a negative number
when that is taken (netlink_autobind).  What the kernel answers is queued
on the sender as datagrams: one per reply or ack, and a dump goes out in
datagrams no bigger than the reader has shown it can take (its largest
recvmsg, at least NLMSG_GOODSIZE), the next one made each time the reader
takes one, then NLMSG_DONE alone, as netlink_dump does.  Multicast groups
(nl_groups at bind, NETLINK_ADD_MEMBERSHIP) hear of every change to the
devices, addresses and routes (netdev's watchers).
"""
from __future__ import annotations

import struct
from collections import deque

from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_NET_ADMIN, CAP_SYS_ADMIN
from umlpy.kernel import printk
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import Block, KernelError
from umlpy.net import netlink_abi as NL
from umlpy.net.netdev import net_of
from umlpy.net.unix import truesize
from umlpy.net.socket import (AF_NETLINK, MSG_DONTWAIT, MSG_OOB, MSG_PEEK, MSG_TRUNC, SO,
                              SOCK_DGRAM, SOCK_RAW, SOL_SOCKET, Received, Socket, int_opt,
                              register_family)
from umlpy.vfs.file import POLLERR, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM

# the flag options kept per socket, by their SOL_NETLINK number
_FLAG_OPTS = {NL.NETLINK_PKTINFO: "pktinfo", NL.NETLINK_BROADCAST_ERROR: "broadcast_error",
              NL.NETLINK_NO_ENOBUFS: "no_enobufs", NL.NETLINK_CAP_ACK: "cap_ack",
              NL.NETLINK_EXT_ACK: "ext_ack", NL.NETLINK_GET_STRICT_CHK: "strict_chk"}
_logged_protocols: set[int] = set()
KERNEL_CREDS = (0, 0, 0)        # what SCM_CREDENTIALS says of the kernel's messages


class ExtAck(KernelError):
    """An error with the message Linux's NL_SET_ERR_MSG gives it: sent as
    NLMSGERR_ATTR_MSG to sockets that set NETLINK_EXT_ACK (iproute2 prints
    it as "Error: ...")."""

    def __init__(self, errno: int, msg: str) -> None:
        super().__init__(errno, msg)
        self.msg = msg


class DumpStarted(Exception):
    """A request answered by a dump: no ack, NLMSG_DONE ends the answer."""


class NetlinkTable:
    """The bound netlink sockets of one network stack (Linux's nl_table)."""

    def __init__(self) -> None:
        self.ports: dict[tuple[int, int], NetlinkSocket] = {}     # (protocol, portid)
        self.rover = -4097
        # (seq, portid) of the request being handled: the notifications a
        # request causes carry them (0, 0 for changes made otherwise)
        self.origin = (0, 0)

    def lookup(self, protocol: int, portid: int) -> NetlinkSocket | None:
        return self.ports.get((protocol, portid))

    def members(self, protocol: int, group: int) -> list[NetlinkSocket]:
        bit = 1 << (group - 1)
        return [s for (p, _), s in self.ports.items() if p == protocol and s.groups & bit]


def table(net) -> NetlinkTable:
    """The stack's table, made (and rtnetlink set to watch the stack) at
    the first netlink socket."""
    if net.netlink is None:
        from umlpy.net import rtnetlink
        net.netlink = NetlinkTable()
        net.watch(lambda event, *objs: rtnetlink.notify(net, event, *objs))
    return net.netlink


def broadcast(net, protocol: int, group: int, data: bytes, sender: int = 0,
              creds: tuple[int, int, int] = KERNEL_CREDS) -> None:
    """Queue a datagram on every member of a multicast group."""
    if net.netlink is None:
        return
    for s in net.netlink.members(protocol, group):
        if s.portid != sender:
            s.deliver(data, sender, group, creds)


def sockaddr_nl(portid: int, groups: int) -> bytes:
    return NL.SOCKADDR_NL.pack(AF_NETLINK, 0, portid & 0xFFFFFFFF, groups & 0xFFFFFFFF)


def group_mask(group: int) -> int:
    return 1 << (group - 1) if group else 0


def _parse_addr(raw: bytes) -> tuple[int, int]:
    """(nl_pid, nl_groups) of a sockaddr_nl: short or not AF_NETLINK is EINVAL."""
    if len(raw) < NL.SOCKADDR_NL.size:
        raise KernelError(E.EINVAL)
    family, _, pid, groups = NL.SOCKADDR_NL.unpack_from(raw)
    if family != AF_NETLINK:
        raise KernelError(E.EINVAL)
    return struct.unpack("<i", struct.pack("<I", pid))[0], groups


def _ffs(x: int) -> int:
    return (x & -x).bit_length()


class NetlinkSocket(Socket):
    family = AF_NETLINK
    runs_sk_filter = True   # every datagram, the kernel's answers too (netlink_unicast, do_one_broadcast)

    def __init__(self, t, stype: int, protocol: int, flags: int) -> None:
        super().__init__(stype, protocol, flags)
        self.net = net_of(t)
        self.table = table(self.net)
        # the opener's capability counts too (netlink_ns_capable's file check):
        # a privileged process handed an unprivileged socket cannot use it to write
        self.opener_admin = capable(t.proc.creds, CAP_NET_ADMIN)
        self.portid = 0
        self.bound = False
        self.groups = 0                     # bit g-1: member of group g
        self.dst_portid = 0
        self.dst_group = 0
        # (datagram, sender's port, group, sender's (pid, uid, gid))
        self.queue: deque[tuple[bytes, int, int, tuple[int, int, int]]] = deque()
        self.queued = 0
        self.dump: deque[bytes] | None = None   # the messages of a dump not yet queued
        self.dump_seq = 0
        self.dump_err = 0
        self.max_recvmsg_len = 0
        self.opt_flags: set[str] = set()
        self.passcred = False           # SO_PASSCRED: SCM_CREDENTIALS with each message

    # -- state ------------------------------------------------------------------
    def poll(self) -> int:
        ev = POLLOUT | POLLWRNORM
        if self.queue:
            ev |= POLLIN | POLLRDNORM
        if self.error:
            ev |= POLLERR
        return ev

    def release(self) -> None:
        if self.bound and self.table.ports.get((self.protocol, self.portid)) is self:
            del self.table.ports[(self.protocol, self.portid)]
        self.queue.clear()
        self.dump = None
        self.wake()

    def deliver(self, data: bytes, sender: int = 0, group: int = 0,
                creds: tuple[int, int, int] = KERNEL_CREDS) -> None:
        """Queue a datagram, charged at its skb's truesize.  While the
        receive buffer is overfull, what comes is dropped and the reader
        told ENOBUFS (netlink_overrun): a program that sends requests and
        never reads cannot make the kernel hold more."""
        kept = self.filtered(data)
        if kept is None:
            return
        data = kept
        if self.queued > self.rcvbuf:
            if "no_enobufs" not in self.opt_flags:
                self.error = E.ENOBUFS
                self.wake()
            return
        self.queue.append((data, sender, group, creds))
        self.queued += truesize(len(data))
        self.wake()

    def is_admin(self, t, explicit_dst: bool) -> bool:
        """netlink_net_capable(CAP_NET_ADMIN): the sender, and the opener
        unless the message named its destination."""
        return capable(t.proc.creds, CAP_NET_ADMIN) and (explicit_dst or self.opener_admin)

    # -- addresses ----------------------------------------------------------------
    def _insert(self, portid: int) -> None:
        if (self.protocol, portid) in self.table.ports:
            raise KernelError(E.EADDRINUSE)
        self.portid = portid
        self.bound = True
        self.table.ports[(self.protocol, portid)] = self

    def _autobind(self, t) -> None:
        """The process's pid if free, else negative ids from -4097 down."""
        portid = t.proc.pid
        while (self.protocol, portid) in self.table.ports:
            portid = self.table.rover
            self.table.rover = self.table.rover - 1 if self.table.rover > -(1 << 31) else -4097
        self._insert(portid)

    def bind(self, t, raw: bytes) -> None:
        pid, groups = _parse_addr(raw)
        if self.bound:
            if pid != self.portid:
                raise KernelError(E.EINVAL)
        elif pid:
            self._insert(pid)
        else:
            self._autobind(t)
        if groups or self.groups & 0xFFFFFFFF:
            self.groups = (self.groups & ~0xFFFFFFFF) | groups

    def connect(self, t, raw: bytes) -> None:
        if len(raw) < 2:
            raise KernelError(E.EINVAL)
        if struct.unpack_from("<H", raw)[0] == 0:           # AF_UNSPEC: disconnect
            self.dst_portid = self.dst_group = 0
            return
        pid, groups = _parse_addr(raw)
        if (pid or groups) and not capable(t.proc.creds, CAP_NET_ADMIN):
            raise KernelError(E.EPERM)
        if not self.bound:
            self._autobind(t)
        self.dst_portid, self.dst_group = pid, _ffs(groups)

    def getname(self, t, peer: int) -> bytes:
        if peer:
            return sockaddr_nl(self.dst_portid, group_mask(self.dst_group))
        return sockaddr_nl(self.portid, self.groups)

    # -- data -------------------------------------------------------------------------
    def check_size(self, n: int) -> None:
        if n > self.sndbuf - 32:
            raise KernelError(E.EMSGSIZE)

    def sendmsg(self, t, data, flags: int, addr: bytes | None, cmsgs: list) -> int:
        if flags & MSG_OOB:
            raise KernelError(E.EOPNOTSUPP)
        if not len(data):
            raise KernelError(E.ENODATA)
        if addr is not None:
            dst_portid, groups = _parse_addr(addr)
            dst_group = _ffs(groups)
            if (dst_group or dst_portid) and not capable(t.proc.creds, CAP_NET_ADMIN):
                raise KernelError(E.EPERM)
        else:
            dst_portid, dst_group = self.dst_portid, self.dst_group
        if not self.bound:
            self._autobind(t)
        self.check_size(len(data))
        data = bytes(data[:])
        creds = (t.proc.pid, t.proc.creds.euid, t.proc.creds.egid)
        if dst_group:
            broadcast(self.net, self.protocol, dst_group, data, self.portid, creds)
        if dst_portid:
            peer = self.table.lookup(self.protocol, dst_portid)
            if peer is None:
                raise KernelError(E.ECONNREFUSED)
            peer.deliver(data, self.portid, 0, creds)
        elif not dst_group:
            self._kernel_input(t, data, addr is not None)
        return len(data)

    def recvmsg(self, t, n: int, flags: int) -> Received:
        if flags & MSG_OOB:
            raise KernelError(E.EOPNOTSUPP)
        if self.error:
            raise KernelError(self.take_error())
        if not self.queue:
            if self.nonblock or flags & MSG_DONTWAIT:
                raise KernelError(E.EAGAIN)
            raise Block(self.wq)
        data, sender, group, creds = self.queue[0]
        if not flags & MSG_PEEK:
            self.queue.popleft()
            self.queued -= truesize(len(data))
        out = Received(data[:n], creds=creds, sender=sockaddr_nl(sender, group_mask(group)),
                       flags=MSG_TRUNC if len(data) > n else 0, full_len=len(data))
        if "pktinfo" in self.opt_flags:
            out.add_cmsg(NL.SOL_NETLINK, NL.NETLINK_PKTINFO, struct.pack("<I", group))
        self.max_recvmsg_len = min(max(self.max_recvmsg_len, n), NL.MAX_RECVMSG)
        if self.dump is not None and self.queued <= self.rcvbuf // 2:
            self._dump_chunk()
        return out

    # -- the kernel side -------------------------------------------------------------
    def _kernel_input(self, t, data: bytes, explicit_dst: bool) -> None:
        """netlink_rcv_skb: each request in turn; errors, and successes
        that asked for it, are acked (a dump's answer ends with DONE)."""
        from umlpy.net import rtnetlink
        off = 0
        while off + NL.NLMSGHDR.size <= len(data):
            mlen, mtype, mflags, seq, _ = NL.NLMSGHDR.unpack_from(data, off)
            if mlen < NL.NLMSGHDR.size or mlen > len(data) - off:
                return
            msg = data[off:off + mlen]
            err, text = 0, ""
            if mflags & NL.NLM_F_REQUEST and mtype >= NL.NLMSG_MIN_TYPE:
                self.table.origin = (seq, self.portid)
                try:
                    if self.protocol == NL.NETLINK_KOBJECT_UEVENT:
                        self._uevent_input(t, msg)
                    else:
                        rtnetlink.request(self, t, msg, self.is_admin(t, explicit_dst))
                except DumpStarted:
                    off += NL.align(mlen)
                    continue
                except ExtAck as e:
                    err, text = e.errno, e.msg
                except KernelError as e:
                    err = e.errno
                finally:
                    self.table.origin = (0, 0)
            if mflags & NL.NLM_F_ACK or err:
                self._ack(msg, err, text)
            off += NL.align(mlen)

    def _uevent_input(self, t, msg: bytes) -> None:
        """uevent_net_rcv_skb: an admin's message goes out to the uevent
        listeners of its network namespace as if the kernel had sent it."""
        if not capable(t.proc.creds, CAP_SYS_ADMIN):
            raise ExtAck(E.EPERM, "missing CAP_SYS_ADMIN capability")
        broadcast(self.net, NL.NETLINK_KOBJECT_UEVENT, NL.UEVENT_KERNEL_GROUP, msg[NL.NLMSGHDR.size:])

    def _ack(self, msg: bytes, err: int, text: str) -> None:
        """netlink_ack: the error (0 for success) and the request, whole
        for an error unless NETLINK_CAP_ACK, else only its header."""
        _, _, _, seq, _ = NL.NLMSGHDR.unpack_from(msg)
        flags = 0
        if err and "cap_ack" not in self.opt_flags:
            echo = msg
        else:
            echo = msg[:NL.NLMSGHDR.size]
            flags |= NL.NLM_F_CAPPED
        tlvs = b""
        if err and text and "ext_ack" in self.opt_flags:
            tlvs = NL.string(NL.NLMSGERR_ATTR_MSG, text)
            flags |= NL.NLM_F_ACK_TLVS
        body = struct.pack("<i", -err) + echo + bytes(NL.align(len(echo)) - len(echo)) + tlvs
        self.reply(NL.message(NL.NLMSG_ERROR, flags, seq, self.portid, body))

    def reply(self, data: bytes) -> None:
        """A unicast answer from the kernel."""
        self.deliver(data, 0)

    def start_dump(self, seq: int, messages: list[bytes], err: int = 0) -> None:
        """netlink_dump_start: one dump at a time (EBUSY); the first
        datagram now, the rest as the reader takes them; a dump that
        failed ends at once, its NLMSG_DONE carrying the error."""
        if self.dump is not None:
            raise KernelError(E.EBUSY)
        self.dump = deque(messages)
        self.dump_seq = seq
        self.dump_err = err
        self._dump_chunk()
        raise DumpStarted()

    def _dump_chunk(self) -> None:
        room = max(NL.NLMSG_GOODSIZE, self.max_recvmsg_len)
        if not self.dump:
            self.dump = None
            self.reply(NL.message(NL.NLMSG_DONE, NL.NLM_F_MULTI, self.dump_seq, self.portid,
                                  struct.pack("<i", -self.dump_err)))
            return
        parts = [self.dump.popleft()]
        size = len(parts[0])
        while self.dump and size + len(self.dump[0]) <= room:
            size += len(self.dump[0])
            parts.append(self.dump.popleft())
        self.reply(b"".join(parts))

    # -- options ----------------------------------------------------------------------
    def setsockopt(self, t, level: int, opt: int, raw: bytes) -> None:
        if level == SOL_SOCKET and opt == SO["SO_PASSCRED"]:
            self.passcred = bool(int_opt(raw))
            return None
        if level != NL.SOL_NETLINK:
            return super().setsockopt(t, level, opt, raw)
        val = struct.unpack_from("<I", raw)[0] if len(raw) >= 4 else 0
        if opt in (NL.NETLINK_ADD_MEMBERSHIP, NL.NETLINK_DROP_MEMBERSHIP):
            if not val or val - 1 >= NL.RTNLGRP_MAX:
                raise KernelError(E.EINVAL)
            if opt == NL.NETLINK_ADD_MEMBERSHIP:
                self.groups |= 1 << (val - 1)
            else:
                self.groups &= ~(1 << (val - 1))
        elif opt in _FLAG_OPTS:
            if val:
                self.opt_flags.add(_FLAG_OPTS[opt])
            else:
                self.opt_flags.discard(_FLAG_OPTS[opt])
            if opt == NL.NETLINK_NO_ENOBUFS and val and self.error == E.ENOBUFS:
                self.error = 0
        else:
            raise KernelError(E.ENOPROTOOPT)

    def getsockopt(self, t, level: int, opt: int, cap: int, arg) -> bytes:
        if level == SOL_SOCKET and opt == SO["SO_PASSCRED"]:
            return struct.pack("<i", int(self.passcred))
        if level != NL.SOL_NETLINK:
            return super().getsockopt(t, level, opt, cap, arg)
        if opt == NL.NETLINK_LIST_MEMBERSHIPS:
            words = (NL.RTNLGRP_MAX + 31) // 32
            return b"".join(struct.pack("<I", (self.groups >> (32 * i)) & 0xFFFFFFFF) for i in range(words))
        if opt not in _FLAG_OPTS:
            raise KernelError(E.ENOPROTOOPT)
        if cap < 4:
            raise KernelError(E.EINVAL)
        return struct.pack("<i", int(_FLAG_OPTS[opt] in self.opt_flags))


def _new(t, stype: int, protocol: int, flags: int) -> NetlinkSocket:
    """netlink_create: raw or datagram sockets; NETLINK_ROUTE and
    NETLINK_KOBJECT_UEVENT only."""
    if stype not in (SOCK_RAW, SOCK_DGRAM):
        raise KernelError(E.ESOCKTNOSUPPORT)
    if not 0 <= protocol < NL.MAX_LINKS:
        raise KernelError(E.EPROTONOSUPPORT)
    if protocol not in (NL.NETLINK_ROUTE, NL.NETLINK_KOBJECT_UEVENT):
        if protocol not in _logged_protocols:
            _logged_protocols.add(protocol)
            printk.pr_notice(f"netlink: protocol {protocol} not supported")
        raise KernelError(E.EPROTONOSUPPORT)
    return NetlinkSocket(t, stype, protocol, flags)


def register() -> None:
    register_family(AF_NETLINK, _new)
