/* read, write and their vector and positioned forms: the order of the error
 * checks (a negative offset before the fd, ESPIPE for streams before the
 * open mode, the fd before the iovecs, an iovec length that is negative as
 * an ssize_t EINVAL before any bad buffer is EFAULT), directories (EISDIR
 * to pread and preadv), preadv2/pwritev2 (offset -1 is the file position,
 * RWF_ flags, RWF_APPEND) and what a bad buffer does.  Works in
 * ARGV1/rwvec. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "results.h"

#define BAD ((void *)-1)

static char buf[256];
/* counts and sizes the compiler must not see (it warns about them) */
static volatile int minus1 = -1, over = 1025;
static volatile size_t huge_n = SIZE_MAX;

static long preadv2_(int fd, const struct iovec *iov, int cnt, long off, int flags)
{
    return syscall(SYS_preadv2, fd, iov, cnt, off, 0, flags);
}

static long pwritev2_(int fd, const struct iovec *iov, int cnt, long off, int flags)
{
    return syscall(SYS_pwritev2, fd, iov, cnt, off, 0, flags);
}

static void iovec_errors(int fd, int rfd, int dir)
{
    struct iovec neg[3] = {{buf, (size_t)-1}, {buf, 8}, {BAD, 8}};
    struct iovec badfirst[3] = {{BAD, 8}, {buf, (size_t)-1}, {buf, 8}};
    struct iovec fault[2] = {{buf, 8}, {NULL, 8}};
    struct iovec huge[2] = {{buf, SSIZE_MAX}, {buf, SSIZE_MAX}};
    struct iovec one = {buf, 8};
    struct iovec *unmapped = (struct iovec *)BAD;

    res("readv negative len", readv(fd, neg, 3));
    res("readv bad buffer then negative len", readv(fd, badfirst, 3));
    res("writev negative len", writev(fd, neg, 3));
    res("readv NULL buffer", readv(fd, fault, 2));
    res("writev NULL buffer", writev(fd, fault, 2));
    res("writev lengths summing past SSIZE_MAX", writev(fd, huge, 2));
    res("readv count -1", readv(fd, &one, minus1));
    res("readv count 1025", readv(fd, &one, over));
    res("readv count 1024 unmapped array", readv(fd, unmapped, 1024));
    res("readv count 0", readv(fd, unmapped, 0));
    res("readv bad fd", readv(-1, neg, 3));
    res("readv write-only fd", readv(rfd, neg, 3));
    res("readv dir", readv(dir, &one, 1));
    res("readv dir negative len", readv(dir, neg, 1));
    res("preadv negative len", preadv(fd, neg, 1, 0));
    res("preadv count -1", preadv(fd, &one, minus1, 0));
    res("preadv offset -1", preadv(fd, &one, 1, -1));
    res("preadv offset -1 bad fd", preadv(-1, &one, 1, -1));
    res("preadv unmapped buffer", preadv(fd, (struct iovec[]){{BAD, 8}}, 1, 0));
    res("preadv dir", preadv(dir, &one, 1, 0));
    res("pwritev negative len", pwritev(fd, neg, 1, 0));
    res("pwritev offset -1", pwritev(fd, &one, 1, -1));
    res("pwritev dir (read-only)", pwritev(dir, &one, 1, 0));
}

static void positioned(int fd, int ro, int dir, int pfd[2])
{
    struct iovec one = {buf, 8};
    res("pread dir", pread(dir, buf, 8, 0));
    res("pread dir bad buffer", pread(dir, BAD, 8, 0));
    res("pread dir offset -1", pread(dir, buf, 8, -1));
    res("pread pipe", pread(pfd[0], buf, 8, 0));
    res("pread pipe offset -1", pread(pfd[0], buf, 8, -1));
    res("pread pipe write end", pread(pfd[1], buf, 8, 0));
    res("pwrite pipe read end", pwrite(pfd[0], buf, 8, 0));
    res("preadv pipe", preadv(pfd[0], &one, 1, 0));
    res("preadv pipe negative len", preadv(pfd[0], (struct iovec[]){{buf, (size_t)-1}}, 1, 0));
    res("pwritev pipe read end", pwritev(pfd[0], &one, 1, 0));
    res("pread bad fd offset -1", pread(-1, buf, 8, -1));
    res("pread write-only", pread(ro, buf, 8, 0));
    res("pread huge count", pread(fd, buf, huge_n, 0));
    res("read huge count", read(fd, buf, huge_n));
    res("write huge count", write(fd, buf, huge_n));
    res("read dir", read(dir, buf, 8));
    res("read dir bad buffer", read(dir, BAD, 8));
    res("pread offset past the end", pread(fd, buf, 8, LLONG_MAX - 4));
    res("pwrite offset at the max", pwrite(fd, buf, 8, LLONG_MAX));
}

