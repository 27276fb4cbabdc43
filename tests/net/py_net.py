"""CPython's networking over the guest's loopback: socketserver, http.server
with urllib, asyncio streams (IPv4 and IPv6), selectors with a
non-blocking connect, refused connects, UDP and sendfile.  Run natively
and in the guest by tests/test_net_debian.py; outputs must match."""
import asyncio
import errno
import http.server
import os
import selectors
import socket
import socketserver
import threading
import urllib.error
import urllib.request


def line(*a):
    print(*a, flush=True)


# socketserver + threads
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        data = self.request.recv(1024)
        self.request.sendall(data.upper())
srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
threading.Thread(target=srv.serve_forever, daemon=True).start()
with socket.create_connection(srv.server_address) as c:
    c.sendall(b"socketserver"); line(c.recv(100))
srv.shutdown(); srv.server_close()

# http.server + urllib
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
os.chdir("/etc")
hs = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=hs.serve_forever, daemon=True).start()
body = urllib.request.urlopen(f"http://127.0.0.1:{hs.server_address[1]}/debian_version").read()
line("http", len(body) > 0)
try:
    urllib.request.urlopen(f"http://127.0.0.1:{hs.server_address[1]}/nope")
except urllib.error.HTTPError as e:
    line("http 404", e.code)
hs.shutdown(); hs.server_close()

# asyncio streams, v4 and v6
async def amain(host):
    async def handle(r, w):
        d = await r.readline(); w.write(d[::-1]); await w.drain(); w.close()
    server = await asyncio.start_server(handle, host, 0)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection(host, port)
    w.write(b"asyncio\n"); await w.drain()
    line(host, await r.read())
    w.close(); server.close(); await server.wait_closed()
asyncio.run(amain("127.0.0.1")); asyncio.run(amain("::1"))

# selectors over TCP, nonblocking connect
sel = selectors.DefaultSelector()
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(5); ls.setblocking(False)
c = socket.socket(); c.setblocking(False)
line("connect_ex", errno.errorcode.get(c.connect_ex(ls.getsockname()), 0))
sel.register(c, selectors.EVENT_WRITE)
ev = sel.select(1); line("writable", [k.fileobj is c for k, _ in ev], c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
a, _ = ls.accept(); a.setblocking(False)
sel.register(a, selectors.EVENT_READ)
c.send(b"sel"); ev = sel.select(1); line("readable", [k.fileobj is a for k, _ in ev], a.recv(10))
try: a.recv(10)
except BlockingIOError: line("EAGAIN")
c.close(); line("after close", a.recv(10))
# refused
r = socket.socket(); port = ls.getsockname()[1]; ls.close()
line("refused", errno.errorcode[r.connect_ex(("127.0.0.1", port))])
# UDP
u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u1.bind(("127.0.0.1", 0))
u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u2.sendto(b"a"*10, u1.getsockname()); u2.sendto(b"", u1.getsockname())
d, addr = u1.recvfrom(4); line("udp", d, addr == u2.getsockname(), u1.recvfrom(10)[0])
u2.connect(("127.0.0.1", 9)); u2.send(b"x")
try: u2.recv(10)
except OSError as e: line("udp refused", errno.errorcode[e.errno])
# sendfile
with open("/etc/debian_version", "rb") as f:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
    c = socket.create_connection(s.getsockname()); a, _ = s.accept()
    n = c.sendfile(f); c.close(); line("sendfile", n == len(a.recv(1000)))
line("done")
