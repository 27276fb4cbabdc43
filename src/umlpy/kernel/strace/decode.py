"""Syscall arguments and results as strace prints them.

Each syscall gets a plan built once: one formatter per argument, chosen
from python-ptrace's prototype (the argument's C type and name, handed
over by arch_um/strace.py as plain data) unless OVERRIDES names a better
one, and the index from which arguments are printed at the syscall's exit
(OUT_FROM: what the kernel writes, a read's buffer, a stat, wait4's
status) as strace's decoders split them.  Guest memory is read with the
kernel's own copy_from_user (task.mem); a bad address prints as the
address, as strace prints what it cannot fetch.
"""
from __future__ import annotations

import ipaddress
import struct
from typing import Callable

from arch_um.memory import GuestFault
from umlpy.abi import consts as C
from umlpy.abi import signals as S
from umlpy.kernel.strace import names as N
from umlpy.kernel.strace.quote import STRLEN, buffer, cstring, hexquote, quote

PATH_MAX = C.PATH_MAX
ARG_MAX = 2 << 20       # what execve takes of argv and envp together
MAX_ARGS = 32           # strace prints at most -s elements of an argv, then "..."
# fmt(task, args, index, ret) -> text, or None to leave the argument out
Fmt = Callable[[object, tuple, int, "int | None"], "str | None"]


def signame(sig: int) -> str:
    if 0 < sig < S.SIGRTMIN:
        return "SIG" + S.NAMES[sig]
    if sig == S.SIGRTMIN:
        return "SIGRTMIN"
    if S.SIGRTMIN < sig <= S.SIGRTMAX:
        return f"SIGRT_{sig - S.SIGRTMIN}"
    return str(sig)


def s32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def s64(x: int) -> int:
    return x - (1 << 64) if x >> 63 else x


def hexaddr(x: int) -> str:
    return f"{x:#x}" if x else "NULL"


def bits(value: int, table: N.Bits, zero: str = "0") -> str:
    out = []
    for bit, name in table:
        if value & bit == bit and bit:
            out.append(name)
            value &= ~bit
    if value:
        out.append(f"{value:#x}")
    return "|".join(out) or zero


def _read(t, addr: int, n: int) -> bytes | None:
    try:
        return t.mem.read(addr, n)
    except GuestFault:
        return None


def _read_cstr(t, addr: int, limit: int) -> tuple[bytes, bool] | None:
    data = t.mem.read_upto(addr, limit + 1) if addr else b""
    if not data:
        return None
    i = data.find(b"\0")
    return (data[:i], True) if 0 <= i <= limit else (data[:limit], False)


# -- formatters -----------------------------------------------------------------
def f_int(t, a, i, r): return str(s32(a[i]))
def f_long(t, a, i, r): return str(s64(a[i]))
def f_ulong(t, a, i, r): return str(a[i])
def f_ptr(t, a, i, r): return hexaddr(a[i])
def f_hex(t, a, i, r): return f"{a[i]:#x}" if a[i] else "0"
def f_sig(t, a, i, r): return signame(s32(a[i]))
def f_octal(t, a, i, r): return mode_text(a[i])


def f_dirfd(t, a, i, r):
    fd = s32(a[i])
    return "AT_FDCWD" if fd == C.AT_FDCWD else str(fd)


def f_path(t, a, i, r):
    got = _read_cstr(t, a[i], PATH_MAX)
    return hexaddr(a[i]) if got is None else cstring(*got)


def f_str(t, a, i, r):
    """A NUL-terminated string that is not a path: -s bytes at most."""
    got = _read_cstr(t, a[i], STRLEN)
    return hexaddr(a[i]) if got is None else cstring(*got)


def inbuf(count: int) -> Fmt:
    """A buffer the guest passes in, of args[count] bytes (write)."""
    def fmt(t, a, i, r):
        data = _read(t, a[i], min(a[count], STRLEN))
        return hexaddr(a[i]) if data is None or not a[i] else buffer(data, a[count])
    return fmt


def f_outbuf(t, a, i, r):
    """A buffer the kernel filled with `ret` bytes (read): its address on error."""
    if r is None or r < 0:
        return hexaddr(a[i])
    data = _read(t, a[i], min(r, STRLEN))
    return hexaddr(a[i]) if data is None else buffer(data, r)


