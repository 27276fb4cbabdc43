/* System V shared memory, semaphores and message queues between processes.
   Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

union semun { int val; struct semid_ds *buf; unsigned short *array; };
struct msg { long mtype; char text[64]; };

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* shared memory */
    int shm = shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0600);
    char *p = shmat(shm, NULL, 0);
    printf("shmat ok: %d\n", p != (void *)-1);
    struct shmid_ds ds;
    shmctl(shm, IPC_STAT, &ds);
    printf("segsz=%zu nattch=%lu mode=%o\n", ds.shm_segsz, (unsigned long)ds.shm_nattch, ds.shm_perm.mode & 0777);
    pid_t c = fork();
    if (c == 0) {
        strcpy(p, "written by the child");
        shmctl(shm, IPC_STAT, &ds);
        printf("child sees nattch=%lu\n", (unsigned long)ds.shm_nattch);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("parent reads: %s\n", p);
    shmctl(shm, IPC_STAT, &ds);
    printf("after child exit nattch=%lu\n", (unsigned long)ds.shm_nattch);
    printf("rmid: %d, dt: %d\n", shmctl(shm, IPC_RMID, NULL), shmdt(p));
    int r = shmctl(shm, IPC_STAT, &ds);
    printf("stat after removal: %d %s\n", r, en(r));
    int k1 = shmget(0x1234, 4096, IPC_CREAT | IPC_EXCL | 0600);
    r = shmget(0x1234, 4096, IPC_CREAT | IPC_EXCL | 0600);
    printf("excl twice: %d %s\n", r, en(r));
    printf("same key: %d\n", shmget(0x1234, 0, 0) == k1);
    shmctl(k1, IPC_RMID, NULL);
    /* munmap of an attachment, or a mapping over one, detaches it (shm_close) */
    int s2 = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    char *a1 = shmat(s2, NULL, 0), *a2 = shmat(s2, NULL, 0);
    shmctl(s2, IPC_STAT, &ds);
    printf("two attachments: nattch=%lu\n", (unsigned long)ds.shm_nattch);
    munmap(a1 + 4096, 4096);
    shmctl(s2, IPC_STAT, &ds);
    printf("half of one unmapped: nattch=%lu\n", (unsigned long)ds.shm_nattch);
    munmap(a1, 4096);
    shmctl(s2, IPC_STAT, &ds);
    printf("all of it unmapped: nattch=%lu\n", (unsigned long)ds.shm_nattch);
    mmap(a2, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    shmctl(s2, IPC_STAT, &ds);
    printf("mapped over: nattch=%lu, shmdt there: %s\n", (unsigned long)ds.shm_nattch, en(shmdt(a2)));
    shmctl(s2, IPC_RMID, NULL);

    /* semaphores */
    int sem = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
    union semun arg = {.val = 0};
    semctl(sem, 0, SETVAL, arg);
    c = fork();
    if (c == 0) {
        struct sembuf down = {0, -1, 0};
        semop(sem, &down, 1);          /* waits for the parent */
        struct sembuf up1 = {1, 1, 0};
        semop(sem, &up1, 1);
        _exit(0);
    }
    usleep(20000);
    struct sembuf up = {0, 1, 0};
    semop(sem, &up, 1);
    struct sembuf wait1 = {1, -1, 0};
    semop(sem, &wait1, 1);
    waitpid(c, NULL, 0);
    printf("semaphore handshake done, vals %d %d\n", semctl(sem, 0, GETVAL), semctl(sem, 1, GETVAL));
    struct sembuf nb = {0, -1, IPC_NOWAIT};
    r = semop(sem, &nb, 1);
    printf("nowait: %d %s\n", r, en(r));
    struct timespec ts = {0, 10000000};
    r = semtimedop(sem, &nb, 1, &ts);
    struct sembuf tw = {0, -1, 0};
    r = semtimedop(sem, &tw, 1, &ts);
    printf("timed out: %d %s\n", r, en(r));
    unsigned short all[2] = {3, 4};
    arg.array = all;
    semctl(sem, 0, SETALL, arg);
    unsigned short got[2];
    arg.array = got;
    semctl(sem, 0, GETALL, arg);
    printf("setall/getall: %d %d\n", got[0], got[1]);
    /* SEM_UNDO adjustments: a SETVAL clears that semaphore's in every
       process, so the child's exit undoes only the other one */
    int go[2], ready[2];
    pipe(go);
    pipe(ready);
    c = fork();
    if (c == 0) {
        struct sembuf ups[2] = {{0, 2, SEM_UNDO}, {1, 1, SEM_UNDO}};
        char x;
        semop(sem, ups, 2);
        write(ready[1], "r", 1);
        read(go[0], &x, 1);
        _exit(0);
    }
    char x;
    read(ready[0], &x, 1);
    arg.val = 10;
    semctl(sem, 0, SETVAL, arg);
    write(go[1], "g", 1);
    waitpid(c, NULL, 0);
    printf("undo after SETVAL: %d %d\n", semctl(sem, 0, GETVAL), semctl(sem, 1, GETVAL));
    /* and a SETALL clears all of the set's */
    c = fork();
    if (c == 0) {
        struct sembuf ups[2] = {{0, 1, SEM_UNDO}, {1, 1, SEM_UNDO}};
        semop(sem, ups, 2);
        write(ready[1], "r", 1);
        read(go[0], &x, 1);
        _exit(0);
    }
    read(ready[0], &x, 1);
    arg.array = all;
    semctl(sem, 0, SETALL, arg);
    write(go[1], "g", 1);
    waitpid(c, NULL, 0);
    printf("undo after SETALL: %d %d\n", semctl(sem, 0, GETVAL), semctl(sem, 1, GETVAL));
    semctl(sem, 0, IPC_RMID);

    /* message queues */
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct msg m = {2, "two"};
    msgsnd(q, &m, 4, 0);
    m.mtype = 1; strcpy(m.text, "one");
    msgsnd(q, &m, 4, 0);
    m.mtype = 3; strcpy(m.text, "three-long-message");
    msgsnd(q, &m, 19, 0);
    struct msqid_ds qs;
    msgctl(q, IPC_STAT, &qs);
    printf("qnum=%lu cbytes=%lu\n", (unsigned long)qs.msg_qnum, (unsigned long)qs.__msg_cbytes);
    struct msg in;
    ssize_t n = msgrcv(q, &in, sizeof in.text, 1, 0);
    printf("type 1: %zd %s\n", n, in.text);
    n = msgrcv(q, &in, sizeof in.text, -3, 0);
    printf("lowest <=3: %zd type=%ld %s\n", n, in.mtype, in.text);
    n = msgrcv(q, &in, 5, 0, 0);
    printf("too long: %zd %s\n", n, en(n));
    n = msgrcv(q, &in, 5, 0, MSG_NOERROR);
    printf("noerror: %zd %.5s\n", n, in.text);
    n = msgrcv(q, &in, sizeof in.text, 0, IPC_NOWAIT);
    printf("empty: %zd %s\n", n, en(n));
    c = fork();
    if (c == 0) {
        usleep(20000);
        struct msg cm = {7, "from child"};
        msgsnd(q, &cm, 11, 0);
        _exit(0);
    }
    n = msgrcv(q, &in, sizeof in.text, 7, 0);
    waitpid(c, NULL, 0);
    printf("blocking receive: %zd %s\n", n, in.text);
    msgctl(q, IPC_RMID, NULL);
    printf("done\n");
    return 0;
}
