"""Sockets: the BSD socket calls over AF_UNIX (other families: EAFNOSUPPORT)."""
from __future__ import annotations

import struct

from arch_um.memory import GuestFault
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN
from umlpy.kernel import printk
from umlpy.kernel.cred import NO_ID, capable
from umlpy.kernel.errors import KernelError
from umlpy.kernel.timers import bounded
from umlpy.syscalls.sys_poll import timespec_end_time
from umlpy.net import unix as U
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import (MAX_RW_COUNT, UIO_MAXIOV, install_pair, put_u32, read_iovecs, s32,
                                 scatter, u32, user_data)
from umlpy.vfs import namei
from umlpy.vfs.perm import permission

AF_UNIX = 1
SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK = C.O_NONBLOCK
SOCK_CLOEXEC = C.O_CLOEXEC
SOL_SOCKET = 1
SCM_RIGHTS, SCM_CREDENTIALS = 1, 2
SHUT_RD, SHUT_WR, SHUT_RDWR = 0, 1, 2
SO = dict(SO_REUSEADDR=2, SO_TYPE=3, SO_ERROR=4, SO_BROADCAST=6, SO_SNDBUF=7, SO_RCVBUF=8,
          SO_KEEPALIVE=9, SO_LINGER=13, SO_PASSCRED=16, SO_PEERCRED=17, SO_RCVLOWAT=18,
          SO_SNDLOWAT=19, SO_RCVTIMEO=20, SO_SNDTIMEO=21, SO_ACCEPTCONN=30, SO_SNDBUFFORCE=32,
          SO_RCVBUFFORCE=33, SO_PROTOCOL=38, SO_DOMAIN=39)
_MSGHDR = struct.Struct("<QI4xQQQQi4x")
_CMSGHDR = struct.Struct("<Qii")
_UCRED = struct.Struct("<iII")
SCM_MAX_FD = 253
OPTMEM_MAX = 20480              # net.core.optmem_max: the largest control buffer
SOCKADDR_STORAGE = 128
_logged_families: set[int] = set()


def _sock(t, fd: int) -> U.UnixSocket:
    f = t.proc.fdtable.get(s32(fd))
    if not isinstance(f, U.UnixSocket):
        raise KernelError(E.ENOTSOCK)
    return f


def _new(t, domain: int, stype: int) -> tuple[U.UnixSocket, bool]:
    if domain != AF_UNIX:
        if domain not in _logged_families:
            _logged_families.add(domain)
            printk.pr_notice(f"socket: address family {domain} not supported yet")
        raise KernelError(E.EAFNOSUPPORT)
    kind = stype & SOCK_TYPE_MASK
    if stype & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise KernelError(E.EINVAL)
    if kind not in (U.SOCK_STREAM, U.SOCK_DGRAM, U.SOCK_SEQPACKET):
        raise KernelError(E.ESOCKTNOSUPPORT if kind else E.EINVAL)
    return U.UnixSocket(kind, stype & SOCK_NONBLOCK), bool(stype & SOCK_CLOEXEC)


@syscall("socket", status=PARTIAL, note="AF_UNIX only; other families EAFNOSUPPORT")
def sys_socket(t, domain, stype, proto, *_):
    if s32(proto) not in (0, 1):
        raise KernelError(E.EPROTONOSUPPORT)
    s, cloexec = _new(t, domain, stype)
    return t.proc.fdtable.install(s, cloexec)


@syscall("socketpair", status=PARTIAL, note="AF_UNIX")
def sys_socketpair(t, domain, stype, proto, sv, *_):
    a, cloexec = _new(t, domain, stype)
    b, _ = _new(t, domain, stype)
    U.connect_pair(a, b)
    creds = (t.proc.pid, t.proc.creds.euid, t.proc.creds.egid)
    a.peercred = b.peercred = creds
    return install_pair(t, a, b, cloexec, sv)


# -- addresses -------------------------------------------------------------------

def _read_addr(t, addr: int, alen: int) -> bytes:
    """sun_path bytes: b"/path" or b"\\0abstract"; b"" for an unnamed (autobind) address."""
    alen = s32(alen)
    if alen < 2 or alen > 110:
        raise KernelError(E.EINVAL)
    raw = t.mem.read(addr, alen)
    (family,) = struct.unpack_from("<H", raw)
    if family != AF_UNIX:
        raise KernelError(E.EINVAL if family else E.EAFNOSUPPORT)
    path = raw[2:]
    if path[:1] == b"\0":
        return path
    return path.split(b"\0", 1)[0]


