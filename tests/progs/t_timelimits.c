/* Timeouts and timer values at their limits: each is refused exactly as
 * Linux refuses it (EINVAL for a bad timespec) or accepted and saturated
 * (a value past 64-bit nanoseconds means "never"), and what reads back
 * (getitimer, timer_gettime, timerfd_gettime, alarm, the time select and
 * ppoll leave) is Linux's.  Every long wait here is cut short by a 20 ms
 * SIGALRM (a handler without SA_RESTART).  Values that depend on the
 * clock are printed as checks against CLOCK_MONOTONIC ("ok"). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ipc.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "results.h"

#define KTIME_SEC_MAX 9223372036L
#define TIME64_MAX LONG_MAX

static long mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static long real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec;
}

/* secs is what Linux leaves of a timer that ends at `end` seconds on a clock now at `now` */
static const char *near(long secs, long end, long now)
{
    return labs(secs - (end - now)) <= 2 ? "ok" : "WRONG";
}

static volatile int alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void soon(void)      /* a SIGALRM in 20 ms */
{
    struct itimerval it = { { 0, 0 }, { 0, 20000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

static volatile int overrun_seen, si_overrun_seen, timer_fired;
static timer_t ovt;

static void on_timer(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    if (timer_fired++)
        return;
    overrun_seen = timer_getoverrun(ovt);
    si_overrun_seen = si->si_overrun;
    struct itimerspec off = { { 0, 0 }, { 0, 0 } };
    timer_settime(ovt, 0, &off, NULL);
}

static void itimers(void)
{
    struct itimerval it, old;
    printf("alarm(0xffffffff): %u\n", alarm(0xffffffffu));
    printf("alarm(0) after it: %u\n", alarm(0));
    alarm(0);

    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = LONG_MAX;
    it.it_interval.tv_sec = LONG_MAX;
    it.it_interval.tv_usec = 999999;
    res("setitimer LONG_MAX", setitimer(ITIMER_REAL, &it, NULL));
    getitimer(ITIMER_REAL, &old);
    printf("  value %s, interval %ld.%06ld\n", near(old.it_value.tv_sec, KTIME_SEC_MAX, mono()),
           (long)old.it_interval.tv_sec, (long)old.it_interval.tv_usec);
    unsigned left = alarm(0);
    printf("  alarm(0) returns the low 32 bits: %s\n",
           labs((long)left - (long)((unsigned)(KTIME_SEC_MAX - mono()))) <= 2 ? "ok" : "WRONG");

    it.it_value.tv_sec = 1;
    it.it_value.tv_usec = 1000000;
    res("setitimer usec 1000000", setitimer(ITIMER_REAL, &it, NULL));
    it.it_value.tv_usec = -1;
    res("setitimer usec -1", setitimer(ITIMER_REAL, &it, NULL));
    it.it_value.tv_sec = -1;
    it.it_value.tv_usec = 0;
    res("setitimer sec -1", setitimer(ITIMER_REAL, &it, NULL));
    res("setitimer bad which", setitimer(7, &old, NULL));

    alarm(100);
    res("setitimer NULL new", syscall(SYS_setitimer, ITIMER_REAL, NULL, &old));
    printf("  old value ~100: %d\n", old.it_value.tv_sec >= 98 && old.it_value.tv_sec <= 100);
    getitimer(ITIMER_REAL, &old);
    printf("  disarmed: %ld %ld\n", (long)old.it_value.tv_sec, (long)old.it_value.tv_usec);

    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = LONG_MAX;
    res("setitimer VIRTUAL LONG_MAX", setitimer(ITIMER_VIRTUAL, &it, NULL));
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_VIRTUAL, &it, NULL);
}

static void posix_timers(void)
{
    timer_t t;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_NONE;
    res("timer_create", timer_create(CLOCK_MONOTONIC, &sev, &t));
    struct itimerspec v = { { LONG_MAX, 999999999 }, { LONG_MAX, 999999999 } }, cur;
    res("timer_settime LONG_MAX", timer_settime(t, 0, &v, NULL));
    timer_gettime(t, &cur);
    printf("  value %s, interval %ld.%09ld\n", near(cur.it_value.tv_sec, KTIME_SEC_MAX, mono()),
           (long)cur.it_interval.tv_sec, (long)cur.it_interval.tv_nsec);
    struct itimerspec a = { { 0, 0 }, { LONG_MAX - 5, 0 } };
    res("timer_settime ABSTIME far", timer_settime(t, TIMER_ABSTIME, &a, NULL));
    timer_gettime(t, &cur);
    printf("  value %s\n", near(cur.it_value.tv_sec, KTIME_SEC_MAX, mono()));
    struct itimerspec bad = { { 0, 0 }, { 1, 1000000000 } };
    res("timer_settime nsec 1e9", timer_settime(t, 0, &bad, NULL));
    bad.it_value.tv_nsec = -1;
    res("timer_settime nsec -1", timer_settime(t, 0, &bad, NULL));
    bad.it_value.tv_sec = -1;
    bad.it_value.tv_nsec = 0;
    res("timer_settime sec -1", timer_settime(t, 0, &bad, NULL));
    bad.it_value.tv_sec = 1;
    bad.it_interval.tv_nsec = 1000000000;
    res("timer_settime interval nsec 1e9", timer_settime(t, 0, &bad, NULL));
    res("timer_settime NULL", syscall(SYS_timer_settime, t, 0, NULL, NULL));
    timer_delete(t);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR2;
    timer_create(CLOCK_MONOTONIC, &sev, &t);
    timer_settime(t, 0, &v, NULL);
    struct itimerspec zero = { { 5, 0 }, { 0, 0 } };
    res("timer_settime 0 value", timer_settime(t, 0, &zero, NULL));
    timer_gettime(t, &cur);
    printf("  disarmed, interval gone: %ld %ld\n", (long)cur.it_value.tv_sec, (long)cur.it_interval.tv_sec);
    timer_delete(t);

    /* an interval of 1 ns that ended 10 s ago overruns 10^10 times: capped at INT_MAX */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_timer;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR1;
    timer_create(CLOCK_MONOTONIC, &sev, &ovt);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec past = { { 0, 1 }, { now.tv_sec - 10, now.tv_nsec } };
    res("timer_settime 10 s ago, 1 ns interval", timer_settime(ovt, TIMER_ABSTIME, &past, NULL));
    while (!timer_fired)
        ;
    printf("  overrun %d, si_overrun %d\n", overrun_seen, si_overrun_seen);
    timer_delete(ovt);

    /* the kernel takes SIGEV_THREAD as SIGEV_SIGNAL (the C library makes the thread) */
    int kid;
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_signo = SIGUSR2;
    res("raw timer_create SIGEV_THREAD", syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &kid));
    syscall(SYS_timer_delete, kid);
    sev.sigev_signo = 0;
    res("raw timer_create SIGEV_THREAD signal 0", syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &kid));

    /* ids go round rather than reuse the lowest free one (Linux 6.x) */
    timer_t ta, tb, tc;
    sev.sigev_notify = SIGEV_NONE;
    timer_create(CLOCK_MONOTONIC, &sev, &ta);
    timer_create(CLOCK_MONOTONIC, &sev, &tb);
    timer_delete(ta);
    timer_create(CLOCK_MONOTONIC, &sev, &tc);
    printf("timer ids after a delete: next %ld\n", (long)tc - (long)tb);
    timer_delete(tb);
    timer_delete(tc);
}

