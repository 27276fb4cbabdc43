/* Descriptor allocation at scale: the lowest-free rule after holes,
 * F_DUPFD's minimum, dup2/dup3 at and past RLIMIT_NOFILE, EMFILE at the
 * limit, close_range (plain, CLOEXEC, UNSHARE), fork's copy and a
 * CLONE_FILES child's shared table, with thousands of descriptors open.
 * Fd numbers are printed relative to the first fd this program gets.
 *
 * `t_fdalloc DIR scale` instead opens 20000 descriptors (raising
 * RLIMIT_NOFILE, which needs CAP_SYS_RESOURCE) and prints the microseconds
 * the first and the last thousand took: allocation must not slow down as
 * the table fills. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "results.h"

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE 2
#define CLOSE_RANGE_CLOEXEC 4
#endif

static int is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static int scale(void)
{
    enum { N = 20000, STEP = 1000 };
    struct rlimit rl = { N + 100, N + 100 };
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        printf("setrlimit: -1 %s\n", en(errno));
        return 1;
    }
    long first = 0, last = 0, t0 = now_us();
    for (int i = 0; i < N; i++) {
        if (i % STEP == 0) {
            long t = now_us();
            if (i == STEP)
                first = t - t0;
            t0 = t;
        }
        if (open("/dev/null", O_RDONLY) < 0) {
            printf("open %d: -1 %s\n", i, en(errno));
            return 1;
        }
    }
    last = now_us() - t0;
    printf("first %ld last %ld\n", first, last);
    printf("done\n");
    return 0;
}

static int child_opens(void *arg)
{
    (void)arg;
    int fd = open("/dev/null", O_RDONLY);
    close(base + 5);
    _exit(fd < 0 ? 1 : 0);
}

static int child_unshares(void *arg)
{
    (void)arg;
    if (syscall(SYS_close_range, base + 30, base + 39, CLOSE_RANGE_UNSHARE) < 0)
        _exit(2);
    _exit(is_open(base + 30) || is_open(base + 39) || !is_open(base + 40));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && strcmp(argv[2], "scale") == 0)
        return scale();

    struct rlimit rl = { 4096, 4096 };
    res("setrlimit 4096", setrlimit(RLIMIT_NOFILE, &rl));
    syscall(SYS_close_range, 3, ~0U, 0);     /* nothing inherited in the way */
    base = open("/dev/null", O_RDONLY);
    close(base);

    /* fill the table up to the limit */
    int n = 0, last = -1, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) {
        if (fd != base + n)
            printf("open %d gave base+%d\n", n, fd - base);
        last = fd;
        n++;
    }
    printf("opened until %s: %d (last fd limit-1: %d)\n", en(errno), n, last == 4095);
    fdres("dup at the limit", dup(base));
    fdres("F_DUPFD 4095 (taken)", fcntl(base, F_DUPFD, 4095));
    fdres("F_DUPFD 4096", fcntl(base, F_DUPFD, 4096));
    fdres("dup2 to 4096", dup2(base, 4096));
    fdres("dup2 to 4095", dup2(base, 4095));

    /* holes: the lowest one first, F_DUPFD the lowest at or above its minimum */
    int holes[] = { 3000, 7, 2000, 64, 63, 4000, 128, 1000 };
    for (unsigned i = 0; i < sizeof holes / sizeof *holes; i++)
        close(base + holes[i]);
    fdres("F_DUPFD base+1001", fcntl(base, F_DUPFD, base + 1001));
    fdres("F_DUPFD base+65", fcntl(base, F_DUPFD, base + 65));
    fdres("F_DUPFD_CLOEXEC base+64", fcntl(base, F_DUPFD_CLOEXEC, base + 64));
    res("  its FD_CLOEXEC", fcntl(base + 64, F_GETFD));
    fdres("open (lowest)", open("/dev/null", O_RDONLY));
    fdres("dup (next)", dup(base));
    fdres("dup3 into a hole", dup3(base, base + 3000, O_CLOEXEC));
    res("  its FD_CLOEXEC", fcntl(base + 3000, F_GETFD));
    fdres("open (next)", open("/dev/null", O_RDONLY));
    fdres("open (the last hole)", open("/dev/null", O_RDONLY));
    fdres("open (full)", open("/dev/null", O_RDONLY));

    /* close_range: a block in the middle, then CLOEXEC on another */
    res("close_range base+100..base+199", syscall(SYS_close_range, base + 100, base + 199, 0));
    printf("99 open %d, 100 open %d, 199 open %d, 200 open %d\n", is_open(base + 99),
           is_open(base + 100), is_open(base + 199), is_open(base + 200));
    fdres("open after close_range", open("/dev/null", O_RDONLY));
    fdres("F_DUPFD base+150", fcntl(base, F_DUPFD, base + 150));
    res("close_range CLOEXEC base+300..base+309",
        syscall(SYS_close_range, base + 300, base + 309, CLOSE_RANGE_CLOEXEC));
    res("  300 FD_CLOEXEC", fcntl(base + 300, F_GETFD));
    res("  310 FD_CLOEXEC", fcntl(base + 310, F_GETFD));
    res("close_range bad flags", syscall(SYS_close_range, base, base, 1));
    res("close_range first > last", syscall(SYS_close_range, base + 5, base + 4, 0));

    /* fork copies: the child's allocations are its own */
    pid_t pid = fork();
    if (pid == 0) {
        close(base + 10);
        close(base + 11);
        int a = open("/dev/null", O_RDONLY);
        int b = fcntl(base, F_DUPFD, base + 11);
        _exit(a == base + 10 && b == base + 11 ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("fork child allocated its own holes: %d\n", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("parent still has 10 and 11: %d %d\n", is_open(base + 10), is_open(base + 11));

    /* CLONE_FILES: the child's open and close are the parent's */
    close(base + 20);
    static char stack[65536];
    pid = clone(child_opens, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL);
    waitpid(pid, &st, 0);
    printf("CLONE_FILES child: exit %d, 20 open %d, 5 open %d\n", WEXITSTATUS(st),
           is_open(base + 20), is_open(base + 5));
    fdres("open takes the child's hole", open("/dev/null", O_RDONLY));

    /* close_range UNSHARE in a CLONE_FILES child leaves the parent's table alone */
    pid = clone(child_unshares, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL);
    waitpid(pid, &st, 0);
    printf("UNSHARE child: exit %d, parent's 30 and 39 open %d %d\n", WEXITSTATUS(st),
           is_open(base + 30), is_open(base + 39));

    /* a lower limit: open descriptors stay, new ones fail */
    rl.rlim_cur = 100;
    res("setrlimit 100", setrlimit(RLIMIT_NOFILE, &rl));
    res("fd 4000 still open", is_open(base + 4000));
    fdres("dup with a lower limit", dup(base));
    fdres("dup2 past the lower limit", dup2(base, 200));
    res("close_range all but 0-2", syscall(SYS_close_range, 3, ~0U, 0));
    fdres("open after closing all", open("/dev/null", O_RDONLY));
    printf("done\n");
    return 0;
}
