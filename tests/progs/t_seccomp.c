#define _GNU_SOURCE
/* seccomp: strict mode, filters and their actions, the checks a filter
 * passes, inheritance, TSYNC, PR_GET_SECCOMP and /proc/self/status.
 * Each case runs in a child of its own (a filter cannot be taken off),
 * which prints what it saw; the parent prints how it ended. */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>
#include "results.h"

#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static long sc(unsigned op, unsigned flags, void *args)
{
    return syscall(SYS_seccomp, op, flags, args);
}

static long add(struct sock_filter *f, unsigned short n, unsigned flags)
{
    struct sock_fprog p = {n, f};
    return sc(SECCOMP_SET_MODE_FILTER, flags, &p);
}

/* a filter: `nr` gets `action`, everything else is allowed */
static long deny(long nr, unsigned action, unsigned flags)
{
    struct sock_filter f[] = {
        LOAD_NR,
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        ALLOW,
    };
    return add(f, 4, flags);
}

static void status_line(void)
{
    char buf[4096];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(buf, sizeof buf, f))
        if (!strncmp(buf, "Seccomp", 7))
            fputs(buf, stdout);
    if (f)
        fclose(f);
}

static void run(const char *name, void (*fn)(void))
{
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        fn();
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    if (WIFSIGNALED(st))
        printf("%s: killed by %d\n", name, WTERMSIG(st));
    else
        printf("%s: exit %d\n", name, WEXITSTATUS(st));
}

static void bad_filters(void)
{
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    struct sock_filter byte_load[] = {BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0), ALLOW};
    struct sock_filter far[] = {BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 5, 0), ALLOW};
    struct sock_filter past[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64), ALLOW};
    struct sock_filter odd[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2), ALLOW};
    struct sock_filter noret[] = {LOAD_NR};
    struct sock_filter div0[] = {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), ALLOW};
    struct sock_filter unset[] = {BPF_STMT(BPF_LD | BPF_MEM, 3), ALLOW};
    struct sock_filter mem_ok[] = {BPF_STMT(BPF_ST, 3), BPF_STMT(BPF_LD | BPF_MEM, 3), ALLOW};
    struct sock_filter retx[] = {BPF_STMT(BPF_RET | BPF_X, 0)};
    res("empty", add(byte_load, 0, 0));
    res("byte load", add(byte_load, 2, 0));
    res("jump out", add(far, 2, 0));
    res("load past seccomp_data", add(past, 2, 0));
    res("misaligned load", add(odd, 2, 0));
    res("no return", add(noret, 1, 0));
    res("divide by 0", add(div0, 2, 0));
    res("scratch never stored", add(unset, 2, 0));
    res("ret x", add(retx, 1, 0));
    res("unknown flag", add(mem_ok, 3, 1u << 20));
    res("listener and tsync", add(mem_ok, 3, SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC));
    res("bad op", sc(77, 0, NULL));
    res("strict with args", sc(SECCOMP_SET_MODE_STRICT, 0, (void *)1));
    res("filter fault", sc(SECCOMP_SET_MODE_FILTER, 0, (void *)8));
    res("scratch stored then read", add(mem_ok, 3, 0));
    res("PR_GET_SECCOMP", prctl(PR_GET_SECCOMP));
}

static void no_privs(void)
{
    if (getuid() == 0 && setuid(65534))
        return;
    res("filter without no_new_privs", deny(SYS_getppid, SECCOMP_RET_ERRNO | 1, 0));
}

static void actions_avail(void)
{
    unsigned acts[] = {SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_TRAP, SECCOMP_RET_ERRNO,
                       SECCOMP_RET_TRACE, SECCOMP_RET_LOG, SECCOMP_RET_ALLOW, 0x12340000};
    for (int i = 0; i < 8; i++) {
        char what[48];
        snprintf(what, sizeof what, "action %08x available", acts[i]);
        res(what, sc(SECCOMP_GET_ACTION_AVAIL, 0, &acts[i]));
    }
    unsigned short sizes[3];
    res("notif sizes", sc(SECCOMP_GET_NOTIF_SIZES, 0, sizes));
    printf("sizes %u %u %u\n", sizes[0], sizes[1], sizes[2]);
}

static void errno_action(void)
{
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    res("PR_GET_SECCOMP before", prctl(PR_GET_SECCOMP));
    res("filter getppid EXDEV", deny(SYS_getppid, SECCOMP_RET_ERRNO | EXDEV, 0));
    res("getppid", syscall(SYS_getppid));
    res("filter gettid 5000", deny(SYS_gettid, SECCOMP_RET_ERRNO | 5000, 0));
    errno = 0;
    long r = syscall(SYS_gettid);
    printf("gettid: %ld errno %d\n", r, errno);
    res("PR_GET_SECCOMP", prctl(PR_GET_SECCOMP));
    status_line();
    res("strict now", sc(SECCOMP_SET_MODE_STRICT, 0, NULL));
    pid_t p = fork();           /* the filters are the child's too */
    if (p == 0) {
        res("child getppid", syscall(SYS_getppid));
        fflush(stdout);
        _exit(0);
    }
    waitpid(p, NULL, 0);
}

