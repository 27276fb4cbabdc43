/* What a call that finds the fd table full leaves behind: nothing.
 * Linux takes the descriptor first (get_unused_fd_flags), so at EMFILE an
 * open neither creates nor truncates and looks nothing up, accept leaves
 * the connection queued, pipe and socketpair leave no descriptor; the
 * calls that make their file first (socket, epoll, eventfd...) let it go.
 * `t_emfile DIR` works in DIR; the guest runs it on its tmpfs. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "results.h"

enum { LIMIT = 48 };
static int fill[LIMIT];
static int nfill;

/* every descriptor below the limit taken: returns the last one taken */
static int fill_table(void)
{
    nfill = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) {
            if (errno != EMFILE)
                printf("fill: %s\n", en(errno));
            break;
        }
        fill[nfill++] = fd;
    }
    return nfill ? fill[nfill - 1] : -1;
}

static void drain_table(void)
{
    while (nfill)
        close(fill[--nfill]);
}

static void show(const char *what, long r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: ok\n", what);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[512], sub[512], tr[512], sock[512];
    snprintf(path, sizeof path, "%s/emfile_new", dir);
    snprintf(sub, sizeof sub, "%s/emfile_missing/x", dir);
    snprintf(tr, sizeof tr, "%s/emfile_trunc", dir);
    snprintf(sock, sizeof sock, "%s/emfile_sock", dir);
    unlink(path);
    unlink(sock);
    int fd = open(tr, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0 || write(fd, "0123456789", 10) != 10)
        return 1;
    close(fd);

    /* a listening unix socket and a TCP one, each with a connection queued */
    int ul = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un ua = { .sun_family = AF_UNIX };
    strncpy(ua.sun_path, sock, sizeof ua.sun_path - 1);
    if (bind(ul, (struct sockaddr *)&ua, sizeof ua) || listen(ul, 4))
        return 1;
    int uc = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(uc, (struct sockaddr *)&ua, sizeof ua) || write(uc, "u!", 2) != 2)
        return 1;
    int tl = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in ta = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t tlen = sizeof ta;
    if (bind(tl, (struct sockaddr *)&ta, sizeof ta) || listen(tl, 4) ||
        getsockname(tl, (struct sockaddr *)&ta, &tlen))
        return 1;
    int tc = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(tc, (struct sockaddr *)&ta, sizeof ta) || write(tc, "t!", 2) != 2)
        return 1;
    /* a descriptor in flight over a unix pair */
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sp))
        return 1;
    {
        int passed = open("/dev/null", O_RDONLY);
        char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
        struct iovec iov = { "x", 1 };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &passed, sizeof(int));
        if (sendmsg(sp[0], &m, 0) != 1)
            return 1;
        close(passed);
    }

    struct rlimit rl = { LIMIT, LIMIT };
    if (setrlimit(RLIMIT_NOFILE, &rl))
        return 1;
    int last = fill_table();

    show("open O_CREAT|O_EXCL", open(path, O_CREAT | O_EXCL | O_WRONLY, 0600));
    printf("  created: %s\n", access(path, F_OK) == 0 ? "yes" : "no");
    show("open O_CREAT in a missing directory", open(sub, O_CREAT | O_WRONLY, 0600));
    show("open of a missing name", open(path, O_RDONLY));
    show("open O_TRUNC", open(tr, O_WRONLY | O_TRUNC));
    struct stat st;
    stat(tr, &st);
    printf("  size after: %lld\n", (long long)st.st_size);
    show("open O_PATH", open(dir, O_PATH));
    show("creat", creat(path, 0600));
    printf("  created: %s\n", access(path, F_OK) == 0 ? "yes" : "no");
    show("accept (unix)", accept(ul, NULL, NULL));
    show("accept4 (tcp)", accept4(tl, NULL, NULL, SOCK_CLOEXEC));
    int pfd[2] = { -1, -1 };
    show("pipe", pipe(pfd));
    show("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, pfd));
    show("socket", socket(AF_INET, SOCK_DGRAM, 0));
    show("epoll_create1", epoll_create1(0));
    show("eventfd", eventfd(0, 0));
    show("memfd_create", memfd_create("x", 0));
    show("inotify_init1", inotify_init1(0));
    show("timerfd_create", timerfd_create(CLOCK_MONOTONIC, 0));
    sigset_t ss;
    sigemptyset(&ss);
    show("signalfd", signalfd(-1, &ss, 0));
    show("dup", dup(0));
    show("fcntl F_DUPFD", fcntl(0, F_DUPFD, 0));
    {
        char b[4], cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { b, sizeof b };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
        long n = recvmsg(sp[1], &m, 0);
        printf("recvmsg SCM_RIGHTS: %ld, MSG_CTRUNC %s, fds %s\n", n, m.msg_flags & MSG_CTRUNC ? "set" : "clear",
               m.msg_controllen && CMSG_FIRSTHDR(&m) ? "passed" : "none");
    }

    /* one descriptor free: pipe and socketpair still fail and leave it free */
    close(last);
    nfill--;
    show("pipe with one free", pipe(pfd));
    show("socketpair with one free", socketpair(AF_UNIX, SOCK_STREAM, 0, pfd));
    int again = open("/dev/null", O_RDONLY);
    printf("the free one taken next: %s\n", again == last ? "yes" : "no");
    close(again);

    /* the queued connections are still there once there is room */
    char b[4] = { 0 };
    int a = accept(ul, NULL, NULL);
    printf("accept (unix) with room: %s, reads %ld\n", a >= 0 ? "ok" : en(errno), a >= 0 ? (long)read(a, b, 2) : -1L);
    close(a);
    a = accept(tl, NULL, NULL);
    printf("accept (tcp) with room: %s, reads %ld\n", a >= 0 ? "ok" : en(errno), a >= 0 ? (long)read(a, b, 2) : -1L);
    close(a);
    drain_table();
    unlink(tr);
    unlink(sock);
    unlink(path);
    printf("done\n");
    return 0;
}
