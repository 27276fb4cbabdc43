/* userfaultfd: UFFDIO_API's negotiation, REGISTER's and the fill ioctls'
 * errors, missing pages of private anonymous memory served by a handler
 * thread (COPY, ZEROPAGE, WAKE) for the guest's own accesses and for the
 * kernel's (read(2) into a registered buffer), the messages (address,
 * THREAD_ID, EXACT_ADDRESS), SIGBUS mode, UFFD_USER_MODE_ONLY, poll,
 * UNREGISTER, closing the fd with a fault waiting, a forked child, and
 * /dev/userfaultfd's USERFAULTFD_IOC_NEW; /proc/self/maps over a
 * registered range.
 * Native side as root (CAP_SYS_PTRACE for kernel faults).  The WRITE flag
 * of a fault is not printed (the guest's kernel cannot tell). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#define PG 4096UL

static int uffd_new(int flags)
{
    return syscall(SYS_userfaultfd, flags);
}

static int api(int fd, uint64_t features)
{
    struct uffdio_api a = {.api = UFFD_API, .features = features};
    return ioctl(fd, UFFDIO_API, &a);
}

static long reg(int fd, void *start, unsigned long len, uint64_t mode)
{
    struct uffdio_register r = {.range = {(unsigned long)start, len}, .mode = mode};
    long rc = ioctl(fd, UFFDIO_REGISTER, &r);
    return rc < 0 ? rc : (long)(r.ioctls & 0x1c);   /* WAKE, COPY, ZEROPAGE (newer kernels add MOVE) */
}

