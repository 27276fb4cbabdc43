"""Live migration: the machine copied to a `umlpy restore --listen SOCKET`
that waits for it, while the guest runs, then frozen for a last copy.

Pre-copy runs in rounds from the event loop (between two batches of
events, so the guest is served between rounds): each round sends every
nonzero private page of every process that differs from the copy last
sent.  The pages that changed are found by that comparison: this host has
no soft-dirty bits (CONFIG_MEM_SOFT_DIRTY is off), and the comparison
finds the same pages at the price of reading the memory again each round.
When a round finds little left (or after ROUNDS), the machine is frozen
and written down the stream as a checkpoint (dump.save), a page the
target already holds going as a reference to it; the disks are synced
and their host locks let go before the image's last message, so that the
target can open them.  The downtime is from the freeze to the target's
word that its processes are rebuilt and run.  If the target fails instead,
the disks are locked again and the machine goes on here.
"""
from __future__ import annotations

import bisect

from arch_um import clock, migwire
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.checkpoint import dump, image
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

PAGE = C.PAGE_SIZE
ROUNDS = 8              # pre-copy rounds at most
ENOUGH = 1 << 20        # a round that finds less than this changed is the last
RUN = 1 << 20           # the most bytes of pages one message carries
ACK_TIMEOUT = 120.0     # how long the target may take to restore


class Mirror:
    """What the target holds of one blob, as the pieces of memory last read
    (dump.resident_pieces) by their address, each with the runs of its
    nonzero pages: those pages are at the target as the piece shows them;
    its zero pages promise nothing.  A piece put replaces every piece it
    overlaps (their pages now say only what the new piece says)."""

    def __init__(self) -> None:
        self.pieces: dict[int, tuple[bytes, list[tuple[int, int]]]] = {}
        self.starts: list[int] = []         # sorted

    def get(self, addr: int, n: int) -> tuple[bytes | None, list[tuple[int, int]]]:
        """(the piece of n bytes at addr, its nonzero runs), or (None, [])."""
        got = self.pieces.get(addr)
        return got if got is not None and len(got[0]) == n else (None, [])

    def put(self, addr: int, data: bytes, runs: list[tuple[int, int]]) -> None:
        i = bisect.bisect_left(self.starts, addr - image.CHUNK)
        while i < len(self.starts) and self.starts[i] < addr + len(data):
            s = self.starts[i]
            if s + len(self.pieces[s][0]) > addr:
                del self.pieces[s], self.starts[i]
            else:
                i += 1
        self.pieces[addr] = data, runs
        bisect.insort(self.starts, addr)


def changed_pages(data: bytes, old: bytes | None, runs: list[tuple[int, int]]):
    """(offset, length) of the nonzero runs of data (its `runs`) that differ
    from old (the mirror's piece, if any), cut where pages are the same."""
    if old is None:
        yield from runs
        return
    for off, n in runs:
        first = None
        for i in range(off, off + n, PAGE):
            if data[i:i + PAGE] != old[i:i + PAGE]:
                first = i if first is None else first
            elif first is not None:
                yield first, i - first
                first = None
        if first is not None:
            yield first, off + n - first