def _write_addr(t, addr: int, lenp: int, name: bytes | None) -> None:
    """move_addr_to_user: as much of the address as *lenp allows, then its
    full length in *lenp."""
    data = struct.pack("<H", AF_UNIX)
    if name:
        data += name + (b"" if name.startswith(b"\0") else b"\0")
    (cap,) = struct.unpack("<i", t.mem.read(lenp, 4))
    if cap < 0:
        raise KernelError(E.EINVAL)
    if cap:
        t.mem.write(addr, data[:cap])
    t.mem.write(lenp, struct.pack("<I", len(data)))


def _lookup(t, name: bytes) -> U.UnixSocket:
    if name.startswith(b"\0"):
        s = U.abstract_lookup(name)
        if s is None:
            raise KernelError(E.ECONNREFUSED)
        return s
    d = namei.lookup(t, C.AT_FDCWD, name)
    if d.inode.fmt != C.S_IFSOCK:
        raise KernelError(E.ECONNREFUSED)
    permission(d.inode, C.W_OK, t.proc.creds)
    s = getattr(d.inode, "socket", None)
    if s is None:
        raise KernelError(E.ECONNREFUSED)
    return s


@syscall("bind")
def sys_bind(t, fd, addr, alen, *_):
    s = _sock(t, fd)
    name = _read_addr(t, addr, alen)
    if not name or name.startswith(b"\0"):
        if s.name is not None:
            raise KernelError(E.EINVAL)
        name = name or b"\0" + f"{id(s) & 0xFFFFF:05x}".encode()   # autobind
        U.abstract_bind(name, s)
        s.name = name
        return 0
    # Linux makes the socket's inode first: a taken path is EADDRINUSE even
    # for a socket that is already bound
    parent, last, _ = namei.lookup_parent(t, C.AT_FDCWD, name)
    if parent.child(last) is not None:
        raise KernelError(E.EADDRINUSE)
    if s.name is not None:
        raise KernelError(E.EINVAL)
    permission(parent.inode, C.W_OK | C.X_OK, t.proc.creds)
    creds = t.proc.creds
    ino = parent.inode.create(last, C.S_IFSOCK | (0o777 & ~t.proc.fs.umask), creds.fsuid, creds.fsgid)
    ino.socket = s
    s.bound_inode = ino
    s.name = name
    return 0


@syscall("listen")
def sys_listen(t, fd, backlog, *_):
    s = _sock(t, fd)
    if s.stype == U.SOCK_DGRAM:
        raise KernelError(E.EOPNOTSUPP)
    if s.peer is not None:
        raise KernelError(E.EINVAL)
    if s.name is None:
        raise KernelError(E.EINVAL)
    s.listening = True
    s.backlog = max(1, min(s32(backlog), U.MAX_BACKLOG)) if s32(backlog) > 0 else 1
    s.peercred = (t.proc.pid, t.proc.creds.euid, t.proc.creds.egid)
    return 0


@syscall("connect")
def sys_connect(t, fd, addr, alen, *_):
    s = _sock(t, fd)
    target = _lookup(t, _read_addr(t, addr, alen))
    return bounded(lambda: U.connect(t, s, target), s.sndtimeo)


def _accept(t, fd: int, addr: int, lenp: int, flags: int) -> int:
    if flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise KernelError(E.EINVAL)
    s = _sock(t, fd)
    server = U.accept(t, s)
    server.flags = C.O_RDWR | (flags & SOCK_NONBLOCK)
    if addr:
        peer = server.peer
        try:
            _write_addr(t, addr, lenp, peer.name if peer is not None else None)
        except (GuestFault, KernelError):
            server.put_ref()    # Linux drops the new connection with the fd it did not install
            raise
    return t.proc.fdtable.install(server, bool(flags & SOCK_CLOEXEC))


@syscall("accept")
def sys_accept(t, fd, addr, lenp, *_):
    return bounded(lambda: _accept(t, fd, addr, lenp, 0), _sock(t, fd).rcvtimeo)


@syscall("accept4")
def sys_accept4(t, fd, addr, lenp, flags, *_):
    return bounded(lambda: _accept(t, fd, addr, lenp, flags), _sock(t, fd).rcvtimeo)


@syscall("getsockname")
def sys_getsockname(t, fd, addr, lenp, *_):
    _write_addr(t, addr, lenp, _sock(t, fd).name)
    return 0


@syscall("getpeername")
def sys_getpeername(t, fd, addr, lenp, *_):
    s = _sock(t, fd)
    if s.peer is None:
        raise KernelError(E.ENOTCONN)
    _write_addr(t, addr, lenp, s.peer.name)
    return 0


