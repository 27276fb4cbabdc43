/* Classic BPF socket filters (SO_ATTACH_FILTER): the checks a program
   passes (lengths, jumps, scratch memory, division by zero, shifts,
   ancillary offsets), and filters run on unix datagrams (keep, drop,
   truncate), UDP over loopback (the payload after the 8-byte header, the
   packet's protocol) and netlink (the kernel's own answers are filtered
   too); SO_DETACH_FILTER.  And a NETLINK_KOBJECT_UEVENT socket, as udev
   and systemd's device monitors open one. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "results.h"

#ifndef SKF_AD_PROTOCOL
#define SKF_AD_PROTOCOL 0
#endif

static void said(const char *what, long r)
{
    printf("%s: %s\n", what, r >= 0 ? "ok" : en(errno));
}

static int attach(int fd, struct sock_filter *f, unsigned short n)
{
    struct sock_fprog p = {.len = n, .filter = f};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &p, sizeof(p));
}

static void recv_all(const char *what, int fd)
{
    char buf[256];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0)
        printf("%s: got %zd \"%.*s\"\n", what, n, (int)n, buf);
    printf("%s: then %s\n", what, en(errno));
}

static void checks(int fd)
{
    struct sock_filter ok[] = {BPF_STMT(BPF_RET | BPF_K, 0xffff)};
    said("len 0", attach(fd, ok, 0));
    said("len 4097", attach(fd, ok, 4097));
    struct sock_fprog nullp = {.len = 1, .filter = NULL};
    said("null program", setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &nullp, sizeof(nullp)));
    struct sock_fprog bad = {.len = 1, .filter = (struct sock_filter *)8};
    said("bad address", setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &bad, sizeof(bad)));
    said("short optlen", setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &bad, 4));
    struct sock_filter jump_out[] = {BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 5, 0), BPF_STMT(BPF_RET | BPF_K, 0)};
    said("jump out", attach(fd, jump_out, 2));
    struct sock_filter no_ret[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0)};
    said("no ret", attach(fd, no_ret, 1));
    struct sock_filter div0[] = {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), BPF_STMT(BPF_RET | BPF_A, 0)};
    said("div by 0", attach(fd, div0, 2));
    struct sock_filter mod0[] = {BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, 0), BPF_STMT(BPF_RET | BPF_A, 0)};
    said("mod by 0", attach(fd, mod0, 2));
    struct sock_filter shift[] = {BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 32), BPF_STMT(BPF_RET | BPF_A, 0)};
    said("shift 32", attach(fd, shift, 2));
    struct sock_filter mem[] = {BPF_STMT(BPF_LD | BPF_MEM, 3), BPF_STMT(BPF_RET | BPF_A, 0)};
    said("scratch read before store", attach(fd, mem, 2));
    struct sock_filter mem16[] = {BPF_STMT(BPF_ST, 16), BPF_STMT(BPF_RET | BPF_A, 0)};
    said("scratch 16", attach(fd, mem16, 2));
    struct sock_filter anc[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + 64), BPF_STMT(BPF_RET | BPF_A, 0)};
    said("ancillary 64", attach(fd, anc, 2));
    struct sock_filter badop[] = {{0x07 | 0xf0, 0, 0, 0}, BPF_STMT(BPF_RET | BPF_A, 0)};
    said("unknown opcode", attach(fd, badop, 2));
    int zero = 0;
    said("detach none", setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof(zero)));
    said("attach", attach(fd, ok, 1));
    said("detach", setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof(zero)));
    said("detach again", setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof(zero)));
}

static void unix_dgrams(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    checks(sv[1]);
    /* keep datagrams starting with 'A' whole, cut those starting with 'T'
       to 2 bytes, drop the rest; X-relative loads and the scratch memory */
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
        BPF_STMT(BPF_ST, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 'A', 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xffff),
        BPF_STMT(BPF_LD | BPF_MEM, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 'T', 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 2),
        BPF_STMT(BPF_LDX | BPF_IMM, 1),
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ('h' << 8) | 'i', 0, 1),
        BPF_STMT(BPF_RET | BPF_A, 0),
        BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 4, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 3),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    said("unix attach", attach(sv[1], f, sizeof(f) / sizeof(f[0])));
    const char *msgs[] = {"Apple", "Banana", "Tomato", "xhi-there", "Zz", "Qwertyuiop", "A"};
    for (int i = 0; i < 7; i++)
        send(sv[0], msgs[i], strlen(msgs[i]), 0);
    recv_all("unix", sv[1]);
    /* a load past the end drops */
    struct sock_filter past[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 100), BPF_STMT(BPF_RET | BPF_K, 0xffff)};
    attach(sv[1], past, 2);
    send(sv[0], "short", 5, 0);
    recv_all("unix past the end", sv[1]);
    /* a stream socket is never filtered */
    int st[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, st);
    struct sock_filter none[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
    said("stream attach", attach(st[1], none, 1));
    send(st[0], "stream", 6, 0);
    recv_all("unix stream", st[1]);
    close(sv[0]);
    close(sv[1]);
    close(st[0]);
    close(st[1]);
}

