/* ICMP "ping" sockets, socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) and
   socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6): echo requests to loopback
   and the replies the kernel itself answers with.  Lines start with "v4" or
   "v6".
   Linux lets a process create these only if its gid (or a supplementary
   group) is inside net.ipv4.ping_group_range (both families use that one
   sysctl); the default "1 0" admits nobody, root included, and socket()
   fails with EACCES.  When socket() fails the family's section prints one
   line with the errno name and is skipped, so both sides must agree on the
   range: natively the harness runs
       sysctl -w net.ipv4.ping_group_range="0 2147483647"
   (or runs the program in a network namespace where it set that), and the
   guest kernel must admit the same gids.
   The echo identifier is the socket's "port": the kernel overwrites the id
   the program sends with it, and getsockname() reports it; neither is
   printed, only whether they agree.  Deterministic output; last line done. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "inet.h"

static uint32_t sum16(uint32_t s, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (b[i] << 8) | b[i + 1];
    if (n & 1)
        s += b[n - 1] << 8;
    return s;
}

static int csum_ok(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return s == 0xffff;
}

/* an ICMP(v6) message as received; for v6 the pseudo-header needs src/dst */
static int checksum_ok(const void *msg, size_t n, const addr_t *src, const addr_t *dst)
{
    if (fam == AF_INET)
        return csum_ok(sum16(0, msg, n));
    uint32_t s = 0;
    s = sum16(s, &((struct sockaddr_in6 *)&src->ss)->sin6_addr, 16);
    s = sum16(s, &((struct sockaddr_in6 *)&dst->ss)->sin6_addr, 16);
    s += (uint32_t)n;
    s += IPPROTO_ICMPV6;
    return csum_ok(sum16(s, msg, n));
}

static const char PAYLOAD[] = "umlpy ping payload 0123456789";

/* build an echo request (checksum left 0: the kernel fills it in) */
static size_t echo(unsigned char *buf, int type, int code, int id, int seq, size_t plen)
{
    buf[0] = type;
    buf[1] = code;
    buf[2] = buf[3] = 0;
    buf[4] = id >> 8;
    buf[5] = id;
    buf[6] = seq >> 8;
    buf[7] = seq;
    memcpy(buf + 8, PAYLOAD, plen);
    return 8 + plen;
}

static int ECHO_REQ(void) { return fam == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST; }

/* receive one reply and describe it */
static void show_reply(int s, const addr_t *local_to, int ident, size_t plen, const char *what)
{
    struct pollfd p = {s, POLLIN, 0};
    poll(&p, 1, 3000);
    unsigned char buf[256];
    addr_t from;
    memset(&from, 0, sizeof from);
    from.len = sizeof from.ss;
    ssize_t n = recvfrom(s, buf, sizeof buf, MSG_DONTWAIT, (void *)&from.ss, &from.len);
    if (n < 8) {
        say("%s: recvfrom %s", what, rs(n));
        return;
    }
    int id = buf[4] << 8 | buf[5], seq = buf[6] << 8 | buf[7];
    /* the reply went from `from` to us; for v6 the pseudo-header uses the
       address the request was sent to as the source */
    say("%s: %zd bytes from %s fromlen=%u type=%d code=%d id==ident=%s seq=%d payload %s checksum %s", what, n,
        txt(&from), from.len, buf[0], buf[1], id == ident ? "yes" : "no", seq,
        (size_t)n == 8 + plen && memcmp(buf + 8, PAYLOAD, plen) == 0 ? "matches" : "differs",
        checksum_ok(buf, n, &from, local_to) ? "ok" : "bad");
}

