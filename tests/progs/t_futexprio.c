/* The order futex waiters are served in: by priority, real-time first and
   the higher first, arrival order among equals (Linux's plist for
   FUTEX_WAIT, its rt_mutex for FUTEX_LOCK_PI).  POSIX asks it of semaphores
   and mutexes under SCHED_FIFO (Open POSIX sem_post 8-1).  Four children
   queue in the order normal, FIFO 10, FIFO 30, FIFO 20; the parent, once
   all four sleep, wakes (or unlocks to) one at a time and prints who came.
   Needs root (SCHED_FIFO) and /proc (a child's state).  Deterministic. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "results.h"

static const int prios[] = {0, 10, 30, 20};     /* 0: SCHED_OTHER */
#define N 4

static long fx(uint32_t *a, int op, uint32_t v)
{
    return syscall(SYS_futex, a, op, v, NULL, NULL, 0);
}

/* until pid sleeps (state S in /proc/PID/stat): it is queued on the futex */
static void until_asleep(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    for (;;) {
        if (read_small(path, buf, sizeof buf) > 0) {
            char *p = strrchr(buf, ')');
            if (p && p[2] == 'S')
                return;
        }
        usleep(1000);
    }
}

/* each child: its policy, then the futex op; once through, its index
   down the pipe (and, for a PI lock, the lock passed on) */
static void serve(const char *what, uint32_t *word, int lock_op, int fd[2])
{
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            if (prios[i]) {
                struct sched_param sp = {.sched_priority = prios[i]};
                if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
                    _exit(2);
            }
            if (fx(word, lock_op, 0) < 0)
                _exit(3);
            char c = '0' + i;
            write(fd[1], &c, 1);
            if (lock_op == FUTEX_LOCK_PI)
                fx(word, FUTEX_UNLOCK_PI, 0);
            _exit(0);
        }
        until_asleep(pids[i]);
    }
    printf("%s:", what);
    for (int i = 0; i < N; i++) {
        char c;
        if (lock_op == FUTEX_WAIT)
            fx(word, FUTEX_WAKE, 1);
        else if (i == 0)
            fx(word, FUTEX_UNLOCK_PI, 0);
        if (read(fd[0], &c, 1) != 1)
            break;
        if (prios[c - '0'])
            printf(" FIFO-%d", prios[c - '0']);
        else
            printf(" OTHER");
    }
    printf("\n");
    for (int i = 0; i < N; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st))
            printf("  child %d: status %#x\n", i, st);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    need_proc();
    uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int fd[2];
    if (w == MAP_FAILED || pipe(fd) < 0)
        return 1;
    serve("FUTEX_WAKE order", &w[0], FUTEX_WAIT, fd);
    w[16] = gettid();           /* the parent holds the PI lock */
    serve("FUTEX_UNLOCK_PI order", &w[16], FUTEX_LOCK_PI, fd);
    printf("done\n");
    return 0;
}
