"""User-mode networking (`eth0=user`): QEMU's slirp at socket level.

The guest's eth0 sits on a virtual 10.0.2.0/24 network (vnet.py) whose
other members exist only in the kernel: the gateway 10.0.2.2 (the host's
own loopback), the DNS forwarder 10.0.2.3 (dns.py) and the DHCP server
(dhcp.py).  Guest sockets talking to the outside are carried by host
sockets the kernel opens (nat.py, hostconn.py, arch_um.hostnet);
`hostfwd=` rules listen on the host and hand connections to guest
listeners (hostfwd.py).  See docs/networking.md, "User-mode networking".
"""
