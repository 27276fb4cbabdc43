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


class _Pages:
    """Pages of one blob on their way: runs of neighbours, one message each,
    `kind` "pre" (pre-copy), "pages" (the final copy's) or "ref" (a page
    the target holds from pre-copy: only its address goes)."""

    def __init__(self, conn: migwire.Conn, blob: str) -> None:
        self.conn, self.blob = conn, blob
        self.kind, self.addr, self.pages = "", 0, []

    def add(self, kind: str, addr: int, page: bytes) -> None:
        if self.pages and (kind != self.kind or addr != self.addr + PAGE * len(self.pages)
                           or len(self.pages) * PAGE >= RUN):
            self.flush()
        if not self.pages:
            self.kind, self.addr = kind, addr
        self.pages.append(page)

    def flush(self) -> None:
        if not self.pages:
            return
        head = {"t": self.kind, "blob": self.blob, "addr": self.addr, "count": len(self.pages)}
        self.conn.send(head, b"" if self.kind == "ref" else b"".join(self.pages))
        self.pages = []


class StreamWriter:
    """image.Writer's part in a migration's final copy: blobs and the
    manifest go down the stream (before_final lets the disks go first)."""

    def __init__(self, conn: migwire.Conn, sent: dict[str, dict[int, bytes]], before_final) -> None:
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
        self.have = w.sent.get(name, {})
        self.run = _Pages(w.conn, name)

    def write(self, data: bytes) -> None:
        self.run.flush()
        self.w.conn.send({"t": "bytes", "blob": self.name}, data)
        self.w.size += len(data)

    def write_page(self, addr: int, page: bytes) -> None:
        if self.have.get(addr) == page:
            self.run.add("ref", addr, page)
            self.w.refs += PAGE
        else:
            self.run.add("pages", addr, page)
            self.w.size += PAGE

    def __enter__(self) -> StreamBlob:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.run.flush()


class Migration:
    def __init__(self, k, conn: migwire.Conn) -> None:
        self.k, self.conn = k, conn
        self.sent: dict[str, dict[int, bytes]] = {}     # blob -> address -> the page last sent
        self.rounds = 0
        self.precopied = 0

    def precopy(self) -> bool:
        """One round; whether another is worth it."""
        n = 0
        for p in list(self.k.procs.by_pid.values()):
            if p.exited or p.zombie or p.mm is None or not p.threads:
                continue
            name = dump.mem_blob(p.pid)
            have = self.sent.setdefault(name, {})
            run = _Pages(self.conn, name)
            try:
                for start, end, ino in dump.private_vmas(p.leader):
                    for addr, page in dump.nonzero_pages(p.leader, start, end, ino):
                        if have.get(addr) != page:
                            have[addr] = page
                            run.add("pre", addr, page)
                            n += PAGE
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
    """Connect to the target listening at the unix socket target and greet it."""
    dump.check_supported(k)
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
