/* PID namespaces: clone/unshare/setns of CLONE_NEWPID, pids as each
   namespace sees them (getpid, getppid, wait, siginfo), the namespace's
   init (orphans, signals, its death), /proc mounted inside, NS_GET_PARENT.
   Run as root; only relations between pids are printed, never outer pids. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#define NSIO 0xb7
#define NS_GET_PARENT _IO(NSIO, 0x2)

/* fork into a new pid namespace (clone's fork semantics, no new stack) */
static pid_t clone_flags(unsigned long flags)
{
    return syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
}

static int wait_status(pid_t c)
{
    int st = 0;
    if (waitpid(c, &st, 0) != c)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static unsigned long ino_of(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 ? (unsigned long)s.st_ino : 0;
}

/* the NSpid line of a /proc/PID/status: its number of fields and the last */
static void show_nspid(const char *who, const char *path)
{
    char buf[4096];
    if (read_small(path, buf, sizeof buf) < 0) {
        printf("%s: no status\n", who);
        return;
    }
    char *l = strstr(buf, "NSpid:");
    if (!l) {
        printf("%s: no NSpid\n", who);
        return;
    }
    int fields = 0;
    long last = -1;
    for (char *p = l + 6; *p && *p != '\n';) {
        while (*p == '\t' || *p == ' ')
            p++;
        if (*p == '\n' || !*p)
            break;
        last = strtol(p, &p, 10);
        fields++;
    }
    /* outside, the count depends on how deep the caller itself is */
    printf("%s: NSpid %s levels, last %ld\n", who, fields == 1 ? "1" : fields > 1 ? "several" : "0", last);
}

static volatile int got_sig, got_pid = -1;

static void on_sig(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got_sig = sig;
    got_pid = si->si_pid;
}

static void catch(int sig)
{
    struct sigaction sa = {.sa_sigaction = on_sig, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigaction(sig, &sa, NULL);
}

/* pids inside: 1, 0 parent, the next one 2, nested levels */
static void basics(void)
{
    pid_t c = clone_flags(CLONE_NEWPID);
    if (c == 0) {
        printf("inside: pid %d ppid %d tid %d\n", getpid(), getppid(), (int)syscall(SYS_gettid));
        pid_t g = fork();
        if (g == 0) {
            printf("second: pid %d ppid %d\n", getpid(), getppid());
            pid_t n = clone_flags(CLONE_NEWPID);
            if (n == 0) {
                printf("level 2: pid %d ppid %d\n", getpid(), getppid());
                _exit(3);
            }
            printf("level 2 child seen as %d, status %d\n", n, wait_status(n));
            _exit(0);
        }
        printf("fork inside returned %d, status %d\n", g, wait_status(g));
        _exit(7);
    }
    printf("outer pid is not 1: %d, status %d\n", c != 1, wait_status(c));
}

/* wait and siginfo from outside name the child by its outer pid; a signal
   from outside arrives with si_pid 0 */
static void from_outside(void)
{
    int p[2];
    pipe(p);
    catch(SIGCHLD);
    got_sig = 0;
    got_pid = -1;
    pid_t c = clone_flags(CLONE_NEWPID);
    if (c == 0) {
        close(p[0]);
        catch(SIGUSR1);
        write(p[1], "r", 1);
        while (!got_sig)
            pause();
        printf("init got %d from si_pid %d\n", got_sig, got_pid);
        _exit(5);
    }
    close(p[1]);
    char ch;
    read(p[0], &ch, 1);
    close(p[0]);
    long k = kill(c, SIGUSR1);
    siginfo_t si = {0};
    long w = waitid(P_PID, c, &si, WEXITED);
    res("kill from outside", k);
    res("waitid", w);
    printf("waitid si_pid is the outer pid %d status %d\n", si.si_pid == c, si.si_status);
    printf("SIGCHLD si_pid is the outer pid %d\n", got_pid == c);
    signal(SIGCHLD, SIG_DFL);
}

/* the namespace's init: its SIG_DFL signals from inside are dropped;
   orphans come to it; its death kills the rest */
static void ns_init(void)
{
    int p[2];
    pipe(p);
    pid_t c = clone_flags(CLONE_NEWPID);
    if (c == 0) {
        res("init kills itself with SIGTERM", kill(1, SIGTERM));
        pid_t k = fork();
        if (k == 0) {
            res("child SIGKILLs init", kill(1, SIGKILL));
            res("child SIGKILLs -1", kill(-1, SIGKILL));
            _exit(0);
        }
        printf("killer status %d\n", wait_status(k));
        pid_t a = fork();
        if (a == 0) {
            pid_t b = fork();
            if (b == 0) {
                while (getppid() != 1)
                    usleep(1000);
                printf("orphan's ppid now %d\n", getppid());
                close(p[0]);
                write(p[1], "o", 1);
                for (;;)
                    pause();        /* holds p[1] until the namespace dies */
            }
            _exit(0);
        }
        close(p[0]);
        close(p[1]);
        wait_status(a);
        for (;;) {                  /* reap the orphan when it dies (never) */
            pid_t w = wait(NULL);
            if (w < 0)
                pause();
        }
    }
    close(p[1]);
    char ch;
    res("orphan ready", read(p[0], &ch, 1));
    res("outside SIGKILLs init", kill(c, SIGKILL));
    printf("init status %d\n", wait_status(c));
    res("pipe read after the namespace died", read(p[0], &ch, 1));
    close(p[0]);
}

/* unshare: only the children move; a second unshare is EINVAL; once its
   init is gone nothing more can be made in the namespace */
static void unshared(void)
{
    pid_t c = fork();
    if (c == 0) {
        pid_t me = getpid();
        res("unshare NEWPID", unshare(CLONE_NEWPID));
        printf("pid unchanged %d, for_children differs %d\n", getpid() == me,
               ino_of("/proc/self/ns/pid") != ino_of("/proc/self/ns/pid_for_children"));
        res("second unshare NEWPID", unshare(CLONE_NEWPID));
        res("thread into it", clone_flags(CLONE_THREAD | CLONE_SIGHAND | CLONE_VM));
        pid_t k = fork();
        if (k == 0) {
            printf("first child: pid %d ppid %d\n", getpid(), getppid());
            _exit(0);
        }
        printf("first child status %d\n", wait_status(k));
        res("fork after its init died", fork());
        _exit(0);
    }
    wait_status(c);
}

/* /proc mounted in the namespace shows its pids; NS_GET_PARENT */
static void procfs_and_parent(void)
{
    int p[2], q[2];
    pipe(p);
    pipe(q);
    pid_t c = clone_flags(CLONE_NEWPID | CLONE_NEWNS);
    if (c == 0) {
        close(p[0]);
        close(q[1]);
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
        res("mount proc", mount("proc", "/proc", "proc", 0, NULL));
        pid_t k = fork();
        if (k == 0) {
            char ch;
            read(q[0], &ch, 1);
            _exit(0);
        }
        char buf[32] = "";
        readlink("/proc/self", buf, sizeof buf - 1);
        printf("/proc/self -> %s\n", buf);
        DIR *d = opendir("/proc");
        struct dirent *e;
        int n = 0, has1 = 0, has2 = 0;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] >= '0' && e->d_name[0] <= '9') {
                n++;
                has1 |= !strcmp(e->d_name, "1");
                has2 |= !strcmp(e->d_name, "2");
            }
        closedir(d);
        printf("/proc pids: %d (1: %d, 2: %d)\n", n, has1, has2);
        printf("/proc/2/task/2 exists %d\n", access("/proc/2/task/2", F_OK) == 0);
        show_nspid("inside self", "/proc/self/status");
        show_nspid("inside child", "/proc/2/status");
        int fd = open("/proc/self/ns/pid", O_RDONLY);
        res("NS_GET_PARENT inside", ioctl(fd, NS_GET_PARENT));
        res("F_SETOWN self", fcntl(fd, F_SETOWN, getpid()));
        res("F_GETOWN", fcntl(fd, F_GETOWN));
        write(p[1], "r", 1);
        close(q[0]);
        printf("child status %d\n", wait_status(k));
        _exit(0);
    }
    close(p[1]);
    close(q[0]);
    char ch;
    read(p[0], &ch, 1);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", c);
    show_nspid("outside child", path);
    snprintf(path, sizeof path, "/proc/%d/ns/pid", c);
    int fd = open(path, O_RDONLY);
    int par = ioctl(fd, NS_GET_PARENT);
    struct stat a, b;
    fstat(par, &a);
    stat("/proc/self/ns/pid", &b);
    printf("NS_GET_PARENT outside is ours %d\n", par >= 0 && a.st_ino == b.st_ino);
    /* setns into the child's namespace: our next child is numbered there */
    pid_t s = fork();
    if (s == 0) {
        res("setns", setns(fd, CLONE_NEWPID));
        pid_t g = fork();
        if (g == 0) {
            printf("joined: pid %d ppid %d\n", getpid(), getppid());
            _exit(0);
        }
        printf("joined child status %d\n", wait_status(g));
        _exit(0);
    }
    wait_status(s);
    close(q[1]);
    close(fd);
    close(par);
    printf("init status %d\n", wait_status(c));
    close(p[0]);
}

