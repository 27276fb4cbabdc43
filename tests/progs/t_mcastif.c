/* IP_MULTICAST_IF and IPV6_MULTICAST_IF as Linux keeps them: set, read
 * back, and their errors (a stream socket, an address or index of no
 * device), on the loopback device alone. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void said(const char *what, int r)
{
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(void)
{
    int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
    struct in_addr a;
    socklen_t len = sizeof a;
    said("v4 read", getsockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &a, &len));
    printf("v4 default: %s, %u bytes\n", inet_ntoa(a), len);
    inet_pton(AF_INET, "127.0.0.1", &a);
    said("v4 loopback's address", setsockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a));
    len = sizeof a;
    getsockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &a, &len);
    printf("v4 read back: %s\n", inet_ntoa(a));
    struct ip_mreqn mn = {.imr_ifindex = 1};
    said("v4 by index", setsockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &mn, sizeof mn));
    mn.imr_ifindex = 9999;
    said("v4 no such index", setsockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &mn, sizeof mn));
    inet_pton(AF_INET, "192.0.2.7", &a);
    said("v4 an address not ours", setsockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a));
    said("v4 too short", setsockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &a, 3));
    said("v4 on a stream socket", setsockopt(t, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a));
    len = sizeof a;
    said("v4 read on a stream socket", getsockopt(t, IPPROTO_IP, IP_MULTICAST_IF, &a, &len));
    memset(&a, 0, sizeof a);
    said("v4 back to any", setsockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a));

    int u6 = socket(AF_INET6, SOCK_DGRAM, 0), t6 = socket(AF_INET6, SOCK_STREAM, 0), v;
    len = sizeof v;
    getsockopt(u6, IPPROTO_IPV6, IPV6_MULTICAST_IF, &v, &len);
    printf("v6 default: %d\n", v);
    v = 1;
    said("v6 loopback", setsockopt(u6, IPPROTO_IPV6, IPV6_MULTICAST_IF, &v, sizeof v));
    len = sizeof v;
    getsockopt(u6, IPPROTO_IPV6, IPV6_MULTICAST_IF, &v, &len);
    printf("v6 read back: %d\n", v);
    v = 9999;
    said("v6 no such index", setsockopt(u6, IPPROTO_IPV6, IPV6_MULTICAST_IF, &v, sizeof v));
    v = -1;
    said("v6 negative", setsockopt(u6, IPPROTO_IPV6, IPV6_MULTICAST_IF, &v, sizeof v));
    v = 1;
    said("v6 on a stream socket", setsockopt(t6, IPPROTO_IPV6, IPV6_MULTICAST_IF, &v, sizeof v));
    setsockopt(u6, SOL_SOCKET, SO_BINDTODEVICE, "lo", 2);
    v = 0;
    said("v6 none while bound", setsockopt(u6, IPPROTO_IPV6, IPV6_MULTICAST_IF, &v, sizeof v));
    printf("done\n");
    return 0;
}
