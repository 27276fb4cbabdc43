"""System V IPC objects: shared memory segments, semaphore sets, message queues.

The tables are an IPC namespace's (kernel/nsproxy.py).  Each object has
Linux's ipc64_perm (key, owner, creator, mode, sequence) and is found by key (shmget/semget/msgget) or by
id.  Shared memory segments are host memfds, attached with injected mmap
like any page-cache file; waits (semop, msgsnd/msgrcv) park on the object's
wait queue and re-check, as every blocking syscall here does.

The namespace's limits are Linux's defaults and its sysctls
(/proc/sys/kernel/shm*, msg*, sem): they can be read, changed by root and
are honoured.  /proc/sysvipc lists every object in Linux's format.
"""
from __future__ import annotations

import struct
from itertools import chain
from dataclasses import dataclass, field

from arch_um.hostfile import MemFile
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_IPC_OWNER, CAP_SYS_ADMIN
from umlpy.kernel import timekeeping
from umlpy.kernel.cred import NO_ID, capable
from umlpy.kernel.errors import KernelError
from umlpy.kernel.mm import Charge, MemBudget, kmalloc_size
from umlpy.kernel.shmem import ShmemPool
from umlpy.kernel.wait import WaitQueue

IPC_PRIVATE = 0
IPC_CREAT = 0o1000
IPC_EXCL = 0o2000
IPC_NOWAIT = 0o4000
IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO = 0, 1, 2, 3
IPC_64 = 0x100
SHM_DEST, SHM_LOCKED = 0o1000, 0o2000      # shm_perm.mode flags
_PERM = struct.Struct("<iIIIIHHHH4xQQ")
IPCMNI = 32768                  # ids: index below this, times the sequence number
SEQ_MULTIPLIER = IPCMNI
IPCID_SEQ_MAX = 0x7FFFFFFF >> 15
IPC_MIN_CYCLE = 64             # RADIX_TREE_MAP_SIZE
ULONG_MAX = (1 << 64) - 1
MAX_LFS_FILESIZE = (1 << 63) - 1
# Linux's defaults (include/uapi/linux/{shm,sem,msg}.h)
SHMMIN = 1
SHMMNI = 4096
SHMMAX = SHMALL = ULONG_MAX - (1 << 24)
SEMMNI, SEMMSL, SEMOPM, SEMVMX = 32000, 32000, 500, 32767
SEMMNS = SEMMNI * SEMMSL
MSGMNI, MSGMAX, MSGMNB = 32000, 8192, 16384


@dataclass
class IpcObject:
    key: int
    uid: int
    gid: int
    cuid: int
    cgid: int
    mode: int
    seq: int = 0
    index: int = 0
    deleted: bool = False
    ctime: int = field(default_factory=timekeeping.realtime_seconds_ns)

    @property
    def id(self) -> int:
        return self.seq * SEQ_MULTIPLIER + self.index

    def pack_perm(self) -> bytes:
        return _PERM.pack(self.key, self.uid, self.gid, self.cuid, self.cgid, self.mode,
                          0, self.seq & 0xFFFF, 0, 0, 0)

    def set_perm(self, raw: bytes) -> None:
        """IPC_SET: owner and mode from the guest's ipc64_perm (ipc_update_perm),
        and the change time; (uid_t)-1 is no uid, so EINVAL."""
        uid, gid, mode = struct.unpack_from("<4xII8xH", raw)
        if NO_ID in (uid, gid):
            raise KernelError(E.EINVAL)
        self.uid, self.gid, self.mode = uid, gid, (self.mode & ~0o777) | (mode & 0o777)
        self.ctime = timekeeping.realtime_seconds_ns()

    def may(self, creds, want: int) -> bool:
        """ipcperms: want 4 read, 2 write."""
        if capable(creds, CAP_IPC_OWNER):
            return True
        if creds.euid in (self.uid, self.cuid):
            bits = self.mode >> 6
        elif creds.egid in (self.gid, self.cgid) or self.gid in creds.groups:
            bits = self.mode >> 3
        else:
            bits = self.mode
        return not want & ~bits & 6

    def check(self, creds, want: int) -> None:
        if not self.may(creds, want):
            raise KernelError(E.EACCES)

    def wake_everyone(self) -> None:
        """The object is gone (IPC_RMID): every waiter learns it (EIDRM)."""

    def is_owner(self, creds) -> bool:
        return creds.euid in (self.uid, self.cuid)

    def may_change(self, creds) -> None:
        if not self.is_owner(creds) and not capable(creds, CAP_SYS_ADMIN):
            raise KernelError(E.EPERM)


