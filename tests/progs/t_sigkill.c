/* SIGKILL ends a process whatever it is doing, promptly, and what it held
 * is released.  For each way of waiting (and for running, stopped, vfork
 * and multi-threaded processes) a child gets there, is SIGKILLed, and the
 * parent checks with waitpid that it died of SIGKILL within two seconds,
 * then that the resource works: the other end of its pipe sees EPIPE or
 * EOF, its lock can be taken, its semaphore undo was applied, the message
 * it waited for is still there, its futex has no waiter left.
 * `t_sigkill DIR` (DIR: a scratch directory). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

static char dir[256];
static int ready[2];            /* a child writes a byte here just before it blocks */
static int *shared;             /* a page every process sees (MAP_SHARED) */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say_ready(void)
{
    if (write(ready[1], "r", 1) != 1)
        _exit(98);
}

/* fork a child that runs fn (which should never return), wait until it is
 * about to block, and give it time to get there */
static pid_t spawn(void (*fn)(void))
{
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        fn();
        _exit(99);
    }
    char c;
    if (read(ready[0], &c, 1) != 1)
        printf("child never got ready\n");
    usleep(100000);
    return pid;
}

/* SIGKILL it; it must be gone, killed by SIGKILL, within two seconds */
static void kill_check(const char *name, pid_t pid)
{
    long t0 = now_ms();
    kill(pid, SIGKILL);
    int st;
    pid_t r = waitpid(pid, &st, 0);
    long dt = now_ms() - t0;
    if (r != pid)
        printf("%s: waitpid: %s\n", name, en(errno));
    else
        printf("%s: %s%s\n", name,
               WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? "killed by SIGKILL" : "NOT KILLED",
               dt < 2000 ? "" : " (slowly)");
}

static void forever(void)
{
    for (;;)
        pause();
}

/* -- pipes, fifos, sockets, terminals --------------------------------------- */

static int p[2];

static void read_pipe(void)
{
    close(p[1]);
    char c;
    say_ready();
    read(p[0], &c, 1);
}

static void write_full_pipe(void)
{
    close(p[0]);
    static char big[1 << 20];
    say_ready();
    write(p[1], big, sizeof big);
}

static void pipes(void)
{
    pipe(p);
    pid_t c = spawn(read_pipe);
    close(p[0]);
    kill_check("read on an empty pipe", c);
    ssize_t r = write(p[1], "x", 1);
    printf("  the writer then: %zd %s\n", r, r < 0 ? en(errno) : "");
    close(p[1]);

    pipe(p);
    c = spawn(write_full_pipe);
    close(p[1]);
    kill_check("write to a full pipe", c);
    static char buf[1 << 17];
    long total = 0;
    while ((r = read(p[0], buf, sizeof buf)) > 0)
        total += r;
    printf("  the reader then: %ld bytes, then %zd\n", total, r);
    close(p[0]);
}

static char fifo[300];

static void open_fifo(void)
{
    say_ready();
    open(fifo, O_RDONLY);
}

static void read_fifo(void)
{
    int fd = open(fifo, O_RDONLY);
    char c;
    say_ready();
    read(fd, &c, 1);
}

static void fifos(void)
{
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    unlink(fifo);
    mkfifo(fifo, 0600);
    pid_t c = spawn(open_fifo);
    kill_check("open of a fifo", c);
    int fd = open(fifo, O_WRONLY | O_NONBLOCK);
    printf("  no reader left: %s\n", fd < 0 ? en(errno) : "a reader!");
    if (fd >= 0)
        close(fd);

    int rw = open(fifo, O_RDWR);        /* a writer, so the child's open does not wait */
    c = spawn(read_fifo);
    fd = open(fifo, O_WRONLY | O_NONBLOCK);
    close(rw);                          /* now the child is the only reader */
    kill_check("read on an empty fifo", c);
    ssize_t r = write(fd, "x", 1);
    printf("  the writer then: %zd %s\n", r, r < 0 ? en(errno) : "");
    close(fd);
    unlink(fifo);
}

