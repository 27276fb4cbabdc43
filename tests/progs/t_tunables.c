/* Guest only (it sets machine-wide limits): the sysctls the kernel honours.
   kernel/pid_max (pids go round below it), vm/max_map_count (mmap and a
   splitting munmap fail past it), fs/nr_open (no fd table grows past it:
   unshare's copy, RLIMIT_NOFILE), kernel/sched_rr_timeslice_ms (SCHED_RR's
   quantum), kernel/core_pattern (kept; the core flag of a dump), with
   Linux's bounds; and SCHED_DEADLINE's admission on one CPU.
   tests/test_tunables.py holds the expected output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static int put(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY);
    int r = fd < 0 ? -1 : write(fd, value, strlen(value));
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

static const char *get(const char *path)
{
    static char buf[256];
    int fd = open(path, O_RDONLY);
    int n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n - (buf[n - 1] == '\n') : 0] = 0;
    return buf;
}

static void bounds(const char *path, const char *const *values)
{
    printf("%s: %s;", path + 10, get(path));
    for (; *values; values++)
        printf(" %s %s", *values, en(put(path, *values)));
    printf("\n");
}

static void pid_max(void)
{
    const char *v[] = {"300", "4194305", "-1", "abc", "2147483648", "400x", "0x190", NULL};
    bounds("/proc/sys/kernel/pid_max", v);
    printf("now %s; ", get("/proc/sys/kernel/pid_max"));
    int below = 1, last = 0;
    for (int i = 0; i < 500; i++) {
        pid_t c = fork();
        if (c == 0)
            _exit(0);
        waitpid(c, NULL, 0);
        below &= c < 400;
        if (c < last) {
            printf("after %d came %d; ", last, c);
            break;
        }
        last = c;
    }
    printf("pids below 400 %d\n", below);
    put("/proc/sys/kernel/pid_max", "32768");
}

static void max_map_count(void)
{
    const char *v[] = {"-1", "x", NULL};
    bounds("/proc/sys/vm/max_map_count", v);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        put("/proc/sys/vm/max_map_count", "200");
        char *base = (char *)0x200000000000;
        int n = 0;
        void *p;
        /* three-page mappings with gaps between them, until refused */
        while ((p = mmap(base + 6 * 4096 * n, 3 * 4096, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)) != MAP_FAILED)
            n++;
        printf("max_map_count 200: mmap refused with %s after %s mappings; ", strerrorname_np(errno),
               n > 150 && n < 200 ? "150..199" : "another number of");
        printf("a hole in one %s", en(munmap(base + 4096, 4096)));
        printf(", its end %s", en(munmap(base + 2 * 4096, 4096)));
        printf(", its start %s\n", en(munmap(base, 4096)));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    put("/proc/sys/vm/max_map_count", "65530");
}

static char stack[64 << 10] __attribute__((aligned(16)));

static int unshare_files(void *arg)
{
    (void)arg;
    printf("a shared table with fd 65, nr_open 64: unshare(CLONE_FILES) %s", en(unshare(CLONE_FILES)));
    close(65);
    printf(", without fd 65 %s\n", en(unshare(CLONE_FILES)));
    return 0;
}

static void nr_open(void)
{
    const char *v[] = {"63", "2147483585", NULL};
    bounds("/proc/sys/fs/nr_open", v);
    dup2(2, 65);
    put("/proc/sys/fs/nr_open", "64");
    fflush(stdout);
    pid_t c = clone(unshare_files, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL);
    waitpid(c, NULL, 0);
    struct rlimit rl = {64, 65};
    printf("RLIMIT_NOFILE hard 65 %s", en(setrlimit(RLIMIT_NOFILE, &rl)));
    rl.rlim_max = 64;
    printf(", 64 %s; fork with fd 65 open", en(setrlimit(RLIMIT_NOFILE, &rl)));
    put("/proc/sys/fs/nr_open", "1048576");
    rl.rlim_cur = rl.rlim_max = 1024;
    setrlimit(RLIMIT_NOFILE, &rl);
    dup2(2, 65);
    put("/proc/sys/fs/nr_open", "64");
    fflush(stdout);
    c = fork();
    if (c == 0)
        _exit(0);
    printf(" %s\n", en(c));
    if (c > 0)
        waitpid(c, NULL, 0);
    close(65);
    put("/proc/sys/fs/nr_open", "1048576");
}

static void rr_timeslice(void)
{
    struct sched_param p = {.sched_priority = 1};
    struct timespec ts;
    sched_setscheduler(0, SCHED_RR, &p);
    const char *path = "/proc/sys/kernel/sched_rr_timeslice_ms";
    printf("sched_rr_timeslice_ms %s; ", get(path));
    put(path, "25");
    sched_rr_get_interval(0, &ts);
    printf("25: %s, interval %ld.%09ld; ", get(path), (long)ts.tv_sec, ts.tv_nsec);
    put(path, "0");
    sched_rr_get_interval(0, &ts);
    printf("0: %s, interval %ld.%09ld\n", get(path), (long)ts.tv_sec, ts.tv_nsec);
    p.sched_priority = 0;
    sched_setscheduler(0, SCHED_OTHER, &p);
}

static int dumped(void)
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        raise(SIGSEGV);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    return WIFSIGNALED(st) && WCOREDUMP(st);
}

static void core_pattern(void)
{
    struct rlimit rl;
    const char *path = "/proc/sys/kernel/core_pattern";
    printf("core_pattern %s; ", get(path));
    rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
    setrlimit(RLIMIT_CORE, &rl);
    printf("RLIMIT_CORE unlimited: core flag %d; ", dumped());
    rl.rlim_cur = 4095;
    setrlimit(RLIMIT_CORE, &rl);
    printf("4095: %d; ", dumped());
    put(path, "|/bin/false %p\nignored");
    printf("%s: %d; ", get(path), dumped());
    rl.rlim_cur = 0;
    setrlimit(RLIMIT_CORE, &rl);
    printf("with RLIMIT_CORE 0 too: %d\n", dumped());
    put(path, "core");
}

struct attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t prio;
    uint64_t runtime, deadline, period;
};

static void deadline_admission(void)
{
    struct attr a = {.size = sizeof a, .policy = 6, .runtime = 30000000, .deadline = 30000000, .period = 30000000};
    printf("DEADLINE: all of the one CPU %s", en(syscall(SYS_sched_setattr, 0, &a, 0)));
    a.runtime = 28000000;
    printf(", 28/30 %s", en(syscall(SYS_sched_setattr, 0, &a, 0)));
    a.runtime = 29000000;
    printf(", then 29/30 %s", en(syscall(SYS_sched_setattr, 0, &a, 0)));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0)
        _exit(0);
    if (c > 0)
        waitpid(c, NULL, 0);
    a.policy = 0;
    a.runtime = a.deadline = a.period = 0;
    syscall(SYS_sched_setattr, 0, &a, 0);
    printf("; fork of it %s\n", en(c));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (access("/proc/self/stat", F_OK))
        mount("proc", "/proc", "proc", 0, NULL);
    pid_max();
    max_map_count();
    nr_open();
    rr_timeslice();
    core_pattern();
    deadline_admission();
    printf("done\n");
    return 0;
}
