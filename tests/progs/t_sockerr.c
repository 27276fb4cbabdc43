/* Socket edge cases, AF_UNIX mostly: socketpair's errors (and that a
 * failed one leaks no fds), shutdown of unconnected sockets, the socket
 * ioctls, getsockopt/setsockopt's argument errors, and the poll masks of
 * unix sockets: unconnected, listening, half-closed, closed peers, for
 * stream, seqpacket and datagram pairs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include "results.h"

#define ALL (POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLRDBAND | POLLWRNORM | POLLWRBAND | POLLMSG | POLLRDHUP)

static void mask(const char *what, int fd)
{
    struct pollfd p = {fd, ALL, 0};
    int r = poll(&p, 1, 0);
    printf("  %-34s", what);
    if (r < 0) {
        printf(" poll -1 %s\n", en(errno));
        return;
    }
    static const struct { int bit; const char *n; } b[] = {
        {POLLIN, "IN"}, {POLLPRI, "PRI"}, {POLLOUT, "OUT"}, {POLLERR, "ERR"}, {POLLHUP, "HUP"},
        {POLLNVAL, "NVAL"}, {POLLRDNORM, "RDNORM"}, {POLLRDBAND, "RDBAND"}, {POLLWRNORM, "WRNORM"},
        {POLLWRBAND, "WRBAND"}, {POLLMSG, "MSG"}, {POLLRDHUP, "RDHUP"}};
    for (unsigned i = 0; i < sizeof b / sizeof b[0]; i++)
        if (p.revents & b[i].bit)
            printf(" %s", b[i].n);
    printf("%s\n", p.revents ? "" : " -");
}

static void socketpairs(void)
{
    int sv[2] = {-1, -1};
    printf("-- socketpair\n");
    static const struct { const char *d; int dom, type, proto; } c[] = {
        {"domain 0", 0, SOCK_STREAM, 0}, {"domain 1000", 1000, SOCK_STREAM, 0},
        {"inet type 75", AF_INET, 75, 0}, {"unix type 75", AF_UNIX, 75, 0},
        {"unix SOCK_RDM", AF_UNIX, SOCK_RDM, 0}, {"unix SOCK_PACKET", AF_UNIX, SOCK_PACKET, 0},
        {"unix SOCK_RAW", AF_UNIX, SOCK_RAW, 0}, {"unix proto 7", AF_UNIX, SOCK_STREAM, 7},
        {"unix proto AF_UNIX", AF_UNIX, SOCK_STREAM, AF_UNIX}, {"unix dgram", AF_UNIX, SOCK_DGRAM, 0},
        {"inet raw", AF_INET, SOCK_RAW, 0}, {"inet udp", AF_INET, SOCK_DGRAM, 17},
        {"inet dgram tcp", AF_INET, SOCK_DGRAM, 6}, {"inet tcp", AF_INET, SOCK_STREAM, 6},
        {"inet stream icmp", AF_INET, SOCK_STREAM, 1}, {"inet stream 0", AF_INET, SOCK_STREAM, 0},
        {"inet6 dgram", AF_INET6, SOCK_DGRAM, 0}, {"netlink", AF_NETLINK, SOCK_DGRAM, 0},
        {"unix bad flag", AF_UNIX, SOCK_STREAM | 0x1000, 0},
        {"unix nonblock|cloexec", AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0},
        {"unix type -1", AF_UNIX, -1, 0}};
    for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++) {
        int r = socketpair(c[i].dom, c[i].type, c[i].proto, sv);
        res(c[i].d, r);
        if (r == 0) {
            if (c[i].type & SOCK_NONBLOCK)
                printf("  flags: nonblock %d cloexec %d\n", !!(fcntl(sv[0], F_GETFL) & O_NONBLOCK),
                       fcntl(sv[1], F_GETFD));
            close(sv[0]);
            close(sv[1]);
        }
    }
    int before = open("/dev/null", O_RDONLY);
    close(before);
    res("sv NULL", socketpair(AF_UNIX, SOCK_STREAM, 0, NULL));
    int *seven = (int *)7;
    __asm__("" : "+r"(seven));
    res("sv 7", socketpair(AF_UNIX, SOCK_STREAM, 0, seven));
    res("sv read-only", socketpair(AF_UNIX, SOCK_STREAM, 0, (int *)"read only text"));
    int after = open("/dev/null", O_RDONLY);
    printf("no fd leaked: %d\n", after == before);
    close(after);
    struct rlimit old, lim;
    getrlimit(RLIMIT_NOFILE, &old);
    lim = old;
    lim.rlim_cur = before + 1;
    setrlimit(RLIMIT_NOFILE, &lim);
    res("one fd left", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    lim.rlim_cur = before;
    setrlimit(RLIMIT_NOFILE, &lim);
    res("no fd left", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    setrlimit(RLIMIT_NOFILE, &old);
}

static void shutdowns(void)
{
    printf("-- shutdown\n");
    res("bad fd", shutdown(999, SHUT_RD));
    int nul = open("/dev/null", O_RDONLY);
    res("not a socket", shutdown(nul, SHUT_RD));
    close(nul);
    static const struct { const char *d; int dom, type; } c[] = {
        {"unix stream", AF_UNIX, SOCK_STREAM}, {"unix dgram", AF_UNIX, SOCK_DGRAM},
        {"unix seqpacket", AF_UNIX, SOCK_SEQPACKET}, {"inet stream", AF_INET, SOCK_STREAM},
        {"inet dgram", AF_INET, SOCK_DGRAM}};
    for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++) {
        int s = socket(c[i].dom, c[i].type, 0);
        char w[64];
        snprintf(w, sizeof w, "%s how -1", c[i].d);
        res(w, shutdown(s, -1));
        snprintf(w, sizeof w, "%s how 3", c[i].d);
        res(w, shutdown(s, 3));
        snprintf(w, sizeof w, "%s unconnected SHUT_WR", c[i].d);
        res(w, shutdown(s, SHUT_WR));
        mask("then", s);
        snprintf(w, sizeof w, "%s unconnected SHUT_RDWR", c[i].d);
        res(w, shutdown(s, SHUT_RDWR));
        mask("then", s);
        close(s);
    }
    for (int type = SOCK_STREAM; type <= SOCK_SEQPACKET; type++) {
        if (type == SOCK_RAW || type == SOCK_RDM)
            continue;
        char c1, w[64];
        int s = socket(AF_UNIX, type | SOCK_NONBLOCK, 0);
        snprintf(w, sizeof w, "unix type %d unconnected recv", type);
        res(w, recv(s, &c1, 1, 0));
        snprintf(w, sizeof w, "unix type %d unconnected send", type);
        res(w, send(s, "x", 1, MSG_NOSIGNAL));
        shutdown(s, SHUT_RDWR);
        snprintf(w, sizeof w, "unix type %d unconnected recv after SHUT_RDWR", type);
        res(w, recv(s, &c1, 1, 0));
        snprintf(w, sizeof w, "unix type %d unconnected send after SHUT_RDWR", type);
        res(w, send(s, "x", 1, MSG_NOSIGNAL));
        close(s);
        if (type == SOCK_DGRAM)
            continue;
        s = socket(AF_UNIX, type | SOCK_NONBLOCK, 0);
        struct sockaddr_un a = {AF_UNIX, "\0t_sockerr_shut"};
        bind(s, (struct sockaddr *)&a, sizeof a);
        listen(s, 1);
        snprintf(w, sizeof w, "unix type %d listener recv", type);
        res(w, recv(s, &c1, 1, 0));
        snprintf(w, sizeof w, "unix type %d listener send", type);
        res(w, send(s, "x", 1, MSG_NOSIGNAL));
        snprintf(w, sizeof w, "unix type %d listener shutdown", type);
        res(w, shutdown(s, SHUT_RDWR));
        mask("then", s);
        int c = socket(AF_UNIX, type | SOCK_NONBLOCK, 0);
        snprintf(w, sizeof w, "connect to it");
        res(w, connect(c, (struct sockaddr *)&a, sizeof a));
        close(c);
        close(s);
    }
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    res("connected SHUT_RD twice", shutdown(sv[0], SHUT_RD) | shutdown(sv[0], SHUT_RD));
    char c2;
    res("read after SHUT_RD", read(sv[0], &c2, 1));
    res("write to a peer that shut reading", send(sv[1], "x", 1, MSG_NOSIGNAL));
    close(sv[0]);
    close(sv[1]);
}

static void ioctls(void)
{
    int sv[2], n = -1;
    printf("-- ioctl\n");
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[1], "hello", 5);
    write(sv[1], "world!", 6);
    ioctl(sv[0], FIONREAD, &n);
    printf("stream FIONREAD %d\n", n);
    ioctl(sv[0], SIOCINQ, &n);
    printf("stream SIOCINQ %d\n", n);
    n = -1;
    printf("stream SIOCOUTQ on the sender: %s", ioctl(sv[1], SIOCOUTQ, &n) ? en(errno) : "");
    printf(" %s\n", n > 0 ? "> 0" : n == 0 ? "0" : "?");
    n = -1;
    res("stream SIOCATMARK", ioctl(sv[0], SIOCATMARK, &n));
    printf("  at mark %d\n", n);
    res("FIONREAD to NULL", ioctl(sv[0], FIONREAD, NULL));
    res("bad request", ioctl(sv[0], 0x1234, &n));
    res("SIOCGIFFLAGS on a unix socket, bad name", ioctl(sv[0], SIOCGIFFLAGS, "\0zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"));
    int on = 1;
    res("FIONBIO", ioctl(sv[0], FIONBIO, &on));
    printf("  nonblock %d\n", !!(fcntl(sv[0], F_GETFL) & O_NONBLOCK));
    on = 0;
    ioctl(sv[0], FIONBIO, &on);
    printf("  nonblock %d\n", !!(fcntl(sv[0], F_GETFL) & O_NONBLOCK));
    on = 1;
    res("FIOASYNC", ioctl(sv[0], FIOASYNC, &on));
    printf("  async %d\n", !!(fcntl(sv[0], F_GETFL) & O_ASYNC));
    close(sv[0]);
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    n = -1;
    ioctl(sv[0], FIONREAD, &n);
    printf("dgram FIONREAD empty %d\n", n);
    write(sv[1], "abc", 3);
    write(sv[1], "defgh", 5);
    ioctl(sv[0], FIONREAD, &n);
    printf("dgram FIONREAD %d\n", n);
    close(sv[0]);
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
    write(sv[1], "abc", 3);
    write(sv[1], "defgh", 5);
    ioctl(sv[0], FIONREAD, &n);
    printf("seqpacket FIONREAD %d\n", n);
    close(sv[0]);
    close(sv[1]);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {AF_UNIX, "\0t_sockerr_listen"};
    bind(s, (struct sockaddr *)&a, sizeof a);
    listen(s, 1);
    res("FIONREAD on a listener", ioctl(s, FIONREAD, &n));
    close(s);
}

static void opts(void)
{
    printf("-- getsockopt/setsockopt\n");
    int u = socket(AF_UNIX, SOCK_STREAM, 0), t = socket(AF_INET, SOCK_STREAM, 0), d = socket(AF_INET, SOCK_DGRAM, 0);
    int v = 1, big[8], nul = open("/dev/null", O_RDONLY);
    socklen_t len = sizeof v;
    res("bad fd", getsockopt(999, SOL_SOCKET, SO_TYPE, &v, &len));
    res("not a socket", getsockopt(nul, SOL_SOCKET, SO_TYPE, &v, &len));
    res("set not a socket", setsockopt(nul, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v));
    close(nul);
    len = sizeof v;
    res("optval NULL", getsockopt(u, SOL_SOCKET, SO_TYPE, NULL, &len));
    res("optlen NULL", getsockopt(u, SOL_SOCKET, SO_TYPE, &v, NULL));
    len = (socklen_t)-1;
    res("optlen -1", getsockopt(u, SOL_SOCKET, SO_TYPE, &v, &len));
    len = 2;
    memset(big, 0xff, sizeof big);
    res("SO_TYPE into 2 bytes", getsockopt(u, SOL_SOCKET, SO_TYPE, big, &len));
    printf("  len %u, value %08x\n", len, (unsigned)big[0]);
    len = sizeof big;
    res("SO_TYPE into 32 bytes", getsockopt(u, SOL_SOCKET, SO_TYPE, big, &len));
    printf("  len %u\n", len);
    len = 0;
    res("SO_TYPE into 0 bytes", getsockopt(u, SOL_SOCKET, SO_TYPE, big, &len));
    printf("  len %u\n", len);
    len = 4;
    res("SO_LINGER into 4 bytes", getsockopt(u, SOL_SOCKET, SO_LINGER, big, &len));
    printf("  len %u\n", len);
    len = sizeof big;
    res("SO_PEERCRED unconnected", getsockopt(u, SOL_SOCKET, SO_PEERCRED, big, &len));
    printf("  len %u pid %d uid %d gid %d\n", len, big[0], big[1], big[2]);
    len = sizeof big;
    res("SO_PEERNAME unconnected", getsockopt(u, SOL_SOCKET, SO_PEERNAME, big, &len));
    int pr[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, pr);
    len = sizeof big;
    res("SO_PEERNAME paired, big buffer", getsockopt(pr[0], SOL_SOCKET, SO_PEERNAME, big, &len));
    len = 2;
    big[0] = 0;
    res("SO_PEERNAME paired, 2 bytes", getsockopt(pr[0], SOL_SOCKET, SO_PEERNAME, big, &len));
    printf("  len %u family %d\n", len, big[0] & 0xffff);
    close(pr[0]);
    close(pr[1]);
    len = sizeof v;
    res("SOL_SOCKET 1000", getsockopt(u, SOL_SOCKET, 1000, &v, &len));
    res("set SOL_SOCKET 1000", setsockopt(u, SOL_SOCKET, 1000, &v, sizeof v));
    res("unix level 500", getsockopt(u, 500, 1, &v, &len));
    res("set unix level 500", setsockopt(u, 500, 1, &v, sizeof v));
    res("unix SOL_TCP", getsockopt(u, IPPROTO_TCP, TCP_NODELAY, &v, &len));
    res("inet level 500", getsockopt(t, 500, 1, &v, &len));
    res("set inet level 500", setsockopt(t, 500, 1, &v, sizeof v));
    res("tcp IPPROTO_UDP opt", getsockopt(t, IPPROTO_UDP, 1, &v, &len));
    res("set tcp IPPROTO_UDP opt", setsockopt(t, IPPROTO_UDP, 1, &v, sizeof v));
    res("tcp IP -1", getsockopt(t, IPPROTO_IP, -1, &v, &len));
    res("set tcp IP -1", setsockopt(t, IPPROTO_IP, -1, &v, sizeof v));
    res("tcp TCP -1", getsockopt(t, IPPROTO_TCP, -1, &v, &len));
    res("set tcp TCP -1", setsockopt(t, IPPROTO_TCP, -1, &v, sizeof v));
    res("udp UDP -1", getsockopt(d, IPPROTO_UDP, -1, &v, &len));
    res("set SO_RCVBUF optval NULL", setsockopt(u, SOL_SOCKET, SO_RCVBUF, NULL, sizeof v));
    res("set SO_RCVBUF optlen 0", setsockopt(u, SOL_SOCKET, SO_RCVBUF, &v, 0));
    res("set SO_RCVBUF optlen 2", setsockopt(u, SOL_SOCKET, SO_RCVBUF, &v, 2));
    res("set SO_RCVBUF optlen -1", setsockopt(u, SOL_SOCKET, SO_RCVBUF, &v, (socklen_t)-1));
    res("set SO_KEEPALIVE optlen 8", setsockopt(u, SOL_SOCKET, SO_KEEPALIVE, big, 8));
    struct linger lg = {1, 5};
    res("set SO_LINGER optlen 4", setsockopt(u, SOL_SOCKET, SO_LINGER, &lg, 4));
    res("set SO_LINGER", setsockopt(u, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    res("set SO_PASSCRED", setsockopt(u, SOL_SOCKET, SO_PASSCRED, &v, sizeof v));
    res("set SO_PEERCRED", setsockopt(u, SOL_SOCKET, SO_PEERCRED, big, 12));
    res("set SO_TYPE", setsockopt(u, SOL_SOCKET, SO_TYPE, &v, sizeof v));
    res("set SO_ERROR", setsockopt(u, SOL_SOCKET, SO_ERROR, &v, sizeof v));
    static const struct { const char *n; int type; } ty[] = {
        {"stream", SOCK_STREAM}, {"dgram", SOCK_DGRAM}, {"seqpacket", SOCK_SEQPACKET}};
    for (unsigned i = 0; i < 3; i++) {
        int s = socket(AF_UNIX, ty[i].type, 0);
        int ty_, dom, proto, acc, err;
        len = sizeof(int);
        getsockopt(s, SOL_SOCKET, SO_TYPE, &ty_, &len);
        getsockopt(s, SOL_SOCKET, SO_DOMAIN, &dom, &len);
        getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &proto, &len);
        getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len);
        getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
        printf("unix %s: type %d domain %d protocol %d acceptconn %d error %d\n", ty[i].n, ty_, dom, proto,
               acc, err);
        close(s);
    }
    close(u);
    close(t);
    close(d);
}

static void polls(void)
{
    int sv[2];
    printf("-- poll masks\n");
    for (int type = SOCK_STREAM; type <= SOCK_SEQPACKET; type++) {
        if (type == SOCK_RAW || type == SOCK_RDM)
            continue;
        const char *n = type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "dgram" : "seqpacket";
        printf("%s:\n", n);
        int s = socket(AF_UNIX, type, 0);
        mask("new", s);
        close(s);
        if (type != SOCK_DGRAM) {
            s = socket(AF_UNIX, type, 0);
            struct sockaddr_un a = {AF_UNIX, "\0t_sockerr_poll"};
            bind(s, (struct sockaddr *)&a, sizeof a);
            mask("bound", s);
            listen(s, 4);
            mask("listening", s);
            int c = socket(AF_UNIX, type | SOCK_NONBLOCK, 0);
            connect(c, (struct sockaddr *)&a, sizeof a);
            mask("listening, one waiting", s);
            mask("connected, not accepted", c);
            close(c);
            mask("listening, the connector closed", s);
            close(s);
        }
        socketpair(AF_UNIX, type, 0, sv);
        mask("pair", sv[0]);
        write(sv[1], "x", 1);
        mask("pair, data", sv[0]);
        shutdown(sv[1], SHUT_WR);
        mask("peer SHUT_WR, data", sv[0]);
        mask("the peer itself", sv[1]);
        char c;
        read(sv[0], &c, 1);
        mask("peer SHUT_WR, drained", sv[0]);
        shutdown(sv[0], SHUT_WR);
        mask("both SHUT_WR", sv[0]);
        close(sv[0]);
        close(sv[1]);
        socketpair(AF_UNIX, type, 0, sv);
        shutdown(sv[0], SHUT_RD);
        mask("own SHUT_RD", sv[0]);
        mask("its peer", sv[1]);
        shutdown(sv[0], SHUT_RDWR);
        mask("own SHUT_RDWR", sv[0]);
        mask("its peer", sv[1]);
        close(sv[0]);
        close(sv[1]);
        socketpair(AF_UNIX, type, 0, sv);
        write(sv[1], "y", 1);
        close(sv[1]);
        mask("peer closed, data", sv[0]);
        read(sv[0], &c, 1);
        mask("peer closed, drained", sv[0]);
        res("write to the closed peer", send(sv[0], "z", 1, MSG_NOSIGNAL));
        mask("after that write", sv[0]);
        close(sv[0]);
        socketpair(AF_UNIX, type, 0, sv);
        write(sv[0], "unread", 6);
        close(sv[1]);
        mask("peer closed with unread data", sv[0]);
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(sv[0], SOL_SOCKET, SO_ERROR, &err, &len);
        printf("  SO_ERROR %s\n", err ? en(err) : "0");
        mask("after SO_ERROR", sv[0]);
        close(sv[0]);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    socketpairs();
    shutdowns();
    ioctls();
    opts();
    polls();
    printf("done\n");
    return 0;
}
