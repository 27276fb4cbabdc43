/* t_trapflood [THREADS]: while THREADS threads (default 200) trap without
 * pause, the main thread forks and waits, forks and execs, and takes a
 * signal from a timer, five times each; then it prints "done".
 *
 * Why: the kernel takes syscall notifications and ptrace stops in the
 * same turns.  With more threads trapping than a turn holds, the
 * notifications alone filled every turn, and whatever needed a stop (a
 * fork, an exec, a signal to a thread in a syscall) waited for good:
 * LTP's hackbench02 (800 threads) could not be killed by timeout(1). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;
static volatile sig_atomic_t ticks;

static void *flood(void *arg)
{
    (void)arg;
    while (!stop)
        syscall(SYS_getppid);
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    ticks++;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    pthread_t *th = calloc(n, sizeof *th);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int i = 0; i < n; i++)
        if (pthread_create(&th[i], &attr, flood, NULL)) {
            perror("pthread_create");
            return 1;
        }
    sigset_t alrm, none;
    sigemptyset(&none);
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    sigprocmask(SIG_BLOCK, &alrm, NULL);
    signal(SIGALRM, on_alarm);
    for (int round = 0; round < 5; round++) {
        int st;
        pid_t p = fork();
        if (p == 0)
            _exit(7);
        if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 7) {
            printf("fork %d failed\n", round);
            return 1;
        }
        p = fork();
        if (p == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("fork+exec %d failed\n", round);
            return 1;
        }
        struct itimerval it = {{0, 0}, {0, 20000}};
        int before = ticks;
        setitimer(ITIMER_REAL, &it, NULL);
        while (ticks == before)
            sigsuspend(&none);
    }
    stop = 1;
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    printf("done\n");
    return 0;
}
