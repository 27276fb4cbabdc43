"""System V IPC and POSIX message queues in a checkpoint.

The image's top-level `ipc` holds the initial IPC namespace (the only one
a checkpoint accepts processes in): its sysctls, each SysV id space (the
allocator's state, so that ids given after the restore are the ones the
machine would have given, and every object under its index and sequence
number: programs keep ids, never keys), the POSIX queues, named ones and
unlinked ones that an fd still holds; the bytes (segments' pages,
messages) go into one blob.  A process's own part (`ipc` of a process):
the mappings of segments it has (shmat's FileMaps, which have no name to
find them again by), its attachments (what shmdt, exit and nattch count)
and its SEM_UNDO adjustments.  An fd of a queue is an open description of
kind `mqueue` naming the queue by its index.

The restore makes the objects before any process (a segment's memfd must
exist before an attached process's memory is mapped on it again), then
each process's part with its memory, then checks what joins them: every
segment's nattch is the number of attachments, every unlinked queue is
held by an fd.  Every value is range-checked as the syscalls that make
the object check theirs; what does not fit is an image.ImageError.
"""
from __future__ import annotations

from collections import Counter

from arch_um.hostfile import MemFile
from arch_um.memory import TASK_SIZE
from umlpy.abi import consts as C
from umlpy.abi import signals as S
from umlpy.checkpoint import image, tmpfstree
from umlpy.kernel import ipc as I
from umlpy.kernel import mqueue as M
from umlpy.kernel.cred import NO_ID
from umlpy.kernel.errors import KernelError
from umlpy.kernel.mm import FileMap
from umlpy.syscalls.sys_mqueue import NAME_MAX, MqFile

BLOB = "ipc.bin"
MAX_PID = 1 << 22
U64 = 1 << 64
S64 = (-(1 << 63), 1 << 63)
INT_MAX = (1 << 31) - 1
IDS = (0, NO_ID)              # a uid or gid: (uid_t)-1 is none (IPC_SET refuses it)
SHM_MODE = 0o777 | I.SHM_DEST | I.SHM_LOCKED
MAX_NSEMS = 1 << 20             # sanity: semmsl is a sysctl, a set holds at most what it allowed then


def _refused(what: str):
    from umlpy.checkpoint.dump import Refused      # dump imports this module
    return Refused(what)


# -- checkpoint -------------------------------------------------------------------
def is_segment_map(fm) -> bool:
    """A FileMap of a live SysV segment (shmat's): a restore maps its memfd again."""
    return isinstance(fm.obj, I.ShmSegment) and fm.obj.mem is not None and not fm.obj.deleted


def savable_file(f) -> bool:
    """An fd of a POSIX queue (F_SETOWN and O_ASYNC are checked by the caller)."""
    return isinstance(f, MqFile)


def check(k) -> None:
    """Refuse what this module does not save: a segment whose attach count
    is not its attachments' (one attached from outside the processes
    saved), a queue with an mq_notify by SIGEV_THREAD (its netlink socket
    is not carried) or by a process that is gone."""
    ns = k.init_ns.ipc
    attached = Counter(id(seg) for p in k.procs.by_pid.values()
                       for seg in getattr(p, "shm_attach", {}).values())
    for seg in ns.sysv.shm.by_index.values():
        if seg.nattch != attached[id(seg)]:
            raise _refused(f"SysV segment {seg.id} attached {seg.nattch} times, {attached[id(seg)]} by processes,")
    if set(attached) - {id(seg) for seg in ns.sysv.shm.by_index.values()}:
        raise _refused("an attachment of a SysV segment of another IPC namespace")
    files = [f for p in k.procs.by_pid.values() for f in p.leader.files.files.values()]
    for q in _queues(k, files):
        n = q.notify
        if n is not None and (n.how not in (M.SIGEV_SIGNAL, M.SIGEV_NONE) or k.procs.by_pid.get(n.proc.pid)
                              is not n.proc):
            raise _refused(f"POSIX message queue {q.name!r}: mq_notify by SIGEV_THREAD or by a gone process")


def _queues(k, files) -> list:
    """The queues to save: the named ones by name, then the unlinked ones
    that an open description (of files) holds, each once."""
    out = [q for _n, q in sorted(k.init_ns.ipc.mq.queues.items())]
    seen = {id(q) for q in out}
    for f in files:
        if isinstance(f, MqFile) and id(f.q) not in seen:
            seen.add(id(f.q))
            out.append(f.q)
    return out


