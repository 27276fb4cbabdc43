"""Live migration: the machine copied to a `umlpy restore --listen SOCKET`
that waits for it, while the guest runs, then frozen for a last copy.

Pre-copy runs in rounds, each in steps from the event loop (one between
two batches of events, going through at most STEP bytes of memory, so
that the guests' syscalls are served between steps): each round sends
every nonzero private page of every process written since the last, as
the host's write log says (checkpoint/writetrack.py), or, where there is
none, that differs from the copy last sent (this host has no soft-dirty
bits), at the price of reading the memory again each round.
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
from umlpy.checkpoint import dump, image, writetrack
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

PAGE = C.PAGE_SIZE
ROUNDS = 8              # pre-copy rounds at most
ENOUGH = 1 << 20        # a round that finds less than this changed is the last
RUN = 1 << 20           # the most bytes of pages one message carries
REF_RUN = 64 << 20      # the most bytes of pages one reference names (it carries none of them)
STEP = 4 << 20          # the most bytes of memory a turn of the event loop goes through for a round
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
        self.forget(addr, addr + len(data))
        self.pieces[addr] = data, runs
        bisect.insort(self.starts, addr)

    def forget(self, start: int, end: int) -> None:
        """Drop the pieces that overlap [start, end) (what the target holds
        there is now the write log's to know)."""
        i = bisect.bisect_left(self.starts, start - image.CHUNK)
        while i < len(self.starts) and self.starts[i] < end:
            s = self.starts[i]
            if s + len(self.pieces[s][0]) > start:
                del self.pieces[s], self.starts[i]
            else:
                i += 1


class _Pages:
    """Pages of one blob on their way: runs of neighbours, one message each,
    `kind` "pre" (pre-copy), "pages" (the final copy's) or "ref" (pages
    the target holds from pre-copy: only their address goes)."""

    def __init__(self, conn: migwire.Conn, blob: str) -> None:
        self.conn, self.blob = conn, blob
        self.kind, self.addr, self.size, self.parts = "", 0, 0, []

    def add(self, kind: str, addr: int, n: int, data=None) -> None:
        """n bytes of pages at addr (data: them, None for a reference)."""
        if self.size and (kind != self.kind or addr != self.addr + self.size
                          or self.size + n > (REF_RUN if kind == "ref" else RUN)):
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


def send_pages(run: _Pages, kind: str, addr: int, n: int, data) -> None:
    """n bytes of pages at addr, in messages of at most RUN bytes (a
    reference, of REF_RUN)."""
    step = REF_RUN if data is None else RUN
    for off in range(0, n, step):
        run.add(kind, addr + off, min(step, n - off), None if data is None else data[off:off + step])


class StreamWriter:
    """image.Writer's part in a migration's final copy: blobs and the
    manifest go down the stream (before_final lets the disks go first)."""

    def __init__(self, conn: migwire.Conn, sent: dict[str, Mirror], tracked: dict[int, writetrack.Tracked | None],
                 before_final) -> None:
        self.conn, self.sent, self.tracked, self.before_final = conn, sent, tracked, before_final
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

    def write_memory(self, t, start: int, end: int, ino: int, pieces) -> list[tuple[int, int]]:
        """A private mapping's nonzero runs (address, length), returned in
        the order sent: by the write log where the process is tracked (only
        what was written since the last round is read), else read through
        pieces(t, start, end, ino) and compared with the mirror."""
        tr = self.w.tracked.get(t.proc.pid)
        if tr is not None and tr.live(t.proc):
            try:
                runs = tr.final(t, start, end, self._send)
            except OSError as e:    # (the log's scan comes before anything is sent)
                printk.pr_info(f"migrate: the write log of process {t.proc.pid} failed ({e}): compared instead")
                runs = None
            if runs is not None:
                return runs
        return [(addr + off, n) for addr, data in pieces(t, start, end, ino) for off, n in self.write_piece(addr, data)]

    def _send(self, kind: str, addr: int, n: int, data) -> None:
        send_pages(self.run, kind, addr, n, data)
        if kind == "ref":
            self.w.refs += n
        else:
            self.w.size += n

    def write_piece(self, addr: int, data: bytes) -> list[tuple[int, int]]:
        """A piece's nonzero runs (returned): what the target holds as a
        reference, the rest as pages, in the order of the runs."""
        old, runs = self.have.get(addr, len(data))
        if old == data:
            for off, n in runs:
                self._ref(addr + off, n)
            return runs
        runs = image.nonzero_runs(data)
        changed = list(image.changed_pages(data, old, runs))      # each inside one of the runs
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
        # pid -> its write log where the host keeps one (None: compared, for good)
        self.tracked: dict[int, writetrack.Tracked | None] = {}
        self.rounds = 0
        self.precopied = 0
        self._round = None          # the round under way (its steps)
        self._sent = 0              # the bytes it sent so far

    def precopy(self) -> bool:
        """A step of the pre-copy: at most about STEP bytes of memory gone
        through, so that the guests' syscalls are served between steps;
        whether more is to come (the round's next step, or another round)."""
        if self._round is None:
            self._round, self._sent = self._round_steps(), 0
        try:
            next(self._round)
            return True
        except StopIteration:
            self._round = None
        self.rounds += 1
        self.precopied += self._sent
        return self._sent >= ENOUGH and self.rounds < ROUNDS

    def _round_steps(self):
        """One round, yielding between steps; what it sent adds to _sent.
        After a step a process may have exited or exec'd: its mappings are
        those it had when the round came to it, read or found gone (a
        KernelError: the final copy has what is left)."""
        try:
            writetrack.track(self.k, self.tracked)
        except KernelError as e:        # (a freeze that could not be had now: the next round tries again)
            printk.pr_info(f"migrate: {e}")
        gone = 0
        for p in list(self.k.procs.by_pid.values()):
            if p.exited or p.zombie or p.mm is None or not p.threads:
                continue
            name = dump.mem_blob(p.pid)
            have = self.sent.setdefault(name, Mirror())
            run = _Pages(self.conn, name)
            try:
                vmas = dump.private_vmas(p.leader)
                for start, end, ino in vmas:
                    for lo in range(start, end, STEP):
                        hi = min(end, lo + STEP)
                        tr = self.tracked.get(p.pid)
                        if tr is not None and not tr.live(p):   # exec'd: the log watched the old memory
                            tr.log.close()
                            tr = self.tracked[p.pid] = None
                        self._sent += self._part(p, tr, run, have, start, end, ino, lo, hi)
                        gone += hi - lo
                        if gone >= STEP:
                            run.flush()
                            gone = 0
                            yield
                            if p.exited or p.zombie or p.mm is None or not p.threads:
                                raise KernelError(E.ESRCH, "gone")
                tr = self.tracked.get(p.pid)
                if tr is not None:
                    tr.keep_only({(s, e) for s, e, _i in vmas})
            except KernelError:
                pass            # it went meanwhile: the final copy has what is left
            run.flush()

    def _part(self, p, tr, run: _Pages, have: Mirror, start: int, end: int, ino: int, lo: int, hi: int) -> int:
        """[lo, hi) of the mapping [start, end) of process p: what was
        written since the last round sent, by the write log where it is
        tracked, else by comparing with what was sent; the bytes sent."""
        if tr is not None:
            try:
                got = tr.round(p.leader, start, end, ino, lambda *a: send_pages(run, *a),
                               lambda addr, n: have.get(addr, n)[0], lo, hi)
            except OSError as e:
                printk.pr_info(f"migrate: the write log of process {p.pid} failed ({e}): "
                               "its pages are compared instead")
                tr.log.close()
                self.tracked[p.pid] = None
                got = None
            if got is not None:
                have.forget(lo, hi)
                return got
        n = 0
        for addr, data in dump.resident_pieces(p.leader, lo, hi, ino):
            old, _runs = have.get(addr, len(data))
            if old == data:
                continue
            runs = image.nonzero_runs(data)
            for off, c in image.changed_pages(data, old, runs):
                run.add("pre", addr + off, c, data[off:off + c])
                n += c
            have.put(addr, data, runs)
        return n

    def final(self) -> tuple[dict, str]:
        """Freeze, send the machine, wait for the target to run it; returns
        what freeze stopped and the summary.  KernelError: the target did
        not take over (the machine was thawed, its disks locked again)."""
        started = clock.monotonic_ns()
        try:
            frozen, w, nprocs, size = dump.save(self.k, lambda: StreamWriter(self.conn, self.sent, self.tracked,
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

    def close(self) -> None:
        """The stream and the write logs let go (closing a log lifts its
        protection: the machine, if it goes on here, runs as before)."""
        self.conn.close()
        writetrack.close(self.tracked)

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
