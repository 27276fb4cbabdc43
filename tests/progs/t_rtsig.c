/* Real-time signals queue (each instance with its value, in order); standard
   signals do not.  RLIMIT_SIGPENDING bounds a user's queue, kill()'s
   real-time signals too (as a user no other process runs as, when root).
   Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int vals[16], nvals, usr1;

static void on_rt(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    vals[nvals++] = (sig - SIGRTMIN) * 100 + si->si_value.sival_int;
}

static void on_usr1(int sig) { (void)sig; usr1++; }

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN, &sa, NULL);
    sigaction(SIGRTMIN + 1, &sa, NULL);
    signal(SIGUSR1, on_usr1);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    sigaddset(&set, SIGRTMIN + 1);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    for (int i = 1; i <= 3; i++) {
        union sigval v = {.sival_int = i};
        sigqueue(getpid(), SIGRTMIN + 1, v);
        sigqueue(getpid(), SIGRTMIN, v);
    }
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR1);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("usr1 delivered %d time(s); rt:", usr1);
    for (int i = 0; i < nvals; i++)
        printf(" %d", vals[i]);
    printf("\n");
    sigprocmask(SIG_BLOCK, &set, NULL);
    union sigval v = {.sival_int = 9};
    sigqueue(getpid(), SIGRTMIN, v);
    sigqueue(getpid(), SIGRTMIN, v);
    siginfo_t si;
    int a = sigwaitinfo(&set, &si), b = sigwaitinfo(&set, &si);
    printf("sigwaitinfo twice: %d %d value=%d\n", a - SIGRTMIN, b - SIGRTMIN, si.si_value.sival_int);
    fflush(stdout);
    pid_t kid = fork();
    if (kid == 0) {
        if (getuid() == 0 && setuid(43210))
            _exit(1);
        struct rlimit r = { 10, 10 };
        setrlimit(RLIMIT_SIGPENDING, &r);
        int kills = 0;
        for (int i = 0; i < 50; i++)
            kills += kill(getpid(), SIGRTMIN) == 0;
        int q = sigqueue(getpid(), SIGRTMIN, v);
        printf("past the limit: kill ok %d, sigqueue %s", kills, q ? strerror(errno) : "ok");
        q = syscall(SYS_tgkill, getpid(), gettid(), SIGRTMIN);
        printf(", tgkill %s", q ? strerror(errno) : "ok");
        syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
        struct timespec zero = {0, 0};
        sigset_t rt;
        sigemptyset(&rt);
        sigaddset(&rt, SIGRTMIN);
        int n = 0;
        while (sigtimedwait(&rt, &si, &zero) == SIGRTMIN)
            n++;
        sigemptyset(&rt);
        sigaddset(&rt, SIGUSR1);
        int got = sigtimedwait(&rt, &si, &zero);
        printf(", queued %d; a tgkill'ed SIGUSR1: %d, code %d, pid %d\n", n, got == SIGUSR1, si.si_code,
               si.si_pid);
        /* each POSIX timer holds one of the user's pending signals */
        timer_t ids[64];
        int timers = 0;
        while (timers < 64 && timer_create(CLOCK_MONOTONIC, NULL, &ids[timers]) == 0)
            timers++;
        printf("timers: %d, then %s", timers, strerror(errno));
        for (int i = 0; i < 5 && i < timers; i++)
            timer_delete(ids[i]);
        for (int i = 0; i < 10; i++)
            kill(getpid(), SIGRTMIN);
        sigemptyset(&rt);
        sigaddset(&rt, SIGRTMIN);
        n = 0;
        while (sigtimedwait(&rt, &si, &zero) == SIGRTMIN)
            n++;
        printf("; with 5 deleted, kill queues %d\n", n);
        _exit(0);
    }
    waitpid(kid, NULL, 0);
    printf("done\n");
    return 0;
}
