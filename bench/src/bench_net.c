/* TCP and UDP over the guest's own loopback, between two processes:
   1-byte TCP round trip, TCP bulk throughput, 1-byte UDP round trip and
   connect+accept+close per second.  Brings lo up first (UML boots with it
   down).  Prints `tcp_rt_us N`, `tcp_bulk_MBps N`, `udp_rt_us N`,
   `tcp_conn_per_s N`. */
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void lo_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    close(s);
}

static int listener(struct sockaddr_in *a)
{
    socklen_t len = sizeof *a;
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)a, sizeof *a) || listen(l, 128)) {
        perror("bind/listen");
        exit(1);
    }
    getsockname(l, (struct sockaddr *)a, &len);
    return l;
}

static int dial(struct sockaddr_in *a)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)a, sizeof *a)) {
        perror("connect");
        exit(1);
    }
    return c;
}

static void full(int fd, char *buf, size_t n)
{
    while (n) {
        ssize_t r = read(fd, buf, n);
        if (r <= 0)
            exit(1);
        buf += r;
        n -= r;
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    char c = 'x';
    struct sockaddr_in a;
    lo_up();

    /* 1-byte TCP round trip */
    int l = listener(&a), one = 1;
    pid_t p = fork();
    if (p == 0) {
        int s = accept(l, NULL, NULL);
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        for (long i = 0; i < n; i++) {
            full(s, &c, 1);
            write(s, &c, 1);
        }
        _exit(0);
    }
    int s = dial(&a);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double t0 = now();
    for (long i = 0; i < n; i++) {
        write(s, &c, 1);
        full(s, &c, 1);
    }
    double t1 = now();
    waitpid(p, NULL, 0);
    close(s);
    printf("tcp_rt_us %.2f\n", (t1 - t0) * 1e6 / n);

    /* bulk: 256 MiB in 64 KiB writes */
    long total = 256L << 20, chunk = 65536;
    char *buf = calloc(1, chunk);
    p = fork();
    if (p == 0) {
        int r = accept(l, NULL, NULL);
        long got = 0;
        ssize_t k;
        while ((k = read(r, buf, chunk)) > 0)
            got += k;
        write(r, &c, 1);
        _exit(got == total ? 0 : 1);
    }
    s = dial(&a);
    t0 = now();
    for (long done = 0; done < total; done += chunk)
        if (write(s, buf, chunk) != chunk)
            full(s, buf, 0);
    shutdown(s, SHUT_WR);
    full(s, &c, 1);
    t1 = now();
    waitpid(p, NULL, 0);
    close(s);
    printf("tcp_bulk_MBps %.1f\n", total / (t1 - t0) / 1e6);

    /* connect + accept + close */
    long m = n / 5;
    p = fork();
    if (p == 0) {
        for (long i = 0; i < m; i++)
            close(accept(l, NULL, NULL));
        _exit(0);
    }
    t0 = now();
    for (long i = 0; i < m; i++) {
        s = dial(&a);
        full(s, &c, 0);
        close(s);
    }
    waitpid(p, NULL, 0);
    t1 = now();
    printf("tcp_conn_per_s %.0f\n", m / (t1 - t0));
    close(l);

    /* 1-byte UDP round trip */
    int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in b;
    socklen_t len = sizeof b;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(u1, (struct sockaddr *)&a, sizeof a);
    bind(u2, (struct sockaddr *)&a, sizeof a);
    getsockname(u1, (struct sockaddr *)&a, &len);
    len = sizeof b;
    getsockname(u2, (struct sockaddr *)&b, &len);
    connect(u1, (struct sockaddr *)&b, sizeof b);
    connect(u2, (struct sockaddr *)&a, sizeof a);
    p = fork();
    if (p == 0) {
        for (long i = 0; i < n; i++) {
            recv(u2, &c, 1, 0);
            send(u2, &c, 1, 0);
        }
        _exit(0);
    }
    t0 = now();
    for (long i = 0; i < n; i++) {
        send(u1, &c, 1, 0);
        recv(u1, &c, 1, 0);
    }
    t1 = now();
    waitpid(p, NULL, 0);
    printf("udp_rt_us %.2f\n", (t1 - t0) * 1e6 / n);
    return 0;
}
