"""Packet socket mmap rings: PACKET_RX_RING and PACKET_TX_RING (TPACKET_V1,
V2 and V3), as Linux's af_packet keeps them.

A ring is tp_block_nr blocks of tp_block_size bytes.  V1/V2 (and V3's TX
ring) cut each block into fixed frames, a header with tp_status first: the
kernel fills a receive frame only while its status is TP_STATUS_KERNEL and
hands it over with TP_STATUS_USER; it sends a transmit frame marked
TP_STATUS_SEND_REQUEST and gives it back TP_STATUS_AVAILABLE.  V3 receives
into whole blocks: packets of any size chained by tp_next_offset behind a
block descriptor, the block handed over when full or when its retire
timer (tp_retire_blk_tov ms) ends.

The bytes live in one host memory file (RingPages), RX ring first, TX ring
after it, which is what mmap(2) of the socket maps: the guest and the kernel
see the same pages.  Everything the guest can write there is untrusted: the
kernel reads back only status words (compared, never used as offsets) and
the lengths and offsets of frames to send, which are range-checked before
use; every other offset is the kernel's own.  The pages are charged to the
kernel's socket memory (net.sk_mem) for as long as they live, a mapping
outliving the socket included: ENOMEM past it, as Linux's allocation of a
ring too big for memory.
"""
from __future__ import annotations

import struct
import weakref
from dataclasses import dataclass

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.abi.consts import PAGE_SIZE
from umlpy.kernel import timekeeping
from umlpy.kernel.errors import KernelError
from umlpy.kernel.sharedpages import SharedPages

TPACKET_V1, TPACKET_V2, TPACKET_V3 = 0, 1, 2
TPACKET_ALIGNMENT = 16
V3_ALIGNMENT = 8
SLL_SIZE = 20                       # sizeof(struct sockaddr_ll)
# sizeof tpacket_hdr, tpacket2_hdr, tpacket3_hdr: what PACKET_HDRLEN answers
HDR_SIZE = {TPACKET_V1: 32, TPACKET_V2: 32, TPACKET_V3: 48}
BLK_HDR_LEN = 48                    # struct tpacket_block_desc, 8-aligned
UINT_MAX = 0xFFFFFFFF
MAX_PG_VEC = 1 << 19                # kcalloc's limit on the block array (4 MiB of pointers)
DEFAULT_RETIRE_TOV_MS = 8           # a device that reports no link speed
USHRT_MAX = 0xFFFF

TP_STATUS_KERNEL, TP_STATUS_USER, TP_STATUS_COPY, TP_STATUS_LOSING = 0, 1, 2, 4
TP_STATUS_BLK_TMO = 0x20
TP_STATUS_AVAILABLE, TP_STATUS_SEND_REQUEST, TP_STATUS_SENDING, TP_STATUS_WRONG_FORMAT = 0, 1, 2, 4
TP_FT_REQ_FILL_RXHASH = 1

_REQ = struct.Struct("<4I")          # struct tpacket_req
_REQ3 = struct.Struct("<7I")         # struct tpacket_req3
# the headers' fields after tp_status, as the kernel writes them
_H1 = struct.Struct("<IIHHII")       # tp_len, tp_snaplen, tp_mac, tp_net, tp_sec, tp_usec (at 8)
_H2 = struct.Struct("<IIHHIIHH4x")   # ... tp_nsec, tp_vlan_tci, tp_vlan_tpid, tp_padding (at 4)
_H3 = struct.Struct("<IIII")         # tp_sec, tp_nsec, tp_snaplen, tp_len (at 4)
_H3_TAIL = struct.Struct("<HHIIHH8x")  # tp_mac, tp_net, rxhash, vlan_tci, vlan_tpid, pads (at 24)
_BD = struct.Struct("<IIIIIIQIIII")  # struct tpacket_block_desc
_STATUS_OFF = {TPACKET_V1: 0, TPACKET_V2: 0, TPACKET_V3: 20}


def tpacket_align(n: int) -> int:
    return (n + TPACKET_ALIGNMENT - 1) & ~(TPACKET_ALIGNMENT - 1)


def v3_align(n: int) -> int:
    return (n + V3_ALIGNMENT - 1) & ~(V3_ALIGNMENT - 1)


def hdrlen(version: int) -> int:
    """TPACKET_HDRLEN, TPACKET2_HDRLEN, TPACKET3_HDRLEN: a frame's header
    and the sockaddr_ll behind it."""
    return tpacket_align(HDR_SIZE[version]) + SLL_SIZE