def _perm(o) -> dict:
    return {"key": o.key, "uid": o.uid, "gid": o.gid, "cuid": o.cuid, "cgid": o.cgid, "mode": o.mode,
            "seq": o.seq, "index": o.index, "ctime": o.ctime}


def _space(space: I.IpcSpace, more) -> dict:
    """An id space: where ipc_idr_alloc goes on, the *mni limit, each
    object's ipc64_perm and more(object)."""
    return {"next": space._next, "seq": space._seq, "last": space._last, "limit": space.limit,
            "objects": [{**_perm(o), **more(o)} for _i, o in sorted(space.by_index.items())]}


def save(k, w, opens: dict) -> dict:
    """The initial IPC namespace (module docstring); fills the `queue` of
    each `mqueue` open description of opens (dump.py's index, entry, file)."""
    ns = k.init_ns.ipc
    sv, mq = ns.sysv, ns.mq
    queues = _queues(k, [f for _i, _e, f in sorted(opens.values(), key=lambda x: x[0])])
    index = {id(q): n for n, q in enumerate(queues)}
    for _i, e, f in opens.values():
        if isinstance(f, MqFile):
            e["queue"] = index[id(f.q)]
    with w.blob(BLOB) as out:
        pos = 0

        def put(data: bytes) -> list:
            nonlocal pos
            out.write(data)
            pos += len(data)
            return [len(data), pos - len(data)]

        def shm(seg: I.ShmSegment) -> dict:
            nonlocal pos
            runs, pos = tmpfstree.save_data(seg.mem, C.page_up(seg.size), out, pos)
            return {"size": seg.size, "cpid": seg.cpid, "lpid": seg.lpid, "atime": seg.atime,
                    "dtime": seg.dtime, "nattch": seg.nattch, "locked_by": seg.lock_uid, "runs": runs}
        doc = {
            "data": BLOB,
            "sysctls": {"shm_ctlmax": sv.shm_ctlmax, "shm_ctlall": sv.shm_ctlall, "sem_ctls": sv.sem_ctls[:3],
                        "msg_ctlmax": sv.msg_ctlmax, "msg_ctlmnb": sv.msg_ctlmnb},
            "shm": _space(sv.shm, shm),
            "sem": _space(sv.sem, lambda s: {"values": list(s.values), "pids": list(s.pids), "otime": s.otime}),
            "msg": _space(sv.msg, lambda q: {"qbytes": q.qbytes, "lspid": q.lspid, "lrpid": q.lrpid,
                                             "stime": q.stime, "rtime": q.rtime,
                                             "msgs": [[t, *put(m)] for t, m in q.msgs]}),
            "mq": {"sysctls": {"queues_max": mq.queues_max, "msg_max": mq.msg_max, "msgsize_max": mq.msgsize_max,
                               "msg_default": mq.msg_default, "msgsize_default": mq.msgsize_default},
                   "queues": [_save_queue(q, put) for q in queues]},
        }
    return doc


def _save_queue(q: M.MQueue, put) -> dict:
    n = q.notify
    return {"name": q.name.hex(), "unlinked": q.unlinked, "maxmsg": q.maxmsg, "msgsize": q.msgsize,
            "mode": q.mode, "uid": q.uid, "gid": q.gid,
            "msgs": [[-negprio, *put(data)] for negprio, _seq, data in q.msgs],
            "notify": None if n is None else {"pid": n.proc.pid, "how": n.how, "signo": n.signo, "value": n.value}}


def save_process(p) -> dict:
    """A process's own part: its segments' mappings ([start, end, origin,
    id, maywrite], as shmat sets them in mm.files), its attachments
    ([address, id]) and its SEM_UNDO adjustments ([id, semnum, adj], those
    that still adjust a set: Linux frees a removed set's undos)."""
    sems = I.ipc_of(p).sem

    def live(ident: int, num: int) -> bool:
        try:
            return num < len(sems.get(ident).values)
        except KernelError:
            return False
    return {"maps": [[s, e, fm.origin, fm.obj.id, int(fm.maywrite)] for s, e, fm in p.mm.files.items
                     if isinstance(fm.obj, I.ShmSegment)],
            "attached": [[a, seg.id] for a, seg in sorted(getattr(p, "shm_attach", {}).items())],
            "sem_undo": [[i, n, adj] for (i, n), adj in sorted(getattr(p, "sem_undo", {}).items())
                         if adj and live(i, n)]}


