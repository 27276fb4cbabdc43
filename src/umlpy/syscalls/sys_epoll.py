"""epoll: an interest list over any guest fd, level- or edge-triggered.

Each entry watches the wait queues its file announces changes on
(File.poll_queues); a wake puts the entry on the epoll's ready list (Linux's
rdllist) and wakes the epoll's own queue, so epoll files nest and can
themselves be polled.  epoll_wait polls only the ready list's entries: one
found not ready leaves it until its next wake, a level-triggered one that
reported goes back to its tail, an edge-triggered one waits for its next
wake.  (It polled every entry at every wait: 36 ms a wait with 50 000
registered.)  A file with no queues is always ready and stays listed.
"""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.mm import Charge, MemBudget
from umlpy.kernel.tunables import EP_ITEM_COST
from umlpy.kernel.wait import WaitQueue
from umlpy.syscalls.sys_poll import ms_end_time, read_sigmask, timespec_end_time, wait_under
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import access_ok, s32
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLERR, POLLHUP, POLLIN, File

EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
EPOLLEXCLUSIVE = 1 << 28
EPOLLWAKEUP = 1 << 29
EPOLLONESHOT = 1 << 30
EPOLLET = 1 << 31
EPOLL_EVENTS = 0xFFFF
EP_MAX_EVENTS = 0x7FFFFFFF // 12
_EVENT = struct.Struct("<IQ")    # packed struct epoll_event on x86-64


class Entry:
    __slots__ = ("fd", "file", "events", "data", "disabled", "queues", "ep", "callback", "charged")

    def __init__(self, ep, fd: int, file: File, events: int, data: int) -> None:
        self.ep = ep
        self.fd = fd
        self.file = file
        self.events = events
        self.data = data
        self.disabled = False
        ep.charge(1)        # first: ENOMEM leaves nothing registered
        self.charged = True
        self.queues = file.poll_queues()
        exclusive = bool(events & EPOLLEXCLUSIVE)
        self.callback = self.on_wake_exclusive if exclusive else self.on_wake
        for q in self.queues:
            q.watch(self.callback, exclusive)
        if not hasattr(file, "on_last_close"):
            file.on_last_close = []
        file.on_last_close.append(self.forget)
        _refs(file).append(self)
        self.poll_now()

    def poll_now(self) -> None:
        """ep_insert's and ep_modify's ep_item_poll: on the ready list's
        tail if ready now (where it is if there already); otherwise a
        later wake puts it there, so the list keeps the order in which
        files became ready, as epoll_wait reports them."""
        if self.wants_now():
            self.ep.rdl[self] = None

    def wants_now(self) -> bool:
        """The file has events the entry waits for."""
        return bool(self.file.poll() & self.events & EPOLL_EVENTS)

    @property
    def changed(self) -> bool:
        """On the ready list: woken since it was last found not ready (what
        a checkpoint keeps)."""
        return self in self.ep.rdl

    @changed.setter
    def changed(self, on: bool) -> None:
        if on:
            self.ep.rdl[self] = None
        else:
            self.ep.rdl.pop(self, None)

    def forget(self) -> None:
        """The file's last fd is closed: Linux removes it from every epoll."""
        self.ep.entries.pop((self.fd, id(self.file)), None)
        self.drop()

    def _link(self) -> None:
        """A wake puts the entry at the ready list's tail, also if it was
        there: Linux links an item only on a wake for events it wants
        (ep_poll_callback's key check), and a wake here carries no key, so
        an entry a wake for other events (a POLLOUT for an EPOLLIN entry)
        put there earlier would otherwise be reported ahead of files that
        became ready before it."""
        rdl = self.ep.rdl
        rdl.pop(self, None)
        rdl[self] = None

    def on_wake(self) -> None:
        self._link()
        self.ep.wq.wake_all()

    def on_wake_exclusive(self) -> bool:
        """True when this wake reached a task waiting in epoll_wait for
        events the entry wants: the wake then stops here (ep_poll_callback's
        ewake), so one event wakes one of many exclusive waiters."""
        self._link()
        woke = bool(self.ep.wq.waiters) and self.wants_now()
        self.ep.wq.wake_all()
        return woke

    def drop(self) -> None:
        self.ep.rdl.pop(self, None)
        for q in self.queues:
            q.unwatch(self.callback)
        hooks = getattr(self.file, "on_last_close", [])
        if self.forget in hooks:
            hooks.remove(self.forget)
        refs = _refs(self.file)
        if self in refs:
            refs.remove(self)
        if self.charged:
            self.charged = False
            self.ep.charge(-1)


