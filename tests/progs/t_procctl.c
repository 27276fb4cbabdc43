/* A process's own controls and the rules around its children:
   personality (its flags' effects on uname, select, mmap, exec), prctl's
   TSC switch, setpgid after exec, tgkill's and rt_sigqueueinfo's targets
   and RLIMIT_SIGPENDING, wait4's INT_MIN, get_robust_list's pointers,
   CLONE_PARENT, a thread with its own fd table and cwd, unshare(2),
   ETXTBSY both ways, execve with an empty argv, execveat's errors, and
   RLIMIT_FSIZE.  Re-executes itself (argv[0]) with T_PROCCTL set. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
static char *self, dir[512], copy[600];
extern char **environ;

static void report(const char *what, pid_t pid)
{
    int st;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st))
        printf("%s: exit %d\n", what, WEXITSTATUS(st));
    else
        printf("%s: signal %d\n", what, WTERMSIG(st));
}

/* what a re-executed copy does, by T_PROCCTL */
static int child_mode(const char *mode, int argc, char **argv)
{
    if (!strcmp(mode, "argc0"))
        printf("exec'd with an empty argv: argc %d argv[0] \"%s\" argv[1] %s\n", argc, argv[0],
               argv[1] ? "set" : "NULL");
    else if (!strcmp(mode, "pers"))
        printf("exec'd personality %#x\n", personality(0xffffffff));
    else if (!strcmp(mode, "tsc")) {
        int v = -1;
        prctl(PR_GET_TSC, &v);
        printf("exec'd PR_GET_TSC %d\n", v);
    } else if (!strcmp(mode, "hold")) {
        char c;
        read(0, &c, 1);     /* until the parent closes the pipe */
    } else
        printf("exec'd %s ran\n", mode);
    return 0;
}

static pid_t run_self(const char *mode, int hold_fd)
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char env[64];
        snprintf(env, sizeof env, "T_PROCCTL=%s", mode);
        char *envp[] = {env, NULL}, *argv[] = {self, NULL};
        if (!strcmp(mode, "argc0"))
            argv[0] = NULL;
        if (hold_fd >= 0)
            dup2(hold_fd, 0);
        execve(self, argv, envp);
        printf("exec %s: %s\n", mode, strerrorname_np(errno));
        _exit(1);
    }
    return c;
}

/* -- personality ---------------------------------------------------------- */
static void personalities(void)
{
    int old = personality(0xffffffff);
    printf("personality %#x; PER_SVR4 %#x: ", old, PER_SVR4);
    personality(PER_SVR4);
    printf("now %#x; ", personality(0xffffffff));
    char buf[32] = "";
    int fd = open("/proc/self/personality", O_RDONLY);
    int n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    printf("/proc/self/personality %s", buf);

    int p[2];
    pipe(p);
    fd_set rd;
    struct timeval tv = {0, 1000};
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    personality(PER_LINUX | STICKY_TIMEOUTS);
    n = select(p[0] + 1, &rd, NULL, NULL, &tv);
    printf("select with STICKY_TIMEOUTS: %d, timeout left %ld us; ", n, (long)tv.tv_usec);
    personality(PER_LINUX);
    FD_SET(p[0], &rd);
    n = select(p[0] + 1, &rd, NULL, NULL, &tv);
    printf("without: %d, %ld us\n", n, (long)tv.tv_usec);
    close(p[0]);
    close(p[1]);

    struct utsname u;
    personality(PER_LINUX32);
    uname(&u);
    printf("PER_LINUX32: machine %s; ", u.machine);
    personality(UNAME26);
    uname(&u);
    printf("UNAME26: release starts 2.6.: %d; ", !strncmp(u.release, "2.6.", 4));
    personality(PER_LINUX);
    uname(&u);
    printf("back: %s\n", u.machine);

    personality(READ_IMPLIES_EXEC);
    void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char line[256], want[32], perms[8] = "?";
    snprintf(want, sizeof want, "%lx-", (unsigned long)m);
    FILE *f = fopen("/proc/self/maps", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, want, strlen(want)))
            sscanf(line, "%*s %7s", perms);
    if (f)
        fclose(f);
    printf("READ_IMPLIES_EXEC: a PROT_READ mapping is %s; ", perms);
    personality(READ_IMPLIES_EXEC | ADDR_NO_RANDOMIZE | UNAME26);
    report("exec keeps the rest", run_self("pers", -1));
    personality(old);
}