static void v2(int fd, int pfd[2])
{
    struct iovec one = {buf, 4};
    struct iovec w = {"WXYZ", 4};
    res("preadv2 flags -1", preadv2_(fd, &one, 1, 1, -1));
    res("preadv2 flag 1<<30", preadv2_(fd, &one, 1, 0, 1 << 30));
    res("preadv2 negative len flags -1", preadv2_(fd, (struct iovec[]){{buf, (size_t)-1}}, 1, 0, -1));
    res("preadv2 offset -2", preadv2_(fd, &one, 1, -2, 0));
    lseek(fd, 2, SEEK_SET);
    memset(buf, 0, sizeof buf);
    res("preadv2 offset -1 (position 2)", preadv2_(fd, &one, 1, -1, 0));
    printf("  got %.4s, position now %ld\n", buf, (long)lseek(fd, 0, SEEK_CUR));
    memset(buf, 0, sizeof buf);
    res("preadv2 offset 0 HIPRI", preadv2_(fd, &one, 1, 0, 1));
    printf("  got %.4s, position still %ld\n", buf, (long)lseek(fd, 0, SEEK_CUR));
    res("pwritev2 APPEND at offset 0", pwritev2_(fd, &w, 1, 0, 0x10));
    printf("  size %ld, position %ld\n", (long)lseek(fd, 0, SEEK_END), (long)lseek(fd, 6, SEEK_SET));
    res("pwritev2 offset -1 APPEND", pwritev2_(fd, &w, 1, -1, 0x10));
    printf("  size %ld, position %ld\n", (long)lseek(fd, 0, SEEK_END), (long)lseek(fd, 0, SEEK_CUR));
    res("pwritev2 DSYNC", pwritev2_(fd, &w, 1, 0, 2));
    res("pwritev2 SYNC", pwritev2_(fd, &w, 1, 0, 4));
    res("preadv2 pipe offset -1 NOWAIT (empty)", preadv2_(pfd[0], &one, 1, -1, 8));
    res("preadv2 pipe offset 0", preadv2_(pfd[0], &one, 1, 0, 0));
    res("pwritev2 pipe offset -1", pwritev2_(pfd[1], &w, 1, -1, 0));
    res("preadv2 pipe offset -1 NOWAIT", preadv2_(pfd[0], &one, 1, -1, 8));
    printf("  got %.4s\n", buf);
    res("preadv2 pipe offset -1 HIPRI (empty, nonblocking)", preadv2_(pfd[0], &one, 1, -1, 1));
}

int main(int argc, char **argv)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/rwvec", argc > 1 ? argv[1] : ".");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    system(cmd);
    mkdir(dir, 0755);
    if (chdir(dir) < 0) {
        perror("chdir");
        return 1;
    }
    int fd = open("file", O_RDWR | O_CREAT, 0644);
    write(fd, "abcdefgh", 8);
    lseek(fd, 0, SEEK_SET);
    int wo = open("file", O_WRONLY);
    int d = open(".", O_RDONLY);
    int pfd[2];
    pipe(pfd);
    iovec_errors(fd, wo, d);
    positioned(fd, wo, d, pfd);
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    v2(fd, pfd);
    close(fd);
    close(wo);
    close(d);
    chdir("/");
    system(cmd);
    printf("done\n");
    return 0;
}