def f_openflags(t, a, i, r):
    v = a[i] & 0xFFFFFFFF
    acc = N.ACCESS_MODES.get(v & C.O_ACCMODE, "O_ACCMODE")
    rest = bits(v & ~C.O_ACCMODE, N.OPEN_FLAGS, "")
    return f"{acc}|{rest}" if rest else acc


def f_openmode(flags: int) -> Fmt:
    """open's mode: printed only when O_CREAT or O_TMPFILE makes it count."""
    def fmt(t, a, i, r):
        if a[flags] & C.O_CREAT or a[flags] & C.O_TMPFILE == C.O_TMPFILE:
            return mode_text(a[i])
        return None
    return fmt


def mode_text(m: int) -> str:
    return f"0{m & 0o7777:03o}" if m & 0o7777 else "000"


def f_atflags(t, a, i, r): return bits(a[i] & 0xFFFFFFFF, N.AT_FLAGS)
def f_prot(t, a, i, r): return bits(a[i], _tables.prot, "PROT_NONE")
def f_access(t, a, i, r): return bits(a[i] & 0xFFFFFFFF, _tables.access, "F_OK")
def f_waitopts(t, a, i, r): return bits(a[i] & 0xFFFFFFFF, N.WAIT_OPTIONS)


def f_mapflags(t, a, i, r):
    v = a[i] & 0xFFFFFFFF
    kind = N.MAP_TYPES.get(v & C.MAP_TYPE, f"{v & C.MAP_TYPE:#x}")
    rest = bits(v & ~C.MAP_TYPE, N.MAP_FLAGS, "")
    return f"{kind}|{rest}" if rest else kind


def table(key: str) -> Fmt:
    def fmt(t, a, i, r):
        v = s32(a[i])
        return _tables.values.get(key, {}).get(v, str(v))
    return fmt


def f_socktype(t, a, i, r):
    v = a[i] & 0xFFFFFFFF
    out = [_tables.values["socktype"].get(v & 0xf, str(v & 0xf))]
    out += [name for bit, name in ((C.O_CLOEXEC, "SOCK_CLOEXEC"), (C.O_NONBLOCK, "SOCK_NONBLOCK")) if v & bit]
    rest = v & ~0xf & ~(C.O_CLOEXEC | C.O_NONBLOCK)
    return "|".join(out + ([f"{rest:#x}"] if rest else []))


def f_family(t, a, i, r): return family(s32(a[i]))


def family(f: int) -> str:
    return "AF_UNIX" if f == 1 else _tables.values["family"].get(f, str(f))


def f_stat(t, a, i, r):
    """struct stat, abbreviated as strace does by default."""
    data = _read(t, a[i], 144) if r == 0 else None
    if data is None:
        return hexaddr(a[i])
    mode, = struct.unpack_from("<I", data, 24)
    rdev, size = struct.unpack_from("<QQ", data, 40)
    ftype = mode & C.S_IFMT
    text = N.FILE_TYPES.get(ftype, f"{ftype:#o}")
    for bit, name in ((C.S_ISUID, "S_ISUID"), (C.S_ISGID, "S_ISGID"), (C.S_ISVTX, "S_ISVTX")):
        if mode & bit:
            text += "|" + name
    text += "|" + mode_text(mode & 0o777)
    if ftype in (C.S_IFCHR, C.S_IFBLK):
        major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~0xfff)
        minor = (rdev & 0xff) | ((rdev >> 12) & ~0xff)
        return f"{{st_mode={text}, st_rdev=makedev({major:#x}, {minor:#x}), ...}}"
    return f"{{st_mode={text}, st_size={size}, ...}}"


def f_wstatus(t, a, i, r):
    data = _read(t, a[i], 4) if r is not None and r > 0 else None
    if data is None:
        return hexaddr(a[i])
    return f"[{{{wait_status(struct.unpack('<i', data)[0])}}}]"


def wait_status(st: int) -> str:
    if st & 0x7f == 0:
        return f"WIFEXITED(s) && WEXITSTATUS(s) == {(st >> 8) & 0xff}"
    if st & 0xff == 0x7f:
        return f"WIFSTOPPED(s) && WSTOPSIG(s) == {signame((st >> 8) & 0xff)}"
    if st == 0xffff:
        return "WIFCONTINUED(s)"
    core = " && WCOREDUMP(s)" if st & 0x80 else ""
    return f"WIFSIGNALED(s) && WTERMSIG(s) == {signame(st & 0x7f)}{core}"


