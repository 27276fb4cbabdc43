"""System V IPC: shmget/shmat/shmdt/shmctl, semget/semop/semtimedop/semctl,
msgget/msgsnd/msgrcv/msgctl, their checks in Linux's order."""
from __future__ import annotations

import struct

from arch_um import clock
from arch_um.hostfile import MemFile
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_IPC_LOCK, CAP_SYS_RESOURCE
from umlpy.kernel import ipc as I
from umlpy.kernel import mlock
from umlpy.kernel import timekeeping
from umlpy.kernel.cred import capable, need
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.hostas import HostAs
from umlpy.kernel.mm import FileMap, Mm
from umlpy.kernel.timers import after, read_timespec
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import s32, s64

SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC = 0o10000, 0o20000, 0o40000, 0o100000
SHM_HUGETLB = 0o4000
SHM_LOCK, SHM_UNLOCK, SHM_STAT, SHM_INFO, SHM_STAT_ANY = 11, 12, 13, 14, 15
GETPID, GETVAL, GETALL, GETNCNT, GETZCNT, SETVAL, SETALL = 11, 12, 13, 14, 15, 16, 17
SEM_STAT, SEM_INFO, SEM_STAT_ANY = 18, 19, 20
SEM_UNDO = 0x1000
MSG_NOERROR, MSG_EXCEPT, MSG_COPY = 0o10000, 0o20000, 0o40000
MSG_STAT, MSG_INFO, MSG_STAT_ANY = 11, 12, 13
MSGSSZ, MSGSEG = 16, 0xFFFF
SEMUSZ = 20


def _secs(ns: int) -> int:
    return ns // 10**9


def _stat_target(space: I.IpcSpace, ident: int, cmd: int, stat_cmds: tuple[int, int], creds):
    """IPC_STAT finds by id and needs read permission; the *_STAT commands
    find by index, *_STAT_ANY without the permission check (the view
    /proc/sysvipc gives anyone)."""
    o = space.at_index(ident) if cmd in stat_cmds else space.get(ident)
    if cmd != stat_cmds[1]:
        o.check(creds, 4)
    return o


def _owned(space: I.IpcSpace, ident: int, creds) -> I.IpcObject:
    """IPC_SET and IPC_RMID: the object by id, if creds own or created it
    or have CAP_SYS_ADMIN (ipcctl_obtain_check), else EPERM."""
    o = space.get(ident)
    o.may_change(creds)
    return o


# -- shared memory -------------------------------------------------------------

@syscall("shmget")
def sys_shmget(t, key, size, flags, *_):
    key, flags = s32(key), s32(flags)
    ns = I.ipc_of(t.proc)
    pages = (size + C.PAGE_SIZE - 1) // C.PAGE_SIZE

    def validate() -> None:     # newseg
        if size < I.SHMMIN or size > ns.shm_ctlmax:
            raise KernelError(E.EINVAL)
        if ns.shm_tot + pages > ns.shm_ctlall:
            raise KernelError(E.ENOSPC)
        if flags & SHM_HUGETLB or size > I.MAX_LFS_FILESIZE:
            raise KernelError(E.EINVAL)     # no huge pages (no hstate)

    def make(kw) -> I.ShmSegment:
        seg = I.ShmSegment(**kw, size=size, cpid=t.proc.pid, ns=ns, pool=t.kernel.mem_budget.shmem)
        seg.mem = MemFile("SYSV%08x" % (key & 0xFFFFFFFF))
        # whole pages, but never past the largest file size (a segment of
        # nearly 2^63 bytes passes newseg's checks, as on Linux)
        seg.mem.truncate(min(pages * C.PAGE_SIZE, I.MAX_LFS_FILESIZE))
        ns.shm_tot += pages
        return seg

    def more_checks(seg) -> None:
        if seg.size < size:
            raise KernelError(E.EINVAL)
    return ns.shm.lookup_or_create(key, flags, t.proc.creds, make, validate, more_checks).id