static volatile int trap_code, trap_errno, trap_syscall, trap_rax_is_nr;
static volatile unsigned trap_arch;
static volatile void *trap_addr;

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    (void)sig;
    trap_code = si->si_code;
    trap_errno = si->si_errno;
    trap_syscall = si->si_syscall;
    trap_arch = si->si_arch;
    trap_addr = si->si_call_addr;
    trap_rax_is_nr = uc->uc_mcontext.gregs[REG_RAX] == SYS_getppid;
    uc->uc_mcontext.gregs[REG_RAX] = 4242;      /* what the call returns */
}

static void trap_action(void)
{
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    res("filter getppid TRAP", deny(SYS_getppid, SECCOMP_RET_TRAP | 77, 0));
    res("getppid", syscall(SYS_getppid));
    printf("SIGSYS code %d errno %d syscall %d arch %#x rax was nr %d addr %s\n", trap_code, trap_errno,
           trap_syscall, trap_arch, trap_rax_is_nr, trap_addr ? "set" : "null");
}

static void kill_process(void)
{
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    deny(SYS_getppid, SECCOMP_RET_KILL_PROCESS, 0);
    syscall(SYS_getppid);
    printf("still here\n");
}

static void kill_thread(void)
{
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    deny(SYS_getppid, SECCOMP_RET_KILL_THREAD, 0);
    syscall(SYS_getppid);
    printf("still here\n");
}

static void strict(void)
{
    res("strict", prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT));
    fflush(stdout);
    if (write(1, "write allowed\n", 14) != 14)
        _exit(3);
    syscall(SYS_getppid);
    write(1, "still here\n", 11);
}

static void precedence(void)
{
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    deny(SYS_getppid, SECCOMP_RET_LOG, 0);
    res("LOG lets it run", syscall(SYS_getppid) > 0);
    deny(SYS_getppid, SECCOMP_RET_ERRNO | EPERM, 0);
    deny(SYS_getppid, SECCOMP_RET_ALLOW, 0);
    res("ERRNO over ALLOW and LOG", syscall(SYS_getppid));
    deny(SYS_getppid, SECCOMP_RET_TRAP | 9, SECCOMP_FILTER_FLAG_LOG);
    trap_errno = 0;
    res("TRAP over ERRNO", syscall(SYS_getppid));
    printf("trap data %d\n", trap_errno);
    deny(SYS_gettid, SECCOMP_RET_TRACE | 3, 0);
    res("TRACE with no tracer", syscall(SYS_gettid));
    status_line();
}

static void args_and_len(void)
{
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    /* dup(fd): EBADE when fd is 42 (its low word), else allowed; a getpid
     * sees the filter's length of seccomp_data; the arch checked too */
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        LOAD_NR,
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_dup, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 42, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EBADE),
        LOAD_NR,
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpid, 0, 6),
        BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
        BPF_STMT(BPF_ST, 0),
        BPF_STMT(BPF_LDX | BPF_MEM, 0),
        BPF_STMT(BPF_MISC | BPF_TXA, 0),
        BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
        BPF_STMT(BPF_RET | BPF_A, 0),
        ALLOW,
    };
    res("filter", add(f, sizeof f / sizeof f[0], 0));
    res("dup(42)", syscall(SYS_dup, 42));
    res("dup(42 + 1 << 32)", syscall(SYS_dup, 42L | 1L << 32));
    res("dup(43)", syscall(SYS_dup, 43));
    res("getpid", syscall(SYS_getpid));
}

static int gate[2];

static void *waiter(void *arg)
{
    char c;
    (void)arg;
    if (read(gate[0], &c, 1) != 1)
        return NULL;
    res("thread getppid", syscall(SYS_getppid));
    return NULL;
}

static void *doomed(void *arg)
{
    (void)arg;
    syscall(SYS_getppid);
    write(1, "thread still here\n", 18);
    return NULL;
}

static void kill_one_thread(void)
{
    pthread_t th;
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    res("filter getppid KILL_THREAD", deny(SYS_getppid, SECCOMP_RET_KILL_THREAD, 0));
    if (pthread_create(&th, NULL, doomed, NULL))
        return;
    pthread_join(th, NULL);             /* its tid cleared as it died */
    res("main after its thread was killed", syscall(SYS_gettid) > 0);
}

static void tsync(void)
{
    pthread_t th;
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (pipe(gate) || pthread_create(&th, NULL, waiter, NULL))
        return;
    res("filter with TSYNC", deny(SYS_getppid, SECCOMP_RET_ERRNO | ENOLINK, SECCOMP_FILTER_FLAG_TSYNC));
    res("main getppid", syscall(SYS_getppid));
    fflush(stdout);
    if (write(gate[1], "x", 1) != 1)
        return;
    pthread_join(th, NULL);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    need_proc();
    status_line();
    res("PR_GET_SECCOMP", prctl(PR_GET_SECCOMP));
    run("bad filters", bad_filters);
    run("no privs", no_privs);
    run("actions", actions_avail);
    run("errno", errno_action);
    run("trap", trap_action);
    run("kill process", kill_process);
    run("kill thread", kill_thread);
    run("strict", strict);
    run("precedence", precedence);
    run("args", args_and_len);
    run("tsync", tsync);
    run("kill one thread", kill_one_thread);
    printf("done\n");
    return 0;
}