static void await_byte(int fd)
{
    char ch;
    read(fd, &ch, 1);
}

/* tell the other side (a byte on w), then wait for its answer on r (if any) */
static void handshake(int w, int r)
{
    write(w, "x", 1);
    if (r >= 0)
        await_byte(r);
}

/* pids kept in objects (a lock's owner, a semaphore's last user) read
   from inside and outside: 0 for one outside the reader's namespace */
static void pids_in_objects(const char *dir)
{
    char path[300];
    snprintf(path, sizeof path, "%s/t_pidns.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    write(fd, "0123456789", 10);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 5};
    res("lock the first half", fcntl(fd, F_SETLK, &fl));
    int sem = semget(IPC_PRIVATE, 1, 0600);
    struct sembuf up = {0, 1, 0};
    semop(sem, &up, 1);
    int p[2], q[2];
    pipe(p);
    pipe(q);
    pid_t c = clone_flags(CLONE_NEWPID);
    if (c == 0) {
        struct flock g = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 5};
        fcntl(fd, F_GETLK, &g);
        printf("inside: lock owner %d\n", g.l_pid);
        printf("inside: semaphore GETPID %d\n", semctl(sem, 0, GETPID));
        struct flock mine = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 5};
        int f2 = open(path, O_RDWR);
        fcntl(f2, F_SETLK, &mine);
        semop(sem, &up, 1);
        handshake(p[1], q[0]);
        _exit(0);
    }
    await_byte(p[0]);
    struct flock g = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 5};
    fcntl(fd, F_GETLK, &g);
    printf("outside: lock owner is the child %d\n", g.l_pid == c);
    printf("outside: semaphore GETPID is the child %d\n", semctl(sem, 0, GETPID) == c);
    handshake(q[1], -1);
    wait_status(c);
    semctl(sem, 0, IPC_RMID);
    close(fd);
    unlink(path);
}

