"""A disk's I/O statistics (Linux's struct disk_stats): what
/sys/block/DISK/stat and /proc/diskstats show, and what iostat, vmstat -d
and LTP's tst_dev_bytes_written (the fsync and sync tests) read.

Every request here is synchronous and alone (nothing merges, nothing is
in flight between two), so a request's time is its driver call's; the
busy time (io_ticks) follows Linux's update_io_ticks on a millisecond
clock: a request starting in a later millisecond than the last stamp
only moves the stamp (nothing was in flight), its end adds the
milliseconds from the stamp.
"""
from __future__ import annotations

from arch_um import clock

READ, WRITE = 0, 1
SECTOR = 512
MS = 10**6


class DiskStats:
    __slots__ = ("ios", "sectors", "ns", "flushes", "flush_ns", "io_ticks", "stamp", "queue_ns")

    def __init__(self) -> None:
        self.ios = [0, 0]           # requests done, reads and writes
        self.sectors = [0, 0]
        self.ns = [0, 0]            # their time
        self.flushes = 0
        self.flush_ns = 0
        self.io_ticks = 0           # ms the disk was busy
        self.stamp = 0              # the ms io_ticks was last brought up to
        self.queue_ns = 0           # the requests' time, all kinds (time_in_queue)

    def start(self) -> int:
        now = clock.monotonic_ns()
        if now // MS > self.stamp:
            self.stamp = now // MS
        return now

    def _end(self, t0: int) -> int:
        now = clock.monotonic_ns()
        if now // MS > self.stamp:
            self.io_ticks += now // MS - self.stamp
            self.stamp = now // MS
        self.queue_ns += now - t0
        return now - t0

    def done(self, rw: int, nbytes: int, t0: int) -> None:
        """A read or write of nbytes that started at t0 ended now."""
        self.ns[rw] += self._end(t0)
        self.ios[rw] += 1
        self.sectors[rw] += (nbytes + SECTOR - 1) // SECTOR

    def flushed(self, t0: int) -> None:
        """A cache flush (REQ_PREFLUSH) that started at t0 ended now."""
        self.flush_ns += self._end(t0)
        self.flushes += 1

    def fields(self) -> list[int]:
        """The 17 figures of /sys/block/DISK/stat, in its order: reads,
        merges, sectors, ms; the same of writes; in flight, io_ticks,
        time_in_queue; discards (none here: four zeros); flushes, ms."""
        r, w = READ, WRITE
        return [self.ios[r], 0, self.sectors[r], self.ns[r] // MS,
                self.ios[w], 0, self.sectors[w], self.ns[w] // MS,
                0, self.io_ticks, self.queue_ns // MS,
                0, 0, 0, 0,
                self.flushes, self.flush_ns // MS]
