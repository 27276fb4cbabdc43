"""Unix sockets in a checkpoint: unnamed ones (socketpair's), named ones
(bound to a path of the disk or a tmpfs, found again by that path and
attached to its socket inode as bind attaches it; abstract names and
autobind's, registered again), listening ones with their backlog and
the connections not yet accepted, with the bytes and messages queued on
them, the credentials and the files (SCM_RIGHTS) those carry.  Filtered
sockets, and datagram sockets connected to a closed one, are refused
(checkpoint/dump.py).

The links between sockets (a peer, the sender a queued message is
charged to, a connection in a listener's backlog, a file in flight) name
other open file descriptions by their index in the image, so they are
saved and made again once every description has one; a description no
fd holds (in flight, or not accepted yet) is an entry of `files` too.
"""
from __future__ import annotations

from collections import deque

from umlpy.abi import consts as C
from umlpy.checkpoint import image, sockbase
from umlpy.kernel.errors import KernelError
from umlpy.net import unix as U
from umlpy.net.socket import SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM

TYPES = (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET)
U32 = 1 << 32
MAX_QUEUED = 1 << 26        # bytes of one queue a restore takes
MAX_NAME = 108              # sun_path


def _alive(s) -> bool:
    """Not released (a closed socket leaves the stack's registry)."""
    return s in s.registry


def savable(f) -> bool:
    """A unix socket of a type this module saves (its owner and O_ASYNC
    are checkpoint/dump.py's to look at, as for every anonymous file;
    what it holds is `refusal`'s)."""
    return isinstance(f, U.UnixSocket) and f.stype in TYPES


def refusal(f, file_ok, fstypes) -> str | None:
    """What a checkpoint cannot save in a unix socket or the files it
    holds (in flight, or connections not accepted), walked through:
    file_ok(file) says whether dump.py saves a file; fstypes: the
    filesystems a bound file may be on (the restore finds it there)."""
    todo, seen = [f], set()
    while todo:
        g = todo.pop()
        if id(g) in seen:
            continue
        seen.add(id(g))
        if not file_ok(g):
            return f"a file in flight or not accepted ({type(g).__name__})"
        if not isinstance(g, U.UnixSocket):
            continue
        if g.sk_filter is not None:
            return "a unix socket with a filter (SO_ATTACH_BPF)"
        if g.peer is not None and not _alive(g.peer):
            return "a unix datagram socket connected to a closed socket"
        d = bound_dentry(g)
        if g.bound_inode is not None and g.bound_inode.nlink and (
                d is None or d.inode is not g.bound_inode or not _live(d) or d.mount is None
                or d.mount.fstype not in fstypes):
            return "a unix socket bound to a file a restore does not find again"
        todo.extend(linked(g))
    return None


def _live(d) -> bool:
    """A dentry its parents still name (not removed nor replaced)."""
    while d.parent is not None:
        if d.parent.child(d.name) is not d:
            return False
        d = d.parent
    return True


def linked(f):
    """The descriptions a socket holds that no fd may hold: the
    connections in its backlog and the files in flight on its queues."""
    yield from f.pending
    for m in f.msgs:
        yield from m.files
    for _off, m in f.stream_meta:
        yield from m.files


def bound_dentry(f):
    """The dentry of a socket's bound file, None when it has none or the
    file was removed (its name stays, reaching nothing, as on Linux)."""
    d = f.bound_dentry
    if f.bound_inode is None or f.bound_inode.nlink == 0:
        return None
    return d