/* -- prctl(PR_SET_TSC) -------------------------------------------------------- */
static void tsc(void)
{
    int v = -1;
    printf("PR_GET_TSC %s", en(prctl(PR_GET_TSC, &v)));
    printf(" %d; PR_SET_TSC 3 %s; PR_GET_TSC to NULL %s\n", v, en(prctl(PR_SET_TSC, 3)),
           en(prctl(PR_GET_TSC, NULL)));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        printf("child: PR_SET_TSC SIGSEGV %s", en(prctl(PR_SET_TSC, PR_TSC_SIGSEGV)));
        prctl(PR_GET_TSC, &v);
        printf(" -> %d\n", v);
        pid_t g = run_self("tsc", -1);
        waitpid(g, NULL, 0);
        fflush(stdout);
        unsigned lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        printf("rdtsc ran\n");
        _exit(0);
    }
    report("rdtsc with the TSC off", c);
}

/* -- arch_prctl(ARCH_SET_CPUID) ------------------------------------------------- */
static void cpuid_faulting(void)
{
    long on = syscall(SYS_arch_prctl, 0x1011 /* ARCH_GET_CPUID */, 0);
    long bad = syscall(SYS_arch_prctl, 0x1012 /* ARCH_SET_CPUID */, 0);
    int e = errno;
    if (bad != 0) {             /* a CPU without CPUID faulting: ENODEV, and CPUID stays on */
        printf("ARCH_GET_CPUID %ld; ARCH_SET_CPUID 0 %s\n", on, strerrorname_np(e));
        return;
    }
    syscall(SYS_arch_prctl, 0x1012, 1);
    printf("ARCH_GET_CPUID %ld; ARCH_SET_CPUID 0 ok\n", on);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        syscall(SYS_arch_prctl, 0x1012, 0);
        printf("child: ARCH_GET_CPUID %ld\n", syscall(SYS_arch_prctl, 0x1011, 0));
        fflush(stdout);
        unsigned a = 0, b, cc = 0, d;
        __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(cc), "=d"(d));
        printf("cpuid ran\n");
        _exit(0);
    }
    report("cpuid with CPUID faulting on", c);
}

/* -- setpgid ------------------------------------------------------------------ */
static pid_t thread_tid;
static volatile int thread_stop;
static pthread_t sleeper_thread;

static void *sleeper(void *arg)
{
    (void)arg;
    thread_tid = syscall(SYS_gettid);
    while (!thread_stop)
        usleep(1000);
    return NULL;
}

static void pgids(void)
{
    int p[2];
    pipe2(p, O_CLOEXEC);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char ch;
        close(p[1]);
        read(p[0], &ch, 1);
        _exit(0);
    }
    printf("setpgid of a child before exec: %s; ", en(setpgid(c, c)));
    close(p[1]);
    waitpid(c, NULL, 0);
    pipe2(p, O_CLOEXEC);
    c = run_self("hold", p[0]);
    close(p[0]);
    usleep(100000);     /* it has exec'd by now */
    printf("after: %s; ", en(setpgid(c, c)));
    close(p[1]);
    waitpid(c, NULL, 0);
    pthread_create(&sleeper_thread, NULL, sleeper, NULL);
    while (!thread_tid)
        usleep(1000);
    printf("of a thread: %s; of init: %s\n", en(setpgid(thread_tid, 0)), en(setpgid(1, 1)));
}

