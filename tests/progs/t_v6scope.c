/* IPv6 link-local addresses and their interface (sin6_scope_id), as Linux
 * treats them: a bind or connect to one needs the interface (EINVAL
 * without, ENODEV for none such, EADDRNOTAVAIL for another's address),
 * names of such sockets carry it (getsockname, getpeername, accept,
 * recvfrom); plus __inet6_bind's order (a double bind is EINVAL before the
 * address is looked at; a stream socket on a group EINVAL) beside
 * __inet_bind's (the address first).  Needs an up eth0 with its fe80::
 * address (eth0=user, `ip link set eth0 up`). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void say(const char *what, int r)
{
    if (r < 0)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: ok\n", what);
}

static struct sockaddr_in6 ll;      /* eth0's link-local address, port 0, no scope */

static struct sockaddr_in6 at(int port, unsigned scope)
{
    struct sockaddr_in6 a = ll;
    a.sin6_port = htons(port);
    a.sin6_scope_id = scope;
    return a;
}

static unsigned scope_of(int fd, int peer)
{
    struct sockaddr_in6 a;
    socklen_t len = sizeof a;
    if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &len) < 0)
        return 9999;
    return a.sin6_scope_id;
}

int main(void)
{
    struct ifaddrs *ifs, *i;
    unsigned eth0 = if_nametoindex("eth0"), lo = if_nametoindex("lo");
    int found = 0;
    getifaddrs(&ifs);
    for (i = ifs; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET6 && !strcmp(i->ifa_name, "eth0")) {
            ll = *(struct sockaddr_in6 *)i->ifa_addr;
            found = IN6_IS_ADDR_LINKLOCAL(&ll.sin6_addr);
        }
    printf("eth0 has a link-local address: %d, getifaddrs gives its scope: %d\n", found,
           ll.sin6_scope_id == eth0);
    ll.sin6_scope_id = 0;

    int s = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = at(0, 0);
    say("bind without an interface", bind(s, (struct sockaddr *)&a, sizeof a));
    a = at(0, 99);
    say("bind to no such interface", bind(s, (struct sockaddr *)&a, sizeof a));
    close(s);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    a = at(0, lo);
    say("bind on another interface", bind(s, (struct sockaddr *)&a, sizeof a));
    close(s);

    int l = socket(AF_INET6, SOCK_STREAM, 0);
    a = at(0, eth0);
    say("bind on its interface", bind(l, (struct sockaddr *)&a, sizeof a));
    printf("the listener's name has the interface: %d\n", scope_of(l, 0) == eth0);
    listen(l, 4);
    socklen_t len = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin6_port);

    int c = socket(AF_INET6, SOCK_STREAM, 0);
    a = at(port, 0);
    say("connect without an interface", connect(c, (struct sockaddr *)&a, sizeof a));
    a = at(port, eth0);
    say("connect with it", connect(c, (struct sockaddr *)&a, sizeof a));
    printf("the client's names have it: %d %d\n", scope_of(c, 0) == eth0, scope_of(c, 1) == eth0);
    struct sockaddr_in6 peer;
    len = sizeof peer;
    int acc = accept(l, (struct sockaddr *)&peer, &len);
    printf("accept's peer has it: %d\n", acc >= 0 && peer.sin6_scope_id == eth0);
    printf("the connection's names have it: %d %d\n", scope_of(acc, 0) == eth0, scope_of(acc, 1) == eth0);
    char ifname[IF_NAMESIZE] = "";
    len = sizeof ifname;
    getsockopt(acc, SOL_SOCKET, SO_BINDTODEVICE, ifname, &len);
    printf("it is bound to the device: %s\n", ifname);
    close(acc);
    close(c);
    c = socket(AF_INET6, SOCK_STREAM, 0);
    setsockopt(c, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
    a = at(port, eth0);
    say("connect with another interface than the bound one", connect(c, (struct sockaddr *)&a, sizeof a));
    close(c);
    close(l);

    int u = socket(AF_INET6, SOCK_DGRAM, 0), v = socket(AF_INET6, SOCK_DGRAM, 0);
    a = at(0, eth0);
    bind(u, (struct sockaddr *)&a, sizeof a);
    len = sizeof a;
    getsockname(u, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin6_port);
    a = at(port, 0);
    say("udp connect without an interface", connect(v, (struct sockaddr *)&a, sizeof a));
    a = at(port, eth0);
    say("udp connect with it", connect(v, (struct sockaddr *)&a, sizeof a));
    send(v, "x", 1, 0);
    char buf[8];
    len = sizeof peer;
    memset(&peer, 0, sizeof peer);
    recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&peer, &len);
    printf("recvfrom's sender has it: %d\n", peer.sin6_scope_id == eth0);
    close(u);
    close(v);

    s = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 one = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    say("bind ::1", bind(s, (struct sockaddr *)&one, sizeof one));
    printf("::1 has no scope: %d\n", scope_of(s, 0) == 0);
    inet_pton(AF_INET6, "2001:db8::1", &one.sin6_addr);
    say("v6 bind again, to an address not ours", bind(s, (struct sockaddr *)&one, sizeof one));
    close(s);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    say("v6 bind an address not ours", bind(s, (struct sockaddr *)&one, sizeof one));
    inet_pton(AF_INET6, "ff02::1", &one.sin6_addr);
    one.sin6_scope_id = eth0;
    say("tcp bind to a group", bind(s, (struct sockaddr *)&one, sizeof one));
    close(s);
    s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in four = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&four, sizeof four);
    inet_pton(AF_INET, "192.0.2.1", &four.sin_addr);
    say("v4 bind again, to an address not ours", bind(s, (struct sockaddr *)&four, sizeof four));
    close(s);
    freeifaddrs(ifs);
    printf("done\n");
    return 0;
}