class _Pages:
    """Pages of one blob on their way: runs of neighbours, one message each,
    `kind` "pre" (pre-copy), "pages" (the final copy's) or "ref" (pages
    the target holds from pre-copy: only their address goes)."""

    def __init__(self, conn: migwire.Conn, blob: str) -> None:
        self.conn, self.blob = conn, blob
        self.kind, self.addr, self.size, self.parts = "", 0, 0, []

    def add(self, kind: str, addr: int, n: int, data=None) -> None:
        """n bytes of pages at addr (data: them, None for a reference)."""
        if self.size and (kind != self.kind or addr != self.addr + self.size or self.size + n > RUN):
            self.flush()
        if not self.size:
            self.kind, self.addr = kind, addr
        if data is not None:
            self.parts.append(data)
        self.size += n

    def flush(self) -> None:
        if not self.size:
            return
        head = {"t": self.kind, "blob": self.blob, "addr": self.addr, "count": self.size // PAGE}
        self.conn.send(head, b"".join(self.parts))
        self.size, self.parts = 0, []


class StreamWriter:
    """image.Writer's part in a migration's final copy: blobs and the
    manifest go down the stream (before_final lets the disks go first)."""

    def __init__(self, conn: migwire.Conn, sent: dict[str, Mirror], before_final) -> None:
        self.conn, self.sent, self.before_final = conn, sent, before_final
        self.size = 0           # bytes sent
        self.refs = 0           # bytes the target had already

    def blob(self, name: str) -> StreamBlob:
        self.conn.send({"t": "blob", "blob": name})
        return StreamBlob(self, name)

    def finish(self, manifest: dict) -> int:
        self.before_final()
        self.conn.send({"t": "final", "manifest": manifest})
        return self.size


class StreamBlob:
    def __init__(self, w: StreamWriter, name: str) -> None:
        self.w, self.name = w, name
        self.have = w.sent.get(name, Mirror())
        self.run = _Pages(w.conn, name)

    def write(self, data: bytes) -> None:
        self.run.flush()
        self.w.conn.send({"t": "bytes", "blob": self.name}, data)
        self.w.size += len(data)

    def write_piece(self, addr: int, data: bytes) -> list[tuple[int, int]]:
        """A piece's nonzero runs (returned): what the target holds as a
        reference, the rest as pages, in the order of the runs."""
        old, runs = self.have.get(addr, len(data))
        if old == data:
            for off, n in runs:
                self._ref(addr + off, n)
            return runs
        runs = image.nonzero_runs(data)
        changed = list(changed_pages(data, old, runs))      # each inside one of the runs
        j = 0
        for off, n in runs:
            at = off
            while j < len(changed) and changed[j][0] < off + n:
                c_off, c_n = changed[j]
                self._ref(addr + at, c_off - at)
                self.run.add("pages", addr + c_off, c_n, data[c_off:c_off + c_n])
                self.w.size += c_n
                at = c_off + c_n
                j += 1
            self._ref(addr + at, off + n - at)
        return runs

    def _ref(self, addr: int, n: int) -> None:
        if n > 0:
            self.run.add("ref", addr, n)
            self.w.refs += n

    def __enter__(self) -> StreamBlob:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.run.flush()


class Migration:
    def __init__(self, k, conn: migwire.Conn) -> None:
        self.k, self.conn = k, conn
        self.sent: dict[str, Mirror] = {}       # blob -> what the target holds of it
        self.rounds = 0
        self.precopied = 0

    def precopy(self) -> bool:
        """One round; whether another is worth it."""
        n = 0
        for p in list(self.k.procs.by_pid.values()):
            if p.exited or p.zombie or p.mm is None or not p.threads:
                continue
            name = dump.mem_blob(p.pid)
            have = self.sent.setdefault(name, Mirror())
            run = _Pages(self.conn, name)
            try:
                for start, end, ino in dump.private_vmas(p.leader):
                    for addr, data in dump.resident_pieces(p.leader, start, end, ino):
                        old, _runs = have.get(addr, len(data))
                        if old == data:
                            continue
                        runs = image.nonzero_runs(data)
                        for off, c in changed_pages(data, old, runs):
                            run.add("pre", addr + off, c, data[off:off + c])
                            n += c
                        have.put(addr, data, runs)
            except KernelError:
                pass            # it went meanwhile: the final copy has what is left
            run.flush()
        self.rounds += 1
        self.precopied += n
        return n >= ENOUGH and self.rounds < ROUNDS

    def final(self) -> tuple[dict, str]:
        """Freeze, send the machine, wait for the target to run it; returns
        what freeze stopped and the summary.  KernelError: the target did
        not take over (the machine was thawed, its disks locked again)."""
        started = clock.monotonic_ns()
        try:
            frozen, w, nprocs, size = dump.save(self.k, lambda: StreamWriter(self.conn, self.sent,
                                                                             self._let_disks_go))
        except migwire.WireError as e:       # (save thawed the machine)
            self._lock_disks_again()
            raise KernelError(E.EIO, f"migrate: {e}; the machine goes on here") from None
        try:
            head, _ = self.conn.recv(ACK_TIMEOUT)
            if head.get("t") != "running":
                raise migwire.WireError(f"the target answered {head.get('t')!r}")
        except migwire.WireError as e:
            self._lock_disks_again()
            dump.thaw(self.k, frozen)
            raise KernelError(E.EIO, f"migrate: the target did not take over ({e}); "
                                     "the machine goes on here") from None
        down = (clock.monotonic_ns() - started) / 1e6
        msg = (f"migrate: {nprocs} processes, {self.rounds} pre-copy rounds ({self.precopied >> 10}K), "
               f"final copy {size >> 10}K sent and {w.refs >> 10}K already there, downtime {down:.1f} ms")
        printk.pr_info(msg)
        return frozen, msg

    def _let_disks_go(self) -> None:
        for u in self.k.ubds:
            u.unlock()

    def _lock_disks_again(self) -> None:
        for u in self.k.ubds:
            if not u.lock_again():
                printk.pr_err(f"{u.spec.name}: its image is in use by another instance since the migration")


def start(k, target: str) -> Migration:
    """Connect to the target listening at the unix socket target and greet
    it (a passing state, dump.Busy, is for the final copy to wait out)."""
    try:
        dump.check_supported(k)
    except dump.Busy:
        pass
    try:
        conn = migwire.connect(target)
    except OSError as e:
        raise KernelError(E.ECONNREFUSED, f"migrate: {target}: {e.strerror or e}") from None
    try:
        conn.send({"t": "hello", "version": image.VERSION, "kernel": k.release})
    except migwire.WireError as e:
        conn.close()
        raise KernelError(E.EIO, f"migrate: {e}") from None
    return Migration(k, conn)
