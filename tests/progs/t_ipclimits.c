/* SysV IPC and POSIX message queue limits and introspection: the sysctls
   (read, written by root, honoured), ids, *_STAT_ANY and the *_INFO
   commands, /proc/sysvipc, SHM_LOCK and SHM_DEST, GETPID, MSG_COPY,
   RLIMIT_MSGQUEUE, mq_unlink's permission, mq_notify's rules and
   notifications.  Natively it runs in an IPC namespace of its own (so the
   host's objects and sysctls are not seen or touched); the guest's is
   fresh.  CAP_SYS_RESOURCE is dropped on both sides (the native side may
   not have it). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534
#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif
#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif
#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

union semun { int val; struct semid_ds *buf; unsigned short *array; struct seminfo *info; };
struct msg { long mtype; char text[64]; };

static void res(const char *what, long r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

static void show(const char *path)
{
    char buf[256] = {0};
    int fd = open(path, O_RDONLY);
    read(fd, buf, sizeof buf - 1);
    close(fd);
    printf("%s: %s", path, buf);
}

static long put(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    long r = write(fd, value, strlen(value));
    close(fd);
    return r < 0 ? -1 : 0;
}

static void drop_sys_resource(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    d[0].effective &= ~(1u << CAP_SYS_RESOURCE);
    d[0].permitted &= ~(1u << CAP_SYS_RESOURCE);
    syscall(SYS_capset, &h, d);
}

/* run fn in a child as nobody */
static void as_nobody(void (*fn)(void *), void *arg)
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        setuid(NOBODY);
        fn(arg);
        exit(0);
    }
    waitpid(c, NULL, 0);
}

/* /proc/sysvipc/<kind>: the header, then some columns of each object */
static void sysvipc(const char *kind, int cols)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/sysvipc/%s", kind);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("%s: -1\n", path);
        return;
    }
    fgets(line, sizeof line, f);
    printf("%s header: %s", path, line);
    while (fgets(line, sizeof line, f)) {
        char *save, *tok = strtok_r(line, " \n", &save);
        printf(" ");
        for (int i = 0; tok; i++, tok = strtok_r(NULL, " \n", &save))
            if (cols >> i & 1)
                printf(" %s", tok);
        printf("\n");
    }
    fclose(f);
}

static void stat_any(void *ids)
{
    int *id = ids;
    struct shmid_ds s;
    struct msqid_ds m;
    struct semid_ds sd;
    union semun u = {.buf = &sd};
    res("nobody SHM_STAT", shmctl(id[0], SHM_STAT, &s));
    res("nobody SHM_STAT_ANY", shmctl(id[0], SHM_STAT_ANY, &s));
    res("nobody IPC_STAT", shmctl(id[0], IPC_STAT, &s));
    res("nobody MSG_STAT", msgctl(id[1], MSG_STAT, &m));
    res("nobody MSG_STAT_ANY", msgctl(id[1], MSG_STAT_ANY, &m));
    res("nobody SEM_STAT", semctl(id[2], 0, SEM_STAT, u));
    res("nobody SEM_STAT_ANY", syscall(SYS_semctl, id[2], 0, SEM_STAT_ANY, u));
    res("nobody SHM_LOCK", shmctl(id[0], SHM_LOCK, NULL));
    res("nobody SHM_UNLOCK", shmctl(id[0], SHM_UNLOCK, NULL));
}

