/* Threads at the clone level: CLONE_CHILD_CLEARTID wake-ups, thread exit
   against exit_group, execve from a thread, robust futexes on owner death
   (threads and processes, exit and SIGKILL), per-thread signal masks, tgkill. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *en(int r) { return r ? strerrorname_np(r) : "0"; }

static void report(const char *what, pid_t pid)
{
    int st;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st))
        printf("%s: exit %d\n", what, WEXITSTATUS(st));
    else
        printf("%s: signal %d\n", what, WTERMSIG(st));
}

/* -- raw clone with CLEARTID ------------------------------------------------- */
static volatile pid_t ctid_word, ptid_word;
static volatile int child_saw_settid, child_ran;

static int raw_child(void *arg)
{
    (void)arg;
    child_saw_settid = ctid_word == (pid_t)syscall(SYS_gettid);
    child_ran = 1;
    syscall(SYS_exit, 0);
    return 0;
}

static void test_cleartid(void)
{
    size_t sz = 64 << 10;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM
                | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
    ctid_word = -1;     /* the child's CLONE_CHILD_SETTID replaces it, its exit clears it */
    pid_t tid = clone(raw_child, stack + sz, flags, NULL, &ptid_word, NULL, &ctid_word);
    while (ctid_word != 0) {
        syscall(SYS_futex, &ctid_word, FUTEX_WAIT, ctid_word, NULL, NULL, 0);
    }
    printf("clone thread: ptid==tid %d, child saw ctid %d, ran %d, ctid cleared %d\n",
           ptid_word == tid, child_saw_settid, child_ran, ctid_word == 0);
    munmap(stack, sz);
}

/* -- exit of one thread against exit_group ------------------------------------ */
static void *outlive_main(void *arg)
{
    (void)arg;
    usleep(50000);
    printf("a thread outlived main\n");
    exit(3);
}

static void *exit_group_thread(void *arg)
{
    (void)arg;
    usleep(20000);
    _exit(5);
}

static void test_exits(void)
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pthread_t t;
        pthread_create(&t, NULL, outlive_main, NULL);
        pthread_exit(NULL);
    }
    report("main pthread_exit, last thread exit(3)", c);
    c = fork();
    if (c == 0) {
        pthread_t t;
        pthread_create(&t, NULL, exit_group_thread, NULL);
        pthread_join(t, NULL);      /* blocked when _exit(5) ends the group */
        _exit(1);
    }
    report("thread _exit(5) while main blocks in join", c);
}

/* -- execve from a thread --------------------------------------------------- */
static char *self_path;
static char pidbuf[32];

static void *execer(void *arg)
{
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);       /* the exec'd image keeps this thread's mask */
    snprintf(pidbuf, sizeof pidbuf, "%d", getpid());
    char *argv[] = {self_path, "exec-from-thread", pidbuf, NULL};
    execv(self_path, argv);
    printf("execv failed: %s\n", strerrorname_np(errno));
    return NULL;
}

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static int after_exec(char **argv)
{
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("after exec from a thread: pid same %d, tid==pid %d, SIGUSR2 blocked %d\n",
           getpid() == atoi(argv[2]), (pid_t)syscall(SYS_gettid) == getpid(),
           sigismember(&cur, SIGUSR2));
    pthread_t t;        /* threads work in the new image */
    void *r = (void *)1;
    pthread_create(&t, NULL, sleeper, NULL);
    pthread_cancel(t);
    pthread_join(t, &r);
    printf("new thread cancelled %d\n", r == PTHREAD_CANCELED);
    fflush(stdout);
    return 7;
}

static void test_exec_from_thread(void)
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pthread_t s1, s2, e;
        pthread_create(&s1, NULL, sleeper, NULL);
        pthread_create(&s2, NULL, sleeper, NULL);
        pthread_create(&e, NULL, execer, NULL);
        for (;;)
            pause();        /* main blocks; the exec kills it */
    }
    report("execve from a thread", c);
}

/* -- robust futexes ------------------------------------------------------------ */
static pthread_mutex_t *rm;
static volatile int holder_ready;

static void init_robust(pthread_mutex_t *m, int pshared)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pshared)
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(m, &a);
}

