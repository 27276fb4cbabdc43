/* Signal actions and who sends what: SA_RESETHAND/SA_NODEFER on delivery,
   the flag bits rt_sigaction keeps, SA_NOCLDWAIT and SIGCHLD ignored
   (children reaped at once, wait then ECHILD), SIGPIPE's siginfo,
   rt_sigqueueinfo's and pidfd_send_signal's siginfo rules.  Raw syscalls
   where glibc would hide the kernel's answer.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "results.h"

#define SA_RESTORER_ 0x04000000

struct ksa {
    void *handler;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
};

static long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ms_sleep(long ms)
{
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- SA_RESETHAND ---- */
static volatile int h_calls, h_self_blocked, h_usr2_blocked, h_dfl_inside, h_nested;
static volatile unsigned long h_flags_inside;

static void on_reset(int sig, siginfo_t *si, void *uc)
{
    (void)si; (void)uc;
    h_calls++;
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    h_self_blocked = sigismember(&cur, sig);
    h_usr2_blocked = sigismember(&cur, SIGUSR2);
    struct sigaction o;
    sigaction(sig, NULL, &o);
    h_dfl_inside = o.sa_handler == SIG_DFL;
    h_flags_inside = (unsigned)o.sa_flags & ~SA_RESTORER_;
}

static void resethand_case(const char *name, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_reset;
    sa.sa_flags = flags | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &sa, NULL);
    h_calls = 0;
    raise(SIGUSR1);
    struct sigaction o;
    sigaction(SIGUSR1, NULL, &o);
    printf("%s: calls=%d self blocked=%d mask applied=%d SIG_DFL inside=%d flags inside=%#lx "
           "after: SIG_DFL=%d flags=%#lx\n", name, h_calls, h_self_blocked, h_usr2_blocked, h_dfl_inside,
           h_flags_inside, o.sa_handler == SIG_DFL, (unsigned long)(unsigned)o.sa_flags & ~SA_RESTORER_);
    pid_t c = fork();
    if (c == 0) {
        raise(SIGUSR1);         /* the default action now */
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("%s: second raise in a child: signaled=%d sig=%d\n", name, WIFSIGNALED(st), WTERMSIG(st));
}

static void on_nest(int sig)
{
    if (h_nested++ == 0)
        raise(sig);             /* with SA_NODEFER, runs again inside */
}

static void resethand(void)
{
    resethand_case("RESETHAND", SA_RESETHAND);
    resethand_case("RESETHAND|NODEFER", SA_RESETHAND | SA_NODEFER);
    resethand_case("RESETHAND|ONSTACK|RESTART", SA_RESETHAND | SA_ONSTACK | SA_RESTART);
    signal(SIGUSR1, SIG_DFL);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_nest;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGUSR2, &sa, NULL);
    h_nested = 0;
    raise(SIGUSR2);
    printf("NODEFER handler re-entered: runs=%d\n", h_nested);
    signal(SIGUSR2, SIG_DFL);
}

