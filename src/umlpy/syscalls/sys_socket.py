"""Sockets: the BSD socket calls.

Here guest memory is read and written (addresses, iovecs, control
messages, option values); the family behind the socket (net/socket.py's
proto_ops) sees kernel values only.
"""
from __future__ import annotations

import struct

from arch_um import clock
from arch_um.memory import GuestFault
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import printk
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.timers import bounded
from umlpy.kernel.uaccess import UserBuf
from umlpy.syscalls.sys_poll import timespec_end_time
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import (MAX_RW_COUNT, UIO_MAXIOV, install_pair, put_u32, read_iovecs, s32,
                                 scatter, u32, user_data)

from umlpy.net import socket as N
from umlpy.net import netlink
from umlpy.net import unix as U  # noqa: F401  (registers AF_UNIX)
from umlpy.net import packet
from umlpy.net.inet import family as inet_family
from umlpy.net.socket import (MSG_CMSG_CLOEXEC, MSG_CTRUNC, MSG_PEEK, MSG_TRUNC, SOL_SOCKET,
                              Socket)

SOCK_TYPE_MASK = 0xF
SOCK_MAX = 11
SOCK_NONBLOCK = C.O_NONBLOCK
SOCK_CLOEXEC = C.O_CLOEXEC
SCM_RIGHTS, SCM_CREDENTIALS = 1, 2
_MSGHDR = struct.Struct("<QI4xQQQQi4x")
_CMSGHDR = struct.Struct("<Qii")
OPTMEM_MAX = 20480              # net.core.optmem_max: the largest control buffer
SOCKADDR_STORAGE = 128
_logged_families: set[int] = set()
inet_family.register()
packet.register()
netlink.register()


def _sock(t, fd: int) -> Socket:
    f = t.files.get(s32(fd))
    if not isinstance(f, Socket):
        raise KernelError(E.ENOTSOCK)
    return f


def _new(t, domain: int, stype: int, proto: int) -> tuple[Socket, bool]:
    """__sock_create: the type's flags checked, then the family's constructor."""
    if stype & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise KernelError(E.EINVAL)
    domain = s32(domain)
    if not 0 <= domain < 46:
        raise KernelError(E.EAFNOSUPPORT)
    make = N.FAMILIES.get(domain)
    if make is None:
        if domain not in _logged_families:
            _logged_families.add(domain)
            printk.pr_notice(f"socket: address family {domain} not supported")
        raise KernelError(E.EAFNOSUPPORT)
    kind = stype & SOCK_TYPE_MASK
    if not 0 < kind < SOCK_MAX:
        raise KernelError(E.EINVAL)
    return _owned(t, make(t, kind, s32(proto), stype & SOCK_NONBLOCK)), bool(stype & SOCK_CLOEXEC)


def _owned(t, s: Socket) -> Socket:
    """sock_alloc: the socket's inode is its creator's (fsuid, fsgid)."""
    s.inode.uid, s.inode.gid = t.proc.creds.fsuid, t.proc.creds.fsgid
    return s


@syscall("socket", status=PARTIAL, note="AF_UNIX, AF_INET, AF_INET6, AF_NETLINK (NETLINK_ROUTE), AF_PACKET on eth0; others EAFNOSUPPORT")
def sys_socket(t, domain, stype, proto, *_):
    s, cloexec = _new(t, domain, stype, proto)
    return t.files.install(s, cloexec)


@syscall("socketpair", status=PARTIAL, note="AF_UNIX (other families EOPNOTSUPP, as Linux)")
def sys_socketpair(t, domain, stype, proto, sv, *_):
    a, cloexec = _new(t, domain, stype, proto)
    if not isinstance(a, U.UnixSocket):
        a.put_unused()
        raise KernelError(E.EOPNOTSUPP)
    b, _ = _new(t, domain, stype, proto)
    U.connect_pair(a, b)
    creds = (t.proc.pid, t.proc.creds.euid, t.proc.creds.egid)
    a.peercred = b.peercred = creds
    return install_pair(t, a, b, cloexec, sv)


# -- addresses -------------------------------------------------------------------

def _read_addr(t, addr: int, alen: int) -> bytes:
    """move_addr_to_kernel: the guest's sockaddr bytes (EINVAL beyond a
    sockaddr_storage or negative)."""
    alen = s32(alen)
    if not 0 <= alen <= SOCKADDR_STORAGE:
        raise KernelError(E.EINVAL)
    return t.mem.read(addr, alen) if alen else b""


