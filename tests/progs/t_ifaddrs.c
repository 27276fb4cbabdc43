/* Interfaces as a program sees them: glibc's getifaddrs and if_nameindex,
 * the netdevice ioctls, and raw NETLINK_ROUTE requests (dumps, acks,
 * errors, MSG_PEEK|MSG_TRUNC, port ids, multicast groups, extended acks).
 *
 * Guest only: the interfaces are the guest's (lo with 127.0.0.1/8 and ::1),
 * so the output is compared with the text tests/test_netif.py expects,
 * not with a native run.  `t_ifaddrs` runs everything as root and ends
 * with the unprivileged part as uid 1000; `t_ifaddrs user` runs only that.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/route.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "results.h"

static char buf[65536];
static unsigned seq = 100;

static const char *fam(int f)
{
    return f == AF_INET ? "inet" : f == AF_INET6 ? "inet6" : f == AF_PACKET ? "packet" : "?";
}

static const char *ntop(const struct sockaddr *sa, char *out, size_t n)
{
    if (!sa)
        return "-";
    if (sa->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, out, n);
    if (sa->sa_family == AF_INET6)
        return inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, out, n);
    if (sa->sa_family == AF_PACKET) {
        struct sockaddr_ll *ll = (struct sockaddr_ll *)sa;
        snprintf(out, n, "ifindex=%d hatype=%d halen=%d", ll->sll_ifindex, ll->sll_hatype, ll->sll_halen);
        return out;
    }
    return "?";
}

static void show_ifaddrs(void)
{
    struct ifaddrs *ifa, *p;
    char a[128], m[128];
    if (getifaddrs(&ifa) < 0) {
        printf("getifaddrs: %s\n", en(errno));
        return;
    }
    for (p = ifa; p; p = p->ifa_next)
        printf("ifaddr %s %s %s mask %s flags=%#x\n", p->ifa_name,
               fam(p->ifa_addr ? p->ifa_addr->sa_family : 0), ntop(p->ifa_addr, a, sizeof a),
               ntop(p->ifa_netmask, m, sizeof m), p->ifa_flags);
    freeifaddrs(ifa);
}

static void names(void)
{
    struct if_nameindex *ni = if_nameindex(), *p;
    char name[IF_NAMESIZE];
    for (p = ni; p && p->if_index; p++)
        printf("nameindex %u %s\n", p->if_index, p->if_name);
    if_freenameindex(ni);
    unsigned idx;
    printf("nametoindex lo: %u\n", if_nametoindex("lo"));
    errno = 0;
    idx = if_nametoindex("nosuch");
    printf("nametoindex nosuch: %u %s\n", idx, en(errno));
    printf("indextoname 1: %s\n", if_indextoname(1, name));
    errno = 0;
    const char *got = if_indextoname(99, name);
    printf("indextoname 99: %s %s\n", got ? got : "NULL", en(errno));
}

/* -- ioctls ------------------------------------------------------------------- */

static int req_ioctl(int s, unsigned long req, const char *name, struct ifreq *ifr)
{
    memset(ifr, 0, sizeof *ifr);
    strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
    return ioctl(s, req, ifr);
}

static void get_addr(int s, unsigned long req, const char *what, const char *name)
{
    struct ifreq ifr;
    char a[64];
    if (req_ioctl(s, req, name, &ifr) < 0)
        printf("%s %s: -1 %s\n", what, name, en(errno));
    else
        printf("%s %s: %s\n", what, name, ntop(&ifr.ifr_addr, a, sizeof a));
}

static int set_addr(int s, unsigned long req, const char *name, const char *addr, int family)
{
    struct ifreq ifr;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    sin->sin_family = family;
    inet_pton(AF_INET, addr, &sin->sin_addr);
    return ioctl(s, req, &ifr);
}