/* ---- rt_sigaction's argument checks and kept flag bits ---- */
static void rt_sigaction_rules(void)
{
    static const unsigned long flags[] = {
        SA_NOCLDSTOP, SA_NOCLDWAIT, SA_SIGINFO, 0x8, 0x400, 0x800, 0x1000, 0x10000, 0x02000000,
        SA_RESTORER_, SA_ONSTACK, SA_RESTART, SA_NODEFER, SA_RESETHAND, 0xffffffffUL, ~0UL,
    };
    for (unsigned i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        struct ksa a = {SIG_IGN, flags[i], NULL, 0}, o;
        long r = syscall(SYS_rt_sigaction, SIGURG, &a, NULL, 8);
        syscall(SYS_rt_sigaction, SIGURG, NULL, &o, 8);
        printf("flags %#lx: %ld, kept %#lx\n", flags[i], r, o.flags);
    }
    struct ksa a = {SIG_DFL, 0, NULL, ~0UL}, o;
    syscall(SYS_rt_sigaction, SIGURG, &a, NULL, 8);
    syscall(SYS_rt_sigaction, SIGURG, NULL, &o, 8);
    printf("mask of all: kept %#lx\n", o.mask);
    static const int sigs[] = {0, -1, 32, 33, 64, 65, SIGKILL, SIGSTOP};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "rt_sigaction(%d, act)", sigs[i]);
        struct ksa keep;
        int have = syscall(SYS_rt_sigaction, sigs[i], NULL, &keep, 8) == 0;
        res(what, syscall(SYS_rt_sigaction, sigs[i], &a, NULL, 8));
        snprintf(what, sizeof what, "rt_sigaction(%d, NULL, oact)", sigs[i]);
        res(what, syscall(SYS_rt_sigaction, sigs[i], NULL, &o, 8));
        if (have)
            syscall(SYS_rt_sigaction, sigs[i], &keep, NULL, 8);
    }
    res("rt_sigaction sigsetsize 4", syscall(SYS_rt_sigaction, SIGURG, NULL, &o, 4));
    res("rt_sigaction sigsetsize 16", syscall(SYS_rt_sigaction, SIGURG, NULL, &o, 16));
    res("rt_sigaction act EFAULT", syscall(SYS_rt_sigaction, SIGURG, (void *)8, NULL, 8));
    res("rt_sigaction oact EFAULT", syscall(SYS_rt_sigaction, SIGURG, NULL, (void *)8, 8));
    res("rt_sigaction NULL, NULL", syscall(SYS_rt_sigaction, SIGURG, NULL, NULL, 8));
    signal(SIGURG, SIG_DFL);
}

/* ---- SA_NOCLDWAIT and SIGCHLD ignored ---- */
static volatile int chld_calls, chld_code, chld_status, chld_pid_ok;
static volatile pid_t chld_expect;

static void on_chld(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    chld_calls++;
    chld_code = si->si_code;
    chld_status = si->si_status;
    chld_pid_ok = si->si_pid == chld_expect;
}

static void autoreap_case(const char *name, void *handler, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = flags;
    sigaction(SIGCHLD, &sa, NULL);
    chld_calls = 0;
    long t0 = ms_now();
    pid_t a = fork();
    if (a == 0) {
        ms_sleep(60);
        _exit(3);
    }
    pid_t b = fork();
    if (b == 0) {
        ms_sleep(150);
        _exit(4);
    }
    chld_expect = b;
    int st = -1;
    errno = 0;
    printf("%s: waitpid WNOHANG with live children: %d\n", name, waitpid(-1, &st, WNOHANG));
    ms_sleep(100);
    /* a has exited: reaped at once, nothing to wait for, not even a zombie */
    const char *k = kill(a, 0) == 0 ? "alive" : en(errno);
    errno = 0;
    int w = waitpid(a, &st, WNOHANG);
    printf("%s: exited child: kill 0 -> %s, waitpid(it) -> %s %s\n", name, k,
           w == a ? "it" : w == 0 ? "0" : "-1", en(errno));
    st = -1;
    errno = 0;
    int r = wait(&st);
    long took = ms_now() - t0;
    printf("%s: wait -> %s %s after the last child (%d), st untouched=%d\n", name,
           r == b ? "it" : r < 0 ? "-1" : "?", en(errno), took >= 140, st == -1);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    r = waitid(P_ALL, 0, &si, WEXITED);
    printf("%s: waitid P_ALL -> %d %s\n", name, r, en(errno));
    printf("%s: SIGCHLD handler calls=%d code CLD_EXITED=%d status=%d pid ok=%d\n", name, chld_calls,
           chld_code == CLD_EXITED, chld_status, chld_pid_ok);
    signal(SIGCHLD, SIG_DFL);
}