def _write_addr(t, addr: int, lenp: int, data: bytes) -> None:
    """move_addr_to_user: as much of the address as *lenp allows, then its
    full length in *lenp."""
    (cap,) = struct.unpack("<i", t.mem.read(lenp, 4))
    if cap < 0:
        raise KernelError(E.EINVAL)
    if cap and data:
        t.mem.write(addr, data[:cap])
    t.mem.write(lenp, struct.pack("<I", len(data)))


@syscall("bind")
def sys_bind(t, fd, addr, alen, *_):
    s = _sock(t, fd)
    s.bind(t, _read_addr(t, addr, alen))
    return 0


@syscall("listen")
def sys_listen(t, fd, backlog, *_):
    s = _sock(t, fd)
    backlog = s32(backlog)
    s.listen(t, min(backlog, N.SOMAXCONN) if backlog >= 0 else N.SOMAXCONN)
    return 0


@syscall("connect")
def sys_connect(t, fd, addr, alen, *_):
    s = _sock(t, fd)
    raw = _read_addr(t, addr, alen)
    return bounded(lambda: s.connect(t, raw) or 0, s.sndtimeo)


def _accept(t, fd: int, addr: int, lenp: int, flags: int) -> int:
    if flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise KernelError(E.EINVAL)
    s = _sock(t, fd)
    t.files.reserve()       # do_accept: EMFILE leaves the connection queued
    new = _owned(t, s.accept(t, flags))
    new.flags = C.O_RDWR | (flags & SOCK_NONBLOCK)
    if addr:
        try:
            _write_addr(t, addr, lenp, new.getname(t, 2))
        except (GuestFault, KernelError):
            new.put_unused()    # Linux drops the new connection with the fd it did not install
            raise
    return t.files.install(new, bool(flags & SOCK_CLOEXEC))


@syscall("accept")
def sys_accept(t, fd, addr, lenp, *_):
    return bounded(lambda: _accept(t, fd, addr, lenp, 0), _sock(t, fd).rcvtimeo)


@syscall("accept4")
def sys_accept4(t, fd, addr, lenp, flags, *_):
    return bounded(lambda: _accept(t, fd, addr, lenp, flags), _sock(t, fd).rcvtimeo)


@syscall("getsockname")
def sys_getsockname(t, fd, addr, lenp, *_):
    s = _sock(t, fd)
    _write_addr(t, addr, lenp, s.getname(t, 0))
    return 0


@syscall("getpeername")
def sys_getpeername(t, fd, addr, lenp, *_):
    s = _sock(t, fd)
    _write_addr(t, addr, lenp, s.getname(t, 1))
    return 0


@syscall("shutdown")
def sys_shutdown(t, fd, how, *_):
    s = _sock(t, fd)
    how = s32(how)
    if how not in (N.SHUT_RD, N.SHUT_WR, N.SHUT_RDWR):
        raise KernelError(E.EINVAL)
    s.shutdown(t, how)
    return 0


# -- send and receive ------------------------------------------------------------

def _read_msghdr(t, msg: int) -> tuple[int, int, list[tuple[int, int]], int, int]:
    """(name, namelen, iovecs, control, controllen) of a struct msghdr, with
    copy_msghdr_from_user's checks: a negative name length is EINVAL (a long
    one is cut to a sockaddr_storage), more than UIO_MAXIOV iovecs EMSGSIZE."""
    name, namelen, iov, iovlen, ctl, ctllen, _ = _MSGHDR.unpack(t.mem.read(msg, _MSGHDR.size))
    namelen = s32(namelen) if name else 0
    if namelen < 0:
        raise KernelError(E.EINVAL)
    if iovlen > UIO_MAXIOV:
        raise KernelError(E.EMSGSIZE)
    return name, min(namelen, SOCKADDR_STORAGE), read_iovecs(t, iov, iovlen), ctl, ctllen


def _dest(t, addr: int, alen: int) -> bytes | None:
    """The address a send names, if any (move_addr_to_kernel: no name for
    length 0, EINVAL beyond a sockaddr_storage)."""
    alen = s32(alen)
    if not addr or alen == 0:
        return None
    if not 0 < alen <= SOCKADDR_STORAGE:
        raise KernelError(E.EINVAL)
    return t.mem.read(addr, alen)


def _parse_cmsgs(t, ctl: int, ctllen: int) -> list[tuple[int, int, bytes]]:
    """A sendmsg's control messages as (level, type, body): the buffer no
    bigger than optmem_max (ENOBUFS), each header whole (EINVAL)."""
    if ctllen > OPTMEM_MAX:
        raise KernelError(E.ENOBUFS)
    out = []
    off = 0
    raw = t.mem.read(ctl, ctllen) if ctllen else b""
    while off + _CMSGHDR.size <= len(raw):
        clen, level, ctype = _CMSGHDR.unpack_from(raw, off)
        if clen < _CMSGHDR.size or off + clen > len(raw):
            raise KernelError(E.EINVAL)
        out.append((level, ctype, raw[off + _CMSGHDR.size:off + clen]))
        off += (clen + 7) & ~7
    return out


