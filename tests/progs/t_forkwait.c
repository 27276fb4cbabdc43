/* fork / exit / wait family: exit codes, signals, WNOHANG, ECHILD, waitid,
 * vfork.  Output is deterministic (no pids printed). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

static void show(const char *what, int st)
{
    printf("%s: WIFEXITED=%d", what, WIFEXITED(st) ? 1 : 0);
    if (WIFEXITED(st))
        printf(" WEXITSTATUS=%d", WEXITSTATUS(st));
    printf(" WIFSIGNALED=%d", WIFSIGNALED(st) ? 1 : 0);
    if (WIFSIGNALED(st))
        printf(" WTERMSIG=%d(%s)", WTERMSIG(st), sigabbrev_np(WTERMSIG(st)));
    printf("\n");
}

/* Fork a child that runs fn(arg); reap it with waitpid and print status. */
static void run(const char *what, void (*fn)(int), int arg)
{
    fflush(stdout);
    pid_t p = fork();
    if (p < 0) {
        printf("%s: fork failed %s\n", what, en(errno));
        return;
    }
    if (p == 0) {
        fn(arg);
        _exit(99);
    }
    int st = 0;
    pid_t r = waitpid(p, &st, 0);
    if (r != p) {
        printf("%s: waitpid returned wrong pid (%s)\n", what, en(errno));
        return;
    }
    show(what, st);
}

static void do_exit(int code) { exit(code); }
static void do_raise(int sig) { raise(sig); }
static void do_abort(int unused) { (void)unused; abort(); }
static void do_selfkill(int sig) { kill(getpid(), sig); pause(); }

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);   /* no core files from the signal tests */

    int codes[] = {0, 1, 42, 255};
    for (unsigned i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "exit(%d)", codes[i]);
        run(buf, do_exit, codes[i]);
    }
    run("exit(256)", do_exit, 256);
    run("kill(self,SIGKILL)", do_selfkill, SIGKILL);
    run("kill(self,SIGTERM)", do_selfkill, SIGTERM);
    run("raise(SIGSEGV)", do_raise, SIGSEGV);
    run("abort()", do_abort, 0);

    /* Parent kills a child blocked in pause(). */
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        for (;;)
            pause();
    }
    int st;
    printf("parent kill SIGTERM: %d\n", kill(p, SIGTERM));
    printf("waitpid pid match: %d\n", waitpid(p, &st, 0) == p);
    show("killed by parent", st);

    /* WNOHANG on a running child: child blocks reading a pipe. */
    int pfd[2];
    if (pipe(pfd) != 0) {
        printf("pipe failed %s\n", en(errno));
        return 1;
    }
    fflush(stdout);
    p = fork();
    if (p == 0) {
        char c;
        close(pfd[1]);
        ssize_t n = read(pfd[0], &c, 1);
        _exit(n == 0 ? 7 : 8);
    }
    close(pfd[0]);
    st = -1;
    pid_t r = waitpid(p, &st, WNOHANG);
    printf("WNOHANG on running child: ret=%d\n", (int)r);
    close(pfd[1]);                  /* child sees EOF and exits 7 */
    r = waitpid(p, &st, 0);
    printf("reaped after EOF: pid match=%d\n", r == p);
    show("eof child", st);

    /* WNOHANG with a child that already exited (zombie). */
    fflush(stdout);
    p = fork();
    if (p == 0)
        _exit(5);
    usleep(1000);
    do {
        r = waitpid(p, &st, WNOHANG);
        if (r == 0)
            usleep(1000);
    } while (r == 0);
    printf("WNOHANG on zombie: pid match=%d\n", r == p);
    show("zombie", st);

    /* No children at all. */
    errno = 0;
    r = wait4(-1, &st, 0, NULL);
    printf("wait4(-1) without children: %d %s\n", (int)r, en(errno));
    errno = 0;
    r = wait4(2147483000, &st, 0, NULL);
    printf("wait4(nonexistent pid): %d %s\n", (int)r, en(errno));
    errno = 0;
    r = waitpid(-1, &st, WNOHANG);
    printf("waitpid(-1,WNOHANG) without children: %d %s\n", (int)r, en(errno));

    /* waitid */
    fflush(stdout);
    p = fork();
    if (p == 0)
        _exit(5);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int wr = waitid(P_PID, p, &si, WEXITED);
    printf("waitid exited: ret=%d signo=%d(%s) code=%d(%s) status=%d pid match=%d\n",
           wr, si.si_signo, sigabbrev_np(si.si_signo), si.si_code,
           si.si_code == CLD_EXITED ? "CLD_EXITED" : "?", si.si_status,
           si.si_pid == p);
    fflush(stdout);
    p = fork();
    if (p == 0) {
        for (;;)
            pause();
    }
    kill(p, SIGKILL);
    memset(&si, 0, sizeof si);
    wr = waitid(P_PID, p, &si, WEXITED);
    printf("waitid killed: ret=%d signo=%d code=%d(%s) status=%d pid match=%d\n",
           wr, si.si_signo, si.si_code,
           si.si_code == CLD_KILLED ? "CLD_KILLED" : "?", si.si_status,
           si.si_pid == p);
    errno = 0;
    wr = waitid(P_ALL, 0, &si, WEXITED);
    printf("waitid(P_ALL) without children: %d %s\n", wr, en(errno));

    /* rusage from wait4 is accepted */
    fflush(stdout);
    p = fork();
    if (p == 0)
        _exit(0);
    struct rusage ru;
    r = wait4(p, &st, 0, &ru);
    printf("wait4 with rusage: pid match=%d\n", r == p);

    /* vfork: parent resumes after the child's _exit */
    fflush(stdout);
    p = vfork();
    if (p == 0)
        _exit(3);
    r = waitpid(p, &st, 0);
    printf("vfork: pid match=%d\n", r == p);
    show("vfork child", st);

    /* getppid in child equals parent's pid */
    pid_t me = getpid();
    if (pipe(pfd) != 0)
        return 1;
    fflush(stdout);
    p = fork();
    if (p == 0) {
        char c = getppid() == me ? 'y' : 'n';
        if (write(pfd[1], &c, 1) != 1)
            _exit(1);
        _exit(0);
    }
    char c = '?';
    if (read(pfd[0], &c, 1) != 1)
        c = '!';
    waitpid(p, &st, 0);
    printf("child getppid()==parent getpid(): %c\n", c);
    printf("fork returned distinct pid: %d\n", p != me && p > 0);

    /* A zombie keeps its pid, group and session until it is reaped. */
    fflush(stdout);
    pid_t z = fork();
    if (z == 0) {
        setpgid(0, 0);
        _exit(3);
    }
    siginfo_t zi;
    waitid(P_PID, z, &zi, WEXITED | WNOWAIT);
    printf("zombie: getpgid is its own group %d, getsid the parent's %d, kill(0) %d\n",
           getpgid(z) == z, getsid(z) == getsid(0), kill(z, 0));
    waitpid(z, &st, 0);
    errno = 0;
    int g = getpgid(z), e1 = errno, sid = getsid(z), e2 = errno;
    printf("reaped: getpgid %d %s, getsid %d %s\n", g, strerror(e1), sid, strerror(e2));
    printf("done\n");
    return 0;
}
