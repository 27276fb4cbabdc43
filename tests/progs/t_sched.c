/* Scheduling calls a program makes: affinity (CPU 0 is always there),
   getcpu, nice values and their permission rule, time-sharing policies;
   and the CPU time and peak RSS that wait4, getrusage and times report. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *en(int r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(0, &s);
    printf("setaffinity {0}: %s\n", en(sched_setaffinity(0, sizeof s, &s)));
    CPU_ZERO(&s);
    printf("setaffinity {}: %s\n", en(sched_setaffinity(0, sizeof s, &s)));
    sched_getaffinity(0, sizeof s, &s);
    printf("getaffinity: cpu0 %d count %d\n", CPU_ISSET(0, &s), CPU_COUNT(&s));
    unsigned cpu = 99, node = 99;
    syscall(SYS_getcpu, &cpu, &node, NULL);
    printf("getcpu: %u %u; yield %s\n", cpu, node, en(sched_yield()));
    printf("getaffinity of a missing pid: %s\n", en(sched_getaffinity(999999, sizeof s, &s)));

    printf("nice %d; ", getpriority(PRIO_PROCESS, 0));
    printf("setpriority 5 %s; ", en(setpriority(PRIO_PROCESS, 0, 5)));
    printf("now %d; ", getpriority(PRIO_PROCESS, 0));
    printf("nice(2) -> %d\n", nice(2));
    errno = 0;
    int r = getpriority(PRIO_PROCESS, 999999);
    printf("getpriority of a missing pid: %d %s\n", r, strerrorname_np(errno));
    printf("out of range 40 clamps: %s", en(setpriority(PRIO_PROCESS, 0, 40)));
    printf(" -> %d\n", getpriority(PRIO_PROCESS, 0));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        printf("child inherits nice %d\n", getpriority(PRIO_PROCESS, 0));
        setuid(65534);
        printf("unprivileged raise to 19: %s; ", en(setpriority(PRIO_PROCESS, 0, 19)));
        printf("lower to 0: %s\n", en(setpriority(PRIO_PROCESS, 0, 0)));
        printf("another user's process: %s\n", en(setpriority(PRIO_PROCESS, getppid(), 19)));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("root lowers again: %s", en(setpriority(PRIO_PROCESS, 0, 0)));
    printf(" -> %d\n", getpriority(PRIO_PROCESS, 0));

    struct sched_param p = {0};
    printf("policy %d; ", sched_getscheduler(0));
    printf("BATCH %s", en(sched_setscheduler(0, SCHED_BATCH, &p)));
    printf(" -> %d; ", sched_getscheduler(0));
    p.sched_priority = 5;
    printf("BATCH with priority 5: %s; ", en(sched_setscheduler(0, SCHED_BATCH, &p)));
    p.sched_priority = 0;
    printf("back to OTHER %s\n", en(sched_setscheduler(0, SCHED_OTHER, &p)));
    p.sched_priority = 7;
    printf("getparam %s", en(sched_getparam(0, &p)));
    printf(" %d; ", p.sched_priority);
    printf("priority range FIFO %d..%d OTHER %d..%d, bad policy %s\n", sched_get_priority_min(SCHED_FIFO),
           sched_get_priority_max(SCHED_FIFO), sched_get_priority_min(SCHED_OTHER),
           sched_get_priority_max(SCHED_OTHER), en(sched_get_priority_max(42)));

    /* I/O priorities: (class << 13) | data */
    printf("ioprio: %ld; ", syscall(SYS_ioprio_get, 1, 0));
    printf("set BE/4 %s", en(syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 4)));
    printf(" -> %#lx; ", syscall(SYS_ioprio_get, 1, 0));
    printf("class 5 %s; ", en(syscall(SYS_ioprio_set, 1, 0, 5 << 13)));
    printf("bad which %s\n", en(syscall(SYS_ioprio_get, 9, 0)));
    fflush(stdout);
    c = fork();
    if (c == 0) {
        printf("child inherits %#lx; ", syscall(SYS_ioprio_get, 1, 0));
        setuid(65534);
        printf("unprivileged RT %s, IDLE %s", en(syscall(SYS_ioprio_set, 1, 0, 1 << 13)),
               en(syscall(SYS_ioprio_set, 1, 0, 3 << 13)));
        printf(", another user's %s\n", en(syscall(SYS_ioprio_set, 1, getppid(), 3 << 13)));
        _exit(0);
    }
    waitpid(c, NULL, 0);

    struct rusage before, ru, kids, bad;
    getrusage(RUSAGE_CHILDREN, &before);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        volatile unsigned long x = 0;
        for (unsigned long i = 0; i < 200000000UL; i++)
            x += i;
        volatile char *big = malloc(8 << 20);
        for (int i = 0; i < 8 << 20; i += 4096)
            big[i] = 1;
        _exit(0);
    }
    int st;
    wait4(c, &st, 0, &ru);
    getrusage(RUSAGE_CHILDREN, &kids);
    struct tms tm;
    times(&tm);
    long cpu_us = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec;
    /* Linux scales user and system time per sum (cputime_adjust): compare
       the totals, within a few ms */
    long total_us = cpu_us + ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
    long kids_us = (kids.ru_utime.tv_sec - before.ru_utime.tv_sec + kids.ru_stime.tv_sec - before.ru_stime.tv_sec)
                   * 1000000L + kids.ru_utime.tv_usec - before.ru_utime.tv_usec
                   + kids.ru_stime.tv_usec - before.ru_stime.tv_usec;
    printf("busy child: wait4 user time > 10ms %d, peak RSS > 8 MiB %d; children's usage grew by it %d; "
           "times cutime %d\n", cpu_us > 10000, ru.ru_maxrss > 8192, labs(kids_us - total_us) < 5000 && kids.ru_maxrss >= ru.ru_maxrss,
           tm.tms_cutime + tm.tms_cstime + 1 >= total_us / 10000);
    printf("getrusage(42): %s\n", en(getrusage(42, &bad)));
    printf("done\n");
    return 0;
}
