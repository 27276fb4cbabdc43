/* File leases: F_SETLEASE/F_GETLEASE's checks (types, regular files, the
 * owner or CAP_LEASE, opens that conflict), and breaking: an open by a
 * child blocks until the holder, told by SIGIO, downgrades or removes the
 * lease; F_GETLEASE shows what the holder must do; a downgrade is refused
 * while a writer waits; O_NONBLOCK opens fail with EWOULDBLOCK; truncate
 * breaks too; a lease goes with its file's last close; F_SETSIG's signal
 * (with POLL_MSG and the fd) replaces SIGIO, and the lease's removal
 * forgets it and the owner the lease made.  Never waits for
 * fs.lease-break-time, but with "timeout" after the directory (guest
 * only: it writes /proc/sys/fs/lease-break-time) it checks what the kernel
 * does when the holder does nothing for a second.  Run as root.  Works in
 * ARGV1/lease. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "results.h"

static const char *lt(long t)
{
    return t == F_RDLCK ? "F_RDLCK" : t == F_WRLCK ? "F_WRLCK" : t == F_UNLCK ? "F_UNLCK" : "?";
}

static void getlease(const char *what, int fd)
{
    long r = fcntl(fd, F_GETLEASE);
    if (r < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: %s\n", what, lt(r));
}

static sigset_t sigio;

static void wait_sigio(const char *what)
{
    struct timespec ts = {10, 0};
    siginfo_t si;
    int s = sigtimedwait(&sigio, &si, &ts);
    printf("%s: %s, si_code %d\n", what, s == SIGIO ? "SIGIO" : en(errno), si.si_code);
}

/* the child's open (or truncate) that breaks the lease: "o" O_RDONLY,
 * "w" O_WRONLY, "n" O_WRONLY|O_NONBLOCK, "t" truncate; it exits with the errno */
/* the leased fd, which a breaker closes first: a copy of it in the child
   would keep the lease alive past the holder's close, until
   fs.lease-break-time (45 s) ends it */
static int lease_fd = -1;

static pid_t breaker(char how)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid)
        return pid;
    if (lease_fd >= 0)
        close(lease_fd);
    int r;
    if (how == 't')
        r = truncate("file", 3);
    else
        r = open("file", how == 'o' ? O_RDONLY : how == 'w' ? O_WRONLY : O_WRONLY | O_NONBLOCK);
    _exit(r < 0 ? errno : 0);
}

/* the breaker's end, printed by the parent (no race with its own output) */
static void reap(pid_t pid)
{
    int st;
    waitpid(pid, &st, 0);
    printf("  the child's call: %s\n", WEXITSTATUS(st) ? en(WEXITSTATUS(st)) : "done");
}

