/* kcmp(2): sameness of files (dup'ed, inherited, reopened, an O_PATH fd),
   of the address space, fd table, fs context, signal handlers, I/O
   context and semaphore undo list between a process and its clones; the
   order is consistent (a<b one way, b>a the other); epoll targets
   (KCMP_EPOLL_TFD); ESRCH, EBADF, EINVAL, ENOENT and EPERM (an
   unprivileged caller and another user's process).  Prints only
   "same"/"different" and errnos: the order itself is random per boot. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long kcmp(pid_t a, pid_t b, int type, unsigned long i1, unsigned long i2)
{
    return syscall(SYS_kcmp, a, b, type, i1, i2);
}

static void show(const char *what, long r)
{
    if (r < 0)
        printf("%s: %s\n", what, strerror(errno));
    else
        printf("%s: %s\n", what, r == 0 ? "same" : r == 1 || r == 2 ? "different" : "?");
}

/* one pair both ways: the answers must mirror */
static void pair(const char *what, pid_t a, pid_t b, int type, long i1, long i2)
{
    long x = kcmp(a, b, type, i1, i2), y = kcmp(b, a, type, i2, i1);
    show(what, x);
    if (x >= 0 && !(x == 0 ? y == 0 : x + y == 3))
        printf("%s: not mirrored (%ld, %ld)\n", what, x, y);
}

static char stack[65536];
static int child_fn(void *arg)
{
    (void)arg;
    pause();
    return 0;
}

static pid_t cloned(int flags)
{
    return clone(child_fn, stack + sizeof stack, flags | SIGCHLD, NULL);
}

static void reap(pid_t p)
{
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t me = getpid();
    int p1[2], p2[2];
    if (pipe(p1) || pipe(p2))
        return 1;
    int a = p1[0], b = dup(a), c = p2[0];
    int p = open("/", O_PATH);
    pair("dup'ed fd", me, me, KCMP_FILE, a, b);
    pair("another pipe", me, me, KCMP_FILE, a, c);
    pair("O_PATH fd against itself", me, me, KCMP_FILE, p, p);
    show("no such fd", kcmp(me, me, KCMP_FILE, a, 999));
    show("bad type", kcmp(me, me, 99, 0, 0));
    show("no such pid", kcmp(me, 99999, KCMP_VM, 0, 0));

    pid_t f = fork();
    if (f == 0) {
        pause();
        _exit(0);
    }
    pair("fork: inherited fd", me, f, KCMP_FILE, a, a);
    pair("fork: vm", me, f, KCMP_VM, 0, 0);
    pair("fork: files", me, f, KCMP_FILES, 0, 0);
    pair("fork: fs", me, f, KCMP_FS, 0, 0);
    pair("fork: sighand", me, f, KCMP_SIGHAND, 0, 0);
    pair("fork: io", me, f, KCMP_IO, 0, 0);
    pair("fork: sysvsem", me, f, KCMP_SYSVSEM, 0, 0);
    reap(f);

    pid_t v = cloned(CLONE_VM | CLONE_FILES | CLONE_FS);
    pair("clone VM|FILES|FS: vm", me, v, KCMP_VM, 0, 0);
    pair("clone VM|FILES|FS: files", me, v, KCMP_FILES, 0, 0);
    pair("clone VM|FILES|FS: fs", me, v, KCMP_FS, 0, 0);
    reap(v);

    /* an epoll target, by (tfd, toff) */
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
    struct kcmp_epoll_slot slot = {.efd = ep, .tfd = a, .toff = 0};
    show("epoll target is the file", kcmp(me, me, KCMP_EPOLL_TFD, a, (unsigned long)&slot));
    show("epoll target against another", kcmp(me, me, KCMP_EPOLL_TFD, c, (unsigned long)&slot));
    slot.toff = 1;
    show("epoll target toff past it", kcmp(me, me, KCMP_EPOLL_TFD, a, (unsigned long)&slot));
    slot.toff = 0;
    slot.tfd = c;
    show("epoll target not watched", kcmp(me, me, KCMP_EPOLL_TFD, a, (unsigned long)&slot));
    slot.efd = a;
    show("epoll slot not an epoll", kcmp(me, me, KCMP_EPOLL_TFD, a, (unsigned long)&slot));

    /* privilege: an unprivileged caller on its own process, and on root's */
    f = fork();
    if (f == 0) {
        pid_t parent = getppid();
        if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000))
            _exit(2);
        show("unprivileged, own process", kcmp(getpid(), getpid(), KCMP_VM, 0, 0));
        show("unprivileged, root's process", kcmp(getpid(), parent, KCMP_VM, 0, 0));
        _exit(0);
    }
    waitpid(f, NULL, 0);
    printf("done\n");
    return 0;
}