static void udp(void)
{
    int r = socket(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(r, (struct sockaddr *)&a, sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(r, (struct sockaddr *)&a, &len);
    /* the filter sees the UDP header first: the payload's first byte is at 8 */
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0800, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, 0),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 8),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 'A', 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xffff),
        BPF_STMT(BPF_RET | BPF_K, 11),
    };
    said("udp attach", attach(r, f, sizeof(f) / sizeof(f[0])));
    const char *msgs[] = {"Alpha", "Bravo-long-message"};
    for (int i = 0; i < 2; i++)
        sendto(s, msgs[i], strlen(msgs[i]), 0, (struct sockaddr *)&a, sizeof(a));
    usleep(20000);
    recv_all("udp", r);
    close(r);
    close(s);
}

/* one RTM_GETLINK of lo (no dump: one answer, whatever the kernel's version) */
static const char *getlink(int fd, int seq)
{
    struct {
        struct nlmsghdr h;
        struct ifinfomsg i;
    } req = {.h = {.nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST,
                   .nlmsg_seq = seq},
             .i = {.ifi_family = AF_UNSPEC, .ifi_index = 1}};
    static char out[64];
    char buf[8192];
    send(fd, &req, sizeof(req), 0);
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0)
        return en(errno);
    snprintf(out, sizeof(out), "type %d", ((struct nlmsghdr *)buf)->nlmsg_type);
    return out;
}

static void netlink(void)
{
    /* the kernel's answers are filtered too */
    int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    struct sock_filter drop[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
    said("netlink attach", attach(fd, drop, 1));
    printf("netlink dropped: %s\n", getlink(fd, 1));
    /* keep only RTM_NEWLINK (the type's low byte, little-endian, at 4) */
    struct sock_filter newlink[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RTM_NEWLINK, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xffff),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    said("netlink attach 2", attach(fd, newlink, 4));
    printf("netlink kept: %s\n", getlink(fd, 2));
    close(fd);
}

static void uevent(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
    said("uevent socket", fd);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1};
    said("uevent bind group 1", bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
    struct sock_filter keep[] = {BPF_STMT(BPF_RET | BPF_K, 0xffffffff)};
    said("uevent attach", attach(fd, keep, 1));
    int one = 1;
    said("uevent passcred", setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)));
    char buf[64];
    printf("uevent recv: %s\n", recv(fd, buf, sizeof(buf), 0) >= 0 ? "got one" : en(errno));
    close(fd);
    said("netlink protocol 31", socket(AF_NETLINK, SOCK_RAW, 31));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    unix_dgrams();
    udp();
    netlink();
    uevent();
    printf("done\n");
    return 0;
}