static void checks(void)
{
    int rw = open("file", O_RDWR);
    int ro = open("file", O_RDONLY);
    getlease("F_GETLEASE, none", ro);
    res("F_SETLEASE 3", fcntl(ro, F_SETLEASE, 3));
    res("F_SETLEASE -1", fcntl(ro, F_SETLEASE, -1));
    res("F_SETLEASE F_UNLCK, none", fcntl(ro, F_SETLEASE, F_UNLCK));
    int d = open(".", O_RDONLY);
    res("F_SETLEASE directory", fcntl(d, F_SETLEASE, F_RDLCK));
    getlease("F_GETLEASE directory", d);
    int p[2];
    pipe(p);
    res("F_SETLEASE pipe", fcntl(p[0], F_SETLEASE, F_RDLCK));
    res("F_SETLEASE read lease, file open for writing", fcntl(ro, F_SETLEASE, F_RDLCK));
    res("F_SETLEASE write lease, file open twice", fcntl(rw, F_SETLEASE, F_WRLCK));
    close(rw);
    res("F_SETLEASE read lease", fcntl(ro, F_SETLEASE, F_RDLCK));
    int ro2 = open("file", O_RDONLY);
    res("F_SETLEASE read lease, second file", fcntl(ro2, F_SETLEASE, F_RDLCK));
    res("F_SETLEASE write lease, another read lease", fcntl(ro, F_SETLEASE, F_WRLCK));
    int dup_ro = dup(ro);
    getlease("F_GETLEASE through a dup", dup_ro);
    res("F_SETLEASE F_UNLCK through the dup", fcntl(dup_ro, F_SETLEASE, F_UNLCK));
    getlease("F_GETLEASE after", ro);
    close(ro2);
    close(dup_ro);
    res("F_SETLEASE write lease, alone", fcntl(ro, F_SETLEASE, F_WRLCK));
    getlease("F_GETLEASE", ro);
    res("F_SETLEASE read lease (downgrade)", fcntl(ro, F_SETLEASE, F_RDLCK));
    getlease("F_GETLEASE", ro);
    close(ro);
    int again = open("file", O_RDWR);
    res("the lease went with the last close: write lease", fcntl(again, F_SETLEASE, F_WRLCK));
    res("F_SETLEASE F_UNLCK", fcntl(again, F_SETLEASE, F_UNLCK));
    close(again);
    close(d);
    close(p[0]);
    close(p[1]);

    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setresuid(65534, 65534, 65534);
        int fd = open("file", O_RDONLY);
        res("nobody: F_SETLEASE on root's file", fcntl(fd, F_SETLEASE, F_RDLCK));
        getlease("nobody: F_GETLEASE", fd);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

static void breaks(void)
{
    int fd = lease_fd = open("file", O_RDONLY);
    res("write lease", fcntl(fd, F_SETLEASE, F_WRLCK));
    pid_t c = breaker('o');
    wait_sigio("an open for reading breaks it");
    getlease("  F_GETLEASE", fd);
    res("  downgrade", fcntl(fd, F_SETLEASE, F_RDLCK));
    reap(c);
    getlease("  F_GETLEASE", fd);

    c = breaker('w');
    wait_sigio("an open for writing breaks the read lease");
    getlease("  F_GETLEASE", fd);
    res("  a read lease again, while the writer waits", fcntl(fd, F_SETLEASE, F_RDLCK));
    res("  remove it", fcntl(fd, F_SETLEASE, F_UNLCK));
    reap(c);

    res("write lease", fcntl(fd, F_SETLEASE, F_WRLCK));
    c = breaker('n');
    reap(c);
    wait_sigio("an O_NONBLOCK open breaks it without waiting");
    getlease("  F_GETLEASE", fd);
    res("  remove it", fcntl(fd, F_SETLEASE, F_UNLCK));

    res("read lease", fcntl(fd, F_SETLEASE, F_RDLCK));
    c = breaker('t');
    wait_sigio("truncate breaks it");
    getlease("  F_GETLEASE", fd);
    res("  remove it", fcntl(fd, F_SETLEASE, F_UNLCK));
    reap(c);

    /* F_SETSIG: the break is that signal, with POLL_MSG, the fd and its band;
     * the lease's removal forgets the signal and the owner the lease made */
    int sig = SIGRTMIN + 1;
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, sig);
    sigprocmask(SIG_BLOCK, &rt, NULL);
    res("F_SETSIG SIGRTMIN+1", fcntl(fd, F_SETSIG, sig));
    res("read lease", fcntl(fd, F_SETLEASE, F_RDLCK));
    printf("  F_GETOWN is this process: %s\n", fcntl(fd, F_GETOWN) == getpid() ? "yes" : "no");
    c = breaker('w');
    struct timespec ts = {10, 0};
    siginfo_t si;
    int got = sigtimedwait(&rt, &si, &ts);
    printf("an open for writing breaks it: %s, si_code %d, si_fd is the fd: %s, si_band %#lx\n",
           got == sig ? "SIGRTMIN+1" : en(errno), si.si_code, si.si_fd == fd ? "yes" : "no", (long)si.si_band);
    res("  remove it", fcntl(fd, F_SETLEASE, F_UNLCK));
    reap(c);
    res("  F_GETSIG", fcntl(fd, F_GETSIG));
    res("  F_GETOWN", fcntl(fd, F_GETOWN));

    res("write lease", fcntl(fd, F_SETLEASE, F_WRLCK));
    c = breaker('w');
    wait_sigio("the holder closes instead");
    close(fd);
    reap(c);
}

/* lease-break-time 1: an ignored break ends after a second, the write
 * lease downgraded for a reader, removed for a writer */
static void timeouts(void)
{
    FILE *f = fopen("/proc/sys/fs/lease-break-time", "w");
    if (!f || fprintf(f, "1\n") < 0 || fclose(f)) {
        printf("cannot set lease-break-time\n");
        return;
    }
    int fd = open("file", O_RDONLY);
    res("write lease", fcntl(fd, F_SETLEASE, F_WRLCK));
    time_t t0 = time(NULL);
    pid_t c = breaker('o');
    wait_sigio("an open for reading breaks it");
    reap(c);
    printf("  waited about a second: %s\n", time(NULL) - t0 >= 1 && time(NULL) - t0 <= 3 ? "yes" : "no");
    getlease("  F_GETLEASE", fd);
    c = breaker('w');
    wait_sigio("an open for writing breaks it");
    reap(c);
    getlease("  F_GETLEASE", fd);
    close(fd);
}

int main(int argc, char **argv)
{
    char dir[4096], cmd[4200];
    snprintf(dir, sizeof dir, "%s/lease", argc > 1 ? argv[1] : ".");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    system(cmd);
    mkdir(dir, 0755);
    if (chdir(dir) < 0) {
        perror("chdir");
        return 1;
    }
    close(open("file", O_RDWR | O_CREAT, 0644));
    sigemptyset(&sigio);
    sigaddset(&sigio, SIGIO);
    sigprocmask(SIG_BLOCK, &sigio, NULL);
    if (argc > 2 && !strcmp(argv[2], "timeout")) {
        timeouts();
    } else {
        checks();
        breaks();
    }
    chdir("/");
    system(cmd);
    printf("done\n");
    return 0;
}
