/* UDP over IPv4 and IPv6 on loopback: binding and ports, datagram
   addressing and boundaries, connect filtering and disconnect, peek and
   truncation, size limits, batches, poll masks, ICMP port unreachable on
   connected sockets, shutdown, ancillary data, address reuse.  Lines start
   with "v4" or "v6".  Ports are ephemeral and never printed; where data must
   have arrived first the program polls for it (with a timeout).  A port
   "nobody is bound to" is one this program bound and closed again.
   Deterministic output; last line done. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <unistd.h>

#include "inet.h"

static int udp(void) { return socket(fam, SOCK_DGRAM, 0); }

/* a UDP socket bound to loopback, ephemeral port */
static int bound(addr_t *a)
{
    int s = udp();
    addr_t b = mk(fam, LO(), 0);
    if (bind(s, (void *)&b.ss, b.len) < 0) {
        say("bind failed: %s", rs(-1));
        exit(1);
    }
    *a = sockname(s);
    return s;
}

/* a loopback port no socket is bound to (this program's own, just closed) */
static addr_t deadport(void)
{
    addr_t a;
    close(bound(&a));
    return a;
}

static int readable(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1;
}

/* recvfrom into buf; prints "N 'text' from ADDR port-match" */
static const char *rfrom(int fd, int flags, const addr_t *sender)
{
    static char out[16][200];
    static int k;
    char *o = out[k++ & 15];
    char buf[128];
    addr_t f;
    memset(&f, 0, sizeof f);
    f.len = sizeof f.ss;
    ssize_t n = recvfrom(fd, buf, sizeof buf, flags, (void *)&f.ss, &f.len);
    if (n < 0) {
        snprintf(o, 200, "-1 %s", strerrorname_np(errno));
        return o;
    }
    snprintf(o, 200, "%zd '%.*s' from %s len=%u port-match=%s", n, (int)(n > 40 ? 40 : n), buf, txt(&f), f.len,
             sender ? (port_of(&f) == port_of(sender) ? "yes" : "no") : "-");
    return o;
}

/* ======================================================================== */

static void t_basics(void)
{
    int s = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    say("socket NONBLOCK|CLOEXEC: nonblock=%d cloexec=%d", !!(fcntl(s, F_GETFL) & O_NONBLOCK),
        !!(fcntl(s, F_GETFD) & FD_CLOEXEC));
    say("SO_TYPE=%s SO_PROTOCOL=%s SO_DOMAIN=%s SO_BROADCAST=%s SO_REUSEADDR=%s SO_ACCEPTCONN=%s", geti(s, SOL_SOCKET, SO_TYPE),
        geti(s, SOL_SOCKET, SO_PROTOCOL), geti(s, SOL_SOCKET, SO_DOMAIN), geti(s, SOL_SOCKET, SO_BROADCAST),
        geti(s, SOL_SOCKET, SO_REUSEADDR), geti(s, SOL_SOCKET, SO_ACCEPTCONN));
    int r = seti(s, SOL_SOCKET, SO_BROADCAST, 1);
    say("set SO_BROADCAST: %s -> %s", rs(r), geti(s, SOL_SOCKET, SO_BROADCAST));
    r = seti(s, SOL_SOCKET, SO_RCVBUF, 4096);
    say("set SO_RCVBUF 4096: %s -> %s", rs(r), geti(s, SOL_SOCKET, SO_RCVBUF));
    if (fam == AF_INET)
        say("IP_TTL=%s IP_TOS=%s IP_PKTINFO=%s IP_RECVTTL=%s IP_MULTICAST_TTL=%s IP_MULTICAST_LOOP=%s", geti(s, IPPROTO_IP, IP_TTL),
            geti(s, IPPROTO_IP, IP_TOS), geti(s, IPPROTO_IP, IP_PKTINFO), geti(s, IPPROTO_IP, IP_RECVTTL),
            geti(s, IPPROTO_IP, IP_MULTICAST_TTL), geti(s, IPPROTO_IP, IP_MULTICAST_LOOP));
    else
        say("IPV6_UNICAST_HOPS=%s IPV6_V6ONLY=%s IPV6_RECVPKTINFO=%s IPV6_MULTICAST_HOPS=%s", geti(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS),
            geti(s, IPPROTO_IPV6, IPV6_V6ONLY), geti(s, IPPROTO_IPV6, IPV6_RECVPKTINFO),
            geti(s, IPPROTO_IPV6, IPV6_MULTICAST_HOPS));
    if (fam == AF_INET6) {
        /* IPV6_RTHDR: none set reads empty, an empty one removes none, a bad
           length and a type-0 header (deprecated everywhere) are EINVAL */
        unsigned char rt[24] = {0, 2, 0, 1};
        socklen_t rl = sizeof rt;
        r = getsockopt(s, IPPROTO_IPV6, IPV6_RTHDR, rt, &rl);
        say("IPV6_RTHDR unset: %s len %u", rs(r), (unsigned)rl);
        say("IPV6_RTHDR empty: %s", rs(setsockopt(s, IPPROTO_IPV6, IPV6_RTHDR, rt, 0)));
        say("IPV6_RTHDR 12 bytes: %s", rs(setsockopt(s, IPPROTO_IPV6, IPV6_RTHDR, rt, 12)));
        say("IPV6_RTHDR hdrlen past it: %s", rs(setsockopt(s, IPPROTO_IPV6, IPV6_RTHDR, rt, 16)));
        say("IPV6_RTHDR type 0: %s", rs(setsockopt(s, IPPROTO_IPV6, IPV6_RTHDR, rt, 24)));
    }
    r = getsockopt(s, SOL_SOCKET, 9999, &r, &(socklen_t){4});
    say("getsockopt SOL_SOCKET/9999: %s", rs(r));
    r = getsockopt(s, IPPROTO_UDP, 9999, &r, &(socklen_t){4});
    say("getsockopt IPPROTO_UDP/9999: %s", rs(r));
    int q = -1;
    r = ioctl(s, SIOCOUTQ, &q);
    say("SIOCOUTQ fresh: %s %d SO_ERROR %s", rs(r), q, geti(s, SOL_SOCKET, SO_ERROR));
    say("poll fresh: %s", pmask(s));
    char b;
    ssize_t n = recv(s, &b, 1, 0);
    say("recv on fresh nonblocking: %s", rs(n));
    addr_t a;
    a.len = sizeof a.ss;
    r = getpeername(s, (void *)&a.ss, &a.len);
    say("getpeername unconnected: %s", rs(r));
    a = sockname(s);
    say("unbound getsockname: %s port0=%s", txt(&a), port_of(&a) == 0 ? "yes" : "no");
    n = send(s, "x", 1, 0);
    say("send without destination: %s", rs(n));
    a = sockname(s);
    say("  it autobound anyway: %s ephemeral-range=%s", txt(&a), inrange(&a));
    close(s);

    static const struct sock_try bad[] = {
        {SOCK_DGRAM, IPPROTO_TCP, "DGRAM/IPPROTO_TCP"},
        {SOCK_DGRAM, 253, "DGRAM/253"},
    };
    try_sockets(bad, sizeof bad / sizeof bad[0]);
}