static void ioctls(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0), u = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct ifreq ifr, reqs[4];
    struct ifconf ifc = {0};
    char a[64];
    int i;

    res("SIOCGIFCONF len only", ioctl(s, SIOCGIFCONF, &ifc));
    printf("ifc_len %d\n", ifc.ifc_len);
    ifc.ifc_len = sizeof reqs;
    ifc.ifc_req = reqs;
    res("SIOCGIFCONF", ioctl(s, SIOCGIFCONF, &ifc));
    for (i = 0; i < ifc.ifc_len / (int)sizeof(struct ifreq); i++)
        printf("ifconf %s %s\n", reqs[i].ifr_name, ntop(&reqs[i].ifr_addr, a, sizeof a));
    ifc.ifc_len = sizeof(struct ifreq) - 1;
    res("SIOCGIFCONF short", ioctl(s, SIOCGIFCONF, &ifc));
    printf("ifc_len %d\n", ifc.ifc_len);

    if (req_ioctl(s, SIOCGIFFLAGS, "lo", &ifr) == 0)
        printf("SIOCGIFFLAGS lo: %#x\n", (unsigned short)ifr.ifr_flags);
    if (req_ioctl(s, SIOCGIFINDEX, "lo", &ifr) == 0)
        printf("SIOCGIFINDEX lo: %d\n", ifr.ifr_ifindex);
    if (req_ioctl(s, SIOCGIFMTU, "lo", &ifr) == 0)
        printf("SIOCGIFMTU lo: %d\n", ifr.ifr_mtu);
    if (req_ioctl(s, SIOCGIFTXQLEN, "lo", &ifr) == 0)
        printf("SIOCGIFTXQLEN lo: %d\n", ifr.ifr_qlen);
    if (req_ioctl(s, SIOCGIFMETRIC, "lo", &ifr) == 0)
        printf("SIOCGIFMETRIC lo: %d\n", ifr.ifr_metric);
    if (req_ioctl(s, SIOCGIFHWADDR, "lo", &ifr) == 0)
        printf("SIOCGIFHWADDR lo: family %d %02x:%02x:%02x:%02x:%02x:%02x\n", ifr.ifr_hwaddr.sa_family,
               (unsigned char)ifr.ifr_hwaddr.sa_data[0], (unsigned char)ifr.ifr_hwaddr.sa_data[1],
               (unsigned char)ifr.ifr_hwaddr.sa_data[2], (unsigned char)ifr.ifr_hwaddr.sa_data[3],
               (unsigned char)ifr.ifr_hwaddr.sa_data[4], (unsigned char)ifr.ifr_hwaddr.sa_data[5]);
    res("SIOCGIFMAP lo", req_ioctl(s, SIOCGIFMAP, "lo", &ifr));
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = 1;
    if (ioctl(s, SIOCGIFNAME, &ifr) == 0)
        printf("SIOCGIFNAME 1: %s\n", ifr.ifr_name);
    ifr.ifr_ifindex = 99;
    res("SIOCGIFNAME 99", ioctl(s, SIOCGIFNAME, &ifr));
    res("SIOCGIFFLAGS nosuch", req_ioctl(s, SIOCGIFFLAGS, "nosuch", &ifr));
    res("SIOCGIFFLAGS bad pointer", ioctl(s, SIOCGIFFLAGS, (void *)16));
    res("SIOCGIFCONF bad pointer", ioctl(s, SIOCGIFCONF, (void *)16));

    get_addr(s, SIOCGIFADDR, "SIOCGIFADDR", "lo");
    get_addr(s, SIOCGIFNETMASK, "SIOCGIFNETMASK", "lo");
    get_addr(s, SIOCGIFBRDADDR, "SIOCGIFBRDADDR", "lo");
    get_addr(s, SIOCGIFDSTADDR, "SIOCGIFDSTADDR", "lo");
    get_addr(s, SIOCGIFADDR, "SIOCGIFADDR", "lo:9");
    get_addr(s, SIOCGIFADDR, "SIOCGIFADDR", "nosuch");
    res("unix SIOCGIFADDR", req_ioctl(u, SIOCGIFADDR, "lo", &ifr));
    res("unix SIOCGIFINDEX", req_ioctl(u, SIOCGIFINDEX, "lo", &ifr));
    res("unix SIOCGIFCONF", ioctl(u, SIOCGIFCONF, &ifc));
    res("unix SIOCDEVPRIVATE+15", ioctl(u, 0x89ff, &ifr));
    res("unix unknown 0x897f", ioctl(u, 0x897f, &ifr));

    res("SIOCSIFADDR lo:1 10.1.2.3", set_addr(s, SIOCSIFADDR, "lo:1", "10.1.2.3", AF_INET));
    get_addr(s, SIOCGIFNETMASK, "SIOCGIFNETMASK", "lo:1");
    get_addr(s, SIOCGIFBRDADDR, "SIOCGIFBRDADDR", "lo:1");
    res("SIOCSIFNETMASK lo:1 255.255.0.0", set_addr(s, SIOCSIFNETMASK, "lo:1", "255.255.0.0", AF_INET));
    res("SIOCSIFNETMASK lo:1 255.0.255.0", set_addr(s, SIOCSIFNETMASK, "lo:1", "255.0.255.0", AF_INET));
    res("SIOCSIFADDR lo:2 224.0.0.1", set_addr(s, SIOCSIFADDR, "lo:2", "224.0.0.1", AF_INET));
    res("SIOCSIFADDR lo:2 family inet6", set_addr(s, SIOCSIFADDR, "lo:2", "10.1.2.4", AF_INET6));
    res("SIOCSIFBRDADDR lo:7", set_addr(s, SIOCSIFBRDADDR, "lo:7", "10.255.255.255", AF_INET));
    show_ifaddrs();
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo:1");
    ifr.ifr_flags = 0;
    res("SIOCSIFFLAGS lo:1 down", ioctl(s, SIOCSIFFLAGS, &ifr));
    get_addr(s, SIOCGIFADDR, "SIOCGIFADDR", "lo:1");

    req_ioctl(s, SIOCGIFMTU, "lo", &ifr);
    ifr.ifr_mtu = 1500;
    res("SIOCSIFMTU lo 1500", ioctl(s, SIOCSIFMTU, &ifr));
    ifr.ifr_mtu = -1;
    res("SIOCSIFMTU lo -1", ioctl(s, SIOCSIFMTU, &ifr));
    req_ioctl(s, SIOCGIFMTU, "lo", &ifr);
    printf("SIOCGIFMTU lo: %d\n", ifr.ifr_mtu);
    ifr.ifr_mtu = 65536;
    res("SIOCSIFMTU lo 65536", ioctl(s, SIOCSIFMTU, &ifr));
    req_ioctl(s, SIOCSIFNAME, "lo", &ifr);
    strcpy(ifr.ifr_newname, "lo0");
    res("SIOCSIFNAME lo up", ioctl(s, SIOCSIFNAME, &ifr));     /* EBUSY before Linux 6.2 */
    req_ioctl(s, SIOCSIFNAME, "lo0", &ifr);
    strcpy(ifr.ifr_newname, "lo");
    ioctl(s, SIOCSIFNAME, &ifr);
    req_ioctl(s, SIOCGIFHWADDR, "lo", &ifr);
    res("SIOCSIFHWADDR lo", ioctl(s, SIOCSIFHWADDR, &ifr));
    res("SIOCSIFMETRIC lo", req_ioctl(s, SIOCSIFMETRIC, "lo", &ifr));
    close(s);
    close(u);
}

