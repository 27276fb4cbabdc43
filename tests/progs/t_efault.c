/* Guest memory access follows Linux's rules: every syscall that copies to or
 * from user memory against read-only, PROT_NONE, unmapped, kernel-half,
 * non-canonical and NULL addresses, and against a buffer that runs from a
 * writable page into a read-only one; what a failed copy leaves behind (pipe
 * data, file offsets, signal masks, reaped children).  Then signal frames
 * that cannot be written and rt_sigreturn frames the CPU would refuse, each
 * in a child whose end is reported.  Works in ARGV1/efault. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define PG 4096
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

static void res(const char *t, const char *what, long r)
{
    if (r < 0)
        printf("%s %s: -1 %s\n", t, what, en(errno));
    else
        printf("%s %s: %ld\n", t, what, r);
}

static int pipefd[2], sock[2], filefd, dirfd_, epfd, idle_epfd;
static char good[PG];

/* ---- copies to and from bad addresses ---------------------------------- */

static void refill(void)
{
    char junk[64];
    int n;
    while (ioctl(pipefd[0], FIONREAD, &n) == 0 && n > 0)
        read(pipefd[0], junk, sizeof junk);
    write(pipefd[1], "abcdef", 6);
    while (recv(sock[0], junk, sizeof junk, MSG_DONTWAIT) > 0)
        ;
    send(sock[1], "uvwxyz", 6, 0);
}

static void leftover(const char *t)
{
    char b[16] = {0};
    long n = read(pipefd[0], b, sizeof b - 1);
    printf("%s   pipe keeps: %ld %s\n", t, n, n > 0 ? b : "");
    memset(b, 0, sizeof b);
    n = recv(sock[0], b, sizeof b - 1, MSG_DONTWAIT);
    printf("%s   socket keeps: %ld %s\n", t, n, n > 0 ? b : "");
}

static void copies(const char *t, void *p, int readable)
{
    struct iovec iov = { p, 4 };

    refill();
    res(t, "read pipe", read(pipefd[0], p, 6));
    res(t, "recv stream", recv(sock[0], p, 6, 0));
    leftover(t);
    lseek(filefd, 0, SEEK_SET);
    res(t, "read file", read(filefd, p, 3));
    res(t, "  offset after", lseek(filefd, 0, SEEK_CUR));
    res(t, "pread file", pread(filefd, p, 4, 0));
    res(t, "readv file", preadv(filefd, &iov, 1, 0));
    lseek(dirfd_, 0, SEEK_SET);
    res(t, "getdents64", syscall(SYS_getdents64, dirfd_, p, 4096));
    res(t, "fstat", syscall(SYS_fstat, filefd, p));
    res(t, "stat", syscall(SYS_stat, ".", p));
    res(t, "newfstatat", syscall(SYS_newfstatat, AT_FDCWD, ".", p, 0));
    res(t, "statx", syscall(SYS_statx, AT_FDCWD, ".", 0, 0xfff, p));
    res(t, "ioctl FIONREAD", ioctl(pipefd[0], FIONREAD, p));
    res(t, "getcwd", syscall(SYS_getcwd, p, 200));
    res(t, "uname", syscall(SYS_uname, p));
    res(t, "clock_gettime", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, p));
    res(t, "gettimeofday", syscall(SYS_gettimeofday, p, NULL));
    res(t, "getrlimit", syscall(SYS_getrlimit, RLIMIT_NOFILE, p));
    res(t, "sysinfo", syscall(SYS_sysinfo, p));
    res(t, "getrusage", syscall(SYS_getrusage, RUSAGE_SELF, p));
    res(t, "sched_getaffinity", syscall(SYS_sched_getaffinity, 0, 128, p));
    res(t, "getresuid", syscall(SYS_getresuid, p, p, p));
    res(t, "sigaltstack old", syscall(SYS_sigaltstack, NULL, p));
    socklen_t sl = sizeof(struct sockaddr);
    res(t, "getsockname", getsockname(sock[0], p, &sl));
    res(t, "getsockname len", getsockname(sock[0], (struct sockaddr *)good, p));
    /* fds made before the copy-out fails are not left behind */
    int before = dup(0);
    close(before);
    res(t, "pipe", syscall(SYS_pipe, p));
    res(t, "socketpair", syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, p));
    int after = dup(0);
    close(after);
    printf("%s   next fd moved by %d\n", t, after - before);
    /* the mask changes even though the old one cannot be stored */
    sigset_t add, cur;
    sigemptyset(&add);
    sigaddset(&add, SIGUSR1);
    res(t, "rt_sigprocmask", syscall(SYS_rt_sigprocmask, SIG_BLOCK, &add, p, 8));
    sigprocmask(SIG_SETMASK, NULL, &cur);
    printf("%s   SIGUSR1 blocked: %d\n", t, sigismember(&cur, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &add, NULL);
    /* wait4 reaps the child even when the status cannot be stored */
    pid_t c = fork();
    if (c == 0)
        _exit(3);
    res(t, "wait4", syscall(SYS_wait4, c, p, 0, NULL) == c ? 1 : -1);
    res(t, "  wait again", waitpid(c, NULL, WNOHANG));
    /* readiness results copied back */
    res(t, "poll", syscall(SYS_poll, p, 1, 0));
    res(t, "select", syscall(SYS_select, 1, p, NULL, NULL, &(struct timeval){0, 0}));
    refill();
    res(t, "epoll_wait", syscall(SYS_epoll_wait, epfd, p, 1, 0));
    /* nothing ready: the array must be user memory before the wait */
    res(t, "epoll_wait idle", syscall(SYS_epoll_wait, idle_epfd, p, 1, 1));
    /* syscalls that only read from the address */
    res(t, "write pipe", write(pipefd[1], p, 4));
    if (readable)
        return;     /* what they read there would be a path, a mask, a time */
    res(t, "open", syscall(SYS_open, p, O_RDONLY));
    res(t, "mkdir", syscall(SYS_mkdir, p, 0755));
    res(t, "rt_sigprocmask set", syscall(SYS_rt_sigprocmask, SIG_BLOCK, p, NULL, 8));
    res(t, "nanosleep req", syscall(SYS_nanosleep, p, NULL));
}

