/* TCP over IPv4 and IPv6 on loopback: socket creation, options, bind and
   connect rules, data transfer flags, shutdown, resets, poll masks in each
   state, ioctls, TCP_INFO, bulk transfer and sendfile.  Every check runs for
   both families where that makes sense; lines start with "v4" or "v6".
   Ports are ephemeral (bind port 0, then getsockname) and never printed, nor
   are fds or anything timing-dependent.  Where the other side has to run at
   the same time it is a fork()ed child; where a state must settle first, the
   program polls (with a timeout) for the event that marks it before printing
   the full mask with a zero timeout.  Deterministic output; last line done. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "inet.h"

static volatile sig_atomic_t sigpipes;
static const char *scratch;      /* argv[1], where t_bulk makes its files */

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

/* ---- sockets ------------------------------------------------------------ */

static int tcp(void) { return socket(fam, SOCK_STREAM, 0); }

/* a listener on loopback, ephemeral port; *a gets its address */
static int listener(addr_t *a)
{
    int l = tcp();
    addr_t b = mk(fam, LO(), 0);
    if (bind(l, (void *)&b.ss, b.len) < 0 || listen(l, 16) < 0) {
        say("listener setup failed: %s", en(-1));
        exit(1);
    }
    *a = sockname(l);
    return l;
}

/* a connected pair *c (client) / *s (accepted), in this one process */
static void pair(int *c, int *s)
{
    addr_t a;
    int l = listener(&a);
    *c = tcp();
    if (connect(*c, (void *)&a.ss, a.len) < 0) {
        say("pair connect failed: %s", en(-1));
        exit(1);
    }
    *s = accept(l, NULL, NULL);
    close(l);
}

/* ---- waiting and poll masks -------------------------------------------- */

/* wait until at least n bytes are queued for reading on fd */
static void wait_inq(int fd, int n)
{
    for (int i = 0; i < 3000; i++) {
        int q = 0;
        if (ioctl(fd, FIONREAD, &q) < 0 || q >= n)
            return;
        usleep(1000);
    }
}

/* epoll with the usual interest set; EPOLLERR/EPOLLHUP are always reported */
static const char *emask(int fd)
{
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI}, o = {0};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    int r = epoll_wait(ep, &o, 1, 0);
    close(ep);
    return flagnames(r == 1 ? (int)o.events : 0, 1);
}

/* ---- small helpers ------------------------------------------------------ */

static const char *fl(int fd)
{
    static char b[64];
    int f = fcntl(fd, F_GETFL), d = fcntl(fd, F_GETFD);
    snprintf(b, sizeof b, "nonblock=%d cloexec=%d", !!(f & O_NONBLOCK), !!(d & FD_CLOEXEC));
    return b;
}

static void on_pipe(int s) { (void)s; sigpipes++; }

static int tcpstate(int fd)
{
    struct tcp_info ti;
    socklen_t l = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
        return -1;
    return ti.tcpi_state;
}

static const char *statename(int s)
{
    static const char *n[] = {"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
                              "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"};
    return s >= 0 && s <= 11 ? n[s] : "?";
}

/* the byte stream the bulk transfers send */
static void pattern(unsigned char *p, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = off + i;
        p[i] = (unsigned char)((k * 2654435761u) >> 13) ^ (unsigned char)(k >> 8);
    }
}

static uint32_t fnv(uint32_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static int writeall(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0)
            return -1;
        c += w;
        n -= w;
    }
    return 0;
}

/* ======================================================================== */

static void t_create(void)
{
    int s = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    say("socket NONBLOCK|CLOEXEC: %s", fl(s));
    close(s);
    s = socket(fam, SOCK_STREAM, IPPROTO_TCP);
    say("socket plain (IPPROTO_TCP): %s SO_PROTOCOL=%s", fl(s), geti(s, SOL_SOCKET, SO_PROTOCOL));
    close(s);
    static const struct sock_try bad[] = {
        {SOCK_STREAM, IPPROTO_UDP, "STREAM/IPPROTO_UDP"},
        {SOCK_DGRAM, IPPROTO_TCP, "DGRAM/IPPROTO_TCP"},
        {SOCK_STREAM, 253, "STREAM/proto 253"},
        {SOCK_SEQPACKET, 0, "SEQPACKET/0"},     /* ESOCKTNOSUPPORT unless SCTP is loaded */
        {SOCK_RDM, 0, "RDM/0"},
        {11, 0, "type 11"},
        {SOCK_STREAM | 0x100000, 0, "STREAM|bad flag"},
    };
    try_sockets(bad, sizeof bad / sizeof bad[0]);
}

