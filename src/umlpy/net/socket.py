"""The socket layer between the BSD socket calls and the families.

sys_socket copies addresses, data and options between guest memory and
the kernel; a family (net/unix.py, net/inet/, net/netlink.py, ...) sees
only kernel values: addresses as the raw sockaddr bytes the guest gave,
data as bytes (or a lazy UserBuf), options as raw bytes.  This keeps
every family free of guest-memory handling, as Linux's proto_ops are
free of copy_from_user for addresses (move_addr_to_kernel does it).

A family registers a constructor in FAMILIES; every method a family does
not support answers as Linux's sock_no_* stubs do.
"""
from __future__ import annotations

import struct
from typing import Callable

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.bpf import BPF_PROG_TYPE_SOCKET_FILTER, SO_ATTACH_BPF
from umlpy.abi.capability import CAP_NET_ADMIN, CAP_NET_RAW
from umlpy.bpf import classic
from umlpy.bpf.classic import SocketFilter
from umlpy.bpf.prog import Prog, ProgFile
from umlpy.kernel import printk
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.net.netdev import net_capable
from umlpy.net.sockios import IFNAMSIZ
from umlpy.vfs.file import File
from umlpy.vfs.inode import Filesystem, Inode

AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET = 0, 1, 2, 10, 16, 17
SOCK_FPROG = struct.Struct("<H6xQ")     # struct sock_fprog: len, (pad), filter
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET = 1, 2, 3, 5
SOL_SOCKET = 1
SOMAXCONN = 4096
SHUT_RD, SHUT_WR, SHUT_RDWR = 0, 1, 2
RCVSHUTDOWN, SNDSHUTDOWN = 1, 2

MSG_OOB, MSG_PEEK, MSG_DONTROUTE, MSG_CTRUNC = 0x1, 0x2, 0x4, 0x8
MSG_TRUNC, MSG_DONTWAIT, MSG_EOR, MSG_WAITALL = 0x20, 0x40, 0x80, 0x100
MSG_ERRQUEUE, MSG_NOSIGNAL, MSG_MORE, MSG_CMSG_CLOEXEC = 0x2000, 0x4000, 0x8000, 0x40000000

SO = dict(SO_DEBUG=1, SO_REUSEADDR=2, SO_TYPE=3, SO_ERROR=4, SO_DONTROUTE=5, SO_BROADCAST=6,
          SO_SNDBUF=7, SO_RCVBUF=8, SO_KEEPALIVE=9, SO_OOBINLINE=10, SO_NO_CHECK=11,
          SO_PRIORITY=12, SO_LINGER=13, SO_BSDCOMPAT=14, SO_REUSEPORT=15, SO_PASSCRED=16,
          SO_PEERCRED=17, SO_RCVLOWAT=18, SO_SNDLOWAT=19, SO_RCVTIMEO=20, SO_SNDTIMEO=21,
          SO_BINDTODEVICE=25, SO_ATTACH_FILTER=26, SO_DETACH_FILTER=27, SO_PEERNAME=28,
          SO_TIMESTAMP=29, SO_ACCEPTCONN=30, SO_PEERSEC=31, SO_SNDBUFFORCE=32,
          SO_RCVBUFFORCE=33, SO_PASSSEC=34, SO_TIMESTAMPNS=35, SO_MARK=36, SO_PROTOCOL=38,
          SO_DOMAIN=39, SO_RXQ_OVFL=40, SO_BUSY_POLL=46, SO_INCOMING_CPU=49, SO_COOKIE=57,
          SO_BINDTOIFINDEX=62)
SCM_TIMESTAMP, SCM_TIMESTAMPNS = SO["SO_TIMESTAMP"], SO["SO_TIMESTAMPNS"]


def attach_filter(t, raw: bytes) -> SocketFilter:
    """SO_ATTACH_FILTER: a struct sock_fprog of a classic program
    (sk_attach_filter: EINVAL for a bad length or program, EFAULT)."""
    if len(raw) < SOCK_FPROG.size:
        raise KernelError(E.EINVAL)
    count, addr = SOCK_FPROG.unpack_from(raw)
    if not 0 < count <= classic.MAXINSNS or not addr:
        raise KernelError(E.EINVAL)
    return classic.SocketFilter(classic.decode(t.mem.read(addr, count * classic.INSN.size), socket=True))


def attach_bpf(t, raw: bytes) -> Prog:
    """SO_ATTACH_BPF: an fd of a loaded socket filter (EBADF, or EINVAL
    for any other file or program type)."""
    f = t.files.get(int_opt(raw))
    if not isinstance(f, ProgFile) or f.prog.prog_type != BPF_PROG_TYPE_SOCKET_FILTER:
        raise KernelError(E.EINVAL)
    return f.prog


