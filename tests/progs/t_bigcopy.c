/* Big copies: one write(2) of 64 MiB into a pipe, a unix stream, /dev/null
 * (whose buffer is never read), a file (write, pwrite, writev), and one
 * read(2) of 64 MiB from /dev/zero; a 1 GiB write to /dev/null from a
 * buffer that is mostly unmapped.  The kernel must take these a piece at a
 * time (tests/test_escape.py watches its memory).  Works in ARGV1/bigcopy. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define N (64UL << 20)

static void drain(int fd, int other, const char *what)
{
    pid_t c = fork();
    if (c == 0) {
        close(other);
        static char b[65536];
        size_t tot = 0;
        ssize_t k;
        unsigned long sum = 0;
        while ((k = read(fd, b, sizeof b)) > 0) {
            tot += k;
            for (ssize_t i = 0; i < k; i++)
                sum += (unsigned char)b[i];
        }
        printf("%s reader: %zu bytes, sum %lu\n", what, tot, sum);
        fflush(stdout);
        _exit(0);
    }
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    if (chdir(dir) < 0)
        return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char *p = mmap(NULL, N, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < N; i++)
        p[i] = (char)(i * 7);

    int fd[2];
    pipe(fd);
    drain(fd[0], fd[1], "pipe");
    close(fd[0]);
    printf("pipe write: %zd\n", write(fd[1], p, N));
    close(fd[1]);
    wait(NULL);

    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    drain(s[0], s[1], "stream");
    close(s[0]);
    printf("stream send: %zd\n", send(s[1], p, N, 0));
    close(s[1]);
    wait(NULL);

    int null = open("/dev/null", O_WRONLY);
    printf("/dev/null write: %zd\n", write(null, p, N));
    char *volatile nothing = NULL;
    printf("/dev/null write of NULL: %zd\n", write(null, nothing, N));
    int zero = open("/dev/zero", O_RDONLY);
    ssize_t got = read(zero, p, N);
    printf("/dev/zero read: %zd, byte %d\n", got, p[N - 1]);
    for (size_t i = 0; i < N; i++)
        p[i] = (char)(i * 7);

    mkdir("bigcopy", 0755);
    int f = open("bigcopy/f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    printf("file write: %zd\n", write(f, p, N));
    printf("file pwrite: %zd\n", pwrite(f, p, N, 4096));
    struct iovec iov[2] = { { p, N / 2 }, { p + N / 2, N / 2 } };
    lseek(f, 0, SEEK_SET);
    printf("file writev: %zd\n", writev(f, iov, 2));
    struct stat st;
    fstat(f, &st);
    printf("file size: %lld\n", (long long)st.st_size);
    close(f);
    unlink("bigcopy/f");
    rmdir("bigcopy");

    /* only the first 4 KiB are mapped: a file write stops there */
    char *edge = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(edge + 4096, 4096);
    mkdir("bigcopy", 0755);
    f = open("bigcopy/g", O_RDWR | O_CREAT | O_TRUNC, 0644);
    long r = write(f, edge, 1UL << 30);
    printf("file write across the end of a mapping: %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "");
    close(f);
    unlink("bigcopy/g");
    rmdir("bigcopy");
    printf("done\n");
    return 0;
}