static int sv[2];
static char sockpath[300];

static void recv_socket(void)
{
    close(sv[1]);
    char c;
    say_ready();
    recv(sv[0], &c, 1, 0);
}

static void do_accept(void)
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strcpy(a.sun_path, sockpath);
    bind(s, (struct sockaddr *)&a, sizeof a);
    listen(s, 1);
    say_ready();
    accept(s, NULL, NULL);
}

static void sockets(void)
{
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t c = spawn(recv_socket);
    close(sv[0]);
    kill_check("recv on an empty socket", c);
    ssize_t r = send(sv[1], "x", 1, MSG_NOSIGNAL);
    printf("  the peer then: %zd %s\n", r, r < 0 ? en(errno) : "");
    close(sv[1]);

    snprintf(sockpath, sizeof sockpath, "%s/sock", dir);
    unlink(sockpath);
    c = spawn(do_accept);
    kill_check("accept", c);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strcpy(a.sun_path, sockpath);
    int cr = connect(s, (struct sockaddr *)&a, sizeof a);
    printf("  connecting then: %s\n", cr < 0 ? en(errno) : "connected!");
    close(s);
    unlink(sockpath);
}

static int ptm;

static void read_tty(void)
{
    int pts = open(ptsname(ptm), O_RDWR | O_NOCTTY);
    char c;
    say_ready();
    read(pts, &c, 1);
}

static void ttys(void)
{
    ptm = posix_openpt(O_RDWR | O_NOCTTY);
    grantpt(ptm);
    unlockpt(ptm);
    pid_t c = spawn(read_tty);
    kill_check("read on a terminal", c);
    ssize_t r = write(ptm, "x\n", 2);
    printf("  the master then: %zd\n", r);
    close(ptm);
}

/* -- waiting on many: epoll, poll, select, ppoll, pselect -------------------- */

static void do_epoll(void)
{
    close(p[1]);
    int ep = epoll_create1(0);
    struct epoll_event ev = { EPOLLIN, { 0 } };
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    say_ready();
    epoll_wait(ep, &ev, 1, -1);
}

static void do_poll(void)
{
    close(p[1]);
    struct pollfd f = { p[0], POLLIN, 0 };
    say_ready();
    poll(&f, 1, -1);
}

static void do_select(void)
{
    close(p[1]);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    say_ready();
    select(p[0] + 1, &r, NULL, NULL, NULL);
}

static void do_ppoll(void)
{
    close(p[1]);
    struct pollfd f = { p[0], POLLIN, 0 };
    sigset_t none;
    sigemptyset(&none);
    say_ready();
    ppoll(&f, 1, NULL, &none);
}

static void do_pselect(void)
{
    close(p[1]);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timespec ts = { 100000, 0 };
    say_ready();
    pselect(p[0] + 1, &r, NULL, NULL, &ts, NULL);
}

static void multiplexers(void)
{
    struct { const char *name; void (*fn)(void); } cases[] = {
        { "epoll_wait", do_epoll }, { "poll", do_poll }, { "select", do_select },
        { "ppoll", do_ppoll }, { "pselect", do_pselect },
    };
    for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++) {
        pipe(p);
        pid_t c = spawn(cases[i].fn);
        close(p[0]);
        kill_check(cases[i].name, c);
        ssize_t r = write(p[1], "x", 1);
        printf("  the writer then: %zd %s\n", r, r < 0 ? en(errno) : "");
        close(p[1]);
    }
}

/* -- signals and sleeps ------------------------------------------------------ */

static void on_usr1(int sig)
{
    (void)sig;
}

static void do_sigsuspend(void)
{
    sigset_t m;
    sigemptyset(&m);
    signal(SIGUSR1, on_usr1);
    say_ready();
    for (;;)
        sigsuspend(&m);
}