static void timerfds(void)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec v = { { LONG_MAX, 999999999 }, { LONG_MAX, 0 } }, cur;
    res("timerfd_settime LONG_MAX", timerfd_settime(fd, 0, &v, NULL));
    timerfd_gettime(fd, &cur);
    printf("  value %s, interval %ld.%09ld\n", near(cur.it_value.tv_sec, KTIME_SEC_MAX, mono()),
           (long)cur.it_interval.tv_sec, (long)cur.it_interval.tv_nsec);
    int rfd = timerfd_create(CLOCK_REALTIME, 0);
    struct itimerspec a = { { 0, 0 }, { LONG_MAX, 0 } };
    res("timerfd_settime ABSTIME REALTIME LONG_MAX", timerfd_settime(rfd, TFD_TIMER_ABSTIME, &a, NULL));
    timerfd_gettime(rfd, &cur);
    printf("  value %s\n", near(cur.it_value.tv_sec, KTIME_SEC_MAX, real_now()));
    struct itimerspec bad = { { 0, 0 }, { 0, 1000000000 } };
    res("timerfd_settime nsec 1e9", timerfd_settime(fd, 0, &bad, NULL));
    bad.it_value.tv_nsec = 0;
    bad.it_value.tv_sec = -1;
    res("timerfd_settime sec -1", timerfd_settime(fd, 0, &bad, NULL));
    res("timerfd_settime bad flags", timerfd_settime(fd, 8, &v, NULL));
    res("timerfd_settime bad flags, bad fd", timerfd_settime(-1, 8, &v, NULL));
    struct itimerspec once = { { 0, 0 }, { 0, 1000000 } };
    timerfd_settime(fd, 0, &once, NULL);
    usleep(20000);
    timerfd_gettime(fd, &cur);
    printf("  expired one-shot reads %ld.%09ld\n", (long)cur.it_value.tv_sec, (long)cur.it_value.tv_nsec);
    close(fd);
    close(rfd);
}