def _refs(file: File) -> list[Entry]:
    """The epoll entries watching a file (Linux's file->f_ep->refs)."""
    refs = getattr(file, "epoll_refs", None)
    if refs is None:
        refs = file.epoll_refs = []
    return refs


class EpollFile(File):
    kind = "[eventpoll]"

    def __init__(self, flags: int, budget: MemBudget, watches: dict | None = None, uid: int = 0) -> None:
        super().__init__(None, anon_inode(), flags)
        self.entries: dict[tuple[int, int], Entry] = {}   # (fd, id(file)) -> entry
        self.rdl: dict[Entry, None] = {}    # the ready list, in order: entries woken since last found idle
        self.wq = WaitQueue("epoll")
        self.watches, self.uid = watches, uid   # the kernel's count per user, and its creator's
        # the entries' epitems in RAM: root may watch as many uids, each up
        # to max_user_watches (4% of RAM)
        self.kmem = Charge(budget, self)

    def check_room(self, limit: int) -> None:
        """ep_insert: a user holds at most fs.epoll.max_user_watches."""
        if self.watches is not None and self.watches.get(self.uid, 0) >= limit:
            raise KernelError(E.ENOSPC)

    def charge(self, n: int) -> None:
        """One more watch of its creator's (n=1: ENOMEM past RAM) or one
        fewer (n=-1)."""
        if n > 0:
            self.kmem.add(EP_ITEM_COST)
        else:
            self.kmem.sub(EP_ITEM_COST)
        if self.watches is None:
            return
        left = self.watches.get(self.uid, 0) + n
        if left > 0:
            self.watches[self.uid] = left
        else:
            self.watches.pop(self.uid, None)

    def ready(self, maxevents: int, consume: bool) -> list[tuple[int, int]]:
        """Ready events, at most maxevents, from the ready list (consume:
        epoll_wait's ep_send_events; else a poll of the epoll itself).
        Reported level-triggered entries go back to the list's tail, so
        more ready fds than maxevents take turns."""
        out: list[tuple[int, int]] = []
        rdl = self.rdl
        for e in list(rdl):
            if len(out) >= maxevents:
                break
            rev = 0 if e.disabled else e.file.poll() & (e.events | POLLERR | POLLHUP) & EPOLL_EVENTS
            if not rev:
                del rdl[e]          # until its next wake
                continue
            out.append((rev, e.data))
            if consume:
                del rdl[e]
                if e.events & EPOLLONESHOT:
                    e.disabled = True
                elif not e.events & EPOLLET:
                    rdl[e] = None   # level-triggered: polled again at the next wait
        return out

    def poll(self) -> int:
        return POLLIN if self.ready(1, False) else 0

    def poll_queues(self) -> list:
        return [self.wq]

    def release(self) -> None:
        for e in self.entries.values():
            e.drop()
        self.entries.clear()
        self.rdl.clear()


def _epoll(t, fd: int) -> EpollFile:
    f = t.files.get(s32(fd))
    if not isinstance(f, EpollFile):
        raise KernelError(E.EINVAL)
    return f


@syscall("epoll_create1")
def sys_epoll_create1(t, flags, *_):
    if flags & ~C.O_CLOEXEC:
        raise KernelError(E.EINVAL)
    return t.files.install(EpollFile(C.O_RDWR, t.kernel.mem_budget, t.kernel.epoll_watches, t.proc.creds.uid),
                           bool(flags & C.O_CLOEXEC))


@syscall("epoll_create")
def sys_epoll_create(t, size, *_):
    if s32(size) <= 0:
        raise KernelError(E.EINVAL)
    return sys_epoll_create1(t, 0)