static char *pages(int n)
{
    return mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static long copy(int fd, void *dst, const void *src, unsigned long len, uint64_t mode, long long *out)
{
    struct uffdio_copy c = {(unsigned long)dst, (unsigned long)src, len, mode, 0};
    long rc = ioctl(fd, UFFDIO_COPY, &c);
    *out = c.copy;
    return rc;
}

static long zero(int fd, void *dst, unsigned long len, long long *out)
{
    struct uffdio_zeropage z = {{(unsigned long)dst, len}, 0, 0};
    long rc = ioctl(fd, UFFDIO_ZEROPAGE, &z);
    *out = z.zeropage;
    return rc;
}

/* the handler thread: serves `n` faults as `how` says per fault:
 * 'c' copy a page of `fill`, 'z' zeropage, 'w' wake only, 'x' close the fd */
static struct {
    int fd, n;
    const char *how;
    char fill;
    pid_t faulter;
    char log[512];
} h;

static void *handler(void *arg)
{
    (void)arg;
    static char src[PG];
    for (int i = 0; i < h.n; i++) {
        struct pollfd p = {h.fd, POLLIN, 0};
        int pr = poll(&p, 1, 5000);
        struct uffd_msg m;
        ssize_t r = read(h.fd, &m, sizeof m);
        char *l = h.log + strlen(h.log);
        size_t room = sizeof h.log - strlen(h.log);
        if (r != sizeof m) {
            snprintf(l, room, " poll=%d/%x read:%s", pr, p.revents, r < 0 ? en(errno) : "short");
            return NULL;
        }
        unsigned long a = m.arg.pagefault.address;
        snprintf(l, room, " [poll=%d/%x ev=%#x off=%#lx ptid=%s", pr, p.revents, m.event,
                 a & (PG - 1), m.arg.pagefault.feat.ptid == 0 ? "0"
                 : (pid_t)m.arg.pagefault.feat.ptid == h.faulter ? "faulter" : "other");
        l = h.log + strlen(h.log);
        room = sizeof h.log - strlen(h.log);
        long long out = 0;
        long rc = 0;
        switch (h.how[i]) {
        case 'c':
            memset(src, h.fill, PG);
            rc = copy(h.fd, (void *)(a & ~(PG - 1)), src, PG, 0, &out);
            break;
        case 'z':
            rc = zero(h.fd, (void *)(a & ~(PG - 1)), PG, &out);
            break;
        case 'w': {
            struct uffdio_range w = {a & ~(PG - 1), PG};
            rc = ioctl(h.fd, UFFDIO_WAKE, &w);
            break;
        }
        case 'x':
            rc = close(h.fd);
            break;
        case 's':       /* a signal: its handler runs, the access faults again */
            rc = syscall(SYS_tgkill, getpid(), h.faulter, SIGUSR1);
            break;
        }
        snprintf(l, room, " %c=%ld/%lld]", h.how[i], rc < 0 ? -(long)errno : rc, out);
    }
    return NULL;
}

static pthread_t start(int fd, int n, const char *how, char fill)
{
    pthread_t t;
    h.fd = fd;
    h.n = n;
    h.how = how;
    h.fill = fill;
    h.faulter = gettid();
    h.log[0] = 0;
    pthread_create(&t, NULL, handler, NULL);
    return t;
}

static void stop(pthread_t t, const char *what)
{
    pthread_join(t, NULL);
    printf("%s:%s\n", what, h.log);
}

static void api_errors(void)
{
    printf("-- api\n");
    res("bad flags", uffd_new(0x100));
    int fd = uffd_new(O_CLOEXEC | O_NONBLOCK);
    printf("fd flags: %o\n", fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK));
    char *p = pages(1);
    res("register before api", reg(fd, p, PG, UFFDIO_REGISTER_MODE_MISSING));
    struct uffd_msg m;
    res("read before api", read(fd, &m, sizeof m));
    struct pollfd pf = {fd, POLLIN, 0};
    int pr = poll(&pf, 1, 0);
    printf("poll before api: %d %x\n", pr, pf.revents);
    struct uffdio_api a = {.api = 0x55, .features = 0, .ioctls = 7};
    res("bad api", ioctl(fd, UFFDIO_API, &a));
    printf("  zeroed: %llx %llx %llx\n", a.api, a.features, a.ioctls);
    a = (struct uffdio_api){.api = UFFD_API, .features = 1ULL << 62};
    res("unknown feature", ioctl(fd, UFFDIO_API, &a));
    a = (struct uffdio_api){.api = UFFD_API};
    res("api", ioctl(fd, UFFDIO_API, &a));
    printf("  api=%llx ioctls=%llx sigbus=%d tid=%d exact=%d\n", a.api, a.ioctls,
           !!(a.features & UFFD_FEATURE_SIGBUS), !!(a.features & UFFD_FEATURE_THREAD_ID),
           !!(a.features & UFFD_FEATURE_EXACT_ADDRESS));
    res("api again", api(fd, 0));
    res("bad ioctl", ioctl(fd, _IOR(0xAA, 0x30, __u64), &a));
    res("read small", read(fd, &m, 16));
    res("read empty", read(fd, &m, sizeof m));
    printf("poll nothing: %d\n", poll(&pf, 1, 0));
    close(fd);

    fd = uffd_new(0);
    api(fd, 0);
    pf.fd = fd;
    pr = poll(&pf, 1, 0);
    printf("poll blocking fd: %d %x\n", pr, pf.revents);
    close(fd);
    munmap(p, PG);
}

/* without CAP_SYS_PTRACE (vm.unprivileged_userfaultfd 0, the default):
 * only a user-mode-only userfaultfd */
static void unprivileged(void)
{
    printf("-- unprivileged\n");
    pid_t k = fork();
    if (k == 0) {
        if (setuid(65534))
            _exit(1);
        res("userfaultfd", uffd_new(O_NONBLOCK));
        int fd = uffd_new(O_NONBLOCK | UFFD_USER_MODE_ONLY);
        printf("user-mode only: %s\n", fd >= 0 ? "ok" : en(errno));
        _exit(0);
    }
    int st;
    waitpid(k, &st, 0);
}

