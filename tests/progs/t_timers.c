/* Timers and signal plumbing: alarm, itimers, POSIX timers, timerfd,
   signalfd, eventfd, sigtimedwait, sigqueue.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static volatile int alrm, usr1_code, usr1_val;

static void on_alrm(int sig) { (void)sig; alrm++; }
static volatile int vt, pr;
static void on_vt(int s) { (void)s; vt++; }
static void on_pr(int s) { (void)s; pr++; }
static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    usr1_code = si->si_code;
    usr1_val = si->si_value.sival_int;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on_alrm);

    /* alarm + pause */
    printf("alarm(0) before: %u\n", alarm(1));
    printf("alarm(5) replaces, left>0: %d\n", alarm(5) > 0);
    alarm(0);
    alarm(1);
    pause();
    printf("pause returned after SIGALRM: %d\n", alrm);

    /* periodic itimer */
    struct itimerval it = {{0, 20000}, {0, 20000}};
    alrm = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    while (alrm < 3)
        pause();
    struct itimerval cur;
    getitimer(ITIMER_REAL, &cur);
    printf("itimer fired 3 times, interval kept: %ld\n", (long)cur.it_interval.tv_usec);
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);

    /* ITIMER_VIRTUAL and ITIMER_PROF count CPU time: spin until they fire */
    signal(SIGVTALRM, on_vt);
    signal(SIGPROF, on_pr);
    struct itimerval cpu = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_VIRTUAL, &cpu, NULL);
    setitimer(ITIMER_PROF, &cpu, NULL);
    struct itimerval left;
    getitimer(ITIMER_VIRTUAL, &left);
    printf("virtual armed: %d\n", left.it_value.tv_usec > 0 || left.it_value.tv_sec > 0);
    while (!vt || !pr)
        ;
    printf("SIGVTALRM and SIGPROF after CPU time: %d %d\n", vt, pr);

    /* POSIX timer with SIGEV_SIGNAL and a value */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR1;
    sev.sigev_value.sival_int = 77;
    timer_t tid;
    printf("timer_create: %d\n", timer_create(CLOCK_MONOTONIC, &sev, &tid));
    struct itimerspec its = {{0, 0}, {0, 10000000}};
    timer_settime(tid, 0, &its, NULL);
    while (!usr1_code)
        pause();
    printf("posix timer: code SI_TIMER=%d value=%d\n", usr1_code == SI_TIMER, usr1_val);
    timer_delete(tid);

    /* sigqueue to self */
    usr1_code = 0;
    union sigval v = {.sival_int = 5};
    sigqueue(getpid(), SIGUSR1, v);
    printf("sigqueue: code SI_QUEUE=%d value=%d\n", usr1_code == SI_QUEUE, usr1_val);

    /* timerfd */
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec t2 = {{0, 5000000}, {0, 5000000}};
    timerfd_settime(tfd, 0, &t2, NULL);
    uint64_t ticks = 0;
    read(tfd, &ticks, 8);
    printf("timerfd read ticks>=1: %d\n", ticks >= 1);
    close(tfd);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    printf("timerfd nonblock unarmed read: %zd %s\n", read(tfd, &ticks, 8), strerrorname_np(errno));
    close(tfd);

    /* signalfd */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, 0);
    kill(getpid(), SIGUSR2);
    struct signalfd_siginfo ssi;
    ssize_t n = read(sfd, &ssi, sizeof ssi);
    printf("signalfd: n=%zd signo=%u code SI_USER=%d pid ok=%d\n", n, ssi.ssi_signo,
           ssi.ssi_code == SI_USER, ssi.ssi_pid == (uint32_t)getpid());
    close(sfd);

    /* sigtimedwait */
    struct timespec ts = {0, 20000000};
    int r = sigtimedwait(&set, NULL, &ts);
    printf("sigtimedwait nothing pending: %d %s\n", r, strerrorname_np(errno));
    raise(SIGUSR2);
    siginfo_t si;
    r = sigtimedwait(&set, &si, &ts);
    printf("sigtimedwait pending: %d code SI_TKILL=%d\n", r, si.si_code == SI_TKILL);

    /* eventfd */
    int efd = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
    uint64_t val;
    int reads = 0;
    while (read(efd, &val, 8) == 8)
        reads++;
    printf("eventfd semaphore reads: %d then %s\n", reads, strerrorname_np(errno));
    val = 10;
    write(efd, &val, 8);
    close(efd);
    efd = eventfd(0, 0);
    val = 2;
    write(efd, &val, 8);
    write(efd, &val, 8);
    read(efd, &val, 8);
    printf("eventfd counter: %llu\n", (unsigned long long)val);
    /* which clocks take POSIX timers and timerfds: TAI does, the raw and
       coarse clocks are read-only (EOPNOTSUPP), the alarm clocks need an
       RTC to wake the machine (the guest has none) */
    int clks[] = {CLOCK_TAI, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE,
                  CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM, 10, 12};
    for (unsigned i = 0; i < sizeof clks / sizeof clks[0]; i++) {
        timer_t tm;
        int r = timer_create(clks[i], NULL, &tm);
        int alarm = clks[i] == CLOCK_REALTIME_ALARM || clks[i] == CLOCK_BOOTTIME_ALARM;
        if (alarm)      /* a host with an RTC makes them natively */
            printf("clock %d: timer_create ok or EOPNOTSUPP %d", clks[i], r == 0 || errno == EOPNOTSUPP);
        else
            printf("clock %d: timer_create %d %s", clks[i], r, r < 0 ? strerrorname_np(errno) : "ok");
        if (r == 0)
            timer_delete(tm);
        r = timerfd_create(clks[i], 0);
        printf(", timerfd_create %s\n", r < 0 ? strerrorname_np(errno) : "ok");
        if (r >= 0)
            close(r);
    }
    printf("done\n");
    return 0;
}