def _attachments(proc) -> dict:
    if not hasattr(proc, "shm_attach"):
        proc.shm_attach = {}
    return proc.shm_attach


@syscall("shmat")
def sys_shmat(t, ident, addr, flags, *_):
    if addr & (C.PAGE_SIZE - 1):
        if not flags & SHM_RND:
            raise KernelError(E.EINVAL)
        addr = C.page_down(addr)
    if not addr and flags & SHM_REMAP:
        raise KernelError(E.EINVAL)
    seg = I.ipc_of(t.proc).shm.get(s32(ident))
    seg.check(t.proc.creds, 4 if flags & SHM_RDONLY else 6)
    size = C.page_up(seg.size)
    if addr:
        Mm.check_fixed(t.proc.creds, addr, size)
    prot = C.PROT_READ | (0 if flags & SHM_RDONLY else C.PROT_WRITE) | (C.PROT_EXEC if flags & SHM_EXEC else 0)
    mflags = C.MAP_SHARED | (C.MAP_FIXED if addr and flags & SHM_REMAP else
                             C.MAP_FIXED_NOREPLACE if addr else 0)
    has = HostAs(t)
    tfd = has.open_kernel_fd(seg.memfile().fd, C.O_RDONLY if flags & SHM_RDONLY else C.O_RDWR)
    try:
        r = has.call("mmap", addr, size, prot, mflags, tfd, 0)
    finally:
        has.call("close", tfd)
    if -4096 < r < 0:
        raise KernelError(E.EINVAL if -r == E.EEXIST else -r)
    mm = t.proc.mm
    mm.add(r, r + size, False)
    mm.map_file(r, r + size, FileMap(seg, r, True, not flags & SHM_RDONLY))
    _attachments(t.proc)[r] = seg
    seg.nattch += 1
    seg.lpid = t.proc.pid
    seg.atime = timekeeping.realtime_seconds_ns()
    mlock.after_map(t, r, r + size, 0)
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


def _shm_lock(t, ns: I.Ipc, seg: I.ShmSegment, cmd: int) -> None:
    """shmctl_do_lock: the owner (or CAP_IPC_LOCK) may lock, within
    RLIMIT_MEMLOCK for its user's locked segments; SHM_LOCKED shows in
    the mode.  Locking is the kernel's bookkeeping, as mlock's."""
    proc = t.proc
    creds = proc.creds
    limit = proc.rlimit(C.RLIMIT_MEMLOCK)[0]
    if not capable(creds, CAP_IPC_LOCK):
        if not seg.is_owner(creds) or cmd == SHM_LOCK and limit == 0:
            raise KernelError(E.EPERM)
    if cmd == SHM_LOCK:
        if seg.mode & I.SHM_LOCKED:
            return
        uid = creds.euid
        locked = ns.shm_locked.get(uid, 0) + seg.pages
        if limit != C.RLIM_INFINITY and locked > limit >> C.PAGE_SHIFT and not capable(creds, CAP_IPC_LOCK):
            raise KernelError(E.ENOMEM)
        ns.shm_locked[uid] = locked
        seg.lock_uid = uid
        seg.mode |= I.SHM_LOCKED
    elif seg.mode & I.SHM_LOCKED:
        ns.shm_locked[seg.lock_uid] -= seg.pages
        seg.lock_uid = -1
        seg.mode &= ~I.SHM_LOCKED


