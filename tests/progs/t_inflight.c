/* Files in flight through AF_UNIX sockets (SCM_RIGHTS): at most
   SCM_MAX_FD (253) in one message (EINVAL past it), and what an
   unprivileged user has in flight bounded by its RLIMIT_NOFILE: a send
   that finds the user past it is ETOOMANYREFS (too_many_unix_fds), until
   a receive or a close takes some out of flight.  "t_inflight cycles N":
   N socket pairs each sent through itself and closed, which nothing can
   ever receive: the garbage collector frees them (/proc/net/unix). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "results.h"

static long send_fds(int s, int fd, int n)
{
    char buf[CMSG_SPACE(sizeof(int) * 300)];
    int fds[300];
    for (int i = 0; i < n; i++)
        fds[i] = fd;
    struct iovec iov = {"x", 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    return sendmsg(s, &m, MSG_DONTWAIT);
}

static int recv_fds(int s)
{
    char buf[CMSG_SPACE(sizeof(int) * 300)], byte;
    struct iovec iov = {&byte, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf};
    if (recvmsg(s, &m, MSG_DONTWAIT) < 0)
        return -1;
    int got = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        for (unsigned i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++, got++)
            close(((int *)CMSG_DATA(c))[i]);
    return got;
}

static int unix_sockets(void)
{
    FILE *f = fopen("/proc/net/unix", "r");
    char line[512];
    int n = -1;     /* the header */
    while (f && fgets(line, sizeof line, f))
        n++;
    if (f)
        fclose(f);
    return n;
}

static int cycles(long n)
{
    int before = unix_sockets(), sv[2];
    long i;
    for (i = 0; i < n; i++) {
        if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) || send_fds(sv[0], sv[1], 1) < 0 || send_fds(sv[1], sv[0], 1) < 0)
            break;
        close(sv[0]);
        close(sv[1]);
    }
    printf("cycles made: %ld of %ld\n", i, n);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);   /* a release runs the collector */
    close(sv[0]);
    close(sv[1]);
    printf("unix sockets left: %d\n", unix_sockets() - before);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && !strcmp(argv[1], "cycles"))
        return cycles(atol(argv[2]));
    int null = open("/dev/null", O_RDONLY);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    res("254 fds in one message", send_fds(sv[0], null, 254));
    res("253 fds", send_fds(sv[0], null, 253));
    printf("received %d\n", recv_fds(sv[1]));
    /* an unprivileged user (nobody, when run as root) with 64 files */
    if (geteuid() == 0 && (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)))
        printf("dropping privileges: %s\n", en(errno));
    struct rlimit rl = {64, 64};
    res("RLIMIT_NOFILE 64", setrlimit(RLIMIT_NOFILE, &rl));
    for (int i = 1; i <= 5; i++) {
        char what[40];
        snprintf(what, sizeof what, "send %d of 20", i);
        res(what, send_fds(sv[0], null, 20));
    }
    printf("received %d\n", recv_fds(sv[1]));
    res("send after a receive", send_fds(sv[0], null, 20));
    res("and another", send_fds(sv[0], null, 20));
    close(sv[0]);
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    res("after the close took them out of flight", send_fds(sv[0], null, 60));
    res("datagram past the limit", send_fds(sv[0], null, 10));
    printf("received %d\n", recv_fds(sv[1]));
    res("then", send_fds(sv[0], null, 10));
    printf("done\n");
    return 0;
}
