"""Unix sockets in a checkpoint: unnamed ones (socketpair's, or a
datagram socket connected to one), with the bytes and messages queued
on them and the credentials those carry.  Named, listening or filtered
sockets, and messages passing fds, are refused (checkpoint/dump.py).

The links between sockets (a peer, the sender a queued message is
charged to) name other open file descriptions by their index in the
image, so they are saved and made again once every description has one.
"""
from __future__ import annotations

from collections import deque

from umlpy.abi import consts as C
from umlpy.checkpoint import image
from umlpy.net import unix as U
from umlpy.net.socket import SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM

TYPES = (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET)
U32 = 1 << 32
MAX_QUEUED = 1 << 26        # bytes of one queue a restore takes


def savable(f) -> bool:
    """An unnamed unix socket this module saves (its owner and O_ASYNC
    are checkpoint/dump.py's to look at, as for every anonymous file)."""
    return isinstance(f, U.UnixSocket) and f.stype in TYPES and f.name is None and not f.listening \
        and not f.pending and f.bound_inode is None and f.sk_filter is None \
        and (f.gone_peer_name is None or f.gone_peer_name[0] is None) \
        and not any(m.files for _off, m in f.stream_meta) and not any(m.files or m.sender for m in f.msgs) \
        and (f.peer is None or isinstance(f.peer, U.UnixSocket))


def _creds(c) -> list | None:
    return None if c is None else list(c)


def save(f) -> dict:
    """What one socket holds; `links` adds how it reaches others."""
    return {"kind": "unix", "type": f.stype, "shut": f.shut, "peer_shut": f.peer_shut,
            "passcred": f.passcred, "peercred": _creds(f.peercred), "connected_once": f.connected_once,
            "gone_peer": f.gone_peer_name is not None, "error": f.error,
            "sndbuf": f.sndbuf, "rcvbuf": f.rcvbuf, "rcvbuf_locked": f.rcvbuf_locked, "rcvlowat": f.rcvlowat,
            "opts": [[k, v] for k, v in sorted(f.opts.items())], "linger": list(f.linger),
            "rcvtimeo": f.rcvtimeo, "sndtimeo": f.sndtimeo,
            "stream": bytes(f.stream).hex(),
            "stream_creds": [[off, list(m.creds)] for off, m in f.stream_meta if m.creds],
            "msgs": [[m.data.hex(), _creds(m.creds), m.size] for m in f.msgs]}


def links(f, index) -> dict:
    """The peer and each queued message's sender as indexes (-1: none);
    index(file) is a description's index in the image."""
    return {"peer": -1 if f.peer is None else index(f.peer),
            "charged_to": [-1 if m.charged_to is None else index(m.charged_to) for m in f.msgs]}


def _read_creds(o: image.Reader, v) -> tuple[int, int, int] | None:
    if v is None:
        return None
    if not (isinstance(v, list) and len(v) == 3 and all(type(x) is int and 0 <= x < U32 for x in v)):
        raise image.ImageError(f"manifest: {o.where}: bad credentials")
    return tuple(v)


def _timeout(o: image.Reader, key: str) -> int | None:
    return None if o.doc.get(key) is None else o.int(key, 0, 1 << 62)


def make(t, o: image.Reader, flags: int) -> U.UnixSocket:
    """The socket with what it held; its links come with `link`."""
    stype = o.int("type", 0, 16)
    if stype not in TYPES:
        raise image.ImageError(f"manifest: {o.where}.type: not a unix socket type")
    s = U.UnixSocket(t, stype, flags & C.O_NONBLOCK)
    s.shut, s.peer_shut = o.int("shut", 0, 4), o.int("peer_shut", 0, 4)
    s.passcred, s.connected_once = o.bool("passcred"), o.bool("connected_once")
    s.peercred = _read_creds(o, o.doc.get("peercred"))
    s.gone_peer_name = (None,) if o.bool("gone_peer") else None
    s.error = o.int("error", 0, 4096)
    s.sndbuf, s.rcvbuf = o.int("sndbuf", 0, U32), o.int("rcvbuf", 0, U32)
    s.rcvbuf_locked, s.rcvlowat = o.bool("rcvbuf_locked"), o.int("rcvlowat", 0, U32)
    s.opts = {k: v for k, v in o.list_of_ints("opts", 2, (0, -U32), (U32, U32))}
    s.linger = tuple(o.ints("linger", 0, U32, 2))
    s.rcvtimeo, s.sndtimeo = _timeout(o, "rcvtimeo"), _timeout(o, "sndtimeo")
    s.stream = bytearray(o.hex("stream", MAX_QUEUED))
    meta = o.doc.get("stream_creds")
    if not isinstance(meta, list) or not all(isinstance(m, list) and len(m) == 2 and type(m[0]) is int
                                             and 0 <= m[0] < len(s.stream) for m in meta):
        raise image.ImageError(f"manifest: {o.where}.stream_creds: not a list of [offset, creds]")
    s.stream_meta = [(off, U.Message(b"", [], _read_creds(o, c))) for off, c in sorted(meta)]
    msgs = o.doc.get("msgs")
    if not isinstance(msgs, list) or not all(isinstance(m, list) and len(m) == 3 and isinstance(m[0], str)
                                             and len(m[0]) <= 2 * MAX_QUEUED and type(m[2]) is int
                                             and 0 <= m[2] < U32 for m in msgs):
        raise image.ImageError(f"manifest: {o.where}.msgs: not a list of [data, creds, size]")
    try:
        s.msgs = deque(U.Message(bytes.fromhex(d), [], _read_creds(o, c), None, None, size) for d, c, size in msgs)
    except ValueError:
        raise image.ImageError(f"manifest: {o.where}.msgs: data not hex") from None
    return s


def link(s: U.UnixSocket, o: image.Reader, made: dict) -> None:
    """Peer and senders by index (made: index -> the description), and
    the memory the queues hold counted again, as their sends counted it."""
    def sock(i: int) -> U.UnixSocket:
        g = made.get(i)
        if not isinstance(g, U.UnixSocket):
            raise image.ImageError(f"manifest: {o.where}: a link to no unix socket")
        return g
    peer = o.int("peer", -1, U32)
    if peer >= 0:
        s.peer = sock(peer)
        if s.peer.stype != s.stype or s.stype != SOCK_DGRAM and made.get(peer) is s:
            raise image.ImageError(f"manifest: {o.where}.peer: not a peer")
    charged = o.ints("charged_to", -1, U32, len(s.msgs))
    for m, i in zip(s.msgs, charged):
        if i >= 0:
            m.charged_to = sock(i)
            m.charged_to.wmem += m.size
            s.net.sk_mem += m.size
    s.net.sk_mem += len(s.stream)


def check_pairs(made: dict) -> None:
    """A stream or seqpacket peer is mutual."""
    for s in made.values():
        if isinstance(s, U.UnixSocket) and s.stype != SOCK_DGRAM and s.peer is not None and s.peer.peer is not s:
            raise image.ImageError("manifest: a unix stream socket whose peer is another's")
