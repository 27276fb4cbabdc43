/* Futex ping-pong between two processes sharing an anonymous MAP_SHARED
   page: the parent sets the word to 1 and wakes the child, the child sets it
   back to 0 and wakes the parent, each waiting with FUTEX_WAIT (not the
   private variant: the page is shared between processes).  One round trip
   is two wake-ups, the least a trap design that hands a guest thread's call
   to the kernel and back can cost.  Run natively only, pinned to one CPU
   like the other figures.  Prints `futex_rt_us N`.  usage: bench_futex [N=20000] */
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void futex(_Atomic int *word, int op, int val)
{
    syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

/* Wait until *word == want, sleeping in the kernel while it holds the other value. */
static void await(_Atomic int *word, int want)
{
    int v;
    while ((v = atomic_load(word)) != want)
        futex(word, FUTEX_WAIT, v);
}

static void post(_Atomic int *word, int val)
{
    atomic_store(word, val);
    futex(word, FUTEX_WAKE, 1);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    _Atomic int *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (word == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    atomic_store(word, 0);
    pid_t p = fork();
    if (p < 0) {
        perror("fork");
        return 1;
    }
    if (p == 0) {
        for (long i = 0; i < n; i++) {
            await(word, 1);
            post(word, 0);
        }
        _exit(0);
    }
    double t0 = now();
    for (long i = 0; i < n; i++) {
        post(word, 1);
        await(word, 0);
    }
    double t1 = now();
    int st;
    waitpid(p, &st, 0);
    printf("futex_rt_us %.2f\n", (t1 - t0) * 1e6 / n);
    return 0;
}