/* Take every pending signal of set without waiting. */
static void drain(const sigset_t *set)
{
    struct timespec zero = { 0, 0 };
    while (sigtimedwait(set, NULL, &zero) > 0)
        ;
}

/* Intervals of a nanosecond (a microsecond for the itimer) that nobody
 * consumes for `ms`: each timer expires once and waits, as Linux restarts
 * a periodic timer only when its signal is dequeued or the timerfd read,
 * so they keep the kernel no busier than a sleep does
 * (tests/test_timers_precision.py measures that with announce set).
 * What reads back meanwhile, and the overruns counted when they are
 * consumed, are Linux's. */
static void tiny_intervals(long ms, int announce)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_BLOCK, &set, &old);
    struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
    timer_t sig_timer, none_timer;
    timer_create(CLOCK_MONOTONIC, &sev, &sig_timer);
    sev.sigev_notify = SIGEV_NONE;
    timer_create(CLOCK_MONOTONIC, &sev, &none_timer);
    struct itimerspec ns1 = { { 0, 1 }, { 0, 1 } }, cur;
    res("tiny: timer_settime 1 ns", timer_settime(sig_timer, 0, &ns1, NULL));
    res("tiny: SIGEV_NONE timer_settime 1 ns", timer_settime(none_timer, 0, &ns1, NULL));
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    res("tiny: timerfd_settime 1 ns", timerfd_settime(tfd, 0, &ns1, NULL));
    struct itimerval us1 = { { 0, 1 }, { 0, 1 } }, it;
    res("tiny: setitimer 1 us", setitimer(ITIMER_REAL, &us1, NULL));
    if (announce)
        printf("ready\n");
    struct timespec nap = { ms / 1000, ms % 1000 * 1000000 };
    nanosleep(&nap, NULL);
    if (announce)
        printf("slept\n");

    timer_gettime(sig_timer, &cur);
    printf("  signal pending: timer_gettime %ld.%09ld interval %ld.%09ld, overrun %d\n",
           (long)cur.it_value.tv_sec, cur.it_value.tv_nsec, (long)cur.it_interval.tv_sec,
           cur.it_interval.tv_nsec, timer_getoverrun(sig_timer));
    timer_gettime(none_timer, &cur);
    printf("  SIGEV_NONE: timer_gettime %ld.%09ld, overrun %d\n", (long)cur.it_value.tv_sec,
           cur.it_value.tv_nsec, timer_getoverrun(none_timer));
    getitimer(ITIMER_REAL, &it);
    printf("  SIGALRM pending: getitimer %ld.%06ld interval %ld.%06ld\n", (long)it.it_value.tv_sec,
           (long)it.it_value.tv_usec, (long)it.it_interval.tv_sec, (long)it.it_interval.tv_usec);
    siginfo_t si;
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigwaitinfo(&usr2, &si);
    int over = timer_getoverrun(sig_timer);
    printf("  dequeued: si_overrun counts the missed intervals %d, timer_getoverrun the same %d\n",
           si.si_overrun > 1000, over == si.si_overrun);
    uint64_t ticks = 0;
    res("  timerfd read", read(tfd, &ticks, sizeof ticks));
    printf("  ticks count the missed intervals %d\n", ticks > 1000);
    timer_delete(sig_timer);
    timer_delete(none_timer);
    close(tfd);
    memset(&us1, 0, sizeof us1);
    setitimer(ITIMER_REAL, &us1, NULL);
    drain(&set);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void sleeps(void)
{
    struct timespec big = { LONG_MAX, 999999999 }, rem;
    struct timespec bad = { 0, 1000000000 }, neg = { -1, 0 };
    res("nanosleep nsec 1e9", nanosleep(&bad, &rem));
    res("nanosleep sec -1", nanosleep(&neg, &rem));
    soon();
    res("nanosleep LONG_MAX", nanosleep(&big, &rem));
    printf("  rem %s\n", near(rem.tv_sec, KTIME_SEC_MAX, mono()));
    soon();
    errno = clock_nanosleep(CLOCK_MONOTONIC, 0, &big, &rem);
    printf("clock_nanosleep LONG_MAX: %s, rem %s\n", en(errno), near(rem.tv_sec, KTIME_SEC_MAX, mono()));
    soon();
    errno = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &big, NULL);
    printf("clock_nanosleep ABSTIME LONG_MAX: %s\n", en(errno));
    errno = clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL);
    printf("clock_nanosleep nsec 1e9: %s\n", en(errno));
}

