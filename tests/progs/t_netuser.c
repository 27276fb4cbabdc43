/* User-mode networking from inside a guest (eth0=user): the calls
 * tests/test_net_user.py needs that busybox has no applet for.  Guest
 * only: its answers depend on the virtual network (10.0.2.0/24).
 *
 *   t_netuser udp-echo PORT N          answer N datagrams on UDP PORT, then exit
 *   t_netuser tcp-accept PORT          accept one TCP connection, print its peer,
 *                                      answer what it sends with "got LINE"
 *   t_netuser udp-ask IP PORT MSG      send MSG, print the answer and who sent it
 *   t_netuser connect IP PORT          connect (TCP), print the result
 *   t_netuser sendto IP PORT           one UDP datagram, print the result
 *   t_netuser ping IP [COUNT]          echo requests through a ping socket
 *                                      (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6)
 *   t_netuser packet                   socket(AF_PACKET, SOCK_DGRAM): the result
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/icmp6.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include "results.h"

static int addr_of(const char *ip, int port, struct sockaddr_storage *ss)
{
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, ip, &a->sin_addr) == 1) {
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        return sizeof *a;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        return sizeof *a6;
    }
    fprintf(stderr, "bad address %s\n", ip);
    exit(2);
}

static void show(const char *what, struct sockaddr_storage *ss)
{
    char text[64];
    int port;
    if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a6->sin6_addr, text, sizeof text);
        port = ntohs(a6->sin6_port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
        port = ntohs(a->sin_port);
    }
    printf("%s %s port %d\n", what, text, port);
}

static int wait_in(int fd, int ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    return poll(&p, 1, ms);
}

static int udp_echo(int port, int n)
{
    struct sockaddr_storage ss, from;
    socklen_t flen;
    char buf[2048];
    int len = addr_of("0.0.0.0", port, &ss);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        res("bind", -1);
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        flen = sizeof from;
        ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
        if (r < 0) {
            res("recvfrom", -1);
            return 1;
        }
        show("from", &from);
        sendto(fd, buf, r, 0, (struct sockaddr *)&from, flen);
    }
    return 0;
}

static int tcp_accept(int port)
{
    struct sockaddr_storage ss, peer;
    socklen_t plen = sizeof peer;
    char buf[512], out[600];
    int len = addr_of("0.0.0.0", port, &ss), one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4) < 0) {
        res("listen", -1);
        return 1;
    }
    printf("listening\n");
    int c = accept(fd, (struct sockaddr *)&peer, &plen);
    if (c < 0) {
        res("accept", -1);
        return 1;
    }
    show("peer", &peer);
    ssize_t r = read(c, buf, sizeof buf - 1);
    if (r < 0) {
        res("read", -1);
        return 1;
    }
    buf[r] = 0;
    buf[strcspn(buf, "\n")] = 0;
    int n = snprintf(out, sizeof out, "got %s\n", buf);
    res("write", write(c, out, n));
    close(c);
    return 0;
}

static int udp_ask(const char *ip, int port, const char *msg)
{
    struct sockaddr_storage ss, from;
    socklen_t flen = sizeof from;
    char buf[2048];
    int len = addr_of(ip, port, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    res("sendto", sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&ss, len));
    if (wait_in(fd, 5000) <= 0) {
        printf("no answer\n");
        return 1;
    }
    ssize_t r = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &flen);
    if (r < 0) {
        res("recvfrom", -1);
        return 1;
    }
    buf[r] = 0;
    printf("answer %s\n", buf);
    show("from", &from);
    return 0;
}

static int do_connect(const char *ip, int port)
{
    struct sockaddr_storage ss;
    int len = addr_of(ip, port, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    res("connect", connect(fd, (struct sockaddr *)&ss, len));
    return 0;
}

static int do_sendto(const char *ip, int port)
{
    struct sockaddr_storage ss;
    int len = addr_of(ip, port, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    res("sendto", sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len));
    return 0;
}

static int ping(const char *ip, int count)
{
    struct sockaddr_storage ss, me, from;
    socklen_t mlen = sizeof me, flen;
    int len = addr_of(ip, 0, &ss);
    int v6 = ss.ss_family == AF_INET6;
    int fd = socket(ss.ss_family, SOCK_DGRAM, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
    unsigned char msg[64], buf[256];
    int got = 0;
    if (fd < 0) {
        res("socket", -1);
        return 1;
    }
    for (int seq = 1; seq <= count; seq++) {
        memset(msg, 0, sizeof msg);
        msg[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
        msg[7] = seq;
        memcpy(msg + 8, "umlpy-ping", 10);
        if (sendto(fd, msg, sizeof msg, 0, (struct sockaddr *)&ss, len) < 0) {
            res("sendto", -1);
            return 1;
        }
        if (seq == 1) {
            getsockname(fd, (struct sockaddr *)&me, &mlen);
        }
        if (wait_in(fd, 3000) <= 0) {
            printf("seq %d: no reply\n", seq);
            continue;
        }
        flen = sizeof from;
        ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
        if (r < 8) {
            res("recvfrom", r);
            continue;
        }
        int ident = (buf[4] << 8) | buf[5];
        int myport = ntohs(v6 ? ((struct sockaddr_in6 *)&me)->sin6_port
                              : ((struct sockaddr_in *)&me)->sin_port);
        printf("seq %d: type %d len %zd ident %s data %s\n", buf[7], buf[0], r,
               ident == myport && ident != 0 ? "ours" : "other",
               memcmp(buf + 8, "umlpy-ping", 10) ? "changed" : "same");
        show("reply from", &from);
        got++;
    }
    return got == count ? 0 : 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && !strcmp(argv[1], "udp-echo"))
        return udp_echo(atoi(argv[2]), atoi(argv[3]));
    if (argc >= 3 && !strcmp(argv[1], "tcp-accept"))
        return tcp_accept(atoi(argv[2]));
    if (argc >= 5 && !strcmp(argv[1], "udp-ask"))
        return udp_ask(argv[2], atoi(argv[3]), argv[4]);
    if (argc >= 4 && !strcmp(argv[1], "connect"))
        return do_connect(argv[2], atoi(argv[3]));
    if (argc >= 4 && !strcmp(argv[1], "sendto"))
        return do_sendto(argv[2], atoi(argv[3]));
    if (argc >= 3 && !strcmp(argv[1], "ping"))
        return ping(argv[2], argc >= 4 ? atoi(argv[3]) : 1);
    if (argc >= 2 && !strcmp(argv[1], "packet")) {
        int fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
        if (fd < 0)
            res("socket", -1);
        else
            printf("socket: ok\n");
        return 0;
    }
    fprintf(stderr, "usage: see the source\n");
    return 2;
}
