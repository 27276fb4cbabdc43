/* t_nproc: the limits on how many tasks there may be, which stop a fork
 * bomb: kernel.threads-max for the whole machine (even root), and
 * RLIMIT_NPROC per real user (threads count too; root is exempt).  Run as
 * root in the guest (it sets threads-max and becomes uid 1000). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "results.h"

static int tasks_now(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    int running = 0, total = 0;
    if (!f || fscanf(f, "%*s %*s %*s %d/%d", &running, &total) != 2)
        return -1;
    fclose(f);
    return total;
}

/* fork children that wait, until fork fails: how many, and its errno */
static int fork_until_refused(pid_t *kids, int max, int *err)
{
    int n = 0;
    for (; n < max; n++) {
        pid_t c = fork();
        if (c < 0) {
            *err = errno;
            break;
        }
        if (c == 0) {
            pause();
            _exit(0);
        }
        kids[n] = c;
    }
    return n;
}

static void reap(pid_t *kids, int n)
{
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    for (int i = 0; i < n; i++)
        waitpid(kids[i], NULL, 0);
}

static void *idle(void *arg)
{
    pause();
    return arg;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t kids[200];
    int err = 0;

    /* threads-max binds root */
    FILE *f = fopen("/proc/sys/kernel/threads-max", "r+");
    int saved = 0;
    fscanf(f, "%d", &saved);
    int before = tasks_now();
    fprintf(f, "%d\n", before + 20);
    fclose(f);
    int n = fork_until_refused(kids, 200, &err);
    printf("root forks under threads-max: %d more, then %s\n", n, en(err));
    reap(kids, n);
    f = fopen("/proc/sys/kernel/threads-max", "w");
    fprintf(f, "%d\n", saved);
    fclose(f);

    /* RLIMIT_NPROC binds a user: its tasks, threads too */
    pid_t c = fork();
    if (c == 0) {
        struct rlimit rl = {6, 6};
        setrlimit(RLIMIT_NPROC, &rl);
        if (setuid(1000) != 0) {
            res("setuid", -1);
            _exit(1);
        }
        err = 0;
        n = fork_until_refused(kids, 200, &err);
        printf("user forks with RLIMIT_NPROC 6: %d more, then %s\n", n, en(err));
        reap(kids, 2);
        pthread_t th[10];
        int made = 0, r = 0;
        for (; made < 10; made++) {
            if ((r = pthread_create(&th[made], NULL, idle, NULL)) != 0)
                break;
        }
        printf("  two children reaped: %d threads more, then %s\n", made, en(r));
        reap(kids + 2, n - 2);
        _exit(0);
    }
    waitpid(c, NULL, 0);

    /* a set*uid to a user already over RLIMIT_NPROC succeeds; the execve
       after it fails (EAGAIN) while the user is still over */
    c = fork();
    if (c == 0) {
        pid_t h[2];
        for (int i = 0; i < 2; i++)
            if ((h[i] = fork()) == 0) {
                setuid(1000);
                pause();
                _exit(0);
            }
        usleep(200000);
        struct rlimit one = {1, 1};
        setrlimit(RLIMIT_NPROC, &one);
        res("setuid to a user over RLIMIT_NPROC", setuid(1000));
        char *args[] = {"/bin/true", NULL};
        execv(args[0], args);
        res("  execve then", -1);
        reap(h, 2);
        execv(args[0], args);
        _exit(9);
    }
    int st = 0;
    waitpid(c, &st, 0);
    printf("  execve once the user is under it: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "runs" : "fails");

    /* root is exempt from RLIMIT_NPROC */
    struct rlimit rl = {2, 2};
    setrlimit(RLIMIT_NPROC, &rl);
    err = 0;
    n = fork_until_refused(kids, 10, &err);
    printf("root forks past RLIMIT_NPROC 2: %d\n", n);
    reap(kids, n);
    printf("done\n");
    return 0;
}
