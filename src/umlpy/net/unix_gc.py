"""Files in flight through AF_UNIX sockets (SCM_RIGHTS), and the collector
of the sockets nobody can reach any more.

A file sent and not yet received is held by the message carrying it.  A
unix socket sent through itself (or around a ring of sockets) and then
closed is held by nothing but such messages: no program can ever receive
it, and without a collector it would stay for good, a few kilobytes of the
kernel's memory each, as many as a loop of socketpair, sendmsg and close
makes.  As Linux (net/unix/garbage.c):

- what one user has in flight is bounded by its RLIMIT_NOFILE (a send past
  it is ETOOMANYREFS) unless it has CAP_SYS_RESOURCE or CAP_SYS_ADMIN
  (too_many_unix_fds);
- the collector runs when a unix socket is released while sockets are in
  flight, and before a send when more than 1 000 are (Linux: 16 000; a
  socket here costs several times what it costs Linux): a socket in flight
  whose every reference is an in-flight message is a candidate; the
  candidates some message outside them holds, and those their queues hold,
  are alive; the messages in the queues of the others are dropped, which
  releases them.
"""
from __future__ import annotations

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError

GC_TRIGGER = 1000       # Linux waits for 16 000 (UNIX_INFLIGHT_TRIGGER_GC); a socket here costs more


class Inflight:
    """The kernel's count of files in flight, per sending user (real uid),
    and the unix sockets among them (each counts its own, `inflight`)."""

    def __init__(self) -> None:
        self.by_user: dict[int, int] = {}
        self.sockets: dict = {}         # unix socket -> None, while one is in flight
        self.collecting = False

    def before_send(self, t) -> None:
        """A send that carries files: a collection first once many sockets
        are in flight (wait_for_unix_gc), then too_many_unix_fds."""
        if len(self.sockets) > GC_TRIGGER:
            self.collect()
        creds = t.proc.creds
        if self.by_user.get(creds.uid, 0) > t.proc.rlimit(C.RLIMIT_NOFILE)[0] \
                and not capable(creds, K.CAP_SYS_RESOURCE) and not capable(creds, K.CAP_SYS_ADMIN):
            raise KernelError(E.ETOOMANYREFS)

    def attach(self, uid: int, files: list) -> None:
        """unix_inflight: files now ride in a queued message."""
        self.by_user[uid] = self.by_user.get(uid, 0) + len(files)
        for f in files:
            if hasattr(f, "inflight"):
                f.inflight += 1
                self.sockets[f] = None

    def detach(self, uid: int, files: list) -> None:
        """unix_notinflight: they left the queue (received or dropped)."""
        left = self.by_user.get(uid, 0) - len(files)
        if left > 0:
            self.by_user[uid] = left
        else:
            self.by_user.pop(uid, None)
        for f in files:
            if hasattr(f, "inflight"):
                f.inflight -= 1
                if f.inflight <= 0:
                    self.sockets.pop(f, None)

    def collect(self) -> None:
        """unix_gc: drop what the unreachable in-flight sockets hold."""
        if self.collecting or not self.sockets:
            return
        self.collecting = True
        try:
            candidates = {s: s.inflight for s in self.sockets if s.refs == s.inflight}
            for s in candidates:
                for f in _queued_files(s):
                    if f in candidates:
                        candidates[f] -= 1
            alive: set = set()
            work = [s for s, outside in candidates.items() if outside > 0]
            while work:
                s = work.pop()
                if s not in alive:
                    alive.add(s)
                    work += [f for f in _queued_files(s) if f in candidates]
            dropped = []
            for s in candidates:
                if s not in alive:
                    for m in _queued_messages(s):
                        dropped += m.take_files()
            for f in dropped:
                f.put()
        finally:
            self.collecting = False


def _queued_messages(s) -> list:
    """The messages with files queued on s, and on the connections a
    listener has not accepted yet (scan_children)."""
    out = []
    for q in (s, *s.pending):
        out += [m for m in q.msgs if m.files]
        out += [m for _off, m in q.stream_meta if m.files]
    return out


def _queued_files(s) -> list:
    return [f for m in _queued_messages(s) for f in m.files]
