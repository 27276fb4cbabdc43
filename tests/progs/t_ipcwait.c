/* Who a System V semaphore or message wakes: GETNCNT and GETZCNT count
   the tasks each semaphore blocked (the operation that blocked them, as
   Linux 4.0 and later count), a change lets through only those it can,
   a message goes to the first receiver asleep that takes its type
   (MSG_EXCEPT and negative types too), a receive wakes a sender waiting
   for room, and IPC_RMID ends every wait with EIDRM; a POSIX message
   queue's message goes to the receiver of the highest priority (the
   lowest niceness), asleep longest among equals.  Deterministic
   output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

union semun { int val; struct semid_ds *buf; unsigned short *array; };
struct msg { long mtype; char text[32]; };

static int sem;

static int counts(int num, int cmd) { return semctl(sem, num, cmd); }

/* until semaphore num has `want` tasks of kind cmd asleep on it */
static void settle(int num, int cmd, int want)
{
    for (int i = 0; i < 2000 && counts(num, cmd) != want; i++)
        usleep(1000);
}

static pid_t sem_child(const char *name, struct sembuf *ops, int n)
{
    pid_t c = fork();
    if (c == 0) {
        int r = semop(sem, ops, n);
        printf("  %s: semop %s\n", name, r ? strerrorname_np(errno) : "ok");
        _exit(0);
    }
    return c;
}

static void reaped(pid_t c, const char *name)
{
    waitpid(c, NULL, 0);
    printf("  %s gone\n", name);
}

static pid_t msg_child(int q, const char *name, long type, int flags)
{
    pid_t c = fork();
    if (c == 0) {
        struct msg m;
        ssize_t n = msgrcv(q, &m, sizeof m.text, type, flags);
        if (n < 0)
            printf("  %s: msgrcv %s\n", name, strerrorname_np(errno));
        else
            printf("  %s: type %ld \"%s\"\n", name, m.mtype, m.text);
        _exit(0);
    }
    return c;
}

static void waiting_receivers(int q, int want)
{
    /* no count of them: sleep until the children are surely asleep */
    (void)q;
    (void)want;
    usleep(100000);
}

/* three receivers asleep on mq, the i-th at niceness nices[i], arriving
   in that order, then three messages: who gets which */
