/* Files by name and by fd, where Linux's order of checks or a limit decides
 * the answer: truncate and ftruncate (negative length first, directories,
 * fifos, read-only fds), RLIMIT_FSIZE (EFBIG and SIGXFSZ for writes,
 * truncates and fallocate; a write running past it is cut short), the
 * utime family (a NULL path, a NULL path with a dirfd, flags, bad
 * microseconds), readlink of an empty path, getcwd of a removed directory
 * and of one outside a chroot, statx's reserved mask bit, open with O_CREAT
 * of a directory and O_NOATIME by a non-owner, fsync of things that cannot
 * be synced, fchownat's flags, O_DIRECTORY with O_PATH and O_NOFOLLOW,
 * FICLONE/FICLONERANGE/FIDEDUPERANGE (none shares blocks here).  Run as root.  Works in ARGV1/fileerr. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>
#include "results.h"

static volatile int xfsz;

static void on_xfsz(int sig)
{
    (void)sig;
    xfsz++;
}

static void truncates(void)
{
    res("truncate negative, no such file", truncate("nonexistent", -1));
    res("truncate no such file", truncate("nonexistent", 1));
    res("truncate directory", truncate("dir", 1));
    res("truncate fifo", truncate("fifo", 1));
    res("truncate empty path", truncate("", 1));
    res("truncate through a file", truncate("file/x", 1));
    res("ftruncate negative, bad fd", ftruncate(-1, -1));
    res("ftruncate bad fd", ftruncate(-1, 1));
    int ro = open("file", O_RDONLY);
    int d = open("dir", O_RDONLY);
    int p[2];
    pipe(p);
    res("ftruncate read-only fd", ftruncate(ro, 1));
    res("ftruncate directory", ftruncate(d, 1));
    res("ftruncate pipe", ftruncate(p[1], 1));
    int path = open("file", O_PATH);
    res("ftruncate O_PATH", ftruncate(path, 1));
    close(ro);
    close(d);
    close(p[0]);
    close(p[1]);
    close(path);
}

static void fsize_limit(void)
{
    struct rlimit r = {10000, RLIM_INFINITY};
    signal(SIGXFSZ, on_xfsz);
    setrlimit(RLIMIT_FSIZE, &r);
    int fd = open("big", O_RDWR | O_CREAT | O_TRUNC, 0644);
    static char buf[8192];
    res("write 8192", write(fd, buf, 8192));
    res("write 8192 more (cut at the limit)", write(fd, buf, 8192));
    printf("  SIGXFSZ %d\n", xfsz);
    res("write at the limit", write(fd, buf, 1));
    printf("  SIGXFSZ %d\n", xfsz);
    res("write nothing at the limit", write(fd, buf, 0));
    res("pwrite past the limit", pwrite(fd, buf, 10, 20000));
    res("pwrite before the limit", pwrite(fd, buf, 10, 100));
    printf("  SIGXFSZ %d\n", xfsz);
    res("ftruncate to the limit", ftruncate(fd, 10000));
    res("ftruncate past the limit", ftruncate(fd, 10001));
    printf("  SIGXFSZ %d\n", xfsz);
    res("truncate past the limit", truncate("big", 20000));
    res("ftruncate down", ftruncate(fd, 100));
    res("fallocate past the limit", fallocate(fd, 0, 0, 20000));
    res("fallocate KEEP_SIZE past the limit", fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 20000) < 0 ? -1 : 0);
    printf("  SIGXFSZ %d\n", xfsz);
    struct stat st;
    fstat(fd, &st);
    printf("  size %ld\n", (long)st.st_size);
    signal(SIGXFSZ, SIG_IGN);
    lseek(fd, 0, SEEK_END);
    res("write past the limit, SIGXFSZ ignored", pwrite(fd, buf, 1, 10000));
    close(fd);
    r.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_FSIZE, &r);
    res("truncate after the limit is lifted", truncate("big", 20000));
}

static void utimes_family(void)
{
    struct timeval tv[2] = {{1000, 0}, {2000, 999999}};
    struct timeval badtv[2] = {{1000, 1000000}, {2000, 0}};
    struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    struct utimbuf ub = {3000, 4000};
    struct stat st;
    int fd = open("file", O_RDONLY);
    int path = open("file", O_PATH);

    res("utimes NULL path", syscall(SYS_utimes, NULL, tv));
    res("utimes bad microseconds", syscall(SYS_utimes, "file", badtv));
    res("utimes", syscall(SYS_utimes, "file", tv));
    stat("file", &st);
    printf("  %ld.%09ld %ld.%09ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
           (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    res("futimesat dirfd, NULL path", syscall(SYS_futimesat, fd, NULL, tv));
    res("futimesat AT_FDCWD, NULL path", syscall(SYS_futimesat, AT_FDCWD, NULL, tv));
    res("utime", syscall(SYS_utime, "file", &ub));
    stat("file", &st);
    printf("  %ld.%09ld %ld.%09ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
           (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    res("utime NULL times", syscall(SYS_utime, "file", NULL));
    res("utime no such file", syscall(SYS_utime, "nonexistent", &ub));
    res("utimensat NULL path, AT_FDCWD", syscall(SYS_utimensat, AT_FDCWD, NULL, NULL, 0));
    res("utimensat NULL path, fd, flags", syscall(SYS_utimensat, fd, NULL, NULL, AT_SYMLINK_NOFOLLOW));
    res("utimensat NULL path, O_PATH fd", syscall(SYS_utimensat, path, NULL, NULL, 0));
    res("utimensat empty path, O_PATH fd", syscall(SYS_utimensat, path, "", NULL, AT_EMPTY_PATH));
    res("utimensat flag 0x1000", syscall(SYS_utimensat, AT_FDCWD, "file", NULL, 0x1000));
    res("utimensat both omitted, no such file", syscall(SYS_utimensat, AT_FDCWD, "nonexistent", omit, 0));
    res("utimensat bad nanoseconds", syscall(SYS_utimensat, AT_FDCWD, "file", bad, 0));
    res("utimensat bad nanoseconds, no such file", syscall(SYS_utimensat, AT_FDCWD, "nonexistent", bad, 0));
    close(fd);
    close(path);
}

static void names(void)
{
    char buf[64] = {0};
    int sl = open("link", O_PATH | O_NOFOLLOW);
    res("readlink empty path", readlink("", buf, sizeof buf));
    res("readlinkat dir fd, empty path", readlinkat(open(".", O_RDONLY), "", buf, sizeof buf));
    res("readlinkat symlink O_PATH fd, empty path", readlinkat(sl, "", buf, sizeof buf));
    printf("  %s\n", buf);
    res("readlink size 0", readlink("link", buf, 0));
    res("readlink of a file", readlink("file", buf, sizeof buf));
    close(sl);
    struct statx stx;
    res("statx mask with the reserved bit", statx(AT_FDCWD, "file", 0, 0x80000000u, &stx));
    res("statx both sync types", statx(AT_FDCWD, "file", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, 0, &stx));
    res("statx unknown mask bits", statx(AT_FDCWD, "file", 0, 0x40000000u, &stx));
    fdres("open O_CREAT directory", open("dir", O_RDONLY | O_CREAT, 0644));
    fdres("open O_CREAT symlink to a directory", open("dirlink", O_RDONLY | O_CREAT, 0644));
    fdres("open O_CREAT|O_EXCL directory", open("dir", O_RDONLY | O_CREAT | O_EXCL, 0644));
    fdres("open O_CREAT directory/", open("dir/", O_RDONLY | O_CREAT, 0644));
    res("fchownat flags 9999", fchownat(AT_FDCWD, "file", 0, 0, 9999));
    res("fchownat flags 9999, no such file", fchownat(AT_FDCWD, "nonexistent", 0, 0, 9999));
}

static void syncs(void)
{
    int p[2], s[2];
    pipe(p);
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    int fifo = open("fifo", O_RDWR);
    int null = open("/dev/null", O_RDONLY);
    int f = open("file", O_RDONLY);
    int d = open("dir", O_RDONLY);
    res("fsync pipe", fsync(p[0]));
    res("fdatasync pipe", fdatasync(p[1]));
    res("fsync socket", fsync(s[0]));
    res("fsync fifo", fsync(fifo));
    res("fsync /dev/null", fsync(null));
    res("fsync file", fsync(f));
    res("fdatasync directory", fdatasync(d));
    res("syncfs pipe", syncfs(p[0]));
    res("fsync bad fd", fsync(-1));
    int fds[] = {p[0], p[1], s[0], s[1], fifo, null, f, d};
    for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++)
        close(fds[i]);
}

static void as_nobody(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setresuid(65534, 65534, 65534);
        fdres("nobody: open O_NOATIME root's file", open("file", O_RDONLY | O_NOATIME));
        fdres("nobody: open root's file", open("file", O_RDONLY));
        fdres("nobody: open O_NOATIME own file", open("mine", O_RDONLY | O_NOATIME));
        res("nobody: utimes root's file, times given", syscall(SYS_utimes, "file",
            (struct timeval[]){{1, 0}, {2, 0}}));
        res("nobody: utimes root's file, now", syscall(SYS_utimes, "file", NULL));
        res("nobody: utimes writable file, now", syscall(SYS_utimes, "shared", NULL));
        res("nobody: truncate root's file", truncate("file", 0));
        res("nobody: truncate root's file, negative", truncate("file", -1));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

static void cwds(const char *top)
{
    char buf[4200];
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        mkdir("gone", 0755);
        chdir("gone");
        rmdir("../gone");
        res("getcwd of a removed directory", syscall(SYS_getcwd, buf, sizeof buf));
        chdir(top);
        chdir("dir");
        chroot("sub");
        long n = syscall(SYS_getcwd, buf, sizeof buf);
        res("getcwd outside the root", n > 0 ? 1 : n);
        printf("  starts with (unreachable): %s\n", strncmp(buf, "(unreachable)/", 14) ? "no" : "yes");
        printf("  realpath(\".\"): %s\n", realpath(".", NULL) ? "found" : en(errno));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

/* O_DIRECTORY is the walk's: ENOTDIR for a file with O_PATH too, and for a
 * symlink not followed (before O_NOFOLLOW's ELOOP) */