static void routes(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct rtentry rt;
    struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst, *gw = (struct sockaddr_in *)&rt.rt_gateway,
                       *mask = (struct sockaddr_in *)&rt.rt_genmask;
    char dev[] = "lo";

    memset(&rt, 0, sizeof rt);
    dst->sin_family = gw->sin_family = mask->sin_family = AF_INET;
    inet_pton(AF_INET, "10.5.0.0", &dst->sin_addr);
    inet_pton(AF_INET, "255.255.0.0", &mask->sin_addr);
    rt.rt_flags = RTF_UP;
    rt.rt_dev = dev;
    res("SIOCADDRT 10.5.0.0/16 dev lo", ioctl(s, SIOCADDRT, &rt));
    res("SIOCADDRT again", ioctl(s, SIOCADDRT, &rt));
    inet_pton(AF_INET, "10.5.0.1", &dst->sin_addr);
    res("SIOCADDRT host bits", ioctl(s, SIOCADDRT, &rt));
    inet_pton(AF_INET, "10.6.0.0", &dst->sin_addr);
    inet_pton(AF_INET, "255.0.255.0", &mask->sin_addr);
    res("SIOCADDRT bad mask", ioctl(s, SIOCADDRT, &rt));
    inet_pton(AF_INET, "0.0.0.0", &dst->sin_addr);
    inet_pton(AF_INET, "0.0.0.0", &mask->sin_addr);
    inet_pton(AF_INET, "10.5.0.9", &gw->sin_addr);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_dev = NULL;
    res("SIOCADDRT default gw 10.5.0.9", ioctl(s, SIOCADDRT, &rt));
    inet_pton(AF_INET, "192.168.9.9", &gw->sin_addr);
    res("SIOCADDRT default gw unreachable", ioctl(s, SIOCADDRT, &rt));
    rt.rt_dev = (char *)16;
    res("SIOCADDRT bad rt_dev", ioctl(s, SIOCADDRT, &rt));
    res("SIOCADDRT bad pointer", ioctl(s, SIOCADDRT, (void *)16));
    rt.rt_dev = NULL;
    inet_pton(AF_INET, "10.5.0.9", &gw->sin_addr);
    res("SIOCDELRT default", ioctl(s, SIOCDELRT, &rt));
    res("SIOCDELRT default again", ioctl(s, SIOCDELRT, &rt));
    dst->sin_family = AF_INET6;
    res("SIOCADDRT family inet6", ioctl(s, SIOCADDRT, &rt));
    close(s);
}

