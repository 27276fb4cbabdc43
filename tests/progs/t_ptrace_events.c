/* ptrace(2) event stops and the newer requests: PTRACE_EVENT_FORK, VFORK,
   VFORK_DONE, CLONE, EXEC, EXIT with their wait statuses and
   PTRACE_GETEVENTMSG, auto-attached children, waitid's CLD_TRAPPED,
   a traced thread waited for by its tid (its first stop, then its exit,
   reaped by the tracer before its process's; or its end by another
   thread's exec), a wait for a process's pid that reports its leader alone,
   PTRACE_SINGLESTEP (a count of steps over a tiny loop and a syscall),
   PTRACE_SYSEMU, and PTRACE_SEIZE with INTERRUPT and LISTEN.
   Deterministic output: only the tracer prints. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static long rc(long r) { return r < 0 ? -errno : r; }

/* a stop as ((event << 8) | sig), or exit/kill */
static void show(const char *what, int st)
{
    if (WIFSTOPPED(st))
        printf("%s: stop %#x\n", what, st >> 8);
    else if (WIFEXITED(st))
        printf("%s: exited %d\n", what, WEXITSTATUS(st));
    else
        printf("%s: killed %d\n", what, WTERMSIG(st));
}

/* the next stop but a SIGCHLD's (a child of the tracee ended: passed on) */
static int wait_show(pid_t pid, const char *what)
{
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, __WALL);
        if (r != pid) {
            printf("%s: waitpid %d errno %d\n", what, (int)r, errno);
            return -1;
        }
        if (!WIFSTOPPED(st) || st >> 8 != SIGCHLD)
            break;
        ptrace(PTRACE_CONT, pid, 0, SIGCHLD);
    }
    show(what, st);
    return st;
}

static unsigned long eventmsg(pid_t pid)
{
    unsigned long m = 0xdead;
    if (ptrace(PTRACE_GETEVENTMSG, pid, 0, &m) < 0)
        printf("geteventmsg errno %d\n", errno);
    return m;
}

static pid_t traced_child(void (*body)(void), long opts)
{
    pid_t c = fork();
    if (c == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        body();
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("setoptions %ld\n", rc(ptrace(PTRACE_SETOPTIONS, c, 0, opts)));
    return c;
}

/* -- fork, exit, waitid ------------------------------------------------------ */
static void forker(void)
{
    pid_t g = fork();
    if (g == 0)
        _exit(7);
    waitpid(g, NULL, 0);
    _exit(3);
}

static void fork_events(void)
{
    pid_t c = traced_child(forker, PTRACE_O_TRACEFORK | PTRACE_O_TRACEEXIT);
    ptrace(PTRACE_CONT, c, 0, 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    printf("waitid %ld\n", rc(waitid(P_PID, c, &si, WEXITED | WNOWAIT)));
    printf("waitid: code %d status %#x pid ok %d\n", si.si_code, si.si_status, si.si_pid == c);
    wait_show(c, "fork event");
    memset(&si, 0, sizeof si);
    ptrace(PTRACE_GETSIGINFO, c, 0, &si);
    printf("siginfo: signo %d code %#x\n", si.si_signo, si.si_code);
    pid_t g = (pid_t)eventmsg(c);
    printf("grandchild is a child of the tracee: %d\n", g > 0 && g != c);
    wait_show(g, "grandchild start");
    printf("grandchild traced: options inherited, peek %d\n",
           rc(ptrace(PTRACE_PEEKUSER, g, offsetof(struct user, regs.rip), 0)) != -ESRCH);
    ptrace(PTRACE_CONT, g, 0, 0);
    wait_show(g, "grandchild exit event");
    printf("grandchild exit msg %#lx\n", eventmsg(g));
    ptrace(PTRACE_CONT, g, 0, 0);
    wait_show(g, "grandchild end");
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "exit event");
    printf("exit msg %#lx\n", eventmsg(c));
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "end");
}

/* -- vfork, clone, exec ------------------------------------------------------ */
static void vforker(void)
{
    pid_t g = vfork();
    if (g == 0)
        _exit(5);
    waitpid(g, NULL, 0);
}