static void do_pause(void)
{
    say_ready();
    forever();
}

static void do_sigtimedwait(void)
{
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, NULL);
    say_ready();
    sigwaitinfo(&m, NULL);
}

static void do_nanosleep(void)
{
    struct timespec ts = { 100000, 0 };
    say_ready();
    nanosleep(&ts, NULL);
}

static void do_clock_nanosleep(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 100000;
    say_ready();
    clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL);
}

static void do_timerfd(void)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec v = { { 0, 0 }, { 100000, 0 } };
    timerfd_settime(fd, 0, &v, NULL);
    uint64_t n;
    say_ready();
    read(fd, &n, sizeof n);
}

static void do_alarm_pause(void)
{
    alarm(100000);      /* a timer the kernel must drop with the process */
    struct itimerval it = { { 0, 10000 }, { 0, 10000 } };
    signal(SIGVTALRM, on_usr1);
    setitimer(ITIMER_VIRTUAL, &it, NULL);
    say_ready();
    forever();
}

static void signals_and_sleeps(void)
{
    struct { const char *name; void (*fn)(void); } cases[] = {
        { "sigsuspend", do_sigsuspend }, { "pause", do_pause },
        { "rt_sigtimedwait", do_sigtimedwait }, { "nanosleep", do_nanosleep },
        { "clock_nanosleep", do_clock_nanosleep }, { "read on a timerfd", do_timerfd },
        { "pause with timers armed", do_alarm_pause },
    };
    for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++)
        kill_check(cases[i].name, spawn(cases[i].fn));
}

/* -- futexes, System V IPC, message queues ---------------------------------- */

static void futex_wait(void)
{
    say_ready();
    syscall(SYS_futex, &shared[0], FUTEX_WAIT, 0, NULL, NULL, 0);
}

static int semid, msqid;

static void do_semop(void)
{
    struct sembuf up = { 0, 1, SEM_UNDO }, down = { 1, -1, 0 };
    semop(semid, &up, 1);
    say_ready();
    semop(semid, &down, 1);
}

static void do_msgrcv(void)
{
    struct { long type; char text[8]; } m;
    say_ready();
    msgrcv(msqid, &m, sizeof m.text, 0, 0);
}

static mqd_t mq;

static void do_mq_receive(void)
{
    struct sigevent sev = { .sigev_notify = SIGEV_NONE };
    mq_notify(mq, &sev);        /* a registration the kernel must drop with the process */
    char buf[64];
    say_ready();
    mq_receive(mq, buf, sizeof buf, NULL);
}

static void ipc(void)
{
    shared[0] = 0;
    pid_t c = spawn(futex_wait);
    kill_check("futex wait", c);
    printf("  FUTEX_WAKE then wakes %ld\n", syscall(SYS_futex, &shared[0], FUTEX_WAKE, 1, NULL, NULL, 0));

    semid = semget(IPC_PRIVATE, 2, 0600);
    c = spawn(do_semop);
    printf("  semaphore 0 while it waits: %d\n", semctl(semid, 0, GETVAL));
    kill_check("semop", c);
    printf("  semaphore 0 after its SEM_UNDO: %d, waiting for 1: %d\n", semctl(semid, 0, GETVAL),
           semctl(semid, 1, GETNCNT));
    semctl(semid, 0, IPC_RMID);

    msqid = msgget(IPC_PRIVATE, 0600);
    c = spawn(do_msgrcv);
    kill_check("msgrcv", c);
    struct { long type; char text[8]; } m = { 1, "hello" };
    msgsnd(msqid, &m, sizeof m.text, 0);
    memset(&m, 0, sizeof m);
    ssize_t r = msgrcv(msqid, &m, sizeof m.text, 0, IPC_NOWAIT);
    printf("  the message then: %zd %s\n", r, r > 0 ? m.text : en(errno));
    msgctl(msqid, IPC_RMID, NULL);

    struct mq_attr attr = { 0, 4, 64, 0 };
    mq_unlink("/t_sigkill");
    mq = mq_open("/t_sigkill", O_RDWR | O_CREAT, 0600, &attr);
    c = spawn(do_mq_receive);
    kill_check("mq_receive", c);
    struct sigevent sev = { .sigev_notify = SIGEV_NONE };
    printf("  mq_notify then: %s\n", mq_notify(mq, &sev) < 0 ? en(errno) : "ok");
    mq_send(mq, "hello", 6, 0);
    char buf[64];
    r = mq_receive(mq, buf, sizeof buf, NULL);
    printf("  the message then: %zd %s\n", r, r > 0 ? buf : en(errno));
    mq_close(mq);
    mq_unlink("/t_sigkill");
}

