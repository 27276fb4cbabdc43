/* splice, tee and vmsplice: the order of their checks (flags, fds, ESPIPE
 * for a pipe given an offset before the open modes, O_APPEND, negative
 * offsets), which files may take part (a directory, an eventfd, an epoll
 * fd, /dev/null and /dev/zero), that a splice from an empty pipe into a
 * file that cannot take it fails at once instead of waiting, and vmsplice
 * both ways: into a pipe until it is full (then EAGAIN with
 * SPLICE_F_NONBLOCK), out of a pipe into memory, and its errors.  A splice
 * or sendfile into a full non-blocking socket is EAGAIN and takes nothing
 * from its source (Go's io.Copy between two TCP connections waits for
 * room and splices the same bytes again).  Works in ARGV1/splice. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "results.h"

#define BAD ((void *)-1)

static void splice_errors(void)
{
    int p[2], q[2];
    pipe(p);
    pipe(q);
    write(p[1], "0123456789", 10);
    int rd = open("file", O_RDONLY);
    int wr = open("out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int app = open("app", O_RDWR | O_CREAT | O_APPEND, 0644);
    int dir = open(".", O_RDONLY);
    int path = open("file", O_PATH);
    int efd = eventfd(0, 0);
    int ep = epoll_create1(0);
    int null = open("/dev/null", O_RDWR);
    int zero = open("/dev/zero", O_RDONLY);
    int us = socket(AF_UNIX, SOCK_STREAM, 0);
    loff_t off = 0, neg = -1;

    res("len 0 with bad fds", splice(-1, NULL, -1, NULL, 0, 0));
    res("flags 0x10", splice(p[0], NULL, wr, NULL, 4, 0x10));
    res("bad in fd", splice(-1, NULL, p[1], NULL, 4, 0));
    res("bad out fd", splice(p[0], NULL, -1, NULL, 4, 0));
    res("O_PATH in", splice(path, NULL, p[1], NULL, 4, 0));
    res("write-only in", splice(wr, NULL, p[1], NULL, 4, 0));
    res("read-only out", splice(p[0], NULL, rd, NULL, 4, 0));
    res("pipe in with offset, write-only in", splice(p[1], &off, wr, NULL, 4, 0));
    res("pipe out with offset, read-only out", splice(rd, NULL, p[0], &off, 4, 0));
    res("pipe in with bad offset pointer", splice(p[0], BAD, wr, NULL, 4, 0));
    res("file in with bad offset pointer", splice(rd, BAD, p[1], NULL, 4, 0));
    res("to an O_APPEND file", splice(p[0], NULL, app, NULL, 4, 0));
    res("to a file at offset -1", splice(p[0], NULL, wr, &neg, 4, 0));
    res("from a file at offset -1", splice(rd, &neg, p[1], NULL, 4, 0));
    res("file to file", splice(rd, NULL, wr, NULL, 4, 0));
    res("pipe to itself", splice(p[0], NULL, p[1], NULL, 4, 0));
    res("directory to pipe", splice(dir, NULL, p[1], NULL, 4, 0));
    res("eventfd to pipe", splice(efd, NULL, p[1], NULL, 4, 0));
    res("pipe to eventfd", splice(p[0], NULL, efd, NULL, 4, 0));
    res("pipe to epoll", splice(p[0], NULL, ep, NULL, 4, 0));
    res("unconnected unix socket to pipe", splice(us, NULL, p[1], NULL, 4, 0));
    res("unconnected unix socket read", read(us, &off, 1));
    res("pipe to /dev/null", splice(p[0], NULL, null, NULL, 2, 0));
    res("/dev/null to pipe", splice(null, NULL, p[1], NULL, 2, 0));
    res("/dev/zero to pipe", splice(zero, NULL, q[1], NULL, 3, 0));
    res("pipe to pipe", splice(p[0], NULL, q[1], NULL, 3, 0));
    char b[16] = {0};
    res("read what came through", read(q[0], b, sizeof b));
    printf("  %02x %02x %02x %.3s\n", b[0], b[1], b[2], b + 3);
    res("file to pipe at offset 2", splice(rd, &off, p[1], NULL, 0, 0));
    off = 2;
    res("file to pipe at offset 2", splice(rd, &off, p[1], NULL, 3, 0));
    printf("  offset now %lld, position %ld\n", (long long)off, (long)lseek(rd, 0, SEEK_CUR));
    off = 1;
    res("pipe to file at offset 1", splice(p[0], NULL, wr, &off, 100, 0));
    printf("  offset now %lld, position %ld\n", (long long)off, (long)lseek(wr, 0, SEEK_CUR));
    memset(b, 0, sizeof b);
    pread(open("out", O_RDONLY), b, sizeof b, 0);
    printf("  out: \\%o%s\n", b[0], b + 1);

    /* an empty pipe with a writer: EAGAIN when asked not to wait */
    res("empty pipe to file, SPLICE_F_NONBLOCK", splice(p[0], NULL, wr, NULL, 4, SPLICE_F_NONBLOCK));
    res("tee empty, SPLICE_F_NONBLOCK", tee(p[0], q[1], 4, SPLICE_F_NONBLOCK));
    res("tee flags 0x10", tee(p[0], q[1], 4, 0x10));
    res("tee same pipe", tee(p[0], p[1], 4, 0));
    res("tee write end in", tee(p[1], q[1], 4, 0));
    res("tee file in", tee(rd, q[1], 4, 0));
    res("tee len 0", tee(-1, -1, 0, 0));
    write(p[1], "tee!", 4);
    res("tee", tee(p[0], q[1], 100, 0));
    memset(b, 0, sizeof b);
    res("  read the copy", read(q[0], b, sizeof b));
    res("  the original stays", read(p[0], b + 8, sizeof b - 8));
    printf("  %s %s\n", b, b + 8);
    close(p[1]);
    res("empty pipe, no writer, to file", splice(p[0], NULL, wr, NULL, 4, 0));
    res("tee: empty pipe, no writer", tee(p[0], q[1], 4, 0));
    close(q[0]);
    signal(SIGPIPE, SIG_IGN);
    res("file to pipe without a reader", splice(rd, NULL, q[1], NULL, 4, 0));
    res("vmsplice to pipe without a reader",
        vmsplice(q[1], &(struct iovec){"x", 1}, 1, 0));
    int fds[] = {p[0], q[1], rd, wr, app, dir, path, efd, ep, null, zero, us};
    for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++)
        close(fds[i]);
}