class SockFs(Filesystem):
    name = "sockfs"
    magic = 0x534F434B


_sockfs: SockFs | None = None


class SockInode(Inode):
    def link_name(self) -> str:
        """/proc/PID/fd/N of a socket."""
        return f"socket:[{self.ino}]"


def sock_inode() -> Inode:
    global _sockfs
    if _sockfs is None:
        _sockfs = SockFs()
    return SockInode(_sockfs, C.S_IFSOCK | 0o777)


class Received:
    """One receive's result, in kernel values: data, files passed with it
    (SCM_RIGHTS), the sender's credentials, its sockaddr bytes, msg_flags,
    a datagram's real length (MSG_TRUNC) and the family's control messages
    as (level, type, body).  A plain class: every receive makes one."""
    __slots__ = ("data", "files", "creds", "sender", "flags", "full_len", "cmsgs")

    def __init__(self, data: bytes, files=(), creds: tuple | None = None,
                 sender: bytes | None = None, flags: int = 0, full_len: int = 0,
                 cmsgs=()) -> None:
        self.data = data
        self.files = files
        self.creds = creds
        self.sender = sender
        self.flags = flags
        self.full_len = full_len
        self.cmsgs = cmsgs

    def add_cmsg(self, level: int, ctype: int, body: bytes) -> None:
        self.cmsgs = [*self.cmsgs, (level, ctype, body)]


def int_opt(raw: bytes) -> int:
    """An int option's value, as Linux's copy_from_sockptr of an int:
    fewer than four bytes is EINVAL."""
    if len(raw) < 4:
        raise KernelError(E.EINVAL)
    return struct.unpack_from("<i", raw)[0]


HZ = 100                            # the guest's tick, as UML's
MAX_SCHEDULE_TIMEOUT = (1 << 63) - 1
_TIMEVAL = struct.Struct("<qq")
_LINGER = struct.Struct("<ii")
WMEM_MAX = RMEM_MAX = 212992        # net.core.{w,r}mem_max
SOCK_MIN_SNDBUF, SOCK_MIN_RCVBUF = 4608, 2304

# SOL_SOCKET options kept as plain ints: name -> default
_PLAIN = {SO["SO_REUSEADDR"]: 0, SO["SO_REUSEPORT"]: 0, SO["SO_KEEPALIVE"]: 0,
          SO["SO_BROADCAST"]: 0, SO["SO_OOBINLINE"]: 0, SO["SO_DONTROUTE"]: 0,
          SO["SO_PRIORITY"]: 0, SO["SO_RCVLOWAT"]: 1, SO["SO_TIMESTAMP"]: 0,
          SO["SO_TIMESTAMPNS"]: 0, SO["SO_DEBUG"]: 0, SO["SO_RXQ_OVFL"]: 0,
          SO["SO_BUSY_POLL"]: 0, SO["SO_NO_CHECK"]: 0, SO["SO_PASSSEC"]: 0,
          SO["SO_PASSCRED"]: 0, SO["SO_MARK"]: 0}
_BOOLS = {SO["SO_REUSEADDR"], SO["SO_REUSEPORT"], SO["SO_KEEPALIVE"], SO["SO_BROADCAST"],
          SO["SO_OOBINLINE"], SO["SO_DONTROUTE"], SO["SO_TIMESTAMP"], SO["SO_TIMESTAMPNS"],
          SO["SO_DEBUG"], SO["SO_RXQ_OVFL"], SO["SO_NO_CHECK"], SO["SO_PASSSEC"],
          SO["SO_PASSCRED"]}