static void *die_holding(void *arg)
{
    pthread_mutex_lock(rm);
    holder_ready = 1;
    if (arg)
        usleep(50000);      /* let main block on the lock first */
    return NULL;            /* thread exit with the lock held */
}

static void relock(const char *what)
{
    int r = pthread_mutex_lock(rm);
    int c = r == EOWNERDEAD ? pthread_mutex_consistent(rm) : -1;
    pthread_mutex_unlock(rm);
    int again = pthread_mutex_lock(rm);
    pthread_mutex_unlock(rm);
    printf("%s: lock %s, consistent %d, relock %s\n", what, en(r), c, en(again));
}

static void *kill_later(void *arg)
{
    usleep(50000);
    kill((pid_t)(long)arg, SIGKILL);
    return NULL;
}

static void test_robust(void)
{
    rm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    init_robust(rm, 0);
    pthread_t t;
    pthread_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    relock("thread died holding");

    holder_ready = 0;
    pthread_create(&t, NULL, die_holding, (void *)1);
    while (!holder_ready)
        usleep(1000);
    relock("waiter blocked while the thread died");
    pthread_join(t, NULL);

    pthread_mutex_destroy(rm);
    init_robust(rm, 1);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pthread_mutex_lock(rm);
        _exit(0);
    }
    report("process exited holding", c);
    relock("process-shared, owner exited");

    int p[2];
    pipe(p);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        pthread_mutex_lock(rm);
        write(p[1], "x", 1);
        for (;;)
            pause();
    }
    char x;
    read(p[0], &x, 1);
    pthread_create(&t, NULL, kill_later, (void *)(long)c);
    relock("process-shared, waiter blocked while the owner was SIGKILLed");
    pthread_join(t, NULL);
    report("owner", c);

    struct robust_list_head *head;
    size_t len = 0;
    long r = syscall(SYS_get_robust_list, 0, &head, &len);
    printf("get_robust_list: %ld len %zu head set %d\n", r, len, head != NULL);
    r = syscall(SYS_set_robust_list, head, 12);
    printf("set_robust_list bad size: %s\n", r < 0 ? strerrorname_np(errno) : "ok");
}

/* -- priority-inheritance mutexes (FUTEX_LOCK_PI/UNLOCK_PI) --------------------- */
static pthread_mutex_t *pm;
static long pi_counter;

static void init_pi(pthread_mutex_t *m, int robust, int pshared)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    if (robust)
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pshared)
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(m, &a);
}

static void *pi_adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(pm);
        pi_counter++;
        pthread_mutex_unlock(pm);
    }
    return NULL;
}

static void *pi_holder(void *arg)
{
    pthread_mutex_lock(pm);
    holder_ready = 1;
    usleep(50000);
    if (arg == NULL)
        pthread_mutex_unlock(pm);   /* the waiter gets it from the kernel */
    return NULL;                    /* or dies holding it */
}

static void test_pi(void)
{
    pm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    init_pi(pm, 0, 0);
    pthread_t a, b;
    pthread_create(&a, NULL, pi_adder, NULL);
    pthread_create(&b, NULL, pi_adder, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("PI mutex, two threads adding: %ld\n", pi_counter);

    holder_ready = 0;
    pthread_create(&a, NULL, pi_holder, NULL);
    while (!holder_ready)
        usleep(1000);
    printf("PI trylock while held: %s; ", en(pthread_mutex_trylock(pm)));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    printf("timedlock 10 ms: %s; ", en(pthread_mutex_timedlock(pm, &ts)));
    printf("blocking lock until the unlock: %s\n", en(pthread_mutex_lock(pm)));
    pthread_mutex_unlock(pm);
    pthread_join(a, NULL);
    printf("unlock by a non-owner: %s\n", en(pthread_mutex_unlock(pm)));

    pthread_mutex_destroy(pm);
    init_pi(pm, 1, 0);
    holder_ready = 0;
    pthread_create(&a, NULL, pi_holder, (void *)1);
    while (!holder_ready)
        usleep(1000);
    rm = pm;
    relock("robust PI, waiter blocked while the owner thread died");
    pthread_join(a, NULL);

    pthread_mutex_destroy(pm);
    init_pi(pm, 1, 1);
    int p[2];
    pipe(p);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pthread_mutex_lock(pm);
        write(p[1], "x", 1);
        for (;;)
            pause();
    }
    char x;
    read(p[0], &x, 1);
    pthread_t k;
    pthread_create(&k, NULL, kill_later, (void *)(long)c);
    relock("robust PI, process-shared, owner SIGKILLed");
    pthread_join(k, NULL);
    report("PI owner", c);
    munmap(pm, 4096);
}