static long sys_select(struct timeval *tv)
{
    return syscall(SYS_select, 0, NULL, NULL, NULL, tv);
}

static long sys_ppoll(struct pollfd *p, struct timespec *ts)
{
    return syscall(SYS_ppoll, p, 1, ts, NULL, 8);
}

static void polls(void)
{
    /* raw calls: glibc's select and ppoll hide what the kernel writes back */
    struct timeval tv = { 0, 2500000 };
    soon();
    res("select usec 2500000 (folded)", sys_select(&tv));
    printf("  left %ld s\n", (long)tv.tv_sec);
    tv.tv_sec = -1;
    tv.tv_usec = 2000000;
    soon();
    res("select -1 s + 2000000 us (folded to 1 s)", sys_select(&tv));
    printf("  left %ld s\n", (long)tv.tv_sec);
    tv.tv_sec = 0;
    tv.tv_usec = -1;
    res("select usec -1", sys_select(&tv));
    tv.tv_sec = -1;
    tv.tv_usec = 0;
    res("select sec -1", sys_select(&tv));
    tv.tv_sec = LONG_MAX;
    tv.tv_usec = 0;
    soon();
    res("select LONG_MAX", sys_select(&tv));
    printf("  left %s\n", near(tv.tv_sec, TIME64_MAX, mono()));
    tv.tv_sec = 0;
    res("select zero", sys_select(&tv));
    printf("  left %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);

    struct timespec big = { LONG_MAX, 999999999 }, bad = { 0, 1000000000 };
    big.tv_sec = LONG_MAX;
    soon();
    res("pselect6 LONG_MAX", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &big, NULL));
    printf("  left %s\n", near(big.tv_sec, TIME64_MAX, mono()));
    res("pselect6 nsec 1e9", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &bad, NULL));

    int p[2];
    pipe(p);
    struct pollfd pfd = { p[0], POLLIN, 0 };
    soon();
    res("poll INT_MAX ms", poll(&pfd, 1, INT_MAX));
    struct timespec ts = { LONG_MAX, 999999999 };
    soon();
    res("ppoll LONG_MAX", sys_ppoll(&pfd, &ts));
    printf("  left %s\n", near(ts.tv_sec, TIME64_MAX, mono()));
    struct timespec two = { 2, 0 };
    soon();
    res("ppoll 2 s", sys_ppoll(&pfd, &two));
    printf("  left %ld s\n", (long)two.tv_sec);
    res("ppoll nsec 1e9", sys_ppoll(&pfd, &bad));
    struct timespec neg = { -1, 0 };
    res("ppoll sec -1", sys_ppoll(&pfd, &neg));
    struct timespec z = { 0, 0 };
    res("ppoll zero", sys_ppoll(&pfd, &z));
    printf("  left %ld.%09ld\n", (long)z.tv_sec, (long)z.tv_nsec);

    int ep = epoll_create1(0);
    struct epoll_event ev = { EPOLLIN, { 0 } }, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    soon();
    res("epoll_wait INT_MAX ms", epoll_wait(ep, &out, 1, INT_MAX));
    soon();
    res("epoll_pwait2 LONG_MAX", syscall(SYS_epoll_pwait2, ep, &out, 1, &big, NULL, 8));
    res("epoll_pwait2 nsec 1e9", syscall(SYS_epoll_pwait2, ep, &out, 1, &bad, NULL, 8));
    res("epoll_wait maxevents 0", epoll_wait(ep, &out, 0, 0));
    close(ep);
    close(p[0]);
    close(p[1]);
}