@dataclass(eq=False)
class ShmSegment(IpcObject):
    __eq__ = object.__eq__      # one segment is itself only (a shmem holder: kernel/shmem.py)
    __hash__ = object.__hash__
    size: int = 0
    mem: MemFile | None = None
    pool: ShmemPool | None = field(default=None, repr=False)   # the machine's shmem
    charged: int = 0            # bytes of its pages the pool counts
    nattch: int = 0
    cpid: int = 0
    lpid: int = 0
    atime: int = 0
    dtime: int = 0
    lock_uid: int = -1          # who SHM_LOCK charged (its user's locked pages)
    # its namespace's tables (shp->ns): the last detach may come from a
    # process that has left the namespace since
    ns: Ipc | None = field(default=None, repr=False, compare=False)

    @property
    def pages(self) -> int:
        return (self.size + C.PAGE_SIZE - 1) // C.PAGE_SIZE

    @property
    def dying(self) -> bool:
        """Removed (SHM_DEST) and attached once more only: its last
        detach destroys it."""
        return bool(self.mode & SHM_DEST) and self.nattch <= 1

    def memfile(self) -> MemFile:
        if self.mem is None:
            raise KernelError(E.EINVAL)
        return self.mem

    def rss_pages(self) -> int:
        """Pages of the segment in memory (its memfd's, as shmem counts them)."""
        return self.mem.blocks() * 512 // C.PAGE_SIZE if self.mem is not None else 0

    @property
    def shmem_bytes(self) -> int:
        return self.charged

    def settle_shmem(self) -> None:
        """Count again the pages its mappings' faults filled (a detach, the
        segment's end)."""
        now = self.rss_pages() * C.PAGE_SIZE
        delta, self.charged = now - self.charged, now
        if delta and self.pool is not None:
            self.pool.counted(self, delta)


@dataclass
class SemSet(IpcObject):
    """A semaphore set.  Its waiters queue by the semaphore and kind of the
    operation that blocked them (a decrement, or a wait for zero), as
    Linux's pending lists: a change wakes only those it may let through,
    and GETNCNT and GETZCNT count them.  (One queue for the set woke every
    waiter at each semop: with 200 processes asleep on their own
    semaphores, a semop took 7 ms.)"""
    values: list[int] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    otime: int = 0
    waits: dict[tuple[int, bool], WaitQueue] = field(default_factory=dict, repr=False, compare=False)

    def wait_queue(self, num: int, zero: bool) -> WaitQueue:
        """Where a task blocked by semaphore num waits: for zero, or to decrement."""
        q = self.waits.get((num, zero))
        if q is None:
            q = self.waits[(num, zero)] = WaitQueue("semop")
        return q

    def waiting(self, num: int, zero: bool) -> int:
        """GETZCNT (zero) or GETNCNT: the tasks semaphore num blocked."""
        q = self.waits.get((num, zero))
        return len(q.waiters) if q is not None else 0

    def set_value(self, num: int, v: int) -> None:
        """Semaphore num is v now: wake the decrements if it grew, the waits
        for zero if it is zero (update_queue)."""
        old = self.values[num]
        self.values[num] = v
        if v > old:
            self._wake((num, False))
        elif v == 0 and old:
            self._wake((num, True))

    def _wake(self, key: tuple[int, bool]) -> None:
        q = self.waits.get(key)
        if q is not None:
            q.wake_all()
            if not q.waiters:
                del self.waits[key]

    def wake_everyone(self) -> None:
        for key in list(self.waits):
            self._wake(key)


class MsgReceiver:
    """A msgrcv asleep: what it takes (testmsg), how much, when it came
    (seq), and what a sender handed it."""
    __slots__ = ("mtype", "except_", "size", "noerror", "seq", "wq", "got", "err")

    def __init__(self, mtype: int, except_: bool, size: int, noerror: bool) -> None:
        self.mtype, self.except_, self.size, self.noerror = mtype, except_, size, noerror
        self.seq = 0
        self.wq = WaitQueue("msgrcv")
        self.got: tuple[int, bytes] | None = None
        self.err = 0

    @property
    def exact(self) -> bool:
        """Does it take one type only (a positive type, no MSG_EXCEPT)?"""
        return self.mtype > 0 and not self.except_

    def takes(self, ty: int) -> bool:
        if self.mtype > 0:
            return ty != self.mtype if self.except_ else ty == self.mtype
        return self.mtype == 0 or ty <= -self.mtype


