/* Sparse files on tmpfs: st_blocks counts only the pages there are (in
 * 512-byte units), lseek SEEK_DATA/SEEK_HOLE finds them, truncation and
 * fallocate (allocate, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE) change
 * them.  Runs in /dev/shm where it is a tmpfs (natively), else in the
 * scratch dir when that is one (the guest's root). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include "results.h"

#define K 1024L
#define M (1024L * 1024)

static int fd;

static void st(const char *what)
{
    struct stat s;
    fstat(fd, &s);
    printf("%-28s size %lld blocks %lld blksize %ld\n", what, (long long)s.st_size, (long long)s.st_blocks,
           (long)s.st_blksize);
}

static void seek(const char *what, off_t off, int whence)
{
    off_t r = lseek(fd, off, whence);
    if (r < 0)
        printf("  %s %s %lld: -1 %s\n", whence == SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE", what,
               (long long)off, en(errno));
    else
        printf("  %s %s %lld: %lld\n", whence == SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE", what,
               (long long)off, (long long)r);
}

static void map(void)
{
    struct stat s;
    fstat(fd, &s);
    printf("  extents:");
    off_t pos = 0;
    while (pos < s.st_size) {
        off_t d = lseek(fd, pos, SEEK_DATA);
        if (d < 0)
            break;
        off_t h = lseek(fd, d, SEEK_HOLE);
        printf(" [%lld,%lld)", (long long)d, (long long)h);
        pos = h;
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct statfs sf;
    char dir[512], path[600];
    if (statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC && access("/dev/shm", W_OK) == 0)
        snprintf(dir, sizeof dir, "/dev/shm");
    else
        snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
    if (statfs(dir, &sf) != 0 || sf.f_type != TMPFS_MAGIC) {
        printf("no tmpfs\ndone\n");
        return 0;
    }
    snprintf(path, sizeof path, "%s/t_sparse.%d", dir, getpid());
    fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    unlink(path);
    st("new");
    pwrite(fd, "x", 1, 0);
    st("1 byte at 0");
    pwrite(fd, "y", 1, M);
    st("1 byte at 1M");
    seek("from", 0, SEEK_DATA);
    seek("from", 0, SEEK_HOLE);
    seek("from", 4 * K, SEEK_DATA);
    seek("from", 5 * K, SEEK_HOLE);
    seek("from", M, SEEK_HOLE);
    seek("from", M + 1, SEEK_DATA);
    seek("from", M + 1, SEEK_HOLE);
    seek("from", -1, SEEK_DATA);
    map();
    pwrite(fd, "z", 1, 512 * K + 100);
    st("1 byte at 512K+100");
    map();
    ftruncate(fd, 4 * M);
    st("truncated up to 4M");
    seek("from", M + 4 * K, SEEK_DATA);
    seek("from", 3 * M, SEEK_HOLE);
    map();
    ftruncate(fd, 2 * K);
    st("truncated down to 2K");
    map();
    res("fallocate 0..64K", fallocate(fd, 0, 0, 64 * K));
    st("after");
    res("fallocate keep_size 64K..128K", fallocate(fd, FALLOC_FL_KEEP_SIZE, 64 * K, 64 * K));
    st("after");
    map();
    res("punch 8K..32K", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8 * K, 24 * K));
    st("after");
    map();
    res("punch without keep_size", fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4 * K));
    res("zero range", fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 4 * K));
    res("collapse", fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4 * K));
    res("mode 0x100", fallocate(fd, 0x100, 0, 4 * K));
    res("len 0", fallocate(fd, 0, 0, 0));
    res("offset -1", fallocate(fd, 0, -1, 1));
    res("past the maximum", fallocate(fd, 0, 0x7fffffffffffffffL, 2));
    char buf[4] = "abc";
    pwrite(fd, buf, 3, 16 * K);
    char back[4] = {0};
    pread(fd, back, 3, 16 * K);
    printf("written into the hole: %s\n", back);
    pread(fd, back, 3, 8 * K);
    printf("the hole reads zeroes: %d %d %d\n", back[0], back[1], back[2]);
    st("after");
    map();
    int ro = open("/dev/null", O_RDONLY);
    res("fallocate on a read-only fd", fallocate(ro, 0, 0, 1));
    close(ro);
    int p[2];
    pipe(p);
    res("fallocate on a pipe", fallocate(p[1], 0, 0, 1));
    res("SEEK_DATA on a pipe", lseek(p[0], 0, SEEK_DATA));
    close(fd);
    printf("done\n");
    return 0;
}