struct clone3_args {
    unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};

static pid_t clone3_tids(unsigned long flags, pid_t *tids, size_t n)
{
    struct clone3_args a = {.flags = flags, .exit_signal = SIGCHLD,
                            .set_tid = (unsigned long)tids, .set_tid_size = n};
    return syscall(SYS_clone3, &a, sizeof a);
}

/* the pid of a child that exits at once, once it is reaped */
static pid_t fork_reaped(void)
{
    pid_t k = fork();
    if (k == 0)
        _exit(0);
    wait_status(k);
    return k;
}

/* clone3's set_tid: the pids asked for, innermost namespace first */
static void set_tid(void)
{
    pid_t one[1] = {1}, seven[1] = {7}, two[2] = {1, 1}, many[33] = {0};
    res("set_tid size 33", clone3_tids(0, many, 33));
    res("set_tid NULL, size 1", clone3_tids(0, NULL, 1));
    res("set_tid two levels from the init namespace", clone3_tids(0, two, 2));
    res("set_tid 7 in a namespace without init", clone3_tids(CLONE_NEWPID, seven, 1));
    pid_t c = clone3_tids(CLONE_NEWPID, one, 1);
    if (c == 0) {
        printf("set_tid 1: pid %d\n", getpid());
        pid_t ten[1] = {10};
        pid_t k = clone3_tids(0, ten, 1);
        if (k == 0)
            _exit(getpid());
        printf("set_tid 10 gave %d, status %d\n", k, wait_status(k));
        printf("next fork gave %d\n", fork_reaped());
        char buf[16] = "";
        int fd = open("/proc/sys/kernel/ns_last_pid", O_RDWR);
        read(fd, buf, sizeof buf - 1);
        printf("ns_last_pid %s", buf);
        res("write ns_last_pid 99", pwrite(fd, "99", 2, 0));
        close(fd);
        printf("then fork gave %d\n", fork_reaped());
        fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
        write(fd, "99", 2);
        close(fd);
        printf("the reaped number is free again: %d\n", fork_reaped());
        res("set_tid 1 again", clone3_tids(0, one, 1));
        res("set_tid 0", clone3_tids(0, many, 1));
        k = fork();
        if (k == 0) {
            setresuid(65534, 65534, 65534);
            res("nobody: set_tid 20", clone3_tids(0, (pid_t[]){20}, 1));
            res("nobody: set_tid 0", clone3_tids(0, many, 1));
            int f = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
            res("nobody: write ns_last_pid", f < 0 ? -1 : write(f, "5", 1));
            _exit(0);
        }
        wait_status(k);
        _exit(0);
    }
    printf("set_tid child status %d\n", wait_status(c));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    res("NEWPID|THREAD", clone_flags(CLONE_NEWPID | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM));
    basics();
    from_outside();
    ns_init();
    unshared();
    procfs_and_parent();
    set_tid();
    pids_in_objects(argc > 1 ? argv[1] : "/tmp");
    printf("done\n");
    return 0;
}