static void register_errors(void)
{
    printf("-- register\n");
    int fd = uffd_new(O_NONBLOCK);
    api(fd, 0);
    char *p = pages(3);
    res("unaligned", reg(fd, p + 1, PG, UFFDIO_REGISTER_MODE_MISSING));
    res("len 0", reg(fd, p, 0, UFFDIO_REGISTER_MODE_MISSING));
    res("len unaligned", reg(fd, p, 100, UFFDIO_REGISTER_MODE_MISSING));
    res("mode 0", reg(fd, p, PG, 0));
    res("mode 8", reg(fd, p, PG, 8));
    res("low address", reg(fd, (void *)0, PG, UFFDIO_REGISTER_MODE_MISSING));
    res("past user space", reg(fd, (void *)0x7ffffffff000UL, PG, UFFDIO_REGISTER_MODE_MISSING));
    munmap(p + PG, PG);
    res("hole", reg(fd, p + PG, PG, UFFDIO_REGISTER_MODE_MISSING));
    res("ok", reg(fd, p, PG, UFFDIO_REGISTER_MODE_MISSING));
    res("again", reg(fd, p, PG, UFFDIO_REGISTER_MODE_MISSING));
    int fd2 = uffd_new(O_NONBLOCK);
    api(fd2, 0);
    res("other uffd", reg(fd2, p, PG, UFFDIO_REGISTER_MODE_MISSING));
    res("other uffd, free page", reg(fd2, p + 2 * PG, PG, UFFDIO_REGISTER_MODE_MISSING));

    static char src[PG];
    long long out;
    struct uffdio_copy c = {(unsigned long)p + 1, (unsigned long)src, PG, 0, 0};
    res("copy unaligned", ioctl(fd, UFFDIO_COPY, &c));
    res("copy bad mode", copy(fd, p, src, PG, 4, &out));
    res("copy unregistered", copy(fd, pages(1), src, PG, 0, &out));
    printf("  copy field: %lld\n", out);
    res("copy bad source", copy(fd, p, (void *)8, PG, 0, &out));
    printf("  copy field: %lld\n", out);
    res("copy", copy(fd, p, src, PG, UFFDIO_COPY_MODE_DONTWAKE, &out));
    printf("  copy field: %lld\n", out);
    res("copy present", copy(fd, p, src, PG, 0, &out));
    printf("  copy field: %lld\n", out);
    res("zeropage present", zero(fd, p, PG, &out));
    printf("  zeropage field: %lld\n", out);
    struct uffdio_range w = {(unsigned long)p, PG};
    res("wake", ioctl(fd, UFFDIO_WAKE, &w));
    w.start++;
    res("wake unaligned", ioctl(fd, UFFDIO_WAKE, &w));
    w = (struct uffdio_range){(unsigned long)p, PG};
    res("unregister", ioctl(fd, UFFDIO_UNREGISTER, &w));
    res("copy after unregister", copy(fd, p, src, PG, 0, &out));
    close(fd);
    close(fd2);
    munmap(p, 3 * PG);
}

static sigjmp_buf jb;
static volatile void *bus_addr;
static volatile int bus_sig;
static void on_bus(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    bus_sig = sig;
    bus_addr = si->si_addr;
    siglongjmp(jb, 1);
}

/* the vmas over [p, p + n pages), clipped to it, in pages */
static void maps(const char *what, char *p, int n)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    printf("%s maps:", what);
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
            continue;
        unsigned long a = (unsigned long)p, b = a + n * PG;
        if (hi <= a || lo >= b)
            continue;
        printf(" %ld-%ld %s", ((long)(lo < a ? a : lo) - (long)a) / (long)PG,
               ((long)(hi > b ? b : hi) - (long)a) / (long)PG, perms);
    }
    printf("\n");
    if (f)
        fclose(f);
}

static volatile int usr1;
static void on_usr1(int sig) { (void)sig; usr1++; }

/* touch p + off: the signal (SIGBUS, SIGSEGV) it gets, and where */
static void probe(const char *what, char *p, unsigned long off)
{
    if (!sigsetjmp(jb, 1)) {
        (void)*(volatile char *)(p + off);
        printf("%s: no signal\n", what);
    } else {
        printf("%s: signal %d at off %#lx\n", what, bus_sig, (unsigned long)((char *)bus_addr - p));
    }
}

