/* Packet socket mmap rings (PACKET_RX_RING, PACKET_TX_RING; TPACKET_V1..V3).
 *
 *   t_pring [DIR]      the differential part: options, ring requests valid
 *                      and invalid, mmap sizes, EBUSY while mapped, a TX
 *                      ring's send on lo.  Needs CAP_NET_RAW (root); prints
 *                      only what the same on Linux and in the guest: the
 *                      socket has protocol 0, so no packet ever reaches it.
 *   t_pring rx V       guest only, eth0=user: a DHCP discover sent through
 *                      a TX ring comes back as the DHCP server's offer in
 *                      the RX ring (V = 1, 2 or 3); prints its headers.
 *   t_pring rx V cut   the same through a socket filter that keeps 40 bytes.
 *   t_pring filter     guest only, eth0=user: discovers sent on a plain
 *                      socket, the offers read through socket filters that
 *                      drop, cut, or choose by the UDP source port.
 *   t_pring hostile    guest only: corrupt every header the guest can, send
 *                      garbage from a TX ring; the kernel must go on.
 * Last line done. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "results.h"

#define PG 4096

static int setopt(int fd, int opt, const void *v, socklen_t n)
{
    return setsockopt(fd, SOL_PACKET, opt, v, n);
}

static int setint(int fd, int opt, int v)
{
    return setopt(fd, opt, &v, sizeof v);
}

static void ring(const char *what, int fd, int opt, unsigned bs, unsigned bn, unsigned fs, unsigned fn)
{
    struct tpacket_req r = { bs, bn, fs, fn };
    res(what, setopt(fd, opt, &r, sizeof r));
}

static void ring3(const char *what, int fd, int opt, unsigned bs, unsigned bn, unsigned fs, unsigned fn,
                  unsigned tov, unsigned priv)
{
    struct tpacket_req3 r = { bs, bn, fs, fn, tov, priv, 0 };
    res(what, setopt(fd, opt, &r, sizeof r));
}

static void getint(const char *what, int fd, int opt, int in)
{
    int v = in;
    socklen_t n = sizeof v;
    if (getsockopt(fd, SOL_PACKET, opt, &v, &n) < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: %d (len %u)\n", what, v, n);
}

static void mapres(const char *what, int fd, size_t len, off_t off, void **keep)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
    if (p == MAP_FAILED) {
        printf("%s: -1 %s\n", what, en(errno));
        return;
    }
    printf("%s: ok\n", what);
    if (keep)
        *keep = p;
    else
        munmap(p, len);
}

static int packet_socket(int type, int proto)
{
    int fd = socket(AF_PACKET, type, proto);
    if (fd < 0) {
        res("socket", -1);
        exit(0);
    }
    return fd;
}

static void options(void)
{
    int fd = packet_socket(SOCK_RAW, 0);
    getint("version", fd, PACKET_VERSION, 0);
    for (int v = 0; v <= 3; v++) {
        char what[32];
        snprintf(what, sizeof what, "hdrlen v%d", v);
        getint(what, fd, PACKET_HDRLEN, v);
    }
    short small = 1;
    socklen_t n = sizeof small;
    res("hdrlen short", getsockopt(fd, SOL_PACKET, PACKET_HDRLEN, &small, &n));
    res("version 3", setint(fd, PACKET_VERSION, 3));
    res("version -1", setint(fd, PACKET_VERSION, -1));
    res("version short", setopt(fd, PACKET_VERSION, &small, sizeof small));
    res("reserve 2^31", setint(fd, PACKET_RESERVE, (int)0x80000000u));
    res("reserve 16", setint(fd, PACKET_RESERVE, 16));
    getint("reserve", fd, PACKET_RESERVE, 0);
    res("reserve 0", setint(fd, PACKET_RESERVE, 0));
    res("loss 5", setint(fd, PACKET_LOSS, 5));
    getint("loss", fd, PACKET_LOSS, 0);
    res("loss 0", setint(fd, PACKET_LOSS, 0));
    res("timestamp", setint(fd, PACKET_TIMESTAMP, 0));
    getint("timestamp", fd, PACKET_TIMESTAMP, 0);
    res("fanout data", setint(fd, PACKET_FANOUT_DATA, 0));
    getint("fanout", fd, PACKET_FANOUT, 0);
    getint("rollover stats", fd, PACKET_ROLLOVER_STATS, 0);
    res("vnet hdr 0", setint(fd, PACKET_VNET_HDR, 0));
    close(fd);
    fd = packet_socket(SOCK_DGRAM, 0);
    res("dgram vnet hdr", setint(fd, PACKET_VNET_HDR, 1));
    close(fd);
}

static void v1v2_requests(int version)
{
    int fd = packet_socket(SOCK_RAW, 0);
    printf("-- v%d\n", version + 1);
    res("set version", setint(fd, PACKET_VERSION, version));
    ring("block 0", fd, PACKET_RX_RING, 0, 4, 2048, 8);
    ring("block not paged", fd, PACKET_RX_RING, 1000, 4, 500, 8);
    ring("block 2^31", fd, PACKET_RX_RING, 0x80000000u, 1, 0x80000000u, 1);
    ring("frame small", fd, PACKET_RX_RING, PG, 4, 48, 340);
    ring("frame unaligned", fd, PACKET_RX_RING, PG, 4, 2050, 8);
    ring("frame > block", fd, PACKET_RX_RING, PG, 4, 2 * PG, 2);
    ring("frame_nr wrong", fd, PACKET_RX_RING, PG, 4, 2048, 7);
    ring("per block overflow", fd, PACKET_RX_RING, PG, 0x7fffffff, 64, 0);
    ring("pg_vec too long", fd, PACKET_RX_RING, PG, 1u << 20, PG, 1u << 20);
    ring("free with frames", fd, PACKET_RX_RING, 0, 0, 2048, 8);
    ring("free none", fd, PACKET_RX_RING, 0, 0, 0, 0);
    struct tpacket_req r = { PG, 4, 2048, 8 };
    res("short req", setopt(fd, PACKET_RX_RING, &r, sizeof r - 1));
    mapres("mmap no ring", fd, PG, 0, NULL);
    ring("rx", fd, PACKET_RX_RING, PG, 4, 2048, 8);
    ring("rx again", fd, PACKET_RX_RING, PG, 4, 2048, 8);
    res("version busy", setint(fd, PACKET_VERSION, version));
    res("reserve busy", setint(fd, PACKET_RESERVE, 0));
    res("loss busy", setint(fd, PACKET_LOSS, 0));
    res("tx has off busy", setint(fd, PACKET_TX_HAS_OFF, 1));
    ring("tx", fd, PACKET_TX_RING, 2 * PG, 2, PG, 4);
    mapres("mmap rx+tx", fd, 8 * PG, 0, NULL);
    mapres("mmap rx+tx-1", fd, 8 * PG - 1, 0, NULL);
    mapres("mmap rx only", fd, 4 * PG, 0, NULL);
    mapres("mmap too long", fd, 9 * PG, 0, NULL);
    mapres("mmap offset", fd, 8 * PG, PG, NULL);
    void *m = NULL;
    mapres("mmap keep", fd, 8 * PG, 0, &m);
    if (m) {
        int all = 1;
        for (int i = 0; i < 8; i++)
            all &= *(uint32_t *)((char *)m + (i / 2) * PG + (i % 2) * 2048) == TP_STATUS_KERNEL;
        printf("rx frames kernel's: %d\n", all);
        struct pollfd p = { fd, POLLIN | POLLOUT, 0 };
        int pr = poll(&p, 1, 0);
        printf("poll: %d revents %#x\n", pr, p.revents);
        ring("free rx mapped", fd, PACKET_RX_RING, 0, 0, 0, 0);
        pid_t c = fork();
        if (c == 0) {
            sleep(1);
            _exit(0);
        }
        munmap(m, 8 * PG);
        ring("free rx, child maps", fd, PACKET_RX_RING, 0, 0, 0, 0);
        waitpid(c, NULL, 0);
    }
    ring("free rx", fd, PACKET_RX_RING, 0, 0, 0, 0);
    mapres("mmap tx only", fd, 4 * PG, 0, NULL);
    ring("free tx", fd, PACKET_TX_RING, 0, 0, 0, 0);
    res("version after free", setint(fd, PACKET_VERSION, version));
    struct tpacket_stats st;
    socklen_t n = sizeof st + 4;
    res("stats", getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &n));
    printf("stats len %u packets %u drops %u\n", n, st.tp_packets, st.tp_drops);
    close(fd);
}

static void v3_requests(void)
{
    int fd = packet_socket(SOCK_RAW, 0);
    printf("-- v3\n");
    res("set version", setint(fd, PACKET_VERSION, TPACKET_V3));
    struct tpacket_req r = { PG, 4, 2048, 8 };
    res("v1 req on v3", setopt(fd, PACKET_RX_RING, &r, sizeof r));
    /* LTP setsockopt02 (CVE-2017-7308): a private area past the block */
    ring3("priv 3<<30", fd, PACKET_RX_RING, PG, 1, PG, 1, 0, 3u << 30);
    ring3("priv 4096", fd, PACKET_RX_RING, PG, 1, PG, 1, 0, PG);
    ring3("priv 512", fd, PACKET_RX_RING, PG, 1, PG, 1, 0, 512);
    ring3("free", fd, PACKET_RX_RING, 0, 0, 0, 0, 0, 0);
    ring3("block < priv + frame", fd, PACKET_RX_RING, PG, 1, 2048, 2, 0, 4000);
    ring3("rx", fd, PACKET_RX_RING, 2 * PG, 4, 2048, 16, 10, 64);
    ring3("tx with tov", fd, PACKET_TX_RING, PG, 2, 2048, 4, 10, 0);
    ring3("tx with priv", fd, PACKET_TX_RING, PG, 2, 2048, 4, 0, 16);
    ring3("tx", fd, PACKET_TX_RING, PG, 2, 2048, 4, 0, 0);
    mapres("mmap", fd, 10 * PG, 0, NULL);
    void *m = NULL;
    mapres("mmap keep", fd, 10 * PG, 0, &m);
    if (m) {
        struct tpacket_block_desc *b = m;
        printf("block0 version %u priv %u first %u status %u\n", b->version, b->offset_to_priv,
               b->hdr.bh1.offset_to_first_pkt, b->hdr.bh1.block_status);
        struct pollfd p = { fd, POLLIN, 0 };
        int pr = poll(&p, 1, 0);
        printf("poll: %d revents %#x\n", pr, p.revents);
        munmap(m, 10 * PG);
    }
    struct tpacket_stats_v3 st;
    socklen_t n = sizeof st + 4;
    res("stats", getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &n));
    printf("stats len %u packets %u drops %u freeze %u\n", n, st.tp_packets, st.tp_drops,
           st.tp_freeze_q_cnt);
    ring3("free tx", fd, PACKET_TX_RING, 0, 0, 0, 0, 0, 0);
    ring3("free rx", fd, PACKET_RX_RING, 0, 0, 0, 0, 0, 0);
    close(fd);
}

