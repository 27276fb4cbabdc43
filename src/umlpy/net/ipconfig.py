"""ip=: eth0 configured by the kernel before init (Linux's net/ipv4/ipconfig.c).

`ip=dhcp` (or on, any, bootp, both) asks the user-mode network's DHCP
server directly: no packets are needed between the kernel and its own
server.  The static form is Linux's,
  ip=<client>:<server>:<gateway>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>
with the netmask defaulting to the address's class and an empty client
address meaning autoconfiguration (unless autoconf is off or none).
What was learnt is logged as "IP-Config: Complete:" and shown in
/proc/net/pnp (`pnp`), which a guest can link to /etc/resolv.conf.
"""
from __future__ import annotations

import ipaddress

from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.net import netdev
from umlpy.net.netdev import AF_INET, IfAddr, Route
from umlpy.net.slirp import dhcp

_AUTO = ("on", "any", "dhcp", "bootp", "rarp", "both")
_OFF = ("off", "none")
_NS_MAX = 2


def pnp(net) -> str:
    """/proc/net/pnp (pnp_seq_show): what ip= configured, "#MANUAL" without it."""
    return getattr(net, "ipconfig_pnp", "#MANUAL\n")


def _ip(text: str, what: str) -> bytes | None:
    if not text:
        return None
    try:
        return ipaddress.IPv4Address(text).packed
    except ValueError:
        printk.pr_warn(f"IP-Config: {what} {text!r} is not an IPv4 address, ignored")
        return None


def _class_mask(ip: bytes) -> bytes:
    """Linux's default netmask: by the address's class."""
    return bytes([255, 0, 0, 0]) if ip[0] < 128 else \
        bytes([255, 255, 0, 0]) if ip[0] < 192 else bytes([255, 255, 255, 0])


def _prefixlen(mask: bytes) -> int | None:
    n = int.from_bytes(mask, "big")
    length = bin(n).count("1")
    return length if n == (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF else None


def _text(ip: bytes | None) -> str:
    return str(ipaddress.IPv4Address(ip)) if ip else "255.255.255.255"


def configure(kernel, value: str) -> None:
    """Apply ip=<value> (after eth0=user made the device); problems are
    logged as Linux logs them, and the boot goes on."""
    if value in _OFF:
        return
    if value in _AUTO:
        fields = [""] * 6 + [value, "", ""]
    else:
        fields = (value.split(":") + [""] * 9)[:9]
    client, server, gw, mask, hostname, device, auto = fields[:7]
    dns = [a for a in (_ip(f, "nameserver") for f in fields[7:9]) if a]
    net = kernel.net
    try:
        dev = net.by_name(device or "eth0")
    except KernelError:
        printk.pr_err(f"IP-Config: Device `{device or 'eth0'}' not found.")
        return
    addr, server_ip, gw_ip, mask_ip = (_ip(client, "address"), _ip(server, "server"),
                                       _ip(gw, "gateway"), _ip(mask, "netmask"))
    proto = "MANUAL"
    if addr is None:
        if auto in _OFF or net.nat is None or dev is not net.nat.dev:
            printk.pr_err("IP-Config: Incomplete network configuration information.")
            return
        addr = net.nat.dhcp.allocate(dev.hwaddr)
        if addr is None:
            printk.pr_err("IP-Config: Auto-configuration of network failed.")
            return
        opts = net.nat.dhcp.options()
        mask_ip, gw_ip, server_ip = opts[dhcp.OPT_SUBNET], opts[dhcp.OPT_ROUTER], opts[dhcp.OPT_ROUTER]
        dns = [opts[dhcp.OPT_DNS]]
        proto = "DHCP"
        printk.pr_info(f"IP-Config: Got DHCP answer from {_text(server_ip)}, "
                       f"my address is {_text(addr)}")
    if mask_ip is None or _prefixlen(mask_ip) is None:
        mask_ip = _class_mask(addr)
    plen = _prefixlen(mask_ip)
    bcast = bytes(a | (~m & 0xFF) for a, m in zip(addr, mask_ip))
    net.set_flags(dev, dev.flags | netdev.IFF_UP)
    try:
        net.add_addr(dev, IfAddr(AF_INET, addr, plen, label=dev.name, broadcast=bcast))
    except KernelError:
        pass                    # already there: a second ip= of the same address
    if gw_ip is not None:
        if netdev.prefix_match(gw_ip, addr, plen):
            net.add_route(Route(AF_INET, bytes(4), 0, dev.index, gateway=gw_ip,
                                protocol=netdev.RTPROT_BOOT))
        else:
            printk.pr_err("IP-Config: Gateway not on directly connected network")
    if hostname:
        kernel.init_ns.uts.hostname = hostname[:64]
    lines = [f"#PROTO: {proto}" if proto != "MANUAL" else "#MANUAL"]
    lines += [f"nameserver {_text(a)}" for a in dns[:_NS_MAX]]
    if server_ip is not None:
        lines.append(f"bootserver {_text(server_ip)}")
    net.ipconfig_pnp = "\n".join(lines) + "\n"
    printk.pr_info("IP-Config: Complete:")
    printk.pr_info(f"     device={dev.name}, hwaddr={dev.hwaddr.hex(':')}, ipaddr={_text(addr)}, "
                   f"mask={_text(mask_ip)}, gw={_text(gw_ip)}")
    printk.pr_info(f"     host={hostname or _text(addr)}, domain=, nis-domain=(none)")
    printk.pr_info(f"     bootserver={_text(server_ip)}, rootserver={_text(server_ip)}, rootpath=")
    if dns:
        printk.pr_info("     " + ", ".join(f"nameserver{i}={_text(a)}" for i, a in enumerate(dns)))