static void vmsplice_tests(void)
{
    int p[2];
    pipe(p);
    long cap = fcntl(p[1], F_GETPIPE_SZ);
    char *big = aligned_alloc(4096, cap);
    for (long i = 0; i < cap; i++)
        big[i] = i & 0xff;
    struct iovec all = {big, cap};
    struct iovec *many = calloc(1025, sizeof *many);
    for (int i = 0; i < 1025; i++)
        many[i] = (struct iovec){big, 1};
    int wr = open("out", O_WRONLY);

    res("bad fd", vmsplice(-1, &all, 1, 0));
    res("flags 0x10", vmsplice(p[1], &all, 1, 0x10));
    res("regular file", vmsplice(wr, &all, 1, 0));
    res("regular file, 1025 iovecs", vmsplice(wr, many, 1025, 0));
    res("1025 iovecs", vmsplice(p[1], many, 1025, 0));
    res("negative iovec length", vmsplice(p[1], &(struct iovec){big, (size_t)-1}, 1, 0));
    res("nothing to give", vmsplice(p[1], &(struct iovec){BAD, 0}, 1, 0));
    res("bad buffer", vmsplice(p[1], &(struct iovec){NULL, 8}, 1, 0));
    res("fill the pipe", vmsplice(p[1], &all, 1, SPLICE_F_GIFT));
    res("full pipe, SPLICE_F_NONBLOCK", vmsplice(p[1], &all, 1, SPLICE_F_NONBLOCK));
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    res("full pipe, O_NONBLOCK end, SPLICE_F_NONBLOCK", vmsplice(p[1], &all, 1, SPLICE_F_NONBLOCK));
    char *back = aligned_alloc(4096, cap);
    memset(back, 0, cap);
    struct iovec two[2] = {{back, 100}, {back + 100, cap - 100}};
    res("out of the pipe", vmsplice(p[0], two, 2, 0));
    printf("  same bytes: %s\n", memcmp(big, back, cap) ? "no" : "yes");
    res("empty pipe, SPLICE_F_NONBLOCK", vmsplice(p[0], two, 2, SPLICE_F_NONBLOCK));
    write(p[1], "abcdef", 6);
    memset(back, 0, 16);
    res("to a bad buffer after a good one",
        vmsplice(p[0], (struct iovec[]){{back, 2}, {BAD, 2}}, 2, 0));
    res("to a bad buffer", vmsplice(p[0], &(struct iovec){BAD, 2}, 1, 0));
    char *gone = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone + 4096, 4096);
    res("across the end of the mapping", vmsplice(p[0], &(struct iovec){gone + 4094, 4}, 1, 0));
    printf("  stored before the fault: %.2s\n", gone + 4094);
    res("vmsplice into the pipe across the end of the mapping",
        vmsplice(p[1], &(struct iovec){gone + 4094, 4}, 1, 0));
    res("the rest", read(p[0], back + 2, 16));
    printf("  %.8s\n", back + 2);
    munmap(gone, 4096);
    close(p[1]);
    res("empty pipe, no writer", vmsplice(p[0], two, 2, 0));
    close(p[0]);
    close(wr);
    free(big);
    free(back);
    free(many);
}

