/* t_argrange: arguments at the edges of their range, as the fuzzer found
 * them: 32-bit ids in 64-bit registers, (uid_t)-1, kernel-half TLS bases,
 * clone flag combinations, file ranges at the largest offset, socket
 * control messages, System V IPC info structs.  Each must get Linux's
 * answer (and never an oops). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *what, long r)
{
    if (r == -1)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
    fflush(stdout);
}

/* run fn in a child (ids and masks change there only) */
static void in_child(void (*fn)(void))
{
    pid_t p = fork();
    if (p == 0) {
        fn();
        fflush(stdout);
        _exit(0);
    }
    waitpid(p, NULL, 0);
}

static void ids(void)
{
    int fd = open("f", O_CREAT | O_RDWR, 0644);
    struct stat st;
    report("fchown 64-bit uid 5", syscall(SYS_fchown, fd, 0x100000005L, -1L));
    fstat(fd, &st);
    printf("  uid %u gid %u\n", st.st_uid, st.st_gid);
    report("fchown 0xfffffffe", syscall(SYS_fchown, fd, 0xfffffffeL, 0xfffffffeL));
    fstat(fd, &st);
    printf("  uid %u gid %u\n", st.st_uid, st.st_gid);
    report("fchown -1 -1 (64-bit -1)", syscall(SYS_fchown, fd, -1L, 0xffffffffL));
    fstat(fd, &st);
    printf("  uid %u gid %u\n", st.st_uid, st.st_gid);
    close(fd);
    report("setuid(-1)", syscall(SYS_setuid, 0xffffffffL));
    gid_t bad[] = {5, (gid_t)-1};
    report("setgroups with -1", syscall(SYS_setgroups, 2, bad));
    report("setfsuid(-1) answers the fsuid", syscall(SYS_setfsuid, 0xffffffffL));
    report("setresgid(-1, 64-bit 7, -1)", syscall(SYS_setresgid, -1L, 0x700000007L, -1L));
    report("setresuid(-1, 0xfffffffe, -1)", syscall(SYS_setresuid, -1L, 0xfffffffeL, -1L));
    uid_t r, e, s;
    getresuid(&r, &e, &s);
    printf("  uids %u %u %u\n", r, e, s);
    gid_t gr, ge, gs;
    getresgid(&gr, &ge, &gs);
    printf("  gids %u %u %u\n", gr, ge, gs);
}

static void tls_and_clone(void)
{
    report("ARCH_SET_FS kernel half", syscall(SYS_arch_prctl, 0x1002, 0xffff800000000000UL));
    report("ARCH_SET_GS non-canonical", syscall(SYS_arch_prctl, 0x1001, 0x0000800000000000UL));
    report("ARCH_SET_FS TASK_SIZE_MAX", syscall(SYS_arch_prctl, 0x1002, 0x7ffffffff000UL));
    report("clone SETTLS kernel half", syscall(SYS_clone, CLONE_SETTLS | SIGCHLD, 0, 0, 0, 0xffff800000000000UL));
    report("clone THREAD without SIGHAND", syscall(SYS_clone, CLONE_THREAD | CLONE_VM, 0, 0, 0, 0));
    report("clone SIGHAND without VM", syscall(SYS_clone, CLONE_SIGHAND | SIGCHLD, 0, 0, 0, 0));
    uint64_t args[12] = {0};
    args[4] = SIGCHLD;
    args[5] = 0x7fffffff0000;           /* stack beyond the user space with its size */
    args[6] = 0x100000;
    report("clone3 stack past TASK_SIZE", syscall(SYS_clone3, args, 64));
    args[5] = args[6] = 0;
    report("clone3 size 4097", syscall(SYS_clone3, args, 4097));
    args[11] = 1;                       /* a field no clone_args version has */
    report("clone3 unknown field", syscall(SYS_clone3, args, 96));
}

/* an fd number that is free (whatever the caller left open) */
static int closed_fd(void)
{
    int fd = open("/dev/null", O_RDONLY);
    close(fd);
    return fd;
}

static int usr1_blocked(void)
{
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    return sigismember(&cur, SIGUSR1);
}

static void masks(void)
{
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    report("ppoll 2^31-1 fds with a mask", syscall(SYS_ppoll, NULL, 0x7fffffffUL, NULL, &m, 8));
    printf("  SIGUSR1 blocked after: %d\n", usr1_blocked());
    struct { void *ss; size_t len; } sm = {&m, 8};
    fd_set r;
    int closed = closed_fd();
    FD_ZERO(&r);
    FD_SET(closed, &r);
    report("pselect6 on a closed fd with a mask", syscall(SYS_pselect6, closed + 1, &r, NULL, NULL, NULL, &sm));
    printf("  SIGUSR1 blocked after: %d\n", usr1_blocked());
    report("ppoll fds at a bad address", syscall(SYS_ppoll, (void *)8, 0x100000001UL, NULL, &m, 8));
    printf("  SIGUSR1 blocked after: %d\n", usr1_blocked());
}

static void ranges(void)
{
    int fd = open("g", O_CREAT | O_RDWR | O_TRUNC, 0644);
    char buf[4096] = "x";
    report("pwrite ending past LLONG_MAX", pwrite(fd, buf, 4096, 0x7ffffffffffff000L));
    report("pread ending past LLONG_MAX", pread(fd, buf, 4096, 0x7ffffffffffff001L));
    report("fallocate past LLONG_MAX", fallocate(fd, 0, 1, 0x7fffffffffffffffL));
    report("lseek SEEK_DATA at -1", lseek(fd, -1, SEEK_DATA));
    struct iovec iov[2] = {{buf, 1}, {(void *)0xffff800000000000UL, 1}};
    report("writev with a kernel-half buffer", writev(fd, iov, 2));
    report("readv counts as unsigned int", syscall(SYS_readv, fd, iov, 0x100000001UL));
    close(fd);
}