def struct_arg(layout: str, render: Callable[..., str]) -> Fmt:
    """A struct at the argument's address, unpacked with `layout` and
    rendered; its address when it cannot be read (a failed call's output
    is not read at all: Plan.render prints its address)."""
    size = struct.calcsize(layout)

    def fmt(t, a, i, r):
        data = _read(t, a[i], size) if a[i] else None
        return hexaddr(a[i]) if data is None else render(*struct.unpack(layout, data))
    return fmt


f_timespec = struct_arg("<qq", lambda sec, nsec: f"{{tv_sec={sec}, tv_nsec={nsec}}}")
f_timeval = struct_arg("<qq", lambda sec, usec: f"{{tv_sec={sec}, tv_usec={usec}}}")
f_sigset = struct_arg("<Q", lambda mask: sigset_text(mask))
f_epoll_event = struct_arg("<IQ", lambda ev, data: f"{{events={bits(ev, N.EPOLL_EVENTS)}, "
                                                    f"data={{u32={data & 0xFFFFFFFF}, u64={data}}}}}")
f_rlimit = struct_arg("<QQ", lambda cur, max_: f"{{rlim_cur={_rlim(cur)}, rlim_max={_rlim(max_)}}}")


def f_rem(t, a, i, r):
    """A sleep's remaining time: written only when a signal cut it short
    (a restart code); otherwise strace prints just the address."""
    return f_timespec(t, a, i, 0) if r is not None and -r in N.RESTART_CODES else hexaddr(a[i])


def sigset_text(mask: int) -> str:
    if mask.bit_count() > 32:
        inv = ~mask & ((1 << S.NSIG) - 1)
        return "~[" + " ".join(signame(s)[3:] for s in range(1, S.NSIG + 1) if inv & S.sigbit(s)) + "]"
    return "[" + " ".join(signame(s)[3:] for s in range(1, S.NSIG + 1) if mask & S.sigbit(s)) + "]"


def f_sigaction(t, a, i, r):
    data = _read(t, a[i], 32) if r is None or r >= 0 else None
    if data is None:
        return hexaddr(a[i])
    handler, flags, restorer, mask = struct.unpack("<QQQQ", data)
    h = {C.SIG_DFL: "SIG_DFL", C.SIG_IGN: "SIG_IGN"}.get(handler, f"{handler:#x}")
    text = f"{{sa_handler={h}, sa_mask={sigset_text(mask)}, sa_flags={bits(flags, N.SA_FLAGS)}"
    if flags & 0x04000000:
        text += f", sa_restorer={hexaddr(restorer)}"
    return text + "}"


def f_argv(t, a, i, r):
    out = []
    addr = a[i]
    for n in range(MAX_ARGS + 1):
        p = _read(t, addr + 8 * n, 8)
        if p is None:
            return hexaddr(a[i]) if n == 0 else "[" + ", ".join(out) + ", ...]"
        ptr, = struct.unpack("<Q", p)
        if not ptr:
            break
        if n == MAX_ARGS:
            out.append("...")
            break
        out.append(f_str(t, (ptr,), 0, r))
    return "[" + ", ".join(out) + "]"


