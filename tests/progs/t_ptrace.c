/* ptrace(2) of a guest by a guest: TRACEME and signal-delivery-stops,
   CONT with and without a signal, GETSIGINFO, PEEK/POKE data and user,
   GETREGS/SETREGS, PTRACE_SYSCALL stops, ATTACH/DETACH with
   /proc/PID/status, EXITKILL, and the error cases.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
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

static volatile int usr1, usr2;
static volatile long word = 1234;

static void on_usr1(int s) { (void)s; usr1++; }
static void on_usr2(int s) { (void)s; usr2++; }

static void status(const char *what, int st)
{
    if (WIFSTOPPED(st))
        printf("%s: stopped %d%s\n", what, WSTOPSIG(st) & 0x7f, WSTOPSIG(st) & 0x80 ? "|0x80" : "");
    else if (WIFEXITED(st))
        printf("%s: exited %d\n", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        printf("%s: killed %d\n", what, WTERMSIG(st));
}

static void waitfor(pid_t pid, const char *what)
{
    int st = 0;
    pid_t r = waitpid(pid, &st, __WALL);
    if (r != pid) {
        printf("%s: waitpid %d errno %d\n", what, (int)r, errno);
        return;
    }
    status(what, st);
}

static long rc(long r) { return r < 0 ? -errno : r; }

static long raw_kill_self(int sig)
{
    long r;
    long pid = getpid();
    __asm__ volatile("syscall" : "=a"(r) : "a"((long)SYS_kill), "D"(pid), "S"((long)sig)
                     : "rcx", "r11", "memory");
    return r;
}

static void signal_stops(void)
{
    pid_t c = fork();
    if (c == 0) {
        signal(SIGUSR1, on_usr1);
        signal(SIGUSR2, on_usr2);
        printf("child: traceme %ld\n", rc(ptrace(PTRACE_TRACEME, 0, 0, 0)));
        printf("child: traceme again %ld\n", rc(ptrace(PTRACE_TRACEME, 0, 0, 0)));
        raise(SIGUSR1);
        raise(SIGUSR2);
        long r = raw_kill_self(SIGSTOP);
        printf("child: kill returned %ld, word %ld\n", r, word);
        _exit(usr1 * 10 + usr2);
    }
    siginfo_t si;
    waitfor(c, "stop 1");
    memset(&si, 0, sizeof si);
    long r = rc(ptrace(PTRACE_GETSIGINFO, c, 0, &si));
    printf("getsiginfo %ld signo %d code %d\n", r, si.si_signo, si.si_code);
    printf("cont bad signal %ld\n", rc(ptrace(PTRACE_CONT, c, 0, 100)));
    printf("cont suppress %ld\n", rc(ptrace(PTRACE_CONT, c, 0, 0)));
    waitfor(c, "stop 2");
    printf("cont deliver %ld\n", rc(ptrace(PTRACE_CONT, c, 0, SIGUSR2)));
    waitfor(c, "stop 3");

    struct user_regs_struct regs;
    printf("getregs %ld\n", rc(ptrace(PTRACE_GETREGS, c, 0, &regs)));
    printf("orig_rax %lld rax %lld\n", regs.orig_rax, regs.rax);
    errno = 0;
    long orig = ptrace(PTRACE_PEEKUSER, c, offsetof(struct user, regs.orig_rax), 0);
    printf("peekuser orig_rax %ld errno %d\n", orig, errno);
    errno = 0;
    long w = ptrace(PTRACE_PEEKDATA, c, &word, 0);
    printf("peekdata %ld errno %d\n", w, errno);
    printf("pokedata %ld\n", rc(ptrace(PTRACE_POKEDATA, c, &word, 5678)));
    printf("peek at 0: %ld\n", rc(ptrace(PTRACE_PEEKDATA, c, 0, 0)));
    printf("peekuser unaligned: %ld\n", rc(ptrace(PTRACE_PEEKUSER, c, 3, 0)));
    printf("peekuser past glibc's struct user: %ld\n", rc(ptrace(PTRACE_PEEKUSER, c, sizeof(struct user), 0)));
    printf("peekuser past the kernel's: %ld\n", rc(ptrace(PTRACE_PEEKUSER, c, sizeof(struct user) + 16, 0)));
    printf("pokeuser fs_base kernel %ld\n",
           rc(ptrace(PTRACE_POKEUSER, c, offsetof(struct user, regs.fs_base), 0xffff888000000000UL)));
    printf("bad request %ld\n", rc(ptrace((enum __ptrace_request)0x4fff, c, 0, 0)));
    regs.rax = 42;
    printf("setregs %ld\n", rc(ptrace(PTRACE_SETREGS, c, 0, &regs)));
    r = rc(ptrace(PTRACE_CONT, c, 0, 0));
    waitfor(c, "end");      /* the child prints first, then exits */
    printf("cont %ld\n", r);
    printf("cont after exit %ld\n", rc(ptrace(PTRACE_CONT, c, 0, 0)));
}