static void t_defaults(void)
{
    int s = tcp();
    say("defaults: SO_TYPE=%s SO_DOMAIN=%s SO_PROTOCOL=%s SO_ACCEPTCONN=%s SO_ERROR=%s",
        geti(s, SOL_SOCKET, SO_TYPE), geti(s, SOL_SOCKET, SO_DOMAIN) , geti(s, SOL_SOCKET, SO_PROTOCOL),
        geti(s, SOL_SOCKET, SO_ACCEPTCONN), geti(s, SOL_SOCKET, SO_ERROR));
    say("defaults: SO_KEEPALIVE=%s SO_REUSEADDR=%s SO_REUSEPORT=%s SO_OOBINLINE=%s SO_BROADCAST=%s",
        geti(s, SOL_SOCKET, SO_KEEPALIVE), geti(s, SOL_SOCKET, SO_REUSEADDR), geti(s, SOL_SOCKET, SO_REUSEPORT),
        geti(s, SOL_SOCKET, SO_OOBINLINE), geti(s, SOL_SOCKET, SO_BROADCAST));
    say("defaults: SO_RCVLOWAT=%s SO_SNDLOWAT=%s", geti(s, SOL_SOCKET, SO_RCVLOWAT), geti(s, SOL_SOCKET, SO_SNDLOWAT));
    struct linger lg = {7, 7};
    socklen_t l = sizeof lg;
    int r = getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &l);
    say("defaults: SO_LINGER=%s {%d,%d} len=%u", rs(r), lg.l_onoff, lg.l_linger, l);
    struct timeval tv = {7, 7};
    l = sizeof tv;
    r = getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &l);
    say("defaults: SO_RCVTIMEO=%s {%ld,%ld} len=%u", rs(r), (long)tv.tv_sec, (long)tv.tv_usec, l);
    say("defaults: TCP_NODELAY=%s TCP_CORK=%s TCP_KEEPIDLE=%s TCP_KEEPINTVL=%s TCP_KEEPCNT=%s TCP_MAXSEG=%s",
        geti(s, IPPROTO_TCP, TCP_NODELAY), geti(s, IPPROTO_TCP, TCP_CORK), geti(s, IPPROTO_TCP, TCP_KEEPIDLE),
        geti(s, IPPROTO_TCP, TCP_KEEPINTVL), geti(s, IPPROTO_TCP, TCP_KEEPCNT), geti(s, IPPROTO_TCP, TCP_MAXSEG));
    if (fam == AF_INET)
        say("defaults: IP_TTL=%s IP_TOS=%s IPV6_V6ONLY=%s", geti(s, IPPROTO_IP, IP_TTL), geti(s, IPPROTO_IP, IP_TOS),
            geti(s, IPPROTO_IPV6, IPV6_V6ONLY));
    else
        say("defaults: IPV6_UNICAST_HOPS=%s IPV6_V6ONLY=%s IPV6_TCLASS=%s IP_TTL=%s", geti(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS),
            geti(s, IPPROTO_IPV6, IPV6_V6ONLY), geti(s, IPPROTO_IPV6, IPV6_TCLASS), geti(s, IPPROTO_IP, IP_TTL));

    /* round trips */
    static const struct { int lvl, opt, val; const char *name; } rt[] = {
        {SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
        {SOL_SOCKET, SO_KEEPALIVE, 5, "SO_KEEPALIVE"},
        {SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"},
        {SOL_SOCKET, SO_RCVLOWAT, 10, "SO_RCVLOWAT"},
        {SOL_SOCKET, SO_RCVBUF, 4096, "SO_RCVBUF"},
        {SOL_SOCKET, SO_SNDBUF, 4096, "SO_SNDBUF"},
        {SOL_SOCKET, SO_RCVBUF, 10000, "SO_RCVBUF"},
        {IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY"},
        {IPPROTO_TCP, TCP_NODELAY, 7, "TCP_NODELAY"},
        {IPPROTO_TCP, TCP_CORK, 1, "TCP_CORK"},
        {IPPROTO_TCP, TCP_KEEPIDLE, 30, "TCP_KEEPIDLE"},
        {IPPROTO_TCP, TCP_KEEPIDLE, 0, "TCP_KEEPIDLE"},
        {IPPROTO_TCP, TCP_KEEPINTVL, 5, "TCP_KEEPINTVL"},
        {IPPROTO_TCP, TCP_KEEPCNT, 3, "TCP_KEEPCNT"},
        {IPPROTO_TCP, TCP_KEEPCNT, 200, "TCP_KEEPCNT"},
        {IPPROTO_TCP, TCP_MAXSEG, 1000, "TCP_MAXSEG"},
        {IPPROTO_TCP, TCP_MAXSEG, 50, "TCP_MAXSEG"},
        {IPPROTO_IP, IP_TTL, 5, "IP_TTL"},
        {IPPROTO_IP, IP_TTL, 0, "IP_TTL"},
        {IPPROTO_IP, IP_TTL, 256, "IP_TTL"},
        {IPPROTO_IP, IP_TTL, -1, "IP_TTL"},
        {IPPROTO_IP, IP_TOS, 0x13, "IP_TOS"},
        {IPPROTO_IPV6, IPV6_UNICAST_HOPS, 7, "IPV6_UNICAST_HOPS"},
        {IPPROTO_IPV6, IPV6_UNICAST_HOPS, -1, "IPV6_UNICAST_HOPS"},
        {IPPROTO_IPV6, IPV6_UNICAST_HOPS, 300, "IPV6_UNICAST_HOPS"},
        {IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY"},
    };
    for (unsigned i = 0; i < sizeof rt / sizeof rt[0]; i++) {
        r = seti(s, rt[i].lvl, rt[i].opt, rt[i].val);
        say("set %s=%d: %s -> get %s", rt[i].name, rt[i].val, rs(r), geti(s, rt[i].lvl, rt[i].opt));
    }
    lg.l_onoff = 1;
    lg.l_linger = 5;
    r = setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    memset(&lg, 0, sizeof lg);
    l = sizeof lg;
    getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &l);
    say("set SO_LINGER {1,5}: %s -> get {%d,%d}", rs(r), lg.l_onoff, lg.l_linger);
    tv.tv_sec = 1;
    tv.tv_usec = 100000;
    r = setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    memset(&tv, 0, sizeof tv);
    l = sizeof tv;
    getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &l);
    say("set SO_RCVTIMEO {1,100000}: %s -> get {%ld,%ld}", rs(r), (long)tv.tv_sec, (long)tv.tv_usec);
    tv.tv_sec = 0;
    tv.tv_usec = 1000000;
    r = setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    say("set SO_RCVTIMEO {0,1000000}: %s", rs(r));

    /* bad levels and names, short lengths */
    int v = 1;
    say("getsockopt SOL_SOCKET/9999: %s", geti(s, SOL_SOCKET, 9999));
    say("getsockopt IPPROTO_TCP/9999: %s", geti(s, IPPROTO_TCP, 9999));
    say("getsockopt level 9999: %s", geti(s, 9999, 1));
    say("getsockopt IPPROTO_UDP/UDP_CORK: %s", geti(s, IPPROTO_UDP, 1));
    if (fam == AF_INET)
        say("getsockopt IPV6_UNICAST_HOPS on v4: %s", geti(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS));
    r = setsockopt(s, SOL_SOCKET, 9999, &v, sizeof v);
    say("setsockopt SOL_SOCKET/9999: %s", rs(r));
    r = setsockopt(s, IPPROTO_TCP, 9999, &v, sizeof v);
    say("setsockopt IPPROTO_TCP/9999: %s", rs(r));
    r = setsockopt(s, 9999, 1, &v, sizeof v);
    say("setsockopt level 9999: %s", rs(r));
    r = setsockopt(s, IPPROTO_UDP, 1, &v, sizeof v);
    say("setsockopt IPPROTO_UDP/UDP_CORK: %s", rs(r));
    if (fam == AF_INET) {
        r = setsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, sizeof v);
        say("setsockopt IPV6_UNICAST_HOPS on v4: %s", rs(r));
    }
    r = setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &v, 2);
    say("setsockopt SO_KEEPALIVE optlen 2: %s", rs(r));
    r = setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, 2);
    say("setsockopt TCP_NODELAY optlen 2: %s", rs(r));
    r = setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg - 1);
    say("setsockopt SO_LINGER short: %s", rs(r));
    r = setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, NULL, sizeof v);
    say("setsockopt SO_KEEPALIVE NULL: %s", rs(r));
    v = 0x01020304;
    l = 2;
    r = getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l);
    say("getsockopt SO_TYPE optlen 2: %s len=%u value=0x%08x", rs(r), l, v);
    v = 0x01020304;
    l = 2;
    r = getsockopt(s, IPPROTO_TCP, TCP_KEEPCNT, &v, &l);
    say("getsockopt TCP_KEEPCNT optlen 2: %s len=%u value=0x%08x", rs(r), l, v);
    v = 0x01020304;
    l = 0;
    r = getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l);
    say("getsockopt SO_TYPE optlen 0: %s len=%u value=0x%08x", rs(r), l, v);
    v = 0x01020304;
    l = (socklen_t)-1;
    r = getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l);
    say("getsockopt SO_TYPE optlen -1: %s", rs(r));
    v = 0x01020304;
    l = 64;
    r = getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l);
    say("getsockopt SO_TYPE optlen 64: %s len=%u", rs(r), l);
    close(s);
}

