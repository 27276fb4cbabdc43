/* The signal model: delivery order, masks across fork/exec, siginfo,
   sigaltstack, SA_RESTART vs EINTR, nanosleep remaining time, sigsuspend,
   fault handlers that fix up and return, PDEATHSIG, subreaper, core bit. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int order[8], norder;
static volatile int got_usr1, on_alt;
static char altstack[65536];
static sigjmp_buf jb;
static volatile char *fault_page;

static void rec(int sig) { order[norder++] = sig; }
static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int local;
    on_alt = (char *)&local >= altstack && (char *)&local < altstack + sizeof altstack;
    got_usr1 = sig == SIGUSR1 && si->si_code == SI_USER && si->si_pid == getpid();
}
static void on_alrm(int sig) { (void)sig; }
static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    /* fix up: make the page writable and return to retry the store */
    if ((char *)si->si_addr >= (char *)fault_page && (char *)si->si_addr < (char *)fault_page + 4096)
        mprotect((void *)fault_page, 4096, PROT_READ | PROT_WRITE);
    else
        siglongjmp(jb, 1);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && strcmp(argv[2], "exec-child") == 0) {
        sigset_t cur;
        sigprocmask(SIG_SETMASK, NULL, &cur);
        struct sigaction sa;
        sigaction(SIGUSR2, NULL, &sa);
        printf("after exec: USR1 blocked=%d, USR2 handler reset=%d, TERM ignored kept=%d\n",
               sigismember(&cur, SIGUSR1), sa.sa_handler == SIG_DFL,
               (sigaction(SIGTERM, NULL, &sa), sa.sa_handler == SIG_IGN));
        return 0;
    }
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);

    /* delivery order: lowest number first when several are pending */
    signal(SIGUSR2, rec); signal(SIGHUP, rec); signal(SIGTERM, rec);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2); sigaddset(&set, SIGHUP); sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, &old);
    raise(SIGTERM); raise(SIGUSR2); raise(SIGHUP);
    sigset_t pend;
    sigpending(&pend);
    printf("pending: HUP=%d USR2=%d TERM=%d\n", sigismember(&pend, SIGHUP), sigismember(&pend, SIGUSR2),
           sigismember(&pend, SIGTERM));
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("order: %d %d %d\n", order[0], order[1], order[2]);

    /* siginfo and sigaltstack */
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    kill(getpid(), SIGUSR1);
    printf("SIGUSR1 siginfo ok=%d on altstack=%d\n", got_usr1, on_alt);

    /* masks across fork and exec */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGTERM, SIG_IGN);
    pid_t c = fork();
    if (c == 0) {
        sigset_t cur;
        sigprocmask(SIG_SETMASK, NULL, &cur);
        printf("child keeps mask: %d\n", sigismember(&cur, SIGUSR1));
        execl(argv[0], argv[0], argc > 1 ? argv[1] : ".", "exec-child", (char *)NULL);
        _exit(127);
    }
    waitpid(c, NULL, 0);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    signal(SIGTERM, SIG_DFL);

    /* SA_RESTART vs EINTR on a pipe read */
    int p[2];
    pipe(p);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alrm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    char b;
    ssize_t n = read(p[0], &b, 1);
    printf("read without SA_RESTART: %zd %s\n", n, strerrorname_np(errno));
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    c = fork();
    if (c == 0) {
        sleep(2);
        write(p[1], "r", 1);
        _exit(0);
    }
    alarm(1);
    n = read(p[0], &b, 1);
    printf("read with SA_RESTART restarted: %zd %c\n", n, b);
    waitpid(c, NULL, 0);

    /* nanosleep interrupted reports the remaining time */
    sa.sa_flags = 0;
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    struct timespec req = {5, 0}, rem = {0, 0};
    int r = nanosleep(&req, &rem);
    printf("nanosleep: %d %s, remaining between 3 and 4.1 s: %d\n", r, strerrorname_np(errno),
           rem.tv_sec >= 3 && rem.tv_sec <= 4);

    /* sigsuspend */
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_BLOCK, &set, &old);
    alarm(1);
    sigset_t wait_mask = old;
    sigdelset(&wait_mask, SIGALRM);
    r = sigsuspend(&wait_mask);
    sigset_t after;
    sigprocmask(SIG_SETMASK, NULL, &after);
    printf("sigsuspend: %d %s, mask restored=%d\n", r, strerrorname_np(errno), sigismember(&after, SIGALRM));
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* a SIGSEGV handler that fixes the fault and returns */
    fault_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    fault_page[10] = 42;
    printf("store after fix-up: %d\n", fault_page[10]);
    if (sigsetjmp(jb, 1) == 0) {
        *(volatile int *)8 = 1;
        printf("not reached\n");
    } else {
        printf("escaped a fault with siglongjmp\n");
    }
    signal(SIGSEGV, SIG_DFL);

    /* core flag follows RLIMIT_CORE; abort's status */
    c = fork();
    if (c == 0)
        abort();
    int st;
    waitpid(c, &st, 0);
    printf("abort: signaled=%d sig=%d core=%d\n", WIFSIGNALED(st), WTERMSIG(st), WCOREDUMP(st) != 0);

    /* PR_SET_CHILD_SUBREAPER: orphans come to us, not to init */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    c = fork();
    if (c == 0) {
        if (fork() == 0) {
            usleep(50000);
            _exit(9);
        }
        _exit(0);
    }
    waitpid(c, NULL, 0);
    pid_t w = wait(&st);
    printf("subreaper reaped the orphan: %d exit=%d\n", w > 0, WEXITSTATUS(st));

    /* PR_SET_PDEATHSIG: the orphan learns that its parent died */
    int q[2];
    pipe(q);
    c = fork();
    if (c == 0) {
        if (fork() == 0) {
            prctl(PR_SET_PDEATHSIG, SIGUSR2);
            signal(SIGUSR2, SIG_DFL);
            write(q[1], "r", 1);
            pause();
            _exit(0);
        }
        char x;
        read(q[0], &x, 1);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    w = wait(&st);
    printf("pdeath signal killed the orphan: %d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
    printf("done\n");
    return 0;
}