/* -- processes sharing memory: vfork, posix_spawn, clone(CLONE_VM) ----------- */
static volatile int shared_var;

static int vm_child(void *arg)
{
    shared_var = (int)(long)arg;
    return 0;
}

static void test_shared_vm(void)
{
    shared_var = 0;
    pid_t c = vfork();
    if (c == 0) {
        shared_var = 42;    /* the parent is suspended and sees it: one address space */
        _exit(0);
    }
    report("vfork child", c);
    printf("vfork child's write seen by the parent: %d\n", shared_var);
    pid_t pid;
    char *argv[] = {"nothing", NULL};
    int r = posix_spawn(&pid, "/nonexistent/program", NULL, NULL, argv, NULL);
    printf("posix_spawn of a missing program: %s\n", en(r));
    size_t sz = 64 << 10;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    c = clone(vm_child, stack + sz, CLONE_VM | SIGCHLD, (void *)7L);
    report("clone(CLONE_VM) child", c);
    printf("its write seen by the parent: %d\n", shared_var);
    munmap(stack, sz);
}

/* -- CLONE_FILES without a thread: one fd table, two processes --------------- */
static volatile int files_child_fd = -1;

static int files_child(void *arg)
{
    (void)arg;
    files_child_fd = open("/dev/null", O_RDONLY);    /* lands in the shared table */
    return 0;
}

static void test_shared_files(void)
{
    size_t sz = 64 << 10;
    char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int mine = open("/dev/null", O_RDONLY);
    pid_t c = clone(files_child, stack + sz, CLONE_VM | CLONE_FILES | SIGCHLD, NULL);
    report("clone(CLONE_FILES) child", c);
    printf("the child's open fd is the parent's: %d; the parent's fd survives the child's exit: %d\n",
           fcntl(files_child_fd, F_GETFD) >= 0, fcntl(mine, F_GETFD) >= 0);
    close(files_child_fd);
    close(mine);
    munmap(stack, sz);
}

/* -- pidfds ----------------------------------------------------------------------- */
static void *tid_reporter(void *arg)
{
    *(volatile pid_t *)arg = (pid_t)syscall(SYS_gettid);
    for (;;)
        pause();
    return NULL;
}