/* -- netlink ---------------------------------------------------------------------- */

static int nl_socket(int type, unsigned groups)
{
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = groups};
    int s = socket(AF_NETLINK, type, NETLINK_ROUTE);
    if (s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) < 0)
        printf("bind: %s\n", en(errno));
    return s;
}

static unsigned portid(int s)
{
    struct sockaddr_nl sa;
    socklen_t len = sizeof sa;
    getsockname(s, (struct sockaddr *)&sa, &len);
    return sa.nl_pid;
}

/* send one request: header, family struct, attributes */
static int nl_send(int s, int type, int flags, const void *body, int blen)
{
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    struct sockaddr_nl to = {.nl_family = AF_NETLINK};
    h->nlmsg_len = NLMSG_LENGTH(blen);
    h->nlmsg_type = type;
    h->nlmsg_flags = NLM_F_REQUEST | flags;
    h->nlmsg_seq = ++seq;
    h->nlmsg_pid = 0;
    memcpy(NLMSG_DATA(h), body, blen);
    return sendto(s, buf, h->nlmsg_len, 0, (struct sockaddr *)&to, sizeof to);
}

static int put_attr(char *at, int type, const void *data, int len)
{
    struct rtattr *rta = (struct rtattr *)at;
    rta->rta_type = type;
    rta->rta_len = RTA_LENGTH(len);
    memcpy(RTA_DATA(rta), data, len);
    return RTA_ALIGN(rta->rta_len);
}