/* -- tgkill, rt_sigqueueinfo, kill: targets and queue limits ------------------ */
static void signals(void)
{
    pid_t me = getpid();
    printf("tgkill: tgid -1 %s, tid -1 %s, tid 0 %s, tgid 0 %s; tkill 0 %s; missing tid %s; signal 999 %s; "
           "missing tid and signal 999 %s; wrong tgid %s\n",
           en(syscall(SYS_tgkill, -1, me, 0)), en(syscall(SYS_tgkill, me, -1, 0)), en(syscall(SYS_tgkill, me, 0, 0)),
           en(syscall(SYS_tgkill, 0, me, 0)), en(syscall(SYS_tkill, 0, 0)), en(syscall(SYS_tgkill, me, 999999, 0)),
           en(syscall(SYS_tgkill, me, me, 999)), en(syscall(SYS_tgkill, me, 999999, 999)),
           en(syscall(SYS_tgkill, 1, me, 0)));

    /* a tid names its process for rt_sigqueueinfo and kill */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);     /* blocked in every thread (main) */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_code = SI_QUEUE;
    si.si_pid = me;
    si.si_uid = getuid();
    si.si_value.sival_int = 77;
    printf("rt_sigqueueinfo to a thread's tid: %s", en(syscall(SYS_rt_sigqueueinfo, thread_tid, SIGUSR2, &si)));
    struct timespec zero = {0, 0};
    siginfo_t got;
    memset(&got, 0, sizeof got);
    int r = sigtimedwait(&s, &got, &zero);
    printf(", the main thread takes it: %d value %d code %d; ", r, got.si_value.sival_int, got.si_code);
    printf("kill of the tid %s", en(kill(thread_tid, SIGUSR2)));
    r = sigtimedwait(&s, &got, &zero);
    printf(", taken: %d code %d\n", r, got.si_code);
    thread_stop = 1;
    pthread_join(sleeper_thread, NULL);

    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_SIGPENDING, &none);
        sigset_t rt;
        sigemptyset(&rt);
        sigaddset(&rt, SIGRTMIN);
        sigaddset(&rt, SIGUSR1);
        sigprocmask(SIG_BLOCK, &rt, NULL);
        union sigval v = {.sival_int = 1};
        printf("RLIMIT_SIGPENDING 0: tgkill SIGRTMIN %s", en(syscall(SYS_tgkill, getpid(), getpid(), SIGRTMIN)));
        printf(", sigqueue %s", en(sigqueue(getpid(), SIGRTMIN, v)));
        printf(", kill %s", en(kill(getpid(), SIGRTMIN)));
        printf(", tgkill SIGUSR1 %s", en(syscall(SYS_tgkill, getpid(), getpid(), SIGUSR1)));
        memset(&got, 0, sizeof got);
        r = sigtimedwait(&rt, &got, &zero);
        printf("; pending: %d code %d", r, got.si_code);
        r = sigtimedwait(&rt, &got, &zero);
        printf(", %d code %d\n", r, got.si_code);
        _exit(0);
    }
    waitpid(c, NULL, 0);
}

/* -- wait4, get_robust_list ------------------------------------------------------ */
static void waits(void)
{
    int st;
    struct rusage ru;
    printf("wait4(INT_MIN) %s, waitpid(INT_MIN) %s, waitpid(-1) %s; ", en(wait4(INT_MIN, &st, 0, &ru)),
           en(waitpid(INT_MIN, NULL, 0)), en(waitpid(-1, NULL, WNOHANG)));
    void *head;
    size_t len = 0;
    printf("get_robust_list: NULL len %s, NULL head %s", en(syscall(SYS_get_robust_list, 0, &head, NULL)),
           en(syscall(SYS_get_robust_list, 0, NULL, &len)));
    printf(" (len %zu), both %s, missing pid %s\n", len, en(syscall(SYS_get_robust_list, 0, &head, &len)),
           en(syscall(SYS_get_robust_list, 999999, &head, &len)));
}

/* -- clone: CLONE_PARENT, a thread with its own files and cwd ------------------- */
static char stack[64 << 10] __attribute__((aligned(16)));
static volatile pid_t ctid;
static volatile int thread_fd = -1;

static int sibling(void *arg)
{
    (void)arg;
    printf("CLONE_PARENT child: its parent is its creator's %d\n", getppid() == *(pid_t *)arg);
    fflush(stdout);
    _exit(7);
}

static int own_files_thread(void *arg)
{
    (void)arg;
    thread_fd = syscall(SYS_dup, 1);
    syscall(SYS_chdir, "/");
    syscall(SYS_exit, 0);
    return 0;
}

static void clones(void)
{
    fflush(stdout);
    pid_t me = getpid();
    pid_t c = fork();
    if (c == 0) {
        pid_t g = clone(sibling, stack + sizeof stack, CLONE_PARENT | SIGCHLD, &me);
        usleep(100000);
        printf("its creator waits for it: %s\n", en(waitpid(g, NULL, __WALL)));
        fflush(stdout);
        _exit(g > 0 ? 0 : 1);
    }
    waitpid(c, NULL, 0);
    int st;
    pid_t g = wait(&st);
    printf("the caller's parent reaps it: %d exit %d\n", g > 0, WEXITSTATUS(st));

    char before[512], after[512];
    getcwd(before, sizeof before);
    ctid = -1;
    int flags = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
    pid_t tid = clone(own_files_thread, stack + sizeof stack, flags, NULL, NULL, NULL, &ctid);
    while (ctid != 0)
        syscall(SYS_futex, &ctid, FUTEX_WAIT, ctid, NULL, NULL, 0);
    getcwd(after, sizeof after);
    printf("thread without CLONE_FILES|CLONE_FS: %s, its fd is not ours %d, our cwd unchanged %d\n",
           en(tid), fcntl(thread_fd, F_GETFD) < 0 && errno == EBADF, !strcmp(before, after));
}