# Linux's limits on epoll graphs: how deep epolls nest, and how many wakeup
# paths of each length (past the first) may lead up from one file: without
# them a guest builds a graph whose loop check or whose every wake takes
# the kernel exponential time.
EP_MAX_NESTS = 4
PATH_LIMITS = (1000, 500, 100, 50, 10)
_TOO_DEEP = EP_MAX_NESTS + 1


def _loop_check(ep: EpollFile, to: EpollFile, files: list) -> bool:
    """Linux's ep_loop_check: may epoll `to` go into `ep`?  Not if `ep` is
    below `to` (a loop) or the chain through them would nest deeper than
    EP_MAX_NESTS.  Each epoll is visited once (its depth remembered); the
    other files met below `to` are collected in `files` for the path check."""
    below: dict[EpollFile, int] = {}

    def down(e: EpollFile, depth: int) -> int:
        if e in below:
            return below[e]
        below[e] = result = 0
        for entry in e.entries.values():
            sub = entry.file
            if isinstance(sub, EpollFile):
                result = _TOO_DEEP if sub is ep or depth > EP_MAX_NESTS else max(result, down(sub, depth + 1) + 1)
                if result > EP_MAX_NESTS:
                    break
            elif sub not in files:
                files.append(sub)
        below[e] = result
        return result

    above: dict[EpollFile, int] = {}

    def up(e: EpollFile) -> int:
        if e not in above:
            above[e] = max((up(entry.ep) + 1 for entry in _refs(e)), default=0)
        return above[e]

    depth = down(to, 0)
    return depth <= EP_MAX_NESTS and depth + 1 + up(ep) <= EP_MAX_NESTS


def _reverse_path_check(files: list) -> bool:
    """Linux's reverse_path_check: from each file, the wakeup paths up to
    an epoll nobody watches, counted by length, stay within PATH_LIMITS
    (paths of length one are not limited).  The count stops at the first
    limit passed, so the walk is bounded too."""
    def paths(refs: list, depth: int, counts: list) -> bool:
        if depth > EP_MAX_NESTS:
            return False
        for entry in refs:
            up = _refs(entry.ep)
            if not up:
                if depth:
                    counts[depth] += 1
                    if counts[depth] > PATH_LIMITS[depth]:
                        return False
            elif not paths(up, depth + 1, counts):
                return False
        return True
    return all(paths(_refs(f), 0, [0] * len(PATH_LIMITS)) for f in files)


def attach(ep: EpollFile, fd: int, f: File, events: int, data: int, limit: int) -> Entry:
    """ep_insert: a new entry of ep on f (by fd), once the graph it makes
    passes Linux's checks (ELOOP for a loop or nesting too deep, ENOSPC
    past the user's max_user_watches, EINVAL for too many wakeup paths).
    An epoll_ctl, and a restore's interest lists (checkpoint/restore.py),
    come through here."""
    key = (fd, id(f))
    files: list = []
    full_check = bool(_refs(ep)) or isinstance(f, EpollFile)   # a graph, not a plain epoll
    if isinstance(f, EpollFile):
        if not _loop_check(ep, f, files):
            raise KernelError(E.ELOOP)
    elif full_check:
        files.append(f)
    ep.check_room(limit)
    e = ep.entries[key] = Entry(ep, fd, f, events, data)
    if full_check and not _reverse_path_check(files):
        del ep.entries[key]
        e.drop()
        raise KernelError(E.EINVAL)
    return e


