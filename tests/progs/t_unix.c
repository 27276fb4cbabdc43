/* AF_UNIX sockets: stream, seqpacket and datagram semantics, addresses,
   fd and credential passing, shutdown and errors.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static socklen_t mkaddr(struct sockaddr_un *a, const char *path, int abstract)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (abstract) {
        strcpy(a->sun_path + 1, path);
        return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path);
    }
    strcpy(a->sun_path, path);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static void send_fd(int s, int fd)
{
    char c = 'F';
    struct iovec iov = {&c, 1};
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    sendmsg(s, &m, 0);
}

static int recv_fd(int s)
{
    char c;
    struct iovec iov = {&c, 1};
    char ctl[CMSG_SPACE(sizeof(int))];
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    if (recvmsg(s, &m, 0) != 1)
        return -1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    if (!cm || cm->cmsg_type != SCM_RIGHTS)
        return -2;
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    return fd;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argc > 1 ? argv[1] : ".";
    char buf[256];
    int sv[2];

    /* stream pair */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[0], "hello", 5);
    write(sv[0], "world", 5);
    ssize_t n = recv(sv[1], buf, sizeof buf, MSG_PEEK);
    printf("stream peek: %zd\n", n);
    n = read(sv[1], buf, sizeof buf);
    printf("stream read: %zd %.*s\n", n, (int)n, buf);
    n = recv(sv[1], buf, sizeof buf, MSG_DONTWAIT);
    printf("stream empty nonblock: %zd %s\n", n, en(n));
    shutdown(sv[0], SHUT_WR);
    printf("after peer SHUT_WR: %zd\n", read(sv[1], buf, sizeof buf));
    int type;
    socklen_t tl = sizeof type;
    getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &tl);
    printf("SO_TYPE stream: %d\n", type == SOCK_STREAM);
    struct ucred cr;
    socklen_t cl = sizeof cr;
    getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &cl);
    printf("SO_PEERCRED pid==self: %d uid=%u\n", cr.pid == getpid(), cr.uid);
    close(sv[1]);
    n = send(sv[0], "x", 1, MSG_NOSIGNAL);
    printf("send to closed peer: %zd %s\n", n, en(n));
    close(sv[0]);

    /* a blocking read woken by a later write; MSG_WAITALL gathers all of it */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t w = fork();
    if (w == 0) {
        usleep(20000);
        write(sv[1], "la", 2);
        usleep(20000);
        write(sv[1], "te", 2);
        _exit(0);
    }
    n = recv(sv[0], buf, 4, MSG_WAITALL);
    printf("blocking recv MSG_WAITALL: %zd %.4s\n", n, buf);
    waitpid(w, NULL, 0);
    close(sv[0]);
    close(sv[1]);

    /* seqpacket boundaries */
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
    send(sv[0], "abc", 3, 0);
    send(sv[0], "defgh", 5, 0);
    n = recv(sv[1], buf, sizeof buf, 0);
    printf("seqpacket 1: %zd\n", n);
    struct iovec iov = {buf, 2};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    n = recvmsg(sv[1], &m, 0);
    printf("seqpacket 2 into 2 bytes: %zd trunc=%d\n", n, !!(m.msg_flags & MSG_TRUNC));
    close(sv[0]);
    printf("seqpacket EOF: %zd\n", recv(sv[1], buf, sizeof buf, 0));
    close(sv[1]);

    /* datagrams on filesystem names */
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/dg1", dir);
    snprintf(p2, sizeof p2, "%s/dg2", dir);
    unlink(p1);
    unlink(p2);
    int d1 = socket(AF_UNIX, SOCK_DGRAM, 0), d2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a1, a2, from;
    socklen_t l1 = mkaddr(&a1, p1, 0), l2 = mkaddr(&a2, p2, 0);
    printf("bind dgram: %d %d\n", bind(d1, (void *)&a1, l1), bind(d2, (void *)&a2, l2));
    int r = bind(d1, (void *)&a2, l2);
    printf("bind again: %d %s\n", r, en(r));
    int d3 = socket(AF_UNIX, SOCK_DGRAM, 0);
    r = bind(d3, (void *)&a1, l1);
    printf("bind taken path: %d %s\n", r, en(r));
    sendto(d1, "one", 3, 0, (void *)&a2, l2);
    sendto(d1, "two", 3, 0, (void *)&a2, l2);
    socklen_t fl = sizeof from;
    n = recvfrom(d2, buf, sizeof buf, 0, (void *)&from, &fl);
    printf("dgram: %zd %.3s from ours=%d\n", n, buf, strcmp(from.sun_path, p1) == 0);
    n = recvfrom(d2, buf, 1, MSG_TRUNC, NULL, NULL);
    printf("dgram MSG_TRUNC returns full length: %zd\n", n);
    close(d1); close(d2); close(d3);
    unlink(p1);
    int d4 = socket(AF_UNIX, SOCK_DGRAM, 0);
    r = sendto(d4, "x", 1, 0, (void *)&a1, l1);
    printf("send to missing path: %d %s\n", r, en(r));
    close(d4);
    unlink(p2);

    /* abstract stream server, client in a child; fd passing */
    struct sockaddr_un sa;
    socklen_t sl = mkaddr(&sa, "umlpy-test", 1);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    int rb = bind(ls, (void *)&sa, sl);
    printf("bind abstract: %d listen: %d\n", rb, listen(ls, 4));
    int pp[2];
    pipe(pp);
    pid_t c = fork();
    if (c == 0) {
        int cs = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(cs, (void *)&sa, sl) < 0)
            _exit(1);
        int wfd = recv_fd(cs);
        write(wfd, "via passed fd", 13);
        _exit(wfd >= 0 ? 0 : 2);
    }
    int as = accept(ls, NULL, NULL);
    struct sockaddr_un peer;
    socklen_t pl = sizeof peer;
    getpeername(as, (void *)&peer, &pl);
    printf("accepted, peer unnamed: %d\n", pl == sizeof(sa_family_t));
    getsockopt(as, SOL_SOCKET, SO_PEERCRED, &cr, &cl);
    printf("peer cred is the child: %d\n", cr.pid == c);
    send_fd(as, pp[1]);
    close(pp[1]);
    int st;
    waitpid(c, &st, 0);
    n = read(pp[0], buf, sizeof buf);
    printf("child exit %d, pipe got: %.*s\n", WEXITSTATUS(st), (int)n, buf);
    close(as); close(ls); close(pp[0]);
    int cs = socket(AF_UNIX, SOCK_STREAM, 0);
    r = connect(cs, (void *)&sa, sl);
    printf("connect after server closed: %d %s\n", r, en(r));
    close(cs);

    /* a bound client that closes before accept: accept and getpeername
       still name it (the peer's address outlives the peer) */
    ls = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(ls, (void *)&sa, sl);
    listen(ls, 4);
    struct sockaddr_un ca;
    socklen_t cal = mkaddr(&ca, "umlpy-client", 1);
    cs = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(cs, (void *)&ca, cal);
    connect(cs, (void *)&sa, sl);
    write(cs, "bye", 3);
    close(cs);
    pl = sizeof peer;
    memset(&peer, 0, sizeof peer);
    as = accept(ls, (void *)&peer, &pl);
    printf("accept after client closed: %d name ok=%d\n", as >= 0,
           pl == cal && memcmp(peer.sun_path, ca.sun_path, cal - sizeof(sa_family_t)) == 0);
    pl = sizeof peer;
    memset(&peer, 0, sizeof peer);
    r = getpeername(as, (void *)&peer, &pl);
    printf("getpeername of closed peer: %d %s len ok=%d\n", r, en(r), pl == cal);
    n = read(as, buf, sizeof buf);
    printf("read queued: %zd then %zd\n", n, read(as, buf, sizeof buf));
    n = send(as, "x", 1, MSG_NOSIGNAL);
    printf("write to closed peer: %zd %s\n", n, en(n));
    close(as); close(ls);

    /* credentials */
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    int on = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    send(sv[0], "c", 1, 0);
    char ctl[CMSG_SPACE(sizeof(struct ucred))];
    iov.iov_len = sizeof buf;
    struct msghdr cm = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    n = recvmsg(sv[1], &cm, 0);
    struct cmsghdr *h = CMSG_FIRSTHDR(&cm);
    struct ucred got;
    memcpy(&got, CMSG_DATA(h), sizeof got);
    printf("SCM_CREDENTIALS: type=%d pid==self=%d uid=%u\n", h->cmsg_type == SCM_CREDENTIALS,
           got.pid == getpid(), got.uid);

    /* a stream read glues bytes across sends through the one carrying
       files, and stops after it */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[0], "ab", 2);
    send_fd(sv[0], 1);
    write(sv[0], "cd", 2);
    send_fd(sv[0], 2);
    send_fd(sv[0], 0);
    for (int round = 0; round < 4; round++) {
        char ctl2[CMSG_SPACE(4 * sizeof(int))];
        char got[16] = "";
        struct iovec gv = {got, sizeof got - 1};
        struct msghdr gm = {.msg_iov = &gv, .msg_iovlen = 1, .msg_control = ctl2, .msg_controllen = sizeof ctl2};
        ssize_t k = recvmsg(sv[1], &gm, MSG_DONTWAIT | (round == 0 ? MSG_PEEK : 0));
        int nfds = 0;
        for (struct cmsghdr *h2 = CMSG_FIRSTHDR(&gm); h2; h2 = CMSG_NXTHDR(&gm, h2))
            if (h2->cmsg_type == SCM_RIGHTS)
                nfds += (h2->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        printf("glued read %d%s: %zd bytes \"%.*s\", %d fds\n", round, round == 0 ? " (peek)" : "",
               k, (int)(k > 0 ? k : 0), got, nfds);
    }
    close(sv[0]);
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    send_fd(sv[0], 1);
    {
        char ctl3[CMSG_SPACE(sizeof(int))], c3;
        struct iovec v3 = {&c3, 1};
        struct msghdr pm = {.msg_iov = &v3, .msg_iovlen = 1, .msg_control = ctl3, .msg_controllen = sizeof ctl3};
        ssize_t k = recvmsg(sv[1], &pm, MSG_PEEK);
        struct cmsghdr *h3 = CMSG_FIRSTHDR(&pm);
        printf("datagram peek: %zd byte, fd passed %d; then received %d\n", k,
               h3 != NULL && h3->cmsg_type == SCM_RIGHTS, recv_fd(sv[1]) >= 0);
    }
    close(sv[0]);
    close(sv[1]);

    /* recvmsg on a stream names the sending socket: the accepted socket
       has the listener's path, an unbound client none */
    char spath[200];
    snprintf(spath, sizeof spath, "%s/named.sock", dir);
    unlink(spath);
    struct sockaddr_un na, nfrom;
    socklen_t nl = mkaddr(&na, spath, 0);
    int nls = socket(AF_UNIX, SOCK_STREAM, 0), nc = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(nls, (struct sockaddr *)&na, nl) || listen(nls, 1) || connect(nc, (struct sockaddr *)&na, nl))
        printf("named stream: %s\n", en(-1));
    int acc = accept(nls, NULL, NULL);
    write(acc, "s", 1);
    write(nc, "c", 1);
    for (int side = 0; side < 2; side++) {
        memset(&nfrom, 0, sizeof nfrom);
        iov.iov_len = sizeof buf;
        struct msghdr nm = {.msg_name = &nfrom, .msg_namelen = sizeof nfrom, .msg_iov = &iov, .msg_iovlen = 1};
        n = recvmsg(side ? acc : nc, &nm, 0);
        printf("stream recvmsg from the %s: %zd bytes, namelen %s, path is the listener's %d\n",
               side ? "unbound client" : "accepted socket", n,
               nm.msg_namelen == 0 ? "0" : nm.msg_namelen == nl ? "full" : "other",
               strcmp(nfrom.sun_path, spath) == 0);
    }
    close(nc);
    memset(&nfrom, 0, sizeof nfrom);
    struct msghdr em = {.msg_name = &nfrom, .msg_namelen = sizeof nfrom, .msg_iov = &iov, .msg_iovlen = 1};
    printf("at the end of the stream: %zd, namelen %u\n", recvmsg(acc, &em, 0), em.msg_namelen);
    close(acc);
    close(nls);
    unlink(spath);
    /* a read(2) whose copy faults: a stream keeps its bytes, a datagram is gone */
    for (int dg = 0; dg < 2; dg++) {
        int fp[2];
        char got[8];
        char *volatile bad = (char *)8;
        socketpair(AF_UNIX, dg ? SOCK_DGRAM : SOCK_STREAM, 0, fp);
        write(fp[0], "kept", 4);
        ssize_t k = read(fp[1], bad, 4);
        printf("%s read into a bad buffer: %zd %s", dg ? "dgram" : "stream", k, k < 0 ? strerrorname_np(errno) : "");
        k = recv(fp[1], got, sizeof got, MSG_DONTWAIT);
        printf(", then recv: %zd %s\n", k, k < 0 ? strerrorname_np(errno) : "");
        close(fp[0]);
        close(fp[1]);
    }
    /* a stream writer waiting for room with an edge-triggered epoll is
       told when its reader drains the socket (unix_write_space) */
    {
        int wp[2];
        static char chunk[5 << 20];
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, wp);
        int ep = epoll_create1(0);
        struct epoll_event ev = {.events = EPOLLOUT | EPOLLET, .data.u32 = 7};
        epoll_ctl(ep, EPOLL_CTL_ADD, wp[0], &ev);
        printf("writable at first: %d\n", epoll_wait(ep, &ev, 1, 0));
        ssize_t w, total = 0;
        while ((w = write(wp[0], chunk, sizeof chunk)) > 0)
            total += w;
        printf("full: %s, events then: %d\n", en(w), epoll_wait(ep, &ev, 1, 0));
        while ((w = read(wp[1], chunk, sizeof chunk)) > 0)
            total -= w;
        int k = epoll_wait(ep, &ev, 1, 1000);
        printf("drained: %d left, events %d out=%d\n", (int)total, k, k == 1 && (ev.events & EPOLLOUT));
        close(ep);
        close(wp[0]);
        close(wp[1]);
    }
    printf("done\n");
    return 0;
}