def do_sendmsg(t, fd: int, msg: int, flags: int) -> int:
    s = _sock(t, fd)
    name, namelen, vecs, ctl, ctllen = _read_msghdr(t, msg)
    dest = _dest(t, name, namelen)
    s.check_size(sum(n for _, n in vecs))
    cmsgs = _parse_cmsgs(t, ctl, ctllen)
    return s.sendmsg(t, user_data(t, vecs), flags, dest, cmsgs)


def _cmsg(level: int, ctype: int, body: bytes) -> bytes:
    clen = _CMSGHDR.size + len(body)
    return _CMSGHDR.pack(clen, level, ctype) + body + b"\0" * (((clen + 7) & ~7) - clen)


def _build_cmsgs(t, s: Socket, r: N.Received, ctllen: int, flags: int) -> tuple[bytes, int]:
    """The control messages of a receive, as put_cmsg and scm_detach_fds
    write them: what does not fit is cut and flagged MSG_CTRUNC; fds that
    do not fit are closed.  The family's own come first, then scm_recv's
    (credentials, then files), as a family's recvmsg ends in scm_recv."""
    out = b""
    mflags = 0
    for level, ctype, body in r.cmsgs:
        out += _cmsg(level, ctype, body)
    if getattr(s, "passcred", False):
        pid, uid, gid = r.creds or (0, 65534, 65534)
        pid = t.kernel.procs.vnr(t.proc, pid)      # as the receiver's pid namespace sees it
        out += _cmsg(SOL_SOCKET, SCM_CREDENTIALS, struct.pack("<iII", pid, uid, gid))
    if r.files:
        # scm_detach_fds: as many as fit in the buffer and the fd table
        # (RLIMIT_NOFILE); the rest are closed and the message says so
        room = max(0, (ctllen - len(out) - _CMSGHDR.size) // 4)
        fds = []
        for f in r.files[:room]:
            try:
                fds.append(t.files.install(f, bool(flags & MSG_CMSG_CLOEXEC)))
            except KernelError:
                break
        for f in r.files:
            f.put()     # the queue's reference; the fd table holds its own now
        if len(fds) < len(r.files):
            mflags |= MSG_CTRUNC
        if fds:
            out += _cmsg(SOL_SOCKET, SCM_RIGHTS, struct.pack(f"<{len(fds)}i", *fds))
    if len(out) > ctllen:
        out = out[:ctllen]
        mflags |= MSG_CTRUNC
    return out, mflags


def do_recvmsg(t, fd: int, msg: int, flags: int) -> int:
    s = _sock(t, fd)
    name, namelen, vecs, ctl, ctllen = _read_msghdr(t, msg)
    r = s.recvmsg(t, sum(n for _, n in vecs), flags)
    try:
        scatter(t, vecs, r.data)
    except GuestFault:
        if not flags & MSG_PEEK:
            s.unrecv(r)
        raise
    cm, mflags = _build_cmsgs(t, s, r, ctllen, flags)
    if ctl and cm:
        t.mem.write(ctl, cm)
    if name:
        data = r.sender or b""
        t.mem.write(name, data[:namelen])
        namelen = len(data)
    t.mem.write(msg + 8, struct.pack("<I", namelen))
    t.mem.write(msg + 40, struct.pack("<Q", len(cm)))
    # ____sys_recvmsg starts msg_flags from the call's MSG_CMSG_CLOEXEC
    t.mem.write(msg + 48, struct.pack("<i", r.flags | mflags | (flags & MSG_CMSG_CLOEXEC)))
    return r.full_len if flags & MSG_TRUNC else len(r.data)


@syscall("sendto")
def sys_sendto(t, fd, buf, n, flags, addr, alen):
    s = _sock(t, fd)
    dest = _dest(t, addr, alen)
    n = min(n, MAX_RW_COUNT)
    s.check_size(n)
    data = user_data(t, [(buf, n)])
    if s.sndtimeo is None:
        return s.sendmsg(t, data, flags, dest, ())      # bounded's common case, without the closure
    return bounded(lambda: s.sendmsg(t, data, flags, dest, ()), s.sndtimeo)


@syscall("recvfrom")
def sys_recvfrom(t, fd, buf, n, flags, addr, lenp):
    s = _sock(t, fd)
    if s.rcvtimeo is None:
        return _recvfrom(t, s, buf, n, flags, addr, lenp)
    return bounded(lambda: _recvfrom(t, s, buf, n, flags, addr, lenp), s.rcvtimeo)


def _recvfrom(t, s: Socket, buf: int, n: int, flags: int, addr: int, lenp: int) -> int:
    r = s.recvmsg(t, min(n, MAX_RW_COUNT), flags)
    try:
        t.mem.write(buf, r.data)
    except GuestFault:
        if not flags & MSG_PEEK:
            s.unrecv(r)
        raise
    for f in r.files:
        f.put()
    if addr:
        _write_addr(t, addr, lenp, r.sender or b"")
    return r.full_len if flags & MSG_TRUNC else len(r.data)


@syscall("sendmsg")
def sys_sendmsg(t, fd, msg, flags, *_):
    return bounded(lambda: do_sendmsg(t, fd, msg, flags), _sock(t, fd).sndtimeo)


@syscall("recvmsg")
def sys_recvmsg(t, fd, msg, flags, *_):
    return bounded(lambda: do_recvmsg(t, fd, msg, flags), _sock(t, fd).rcvtimeo)


MSG_WAITFORONE = 0x10000


def _mmsg(t, fd: int, vec: int, vlen: int, flags: int, one, end: int | None = None,
          tsaddr: int = 0, i: int = 0, first=None) -> int:
    """sendmmsg/recvmmsg: one message after another, each with the call's
    flags (a blocking socket blocks for each; MSG_WAITFORONE makes every
    receive after the first non-blocking), the count so far returned when
    a later one fails or a signal comes.  recvmmsg's timeout is looked at
    after each datagram, as Linux's (it does not bound a wait)."""
    n = min(u32(vlen), UIO_MAXIOV)
    while i < n:
        f = flags & ~MSG_WAITFORONE
        if i and flags & MSG_WAITFORONE:
            f |= N.MSG_DONTWAIT
        try:
            got = first() if first is not None else one(t, fd, vec + 64 * i, f)
        except Block as b:
            inner, at = b.retry, i
            b.retry = lambda: _mmsg(t, fd, vec, vlen, flags, one, end, tsaddr, at,
                                    inner or (lambda: one(t, fd, vec + 64 * at, f)))
            b.interrupted_result = i or None
            raise
        except (KernelError, GuestFault) as e:
            if not i:
                raise
            if isinstance(e, KernelError) and e.errno != E.EAGAIN and one is do_recvmsg:
                _sock(t, fd).error = e.errno      # told by the next call (sk_err)
            break
        first = None
        t.mem.write(vec + 64 * i + 56, struct.pack("<I", got))
        i += 1
        if end is not None and clock.monotonic_ns() >= end:
            break
    if tsaddr:      # the time left, as recvmmsg writes it back
        left = max(0, end - clock.monotonic_ns())
        t.mem.write(tsaddr, struct.pack("<qq", left // 10**9, left % 10**9))
    return i


@syscall("sendmmsg")
def sys_sendmmsg(t, fd, vec, vlen, flags, *_):
    return _mmsg(t, fd, vec, vlen, flags, do_sendmsg)


@syscall("recvmmsg")
def sys_recvmmsg(t, fd, vec, vlen, flags, timeout, *_):
    end = timespec_end_time(t, timeout)
    return _mmsg(t, fd, vec, vlen, flags, do_recvmsg, end, timeout if end is not None else 0)


# -- options ---------------------------------------------------------------------

OPTLEN_MAX = 4096


@syscall("getsockopt")
def sys_getsockopt(t, fd, level, opt, val, lenp, *_):
    s = _sock(t, fd)
    (cap,) = struct.unpack("<i", t.mem.read(lenp, 4))
    if cap < 0:
        raise KernelError(E.EINVAL)
    # the buffer may carry an argument in (PACKET_HDRLEN's version): read
    # only if the option looks at it, as Linux's copy_from_user there
    data = s.getsockopt(t, s32(level), s32(opt), cap, UserBuf(t, [(val, cap)]))
    t.mem.write(val, data[:cap])
    put_u32(t, lenp, min(cap, len(data)))
    return 0


@syscall("setsockopt", status=PARTIAL, note="per family: see docs/networking.md")
def sys_setsockopt(t, fd, level, opt, val, vlen, *_):
    s = _sock(t, fd)
    vlen = s32(vlen)
    if vlen < 0:
        raise KernelError(E.EINVAL)
    raw = t.mem.read(val, min(vlen, OPTLEN_MAX)) if vlen else b""
    s.setsockopt(t, s32(level), s32(opt), raw)
    return 0
