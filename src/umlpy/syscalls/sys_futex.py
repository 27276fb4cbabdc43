"""futex(2): WAIT, WAKE, their BITSET forms, REQUEUE, CMP_REQUEUE, WAKE_OP,
and the priority-inheritance locks (LOCK_PI, LOCK_PI2, TRYLOCK_PI, UNLOCK_PI).

Words that other guest threads may change while the kernel looks at them
are updated with an atomic compare-and-swap run in the caller's address
space (futex.cas), never by a plain read and write."""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import printk
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.futex import BITSET_MATCH_ANY, Waiter, cas, pi_handover
from umlpy.kernel.timekeeping import WallDeadline
from umlpy.kernel.timers import after, monotonic_for, read_timespec
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import s32

FUTEX_WAIT, FUTEX_WAKE, FUTEX_FD, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP = 0, 1, 2, 3, 4, 5
FUTEX_LOCK_PI, FUTEX_UNLOCK_PI, FUTEX_TRYLOCK_PI = 6, 7, 8
FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 9, 10
FUTEX_LOCK_PI2 = 13
FUTEX_PRIVATE_FLAG = 128
FUTEX_CLOCK_REALTIME = 256
FUTEX_CMD_MASK = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
_logged: set[int] = set()


def _word(t, addr: int) -> int:
    if addr & 3:
        raise KernelError(E.EINVAL)
    return struct.unpack("<I", t.mem.read(addr, 4))[0]


def _key(t, fx, addr: int, private: bool) -> tuple:
    """get_futex_key: a misaligned word is EINVAL; a shared futex must be a
    word the task can read (its page is looked up: EFAULT when unmapped,
    PROT_NONE or past the end of a file); a private one is only a number."""
    if addr & 3:
        raise KernelError(E.EINVAL)
    if not private:
        t.mem.read(addr, 4)
    return fx.key(t, addr, private)


def _wait(t, fx, key, addr: int, val: int, deadline: int | WallDeadline | None, bitset: int, private: bool,
          relative: bool) -> int:
    if _word(t, addr) != val & 0xFFFFFFFF:
        raise KernelError(E.EAGAIN)
    w = fx.enqueue(key, t, bitset)

    def done() -> int:
        if w.woken:
            return 0
        raise Block(w.wq, deadline=deadline, retry=done, on_timeout=timed_out,
                    on_interrupt=lambda: fx.dequeue(w),
                    restart=E.ERESTARTSYS if deadline is None else E.ERESTART_RESTARTBLOCK,
                    # (only a timed wait restarts through restart_syscall: a futex wait is hot)
                    restart_fn=(None if deadline is None else
                                FutexWaitOn(t, addr, val, deadline, bitset, private, relative)))

    def timed_out() -> int:
        fx.dequeue(w)
        if w.woken:
            return 0
        raise KernelError(E.ETIMEDOUT)
    return done()


class FutexWaitOn:
    """restart_syscall's way on with a timed futex wait a signal without
    handler interrupted: the same word, value and bitset, to the same end
    (futex_wait_restart's restart block, which looks the key up again),
    which a checkpoint reads (relative: FUTEX_WAIT's timeout was a
    duration, not a time)."""
    __slots__ = ("t", "addr", "val", "deadline", "bitset", "private", "relative")

    def __init__(self, t, addr: int, val: int, deadline: int | WallDeadline, bitset: int, private: bool,
                 relative: bool) -> None:
        self.t, self.addr, self.val, self.deadline = t, addr, val, deadline
        self.bitset, self.private, self.relative = bitset, private, relative

    def __call__(self) -> int:
        t = self.t
        fx = t.kernel.futexes
        return _wait(t, fx, _key(t, fx, self.addr, self.private), self.addr, self.val, self.deadline,
                     self.bitset, self.private, self.relative)