static void t_bind(void)
{
    addr_t a;
    int s = bound(&a), r;
    say("bind loopback:0: addr=%s ephemeral-range=%s", txt(&a), inrange(&a));
    addr_t lo = mk(fam, LO(), 0);
    r = bind(s, (void *)&lo.ss, lo.len);
    say("bind twice: %s", rs(r));
    int t = udp();
    r = bind(t, (void *)&a.ss, a.len);
    say("bind same address: %s", rs(r));
    close(t);
    t = udp();
    addr_t w = mk(fam, ANY(), port_of(&a));
    r = bind(t, (void *)&w.ss, w.len);
    say("bind wildcard, same port: %s", rs(r));
    close(t);
    close(s);

    /* SO_REUSEADDR: both binds succeed */
    s = udp();
    seti(s, SOL_SOCKET, SO_REUSEADDR, 1);
    bind(s, (void *)&lo.ss, lo.len);
    a = sockname(s);
    t = udp();
    seti(t, SOL_SOCKET, SO_REUSEADDR, 1);
    r = bind(t, (void *)&a.ss, a.len);
    say("SO_REUSEADDR two sockets same address: %s", rs(r));
    int u = udp();
    r = bind(u, (void *)&a.ss, a.len);
    say("  third without SO_REUSEADDR: %s", rs(r));
    close(u);
    close(t);
    close(s);

    /* SO_REUSEPORT */
    s = udp();
    seti(s, SOL_SOCKET, SO_REUSEPORT, 1);
    bind(s, (void *)&lo.ss, lo.len);
    a = sockname(s);
    t = udp();
    r = seti(t, SOL_SOCKET, SO_REUSEPORT, 1);
    say("set SO_REUSEPORT: %s -> %s", rs(r), geti(t, SOL_SOCKET, SO_REUSEPORT));
    r = bind(t, (void *)&a.ss, a.len);
    say("SO_REUSEPORT two sockets same address: %s", rs(r));
    u = udp();
    r = bind(u, (void *)&a.ss, a.len);
    say("  third without SO_REUSEPORT: %s", rs(r));
    close(u);
    /* a datagram to the group reaches exactly one of them */
    int snd = udp();
    sendto(snd, "grp", 3, 0, (void *)&a.ss, a.len);
    readable(s, 50);
    readable(t, 50);
    char b[8];
    int got = (recv(s, b, sizeof b, MSG_DONTWAIT) == 3) + (recv(t, b, sizeof b, MSG_DONTWAIT) == 3);
    say("  datagram delivered to how many: %d", got);
    close(snd);
    close(t);
    close(s);

    /* malformed addresses */
    static const char *what[] = {"addrlen-1", "addrlen 2", "wrong family", "AF_UNSPEC loopback", "AF_UNSPEC wildcard",
                                 "non-local address"};
    for (int i = 0; i < 6; i++) {
        addr_t x = mk(fam, i == 4 ? ANY() : i == 5 ? (fam == AF_INET ? "10.255.255.1" : "2001:db8::1") : LO(), 0);
        socklen_t l = x.len;
        if (i == 0)
            l--;
        if (i == 1)
            l = 2;
        if (i == 2)
            x.ss.ss_family = fam == AF_INET ? AF_INET6 : AF_INET;
        if (i == 3 || i == 4)
            x.ss.ss_family = AF_UNSPEC;
        s = udp();
        r = bind(s, (void *)&x.ss, l);
        const char *br = rs(r);
        a = sockname(s);
        say("bind %s: %s%s%s", what[i], br, r == 0 ? " addr=" : "", r == 0 ? txt(&a) : "");
        close(s);
    }

    /* autobind on first sendto: wildcard address, ephemeral port */
    s = udp();
    addr_t dead = deadport();
    sendto(s, "x", 1, 0, (void *)&dead.ss, dead.len);
    a = sockname(s);
    say("after sendto, unbound socket is bound to: %s ephemeral-range=%s", txt(&a), inrange(&a));
    close(s);
}