static void describe(struct nlmsghdr *h, unsigned me)
{
    printf("  msg type %d flags %#x len %u seq %s pid %s", h->nlmsg_type, h->nlmsg_flags, h->nlmsg_len,
           h->nlmsg_seq == seq ? "ok" : "other", h->nlmsg_pid == me ? "mine" : "other");
    if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = NLMSG_DATA(h);
        printf(" error %s", e->error ? en(-e->error) : "0");
        if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
            int off = NLMSG_ALIGN(sizeof(*e) - sizeof(e->msg) +
                                  (h->nlmsg_flags & NLM_F_CAPPED ? sizeof(e->msg) : e->msg.nlmsg_len));
            struct rtattr *rta = (struct rtattr *)((char *)e + off);
            int len = h->nlmsg_len - NLMSG_HDRLEN - off;
            for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
                if (rta->rta_type == NLMSGERR_ATTR_MSG)
                    printf(" \"%s\"", (char *)RTA_DATA(rta));
        }
    } else if (h->nlmsg_type == NLMSG_DONE) {
        printf(" done %d", *(int *)NLMSG_DATA(h));
    } else if (h->nlmsg_type == RTM_NEWLINK) {
        struct ifinfomsg *i = NLMSG_DATA(h);
        struct rtattr *rta = IFLA_RTA(i);
        int len = IFLA_PAYLOAD(h);
        printf(" link %d type %d flags %#x attrs", i->ifi_index, i->ifi_type, i->ifi_flags);
        for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
            printf(" %d", rta->rta_type);
            if (rta->rta_type == IFLA_IFNAME)
                printf("=%s", (char *)RTA_DATA(rta));
            if (rta->rta_type == IFLA_MTU)
                printf("=%u", *(unsigned *)RTA_DATA(rta));
        }
    } else if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR) {
        struct ifaddrmsg *i = NLMSG_DATA(h);
        struct rtattr *rta = IFA_RTA(i);
        int len = IFA_PAYLOAD(h);
        char a[64];
        printf(" addr family %d plen %d flags %#x scope %d index %d attrs", i->ifa_family, i->ifa_prefixlen,
               i->ifa_flags, i->ifa_scope, i->ifa_index);
        for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
            printf(" %d", rta->rta_type);
            if (rta->rta_type == IFA_ADDRESS)
                printf("=%s", inet_ntop(i->ifa_family, RTA_DATA(rta), a, sizeof a));
        }
    } else if (h->nlmsg_type == RTM_NEWROUTE) {
        struct rtmsg *r = NLMSG_DATA(h);
        printf(" route family %d dst_len %d table %d proto %d scope %d type %d", r->rtm_family, r->rtm_dst_len,
               r->rtm_table, r->rtm_protocol, r->rtm_scope, r->rtm_type);
    }
    printf("\n");
}

/* read until DONE or an error (or nothing more is queued) */
static void nl_read(int s, int peek)
{
    unsigned me = portid(s);
    for (;;) {
        struct sockaddr_nl from;
        struct iovec iov = {buf, sizeof buf};
        struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
        struct nlmsghdr *h;
        int n, done = 0;
        if (peek) {
            struct iovec none = {NULL, 0};
            struct msghdr pm = {.msg_iov = &none, .msg_iovlen = 1};
            n = recvmsg(s, &pm, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
            if (n < 0) {
                printf("  peek: %s\n", en(errno));
                return;
            }
            printf("  peek %s trunc=%d\n", n > 0 ? ">0" : "0", !!(pm.msg_flags & MSG_TRUNC));
        }
        n = recvmsg(s, &mh, MSG_DONTWAIT);
        if (n < 0) {
            printf("  recv: %s\n", en(errno));
            return;
        }
        printf("  datagram from pid %u groups %#x namelen %u\n", from.nl_pid, from.nl_groups, mh.msg_namelen);
        for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            describe(h, me);
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR || !(h->nlmsg_flags & NLM_F_MULTI))
                done = 1;
        }
        if (done)
            return;
    }
}

static void addr_req(int s, int type, int flags, const char *addr, int plen)
{
    char body[64];
    struct ifaddrmsg *ifa = (struct ifaddrmsg *)body;
    struct in_addr in;
    int len = NLMSG_ALIGN(sizeof *ifa);
    memset(body, 0, sizeof body);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = plen;
    ifa->ifa_index = 1;
    inet_pton(AF_INET, addr, &in);
    len += put_attr(body + len, IFA_LOCAL, &in, 4);
    len += put_attr(body + len, IFA_ADDRESS, &in, 4);
    nl_send(s, type, flags, body, len);
}