static void sysvipc_part(void)
{
    show("/proc/sys/kernel/shmmax");
    show("/proc/sys/kernel/shmall");
    show("/proc/sys/kernel/shmmni");
    show("/proc/sys/kernel/msgmax");
    show("/proc/sys/kernel/msgmnb");
    show("/proc/sys/kernel/msgmni");
    show("/proc/sys/kernel/sem");

    /* ids: the lowest free index, the sequence moving on when one is reused */
    int a = shmget(IPC_PRIVATE, 10000, 0600), b = shmget(0x4242, 4096, IPC_CREAT | 0640);
    shmctl(a, IPC_RMID, NULL);
    int c = shmget(IPC_PRIVATE, 100, 0600);
    printf("shm ids %d %d, reused %d\n", a, b, c);
    int q = msgget(0x4243, IPC_CREAT | 0600), s = semget(IPC_PRIVATE, 3, 0600);
    printf("msg id %d, sem id %d\n", q, s);

    struct shm_info si;
    struct shminfo sl;
    res("SHM_INFO", shmctl(0, SHM_INFO, (struct shmid_ds *)&si));
    printf("  used %d tot %lu swp %lu\n", si.used_ids, si.shm_tot, si.shm_swp);
    res("IPC_INFO", shmctl(0, IPC_INFO, (struct shmid_ds *)&sl));
    printf("  shmmax %lu shmmin %lu shmmni %lu shmseg %lu shmall %lu\n", sl.shmmax, sl.shmmin, sl.shmmni,
           sl.shmseg, sl.shmall);
    res("SHM_INFO with a negative id", shmctl(-1, SHM_INFO, (struct shmid_ds *)&si));
    struct msg m = {5, "first"};
    msgsnd(q, &m, 6, 0);
    m.mtype = 7;
    strcpy(m.text, "second!");
    msgsnd(q, &m, 8, 0);
    struct msginfo mi;
    res("MSG_INFO", msgctl(0, MSG_INFO, (struct msqid_ds *)&mi));
    printf("  pool %d map %d tql %d max %d mnb %d mni %d ssz %d seg %d\n", mi.msgpool, mi.msgmap, mi.msgtql,
           mi.msgmax, mi.msgmnb, mi.msgmni, mi.msgssz, mi.msgseg);
    res("IPC_INFO", msgctl(0, IPC_INFO, (struct msqid_ds *)&mi));
    printf("  pool %d map %d tql %d\n", mi.msgpool, mi.msgmap, mi.msgtql);
    struct seminfo se;
    union semun u = {.info = &se};
    res("SEM_INFO", semctl(0, 0, SEM_INFO, u));
    printf("  map %d mni %d mns %d mnu %d msl %d opm %d ume %d usz %d vmx %d aem %d\n", se.semmap, se.semmni,
           se.semmns, se.semmnu, se.semmsl, se.semopm, se.semume, se.semusz, se.semvmx, se.semaem);
    res("SEM_INFO, negative id", semctl(-1, 0, SEM_INFO, u));

    sysvipc("shm", 0x30f);      /* key id perms size nattch uid */
    sysvipc("msg", 0x1f);       /* key id perms cbytes qnum */
    sysvipc("sem", 0x3f);

    /* STAT_ANY against STAT, and SHM_LOCK, for another user */
    int ids[3] = {b, q, s};
    as_nobody(stat_any, ids);
    struct shmid_ds ds;
    res("SHM_LOCK", shmctl(b, SHM_LOCK, NULL));
    shmctl(b, IPC_STAT, &ds);
    printf("  mode %o\n", ds.shm_perm.mode);
    res("SHM_UNLOCK", shmctl(b, SHM_UNLOCK, NULL));
    shmctl(b, IPC_STAT, &ds);
    printf("  mode %o\n", ds.shm_perm.mode);
    res("SHM_STAT by index", shmctl(b % 32768, SHM_STAT, &ds));
    res("SHM_STAT of a free index", shmctl(5, SHM_STAT, &ds));
    res("shmctl bad cmd", shmctl(b, 99, &ds));

    /* removal while attached */
    char *p = shmat(b, NULL, 0);
    res("IPC_RMID attached", shmctl(b, IPC_RMID, NULL));
    shmctl(b, IPC_STAT, &ds);
    printf("  mode %o key %d nattch %lu\n", ds.shm_perm.mode, ds.shm_perm.__key, (unsigned long)ds.shm_nattch);
    res("same key again", shmget(0x4242, 4096, 0640));
    char *p2 = shmat(b, NULL, 0);
    printf("  attached again %d\n", p2 != (void *)-1);
    shmdt(p2);
    shmdt(p);
    res("gone with the last detach", shmctl(b, IPC_STAT, &ds));

    /* GETPID: the last process to change the value */
    u.val = 4;
    res("SETVAL", semctl(s, 1, SETVAL, u));
    res("GETPID after SETVAL is us", semctl(s, 1, GETPID) == getpid());
    res("GETPID of another", semctl(s, 0, GETPID));
    res("GETPID out of range", semctl(s, 3, GETPID));
    res("SETVAL out of range value", semctl(s, 9, SETVAL, (union semun){.val = 40000}));

    /* MSG_COPY */
    struct msg r;
    res("MSG_COPY #1", msgrcv(q, &r, sizeof r.text, 1, MSG_COPY | IPC_NOWAIT));
    printf("  type %ld text %s\n", r.mtype, r.text);
    res("MSG_COPY #2", msgrcv(q, &r, sizeof r.text, 2, MSG_COPY | IPC_NOWAIT));
    res("MSG_COPY without IPC_NOWAIT", msgrcv(q, &r, sizeof r.text, 0, MSG_COPY));
    res("MSG_COPY with MSG_EXCEPT", msgrcv(q, &r, sizeof r.text, 0, MSG_COPY | IPC_NOWAIT | MSG_EXCEPT));
    res("MSG_COPY too small", msgrcv(q, &r, 3, 1, MSG_COPY | IPC_NOWAIT));
    res("MSG_COPY too small, MSG_NOERROR", msgrcv(q, &r, 3, 1, MSG_COPY | IPC_NOWAIT | MSG_NOERROR));
    struct msqid_ds qs;
    msgctl(q, IPC_STAT, &qs);
    printf("  still queued %lu\n", (unsigned long)qs.msg_qnum);
    m.mtype = 0;
    res("msgsnd type 0", msgsnd(q, &m, 1, 0));
    res("msgrcv negative size", msgrcv(q, &r, -1, 0, IPC_NOWAIT));

    /* the sysctls are honoured, root may write them, nobody not */
    put("/proc/sys/kernel/msgmni", "3");
    int q2 = msgget(IPC_PRIVATE, 0600), q3 = msgget(IPC_PRIVATE, 0600);
    res("msgmni 3: a fourth queue", msgget(IPC_PRIVATE, 0600));
    msgctl(q2, IPC_RMID, NULL);
    msgctl(q3, IPC_RMID, NULL);
    res("msgmni -1", put("/proc/sys/kernel/msgmni", "-1"));
    res("msgmni 40000", put("/proc/sys/kernel/msgmni", "40000"));
    res("msgmni x", put("/proc/sys/kernel/msgmni", "x"));
    put("/proc/sys/kernel/msgmax", "10");
    m.mtype = 1;
    res("msgmax 10: an 11-byte message", msgsnd(q, &m, 11, 0));
    show("/proc/sys/kernel/msgmax");
    put("/proc/sys/kernel/sem", "4 1000 2 3");
    show("/proc/sys/kernel/sem");
    res("semmsl 4: 5 semaphores", semget(IPC_PRIVATE, 5, 0600));
    struct sembuf ops[3] = {{0, 1, 0}, {0, 1, 0}, {0, 1, 0}};
    res("semopm 2: 3 operations", semop(s, ops, 3));
    int s2 = semget(IPC_PRIVATE, 1, 0600), s3 = semget(IPC_PRIVATE, 1, 0600);
    res("semmni 3: a fourth set", semget(IPC_PRIVATE, 1, 0600));
    semctl(s2, 0, IPC_RMID);
    semctl(s3, 0, IPC_RMID);
    res("sem with semmni 40000", put("/proc/sys/kernel/sem", "4 1000 2 40000"));
    show("/proc/sys/kernel/sem");
    res("sem with 2 values", put("/proc/sys/kernel/sem", "250 2000"));
    show("/proc/sys/kernel/sem");
    put("/proc/sys/kernel/shmmax", "8192");
    res("shmmax 8192: 8193 bytes", shmget(IPC_PRIVATE, 8193, 0600));
    put("/proc/sys/kernel/shmall", "3");
    res("shmall 3 pages: 4 pages", shmget(IPC_PRIVATE, 8192, 0600) < 0 ? -1 : shmget(IPC_PRIVATE, 8192, 0600));
    put("/proc/sys/kernel/shmmni", "1");
    res("shmmni 1", shmget(IPC_PRIVATE, 100, 0600));
    fflush(stdout);
    if (fork() == 0) {
        setuid(NOBODY);
        res("nobody writes shmmni", put("/proc/sys/kernel/shmmni", "5"));
        exit(0);
    }
    wait(NULL);
}