static void faults(void)
{
    printf("-- faults\n");
    int fd = uffd_new(O_NONBLOCK | O_CLOEXEC);
    api(fd, 0);
    char *p = pages(12);
    p[7 * PG] = 'P';    /* populated before: never faults */
    printf("register: %ld\n", reg(fd, p, 12 * PG, UFFDIO_REGISTER_MODE_MISSING));
    printf("populated: %c\n", p[7 * PG]);
    maps("registered", p, 12);

    pthread_t t = start(fd, 1, "c", 'X');
    char c = p[0xf];
    stop(t, "read fault, copy");
    printf("  got %c\n", c);

    /* emptied by madvise: missing again */
    res("madvise", madvise(p, PG, MADV_DONTNEED));
    t = start(fd, 1, "c", 'R');
    c = p[0xf];
    stop(t, "after MADV_DONTNEED");
    printf("  got %c\n", c);

    t = start(fd, 1, "z", 0);
    c = p[PG + 100];
    stop(t, "read fault, zeropage");
    printf("  got %d\n", c);

    t = start(fd, 1, "c", 'Y');
    p[2 * PG + 5] = 'a';
    stop(t, "write fault, copy");
    printf("  got %c%c\n", p[2 * PG + 5], p[2 * PG + 6]);

    t = start(fd, 2, "wc", 'W');
    c = p[3 * PG];
    stop(t, "wake, then copy");
    printf("  got %c\n", c);

    signal(SIGUSR1, on_usr1);
    t = start(fd, 2, "sc", 'S');
    c = p[8 * PG + 8];
    stop(t, "signal, then copy");
    printf("  got %c, handler ran %d\n", c, usr1);
    maps("some filled", p, 12);

    /* the kernel's copy into a missing page waits for it too */
    int pfd[2];
    if (pipe(pfd))
        return;
    if (write(pfd[1], "hello", 5) != 5)
        return;
    t = start(fd, 1, "z", 0);
    ssize_t n = read(pfd[0], p + 4 * PG + 10, 5);
    stop(t, "read(2) into a missing page");
    printf("  read %zd: %.5s\n", n, p + 4 * PG + 10);
    /* a file read into a filled page and a missing one: whole, not short */
    int mfd = memfd_create("f", 0);
    static char big[3 * PG];
    memset(big, 'f', sizeof big);
    if (write(mfd, big, sizeof big) != (ssize_t)sizeof big)
        return;
    lseek(mfd, 0, SEEK_SET);
    t = start(fd, 1, "z", 0);
    n = read(mfd, p + 5 * PG - 100, 200);
    stop(t, "file read(2) across into a missing page");
    printf("  read %zd, pos %ld: %c%c\n", n, (long)lseek(mfd, 0, SEEK_CUR), p[5 * PG - 1], p[5 * PG + 99]);
    t = start(fd, 1, "z", 0);
    n = read(mfd, p + 9 * PG - 100, PG);
    stop(t, "a big one");
    printf("  read %zd, pos %ld: %c%c\n", n, (long)lseek(mfd, 0, SEEK_CUR), p[9 * PG - 1], p[10 * PG - 101]);
    close(mfd);
    /* and from one */
    t = start(fd, 1, "c", 'K');
    n = write(pfd[1], p + 10 * PG, 3);
    stop(t, "write(2) from a missing page");
    char back[4] = "";
    printf("  wrote %zd: %.3s\n", n, read(pfd[0], back, 3) == 3 ? back : "?");

    /* a forked child has no registration: its missing pages are zero */
    pid_t k = fork();
    if (k == 0)
        _exit(p[6 * PG + 1]);
    int st;
    waitpid(k, &st, 0);
    printf("child reads a missing page: exit=%d\n", WEXITSTATUS(st));

    /* closing the fd with a fault waiting: it goes on with a zero page */
    t = start(fd, 1, "x", 0);
    c = p[6 * PG + 1];
    stop(t, "close while waiting");
    printf("  got %d\n", c);
    close(pfd[0]);
    close(pfd[1]);
    munmap(p, 12 * PG);
}