# -- restore ----------------------------------------------------------------------
class Restored:
    """What the restore made: the queues by their index in the image (for
    the fds naming them) and each queue's saved entry (for finish)."""

    def __init__(self) -> None:
        self.queues: list[tuple[M.MQueue, image.Reader]] = []


def restore(k, r: image.Reader) -> Restored:
    """The initial namespace's objects as `save` wrote them (an image
    without `ipc` had none)."""
    done = Restored()
    if not r.has("ipc"):
        return done
    e = r.sub("ipc")
    ns = k.init_ns.ipc
    sv = ns.sysv
    sc = e.sub("sysctls")
    sv.shm_ctlmax, sv.shm_ctlall = sc.int("shm_ctlmax", 0, I.ULONG_MAX + 1), sc.int("shm_ctlall", 0, I.ULONG_MAX + 1)
    sv.msg_ctlmax, sv.msg_ctlmnb = sc.int("msg_ctlmax", 0, INT_MAX + 1), sc.int("msg_ctlmnb", 0, INT_MAX + 1)
    semctls = sc.ints("sem_ctls", -INT_MAX - 1, INT_MAX + 1, 3)
    blob = e.blob("data")
    try:
        _space_back(sv.shm, e.sub("shm"), SHM_MODE, lambda o, kw: _shm(k, sv, o, kw, blob))
        _space_back(sv.sem, e.sub("sem"), 0o777, _sem)
        _space_back(sv.msg, e.sub("msg"), 0o777, lambda o, kw: _msg(k, o, kw, blob))
        sv.sem_ctls = semctls + [sv.sem.limit]
        sv.used_sems = sum(len(s.values) for s in sv.sem.by_index.values())
        _mq_back(ns.mq, e.sub("mq"), blob, done)
    finally:
        blob.close()
    return done


def _data(e: image.Reader, key: str, limit: int, blob) -> list[tuple[int, bytes]]:
    """Messages ([first, length, offset in the blob], first a type or a
    priority in [1, 2^63)...) with their bytes, at most limit each."""
    out = []
    for first, n, pos in e.list_of_ints(key, 3, (0, 0, 0), (1 << 63, limit + 1, blob.size + 1)):
        if pos + n > blob.size:
            raise image.ImageError(f"manifest: {e.where}.{key}: a message past the blob")
        out.append((first, bytes(blob.read_at(pos, n))))
    return out


def _space_back(space: I.IpcSpace, e: image.Reader, modes: int, make) -> None:
    """An id space: its allocator's state and limit, then every object
    made by make(entry, perm fields), under its index and sequence number
    (one object an index, one a key)."""
    space._next = e.int("next", 0, I.IPCMNI + 1)
    space._seq = e.int("seq", 0, I.IPCID_SEQ_MAX + 1)
    space._last = e.int("last", -1, I.IPCMNI)
    space.limit = e.int("limit", 0, I.IPCMNI + 1)
    for o in e.list("objects"):
        kw = {"key": o.int("key", -(1 << 31), 1 << 31), "mode": o.int("mode", 0, modes + 1),
              **{n: o.int(n, *IDS) for n in ("uid", "gid", "cuid", "cgid")}}
        if kw["mode"] & ~modes:
            raise image.ImageError(f"manifest: {o.where}.mode: {oct(kw['mode'])}")
        obj = make(o, kw)
        obj.index, obj.seq = o.int("index", 0, I.IPCMNI), o.int("seq", 0, I.IPCID_SEQ_MAX + 1)
        obj.ctime = o.int("ctime", *S64)
        if obj.index in space.by_index or obj.key != I.IPC_PRIVATE and obj.key in space.by_key:
            raise image.ImageError(f"manifest: {o.where}: an index or a key taken twice")
        space.by_index[obj.index] = obj
        if obj.key != I.IPC_PRIVATE:
            space.by_key[obj.key] = obj


