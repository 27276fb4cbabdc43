/* Scheduling calls a program makes: affinity (CPU 0 is always there),
   getcpu (the vDSO's too), nice values and their permission rule; the
   policies (real-time with their priorities, deadline with its parameters,
   reset-on-fork) through sched_setscheduler/setparam and sched_setattr,
   their permission rules and what /proc/self/stat shows of them; timer
   slack; and the CPU time and peak RSS that wait4, getrusage and times
   report.  Natively it needs root with CAP_SYS_NICE, real-time bandwidth
   for its cgroup and every CPU in its cpuset (SCHED_DEADLINE's rule). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *en(int r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

struct attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t prio;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
};

#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif
#define RESET_ON_FORK 0x40000000
#define FLAG_RESET_ON_FORK 1
#define FLAG_KEEP_POLICY 8
#define FLAG_KEEP_PARAMS 0x10
#define FLAG_UTIL_CLAMP_MIN 0x20

static long setattr(pid_t pid, struct attr *a, unsigned flags) { return syscall(SYS_sched_setattr, pid, a, flags); }
static long getattr(pid_t pid, struct attr *a, unsigned size, unsigned flags)
{
    return syscall(SYS_sched_getattr, pid, a, size, flags);
}

static struct attr dl(uint64_t runtime, uint64_t deadline, uint64_t period)
{
    struct attr a = {.size = 48, .policy = SCHED_DEADLINE, .runtime = runtime, .deadline = deadline,
                     .period = period};
    return a;
}

static int setsched(int policy, int prio)
{
    struct sched_param p = {.sched_priority = prio};
    return sched_setscheduler(0, policy, &p);
}

/* /proc/self/stat's priority, nice, rt_priority and policy */
static void stat_fields(const char *what)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY);
    int n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    char *p = strrchr(buf, ')');
    long f[48] = {0};
    int i = 2;
    for (char *tok = strtok(p + 2, " "); tok && i < 48; tok = strtok(NULL, " "))
        f[++i] = strtol(tok, NULL, 10);
    printf("%s: stat priority %ld nice %ld rt_priority %ld policy %ld\n", what, f[18], f[19], f[40], f[41]);
}