@dataclass
class MsgQueue(IpcObject):
    msgs: list[tuple[int, bytes]] = field(default_factory=list)
    qbytes: int = MSGMNB
    lspid: int = 0
    lrpid: int = 0
    stime: int = 0
    rtime: int = 0
    cbytes: int = 0             # the text queued (msg_cbytes), counted as messages come and go
    charge: Charge | None = field(default=None, repr=False)     # what its messages take of RAM
    # receivers asleep (Linux's q_receivers, in the order they came: those
    # of one type by it, the others in a list) and senders waiting for
    # room (q_senders): a message goes straight to the first receiver that
    # takes it, a message taken wakes the senders.  (One queue for all
    # woke every sleeper at each message: with 200 receivers asleep a
    # message cost 10 ms.)
    by_type: dict[int, list[MsgReceiver]] = field(default_factory=dict, repr=False, compare=False)
    others: list[MsgReceiver] = field(default_factory=list, repr=False, compare=False)
    senders: WaitQueue = field(default_factory=lambda: WaitQueue("msgsnd"), repr=False, compare=False)
    arrivals: int = field(default=0, repr=False, compare=False)

    def sleep(self, r: MsgReceiver) -> None:
        """r waits for a message, after those that came before it."""
        self.arrivals += 1
        r.seq = self.arrivals
        if r.exact:
            self.by_type.setdefault(r.mtype, []).append(r)
        else:
            self.others.append(r)

    def leave(self, r: MsgReceiver) -> None:
        """r leaves the receivers (handed a message, or a signal ended its sleep)."""
        if r.exact:
            lst = self.by_type.get(r.mtype)
            if lst is not None and r in lst:
                lst.remove(r)
                if not lst:
                    del self.by_type[r.mtype]
        elif r in self.others:
            self.others.remove(r)

    def _first_taker(self, ty: int) -> MsgReceiver | None:
        lst = self.by_type.get(ty)
        a = lst[0] if lst else None
        b = next((r for r in self.others if r.takes(ty)), None)
        if a is None or b is None:
            return a or b
        return a if a.seq < b.seq else b

    def hand_over(self, mtype: int, text: bytes, pid: int) -> bool:
        """pipelined_send: the first receiver asleep that takes a message of
        mtype gets it (True: it is not queued); one whose buffer is too
        small (without MSG_NOERROR) is woken with E2BIG on the way."""
        while (r := self._first_taker(mtype)) is not None:
            self.leave(r)
            if len(text) > r.size and not r.noerror:
                r.err = E.E2BIG
                r.wq.wake_all()
                continue
            r.got = (mtype, text)
            self.lrpid, self.rtime = pid, timekeeping.realtime_seconds_ns()
            r.wq.wake_all()
            return True
        return False

    def wake_everyone(self) -> None:
        self.senders.wake_all()
        for r in [*self.others, *(r for lst in self.by_type.values() for r in lst)]:
            r.wq.wake_all()
        self.others.clear()
        self.by_type.clear()

    def push(self, mtype: int, text: bytes) -> None:
        """A message in, charged as Linux's alloc_msg allocates it (ENOMEM
        past RAM)."""
        if self.charge is not None:
            self.charge.add(msg_cost(len(text)))
        self.msgs.append((mtype, text))
        self.cbytes += len(text)

    def take(self, i: int) -> tuple[int, bytes]:
        ty, text = self.msgs.pop(i)
        self.cbytes -= len(text)
        if self.charge is not None:
            self.charge.sub(msg_cost(len(text)))
        return ty, text

    def free(self) -> None:
        """freeque: removed, its messages go."""
        self.msgs.clear()
        self.cbytes = 0
        if self.charge is not None:
            self.charge.drop()


def msg_queue(budget: MemBudget, **kw) -> MsgQueue:
    q = MsgQueue(**kw)
    q.charge = Charge(budget, q)
    return q


DATALEN_MSG, DATALEN_SEG = C.PAGE_SIZE - 48, C.PAGE_SIZE - 8     # after struct msg_msg, msg_msgseg


def msg_cost(n: int) -> int:
    """What alloc_msg allocates for n bytes of text: a msg_msg with the
    first part, a msg_msgseg with each further page's."""
    cost = kmalloc_size(48 + min(n, DATALEN_MSG))
    n -= DATALEN_MSG
    while n > 0:
        cost += kmalloc_size(8 + min(n, DATALEN_SEG))
        n -= DATALEN_SEG
    return cost