static void t_bind(void)
{
    addr_t lo = mk(fam, LO(), 0), got;
    int a = tcp(), b, r;
    r = bind(a, (void *)&lo.ss, lo.len);
    got = sockname(a);
    int port = port_of(&got);
    say("bind loopback:0: %s addr=%s ephemeral-range=%s", rs(r), txt(&got), inrange(&got));
    r = bind(a, (void *)&lo.ss, lo.len);
    say("bind twice: %s", rs(r));
    addr_t same = mk(fam, LO(), port);
    b = tcp();
    r = bind(b, (void *)&same.ss, same.len);
    say("bind same port, bound (not listening) socket exists: %s", rs(r));
    seti(a, SOL_SOCKET, SO_REUSEADDR, 1);
    seti(b, SOL_SOCKET, SO_REUSEADDR, 1);
    r = bind(b, (void *)&same.ss, same.len);
    say("bind same port, both SO_REUSEADDR: %s", rs(r));
    close(b);
    listen(a, 1);
    b = tcp();
    seti(b, SOL_SOCKET, SO_REUSEADDR, 1);
    r = bind(b, (void *)&same.ss, same.len);
    say("bind same port, listener exists, both SO_REUSEADDR: %s", rs(r));
    close(b);
    b = tcp();
    addr_t anyp = mk(fam, ANY(), port);
    r = bind(b, (void *)&anyp.ss, anyp.len);
    say("bind wildcard on listener's port: %s", rs(r));
    close(b);
    close(a);
    b = tcp();
    r = bind(b, (void *)&same.ss, same.len);
    say("rebind after listener closed (no connections), no SO_REUSEADDR: %s", rs(r));
    close(b);

    /* a port left in TIME_WAIT by the accepted side closing first */
    a = tcp();
    seti(a, SOL_SOCKET, SO_REUSEADDR, 1);
    bind(a, (void *)&lo.ss, lo.len);
    listen(a, 1);
    got = sockname(a);
    same = mk(fam, LO(), port_of(&got));
    int c = tcp();
    connect(c, (void *)&got.ss, got.len);
    int s = accept(a, NULL, NULL);
    close(s);                       /* active close on the server side */
    char ch;
    settle(c, POLLRDHUP);
    say("client reads server's FIN: %s", rs(read(c, &ch, 1)));
    close(c);
    close(a);
    usleep(20000);
    b = tcp();
    r = bind(b, (void *)&same.ss, same.len);
    say("rebind port in TIME_WAIT, no SO_REUSEADDR: %s", rs(r));
    seti(b, SOL_SOCKET, SO_REUSEADDR, 1);
    r = bind(b, (void *)&same.ss, same.len);
    say("rebind port in TIME_WAIT, SO_REUSEADDR: %s", rs(r));
    r = listen(b, 1);
    say("listen on it: %s", rs(r));
    close(b);

    /* malformed addresses, each on a fresh socket */
    /* family: -1 the other inet family, -2 AF_UNSPEC */
    static const struct { int len, family, any; const char *what; } mal[] = {
        {-1, 0, 0, "addrlen-1"},
        {24, 0, 0, "addrlen 24"},       /* RFC 2133 sockaddr_in6, no scope id */
        {2, 0, 0, "addrlen 2"},
        {0, 0, 0, "addrlen 0"},
        {0, -1, 0, "wrong family"},
        {0, -2, 0, "AF_UNSPEC loopback"},
        {0, -2, 1, "AF_UNSPEC wildcard"},
    };
    for (unsigned i = 0; i < sizeof mal / sizeof mal[0]; i++) {
        addr_t x = mk(fam, mal[i].any ? ANY() : LO(), 0);
        int len = mal[i].len < 0 ? (int)x.len + mal[i].len : mal[i].len ? mal[i].len : (int)x.len;
        if (!strcmp(mal[i].what, "addrlen 0"))
            len = 0;
        if (mal[i].family == -1)
            x.ss.ss_family = fam == AF_INET ? AF_INET6 : AF_INET;
        else if (mal[i].family == -2)
            x.ss.ss_family = AF_UNSPEC;
        b = tcp();
        r = bind(b, (void *)&x.ss, len);
        const char *br = rs(r);
        got = sockname(b);
        say("bind %s: %s%s%s", mal[i].what, br, r == 0 ? " addr=" : "", r == 0 ? txt(&got) : "");
        close(b);
    }
    b = tcp();
    r = bind(b, NULL, lo.len);
    say("bind NULL addr: %s", rs(r));
    close(b);
    b = tcp();
    addr_t x = mk(fam, fam == AF_INET ? "10.255.255.1" : "2001:db8::1", 0);
    r = bind(b, (void *)&x.ss, x.len);
    say("bind non-local address: %s", rs(r));
    close(b);
    if (fam == AF_INET) {
        b = tcp();
        x = mk(fam, "127.0.0.2", 0);
        r = bind(b, (void *)&x.ss, x.len);
        got = sockname(b);
        say("bind 127.0.0.2: %s addr=%s", rs(r), txt(&got));
        close(b);
    }

    /* unbound: getsockname gives the wildcard, port 0; listen autobinds */
    b = tcp();
    got = sockname(b);
    say("unbound getsockname: addr=%s port0=%s len=%u", txt(&got), port_of(&got) == 0 ? "yes" : "no", got.len);
    addr_t pn;
    pn.len = sizeof pn.ss;
    r = getpeername(b, (void *)&pn.ss, &pn.len);
    say("unbound getpeername: %s", rs(r));
    r = listen(b, 1);
    got = sockname(b);
    say("listen unbound: %s addr=%s ephemeral-range=%s", rs(r), txt(&got), inrange(&got));
    r = bind(b, (void *)&lo.ss, lo.len);
    say("bind after listen: %s", rs(r));
    r = listen(b, 5);
    say("listen again: %s", rs(r));
    close(b);
}

