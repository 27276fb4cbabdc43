/* epoll: level and edge triggering, ONESHOT, nesting, errors, timeouts,
   over pipes, eventfd and timerfd.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/random.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

static int ep;

static int wait0(int ms)
{
    struct epoll_event ev[8];
    int n = epoll_wait(ep, ev, 8, ms);
    return n;
}

static const char *en(int r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

/* Graphs of epolls, as Linux bounds them: a chain nests at most 4 deep
 * (ELOOP past it) and a file has a limited number of wakeup paths of each
 * length (EINVAL past them); layers of w epolls each watching every epoll
 * of the layer below, over one pipe. */
static void graphs(void)
{
    struct epoll_event ev = {.events = EPOLLIN};
    int chain[8], refused = 0;
    for (int i = 0; i < 8; i++) {
        chain[i] = epoll_create1(0);
        if (i && epoll_ctl(chain[i], EPOLL_CTL_ADD, chain[i - 1], &ev) < 0)
            printf("chain link %d: %s\n", i, strerrorname_np(errno));
    }
    static int layer[4][20];
    int p[2];
    pipe(p);
    for (int l = 0; l < 4; l++)
        for (int i = 0; i < 20; i++) {
            layer[l][i] = epoll_create1(0);
            if (l == 0)
                epoll_ctl(layer[l][i], EPOLL_CTL_ADD, p[0], &ev);
            for (int j = 0; l && j < 20; j++)
                if (epoll_ctl(layer[l][i], EPOLL_CTL_ADD, layer[l - 1][j], &ev) < 0)
                    refused += errno == EINVAL;
        }
    printf("4 layers of 20: %d links refused (EINVAL)\n", refused);
    write(p[1], "x", 1);
    struct epoll_event out;
    printf("the pipe wakes the first layer: %d, the last: %d\n", epoll_wait(layer[0][0], &out, 1, 0),
           epoll_wait(layer[3][19], &out, 1, 0));
    for (int l = 0; l < 4; l++)
        for (int i = 0; i < 20; i++)
            close(layer[l][i]);
    for (int i = 0; i < 8; i++)
        close(chain[i]);
    close(p[0]);
    close(p[1]);
}

/* more ready fds than maxevents: every one gets its turn */
static void fairness(void)
{
    enum { NREADY = 13, MAXEV = 3, ROUNDS = 4 };
    int p[NREADY][2], count[NREADY] = {0}, ep = epoll_create1(0);
    struct epoll_event ev, out[MAXEV];
    for (int i = 0; i < NREADY; i++) {
        pipe(p[i]);
        write(p[i][1], "x", 1);
        ev.events = EPOLLIN;
        ev.data.u32 = i;
        epoll_ctl(ep, EPOLL_CTL_ADD, p[i][0], &ev);
    }
    for (int w = 0; w < NREADY * ROUNDS / MAXEV + 1; w++) {
        int n = epoll_wait(ep, out, MAXEV, 0);
        for (int j = 0; j < n; j++)
            count[out[j].data.u32]++;
    }
    int lo = 1 << 30, hi = 0;
    for (int i = 0; i < NREADY; i++) {
        lo = count[i] < lo ? count[i] : lo;
        hi = count[i] > hi ? count[i] : hi;
        close(p[i][0]);
        close(p[i][1]);
    }
    printf("fairness: each reported %d to %d times\n", lo, hi);
    close(ep);
}

/* EPOLLEXCLUSIVE: one event wakes one of the waiting epoll instances */
static void exclusive(void)
{
    enum { NWAITERS = 4 };
    int p[2];
    int *woken = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pipe(p);
    for (int i = 0; i < NWAITERS; i++) {
        if (fork() == 0) {
            int ep = epoll_create1(0);
            struct epoll_event ev = {.events = EPOLLIN | EPOLLET | EPOLLEXCLUSIVE};
            epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
            if (epoll_wait(ep, &ev, 1, 3000) == 1)
                __atomic_add_fetch(woken, 1, __ATOMIC_SEQ_CST);
            _exit(0);
        }
    }
    usleep(1000000);
    write(p[1], "x", 1);
    usleep(500000);
    printf("exclusive: one event woke %d of %d waiters\n", __atomic_load_n(woken, __ATOMIC_SEQ_CST), NWAITERS);
    for (int i = 0; i < NWAITERS; i++)
        wait(NULL);
    close(p[0]);
    close(p[1]);
    munmap(woken, 4096);
}