/* -- unshare -------------------------------------------------------------------- */
static int fs_child(void *arg)
{
    if (arg)
        unshare(CLONE_FS);
    chdir("/");
    return 0;
}

#define CHILD_FD 90

static int files_child(void *arg)
{
    if (arg)
        unshare(CLONE_FILES);
    dup2(1, CHILD_FD);
    return 0;
}

static void unshares(void)
{
    fflush(stdout);
    if (fork() == 0) {      /* surely one thread (the others' ends are not waited for) */
        printf("unshare 0 %s, -1 %s", en(unshare(0)), en(unshare(-1)));
        printf(", CLONE_THREAD %s", en(unshare(CLONE_THREAD)));
        printf(", CLONE_VM %s", en(unshare(CLONE_VM)));
        printf(", CLONE_SIGHAND %s", en(unshare(CLONE_SIGHAND)));
        printf(", CLONE_FILES %s", en(unshare(CLONE_FILES)));
        printf(", CLONE_FS %s\n", en(unshare(CLONE_FS)));
        _exit(0);
    }
    wait(NULL);
    char before[512], after[512];
    for (int un = 0; un < 2; un++) {
        getcwd(before, sizeof before);
        pid_t c = clone(fs_child, stack + sizeof stack, CLONE_FS | SIGCHLD, un ? "" : NULL);
        waitpid(c, NULL, 0);
        getcwd(after, sizeof after);
        printf("CLONE_FS child's chdir%s: our cwd changed %d; ", un ? " after unshare" : "", strcmp(before, after) != 0);
        chdir(before);
        c = clone(files_child, stack + sizeof stack, CLONE_FILES | SIGCHLD, un ? "" : NULL);
        waitpid(c, NULL, 0);
        printf("CLONE_FILES child's dup2: ours %d\n", fcntl(CHILD_FD, F_GETFD) >= 0);
        close(CHILD_FD);
    }
    int id = semget(IPC_PRIVATE, 1, 0600);
    semctl(id, 0, SETVAL, 5);
    struct sembuf op = {0, -1, SEM_UNDO};
    semop(id, &op, 1);
    printf("semaphore 5, -1 with SEM_UNDO: %d; ", semctl(id, 0, GETVAL));
    printf("unshare(CLONE_SYSVSEM) %s", en(unshare(CLONE_SYSVSEM)));
    printf(" -> %d\n", semctl(id, 0, GETVAL));
    semctl(id, 0, IPC_RMID);
    pthread_t th;
    thread_stop = 0;
    pthread_create(&th, NULL, sleeper, NULL);
    printf("with a thread: CLONE_THREAD %s, CLONE_VM %s, CLONE_SIGHAND %s, CLONE_FILES %s, CLONE_FS %s; ",
           en(unshare(CLONE_THREAD)), en(unshare(CLONE_VM)), en(unshare(CLONE_SIGHAND)), en(unshare(CLONE_FILES)),
           en(unshare(CLONE_FS)));
    thread_stop = 1;
    pthread_join(th, NULL);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        setuid(65534);
        printf("as nobody: CLONE_NEWUTS %s, CLONE_NEWNS %s, CLONE_NEWIPC|CLONE_NEWNET %s\n", en(unshare(CLONE_NEWUTS)),
               en(unshare(CLONE_NEWNS)), en(unshare(CLONE_NEWIPC | CLONE_NEWNET)));
        _exit(0);
    }
    waitpid(c, NULL, 0);
}