static void split_copies(char *p)
{
    char big[8192];
    const char *t = "split";
    refill();
    write(pipefd[1], "gh", 2);
    res(t, "read pipe", read(pipefd[0], p, 8));
    res(t, "recv stream", recv(sock[0], p, 6, 0));
    leftover(t);
    lseek(filefd, 0, SEEK_SET);
    res(t, "read file", read(filefd, p, 8));
    res(t, "  offset after", lseek(filefd, 0, SEEK_CUR));
    int big_fd = open("efault/big", O_RDWR | O_CREAT | O_TRUNC, 0644);
    memset(big, 'B', sizeof big);
    write(big_fd, big, sizeof big);
    lseek(big_fd, 0, SEEK_SET);
    res(t, "read big file", read(big_fd, p, 8192));
    res(t, "  offset after", lseek(big_fd, 0, SEEK_CUR));
    close(big_fd);
    res(t, "getcwd", syscall(SYS_getcwd, p, 200));
}

/* ---- signal frames ---------------------------------------------------------- */

static void report(const char *what, pid_t c)
{
    int st;
    waitpid(c, &st, 0);
    if (WIFEXITED(st))
        printf("%s: exit %d\n", what, WEXITSTATUS(st));
    else
        printf("%s: signal %s\n", what, sigabbrev_np(WTERMSIG(st)));
    fflush(stdout);
}

static void on_usr1(int sig) { (void)sig; }

static void on_segv_exit(int sig) { (void)sig; _exit(42); }