static void t_data(void)
{
    addr_t ra, sa;
    int r = bound(&ra), s = bound(&sa), rc;
    ssize_t n;
    char buf[70000];

    n = sendto(s, "hello", 5, 0, (void *)&ra.ss, ra.len);
    say("sendto: %s", rs(n));
    readable(r, 3000);
    say("poll with a datagram: %s", pmask(r));
    say("recvfrom: %s", rfrom(r, 0, &sa));
    n = recv(r, buf, sizeof buf, MSG_DONTWAIT);
    say("recv empty MSG_DONTWAIT: %s", rs(n));

    /* boundaries, FIONREAD = size of the next datagram only */
    sendto(s, "a", 1, 0, (void *)&ra.ss, ra.len);
    sendto(s, "bb", 2, 0, (void *)&ra.ss, ra.len);
    sendto(s, "ccc", 3, 0, (void *)&ra.ss, ra.len);
    readable(r, 3000);
    int q = -1;
    rc = ioctl(r, FIONREAD, &q);
    say("FIONREAD with 1,2,3-byte datagrams queued: %s %d", rs(rc), q);
    q = -1;
    rc = ioctl(r, SIOCOUTQ, &q);
    say("SIOCOUTQ receiver: %s %d", rs(rc), q);
    for (int i = 0; i < 3; i++) {
        n = recv(r, buf, sizeof buf, 0);
        say("recv %d: %s %.*s", i, rs(n), (int)(n > 0 ? n : 0), buf);
    }

    /* peek and truncation */
    sendto(s, "peekaboo", 8, 0, (void *)&ra.ss, ra.len);
    readable(r, 3000);
    n = recv(r, buf, 4, MSG_PEEK);
    say("MSG_PEEK 4 of 8: %s %.4s", rs(n), buf);
    n = recv(r, buf, 2, MSG_PEEK | MSG_TRUNC);
    say("MSG_PEEK|MSG_TRUNC 2: %s", rs(n));
    struct iovec iv = {buf, 3};
    struct msghdr m = {.msg_iov = &iv, .msg_iovlen = 1};
    n = recvmsg(r, &m, 0);
    say("recvmsg into 3 bytes: %s %.3s msg_flags MSG_TRUNC=%d", rs(n), buf, !!(m.msg_flags & MSG_TRUNC));
    n = recv(r, buf, sizeof buf, MSG_DONTWAIT);
    say("  rest of that datagram is gone: %s", rs(n));
    sendto(s, "truncated", 9, 0, (void *)&ra.ss, ra.len);
    readable(r, 3000);
    memset(&m, 0, sizeof m);
    m.msg_iov = &iv;
    m.msg_iovlen = 1;
    n = recvmsg(r, &m, MSG_TRUNC);
    say("recvmsg MSG_TRUNC into 3 bytes: %s %.3s msg_flags MSG_TRUNC=%d", rs(n), buf, !!(m.msg_flags & MSG_TRUNC));

    /* zero-length datagram */
    n = sendto(s, "", 0, 0, (void *)&ra.ss, ra.len);
    say("sendto 0 bytes: %s", rs(n));
    readable(r, 3000);
    q = -1;
    ioctl(r, FIONREAD, &q);
    say("  poll %s FIONREAD %d", pmask(r), q);
    say("  recvfrom: %s", rfrom(r, MSG_DONTWAIT, &sa));
    n = recv(r, buf, sizeof buf, MSG_DONTWAIT);
    say("  then: %s", rs(n));

    /* short address buffer in recvfrom */
    sendto(s, "addr", 4, 0, (void *)&ra.ss, ra.len);
    readable(r, 3000);
    addr_t f;
    memset(&f, 0, sizeof f);
    f.len = 4;
    n = recvfrom(r, buf, sizeof buf, 0, (void *)&f.ss, &f.len);
    say("recvfrom with addrlen 4: %s addrlen=%u family=%s", rs(n), f.len,
        f.ss.ss_family == fam ? "ok" : "other");
    sendto(s, "noaddr", 6, 0, (void *)&ra.ss, ra.len);
    readable(r, 3000);
    n = recvfrom(r, buf, sizeof buf, 0, NULL, NULL);
    say("recvfrom NULL address: %s", rs(n));

    /* sizes */
    int max = fam == AF_INET ? 65507 : 65527;
    memset(buf, 'z', sizeof buf);
    seti(r, SOL_SOCKET, SO_RCVBUF, 1 << 20);
    n = sendto(s, buf, max, 0, (void *)&ra.ss, ra.len);
    say("sendto %d bytes (max): %s", max, rs(n));
    n = sendto(s, buf, max + 1, 0, (void *)&ra.ss, ra.len);
    say("sendto %d bytes: %s", max + 1, rs(n));
    n = sendto(s, buf, 65536, 0, (void *)&ra.ss, ra.len);
    say("sendto 65536 bytes: %s", rs(n));
    readable(r, 3000);
    n = recv(r, buf, sizeof buf, 0);
    say("recv the max datagram: %s", rs(n));
    n = recv(r, buf, sizeof buf, MSG_DONTWAIT);
    say("nothing else queued: %s", rs(n));

    /* sendto variants; whatever one of them sent is received and shown */
    static const char *what[] = {"addrlen-1", "addrlen 2", "wrong family", "AF_UNSPEC family", "port 0", "wildcard address"};
    for (int i = 0; i < 6; i++) {
        addr_t x = ra;
        socklen_t l = x.len;
        if (i == 0)
            l--;
        if (i == 1)
            l = 2;
        if (i == 2)
            x.ss.ss_family = fam == AF_INET ? AF_INET6 : AF_INET;
        if (i == 3)
            x.ss.ss_family = AF_UNSPEC;
        if (i == 4)
            x = mk(fam, LO(), 0);
        if (i == 5)
            x = mk(fam, ANY(), port_of(&ra));
        n = sendto(s, what[i], strlen(what[i]), 0, (void *)&x.ss, l);
        const char *sr = rs(n);
        say("sendto %s: %s; receiver: %s", what[i], sr, readable(r, n < 0 ? 0 : 3000) ? rfrom(r, 0, &sa) : "nothing");
    }
    if (fam == AF_INET) {
        /* the loopback broadcast address needs SO_BROADCAST */
        addr_t bc = mk(fam, "127.255.255.255", port_of(&ra));
        n = sendto(s, "x", 1, 0, (void *)&bc.ss, bc.len);
        say("sendto 127.255.255.255 without SO_BROADCAST: %s", rs(n));
    }

    /* sendmsg with two iovecs is one datagram */
    struct iovec sv[2] = {{"gath", 4}, {"ered", 4}};
    struct msghdr sm = {.msg_name = &ra.ss, .msg_namelen = ra.len, .msg_iov = sv, .msg_iovlen = 2};
    n = sendmsg(s, &sm, 0);
    say("sendmsg 2 iovecs: %s", rs(n));
    readable(r, 3000);
    char r1[3] = {0}, r2[10] = {0};
    struct iovec rv[2] = {{r1, 3}, {r2, 10}};
    addr_t from;
    memset(&from, 0, sizeof from);
    struct msghdr rm = {.msg_name = &from.ss, .msg_namelen = sizeof from.ss, .msg_iov = rv, .msg_iovlen = 2};
    n = recvmsg(r, &rm, 0);
    say("recvmsg scatter: %s [%.3s][%.5s] from %s namelen=%u", rs(n), r1, r2, txt(&from), rm.msg_namelen);

    /* sendmmsg / recvmmsg */
    struct iovec mv[3] = {{"1", 1}, {"22", 2}, {"333", 3}};
    struct mmsghdr mm[3];
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        mm[i].msg_hdr.msg_name = &ra.ss;
        mm[i].msg_hdr.msg_namelen = ra.len;
        mm[i].msg_hdr.msg_iov = &mv[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    rc = sendmmsg(s, mm, 3, 0);
    say("sendmmsg 3: %s lens %u %u %u", rs(rc), mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
    char rb[3][8];
    struct iovec ri[3] = {{rb[0], 8}, {rb[1], 8}, {rb[2], 8}};
    addr_t names[3];
    struct mmsghdr rmm[3];
    memset(rmm, 0, sizeof rmm);
    memset(names, 0, sizeof names);
    for (int i = 0; i < 3; i++) {
        rmm[i].msg_hdr.msg_name = &names[i].ss;
        rmm[i].msg_hdr.msg_namelen = sizeof names[i].ss;
        rmm[i].msg_hdr.msg_iov = &ri[i];
        rmm[i].msg_hdr.msg_iovlen = 1;
    }
    rc = recvmmsg(r, rmm, 2, 0, NULL);
    say("recvmmsg vlen 2 (blocking): %s lens %u %u names %s %s", rs(rc), rmm[0].msg_len, rmm[1].msg_len,
        txt(&names[0]), txt(&names[1]));
    rmm[0].msg_len = 99;
    rc = recvmmsg(r, rmm, 3, MSG_WAITFORONE, NULL);
    say("recvmmsg vlen 3 MSG_WAITFORONE with one left: %s len %u [%.3s]", rs(rc), rmm[0].msg_len, rb[0]);
    rc = recvmmsg(r, rmm, 3, MSG_DONTWAIT, NULL);
    say("recvmmsg empty MSG_DONTWAIT: %s", rs(rc));

    /* SO_RCVTIMEO */
    struct timeval tv = {0, 100000};
    setsockopt(r, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    n = recv(r, buf, sizeof buf, 0);
    say("recv with SO_RCVTIMEO, nothing sent: %s", rs(n));
    close(r);
    close(s);
}

static void t_connect(void)
{
    addr_t aa, ba, ca;
    int a = bound(&aa), b = bound(&ba), c = bound(&ca), rc;
    ssize_t n;

    rc = connect(a, (void *)&ba.ss, ba.len);
    addr_t pn;
    pn.len = sizeof pn.ss;
    int pr = getpeername(a, (void *)&pn.ss, &pn.len);
    say("connect: %s getpeername %s %s port-match=%s", rs(rc), rs(pr), txt(&pn), port_of(&pn) == port_of(&ba) ? "yes" : "no");
    /* a datagram from a third socket is filtered out */
    sendto(c, "fromC", 5, 0, (void *)&aa.ss, aa.len);
    say("  from another socket: readable=%d", readable(a, 100));
    sendto(b, "fromB", 5, 0, (void *)&aa.ss, aa.len);
    readable(a, 3000);
    say("  from the peer: %s", rfrom(a, MSG_DONTWAIT, &ba));
    say("  then: %s", rfrom(a, MSG_DONTWAIT, NULL));
    n = send(a, "viaSend", 7, 0);
    readable(b, 3000);
    {
        const char *sr = rs(n);
        say("  send: %s; peer got %s", sr, rfrom(b, MSG_DONTWAIT, &aa));
    }
    n = write(a, "viaWrite", 8);
    readable(b, 3000);
    {
        const char *sr = rs(n);
        say("  write: %s; peer got %s", sr, rfrom(b, MSG_DONTWAIT, &aa));
    }
    n = sendto(a, "elsewhere", 9, 0, (void *)&ca.ss, ca.len);
    readable(c, 3000);
    {
        const char *sr = rs(n);
        say("  sendto another address while connected: %s; it got %s", sr, rfrom(c, MSG_DONTWAIT, &aa));
    }
    /* re-connect to another peer */
    rc = connect(a, (void *)&ca.ss, ca.len);
    sendto(c, "nowC", 4, 0, (void *)&aa.ss, aa.len);
    readable(a, 3000);
    {
        const char *sr = rs(rc);
        say("connect again to another peer: %s; %s", sr, rfrom(a, MSG_DONTWAIT, &ca));
    }
    /* AF_UNSPEC disconnects; a socket bound to port 0 loses its port */
    struct sockaddr un = {.sa_family = AF_UNSPEC};
    rc = connect(a, &un, sizeof un);
    pn.len = sizeof pn.ss;
    pr = getpeername(a, (void *)&pn.ss, &pn.len);
    const char *prs = rs(pr);
    addr_t an = sockname(a);
    say("connect AF_UNSPEC (bound to %s:0): %s getpeername %s local %s port0=%s", LO(), rs(rc), prs, txt(&an),
        port_of(&an) == 0 ? "yes" : "no");
    n = send(a, "x", 1, 0);
    say("  send: %s", rs(n));
    rc = connect(a, &un, sizeof un);
    say("  AF_UNSPEC again: %s", rs(rc));
    close(a);
    /* bound to an explicit port: address and port stay */
    addr_t fixed = deadport();
    a = udp();
    rc = bind(a, (void *)&fixed.ss, fixed.len);
    connect(a, (void *)&ba.ss, ba.len);
    rc = connect(a, &un, sizeof un);
    an = sockname(a);
    say("connect AF_UNSPEC (bound to %s:port): %s local %s port kept=%s", LO(), rs(rc), txt(&an),
        port_of(&an) == port_of(&fixed) ? "yes" : "no");
    sendto(b, "fromBagain", 10, 0, (void *)&fixed.ss, fixed.len);
    readable(a, 3000);
    say("  receives from anyone again: %s", rfrom(a, MSG_DONTWAIT, &ba));

    /* an unbound socket: connect autobinds, disconnect unbinds */
    int d = udp();
    rc = connect(d, (void *)&ba.ss, ba.len);
    addr_t dn = sockname(d);
    say("unbound socket connect: %s local %s ephemeral-range=%s", rs(rc), txt(&dn), inrange(&dn));
    rc = connect(d, &un, sizeof un);
    dn = sockname(d);
    say("  AF_UNSPEC: %s local %s port0=%s", rs(rc), txt(&dn), port_of(&dn) == 0 ? "yes" : "no");
    close(d);

    /* connect errors, each on a fresh socket */
    static const char *what[] = {"addrlen-1", "addrlen 2", "wrong family"};
    for (int i = 0; i < 3; i++) {
        addr_t x = ba;
        socklen_t l = i == 0 ? x.len - 1 : i == 1 ? 2 : x.len;
        if (i == 2)
            x.ss.ss_family = fam == AF_INET ? AF_INET6 : AF_INET;
        d = udp();
        rc = connect(d, (void *)&x.ss, l);
        const char *cr = rs(rc);
        pn.len = sizeof pn.ss;
        pr = getpeername(d, (void *)&pn.ss, &pn.len);
        say("connect %s: %s%s%s", what[i], cr, pr == 0 ? " peer " : "", pr == 0 ? txt(&pn) : "");
        close(d);
    }
    d = udp();
    addr_t x = mk(fam, LO(), 0);
    rc = connect(d, (void *)&x.ss, x.len);
    pn.len = sizeof pn.ss;
    pr = getpeername(d, (void *)&pn.ss, &pn.len);
    say("connect port 0: %s getpeername %s", rs(rc), rs(pr));
    n = send(d, "x", 1, 0);
    say("  send: %s", rs(n));
    close(d);
    d = udp();
    x = mk(fam, ANY(), port_of(&ba));
    rc = connect(d, (void *)&x.ss, x.len);
    pn.len = sizeof pn.ss;
    getpeername(d, (void *)&pn.ss, &pn.len);
    say("connect wildcard address: %s peer %s", rs(rc), txt(&pn));
    close(d);
    if (fam == AF_INET) {
        d = udp();
        x = mk(fam, "127.255.255.255", port_of(&ba));
        rc = connect(d, (void *)&x.ss, x.len);
        say("connect to 127.255.255.255 without SO_BROADCAST: %s", rs(rc));
        close(d);
    }
    close(a);
    close(b);
    close(c);
}

static void t_refused(void)
{
    /* ICMP port unreachable reaches a connected socket */
    addr_t dead = deadport();
    char buf[16];
    int s = udp(), rc;
    connect(s, (void *)&dead.ss, dead.len);
    ssize_t n = send(s, "ping", 4, 0);
    say("connected send to closed port: %s", rs(n));
    settle(s, POLLERR);
    say("  poll %s", pmask(s));
    n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    say("  recv: %s", rs(n));
    n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    say("  recv again: %s", rs(n));
    n = send(s, "ping", 4, 0);
    say("  send again: %s", rs(n));
    settle(s, POLLERR);
    n = send(s, "ping", 4, 0);
    say("  and once more: %s", rs(n));
    say("  SO_ERROR: %s", geti(s, SOL_SOCKET, SO_ERROR));
    n = send(s, "ping", 4, 0);
    settle(s, POLLERR);
    const char *pm = pmask(s), *se = geti(s, SOL_SOCKET, SO_ERROR);
    say("  after another send: poll %s, SO_ERROR %s, then poll %s", pm, se, pmask(s));
    close(s);

    /* an unconnected socket hears nothing */
    s = udp();
    n = sendto(s, "ping", 4, 0, (void *)&dead.ss, dead.len);
    say("unconnected sendto closed port: %s", rs(n));
    readable(s, 50);
    say("  poll %s", pmask(s));
    n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    {
        const char *sr = rs(n);
        say("  recv: %s SO_ERROR %s", sr, geti(s, SOL_SOCKET, SO_ERROR));
    }
    close(s);
    (void)rc;
}

static int blocked_fd;
static void *blocked_reader(void *arg)
{
    char b[8];
    (void)arg;
    long n = recv(blocked_fd, b, sizeof b, 0);
    return (void *)(n < 0 ? -(long)errno : n);
}

static void t_shutdown(void)
{
    addr_t aa, ba;
    int a = bound(&aa), b = bound(&ba), rc;
    char buf[16];
    ssize_t n;
    rc = shutdown(a, SHUT_RD);
    say("shutdown unconnected SHUT_RD: %s", rs(rc));
    say("  poll %s", pmask(a));
    n = recv(a, buf, sizeof buf, MSG_DONTWAIT);
    say("  recv: %s", rs(n));
    sendto(b, "after", 5, 0, (void *)&aa.ss, aa.len);
    for (int i = 0, q = 0; i < 3000 && q == 0; i++) {   /* POLLIN is set anyway */
        ioctl(a, FIONREAD, &q);
        if (!q)
            usleep(1000);
    }
    n = recv(a, buf, sizeof buf, MSG_DONTWAIT);
    say("  datagram sent after SHUT_RD: %s", rs(n));
    close(a);

    a = bound(&aa);
    connect(a, (void *)&ba.ss, ba.len);
    rc = shutdown(a, SHUT_WR);
    say("connected shutdown SHUT_WR: %s poll %s", rs(rc), pmask(a));
    n = send(a, "x", 1, MSG_NOSIGNAL);
    say("  send: %s", rs(n));
    rc = shutdown(a, SHUT_RD);
    say("  then SHUT_RD: %s poll %s", rs(rc), pmask(a));
    n = recv(a, buf, sizeof buf, 0);
    say("  blocking recv: %s", rs(n));
    close(a);

    /* shutdown wakes a reader blocked in recv */
    a = bound(&aa);
    blocked_fd = a;
    pthread_t th;
    pthread_create(&th, NULL, blocked_reader, NULL);
    usleep(50000);
    rc = shutdown(a, SHUT_RDWR);
    void *ret;
    pthread_join(th, &ret);
    say("shutdown SHUT_RDWR of a socket with a blocked reader: %s, reader got %ld", rs(rc), (long)ret);
    close(a);
    close(b);
}

static void t_cmsg(void)
{
    addr_t ra, sa;
    int r = bound(&ra), s = bound(&sa), rc;
    if (fam == AF_INET) {
        rc = seti(r, IPPROTO_IP, IP_PKTINFO, 1) | seti(r, IPPROTO_IP, IP_RECVTTL, 1) | seti(r, IPPROTO_IP, IP_RECVTOS, 1);
        seti(s, IPPROTO_IP, IP_TTL, 9);
        seti(s, IPPROTO_IP, IP_TOS, 0x20);
    } else {
        rc = seti(r, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) | seti(r, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1) |
             seti(r, IPPROTO_IPV6, IPV6_RECVTCLASS, 1);
        seti(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9);
        seti(s, IPPROTO_IPV6, IPV6_TCLASS, 0x20);
    }
    say("enable pktinfo/ttl/tos cmsgs: %s", rs(rc));
    sendto(s, "cmsg", 4, 0, (void *)&ra.ss, ra.len);
    readable(r, 3000);
    char buf[16], ctl[512];
    struct iovec iv = {buf, sizeof buf};
    struct msghdr m = {.msg_iov = &iv, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    ssize_t n = recvmsg(r, &m, 0);
    say("recvmsg: %s controllen=%zu flags=0x%x", rs(n), (size_t)m.msg_controllen, m.msg_flags);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        char a[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            inet_ntop(AF_INET, &pi.ipi_addr, a, sizeof a);
            inet_ntop(AF_INET, &pi.ipi_spec_dst, d, sizeof d);
            say("  IP_PKTINFO len=%zu ifindex=%d addr=%s spec_dst=%s", (size_t)c->cmsg_len, pi.ipi_ifindex, a, d);
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof v);
            say("  IP_TTL len=%zu ttl=%d", (size_t)c->cmsg_len, v);
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
            say("  IP_TOS len=%zu tos=0x%x", (size_t)c->cmsg_len, *(unsigned char *)CMSG_DATA(c));
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            inet_ntop(AF_INET6, &pi.ipi6_addr, a, sizeof a);
            say("  IPV6_PKTINFO len=%zu ifindex=%d addr=%s", (size_t)c->cmsg_len, pi.ipi6_ifindex, a);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof v);
            say("  IPV6_HOPLIMIT len=%zu hops=%d", (size_t)c->cmsg_len, v);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof v);
            say("  IPV6_TCLASS len=%zu tclass=0x%x", (size_t)c->cmsg_len, v);
        } else
            say("  cmsg level %d type %d len %zu", c->cmsg_level, c->cmsg_type, (size_t)c->cmsg_len);
    }
    /* control buffer too small for everything: MSG_CTRUNC */
    sendto(s, "cmsg", 4, 0, (void *)&ra.ss, ra.len);
    readable(r, 3000);
    m.msg_control = ctl;
    m.msg_controllen = fam == AF_INET ? CMSG_SPACE(sizeof(struct in_pktinfo)) : CMSG_SPACE(sizeof(struct in6_pktinfo));
    m.msg_flags = 0;
    n = recvmsg(r, &m, 0);
    int k = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        k++;
    say("small control buffer: %s cmsgs=%d controllen=%zu MSG_CTRUNC=%d", rs(n), k, (size_t)m.msg_controllen,
        !!(m.msg_flags & MSG_CTRUNC));
    close(r);
    close(s);
}