/* a TX ring on lo: one well-formed frame, then one too long */
static void tx_lo(void)
{
    printf("-- tx on lo\n");
    int fd = packet_socket(SOCK_RAW, 0);
    res("send unbound", send(fd, "", 0, 0));
    struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex("lo") };
    res("bind lo", bind(fd, (struct sockaddr *)&a, sizeof a));
    res("version 2", setint(fd, PACKET_VERSION, TPACKET_V2));
    ring("tx", fd, PACKET_TX_RING, PG, 2, 2048, 4);
    char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        res("mmap", -1);
        return;
    }
    res("send nothing requested", send(fd, NULL, 0, 0));
    struct tpacket2_hdr *h = (void *)m;
    unsigned char *d = (unsigned char *)m + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
    memset(d, 0xff, 12);
    d[12] = 0x88, d[13] = 0xb5;
    memset(d + 14, 'x', 46);
    h->tp_len = 60;
    h->tp_status = TP_STATUS_SEND_REQUEST;
    res("send one", send(fd, NULL, 0, MSG_DONTWAIT));
    printf("status after: %u\n", h->tp_status);
    struct tpacket2_hdr *h2 = (void *)(m + 2048);
    h2->tp_len = 0x7fffffff;
    h2->tp_status = TP_STATUS_SEND_REQUEST;
    res("send too long", send(fd, NULL, 0, 0));
    printf("status after: %u\n", h2->tp_status);
    h2->tp_status = TP_STATUS_AVAILABLE;
    munmap(m, 2 * PG);
    close(fd);
    fd = packet_socket(SOCK_DGRAM, 0);
    res("bind lo", bind(fd, (struct sockaddr *)&a, sizeof a));
    res("dgram send, no address", send(fd, "x", 1, 0));
    close(fd);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    mapres("mmap udp socket", fd, PG, 0, NULL);
    close(fd);
}