static void opened(const char *what, const char *path, int flags)
{
    int fd = open(path, flags);
    res(what, fd < 0 ? -1 : 0);
    if (fd >= 0)
        close(fd);
}

static void directories(void)
{
    opened("open file O_PATH|O_DIRECTORY", "file", O_PATH | O_DIRECTORY);
    opened("open file O_RDONLY|O_DIRECTORY", "file", O_RDONLY | O_DIRECTORY);
    opened("open dirlink O_NOFOLLOW", "dirlink", O_RDONLY | O_NOFOLLOW);
    opened("open dirlink O_NOFOLLOW|O_DIRECTORY", "dirlink", O_RDONLY | O_NOFOLLOW | O_DIRECTORY);
    opened("open dirlink O_PATH|O_NOFOLLOW|O_DIRECTORY", "dirlink", O_PATH | O_NOFOLLOW | O_DIRECTORY);
    opened("open dirlink O_PATH|O_NOFOLLOW", "dirlink", O_PATH | O_NOFOLLOW);
    opened("open dirlink O_PATH|O_DIRECTORY", "dirlink", O_PATH | O_DIRECTORY);
    opened("open fifo O_PATH|O_DIRECTORY", "fifo", O_PATH | O_DIRECTORY);
}

/* FICLONE and friends: no block sharing on ext4 or tmpfs, after Linux's checks */
static void clones(void)
{
    int src = open("file", O_RDONLY), dst = open("shared", O_RDWR), ro = open("shared", O_RDONLY);
    int dir = open("dir", O_RDONLY | O_DIRECTORY), app = open("shared", O_WRONLY | O_APPEND);
    int p[2];
    pipe(p);
    res("FICLONE", ioctl(dst, FICLONE, src));
    res("FICLONE from a directory", ioctl(dst, FICLONE, dir));
    res("FICLONE from a pipe", ioctl(dst, FICLONE, p[0]));
    res("FICLONE from a bad fd", ioctl(dst, FICLONE, 999));
    res("FICLONE into a read-only fd", ioctl(ro, FICLONE, src));
    res("FICLONE into an O_APPEND fd", ioctl(app, FICLONE, src));
    res("FICLONE into a directory", ioctl(dir, FICLONE, src));
    struct file_clone_range r = {src, 0, 4096, 0};
    res("FICLONERANGE", ioctl(dst, FICLONERANGE, &r));
    res("FICLONERANGE bad pointer", ioctl(dst, FICLONERANGE, (void *)8));
    char buf[4096 + 64];
    memset(buf, 0, sizeof buf);
    struct file_dedupe_range *d = (struct file_dedupe_range *)buf;
    d->src_length = 4096;
    d->dest_count = 1;
    res("FIDEDUPERANGE", ioctl(src, FIDEDUPERANGE, d));
    d->reserved1 = 1;
    res("FIDEDUPERANGE reserved1", ioctl(src, FIDEDUPERANGE, d));
    d->reserved1 = 0;
    d->dest_count = 200;
    res("FIDEDUPERANGE 200 infos", ioctl(src, FIDEDUPERANGE, d));
    d->dest_count = 1;
    res("FIDEDUPERANGE on a directory", ioctl(dir, FIDEDUPERANGE, d));
    close(src), close(dst), close(ro), close(dir), close(app), close(p[0]), close(p[1]);
}

int main(int argc, char **argv)
{
    char dir[4096], cmd[4200];
    snprintf(dir, sizeof dir, "%s/fileerr", argc > 1 ? argv[1] : ".");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    system(cmd);
    mkdir(dir, 0755);
    if (chdir(dir) < 0) {
        perror("chdir");
        return 1;
    }
    getcwd(dir, sizeof dir);
    close(open("file", O_RDWR | O_CREAT, 0644));
    close(open("mine", O_RDWR | O_CREAT, 0644));
    chown("mine", 65534, 65534);
    close(open("shared", O_RDWR | O_CREAT, 0666));
    chmod("shared", 0666);
    mkdir("dir", 0755);
    mkdir("dir/sub", 0755);
    mkfifo("fifo", 0644);
    symlink("file", "link");
    symlink("dir", "dirlink");
    truncates();
    fsize_limit();
    utimes_family();
    names();
    directories();
    clones();
    syncs();
    as_nobody();
    cwds(dir);
    chdir("/");
    system(cmd);
    printf("done\n");
    return 0;
}
