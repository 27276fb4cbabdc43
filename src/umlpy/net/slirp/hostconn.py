"""The far end of a guest TCP connection that leaves the machine: a host
TCP socket (net/inet/endpoint.py's contract).

Flow control both ways, without ever blocking: what the guest sends waits
in `tx` (at most TXBUF bytes: room() says how much more) until the host
socket takes it; the host socket is read only as far as the guest
socket's buffer has room (rx_room), and not watched for reading while it
has none, so a guest that stops reading stops the host connection's
window, as a real one would.  FIN and RST cross over both ways; a guest
socket closed with data still to send lingers as an orphan until it is
sent (at most ORPHAN_NS, Linux's tcp_fin_timeout), then the host socket
closes.
"""
from __future__ import annotations

from arch_um import clock
from arch_um.events import EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT
from arch_um.hostnet import TcpConn
from umlpy.abi import errno as E
from umlpy.net.inet.endpoint import Endpoint

TXBUF = 256 << 10
READ_CHUNK = WRITE_CHUNK = 64 << 10
ORPHAN_NS = 60 * 10**9

# what a failed host connect tells the guest; anything else is a refusal
_CONNECT_ERRORS = {E.ECONNREFUSED, E.ETIMEDOUT, E.ENETUNREACH, E.EHOSTUNREACH, E.ECONNRESET,
                   E.EACCES, E.EPERM, E.ENETDOWN, E.EHOSTDOWN, E.EADDRNOTAVAIL}


def connect_errno(err: int) -> int:
    return err if err in _CONNECT_ERRORS else E.ECONNREFUSED


class HostConn(Endpoint):
    def __init__(self, nat, conn: TcpConn | None, sock, connecting: bool) -> None:
        super().__init__()
        self.nat = nat
        self.conn = conn
        self.sock = sock            # the TcpSocket; None once it has closed (an orphan)
        self.connecting = connecting
        self.tx = bytearray()
        self.urg_end: int | None = None     # the urgent byte is tx[urg_end - 1] (MSG_OOB)
        self.fin_wanted = False     # the guest sent FIN: pass it on once tx is sent
        self.fin_sent = False
        self.rx_eof = False         # the host side sent FIN
        self.mask = 0               # the events the event loop watches for
        self.timer = None
        nat.conns.add(self)
        if conn is not None and connecting:
            self._update()          # an accepted connection starts at attach()

    # -- the guest socket's calls -------------------------------------------------
    def room(self) -> int:
        if self.conn is None or self.connecting:
            return 0
        return max(0, TXBUF - len(self.tx))

    def push(self, data: bytes) -> None:
        self.tx += data
        self._flush()
        self._update()

    def mark_urgent(self) -> None:
        """The last byte pushed goes out as the host connection's urgent data."""
        self.urg_end = len(self.tx)
        self._flush()
        self._update()

    def fin(self) -> None:
        self.fin_wanted = True
        self._flush()
        self._update()

    def close(self, reset: bool) -> None:
        self.sock = None
        if reset or self.connecting or self.conn is None:
            self.destroy(reset=True)
            return
        self.fin_wanted = True
        self._flush()
        if self.conn is not None:
            self.timer = self.nat.k.sched.add_timer(clock.monotonic_ns() + ORPHAN_NS,
                                                    lambda: self.destroy(reset=True))
            self._update()

    def rx_drained(self) -> None:
        self._pump_rx()
        self._update()

    def outq(self) -> int:
        return len(self.tx) + (self.conn.outq() if self.conn is not None else 0)

    # -- start and end ----------------------------------------------------------------
    def attach(self, sock) -> None:
        """The guest socket is known (an accepted hostfwd connection): go."""
        self.sock = sock
        self._update()

    def fail_later(self, err: int) -> None:
        """A connect that failed before it began reports after the guest's
        connect call has returned, as the contract wants."""
        self.nat.k.sched.add_timer(clock.monotonic_ns(), lambda: self._connect_failed(err))

    def _connect_failed(self, err: int) -> None:
        sock, self.sock = self.sock, None
        self.destroy(reset=False)
        if sock is not None:
            sock.connect_done(err)

    def destroy(self, reset: bool) -> None:
        """Close the host socket (reset: with RST) and forget the guest's."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.nat.conns.discard(self)
        conn, self.conn = self.conn, None
        if conn is not None:
            if self.mask:
                self.nat.k.sched.unwatch_fd(conn.fd)
                self.mask = 0
            conn.close(reset)
        self.wq.wake_all()

    def _reset(self) -> None:
        """The host connection failed or was reset: so is the guest's."""
        sock, self.sock = self.sock, None
        self.destroy(reset=False)
        if sock is not None:
            sock.deliver_reset()

    # -- the host socket ------------------------------------------------------------------
    def _event(self, events: int) -> None:
        if self.conn is None:
            return
        if self.connecting:
            err = self.conn.connect_error()
            if err:
                self._connect_failed(connect_errno(err))
                return
            if not events & EPOLLOUT:
                return
            self.connecting = False
            if self.sock is not None:
                self.sock.connect_done(0)
        if events & (EPOLLIN | EPOLLERR | EPOLLHUP):
            self._pump_rx()
        if events & (EPOLLOUT | EPOLLERR | EPOLLHUP):
            self._flush()
        self._update()

    def _pump_rx(self) -> None:
        while self.conn is not None and not self.rx_eof and not self.connecting:
            sock = self.sock
            room = READ_CHUNK if sock is None else min(sock.rx_room(), READ_CHUNK)
            if room <= 0:
                return
            try:
                data = self.conn.recv(room)
            except OSError:
                self._reset()
                return
            if data is None:
                return
            if not data:
                self.rx_eof = True
                if sock is not None:
                    sock.deliver_fin()
                self._maybe_done()
                return
            if sock is None:            # data for a closed socket: Linux answers RST
                self.destroy(reset=True)
                return
            sock.deliver(data)

    def _flush(self) -> None:
        if self.conn is None or self.connecting:
            return
        sent = False
        while self.tx:
            urg = self.urg_end
            end = urg if urg is not None and urg <= WRITE_CHUNK else WRITE_CHUNK
            try:
                n = self.conn.send(bytes(self.tx[:end]), urgent=end == urg)
            except OSError:
                self._reset()
                return
            if n == 0:
                break
            del self.tx[:n]
            if urg is not None:
                self.urg_end = urg - n if urg > n else None
            sent = True
        if sent:
            self.wq.wake_all()
            if self.sock is not None:
                self.sock.wake()
        if not self.tx and self.fin_wanted and not self.fin_sent:
            self.conn.shutdown_write()
            self.fin_sent = True
        self._maybe_done()

    def _maybe_done(self) -> None:
        """Both directions finished (or ours, for an orphan): the host
        socket has nothing left to do."""
        if self.conn is not None and self.fin_sent and (self.rx_eof or self.sock is None):
            self.destroy(reset=False)

    def _update(self) -> None:
        """Watch exactly what can make progress: writability while
        connecting or while tx waits, readability while the guest has
        room (and always for an orphan, to see the peer's FIN or data)."""
        conn = self.conn
        if conn is None:
            return
        want = 0
        if self.connecting:
            want = EPOLLOUT
        else:
            if not self.rx_eof and (self.sock is None or self.sock.rx_room() > 0):
                want |= EPOLLIN
            if self.tx:
                want |= EPOLLOUT
        if want == self.mask:
            return
        if want:
            self.nat.k.sched.watch_fd(conn.fd, want, self._event)
        else:
            self.nat.k.sched.unwatch_fd(conn.fd)
        self.mask = want
