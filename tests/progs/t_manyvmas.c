/* Thirty thousand mappings (a guarded allocator, a JIT's code pages), then
 * what reads or walks all of them: /proc/self/maps, smaps, smaps_rollup,
 * status, pagemap, mlockall and munlockall, a core dump, fork.  Each must
 * cost what the mappings are, not their square (smaps scanned every host
 * mapping for each of its own: minutes, the whole guest waiting).
 * argv[1]: a directory for the core. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 30000

static long drain(const char *path)
{
    char buf[4096];
    long tot = 0, r;
    int fd = open(path, O_RDONLY);
    while (fd >= 0 && (r = read(fd, buf, sizeof buf)) > 0)
        tot += r;
    close(fd);
    return tot;
}

int main(int argc, char **argv)
{
    char *base = mmap(NULL, (size_t)N * 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    for (int i = 0; i < N; i++)
        mprotect(base + (size_t)i * 8192, 4096, PROT_READ | PROT_WRITE);
    for (int i = 0; i < N; i += 100)
        base[(size_t)i * 8192] = 1;
    printf("maps: %s\n", drain("/proc/self/maps") > N * 70 ? "all" : "short");
    printf("smaps: %s\n", drain("/proc/self/smaps") > N * 1000 ? "all" : "short");
    printf("smaps_rollup: %s\n", drain("/proc/self/smaps_rollup") > 0 ? "read" : "empty");
    printf("status: %s\n", drain("/proc/self/status") > 0 ? "read" : "empty");
    static char vec[2 * N];
    printf("mincore: %d\n", mincore(base, (size_t)N * 8192, (unsigned char *)vec));
    printf("mlockall: %d munlockall: %d\n", mlockall(MCL_CURRENT), munlockall());
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_CORE, &rl);
    if (argc > 1 && chdir(argv[1]) == 0) {
        pid_t c = fork();
        if (c == 0)
            abort();
        int st;
        waitpid(c, &st, 0);
        printf("core dumped: %d\n", WIFSIGNALED(st) && WCOREDUMP(st));
    }
    printf("done\n");
    return 0;
}