@syscall("shmctl")
def sys_shmctl(t, ident, cmd, buf, *_):
    ident, cmd = s32(ident), s32(cmd) & ~I.IPC_64
    if cmd < 0 or ident < 0:
        raise KernelError(E.EINVAL)
    ns = I.ipc_of(t.proc)
    space = ns.shm
    creds = t.proc.creds
    if cmd == I.IPC_INFO:        # struct shminfo64
        t.mem.write(buf, struct.pack("<9Q", ns.shm_ctlmax, I.SHMMIN, space.limit, space.limit,
                                     ns.shm_ctlall, 0, 0, 0, 0))
        return space.max_index()
    if cmd == SHM_INFO:         # struct shm_info: what is in use
        rss = sum(seg.rss_pages() for seg in space.by_index.values())
        t.mem.write(buf, struct.pack("<i4x5Q", len(space.by_index), ns.shm_tot, rss, 0, 0, 0))
        return space.max_index()
    if cmd in (I.IPC_STAT, SHM_STAT, SHM_STAT_ANY):
        seg = _stat_target(space, ident, cmd, (SHM_STAT, SHM_STAT_ANY), creds)
        data = seg.pack_perm() + struct.pack("<QqqqiiQQQ", seg.size, _secs(seg.atime), _secs(seg.dtime),
                                             _secs(seg.ctime), t.kernel.procs.vnr(t.proc, seg.cpid),
                                             t.kernel.procs.vnr(t.proc, seg.lpid), seg.nattch, 0, 0)
        t.mem.write(buf, data)
        return 0 if cmd == I.IPC_STAT else seg.id
    if cmd == I.IPC_SET:
        raw = t.mem.read(buf, 48)
        _owned(space, ident, creds).set_perm(raw)
        return 0
    if cmd == I.IPC_RMID:
        ns.remove_shm(_owned(space, ident, creds))
        return 0
    if cmd in (SHM_LOCK, SHM_UNLOCK):
        _shm_lock(t, ns, space.get(ident), cmd)
        return 0
    raise KernelError(E.EINVAL)


# -- semaphores ----------------------------------------------------------------

@syscall("semget")
def sys_semget(t, key, nsems, flags, *_):
    key, nsems, flags = s32(key), s32(nsems), s32(flags)
    ns = I.ipc_of(t.proc)
    semmsl, semmns, _opm, _mni = ns.sem_ctls
    if not 0 <= nsems <= semmsl:
        raise KernelError(E.EINVAL)

    def validate() -> None:     # newary
        if not nsems:
            raise KernelError(E.EINVAL)
        if ns.used_sems + nsems > semmns:
            raise KernelError(E.ENOSPC)

    def make(kw) -> I.SemSet:
        ns.used_sems += nsems
        return I.SemSet(**kw, values=[0] * nsems, pids=[0] * nsems)

    def more_checks(s) -> None:
        if nsems > len(s.values):
            raise KernelError(E.EINVAL)
    return ns.sem.lookup_or_create(key, flags, t.proc.creds, make, validate, more_checks).id


def _undo(proc) -> dict:
    if not hasattr(proc, "sem_undo"):
        proc.sem_undo = {}
    return proc.sem_undo