def _wake_op(t, fx, k1, k2, addr2: int, n1: int, n2: int, op: int) -> int:
    """FUTEX_WAKE_OP: *addr2 op= oparg; wake n1 at addr; if old cmp cmparg, wake n2 at addr2."""
    kind, cmp_, oparg, cmparg = (op >> 28) & 7, (op >> 24) & 15, (op >> 12) & 0xFFF, op & 0xFFF
    if op >> 31:
        oparg = 1 << oparg
    if oparg & 0x800:
        oparg -= 0x1000
    if cmparg & 0x800:
        cmparg -= 0x1000
    if kind > 4:
        raise KernelError(E.ENOSYS)
    while True:
        old = _word(t, addr2)
        new = (oparg, old + oparg, old | oparg, old & ~oparg, old ^ oparg)[kind] & 0xFFFFFFFF
        if cas(t, addr2, old, new) == old:
            break
    sold = old - (1 << 32) if old & 0x80000000 else old
    ok = {0: sold == cmparg, 1: sold != cmparg, 2: sold < cmparg, 3: sold <= cmparg,
          4: sold > cmparg, 5: sold >= cmparg}.get(cmp_)
    if ok is None:
        raise KernelError(E.ENOSYS)
    woken = fx.wake(k1, n1)
    if ok:
        woken += fx.wake(k2, n2)
    return woken


def _lock_pi(t, fx, key, addr: int, deadline: int | None, trylock: bool) -> int:
    w: Waiter | None = None

    def attempt() -> int:
        nonlocal w
        if w is not None and w.woken:
            return 0                # the owner handed it over (unlock or death)
        while True:
            word = _word(t, addr)
            owner = word & C.FUTEX_TID_MASK
            if owner == t.kernel.procs.vnr(t.proc, t.tid):      # the words hold tids as the tasks see them
                raise KernelError(E.EDEADLK)
            if owner == 0:          # free (perhaps OWNER_DIED): take it, keep the marks
                others = [x for x in fx.pi.get(key, ()) if x is not w]
                new = t.kernel.procs.vnr(t.proc, t.tid) | (word & C.FUTEX_OWNER_DIED) | (C.FUTEX_WAITERS if others else 0)
                if cas(t, addr, word, new) != word:
                    continue
                fx.dequeue_pi(w)
                return 0
            if t.kernel.procs.find_task(t.proc, owner) is None:
                raise KernelError(E.ESRCH)      # no such owner, and it did not die holding it
            if trylock:
                raise KernelError(E.EWOULDBLOCK)
            if not word & C.FUTEX_WAITERS and cas(t, addr, word, word | C.FUTEX_WAITERS) != word:
                continue
            break
        if w is None:
            w = fx.enqueue_pi(key, t, addr)
        raise Block(w.wq, deadline=deadline, retry=attempt, on_timeout=timed_out,
                    on_interrupt=lambda: fx.dequeue_pi(w), restart=E.ERESTARTNOINTR)

    def timed_out() -> int:
        if w is not None and w.woken:
            return 0
        fx.dequeue_pi(w)
        raise KernelError(E.ETIMEDOUT)
    return attempt()


def _unlock_pi(t, fx, key, addr: int) -> int:
    while True:
        word = _word(t, addr)
        if word & C.FUTEX_TID_MASK != t.kernel.procs.vnr(t.proc, t.tid):
            raise KernelError(E.EPERM)
        q = fx.pi.get(key)
        if q:
            if pi_handover(t.kernel, q[0], word, False):
                return 0
        elif cas(t, addr, word, 0) == word:
            return 0