/* what epoll_ctl refuses: files without a poll of their own */
static void unpollable(void)
{
    static const char *devs[] = {"/dev/null", "/dev/zero", "/dev/full"};
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    for (unsigned i = 0; i < sizeof devs / sizeof *devs; i++) {
        int fd = open(devs[i], O_RDWR);
        int r = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        printf("%s: %d %s\n", devs[i], r, en(r));
        close(fd);
    }
    int fd = open("/dev/urandom", O_RDONLY), cnt = -1;
    int r = ioctl(fd, RNDGETENTCNT, &cnt);
    printf("RNDGETENTCNT: %d, %s\n", r, cnt > 0 ? "positive" : "not positive");
    close(fd);
    close(ep);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argc > 1 ? argv[1] : ".";
    int p[2];
    pipe(p);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
    printf("add LT: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    int r = epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    printf("add again: %d %s\n", r, en(r));
    printf("empty pipe, timeout 30ms: %d\n", wait0(30));
    write(p[1], "x", 1);
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, -1);
    printf("LT ready: n=%d events=%#x data=%llu\n", n, out[0].events, (unsigned long long)out[0].data.u64);
    printf("LT still ready: %d\n", wait0(0));
    ev.events = EPOLLIN | EPOLLET;
    printf("mod ET: %d\n", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    printf("ET first: %d\n", wait0(0));
    printf("ET again, no new data: %d\n", wait0(0));
    write(p[1], "y", 1);
    printf("ET after more data: %d\n", wait0(0));
    ev.events = EPOLLIN | EPOLLONESHOT;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    printf("ONESHOT first: %d then: %d\n", wait0(0), wait0(0));
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    printf("ONESHOT rearmed: %d\n", wait0(0));
    printf("del: %d\n", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    r = epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL);
    printf("del again: %d %s\n", r, en(r));

    /* write end: EPOLLOUT; reader closed: EPOLLERR */
    struct epoll_event wev = {.events = EPOLLOUT, .data.u64 = 7};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &wev);
    n = epoll_wait(ep, out, 4, 0);
    printf("pipe writable: n=%d events=%#x\n", n, out[0].events);
    close(p[0]);
    n = epoll_wait(ep, out, 4, 0);
    printf("reader closed: n=%d events=%#x\n", n, out[0].events);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL);

    /* eventfd and timerfd */
    int efd = eventfd(0, 0);
    struct epoll_event eev = {.events = EPOLLIN, .data.u64 = 1};
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &eev);
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct epoll_event tev = {.events = EPOLLIN, .data.u64 = 2};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    struct itimerspec its = {{0, 0}, {0, 20000000}};
    timerfd_settime(tfd, 0, &its, NULL);
    n = epoll_wait(ep, out, 4, 1000);
    printf("timerfd woke epoll: n=%d data=%llu\n", n, (unsigned long long)out[0].data.u64);
    uint64_t one = 1;
    write(efd, &one, 8);
    uint64_t ticks;
    read(tfd, &ticks, 8);
    n = epoll_wait(ep, out, 4, 0);
    printf("eventfd ready: n=%d data=%llu\n", n, (unsigned long long)out[0].data.u64);

    /* nesting */
    int ep2 = epoll_create1(0);
    struct epoll_event nev = {.events = EPOLLIN, .data.u64 = 9};
    printf("nest: %d\n", epoll_ctl(ep2, EPOLL_CTL_ADD, ep, &nev));
    n = epoll_wait(ep2, out, 4, 0);
    printf("outer sees inner ready: n=%d data=%llu\n", n, (unsigned long long)out[0].data.u64);
    r = epoll_ctl(ep, EPOLL_CTL_ADD, ep2, &nev);
    printf("loop: %d %s\n", r, en(r));
    r = epoll_ctl(ep, EPOLL_CTL_ADD, ep, &nev);
    printf("self: %d %s\n", r, en(r));

    /* regular files are refused; closing an fd removes it */
    char path[4096];
    snprintf(path, sizeof path, "%s/epoll_reg", dir);
    int fd = open(path, O_CREAT | O_RDWR, 0600);
    r = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    printf("regular file: %d %s\n", r, en(r));
    close(fd);
    unlink(path);
    close(efd);
    read(tfd, &ticks, 0);
    n = epoll_wait(ep, out, 4, 0);
    printf("after closing eventfd: %d\n", n);
    graphs();
    fairness();
    exclusive();
    unpollable();
    /* edge-triggered on both ends of a one-slot pipe (LTP epoll_wait06):
       reading half the slot leaves the pipe full, so no new edge anywhere */
    {
        int pf[2];
        pipe2(pf, O_NONBLOCK);
        fcntl(pf[1], F_SETPIPE_SZ, 4096);
        int e = epoll_create1(0);
        struct epoll_event ee = {.events = EPOLLIN | EPOLLET, .data.fd = pf[0]};
        epoll_ctl(e, EPOLL_CTL_ADD, pf[0], &ee);
        ee.events = EPOLLOUT | EPOLLET;
        ee.data.fd = pf[1];
        epoll_ctl(e, EPOLL_CTL_ADD, pf[1], &ee);
        static char page[4096];
        ssize_t w1 = write(pf[1], page, sizeof page), w2 = write(pf[1], page, sizeof page);
        printf("ET pipe: write %zd then %zd\n", w1, w2);
        struct epoll_event got[4];
        int n = epoll_wait(e, got, 4, 0);
        printf("ET pipe: full: %d (read end %d events %#x)\n", n, got[0].data.fd == pf[0], got[0].events);
        read(pf[0], page, 2048);
        printf("ET pipe: half read: %d\n", epoll_wait(e, got, 4, 0));
        read(pf[0], page, 2048);
        n = epoll_wait(e, got, 4, 0);
        printf("ET pipe: emptied: %d (write end %d events %#x)\n", n, got[0].data.fd == pf[1], got[0].events);
        close(e); close(pf[0]); close(pf[1]);
    }
    /* a readable file watched by four epolls, then closed: every epoll
       drops it (none reports the dead file's readiness) */
    {
        int e4[4], ef = eventfd(1, 0);
        for (int i = 0; i < 4; i++) {
            e4[i] = epoll_create1(0);
            struct epoll_event ee = {.events = EPOLLIN};
            epoll_ctl(e4[i], EPOLL_CTL_ADD, ef, &ee);
        }
        close(ef);
        printf("closed file in four epolls:");
        for (int i = 0; i < 4; i++) {
            struct epoll_event got[2];
            printf(" %d", epoll_wait(e4[i], got, 2, 0));
            close(e4[i]);
        }
        printf("\n");
    }
    printf("done\n");
    return 0;
}