static void set_handler(int sig, void (*h)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

static void altstack_at(uintptr_t sp, size_t size)
{
    stack_t ss = { (void *)sp, 0, size };
    if (sigaltstack(&ss, NULL) < 0)
        printf("sigaltstack: %s\n", en(errno));
    set_handler(SIGUSR1, on_usr1, SA_ONSTACK);
    raise(SIGUSR1);
    _exit(0);
}

/* Raise SIGUSR1 with a raw syscall after pointing rsp at sp: no stack is
   touched before the kernel builds the frame. */
static void kill_with_sp(uintptr_t sp)
{
    set_handler(SIGUSR1, on_usr1, 0);
    long pid = getpid();
    __asm__ volatile("mov %0, %%rsp\n\t"
                     "mov $62, %%eax\n\t"      /* kill */
                     "mov %1, %%rdi\n\t"
                     "mov $10, %%esi\n\t"      /* SIGUSR1 */
                     "syscall\n\t"
                     "ud2"
                     :: "r"(sp), "r"(pid) : "rax", "rdi", "rsi", "rcx", "r11", "memory");
    _exit(0);
}

#pragma GCC diagnostic ignored "-Winfinite-recursion"
static int depth(int n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    return depth(n + 1) + pad[0];
}

static void on_segv_report(int sig)
{
    (void)sig;
    static const char m[] = "caught the overflow on the alternate stack\n";
    write(1, m, sizeof m - 1);
    _exit(0);
}

static void overflow(int with_altstack)
{
    if (with_altstack) {
        static char alt[65536];
        stack_t ss = { alt, 0, sizeof alt };
        sigaltstack(&ss, NULL);
        set_handler(SIGSEGV, on_segv_report, SA_ONSTACK);
    } else {
        set_handler(SIGSEGV, on_segv_exit, 0);
    }
    depth(0);
    _exit(0);
}

static void on_usr1_query(int sig)
{
    stack_t old;
    (void)sig;
    sigaltstack(NULL, &old);
    printf("in handler: ss_flags %#x size %zu\n", (unsigned)old.ss_flags, old.ss_size);
    fflush(stdout);
}

static void autodisarm(void)
{
    static char alt[65536];
    stack_t ss = { alt, SS_AUTODISARM, sizeof alt }, old;
    if (sigaltstack(&ss, NULL) < 0) {
        printf("SS_AUTODISARM: %s\n", en(errno));
        _exit(1);
    }
    set_handler(SIGUSR1, on_usr1_query, SA_ONSTACK);
    raise(SIGUSR1);
    sigaltstack(NULL, &old);
    printf("after handler: ss_flags %#x size %zu\n", (unsigned)old.ss_flags, old.ss_size);
    ss.ss_flags = 5;
    int r = sigaltstack(&ss, NULL);
    printf("bad flags: %d %s\n", r, en(errno));
    ss.ss_flags = 0;
    ss.ss_size = 1000;
    r = sigaltstack(&ss, NULL);
    printf("small: %d %s\n", r, en(errno));
    _exit(0);
}

/* ---- rt_sigreturn -------------------------------------------------------- */

static int sigreturn_mode;

static void edit_context(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    (void)sig;
    (void)si;
    switch (sigreturn_mode) {
    case 1:     /* fpstate moved off its 64-byte alignment */
        uc->uc_mcontext.fpregs = (void *)((char *)uc->uc_mcontext.fpregs + 8);
        break;
    case 2:     /* no fpstate: the FPU is reset */
        uc->uc_mcontext.fpregs = NULL;
        break;
    case 3:     /* reserved MXCSR bits: the CPU refuses the state */
        uc->uc_mcontext.fpregs->mxcsr = 0xffffffff;
        break;
    case 4:     /* the first magic word is gone: only the legacy area counts */
        ((uint32_t *)uc->uc_mcontext.fpregs)[116] = 0;
        break;
    case 5:     /* a data segment as the code segment */
        uc->uc_mcontext.gregs[REG_CSGSFS] = (uc->uc_mcontext.gregs[REG_CSGSFS] & ~0xffffUL) | 0x2b;
        break;
    case 6:     /* flags a handler cannot change: IOPL, IF */
        uc->uc_mcontext.gregs[REG_EFL] |= 0x3000;
        uc->uc_mcontext.gregs[REG_EFL] &= ~0x200UL;
        break;
    }
}

static void sigreturn_case(int mode)
{
    struct sigaction sa;
    unsigned int mxcsr = 0x7f80;     /* round toward zero: kept unless the FPU is reset */
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = edit_context;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    sigreturn_mode = mode;
    __asm__ volatile("ldmxcsr %0" :: "m"(mxcsr));
    raise(SIGUSR1);
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    unsigned long fl;
    __asm__ volatile("pushfq; pop %0" : "=r"(fl));
    printf("survived: mxcsr %#x IOPL/IF %#lx\n", mxcsr, fl & 0x3200);
    fflush(stdout);
    _exit(0);
}

static void garbage_sigreturn(int fill)
{
    static char frame[8192] __attribute__((aligned(64)));
    memset(frame, fill, sizeof frame);
    __asm__ volatile("mov %0, %%rsp\n\t"
                     "mov $15, %%eax\n\t"
                     "syscall\n\t"
                     "ud2" :: "r"(frame + 4096) : "rax", "rcx", "r11", "memory");
    _exit(0);
}

/* ---- an interrupted sleep whose remaining time cannot be stored ---------- */

static void on_alarm(int sig) { (void)sig; }

static void sleep_bad_rem(void *rem, int clock)
{
    struct itimerval it = { {0, 0}, {0, 20000} };
    struct timespec req = { 2, 0 };
    set_handler(SIGALRM, on_alarm, 0);
    setitimer(ITIMER_REAL, &it, NULL);
    if (clock) {
        int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, rem);
        printf("clock_nanosleep: %s\n", en(r));
    } else {
        long r = syscall(SYS_nanosleep, &req, rem);
        printf("nanosleep: %ld %s\n", r, en(errno));
    }
    fflush(stdout);
    _exit(0);
}