@syscall("epoll_ctl")
def sys_epoll_ctl(t, epfd, op, fd, event, *_):
    ep = _epoll(t, epfd)
    fd = s32(fd)
    f = t.files.get(fd)
    if f is ep:
        raise KernelError(E.EINVAL)
    if not f.can_poll():
        raise KernelError(E.EPERM)     # regular files, directories, /dev/null...
    key = (fd, id(f))
    events = data = 0
    if op != EPOLL_CTL_DEL:
        events, data = _EVENT.unpack(t.mem.read(event, _EVENT.size))
    if op == EPOLL_CTL_ADD:
        if key in ep.entries:
            raise KernelError(E.EEXIST)
        attach(ep, fd, f, events | POLLERR | POLLHUP, data, t.kernel.tunables.epoll_max_user_watches)
        ep.wq.wake_all()
    elif op == EPOLL_CTL_MOD:
        e = ep.entries.get(key)
        if e is None:
            raise KernelError(E.ENOENT)
        if e.events & EPOLLEXCLUSIVE:
            raise KernelError(E.EINVAL)
        e.events, e.data, e.disabled = events | POLLERR | POLLHUP, data, False
        e.poll_now()
        ep.wq.wake_all()
    elif op == EPOLL_CTL_DEL:
        e = ep.entries.pop(key, None)
        if e is None:
            raise KernelError(E.ENOENT)
        e.drop()
    else:
        raise KernelError(E.EINVAL)
    return 0


def do_epoll_wait(t, epfd: int, events: int, maxevents: int, end: int | None, mask: int | None = None) -> int:
    """end: the monotonic end time (sys_poll.end_time), 0 to poll once, None
    for no timeout; mask: the temporary signal mask in force meanwhile
    (epoll_pwait's, epoll_pwait2's), which a checkpoint puts in force again
    for the wait it carries on by restart_syscall (EpollWaitOn)."""
    maxevents = s32(maxevents)
    if maxevents <= 0 or maxevents > EP_MAX_EVENTS:
        raise KernelError(E.EINVAL)
    if not access_ok(events, maxevents * _EVENT.size):     # Linux's checks, in its order
        raise KernelError(E.EFAULT)
    ep = _epoll(t, epfd)

    def attempt():
        got = ep.ready(maxevents, True)
        if got:
            t.mem.write(events, b"".join(_EVENT.pack(ev, data) for ev, data in got))
            return len(got)
        if end is not None and clock.monotonic_ns() >= end:
            return 0
        # any signal ends it, a stop too (signal(7): never restarted)
        raise Block(ep.wq, deadline=end, retry=attempt, on_timeout=lambda: 0, restart=E.EINTR,
                    # (a block only for a timed wait a checkpoint could carry: epoll_wait is hot)
                    restart_fn=EpollWaitOn(t, s32(epfd), events, maxevents, end, mask) if end else None)
    return attempt()


def epoll_pwait(t, epfd: int, events: int, maxevents: int, end: int | None, mask: int | None) -> int:
    """An epoll wait under mask (if any), as epoll_pwait and epoll_pwait2 wait."""
    if mask is None:
        return do_epoll_wait(t, epfd, events, maxevents, end)
    return wait_under(t, mask, lambda: do_epoll_wait(t, epfd, events, maxevents, end, mask))


class EpollWaitOn:
    """How a checkpoint carries an epoll wait on to its end, under the
    temporary signal mask it had if any (a signal ends the wait with
    EINTR, never restarted: this goes with restart_syscall only after a
    restore, so that the wait keeps its time left)."""
    __slots__ = ("t", "epfd", "events", "maxevents", "end", "mask")

    def __init__(self, t, epfd: int, events: int, maxevents: int, end: int, mask: int | None = None) -> None:
        self.t, self.epfd, self.events, self.maxevents, self.end = t, epfd, events, maxevents, end
        self.mask = mask

    def __call__(self) -> int:
        return epoll_pwait(self.t, self.epfd, self.events, self.maxevents, self.end, self.mask)


@syscall("epoll_wait")
def sys_epoll_wait(t, epfd, events, maxevents, timeout, *_):
    return do_epoll_wait(t, epfd, events, maxevents, ms_end_time(timeout))


@syscall("epoll_pwait")
def sys_epoll_pwait(t, epfd, events, maxevents, timeout, sigmask, size):
    return epoll_pwait(t, epfd, events, maxevents, ms_end_time(timeout), read_sigmask(t, sigmask, size))


@syscall("epoll_pwait2")
def sys_epoll_pwait2(t, epfd, events, maxevents, tsp, sigmask, size):
    end = timespec_end_time(t, tsp)
    return epoll_pwait(t, epfd, events, maxevents, end, read_sigmask(t, sigmask, size))
