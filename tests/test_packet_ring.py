"""Packet socket mmap rings with traffic, in the guest only (natively the
differential t_pring covers options, requests and mmap): eth0=user's DHCP
server answers a discover sent from a TX ring, and its offer must appear in
the RX ring with sane headers, for TPACKET_V1, V2 and V3; and a guest that
fills every ring header with nonsense must not hurt the kernel."""
from __future__ import annotations

import pytest

from conftest import sh

T = "/t/bin/t_pring"
UP = "ifconfig eth0 up; "


@pytest.mark.parametrize("v", [1, 2, 3])
def test_rx_ring_holds_the_dhcp_offer(v):
    r = sh(f"{UP}{T} rx {v}", "eth0=user")
    out = r.stdout.decode().splitlines()
    assert out[:6] == ["bind eth0: 0", "version: 0", "rx: 0", "tx: 0", "sent: all", "poll: 1"], \
        r.stderr.decode()[-2000:]
    if v == 3:
        # one packet in the first block, handed over by its retire timer;
        # SOCK_DGRAM data after the 68-byte header, aligned, and 16 spare
        assert out[6] == "block: status user 1 pkts 1 first 48 seq 1 len ok 1"
        assert out[7] == "pkt: status 1 next 0 mac 96 net 96 len=snaplen 1"
        assert out[9] == "stats: len 12 packets 1 drops 0"
    else:
        assert out[6] == "frame: status 1 mac 80 net 80 len=snaplen 1 len>240 1"
        assert out[7] == "sll: family 17 protocol 0x800 ifindex ok 1 halen 6"
        assert out[9] == "stats: len 8 packets 1 drops 0"
    assert out[8] == "ip: 0x45 udp sport 67"
    assert out[-1] == "done"
    assert b"Oops" not in r.stderr


def test_hostile_ring_headers_do_not_hurt_the_kernel():
    r = sh(f"{UP}{T} hostile", "eth0=user")
    assert r.stdout.decode().splitlines() == [
        "hostile v1: survived", "hostile v2: survived", "hostile v3: survived", "done"], \
        r.stderr.decode()[-2000:]
    assert b"Oops" not in r.stderr and b"Traceback" not in r.stderr


def test_socket_filters_run_on_packet_sockets():
    """SO_ATTACH_FILTER on a packet socket runs (packet_rcv's run_filter):
    0 drops, a smaller count cuts the copy (auxdata's tp_len stays the
    packet's), a program chooses by the UDP source port, a load past the
    end drops; detaching lets everything through again."""
    r = sh(f"{UP}{T} filter", "eth0=user")
    assert r.stdout.decode().splitlines() == [
        "bind eth0: 0", "auxdata: 0", "detach with none: -1 ENOENT",
        "no filter: got 328 sport 67 tp_len>240 1 tp_snaplen 328",
        "attach drop: 0", "drop all: nothing",
        "attach keep 40: 0", "keep 40: got 40 sport 67 tp_len>240 1 tp_snaplen 40",
        "attach port 68: 0", "source port 68: nothing",
        "attach port 67: 0", "source port 67: got 328 sport 67 tp_len>240 1 tp_snaplen 328",
        "attach past the end: 0", "load past the end: nothing",
        "detach: 0", "detach again: -1 ENOENT",
        "detached: got 328 sport 67 tp_len>240 1 tp_snaplen 328", "done"], r.stderr.decode()[-2000:]
    assert b"Oops" not in r.stderr


def test_rx_ring_frame_cut_by_a_socket_filter():
    r = sh(f"{UP}{T} rx 2 cut", "eth0=user")
    out = r.stdout.decode().splitlines()
    assert out[6:8] == ["frame: status 1 mac 80 net 80 len=snaplen 0 len>240 1", "cut: snaplen 40"], \
        r.stderr.decode()[-2000:]
    assert out[-1] == "done"
