/* Blocking calls interrupted twice over: by a stop (SIGSTOP, then SIGCONT,
   no handler), after which signal(7) says some fail with EINTR
   (epoll_wait, epoll_pwait, epoll_pwait2, semop, semtimedop, sigtimedwait,
   sigwaitinfo, a receive with SO_RCVTIMEO) and the others go on as if
   nothing happened; and by a handler installed with SA_RESTART, after
   which some are made again (a receive without a timeout, mq_receive, a
   read of a pipe) and the rest fail with EINTR (msgrcv too).  Each call
   runs in a child of its own, all interrupted together; what is still
   waiting afterwards is given what it waits for.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
       RECV, MSGRCV, PIPE_READ, MQ_RECEIVE, NCASES };
static const char *names[NCASES] = {"epoll_wait", "epoll_pwait", "epoll_pwait2", "semtimedop", "semop",
                                    "sigtimedwait", "sigwaitinfo", "recv SO_RCVTIMEO", "recv", "msgrcv",
                                    "read pipe", "mq_receive"};

static int sem, msq, tsv[2], usv[2], pfd[2];
static mqd_t mq;

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
    for (int c = 0; c < NCASES; c++) {
        pipe(rsv[c]);
        kids[c] = fork();
        if (kids[c] == 0) {
            errno = 0;
            long r = run(c);
            dprintf(rsv[c][1], "%s %s: %ld %s\n", stop ? "stop" : "SA_RESTART", names[c], r,
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
}

int main(void)
{
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
