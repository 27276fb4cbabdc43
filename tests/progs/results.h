/* How the test programs print results: errors as errno names, fds
 * relative to `base` (the first fd the program got), so that a native run
 * and a guest run print the same.  Included by programs that share them. */
#ifndef T_RESULTS_H
#define T_RESULTS_H
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int base;

static inline const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

static inline void res(const char *what, long r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: %ld\n", what, r);
}

static inline void fdres(const char *what, int r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: base+%d\n", what, r - base);
}

/* The guest's init shell mounts nothing: a program that reads /proc mounts
 * it where it is missing (natively it is always there). */
#include <sys/mount.h>
#include <unistd.h>
static inline void need_proc(void)
{
    if (access("/proc/self", F_OK) != 0)
        mount("proc", "/proc", "proc", 0, NULL);
}
#endif