@syscall("futex", status=PARTIAL, note="no FUTEX_FD, no requeue onto PI futexes; PI locks without priority boosting")
def sys_futex(t, addr, op, val, utime, addr2, val3):
    fx = t.kernel.futexes
    cmd = op & FUTEX_CMD_MASK & 0xFFFFFFFF
    private = bool(op & FUTEX_PRIVATE_FLAG)
    key = _key(t, fx, addr, private)
    val &= 0xFFFFFFFF
    if cmd in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        bitset = BITSET_MATCH_ANY if cmd == FUTEX_WAIT else val3 & 0xFFFFFFFF
        if not bitset:
            raise KernelError(E.EINVAL)
        deadline = None
        if utime:
            value = read_timespec(t, utime)
            if cmd == FUTEX_WAIT:
                deadline = after(value)
            else:
                deadline = monotonic_for(C.CLOCK_REALTIME if op & FUTEX_CLOCK_REALTIME
                                         else C.CLOCK_MONOTONIC, value, True, t.proc.ns.time)
        return _wait(t, fx, key, addr, val, deadline, bitset, private, cmd == FUTEX_WAIT)
    if cmd in (FUTEX_WAKE, FUTEX_WAKE_BITSET):
        bitset = BITSET_MATCH_ANY if cmd == FUTEX_WAKE else val3 & 0xFFFFFFFF
        if not bitset:
            raise KernelError(E.EINVAL)
        return fx.wake(key, val, bitset)
    if cmd in (FUTEX_REQUEUE, FUTEX_CMP_REQUEUE):
        nr_wake, nr_requeue = s32(val), s32(utime)
        if nr_wake < 0 or nr_requeue < 0:
            raise KernelError(E.EINVAL)
        key2 = _key(t, fx, addr2, private)
        if cmd == FUTEX_CMP_REQUEUE and _word(t, addr) != val3 & 0xFFFFFFFF:
            raise KernelError(E.EAGAIN)
        return fx.requeue(key, key2, nr_wake, nr_requeue)
    if cmd == FUTEX_WAKE_OP:
        return _wake_op(t, fx, key, _key(t, fx, addr2, private), addr2, val, utime & 0x7FFFFFFF, val3)
    if cmd in (FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_TRYLOCK_PI):
        deadline = None
        if utime and cmd != FUTEX_TRYLOCK_PI:
            value = read_timespec(t, utime)     # absolute: CLOCK_REALTIME for LOCK_PI, as Linux
            realtime = cmd == FUTEX_LOCK_PI or op & FUTEX_CLOCK_REALTIME
            deadline = monotonic_for(C.CLOCK_REALTIME if realtime else C.CLOCK_MONOTONIC, value, True,
                                     t.proc.ns.time)
        return _lock_pi(t, fx, key, addr, deadline, cmd == FUTEX_TRYLOCK_PI)
    if cmd == FUTEX_UNLOCK_PI:
        return _unlock_pi(t, fx, key, addr)
    if cmd not in _logged:
        _logged.add(cmd)
        printk.pr_notice(f"futex operation {cmd} not supported")
    raise KernelError(E.ENOSYS)


FUTEX_WAITV_MAX = 128
FUTEX2_SIZE_U32 = 0x02
FUTEX2_PRIVATE = FUTEX_PRIVATE_FLAG
_WAITV = struct.Struct("<QQII")     # struct futex_waitv: val, uaddr, flags, __reserved


@syscall("futex_waitv")
def sys_futex_waitv(t, waiters, nr, flags, timeout, clockid, *_):
    """Wait on up to 128 words at once; the index of the one woken is the
    result.  Every word is compared before the task queues on any (the
    kernel is single-threaded, so no wake slips in between)."""
    nr &= 0xFFFFFFFF
    if flags & 0xFFFFFFFF or not waiters or not 1 <= nr <= FUTEX_WAITV_MAX:
        raise KernelError(E.EINVAL)
    deadline = None
    if timeout:
        clk = s32(clockid)
        if clk not in (C.CLOCK_REALTIME, C.CLOCK_MONOTONIC):
            raise KernelError(E.EINVAL)
        deadline = monotonic_for(clk, read_timespec(t, timeout), True, t.proc.ns.time)
    fx = t.kernel.futexes
    raw = t.mem.read(waiters, nr * _WAITV.size)
    words = []
    for i in range(nr):
        val, uaddr, wflags, reserved = _WAITV.unpack_from(raw, i * _WAITV.size)
        if reserved or wflags & ~(FUTEX2_SIZE_U32 | FUTEX2_PRIVATE) or \
                not wflags & FUTEX2_SIZE_U32 or val >> 32:
            raise KernelError(E.EINVAL)
        words.append((_key(t, fx, uaddr, bool(wflags & FUTEX2_PRIVATE)), uaddr, val))
    for _k, uaddr, val in words:
        if _word(t, uaddr) != val:
            raise KernelError(E.EAGAIN)
    ws = [fx.enqueue(key, t, BITSET_MATCH_ANY) for key, _, _ in words]

    def woken() -> int:
        for w in ws:
            fx.dequeue(w)
        return next((i for i, w in enumerate(ws) if w.woken), -1)

    def done() -> int:
        if any(w.woken for w in ws):
            return woken()
        raise Block(*[w.wq for w in ws], deadline=deadline, retry=done, on_timeout=timed_out,
                    on_interrupt=woken, restart=E.ERESTARTSYS)

    def timed_out() -> int:
        i = woken()
        if i < 0:
            raise KernelError(E.ETIMEDOUT)
        return i
    return done()
