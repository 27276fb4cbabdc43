"""Seccomp in a checkpoint: each task's mode and filters (kernel/seccomp.py).

Filters are shared: a child's chain goes on from its parent's, TSYNC
gives a process's threads one state, and TSYNC's own check compares
chains by identity.  So the image holds each filter once, in the
top-level `seccomp_filters` ({prog: its instructions as seccomp(2) took
them (hex), prev: the index of the filter attached before it, earlier in
the list, or -1; log: SECCOMP_FILTER_FLAG_LOG}), and a task's `seccomp`
names its mode and its newest filter.  A restore checks every program as
seccomp(2) checks one (bpf/classic.decode) and every chain against
Linux's limit on its length: a forged program is refused like a bad
filter, never run.
"""
from __future__ import annotations

from umlpy.bpf import classic
from umlpy.checkpoint import image
from umlpy.kernel import seccomp as sc
from umlpy.kernel.errors import KernelError

_PROG_LIMIT = classic.MAXINSNS * classic.INSN.size


class Saver:
    """The filters met while the tasks are saved, each given its index."""

    def __init__(self) -> None:
        self.index: dict[int, int] = {}
        self.filters: list[dict] = []

    def task(self, t) -> dict:
        """The `seccomp` entry of a task's state (empty: mode disabled)."""
        s = t.seccomp
        if s is None:
            return {}
        return {"seccomp": {"mode": s.mode, "filter": self._filter(s.filter)}}

    def _filter(self, f: sc.Filter | None) -> int:
        """f's index, f and the filters before it added first, oldest first
        (a chain can be thousands of filters long: no recursion)."""
        if f is None:
            return -1
        chain, x = [], f
        while x is not None and id(x) not in self.index:
            chain.append(x)
            x = x.prev
        for y in reversed(chain):
            self.index[id(y)] = len(self.filters)
            self.filters.append({"prog": b"".join(classic.INSN.pack(*i) for i in y.prog).hex(),
                                 "prev": self.index[id(y.prev)] if y.prev is not None else -1,
                                 "log": y.log})
        return self.index[id(f)]

def make(r: image.Reader) -> list[sc.Filter]:
    """The image's filters, each checked as seccomp(2) checks a new one."""
    out: list[sc.Filter] = []
    for i, e in enumerate(r.list("seccomp_filters")):
        prev_i = e.int("prev", -1, i)
        prev = out[prev_i] if prev_i >= 0 else None
        try:
            prog = classic.decode(e.hex("prog", _PROG_LIMIT))
        except KernelError:
            raise image.ImageError(f"manifest: {e.where}.prog: a program seccomp refuses") from None
        if len(prog) + (prev.path_len if prev is not None else 0) > sc.MAX_INSNS_PER_PATH:
            raise image.ImageError(f"manifest: {e.where}: a chain of filters past Linux's limit")
        out.append(sc.Filter(prog, prev, e.bool("log")))
    return out


def take(filters: list[sc.Filter], e: image.Reader) -> sc.Seccomp | None:
    """A task's seccomp state (Saver.task's entry), its filter one of make's."""
    if not e.has("seccomp"):
        return None
    s = e.sub("seccomp")
    mode = s.int("mode", sc.MODE_STRICT, sc.MODE_FILTER + 1)
    i = s.int("filter", -1, len(filters))
    if (i >= 0) != (mode == sc.MODE_FILTER):
        raise image.ImageError(f"manifest: {s.where}: strict mode with a filter, or filter mode without one")
    return sc.Seccomp(mode, filters[i] if i >= 0 else None)