def _shm(k, sv: I.Ipc, o: image.Reader, kw: dict, blob) -> I.ShmSegment:
    """A segment, its memfd made (as shmget makes it) and filled; removed
    (SHM_DEST) only while attached, with its key gone; SHM_LOCKED only
    with the user it charged."""
    seg = I.ShmSegment(**kw, size=o.int("size", I.SHMMIN, I.MAX_LFS_FILESIZE + 1), ns=sv,
                       cpid=o.int("cpid", 0, MAX_PID), lpid=o.int("lpid", 0, MAX_PID),
                       atime=o.int("atime", *S64), dtime=o.int("dtime", *S64),
                       nattch=o.int("nattch", 0, 1 << 31), lock_uid=o.int("locked_by", -1, NO_ID),
                       pool=k.mem_budget.shmem)
    if seg.mode & I.SHM_DEST and (seg.key != I.IPC_PRIVATE or not seg.nattch) \
            or bool(seg.mode & I.SHM_LOCKED) != (seg.lock_uid >= 0):
        raise image.ImageError(f"manifest: {o.where}: a removed segment not attached, or a bad lock")
    size = min(seg.pages * C.PAGE_SIZE, I.MAX_LFS_FILESIZE)
    seg.mem = MemFile("SYSV%08x" % (seg.key & 0xFFFFFFFF))
    seg.mem.truncate(size)
    tmpfstree.load_data(lambda off, data: seg.mem.pwrite(data, off), o, size, blob)
    seg.settle_shmem()
    sv.shm_tot += seg.pages
    if seg.lock_uid >= 0:
        sv.shm_locked[seg.lock_uid] = sv.shm_locked.get(seg.lock_uid, 0) + seg.pages
    return seg


def _sem(o: image.Reader, kw: dict) -> I.SemSet:
    """A set: its values as SETVAL allows them (0 to SEMVMX), a pid each."""
    values = o.ints("values", 0, I.SEMVMX + 1)
    pids = o.ints("pids", 0, MAX_PID, len(values))
    if not 0 < len(values) <= MAX_NSEMS:
        raise image.ImageError(f"manifest: {o.where}.values: {len(values)} semaphores")
    return I.SemSet(**kw, values=values, pids=pids, otime=o.int("otime", *S64))


def _msg(k, o: image.Reader, kw: dict, blob) -> I.MsgQueue:
    """A queue and its messages in order, each of a type msgsnd takes (>= 1),
    charged as msgsnd charges them."""
    q = I.msg_queue(k.mem_budget, **kw, qbytes=o.int("qbytes", 0, U64), lspid=o.int("lspid", 0, MAX_PID),
                    lrpid=o.int("lrpid", 0, MAX_PID), stime=o.int("stime", *S64), rtime=o.int("rtime", *S64))
    for t, m in _data(o, "msgs", INT_MAX, blob):
        if t < 1:
            raise image.ImageError(f"manifest: {o.where}.msgs: a message of type 0")
        try:
            q.push(t, m)
        except KernelError:
            raise image.ImageError(f"manifest: {o.where}.msgs: more than the machine's memory") from None
    return q


def _mq_back(mq: M.MqNamespace, e: image.Reader, blob, done: Restored) -> None:
    """The queues: attributes within the hard limits (what mq_open allows
    CAP_SYS_RESOURCE), names as mq_open takes them, each named one once,
    messages no more than maxmsg, none longer than msgsize, in priority
    order; each charged to its owner (as its creation did) and counted."""
    sc = e.sub("sysctls")
    mq.queues_max = sc.int("queues_max", -INT_MAX - 1, INT_MAX + 1)
    mq.msg_max, mq.msg_default = (sc.int(n, M.MIN_MSGMAX, M.HARD_MSGMAX + 1) for n in ("msg_max", "msg_default"))
    mq.msgsize_max, mq.msgsize_default = (sc.int(n, M.MIN_MSGSIZEMAX, M.HARD_MSGSIZEMAX + 1)
                                          for n in ("msgsize_max", "msgsize_default"))
    for o in e.list("queues"):
        name = o.hex("name", NAME_MAX)
        if not name or b"/" in name or b"\0" in name or name in (b".", b".."):
            raise image.ImageError(f"manifest: {o.where}.name: not a queue's name")
        q = M.MQueue(mq, name, o.int("maxmsg", 1, M.HARD_MSGMAX + 1), o.int("msgsize", 1, M.HARD_MSGSIZEMAX + 1),
                     o.int("mode", 0, 0o1000), o.int("uid", *IDS), o.int("gid", *IDS))
        msgs = _data(o, "msgs", q.msgsize, blob)
        prios = [p for p, _d in msgs]
        if len(msgs) > q.maxmsg or any(p >= M.MQ_PRIO_MAX for p in prios) or prios != sorted(prios, reverse=True):
            raise image.ImageError(f"manifest: {o.where}.msgs: more than maxmsg, or priorities out of order")
        try:
            for _p, d in msgs:
                q.kmem.add(I.msg_cost(len(d)))
        except KernelError:
            raise image.ImageError(f"manifest: {o.where}.msgs: more than the machine's memory") from None
        q.msgs = [(-p, i + 1, d) for i, (p, d) in enumerate(msgs)]
        q.seq = len(msgs)
        q.unlinked = o.bool("unlinked")
        if not q.unlinked:
            if name in mq.queues:
                raise image.ImageError(f"manifest: {o.where}.name: a second queue {name!r}")
            mq.queues[name] = q
        mq.charge(q, U64)
        done.queues.append((q, o))


