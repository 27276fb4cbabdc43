/* RLIMIT_STACK bounds how far the stack grows, whatever it was at exec:
 * a child lowers or raises its soft limit, then recurses through a stack
 * of a given size and reports whether it lived or died of SIGSEGV. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int rec(int kib)
{
    volatile char buf[1000];
    memset((char *)buf, kib, sizeof buf);
    return kib ? rec(kib - 1) + buf[7] : 0;     /* not a tail call: every frame stays */
}

static void trial(long limit_kib, int used_kib)
{
    pid_t p = fork();
    if (p == 0) {
        struct rlimit r;
        getrlimit(RLIMIT_STACK, &r);
        r.rlim_cur = (rlim_t)limit_kib << 10;
        if (setrlimit(RLIMIT_STACK, &r) != 0) {
            perror("setrlimit");
            _exit(2);
        }
        _exit(rec(used_kib) == 12345);
    }
    int st;
    waitpid(p, &st, 0);
    printf("limit %ld KiB, %d KiB used: %s\n", limit_kib, used_kib,
           WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : WEXITSTATUS(st) == 2 ? "setrlimit failed" : "lived");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    trial(8192, 4000);
    trial(4096, 6000);
    trial(65536, 30000);
    trial(1024, 2000);
    printf("done\n");
    return 0;
}
