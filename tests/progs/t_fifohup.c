/* A fifo opened for reading with O_NONBLOCK before any writer does not
 * hang up (poll, select, epoll) until a writer has come and gone (Linux's
 * f_version against w_counter: Ruby's load of a fifo waits on it); and the
 * generic ioctls of do_vfs_ioctl: FIONREAD on a regular file (what is left
 * from the offset), FIOQSIZE, FIGETBSZ. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FIOQSIZE
#define FIOQSIZE 0x5460
#endif

static void show(const char *what, int fd)
{
    struct pollfd p = {fd, POLLIN};
    poll(&p, 1, 0);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(fd, &r);
    struct timeval tv = {0, 0};
    int sel = select(fd + 1, &r, NULL, NULL, &tv);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    int n = epoll_wait(ep, &out, 1, 0);
    printf("%s: poll %#x, select %d, epoll %d %#x\n", what, p.revents, sel, n, n > 0 ? out.events : 0);
    close(ep);
}

static void said(const char *what, int r)
{
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[512];
    snprintf(path, sizeof path, "%s/t_fifohup.fifo", dir);
    unlink(path);
    if (mkfifo(path, 0600) < 0) {
        perror("mkfifo");
        return 1;
    }
    int r = open(path, O_RDONLY | O_NONBLOCK);
    show("reader, no writer yet", r);
    char c;
    printf("read: %zd\n", read(r, &c, 1));
    int w = open(path, O_WRONLY | O_NONBLOCK);
    show("with a writer", r);
    write(w, "x", 1);
    show("with a writer and a byte", r);
    close(w);
    show("writer gone, a byte left", r);
    read(r, &c, 1);
    show("writer gone, empty", r);
    int r2 = open(path, O_RDONLY | O_NONBLOCK);
    show("a second reader opened after", r2);
    int rw = open(path, O_RDWR | O_NONBLOCK);
    show("first reader beside an O_RDWR open", r);
    show("the O_RDWR open", rw);
    close(rw);
    show("second reader after the O_RDWR open closed", r2);
    close(r);
    close(r2);

    int fl = -1;
    said("FIONREAD on a fifo with no data", ioctl(open(path, O_RDONLY | O_NONBLOCK), FIONREAD, &fl));
    printf("  %d\n", fl);
    long long q = -1;
    said("FIOQSIZE on a fifo", ioctl(open(path, O_RDONLY | O_NONBLOCK), FIOQSIZE, &q));
    unlink(path);

    snprintf(path, sizeof path, "%s/t_fifohup.file", dir);
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    char buf[100];
    memset(buf, 'a', sizeof buf);
    write(f, buf, sizeof buf);
    int n = -1;
    said("FIONREAD at the end", ioctl(f, FIONREAD, &n));
    printf("  %d\n", n);
    lseek(f, 30, SEEK_SET);
    ioctl(f, FIONREAD, &n);
    printf("FIONREAD at 30: %d\n", n);
    lseek(f, 250, SEEK_SET);
    ioctl(f, FIONREAD, &n);
    printf("FIONREAD at 250: %d\n", n);
    fsync(f);
    struct stat st;
    fstat(f, &st);
    said("FIOQSIZE", ioctl(f, FIOQSIZE, &q));
    printf("  is st_blocks * 512: %d\n", q == (long long)st.st_blocks * 512);
    int bsz = -1;
    said("FIGETBSZ", ioctl(f, FIGETBSZ, &bsz));
    printf("  is st_blksize: %d\n", bsz == st.st_blksize);
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    said("FIONREAD on a directory", ioctl(d, FIONREAD, &n));
    said("FIOQSIZE on a directory", ioctl(d, FIOQSIZE, &q));
    int p[2];
    pipe(p);
    said("FIGETBSZ on a pipe", ioctl(p[0], FIGETBSZ, &bsz));
    printf("  %d\n", bsz);
    said("FIOQSIZE on a pipe", ioctl(p[0], FIOQSIZE, &q));
    unlink(path);
    printf("done\n");
    return 0;
}