static void vfork_events(void)
{
    pid_t c = traced_child(vforker, PTRACE_O_TRACEVFORK | PTRACE_O_TRACEVFORKDONE);
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "vfork event");
    pid_t g = (pid_t)eventmsg(c);
    wait_show(g, "vfork child start");
    ptrace(PTRACE_CONT, c, 0, 0);
    ptrace(PTRACE_CONT, g, 0, 0);
    wait_show(g, "vfork child end");
    wait_show(c, "vfork done event");
    printf("vfork done msg is the child %d\n", (pid_t)eventmsg(c) == g);
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "end");
}

static char stack[65536];
static int clone_fn(void *arg) { (void)arg; return 0; }

static void cloner(void)
{
    pid_t g = clone(clone_fn, stack + sizeof stack, CLONE_VM, NULL);   /* no exit signal */
    waitpid(g, NULL, __WALL);
}

static void *thread_fn(void *arg) { return arg; }

static void threader(void)
{
    pthread_t th;
    pthread_create(&th, NULL, thread_fn, NULL);
    pthread_join(th, NULL);
}

/* a clone without exit signal, or a thread; the new task waited for by
   its tid at once, as gdb does (the wait lasts until its first stop) and
   its end by its tid too */
static void clone_events(void (*body)(void), const char *what)
{
    char msg[64];
    pid_t c = traced_child(body, PTRACE_O_TRACECLONE);
    ptrace(PTRACE_CONT, c, 0, 0);
    snprintf(msg, sizeof msg, "%s event", what);
    wait_show(c, msg);
    pid_t g = (pid_t)eventmsg(c);
    /* once g's first stop is there to report (WNOWAIT leaves it), a wait
       for c's pid names c alone: its report was taken, g's is not c's */
    siginfo_t si;
    waitid(P_PID, g, &si, WSTOPPED | WNOWAIT | __WALL);
    int st;
    printf("wait for the leader: %d\n", (int)waitpid(c, &st, __WALL | WNOHANG));
    snprintf(msg, sizeof msg, "%s start", what);
    wait_show(g, msg);
    printf("again with WNOHANG: %d\n", (int)waitpid(g, &st, __WALL | WNOHANG));
    ptrace(PTRACE_CONT, g, 0, 0);
    snprintf(msg, sizeof msg, "%s end", what);
    wait_show(g, msg);
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "end");
    printf("then: %ld\n", rc(waitpid(-1, &st, __WALL)));
}

static void execer(void)
{
    execl("/proc/self/exe", "t_ptrace_events", "exit", (char *)NULL);
}

static void exec_events(void)
{
    pid_t c = traced_child(execer, PTRACE_O_TRACEEXEC);
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "exec event");
    printf("exec msg is the pid %d\n", (pid_t)eventmsg(c) == c);
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "end");
    /* without TRACEEXEC: the SIGTRAP of old */
    c = traced_child(execer, 0);
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "legacy exec");
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "end");
}

static void *sleeper(void *arg)
{
    for (;;)
        pause();
    return arg;
}

static void threaded_execer(void)
{
    pthread_t th;
    pthread_create(&th, NULL, sleeper, NULL);
    execer();
}

/* an exec in a traced process with a second thread: the thread dies of it
   and its tracer hears of its end (exited 0, as do_group_exit has it
   during an exec), which it reaps before the exec goes on */
static void exec_with_a_thread(void)
{
    pid_t c = traced_child(threaded_execer, PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC);
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "clone event");
    pid_t g = (pid_t)eventmsg(c);
    wait_show(g, "thread start");
    ptrace(PTRACE_CONT, g, 0, 0);
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(g, "thread killed by the exec");
    wait_show(c, "exec event");
    printf("exec msg is the pid %d\n", (pid_t)eventmsg(c) == c);
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "end");
    int st;
    printf("then: %ld\n", rc(waitpid(-1, &st, __WALL)));
}

/* -- single-stepping and SYSEMU ---------------------------------------------- */
static void stepped(void)
{
    __asm__ volatile("int3\n\t"
                     "mov $3, %%ecx\n"
                     "1:\tdec %%ecx\n\t"
                     "jnz 1b\n\t"
                     "mov $39, %%eax\n\t"
                     "syscall\n\t"
                     "nop\n\t"
                     "int3\n\t"
                     ::: "rax", "rcx", "r11", "memory");
}