/* -- guest only ------------------------------------------------------------- */

static uint16_t csum(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (b[i] << 8) | b[i + 1];
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return htons(~s);
}

/* an IPv4/UDP DHCP discover from 0.0.0.0:68 to 255.255.255.255:67 */
static size_t discover(unsigned char *p)
{
    size_t n = 20 + 8 + 236 + 4 + 4;
    memset(p, 0, n);
    p[0] = 0x45, p[8] = 64, p[9] = 17;
    p[2] = n >> 8, p[3] = n & 0xff;
    memset(p + 16, 0xff, 4);
    p[21] = 68, p[23] = 67;
    p[24] = (n - 20) >> 8, p[25] = (n - 20) & 0xff;
    unsigned char *b = p + 28;
    b[0] = 1, b[1] = 1, b[2] = 6, b[4] = 0x12;
    b[28] = 0x52, b[29] = 0x54, b[30] = 0, b[31] = 0x12, b[32] = 0x34, b[33] = 0x56;
    memcpy(b + 236, "\x63\x82\x53\x63\x35\x01\x01\xff", 8);
    uint16_t c = csum(p, 20);
    memcpy(p + 10, &c, 2);
    return n;
}

static int attach(int fd, struct sock_filter *code, unsigned short len)
{
    struct sock_fprog prog = { len, code };
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
}

