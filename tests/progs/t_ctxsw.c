/* getrusage's and wait4's voluntary context switches (ru_nvcsw): each
 * sleep in the kernel is one, the process's count holds its threads'
 * (those that ended too), RUSAGE_CHILDREN and wait4 its waited children's. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void naps(int n)
{
    struct timespec ts = {0, 1000000};
    for (int i = 0; i < n; i++)
        nanosleep(&ts, NULL);
}

static long nvcsw(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru))
        return -1;
    return ru.ru_nvcsw;
}

static long thread_naps;

static void *sleeper(void *arg)
{
    long before = nvcsw(RUSAGE_THREAD);
    naps(8);
    thread_naps = nvcsw(RUSAGE_THREAD) - before;
    return arg;
}

int main(void)
{
    long before = nvcsw(RUSAGE_SELF);
    naps(20);
    printf("self counts its sleeps: %d\n", nvcsw(RUSAGE_SELF) - before >= 20);

    long main_before = nvcsw(RUSAGE_THREAD);
    before = nvcsw(RUSAGE_SELF);
    pthread_t th;
    pthread_create(&th, NULL, sleeper, NULL);
    pthread_join(th, NULL);
    long main_own = nvcsw(RUSAGE_THREAD) - main_before;
    printf("the thread counts its own: %d\n", thread_naps >= 8);
    printf("the process keeps an ended thread's: %d\n", nvcsw(RUSAGE_SELF) - before >= thread_naps + main_own);
    printf("the main thread's are not the thread's: %d\n", main_own < thread_naps + 8);

    printf("no children yet: %ld\n", nvcsw(RUSAGE_CHILDREN));
    pid_t pid = fork();
    if (pid == 0) {
        naps(12);
        _exit(0);
    }
    struct rusage ru;
    int st;
    if (wait4(pid, &st, 0, &ru) != pid)
        return 1;
    printf("wait4 reports the child's: %d\n", ru.ru_nvcsw >= 12);
    printf("children's after the wait: %d\n", nvcsw(RUSAGE_CHILDREN) >= 12);
    printf("a bad who: %ld\n", nvcsw(7));
    printf("done\n");
    return 0;
}
