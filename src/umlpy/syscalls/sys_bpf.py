"""bpf(2): maps and socket filter programs (kernel/bpf/syscall.c).

The guest's union bpf_attr is copied in as bpf_check_uabi does, then each
command reads its fields; maps and programs themselves are bpf/."""
from __future__ import annotations

from umlpy.abi import bpf as B
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN
from umlpy.bpf import maps as bpf_maps
from umlpy.bpf.prog import ProgFile, load
from umlpy.bpf.verifier import COMPLEXITY_LIMIT, VerifyError
from umlpy.kernel import printk
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.table import PARTIAL, syscall

PAGE_SIZE = 4096
LICENSE_MAX = 128


def bpf_capable(t) -> bool:
    return capable(t.proc.creds, CAP_BPF) or capable(t.proc.creds, CAP_SYS_ADMIN)


def perfmon_capable(t) -> bool:
    """What lets the verifier allow pointer leaks and skip the
    speculation limits (bpf_allow_ptr_leaks)."""
    return capable(t.proc.creds, CAP_PERFMON) or capable(t.proc.creds, CAP_SYS_ADMIN)


def _copy_attr(t, uattr: int, size: int) -> bytes:
    """bpf_check_uabi + copy_from_bpfptr: a larger attr than ours must be
    zero past our end (E2BIG); a shorter one is zero-extended."""
    if size > PAGE_SIZE:
        raise KernelError(E.E2BIG)
    if size > B.BPF_ATTR_SIZE and any(t.mem.read(uattr + B.BPF_ATTR_SIZE, size - B.BPF_ATTR_SIZE)):
        raise KernelError(E.E2BIG)
    n = min(size, B.BPF_ATTR_SIZE)
    return t.mem.read(uattr, n) + bytes(B.BPF_ATTR_SIZE - n)


def _check_tail(attr: bytes, end: int) -> None:
    """CHECK_ATTR: the fields past a command's last one must be zero."""
    if any(attr[end:]):
        raise KernelError(E.EINVAL)


def _map_file(t, fd: int) -> bpf_maps.MapFile:
    f = t.files.get(fd)
    if not isinstance(f, bpf_maps.MapFile):
        raise KernelError(E.EINVAL)
    return f


def map_create(t, attr: bytes) -> int:
    _check_tail(attr, B.MAP_CREATE_END)
    mtype, ksize, vsize, entries, flags, _inner, _numa, name = B.MAP_CREATE.unpack_from(attr)
    name = name.split(b"\0", 1)
    if len(name) < 2 or not all(c == 0x5F or c == 0x2E or chr(c).isalnum() for c in name[0]):
        raise KernelError(E.EINVAL)         # bpf_obj_name_cpy: [A-Za-z0-9_.], ended within 16 bytes
    m = bpf_maps.create(mtype, ksize, vsize, entries, flags, t.kernel.mem_budget)
    return t.files.install(bpf_maps.MapFile(m, C.O_RDWR), True)


_ELEM_END = {B.BPF_MAP_DELETE_ELEM: B.MAP_DELETE_END, B.BPF_MAP_GET_NEXT_KEY: B.MAP_NEXT_KEY_END}


def map_elem(t, cmd: int, attr: bytes) -> int:
    """The element commands; a map made BPF_F_RDONLY (BPF_F_WRONLY) from
    user space refuses changes (reads) with EPERM, as its fd's mode does."""
    _check_tail(attr, _ELEM_END.get(cmd, B.MAP_ELEM_END))
    fd, _pad, ukey, uvalue, flags = B.MAP_ELEM.unpack_from(attr)
    m = _map_file(t, fd).map
    reads = cmd in (B.BPF_MAP_LOOKUP_ELEM, B.BPF_MAP_GET_NEXT_KEY)
    if m.flags & (B.BPF_F_WRONLY if reads else B.BPF_F_RDONLY):
        raise KernelError(E.EPERM)
    if cmd == B.BPF_MAP_LOOKUP_ELEM:
        if flags & ~B.BPF_F_LOCK:
            raise KernelError(E.EINVAL)
        found = m.lookup(t.mem.read(ukey, m.key_size))
        if found is None:
            raise KernelError(E.ENOENT)
        buf, off = found
        t.mem.write(uvalue, bytes(buf[off:off + m.value_size]))
    elif cmd == B.BPF_MAP_UPDATE_ELEM:
        key = t.mem.read(ukey, m.key_size)
        m.update(key, t.mem.read(uvalue, m.value_size), flags)
    elif cmd == B.BPF_MAP_DELETE_ELEM:
        m.delete(t.mem.read(ukey, m.key_size))
    else:
        key = t.mem.read(ukey, m.key_size) if ukey else None
        t.mem.write(uvalue, m.next_key(key))
    return 0