static void features(void)
{
    printf("-- features\n");
    int fd = uffd_new(O_NONBLOCK);
    res("api tid+exact", api(fd, UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_EXACT_ADDRESS));
    char *p = pages(2);
    reg(fd, p, 2 * PG, UFFDIO_REGISTER_MODE_MISSING);
    pthread_t t = start(fd, 1, "c", 'E');
    char c = p[0x123];
    stop(t, "exact address");
    printf("  got %c\n", c);
    close(fd);
    munmap(p, 2 * PG);

    fd = uffd_new(O_NONBLOCK);
    res("api sigbus", api(fd, UFFD_FEATURE_SIGBUS));
    p = pages(1);
    reg(fd, p, PG, UFFDIO_REGISTER_MODE_MISSING);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
    probe("sigbus mode", p, 0x10);
    int pfd[2];
    if (pipe(pfd) == 0 && write(pfd[1], "x", 1) == 1) {
        errno = 0;
        res("read(2) into it", read(pfd[0], p, 1));
        close(pfd[0]);
        close(pfd[1]);
    }
    long long out;
    res("zeropage", zero(fd, p, PG, &out));
    printf("  then reads %d\n", *(volatile char *)(p + 0x10));
    close(fd);
    munmap(p, PG);

    /* mprotect over registered missing pages: PROT_NONE is the guest's
     * SIGSEGV, read-only still faults to the handler */
    fd = uffd_new(O_NONBLOCK);
    api(fd, 0);
    p = pages(2);
    reg(fd, p, 2 * PG, UFFDIO_REGISTER_MODE_MISSING);
    mprotect(p, PG, PROT_NONE);
    mprotect(p + PG, PG, PROT_READ);
    sigaction(SIGSEGV, &sa, NULL);
    probe("PROT_NONE", p, 0x20);
    signal(SIGSEGV, SIG_DFL);
    t = start(fd, 1, "c", 'O');
    c = p[PG + 3];
    stop(t, "read-only page");
    printf("  got %c\n", c);
    close(fd);
    munmap(p, 2 * PG);

    fd = uffd_new(O_NONBLOCK | UFFD_USER_MODE_ONLY);
    api(fd, 0);
    p = pages(1);
    reg(fd, p, PG, UFFDIO_REGISTER_MODE_MISSING);
    if (pipe(pfd) == 0 && write(pfd[1], "x", 1) == 1) {
        res("user-mode only: read(2) into it", read(pfd[0], p, 1));
        close(pfd[0]);
        close(pfd[1]);
    }
    pthread_t t2 = start(fd, 1, "c", 'U');
    c = p[1];
    stop(t2, "user-mode only: own fault");
    printf("  got %c\n", c);
    close(fd);
    munmap(p, PG);
}

static void device(void)
{
    printf("-- /dev/userfaultfd\n");
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) {
        printf("open: %s\n", en(errno));
        return;
    }
    res("bad ioctl", ioctl(dev, _IO(0xAA, 1), 0));
    res("bad flags", ioctl(dev, USERFAULTFD_IOC_NEW, 0x100));
    int fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    printf("new: %s flags=%o cloexec=%d\n", fd >= 0 ? "ok" : en(errno),
           fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK), fcntl(fd, F_GETFD));
    close(dev);
    api(fd, 0);
    char *p = pages(1);
    reg(fd, p, PG, UFFDIO_REGISTER_MODE_MISSING);
    pthread_t t = start(fd, 1, "c", 'D');
    char c = p[9];
    stop(t, "fault");
    printf("  got %c\n", c);
    close(fd);
    munmap(p, PG);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    need_proc();
    api_errors();
    unprivileged();
    register_errors();
    faults();
    features();
    device();
    printf("done\n");
    return 0;
}