def blk_plus_priv(sizeof_priv: int) -> int:
    return BLK_HDR_LEN + v3_align(sizeof_priv)


@dataclass(frozen=True)
class RingReq:
    """struct tpacket_req (V1, V2) or tpacket_req3 (V3)."""
    block_size: int
    block_nr: int
    frame_size: int
    frame_nr: int
    retire_blk_tov: int = 0
    sizeof_priv: int = 0
    feature_req_word: int = 0

    @classmethod
    def parse(cls, raw: bytes, version: int) -> RingReq:
        """The request as packet_setsockopt copies it: the version's struct,
        EINVAL when the option is shorter."""
        layout = _REQ3 if version == TPACKET_V3 else _REQ
        if len(raw) < layout.size:
            raise KernelError(E.EINVAL)
        return cls(*layout.unpack_from(raw))

    @property
    def size(self) -> int:
        return self.block_size * self.block_nr


def check_req(req: RingReq, version: int, reserve: int) -> int:
    """packet_set_ring's sanity checks of a ring to be made; its frames
    per block."""
    min_frame = hdrlen(version) + reserve
    if not 0 < req.block_size < 1 << 31 or req.block_size % PAGE_SIZE:
        raise KernelError(E.EINVAL)
    if version == TPACKET_V3 and req.block_size < blk_plus_priv(req.sizeof_priv) + min_frame:
        raise KernelError(E.EINVAL)
    if req.frame_size < min_frame or req.frame_size % TPACKET_ALIGNMENT:
        raise KernelError(E.EINVAL)
    per_block = req.block_size // req.frame_size
    if per_block == 0 or per_block > UINT_MAX // req.block_nr:
        raise KernelError(E.EINVAL)
    if per_block * req.block_nr != req.frame_nr:
        raise KernelError(E.EINVAL)
    if req.block_nr > MAX_PG_VEC:
        raise KernelError(E.ENOMEM)
    return per_block


def _uncharge(net, size: int) -> None:
    net.sk_mem -= size


class RingPages(SharedPages):
    """The host memory both rings live in (what the socket's mmap shows,
    and what a FileMap of it names).  Its size stays charged to the
    kernel's socket memory until the last reference (the socket, or a
    mapping that outlived it) is gone; the pages they replace count as
    free already, being dropped right after."""

    def __init__(self, net, size: int, replacing: RingPages | None) -> None:
        freed = replacing.size if replacing is not None else 0
        if net.sk_mem - freed + size > net.sk_mem_limit:
            raise KernelError(E.ENOMEM)
        super().__init__("packet_mmap", size)
        net.sk_mem += size
        weakref.finalize(self, _uncharge, net, size)


@dataclass
class Received:
    """One packet as tpacket_rcv sees it: the bytes from the socket's
    point of view (with or without the link header), the link header's
    length in them, and the sockaddr_ll fields of the ring's copy."""
    data: bytes
    maclen: int
    sll: bytes          # sll_family .. sll_addr, as long as the address
    rxhash: int
    length: int         # the packet's own (tp_len), data being what a socket filter kept of it


