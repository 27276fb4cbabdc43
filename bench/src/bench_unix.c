/* AF_UNIX stream round trip between two processes (1 byte), and an
   epoll_wait wake-up by a write from another process.  Prints
   `unix_rt_us N` and `epoll_wake_us N`. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
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

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    int sv[2];
    char c = 'x';
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t p = fork();
    if (p == 0) {
        for (long i = 0; i < n; i++) {
            read(sv[1], &c, 1);
            write(sv[1], &c, 1);
        }
        _exit(0);
    }
    double t0 = now();
    for (long i = 0; i < n; i++) {
        write(sv[0], &c, 1);
        read(sv[0], &c, 1);
    }
    double t1 = now();
    waitpid(p, NULL, 0);
    printf("unix_rt_us %.2f\n", (t1 - t0) * 1e6 / n);

    int a[2], b[2];
    pipe(a);
    pipe(b);
    p = fork();
    if (p == 0) {
        for (long i = 0; i < n; i++) {
            read(b[0], &c, 1);
            write(a[1], &c, 1);
        }
        _exit(0);
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ev);
    t0 = now();
    for (long i = 0; i < n; i++) {
        write(b[1], &c, 1);
        epoll_wait(ep, &out, 1, -1);
        read(a[0], &c, 1);
    }
    t1 = now();
    waitpid(p, NULL, 0);
    printf("epoll_wake_us %.2f\n", (t1 - t0) * 1e6 / n);
    return 0;
}
