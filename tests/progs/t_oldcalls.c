/* Old and odd syscalls: sysfs(2), ustat, vhangup, sync_file_range,
 * pidfd_getfd.  Only what holds on any kernel is printed (filesystem
 * lists differ between machines).  argv[1]: scratch directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "results.h"

static void t_sysfs(void)
{
    long n = syscall(SYS_sysfs, 3);
    printf("sysfs count positive: %d\n", n > 0);
    int consistent = 1;
    for (long i = 0; i < n; i++) {
        char name[64] = "";
        if (syscall(SYS_sysfs, 2, i, name) < 0 || syscall(SYS_sysfs, 1, name) != i)
            consistent = 0;
    }
    printf("sysfs names and indexes agree: %d\n", consistent);
    char buf[64];
    res("sysfs(2, count)", syscall(SYS_sysfs, 2, n, buf));
    res("sysfs(1, nosuchfs)", syscall(SYS_sysfs, 1, "nosuchfs"));
    res("sysfs(1, NULL)", syscall(SYS_sysfs, 1, NULL));
    res("sysfs(4)", syscall(SYS_sysfs, 4));
}

static void t_ustat(void)
{
    struct stat st;
    char ub[32];
    stat("/", &st);
    unsigned dev = (unsigned)st.st_dev;
    res("ustat(root)", syscall(SYS_ustat, dev, ub));
    res("ustat(-1)", syscall(SYS_ustat, (unsigned)-1, ub));
    res("ustat(root, bad buf)", syscall(SYS_ustat, dev, (void *)-1));
}

static void t_sync_file_range(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/sfr.tmp", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600), p[2];
    write(fd, "data", 4);
    pipe(p);
    res("sync_file_range file", sync_file_range(fd, 0, 4, SYNC_FILE_RANGE_WRITE));
    res("sync_file_range whole", sync_file_range(fd, 0, 0, 0));
    res("sync_file_range bad flags", sync_file_range(fd, 0, 4, 8));
    res("sync_file_range negative offset", sync_file_range(fd, -1, 4, SYNC_FILE_RANGE_WRITE));
    res("sync_file_range negative length", sync_file_range(fd, 0, -4, SYNC_FILE_RANGE_WRITE));
    res("sync_file_range pipe", sync_file_range(p[0], 0, 4, SYNC_FILE_RANGE_WRITE));
    res("sync_file_range bad fd", sync_file_range(-1, 0, 4, SYNC_FILE_RANGE_WRITE));
    close(fd);
    close(p[0]);
    close(p[1]);
    unlink(path);
}

static void t_vhangup(void)
{
    pid_t c = fork();
    if (c == 0) {
        setsid();
        _exit(syscall(SYS_vhangup) == 0 ? 0 : errno);
    }
    int st;
    waitpid(c, &st, 0);
    printf("vhangup without a terminal: %s\n", WEXITSTATUS(st) ? en(WEXITSTATUS(st)) : "0");
}

static void t_pidfd_getfd(void)
{
    int p[2], go[2];
    pipe(p);
    pipe(go);
    pid_t c = fork();
    if (c == 0) {
        close(p[1]);
        char x;
        read(go[0], &x, 1);
        _exit(0);
    }
    close(p[0]);
    int pfd = syscall(SYS_pidfd_open, c, 0);
    int got = syscall(SYS_pidfd_getfd, pfd, p[0], 0);
    printf("pidfd_getfd: %s\n", got >= 0 ? "ok" : en(errno));
    write(p[1], "hi", 2);
    char buf[4] = "";
    printf("read through the copy: %ld\n", got >= 0 ? (long)read(got, buf, 2) : -1L);
    printf("copy is close-on-exec: %d\n", got >= 0 ? fcntl(got, F_GETFD) & FD_CLOEXEC : -1);
    res("pidfd_getfd flags 1", syscall(SYS_pidfd_getfd, pfd, p[0], 1));
    res("pidfd_getfd bad target fd", syscall(SYS_pidfd_getfd, pfd, 999, 0));
    res("pidfd_getfd not a pidfd", syscall(SYS_pidfd_getfd, p[1], p[0], 0));
    write(go[1], "x", 1);
    waitpid(c, NULL, 0);
    res("pidfd_getfd after exit", syscall(SYS_pidfd_getfd, pfd, p[0], 0));
    close(got);
    close(pfd);
    close(p[1]);
    close(go[0]);
    close(go[1]);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    t_sysfs();
    t_ustat();
    t_sync_file_range(argc > 1 ? argv[1] : ".");
    t_vhangup();
    t_pidfd_getfd();
    printf("done\n");
    return 0;
}