def f_envp(t, a, i, r):
    """The environment's address and how many strings it has (counted up
    to ARG_MAX's worth of pointers, a page-sized read at a time)."""
    if not a[i]:
        return "NULL"
    n = 0
    while n < ARG_MAX // 8:
        chunk = t.mem.read_upto(a[i] + 8 * n, 4096)
        words = struct.unpack(f"<{len(chunk) // 8}Q", chunk[:len(chunk) // 8 * 8])
        if 0 in words:
            n += words.index(0)
            break
        if not words:
            break
        n += len(words)
    return f"{hexaddr(a[i])} /* {n} vars */"


def sockaddr(length: int, at_exit_len: bool = False) -> Fmt:
    """struct sockaddr of args[length] bytes (or *args[length], a socklen_t
    the kernel updates, for accept and recvfrom)."""
    def fmt(t, a, i, r):
        n = a[length]
        if at_exit_len:
            got = _read(t, n, 4) if n and (r is None or r >= 0) else None
            n = struct.unpack("<I", got)[0] if got else 0
        data = _read(t, a[i], min(n & 0xFFFFFFFF, 128)) if a[i] and n else None
        if data is None or len(data) < 2:
            return hexaddr(a[i])
        return sockaddr_text(data)
    return fmt


def sockaddr_text(data: bytes) -> str:
    fam, = struct.unpack_from("<H", data)
    head = f"{{sa_family={family(fam)}"
    if fam == 1:
        path = data[2:]
        if path[:1] == b"\0":
            return f"{head}, sun_path=@{quote(path[1:])}}}"
        end = path.find(b"\0")
        return f"{head}, sun_path={quote(path if end < 0 else path[:end])}}}"
    if fam == 2 and len(data) >= 8:
        port, = struct.unpack_from(">H", data, 2)
        return f'{head}, sin_port=htons({port}), sin_addr=inet_addr("{ipaddress.IPv4Address(data[4:8])}")}}'
    if fam == 10 and len(data) >= 24:
        port, flow = struct.unpack_from(">HI", data, 2)
        scope = struct.unpack_from("<I", data, 24)[0] if len(data) >= 28 else 0
        return (f'{head}, sin6_port=htons({port}), sin6_flowinfo=htonl({flow}), '
                f'inet_pton(AF_INET6, "{ipaddress.IPv6Address(data[8:24])}", &sin6_addr), '
                f'sin6_scope_id={scope}}}')
    return f"{head}, sa_data={quote(data[2:])}}}"


def f_clone(t, a, i, r):
    """clone's arguments by name, stack first, as strace prints them."""
    flags = a[0]
    sig = flags & 0xff
    names = bits(flags & ~0xff, _tables.clone, "")
    text = "|".join(x for x in (names, signame(sig) if sig else "") if x) or "0"
    out = [f"child_stack={hexaddr(a[1])}", f"flags={text}"]
    if flags & 0x00100000:      # CLONE_PARENT_SETTID
        out.append(f"parent_tid={hexaddr(a[2])}")
    if flags & (0x01000000 | 0x00200000):       # CLONE_CHILD_SETTID, CLONE_CHILD_CLEARTID
        out.append(f"child_tidptr={hexaddr(a[3])}")
    if flags & 0x00080000:      # CLONE_SETTLS
        out.append(f"tls={hexaddr(a[4])}")
    return ", ".join(out)


def f_none(t, a, i, r): return None


def f_futex(t, a, i, r):
    """futex's arguments: as many as its command uses, as strace prints them."""
    uaddr, op, val, timeout, uaddr2, val3 = a
    cmd = op & 0x7f
    name = N.FUTEX_CMDS.get(cmd, "FUTEX_???") + ("_PRIVATE" if op & 128 else "")
    if op & 256:
        name += "|FUTEX_CLOCK_REALTIME"
    out = [hexaddr(uaddr), name]
    val, val3 = val & 0xFFFFFFFF, val3 & 0xFFFFFFFF
    bitset = "FUTEX_BITSET_MATCH_ANY" if val3 == 0xFFFFFFFF else f"{val3:#x}"
    ts = f_timespec(t, (timeout,), 0, None) if timeout else "NULL"
    if cmd in (0, 11):
        out += [str(val), ts] + ([hexaddr(uaddr2)] if cmd == 11 else [])
    elif cmd in (6, 13):
        out.append(ts)
    elif cmd == 9:
        out += [str(val), ts, bitset]
    elif cmd == 10:
        out += [str(val), bitset]
    elif cmd in (3, 4, 5, 12):
        out += [str(val), str(timeout & 0xFFFFFFFF), hexaddr(uaddr2)]
        if cmd != 3:
            out.append(str(val3) if cmd != 5 else f"{val3:#x}")
    elif cmd in (1, 2):
        out.append(str(val))
    elif cmd not in (7, 8):
        out += [str(val), hexaddr(timeout), hexaddr(uaddr2), f"{val3:#x}"]
    return ", ".join(out)


def f_sigreturn(t, a, i, r):
    """rt_sigreturn's mask, from the frame the guest returns through: its
    ucontext is at the stack pointer (the handler's ret took pretcode)."""
    data = _read(t, t.regs.rsp + UC_SIGMASK, 8)
    return "{mask=" + (sigset_text(struct.unpack("<Q", data)[0]) if data else "?") + "}"


UC_SIGMASK = 8 + 8 + 24 + 256       # uc_flags, uc_link, uc_stack, uc_mcontext


def f_random(t, a, i, r):
    if r is None or r < 0:
        return hexaddr(a[i])
    data = _read(t, a[i], min(r, STRLEN))
    return hexaddr(a[i]) if data is None else hexquote(data) + ("..." if r > STRLEN else "")


def f_utsname(t, a, i, r):
    data = _read(t, a[i], 65 * 6) if r == 0 else None
    if data is None:
        return hexaddr(a[i])
    sysname, node = (data[k * 65:(k + 1) * 65].split(b"\0")[0] for k in (0, 1))
    return f"{{sysname={quote(sysname)}, nodename={quote(node)}, ...}}"


def named(values: dict[int, str]) -> Fmt:
    def fmt(t, a, i, r):
        v = a[i] & 0xFFFFFFFF
        return values.get(v, f"{v:#x}")
    return fmt


def f_grnd(t, a, i, r): return bits(a[i] & 0xFFFFFFFF, N.GRND_FLAGS)
def f_msgflags(t, a, i, r): return bits(a[i] & 0xFFFFFFFF, N.MSG_FLAGS)
def f_fdflags(t, a, i, r): return bits(a[i] & 0xFFFFFFFF, N.OPEN_FLAGS)
def f_statx_mask(t, a, i, r): return bits(a[i] & 0xFFFFFFFF, N.STATX_MASK)


def f_statx_flags(t, a, i, r):
    v = a[i] & 0xFFFFFFFF
    rest = bits(v & ~0x6000, N.AT_FLAGS, "")
    sync = N.STATX_SYNC.get(v & 0x6000, "AT_STATX_SYNC_TYPE")
    return f"{sync}|{rest}" if rest else sync


def f_fdpair(t, a, i, r):
    """pipe's and socketpair's two new fds, once the kernel stored them."""
    data = _read(t, a[i], 8) if r == 0 else None
    return hexaddr(a[i]) if data is None else "[{}, {}]".format(*struct.unpack("<ii", data))


MAX_IOV = 32       # strace prints at most -s iovec elements


def iovec(count: int, filled: bool) -> Fmt:
    """An iovec array of args[count] elements: each buffer's data when the
    guest passes it in (writev) or as far as the kernel filled them (readv,
    ret bytes), else its address."""
    def fmt(t, a, i, r):
        n = min(a[count] & 0xFFFFFFFF, MAX_IOV)
        raw = _read(t, a[i], 16 * n) if a[i] else None
        if raw is None:
            return hexaddr(a[i])
        left = r if filled else None
        out = []
        for base, length in struct.iter_unpack("<QQ", raw):
            if filled and (left is None or left < 0):
                data = None
            else:
                want = length if left is None else min(length, left)
                data = _read(t, base, min(want, STRLEN))
                if left is not None:
                    left -= want
                length_shown = want
            text = hexaddr(base) if data is None else buffer(data, length_shown)
            out.append(f"{{iov_base={text}, iov_len={length}}}")
        more = ", ..." if a[count] & 0xFFFFFFFF > MAX_IOV else ""
        return "[" + ", ".join(out) + more + "]"
    return fmt


def f_intptr(t, a, i, r):
    data = _read(t, a[i], 4) if a[i] else None
    return hexaddr(a[i]) if data is None else f"[{struct.unpack('<i', data)[0]}]"


def fdset(nfds: int) -> Fmt:
    def fmt(t, a, i, r):
        n = max(0, min(s32(a[nfds]), 1024))
        data = _read(t, a[i], (n + 7) // 8) if a[i] and n else None
        if data is None:
            return hexaddr(a[i])
        return "[" + " ".join(str(fd) for fd in range(n) if data[fd // 8] >> (fd % 8) & 1) + "]"
    return fmt


MAX_POLLFDS = 32     # strace prints at most -s elements, then "..."


def _pollfds(t, addr: int, n: int) -> list[tuple[int, int, int]] | None:
    data = _read(t, addr, 8 * min(n, MAX_POLLFDS)) if addr else None
    return None if data is None else list(struct.iter_unpack("<ihh", data))


def f_pollfds(t, a, i, r):
    """poll's array as the guest passes it in: [{fd=3, events=POLLIN}]."""
    n = a[i + 1] & 0xFFFFFFFF
    fds = _pollfds(t, a[i], n)
    if fds is None:
        return hexaddr(a[i])
    more = ", ..." if n > MAX_POLLFDS else ""
    return "[" + ", ".join(f"{{fd={fd}, events={bits(ev & 0xFFFF, N.POLL_EVENTS)}}}"
                           for fd, ev, _ in fds) + more + "]"


def poll_result(t, a: tuple, ret: int) -> str:
    """What follows poll's result: the fds that have events, or Timeout."""
    if ret == 0:
        return " (Timeout)"
    fds = _pollfds(t, a[0], a[1] & 0xFFFFFFFF) or []
    ready = [f"{{fd={fd}, revents={bits(rev & 0xFFFF, N.POLL_EVENTS)}}}" for fd, _, rev in fds if rev]
    return f" ([{', '.join(ready)}])"


def _rlim(v: int) -> str:
    if v == N.RLIM_INFINITY:
        return "RLIM64_INFINITY"
    return f"{v // 1024}*1024" if v and v % 1024 == 0 else str(v)


# -- plans ----------------------------------------------------------------------
_FD_NAMES = {"fd", "oldfd", "newfd", "sockfd", "epfd", "ufd", "fildes"}
_DIRFD_NAMES = {"dfd", "dirfd", "olddfd", "newdfd", "olddirfd", "newdirfd"}
_SIGNED = {"int", "pid_t", "long", "off_t", "loff_t", "clockid_t", "key_serial_t", "timer_t",
           "uid_t", "gid_t", "mqd_t"}

# name -> {argument index: formatter}; beside the prototype's types
OVERRIDES: dict[str, dict[int, Fmt]] = {
    "open": {0: f_path, 1: f_openflags, 2: f_openmode(1)},
    "openat": {0: f_dirfd, 1: f_path, 2: f_openflags, 3: f_openmode(2)},
    "creat": {1: f_octal},
    "read": {1: f_outbuf}, "pread64": {1: f_outbuf},
    "write": {1: inbuf(2)}, "pwrite64": {1: inbuf(2)},
    "stat": {1: f_stat}, "lstat": {1: f_stat}, "fstat": {1: f_stat},
    "newfstatat": {0: f_dirfd, 2: f_stat, 3: f_atflags},
    "faccessat": {1: f_path, 2: f_access}, "faccessat2": {1: f_path, 2: f_access, 3: f_atflags},
    "access": {1: f_access},
    "readlink": {1: f_outbuf}, "readlinkat": {0: f_dirfd, 1: f_path, 2: f_outbuf},
    "unlinkat": {2: f_atflags}, "mkdirat": {2: f_octal}, "mkdir": {1: f_octal},
    "chmod": {1: f_octal}, "fchmod": {1: f_octal}, "fchmodat": {2: f_octal},
    "exit_group": {0: f_int}, "exit": {0: f_int},
    "kill": {0: f_int, 1: f_sig}, "tkill": {0: f_int, 1: f_sig}, "tgkill": {0: f_int, 1: f_int, 2: f_sig},
    "mmap": {0: f_ptr, 2: f_prot, 3: f_mapflags, 4: f_int, 5: f_hex},
    "mprotect": {0: f_ptr, 2: f_prot}, "munmap": {0: f_ptr}, "brk": {0: f_ptr},
    "lseek": {1: f_long, 2: table("lseek.origin")},
    "wait4": {0: f_int, 1: f_wstatus, 2: f_waitopts},
    "execve": {0: f_path, 1: f_argv, 2: f_envp},
    "rt_sigaction": {0: f_sig, 1: f_sigaction, 2: f_sigaction, 3: f_ulong},
    "rt_sigprocmask": {0: table("how"), 1: f_sigset, 2: f_sigset},
    "socket": {0: f_family, 1: f_socktype, 2: f_int},
    "connect": {1: sockaddr(2)}, "bind": {1: sockaddr(2)},
    "accept": {1: sockaddr(2, at_exit_len=True)}, "accept4": {1: sockaddr(2, at_exit_len=True)},
    "nanosleep": {0: f_timespec, 1: f_rem},
    "clock_nanosleep": {0: named(N.CLOCKS), 1: lambda t, a, i, r: bits(a[i] & 0xFFFFFFFF, N.TIMER_FLAGS),
                        2: f_timespec, 3: f_rem},
    "clock_gettime": {0: named(N.CLOCKS), 1: f_timespec}, "clock_getres": {0: named(N.CLOCKS), 1: f_timespec},
    "fcntl": {1: table("fcntl.cmd")},
    "dup2": {0: f_int, 1: f_int},
    "clone": {0: f_clone, 1: f_none, 2: f_none, 3: f_none, 4: f_none},
    "futex": {0: f_futex, 1: f_none, 2: f_none, 3: f_none, 4: f_none, 5: f_none},
    "rt_sigreturn": {0: f_sigreturn},
    "arch_prctl": {0: named(N.ARCH_PRCTL), 1: f_hex},
    "rseq": {1: f_hex, 3: f_hex},
    "ioctl": {1: named(N.IOCTLS), 2: f_hex},
    "getrandom": {0: f_random, 2: f_grnd},
    "uname": {0: f_utsname},
    "pipe": {0: f_fdpair}, "pipe2": {0: f_fdpair, 1: f_fdflags},
    "socketpair": {0: f_family, 1: f_socktype, 2: f_int, 3: f_fdpair},
    "recvfrom": {1: f_outbuf, 3: f_msgflags, 4: sockaddr(5, at_exit_len=True)},
    "sendto": {1: inbuf(2), 3: f_msgflags, 4: sockaddr(5)},
    "sendmsg": {2: f_msgflags}, "recvmsg": {2: f_msgflags},
    "getrlimit": {0: table("rlimit"), 1: f_rlimit}, "setrlimit": {0: table("rlimit"), 1: f_rlimit},
    "prlimit64": {1: table("rlimit"), 2: f_rlimit, 3: f_rlimit},
    "getrusage": {0: named(N.RUSAGE_WHO)},
    "statx": {0: f_dirfd, 2: f_statx_flags, 3: f_statx_mask},
    "dup3": {2: f_fdflags},
    "readv": {1: iovec(2, True)}, "writev": {1: iovec(2, False)},
    "preadv": {1: iovec(2, True), 3: f_long, 4: f_none},
    "pwritev": {1: iovec(2, False), 3: f_long, 4: f_none},
    "getsockname": {1: sockaddr(2, at_exit_len=True), 2: f_intptr},
    "getpeername": {1: sockaddr(2, at_exit_len=True), 2: f_intptr},
    "select": {1: fdset(0), 2: fdset(0), 3: fdset(0), 4: f_timeval},
    "epoll_ctl": {1: named(N.EPOLL_CTL), 3: f_epoll_event},
    "poll": {0: f_pollfds},
}
# what some results are followed by, for a call that succeeded
RESULT_DETAIL: dict[str, Callable[[object, tuple, int], str]] = {"poll": poll_result}
# the first argument printed at exit, as strace's decoders split them
OUT_FROM = {
    "read": 1, "pread64": 1, "readv": 1, "preadv": 1, "stat": 1, "lstat": 1, "fstat": 1, "newfstatat": 2, "statx": 4,
    "readlink": 1, "readlinkat": 2, "wait4": 1, "rt_sigaction": 2, "rt_sigprocmask": 2,
    "recvfrom": 1, "accept": 1, "accept4": 1, "nanosleep": 1, "clock_nanosleep": 3,
    "prlimit64": 3, "clock_gettime": 1, "clock_getres": 1, "getdents64": 1, "getdents": 1, "uname": 0, "pipe": 0, "pipe2": 0,
    "getrandom": 0, "getcwd": 0, "fstatfs": 1, "statfs": 1, "getsockname": 1,
    "getpeername": 1, "getsockopt": 3, "socketpair": 3, "sysinfo": 0, "getrusage": 1,
    "epoll_wait": 1, "times": 0, "getrlimit": 1, "getresuid": 0, "getresgid": 0, "getgroups": 1,
}
HEX_RESULT = {"mmap", "mremap", "brk", "shmat"}
# syscalls newer than python-ptrace's prototypes: (type, name) as its tables write them
EXTRA_PROTOTYPES = {
    "arch_prctl": (("int", "code"), ("unsigned long", "addr")),
    "clone3": (("struct clone_args *", "uargs"), ("size_t", "size")),
    "rseq": (("struct rseq *", "rseq"), ("u32", "rseq_len"), ("int", "flags"), ("u32", "sig")),
    "openat2": (("int", "dfd"), ("const char *", "filename"), ("struct open_how *", "how"),
                ("size_t", "usize")),
    "faccessat2": (("int", "dfd"), ("const char *", "filename"), ("int", "mode"), ("int", "flags")),
    "pidfd_open": (("pid_t", "pid"), ("unsigned int", "flags")),
    "close_range": (("unsigned int", "fd"), ("unsigned int", "max_fd"), ("unsigned int", "flags")),
    "rt_sigreturn": (("struct rt_sigframe *", "frame"),),
}


# formatters of what the kernel writes (printed at exit)
WRITTEN_BY_KERNEL = {f_path, f_str, f_stat, f_sigaction, f_sigset, f_timespec, f_utsname, f_fdpair,
                     f_rlimit}


class _Tables:
    """python-ptrace's data, loaded through arch_um when tracing starts."""
    prototypes: dict = {}
    paths: frozenset = frozenset()
    prot: N.Bits = ()
    access: N.Bits = ()
    clone: N.Bits = ()
    values: dict = {"family": {}, "socktype": {}}

    def load(self, host) -> None:
        self.prototypes = {**host.prototypes(), **EXTRA_PROTOTYPES}
        self.paths = host.filename_arguments()
        b = host.bit_tables()
        self.prot, self.access = b["prot"], b["access"]
        ours = {bit for bit, _ in N.CLONE_EXTRA}      # CLONE_STOPPED's bit is CLONE_NEWCGROUP now
        self.clone = tuple(sorted([x for x in b["clone"] if x[0] not in ours] + list(N.CLONE_EXTRA)))
        self.values = host.value_tables()


_tables = _Tables()


def load_tables(host) -> None:
    _tables.load(host)


def _by_type(ctype: str, name: str) -> Fmt:
    base = ctype.removeprefix("const ").strip()
    if name in _DIRFD_NAMES:
        return f_dirfd
    if name in _FD_NAMES:
        return f_int
    if base == "char *" and name in _tables.paths:
        return f_path
    if base == "umode_t":
        return f_octal
    if "*" in base or "[" in base:
        return f_ptr
    if base in _SIGNED:
        return f_int if base in ("int", "pid_t", "clockid_t", "key_serial_t", "uid_t", "gid_t", "mqd_t") else f_long
    if base in ("unsigned long", "unsigned int", "size_t", "u32", "unsigned"):
        return f_ulong
    return f_hex


class Plan:
    __slots__ = ("name", "fmts", "out_from")

    def __init__(self, name: str) -> None:
        self.name = name
        proto = _tables.prototypes.get(name)
        over = OVERRIDES.get(name, {})
        if proto is None:       # unknown to python-ptrace too: strace's raw form, six hex words
            self.fmts: list[Fmt] = [f_hex] * 6
        else:
            self.fmts = [over.get(i) or _by_type(ct, an) for i, (ct, an) in enumerate(proto)]
        self.out_from = OUT_FROM.get(name, len(self.fmts))

    def render(self, t, args: tuple, lo: int, hi: int, ret: int | None) -> list[str]:
        out = []
        failed = ret is not None and -4095 <= ret < 0 and -ret not in N.RESTART_CODES
        for i in range(lo, hi):
            fmt = self.fmts[i]
            if failed and fmt in WRITTEN_BY_KERNEL:
                fmt = f_ptr         # a failed call wrote nothing there: its address, as strace
            text = fmt(t, args, i, ret)
            if text is not None:
                out.append(text)
        return out


def result(t, name: str, args: tuple, ret: int | None, errnos: dict[int, tuple[str, str]]) -> str:
    """`= value`'s value: ? for no return, -1 ENAME (message) for an error,
    and for some calls what they found (poll's ready fds)."""
    if ret is None:
        return "?"
    if -4095 <= ret < 0:
        err = -ret
        if err in N.RESTART_CODES:
            short, long = N.RESTART_CODES[err]
            return f"? {short} ({long})"
        ename, msg = errnos.get(err, (f"errno {err}", "Unknown error"))
        return f"-1 {N.ERRNO_NAMES.get(err, ename)} ({msg})"
    if name in HEX_RESULT:
        return f"{ret & ((1 << 64) - 1):#x}"
    detail = RESULT_DETAIL.get(name)
    return str(ret) + (detail(t, args, ret) if detail is not None else "")
