"""What every socket of a checkpoint carries, whatever its family
(net/socket.Socket): its pending error, buffer sizes, SO_RCVLOWAT, the
plain SO_ options set, SO_LINGER, the timeouts and the bound device,
under the same keys in every family's entry (checkpoint/unixsock.py,
inetsock.py, netlinksock.py)."""
from __future__ import annotations

from umlpy.checkpoint import image
from umlpy.net import dgram
from umlpy.net.socket import SCM_TIMESTAMP, SCM_TIMESTAMPNS
from umlpy.net.unix import truesize

U32 = 1 << 32


def save(f) -> dict:
    return {"error": f.error, "sndbuf": f.sndbuf, "rcvbuf": f.rcvbuf, "rcvbuf_locked": f.rcvbuf_locked,
            "rcvlowat": f.rcvlowat, "opts": [[k, v] for k, v in sorted(f.opts.items())],
            "linger": list(f.linger), "rcvtimeo": f.rcvtimeo, "sndtimeo": f.sndtimeo, "bound_dev": f.bound_dev}


def make(s, o: image.Reader) -> None:
    """The common part of a socket's entry into s, range-checked."""
    s.error = o.int("error", 0, 4096)
    s.sndbuf, s.rcvbuf, s.rcvlowat = o.int("sndbuf", 0, U32), o.int("rcvbuf", 0, U32), o.int("rcvlowat", 0, U32)
    s.rcvbuf_locked = o.bool("rcvbuf_locked")
    s.opts = {a: b for a, b in o.list_of_ints("opts", 2, (0, -U32), (U32, U32))}
    s.rcvtstamp = next((k for k in (SCM_TIMESTAMP, SCM_TIMESTAMPNS) if s.opts.get(k)), 0)
    s.linger = tuple(o.ints("linger", 0, U32, 2))
    s.rcvtimeo = None if o.doc.get("rcvtimeo") is None else o.int("rcvtimeo", 0, 1 << 62)
    s.sndtimeo = None if o.doc.get("sndtimeo") is None else o.int("sndtimeo", 0, 1 << 62)
    s.bound_dev = o.int("bound_dev", 0, 1 << 31)


def requeue(s, queue: dgram.RecvQueue, data: bytes, sender: bytes, meta: dict) -> None:
    """A datagram queued again on s's receive queue, charged as it was
    (its truesize, to the queue and the machine's socket memory)."""
    dg = dgram.Datagram(data, sender, meta, truesize(len(data)))
    queue.q.append(dg)
    queue.mem += dg.size
    s.net.sk_mem += dg.size
