/* SO_TIMESTAMP and SO_TIMESTAMPNS: the control message a receive carries
 * (SCM_TIMESTAMP's timeval, SCM_TIMESTAMPNS's timespec, a time between
 * the send and the receive), one kind at a time as sock_set_timestamp
 * keeps them, on UDP over IPv4 and IPv6 and unix datagram sockets. (Not
 * TCP: Linux stamps a TCP read only if the skb was stamped, which hangs on
 * timestamping being switched on globally by deferred work: racy.) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void opts(const char *kind, int s)
{
    int a = -1, b = -1;
    socklen_t l = sizeof a;
    getsockopt(s, SOL_SOCKET, SO_TIMESTAMP, &a, &l);
    l = sizeof b;
    getsockopt(s, SOL_SOCKET, SO_TIMESTAMPNS, &b, &l);
    printf("%s: SO_TIMESTAMP %d SO_TIMESTAMPNS %d\n", kind, a, b);
}

/* one message from tx to rx, received with recvmsg: its control messages */
static void one(const char *kind, int tx, int rx, long long before)
{
    char buf[8], cb[256];
    if (send(tx, "a", 1, 0) != 1)
        perror("send");
    struct iovec io = {buf, sizeof buf};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof cb};
    int n = recvmsg(rx, &m, 0);
    long long after = now_ns();
    printf("%s: %d bytes, controllen %zu\n", kind, n, (size_t)m.msg_controllen);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        long long t = -1;
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMP) {
            struct timeval tv;
            memcpy(&tv, CMSG_DATA(c), sizeof tv);
            t = tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
            before -= before % 1000;
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            t = ts.tv_sec * 1000000000LL + ts.tv_nsec;
        }
        printf("  cmsg level %d type %d len %zu%s\n", c->cmsg_level, c->cmsg_type, (size_t)c->cmsg_len,
               t < 0 ? "" : before <= t && t <= after ? ", between send and receive" : ", out of range");
    }
}

static void pair(const char *kind, int tx, int rx)
{
    int one_ = 1, zero = 0;
    opts(kind, rx);
    one(kind, tx, rx, now_ns());
    setsockopt(rx, SOL_SOCKET, SO_TIMESTAMP, &one_, sizeof one_);
    opts(kind, rx);
    one(kind, tx, rx, now_ns());
    setsockopt(rx, SOL_SOCKET, SO_TIMESTAMPNS, &one_, sizeof one_);
    opts(kind, rx);
    one(kind, tx, rx, now_ns());
    /* queued before the option: stamped no later than the receive */
    setsockopt(rx, SOL_SOCKET, SO_TIMESTAMPNS, &zero, sizeof zero);
    long long before = now_ns();
    send(tx, "b", 1, 0);
    char c;
    setsockopt(rx, SOL_SOCKET, SO_TIMESTAMP, &one_, sizeof one_);
    one(kind, tx, rx, before);
    recv(rx, &c, 1, MSG_DONTWAIT);      /* the second (a stream read both) */
    setsockopt(rx, SOL_SOCKET, SO_TIMESTAMP, &zero, sizeof zero);
    opts(kind, rx);
    one(kind, tx, rx, now_ns());
}

static void udp(int family)
{
    struct sockaddr_storage ss = {0};
    socklen_t l;
    int rx = socket(family, SOCK_DGRAM, 0), tx = socket(family, SOCK_DGRAM, 0);
    if (family == AF_INET) {
        struct sockaddr_in *a = (void *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        l = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (void *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        l = sizeof *a;
    }
    bind(rx, (void *)&ss, l);
    getsockname(rx, (void *)&ss, &l);
    connect(tx, (void *)&ss, l);
    pair(family == AF_INET ? "udp" : "udp6", tx, rx);
    close(rx);
    close(tx);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    udp(AF_INET);
    udp(AF_INET6);
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    pair("unix dgram", sv[0], sv[1]);
    close(sv[0]);
    close(sv[1]);

    printf("done\n");
    return 0;
}
