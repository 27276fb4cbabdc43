/* Looking up one process's /proc entry, or one fd's /proc/self/fd link,
 * costs the same with a hundred of them as with fifteen hundred (a lookup
 * built the whole directory's table: reading every /proc/PID/stat of 3000
 * processes took 22 s), and an epoll_wait with one ready fd among 20 000
 * what it does among 100 (every entry was polled at every wait), and a
 * real-time signal queued behind 20 000 others what it does behind 100
 * (RLIMIT_SIGPENDING's check counted every queued signal: 50 000 took
 * 87 s; root raises the limit for it), and a semop, or a message sent and
 * received, with 200 processes asleep on other semaphores of the set or
 * other types of the queue, or a POSIX message to a pool of 200 readers,
 * what it costs with 10 (each woke every sleeper: 7 ms a semop among
 * 200, 5 ms a POSIX message).  Prints
 * the microseconds per call at each size; tests/test_stalls.py compares
 * them. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/mount.h>
#include <mqueue.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sem.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static pid_t kids[1500];

/* the newest n processes': names looked up for the first time */
static double stat_each(int from, int n)
{
    char p[64], buf[512];
    double t0 = now();
    for (int i = from; i < from + n; i++) {
        snprintf(p, sizeof p, "/proc/%d/stat", kids[i]);
        int fd = open(p, O_RDONLY);
        if (fd < 0 || read(fd, buf, sizeof buf) <= 0)
            printf("stat of %d: failed\n", kids[i]);
        close(fd);
    }
    return (now() - t0) / n * 1e6;
}

static double fd_each(int lo, int n)
{
    char p[64], buf[64];
    double t0 = now();
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "/proc/self/fd/%d", lo + i);
        if (readlink(p, buf, sizeof buf) <= 0)
            printf("fd %d: failed\n", lo + i);
    }
    return (now() - t0) / n * 1e6;
}

static double epoll_each(int ep, int fd, int n)
{
    struct epoll_event out[8];
    uint64_t one = 1;
    epoll_wait(ep, out, 8, 0);      /* the new entries polled once, as ep_insert polls them */
    double t0 = now();
    for (int i = 0; i < n; i++) {
        if (write(fd, &one, 8) != 8 || epoll_wait(ep, out, 8, -1) != 1 || read(fd, &one, 8) != 8)
            printf("epoll round %d: failed\n", i);
    }
    return (now() - t0) / n * 1e6;
}

/* One kind of sleeper at a time (each sleeper in the host's wait for
   the kernel costs the others a little, apart from what is measured
   here): processes asleep on other semaphores of a set (0), on other
   types of a System V queue (1), or a pool reading one POSIX queue (2);
   10 of them, then 200.  The best of five rounds: the kernel's garbage
   collection pauses one at times. */
static void sleepers(int kind)
{
    static const char *what[] = {"semaphore sleepers %d: %.0f us a semop\n",
                                 "message sleepers %d: %.0f us a message sent and received\n",
                                 "mqueue readers %d: %.0f us a message to one of them\n"};
    int sem = semget(IPC_PRIVATE, 201, IPC_CREAT | 0600), q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct mq_attr attr = {.mq_maxmsg = 10, .mq_msgsize = 8};
    mq_unlink("/t_proclookup");
    mqd_t mq = mq_open("/t_proclookup", O_CREAT | O_RDWR, 0600, &attr);
    if (sem < 0 || q < 0 || mq == (mqd_t)-1)
        printf("ipc: failed\n");
    struct { long type; char text[8]; } m = {1, "x"};
    struct sembuf up = {0, 1, 0};
    int n = 0;
    for (int want = 10; want <= 200; want += 190) {
        for (; n < want; n++) {
            if (fork() != 0)
                continue;
            if (kind == 0) {
                struct sembuf down = {n + 1, -1, 0};
                semop(sem, &down, 1);
            } else if (kind == 1) {
                msgrcv(q, &m, sizeof m.text, 100 + n, 0);
            } else {
                char buf[8];
                while (mq_receive(mq, buf, sizeof buf, NULL) > 0 && buf[0] != 'q')
                    ;
            }
            _exit(0);
        }
        usleep(200000);     /* all asleep */
        double best = 1e9;
        for (int round = 0; round < 5; round++) {
            double t0 = now();
            for (int i = 0; i < 100; i++) {
                int bad = kind == 0 ? semop(sem, &up, 1)
                        : kind == 1 ? msgsnd(q, &m, 1, 0) || msgrcv(q, &m, sizeof m.text, 1, 0) != 1
                        : mq_send(mq, "x", 2, 0);
                if (bad)
                    printf("ipc %d: failed\n", kind);
            }
            if (now() - t0 < best)
                best = now() - t0;
        }
        printf(what[kind], n, best / 100 * 1e6);
    }
    semctl(sem, 0, IPC_RMID);      /* wakes them all (EIDRM) */
    msgctl(q, IPC_RMID, NULL);
    for (int i = 0; kind == 2 && i < n; i++)
        mq_send(mq, "q", 2, 0);
    mq_close(mq);
    mq_unlink("/t_proclookup");
    while (wait(NULL) > 0)
        ;
}

int main(void)
{
    if (access("/proc/self", F_OK) != 0)
        mount("proc", "/proc", "proc", 0, NULL);    /* a guest whose init mounted none */
    int n = 0;
    for (int want = 100; want <= 1500; want += 1400) {
        for (; n < want; n++) {
            kids[n] = fork();
            if (kids[n] == 0) {
                pause();
                _exit(0);
            }
        }
        printf("processes %d: %.0f us a stat\n", n, stat_each(n - 100, 100));
    }
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    while (wait(NULL) > 0)
        ;
    int fds = 0;
    for (int want = 1000; want <= 20000; want += 19000) {
        for (; fds < want; fds++)
            if (open("/dev/null", O_RDONLY) < 0)
                return 1;
        printf("fds %d: %.0f us a readlink\n", fds, fd_each(fds + 3 - 500, 500));
    }
    int ep = epoll_create1(0), watched = 0, last = -1;
    for (int want = 100; want <= 20000; want += 19900) {
        for (; watched < want; watched++) {
            last = eventfd(0, EFD_NONBLOCK);
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = last};
            if (last < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, last, &ev))
                return 1;
        }
        printf("epoll %d: %.0f us a wait\n", watched, epoll_each(ep, last, 200));
    }
    struct rlimit lim = {100000, 100000};
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &rt, NULL);
    if (setrlimit(RLIMIT_SIGPENDING, &lim))
        printf("setrlimit: failed\n");
    int queued = 0;
    for (int want = 100; want <= 20000; want += 19900) {
        union sigval v = {.sival_int = 0};
        for (; queued < want; queued++)
            if (sigqueue(getpid(), SIGRTMIN, v))
                return 1;
        double t0 = now();
        for (int i = 0; i < 500; i++)
            if (sigqueue(getpid(), SIGRTMIN, v))
                printf("sigqueue behind %d: failed\n", queued);
        printf("signals %d: %.0f us a sigqueue\n", queued, (now() - t0) / 500 * 1e6);
        queued += 500;
    }
    /* the rest with a smaller kernel heap: 20 000 fds in each child's
       table make the kernel's own garbage collection pause for long */
    signal(SIGRTMIN, SIG_IGN);      /* discards the queued signals */
    syscall(SYS_close_range, 3, ~0U, 0);
    for (int kind = 0; kind < 3; kind++)
        sleepers(kind);
    printf("done\n");
    return 0;
}
