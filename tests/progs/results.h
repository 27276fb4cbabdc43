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

/* A child just forked waits until its parent closes the pipe's write end
 * (or exits), then exits. */
#include <unistd.h>
static inline void wait_then_exit(int p[2])
{
    char ch;
    close(p[1]);
    read(p[0], &ch, 1);
    _exit(0);
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
/* A whole small file into buf (NUL-terminated): its length, or -1 with errno. */
#include <fcntl.h>
static inline ssize_t read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    int e = errno;
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    errno = e;
    return n;
}

/* "label: [content]" of a small file, or "label: -1 ERRNO" */
static inline void show_small(const char *label, const char *path)
{
    char buf[512];
    ssize_t n = read_small(path, buf, sizeof buf);
    if (n < 0)
        printf("%s: -1 %s\n", label, en(errno));
    else
        printf("%s: [%.*s]\n", label, (int)n, buf);
}

/* dir/name in one of four rotating buffers, so that a call may take a few
 * paths at once (rename(at("a"), at("b"))). */
static inline char *path_in(const char *dir, const char *name)
{
    static char p[4][4200];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
    return p[i];
}
#endif