static void single_step(void)
{
    pid_t c = traced_child(stepped, 0);
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "first int3");
    int steps = 0;
    for (;;) {
        int st;
        if (ptrace(PTRACE_SINGLESTEP, c, 0, 0) < 0 || waitpid(c, &st, 0) != c || !WIFSTOPPED(st))
            break;
        siginfo_t si;
        ptrace(PTRACE_GETSIGINFO, c, 0, &si);
        steps++;
        printf("step %d: sig %d code %#x\n", steps, WSTOPSIG(st), si.si_code);
        if (si.si_code == SI_KERNEL || steps > 40)
            break;
    }
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "end");
}

static void emulated(void)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"((long)SYS_getppid) : "rcx", "r11", "memory");
    _exit(r == 4242 ? 42 : 1);
}

static void sysemu(void)
{
    pid_t c = traced_child(emulated, PTRACE_O_TRACESYSGOOD);
    ptrace(PTRACE_SYSEMU, c, 0, 0);
    wait_show(c, "sysemu entry");
    struct user_regs_struct regs;
    ptrace(PTRACE_GETREGS, c, 0, &regs);
    printf("orig_rax is getppid %d, rax %lld\n", regs.orig_rax == SYS_getppid, (long long)regs.rax);
    regs.rax = 4242;
    ptrace(PTRACE_SETREGS, c, 0, &regs);
    ptrace(PTRACE_SYSEMU, c, 0, 0);     /* the next stop: exit_group's entry */
    wait_show(c, "sysemu next");
    ptrace(PTRACE_GETREGS, c, 0, &regs);
    printf("next is exit_group(%lld) %d\n", (long long)regs.rdi, regs.orig_rax == SYS_exit_group);
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "end");
}

/* -- SEIZE, INTERRUPT, LISTEN -------------------------------------------------- */
static void seize_interrupt_listen(void)
{
    int p[2];
    if (pipe(p) < 0)
        return;
    pid_t c = fork();
    if (c == 0) {
        char b;
        close(p[1]);
        while (read(p[0], &b, 1) > 0)
            ;
        _exit(9);
    }
    close(p[0]);
    printf("interrupt untraced %ld\n", rc(ptrace(PTRACE_INTERRUPT, c, 0, 0)));
    printf("seize %ld\n", rc(ptrace(PTRACE_SEIZE, c, 0, PTRACE_O_TRACEEXIT)));
    printf("listen running %ld\n", rc(ptrace(PTRACE_LISTEN, c, 0, 0)));
    printf("interrupt %ld\n", rc(ptrace(PTRACE_INTERRUPT, c, 0, 0)));
    wait_show(c, "interrupted");
    siginfo_t si;
    ptrace(PTRACE_GETSIGINFO, c, 0, &si);
    printf("siginfo: signo %d code %#x\n", si.si_signo, si.si_code);
    kill(c, SIGSTOP);
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "signal stop");
    ptrace(PTRACE_CONT, c, 0, SIGSTOP);
    wait_show(c, "group stop");
    printf("listen %ld\n", rc(ptrace(PTRACE_LISTEN, c, 0, 0)));
    printf("peek while listening %ld\n", rc(ptrace(PTRACE_PEEKUSER, c, 0, 0)));
    int st;
    printf("nothing to wait for %d\n", (int)waitpid(c, &st, WNOHANG));
    kill(c, SIGCONT);
    wait_show(c, "group stop ends");
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "sigcont");
    ptrace(PTRACE_CONT, c, 0, 0);
    close(p[1]);
    wait_show(c, "exit event");
    ptrace(PTRACE_CONT, c, 0, 0);
    wait_show(c, "end");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "exit") == 0)
        return 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGCHLD, SIG_DFL);
    fork_events();
    vfork_events();
    clone_events(cloner, "clone child");
    clone_events(threader, "thread");
    exec_events();
    exec_with_a_thread();
    single_step();
    sysemu();
    seize_interrupt_listen();
    printf("done\n");
    return 0;
}