static void syscall_stops(void)
{
    pid_t c = fork();
    if (c == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        long p = syscall(SYS_getppid);
        long me = syscall(SYS_getpid);
        printf("child: getppid is parent %d, getpid %ld\n", p == getppid(), me);
        _exit(0);
    }
    waitfor(c, "sys stop");
    printf("setoptions %ld\n", rc(ptrace(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD)));
    int st, entry = 1, seen = 0;
    for (;;) {
        if (ptrace(PTRACE_SYSCALL, c, 0, 0) < 0 || waitpid(c, &st, 0) != c || !WIFSTOPPED(st))
            break;
        struct user_regs_struct regs;
        ptrace(PTRACE_GETREGS, c, 0, &regs);
        if (regs.orig_rax == SYS_getppid && entry) {
            printf("entry getppid: sig %#x rax %lld\n", WSTOPSIG(st), regs.rax);
            seen = 1;
        } else if (regs.orig_rax == SYS_getppid) {
            printf("exit getppid: result is parent %d\n", regs.rax == (unsigned long long)getpid());
        } else if (regs.orig_rax == SYS_getpid && !entry) {
            printf("exit getpid: rewritten\n");
            regs.rax = 777;
            ptrace(PTRACE_SETREGS, c, 0, &regs);
            entry = !entry;
            break;
        }
        entry = !entry;
    }
    printf("saw getppid %d\n", seen);
    ptrace(PTRACE_CONT, c, 0, 0);
    waitfor(c, "sys end");
}

static int tracer_pid_of(pid_t pid, char *state, size_t n)
{
    char path[64], line[256];
    int tracer = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -2;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "TracerPid:", 10))
            tracer = atoi(line + 10);
        if (!strncmp(line, "State:", 6)) {
            snprintf(state, n, "%s", line + 7);
            state[strcspn(state, "\n")] = 0;
        }
    }
    fclose(f);
    return tracer;
}

static void attach_detach(void)
{
    char state[64] = "";
    pid_t c = fork();
    if (c == 0) {
        for (;;)
            pause();
    }
    printf("cont untraced %ld\n", rc(ptrace(PTRACE_CONT, c, 0, 0)));
    printf("attach self %ld\n", rc(ptrace(PTRACE_ATTACH, getpid(), 0, 0)));
    printf("attach %ld\n", rc(ptrace(PTRACE_ATTACH, c, 0, 0)));
    printf("attach again %ld\n", rc(ptrace(PTRACE_ATTACH, c, 0, 0)));
    waitfor(c, "attached");
    int tp = tracer_pid_of(c, state, sizeof state);
    printf("TracerPid is me %d, State %s\n", tp == getpid(), state);
    printf("detach bad signal %ld\n", rc(ptrace(PTRACE_DETACH, c, 0, 1000)));
    printf("detach %ld\n", rc(ptrace(PTRACE_DETACH, c, 0, 0)));
    printf("TracerPid after detach %d\n", tracer_pid_of(c, state, sizeof state));
    int st;
    printf("waitpid WNOHANG %d\n", (int)waitpid(c, &st, WNOHANG));
    kill(c, SIGKILL);
    waitfor(c, "killed");

    /* EXITKILL: the tracee dies with its tracer */
    int pfd[2];
    if (pipe(pfd))
        return;
    pid_t tracer = fork();
    if (tracer == 0) {
        pid_t g = fork();
        if (g == 0) {
            for (;;)
                pause();
        }
        ptrace(PTRACE_SEIZE, g, 0, PTRACE_O_EXITKILL);
        if (write(pfd[1], &g, sizeof g) != sizeof g)
            _exit(1);
        _exit(0);
    }
    pid_t g = 0;
    if (read(pfd[0], &g, sizeof g) != sizeof g)
        return;
    waitfor(tracer, "tracer");
    for (int i = 0; i < 200 && kill(g, 0) == 0; i++) {
        char s2[64] = "";
        if (tracer_pid_of(g, s2, sizeof s2) < 0 || s2[0] == 'Z')
            break;
        usleep(10000);
    }
    char s3[64] = "";
    int gone = tracer_pid_of(g, s3, sizeof s3) < 0 || s3[0] == 'Z';
    printf("exitkill: tracee gone %d\n", gone);
}

/* A tracer other than the parent is told of the tracee's exit first: the
   parent cannot reap it until the tracer has. */
static void exit_to_tracer_first(void)
{
    int up[2], down[2];
    if (pipe(up) || pipe(down))
        return;
    pid_t c = fork();
    if (c == 0) {
        for (;;)
            pause();
    }
    pid_t tracer = fork();
    if (tracer == 0) {
        char b = 0;
        int st;
        siginfo_t si;
        printf("tracer: attach %ld\n", rc(ptrace(PTRACE_ATTACH, c, 0, 0)));
        waitfor(c, "tracer: attached");
        printf("tracer: cont %ld\n", rc(ptrace(PTRACE_CONT, c, 0, 0)));
        if (write(up[1], &b, 1) != 1)
            _exit(1);
        memset(&si, 0, sizeof si);
        long r = rc(waitid(P_PID, c, &si, WEXITED | WNOWAIT));
        printf("tracer: waitid %ld code %d status %d\n", r, si.si_code, si.si_status);
        if (write(up[1], &b, 1) != 1 || read(down[0], &b, 1) != 1)
            _exit(1);
        pid_t got = waitpid(c, &st, 0);
        printf("tracer: reaped %d\n", got == c);
        status("tracer: tracee", st);
        _exit(0);
    }
    char b;
    int st;
    if (read(up[0], &b, 1) != 1)
        return;
    kill(c, SIGKILL);
    if (read(up[0], &b, 1) != 1)
        return;
    printf("parent: waitpid WNOHANG before the tracer %d\n", (int)waitpid(c, &st, WNOHANG));
    if (write(down[1], &b, 1) != 1)
        return;
    waitfor(tracer, "tracer");
    waitfor(c, "parent: tracee");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal_stops();
    syscall_stops();
    attach_detach();
    exit_to_tracer_first();
    printf("done\n");
    return 0;
}