@syscall("shutdown")
def sys_shutdown(t, fd, how, *_):
    s = _sock(t, fd)
    if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
        raise KernelError(E.EINVAL)
    if s.peer is None and s.stype != U.SOCK_DGRAM:
        raise KernelError(E.ENOTCONN)
    mask = {SHUT_RD: U.RCVSHUTDOWN, SHUT_WR: U.SNDSHUTDOWN, SHUT_RDWR: U.RCVSHUTDOWN | U.SNDSHUTDOWN}[how]
    s.shut |= mask
    if s.peer is not None:
        s.peer.peer_shut |= mask      # what the peer's other end stopped doing
        s.peer.wake()
    s.wake()
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


def _dest(t, addr: int, alen: int) -> U.UnixSocket | None:
    """The socket a send names, if any (move_addr_to_kernel: no name for
    length 0, EINVAL beyond a sockaddr_storage)."""
    alen = s32(alen)
    if not addr or alen == 0:
        return None
    if not 0 < alen <= SOCKADDR_STORAGE:
        raise KernelError(E.EINVAL)
    return _lookup(t, _read_addr(t, addr, alen))


def _parse_cmsgs(t, ctl: int, ctllen: int) -> list:
    """The files of a sendmsg's control messages, as Linux's __scm_send: the
    buffer no bigger than optmem_max (ENOBUFS), levels other than SOL_SOCKET
    skipped, SCM_RIGHTS with at most SCM_MAX_FD fds in all, SCM_CREDENTIALS
    exactly one struct ucred that the sender may claim."""
    if ctllen > OPTMEM_MAX:
        raise KernelError(E.ENOBUFS)
    files = []
    off = 0
    raw = t.mem.read(ctl, ctllen) if ctllen else b""
    while off + _CMSGHDR.size <= len(raw):
        clen, level, ctype = _CMSGHDR.unpack_from(raw, off)
        if clen < _CMSGHDR.size or off + clen > len(raw):
            raise KernelError(E.EINVAL)
        body = raw[off + _CMSGHDR.size:off + clen]
        off += (clen + 7) & ~7
        if level != SOL_SOCKET:
            continue
        if ctype == SCM_RIGHTS:
            fds = [fd for (fd,) in struct.iter_unpack("<i", body[:len(body) // 4 * 4])]
            if len(files) + len(fds) > SCM_MAX_FD:
                raise KernelError(E.EINVAL)
            files += [t.proc.fdtable.get(fd) for fd in fds]
        elif ctype == SCM_CREDENTIALS:
            if len(body) != _UCRED.size:
                raise KernelError(E.EINVAL)
            _check_creds(t, *_UCRED.unpack(body))
        else:
            raise KernelError(E.EINVAL)
    return files


def _check_creds(t, pid: int, uid: int, gid: int) -> None:
    """scm_check_creds: one's own pid and ids, or the capability for each."""
    if NO_ID in (uid, gid):
        raise KernelError(E.EINVAL)
    c = t.proc.creds
    if not (pid == t.proc.pid or capable(c, CAP_SYS_ADMIN)) \
            or not (uid in (c.uid, c.euid, c.suid) or capable(c, CAP_SETUID)) \
            or not (gid in (c.gid, c.egid, c.sgid) or capable(c, CAP_SETGID)):
        raise KernelError(E.EPERM)


def do_sendmsg(t, fd: int, msg: int, flags: int) -> int:
    s = _sock(t, fd)
    name, namelen, vecs, ctl, ctllen = _read_msghdr(t, msg)
    dest = _dest(t, name, namelen)
    U.check_size(s, sum(n for _, n in vecs))
    files = _parse_cmsgs(t, ctl, ctllen)
    return U.send(t, s, user_data(t, vecs), flags, dest, files)


def _build_cmsgs(t, s: U.UnixSocket, r: U.Received, ctllen: int, flags: int) -> tuple[bytes, int]:
    out = b""
    mflags = 0
    if s.passcred:
        pid, uid, gid = r.creds or (0, 65534, 65534)
        body = struct.pack("<iII", pid, uid, gid)
        out += _CMSGHDR.pack(_CMSGHDR.size + len(body), SOL_SOCKET, SCM_CREDENTIALS) + body + b"\0" * 4
    if r.files:
        room = (ctllen - len(out) - _CMSGHDR.size) // 4
        take = r.files[:max(0, room)]
        for f in r.files[len(take):]:
            f.put()
            mflags |= U.MSG_CTRUNC
        if take:
            fds = [t.proc.fdtable.install(f, bool(flags & U.MSG_CMSG_CLOEXEC)) for f in take]
            for f in take:
                f.put()     # the queue's reference; the fd table holds its own now
            body = struct.pack(f"<{len(fds)}i", *fds)
            clen = _CMSGHDR.size + len(body)
            out += _CMSGHDR.pack(clen, SOL_SOCKET, SCM_RIGHTS) + body + b"\0" * (((clen + 7) & ~7) - clen)
    if len(out) > ctllen:
        out = out[:ctllen]
        mflags |= U.MSG_CTRUNC
    return out, mflags


def do_recvmsg(t, fd: int, msg: int, flags: int) -> int:
    s = _sock(t, fd)
    name, namelen, vecs, ctl, ctllen = _read_msghdr(t, msg)
    r = U.recv(t, s, sum(n for _, n in vecs), flags)
    try:
        scatter(t, vecs, r.data)
    except GuestFault:
        if not flags & U.MSG_PEEK:
            U.unrecv(s, r)
        raise
    cm, mflags = _build_cmsgs(t, s, r, ctllen, flags)
    if ctl and cm:
        t.mem.write(ctl, cm)
    if name:
        data = struct.pack("<H", AF_UNIX) + ((r.sender + (b"" if r.sender.startswith(b"\0") else b"\0"))
                                             if r.sender else b"")
        t.mem.write(name, data[:namelen])
        namelen = len(data)
    t.mem.write(msg + 8, struct.pack("<I", namelen))
    t.mem.write(msg + 40, struct.pack("<Q", len(cm)))
    t.mem.write(msg + 48, struct.pack("<i", r.flags | mflags))
    return r.full_len if flags & U.MSG_TRUNC else len(r.data)


@syscall("sendto")
def sys_sendto(t, fd, buf, n, flags, addr, alen):
    s = _sock(t, fd)
    dest = _dest(t, addr, alen)
    n = min(n, MAX_RW_COUNT)
    U.check_size(s, n)
    data = user_data(t, [(buf, n)])
    return bounded(lambda: U.send(t, s, data, flags, dest, []), s.sndtimeo)


@syscall("recvfrom")
def sys_recvfrom(t, fd, buf, n, flags, addr, lenp):
    return bounded(lambda: _recvfrom(t, fd, buf, n, flags, addr, lenp), _sock(t, fd).rcvtimeo)


def _recvfrom(t, fd: int, buf: int, n: int, flags: int, addr: int, lenp: int) -> int:
    s = _sock(t, fd)
    r = U.recv(t, s, min(n, MAX_RW_COUNT), flags)
    try:
        t.mem.write(buf, r.data)
    except GuestFault:
        if not flags & U.MSG_PEEK:
            U.unrecv(s, r)
        raise
    for f in r.files:
        f.put()
    if addr:
        _write_addr(t, addr, lenp, r.sender)
    return r.full_len if flags & U.MSG_TRUNC else len(r.data)


@syscall("sendmsg")
def sys_sendmsg(t, fd, msg, flags, *_):
    return bounded(lambda: do_sendmsg(t, fd, msg, flags), _sock(t, fd).sndtimeo)


@syscall("recvmsg")
def sys_recvmsg(t, fd, msg, flags, *_):
    return bounded(lambda: do_recvmsg(t, fd, msg, flags), _sock(t, fd).rcvtimeo)


def _mmsg(t, fd: int, vec: int, vlen: int, flags: int, one) -> int:
    done = 0
    for i in range(min(u32(vlen), UIO_MAXIOV)):
        try:
            n = one(t, fd, vec + 64 * i, flags if i == 0 else flags | U.MSG_DONTWAIT)
        except KernelError:
            if done:
                break
            raise
        t.mem.write(vec + 64 * i + 56, struct.pack("<I", n))
        done += 1
    return done


@syscall("sendmmsg")
def sys_sendmmsg(t, fd, vec, vlen, flags, *_):
    return _mmsg(t, fd, vec, vlen, flags, do_sendmsg)


@syscall("recvmmsg", status=PARTIAL, note="timeout checked (EINVAL) but not waited on: later messages are taken only if already there")
def sys_recvmmsg(t, fd, vec, vlen, flags, timeout, *_):
    timespec_end_time(t, timeout)
    return _mmsg(t, fd, vec, vlen, flags, do_recvmsg)


# -- options ---------------------------------------------------------------------

HZ = 100                            # the guest's tick, as UML's
MAX_SCHEDULE_TIMEOUT = (1 << 63) - 1
_TIMEVAL = struct.Struct("<qq")


def _set_timeout(t, val: int, vlen: int) -> int | None:
    """SO_RCVTIMEO/SO_SNDTIMEO as Linux's sock_set_timeout: a timeval,
    EDOM for microseconds out of range, a negative time means no waiting
    at all, zero (or one too long for jiffies) waiting for good; kept in
    whole jiffies, rounded up."""
    if vlen < _TIMEVAL.size:
        raise KernelError(E.EINVAL)
    sec, usec = _TIMEVAL.unpack(t.mem.read(val, _TIMEVAL.size))
    if not 0 <= usec < 10**6:
        raise KernelError(E.EDOM)
    if sec < 0:
        return 0
    if (not sec and not usec) or sec >= MAX_SCHEDULE_TIMEOUT // HZ - 1:
        return None
    jiffies = sec * HZ + -(-usec // (10**6 // HZ))
    return jiffies * (10**9 // HZ)


def _get_timeout(timeout: int | None) -> bytes:
    """What sock_get_timeout reports: 0.0 for "for good"."""
    if timeout is None:
        return _TIMEVAL.pack(0, 0)
    jiffies = timeout // (10**9 // HZ)
    return _TIMEVAL.pack(jiffies // HZ, jiffies % HZ * 10**6 // HZ)


@syscall("getsockopt")
def sys_getsockopt(t, fd, level, opt, val, lenp, *_):
    s = _sock(t, fd)
    if level != SOL_SOCKET:
        raise KernelError(E.ENOPROTOOPT)
    if opt == SO["SO_PEERCRED"]:
        data = struct.pack("<iII", *(s.peercred or (0, 65534, 65534)))
    elif opt in (SO["SO_RCVTIMEO"], SO["SO_SNDTIMEO"]):
        data = _get_timeout(s.rcvtimeo if opt == SO["SO_RCVTIMEO"] else s.sndtimeo)
    else:
        v = {SO["SO_TYPE"]: s.stype, SO["SO_ERROR"]: s.error, SO["SO_SNDBUF"]: s.sndbuf,
             SO["SO_RCVBUF"]: s.rcvbuf, SO["SO_PASSCRED"]: int(s.passcred),
             SO["SO_ACCEPTCONN"]: int(s.listening), SO["SO_DOMAIN"]: AF_UNIX, SO["SO_PROTOCOL"]: 0,
             SO["SO_REUSEADDR"]: 0, SO["SO_KEEPALIVE"]: 0, SO["SO_RCVLOWAT"]: 1,
             SO["SO_SNDLOWAT"]: 1}.get(opt)
        if v is None:
            raise KernelError(E.ENOPROTOOPT)
        if opt == SO["SO_ERROR"]:
            s.error = 0
        data = struct.pack("<i", v)
    (cap,) = struct.unpack("<i", t.mem.read(lenp, 4))
    if cap < 0:
        raise KernelError(E.EINVAL)
    t.mem.write(val, data[:cap])
    put_u32(t, lenp, min(cap, len(data)))
    return 0


@syscall("setsockopt", status=PARTIAL, note="SO_PASSCRED, SO_SNDBUF/SO_RCVBUF, SO_RCVTIMEO/SO_SNDTIMEO; SO_REUSEADDR and SO_KEEPALIVE accepted (no effect on AF_UNIX)")
def sys_setsockopt(t, fd, level, opt, val, vlen, *_):
    s = _sock(t, fd)
    if level != SOL_SOCKET:
        raise KernelError(E.ENOPROTOOPT)
    if s32(vlen) < 4:
        raise KernelError(E.EINVAL)
    raw = t.mem.read(val, min(s32(vlen), 16))
    (v,) = struct.unpack_from("<i", raw)
    if opt == SO["SO_PASSCRED"]:
        s.passcred = bool(v)
    elif opt in (SO["SO_SNDBUF"], SO["SO_SNDBUFFORCE"]):
        s.sndbuf = max(4608, min(2 * v, 1 << 24))
    elif opt in (SO["SO_RCVBUF"], SO["SO_RCVBUFFORCE"]):
        s.rcvbuf = max(2304, min(2 * v, 1 << 24))
    elif opt in (SO["SO_RCVTIMEO"], SO["SO_SNDTIMEO"]):
        timeout = _set_timeout(t, val, s32(vlen))
        if opt == SO["SO_RCVTIMEO"]:
            s.rcvtimeo = timeout
        else:
            s.sndtimeo = timeout
    elif opt in (SO["SO_REUSEADDR"], SO["SO_KEEPALIVE"], SO["SO_LINGER"], SO["SO_BROADCAST"]):
        pass
    else:
        raise KernelError(E.ENOPROTOOPT)
    return 0