static void autoreap(void)
{
    autoreap_case("SIG_IGN", SIG_IGN, 0);
    autoreap_case("SIG_DFL+NOCLDWAIT", SIG_DFL, SA_NOCLDWAIT);
    autoreap_case("handler+NOCLDWAIT", on_chld, SA_NOCLDWAIT | SA_SIGINFO | SA_RESTART);
    autoreap_case("handler", on_chld, SA_SIGINFO | SA_RESTART);

    /* a zombie from before SIG_IGN is still reaped by wait */
    pid_t c = fork();
    if (c == 0)
        _exit(5);
    siginfo_t si;
    waitid(P_PID, c, &si, WEXITED | WNOWAIT);
    signal(SIGCHLD, SIG_IGN);
    int st = 0;
    pid_t w = wait(&st);
    printf("zombie from before SIG_IGN: wait -> %d exit=%d\n", w == c, WEXITSTATUS(st));

    /* stops are still reported to WUNTRACED with SIGCHLD ignored */
    c = fork();
    if (c == 0) {
        raise(SIGSTOP);
        _exit(6);
    }
    w = waitpid(c, &st, WUNTRACED);
    printf("stopped child under SIG_IGN: %d stopped=%d sig=%d\n", w == c, WIFSTOPPED(st), WSTOPSIG(st));
    kill(c, SIGCONT);
    errno = 0;
    w = waitpid(c, &st, 0);
    printf("then its exit: %d %s\n", w, en(errno));
    signal(SIGCHLD, SIG_DFL);
    res("waitpid INT_MIN", waitpid(-2147483647 - 1, NULL, WNOHANG));
    res("waitpid INT_MIN bad options", waitpid(-2147483647 - 1, NULL, 0x1000));
}

/* ---- SIGPIPE's siginfo ---- */
static volatile int pipe_calls, pipe_code, pipe_pid_ok, pipe_uid_ok, pipe_errno;

static void on_pipe(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    pipe_calls++;
    pipe_code = si->si_code;
    pipe_pid_ok = si->si_pid == getpid();
    pipe_uid_ok = si->si_uid == getuid();
    pipe_errno = si->si_errno;
}

static void pipe_report(const char *what, long r)
{
    printf("%s: %ld %s, SIGPIPE calls=%d code=%d pid ok=%d uid ok=%d errno=%d\n", what, r,
           r < 0 ? en(errno) : "-", pipe_calls, pipe_code, pipe_pid_ok, pipe_uid_ok, pipe_errno);
    pipe_calls = pipe_code = pipe_pid_ok = pipe_uid_ok = pipe_errno = 0;
}

static void sigpipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_pipe;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGPIPE, &sa, NULL);
    int p[2];
    pipe(p);
    close(p[0]);
    pipe_report("pipe write", write(p[1], "x", 1));
    close(p[1]);

    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    close(s[1]);
    pipe_report("unix stream write to a closed peer", write(s[0], "x", 1));
    pipe_report("unix stream send MSG_NOSIGNAL", send(s[0], "x", 1, MSG_NOSIGNAL));
    close(s[0]);
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, s);
    shutdown(s[0], SHUT_WR);
    pipe_report("unix seqpacket send after SHUT_WR", send(s[0], "x", 1, 0));
    close(s[1]);
    pipe_report("unix seqpacket send to a closed peer", send(s[0], "x", 1, 0));
    close(s[0]);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, s);
    shutdown(s[0], SHUT_WR);
    pipe_report("unix dgram send after SHUT_WR", send(s[0], "x", 1, 0));
    close(s[0]);
    close(s[1]);
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    shutdown(s[0], SHUT_WR);
    pipe_report("unix stream send after SHUT_WR", send(s[0], "x", 1, 0));
    close(s[0]);
    close(s[1]);

    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 1);
    getsockname(l, (struct sockaddr *)&a, &al);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&a, sizeof a);
    shutdown(c, SHUT_WR);
    pipe_report("tcp send after SHUT_WR", send(c, "x", 1, 0));
    close(c);
    close(l);

    /* blocked: it stays pending with the same siginfo */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pipe(p);
    close(p[0]);
    long r = write(p[1], "x", 1);
    int e = errno;
    siginfo_t si;
    memset(&si, 0xff, sizeof si);
    struct timespec zero = {0, 0};
    int got = sigtimedwait(&set, &si, &zero);
    printf("blocked SIGPIPE: write %ld %s, sigtimedwait %d code=%d pid ok=%d uid ok=%d errno=%d\n", r, en(e),
           got, si.si_code, si.si_pid == getpid(), si.si_uid == getuid(), si.si_errno);
    close(p[1]);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    signal(SIGPIPE, SIG_DFL);
}