/* -- locks ------------------------------------------------------------------- */

static char lockfile[300];

static void do_flock(void)
{
    int fd = open(lockfile, O_RDWR);
    say_ready();
    flock(fd, LOCK_EX);
}

static void do_fcntl_lock(void)
{
    int fd = open(lockfile, O_RDWR);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    say_ready();
    fcntl(fd, F_SETLKW, &fl);
}

static void try_fcntl_lock(void)
{
    int fd = open(lockfile, O_RDWR);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    _exit(fcntl(fd, F_SETLK, &fl) == 0 ? 0 : 1);
}

static void locks(void)
{
    snprintf(lockfile, sizeof lockfile, "%s/lock", dir);
    int fd = open(lockfile, O_RDWR | O_CREAT | O_TRUNC, 0600);
    flock(fd, LOCK_EX);
    pid_t c = spawn(do_flock);
    kill_check("flock", c);
    flock(fd, LOCK_UN);
    int fd2 = open(lockfile, O_RDWR);
    printf("  the lock then: %s\n", flock(fd2, LOCK_EX | LOCK_NB) < 0 ? en(errno) : "taken");
    close(fd2);

    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    fcntl(fd, F_SETLK, &fl);
    c = spawn(do_fcntl_lock);
    kill_check("fcntl F_SETLKW", c);
    fl.l_type = F_UNLCK;
    fcntl(fd, F_SETLK, &fl);
    c = fork();
    if (c == 0)
        try_fcntl_lock();
    int st;
    waitpid(c, &st, 0);
    printf("  the lock then: %s\n", WEXITSTATUS(st) == 0 ? "taken" : "still held");
    close(fd);
    unlink(lockfile);
}

/* -- processes: waiting, vfork, stopped, running, exec'ing, threads --------- */

static void do_wait(void)
{
    pid_t g = fork();
    if (g == 0)
        forever();
    shared[1] = g;
    say_ready();
    waitpid(g, NULL, 0);
}

static void do_vfork(void)
{
    pid_t g = vfork();
    if (g == 0) {
        shared[1] = getpid();
        say_ready();
        forever();
    }
    _exit(97);
}

static void spin(void)
{
    say_ready();
    for (volatile unsigned long i = 0;; i++)
        ;
}

static char self[300];

static void exec_loop(void)
{
    say_ready();
    execl(self, self, dir, "exec-loop", NULL);
}

static void *thread_read(void *a)
{
    (void)a;
    char c;
    read(p[0], &c, 1);
    return NULL;
}

static void *thread_futex(void *a)
{
    (void)a;
    int w = 0;
    syscall(SYS_futex, &w, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}

static void *thread_sleep(void *a)
{
    (void)a;
    sleep(100000);
    return NULL;
}

static void *thread_spin(void *a)
{
    (void)a;
    for (volatile unsigned long i = 0;; i++)
        ;
    return NULL;
}

static void threads(void)
{
    close(p[1]);
    pthread_t t;
    pthread_create(&t, NULL, thread_read, NULL);
    pthread_create(&t, NULL, thread_futex, NULL);
    pthread_create(&t, NULL, thread_sleep, NULL);
    pthread_create(&t, NULL, thread_spin, NULL);
    usleep(50000);
    say_ready();
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, NULL);
    sigwaitinfo(&m, NULL);
}

