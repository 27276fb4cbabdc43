/* Timers on CPU-time clocks: POSIX timers on the process's, the thread's
 * and a pid's CPU clock, and ITIMER_VIRTUAL / ITIMER_PROF.  Each expires
 * only once the clock has run its value (never on a sleeping process) and
 * reports what is left on that clock.  A process's ITIMER_PROF signal goes
 * to the thread using the CPU, not to one asleep (a profiler's samples are
 * of what ran).  Prints only what Linux makes
 * certain, so a native run and a guest run compare equal. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t fired, fired_code;
static volatile int fired_value;

static void on_sig(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    fired = sig;
    fired_code = si->si_code;
    fired_value = si->si_value.sival_int;
}

static long long ns_of(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* burn CPU until a signal arrives or limit ns of the clock pass */
static int spin_until_fired(clockid_t c, long long limit)
{
    long long end = ns_of(c) + limit;
    while (!fired && ns_of(c) < end)
        ;
    return fired != 0;
}

static const char *en(int r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static void one_shot(const char *name, clockid_t c, int absolute)
{
    timer_t tid;
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    sev.sigev_value.sival_int = 42;
    int r = timer_create(c, &sev, &tid);
    printf("%s: create %d %s\n", name, r, en(r));
    if (r < 0)
        return;
    struct itimerspec its = {.it_value = {0, 30000000}};      /* 30 ms of CPU */
    long long start = ns_of(c);
    if (absolute) {
        long long at = start + 30000000;
        its.it_value.tv_sec = at / 1000000000;
        its.it_value.tv_nsec = at % 1000000000;
    }
    fired = 0;
    r = timer_settime(tid, absolute ? TIMER_ABSTIME : 0, &its, NULL);
    struct itimerspec cur;
    timer_gettime(tid, &cur);
    printf("%s: set %s, left within value: %d\n", name, en(r),
           cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 30000000);
    /* sleeping runs no CPU: the timer must not expire meanwhile */
    usleep(60000);
    printf("%s: not fired while asleep: %d\n", name, !fired);
    int got = spin_until_fired(c, 2000000000LL);
    long long used = ns_of(c) - start;
    printf("%s: fired %d sig=%s code=SI_TIMER:%d value=%d after its CPU time: %d\n", name, got,
           fired == SIGUSR1 ? "SIGUSR1" : "?", fired_code == SI_TIMER, fired_value, used >= 30000000);
    timer_gettime(tid, &cur);
    printf("%s: disarmed after: %d\n", name, cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    printf("%s: delete %d\n", name, timer_delete(tid));
}

static void periodic(void)
{
    timer_t tid;
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2};
    timer_create(CLOCK_PROCESS_CPUTIME_ID, &sev, &tid);
    struct itimerspec its = {.it_value = {0, 10000000}, .it_interval = {0, 10000000}};
    timer_settime(tid, 0, &its, NULL);
    int n = 0;
    for (int i = 0; i < 3; i++) {
        fired = 0;
        n += spin_until_fired(CLOCK_PROCESS_CPUTIME_ID, 2000000000LL);
    }
    struct itimerspec cur;
    timer_gettime(tid, &cur);
    printf("periodic: 3 expiries %d, interval kept %d\n", n == 3, cur.it_interval.tv_nsec == 10000000);
    timer_delete(tid);
}

static void sigev_none(void)
{
    timer_t tid;
    struct sigevent sev = {.sigev_notify = SIGEV_NONE};
    timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &tid);
    struct itimerspec its = {.it_value = {5, 0}}, a, b;
    timer_settime(tid, 0, &its, NULL);
    timer_gettime(tid, &a);
    long long end = ns_of(CLOCK_THREAD_CPUTIME_ID) + 20000000;
    while (ns_of(CLOCK_THREAD_CPUTIME_ID) < end)
        ;
    timer_gettime(tid, &b);
    long long la = a.it_value.tv_sec * 1000000000LL + a.it_value.tv_nsec;
    long long lb = b.it_value.tv_sec * 1000000000LL + b.it_value.tv_nsec;
    printf("SIGEV_NONE: counts down with the CPU: %d\n", la - lb >= 20000000 && lb > 0);
    timer_delete(tid);
}