static void netlink(void)
{
    int s, t, g, one = 1, v;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    socklen_t len = sizeof sa;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    struct rtgenmsg gen = {.rtgen_family = AF_INET};
    struct pollfd pfd;

    res("socket stream", socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE));
    res("socket kobject_uevent", socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT));
    res("socket sock_diag", socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG));
    res("socket protocol 32", socket(AF_NETLINK, SOCK_RAW, 32));

    s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    getsockname(s, (struct sockaddr *)&sa, &len);
    printf("unbound: family %d pid %u groups %u len %u\n", sa.nl_family, sa.nl_pid, sa.nl_groups, len);
    sa.nl_family = AF_INET;
    res("bind family inet", bind(s, (struct sockaddr *)&sa, sizeof sa));
    sa.nl_family = AF_NETLINK;
    res("bind short", bind(s, (struct sockaddr *)&sa, 4));
    res("bind", bind(s, (struct sockaddr *)&sa, sizeof sa));
    printf("pid is getpid: %d\n", portid(s) == (unsigned)getpid());
    sa.nl_pid = 12345;
    res("rebind other pid", bind(s, (struct sockaddr *)&sa, sizeof sa));
    t = nl_socket(SOCK_DGRAM, 0);
    printf("second pid negative: %d\n", (int)portid(t) < 0);
    sa.nl_pid = getpid();
    g = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    res("bind taken pid", bind(g, (struct sockaddr *)&sa, sizeof sa));
    close(g);
    len = sizeof sa;
    res("getpeername", getpeername(s, (struct sockaddr *)&sa, &len));
    printf("peer pid %u groups %u\n", sa.nl_pid, sa.nl_groups);

    res("setsockopt SO_RCVBUF", setsockopt(s, SOL_SOCKET, SO_RCVBUF, &(int){1 << 20}, sizeof(int)));
    res("setsockopt EXT_ACK", setsockopt(s, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one));
    res("setsockopt GET_STRICT_CHK", setsockopt(s, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one));
    len = sizeof v;
    res("getsockopt EXT_ACK", getsockopt(s, SOL_NETLINK, NETLINK_EXT_ACK, &v, &len));
    printf("ext_ack %d len %u\n", v, len);
    res("ADD_MEMBERSHIP 0", setsockopt(s, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &(int){0}, sizeof(int)));
    res("ADD_MEMBERSHIP 99", setsockopt(s, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &(int){99}, sizeof(int)));
    res("sendto empty", sendto(s, buf, 0, 0, NULL, 0));
    res("recv empty", recv(s, buf, sizeof buf, MSG_DONTWAIT));

    printf("RTM_GETLINK dump:\n");
    nl_send(s, RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof ifi);
    pfd.fd = s;
    pfd.events = POLLIN | POLLOUT;
    poll(&pfd, 1, 0);
    printf("  poll %#x\n", pfd.revents);
    nl_read(s, 1);
    printf("RTM_GETLINK lo by index:\n");
    ifi.ifi_index = 1;
    nl_send(s, RTM_GETLINK, NLM_F_ACK, &ifi, sizeof ifi);
    nl_read(s, 0);
    nl_read(s, 0);
    printf("RTM_GETLINK index 99:\n");
    ifi.ifi_index = 99;
    nl_send(s, RTM_GETLINK, 0, &ifi, sizeof ifi);
    nl_read(s, 0);
    printf("RTM_GETADDR dump inet (rtgenmsg):\n");
    nl_send(t, RTM_GETADDR, NLM_F_DUMP, &gen, sizeof gen);
    nl_read(t, 0);
    printf("RTM_GETROUTE dump inet (rtgenmsg):\n");
    nl_send(t, RTM_GETROUTE, NLM_F_DUMP, &gen, sizeof gen);
    nl_read(t, 0);
    printf("RTM_NEWLINK probe:\n");
    ifi.ifi_index = 0;
    nl_send(s, RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof ifi);
    nl_read(s, 0);
    printf("RTM_NEWLINK create:\n");
    nl_send(s, RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE, &ifi, sizeof ifi);
    nl_read(s, 0);
    printf("type 200:\n");
    nl_send(s, 200, NLM_F_ACK, &ifi, sizeof ifi);
    nl_read(s, 0);

    g = nl_socket(SOCK_RAW, RTMGRP_IPV4_IFADDR);
    printf("RTM_NEWADDR 10.8.0.1/24 with ack:\n");
    addr_req(s, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, "10.8.0.1", 24);
    nl_read(s, 0);
    printf("again:\n");
    addr_req(s, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, "10.8.0.1", 24);
    nl_read(s, 0);
    printf("RTM_DELADDR:\n");
    addr_req(s, RTM_DELADDR, NLM_F_ACK, "10.8.0.1", 24);
    nl_read(s, 0);
    printf("group member heard:\n");
    nl_read(g, 0);
    nl_read(g, 0);
    nl_read(g, 0);
    {
        char body[64];
        struct rtmsg *r = (struct rtmsg *)body;
        struct in_addr gw;
        int blen = NLMSG_ALIGN(sizeof *r);
        memset(body, 0, sizeof body);
        r->rtm_family = AF_INET;
        r->rtm_table = RT_TABLE_MAIN;
        r->rtm_protocol = RTPROT_BOOT;
        r->rtm_type = RTN_UNICAST;
        inet_pton(AF_INET, "192.168.7.1", &gw);
        blen += put_attr(body + blen, RTA_GATEWAY, &gw, 4);
        printf("RTM_NEWROUTE default via unreachable gateway (ext ack):\n");
        nl_send(s, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body, blen);
        nl_read(s, 0);
    }
    {
        /* control messages: SCM_CREDENTIALS of the kernel, NETLINK_PKTINFO */
        int c = nl_socket(SOCK_RAW, 0);
        char cbuf[256];
        struct iovec iov = {buf, sizeof buf};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        struct cmsghdr *cm;
        res("SO_PASSCRED", setsockopt(c, SOL_SOCKET, SO_PASSCRED, &one, sizeof one));
        res("NETLINK_PKTINFO", setsockopt(c, SOL_NETLINK, NETLINK_PKTINFO, &one, sizeof one));
        len = sizeof v;
        getsockopt(c, SOL_SOCKET, SO_PASSCRED, &v, &len);
        printf("SO_PASSCRED reads %d\n", v);
        ifi.ifi_index = 1;
        nl_send(c, RTM_GETLINK, 0, &ifi, sizeof ifi);
        res("recvmsg with control", recvmsg(c, &mh, MSG_DONTWAIT) > 0);
        for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            printf("  cmsg level %d type %d len %zu", cm->cmsg_level, cm->cmsg_type, (size_t)cm->cmsg_len);
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
                struct ucred *uc = (struct ucred *)CMSG_DATA(cm);
                printf(" pid %d uid %u gid %u", uc->pid, uc->uid, uc->gid);
            } else if (cm->cmsg_level == SOL_NETLINK && cm->cmsg_type == NETLINK_PKTINFO) {
                printf(" group %u", ((struct nl_pktinfo *)CMSG_DATA(cm))->group);
            }
            printf("\n");
        }
        close(c);
    }
    {
        /* replies to requests nobody reads: dropped beyond the receive buffer */
        int o = nl_socket(SOCK_RAW, 0), i, n, overrun = 0;
        res("SO_RCVBUF 4096", setsockopt(o, SOL_SOCKET, SO_RCVBUF, &(int){4096}, sizeof(int)));
        ifi.ifi_index = 1;
        for (i = 0; i < 100; i++)
            if (nl_send(o, RTM_GETLINK, 0, &ifi, sizeof ifi) < 0)
                printf("send %d: %s\n", i, en(errno));
        n = recv(o, buf, sizeof buf, MSG_DONTWAIT);
        printf("first recv after 100 requests: %s\n", n < 0 ? en(errno) : "data");
        for (i = 0; i < 100 && recv(o, buf, sizeof buf, MSG_DONTWAIT) > 0; i++)
            overrun = i + 1;
        printf("then some replies: %d\n", overrun > 0 && overrun < 100);
        close(o);
    }
    close(s);
    close(t);
    close(g);
}

