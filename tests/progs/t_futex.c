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
    printf("done\n");
    return 0;
}
