/* Blocking calls interrupted twice over: by a stop (SIGSTOP, then SIGCONT,
   no handler), after which signal(7) says some fail with EINTR
   (epoll_wait, epoll_pwait, epoll_pwait2, semop, semtimedop, sigtimedwait,
   sigwaitinfo, a receive with SO_RCVTIMEO) and the others go on as if
   nothing happened; and by a handler installed with SA_RESTART, after
   which some are made again (a receive without a timeout, mq_receive, a
   read of a pipe or inotify, wait4, flock, F_SETLKW, accept, opening a
   fifo, FUTEX_WAIT) and the rest fail with EINTR (msgrcv, nanosleep and
   pause too).  DIR (argv[1]) holds the lock file, fifo and socket.  Each call
   runs in a child of its own, all interrupted together; what is still
   waiting afterwards is given what it waits for.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 1500

enum { EPOLL_WAIT, EPOLL_PWAIT, EPOLL_PWAIT2, SEMTIMEDOP, SEMOP, SIGTIMEDWAIT, SIGWAITINFO, RECV_TIMEO,
       RECV, MSGRCV, PIPE_READ, MQ_RECEIVE, WAIT4, FLOCK, SETLKW, ACCEPT, FIFO_OPEN, FUTEX, INOTIFY_READ,
       NANOSLEEP, PAUSE, NCASES };
static const char *names[NCASES] = {"epoll_wait", "epoll_pwait", "epoll_pwait2", "semtimedop", "semop",
                                    "sigtimedwait", "sigwaitinfo", "recv SO_RCVTIMEO", "recv", "msgrcv",
                                    "read pipe", "mq_receive", "wait4", "flock", "F_SETLKW", "accept",
                                    "open fifo", "futex", "read inotify", "nanosleep", "pause"};

static int sem, msq, tsv[2], usv[2], pfd[2], lfd, listener, ino, *word;
static mqd_t mq;
static char dir[256], lockfile[300], fifo[300], sockpath[300];

static const char *err_name(int e)
{
    switch (e) {
    case EINTR: return "EINTR";
    case EAGAIN: return "EAGAIN";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return strerror(e);
    }
}

static long run(int c)
{
    struct timespec ts = {WAIT_MS / 1000, WAIT_MS % 1000 * 1000000L};
    struct epoll_event ev;
    sigset_t usr1;
    char b;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    int ep = epoll_create1(0);
    switch (c) {
    case EPOLL_WAIT: return epoll_wait(ep, &ev, 1, WAIT_MS);
    case EPOLL_PWAIT: return epoll_pwait(ep, &ev, 1, WAIT_MS, &usr1);
    case EPOLL_PWAIT2: return syscall(SYS_epoll_pwait2, ep, &ev, 1, &ts, NULL, 8);
    case SEMTIMEDOP: {
        struct sembuf op = {0, 0, 0};       /* wait for zero on a semaphore at 1 */
        return semtimedop(sem, &op, 1, &ts);
    }
    case SEMOP: {
        struct sembuf op = {0, 0, 0};
        return semop(sem, &op, 1);
    }
    case SIGTIMEDWAIT: return sigtimedwait(&usr1, NULL, &ts);
    case SIGWAITINFO: return sigwaitinfo(&usr1, NULL);
    case RECV_TIMEO: {
        struct timeval tv = {WAIT_MS / 1000, WAIT_MS % 1000 * 1000};
        setsockopt(tsv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        return recv(tsv[1], &b, 1, 0);     /* nobody writes its peer */
    }
    case RECV: return recv(usv[1], &b, 1, 0);
    case MSGRCV: {
        struct { long type; char text[8]; } m;
        return msgrcv(msq, &m, sizeof m.text, 0, 0);
    }
    case PIPE_READ: return read(pfd[0], &b, 1);
    case MQ_RECEIVE: {
        char m[8];
        return mq_receive(mq, m, sizeof m, NULL);
    }
    case WAIT4: {
        pid_t g = fork();
        if (g == 0) {
            struct timespec gts = {0, 700 * 1000000L};
            nanosleep(&gts, NULL);
            _exit(0);
        }
        pid_t r = wait4(g, NULL, 0, NULL);
        return r == g ? 0 : r;
    }
    case FLOCK: return flock(open(lockfile, O_RDWR), LOCK_EX);
    case SETLKW: {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        return fcntl(open(lockfile, O_RDWR), F_SETLKW, &fl);
    }
    case ACCEPT: return accept(listener, NULL, NULL) < 0 ? -1 : 0;
    case FIFO_OPEN: return open(fifo, O_RDONLY) < 0 ? -1 : 0;
    case FUTEX: return syscall(SYS_futex, word, 0 /* FUTEX_WAIT */, 0, NULL, NULL, 0);
    case INOTIFY_READ: {
        char evbuf[512];
        return read(ino, evbuf, sizeof evbuf) < 0 ? -1 : 0;
    }
    case NANOSLEEP: return nanosleep(&ts, NULL);
    case PAUSE: return pause();
    }
    return -1;
}