static void sockets(void)
{
    int sv[2], dg[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dg);
    static char data[8] = "abc";      /* not on the stack: a 2^40-byte range from it is a user one */
    char ctl[64], rbuf[16];
    struct iovec iov = {data, 3};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = 1UL << 40;
    report("sendmsg control of 2^40 bytes", sendmsg(sv[0], &m, 0));
    struct cmsghdr *c = (struct cmsghdr *)ctl;
    memset(ctl, 0, sizeof(ctl));
    c->cmsg_len = CMSG_LEN(8);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    m.msg_controllen = CMSG_SPACE(8);
    report("sendmsg short SCM_CREDENTIALS", sendmsg(sv[0], &m, 0));
    c->cmsg_len = CMSG_LEN(4);
    c->cmsg_level = 0x1234;
    c->cmsg_type = 99;
    m.msg_controllen = CMSG_SPACE(4);
    report("sendmsg other level (skipped)", sendmsg(sv[0], &m, 0));
    report("  recv", recv(sv[1], rbuf, sizeof(rbuf), MSG_DONTWAIT));
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    *(int *)CMSG_DATA(c) = closed_fd();
    report("sendmsg SCM_RIGHTS of a closed fd", sendmsg(sv[0], &m, 0));
    struct ucred uc = {getpid(), (uid_t)-1, getgid()};
    c->cmsg_len = CMSG_LEN(sizeof(uc));
    c->cmsg_type = SCM_CREDENTIALS;
    memcpy(CMSG_DATA(c), &uc, sizeof(uc));
    m.msg_controllen = CMSG_SPACE(sizeof(uc));
    report("sendmsg SCM_CREDENTIALS uid -1", sendmsg(sv[0], &m, 0));
    m.msg_control = NULL;
    m.msg_controllen = 0;
    m.msg_iovlen = 1025;
    report("sendmsg 1025 iovecs", sendmsg(sv[0], &m, 0));
    m.msg_iovlen = 1;
    m.msg_name = rbuf;
    m.msg_namelen = -1;
    report("recvmsg negative name length", recvmsg(sv[1], &m, MSG_DONTWAIT));
    report("sendto a datagram of 2^40 bytes", syscall(SYS_sendto, dg[0], data, 1UL << 40, 0, NULL, 0));
    report("sendto an address of length 0", sendto(dg[0], data, 3, 0, (struct sockaddr *)rbuf, 0));
    report("  recv", recv(dg[1], rbuf, sizeof(rbuf), MSG_DONTWAIT));
}

static void ipc_info(void)
{
    struct { struct msginfo i; uint64_t canary; } mi = {.canary = 0x5a5a5a5a5a5a5a5a};
    long r = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
    printf("msgctl MSG_INFO: %s, msgmax %d msgmnb %d msgssz %d msgseg %u, canary %s\n",
           r >= 0 ? "ok" : strerrorname_np(errno), mi.i.msgmax, mi.i.msgmnb, mi.i.msgssz,
           mi.i.msgseg, mi.canary == 0x5a5a5a5a5a5a5a5a ? "intact" : "overwritten");
    struct { struct seminfo i; uint64_t canary; } si = {.canary = 0x5a5a5a5a5a5a5a5a};
    union { struct seminfo *info; } arg = {&si.i};
    r = semctl(0, 0, IPC_INFO, arg);
    printf("semctl IPC_INFO: %s, semmsl %d semopm %d semvmx %d semusz %d semaem %d, canary %s\n",
           r >= 0 ? "ok" : strerrorname_np(errno), si.i.semmsl, si.i.semopm, si.i.semvmx,
           si.i.semusz, si.i.semaem, si.canary == 0x5a5a5a5a5a5a5a5a ? "intact" : "overwritten");
    struct { struct shm_info i; uint64_t canary; } hi = {.canary = 0x5a5a5a5a5a5a5a5a};
    r = shmctl(0, SHM_INFO, (struct shmid_ds *)&hi);
    printf("shmctl SHM_INFO: %s, canary %s\n", r >= 0 ? "ok" : strerrorname_np(errno),
           hi.canary == 0x5a5a5a5a5a5a5a5a ? "intact" : "overwritten");
    int id = semget(IPC_PRIVATE, 1, 0600);
    static struct sembuf ops[501];
    report("semop with 501 operations", semop(id, ops, 501));
    semctl(id, 0, IPC_RMID);
    struct { long mtype; char text[8]; } msg = {1, "x"};
    int q = msgget(IPC_PRIVATE, 0600);
    struct msqid_ds ds;
    msgctl(q, IPC_STAT, &ds);
    ds.msg_perm.uid = (uid_t)-1;
    report("msgctl IPC_SET uid -1", msgctl(q, IPC_SET, &ds));
    report("msgsnd", msgsnd(q, &msg, 1, 0));
    msgctl(q, IPC_RMID, NULL);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char path[4096];
    snprintf(path, sizeof(path), "%s/t_argrange.d", dir);
    if (chdir(dir) != 0)
        return 1;
    system("rm -rf t_argrange.d");
    mkdir(path, 0755);
    if (chdir(path) != 0)
        return 1;
    in_child(ids);
    in_child(tls_and_clone);
    in_child(masks);
    ranges();
    sockets();
    ipc_info();
    /* the syscall number's upper 32 bits are not looked at */
    report("getppid with high bits is getppid", syscall(0x100000000L | SYS_getppid) == getppid());
    report("syscall -1", syscall(-1L));
    if (chdir(dir) == 0)
        system("rm -rf t_argrange.d");
    printf("done\n");
    return 0;
}