def _hex(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


def _creds(c) -> list | None:
    return None if c is None else list(c)


def save(f, path_of) -> dict:
    """What one socket holds; `links` adds how it reaches others.
    path_of(dentry): a bound file's absolute path."""
    d = bound_dentry(f)
    return {"kind": "unix", "type": f.stype, "shut": f.shut, "peer_shut": f.peer_shut,
            "name": _hex(f.name), "abstract": f.name is not None and f.net.unix_abstract.get(f.name) is f,
            "bound_path": None if d is None else path_of(d), "listening": f.listening, "backlog": f.backlog,
            "gone_peer_name": _hex(f.gone_peer_name[0]) if f.gone_peer_name else None,
            "passcred": f.passcred, "peercred": _creds(f.peercred), "connected_once": f.connected_once,
            "gone_peer": f.gone_peer_name is not None, **sockbase.save(f),
            "stream": bytes(f.stream).hex(),
            "stream_creds": [[off, list(m.creds)] for off, m in f.stream_meta if m.creds],
            "msgs": [[m.data.hex(), _creds(m.creds), m.size] for m in f.msgs],
            "senders": [_hex(m.sender) for m in f.msgs]}


def links(f, index) -> dict:
    """The peer, each queued message's sender (-1: none, or closed), the
    backlog and the files in flight as indexes; index(file) is a
    description's index in the image (dump.py gives one to a description
    no fd holds)."""
    return {"peer": -1 if f.peer is None else index(f.peer),
            "charged_to": [-1 if m.charged_to is None or not _alive(m.charged_to) else index(m.charged_to)
                           for m in f.msgs],
            "pending": [index(x) for x in f.pending],
            "msg_files": [[index(x) for x in m.files] for m in f.msgs],
            "stream_files": [[off, fs] for off, fs in sorted(_stream_files(f, index).items())]}


def _stream_files(f, index) -> dict:
    """The files in flight on a stream, by the offset of the byte they
    ride with (sends of no bytes leave two at one offset: one entry)."""
    out: dict = {}
    for off, m in f.stream_meta:
        if m.files:
            out.setdefault(off, []).extend(index(x) for x in m.files)
    return out


def _read_creds(o: image.Reader, v) -> tuple[int, int, int] | None:
    if v is None:
        return None
    if not (isinstance(v, list) and len(v) == 3 and all(type(x) is int and 0 <= x < U32 for x in v)):
        raise image.ImageError(f"manifest: {o.where}: bad credentials")
    return tuple(v)


def _opt_hex(o: image.Reader, key: str, limit: int) -> bytes | None:
    """A key these sockets' entries gained within version 3 (absent: None)."""
    return None if o.doc.get(key) is None else o.hex(key, limit)


def _name(o: image.Reader, key: str) -> bytes | None:
    """A sun_path as bind takes it: an abstract name (a NUL, then any
    bytes) or a path (no NUL), at most 108 bytes, not empty."""
    name = _opt_hex(o, key, MAX_NAME)
    if name is not None and (not name or not name.startswith(b"\0") and b"\0" in name):
        raise image.ImageError(f"manifest: {o.where}.{key}: not a unix socket name")
    return name


def _bind_again(s: U.UnixSocket, o: image.Reader, lookup) -> None:
    """The socket's name, bound again as bind bound it: an abstract name
    registered, a path's socket inode (found by its path: the disk's, or
    a restored tmpfs's) attached."""
    s.name = _name(o, "name")
    abstract = o.has("abstract") and o.bool("abstract")
    path = None if o.doc.get("bound_path") is None else o.path("bound_path")
    if abstract and (path is not None or not (s.name or b"").startswith(b"\0")) \
            or path is not None and (s.name is None or s.name.startswith(b"\0")):
        raise image.ImageError(f"manifest: {o.where}.name: a name that does not go with how it is bound")
    if abstract:
        try:
            U.abstract_bind(s.name, s)
        except KernelError:
            raise image.ImageError(f"manifest: {o.where}.name: an abstract name bound twice") from None
    if path is not None:
        d = lookup(path)
        if d.inode.fmt != C.S_IFSOCK or getattr(d.inode, "socket", None) is not None:
            raise image.ImageError(f"manifest: {o.where}.bound_path: not a free socket inode")
        d.inode.socket = s
        s.bound_inode, s.bound_dentry = d.inode, d


def make(t, o: image.Reader, flags: int, lookup) -> U.UnixSocket:
    """The socket with what it held; its links come with `link`.
    lookup(path): the dentry at an absolute path."""
    stype = o.int("type", 0, 16)
    if stype not in TYPES:
        raise image.ImageError(f"manifest: {o.where}.type: not a unix socket type")
    s = U.UnixSocket(t, stype, flags & C.O_NONBLOCK)
    s.shut, s.peer_shut = o.int("shut", 0, 4), o.int("peer_shut", 0, 4)
    s.passcred, s.connected_once = o.bool("passcred"), o.bool("connected_once")
    s.peercred = _read_creds(o, o.doc.get("peercred"))
    s.gone_peer_name = (_name(o, "gone_peer_name"),) if o.bool("gone_peer") else None
    _bind_again(s, o, lookup)
    s.listening = o.has("listening") and o.bool("listening")
    s.backlog = o.int("backlog", 0, U.MAX_BACKLOG + 1) if o.has("backlog") else 0
    sockbase.make(s, o)
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
    senders = o.doc.get("senders", [None] * len(msgs))
    if not isinstance(senders, list) or len(senders) != len(msgs):
        raise image.ImageError(f"manifest: {o.where}.senders: not one per message")
    names = [_name(image.Reader({"sender": x}, o.where), "sender") for x in senders]
    try:
        s.msgs = deque(U.Message(bytes.fromhex(d), [], _read_creds(o, c), name, None, size)
                       for (d, c, size), name in zip(msgs, names))
    except ValueError:
        raise image.ImageError(f"manifest: {o.where}.msgs: data not hex") from None
    return s


def link(s: U.UnixSocket, o: image.Reader, made: dict, held: dict) -> None:
    """Peer, senders, backlog and files in flight by index (made: index
    -> the description; held: index -> how links hold it, "pending" or
    "flight", for `check_held`), and the memory the queues hold counted
    again, as their sends counted it."""
    def sock(i: int) -> U.UnixSocket:
        g = made.get(i)
        if not isinstance(g, U.UnixSocket):
            raise image.ImageError(f"manifest: {o.where}: a link to no unix socket")
        return g

    def in_flight(i: int):
        g = made.get(i)
        if g is None:
            raise image.ImageError(f"manifest: {o.where}: a file in flight that is not in files")
        held.setdefault(i, []).append("flight")
        return g.get()
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
    pending = o.ints("pending", 0, U32) if o.has("pending") else []
    for i in pending:
        x = sock(i)
        held.setdefault(i, []).append("pending")
        if x.stype != s.stype or x.listening or x is s:
            raise image.ImageError(f"manifest: {o.where}.pending: not a connection to this socket")
        s.pending.append(x)
    if s.listening and (s.stype == SOCK_DGRAM or s.peer is not None or s.name is None
                        or len(s.pending) > s.backlog) or s.pending and not s.listening:
        raise image.ImageError(f"manifest: {o.where}: a listening socket that could not listen")
    files = o.doc.get("msg_files", [[] for _m in s.msgs])
    if not isinstance(files, list) or len(files) != len(s.msgs) or not all(
            isinstance(fs, list) and len(fs) <= U.SCM_MAX_FD and all(type(i) is int for i in fs) for fs in files):
        raise image.ImageError(f"manifest: {o.where}.msg_files: not a list of indexes per message")
    for m, fs in zip(s.msgs, files):
        m.files = [in_flight(i) for i in fs]
    metas = dict(s.stream_meta)
    entries = o.doc.get("stream_files", [])
    bad = image.ImageError(f"manifest: {o.where}.stream_files: not a list of [offset, indexes]")
    if not isinstance(entries, list):
        raise bad
    for e in entries:
        if not isinstance(e, list) or len(e) != 2 or type(e[0]) is not int or not 0 <= e[0] <= len(s.stream) \
                or not isinstance(e[1], list) or not 0 < len(e[1]) <= U.SCM_MAX_FD \
                or not all(type(i) is int for i in e[1]) or metas.get(e[0], U.Message(b"")).files:
            raise bad
        metas.setdefault(e[0], U.Message(b"")).files = [in_flight(i) for i in e[1]]
    s.stream_meta = sorted(metas.items(), key=lambda x: x[0])


def check_pairs(made: dict) -> None:
    """A stream or seqpacket peer is mutual."""
    for s in made.values():
        if isinstance(s, U.UnixSocket) and s.stype != SOCK_DGRAM and s.peer is not None and s.peer.peer is not s:
            raise image.ImageError("manifest: a unix stream socket whose peer is another's")


def check_held(held: dict, in_fds: set, extra: set) -> None:
    """A connection not accepted is in one backlog and no fd; a
    description no fd holds is held by a backlog or a message."""
    for i, how in held.items():
        if "pending" in how and (len(how) > 1 or i in in_fds):
            raise image.ImageError(f"manifest: files[{i}]: a connection not accepted that is held elsewhere")
    for i in extra:
        if i not in held:
            raise image.ImageError(f"manifest: files[{i}]: a file nothing holds")
