/* t_odirect DIR [DEV]: O_DIRECT as Linux's ext4 (DIR on it) and block
 * devices (DEV, read-only) take it.  Which files open O_DIRECT (a regular
 * file; not the directory, /dev/null, a proc file or a FIFO), F_SETFL's O_DIRECT
 * (a pipe's packet mode is allowed), and the transfers: the position and
 * each buffer's address and length multiples of the disk's logical block
 * size (512), else EINVAL; nothing to move, and a read from the end of the
 * file on, are not checked.  One line per case, then "done". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static void said(const char *what, long r)
{
    if (r < 0)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

static void opened(const char *what, const char *path, int flags)
{
    int fd = open(path, flags | O_DIRECT);
    said(what, fd < 0 ? fd : 0);
    if (fd >= 0)
        close(fd);
}

static void setfl(const char *what, int fd)
{
    long r = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_DIRECT);
    if (r == 0)
        r = !!(fcntl(fd, F_GETFL) & O_DIRECT);
    said(what, r);
}

int main(int argc, char **argv)
{
    char path[4096];
    char *buf = aligned_alloc(4096, 3 * 4096);
    memset(buf, 'x', 3 * 4096);
    snprintf(path, sizeof path, "%s/odirect", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
    said("open file", fd < 0 ? fd : 0);
    opened("open directory", argv[1], O_RDONLY);
    opened("open /dev/null", "/dev/null", O_RDONLY);
    opened("open proc file", "/proc/self/status", O_RDONLY);
    char fifo[4200];
    snprintf(fifo, sizeof fifo, "%s/fifo", argv[1]);
    mkfifo(fifo, 0600);
    opened("open fifo", fifo, O_RDWR);
    unlink(fifo);

    said("write 8192", write(fd, buf, 8192));
    said("write 1", write(fd, buf, 1));
    said("write 4096 from buf+1", write(fd, buf + 1, 4096));
    said("write 0 from buf+1", write(fd, buf + 1, 0));
    said("pwrite 4096 at 100", pwrite(fd, buf, 4096, 100));
    said("pwrite 512 at 512", pwrite(fd, buf, 512, 512));
    said("lseek 0", lseek(fd, 0, SEEK_SET));
    said("read 4096", read(fd, buf, 4096));
    said("read 1", read(fd, buf, 1));
    said("read 4096 into buf+8", read(fd, buf + 8, 4096));
    said("pread 4096 at 4096", pread(fd, buf, 4096, 4096));
    said("pread 4096 at 4095", pread(fd, buf, 4096, 4095));
    said("pread 1 at the end", pread(fd, buf, 1, 8192));
    said("pread 7 past the end", pread(fd, buf, 7, 100000));
    struct iovec good[2] = {{buf, 512}, {buf + 4096, 1024}};
    struct iovec bad[2] = {{buf, 512}, {buf + 4096, 100}};
    said("preadv aligned", preadv(fd, good, 2, 0));
    said("preadv one short iovec", preadv(fd, bad, 2, 0));
    said("pwritev aligned", pwritev(fd, good, 2, 0));
    said("pwritev one short iovec", pwritev(fd, bad, 2, 0));
    close(fd);

    fd = open(path, O_RDONLY);
    setfl("setfl file", fd);
    close(fd);
    fd = open("/dev/null", O_RDONLY);
    setfl("setfl /dev/null", fd);
    close(fd);
    int p[2];
    if (pipe(p) == 0) {
        setfl("setfl pipe", p[1]);
        close(p[0]);
        close(p[1]);
    }
    fd = eventfd(0, 0);
    setfl("setfl eventfd", fd);
    close(fd);
    unlink(path);

    if (argc > 2) {
        fd = open(argv[2], O_RDONLY | O_DIRECT);
        said("open device", fd < 0 ? fd : 0);
        said("device pread 4096", pread(fd, buf, 4096, 0));
        said("device pread 4096 at 256", pread(fd, buf, 4096, 256));
        said("device pread 100", pread(fd, buf, 100, 0));
        close(fd);
    }
    printf("done\n");
    return 0;
}