static struct sock_filter keep40[] = { BPF_STMT(BPF_RET | BPF_K, 40) };

static int rx(int v, int cut)
{
    int version = v - 1, fd = packet_socket(SOCK_DGRAM, htons(ETH_P_IP));
    struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
                             .sll_ifindex = (int)if_nametoindex("eth0") };
    res("bind eth0", bind(fd, (struct sockaddr *)&a, sizeof a));
    if (cut && attach(fd, keep40, 1))
        return res("attach", -1), 1;
    res("version", setint(fd, PACKET_VERSION, version));
    if (version == TPACKET_V3)
        ring3("rx", fd, PACKET_RX_RING, PG, 4, 2048, 8, 20, 0);
    else
        ring("rx", fd, PACKET_RX_RING, PG, 4, 2048, 8);
    ring3("tx", fd, PACKET_TX_RING, PG, 1, 2048, 2, 0, 0);
    char *m = mmap(NULL, 5 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return res("mmap", -1), 1;
    char *tx = m + 4 * PG;
    int hl = (version == TPACKET_V3 ? TPACKET3_HDRLEN : TPACKET2_HDRLEN) - sizeof(struct sockaddr_ll);
    size_t n = discover((unsigned char *)tx + hl);
    if (version == TPACKET_V1) {
        ((struct tpacket_hdr *)tx)->tp_len = n;
        ((struct tpacket_hdr *)tx)->tp_status = TP_STATUS_SEND_REQUEST;
    } else if (version == TPACKET_V2) {
        ((struct tpacket2_hdr *)tx)->tp_len = n;
        ((struct tpacket2_hdr *)tx)->tp_status = TP_STATUS_SEND_REQUEST;
    } else {
        ((struct tpacket3_hdr *)tx)->tp_len = n;
        ((struct tpacket3_hdr *)tx)->tp_status = TP_STATUS_SEND_REQUEST;
    }
    struct sockaddr_ll to = a;
    to.sll_halen = 6;
    memset(to.sll_addr, 0xff, 6);
    long sent = sendto(fd, NULL, 0, 0, (struct sockaddr *)&to, sizeof to);
    printf("sent: %s\n", sent == (long)n ? "all" : "short");
    struct pollfd p = { fd, POLLIN, 0 };
    printf("poll: %d\n", poll(&p, 1, 10000));
    char *f = m;
    if (version == TPACKET_V3) {
        struct tpacket_block_desc *b = (void *)m;
        struct tpacket_hdr_v1 *h1 = &b->hdr.bh1;
        printf("block: status user %d pkts %u first %u seq %llu len ok %d\n",
               !!(h1->block_status & TP_STATUS_USER), h1->num_pkts, h1->offset_to_first_pkt,
               (unsigned long long)h1->seq_num, h1->blk_len > 48 && h1->blk_len <= PG);
        f = m + h1->offset_to_first_pkt;
        struct tpacket3_hdr *h = (void *)f;
        printf("pkt: status %u next %u mac %u net %u len=snaplen %d\n", h->tp_status,
               h->tp_next_offset, h->tp_mac, h->tp_net, h->tp_len == h->tp_snaplen);
        f += h->tp_net;
    } else {
        unsigned long status;
        unsigned len, snap, mac, net;
        if (version == TPACKET_V1) {
            struct tpacket_hdr *h = (void *)f;
            status = h->tp_status, len = h->tp_len, snap = h->tp_snaplen, mac = h->tp_mac, net = h->tp_net;
        } else {
            struct tpacket2_hdr *h = (void *)f;
            status = h->tp_status, len = h->tp_len, snap = h->tp_snaplen, mac = h->tp_mac, net = h->tp_net;
        }
        printf("frame: status %lu mac %u net %u len=snaplen %d len>240 %d\n", status, mac, net,
               len == snap, len > 240);
        if (cut)
            printf("cut: snaplen %u\n", snap);
        struct sockaddr_ll *sll = (void *)(f + TPACKET_ALIGN(version == TPACKET_V1 ?
                                  sizeof(struct tpacket_hdr) : sizeof(struct tpacket2_hdr)));
        printf("sll: family %u protocol %#x ifindex ok %d halen %u\n", sll->sll_family,
               ntohs(sll->sll_protocol), sll->sll_ifindex == a.sll_ifindex, sll->sll_halen);
        f += net;
    }
    printf("ip: %#x udp sport %u\n", (unsigned char)f[0], ((unsigned char)f[20] << 8) | (unsigned char)f[21]);
    struct tpacket_stats_v3 st;
    socklen_t sl = sizeof st;
    getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl);
    printf("stats: len %u packets %u drops %u\n", sl, st.tp_packets, st.tp_drops);
    printf("done\n");
    return 0;
}