static void itimer(const char *name, int which, int sig)
{
    struct itimerval v = {.it_value = {0, 20000}};     /* 20 ms */
    fired = 0;
    int r = setitimer(which, &v, NULL);
    usleep(50000);
    printf("%s: set %d, not fired while asleep: %d\n", name, r, !fired);
    int got = spin_until_fired(CLOCK_PROCESS_CPUTIME_ID, 2000000000LL);
    struct itimerval cur;
    getitimer(which, &cur);
    printf("%s: fired %d right signal %d, disarmed %d\n", name, got, fired == sig,
           cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0);
}

static volatile int spin_tid, prof_to_spinner, prof_elsewhere, spinning = 1;

static void on_prof(int sig)
{
    (void)sig;
    if (gettid() == spin_tid)
        prof_to_spinner++;
    else
        prof_elsewhere++;
}

static void *spinner(void *arg)
{
    spin_tid = gettid();
    while (spinning)
        ;
    return arg;
}

static void prof_goes_to_the_busy_thread(void)
{
    struct sigaction sa = {.sa_handler = on_prof, .sa_flags = SA_RESTART}, old;
    sigaction(SIGPROF, &sa, &old);
    pthread_t th;
    pthread_create(&th, NULL, spinner, NULL);
    struct itimerval it = {{0, 10000}, {0, 10000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &it, NULL);
    /* 20 samples, however loaded the machine (10 s at most) */
    for (int i = 0; i < 1000 && prof_to_spinner + prof_elsewhere < 20; i++) {
        struct timespec ts = {0, 10000000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    setitimer(ITIMER_PROF, &off, NULL);
    spinning = 0;
    pthread_join(th, NULL);
    sigaction(SIGPROF, &old, NULL);
    printf("ITIMER_PROF of a busy thread and a sleeping one: samples %d, most to the busy one %d\n",
           prof_to_spinner + prof_elsewhere >= 20, prof_to_spinner > 4 * prof_elsewhere);
}

/* a child spins until times() gives it a tick; its parent's tms_cutime and
   tms_cstime, once it is waited for, are never less than what it was told
   (the split between user and system time never goes back: Open POSIX
   fork 8-1).  The first child this program forks. */
static void child_times(void)
{
    int p[2];
    struct tms seen, after;
    if (pipe(p) < 0)
        return;
    pid_t c = fork();
    if (c == 0) {
        do
            times(&seen);
        while (seen.tms_utime + seen.tms_stime <= 0);
        write(p[1], &seen, sizeof seen);
        _exit(0);
    }
    if (read(p[0], &seen, sizeof seen) != sizeof seen)
        return;
    waitpid(c, NULL, 0);
    times(&after);
    printf("a child's times in its parent's: %s\n",
           after.tms_cutime >= seen.tms_utime && after.tms_cstime >= seen.tms_stime ? "none less" : "less");
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    struct sigaction sa = {.sa_sigaction = on_sig, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGVTALRM, &sa, NULL);
    sigaction(SIGPROF, &sa, NULL);

    child_times();
    clockid_t pidclk;
    clock_getcpuclockid(getpid(), &pidclk);
    one_shot("process", CLOCK_PROCESS_CPUTIME_ID, 0);
    one_shot("thread", CLOCK_THREAD_CPUTIME_ID, 0);
    one_shot("pid clock", pidclk, 0);
    one_shot("process absolute", CLOCK_PROCESS_CPUTIME_ID, 1);
    periodic();
    sigev_none();
    itimer("ITIMER_VIRTUAL", ITIMER_VIRTUAL, SIGVTALRM);
    itimer("ITIMER_PROF", ITIMER_PROF, SIGPROF);
    prof_goes_to_the_busy_thread();

    /* errors: no such process's clock, a bad clock id */
    timer_t tid;
    int r = timer_create(((~(clockid_t)999999) << 3) | 2, NULL, &tid);
    printf("clock of no process: %d %s\n", r, en(r));
    r = timer_create(((~(clockid_t)0) << 3) | 4 | 3, NULL, &tid);
    printf("CPUCLOCK_MAX: %d %s\n", r, en(r));
    r = timer_create(((~(clockid_t)3) << 3) | 3, NULL, &tid);
    printf("an fd's clock: %d %s\n", r, en(r));
    printf("done\n");
    return 0;
}