def do_semop(t, ident: int, sops: int, nsops: int, timeout: int, deadline: int | None = None) -> int:
    """semop/semtimedop, their checks in Linux's order (do_semtimedop);
    timeout: the guest's timespec (0 for none), or else deadline: the end
    of a wait a checkpoint carries on (SemWaitOn), its timespec read when
    it was first made."""
    nsops &= 0xFFFFFFFF
    ident = s32(ident)
    ns = I.ipc_of(t.proc)
    if nsops < 1 or ident < 0:
        raise KernelError(E.EINVAL)
    if nsops > ns.sem_ctls[2]:
        raise KernelError(E.E2BIG)
    raw = t.mem.read(sops, 6 * nsops)
    ops = [struct.unpack_from("<Hhh", raw, 6 * i) for i in range(nsops)]
    if timeout:
        deadline = after(read_timespec(t, timeout))
    s = ns.sem.get(ident)
    if max(num for num, _, _ in ops) >= len(s.values):
        raise KernelError(E.EFBIG)
    s.check(t.proc.creds, 6 if any(op for _, op, _ in ops) else 4)

    def attempt() -> int:
        if s.deleted:
            raise KernelError(E.EIDRM)
        values = s.values
        vals: dict[int, int] = {}       # the values the operations make, applied in order
        for num, op, flg in ops:
            v = vals.get(num, values[num])
            if op > 0:
                if v + op > I.SEMVMX:
                    raise KernelError(E.ERANGE)
                vals[num] = v + op
            elif op < 0:
                if v + op < 0:
                    return block(num, op, flg)
                vals[num] = v + op
            elif v != 0:
                return block(num, op, flg)
        undo = _undo(t.proc)
        for num, op, flg in ops:
            s.pids[num] = t.proc.pid
            if flg & SEM_UNDO and op:
                undo[(s.id, num)] = undo.get((s.id, num), 0) - op
        for num, v in vals.items():
            s.set_value(num, v)
        s.otime = timekeeping.realtime_seconds_ns()
        return 0

    def block(num: int, op: int, flg: int) -> int:
        if flg & I.IPC_NOWAIT:
            raise KernelError(E.EAGAIN)
        if deadline is not None and clock.monotonic_ns() >= deadline:
            raise KernelError(E.EAGAIN)
        # any signal ends it, a stop too (do_semtimedop: signal(7), never restarted)
        raise Block(s.wait_queue(num, op == 0), deadline=deadline, retry=attempt, on_timeout=attempt,
                    restart=E.EINTR,
                    # (a block only for a timed wait, which a checkpoint carries)
                    restart_fn=None if deadline is None else SemWaitOn(t, ident, sops, nsops, deadline))
    return attempt()


class SemWaitOn:
    """How a checkpoint carries a semtimedop on to its end: the call made
    again, its operations read again, to the same end (a signal ends the
    wait with EINTR, never restarted: this goes with restart_syscall only
    after a restore, so that the wait keeps its time left)."""
    __slots__ = ("t", "ident", "sops", "nsops", "deadline")

    def __init__(self, t, ident: int, sops: int, nsops: int, deadline: int) -> None:
        self.t, self.ident, self.sops, self.nsops, self.deadline = t, ident, sops, nsops, deadline

    def __call__(self) -> int:
        return do_semop(self.t, self.ident, self.sops, self.nsops, 0, self.deadline)


@syscall("semop")
def sys_semop(t, ident, sops, nsops, *_):
    return do_semop(t, ident, sops, nsops, 0)


@syscall("semtimedop")
def sys_semtimedop(t, ident, sops, nsops, ts, *_):
    return do_semop(t, ident, sops, nsops, ts)


