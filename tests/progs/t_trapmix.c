/* The trap path under pressure: every syscall reaches the task that made
 * it, runs exactly once, and a signal landing in the middle of one (a
 * blocked one, or one the kernel is still to take) has Linux's outcome.
 * Deterministic output, natively and in the guest, either trap path. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define CALLS 20000
#define WRITES 20000
#define STORM 20000

static void *own_tid(void *arg)
{
    long tid = syscall(SYS_gettid), bad = 0;
    for (int i = 0; i < CALLS; i++)
        bad += syscall(SYS_gettid) != tid || syscall(SYS_getpid) != getpid();
    *(long *)arg = bad;
    return NULL;
}

static volatile sig_atomic_t ticks;
static void on_tick(int sig) { (void)sig; ticks++; }

static int pfd[2];
static void on_alrm_write(int sig) { (void)sig; char c = 'x'; (void)!write(pfd[1], &c, 1); }

static volatile sig_atomic_t stop_storm;
static void on_stop(int sig) { (void)sig; stop_storm = 1; }

int main(void)
{
    /* 1. threads: each syscall answers the thread that made it */
    pthread_t th[THREADS];
    long bad[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, own_tid, &bad[i]);
    long total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        total += bad[i];
    }
    printf("threads: %d x %d gettid, wrong answers: %ld\n", THREADS, CALLS, total);

    fflush(stdout);

    /* 2. a stream of writes under a stream of signals: each write once */
    int p[2];
    if (pipe(p) < 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        close(p[1]);
        unsigned expect = 0, v;
        long dup = 0, gap = 0;
        ssize_t r;
        while ((r = read(p[0], &v, sizeof v)) == sizeof v) {
            if (v < expect) dup++;
            else if (v > expect) gap++;
            expect = v + 1;
        }
        printf("reader: %u values, duplicates %ld, gaps %ld\n", expect, dup, gap);
        fflush(stdout);
        _exit(0);
    }
    close(p[0]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { { 0, 200 }, { 0, 200 } };
    setitimer(ITIMER_REAL, &it, NULL);
    long short_writes = 0;
    for (unsigned i = 0; i < WRITES; i++) {
        ssize_t r;
        do
            r = write(p[1], &i, sizeof i);
        while (r < 0 && errno == EINTR);
        short_writes += r != sizeof i;
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    close(p[1]);
    waitpid(child, NULL, 0);
    printf("writer: %d writes, short %ld, signals seen: %d\n", WRITES, short_writes, ticks > 0);

    /* 2b. calls that never block never fail with EINTR, even under a
       handler without SA_RESTART that lands while they are on their way */
    sa.sa_handler = on_tick;
    sa.sa_flags = 0;
    sigaction(SIGALRM, &sa, NULL);
    ticks = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    long eintr = 0;
    FILE *null = fopen("/dev/null", "w");
    for (int i = 0; i < WRITES; i++) {
        eintr += syscall(SYS_kill, getpid(), 0) < 0 && errno == EINTR;
        eintr += write(fileno(null), "x", 1) < 0 && errno == EINTR;
    }
    setitimer(ITIMER_REAL, &off, NULL);
    fclose(null);
    printf("non-blocking calls under signals: EINTR %ld, signals seen: %d\n", eintr, ticks > 0);

    /* 3. a blocked read and a signal: SA_RESTART restarts it, else EINTR */
    if (pipe(pfd) < 0)
        return 1;
    char c;
    sa.sa_handler = on_alrm_write;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval once = { { 0, 0 }, { 0, 20000 } };
    setitimer(ITIMER_REAL, &once, NULL);
    ssize_t r = read(pfd[0], &c, 1);
    printf("SA_RESTART read: %zd %c\n", r, r == 1 ? c : '-');
    sa.sa_flags = 0;
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &once, NULL);
    char buf[2];
    r = read(pfd[0], buf, 2);       /* the handler's byte comes after EINTR */
    int e = errno;
    printf("plain read: %zd %s\n", r, r < 0 ? strerrorname_np(e) : "data");
    r = read(pfd[0], buf, 2);
    printf("then: %zd\n", r);
    fflush(stdout);

    /* 4. a storm of signals from another process at one that makes
       nothing but calls that never block: a signal's interrupt lands
       while the call is on its way in, taken or not yet taken by the
       kernel, and the call and the handler each run, never hang */
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_stop;
    sigaction(SIGUSR2, &sa, NULL);
    ticks = 0;
    child = fork();
    if (child == 0) {
        while (!stop_storm)
            syscall(SYS_getppid);
        _exit(ticks > 0 ? 0 : 1);
    }
    for (int i = 0; i < STORM; i++)
        kill(child, SIGUSR1);
    kill(child, SIGUSR2);
    int st;
    waitpid(child, &st, 0);
    printf("storm: %d signals, child exited %d\n", STORM, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
