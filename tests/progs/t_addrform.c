/* IPV6_ADDRFORM (guest only: Linux 6.1 has it, the host's newer kernel
   answers ENOPROTOOPT): a v6 TCP or UDP socket connected to a v4-mapped
   peer becomes AF_INET; the checks before it (EINVAL, ENOPROTOOPT,
   ENOTCONN, EADDRNOTAVAIL) in do_ipv6_setsockopt's order; a converted TCP
   socket disconnected with connect(AF_UNSPEC) is a v4 socket to bind and
   listen again (LTP's connect02).  Deterministic output; last line done. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "inet.h"

static const char *gsn(int fd, int lvl, int opt)
{
    static char b[4][48];
    static int i;
    char *s = b[i++ & 3];
    int v = 0;
    socklen_t l = sizeof v;
    if (getsockopt(fd, lvl, opt, &v, &l) < 0)
        snprintf(s, 48, "%s", strerrorname_np(errno));
    else
        snprintf(s, 48, "%d", v);
    return s;
}

static int v4 = AF_INET, v6 = AF_INET6;

static const char *form(int fd, int *val, socklen_t len)
{
    return rs(setsockopt(fd, IPPROTO_IPV6, IPV6_ADDRFORM, val, len));
}

static const char *fam_of(const addr_t *a)
{
    return a->ss.ss_family == AF_INET ? "AF_INET" : a->ss.ss_family == AF_INET6 ? "AF_INET6" : "?";
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    P = "t";
    int port;
    int l = listen_any6(&port);
    say("listener: get %s, set %s", gsn(l, IPPROTO_IPV6, IPV6_ADDRFORM), form(l, &v4, sizeof v4));
    int c = socket(AF_INET, SOCK_STREAM, 0);
    addr_t to4 = mk(AF_INET, "127.0.0.1", port);
    connect(c, (void *)&to4.ss, to4.len);
    int s = accept(l, NULL, NULL);
    say("accepted: get %s", gsn(s, IPPROTO_IPV6, IPV6_ADDRFORM));
    say("accepted: set AF_INET6 %s", form(s, &v6, sizeof v6));
    say("accepted: set short %s", form(s, &v4, 2));
    say("accepted: set AF_INET %s", form(s, &v4, sizeof v4));
    addr_t me = sockname(s), peer = peername(s);
    say("after: SO_DOMAIN %s, get %s, v6 hops %s, v4 ttl %s", gsn(s, SOL_SOCKET, SO_DOMAIN),
        gsn(s, IPPROTO_IPV6, IPV6_ADDRFORM), gsn(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS), gsn(s, IPPROTO_IP, IP_TTL));
    say("after: name %s %s, peer %s %s", fam_of(&me), txt(&me), fam_of(&peer), txt(&peer));
    char buf[8] = "";
    long sent = send(s, "ping", 4, 0);
    long got = recv(c, buf, sizeof buf, 0);
    say("data: send %ld, recv %ld", sent, got);
    struct sockaddr un = {.sa_family = AF_UNSPEC};
    say("reuse: disconnect %s", rs(connect(s, &un, sizeof un)));
    addr_t any4 = mk(AF_INET, "0.0.0.0", 0);
    say("reuse: bind v4 %s", rs(bind(s, (void *)&any4.ss, any4.len)));
    say("reuse: listen %s", rs(listen(s, 4)));
    addr_t sn = sockname(s);
    int c2 = socket(AF_INET, SOCK_STREAM, 0);
    addr_t to2 = mk(AF_INET, "127.0.0.1", port_of(&sn));
    say("reuse: connect %s", rs(connect(c2, (void *)&to2.ss, to2.len)));
    int s2 = accept(s, NULL, NULL);
    say("reuse: accept %s", s2 >= 0 ? "ok" : strerrorname_np(errno));
    close(s2);
    close(c2);
    close(s);
    close(c);
    int c6 = socket(AF_INET6, SOCK_STREAM, 0);
    addr_t to6 = mk(AF_INET6, "::1", port);
    connect(c6, (void *)&to6.ss, to6.len);
    say("v6 peer: %s", form(c6, &v4, sizeof v4));
    int only = socket(AF_INET6, SOCK_STREAM, 0), one = 1;
    setsockopt(only, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    say("v6only, unconnected: %s", form(only, &v4, sizeof v4));
    close(only);
    close(c6);
    close(accept(l, NULL, NULL));
    close(l);
    int u = socket(AF_INET6, SOCK_DGRAM, 0);
    say("udp unconnected: get %s, set %s", gsn(u, IPPROTO_IPV6, IPV6_ADDRFORM), form(u, &v4, sizeof v4));
    addr_t m4 = mk(AF_INET6, "::ffff:127.0.0.1", 9);
    connect(u, (void *)&m4.ss, m4.len);
    say("udp connected: %s", form(u, &v4, sizeof v4));
    me = sockname(u);
    say("udp after: SO_DOMAIN %s, name %s %s", gsn(u, SOL_SOCKET, SO_DOMAIN), fam_of(&me), txt(&me));
    close(u);
    int p = socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
    if (p >= 0)
        say("ping: %s", form(p, &v4, sizeof v4));
    printf("done\n");
    return 0;
}