#define CHILD(what, call) do { pid_t c_ = fork(); if (c_ == 0) { call; _exit(0); } report(what, c_); } while (0)

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    struct rlimit no_core = { 0, 0 };
    setrlimit(RLIMIT_CORE, &no_core);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (chdir(dir) < 0)
        return 1;
    system("rm -rf efault");
    mkdir("efault", 0755);

    pipe2(pipefd, O_NONBLOCK);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sock);
    filefd = open("efault/f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(filefd, "0123456789", 10);
    dirfd_ = open("efault", O_RDONLY | O_DIRECTORY);
    epfd = epoll_create1(0);
    struct epoll_event ev = { EPOLLIN, { 0 } };
    epoll_ctl(epfd, EPOLL_CTL_ADD, pipefd[0], &ev);
    idle_epfd = epoll_create1(0);

    char *ro = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(ro, 0, PG);
    mprotect(ro, PG, PROT_READ);
    char *none = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *unm = (char *)0x1000;     /* below mmap_min_addr: nobody maps it */
    char *two = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(two + PG, PG, PROT_READ);

    copies("ro", ro, 1);
    copies("none", none, 0);
    copies("unmapped", unm, 0);
    copies("text", (void *)&main, 1);
    copies("kernel", (void *)0xffffffff81000000UL, 0);
    copies("noncanonical", (void *)0x0000800000000000UL, 0);
    copies("top", (void *)0x00007ffffffff000UL, 0);
    copies("null", NULL, 0);
    split_copies(two + PG - 4);

    CHILD("altstack unmapped", altstack_at((uintptr_t)unm, PG));
    CHILD("altstack kernel", altstack_at(0xffffffff81000000UL, 65536));
    CHILD("altstack noncanonical", altstack_at(0x0000800000000000UL, 65536));
    CHILD("altstack read-only", altstack_at((uintptr_t)ro, PG));
    CHILD("altstack too small", altstack_at((uintptr_t)two, 2048));
    CHILD("sp 0", kill_with_sp(0));
    CHILD("sp kernel", kill_with_sp(0xffffffff81000000UL));
    CHILD("sp noncanonical", kill_with_sp(0x0000800000000000UL));
    CHILD("sp unmapped", kill_with_sp((uintptr_t)unm + PG));
    CHILD("sp read-only", kill_with_sp((uintptr_t)ro + PG));
    CHILD("stack overflow, handler, no altstack", overflow(0));
    CHILD("stack overflow, handler on altstack", overflow(1));
    CHILD("SS_AUTODISARM", autodisarm());
    CHILD("sigreturn fpstate misaligned", sigreturn_case(1));
    CHILD("sigreturn fpstate NULL", sigreturn_case(2));
    CHILD("sigreturn bad mxcsr", sigreturn_case(3));
    CHILD("sigreturn no magic2", sigreturn_case(4));
    CHILD("sigreturn data segment as cs", sigreturn_case(5));
    CHILD("sigreturn flags", sigreturn_case(6));
    CHILD("sigreturn zero frame", garbage_sigreturn(0));
    CHILD("sigreturn 0x41 frame", garbage_sigreturn(0x41));
    CHILD("nanosleep rem read-only", sleep_bad_rem(ro, 0));
    CHILD("nanosleep rem kernel", sleep_bad_rem((void *)0xffffffff81000000UL, 0));
    CHILD("clock_nanosleep rem unmapped", sleep_bad_rem(unm, 1));

    system("rm -rf efault");
    printf("done\n");
    return 0;
}
