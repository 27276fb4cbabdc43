"""System V IPC objects: shared memory segments, semaphore sets, message queues.

One namespace per kernel.  Each object has Linux's ipc64_perm (key, owner,
creator, mode, sequence) and is found by key (shmget/semget/msgget) or by
id.  Shared memory segments are host memfds, attached with injected mmap
like any page-cache file; waits (semop, msgsnd/msgrcv) park on the object's
wait queue and re-check, as every blocking syscall here does.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from arch_um.hostfile import MemFile
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_IPC_OWNER, CAP_SYS_ADMIN
from umlpy.kernel.cred import NO_ID, capable
from umlpy.kernel.errors import KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs.inode import now_ns

IPC_PRIVATE = 0
IPC_CREAT = 0o1000
IPC_EXCL = 0o2000
IPC_NOWAIT = 0o4000
IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO = 0, 1, 2, 3
IPC_64 = 0x100
_PERM = struct.Struct("<iIIIIHHHH4xQQ")
SEQ_MULTIPLIER = 32768
SHMMNI = SEMMNI = MSGMNI = 4096
SHMALL_BYTES = 1 << 36
SEMMSL, SEMVMX = 32000, 32767
MSGMAX, MSGMNB = 8192, 16384


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
    ctime: int = field(default_factory=now_ns)
    wq: WaitQueue = field(default_factory=lambda: WaitQueue("ipc"))

    @property
    def id(self) -> int:
        return self.seq * SEQ_MULTIPLIER + self.index

    def pack_perm(self) -> bytes:
        return _PERM.pack(self.key, self.uid, self.gid, self.cuid, self.cgid, self.mode & 0o777,
                          0, self.seq & 0xFFFF, 0, 0, 0)

    def set_perm(self, raw: bytes) -> None:
        """IPC_SET: owner and mode from the guest's ipc64_perm (ipc_update_perm);
        (uid_t)-1 is no uid, so EINVAL."""
        uid, gid, mode = struct.unpack_from("<4xII8xH", raw)
        if NO_ID in (uid, gid):
            raise KernelError(E.EINVAL)
        self.uid, self.gid, self.mode = uid, gid, (self.mode & ~0o777) | (mode & 0o777)

    def check(self, creds, want: int) -> None:
        """want: 4 read, 2 write (ipcperms)."""
        if capable(creds, CAP_IPC_OWNER):
            return
        if creds.euid in (self.uid, self.cuid):
            bits = self.mode >> 6
        elif creds.egid in (self.gid, self.cgid) or self.gid in creds.groups:
            bits = self.mode >> 3
        else:
            bits = self.mode
        if want & ~bits & 6:
            raise KernelError(E.EACCES)

    def may_change(self, creds) -> None:
        if creds.euid not in (self.uid, self.cuid) and not capable(creds, CAP_SYS_ADMIN):
            raise KernelError(E.EPERM)


@dataclass
class ShmSegment(IpcObject):
    size: int = 0
    mem: MemFile | None = None
    nattch: int = 0
    cpid: int = 0
    lpid: int = 0
    atime: int = 0
    dtime: int = 0


@dataclass
class SemSet(IpcObject):
    values: list[int] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    otime: int = 0


@dataclass
class MsgQueue(IpcObject):
    msgs: list[tuple[int, bytes]] = field(default_factory=list)
    qbytes: int = MSGMNB
    lspid: int = 0
    lrpid: int = 0
    stime: int = 0
    rtime: int = 0

    @property
    def cbytes(self) -> int:
        return sum(len(m) for _, m in self.msgs)


class IpcSpace:
    """One kind of IPC object (shm, sem or msg) in the kernel's namespace."""

    def __init__(self, limit: int) -> None:
        self.by_index: dict[int, IpcObject] = {}
        self.limit = limit
        self._seq = 0

    def find_key(self, key: int) -> IpcObject | None:
        for o in self.by_index.values():
            if o.key == key and key != IPC_PRIVATE and not o.deleted:
                return o
        return None

    def get(self, ident: int) -> IpcObject:
        if ident < 0:
            raise KernelError(E.EINVAL)
        o = self.by_index.get(ident % SEQ_MULTIPLIER)
        if o is None or o.seq != ident // SEQ_MULTIPLIER:
            raise KernelError(E.EINVAL)
        return o

    def lookup_or_create(self, key: int, flags: int, creds, make) -> IpcObject:
        if key != IPC_PRIVATE:
            o = self.find_key(key)
            if o is not None:
                if flags & IPC_CREAT and flags & IPC_EXCL:
                    raise KernelError(E.EEXIST)
                o.check(creds, 4 if not flags & 0o222 else 6)
                return o
            if not flags & IPC_CREAT:
                raise KernelError(E.ENOENT)
        if len(self.by_index) >= self.limit:
            raise KernelError(E.ENOSPC)
        index = 0
        while index in self.by_index:
            index += 1
        self._seq = (self._seq + 1) % 0x8000
        o = make(dict(key=key, uid=creds.euid, gid=creds.egid, cuid=creds.euid, cgid=creds.egid,
                      mode=flags & 0o777, seq=self._seq, index=index))
        self.by_index[index] = o
        return o

    def remove(self, o: IpcObject) -> None:
        o.deleted = True
        self.by_index.pop(o.index, None)
        o.wq.wake_all()


class Ipc:
    def __init__(self) -> None:
        self.shm = IpcSpace(SHMMNI)
        self.sem = IpcSpace(SEMMNI)
        self.msg = IpcSpace(MSGMNI)


# -- process lifetime: fork, exec and exit ----------------------------------------

def detach(proc, addr: int, seg) -> None:
    """Forget one attachment (shmdt, exit, exec); a removed segment goes with the last."""
    del proc.shm_attach[addr]
    seg.nattch -= 1
    seg.lpid = proc.pid
    seg.dtime = now_ns()
    if seg.deleted and seg.nattch == 0 and seg.mem is not None:
        seg.mem.close()
        seg.mem = None


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


def undo_all(proc) -> None:
    """Exit: apply the SEM_UNDO adjustments (clamped at 0, as Linux)."""
    for (ident, num), adj in getattr(proc, "sem_undo", {}).items():
        try:
            s = proc.ns.ipc.sysv.sem.get(ident)
        except KernelError:
            continue
        s.values[num] = max(0, min(SEMVMX, s.values[num] + adj))
        s.wq.wake_all()