/* one discover out, then what the socket's filter lets through within 2 s */
static void through(const char *what, int fd, const struct sockaddr_ll *to)
{
    unsigned char pkt[512], buf[1024], ctl[256];
    size_t n = discover(pkt);
    sendto(fd, pkt, n, 0, (const struct sockaddr *)to, sizeof *to);
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, 2000) != 1) {
        printf("%s: nothing\n", what);
        return;
    }
    struct iovec iov = { buf, sizeof buf };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    long got = recvmsg(fd, &m, MSG_TRUNC);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    struct tpacket_auxdata aux = { 0 };
    if (c && c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA)
        memcpy(&aux, CMSG_DATA(c), sizeof aux);
    printf("%s: got %ld sport %u tp_len>240 %d tp_snaplen %u\n", what, got,
           got >= 22 ? (buf[20] << 8) | buf[21] : 0, aux.tp_len > 240, aux.tp_snaplen);
}

static int filters(void)
{
    int fd = packet_socket(SOCK_DGRAM, htons(ETH_P_IP)), one = 1;
    struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
                             .sll_ifindex = (int)if_nametoindex("eth0") };
    res("bind eth0", bind(fd, (struct sockaddr *)&a, sizeof a));
    res("auxdata", setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one));
    struct sockaddr_ll to = a;
    to.sll_halen = 6;
    memset(to.sll_addr, 0xff, 6);
    struct sock_filter none[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
    struct sock_filter port[] = {
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 20),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),       /* the port, set below */
        BPF_STMT(BPF_RET | BPF_K, 0xffff),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct sock_filter past[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 100000),       /* past the end: the program ends, 0 */
        BPF_STMT(BPF_RET | BPF_K, 0xffff),
    };
    res("detach with none", setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &one, sizeof one));
    through("no filter", fd, &to);
    res("attach drop", attach(fd, none, 1));
    through("drop all", fd, &to);
    res("attach keep 40", attach(fd, keep40, 1));
    through("keep 40", fd, &to);
    port[1].k = 68;
    res("attach port 68", attach(fd, port, 4));
    through("source port 68", fd, &to);
    port[1].k = 67;
    res("attach port 67", attach(fd, port, 4));
    through("source port 67", fd, &to);
    res("attach past the end", attach(fd, past, 2));
    through("load past the end", fd, &to);
    res("detach", setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &one, sizeof one));
    res("detach again", setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &one, sizeof one));
    through("detached", fd, &to);
    close(fd);
    printf("done\n");
    return 0;
}