class IpcSpace:
    """One kind of IPC object (shm, sem or msg) in the kernel's namespace:
    ids as Linux's ipc_idr_alloc gives them (idr_alloc_cyclic below
    max(in_use * 3/2, 64): the first free index from the one after the
    last given, else from 0; the sequence number moves on when an index
    at or below the last one is given again)."""

    def __init__(self, limit: int) -> None:
        self.by_index: dict[int, IpcObject] = {}
        self.by_key: dict[int, IpcObject] = {}
        self.limit = limit          # the *mni sysctl
        self.next_id = -1           # the *_next_id sysctl: the id the next object asks for
        self._next = 0              # the idr's idr_next
        self._seq = 0
        self._last = -1

    def _alloc_index(self) -> int:
        end = min(max(len(self.by_index) * 3 // 2, IPC_MIN_CYCLE), IPCMNI)
        for i in chain(range(self._next, end), range(0, min(self._next, end))):
            if i not in self.by_index:
                self._next = i + 1
                return i
        raise KernelError(E.ENOSPC)

    def find_key(self, key: int) -> IpcObject | None:
        return self.by_key.get(key) if key != IPC_PRIVATE else None

    def get(self, ident: int) -> IpcObject:
        if ident < 0:
            raise KernelError(E.EINVAL)
        o = self.by_index.get(ident % SEQ_MULTIPLIER)
        if o is None or o.seq != ident // SEQ_MULTIPLIER:
            raise KernelError(E.EINVAL)
        return o

    def at_index(self, ident: int) -> IpcObject:
        """*_STAT and *_STAT_ANY name an object by index (an id's low bits
        are its index: ipc_obtain_object_idr)."""
        o = self.by_index.get(ident % IPCMNI)
        if o is None:
            raise KernelError(E.EINVAL)
        return o

    def max_index(self) -> int:
        return max(self.by_index, default=0)

    def lookup_or_create(self, key: int, flags: int, creds, make, validate=None,
                         more_checks=None) -> IpcObject:
        """ipcget: an existing object by key (more_checks(o), then the
        access the flags ask for), or a new one (validate(), then room in
        the id space, then make(perm fields))."""
        if key != IPC_PRIVATE:
            o = self.find_key(key)
            if o is not None:
                if flags & IPC_CREAT and flags & IPC_EXCL:
                    raise KernelError(E.EEXIST)
                if more_checks is not None:
                    more_checks(o)
                o.check(creds, 4 if not flags & 0o222 else 6)
                return o
            if not flags & IPC_CREAT:
                raise KernelError(E.ENOENT)
        if validate is not None:
            validate()
        if len(self.by_index) >= min(self.limit, IPCMNI):
            raise KernelError(E.ENOSPC)
        o = make(dict(key=key, uid=creds.euid, gid=creds.egid, cuid=creds.euid, cgid=creds.egid,
                      mode=flags & 0o777))
        wanted, self.next_id = self.next_id, -1
        if wanted >= 0:
            # ipc_idr_alloc with next_id (checkpoint/restore): its sequence
            # number, the first free index from its own
            index = next((i for i in range(wanted % IPCMNI, IPCMNI) if i not in self.by_index), None)
            if index is None:
                raise KernelError(E.ENOSPC)
            o.index, o.seq = index, wanted // SEQ_MULTIPLIER
        else:
            index = self._alloc_index()
            if index <= self._last:
                self._seq = (self._seq + 1) % (IPCID_SEQ_MAX + 1)
            self._last = index
            o.index, o.seq = index, self._seq
        self.by_index[index] = o
        if key != IPC_PRIVATE:
            self.by_key[key] = o
        return o

    def unkey(self, o: IpcObject) -> None:
        """The key goes (a removed segment still attached): IPC_PRIVATE."""
        if self.by_key.get(o.key) is o:
            del self.by_key[o.key]
        o.key = IPC_PRIVATE

    def remove(self, o: IpcObject) -> None:
        o.deleted = True
        self.unkey(o)
        if self.by_index.get(o.index) is o:
            del self.by_index[o.index]
        o.wake_everyone()


class Ipc:
    """The IPC namespace: the three id spaces and their sysctls."""

    def __init__(self) -> None:
        self.shm = IpcSpace(SHMMNI)
        self.sem = IpcSpace(SEMMNI)
        self.msg = IpcSpace(MSGMNI)
        self.shm_ctlmax = SHMMAX
        self.shm_ctlall = SHMALL        # pages
        self.shm_tot = 0                # pages of all segments
        self.shm_locked: dict[int, int] = {}    # uid -> pages SHM_LOCKed (user_shm_lock)
        self.sem_ctls = [SEMMSL, SEMMNS, SEMOPM, SEMMNI]
        self.used_sems = 0
        self.msg_ctlmax = MSGMAX
        self.msg_ctlmnb = MSGMNB

    @property
    def sem_ctls(self) -> list[int]:
        return [self._semmsl, self._semmns, self._semopm, self.sem.limit]

    @sem_ctls.setter
    def sem_ctls(self, v: list[int]) -> None:
        self._semmsl, self._semmns, self._semopm, self.sem.limit = v

    def destroy_shm(self, seg: ShmSegment) -> None:
        """shm_destroy: the segment and its pages go."""
        self.shm.remove(seg)
        self.shm_tot -= seg.pages
        if seg.lock_uid >= 0:
            self.shm_locked[seg.lock_uid] -= seg.pages
        if seg.mem is not None:
            seg.mem.close()
            seg.mem = None
        seg.settle_shmem()

    def remove_shm(self, seg: ShmSegment) -> None:
        """IPC_RMID: gone now if nothing has it attached, else marked
        SHM_DEST (its key made private) until the last detach."""
        if seg.nattch == 0:
            self.destroy_shm(seg)
        else:
            seg.mode |= SHM_DEST
            self.shm.unkey(seg)


def ipc_of(proc) -> Ipc:
    """The tables of the process's IPC namespace."""
    return proc.ns.ipc.sysv


# -- process lifetime: fork, exec and exit ----------------------------------------

def detach(proc, addr: int, seg) -> None:
    """Forget one attachment (shmdt, exit, exec); a removed segment goes with the last."""
    del proc.shm_attach[addr]
    seg.nattch -= 1
    seg.lpid = proc.pid
    seg.dtime = timekeeping.realtime_seconds_ns()
    if seg.mode & SHM_DEST and seg.nattch == 0:
        seg.ns.destroy_shm(seg)


def detach_unmapped(proc, start: int, end: int) -> None:
    """munmap, or a new mapping over [start, end): an attachment there of
    which nothing is mapped any more is detached, as the close of its last
    vma detaches it on Linux (shm_close).  An attachment unmapped only in
    part stays attached."""
    files = proc.mm.files
    for a, seg in list(getattr(proc, "shm_attach", {}).items()):
        e = a + seg.pages * C.PAGE_SIZE
        if a < end and e > start and not any(fm.obj is seg for _s, _e, fm in files.overlapping(a, e)):
            detach(proc, a, seg)


def detach_at(proc, addr: int) -> None:
    """Forget the attachment whose mapping holds addr, if any."""
    for a, seg in list(getattr(proc, "shm_attach", {}).items()):
        if a <= addr < a + seg.pages * C.PAGE_SIZE:
            detach(proc, a, seg)


def detach_all(proc) -> None:
    for addr, seg in list(getattr(proc, "shm_attach", {}).items()):
        detach(proc, addr, seg)


def inherit(parent, child) -> None:
    """fork: the child has the parent's attachments too."""
    att = getattr(parent, "shm_attach", None)
    if att:
        child.shm_attach = dict(att)
        for seg in att.values():
            seg.nattch += 1


def exit_sem(proc) -> None:
    """unshare(CLONE_SYSVSEM), leaving an IPC namespace: the undo list is
    given up as at exit (its adjustments applied), and a new, empty one starts."""
    undo_all(proc)
    getattr(proc, "sem_undo", {}).clear()


def forget_undo(procs, ns, ident: int, num: int | None = None) -> None:
    """Drop every process's SEM_UNDO adjustment of semaphore num of set
    ident (None: of the whole set), as Linux zeroes the semadj of all the
    set's undo structures at SETVAL and SETALL and lets them go with the
    set at IPC_RMID (freeary): an exit after that adjusts nothing."""
    for proc in procs.by_pid.values():
        undo = getattr(proc, "sem_undo", None)
        if undo and ipc_of(proc) is ns:
            for key in [k for k in undo if k[0] == ident and (num is None or k[1] == num)]:
                del undo[key]


def undo_all(proc) -> None:
    """Exit: apply the SEM_UNDO adjustments (clamped at 0, as Linux)."""
    for (ident, num), adj in getattr(proc, "sem_undo", {}).items():
        if not adj:
            continue
        try:
            s = ipc_of(proc).sem.get(ident)
        except KernelError:
            continue
        s.set_value(num, max(0, min(SEMVMX, s.values[num] + adj)))
        s.pids[num] = proc.pid