def restore_process(k, t, mm, p: image.Reader) -> None:
    """A process's segment mappings (before its memory is mapped again on
    them), attachments and SEM_UNDO adjustments (save_process)."""
    if not p.has("ipc"):
        return
    e = p.sub("ipc")
    sv = k.init_ns.ipc.sysv
    for s, end, origin, ident, maywrite in e.list_of_ints("maps", 5, (0, 1, -TASK_SIZE, 0, 0),
                                                          (TASK_SIZE, TASK_SIZE + 1, TASK_SIZE, 1 << 31, 2)):
        seg = _get(sv.shm, ident, e, "maps")
        if s % C.PAGE_SIZE or end % C.PAGE_SIZE or end <= s or (s - origin) % C.PAGE_SIZE or s < origin \
                or end - origin > seg.pages * C.PAGE_SIZE:
            raise image.ImageError(f"manifest: {e.where}.maps: {s:#x}-{end:#x} is not inside segment {ident}")
        mm.map_file(s, end, FileMap(seg, origin, True, bool(maywrite)))
    attached = {}
    for addr, ident in e.list_of_ints("attached", 2, (0, 0), (TASK_SIZE, 1 << 31)):
        if addr % C.PAGE_SIZE or addr in attached:
            raise image.ImageError(f"manifest: {e.where}.attached: {addr:#x}")
        attached[addr] = _get(sv.shm, ident, e, "attached")
    if attached:
        t.proc.shm_attach = attached
    undo = {}
    for ident, num, adj in e.list_of_ints("sem_undo", 3, (0, 0, -(1 << 31)), (1 << 31, MAX_NSEMS, 1 << 31)):
        if num >= len(_get(sv.sem, ident, e, "sem_undo").values) or (ident, num) in undo:
            raise image.ImageError(f"manifest: {e.where}.sem_undo: semaphore {num} of {ident}")
        undo[(ident, num)] = adj
    if undo:
        t.proc.sem_undo = undo


def _get(space: I.IpcSpace, ident: int, e: image.Reader, key: str):
    try:
        return space.get(ident)
    except KernelError:
        raise image.ImageError(f"manifest: {e.where}.{key}: no object {ident}") from None


def open_queue(done: Restored, o: image.Reader, flags: int) -> MqFile:
    """An open description of a queue: its access mode (read, write or
    both) and O_NONBLOCK, as mq_open gives them."""
    i = o.int("queue", 0, len(done.queues))
    if flags & C.O_ACCMODE == C.O_ACCMODE:
        raise image.ImageError(f"manifest: {o.where}.flags: not an access mode of mq_open")
    return MqFile(done.queues[i][0], flags & (C.O_ACCMODE | C.O_NONBLOCK))


def finish(k, done: Restored) -> None:
    """Once every process and fd is back: each segment's nattch is its
    attachments', each unlinked queue is held by an fd, and mq_notify
    registrations name a process of the image."""
    sv = k.init_ns.ipc.sysv
    attached = Counter(id(seg) for p in k.procs.by_pid.values()
                       for seg in getattr(p, "shm_attach", {}).values())
    for seg in sv.shm.by_index.values():
        if seg.nattch != attached[id(seg)]:
            raise image.ImageError(f"manifest: ipc: segment {seg.id} attached {seg.nattch} times, "
                                   f"{attached[id(seg)]} by processes")
    for q, o in done.queues:
        if q.unlinked and not q.opened:
            raise image.ImageError(f"manifest: {o.where}: an unlinked queue no fd holds")
        n = o.doc.get("notify")
        if n is None:
            continue
        n = o.sub("notify")
        proc = k.procs.by_pid.get(n.int("pid", 1, MAX_PID))
        how = n.int("how", 0, 2)
        if proc is None:
            raise image.ImageError(f"manifest: {n.where}.pid: no such process")
        q.notify = M.Notify(proc, how, n.int("signo", 0, S.NSIG + 1), n.int("value", 0, U64))