static void futexes(void)
{
    static int word;
    struct timespec big = { LONG_MAX, 999999999 }, bad = { 0, 1000000000 }, zero = { 0, 0 };
    soon();
    res("FUTEX_WAIT LONG_MAX", syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &big, NULL, 0));
    res("FUTEX_WAIT nsec 1e9", syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &bad, NULL, 0));
    soon();
    res("FUTEX_WAIT_BITSET abs LONG_MAX", syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, &big,
                                                  NULL, FUTEX_BITSET_MATCH_ANY));
    soon();
    res("FUTEX_WAIT_BITSET|REALTIME abs LONG_MAX",
        syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &big, NULL,
                FUTEX_BITSET_MATCH_ANY));
    res("FUTEX_WAIT_BITSET|REALTIME abs 0",
        syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &zero, NULL,
                FUTEX_BITSET_MATCH_ANY));
}

static void sysv_and_mq(void)
{
    int id = semget(IPC_PRIVATE, 1, 0600);
    struct sembuf op = { 0, -1, 0 };
    struct timespec big = { LONG_MAX, 999999999 }, bad = { 0, 1000000000 }, ms = { 0, 1000000 };
    soon();
    res("semtimedop LONG_MAX", semtimedop(id, &op, 1, &big));
    res("semtimedop nsec 1e9", semtimedop(id, &op, 1, &bad));
    res("semtimedop nsec 1e9, bad id", semtimedop(-5, &op, 1, &bad));
    res("semtimedop 1 ms", semtimedop(id, &op, 1, &ms));
    static struct sembuf many[501];
    res("semop 501 ops", semop(id, many, 501));
    res("semop 0 ops", semop(id, many, 0));
    semctl(id, 0, IPC_RMID);

    struct mq_attr attr = { 0, 4, 16, 0 };
    mq_unlink("/t_timelimits");
    mqd_t q = mq_open("/t_timelimits", O_RDWR | O_CREAT, 0600, &attr);
    char buf[16];
    soon();
    res("mq_timedreceive LONG_MAX", mq_timedreceive(q, buf, sizeof buf, NULL, &big));
    res("mq_timedreceive nsec 1e9", mq_timedreceive(q, buf, sizeof buf, NULL, &bad));
    res("mq_timedreceive nsec 1e9, bad fd", mq_timedreceive(-1, buf, sizeof buf, NULL, &bad));
    struct timespec past = { 1, 0 };
    res("mq_timedreceive in the past", mq_timedreceive(q, buf, sizeof buf, NULL, &past));
    for (int i = 0; i < 4; i++)
        mq_send(q, "x", 1, 0);
    soon();
    res("mq_timedsend LONG_MAX (full)", mq_timedsend(q, "x", 1, 0, &big));
    res("mq_timedsend prio 32768, bad timeout", mq_timedsend(q, "x", 1, 32768, &bad));
    res("mq_timedsend prio 32768", mq_timedsend(q, "x", 1, 32768, &past));
    mq_close(q);
    mq_unlink("/t_timelimits");
}

