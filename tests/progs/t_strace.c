/* A subject for the guest syscall tracer (tests/test_strace.py): the
 * syscalls whose trace lines must be byte-identical to the host strace's
 * (open/openat, read, write, close, fstat, lseek, poll, kill, exit_group), with
 * strings past strace's -s 32, every escape strace uses, errors, a
 * signal delivered to a handler, and the exit.  Its own output is one
 * line, so it also runs as a plain differential program. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_usr1(int sig)
{
    got = sig;
}

int main(int argc, char **argv)
{
    static const char data[] = "root:x:0:0:root:/root:/bin/sh\n"
                               "\t\"quoted\\\" \v\f\r\0001\0a\377~\177 end\n";
    char buf[4096];
    struct stat st;
    struct sigaction sa;
    struct pollfd pfd[2];
    int fd, p[2];

    if (chdir(argc > 1 ? argv[1] : ".") != 0)
        return 1;
    umask(022);
    unlink("t_strace.dat");
    fd = open("t_strace.dat", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    write(fd, data, sizeof data - 1);
    write(fd, "short\n", 6);
    close(fd);
    fd = openat(AT_FDCWD, "t_strace.dat", O_RDONLY);
    fstat(fd, &st);
    read(fd, buf, sizeof buf);
    read(fd, buf, sizeof buf);
    lseek(fd, 30, SEEK_SET);
    read(fd, buf, 24);
    lseek(fd, -6, SEEK_END);
    read(fd, buf, 6);
    pipe(p);
    pfd[0].fd = fd;
    pfd[0].events = POLLIN | POLLOUT;
    pfd[1].fd = p[0];
    pfd[1].events = POLLIN;
    poll(pfd, 2, 0);
    poll(pfd + 1, 1, 0);
    close(p[0]);
    close(p[1]);
    close(fd);
    syscall(SYS_open, "t_strace.missing", O_RDONLY);
    syscall(SYS_open, "t_strace.new", O_RDWR | O_CREAT | O_EXCL | O_APPEND, 0600);
    stat("t_strace.dat", &st);
    close(99);
    write(99, "x", 1);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    kill(getpid(), SIGUSR1);
    unlink("t_strace.dat");
    unlink("t_strace.new");
    write(1, got == SIGUSR1 ? "signal\ndone\n" : "no signal\ndone\n", got == SIGUSR1 ? 12 : 15);
    return 0;
}
