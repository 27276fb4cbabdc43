"""System V IPC: shmget/shmat/shmdt/shmctl, semget/semop/semtimedop/semctl,
msgget/msgsnd/msgrcv/msgctl."""
from __future__ import annotations

import struct

from arch_um import clock
from arch_um.hostfile import MemFile
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_SYS_RESOURCE
from umlpy.kernel import ipc as I
from umlpy.kernel.cred import need
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.exec import HostAs
from umlpy.kernel.timers import after, read_timespec
from umlpy.kernel.mm import Mm
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import s32, s64

SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC = 0o10000, 0o20000, 0o40000, 0o100000
SHM_STAT, SHM_INFO, SHM_LOCK, SHM_UNLOCK = 13, 14, 11, 12
GETPID, GETVAL, GETALL, GETNCNT, GETZCNT, SETVAL, SETALL, SEM_STAT, SEM_INFO = 11, 12, 13, 14, 15, 16, 17, 18, 19
SEM_UNDO = 0x1000
SEMOPM = 500            # operations per semop call
MSG_NOERROR, MSG_EXCEPT, MSG_COPY = 0o10000, 0o20000, 0o40000
MSG_STAT, MSG_INFO = 11, 12
SHMMIN = 1
SHMMAX = (1 << 63) - (1 << 24)


def _ipc(t) -> I.Ipc:
    """The caller's IPC namespace's tables."""
    return t.proc.ns.ipc.sysv


def _secs(ns: int) -> int:
    return ns // 10**9


# -- shared memory -------------------------------------------------------------

@syscall("shmget")
def sys_shmget(t, key, size, flags, *_):
    key, flags = s32(key), s32(flags)

    def make(kw):
        if size < SHMMIN or size > SHMMAX:
            raise KernelError(E.EINVAL)
        seg = I.ShmSegment(**kw, size=size, cpid=t.proc.pid)
        seg.mem = MemFile("SYSV%08x" % (key & 0xFFFFFFFF))
        seg.mem.truncate(C.page_up(size))
        return seg
    seg = _ipc(t).shm.lookup_or_create(key, flags, t.proc.creds, make)
    if size > seg.size:
        raise KernelError(E.EINVAL)
    return seg.id


def _attachments(proc) -> dict:
    if not hasattr(proc, "shm_attach"):
        proc.shm_attach = {}
    return proc.shm_attach


@syscall("shmat")
def sys_shmat(t, ident, addr, flags, *_):
    seg = _ipc(t).shm.get(s32(ident))
    seg.check(t.proc.creds, 4 if flags & SHM_RDONLY else 6)
    if addr & (C.PAGE_SIZE - 1):
        if not flags & SHM_RND:
            raise KernelError(E.EINVAL)
        addr = C.page_down(addr)
    size = C.page_up(seg.size)
    if addr:
        Mm.check_range(addr, size)
    prot = C.PROT_READ | (0 if flags & SHM_RDONLY else C.PROT_WRITE) | (C.PROT_EXEC if flags & SHM_EXEC else 0)
    mflags = C.MAP_SHARED | (C.MAP_FIXED if addr and flags & SHM_REMAP else
                             C.MAP_FIXED_NOREPLACE if addr else 0)
    has = HostAs(t)
    tfd = has.open_kernel_fd(seg.mem.fd, C.O_RDONLY if flags & SHM_RDONLY else C.O_RDWR)
    try:
        r = has.call("mmap", addr, size, prot, mflags, tfd, 0)
    finally:
        has.call("close", tfd)
    if -4096 < r < 0:
        raise KernelError(E.EINVAL if -r == E.EEXIST else -r)
    t.proc.mm.add(r, r + size, False)
    _attachments(t.proc)[r] = seg
    seg.nattch += 1
    seg.lpid = t.proc.pid
    seg.atime = clock.realtime_ns()
    return r


@syscall("shmdt")
def sys_shmdt(t, addr, *_):
    seg = _attachments(t.proc).get(addr)
    if seg is None:
        raise KernelError(E.EINVAL)
    size = C.page_up(seg.size)
    HostAs(t).call("munmap", addr, size)
    t.proc.mm.remove(addr, addr + size)
    I.detach(t.proc, addr, seg)
    return 0