/* every header the guest can reach set to nonsense, then sends and receives */
static int hostile(void)
{
    static const unsigned junk[] = { 0xffffffffu, 0x80000000u, 0x7fffffffu, 0xfff0u, 1, 0 };
    unsigned char dhcp[600];
    size_t dn = discover(dhcp);
    int ds = packet_socket(SOCK_DGRAM, htons(ETH_P_IP));
    for (int version = 0; version <= 2; version++) {
        int fd = packet_socket(SOCK_RAW, htons(ETH_P_ALL));
        struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                                 .sll_ifindex = (int)if_nametoindex("eth0") };
        bind(fd, (struct sockaddr *)&a, sizeof a);
        setint(fd, PACKET_VERSION, version);
        setint(fd, PACKET_LOSS, version == 1);
        setint(fd, PACKET_TX_HAS_OFF, version != 0);
        struct tpacket_req3 r = { PG, 2, 2048, 4, 1, 0, 0 };
        setopt(fd, PACKET_RX_RING, &r, sizeof r);
        r.tp_retire_blk_tov = 0;
        setopt(fd, PACKET_TX_RING, &r, sizeof r);
        unsigned *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == (void *)MAP_FAILED) {
            res("mmap", -1);
            continue;
        }
        for (int round = 0; round < 12; round++) {
            for (size_t i = 0; i < 4 * PG / 4; i++)
                m[i] = junk[(i + round) % 6];
            for (int fr = 0; fr < 4; fr++)      /* every TX frame asks to be sent */
                *(unsigned *)((char *)m + 2 * PG + fr * 2048 + (version == 2 ? 20 : 0)) = TP_STATUS_SEND_REQUEST;
            struct sockaddr_ll to = a;
            to.sll_halen = 6;
            memset(to.sll_addr, 0xff, 6);
            sendto(fd, NULL, 0, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to);
            send(fd, "junk", 4, 0);
            /* a good discover from another socket: the offer lands in the junk */
            sendto(ds, dhcp, dn, 0, (struct sockaddr *)&to, sizeof to);
            usleep(30000);
            struct pollfd p = { fd, POLLIN, 0 };
            poll(&p, 1, 0);
            char buf[64];
            recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            struct tpacket_stats_v3 st;
            socklen_t sl = sizeof st;
            getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl);
        }
        munmap(m, 4 * PG);
        close(fd);
        printf("hostile v%d: survived\n", version + 1);
    }
    printf("done\n");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 3 && !strcmp(argv[1], "rx"))
        return rx(atoi(argv[2]), argc > 3 && !strcmp(argv[3], "cut"));
    if (argc >= 2 && !strcmp(argv[1], "filter"))
        return filters();
    if (argc >= 2 && !strcmp(argv[1], "hostile"))
        return hostile();
    options();
    v1v2_requests(TPACKET_V1);
    v1v2_requests(TPACKET_V2);
    v3_requests();
    tx_lo();
    printf("done\n");
    return 0;
}