static void t_ping(void)
{
    int proto = fam == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
    const char *lo = LO();
    int s = socket(fam, SOCK_DGRAM, proto);
    if (s < 0) {
        say("ping socket: %s; section skipped (see net.ipv4.ping_group_range)", rs(s));
        return;
    }
    say("ping socket: ok SO_TYPE=%s SO_PROTOCOL=%s SO_DOMAIN=%s", geti(s, SOL_SOCKET, SO_TYPE), geti(s, SOL_SOCKET, SO_PROTOCOL),
        geti(s, SOL_SOCKET, SO_DOMAIN));
    addr_t a = sockname(s);
    say("unbound getsockname: %s port0=%s", txt(&a), port_of(&a) == 0 ? "yes" : "no");

    /* first send autobinds an identifier */
    addr_t to = mk(fam, lo, 0);
    unsigned char req[64];
    size_t len = echo(req, ECHO_REQ(), 0, 0x1234, 1, 20);
    ssize_t n = sendto(s, req, len, 0, (void *)&to.ss, to.len);
    say("sendto echo request seq 1: %s", rs(n));
    a = sockname(s);
    int ident = port_of(&a);
    say("after send getsockname: %s ident nonzero=%s", txt(&a), ident ? "yes" : "no");
    show_reply(s, &to, ident, 20, "reply 1");

    /* several in a row come back in order */
    for (int i = 2; i <= 4; i++) {
        len = echo(req, ECHO_REQ(), 0, 0, i, i * 3);
        sendto(s, req, len, 0, (void *)&to.ss, to.len);
    }
    for (int i = 2; i <= 4; i++) {
        char w[16];
        snprintf(w, sizeof w, "reply %d", i);
        show_reply(s, &to, ident, i * 3, w);
    }

    /* empty payload */
    len = echo(req, ECHO_REQ(), 0, 0, 5, 0);
    n = sendto(s, req, len, 0, (void *)&to.ss, to.len);
    say("sendto header only: %s", rs(n));
    show_reply(s, &to, ident, 0, "reply 5");

    /* truncated read */
    len = echo(req, ECHO_REQ(), 0, 0, 6, 20);
    sendto(s, req, len, 0, (void *)&to.ss, to.len);
    struct pollfd p = {s, POLLIN, 0};
    poll(&p, 1, 3000);
    int q = -1;
    const char *qr = rs(ioctl(s, FIONREAD, &q));
    unsigned char small[10];
    struct iovec iv = {small, sizeof small};
    struct msghdr m = {.msg_iov = &iv, .msg_iovlen = 1};
    n = recvmsg(s, &m, 0);
    say("FIONREAD %s; recvmsg into 10 bytes: %s MSG_TRUNC=%d seq=%d", qr, rs(n), !!(m.msg_flags & MSG_TRUNC),
        small[6] << 8 | small[7]);
    n = recv(s, small, sizeof small, MSG_DONTWAIT);
    say("nothing else queued: %s", rs(n));

    /* what the kernel refuses */
    len = echo(req, fam == AF_INET ? ICMP_TIMESTAMP : ICMP6_ECHO_REPLY, 0, 0, 7, 4);
    n = sendto(s, req, len, 0, (void *)&to.ss, to.len);
    say("sendto non-echo type: %s", rs(n));
    len = echo(req, ECHO_REQ(), 1, 0, 7, 4);
    n = sendto(s, req, len, 0, (void *)&to.ss, to.len);
    say("sendto echo with code 1: %s", rs(n));
    n = sendto(s, req, 7, 0, (void *)&to.ss, to.len);
    say("sendto 7 bytes: %s", rs(n));
    len = echo(req, ECHO_REQ(), 0, 0, 7, 4);
    n = send(s, req, len, 0);
    say("send without destination: %s", rs(n));
    addr_t bad = to;
    bad.ss.ss_family = fam == AF_INET ? AF_INET6 : AF_INET;
    n = sendto(s, req, len, 0, (void *)&bad.ss, bad.len);
    say("sendto wrong family: %s", rs(n));
    n = sendto(s, req, len, 0, (void *)&to.ss, to.len - 1 - (fam == AF_INET6 ? 4 : 0));
    say("sendto short addrlen: %s", rs(n));
    n = recv(s, small, sizeof small, MSG_DONTWAIT);
    say("no replies to refused requests: %s", rs(n));

    /* connected ping socket */
    int r = connect(s, (void *)&to.ss, to.len);
    len = echo(req, ECHO_REQ(), 0, 0, 8, 8);
    n = send(s, req, len, 0);
    say("connect: %s, send: %s", rs(r), rs(n));
    show_reply(s, &to, ident, 8, "reply 8");
    close(s);

    /* the reply's hop limit, and a reply from another loopback address */
    s = socket(fam, SOCK_DGRAM, proto);
    int on = 1;
    if (fam == AF_INET)
        r = setsockopt(s, IPPROTO_IP, IP_RECVTTL, &on, sizeof on);
    else
        r = setsockopt(s, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on);
    addr_t b = mk(fam, lo, 0);
    int br = bind(s, (void *)&b.ss, b.len);
    a = sockname(s);
    say("bind %s: %s ident nonzero=%s; RECVTTL: %s", lo, rs(br), port_of(&a) ? "yes" : "no", rs(r));
    len = echo(req, ECHO_REQ(), 0, 0, 9, 12);
    sendto(s, req, len, 0, (void *)&to.ss, to.len);
    poll(&p, 1, 3000);
    unsigned char buf[128], ctl[128];
    iv.iov_base = buf;
    iv.iov_len = sizeof buf;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iv;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    n = recvmsg(s, &m, MSG_DONTWAIT);
    int ttl = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
            (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT))
            memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
    say("reply 9: %s type=%d id==ident=%s hop limit %d", rs(n), n > 0 ? buf[0] : -1,
        n >= 8 && (buf[4] << 8 | buf[5]) == port_of(&a) ? "yes" : "no", ttl);
    close(s);
    if (fam == AF_INET) {
        s = socket(fam, SOCK_DGRAM, proto);
        addr_t two = mk(fam, "127.0.0.2", 0);
        len = echo(req, ECHO_REQ(), 0, 0, 10, 4);
        n = sendto(s, req, len, 0, (void *)&two.ss, two.len);
        a = sockname(s);
        say("sendto 127.0.0.2: %s", rs(n));
        show_reply(s, &two, port_of(&a), 4, "reply 10");
        close(s);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for_each_family(t_ping);
    printf("done\n");
    return 0;
}
