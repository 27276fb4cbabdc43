/* The memory limits: RLIMIT_STACK bounds how far the stack grows, whatever
 * it was at exec (a child lowers or raises its soft limit, then recurses
 * through a stack of a given size and reports whether it lived or died of
 * SIGSEGV); RLIMIT_AS bounds every mapping, RLIMIT_DATA private writable
 * ones and brk (ENOMEM past them). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
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

static const char *mapped(size_t len, int prot, int flags)
{
    void *p = mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return errno == ENOMEM ? "ENOMEM" : "failed otherwise";
    munmap(p, len);
    return "mapped";
}

static void limited(int res, const char *name, long mib)
{
    pid_t p = fork();
    if (p == 0) {
        struct rlimit r = {(rlim_t)mib << 20, (rlim_t)mib << 20};
        setrlimit(res, &r);
        printf("%s %ld MiB: private writable 2x %s, shared 2x %s, private read-only 2x %s, "
               "a quarter %s, brk 2x %s\n", name, mib,
               mapped((size_t)mib << 21, PROT_READ | PROT_WRITE, MAP_PRIVATE),
               mapped((size_t)mib << 21, PROT_READ | PROT_WRITE, MAP_SHARED),
               mapped((size_t)mib << 21, PROT_READ, MAP_PRIVATE),
               mapped((size_t)mib << 18, PROT_READ | PROT_WRITE, MAP_PRIVATE),
               sbrk((intptr_t)mib << 21) == (void *)-1 ? "ENOMEM" : "grown");
        _exit(0);
    }
    waitpid(p, NULL, 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    trial(8192, 4000);
    trial(4096, 6000);
    trial(65536, 30000);
    trial(1024, 2000);
    limited(RLIMIT_AS, "RLIMIT_AS", 256);
    limited(RLIMIT_DATA, "RLIMIT_DATA", 64);
    printf("done\n");
    return 0;
}