static volatile int got_sig, sig_code, sig_pid_is_child, sig_value;
static volatile int thread_calls, thread_value;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got_sig = sig;
    sig_code = si->si_code;
    sig_value = si->si_value.sival_int;
    sig_pid_is_child = si->si_pid;
}

static void on_thread(union sigval v)
{
    thread_value = v.sival_int;
    thread_calls++;
}

static void unlink_it(void *name)
{
    res("nobody unlinks root's queue", mq_unlink(name));
    mqd_t o = mq_open("/t_own", O_CREAT | O_RDWR, 0600, NULL);
    res("nobody opens its own", o < 0 ? -1 : 0);
    res("nobody unlinks its own", mq_unlink("/t_own"));
    res("nobody opens root's queue", mq_open(name, O_RDONLY) < 0 ? -1 : 0);
}

static void mqueue_part(void)
{
    show("/proc/sys/fs/mqueue/queues_max");
    show("/proc/sys/fs/mqueue/msg_max");
    show("/proc/sys/fs/mqueue/msgsize_max");
    show("/proc/sys/fs/mqueue/msg_default");
    show("/proc/sys/fs/mqueue/msgsize_default");

    /* RLIMIT_MSGQUEUE: 819200 bytes, a default queue charges 82880 */
    char name[32];
    mqd_t rl[12];
    int n;
    for (n = 0; n < 12; n++) {
        snprintf(name, sizeof name, "/t_rl%d", n);
        if ((rl[n] = mq_open(name, O_CREAT | O_RDWR, 0600, NULL)) < 0)
            break;
    }
    printf("default queues before RLIMIT_MSGQUEUE: %d (%s)\n", n, strerrorname_np(errno));
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "/t_rl%d", i);
        mq_unlink(name);
    }
    res("all unlinked, still open", mq_open("/t_rlx", O_CREAT | O_RDWR, 0600, NULL));
    for (int i = 0; i < n; i++)
        mq_close(rl[i]);

    struct mq_attr big = {.mq_maxmsg = 11, .mq_msgsize = 64};
    res("maxmsg above msg_max", mq_open("/t_a", O_CREAT | O_RDWR, 0600, &big));
    big.mq_maxmsg = 10;
    big.mq_msgsize = 8193;
    res("msgsize above msgsize_max", mq_open("/t_a", O_CREAT | O_RDWR, 0600, &big));
    big.mq_msgsize = 0;
    res("msgsize 0", mq_open("/t_a", O_CREAT | O_RDWR, 0600, &big));
    put("/proc/sys/fs/mqueue/msg_default", "3");
    put("/proc/sys/fs/mqueue/msgsize_default", "128");
    mqd_t d = mq_open("/t_d", O_CREAT | O_RDWR, 0600, NULL);
    struct mq_attr at;
    mq_getattr(d, &at);
    printf("defaults from the sysctls: maxmsg %ld msgsize %ld\n", at.mq_maxmsg, at.mq_msgsize);
    res("msg_max 0", put("/proc/sys/fs/mqueue/msg_max", "0"));
    res("msgsize_max 100", put("/proc/sys/fs/mqueue/msgsize_max", "100"));
    put("/proc/sys/fs/mqueue/queues_max", "1");
    res("queues_max 1: a second queue", mq_open("/t_b", O_CREAT | O_RDWR, 0600, NULL));
    mqd_t d2 = mq_open("/t_d", O_RDWR);
    res("an existing queue opens", d2 < 0 ? -1 : 0);
    mq_unlink("/t_d");
    res("unlinked but open still counts", mq_open("/t_b", O_CREAT | O_RDWR, 0600, NULL));
    mq_close(d);
    res("one descriptor closed", mq_open("/t_b", O_CREAT | O_RDWR, 0600, NULL));
    mq_close(d2);
    d = mq_open("/t_b", O_CREAT | O_RDWR, 0600, NULL);
    res("both closed: room again", d < 0 ? -1 : 0);
    put("/proc/sys/fs/mqueue/queues_max", "256");
    put("/proc/sys/fs/mqueue/msg_default", "10");
    put("/proc/sys/fs/mqueue/msgsize_default", "8192");
    res("name with a slash", syscall(SYS_mq_open, "a/b", O_CREAT | O_RDWR, 0600, NULL));
    res("empty name", syscall(SYS_mq_open, "", O_CREAT | O_RDWR, 0600, NULL));
    res("name ..", syscall(SYS_mq_open, "..", O_CREAT | O_RDWR, 0600, NULL));
    res("O_RDWR|O_WRONLY on an existing queue", syscall(SYS_mq_open, "t_b", O_RDWR | O_WRONLY, 0, NULL));
    res("O_CREAT|O_EXCL on it", syscall(SYS_mq_open, "t_b", O_CREAT | O_EXCL | O_RDWR, 0600, NULL));
    res("missing, no O_CREAT", syscall(SYS_mq_open, "t_none", O_RDWR, 0, NULL));
    struct mq_attr bad = {.mq_flags = 1};
    res("mq_setattr bad flags", mq_setattr(d, &bad, NULL));

    /* mq_unlink needs the queue's owner (sticky root) */
    mqd_t ro = mq_open("/t_root", O_CREAT | O_RDWR, 0666, NULL);
    as_nobody(unlink_it, "/t_root");
    mq_close(ro);
    res("root unlinks it", mq_unlink("/t_root"));

    /* mq_notify: argument checks come before the descriptor's */
    struct sigevent ev = {.sigev_notify = 99};
    res("mq_notify(0) bad sigev_notify", mq_notify(0, &ev));
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = 65;
    res("mq_notify(0) signo 65", mq_notify(0, &ev));
    ev.sigev_signo = SIGUSR1;
    res("mq_notify(0) good event", mq_notify(0, &ev));
    res("mq_notify of a file", mq_notify(open("/proc/self/status", O_RDONLY), &ev));
    ev.sigev_signo = 0;
    res("signo 0", mq_notify(d, &ev));
    mq_send(d, "x", 1, 0);
    char buf[8192];
    mq_receive(d, buf, sizeof buf, NULL);
    printf("  nothing delivered, registration gone: %s\n", mq_notify(d, NULL) == 0 ? "yes" : "?");

    struct sigaction sa = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
    sigaction(SIGUSR1, &sa, NULL);
    ev.sigev_signo = SIGUSR1;
    ev.sigev_value.sival_int = 4242;
    res("SIGEV_SIGNAL", mq_notify(d, &ev));
    res("again: EBUSY", mq_notify(d, &ev));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        res("child registers: EBUSY", mq_notify(d, &ev));
        res("child's NULL: no effect", mq_notify(d, NULL));
        mq_send(d, "from child", 10, 1);
        exit(0);
    }
    waitpid(c, NULL, 0);
    printf("  signal %d code %d value %d from the child %d\n", got_sig, sig_code, sig_value, sig_pid_is_child == c);
    got_sig = 0;
    mq_send(d, "second", 6, 1);
    printf("  not empty before: no signal %d; registration gone: %s\n", got_sig,
           mq_notify(d, &ev) == 0 ? "yes" : strerrorname_np(errno));
    mq_receive(d, buf, sizeof buf, NULL);
    mq_receive(d, buf, sizeof buf, NULL);
    /* a blocked receiver takes the message: nobody is notified */
    fflush(stdout);
    int pfd[2];
    pipe(pfd);
    c = fork();
    if (c == 0) {
        close(pfd[0]);
        write(pfd[1], "r", 1);
        long len = mq_receive(d, buf, sizeof buf, NULL);
        printf("  blocked receiver got %ld bytes\n", len);
        exit(0);
    }
    char x;
    read(pfd[0], &x, 1);
    usleep(200000);
    mq_send(d, "direct", 6, 1);
    waitpid(c, NULL, 0);
    printf("  with a receiver waiting: signal %d, still registered: %s\n", got_sig,
           mq_notify(d, &ev) < 0 ? strerrorname_np(errno) : "no");
    mq_notify(d, NULL);

    /* SIGEV_THREAD: the C library's netlink socket */
    struct sigevent tev = {.sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_thread};
    tev.sigev_value.sival_int = 77;
    res("SIGEV_THREAD", mq_notify(d, &tev));
    res("unregister", mq_notify(d, NULL));
    res("SIGEV_THREAD again", mq_notify(d, &tev));
    mq_send(d, "t", 1, 1);
    for (int i = 0; i < 200 && !thread_calls; i++)
        usleep(10000);
    printf("  thread calls %d value %d\n", thread_calls, thread_value);
    mq_close(d);
    mq_unlink("/t_b");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    unshare(CLONE_NEWIPC);      /* natively: a namespace of our own; the guest has none */
    drop_sys_resource();
    if (access("/proc/self/status", R_OK) < 0) {
        mkdir("/proc", 0555);
        mount("proc", "/proc", "proc", 0, NULL);
    }
    sysvipc_part();
    mqueue_part();
    printf("done\n");
    return 0;
}