static void policies(void)
{
    struct sched_param p = {.sched_priority = 0};
    struct timespec ts;
    printf("FIFO 1 %s", en(setsched(SCHED_FIFO, 1)));
    printf(" -> %d; ", sched_getscheduler(0));
    p.sched_priority = 5;
    printf("setparam 5 %s", en(sched_setparam(0, &p)));
    p.sched_priority = -1;
    sched_getparam(0, &p);
    printf(" -> %d; rr interval %s", p.sched_priority, en(sched_rr_get_interval(0, &ts)));
    printf(" %ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
    stat_fields("FIFO 5");
    printf("RR 99 %s", en(setsched(SCHED_RR, 99)));
    sched_rr_get_interval(0, &ts);
    printf(" interval %ld.%09ld; RR 0 %s, 100 %s, -1 %s; OTHER 1 %s; policy 4 %s, -1 %s\n", (long)ts.tv_sec,
           ts.tv_nsec, en(setsched(SCHED_RR, 0)), en(setsched(SCHED_RR, 100)), en(setsched(SCHED_RR, -1)),
           en(setsched(SCHED_OTHER, 1)), en(setsched(4, 0)), en(setsched(-1, 0)));
    stat_fields("RR 99");
    printf("NULL param: setscheduler %s setparam %s getparam %s; pid -1: %s %s %s %s %s; missing pid: %s %s\n",
           en(sched_setscheduler(0, SCHED_FIFO, NULL)), en(sched_setparam(0, NULL)), en(sched_getparam(0, NULL)),
           en(sched_setparam(-1, &p)), en(sched_getparam(-1, &p)), en(sched_getscheduler(-1)),
           en(sched_rr_get_interval(-1, &ts)), en(sched_setscheduler(-1, SCHED_OTHER, &p)),
           en(sched_getparam(999999, &p)), en(sched_getscheduler(999999)));
    printf("priority ranges: DEADLINE %d..%d BATCH %d..%d IDLE %d..%d RR %d..%d\n",
           sched_get_priority_min(SCHED_DEADLINE), sched_get_priority_max(SCHED_DEADLINE),
           sched_get_priority_min(SCHED_BATCH), sched_get_priority_max(SCHED_BATCH),
           sched_get_priority_min(SCHED_IDLE), sched_get_priority_max(SCHED_IDLE),
           sched_get_priority_min(SCHED_RR), sched_get_priority_max(SCHED_RR));

    /* fork inherits the policy; reset-on-fork gives the child SCHED_OTHER
       and takes away a negative nice */
    setsched(SCHED_FIFO, 3);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        sched_getparam(0, &p);
        printf("child of FIFO 3: policy %d priority %d\n", sched_getscheduler(0), p.sched_priority);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("FIFO|RESET_ON_FORK %s", en(setsched(SCHED_FIFO | RESET_ON_FORK, 3)));
    printf(" -> %#x\n", sched_getscheduler(0));
    fflush(stdout);
    c = fork();
    if (c == 0) {
        sched_getparam(0, &p);
        printf("child: policy %#x priority %d\n", sched_getscheduler(0), p.sched_priority);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        setsched(SCHED_OTHER | RESET_ON_FORK, 0);
        setuid(65534);
        printf("unprivileged may not drop RESET_ON_FORK: %s", en(setsched(SCHED_OTHER, 0)));
        printf(", may keep it: %s\n", en(setsched(SCHED_BATCH | RESET_ON_FORK, 0)));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    setsched(SCHED_OTHER, 0);
    setpriority(PRIO_PROCESS, 0, -3);
    setsched(SCHED_OTHER | RESET_ON_FORK, 0);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        printf("nice -3 with RESET_ON_FORK: child's nice %d\n", getpriority(PRIO_PROCESS, 0) == 0 ? 0 : -1);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    setsched(SCHED_OTHER, 0);
    setpriority(PRIO_PROCESS, 0, 0);

    /* the unprivileged (RLIMIT_RTPRIO 0): a real-time policy may keep or
       lower its priority but not take one; no deadline; out of SCHED_IDLE
       only within RLIMIT_NICE (0) */
    fflush(stdout);
    c = fork();
    if (c == 0) {
        setsched(SCHED_FIFO, 5);
        setuid(65534);
        printf("nobody at FIFO 5: FIFO 5 %s", en(setsched(SCHED_FIFO, 5)));
        printf(", 3 %s", en(setsched(SCHED_FIFO, 3)));
        printf(", 7 %s", en(setsched(SCHED_FIFO, 7)));
        printf(", RR 3 %s", en(setsched(SCHED_RR, 3)));
        printf(", OTHER %s", en(setsched(SCHED_OTHER, 0)));
        printf(", FIFO 1 %s; ", en(setsched(SCHED_FIFO, 1)));
        struct attr a = dl(10000000, 30000000, 30000000);
        printf("DEADLINE %s; IDLE %s", en(setattr(0, &a, 0)), en(setsched(SCHED_IDLE, 0)));
        printf(", back to OTHER %s; ", en(setsched(SCHED_OTHER, 0)));
        p.sched_priority = 0;
        printf("init's %s\n", en(sched_setscheduler(1, SCHED_BATCH, &p)));
        _exit(0);
    }
    waitpid(c, NULL, 0);
}

static void attrs(void)
{
    /* a deadline task's affinity must span every CPU */
    cpu_set_t all;
    memset(&all, 0xff, sizeof all);
    sched_setaffinity(0, sizeof all, &all);
    struct attr a = dl(10000000, 30000000, 30000000), g;
    printf("DEADLINE 10/30/30 ms %s", en(setattr(0, &a, 0)));
    memset(&g, 0xff, sizeof g);
    printf("; getattr(48) %s", en(getattr(0, &g, 48, 0)));
    printf(": size %u policy %u flags %llu nice %d prio %u runtime %llu deadline %llu period %llu util_min %u\n",
           g.size, g.policy, (unsigned long long)g.flags, g.nice, g.prio, (unsigned long long)g.runtime,
           (unsigned long long)g.deadline, (unsigned long long)g.period, g.util_min);
    struct sched_param p = {.sched_priority = 9};
    struct timespec ts = {9, 9};
    sched_getparam(0, &p);
    sched_rr_get_interval(0, &ts);
    printf("as DEADLINE: getscheduler %d getparam %d rr interval %ld.%09ld\n", sched_getscheduler(0),
           p.sched_priority, (long)ts.tv_sec, ts.tv_nsec);
    stat_fields("DEADLINE");
    printf("setparam of a DEADLINE task: %s; ", en(sched_setparam(0, &p)));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0)
        _exit(0);
    printf("fork: %s\n", en(c));
    if (c > 0)
        waitpid(c, NULL, 0);
    a.flags = FLAG_RESET_ON_FORK;
    printf("with RESET_ON_FORK %s, ", en(setattr(0, &a, 0)));
    fflush(stdout);
    c = fork();
    if (c == 0) {
        printf("fork: child's policy %d\n", sched_getscheduler(0));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    memset(&g, 0, sizeof g);
    getattr(0, &g, 48, 0);
    printf("getattr flags %llu; ", (unsigned long long)g.flags);
    struct attr k = {.size = 48, .flags = FLAG_KEEP_PARAMS | FLAG_KEEP_POLICY};
    printf("KEEP_POLICY|KEEP_PARAMS %s", en(setattr(0, &k, 0)));
    getattr(0, &g, 48, 0);
    printf(" -> policy %u runtime %llu flags %llu\n", g.policy, (unsigned long long)g.runtime,
           (unsigned long long)g.flags);
    k.flags = FLAG_KEEP_PARAMS;
    k.policy = SCHED_DEADLINE;
    printf("KEEP_PARAMS alone %s", en(setattr(0, &k, 0)));
    getattr(0, &g, 48, 0);
    printf(" -> flags %llu (RESET_ON_FORK dropped)\n", (unsigned long long)g.flags);

    /* parameter checks (__checkparam_dl) */
    struct attr bad[] = {dl(1023, 30000000, 30000000), dl(40000000, 30000000, 30000000),
                         dl(10000000, 30000000, 20000000), dl(10000000, 0, 0), dl(50000, 99000, 0),
                         dl(10000000, 30000000, 5000000000ULL), dl(10000000, 1ULL << 63, 0)};
    printf("bad DEADLINE parameters:");
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++)
        printf(" %s", en(setattr(0, &bad[i], 0)));
    a = dl(100000, 1000000, 0);
    printf("; period 0 (= deadline) %s", en(setattr(0, &a, 0)));
    getattr(0, &g, 48, 0);
    printf(" -> period %llu\n", (unsigned long long)g.period);

    struct attr o = {.size = 48, .policy = SCHED_BATCH, .nice = 5};
    printf("BATCH nice 5 %s", en(setattr(0, &o, 0)));
    printf(" -> policy %d nice %d", sched_getscheduler(0), getpriority(PRIO_PROCESS, 0));
    memset(&g, 0, sizeof g);
    getattr(0, &g, 48, 0);
    printf(" getattr nice %d; ", g.nice);
    o.nice = 40;
    printf("nice 40 clamps: %s", en(setattr(0, &o, 0)));
    getattr(0, &g, 48, 0);
    printf(" -> %d; ", g.nice);
    o.nice = 0;
    o.policy = SCHED_FIFO;
    o.prio = 4;
    printf("FIFO 4 %s", en(setattr(0, &o, 0)));
    memset(&g, 0, sizeof g);
    getattr(0, &g, 48, 0);
    printf(" -> prio %u nice %d\n", g.prio, g.nice);
    stat_fields("FIFO 4 after nice 19");
    o.policy = SCHED_OTHER;
    o.prio = 0;
    setattr(0, &o, 0);

    /* sizes, flags, pointers, pids */
    struct { struct attr a; char tail[8]; } big;
    memset(&big, 0, sizeof big);
    big.a.size = 47;
    printf("size 47: %s", en(setattr(0, &big.a, 0)));
    printf(", size written back %u; ", big.a.size);
    big.a.size = 0;
    printf("size 0 (VER0): %s; ", en(setattr(0, &big.a, 0)));
    big.a.size = sizeof big;
    printf("size 64 zero tail: %s; ", en(setattr(0, &big.a, 0)));
    big.tail[3] = 1;
    printf("nonzero tail: %s", en(setattr(0, &big.a, 0)));
    printf(" (size %u); ", big.a.size);
    big.a.size = 5000;
    printf("size 5000: %s\n", en(setattr(0, &big.a, 0)));
    o = (struct attr){.size = 48, .flags = FLAG_UTIL_CLAMP_MIN};
    printf("UTIL_CLAMP in a VER0 struct %s; ", en(setattr(0, &o, 0)));
    o.flags = 0x100;
    printf("flag 0x100 %s; ", en(setattr(0, &o, 0)));
    o.flags = 0;
    o.policy = 0xffffffff;
    printf("policy -1 %s", en(setattr(0, &o, 0)));
    o.policy = 4;
    printf(", 4 %s; ", en(setattr(0, &o, 0)));
    o.policy = 0;
    printf("syscall flags 1 %s, NULL %s, pid -1 %s, missing pid %s\n", en(setattr(0, &o, 1)),
           en(setattr(0, NULL, 0)), en(setattr(-1, &o, 0)), en(setattr(999999, &o, 0)));
    printf("getattr: size 47 %s, 4097 %s, flags 1 %s, NULL %s, pid -1 %s, missing %s; ",
           en(getattr(0, &g, 47, 0)), en(getattr(0, &g, 4097, 0)), en(getattr(0, &g, 48, 1)),
           en(getattr(0, NULL, 48, 0)), en(getattr(-1, &g, 48, 0)), en(getattr(999999, &g, 48, 0)));
    memset(&big, 0xee, sizeof big);
    printf("size 64 %s", en(getattr(0, &big.a, sizeof big, 0)));
    printf(": size %u\n", big.a.size);
}

static int slack_write(const char *text)
{
    int fd = open("/proc/self/timerslack_ns", O_WRONLY);
    int r = write(fd, text, strlen(text));
    close(fd);
    return r;
}

static void timer_slack(void)
{
    long def = prctl(PR_GET_TIMERSLACK);
    char buf[64] = "";
    int fd = open("/proc/self/timerslack_ns", O_RDONLY);
    int n = pread(fd, buf, sizeof buf - 1, 0);
    printf("timer slack: proc shows prctl's %d; ", n > 0 && strtol(buf, NULL, 10) == def);
    printf("set 1 %s", en(prctl(PR_SET_TIMERSLACK, 1)));
    printf(" -> %d; ", prctl(PR_GET_TIMERSLACK));
    prctl(PR_SET_TIMERSLACK, 70000);
    n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    printf("70000 -> proc %s", buf);
    close(fd);
    printf("proc write 123456 %s", en(slack_write("123456\n")));
    printf(" -> %d; write x %s", prctl(PR_GET_TIMERSLACK), en(slack_write("x")));
    printf(", -5 %s, +7 %s", en(slack_write("-5")), en(slack_write("+7")));
    printf(" -> %d\n", prctl(PR_GET_TIMERSLACK));
    prctl(PR_SET_TIMERSLACK, 70000);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int mine = prctl(PR_GET_TIMERSLACK);
        prctl(PR_SET_TIMERSLACK, 5);
        prctl(PR_SET_TIMERSLACK, 0);
        printf("child inherits %d and resets to it: %d; ", mine, prctl(PR_GET_TIMERSLACK));
        setuid(65534);
        int fd = open("/proc/1/timerslack_ns", O_RDONLY);
        printf("another's slack as nobody: read %s\n", en(read(fd, buf, sizeof buf)));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    prctl(PR_SET_TIMERSLACK, 0);
    printf("reset: back to the default %d; ", prctl(PR_GET_TIMERSLACK) == def);
    prctl(PR_SET_TIMERSLACK, 99);
    printf("proc write 0 %s", en(slack_write("0")));
    printf(" -> default %d\n", prctl(PR_GET_TIMERSLACK) == def);
}

/* a zombie is found until it is reaped: its scheduling and nice values
   read as they were (LTP sched_setscheduler04 reads a child that may
   have exited already) */
static void zombie(void)
{
    struct sched_param sp = {.sched_priority = 7};
    pid_t c = fork();
    if (c == 0)
        _exit(0);
    siginfo_t si;
    waitid(P_PID, c, &si, WEXITED | WNOWAIT);   /* a zombie now, not reaped */
    printf("zombie: sched_getscheduler %d", sched_getscheduler(c));
    printf(", sched_getparam %d", sched_getparam(c, &sp));
    printf(" priority %d", sp.sched_priority);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, c);
    printf(", getpriority %d %s\n", nice, errno ? strerrorname_np(errno) : "ok");
    cpu_set_t set;
    CPU_ZERO(&set);
    printf("  sched_getaffinity %d\n", sched_getaffinity(c, sizeof set, &set) < 0 ? -errno : 0);
    waitpid(c, NULL, 0);
    int r = sched_getscheduler(c);
    printf("  reaped: sched_getscheduler %d %s\n", r, r < 0 ? strerrorname_np(errno) : "ok");
}

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
    printf("getcpu: %u %u; yield %s; ", cpu, node, en(sched_yield()));
    cpu = node = 99;
    getcpu(&cpu, &node);        /* the vDSO's */
    printf("getcpu(): %u %u, sched_getcpu %d\n", cpu, node, sched_getcpu());
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

    /* a thread's CPU time: never going back, in steps of much less than a tick */
    struct rusage r0, r1;
    getrusage(RUSAGE_THREAD, &r0);
    int mono = 1, coarse = 0;
    for (int i = 0; i < 200; i++) {
        for (volatile int j = 0; j < 20000; j++)
            ;
        getrusage(RUSAGE_THREAD, &r1);
        long du = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000000L + r1.ru_utime.tv_usec - r0.ru_utime.tv_usec;
        long ds = (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000000L + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec;
        mono &= du >= 0 && ds >= 0;
        coarse += du + ds >= 4000;
        r0 = r1;
    }
    /* Linux scales the tick-sampled split to the exact runtime, which may
       now and then jump by a tick: most steps, not every one, are fine */
    printf("RUSAGE_THREAD: monotonic %d, steps under 4 ms %d\n", mono, coarse < 20);

    if (access("/proc/self/stat", F_OK))
        mount("proc", "/proc", "proc", 0, NULL);    /* a bare guest */
    policies();
    attrs();
    stat_fields("back to OTHER");
    timer_slack();
    zombie();
    printf("done\n");
    return 0;
}
