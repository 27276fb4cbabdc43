/* Multicast between the machine's own sockets, as Linux loops it back
 * (IP_MULTICAST_LOOP): a datagram to a group reaches every socket on its
 * port that takes the group (IP_MULTICAST_ALL, on by default, or a join of
 * its own), once some socket joined the group on the interface it leaves
 * by (t_mcastif has IP_MULTICAST_IF).  Needs a route to the group
 * (a default route: eth0=user ip=dhcp). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GROUP "225.0.0.250"

static int port;

static int receiver(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0)
        printf("bind: %s\n", strerrorname_np(errno));
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    return s;
}

static void send_one(int s, const char *what)
{
    struct sockaddr_in g = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, GROUP, &g.sin_addr);
    if (sendto(s, what, strlen(what), 0, (struct sockaddr *)&g, sizeof g) < 0)
        printf("sendto: %s\n", strerrorname_np(errno));
}

static void got(const char *who, int s)
{
    char buf[64];
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    int n;
    printf("%s:", who);
    while ((n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len)) > 0) {
        buf[n] = 0;
        printf(" %s", buf);
    }
    printf("\n");
}

static int join(int s, int opt)
{
    struct ip_mreq m = {.imr_interface.s_addr = htonl(INADDR_ANY)};
    inet_pton(AF_INET, GROUP, &m.imr_multiaddr);
    return setsockopt(s, IPPROTO_IP, opt, &m, sizeof m);
}

int main(void)
{
    int r1 = receiver(), r2 = receiver(), tx = socket(AF_INET, SOCK_DGRAM, 0);
    send_one(tx, "before-any-join");
    printf("join: %d\n", join(r1, IP_ADD_MEMBERSHIP));
    send_one(tx, "joined");
    got("r1", r1);
    got("r2", r2);
    int zero = 0;
    setsockopt(r2, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
    send_one(tx, "all-off");
    got("r1", r1);
    got("r2", r2);
    setsockopt(tx, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero);
    send_one(tx, "no-loop");
    got("r1", r1);
    int one = 1;
    setsockopt(tx, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one);
    send_one(r1, "from-a-member");
    got("r1", r1);
    printf("leave: %d\n", join(r1, IP_DROP_MEMBERSHIP));
    send_one(tx, "after-leave");
    got("r1", r1);

    printf("done\n");
    return 0;
}