@syscall("semctl")
def sys_semctl(t, ident, num, cmd, arg, *_):
    ident, cmd = s32(ident), s32(cmd) & ~I.IPC_64
    if ident < 0:
        raise KernelError(E.EINVAL)
    ns = I.ipc_of(t.proc)
    space = ns.sem
    if cmd in (I.IPC_INFO, SEM_INFO):   # struct seminfo: limits, SEM_INFO with use in semusz/semaem
        semmsl, semmns, semopm, semmni = ns.sem_ctls
        used = (len(space.by_index), ns.used_sems) if cmd == SEM_INFO else (SEMUSZ, I.SEMVMX)
        t.mem.write(arg, struct.pack("<10i", I.SEMMNS, semmni, semmns, I.SEMMNS, semmsl, semopm,
                                     I.SEMOPM, used[0], I.SEMVMX, used[1]))
        return space.max_index()
    creds = t.proc.creds
    if cmd in (I.IPC_STAT, SEM_STAT, SEM_STAT_ANY):
        s = _stat_target(space, ident, cmd, (SEM_STAT, SEM_STAT_ANY), creds)
        t.mem.write(arg, s.pack_perm() + struct.pack("<QQQQQQQ", _secs(s.otime), 0, _secs(s.ctime), 0,
                                                     len(s.values), 0, 0))
        return 0 if cmd == I.IPC_STAT else s.id
    if cmd == I.IPC_SET:
        raw = t.mem.read(arg, 48)
        _owned(space, ident, creds).set_perm(raw)
        return 0
    if cmd == I.IPC_RMID:
        s = _owned(space, ident, creds)
        space.remove(s)
        ns.used_sems -= len(s.values)
        I.forget_undo(t.kernel.procs, ns, s.id)
        return 0
    if cmd == SETVAL:           # semctl_setval
        v = s32(arg)
        if not 0 <= v <= I.SEMVMX:
            raise KernelError(E.ERANGE)
        s = space.get(ident)
        if not 0 <= num < len(s.values):
            raise KernelError(E.EINVAL)
        s.check(creds, 2)
        s.set_value(num, v)
        s.pids[num] = t.proc.pid        # the last process to change it
        I.forget_undo(t.kernel.procs, ns, s.id, num)
    elif cmd in (GETVAL, GETPID, GETNCNT, GETZCNT, GETALL, SETALL):    # semctl_main
        s = space.get(ident)
        n = len(s.values)
        s.check(creds, 2 if cmd == SETALL else 4)
        if cmd == GETALL:
            t.mem.write(arg, struct.pack(f"<{n}H", *s.values))
            return 0
        if cmd == SETALL:
            vals = list(struct.unpack(f"<{n}H", t.mem.read(arg, 2 * n)))
            if any(v > I.SEMVMX for v in vals):
                raise KernelError(E.ERANGE)
            for i, v in enumerate(vals):
                s.set_value(i, v)
            s.pids = [t.proc.pid] * n
            I.forget_undo(t.kernel.procs, ns, s.id)
        elif not 0 <= num < n:
            raise KernelError(E.EINVAL)
        elif cmd == GETVAL:
            return s.values[num]
        elif cmd == GETPID:
            return t.kernel.procs.vnr(t.proc, s.pids[num])
        else:
            return s.waiting(num, cmd == GETZCNT)
    else:
        raise KernelError(E.EINVAL)
    s.ctime = timekeeping.realtime_seconds_ns()
    return 0


# -- message queues ----------------------------------------------------------------

@syscall("msgget")
def sys_msgget(t, key, flags, *_):
    ns = I.ipc_of(t.proc)
    return ns.msg.lookup_or_create(s32(key), s32(flags), t.proc.creds,
                                   lambda kw: I.msg_queue(t.kernel.mem_budget, **kw, qbytes=ns.msg_ctlmnb)).id


@syscall("msgsnd")
def sys_msgsnd(t, ident, msgp, size, flags, *_):
    (mtype,) = struct.unpack("<q", t.mem.read(msgp, 8))
    ns = I.ipc_of(t.proc)
    size = s64(size)
    if size < 0 or size > ns.msg_ctlmax or s32(ident) < 0 or mtype < 1:
        raise KernelError(E.EINVAL)
    text = t.mem.read(msgp + 8, size)
    q = ns.msg.get(s32(ident))
    q.check(t.proc.creds, 2)

    def attempt() -> int:
        if q.deleted:
            raise KernelError(E.EIDRM)
        if q.cbytes + len(text) > q.qbytes or len(q.msgs) + 1 > q.qbytes:
            if flags & I.IPC_NOWAIT:
                raise KernelError(E.EAGAIN)
            raise Block(q.senders, retry=attempt, restart=E.ERESTARTNOHAND)
        q.lspid, q.stime = t.proc.pid, timekeeping.realtime_seconds_ns()
        if not q.hand_over(mtype, text, t.proc.pid):
            q.push(mtype, text)
        return 0
    return attempt()