static void t_dualstack(void)
{
    /* a v6 socket on :: receives from v4 with a mapped source address */
    int r = socket(AF_INET6, SOCK_DGRAM, 0);
    addr_t any = mk(AF_INET6, "::", 0);
    bind(r, (void *)&any.ss, any.len);
    addr_t ra = sockname(r);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    addr_t lo4 = mk(AF_INET, "127.0.0.1", 0);
    bind(s, (void *)&lo4.ss, lo4.len);
    addr_t sa = sockname(s);
    addr_t to = mk(AF_INET, "127.0.0.1", port_of(&ra));
    ssize_t n = sendto(s, "four", 4, 0, (void *)&to.ss, to.len);
    readable(r, 3000);
    {
        const char *sr = rs(n);
        say("v4 -> [::] socket: %s, %s", sr, rfrom(r, MSG_DONTWAIT, &sa));
    }
    addr_t m = mk(AF_INET6, "::ffff:127.0.0.1", port_of(&sa));
    n = sendto(r, "back", 4, 0, (void *)&m.ss, m.len);
    readable(s, 3000);
    {
        const char *sr = rs(n);
        say("[::] socket -> ::ffff:127.0.0.1: %s, %s", sr, rfrom(s, MSG_DONTWAIT, &ra));
    }
    int v6o = socket(AF_INET6, SOCK_DGRAM, 0);
    seti(v6o, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    n = sendto(v6o, "x", 1, 0, (void *)&m.ss, m.len);
    say("v6only sendto ::ffff:127.0.0.1: %s", rs(n));
    close(v6o);
    close(r);
    /* a v6only socket on :: does not get v4 traffic, and the v4 port is free */
    r = socket(AF_INET6, SOCK_DGRAM, 0);
    seti(r, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    bind(r, (void *)&any.ss, any.len);
    ra = sockname(r);
    to = mk(AF_INET, "127.0.0.1", port_of(&ra));
    int t = socket(AF_INET, SOCK_DGRAM, 0);
    addr_t w4 = mk(AF_INET, "127.0.0.2", port_of(&ra));   /* not 0.0.0.0: see t_tcp */
    int rc = bind(t, (void *)&w4.ss, w4.len);
    say("v4 bind 127.0.0.2 on a v6only socket's port: %s", rs(rc));
    close(t);
    n = sendto(s, "four", 4, 0, (void *)&to.ss, to.len);
    say("v4 -> v6only [::] socket: %s readable=%d", rs(n), readable(r, 100));
    close(r);
    close(s);
}

/* everything that runs once per family */
/* MSG_MORE and UDP_CORK build one datagram from several sends */
static void t_cork(void)
{
    addr_t a;
    int r = bound(&a), w = udp(), one = 1, zero = 0;
    char buf[64];
    connect(w, (void *)&a.ss, a.len);
    say("send MSG_MORE: %s", rs(send(w, "abcde", 5, MSG_MORE)));
    say("recv after MSG_MORE: %s", rs(recv(r, buf, sizeof buf, MSG_DONTWAIT)));
    say("send plain: %s", rs(send(w, "fgh", 3, 0)));
    readable(r, 1000);
    say("recv one datagram: %s", rs(recv(r, buf, sizeof buf, MSG_DONTWAIT)));
    say("UDP_CORK on: %s", rs(setsockopt(w, IPPROTO_UDP, UDP_CORK, &one, sizeof one)));
    say("send corked: %s", rs(send(w, "12", 2, 0)));
    say("send corked: %s", rs(send(w, "34", 2, 0)));
    say("recv corked: %s", rs(recv(r, buf, sizeof buf, MSG_DONTWAIT)));
    say("UDP_CORK off: %s", rs(setsockopt(w, IPPROTO_UDP, UDP_CORK, &zero, sizeof zero)));
    readable(r, 1000);
    say("recv uncorked: %s", rs(recv(r, buf, sizeof buf, MSG_DONTWAIT)));
    say("MSG_ERRQUEUE: %s", rs(recv(r, buf, sizeof buf, MSG_ERRQUEUE)));
    /* after plain sends (a connected socket's short path), MSG_MORE still corks */
    for (int i = 0; i < 2; i++) {
        send(w, "p", 1, 0);
        readable(r, 1000);
        recv(r, buf, sizeof buf, MSG_DONTWAIT);
    }
    say("send MSG_MORE after plain ones: %s", rs(send(w, "0123456789abcdef", 16, MSG_MORE)));
    say("send plain: %s", rs(send(w, "!", 1, 0)));
    readable(r, 1000);
    say("recv one datagram: %s", rs(recv(r, buf, sizeof buf, MSG_DONTWAIT)));
    close(r);
    close(w);
}

/* multicast membership on lo (ifindex 1): the bookkeeping and its errors */
static void t_groups(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ip_mreqn m = {.imr_ifindex = 1};
    inet_pton(AF_INET, "224.1.2.3", &m.imr_multiaddr);
    say("join: %s", rs(setsockopt(s, SOL_IP, IP_ADD_MEMBERSHIP, &m, sizeof m)));
    say("join again: %s", rs(setsockopt(s, SOL_IP, IP_ADD_MEMBERSHIP, &m, sizeof m)));
    say("drop: %s", rs(setsockopt(s, SOL_IP, IP_DROP_MEMBERSHIP, &m, sizeof m)));
    say("drop again: %s", rs(setsockopt(s, SOL_IP, IP_DROP_MEMBERSHIP, &m, sizeof m)));
    say("short: %s", rs(setsockopt(s, SOL_IP, IP_ADD_MEMBERSHIP, &m, 4)));
    struct ip_mreqn u = m;
    inet_pton(AF_INET, "10.1.2.3", &u.imr_multiaddr);
    say("unicast group: %s", rs(setsockopt(s, SOL_IP, IP_ADD_MEMBERSHIP, &u, sizeof u)));
    u = m;
    u.imr_ifindex = 9999;
    say("no such interface: %s", rs(setsockopt(s, SOL_IP, IP_ADD_MEMBERSHIP, &u, sizeof u)));
    struct group_req g = {.gr_interface = 1};
    struct sockaddr_in *ga = (struct sockaddr_in *)&g.gr_group;
    ga->sin_family = AF_INET;
    inet_pton(AF_INET, "224.4.5.6", &ga->sin_addr);
    say("MCAST_JOIN_GROUP: %s", rs(setsockopt(s, SOL_IP, MCAST_JOIN_GROUP, &g, sizeof g)));
    say("MCAST_LEAVE_GROUP: %s", rs(setsockopt(s, SOL_IP, MCAST_LEAVE_GROUP, &g, sizeof g)));
    say("MCAST_LEAVE_GROUP again: %s", rs(setsockopt(s, SOL_IP, MCAST_LEAVE_GROUP, &g, sizeof g)));
    int n = 0, r = 0;
    for (int i = 0; i < 30 && r == 0; i++) {
        m.imr_multiaddr.s_addr = htonl(0xE0010100 + i);
        r = setsockopt(s, SOL_IP, IP_ADD_MEMBERSHIP, &m, sizeof m);
        n += r == 0;
    }
    say("joined %d, then: %s", n, rs(r));
    close(s);
}

static void passes(void)
{
    t_basics();
    t_bind();
    t_data();
    t_connect();
    t_refused();
    t_shutdown();
    t_cmsg();
    t_cork();
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for_each_family(passes);
    P = "dual";          /* v6 sockets meeting v4 ones */
    fam = AF_INET6;
    t_dualstack();
    P = "v4";
    t_groups();
    printf("done\n");
    return 0;
}