static void sigwaits(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    struct timespec big = { LONG_MAX, 999999999 }, bad = { 0, 1000000000 }, zero = { 0, 0 };
    soon();
    res("sigtimedwait LONG_MAX", sigtimedwait(&set, NULL, &big));
    res("sigtimedwait nsec 1e9", sigtimedwait(&set, NULL, &bad));
    res("sigtimedwait zero", sigtimedwait(&set, NULL, &zero));
}

static void sockets(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct timeval tv = { LONG_MAX, 0 }, got;
    socklen_t len = sizeof got;
    res("SO_RCVTIMEO LONG_MAX", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &got, &len);
    printf("  reads back %ld.%06ld\n", (long)got.tv_sec, (long)got.tv_usec);
    char c;
    soon();
    res("recv with it", recv(sv[0], &c, 1, 0));
    tv.tv_sec = 1;
    tv.tv_usec = 500000;
    res("SO_RCVTIMEO 1.5 s", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    len = sizeof got;
    getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &got, &len);
    printf("  reads back %ld.%06ld\n", (long)got.tv_sec, (long)got.tv_usec);
    soon();
    res("recv interrupted (timeout: EINTR even with SA_RESTART semantics off)", recv(sv[0], &c, 1, 0));
    tv.tv_sec = 0;
    tv.tv_usec = 30000;
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    res("recv 30 ms", recv(sv[0], &c, 1, 0));
    tv.tv_usec = 1000000;
    res("SO_RCVTIMEO usec 1e6", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    tv.tv_sec = -1;
    tv.tv_usec = 0;
    res("SO_RCVTIMEO sec -1", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    len = sizeof got;
    getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &got, &len);
    printf("  reads back %ld.%06ld\n", (long)got.tv_sec, (long)got.tv_usec);
    res("SO_RCVTIMEO short", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, 8));
    /* a full send buffer with SO_SNDTIMEO */
    tv.tv_sec = 0;
    tv.tv_usec = 30000;
    res("SO_SNDTIMEO 30 ms", setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
    static char big[1 << 16];
    long sent = 0, r;
    while ((r = send(sv[1], big, sizeof big, MSG_DONTWAIT)) > 0)
        sent += r;
    res("send to a full socket", send(sv[1], big, sizeof big, 0));
    close(sv[0]);
    close(sv[1]);
}

/* exec deletes POSIX timers and keeps itimers: t_timelimits exec TIMERID */
static void after_exec(const char *id)
{
    timer_t t = (timer_t)(long)atoi(id);
    struct itimerspec cur;
    struct itimerval it;
    errno = 0;
    printf("after exec: timer_gettime %s\n", timer_gettime(t, &cur) < 0 ? strerrorname_np(errno) : "ok");
    getitimer(ITIMER_REAL, &it);
    printf("after exec: ITIMER_REAL kept %d\n", it.it_value.tv_sec > 3000);
    alarm(0);
}

static void exec_keeps_itimers(const char *self)
{
    pid_t c = fork();
    if (c == 0) {       /* fork does not inherit timers: make them here */
        timer_t t;
        struct sigevent sev = { .sigev_notify = SIGEV_NONE };
        timer_create(CLOCK_MONOTONIC, &sev, &t);
        struct itimerspec v = { { 0, 0 }, { 3600, 0 } };
        timer_settime(t, 0, &v, NULL);
        alarm(3600);
        char id[32];
        snprintf(id, sizeof id, "%ld", (long)t);
        execl(self, self, "exec", id, NULL);
        _exit(127);
    }
    waitpid(c, NULL, 0);
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "exec") == 0) {
        after_exec(argv[2]);
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "tiny") == 0) {     /* t_timelimits tiny SECONDS */
        setvbuf(stdout, NULL, _IOLBF, 0);
        tiny_intervals(atol(argv[2]) * 1000, 1);
        printf("done\n");
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    itimers();
    posix_timers();
    timerfds();
    tiny_intervals(100, 0);
    sleeps();
    polls();
    futexes();
    sysv_and_mq();
    sigwaits();
    sockets();
    exec_keeps_itimers(argv[0]);
    printf("alarms %d\n", alarms);
    printf("done\n");
    return 0;
}
