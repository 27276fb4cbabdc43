/* Looking up one process's /proc entry, or one fd's /proc/self/fd link,
 * costs the same with a hundred of them as with fifteen hundred (a lookup
 * built the whole directory's table: reading every /proc/PID/stat of 3000
 * processes took 22 s).  Prints the microseconds per lookup at each size;
 * tests/test_stalls.py compares them. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/mount.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static pid_t kids[1500];

/* the newest n processes': names looked up for the first time */
static double stat_each(int from, int n)
{
    char p[64], buf[512];
    double t0 = now();
    for (int i = from; i < from + n; i++) {
        snprintf(p, sizeof p, "/proc/%d/stat", kids[i]);
        int fd = open(p, O_RDONLY);
        if (fd < 0 || read(fd, buf, sizeof buf) <= 0)
            printf("stat of %d: failed\n", kids[i]);
        close(fd);
    }
    return (now() - t0) / n * 1e6;
}

static double fd_each(int lo, int n)
{
    char p[64], buf[64];
    double t0 = now();
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "/proc/self/fd/%d", lo + i);
        if (readlink(p, buf, sizeof buf) <= 0)
            printf("fd %d: failed\n", lo + i);
    }
    return (now() - t0) / n * 1e6;
}

int main(void)
{
    if (access("/proc/self", F_OK) != 0)
        mount("proc", "/proc", "proc", 0, NULL);    /* a guest whose init mounted none */
    int n = 0;
    for (int want = 100; want <= 1500; want += 1400) {
        for (; n < want; n++) {
            kids[n] = fork();
            if (kids[n] == 0) {
                pause();
                _exit(0);
            }
        }
        printf("processes %d: %.0f us a stat\n", n, stat_each(n - 100, 100));
    }
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    while (wait(NULL) > 0)
        ;
    int fds = 0;
    for (int want = 1000; want <= 20000; want += 19000) {
        for (; fds < want; fds++)
            if (open("/dev/null", O_RDONLY) < 0)
                return 1;
        printf("fds %d: %.0f us a readlink\n", fds, fd_each(fds + 3 - 500, 500));
    }
    printf("done\n");
    return 0;
}