def set_timeout(raw: bytes) -> int | None:
    """SO_RCVTIMEO/SO_SNDTIMEO as Linux's sock_set_timeout: a timeval,
    EDOM for microseconds out of range, a negative time means no waiting
    at all, zero (or one too long for jiffies) waiting for good; kept in
    whole jiffies, rounded up."""
    if len(raw) < _TIMEVAL.size:
        raise KernelError(E.EINVAL)
    sec, usec = _TIMEVAL.unpack_from(raw)
    if not 0 <= usec < 10**6:
        raise KernelError(E.EDOM)
    if sec < 0:
        return 0
    if (not sec and not usec) or sec >= MAX_SCHEDULE_TIMEOUT // HZ - 1:
        return None
    jiffies = sec * HZ + -(-usec // (10**6 // HZ))
    return jiffies * (10**9 // HZ)


def get_timeout(timeout: int | None) -> bytes:
    """What sock_get_timeout reports: 0.0 for "for good"."""
    if timeout is None:
        return _TIMEVAL.pack(0, 0)
    jiffies = timeout // (10**9 // HZ)
    return _TIMEVAL.pack(jiffies // HZ, jiffies % HZ * 10**6 // HZ)


class Socket(File):
    """What every family's socket is.  sys_socket calls these methods."""
    kind = "socket"
    lazy_write = True
    nowait_ok = True
    splice_read = splice_write = True
    has_fasync = True       # which families signal what: their code (unix.py)
    family = AF_UNSPEC
    default_sndbuf = default_rcvbuf = 212992
    runs_sk_filter = False  # whether the family runs a filter's program (unix, UDP, netlink)
    peercred: tuple[int, int, int] | None = None    # (pid, uid, gid): a unix peer's, none elsewhere
    passcred = False        # SO_PASSCRED (only unix sockets act on it)

    def __init__(self, stype: int, protocol: int, flags: int) -> None:
        super().__init__(None, sock_inode(), C.O_RDWR | (flags & C.O_NONBLOCK))
        self.stype = stype
        self.protocol = protocol
        self.wq = WaitQueue("socket")
        self.rcvtimeo: int | None = None      # ns; None waits for good
        self.sndtimeo: int | None = None
        self.error = 0                        # sk_err: reported once by SO_ERROR or a call
        self.sndbuf = self.default_sndbuf
        self.rcvbuf = self.default_rcvbuf
        self.opts: dict[int, int] = {}        # the _PLAIN options set
        self.linger: tuple[int, int] = (0, 0)
        self.listening = False
        self.rcvbuf_locked = False            # SOCK_RCVBUF_LOCK: no autotuning past SO_RCVBUF
        self.rcvlowat = 1                     # SO_RCVLOWAT, kept apart: streams read it on every call
        self.sk_filter: Prog | SocketFilter | None = None   # SO_ATTACH_BPF's or SO_ATTACH_FILTER's
        self.bound_dev = 0                    # SO_BINDTODEVICE's ifindex (sk_bound_dev_if), on any socket
        self.rcvtstamp = 0                    # SOCK_RCVTSTAMP: 0, or SCM_TIMESTAMP or SCM_TIMESTAMPNS

    def poll_queues(self) -> list:
        return [self.wq]

    def timestamp_cmsg(self, stamp: int) -> tuple[int, int, bytes]:
        """__sock_recv_timestamp's control message for a datagram that
        arrived at stamp (CLOCK_REALTIME ns; 0: never stamped, which takes
        the time of the receive, as Linux stamps an skb there)."""
        sec, ns = divmod(stamp or clock.realtime_ns(), 10**9)
        ctype = self.rcvtstamp
        return SOL_SOCKET, ctype, struct.pack("<qq", sec, ns if ctype == SCM_TIMESTAMPNS else ns // 1000)

    def wake(self) -> None:
        self.wq.wake_all()

    def take_error(self) -> int:
        err, self.error = self.error, 0
        return err

    # -- the proto_ops -----------------------------------------------------------
    def bind(self, t, addr: bytes) -> None:
        raise KernelError(E.EOPNOTSUPP)

    def connect(self, t, addr: bytes) -> None:
        raise KernelError(E.EOPNOTSUPP)

    def listen(self, t, backlog: int) -> None:
        raise KernelError(E.EOPNOTSUPP)

    def accept(self, t, flags: int) -> "Socket":
        raise KernelError(E.EOPNOTSUPP)

    def getname(self, t, peer: int) -> bytes:
        """0: our address; 1: the peer's (getpeername); 2: the peer's for accept."""
        raise KernelError(E.EOPNOTSUPP)

    def sendmsg(self, t, data, flags: int, addr: bytes | None, cmsgs: list) -> int:
        raise KernelError(E.EOPNOTSUPP)

    def recvmsg(self, t, n: int, flags: int) -> Received:
        raise KernelError(E.EOPNOTSUPP)

    def check_size(self, n: int) -> None:
        """A message too big for this socket fails before its bytes are
        copied in (EMSGSIZE)."""

    def unrecv(self, r: Received) -> None:
        """The copy of a receive to the guest failed: put the data back if
        the family keeps it (a stream does; a datagram is gone)."""

    def shutdown(self, t, how: int) -> None:
        raise KernelError(E.EOPNOTSUPP)

    def opt(self, name: str) -> int:
        n = SO[name]
        return self.opts.get(n, _PLAIN[n])

    def getsockopt(self, t, level: int, opt: int, cap: int, arg) -> bytes:
        """SOL_SOCKET as sk_getsockopt; other levels are the family's
        (a family that has none: EOPNOTSUPP, as sock_no_getsockopt).
        cap is the caller's optlen, arg its buffer (a UserBuf) for the few
        options that take an argument in."""
        if level != SOL_SOCKET:
            raise KernelError(E.EOPNOTSUPP)
        if opt in _PLAIN:
            return struct.pack("<i", self.opts.get(opt, _PLAIN[opt]))
        if opt in (SO["SO_RCVTIMEO"], SO["SO_SNDTIMEO"]):
            return get_timeout(self.rcvtimeo if opt == SO["SO_RCVTIMEO"] else self.sndtimeo)
        if opt == SO["SO_LINGER"]:
            return _LINGER.pack(*self.linger)
        if opt == SO["SO_ERROR"]:
            return struct.pack("<i", self.take_error())
        if opt == SO["SO_PEERCRED"]:
            pid, uid, gid = self.peercred or (0, 0xFFFFFFFF, 0xFFFFFFFF)      # cred_to_ucred: none is -1
            return struct.pack("<iII", t.kernel.procs.vnr(t.proc, pid) if pid else 0, uid, gid)
        if opt == SO["SO_PASSCRED"]:
            return struct.pack("<i", int(self.passcred))
        if opt == SO["SO_PEERNAME"]:
            try:
                addr = self.getname(t, 2)
            except KernelError:
                raise KernelError(E.ENOTCONN) from None
            if len(addr) < cap:
                raise KernelError(E.EINVAL)     # as sk_getsockopt: a buffer longer than the address
            return addr
        v = {SO["SO_TYPE"]: self.stype, SO["SO_DOMAIN"]: self.family,
             SO["SO_PROTOCOL"]: self.protocol, SO["SO_SNDBUF"]: self.sndbuf,
             SO["SO_RCVBUF"]: self.rcvbuf, SO["SO_ACCEPTCONN"]: int(self.listening),
             SO["SO_SNDLOWAT"]: 1, SO["SO_INCOMING_CPU"]: -1,
             SO["SO_BINDTOIFINDEX"]: self.bound_dev}.get(opt)
        if v is None:
            if opt == SO["SO_COOKIE"]:
                return struct.pack("<Q", id(self))
            if opt == SO["SO_BINDTODEVICE"]:      # sock_getbindtodevice: the name and its NUL
                if not self.bound_dev:
                    return b""
                if cap < IFNAMSIZ:
                    raise KernelError(E.EINVAL)
                dev = self.net.devices.get(self.bound_dev)
                if dev is None:
                    raise KernelError(E.ENODEV)     # an index bound that names no device
                return dev.name.encode() + b"\0"
            raise KernelError(E.ENOPROTOOPT)
        return struct.pack("<i", v)

    def setsockopt(self, t, level: int, opt: int, raw: bytes) -> None:
        if level != SOL_SOCKET:
            raise KernelError(E.EOPNOTSUPP)
        if opt == SO["SO_BINDTODEVICE"]:       # a name of any length, before the int check
            return self._bind_device(t, self.net.device_option(raw, True))
        if opt == SO["SO_PASSCRED"]:
            self.passcred = bool(int_opt(raw))
            return
        if opt in (SO["SO_RCVTIMEO"], SO["SO_SNDTIMEO"]):
            timeout = set_timeout(raw)
            if opt == SO["SO_RCVTIMEO"]:
                self.rcvtimeo = timeout
            else:
                self.sndtimeo = timeout
            return
        if opt == SO["SO_LINGER"]:
            if len(raw) < _LINGER.size:
                raise KernelError(E.EINVAL)
            onoff, secs = _LINGER.unpack_from(raw)
            self.linger = (1 if onoff else 0, secs if onoff else self.linger[1])
            return
        v = int_opt(raw)
        if opt in _PLAIN and opt not in (SO["SO_BUSY_POLL"],):
            if opt == SO["SO_RCVLOWAT"]:
                v = max(v, 1) if v >= 0 else 0x7FFFFFFF
                self.rcvlowat = v
            elif opt == SO["SO_TIMESTAMP"] or opt == SO["SO_TIMESTAMPNS"]:
                # sock_set_timestamp: one kind at a time; either off turns both off
                self.opts[SO["SO_TIMESTAMP"]] = self.opts[SO["SO_TIMESTAMPNS"]] = 0
                self.rcvtstamp = opt if v else 0
            elif (opt == SO["SO_MARK"] or opt == SO["SO_PRIORITY"] and not 0 <= v <= 6) and \
                    not (net_capable(t, CAP_NET_RAW) or net_capable(t, CAP_NET_ADMIN)):
                raise KernelError(E.EPERM)      # a mark, or a priority past TC_PRIO_INTERACTIVE
            self.opts[opt] = int(bool(v)) if opt in _BOOLS else v
        elif opt in (SO["SO_SNDBUFFORCE"], SO["SO_RCVBUFFORCE"]) and \
                not capable(t.proc.creds, CAP_NET_ADMIN):
            raise KernelError(E.EPERM)
        elif opt in (SO["SO_SNDBUF"], SO["SO_SNDBUFFORCE"]):
            v = v if opt == SO["SO_SNDBUFFORCE"] else min(v, WMEM_MAX)
            self.sndbuf = max(SOCK_MIN_SNDBUF, min(2 * v, 0x7FFFFFFF) if v > 0 else 0)
            self.wake()
        elif opt in (SO["SO_RCVBUF"], SO["SO_RCVBUFFORCE"]):
            v = v if opt == SO["SO_RCVBUFFORCE"] else min(v, RMEM_MAX)
            self.rcvbuf = max(SOCK_MIN_RCVBUF, min(2 * v, 0x7FFFFFFF) if v > 0 else 0)
            self.rcvbuf_locked = True
            self.wake()
        elif opt == SO["SO_SNDLOWAT"]:
            raise KernelError(E.ENOPROTOOPT)
        elif opt == SO_ATTACH_BPF or opt == SO["SO_ATTACH_FILTER"] and self.runs_sk_filter:
            if not self.runs_sk_filter:
                printk.printk(printk.INFO, f"SO_ATTACH_BPF: not run on this socket kind "
                              f"(family {self.family}, type {self.stype})")
                raise KernelError(E.ENOPROTOOPT)
            self.sk_filter = attach_bpf(t, raw) if opt == SO_ATTACH_BPF else attach_filter(t, raw)
        elif opt == SO["SO_DETACH_FILTER"] and self.sk_filter is not None:
            self.sk_filter = None
        elif opt == SO["SO_BINDTOIFINDEX"]:
            self._bind_device(t, self.net.device_option(raw, False))
        elif opt in (SO["SO_ATTACH_FILTER"], SO["SO_DETACH_FILTER"]):
            raise KernelError(E.ENOENT if opt == SO["SO_DETACH_FILTER"] else E.ENOPROTOOPT)
        else:
            raise KernelError(E.ENOPROTOOPT)

    def _bind_device(self, t, index: int) -> None:
        """sock_bindtoindex: any socket keeps its device, the families that
        route by it look at it; changing an existing binding needs
        CAP_NET_RAW; a negative index is EINVAL after that."""
        if self.bound_dev and not net_capable(t, CAP_NET_RAW):
            raise KernelError(E.EPERM)
        if index < 0:
            raise KernelError(E.EINVAL)
        self.bound_dev = index

    def mmap_pages(self, off: int, size: int):
        """sock_no_mmap: a family without mmap (all but packet sockets)."""
        raise KernelError(E.ENODEV)

    def filtered(self, data: bytes, cap: int = 1, protocol: int = 0) -> bytes | None:
        """sk_filter_trim_cap(sk, skb, cap) on a packet for this socket (data
        from where the family's skb->data points; protocol: the ETH_P_*
        of skb->protocol): the attached program's verdict cuts it (never
        below cap bytes) or drops it (None)."""
        prog = self.sk_filter
        if prog is None:
            return data
        n = prog.run_on_packet(bytes(data), protocol)
        if not n:
            return None
        return data[:max(n, cap)] if n < len(data) else data

    def ioctl(self, task, req: int, arg: int) -> int:
        """sock_ioctl: what the family does not know goes to the network
        devices (SIOCGIFCONF, SIOCGIFFLAGS, ...), as on every socket."""
        from umlpy.net import devioctl
        return devioctl.dev_ioctl(task, req, arg, self.family)

    def read(self, task, n: int) -> bytes:
        return self.recvmsg(task, n, 0).data

    def write(self, task, data) -> int:
        return self.sendmsg(task, data, 0, None, ())

    def unread(self, data: bytes) -> None:
        """read(2)'s copy to the guest faulted: as for a receive's (unrecv),
        a stream keeps the bytes queued."""
        self.unrecv(Received(data))


# domain -> constructor(t, stype, protocol, flags) -> Socket
FAMILIES: dict[int, Callable[..., Socket]] = {}


def register_family(domain: int, make: Callable[..., Socket]) -> None:
    FAMILIES[domain] = make