/* ---- siginfo from the sender: rt_sigqueueinfo, pidfd_send_signal ---- */
static volatile int q_calls, q_signo, q_code, q_errno, q_pid, q_uid, q_val;
static volatile unsigned char q_tail;

static void on_q(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    q_calls++;
    q_signo = si->si_signo == sig;
    q_code = si->si_code;
    q_errno = si->si_errno;
    q_pid = si->si_pid == getpid() ? -1 : si->si_pid;     /* -1: mine */
    q_uid = si->si_uid;
    q_val = si->si_value.sival_int;
    unsigned char t = 0;
    for (unsigned i = 48; i < sizeof *si; i++)
        t |= ((unsigned char *)si)[i];
    q_tail = t;
}

static void q_report(const char *what, long r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: %ld, calls=%d signo ok=%d code=%d errno=%d pid=%d uid=%d value=%d tail=%d\n", what, r,
               q_calls, q_signo, q_code, q_errno, q_pid, q_uid, q_val, q_tail);
    q_calls = q_signo = q_code = q_errno = q_pid = q_uid = q_val = q_tail = 0;
}

static void fill(siginfo_t *si, int signo, int code)
{
    memset(si, 0, sizeof *si);
    si->si_signo = signo;
    si->si_code = code;
    si->si_errno = 7;
    si->si_pid = 4242;
    si->si_uid = 77;
    si->si_value.sival_int = 99;
}

