/* One round of a mixed workload for the soak test (tests/test_stalls.py):
 * threads and futexes, timers of every kind, poll/select/epoll (with long
 * timeouts woken many times, and interest lists whose files get closed),
 * sendfile and splice, inotify, eventfd, signalfd, sockets, System V and
 * POSIX IPC, pidfds, fork/exec/vfork, and children SIGKILLed while blocked
 * in reads, futexes, sleeps, polls, sendfile, semop and mq_receive.
 * Everything it makes it also ends; a kernel that leaks some of it grows
 * and slows down round after round.  Prints one line per part and "done".
 * `t_soak DIR` (DIR: a scratch directory). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256];
static int *shared;
static int bad;

static void check(const char *what, int ok)
{
    if (!ok) {
        printf("FAILED: %s (%s)\n", what, strerrorname_np(errno) ?: "?");
        bad = 1;
    }
}

/* -- threads and futexes ------------------------------------------------------ */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *bump(void *a)
{
    (void)a;
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

static void threads(void)
{
    pthread_t t[4];
    counter = 0;
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, bump, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    check("threads", counter == 2000);
    printf("threads\n");
}

/* -- timers -------------------------------------------------------------------- */

static volatile int alarms;

static void on_alarm(int s)
{
    (void)s;
    alarms++;
}

static void timers(void)
{
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    timer_t t;
    struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
    check("timer_create", timer_create(CLOCK_MONOTONIC, &sev, &t) == 0);
    struct itimerspec v = { { 0, 1000000 }, { 0, 1000000 } };
    timer_settime(t, 0, &v, NULL);
    for (int i = 0; i < 3; i++)
        check("sigwaitinfo", sigwaitinfo(&m, NULL) == SIGUSR1);
    timer_delete(t);        /* SIGUSR1 stays blocked: one more may be pending */

    int fd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec once = { { 0, 0 }, { 0, 1000000 } };
    timerfd_settime(fd, 0, &once, NULL);
    uint64_t n;
    check("timerfd", read(fd, &n, 8) == 8);
    struct itimerspec far = { { 3600, 0 }, { 3600, 0 } };
    timerfd_settime(fd, 0, &far, NULL);         /* closed armed */
    close(fd);

    signal(SIGALRM, on_alarm);
    alarm(3600);
    alarm(0);
    struct itimerval it = { { 0, 0 }, { 0, 1000 } };
    alarms = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    while (!alarms)
        pause();
    struct timespec ms = { 0, 1000000 };
    nanosleep(&ms, NULL);
    timer_t leftover;     /* armed for an hour and never deleted: exit must */
    timer_create(CLOCK_REALTIME, &sev, &leftover);
    timer_settime(leftover, 0, &far, NULL);
    printf("timers\n");
}

/* -- poll, select, epoll ------------------------------------------------------ */

static void multiplexing(void)
{
    int p[2];
    pipe(p);
    /* a poll with an hour's timeout, woken a hundred times by a child */
    pid_t c = fork();
    if (c == 0) {
        for (int i = 0; i < 100; i++) {
            write(p[1], "x", 1);
            usleep(200);
        }
        _exit(0);
    }
    int got = 0;
    while (got < 100) {
        struct pollfd f = { p[0], POLLIN, 0 };
        if (poll(&f, 1, 3600 * 1000) == 1) {
            char buf[128];
            got += read(p[0], buf, sizeof buf);
        }
    }
    waitpid(c, NULL, 0);
    write(p[1], "y", 1);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = { 3600, 0 };
    check("select", select(p[0] + 1, &r, NULL, NULL, &tv) == 1);
    char ch;
    read(p[0], &ch, 1);

    /* epoll: an interest list of pipes, closed without EPOLL_CTL_DEL */
    int ep = epoll_create1(0);
    int fds[16][2];
    for (int i = 0; i < 16; i++) {
        pipe(fds[i]);
        struct epoll_event ev = { EPOLLIN, { .u32 = i } };
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i][0], &ev);
    }
    write(fds[5][1], "z", 1);
    struct epoll_event out[4];
    check("epoll_wait", epoll_wait(ep, out, 4, 3600 * 1000) == 1 && out[0].data.u32 == 5);
    for (int i = 0; i < 16; i++) {
        close(fds[i][0]);
        close(fds[i][1]);
    }
    check("epoll after close", epoll_wait(ep, out, 4, 0) == 0);
    close(ep);
    close(p[0]);
    close(p[1]);
    printf("poll select epoll\n");
}

/* -- sendfile and splice -------------------------------------------------------- */

static void copying(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/soak.data", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    static char buf[32768];
    memset(buf, 'a', sizeof buf);
    write(fd, buf, sizeof buf);
    int p[2];
    pipe(p);
    off_t off = 0;
    check("sendfile", sendfile(p[1], fd, &off, sizeof buf) == sizeof buf);
    check("read back", read(p[0], buf, sizeof buf) == sizeof buf);
    write(p[1], buf, 4096);
    loff_t o2 = 0;
    check("splice", splice(p[0], NULL, fd, &o2, 4096, 0) == 4096);
    close(p[0]);
    close(p[1]);
    close(fd);
    unlink(path);
    printf("sendfile splice\n");
}

/* -- files that notify, count and signal ----------------------------------------- */