/* -- ETXTBSY, execve with an empty argv, execveat --------------------------------- */
static void execs(void)
{
    struct stat st;
    printf("our own program: open for writing %s, O_RDONLY|O_TRUNC %s, truncate %s\n",
           en(open(self, O_WRONLY)), en(open(self, O_RDONLY | O_TRUNC)), en(truncate(self, 0)));
    /* a copy of the program */
    int in = open(self, O_RDONLY), out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    fstat(in, &st);
    char *buf = malloc(st.st_size);
    read(in, buf, st.st_size);
    write(out, buf, st.st_size);
    free(buf);
    close(in);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char *argv[] = {copy, NULL}, *envp[] = {"T_PROCCTL=copy", NULL};
        execve(copy, argv, envp);
        printf("execve of a file open for writing: %s\n", strerrorname_np(errno));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    close(out);
    int p[2];
    pipe2(p, O_CLOEXEC);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        char *argv[] = {copy, NULL}, *envp[] = {"T_PROCCTL=hold", NULL};
        dup2(p[0], 0);
        execve(copy, argv, envp);
        _exit(1);
    }
    close(p[0]);
    usleep(100000);
    printf("while it runs: open for writing %s", en(open(copy, O_WRONLY)));
    printf(", read %s", en(open(copy, O_RDONLY)));
    printf(", unlink %s", en(unlink(copy)));
    close(p[1]);
    waitpid(c, NULL, 0);
    out = open(copy, O_WRONLY | O_CREAT, 0755);
    printf(", gone: a new file there %s\n", en(out));
    close(out);
    report("an empty argv", run_self("argc0", -1));

    /* execveat */
    symlink(copy, "lnk");
    int d = open(".", O_PATH | O_DIRECTORY), fp = open(self, O_PATH);
    char *argv[] = {"x", NULL}, *envp[] = {"T_PROCCTL=execveat", NULL};
    printf("execveat: flags -1 %s, AT_SYMLINK_NOFOLLOW on a symlink %s, relative to a file %s, "
           "fd -1 AT_EMPTY_PATH %s, \"\" without it %s\n",
           en(execveat(d, self, argv, envp, -1)), en(execveat(d, "lnk", argv, envp, AT_SYMLINK_NOFOLLOW)),
           en(execveat(fp, "x", argv, envp, 0)), en(execveat(-1, "", argv, envp, AT_EMPTY_PATH)),
           en(execveat(fp, "", argv, envp, 0)));
    fflush(stdout);
    c = fork();
    if (c == 0) {
        execveat(fp, "", argv, envp, AT_EMPTY_PATH);
        _exit(1);
    }
    report("execveat of an O_PATH fd", c);
    unlink("lnk");
    unlink(copy);
    close(d);
    close(fp);
}

/* -- RLIMIT_FSIZE ---------------------------------------------------------------- */
static void fsize(void)
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct rlimit rl = {10, 10}, none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        setrlimit(RLIMIT_FSIZE, &rl);
        signal(SIGXFSZ, SIG_IGN);
        int fd = open("big", O_RDWR | O_CREAT | O_TRUNC, 0644);
        printf("RLIMIT_FSIZE 10: write 26 -> %ld", (long)write(fd, "abcdefghijklmnopqrstuvwxyz", 26));
        printf(", again %s, pwrite at 5 -> %ld", en(write(fd, "x", 1)), (long)pwrite(fd, "0123456789", 10, 5));
        printf(", ftruncate 11 %s", en(ftruncate(fd, 11)));
        printf(", 10 %s, 4 %s", en(ftruncate(fd, 10)), en(ftruncate(fd, 4)));
        printf(", empty write at 20 %s", en(pwrite(fd, "", 0, 20)));
        printf(", truncate 12 %s\n", en(truncate("big", 12)));
        signal(SIGXFSZ, SIG_DFL);
        fflush(stdout);
        lseek(fd, 10, SEEK_SET);
        write(fd, "y", 1);
        _exit(0);
    }
    report("past it with SIGXFSZ at its default", c);
    unlink("big");
}

int main(int argc, char **argv)
{
    char *mode = getenv("T_PROCCTL");
    if (mode)
        return child_mode(mode, argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    self = argv[0];
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);
    if (access("/proc/self/stat", F_OK))
        mount("proc", "/proc", "proc", 0, NULL);    /* a bare guest */
    snprintf(dir, sizeof dir, "%s/t_procctl.d", argc > 1 ? argv[1] : ".");
    snprintf(copy, sizeof copy, "%s/copy", dir);
    mkdir(dir, 0755);
    chdir(dir);
    personalities();
    tsc();
    cpuid_faulting();
    pgids();
    signals();
    waits();
    clones();
    unshares();
    execs();
    fsize();
    chdir("/");
    rmdir(dir);
    printf("done\n");
    return 0;
}