static void into_a_full_socket(void)
{
    int sv[2], p[2], avail = -1;
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    pipe(p);
    char chunk[4096], msg[100], back[100];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < (int)sizeof msg; i++)
        msg[i] = 'a' + i % 26;
    long filled = 0, w;
    while ((w = write(sv[0], chunk, sizeof chunk)) > 0)
        filled += w;
    res("fill the socket", w);
    write(p[1], msg, sizeof msg);
    res("splice a pipe into the full socket", splice(p[0], NULL, sv[0], NULL, sizeof msg, SPLICE_F_NONBLOCK));
    ioctl(p[0], FIONREAD, &avail);
    printf("the pipe still holds %d\n", avail);
    int fd = open("file", O_RDONLY);
    res("sendfile into the full socket", sendfile(sv[0], fd, NULL, 10));
    printf("file position after it %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    off_t off = 3;
    res("sendfile at an offset into the full socket", sendfile(sv[0], fd, &off, 10));
    printf("offset after it %ld\n", (long)off);
    /* a pipe has no splice_read: sendfile from one is EINVAL, full or
       empty (Go's io.Copy from a pipe into TCP tries it first) */
    res("sendfile from a pipe with data", sendfile(sv[0], p[0], NULL, 10));
    int e[2];
    pipe2(e, O_NONBLOCK);
    res("sendfile from an empty non-blocking pipe", sendfile(sv[0], e[0], NULL, 10));
    int efd = eventfd(0, 0);
    res("sendfile from an eventfd", sendfile(sv[0], efd, NULL, 8));
    res("sendfile from a file into an eventfd", sendfile(efd, fd, NULL, 8));
    close(efd);
    close(e[0]);
    close(e[1]);
    long drained = 0, r;
    while ((r = read(sv[1], chunk, sizeof chunk)) > 0)
        drained += r;
    printf("drained all that was written: %d\n", drained == filled);
    res("splice again", splice(p[0], NULL, sv[0], NULL, sizeof msg, SPLICE_F_NONBLOCK));
    res("read it", read(sv[1], back, sizeof back));
    printf("the same bytes: %d\n", memcmp(back, msg, sizeof msg) == 0);
    close(fd);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

int main(int argc, char **argv)
{
    char dir[4096], cmd[4200];
    snprintf(dir, sizeof dir, "%s/splice", argc > 1 ? argv[1] : ".");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    system(cmd);
    mkdir(dir, 0755);
    if (chdir(dir) < 0) {
        perror("chdir");
        return 1;
    }
    int fd = open("file", O_RDWR | O_CREAT, 0644);
    write(fd, "abcdefghijklmnopqrstuvwxyz", 26);
    close(fd);
    splice_errors();
    vmsplice_tests();
    into_a_full_socket();
    chdir("/");
    system(cmd);
    printf("done\n");
    return 0;
}
