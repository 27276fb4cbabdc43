/* dup/dup2/dup3/fcntl: fd allocation, fd flags vs file status flags,
 * shared offsets, O_APPEND, EBADF/EINVAL.  Fd numbers are printed relative
 * to the first fd this program gets ("base"), so inherited fds don't matter. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results.h"

static void flags(const char *what, int fd)
{
    int fdf = fcntl(fd, F_GETFD), fl = fcntl(fd, F_GETFL);
    if (fdf < 0 || fl < 0) {
        printf("%s: -1 %s\n", what, en(errno));
        return;
    }
    printf("%s: cloexec=%d acc=%d append=%d nonblock=%d\n", what,
           !!(fdf & FD_CLOEXEC), fl & O_ACCMODE, !!(fl & O_APPEND),
           !!(fl & O_NONBLOCK));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argc > 1 ? argv[1] : ".";
    char path[4096];
    snprintf(path, sizeof path, "%s/dupfcntl.tmp", dir);
    unlink(path);

    int a = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (a < 0) {
        printf("open %s: %s\n", path, en(errno));
        return 1;
    }
    base = a;
    fdres("open", a);
    int b = dup(a);
    fdres("dup(a)", b);
    flags("a", a);
    flags("b", b);

    /* shared offset between dup'ed fds */
    res("write(a, 'hello')", write(a, "hello", 5));
    res("lseek(b, 0, SEEK_CUR)", lseek(b, 0, SEEK_CUR));
    res("lseek(b, 1, SEEK_SET)", lseek(b, 1, SEEK_SET));
    res("lseek(a, 0, SEEK_CUR)", lseek(a, 0, SEEK_CUR));
    char buf[64] = {0};
    res("read(a, 3)", read(a, buf, 3));
    printf("read data: %s\n", buf);
    res("lseek(b, 0, SEEK_CUR)", lseek(b, 0, SEEK_CUR));

    /* independent open has its own offset */
    int c = open(path, O_RDONLY);
    fdres("open again", c);
    res("lseek(c, 0, SEEK_CUR)", lseek(c, 0, SEEK_CUR));
    memset(buf, 0, sizeof buf);
    res("read(c, 10)", read(c, buf, 10));
    printf("read data: %s\n", buf);

    /* dup2 / dup3 */
    fdres("dup2(a, a)", dup2(a, a));
    fdres("dup2(a, base+20)", dup2(a, base + 20));
    flags("base+20", base + 20);
    fdres("dup2(c, base+20) replaces", dup2(c, base + 20));
    flags("base+20", base + 20);
    fdres("dup3(a, a, 0)", dup3(a, a, 0));
    fdres("dup3(a, base+21, O_CLOEXEC)", dup3(a, base + 21, O_CLOEXEC));
    flags("base+21", base + 21);
    fdres("dup3(a, base+22, bad flags)", dup3(a, base + 22, 0x4));
    fdres("dup2(a, -1)", dup2(a, -1));
    fdres("dup2(9999, base+23)", dup2(9999, base + 23));
    fdres("dup2(closed, closed)", dup2(base + 24, base + 24));

    /* F_DUPFD / F_DUPFD_CLOEXEC */
    fdres("F_DUPFD min base+30", fcntl(a, F_DUPFD, base + 30));
    fdres("F_DUPFD min base+30 again", fcntl(a, F_DUPFD, base + 30));
    fdres("F_DUPFD_CLOEXEC min base+30", fcntl(a, F_DUPFD_CLOEXEC, base + 30));
    flags("base+32", base + 32);
    flags("base+31", base + 31);
    res("F_DUPFD min -1", fcntl(a, F_DUPFD, -1));

    /* fd flags are per descriptor */
    res("F_SETFD(b, FD_CLOEXEC)", fcntl(b, F_SETFD, FD_CLOEXEC));
    flags("a", a);
    flags("b", b);
    res("F_SETFD(b, 0)", fcntl(b, F_SETFD, 0));
    flags("b", b);

    /* status flags are per open file description */
    res("F_SETFL(a, O_APPEND|O_NONBLOCK)", fcntl(a, F_SETFL, O_APPEND | O_NONBLOCK));
    flags("a", a);
    flags("b (dup of a)", b);
    flags("c (separate open)", c);
    res("F_SETFL(b, 0)", fcntl(b, F_SETFL, 0));
    flags("a", a);
    res("F_SETFL(a, O_RDONLY|O_APPEND) keeps access mode", fcntl(a, F_SETFL, O_RDONLY | O_APPEND));
    flags("a", a);

    /* O_APPEND writes go to the end regardless of offset */
    res("lseek(a, 0, SEEK_SET)", lseek(a, 0, SEEK_SET));
    res("write(a, 'XY') with O_APPEND", write(a, "XY", 2));
    res("offset after append", lseek(a, 0, SEEK_CUR));
    fcntl(a, F_SETFL, 0);
    res("pwrite(a, 'Z', 0)", pwrite(a, "Z", 1, 0));
    memset(buf, 0, sizeof buf);
    res("pread(c, 0)", pread(c, buf, sizeof buf - 1, 0));
    printf("file: %s\n", buf);
    int d = open(path, O_WRONLY | O_APPEND);
    fdres("open O_APPEND", d);
    flags("d", d);
    res("write(d, '!')", write(d, "!", 1));
    res("lseek(d, 0, SEEK_CUR)", lseek(d, 0, SEEK_CUR));
    memset(buf, 0, sizeof buf);
    res("pread(c, 0)", pread(c, buf, sizeof buf - 1, 0));
    printf("file: %s\n", buf);

    /* lowest free fd is reused */
    res("close(b)", close(b));
    fdres("dup(a) reuses b's number", dup(a));
    res("close(base+20)", close(base + 20));
    res("close(c)", close(c));
    fdres("open gets lowest free", open(path, O_RDONLY));
    fdres("next open", open(path, O_RDONLY));

    /* EBADF */
    res("close(-1)", close(-1));
    res("close(9999)", close(9999));
    res("close(base+20) twice", close(base + 20));
    fdres("dup(9999)", dup(9999));
    res("fcntl(9999, F_GETFD)", fcntl(9999, F_GETFD));
    res("read(9999)", read(9999, buf, 1));
    res("write to O_RDONLY fd", write(base + 2, "x", 1));
    res("read from O_WRONLY fd", read(d, buf, 1));
    res("lseek(9999)", lseek(9999, 0, SEEK_SET));
    res("fcntl(a, bad cmd)", fcntl(a, 12345));
    res("lseek bad whence", lseek(a, 0, 77));
    res("lseek negative", lseek(a, -100, SEEK_SET));

    /* an O_PATH fd marks a place: operations on the file itself are EBADF
     * (fdget), those on the place work (fdget_raw) */
    int op = open(path, O_PATH);
    int dp = open(dir, O_PATH | O_DIRECTORY);
    struct stat st;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    int n;
    res("O_PATH read", read(op, buf, 1));
    res("O_PATH ioctl FIONREAD", ioctl(op, FIONREAD, &n));
    res("O_PATH fchmod", fchmod(op, 0600));
    res("O_PATH fsync", fsync(op));
    res("O_PATH accept", accept(op, NULL, NULL));
    res("O_PATH epoll_ctl", epoll_ctl(ep, EPOLL_CTL_ADD, op, &ev));
    res("O_PATH mmap", mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, op, 0) == MAP_FAILED ? -1 : 0);
    res("O_PATH flock", flock(op, LOCK_SH));
    res("O_PATH fstat", fstat(op, &st));
    res("O_PATH fstatat empty", fstatat(op, "", &st, AT_EMPTY_PATH));
    printf("O_PATH F_GETFL has O_PATH: %d\n", !!(fcntl(op, F_GETFL) & O_PATH));
    res("O_PATH F_SETFL", fcntl(op, F_SETFL, O_NONBLOCK));
    res("O_PATH F_GETFD", fcntl(op, F_GETFD));
    res("O_PATH F_SETLK", fcntl(op, F_GETLK, &(struct flock){.l_type = F_RDLCK}));
    fdres("O_PATH dup", n = dup(op));
    res("close(dup)", close(n));
    res("O_PATH dir openat", close(openat(dp, "dupfcntl.tmp", O_RDONLY)) == 0 ? 0 : -1);
    res("close(op)", close(op));
    res("close(dp)", close(dp));
    res("close(ep)", close(ep));

    unlink(path);
    printf("done\n");
    return 0;
}
