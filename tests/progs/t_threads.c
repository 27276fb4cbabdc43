/* pthreads: create/join/exit, TLS, mutexes and condition variables (futex),
   CLONE_CHILD_CLEARTID wake-ups, per-thread signals, a thread blocked in
   read while another writes.  Deterministic output. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static __thread int tls_value;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long counter, atomic_counter;
static int ready;
static int pipefd[2];
static volatile pid_t handled_tid;

static void *worker(void *arg)
{
    long id = (long)arg;
    tls_value = (int)id * 10;
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
        __atomic_add_fetch(&atomic_counter, 1, __ATOMIC_SEQ_CST);
    }
    if (tls_value != id * 10)
        return (void *)-1;
    return (void *)(id + 100);
}

static void *exiter(void *arg)
{
    (void)arg;
    pthread_exit((void *)7);
}

static void *waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!ready)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return (void *)1;
}

static void *reader(void *arg)
{
    (void)arg;
    char buf[16] = {0};
    ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
    return (void *)(n == 5 && strcmp(buf, "hello") == 0 ? 1L : 0L);
}

static void on_usr1(int sig) { (void)sig; handled_tid = (pid_t)syscall(SYS_gettid); }

static void *target(void *arg)
{
    pid_t *tid = arg;
    *tid = (pid_t)syscall(SYS_gettid);
    while (!handled_tid)
        usleep(1000);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t th[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    int ok = 1;
    for (long i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        ok &= ret == (void *)(i + 100);
    }
    printf("4 workers joined, return values ok=%d, counter=%ld atomic=%ld\n", ok, counter, atomic_counter);

    pthread_t e;
    void *ret;
    pthread_create(&e, NULL, exiter, NULL);
    pthread_join(e, &ret);
    printf("pthread_exit value: %ld\n", (long)ret);

    pthread_t w;
    pthread_create(&w, NULL, waiter, NULL);
    usleep(20000);
    pthread_mutex_lock(&mu);
    ready = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(w, &ret);
    printf("condition variable wake: %ld\n", (long)ret);

    pipe(pipefd);
    pthread_t r;
    pthread_create(&r, NULL, reader, NULL);
    usleep(20000);
    write(pipefd[1], "hello", 5);
    pthread_join(r, &ret);
    printf("blocked reader thread got data: %ld\n", (long)ret);

    signal(SIGUSR1, on_usr1);
    pid_t ttid = 0;
    pthread_t tt;
    pthread_create(&tt, NULL, target, &ttid);
    while (!ttid)
        usleep(1000);
    pthread_kill(tt, SIGUSR1);
    pthread_join(tt, NULL);
    printf("pthread_kill ran the handler in the target thread: %d\n", handled_tid == ttid);
    printf("tids differ from pid: %d\n", ttid != getpid());
    printf("done\n");
    return 0;
}