@syscall("shmctl", status=PARTIAL, note="no SHM_STAT_ANY; SHM_LOCK/UNLOCK accepted")
def sys_shmctl(t, ident, cmd, buf, *_):
    cmd &= ~I.IPC_64
    space = _ipc(t).shm
    if cmd == I.IPC_INFO:        # struct shminfo64
        t.mem.write(buf, struct.pack("<9Q", I.SHMALL_BYTES, SHMMIN, I.SHMMNI, I.SHMMNI,
                                     I.SHMALL_BYTES // C.PAGE_SIZE, 0, 0, 0, 0))
        return max(space.by_index, default=0)
    if cmd == SHM_INFO:         # struct shm_info: what is in use
        pages = sum(C.page_up(seg.size) // C.PAGE_SIZE for seg in space.by_index.values())
        t.mem.write(buf, struct.pack("<i4x5Q", len(space.by_index), pages, pages, 0, 0, 0))
        return max(space.by_index, default=0)
    seg = space.by_index.get(s32(ident)) if cmd == SHM_STAT else space.get(s32(ident))
    if seg is None:
        raise KernelError(E.EINVAL)
    if cmd in (I.IPC_STAT, SHM_STAT):
        seg.check(t.proc.creds, 4)
        data = seg.pack_perm() + struct.pack("<QqqqiiQQQ", seg.size, _secs(seg.atime), _secs(seg.dtime),
                                             _secs(seg.ctime), seg.cpid, seg.lpid, seg.nattch, 0, 0)
        t.mem.write(buf, data)
        return seg.id if cmd == SHM_STAT else 0
    if cmd == I.IPC_SET:
        seg.may_change(t.proc.creds)
        seg.set_perm(t.mem.read(buf, 48))
        seg.ctime = clock.realtime_ns()
        return 0
    if cmd == I.IPC_RMID:
        seg.may_change(t.proc.creds)
        space.remove(seg)
        if seg.nattch == 0 and seg.mem is not None:
            seg.mem.close()
            seg.mem = None
        return 0
    if cmd in (SHM_LOCK, SHM_UNLOCK):
        return 0
    raise KernelError(E.EINVAL)


# -- semaphores ----------------------------------------------------------------

@syscall("semget")
def sys_semget(t, key, nsems, flags, *_):
    key, nsems, flags = s32(key), s32(nsems), s32(flags)

    def make(kw):
        if not 0 < nsems <= I.SEMMSL:
            raise KernelError(E.EINVAL)
        return I.SemSet(**kw, values=[0] * nsems, pids=[0] * nsems)
    s = _ipc(t).sem.lookup_or_create(key, flags, t.proc.creds, make)
    if nsems > len(s.values):
        raise KernelError(E.EINVAL)
    return s.id


def _undo(proc) -> dict:
    if not hasattr(proc, "sem_undo"):
        proc.sem_undo = {}
    return proc.sem_undo


def do_semop(t, ident: int, sops: int, nsops: int, timeout: int) -> int:
    """semop/semtimedop, their checks in Linux's order (do_semtimedop)."""
    nsops &= 0xFFFFFFFF
    if nsops < 1:
        raise KernelError(E.EINVAL)
    if nsops > SEMOPM:
        raise KernelError(E.E2BIG)
    raw = t.mem.read(sops, 6 * nsops)
    ops = [struct.unpack_from("<Hhh", raw, 6 * i) for i in range(nsops)]
    deadline = after(read_timespec(t, timeout)) if timeout else None
    s = _ipc(t).sem.get(s32(ident))
    if max(num for num, _, _ in ops) >= len(s.values):
        raise KernelError(E.EFBIG)
    s.check(t.proc.creds, 6 if any(op for _, op, _ in ops) else 4)

    def attempt() -> int:
        if s.deleted:
            raise KernelError(E.EIDRM)
        vals = list(s.values)
        for num, op, flg in ops:
            if op > 0:
                if vals[num] + op > I.SEMVMX:
                    raise KernelError(E.ERANGE)
                vals[num] += op
            elif op < 0:
                if vals[num] + op < 0:
                    return block(flg)
                vals[num] += op
            elif vals[num] != 0:
                return block(flg)
        s.values = vals
        undo = _undo(t.proc)
        for num, op, flg in ops:
            s.pids[num] = t.proc.pid
            if flg & SEM_UNDO and op:
                undo[(s.id, num)] = undo.get((s.id, num), 0) - op
        s.otime = clock.realtime_ns()
        s.wq.wake_all()
        return 0

    def block(flg: int) -> int:
        if flg & I.IPC_NOWAIT:
            raise KernelError(E.EAGAIN)
        if deadline is not None and clock.monotonic_ns() >= deadline:
            raise KernelError(E.EAGAIN)
        raise Block(s.wq, deadline=deadline, retry=attempt, on_timeout=attempt,
                    restart=E.ERESTARTNOHAND)
    return attempt()


@syscall("semop")
def sys_semop(t, ident, sops, nsops, *_):
    return do_semop(t, ident, sops, nsops, 0)


@syscall("semtimedop")
def sys_semtimedop(t, ident, sops, nsops, ts, *_):
    return do_semop(t, ident, sops, nsops, ts)


@syscall("semctl", status=PARTIAL, note="no SEM_STAT_ANY")
def sys_semctl(t, ident, num, cmd, arg, *_):
    cmd &= ~I.IPC_64
    space = _ipc(t).sem
    if cmd in (I.IPC_INFO, SEM_INFO):   # struct seminfo: limits, SEM_INFO with use in semusz/semaem
        sems = sum(len(s.values) for s in space.by_index.values())
        used = (len(space.by_index), sems) if cmd == SEM_INFO else (20, I.SEMVMX)
        semmns = I.SEMMNI * I.SEMMSL
        t.mem.write(arg, struct.pack("<10i", semmns, I.SEMMNI, semmns, semmns, I.SEMMSL, SEMOPM,
                                     SEMOPM, used[0], I.SEMVMX, used[1]))
        return max(space.by_index, default=0)
    s = space.by_index.get(s32(ident)) if cmd == SEM_STAT else space.get(s32(ident))
    if s is None:
        raise KernelError(E.EINVAL)
    creds = t.proc.creds
    n = len(s.values)
    if cmd in (I.IPC_STAT, SEM_STAT):
        s.check(creds, 4)
        t.mem.write(arg, s.pack_perm() + struct.pack("<QQQQQQQ", _secs(s.otime), 0, _secs(s.ctime), 0, n, 0, 0))
        return s.id if cmd == SEM_STAT else 0
    if cmd == I.IPC_SET:
        s.may_change(creds)
        s.set_perm(t.mem.read(arg, 48))
        return 0
    if cmd == I.IPC_RMID:
        s.may_change(creds)
        space.remove(s)
        return 0
    if cmd in (GETVAL, GETPID, GETNCNT, GETZCNT, SETVAL) and not 0 <= num < n:
        raise KernelError(E.EINVAL)
    if cmd == GETVAL:
        s.check(creds, 4)
        return s.values[num]
    if cmd == GETPID:
        s.check(creds, 4)
        return s.pids[num]
    if cmd in (GETNCNT, GETZCNT):
        s.check(creds, 4)
        return len(s.wq.waiters)
    if cmd == GETALL:
        s.check(creds, 4)
        t.mem.write(arg, struct.pack(f"<{n}H", *s.values))
        return 0
    if cmd == SETVAL:
        s.check(creds, 2)
        v = s32(arg)
        if not 0 <= v <= I.SEMVMX:
            raise KernelError(E.ERANGE)
        s.values[num] = v
    elif cmd == SETALL:
        s.check(creds, 2)
        vals = list(struct.unpack(f"<{n}H", t.mem.read(arg, 2 * n)))
        if any(v > I.SEMVMX for v in vals):
            raise KernelError(E.ERANGE)
        s.values = vals
    else:
        raise KernelError(E.EINVAL)
    s.ctime = clock.realtime_ns()
    s.wq.wake_all()
    return 0


# -- message queues ----------------------------------------------------------------

@syscall("msgget")
def sys_msgget(t, key, flags, *_):
    return _ipc(t).msg.lookup_or_create(s32(key), s32(flags), t.proc.creds,
                                        lambda kw: I.MsgQueue(**kw)).id


@syscall("msgsnd")
def sys_msgsnd(t, ident, msgp, size, flags, *_):
    q = _ipc(t).msg.get(s32(ident))
    size = s64(size)
    if size < 0 or size > I.MSGMAX:
        raise KernelError(E.EINVAL)
    q.check(t.proc.creds, 2)
    (mtype,) = struct.unpack("<q", t.mem.read(msgp, 8))
    if mtype < 1:
        raise KernelError(E.EINVAL)
    text = t.mem.read(msgp + 8, size)

    def attempt() -> int:
        if q.deleted:
            raise KernelError(E.EIDRM)
        if q.cbytes + len(text) > q.qbytes:
            if flags & I.IPC_NOWAIT:
                raise KernelError(E.EAGAIN)
            raise Block(q.wq, retry=attempt, restart=E.ERESTARTNOHAND)
        q.msgs.append((mtype, text))
        q.lspid, q.stime = t.proc.pid, clock.realtime_ns()
        q.wq.wake_all()
        return 0
    return attempt()


def _pick(msgs: list, mtype: int, flags: int) -> int | None:
    if mtype == 0:
        return 0 if msgs else None
    if mtype > 0:
        for i, (ty, _) in enumerate(msgs):
            if (ty != mtype) if flags & MSG_EXCEPT else (ty == mtype):
                return i
        return None
    best = None
    for i, (ty, _) in enumerate(msgs):
        if ty <= -mtype and (best is None or ty < msgs[best][0]):
            best = i
    return best


@syscall("msgrcv")
def sys_msgrcv(t, ident, msgp, size, mtype, flags, *_):
    q = _ipc(t).msg.get(s32(ident))
    size = s64(size)
    if size < 0:
        raise KernelError(E.EINVAL)
    q.check(t.proc.creds, 4)
    mtype = s64(mtype)

    def attempt() -> int:
        if q.deleted:
            raise KernelError(E.EIDRM)
        i = _pick(q.msgs, mtype, flags)
        if i is None:
            if flags & I.IPC_NOWAIT:
                raise KernelError(E.ENOMSG)
            raise Block(q.wq, retry=attempt, restart=E.ERESTARTNOHAND)
        ty, text = q.msgs[i]
        if len(text) > size and not flags & MSG_NOERROR:
            raise KernelError(E.E2BIG)
        del q.msgs[i]
        q.lrpid, q.rtime = t.proc.pid, clock.realtime_ns()
        t.mem.write(msgp, struct.pack("<q", ty) + text[:size])
        q.wq.wake_all()
        return min(len(text), size)
    return attempt()


@syscall("msgctl", status=PARTIAL, note="no MSG_STAT_ANY")
def sys_msgctl(t, ident, cmd, buf, *_):
    cmd &= ~I.IPC_64
    space = _ipc(t).msg
    if cmd in (I.IPC_INFO, MSG_INFO):   # struct msginfo: limits, MSG_INFO with what is queued
        if cmd == MSG_INFO:
            qs = space.by_index.values()
            pool, nmap, tql = len(qs), sum(len(q.msgs) for q in qs), sum(q.cbytes for q in qs)
        else:
            pool, nmap, tql = I.MSGMNI * I.MSGMNB // 1024, I.MSGMNB, I.MSGMNB
        t.mem.write(buf, struct.pack("<7iH2x", pool, nmap, I.MSGMAX, I.MSGMNB, I.MSGMNI, 16, tql, 0xFFFF))
        return max(space.by_index, default=0)
    q = space.by_index.get(s32(ident)) if cmd == MSG_STAT else space.get(s32(ident))
    if q is None:
        raise KernelError(E.EINVAL)
    creds = t.proc.creds
    if cmd in (I.IPC_STAT, MSG_STAT):
        q.check(creds, 4)
        t.mem.write(buf, q.pack_perm() + struct.pack("<qqqQQQiiQQ", _secs(q.stime), _secs(q.rtime),
                                                     _secs(q.ctime), q.cbytes, len(q.msgs), q.qbytes,
                                                     q.lspid, q.lrpid, 0, 0))
        return q.id if cmd == MSG_STAT else 0
    if cmd == I.IPC_SET:
        q.may_change(creds)
        raw = t.mem.read(buf, 96)
        (qbytes,) = struct.unpack_from("<Q", raw, 88)
        if qbytes > I.MSGMNB:
            need(creds, CAP_SYS_RESOURCE)
        q.set_perm(raw)
        q.qbytes = qbytes
        q.wq.wake_all()
        return 0
    if cmd == I.IPC_RMID:
        q.may_change(creds)
        space.remove(q)
        return 0
    raise KernelError(E.EINVAL)
