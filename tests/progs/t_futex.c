/* futex between processes over a MAP_SHARED page (anonymous and memfd),
   and private futex errors/timeouts.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long fx(uint32_t *a, int op, uint32_t v, const struct timespec *ts)
{
    return syscall(SYS_futex, a, op, v, ts, NULL, 0);
}

static void pingpong(const char *what, uint32_t *w)
{
    *w = 0;
    pid_t c = fork();
    if (c == 0) {
        for (int i = 0; i < 100; i++) {
            while (__atomic_load_n(w, __ATOMIC_SEQ_CST) != 1)
                fx(w, FUTEX_WAIT, 0, NULL);
            __atomic_store_n(w, 0, __ATOMIC_SEQ_CST);
            fx(w, FUTEX_WAKE, 1, NULL);
        }
        _exit(0);
    }
    for (int i = 0; i < 100; i++) {
        __atomic_store_n(w, 1, __ATOMIC_SEQ_CST);
        fx(w, FUTEX_WAKE, 1, NULL);
        while (__atomic_load_n(w, __ATOMIC_SEQ_CST) != 0)
            fx(w, FUTEX_WAIT, 1, NULL);
    }
    int st;
    waitpid(c, &st, 0);
    printf("%s ping-pong 100 rounds: child exit %d\n", what, WEXITSTATUS(st));
}

static const char *rs(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

/* get_futex_key: a shared futex's word must be readable, a private one is a number */
static void faults(void)
{
    uint32_t *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint32_t *gone = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 4096);
    uint32_t w = 0, w2 = 0;
    long r = fx(gone, FUTEX_WAKE, 1, NULL);
    printf("shared wake, unmapped: %ld %s\n", r, rs(r));
    r = fx(none, FUTEX_WAKE, 1, NULL);
    printf("shared wake, PROT_NONE: %ld %s\n", r, rs(r));
    r = fx(gone, FUTEX_WAKE_PRIVATE, 1, NULL);
    printf("private wake, unmapped: %ld %s\n", r, rs(r));
    r = syscall(SYS_futex, &w, FUTEX_CMP_REQUEUE, 1, (long)1, gone, 0);
    printf("cmp_requeue, uaddr2 unmapped: %ld %s\n", r, rs(r));
    r = syscall(SYS_futex, &w, FUTEX_CMP_REQUEUE, 1, (long)-1, &w2, 0);
    printf("cmp_requeue, nr_requeue -1: %ld %s\n", r, rs(r));
    r = syscall(SYS_futex, &w, FUTEX_CMP_REQUEUE, -1, (long)1, &w2, 0);
    printf("cmp_requeue, nr_wake -1: %ld %s\n", r, rs(r));
    r = syscall(SYS_futex, &w, FUTEX_CMP_REQUEUE, 1, (long)1, &w2, 7);
    printf("cmp_requeue, value differs: %ld %s\n", r, rs(r));
    munmap(none, 4096);
}

struct waitv { uint64_t val, uaddr; uint32_t flags, reserved; };

/* futex_waitv: the index of the word woken */
static void waitv(void)
{
    uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct waitv v[3];
    for (int i = 0; i < 3; i++)
        v[i] = (struct waitv){.val = 0, .uaddr = (uintptr_t)&w[i * 16], .flags = 2};
    struct timespec now;
    long r = syscall(SYS_futex_waitv, v, 0, 0, NULL, 0);
    printf("waitv nr 0: %ld %s\n", r, rs(r));
    r = syscall(SYS_futex_waitv, v, 129, 0, NULL, 0);
    printf("waitv nr 129: %ld %s\n", r, rs(r));
    r = syscall(SYS_futex_waitv, v, 3, 1, NULL, 0);
    printf("waitv flags 1: %ld %s\n", r, rs(r));
    v[1].flags = 1;
    r = syscall(SYS_futex_waitv, v, 3, 0, NULL, 0);
    printf("waitv size flag missing: %ld %s\n", r, rs(r));
    v[1].flags = 2;
    v[1].reserved = 1;
    r = syscall(SYS_futex_waitv, v, 3, 0, NULL, 0);
    printf("waitv reserved set: %ld %s\n", r, rs(r));
    v[1].reserved = 0;
    v[2].val = 9;
    r = syscall(SYS_futex_waitv, v, 3, 0, NULL, 0);
    printf("waitv value differs: %ld %s\n", r, rs(r));
    v[2].val = 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    now.tv_nsec += 20000000;
    if (now.tv_nsec >= 1000000000) {
        now.tv_sec++;
        now.tv_nsec -= 1000000000;
    }
    r = syscall(SYS_futex_waitv, v, 3, 0, &now, CLOCK_MONOTONIC);
    printf("waitv timeout: %ld %s\n", r, rs(r));
    r = syscall(SYS_futex_waitv, v, 3, 0, &now, CLOCK_BOOTTIME);
    printf("waitv bad clock: %ld %s\n", r, rs(r));
    pid_t c = fork();
    if (c == 0) {
        usleep(100000);
        __atomic_store_n(&w[32], 1, __ATOMIC_SEQ_CST);
        fx(&w[32], FUTEX_WAKE, 1, NULL);
        _exit(0);
    }
    r = syscall(SYS_futex_waitv, v, 3, 0, NULL, 0);
    printf("waitv woken by word 2: %ld %s\n", r, rs(r));
    waitpid(c, NULL, 0);
    munmap(w, 4096);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint32_t *a = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pingpong("shared anonymous", a);
    int mfd = memfd_create("fx", 0);
    ftruncate(mfd, 4096);
    uint32_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    pingpong("memfd", m);

    uint32_t v = 5;
    long r = fx(&v, FUTEX_WAIT_PRIVATE, 4, NULL);
    printf("wait on changed value: %ld %s\n", r, strerrorname_np(errno));
    struct timespec ts = {0, 20000000};
    r = fx(&v, FUTEX_WAIT_PRIVATE, 5, &ts);
    printf("wait with timeout: %ld %s\n", r, strerrorname_np(errno));
    r = fx(&v, FUTEX_WAKE_PRIVATE, 1, NULL);
    printf("wake nobody: %ld\n", r);
    r = fx((uint32_t *)((char *)&v + 1), FUTEX_WAIT_PRIVATE, 5, NULL);
    printf("unaligned: %ld %s\n", r, strerrorname_np(errno));
    faults();
    waitv();
    printf("done\n");
    return 0;
}