static void unprivileged(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0), n = nl_socket(SOCK_RAW, 0);
    struct ifreq ifr;
    struct rtentry rt;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    if (setresgid(1000, 1000, 1000) < 0 || setresuid(1000, 1000, 1000) < 0)
        printf("setresuid: %s\n", en(errno));
    printf("as uid %d:\n", getuid());
    show_ifaddrs();
    if (req_ioctl(s, SIOCGIFFLAGS, "lo", &ifr) == 0)
        printf("SIOCGIFFLAGS lo: %#x\n", (unsigned short)ifr.ifr_flags);
    res("SIOCSIFFLAGS lo", ioctl(s, SIOCSIFFLAGS, &ifr));
    res("SIOCSIFFLAGS nosuch", req_ioctl(s, SIOCSIFFLAGS, "nosuch", &ifr));
    res("SIOCSIFMTU lo", req_ioctl(s, SIOCSIFMTU, "lo", &ifr));
    res("SIOCSIFADDR lo:1", set_addr(s, SIOCSIFADDR, "lo:1", "10.1.2.3", AF_INET));
    memset(&rt, 0, sizeof rt);
    rt.rt_dst.sa_family = AF_INET;
    res("SIOCADDRT", ioctl(s, SIOCADDRT, &rt));
    get_addr(s, SIOCGIFADDR, "SIOCGIFADDR", "lo");
    printf("RTM_NEWADDR:\n");
    addr_req(n, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, "10.8.0.1", 24);
    nl_read(n, 0);
    printf("RTM_NEWLINK probe:\n");
    nl_send(n, RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof ifi);
    nl_read(n, 0);
    printf("RTM_GETLINK lo:\n");
    ifi.ifi_index = 1;
    nl_send(n, RTM_GETLINK, 0, &ifi, sizeof ifi);
    nl_read(n, 0);
    close(s);
    close(n);
}

