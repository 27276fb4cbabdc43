/* Guest only (tests/test_net.py): how much a guest can park in socket
   receive buffers nobody reads.  Opens N loopback TCP connections and
   writes to each without blocking until EAGAIN, then forces a huge
   SO_RCVBUF on a UDP socket and sends it datagrams, then fills AF_UNIX
   stream and datagram pairs with forced 1 GiB buffers; prints the totals
   in MiB.  The kernel's limit (tcp_mem/udp_mem, mem=/8) must bound them. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 64;
    static char buf[65536];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    bind(l, (void *)&a, sizeof a);
    listen(l, n);
    getsockname(l, (void *)&a, &len);
    long long tcp = 0;
    for (int i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(c, (void *)&a, sizeof a);
        if (accept(l, NULL, NULL) < 0) {
            perror("accept");
            return 1;
        }
        ssize_t k;
        while ((k = write(c, buf, sizeof buf)) > 0)
            tcp += k;
        if (errno != EAGAIN) {
            perror("write");
            return 1;
        }
    }
    printf("tcp_queued_mib %lld\n", tcp >> 20);

    int r = socket(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 1 << 30;
    setsockopt(r, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    a.sin_port = 0;
    bind(r, (void *)&a, sizeof a);
    len = sizeof a;
    getsockname(r, (void *)&a, &len);
    for (int i = 0; i < 8192; i++)
        sendto(s, buf, 60000, 0, (void *)&a, sizeof a);
    long long udp = 0;
    ssize_t k;
    while ((k = recv(r, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        udp += k;
    printf("udp_queued_mib %lld\n", udp >> 20);

    /* AF_UNIX: a stream pair and a datagram pair with forced 1 GiB buffers */
    long long unix_ = 0;
    int sv[2], dv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, dv);
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
        setsockopt(dv[i], SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
        setsockopt(dv[i], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
    }
    while ((k = write(sv[0], buf, sizeof buf)) > 0 && unix_ < (1LL << 31))
        unix_ += k;
    for (int i = 0; i < 65536 && (k = send(dv[0], buf, 60000, 0)) > 0; i++)
        unix_ += k;
    printf("unix_queued_mib %lld\n", unix_ >> 20);
    printf("done\n");
    return 0;
}