static void t_dualstack(void)
{
    /* v6 listener on :: (dual stack by default) reached from v4 */
    int port;
    int l = listen_any6(&port);
    addr_t la = sockname(l);
    say("listener on [::]: addr=%s", txt(&la));
    int c = socket(AF_INET, SOCK_STREAM, 0);
    addr_t to4 = mk(AF_INET, "127.0.0.1", port);
    int r = connect(c, (void *)&to4.ss, to4.len);
    say("v4 connect to dual-stack v6 listener: %s", rs(r));
    addr_t pa;
    pa.len = sizeof pa.ss;
    int s = accept(l, (void *)&pa.ss, &pa.len);
    addr_t cn = sockname(c), sn = sockname(s);
    say("accepted: peer=%s len=%u port==client's=%s local=%s", txt(&pa), pa.len,
        port_of(&pa) == port_of(&cn) ? "yes" : "no", txt(&sn));
    close(s);
    close(c);
    /* v6 socket to a v4-mapped address of a v4 listener */
    int l4 = socket(AF_INET, SOCK_STREAM, 0);
    addr_t lo4 = mk(AF_INET, "127.0.0.1", 0);
    bind(l4, (void *)&lo4.ss, lo4.len);
    listen(l4, 4);
    addr_t l4a = sockname(l4);
    c = socket(AF_INET6, SOCK_STREAM, 0);
    addr_t mapped = mk(AF_INET6, "::ffff:127.0.0.1", port_of(&l4a));
    const char *cr = rs(connect(c, (void *)&mapped.ss, mapped.len));
    cn = sockname(c);
    addr_t cp = peername(c);
    say("v6 connect to ::ffff:127.0.0.1: %s local=%s peer=%s port==listener's=%s", cr, txt(&cn), txt(&cp),
        port_of(&cp) == port_of(&l4a) ? "yes" : "no");
    s = accept(l4, NULL, NULL);
    addr_t sp = peername(s);
    say("v4 side sees peer=%s", txt(&sp));
    write(c, "m", 1);
    char ch = '?';
    const char *rr = rs(read(s, &ch, 1));
    say("data over mapped connection: %s %c", rr, ch);
    close(s);
    close(c);
    /* a v6only socket can't use mapped addresses */
    c = socket(AF_INET6, SOCK_STREAM, 0);
    seti(c, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    r = connect(c, (void *)&mapped.ss, mapped.len);
    say("v6only connect to ::ffff:127.0.0.1: %s", rs(r));
    close(c);
    c = socket(AF_INET6, SOCK_STREAM, 0);
    seti(c, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    mapped = mk(AF_INET6, "::ffff:127.0.0.1", 0);
    r = bind(c, (void *)&mapped.ss, mapped.len);
    say("v6only bind ::ffff:127.0.0.1: %s", rs(r));
    close(c);
    c = socket(AF_INET6, SOCK_STREAM, 0);
    cr = rs(bind(c, (void *)&mapped.ss, mapped.len));
    cn = sockname(c);
    say("bind ::ffff:127.0.0.1: %s addr=%s", cr, txt(&cn));
    r = seti(c, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    say("IPV6_V6ONLY after bind: %s", rs(r));
    close(c);
    close(l4);
    /* the v4 wildcard port is taken by the dual-stack listener */
    int b = socket(AF_INET, SOCK_STREAM, 0);
    addr_t any4 = mk(AF_INET, "0.0.0.0", port);
    r = bind(b, (void *)&any4.ss, any4.len);
    say("v4 bind 0.0.0.0 on dual-stack listener's port: %s", rs(r));
    close(b);
    close(l);

    /* a v6only listener on :: is not reachable through 127.0.0.1 */
    l = socket(AF_INET6, SOCK_STREAM, 0);
    r = seti(l, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    addr_t any = mk(AF_INET6, "::", 0);
    bind(l, (void *)&any.ss, any.len);
    listen(l, 4);
    la = sockname(l);
    port = port_of(&la);
    say("v6only listener: set %s get %s", rs(r), geti(l, IPPROTO_IPV6, IPV6_V6ONLY));
    c = socket(AF_INET, SOCK_STREAM, 0);
    to4 = mk(AF_INET, "127.0.0.1", port);
    r = connect(c, (void *)&to4.ss, to4.len);
    say("v4 connect to v6only listener: %s", rs(r));
    close(c);
    /* 127.0.0.2, not 0.0.0.0: a wildcard bind would also collide with any
       other program's v4 socket that happens to use this port number */
    b = socket(AF_INET, SOCK_STREAM, 0);
    any4 = mk(AF_INET, "127.0.0.2", port);
    r = bind(b, (void *)&any4.ss, any4.len);
    say("v4 bind 127.0.0.2 on v6only listener's port: %s", rs(r));
    close(b);
    c = socket(AF_INET6, SOCK_STREAM, 0);
    addr_t to6 = mk(AF_INET6, "::1", port);
    r = connect(c, (void *)&to6.ss, to6.len);
    say("v6 connect ::1 to v6only listener: %s", rs(r));
    close(c);
    close(l);
}

static void t_connect(void)
{
    addr_t la;
    int l = listener(&la), r;
    const char *pm;
    say("listener: SO_ACCEPTCONN=%s TCP_INFO state=%s", geti(l, SOL_SOCKET, SO_ACCEPTCONN), statename(tcpstate(l)));
    say("listener poll (nothing pending): %s", pmask(l));
    int c = tcp();
    say("unconnected socket poll: %s", pmask(c));
    r = connect(c, (void *)&la.ss, la.len);
    say("blocking connect: %s", rs(r));
    settle(l, POLLIN);
    say("listener poll (one pending): %s", pmask(l));
    say("listener epoll (one pending): %s", emask(l));
    addr_t pa;
    pa.len = sizeof pa.ss;
    int s = accept4(l, (void *)&pa.ss, &pa.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    addr_t cn = sockname(c), cp = peername(c), sn = sockname(s);
    say("accept4 NONBLOCK|CLOEXEC: %s len=%u", fl(s), pa.len);
    say("client: local=%s peer=%s peer port==listener's=%s", txt(&cn), txt(&cp), port_of(&cp) == port_of(&la) ? "yes" : "no");
    say("server: local=%s local port==listener's=%s peer=%s peer port==client's=%s", txt(&sn),
        port_of(&sn) == port_of(&la) ? "yes" : "no", txt(&pa), port_of(&pa) == port_of(&cn) ? "yes" : "no");
    say("connected poll: client %s server %s", pmask(c), pmask(s));
    say("connected epoll: %s", emask(c));
    say("SO_ACCEPTCONN accepted=%s TCP_INFO state=%s", geti(s, SOL_SOCKET, SO_ACCEPTCONN), statename(tcpstate(s)));
    const char *e;
    int mss = gi(c, IPPROTO_TCP, TCP_MAXSEG, &e);
    say("TCP_MAXSEG connected > 536: %s", !e && mss > 536 ? "yes" : "no");
    r = connect(c, (void *)&la.ss, la.len);
    say("connect again: %s", rs(r));
    r = listen(c, 1);
    say("listen on connected: %s", rs(r));
    r = accept(c, NULL, NULL);
    say("accept on connected: %s", rs(r));
    close(s);
    close(c);

    /* accept flags: plain accept does not inherit O_NONBLOCK */
    int ln = socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0);
    addr_t b = mk(fam, LO(), 0);
    bind(ln, (void *)&b.ss, b.len);
    listen(ln, 4);
    la = sockname(ln);
    r = accept(ln, NULL, NULL);
    say("accept nonblocking listener, none pending: %s", rs(r));
    c = tcp();
    connect(c, (void *)&la.ss, la.len);
    settle(ln, POLLIN);
    s = accept(ln, NULL, NULL);
    say("accept from nonblocking listener: %s", fl(s));
    close(s);
    close(c);
    r = accept4(ln, NULL, NULL, 0x4000);
    say("accept4 bad flags: %s", rs(r));
    pa.len = 3;
    c = tcp();
    connect(c, (void *)&la.ss, la.len);
    settle(ln, POLLIN);
    s = accept(ln, (void *)&pa.ss, &pa.len);
    say("accept addrlen 3: %s len=%u", s < 0 ? rs(s) : "ok", pa.len);
    close(s);
    close(c);
    close(ln);

    int u = tcp();
    r = accept(u, NULL, NULL);
    say("accept on unbound socket: %s", rs(r));
    bind(u, (void *)&b.ss, b.len);
    r = accept(u, NULL, NULL);
    say("accept on bound, non-listening: %s", rs(r));
    /* connect to a bound but non-listening port */
    addr_t ua = sockname(u);
    c = tcp();
    r = connect(c, (void *)&ua.ss, ua.len);
    say("connect to non-listening port: %s", rs(r));
    pm = pmask(c);
    say("poll after refused: %s SO_ERROR=%s", pm, geti(c, SOL_SOCKET, SO_ERROR));
    r = connect(c, (void *)&ua.ss, ua.len);
    say("connect again after refused: %s", rs(r));
    close(c);
    c = socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0);
    r = connect(c, (void *)&ua.ss, ua.len);
    say("nonblocking connect to non-listening port: %s", rs(r));
    settle(c, POLLOUT);
    pm = pmask(c);
    const char *e1 = geti(c, SOL_SOCKET, SO_ERROR), *e2 = geti(c, SOL_SOCKET, SO_ERROR);
    say("  then poll: %s SO_ERROR=%s SO_ERROR again=%s", pm, e1, e2);
    say("  poll after SO_ERROR read: %s", pmask(c));
    close(c);
    close(u);

    /* nonblocking connect that succeeds */
    l = listener(&la);
    c = socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0);
    r = connect(c, (void *)&la.ss, la.len);
    say("nonblocking connect: %s", rs(r));
    settle(c, POLLOUT);
    pm = pmask(c);
    say("  then poll: %s SO_ERROR=%s", pm, geti(c, SOL_SOCKET, SO_ERROR));
    r = connect(c, (void *)&la.ss, la.len);
    say("  connect again: %s", rs(r));
    r = connect(c, (void *)&la.ss, la.len);
    say("  connect a third time: %s", rs(r));
    s = accept(l, NULL, NULL);
    close(s);
    close(c);

    /* bad connect addresses, each on a fresh socket */
    for (int i = 0; i < 4; i++) {
        addr_t z = la;
        socklen_t zl = la.len;
        static const char *what[] = {"addrlen-1", "addrlen 2", "wrong family", "port 0"};
        if (i == 0)
            zl--;
        if (i == 1)
            zl = 2;
        if (i == 2)
            z.ss.ss_family = fam == AF_INET ? AF_INET6 : AF_INET;
        if (i == 3)
            z = mk(fam, LO(), 0);
        c = tcp();
        r = connect(c, (void *)&z.ss, zl);
        say("connect %s: %s", what[i], rs(r));
        close(c);
        if (r == 0)
            close(accept(l, NULL, NULL));
    }
    c = tcp();
    addr_t z = mk(fam, ANY(), port_of(&la));
    r = connect(c, (void *)&z.ss, z.len);
    cp = peername(c);
    say("connect to wildcard address: %s peer=%s", rs(r), txt(&cp));
    s = accept(l, NULL, NULL);
    close(s);
    close(c);

    /* listen backlog 0 still takes one connection */
    close(l);
    l = tcp();
    b = mk(fam, LO(), 0);
    bind(l, (void *)&b.ss, b.len);
    r = listen(l, 0);
    la = sockname(l);
    c = tcp();
    int r2 = connect(c, (void *)&la.ss, la.len);
    settle(l, POLLIN);
    s = accept(l, NULL, NULL);
    say("listen(0): %s, connect %s, accept %s", rs(r), rs(r2), s < 0 ? rs(s) : "ok");
    close(s);
    close(c);
    /* shutdown(SHUT_RD) of a listener stops it listening */
    r = shutdown(l, SHUT_RD);
    say("shutdown(listener, SHUT_RD): %s SO_ACCEPTCONN=%s", rs(r), geti(l, SOL_SOCKET, SO_ACCEPTCONN));
    r = accept(l, NULL, NULL);
    say("  accept after: %s", rs(r));
    c = tcp();
    r = connect(c, (void *)&la.ss, la.len);
    say("  connect to it: %s", rs(r));
    close(c);
    close(l);

    /* closing a listener resets connections it has not accepted */
    l = listener(&la);
    c = tcp();
    connect(c, (void *)&la.ss, la.len);
    settle(l, POLLIN);
    close(l);
    settle(c, POLLERR);
    say("listener closed with pending connection: client poll %s", pmask(c));
    char ch;
    say("  client recv: %s", rs(recv(c, &ch, 1, 0)));
    say("  client recv again: %s", rs(recv(c, &ch, 1, 0)));
    close(c);
}

static void t_data(void)
{
    int c, s, r;
    char buf[256];
    ssize_t n;
    pair(&c, &s);
    n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    say("recv MSG_DONTWAIT on empty: %s", rs(n));
    write(c, "hello", 5);
    write(c, "world", 5);
    wait_inq(s, 10);
    int q = -1;
    r = ioctl(s, FIONREAD, &q);
    say("FIONREAD: %s %d", rs(r), q);
    q = -1;
    r = ioctl(s, SIOCINQ, &q);
    say("SIOCINQ: %s %d", rs(r), q);
    say("poll with data: %s", pmask(s));
    n = recv(s, buf, 3, MSG_PEEK);
    say("MSG_PEEK 3: %s %.3s", rs(n), buf);
    n = recv(s, buf, sizeof buf, MSG_PEEK);
    say("MSG_PEEK all: %s %.*s", rs(n), (int)n, buf);
    n = recv(s, NULL, 4, MSG_TRUNC);
    say("MSG_TRUNC 4 (discard): %s", rs(n));
    n = recv(s, buf, sizeof buf, 0);
    say("recv rest: %s %.*s", rs(n), (int)n, buf);

    /* readv/writev */
    struct iovec wv[3] = {{"abc", 3}, {"", 0}, {"defghij", 7}};
    n = writev(c, wv, 3);
    say("writev: %s", rs(n));
    wait_inq(s, 10);
    char r1[4] = {0}, r2[16] = {0};
    struct iovec rv[2] = {{r1, 4}, {r2, 16}};
    n = readv(s, rv, 2);
    say("readv: %s [%.4s][%.6s]", rs(n), r1, r2);

    /* sendmsg/recvmsg, recvfrom: TCP gives no address; MSG_CMSG_CLOEXEC is
     * echoed in msg_flags */
    struct iovec mv[2] = {{"send", 4}, {"msg", 3}};
    struct msghdr m = {.msg_iov = mv, .msg_iovlen = 2};
    n = sendmsg(c, &m, 0);
    say("sendmsg: %s", rs(n));
    wait_inq(s, 7);
    addr_t from;
    memset(&from, 0, sizeof from);
    struct iovec iv = {buf, sizeof buf};
    struct msghdr rm = {.msg_name = &from.ss, .msg_namelen = sizeof from.ss, .msg_iov = &iv, .msg_iovlen = 1};
    n = recvmsg(s, &rm, MSG_CMSG_CLOEXEC);     /* msg_flags echoes it */
    say("recvmsg: %s %.*s namelen=%u flags=0x%x", rs(n), (int)n, buf, rm.msg_namelen, rm.msg_flags);
    write(c, "xy", 2);
    wait_inq(s, 2);
    from.len = sizeof from.ss;
    n = recvfrom(s, buf, sizeof buf, 0, (void *)&from.ss, &from.len);
    say("recvfrom: %s addrlen=%u", rs(n), from.len);

    /* sendto with an address on a connected socket: the address is ignored */
    addr_t other = mk(fam, LO(), 9);
    n = sendto(c, "to", 2, 0, (void *)&other.ss, other.len);
    const char *rr;
    wait_inq(s, 2);
    rr = rs(n);
    say("sendto other address on connected: %s, peer got %s", rr, rs(recv(s, buf, sizeof buf, 0)));
    other.ss.ss_family = AF_UNIX;
    n = sendto(c, "to", 2, 0, (void *)&other.ss, 2);
    wait_inq(s, 2);
    rr = rs(n);
    say("sendto garbage address on connected: %s, peer got %s", rr, rs(recv(s, buf, sizeof buf, 0)));

    /* sendmmsg/recvmmsg */
    struct iovec sv[3] = {{"1111", 4}, {"2222", 4}, {"3333", 4}};
    struct mmsghdr sm[3];
    memset(sm, 0, sizeof sm);
    for (int i = 0; i < 3; i++) {
        sm[i].msg_hdr.msg_iov = &sv[i];
        sm[i].msg_hdr.msg_iovlen = 1;
    }
    r = sendmmsg(c, sm, 3, 0);
    say("sendmmsg 3: %s lens %u %u %u", rs(r), sm[0].msg_len, sm[1].msg_len, sm[2].msg_len);
    wait_inq(s, 12);
    char rb[3][5];
    memset(rb, 0, sizeof rb);
    struct iovec ri[3] = {{rb[0], 5}, {rb[1], 5}, {rb[2], 5}};
    struct mmsghdr mm[3];
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        mm[i].msg_hdr.msg_iov = &ri[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    r = recvmmsg(s, mm, 3, MSG_DONTWAIT, NULL);
    say("recvmmsg (5-byte buffers): %s lens %u %u %u [%.5s][%.5s][%.2s]", rs(r), mm[0].msg_len, mm[1].msg_len,
        mm[2].msg_len, rb[0], rb[1], rb[2]);

    /* MSG_WAITALL gathers pieces written by a child */
    fflush(stdout);
    pid_t w = fork();
    if (w == 0) {
        for (int i = 0; i < 3; i++) {
            usleep(15000);
            write(c, "ab", 2);
        }
        _exit(0);
    }
    n = recv(s, buf, 6, MSG_WAITALL);
    say("MSG_WAITALL 6 from 3 writes: %s %.6s", rs(n), buf);
    waitpid(w, NULL, 0);

    /* SO_RCVTIMEO */
    struct timeval tv = {0, 100000};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    n = recv(s, buf, sizeof buf, 0);
    say("recv with SO_RCVTIMEO, nothing sent: %s", rs(n));

    /* SIOCOUTQ drains once the peer acknowledged */
    write(c, "12345678", 8);
    wait_inq(s, 8);
    q = -1;
    for (int i = 0; i < 3000; i++) {
        ioctl(c, SIOCOUTQ, &q);
        if (q == 0)
            break;
        usleep(1000);
    }
    say("SIOCOUTQ after peer received: %d", q);
    recv(s, buf, sizeof buf, 0);
    q = -1;
    r = ioctl(s, SIOCINQ, &q);
    say("SIOCINQ empty: %s %d", rs(r), q);
    close(c);
    close(s);

    addr_t la;
    int l = listener(&la);
    r = ioctl(l, SIOCINQ, &q);
    say("SIOCINQ on listener: %s", rs(r));
    r = ioctl(l, SIOCOUTQ, &q);
    say("SIOCOUTQ on listener: %s", rs(r));
    close(l);
    int u = tcp();
    q = -1;
    r = ioctl(u, SIOCOUTQ, &q);
    say("SIOCOUTQ unconnected: %s %d", rs(r), q);
    n = recv(u, buf, 1, 0);
    say("recv on unconnected: %s", rs(n));
    sigpipes = 0;
    n = send(u, "x", 1, 0);
    say("send on unconnected: %s sigpipe=%d", rs(n), (int)sigpipes);
    n = write(u, "x", 1);
    say("write on unconnected: %s", rs(n));
    close(u);
}

static void t_shutdown(void)
{
    int c, s, r;
    char buf[64];
    ssize_t n;
    int u = tcp();
    r = shutdown(u, SHUT_RDWR);
    say("shutdown unconnected: %s", rs(r));
    say("  poll after: %s", pmask(u));
    close(u);

    pair(&c, &s);
    r = shutdown(c, 7);
    say("shutdown how=7: %s", rs(r));
    r = shutdown(c, SHUT_WR);
    say("shutdown(client, SHUT_WR): %s", rs(r));
    settle(s, POLLRDHUP);
    say("  client poll %s", pmask(c));
    say("  server poll %s", pmask(s));
    say("  server epoll %s", emask(s));
    say("  server TCP_INFO %s", statename(tcpstate(s)));
    say("  server read: %s", rs(read(s, buf, sizeof buf)));
    sigpipes = 0;
    n = send(c, "x", 1, MSG_NOSIGNAL);
    say("  client send after SHUT_WR: %s", rs(n));
    n = write(s, "back", 4);
    wait_inq(c, 4);
    n = read(c, buf, sizeof buf);
    say("  server writes back, client reads: %s %.*s", rs(n), (int)n, buf);
    r = shutdown(s, SHUT_WR);
    settle(c, POLLRDHUP);
    say("  server SHUT_WR too: %s", rs(r));
    say("  both shut down: client poll %s", pmask(c));
    say("  both shut down: server poll %s", pmask(s));
    say("  client read: %s", rs(read(c, buf, sizeof buf)));
    r = shutdown(c, SHUT_RD);
    say("  shutdown again: %s", rs(r));
    close(c);
    close(s);

    /* SHUT_RD: reads return 0 at once, yet later data is still delivered */
    pair(&c, &s);
    r = shutdown(s, SHUT_RD);
    say("shutdown(server, SHUT_RD): %s", rs(r));
    say("  server poll %s", pmask(s));
    say("  client poll %s", pmask(c));
    say("  server read: %s", rs(read(s, buf, sizeof buf)));
    n = write(c, "late", 4);
    say("  client write: %s", rs(n));
    wait_inq(s, 4);
    n = read(s, buf, sizeof buf);
    say("  server read after client wrote: %s", rs(n));
    close(c);
    close(s);

    /* SHUT_RDWR */
    pair(&c, &s);
    r = shutdown(c, SHUT_RDWR);
    settle(s, POLLRDHUP);
    say("shutdown(client, SHUT_RDWR): %s", rs(r));
    say("  client poll %s", pmask(c));
    say("  server poll %s", pmask(s));
    say("  client read %s", rs(read(c, buf, sizeof buf)));
    n = send(c, "x", 1, MSG_NOSIGNAL);
    say("  client send %s", rs(n));
    close(c);
    close(s);

    /* normal close by the peer: EOF, then a send draws an RST -> EPIPE */
    pair(&c, &s);
    close(s);
    settle(c, POLLRDHUP);
    say("peer closed: poll %s TCP_INFO %s", pmask(c), statename(tcpstate(c)));
    say("  recv: %s", rs(recv(c, buf, sizeof buf, 0)));
    n = send(c, "x", 1, MSG_NOSIGNAL);
    say("  first send: %s", rs(n));
    settle(c, POLLERR);
    say("  after peer's RST: poll %s", pmask(c));
    say("  recv: %s", rs(recv(c, buf, sizeof buf, 0)));
    sigpipes = 0;
    n = send(c, "x", 1, MSG_NOSIGNAL);
    say("  send MSG_NOSIGNAL: %s sigpipe=%d", rs(n), (int)sigpipes);
    n = send(c, "x", 1, 0);
    say("  send: %s sigpipe=%d", rs(n), (int)sigpipes);
    n = write(c, "x", 1);
    say("  write: %s sigpipe=%d", rs(n), (int)sigpipes);
    say("  SO_ERROR: %s", geti(c, SOL_SOCKET, SO_ERROR));
    close(c);

    /* a big send after the peer closed: the send buffer's worth at most,
       then the RST's error (a sender must not think it all went) */
    pair(&c, &s);
    close(s);
    settle(c, POLLRDHUP);
    {
        static char big[1 << 20];
        int sb = 4096;
        setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
        fcntl(c, F_SETFL, O_NONBLOCK);
        n = send(c, big, sizeof big, MSG_NOSIGNAL);
        say("big send after the peer closed: %s", n < 0 ? rs(n) : n < (ssize_t)sizeof big ? "partial" : "all");
        settle(c, POLLERR);
        say("  then: %s", rs(send(c, big, sizeof big, MSG_NOSIGNAL)));
    }
    close(c);

    /* a read(2) into a bad buffer fails and consumes nothing */
    pair(&c, &s);
    write(c, "kept", 4);
    wait_inq(s, 4);
    char *volatile bad = (char *)8;
    say("read into a bad buffer: %s", rs(read(s, bad, 4)));
    say("  then recv: %s", rs(recv(s, buf, sizeof buf, 0)));
    close(c);
    close(s);

    /* close with unread data sends RST */
    pair(&c, &s);
    write(c, "unread", 6);
    wait_inq(s, 6);
    close(s);
    settle(c, POLLERR);
    say("peer closed with unread data: poll %s", pmask(c));
    say("  epoll %s", emask(c));
    say("  TCP_INFO state %s", statename(tcpstate(c)));
    say("  recv: %s", rs(recv(c, buf, sizeof buf, 0)));
    say("  recv again: %s", rs(recv(c, buf, sizeof buf, 0)));
    sigpipes = 0;
    n = send(c, "x", 1, 0);
    say("  send: %s sigpipe=%d", rs(n), (int)sigpipes);
    close(c);

    /* SO_LINGER {1,0}: abortive close */
    pair(&c, &s);
    struct linger lg = {1, 0};
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(s);
    settle(c, POLLERR);
    say("peer closed with SO_LINGER {1,0}: poll %s", pmask(c));
    say("  recv: %s", rs(recv(c, buf, sizeof buf, 0)));
    close(c);
    pair(&c, &s);
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(s);
    settle(c, POLLERR);
    say("  (again) SO_ERROR: %s", geti(c, SOL_SOCKET, SO_ERROR));
    say("  then poll %s", pmask(c));
    say("  then recv: %s", rs(recv(c, buf, sizeof buf, 0)));
    close(c);

    /* connect(AF_UNSPEC) disconnects a connected socket */
    pair(&c, &s);
    struct sockaddr sa = {.sa_family = AF_UNSPEC};
    r = connect(c, &sa, sizeof sa);
    settle(s, POLLERR);
    say("connect AF_UNSPEC on connected: %s, client poll %s", rs(r), pmask(c));
    say("  peer recv: %s", rs(recv(s, buf, sizeof buf, 0)));
    addr_t pn;
    pn.len = sizeof pn.ss;
    r = getpeername(c, (void *)&pn.ss, &pn.len);
    say("  getpeername: %s", rs(r));
    close(c);
    close(s);
}

static void t_bulk(const char *dir)
{
    int c, s;
    pair(&c, &s);
    enum { TOTAL = 4 << 20 };
    static unsigned char big[65536];
    fflush(stdout);
    pid_t w = fork();
    if (w == 0) {
        close(s);
        for (size_t off = 0; off < TOTAL; off += sizeof big) {
            pattern(big, sizeof big, off);
            if (writeall(c, big, sizeof big) < 0)
                _exit(1);
        }
        close(c);
        _exit(0);
    }
    close(c);
    uint32_t h = 2166136261u, want = 2166136261u;
    size_t got = 0;
    ssize_t n;
    while ((n = read(s, big, sizeof big)) > 0) {
        h = fnv(h, big, n);
        got += n;
    }
    int st = -1;
    waitpid(w, &st, 0);
    for (size_t off = 0; off < TOTAL; off += sizeof big) {
        pattern(big, sizeof big, off);
        want = fnv(want, big, sizeof big);
    }
    say("4 MiB child->parent: %zu bytes, last read %s, fnv %08x match=%s, child exit %d", got, rs(n), h,
        h == want ? "yes" : "no", WEXITSTATUS(st));
    close(s);

    /* the other direction, 1 MiB in odd-sized writes, checked in the child */
    enum { TOTAL2 = 1 << 20 };
    want = 2166136261u;
    for (size_t off = 0; off < TOTAL2; off += sizeof big) {
        pattern(big, sizeof big, off);
        want = fnv(want, big, sizeof big);
    }
    pair(&c, &s);
    w = fork();
    if (w == 0) {
        close(c);
        uint32_t hh = 2166136261u;
        size_t gg = 0;
        ssize_t k;
        while ((k = read(s, big, sizeof big)) > 0) {
            hh = fnv(hh, big, k);
            gg += k;
        }
        _exit(gg == TOTAL2 && hh == want ? 0 : 3);
    }
    close(s);
    int bad = 0;
    for (size_t off = 0; off < TOTAL2; off += 1000) {
        size_t k = TOTAL2 - off < 1000 ? TOTAL2 - off : 1000;
        pattern(big, k, off);
        if (writeall(c, big, k) < 0)
            bad = 1;
    }
    close(c);
    waitpid(w, &st, 0);
    say("1 MiB parent->child in 1000-byte writes: write errors %d, child verdict %d", bad, WEXITSTATUS(st));

    /* sendfile from a regular file */
    char path[512];
    snprintf(path, sizeof path, "%s/t_tcp.d", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/t_tcp.d/src.%s", dir, P);
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    enum { FSZ = 300000 };
    for (size_t off = 0; off < FSZ; off += sizeof big) {
        size_t k = FSZ - off < sizeof big ? FSZ - off : sizeof big;
        pattern(big, k, off);
        writeall(f, big, k);
    }
    lseek(f, 0, SEEK_SET);
    pair(&c, &s);
    fflush(stdout);
    w = fork();
    if (w == 0) {
        close(s);
        off_t o = 1000;
        size_t tot = 0;
        while (tot < FSZ - 1000) {
            ssize_t k = sendfile(c, f, &o, FSZ - 1000 - tot);
            if (k <= 0)
                _exit(4);
            tot += k;
        }
        _exit(o == FSZ ? 0 : 5);
    }
    close(c);
    h = 2166136261u;
    got = 0;
    while ((n = read(s, big, sizeof big)) > 0) {
        h = fnv(h, big, n);
        got += n;
    }
    waitpid(w, &st, 0);
    want = 2166136261u;
    for (size_t off = 1000; off < FSZ; off += sizeof big) {
        size_t k = FSZ - off < sizeof big ? FSZ - off : sizeof big;
        pattern(big, k, off);
        want = fnv(want, big, k);
    }
    say("sendfile offset 1000 of %d: received %zu, match=%s, child exit %d, file position %ld", FSZ, got,
        h == want ? "yes" : "no", WEXITSTATUS(st), (long)lseek(f, 0, SEEK_CUR));
    close(s);
    /* sendfile with a NULL offset moves the file position */
    pair(&c, &s);
    lseek(f, 10, SEEK_SET);
    n = sendfile(c, f, NULL, 100);
    wait_inq(s, 100);
    int q = 0;
    ioctl(s, FIONREAD, &q);
    say("sendfile 100 bytes, NULL offset: %s, peer has %d, file position %ld", rs(n), q, (long)lseek(f, 0, SEEK_CUR));
    close(c);
    close(s);
    close(f);
    unlink(path);
}

/* everything that runs once per family */
/* MSG_MORE and TCP_CORK hold a partial segment back until a plain send,
 * the cork's release or Linux's 200 ms ceiling */
static void t_cork(void)
{
    int c, s, one = 1, zero = 0;
    char buf[64];
    pair(&c, &s);
    say("send MSG_MORE: %s", rs(send(c, "0123456789abcdef", 16, MSG_MORE)));
    say("recv after MSG_MORE: %s", rs(recv(s, buf, sizeof buf, MSG_DONTWAIT)));
    say("send plain: %s", rs(send(c, "xyz", 3, 0)));
    wait_inq(s, 19);
    say("recv after plain: %s", rs(recv(s, buf, sizeof buf, MSG_DONTWAIT)));
    say("send MSG_MORE: %s", rs(send(c, "held", 4, MSG_MORE)));
    usleep(600000);
    say("recv after 600 ms: %s", rs(recv(s, buf, sizeof buf, MSG_DONTWAIT)));
    say("TCP_CORK on: %s", rs(setsockopt(c, IPPROTO_TCP, TCP_CORK, &one, sizeof one)));
    say("send corked: %s", rs(send(c, "corked", 6, 0)));
    say("recv corked: %s", rs(recv(s, buf, sizeof buf, MSG_DONTWAIT)));
    say("TCP_CORK off: %s", rs(setsockopt(c, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero)));
    wait_inq(s, 6);
    say("recv uncorked: %s", rs(recv(s, buf, sizeof buf, MSG_DONTWAIT)));
    say("send MSG_MORE then shutdown: %s", rs(send(c, "last", 4, MSG_MORE)));
    shutdown(c, SHUT_WR);
    wait_inq(s, 4);
    say("recv after shutdown: %s", rs(recv(s, buf, sizeof buf, MSG_DONTWAIT)));
    say("MSG_ERRQUEUE: %s", rs(recv(s, buf, sizeof buf, MSG_ERRQUEUE)));
    close(c);
    close(s);
}

/* urgent data: the mark, SIOCATMARK, POLLPRI and select's exceptions,
   recv MSG_OOB once (msg_flags MSG_OOB), reads that stop at the mark and
   pass over the urgent byte, SO_OOBINLINE, MSG_PEEK at the mark, a newer
   urgent byte taking an unread one's place, SIGURG to the F_SETOWN owner */
static volatile sig_atomic_t sigurgs;
static void on_urg(int s) { (void)s; sigurgs++; }

static int atmark(int fd)
{
    int m = -1;
    ioctl(fd, SIOCATMARK, &m);
    return m;
}

static const char *oob(int fd, int flags)
{
    static char b[64];
    char c = 0;
    struct iovec iv = {&c, 1};
    struct msghdr mh = {.msg_iov = &iv, .msg_iovlen = 1};
    long r = recvmsg(fd, &mh, MSG_OOB | MSG_DONTWAIT | flags);
    if (r < 0)
        snprintf(b, sizeof b, "%s", en(r));
    else
        snprintf(b, sizeof b, "%ld '%c' oob-flag=%d", r, r ? c : '-', !!(mh.msg_flags & MSG_OOB));
    return b;
}

static const char *rd(int fd, int flags)
{
    static char b[64];
    char buf[32];
    long r = recv(fd, buf, sizeof buf, MSG_DONTWAIT | flags);
    if (r < 0)
        snprintf(b, sizeof b, "%s", en(r));
    else
        snprintf(b, sizeof b, "'%.*s'", (int)r, buf);
    return b;
}

static int excepted(int fd)
{
    fd_set e;
    FD_ZERO(&e);
    FD_SET(fd, &e);
    struct timeval tv = {0, 0};
    return select(fd + 1, NULL, NULL, &e, &tv) == 1;
}

static void t_urgent(void)
{
    int c, s, one = 1;
    pair(&c, &s);
    signal(SIGURG, on_urg);
    fcntl(s, F_SETOWN, getpid());
    sigurgs = 0;
    send(c, "ab", 2, 0);
    say("send MSG_OOB: %s", rs(send(c, "cd", 2, MSG_OOB)));
    send(c, "ef", 2, 0);
    wait_inq(s, 6);
    say("urgent: %s", emask(s));
    say("select exception %d", excepted(s));
    say("at mark %d", atmark(s));
    say("SIGURG %d", (int)sigurgs);
    say("read stops at the mark: %s", rd(s, 0));
    say("at mark %d", atmark(s));
    say("peek at the mark: %s", rd(s, MSG_PEEK));
    say("recv MSG_OOB peek: %s", oob(s, MSG_PEEK));
    say("recv MSG_OOB: %s", oob(s, 0));
    say("recv MSG_OOB again: %s", oob(s, 0));
    say("after: %s", emask(s));
    say("then a read passes over it: %s", rd(s, 0));
    say("at mark %d", atmark(s));

    /* a plain read at the mark ends the urgent data */
    send(c, "x", 1, MSG_OOB);
    send(c, "yz", 2, 0);
    wait_inq(s, 3);
    say("read at the mark: %s", rd(s, 0));
    say("then MSG_OOB: %s", oob(s, 0));

    /* a newer urgent byte takes the place of one never read */
    send(c, "1", 1, MSG_OOB);
    send(c, "2", 1, MSG_OOB);
    wait_inq(s, 1);
    say("two urgent bytes: MSG_OOB %s", oob(s, 0));
    say("read %s", rd(s, 0));

    /* SO_OOBINLINE: the urgent byte stays in the stream */
    setsockopt(s, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one);
    send(c, "gh", 2, MSG_OOB);
    send(c, "i", 1, 0);
    wait_inq(s, 3);
    say("inline: %s", emask(s));
    say("MSG_OOB %s", oob(s, 0));
    say("read %s", rd(s, 0));
    say("at mark %d", atmark(s));
    say("read %s", rd(s, 0));
    say("SIGURG to the owner: %d", (int)sigurgs);
    signal(SIGURG, SIG_DFL);
    close(c);
    close(s);
}

static void passes(void)
{
    t_create();
    t_defaults();
    t_bind();
    t_connect();
    t_data();
    t_shutdown();
    t_cork();
    t_urgent();
    t_bulk(scratch);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    scratch = argc > 1 ? argv[1] : ".";
    char path[512], f[600];
    snprintf(path, sizeof path, "%s/t_tcp.d", scratch);
    snprintf(f, sizeof f, "%s/src.v4", path);     /* left over from a crashed run */
    unlink(f);
    snprintf(f, sizeof f, "%s/src.v6", path);
    unlink(f);
    rmdir(path);
    struct sigaction sa = {.sa_handler = on_pipe};
    sigaction(SIGPIPE, &sa, NULL);

    for_each_family(passes);
    P = "dual";          /* v6 sockets meeting v4 ones */
    fam = AF_INET6;
    t_dualstack();
    rmdir(path);
    printf("done\n");
    return 0;
}
