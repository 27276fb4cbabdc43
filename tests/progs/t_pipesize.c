/* F_GETPIPE_SZ and F_SETPIPE_SZ: rounding to a power-of-two count of
 * pages, EINVAL past 2 GiB, EBUSY below what the pipe holds (counted in
 * pages), EBADF on anything but a pipe or fifo, EPERM for an unprivileged
 * user growing a pipe past fs.pipe-max-size (found by trying, never
 * written: natively the host's own value is the limit); what a full pipe
 * then takes.
 * Works in ARGV1/pipesize. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

static long max_size;

static void sizes(const char *who)
{
    int p[2];
    pipe(p);
    printf("%s\n", who);
    res("  new pipe", fcntl(p[0], F_GETPIPE_SZ));
    res("  set 0", fcntl(p[1], F_SETPIPE_SZ, 0));
    res("  set 1", fcntl(p[1], F_SETPIPE_SZ, 1));
    res("  set 5000", fcntl(p[0], F_SETPIPE_SZ, 5000));
    res("  set 2^31+1", fcntl(p[1], F_SETPIPE_SZ, (1U << 31) + 1));
    res("  set 2^32 (an unsigned int: 0)", fcntl(p[1], F_SETPIPE_SZ, 1UL << 32));
    res("  set pipe-max-size", fcntl(p[1], F_SETPIPE_SZ, max_size) == max_size ? 0 : -1);
    res("  set pipe-max-size + 1", fcntl(p[1], F_SETPIPE_SZ, max_size + 1));
    res("  set 4096", fcntl(p[1], F_SETPIPE_SZ, 4096));
    static char buf[16384];
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    res("  write 16384 into 4096", write(p[1], buf, sizeof buf));
    res("  set 65536", fcntl(p[1], F_SETPIPE_SZ, 65536));
    res("  write 16384", write(p[1], buf, sizeof buf));
    res("  write 16384", write(p[1], buf, sizeof buf));
    res("  read 10000", read(p[0], buf, 10000));
    res("  set 16384 (22768 bytes queued)", fcntl(p[1], F_SETPIPE_SZ, 16384));
    res("  set 32768", fcntl(p[1], F_SETPIPE_SZ, 32768));
    res("  get", fcntl(p[0], F_GETPIPE_SZ));
    close(p[0]);
    close(p[1]);
    fflush(stdout);
}

/* A pipe counts page slots, not bytes: a slot partly read still takes
 * its place; small writes top up the last slot while its page has room. */
static void slots(void)
{
    int p[2];
    static char buf[16384];
    struct pollfd pw;
    pipe2(p, O_NONBLOCK);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    pw.fd = p[1];
    pw.events = POLLOUT;
    printf("slots\n");
    res("  write 4096", write(p[1], buf, 4096));
    res("  read 2048", read(p[0], buf, 2048));
    res("  POLLOUT with half a slot read", poll(&pw, 1, 0));
    res("  write 1 more", write(p[1], buf, 1));
    res("  read 2048", read(p[0], buf, 2048));
    res("  POLLOUT once empty", poll(&pw, 1, 0));
    res("  write 100", write(p[1], buf, 100));
    res("  write 100 (tops up the slot)", write(p[1], buf, 100));
    res("  write 4000 (does not fit the slot)", write(p[1], buf, 4000));
    res("  read 150", read(p[0], buf, 150));
    res("  write 3800 (150 read + 50 + 3800 fit the page)", write(p[1], buf, 3800));
    res("  write 3896 (the page is used up to 4000)", write(p[1], buf, 3896));
    int n = 0;
    ioctl(p[0], FIONREAD, &n);
    res("  FIONREAD", n);
    close(p[0]);
    close(p[1]);
    pipe2(p, O_NONBLOCK);
    for (int i = 0; i < 3; i++)
        write(p[1], buf, 5000);         /* 5 slots: [4096][1808][4096][4096][904] */
    res("  set 16384 with 5 slots taken (15000 bytes)", fcntl(p[1], F_SETPIPE_SZ, 16384));
    res("  set 32768", fcntl(p[1], F_SETPIPE_SZ, 32768));
    res("  write 8193 (1 byte tops up the last slot, 2 new ones)", write(p[1], buf, 8193));
    close(p[0]);
    close(p[1]);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    slots();
    char dir[4096], cmd[4200];
    snprintf(dir, sizeof dir, "%s/pipesize", argc > 1 ? argv[1] : ".");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    system(cmd);
    mkdir(dir, 0777);
    chmod(dir, 0777);
    if (chdir(dir) < 0) {
        perror("chdir");
        return 1;
    }
    int file = open("file", O_RDWR | O_CREAT, 0644);
    res("F_GETPIPE_SZ on a file", fcntl(file, F_GETPIPE_SZ));
    res("F_SETPIPE_SZ on a file", fcntl(file, F_SETPIPE_SZ, 4096));
    res("F_GETPIPE_SZ on a bad fd", fcntl(-1, F_GETPIPE_SZ));
    close(file);
    mkfifo("fifo", 0666);
    int fifo = open("fifo", O_RDWR);
    res("fifo F_SETPIPE_SZ 8192", fcntl(fifo, F_SETPIPE_SZ, 8192));
    res("fifo F_GETPIPE_SZ", fcntl(fifo, F_GETPIPE_SZ));
    close(fifo);
    fifo = open("fifo", O_RDWR);
    res("fifo reopened F_GETPIPE_SZ", fcntl(fifo, F_GETPIPE_SZ));
    close(fifo);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setresuid(65534, 65534, 65534);
        int q[2];
        pipe(q);
        for (max_size = 4096; fcntl(q[0], F_SETPIPE_SZ, max_size * 2) > 0; max_size *= 2)
            ;
        close(q[0]);
        close(q[1]);
        sizes("as nobody");
        int p[2];
        pipe(p);
        res("  set 2^31", fcntl(p[1], F_SETPIPE_SZ, 1U << 31));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    chdir("/");
    system(cmd);
    printf("done\n");
    return 0;
}