static void sender_siginfo(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_q;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGRTMIN + 2, &sa, NULL);
    siginfo_t si;
    pid_t me = getpid();

    fill(&si, SIGUSR1, SI_QUEUE);
    q_report("rt_sigqueueinfo self SI_QUEUE", syscall(SYS_rt_sigqueueinfo, me, SIGUSR1, &si));
    fill(&si, SIGUSR2, SI_QUEUE);       /* si_signo is the call's sig */
    q_report("rt_sigqueueinfo self, other si_signo", syscall(SYS_rt_sigqueueinfo, me, SIGUSR1, &si));
    fill(&si, SIGUSR1, SI_USER);
    q_report("rt_sigqueueinfo self SI_USER", syscall(SYS_rt_sigqueueinfo, me, SIGUSR1, &si));
    fill(&si, SIGUSR1, SI_QUEUE);
    memset((char *)&si + 100, 0x5a, 8);
    q_report("rt_sigqueueinfo self, tail bytes", syscall(SYS_rt_sigqueueinfo, me, SIGUSR1, &si));
    fill(&si, SIGUSR1, -10);
    q_report("rt_sigqueueinfo self, unknown code", syscall(SYS_rt_sigqueueinfo, me, SIGUSR1, &si));
    memset((char *)&si + 100, 0x5a, 8);
    q_report("rt_sigqueueinfo self, unknown code, tail bytes", syscall(SYS_rt_sigqueueinfo, me, SIGUSR1, &si));
    fill(&si, SIGUSR1, SI_QUEUE);
    q_report("rt_sigqueueinfo sig 65", syscall(SYS_rt_sigqueueinfo, me, 65, &si));
    q_report("rt_sigqueueinfo EFAULT", syscall(SYS_rt_sigqueueinfo, me, SIGUSR1, (void *)8));
    fill(&si, SIGRTMIN + 2, SI_QUEUE);
    q_report("rt_tgsigqueueinfo self", syscall(SYS_rt_tgsigqueueinfo, me, (pid_t)syscall(SYS_gettid),
                                               SIGRTMIN + 2, &si));

    int pfd = syscall(SYS_pidfd_open, me, 0);
    fill(&si, SIGUSR1, SI_QUEUE);
    q_report("pidfd_send_signal self SI_QUEUE", syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, &si, 0));
    fill(&si, SIGUSR1, SI_USER);
    q_report("pidfd_send_signal self SI_USER", syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, &si, 0));
    fill(&si, SIGUSR1, SI_TKILL);
    q_report("pidfd_send_signal self SI_TKILL", syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, &si, 0));
    fill(&si, SIGUSR2, SI_QUEUE);
    q_report("pidfd_send_signal si_signo != sig", syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, &si, 0));
    fill(&si, 0, SI_QUEUE);
    q_report("pidfd_send_signal sig 0 si_signo 0", syscall(SYS_pidfd_send_signal, pfd, 0, &si, 0));
    fill(&si, 65, SI_QUEUE);
    q_report("pidfd_send_signal sig 65 si_signo 65", syscall(SYS_pidfd_send_signal, pfd, 65, &si, 0));
    q_report("pidfd_send_signal sig 65 NULL", syscall(SYS_pidfd_send_signal, pfd, 65, NULL, 0));
    q_report("pidfd_send_signal NULL info", syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, NULL, 0));
    q_report("pidfd_send_signal info EFAULT", syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, (void *)8, 0));
    q_report("pidfd_send_signal flags 8", syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, NULL, 8));
    q_report("pidfd_send_signal flags 3", syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, NULL, 3));
    q_report("pidfd_send_signal fd -1 flags 8", syscall(SYS_pidfd_send_signal, -1, SIGUSR1, NULL, 8));
    q_report("pidfd_send_signal fd -1", syscall(SYS_pidfd_send_signal, -1, SIGUSR1, NULL, 0));
    q_report("pidfd_send_signal fd 0 (not a pidfd)", syscall(SYS_pidfd_send_signal, 0, SIGUSR1, NULL, 0));
    close(pfd);
    /* an open /proc/PID directory names its process as a pidfd does, here only */
    if (access("/proc/self", F_OK) < 0)
        mount("proc", "/proc", "proc", 0, NULL);      /* a guest started with init=/bin/sh */
    int dfd = open("/proc/self", O_DIRECTORY | O_CLOEXEC);
    fill(&si, SIGUSR1, SI_QUEUE);
    q_report("pidfd_send_signal /proc/self dir", syscall(SYS_pidfd_send_signal, dfd, SIGUSR1, &si, 0));
    q_report("pidfd_send_signal /proc/self dir, kill's info", syscall(SYS_pidfd_send_signal, dfd, SIGUSR1, NULL, 0));
    siginfo_t wi;
    res("waitid P_PIDFD /proc/self dir", syscall(SYS_waitid, P_PIDFD, dfd, &wi, WEXITED | WNOHANG, NULL));
    close(dfd);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)syscall(SYS_gettid));
    dfd = open(path, O_DIRECTORY | O_CLOEXEC);
    q_report("pidfd_send_signal /proc/self/task/TID dir", syscall(SYS_pidfd_send_signal, dfd, SIGUSR1, NULL, 0));
    close(dfd);
    dfd = open("/proc/self/fd", O_DIRECTORY | O_CLOEXEC);
    q_report("pidfd_send_signal /proc/self/fd dir", syscall(SYS_pidfd_send_signal, dfd, SIGUSR1, NULL, 0));
    close(dfd);
    dfd = open("/", O_DIRECTORY | O_CLOEXEC);
    q_report("pidfd_send_signal / dir", syscall(SYS_pidfd_send_signal, dfd, SIGUSR1, NULL, 0));
    close(dfd);

    /* another process: only si_code < 0 (and not SI_TKILL) is allowed */
    int p[2];
    pipe(p);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t c = fork();
    if (c == 0) {
        close(p[1]);
        char x;
        read(p[0], &x, 1);
        siginfo_t got;
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, &got, &zero) == SIGRTMIN + 2)
            printf("  child got SIGRTMIN+2 code=%d errno=%d pid=%d uid=%d value=%d\n", got.si_code, got.si_errno,
                   got.si_pid, got.si_uid, got.si_value.sival_int);
        _exit(0);
    }
    close(p[0]);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    pfd = syscall(SYS_pidfd_open, c, 0);
    snprintf(path, sizeof path, "/proc/%d", (int)c);
    int cdir = open(path, O_DIRECTORY | O_CLOEXEC);
    fill(&si, SIGRTMIN + 2, SI_USER);
    res("pidfd_send_signal child's /proc dir SI_USER", syscall(SYS_pidfd_send_signal, cdir, SIGRTMIN + 2, &si, 0));
    static const int codes[] = {SI_QUEUE, SI_MESGQ, SI_USER, SI_TKILL, SI_KERNEL, 1, -60};
    for (unsigned i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "pidfd_send_signal child code %d", codes[i]);
        fill(&si, SIGRTMIN + 2, codes[i]);
        res(what, syscall(SYS_pidfd_send_signal, pfd, SIGRTMIN + 2, &si, 0));
        snprintf(what, sizeof what, "rt_sigqueueinfo child code %d", codes[i]);
        res(what, syscall(SYS_rt_sigqueueinfo, c, SIGRTMIN + 2, &si));
    }
    fill(&si, 0, SI_USER);
    res("pidfd_send_signal child sig 0 SI_USER", syscall(SYS_pidfd_send_signal, pfd, 0, &si, 0));
    write(p[1], "go", 1);
    close(p[1]);
    waitpid(c, NULL, WNOWAIT | WEXITED);
    waitid(P_PID, c, &wi, WEXITED | WNOWAIT);
    res("pidfd_send_signal to a zombie", syscall(SYS_pidfd_send_signal, pfd, SIGRTMIN + 2, NULL, 0));
    res("kill of a zombie", kill(c, SIGRTMIN + 2));
    waitpid(c, NULL, 0);
    res("pidfd_send_signal after the reap", syscall(SYS_pidfd_send_signal, pfd, SIGRTMIN + 2, NULL, 0));
    res("pidfd_send_signal its /proc dir after the reap", syscall(SYS_pidfd_send_signal, cdir, SIGRTMIN + 2, NULL, 0));
    close(cdir);
    fill(&si, SIGRTMIN + 2, SI_QUEUE);
    res("rt_sigqueueinfo after the reap", syscall(SYS_rt_sigqueueinfo, c, SIGRTMIN + 2, &si));
    fill(&si, SIGRTMIN + 2, SI_USER);
    res("rt_sigqueueinfo SI_USER after the reap", syscall(SYS_rt_sigqueueinfo, c, SIGRTMIN + 2, &si));
    res("rt_tgsigqueueinfo after the reap", syscall(SYS_rt_tgsigqueueinfo, c, c, SIGRTMIN + 2, &si));
    res("rt_tgsigqueueinfo tid 0", syscall(SYS_rt_tgsigqueueinfo, me, 0, SIGRTMIN + 2, &si));
    res("kill sig 65 after the reap", kill(c, 65));
    res("kill sig 65 of myself", kill(me, 65));
    res("tgkill sig 65 after the reap", syscall(SYS_tgkill, c, c, 65));
    close(pfd);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGRTMIN + 2, SIG_DFL);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    resethand();
    rt_sigaction_rules();
    autoreap();
    sigpipe();
    sender_siginfo();
    printf("done\n");
    return 0;
}
