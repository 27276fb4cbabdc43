/* Memory as Linux manages it, for tests/test_oom.py, run natively and in
   the guest with outputs that must match (not in C_PROGRAMS: each needs
   its setting).  Subcommands:

   victims ADJ   the OOM killer's choice by badness, natively in a memory
   cgroup whose limit matches the guest's mem= (64 MiB, no swap).  Linux's
   oom_badness: resident pages + swap + page tables + oom_score_adj
   thousandths of the memory the OOM is about.
     A  oom_score_adj  800, touches  4 MiB   (the biggest badness: 4 + 51 MiB)
     B  oom_score_adj    0, touches 12 MiB
     C  oom_score_adj ADJ (-1000: never chosen), touches 12 MiB
     D  oom_score_adj    0, touches 1 MiB more at a time until killed
   so that A goes first, then D (past B), and C is never chosen; B and C
   end by our SIGTERM.  (The host may deny lowering oom_score_adj,
   CAP_SYS_RESOURCE: the test then gives C 0 on both sides, small enough
   not to be chosen either.)  We stay at 0: our few pages are never chosen.
   /proc/PID/oom_score is against all of RAM (the host's natively): only
   its order and bounds are compared.  D gives up at HOG_CAP_MB (status
   3), so a missing limit never presses the host.  stderr: "victims PID_A
   PID_D" for the test to find the kernel's lines.

   overcommit    private writable mappings, never touched, against
   MemTotal + SwapTotal of /proc/meminfo (RAM: the host's natively): the
   heuristic of vm.overcommit_memory 0 refuses one larger than that with
   ENOMEM, 1 refuses nothing, 2 what passes CommitLimit. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "meminfo.h"

#define HOG_CAP_MB 512

static int set_adj(pid_t pid, int adj)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)pid);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%d\n", adj) > 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static long oom_score(pid_t pid)
{
    char path[64];
    long v = -1;
    snprintf(path, sizeof path, "/proc/%d/oom_score", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static void touch(long mb)
{
    char *p = mmap(NULL, (size_t)mb << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        _exit(4);
    memset(p, 1, (size_t)mb << 20);
}

/* A child at adj that touches mb MiB, says so on ready, then waits. */
static pid_t holder(int adj, long mb, int ready)
{
    pid_t p = fork();
    if (p)
        return p;
    if (set_adj(getpid(), adj))
        _exit(5);
    touch(mb);
    if (write(ready, "r", 1) != 1)
        _exit(6);
    for (;;)
        pause();
}

static void status(const char *name, int st)
{
    if (WIFSIGNALED(st))
        printf("%s: killed by signal %d\n", name, WTERMSIG(st));
    else
        printf("%s: exit %d\n", name, WEXITSTATUS(st));
}

static void try_map(const char *what, long kb)
{
    void *p = mmap(NULL, (size_t)kb << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("map %s: %s\n", what, p == MAP_FAILED ? strerrorname_np(errno) : "ok");
    if (p != MAP_FAILED)
        munmap(p, (size_t)kb << 10);
}

static int overcommit(void)
{
    long total = meminfo_kb("MemTotal") + meminfo_kb("SwapTotal");
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = -1;
    if (!f || fscanf(f, "%d", &mode) != 1)
        return 1;
    fclose(f);
    printf("overcommit_memory %d\n", mode);
    try_map("RAM+swap / 2", total / 2);
    try_map("RAM+swap - 1 MiB", total - 1024);
    try_map("RAM+swap + 1 MiB", total + 1024);
    try_map("4 x (RAM+swap)", total * 4);
    return 0;
}

static int victims(int c_adj)
{
    int pfd[2];
    char c;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (pipe(pfd))
        return 1;
    pid_t a = holder(800, 4, pfd[1]), b = holder(0, 12, pfd[1]), cc = holder(c_adj, 12, pfd[1]);
    for (int i = 0; i < 3; i++)
        if (read(pfd[0], &c, 1) != 1)
            return 1;
    long sa = oom_score(a), sb = oom_score(b), sc = oom_score(cc);
    printf("oom_score: A in [1200, 2000]: %d, B in [666, 1200): %d, C 0: %d, C in [666, 1200): %d\n",
           sa >= 1200 && sa <= 2000, sb >= 666 && sb < 1200, sc == 0, sc >= 666 && sc < 1200);
    pid_t d = fork();
    if (d == 0) {
        for (int mb = 0; mb < HOG_CAP_MB; mb++)
            touch(1);
        _exit(3);
    }
    fprintf(stderr, "victims %d %d\n", (int)a, (int)d);
    const char *names[] = {"A", "B", "C", "D"};
    pid_t pids[] = {a, b, cc, d};
    for (int died = 0; died < 2; died++) {
        int st;
        pid_t w = wait(&st);
        for (int i = 0; i < 4; i++)
            if (w == pids[i]) {
                printf("died %d: ", died + 1);
                status(names[i], st);
                pids[i] = 0;
            }
    }
    for (int i = 0; i < 4; i++) {
        int st;
        if (!pids[i])
            continue;
        kill(pids[i], SIGTERM);
        waitpid(pids[i], &st, 0);
        printf("then ");
        status(names[i], st);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "victims"))
        return victims(atoi(argv[2]));
    if (argc > 1 && !strcmp(argv[1], "overcommit"))
        return overcommit();
    fprintf(stderr, "usage: t_oomkill victims ADJ | overcommit\n");
    return 2;
}