class Ring:
    """A ring of fixed frames (V1/V2 either way, V3 for sending) at `base`
    in `pages`."""

    def __init__(self, pages: RingPages, base: int, req: RingReq, version: int,
                 per_block: int) -> None:
        self.pages = pages
        self.base = base
        self.req = req
        self.version = version
        self.per_block = per_block
        self.head = 0
        self.hdrlen = hdrlen(version)

    def moved(self, pages: RingPages, base: int) -> Ring:
        """This ring with its bytes copied to base in pages (the other
        ring changed, so this one's place in the mapping did)."""
        step = 1 << 20
        for off in range(0, self.req.size, step):
            n = min(step, self.req.size - off)
            pages.write(base + off, self.pages.read(self.base + off, n))
        self.pages, self.base = pages, base
        return self

    def frame(self, i: int) -> int:
        """Where frame i starts in pages."""
        blk, idx = divmod(i, self.per_block)
        return self.base + blk * self.req.block_size + idx * self.req.frame_size

    def status(self, off: int) -> int:
        if self.version == TPACKET_V1:
            return struct.unpack("<Q", self.pages.read(off, 8))[0]
        return self.pages.u32(off + _STATUS_OFF[self.version])

    def set_status(self, off: int, status: int) -> None:
        if self.version == TPACKET_V1:
            self.pages.write(off, struct.pack("<Q", status))
        else:
            self.pages.put_u32(off + _STATUS_OFF[self.version], status)

    def advance(self) -> None:
        self.head = self.head + 1 if self.head < self.req.frame_nr - 1 else 0

    def user_ready(self) -> bool:
        """packet_poll's EPOLLIN: the frame before the head (the last one
        filled) is the user's."""
        prev = self.head - 1 if self.head else self.req.frame_nr - 1
        return self.status(self.frame(prev)) != TP_STATUS_KERNEL

    def offsets(self, reserve: int, maclen: int) -> tuple[int, int]:
        """tpacket_rcv's (macoff, netoff) for a packet whose data starts
        with maclen bytes of link header (0 for SOCK_DGRAM)."""
        if not maclen:
            net = tpacket_align(self.hdrlen) + 16 + reserve
            return net, net
        net = tpacket_align(self.hdrlen + max(maclen, 16)) + reserve
        return net - maclen, net

    def fill(self, off: int, pkt: Received, macoff: int, netoff: int, snaplen: int,
             status: int, ts: int) -> None:
        """Write a received packet into the frame at off, its status last."""
        pages = self.pages
        sec, nsec = divmod(ts, 10**9)
        pages.write(off + macoff, pkt.data[:snaplen])
        if self.version == TPACKET_V1:
            pages.write(off + 8, _H1.pack(pkt.length, snaplen, macoff, netoff, sec & UINT_MAX,
                                          nsec // 1000))
        elif self.version == TPACKET_V2:
            pages.write(off + 4, _H2.pack(pkt.length, snaplen, macoff, netoff, sec & UINT_MAX,
                                          nsec, 0, 0))
        else:
            pages.write(off + 4, _H3.pack(sec & UINT_MAX, nsec, snaplen, pkt.length))
            pages.write(off + 24, _H3_TAIL.pack(macoff, netoff, pkt.rxhash, 0, 0, 0))
        pages.write(off + tpacket_align(HDR_SIZE[self.version]), pkt.sll)
        self.set_status(off, status)

    # -- transmit ----------------------------------------------------------------
    def parse_tx(self, off: int, size_max: int, has_off: bool, raw: bool) -> bytes:
        """tpacket_parse_header: the packet a send-requested frame holds.
        Its length and (with PACKET_TX_HAS_OFF) its data offset are the
        guest's: both are checked against the frame before anything is
        read."""
        pages, v = self.pages, self.version
        if v == TPACKET_V3:
            nxt, tp_len = struct.unpack("<I12xI", pages.read(off, 20))
            if nxt:
                raise KernelError(E.EINVAL)     # variable-sized slots are not supported
            mac, net = struct.unpack("<HH", pages.read(off + 24, 4))
        else:
            at = 8 if v == TPACKET_V1 else 4
            tp_len, _snap, mac, net = struct.unpack("<IIHH", pages.read(off + at, 12))
        if tp_len >= 1 << 31:
            raise KernelError(E.EINVAL)         # negative as Linux's int: an error
        if tp_len > size_max:
            raise KernelError(E.EMSGSIZE)
        start = self.hdrlen - SLL_SIZE
        if has_off:
            want = mac if raw else net
            if not start <= want <= self.req.frame_size - tp_len:
                raise KernelError(E.EINVAL)
            start = want
        return pages.read(off + start, tp_len)


class BlockRing(Ring):
    """A V3 receive ring: packets packed into blocks (prb_* in Linux)."""

    def __init__(self, pages: RingPages, base: int, req: RingReq, version: int,
                 per_block: int, sched, owner) -> None:
        super().__init__(pages, base, req, version, per_block)
        self.sched = sched
        self.owner = owner          # the socket: woken by a retired block, its drops make LOSING
        self.priv_end = blk_plus_priv(req.sizeof_priv)
        self.max_frame_len = req.block_size - self.priv_end
        self.tov_ns = (req.retire_blk_tov or DEFAULT_RETIRE_TOV_MS) * 10**6
        self.rxhash = bool(req.feature_req_word & TP_FT_REQ_FILL_RXHASH)
        self.seq = 1
        self.active = 0             # kactive_blk_num
        self.nxt = 0                # where the next packet goes in the active block
        self.prev = 0               # the last packet's offset in it
        self.num_pkts = 0
        self.blk_len = 0
        self.last_ts = 0
        self.frozen = False         # every block is the user's: packets are dropped
        self.freeze_count = 0       # tp_freeze_q_cnt
        self.timer = None
        self.timer_block = -1
        self._open()

    def block(self, i: int) -> int:
        return self.base + i * self.req.block_size

    def block_status(self, i: int) -> int:
        return self.pages.u32(self.block(i) + 8)

    def user_ready(self) -> bool:
        """packet_poll on V3: the block before the active one is the user's."""
        prev = self.active - 1 if self.active else self.req.block_nr - 1
        return self.block_status(prev) != TP_STATUS_KERNEL

    def _open(self) -> None:
        """prb_open_block: start filling the active block (its status stays
        the kernel's); the descriptor is written now, counts as they grow."""
        self.frozen = False
        self.num_pkts = 0
        self.blk_len = self.nxt = self.prev = self.priv_end
        now = timekeeping.realtime_ns()
        sec, nsec = divmod(now, 10**9)
        b = self.block(self.active)
        self.pages.write(b, struct.pack("<II", self.version, BLK_HDR_LEN))
        self.pages.write(b + 12, struct.pack("<IIIQII", 0, self.priv_end, self.blk_len, self.seq,
                                             sec & UINT_MAX, nsec))
        self.seq += 1

    def _close(self, status: int) -> None:
        """prb_close_block: the last packet ends the chain, and the block
        goes to the user (its status last); the next one becomes active."""
        b = self.block(self.active)
        self.pages.put_u32(b + self.prev, 0)
        ts = self.last_ts if self.num_pkts else timekeeping.realtime_ns()
        sec, nsec = divmod(ts, 10**9)
        self.pages.write(b + 40, struct.pack("<II", sec & UINT_MAX, nsec))
        status |= TP_STATUS_USER | (TP_STATUS_LOSING if self.owner.tp_drops else 0)
        self.pages.put_u32(b + 8, status)
        self.owner.wake()
        self.active = self.active + 1 if self.active < self.req.block_nr - 1 else 0

    def _dispatch(self) -> bool:
        """prb_dispatch_next_block: open the new active block, or freeze
        the queue when the user still holds it."""
        if self.block_status(self.active) & TP_STATUS_USER:
            self.frozen = True
            self.freeze_count += 1
            return False
        self._open()
        return True

    def slot(self, length: int) -> int | None:
        """__packet_lookup_frame_in_block: where a packet of length bytes
        (header included) goes, None when no block is free."""
        if self.frozen:
            if self.block_status(self.active) & TP_STATUS_USER:
                return None
            self._open()
        size = v3_align(length)
        if self.nxt + size >= self.req.block_size:
            if self.block_status(self.active) == TP_STATUS_KERNEL:
                self._close(0)
            if not self._dispatch():
                return None
        off = self.block(self.active) + self.nxt
        self.prev = self.nxt
        self.nxt += size
        self.blk_len += size
        self.num_pkts += 1
        self.pages.write(off, struct.pack("<I", size))
        self.pages.write(self.block(self.active) + 12, struct.pack("<I", self.num_pkts))
        self.pages.write(self.block(self.active) + 20, struct.pack("<I", self.blk_len))
        self._arm()
        return off

    def _arm(self) -> None:
        """The retire timer runs while the active block holds packets (Linux
        keeps it ticking always; an idle ring costs nothing here)."""
        if self.timer is None:
            self.timer_block = self.active
            self.timer = self.sched.add_timer(clock.monotonic_ns() + self.tov_ns, self._expired)

    def _expired(self) -> None:
        """prb_retire_rx_blk_timer_expired: a block that has packets and
        was active for a whole period goes to the user (TP_STATUS_BLK_TMO)."""
        self.timer = None
        if self.frozen or not self.num_pkts:
            return
        if self.timer_block != self.active:
            self._arm()
            return
        if self.block_status(self.active) == TP_STATUS_KERNEL:
            self._close(TP_STATUS_BLK_TMO)
        self._dispatch()

    def fill(self, off: int, pkt: Received, macoff: int, netoff: int, snaplen: int,
             status: int, ts: int) -> None:
        self.last_ts = ts           # the block's ts_last_pkt when it closes
        super().fill(off, pkt, macoff, netoff, snaplen, status, ts)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