def _pick(msgs: list, mtype: int, flags: int) -> int | None:
    """find_msg: the index of the message msgrcv takes (MSG_COPY: the
    mtype-th, counting from 0)."""
    if flags & MSG_COPY:
        return mtype if 0 <= mtype < len(msgs) else None
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
    size, mtype = s64(size), s64(mtype)
    if s32(ident) < 0 or size < 0:
        raise KernelError(E.EINVAL)
    ns = I.ipc_of(t.proc)
    copy_max = -1
    if flags & MSG_COPY:
        # a copy of the mtype-th message, left in the queue: never waits
        if flags & MSG_EXCEPT or not flags & I.IPC_NOWAIT:
            raise KernelError(E.EINVAL)
        copy_max = min(size, ns.msg_ctlmax)
    q = ns.msg.get(s32(ident))
    q.check(t.proc.creds, 4)
    me = I.MsgReceiver(mtype, bool(flags & MSG_EXCEPT), size, bool(flags & MSG_NOERROR))

    def attempt() -> int:
        if me.got is not None:          # a sender handed it over while it slept
            ty, text = me.got
        elif me.err:
            raise KernelError(me.err)
        elif q.deleted:
            raise KernelError(E.EIDRM)
        else:
            i = _pick(q.msgs, mtype, flags)
            if i is None:
                if flags & I.IPC_NOWAIT:
                    raise KernelError(E.ENOMSG)
                q.sleep(me)
                raise Block(me.wq, retry=attempt, restart=E.ERESTARTNOHAND,
                            on_interrupt=lambda: q.leave(me))
            ty, text = q.msgs[i]
            if len(text) > size and not flags & MSG_NOERROR:
                raise KernelError(E.E2BIG)
            if flags & MSG_COPY:
                if len(text) > copy_max:
                    raise KernelError(E.EINVAL)
            else:
                q.take(i)
                q.lrpid, q.rtime = t.proc.pid, timekeeping.realtime_seconds_ns()
                q.senders.wake_all()
        t.mem.write(msgp, struct.pack("<q", ty) + text[:size])
        return min(len(text), size)
    return attempt()


@syscall("msgctl")
def sys_msgctl(t, ident, cmd, buf, *_):
    ident, cmd = s32(ident), s32(cmd) & ~I.IPC_64
    if ident < 0 or cmd < 0:
        raise KernelError(E.EINVAL)
    ns = I.ipc_of(t.proc)
    space = ns.msg
    if cmd in (I.IPC_INFO, MSG_INFO):   # struct msginfo: limits, MSG_INFO with what is queued
        if cmd == MSG_INFO:
            qs = space.by_index.values()
            pool, nmap, tql = len(qs), sum(len(q.msgs) for q in qs), sum(q.cbytes for q in qs)
        else:
            pool, nmap, tql = I.MSGMNI * I.MSGMNB // 1024, I.MSGMNB, I.MSGMNB
        t.mem.write(buf, struct.pack("<7iH2x", pool, nmap, ns.msg_ctlmax, ns.msg_ctlmnb, space.limit,
                                     MSGSSZ, tql, MSGSEG))
        return space.max_index()
    creds = t.proc.creds
    if cmd in (I.IPC_STAT, MSG_STAT, MSG_STAT_ANY):
        q = _stat_target(space, ident, cmd, (MSG_STAT, MSG_STAT_ANY), creds)
        t.mem.write(buf, q.pack_perm() + struct.pack("<qqqQQQiiQQ", _secs(q.stime), _secs(q.rtime),
                                                     _secs(q.ctime), q.cbytes, len(q.msgs), q.qbytes,
                                                     t.kernel.procs.vnr(t.proc, q.lspid),
                                                     t.kernel.procs.vnr(t.proc, q.lrpid), 0, 0))
        return 0 if cmd == I.IPC_STAT else q.id
    if cmd == I.IPC_SET:
        raw = t.mem.read(buf, 96)
        q = _owned(space, ident, creds)
        (qbytes,) = struct.unpack_from("<Q", raw, 88)
        if qbytes > ns.msg_ctlmnb:
            need(creds, CAP_SYS_RESOURCE)
        q.set_perm(raw)
        q.qbytes = qbytes
        q.senders.wake_all()
        return 0
    if cmd == I.IPC_RMID:
        q = _owned(space, ident, creds)
        space.remove(q)
        q.free()
        return 0
    raise KernelError(E.EINVAL)
