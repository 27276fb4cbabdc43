// cflags: -g -O0
/* A program for host gdb to debug through umlpy's gdb server
 * (tests/test_gdbserver.py): a function to break in with a local, a loop,
 * a signal that arrives while gdb watches; `t_gdb spin` computes until
 * a debugger sets `stop` (gdb's Ctrl-C has a busy process to stop);
 * `t_gdb threads` runs worker() in two threads. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile int got;
volatile int stop;

static void on_usr1(int sig)
{
    got = sig;
}

int square(int x)
{
    int y = x * x;
    return y;
}

int sum_squares(int n)
{
    int total = 0;
    for (int i = 1; i <= n; i++)
        total += square(i);
    return total;
}

void *worker(void *arg)
{
    long id = (long)arg;
    return (void *)(long)sum_squares((int)id + 1);
}

static int threads(void)
{
    pthread_t th[2];
    void *r[2];
    for (long i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], &r[i]);
    printf("workers %ld %ld\n", (long)r[0], (long)r[1]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "threads") == 0)
        return threads();
    if (argc > 1 && strcmp(argv[1], "spin") == 0) {
        unsigned long spins = 0;
        while (!stop)
            spins++;
        printf("stopped spinning\n");
        return 0;
    }
    signal(SIGUSR1, on_usr1);
    int s = sum_squares(4);
    raise(SIGUSR1);
    printf("sum %d signal %d\n", s, got);
    return 0;
}