static void stopped_threads(void)
{
    pthread_t t;
    pthread_create(&t, NULL, thread_sleep, NULL);
    pthread_create(&t, NULL, thread_spin, NULL);
    usleep(50000);
    say_ready();
    raise(SIGSTOP);
    forever();
}

static int reap_orphan(pid_t g)
{
    /* the grandchild was adopted by us (a subreaper): kill and reap it */
    kill(g, SIGKILL);
    int st;
    return waitpid(g, &st, 0) == g && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

static void forever_ready_stop(void);

static void processes(void)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    pid_t c = spawn(do_wait);
    kill_check("wait4 for a child", c);
    printf("  its child, adopted, then killed: %d\n", reap_orphan(shared[1]));

    c = spawn(do_vfork);
    kill_check("vfork parent", c);
    printf("  the vfork child, adopted, then killed: %d\n", reap_orphan(shared[1]));

    c = spawn(forever_ready_stop);
    int st;
    waitpid(c, &st, WUNTRACED);
    printf("stopped by SIGSTOP: %d\n", WIFSTOPPED(st));
    kill_check("a stopped process", c);

    kill_check("a tight loop", spawn(spin));
    kill_check("a process exec'ing itself in a loop", spawn(exec_loop));

    pipe(p);
    c = spawn(threads);
    close(p[0]);
    kill_check("threads blocked in read, futex, sleep, sigwaitinfo and a loop", c);
    ssize_t r = write(p[1], "x", 1);
    printf("  the writer then: %zd %s\n", r, r < 0 ? en(errno) : "");
    close(p[1]);

    c = spawn(stopped_threads);
    waitpid(c, &st, WUNTRACED);
    printf("threads group-stopped: %d\n", WIFSTOPPED(st));
    kill_check("a group-stopped process with threads", c);
}

static void sendfiles(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/data", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    static char big[1 << 18];
    write(fd, big, sizeof big);
    close(fd);
    /* interrupted after a partial copy: the count and the file position agree */
    pipe(p);
    int in = open(path, O_RDONLY);
    struct sigaction sa = { .sa_handler = on_usr1 };
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { { 0, 0 }, { 0, 50000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    ssize_t n = sendfile(p[1], in, NULL, sizeof big);
    printf("sendfile into a pipe, interrupted: %zd, file position %ld\n", n, (long)lseek(in, 0, SEEK_CUR));
    close(in);
    close(p[0]);
    close(p[1]);

    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        int in = open(path, O_RDONLY);
        say_ready();
        for (;;)
            sendfile(p[1], in, NULL, sizeof big);
    }
    char ch;
    read(ready[0], &ch, 1);
    usleep(100000);
    close(p[1]);
    kill_check("sendfile into a full pipe", c);
    long total = 0;
    ssize_t r;
    while ((r = read(p[0], big, sizeof big)) > 0)
        total += r;
    printf("  the reader then: %ld bytes, then %zd\n", total, r);
    close(p[0]);
    unlink(path);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
    if (argc > 2 && strcmp(argv[2], "exec-loop") == 0)
        execl("/proc/self/exe", argv[0], dir, "exec-loop", NULL);
    snprintf(self, sizeof self, "%s", argv[0]);
    signal(SIGPIPE, SIG_IGN);
    pipe(ready);
    shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pipes();
    fifos();
    sockets();
    ttys();
    multiplexers();
    signals_and_sleeps();
    ipc();
    locks();
    sendfiles();
    processes();
    printf("done\n");
    return 0;
}

static void forever_ready_stop(void)
{
    say_ready();
    raise(SIGSTOP);
    forever();
}