static void posix_pool(mqd_t mq, const int *nices)
{
    pid_t w[3];
    printf("receivers at nice %d, %d, %d:\n", nices[0], nices[1], nices[2]);
    for (int i = 0; i < 3; i++) {
        w[i] = fork();
        if (w[i] == 0) {
            char buf[32];
            unsigned prio;
            if (nices[i] && nice(nices[i]) < 0)
                _exit(1);
            ssize_t n = mq_receive(mq, buf, sizeof buf, &prio);
            printf("  W%d: %zd \"%s\" prio %u\n", i + 1, n, n > 0 ? buf : "", prio);
            _exit(0);
        }
        usleep(100000);
    }
    for (int i = 0; i < 3; i++) {
        char text[32];
        snprintf(text, sizeof text, "posix %d", i);
        printf("mq_send %d:\n", i);
        mq_send(mq, text, strlen(text) + 1, 5 - i);
        pid_t got = wait(NULL);
        for (int j = 0; j < 3; j++)
            if (got == w[j])
                printf("  W%d gone\n", j + 1);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    sem = semget(IPC_PRIVATE, 4, IPC_CREAT | 0600);
    union semun u = {.val = 1};
    semctl(sem, 1, SETVAL, u);
    semctl(sem, 2, SETVAL, u);
    struct sembuf a[] = {{0, -1, 0}}, b[] = {{1, 0, 0}}, c2[] = {{2, -1, 0}, {0, -1, 0}},
                  d[] = {{3, -2, 0}};
    pid_t pa = sem_child("A (0 -= 1)", a, 1);
    settle(0, GETNCNT, 1);
    pid_t pb = sem_child("B (1 == 0)", b, 1);
    settle(1, GETZCNT, 1);
    pid_t pc = sem_child("C (2 -= 1, 0 -= 1)", c2, 2);
    settle(0, GETNCNT, 2);
    pid_t pd = sem_child("D (3 -= 2)", d, 1);
    settle(3, GETNCNT, 1);
    for (int i = 0; i < 4; i++)
        printf("sem %d: value %d ncnt %d zcnt %d\n", i, semctl(sem, i, GETVAL), counts(i, GETNCNT),
               counts(i, GETZCNT));
    struct sembuf up0 = {0, 1, 0}, up3 = {3, 1, 0};
    printf("sem 3 += 1 (D needs 2):\n");
    semop(sem, &up3, 1);
    usleep(50000);
    printf("sem 3: value %d ncnt %d\n", semctl(sem, 3, GETVAL), counts(3, GETNCNT));
    printf("sem 0 += 1:\n");
    semop(sem, &up0, 1);
    reaped(pa, "A");
    printf("sem 0: ncnt %d; sem 1 set to 0:\n", counts(0, GETNCNT));
    u.val = 0;
    semctl(sem, 1, SETVAL, u);
    reaped(pb, "B");
    printf("sem 0 += 1:\n");
    semop(sem, &up0, 1);
    reaped(pc, "C");
    printf("sem 2: value %d\n", semctl(sem, 2, GETVAL));
    printf("IPC_RMID:\n");
    semctl(sem, 0, IPC_RMID);
    reaped(pd, "D");

    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    pid_t r[4];
    r[0] = msg_child(q, "R1 (type 5)", 5, 0);
    waiting_receivers(q, 1);
    r[1] = msg_child(q, "R2 (type 6)", 6, 0);
    waiting_receivers(q, 2);
    r[2] = msg_child(q, "R3 (not 5)", 5, MSG_EXCEPT);
    waiting_receivers(q, 3);
    r[3] = msg_child(q, "R4 (<= 3)", -3, 0);
    waiting_receivers(q, 4);
    long order[] = {6, 2, 1, 5};
    const char *names[] = {"R1", "R2", "R3", "R4"};
    for (int i = 0; i < 4; i++) {
        struct msg m = {order[i], ""};
        snprintf(m.text, sizeof m.text, "message %d", i);
        printf("send type %ld:\n", order[i]);
        msgsnd(q, &m, strlen(m.text) + 1, 0);
        int status;
        pid_t got = wait(&status);
        for (int j = 0; j < 4; j++)
            if (got == r[j])
                printf("  %s gone\n", names[j]);
    }
    /* a sender waiting for room */
    struct msqid_ds ds;
    msgctl(q, IPC_STAT, &ds);
    ds.msg_qbytes = 20;
    msgctl(q, IPC_SET, &ds);
    struct msg big = {9, "fifteen bytes.."};
    msgsnd(q, &big, 16, 0);
    pid_t s = fork();
    if (s == 0) {
        int rr = msgsnd(q, &big, 16, 0);
        printf("  sender: msgsnd %s\n", rr ? strerrorname_np(errno) : "ok");
        _exit(0);
    }
    usleep(100000);
    msgctl(q, IPC_STAT, &ds);
    printf("queue full: qnum %lu\n", (unsigned long)ds.msg_qnum);
    struct msg in;
    msgrcv(q, &in, sizeof in.text, 0, 0);
    reaped(s, "sender");
    msgctl(q, IPC_STAT, &ds);
    printf("qnum %lu\n", (unsigned long)ds.msg_qnum);
    pid_t last = msg_child(q, "R5 (type 77)", 77, 0);
    waiting_receivers(q, 1);
    printf("IPC_RMID:\n");
    msgctl(q, IPC_RMID, NULL);
    reaped(last, "R5");

    /* POSIX: three receivers asleep, three messages; then three of
       descending niceness, served by priority (wq_add) */
    struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = 32};
    mq_unlink("/t_ipcwait");
    mqd_t mq = mq_open("/t_ipcwait", O_CREAT | O_RDWR, 0600, &attr);
    static const int same[3] = {0, 0, 0}, niced[3] = {10, 5, 0};
    posix_pool(mq, same);
    posix_pool(mq, niced);
    mq_getattr(mq, &attr);
    printf("curmsgs %ld\n", attr.mq_curmsgs);
    mq_unlink("/t_ipcwait");
    printf("done\n");
    return 0;
}
