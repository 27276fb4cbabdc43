"""futex(2): WAIT, WAKE, their BITSET forms, REQUEUE, CMP_REQUEUE, WAKE_OP."""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.kernel import printk
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.futex import BITSET_MATCH_ANY
from umlpy.syscalls.table import PARTIAL, syscall

FUTEX_WAIT, FUTEX_WAKE, FUTEX_FD, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP = 0, 1, 2, 3, 4, 5
FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 9, 10
FUTEX_PRIVATE_FLAG = 128
FUTEX_CLOCK_REALTIME = 256
FUTEX_CMD_MASK = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
_logged: set[int] = set()


def _word(t, addr: int) -> int:
    if addr & 3:
        raise KernelError(E.EINVAL)
    return struct.unpack("<I", t.mem.read(addr, 4))[0]


def _wait(t, fx, key, addr: int, val: int, deadline: int | None, bitset: int) -> int:
    if _word(t, addr) != val & 0xFFFFFFFF:
        raise KernelError(E.EAGAIN)
    w = fx.enqueue(key, t, bitset)

    def done() -> int:
        if w.woken:
            return 0
        raise Block(w.wq, deadline=deadline, retry=done, on_timeout=timed_out,
                    on_interrupt=lambda: fx.dequeue(w),
                    restart=E.ERESTARTSYS if deadline is None else E.ERESTART_RESTARTBLOCK)

    def timed_out() -> int:
        fx.dequeue(w)
        if w.woken:
            return 0
        raise KernelError(E.ETIMEDOUT)
    return done()


def _wake_op(t, fx, k1, k2, addr2: int, n1: int, n2: int, op: int) -> int:
    """FUTEX_WAKE_OP: *addr2 op= oparg; wake n1 at addr; if old cmp cmparg, wake n2 at addr2."""
    kind, cmp_, oparg, cmparg = (op >> 28) & 7, (op >> 24) & 15, (op >> 12) & 0xFFF, op & 0xFFF
    if op >> 31:
        oparg = 1 << oparg
    if oparg & 0x800:
        oparg -= 0x1000
    if cmparg & 0x800:
        cmparg -= 0x1000
    old = _word(t, addr2)
    new = {0: oparg, 1: old + oparg, 2: old | oparg, 3: old & ~oparg, 4: old ^ oparg}.get(kind)
    if new is None:
        raise KernelError(E.ENOSYS)
    t.mem.write(addr2, struct.pack("<I", new & 0xFFFFFFFF))
    sold = old - (1 << 32) if old & 0x80000000 else old
    ok = {0: sold == cmparg, 1: sold != cmparg, 2: sold < cmparg, 3: sold <= cmparg,
          4: sold > cmparg, 5: sold >= cmparg}.get(cmp_)
    if ok is None:
        raise KernelError(E.ENOSYS)
    woken = fx.wake(k1, n1)
    if ok:
        woken += fx.wake(k2, n2)
    return woken


@syscall("futex", status=PARTIAL, note="no PI futexes or FUTEX_FD")
def sys_futex(t, addr, op, val, utime, addr2, val3):
    fx = t.kernel.futexes
    cmd = op & FUTEX_CMD_MASK & 0xFFFFFFFF
    private = bool(op & FUTEX_PRIVATE_FLAG)
    key = fx.key(t, addr, private)
    val &= 0xFFFFFFFF
    if cmd in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        bitset = BITSET_MATCH_ANY if cmd == FUTEX_WAIT else val3 & 0xFFFFFFFF
        if not bitset:
            raise KernelError(E.EINVAL)
        deadline = None
        if utime:
            s, ns = structs.unpack_timespec(t.mem.read(utime, 16))
            if s < 0 or not 0 <= ns < 10**9:
                raise KernelError(E.EINVAL)
            value = s * 10**9 + ns
            if cmd == FUTEX_WAIT:
                deadline = clock.monotonic_ns() + value
            elif op & FUTEX_CLOCK_REALTIME:
                deadline = clock.monotonic_ns() + value - clock.realtime_ns()
            else:
                deadline = value
        return _wait(t, fx, key, addr, val, deadline, bitset)
    if cmd in (FUTEX_WAKE, FUTEX_WAKE_BITSET):
        bitset = BITSET_MATCH_ANY if cmd == FUTEX_WAKE else val3 & 0xFFFFFFFF
        if not bitset:
            raise KernelError(E.EINVAL)
        return fx.wake(key, val, bitset)
    if cmd in (FUTEX_REQUEUE, FUTEX_CMP_REQUEUE):
        if cmd == FUTEX_CMP_REQUEUE and _word(t, addr) != val3 & 0xFFFFFFFF:
            raise KernelError(E.EAGAIN)
        return fx.requeue(key, fx.key(t, addr2, private), val, utime & 0x7FFFFFFF)
    if cmd == FUTEX_WAKE_OP:
        return _wake_op(t, fx, key, fx.key(t, addr2, private), addr2, val, utime & 0x7FFFFFFF, val3)
    if cmd not in _logged:
        _logged.add(cmd)
        printk.pr_notice(f"futex operation {cmd} not supported")
    raise KernelError(E.ENOSYS)