static void events(void)
{
    int in = inotify_init1(0);
    inotify_add_watch(in, dir, IN_CREATE | IN_DELETE);
    char path[300];
    snprintf(path, sizeof path, "%s/soak.watched", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    unlink(path);
    char buf[4096];
    check("inotify", read(in, buf, sizeof buf) > 0);
    close(in);          /* closed with its watch in place */

    int e = eventfd(0, 0);
    uint64_t one = 1, n;
    write(e, &one, 8);
    check("eventfd", read(e, &n, 8) == 8 && n == 1);
    close(e);

    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, NULL);
    int sfd = signalfd(-1, &m, 0);
    raise(SIGUSR2);
    struct signalfd_siginfo si;
    check("signalfd", read(sfd, &si, sizeof si) == sizeof si && si.ssi_signo == SIGUSR2);
    close(sfd);
    sigprocmask(SIG_UNBLOCK, &m, NULL);

    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    send(sv[0], "hello", 5, 0);
    check("socket", recv(sv[1], buf, sizeof buf, 0) == 5);
    close(sv[0]);
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv);
    int k = 0;
    while (send(sv[0], buf, 512, 0) > 0 && k < 10000)     /* fill it, then drop it */
        k++;
    close(sv[0]);
    close(sv[1]);
    printf("inotify eventfd signalfd sockets\n");
}

/* -- children killed while they wait -------------------------------------------- */

static int ready[2], p[2], semid;
static mqd_t mq;

static void go(void)
{
    write(ready[1], "r", 1);
}

static pid_t child(int what)
{
    pid_t c = fork();
    if (c)
        return c;
    char ch;
    struct timespec long_ts = { 3600, 0 };
    struct pollfd f = { p[0], POLLIN, 0 };
    struct sembuf up = { 0, 1, SEM_UNDO }, down = { 1, -1, 0 };
    static char big[1 << 17];
    switch (what) {
    case 0: go(); read(p[0], &ch, 1); break;
    case 1: go(); syscall(SYS_futex, &shared[0], FUTEX_WAIT, 0, NULL, NULL, 0); break;
    case 2: go(); nanosleep(&long_ts, NULL); break;
    case 3: go(); poll(&f, 1, -1); break;
    case 4: {
        char path[300];
        snprintf(path, sizeof path, "%s/soak.big", dir);
        int fd = open(path, O_RDWR | O_CREAT, 0600);
        write(fd, big, sizeof big);
        int q[2];
        pipe(q);
        go();
        for (;;)
            sendfile(q[1], fd, NULL, sizeof big);
    }
    case 5: semop(semid, &up, 1); go(); semop(semid, &down, 1); break;
    case 6: {
        struct sigevent sev = { .sigev_notify = SIGEV_NONE };
        mq_notify(mq, &sev);
        go();
        mq_receive(mq, big, sizeof big, NULL);
        break;
    }
    case 7: go(); for (;;) ; break;
    }
    _exit(99);
}

static void kills(void)
{
    pipe(ready);
    pipe(p);
    shared[0] = 0;
    semid = semget(IPC_PRIVATE, 2, 0600);
    struct mq_attr attr = { 0, 4, 64, 0 };
    mq_unlink("/t_soak");
    mq = mq_open("/t_soak", O_RDWR | O_CREAT, 0600, &attr);
    pid_t kids[8];
    for (int i = 0; i < 8; i++) {
        kids[i] = child(i);
        char ch;
        read(ready[0], &ch, 1);
    }
    usleep(20000);
    for (int i = 0; i < 8; i++)
        kill(kids[i], SIGKILL);
    for (int i = 0; i < 8; i++) {
        int st;
        check("killed", waitpid(kids[i], &st, 0) == kids[i] && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    }
    check("futex waiter gone", syscall(SYS_futex, &shared[0], FUTEX_WAKE, 1, NULL, NULL, 0) == 0);
    check("sem undo", semctl(semid, 0, GETVAL) == 0);
    semctl(semid, 0, IPC_RMID);
    struct sigevent sev = { .sigev_notify = SIGEV_NONE };
    check("mq_notify free", mq_notify(mq, &sev) == 0);
    mq_close(mq);
    mq_unlink("/t_soak");
    char path[300];
    snprintf(path, sizeof path, "%s/soak.big", dir);
    unlink(path);
    close(p[0]);
    close(p[1]);
    close(ready[0]);
    close(ready[1]);
    printf("kills\n");
}

/* -- processes -------------------------------------------------------------------- */

static void processes(void)
{
    pid_t c = fork();
    if (c == 0) {
        execl("/bin/true", "true", NULL);
        _exit(127);
    }
    int st;
    waitpid(c, &st, 0);
    check("fork exec", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = vfork();
    if (c == 0) {
        execl("/bin/true", "true", NULL);
        _exit(127);
    }
    waitpid(c, &st, 0);
    check("vfork exec", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = fork();
    if (c == 0) {
        usleep(5000);
        _exit(3);
    }
    int pfd = (int)syscall(SYS_pidfd_open, c, 0);
    struct pollfd f = { pfd, POLLIN, 0 };
    check("pidfd poll", poll(&f, 1, 3600 * 1000) == 1);
    close(pfd);
    waitpid(c, &st, 0);
    int q = msgget(IPC_PRIVATE, 0600);
    struct { long type; char text[8]; } m = { 1, "x" };
    msgsnd(q, &m, sizeof m.text, 0);
    check("msgrcv", msgrcv(q, &m, sizeof m.text, 0, 0) > 0);
    msgctl(q, IPC_RMID, NULL);
    printf("processes\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
    shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    threads();
    timers();
    multiplexing();
    copying();
    events();
    kills();
    processes();
    printf(bad ? "failed\n" : "done\n");
    return bad;
}