static void nap(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void on_usr2(int sig)
{
    (void)sig;
}

/* Every call in a child, interrupted by a stop or by SIGUSR2's handler. */
static void round_of(int stop)
{
    int rsv[NCASES][2];
    pid_t kids[NCASES];
    struct mq_attr attr = {0, 4, 8, 0};
    sem = semget(IPC_PRIVATE, 1, 0600);
    semctl(sem, 0, SETVAL, 1);
    msq = msgget(IPC_PRIVATE, 0600);
    mq_unlink("/t_stopintr");
    mq = mq_open("/t_stopintr", O_CREAT | O_RDWR, 0600, &attr);
    socketpair(AF_UNIX, SOCK_STREAM, 0, tsv);
    socketpair(AF_UNIX, SOCK_STREAM, 0, usv);
    pipe(pfd);
    lfd = open(lockfile, O_RDWR | O_CREAT, 0600);
    flock(lfd, LOCK_EX);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    fcntl(lfd, F_SETLK, &fl);
    listener = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, sockpath);
    unlink(sockpath);
    bind(listener, (struct sockaddr *)&sun, sizeof sun);
    listen(listener, 4);
    unlink(fifo);
    mkfifo(fifo, 0600);
    char made[320];
    snprintf(made, sizeof made, "%s/made", dir);
    unlink(made);                           /* (its creation is what the inotify reader waits for) */
    ino = inotify_init();
    inotify_add_watch(ino, dir, IN_CREATE);
    *word = 0;
    for (int c = 0; c < NCASES; c++) {
        pipe(rsv[c]);
        kids[c] = fork();
        if (kids[c] == 0) {
            close(lfd);                     /* (the flock is the open file's, which the parent lets go) */
            errno = 0;
            long r = run(c);
            dprintf(rsv[c][1], "%s %s: %s\n", stop ? "stop" : "SA_RESTART", names[c],
                    r < 0 ? err_name(errno) : "ok");
            _exit(0);
        }
        close(rsv[c][1]);
    }
    nap(200);                               /* every child waits in its call */
    if (stop) {
        for (int c = 0; c < NCASES; c++)
            kill(kids[c], SIGSTOP);
        for (int c = 0; c < NCASES; c++) {
            int st;
            waitpid(kids[c], &st, WUNTRACED);
            if (!WIFSTOPPED(st))
                printf("%s: not stopped\n", names[c]);
        }
        nap(100);
        for (int c = 0; c < NCASES; c++)
            kill(kids[c], SIGCONT);
    } else {
        for (int c = 0; c < NCASES; c++)
            kill(kids[c], SIGUSR2);
    }
    nap(300);
    /* what still waits gets what it waits for */
    write(usv[0], "x", 1);
    write(pfd[1], "x", 1);
    struct { long type; char text[8]; } m = {1, "x"};
    msgsnd(msq, &m, 2, 0);
    mq_send(mq, "x", 1, 0);
    semctl(sem, 0, SETVAL, 0);
    kill(kids[SIGWAITINFO], SIGUSR1);
    fl.l_type = F_UNLCK;
    fcntl(lfd, F_SETLK, &fl);
    close(lfd);                             /* (its flock goes with it) */
    int cs = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(cs, (struct sockaddr *)&sun, sizeof sun);
    int fw = open(fifo, O_WRONLY | O_NONBLOCK);
    *word = 1;
    syscall(SYS_futex, word, 1 /* FUTEX_WAKE */, 1, NULL, NULL, 0);
    close(open(made, O_CREAT | O_WRONLY, 0600));
    kill(kids[PAUSE], SIGUSR2);
    for (int c = 0; c < NCASES; c++) {
        char line[128];
        ssize_t n = read(rsv[c][0], line, sizeof line - 1);
        if (n > 0)
            fwrite(line, 1, n, stdout);
        else
            printf("%s: no answer\n", names[c]);
        waitpid(kids[c], NULL, 0);
        close(rsv[c][0]);
    }
    fflush(stdout);
    semctl(sem, 0, IPC_RMID);
    msgctl(msq, IPC_RMID, NULL);
    mq_close(mq);
    mq_unlink("/t_stopintr");
    close(tsv[0]), close(tsv[1]), close(usv[0]), close(usv[1]), close(pfd[0]), close(pfd[1]);
    close(cs), close(fw), close(listener), close(ino);
    unlink(made), unlink(fifo), unlink(sockpath), unlink(lockfile);
}

int main(int argc, char **argv)
{
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "/tmp");
    snprintf(lockfile, sizeof lockfile, "%s/lock", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(sockpath, sizeof sockpath, "%s/sock", dir);
    word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sigset_t usr1;
    struct sigaction sa = {0};
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);     /* the children's sigtimedwait and sigwaitinfo take it */
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
    round_of(1);
    round_of(0);
    printf("done\n");
    return 0;
}