def prog_load(t, attr: bytes) -> int:
    (ptype, cnt, uinsns, ulicense, level, log_size, ulog, _kver, pflags,
     _name, _ifindex, _attach) = B.PROG_LOAD.unpack_from(attr)
    if pflags:
        printk.printk(printk.INFO, f"bpf: prog_flags {pflags:#x} are not supported")
        raise KernelError(E.EINVAL)
    if ptype != B.BPF_PROG_TYPE_SOCKET_FILTER:
        printk.printk(printk.INFO, f"bpf: program type {ptype} is not supported (socket filters only)")
        raise KernelError(E.EINVAL)
    if not cnt or cnt > (B.BPF_COMPLEXITY_LIMIT_INSNS if bpf_capable(t) else B.BPF_MAXINSNS):
        raise KernelError(E.E2BIG)
    if cnt > COMPLEXITY_LIMIT:                      # the verifier could not walk it all
        printk.printk(printk.INFO, f"bpf: {cnt} instructions: this kernel verifies at most {COMPLEXITY_LIMIT}")
        raise KernelError(E.E2BIG)
    if (level or ulog or log_size) and (log_size < B.BPF_LOG_MIN_SIZE or log_size > 0xFFFFFFFF >> 2
                                        or not level or not ulog or level & ~B.BPF_LOG_MASK):
        raise KernelError(E.EINVAL)
    if not t.mem.read_upto(ulicense, LICENSE_MAX):   # the license: every helper here is GPL-neutral
        raise KernelError(E.EFAULT)
    raw = t.mem.read(uinsns, cnt * B.INSN.size)

    def map_of_fd(fd: int) -> bpf_maps.Map:
        return _map_file(t, fd).map

    processed, err = 0, None
    try:
        prog, processed = load(ptype, raw, map_of_fd, perfmon_capable(t))
    except VerifyError as e:
        err, processed = e, e.processed
    if level:
        text = (f"{err}\n" if err else "") + \
            f"processed {processed} insns (limit {COMPLEXITY_LIMIT}) max_states_per_insn 0 " \
            "total_states 0 peak_states 0 mark_read 0\n"
        data = text.encode()[:log_size - 1] + b"\0"
        t.mem.write(ulog, data)
        if len(text) > log_size - 1:
            raise KernelError(E.ENOSPC)
    if err is not None:
        raise KernelError(err.errno)
    return t.files.install(ProgFile(prog, C.O_RDWR), True)


@syscall("bpf", status=PARTIAL,
         note="BPF_MAP_CREATE (array, hash, ringbuf), MAP_LOOKUP/UPDATE/DELETE_ELEM, "
              "MAP_GET_NEXT_KEY, PROG_LOAD of socket filters (interpreted; no loops, no "
              "bpf-to-bpf calls, map/ringbuf/ktime/prandom helpers); other commands EINVAL")
def sys_bpf(t, cmd, uattr, size, *_):
    cmd &= 0xFFFFFFFF
    if t.kernel.tunables.unprivileged_bpf_disabled and not bpf_capable(t):
        raise KernelError(E.EPERM)
    attr = _copy_attr(t, uattr, size & 0xFFFFFFFF)
    if cmd == B.BPF_MAP_CREATE:
        return map_create(t, attr)
    if cmd in (B.BPF_MAP_LOOKUP_ELEM, B.BPF_MAP_UPDATE_ELEM, B.BPF_MAP_DELETE_ELEM,
               B.BPF_MAP_GET_NEXT_KEY):
        return map_elem(t, cmd, attr)
    if cmd == B.BPF_PROG_LOAD:
        return prog_load(t, attr)
    printk.printk(printk.INFO, f"bpf: command {cmd} is not supported")
    raise KernelError(E.EINVAL)