static void test_pidfd(void)
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        for (;;)
            pause();
    }
    int nfd = (int)syscall(SYS_pidfd_open, c, O_NONBLOCK);      /* PIDFD_NONBLOCK */
    siginfo_t nsi;
    memset(&nsi, 0xff, sizeof nsi);
    long nr = syscall(SYS_waitid, P_PIDFD, nfd, &nsi, WEXITED, NULL);
    printf("PIDFD_NONBLOCK: O_NONBLOCK %d, waitid of a live child %ld %s, siginfo zeroed %d; ",
           (fcntl(nfd, F_GETFL) & O_NONBLOCK) != 0, nr, nr < 0 ? strerrorname_np(errno) : "ok",
           nsi.si_pid == 0 && nsi.si_signo == 0);
    nr = syscall(SYS_waitid, P_PIDFD, nfd, &nsi, WEXITED | WNOHANG, NULL);
    printf("with WNOHANG %ld; ", nr);
    nr = syscall(SYS_waitid, P_PIDFD, -1, &nsi, WEXITED, NULL);
    printf("fd -1 %s\n", nr < 0 ? strerrorname_np(errno) : "ok");
    close(nfd);
    int fd = (int)syscall(SYS_pidfd_open, c, 0);
    struct pollfd p = {fd, POLLIN, 0};
    printf("pidfd_open: %s, close-on-exec %d; ", fd >= 0 ? "ok" : strerrorname_np(errno),
           (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    printf("poll before exit %d; ", poll(&p, 1, 0));
    printf("bad flags %s; ", syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0x100) < 0 ? strerrorname_np(errno) : "ok");
    printf("send SIGTERM %ld; ", syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0));
    printf("poll after %d\n", poll(&p, 1, 5000));
    siginfo_t si = {0};
    long r = syscall(SYS_waitid, P_PIDFD, fd, &si, WEXITED, NULL);
    printf("waitid(P_PIDFD): %ld, pid matches %d, code %d status %d; ", r, si.si_pid == c, si.si_code, si.si_status);
    printf("signal after reaping: %s\n",
           syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) < 0 ? strerrorname_np(errno) : "ok");
    close(fd);

    volatile pid_t ttid = 0;
    pthread_t th;
    pthread_create(&th, NULL, tid_reporter, (void *)&ttid);
    while (!ttid)
        usleep(1000);
    /* EINVAL on 6.1, ENOENT since 6.9: only that it fails */
    printf("pidfd_open of a thread fails: %d; ", syscall(SYS_pidfd_open, ttid, 0) < 0);
    pthread_cancel(th);
    pthread_join(th, NULL);
    printf("of nobody: %s; ", syscall(SYS_pidfd_open, 999999, 0) < 0 ? strerrorname_np(errno) : "ok");
    printf("not a pidfd: %s\n", syscall(SYS_pidfd_send_signal, 0, 0, NULL, 0) < 0 ? strerrorname_np(errno) : "ok");

    int cfd = -1;
    struct clone_args ca = {0};
    ca.flags = CLONE_PIDFD;
    ca.pidfd = (unsigned long)&cfd;
    ca.exit_signal = SIGCHLD;
    fflush(stdout);
    long cc = syscall(SYS_clone3, &ca, sizeof ca);
    if (cc == 0)
        _exit(9);
    si.si_status = 0;
    syscall(SYS_waitid, P_PIDFD, cfd, &si, WEXITED, NULL);
    printf("clone3 CLONE_PIDFD: pidfd %s, child status %d\n", cfd >= 0 ? "set" : "unset", si.si_status);
    close(cfd);
}

/* -- membarrier ---------------------------------------------------------------- */
static void test_membarrier(void)
{
    long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    long want = MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_PRIVATE_EXPEDITED
                | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED;
    printf("membarrier query has global and private expedited: %d\n", q > 0 && (q & want) == want);
    long unreg = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    printf("private expedited unregistered: %s; ", unreg < 0 ? strerrorname_np(errno) : "ok");
    printf("register: %ld; ", syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0));
    printf("then: %ld; global: %ld; bad command: %s\n",
           syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0),
           syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0),
           syscall(SYS_membarrier, 1 << 20, 0, 0) < 0 ? strerrorname_np(errno) : "ok");
}

/* -- per-thread masks and tgkill ----------------------------------------------- */
static volatile pid_t got_usr1, got_usr2;
static volatile pid_t target_tid;

static void on_sig(int s)
{
    pid_t me = (pid_t)syscall(SYS_gettid);
    if (s == SIGUSR1)
        got_usr1 = me;
    else
        got_usr2 = me;
}

static void *unblocked(void *arg)
{
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    target_tid = (pid_t)syscall(SYS_gettid);
    while (!got_usr1 || !got_usr2)
        usleep(1000);
    return NULL;
}

static void test_masks(void)
{
    signal(SIGUSR1, on_sig);
    signal(SIGUSR2, on_sig);
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, &old);
    pthread_t t;
    pthread_create(&t, NULL, unblocked, NULL);
    while (!target_tid)
        usleep(1000);
    kill(getpid(), SIGUSR1);
    long r = syscall(SYS_tgkill, getpid(), target_tid, SIGUSR2);
    long bad = syscall(SYS_tgkill, getpid() + 1000000, target_tid, SIGUSR2);
    int bad_errno = errno;
    pthread_join(t, NULL);
    printf("process signal went to the unblocked thread %d, tgkill %ld to it %d, wrong tgid %s\n",
           got_usr1 == target_tid, r, got_usr2 == target_tid,
           bad < 0 ? strerrorname_np(bad_errno) : "ok");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && strcmp(argv[1], "exec-from-thread") == 0)
        return after_exec(argv);
    self_path = argv[0];
    test_cleartid();
    test_exits();
    test_exec_from_thread();
    test_robust();
    test_pi();
    test_shared_vm();
    test_shared_files();
    test_pidfd();
    test_membarrier();
    test_masks();
    printf("done\n");
    return 0;
}