/* AF_UNIX sockets of each kind, then their /proc/net/unix lines (found by
 * inode number, printed without the kernel address and the inode) */
static void unix_sockets(const char *dir)
{
    static const char *names[] = {"listener", "client", "accepted", "abstract", "sender", "pair0", "pair1",
                                  "seqpacket", "unbound"};
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd[9], i;
    socklen_t len;
    char line[512], path[128];
    struct stat st;
    FILE *f;

    fd[0] = socket(AF_UNIX, SOCK_STREAM, 0);
    fd[1] = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(path, sizeof path, "%s/listener", dir);
    unlink(path);
    strcpy(sun.sun_path, path);
    bind(fd[0], (struct sockaddr *)&sun, sizeof sun);
    listen(fd[0], 5);
    connect(fd[1], (struct sockaddr *)&sun, sizeof sun);
    fd[2] = accept(fd[0], NULL, NULL);
    fd[3] = socket(AF_UNIX, SOCK_DGRAM, 0);
    fd[4] = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(sun.sun_path, 0, sizeof sun.sun_path);
    memcpy(sun.sun_path, "\0abs\0name", 9);
    len = offsetof(struct sockaddr_un, sun_path) + 9;
    bind(fd[3], (struct sockaddr *)&sun, len);
    connect(fd[4], (struct sockaddr *)&sun, len);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, fd + 5);
    fd[7] = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    fd[8] = socket(AF_UNIX, SOCK_STREAM, 0);
    for (i = 0; i < 9; i++) {
        fstat(fd[i], &st);
        f = fopen("/proc/net/unix", "r");
        while (f && fgets(line, sizeof line, f)) {
            unsigned long ino;
            char rest[256] = "";
            /* "%pK: %08X %08X %08X %04X %02X %5lu[ path]" */
            char *p = strchr(line, ':');
            if (!p || sscanf(p + 36, "%lu%255[^\n]", &ino, rest) < 1 || ino != st.st_ino)
                continue;
            printf("%-9s %.35s%s\n", names[i], p + 1, rest);
        }
        if (f)
            fclose(f);
    }
    for (i = 0; i < 9; i++)
        close(fd[i]);
    unlink(path);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 2 && !strcmp(argv[1], "unix")) {
        unix_sockets(argv[2]);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "user")) {
        show_ifaddrs();
        names();
        ioctls();
        routes();
        netlink();
    }
    unprivileged();
    printf("done\n");
    return 0;
}
