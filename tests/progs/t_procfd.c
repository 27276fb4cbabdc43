/* What /proc/self/fd/N shows for each kind of file (sockets, pipes,
 * memfds, anonymous inodes, deleted files), its lstat, and stat through
 * it against fstat; the identity of a pipe's inode (both ends one inode)
 * and of the shared anonymous inode.  Inode numbers are never printed,
 * only compared. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

static char dir[512];

/* the link, with "[N]" shown as "[ino]" when N is the file's st_ino */
static void link_of(const char *what, int fd)
{
    char p[64], l[600];
    struct stat st, via, ln;
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, l, sizeof l - 1);
    if (n < 0) {
        printf("%s: readlink %s\n", what, en(errno));
        return;
    }
    l[n] = 0;
    fstat(fd, &st);
    char *b = strchr(l, '[');
    if (b && b[1] >= '0' && b[1] <= '9' && strchr(b, ']')) {
        unsigned long long ino = strtoull(b + 1, NULL, 10);
        snprintf(b, sizeof l - (b - l), "[%s]", ino == (unsigned long long)st.st_ino ? "ino" : "?");
    }
    size_t dl = strlen(dir);
    if (strncmp(l, dir, dl) == 0) {         /* the scratch dir differs: <dir> */
        memmove(l + 5, l + dl, strlen(l + dl) + 1);
        memcpy(l, "<dir>", 5);
    }
    int sv = stat(p, &via);
    lstat(p, &ln);
    printf("%s: -> %s; type %o perm %o; lstat %o; stat through it: %s\n", what, l, st.st_mode & S_IFMT,
           st.st_mode & 07777, ln.st_mode,
           sv < 0 ? en(errno) : via.st_ino == st.st_ino && via.st_dev == st.st_dev &&
           via.st_mode == st.st_mode ? "same" : "differs");
}

/* a path longer than PATH_MAX: the links to it are ENAMETOOLONG, as
   d_path's page-sized buffer makes them (getcwd(2) too) */
static void deep(const char *top)
{
    int start = open(".", O_RDONLY | O_DIRECTORY);
    chdir(top);
    int levels = 0;
    for (; levels < 2100; levels++)
        if (mkdir("d", 0755) != 0 || chdir("d") != 0)
            break;
    char buf[8192];
    ssize_t r = readlink("/proc/self/cwd", buf, sizeof buf);
    res("readlink of a cwd deeper than PATH_MAX", r);
    int fd = open(".", O_RDONLY | O_DIRECTORY);
    char fdlink[64];
    snprintf(fdlink, sizeof fdlink, "/proc/self/fd/%d", fd);
    res("readlink of an fd there", readlink(fdlink, buf, sizeof buf));
    close(fd);
    res("getcwd(2) there", syscall(SYS_getcwd, buf, sizeof buf));
    for (; levels > 0; levels--) {
        chdir("..");
        rmdir("d");
    }
    fchdir(start);
    close(start);
}

/* A process whose ids changed is no longer dumpable: its fd directory
 * is root's, mode 0500; yet the process itself may still look in and open
 * through it (proc_fd_permission).  Natively this needs root; without it
 * the line says what Linux gives. */
static void own_fds_after_setuid(void)
{
    if (geteuid() != 0) {
        printf("own fd dir after seteuid: open 1, opendir 1\n");
        return;
    }
    pid_t c = fork();
    if (c == 0) {
        if (setreuid(-1, 65534))
            _exit(1);
        int fd = open("/dev/null", O_RDONLY);
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        int o = open(p, O_RDONLY) >= 0;
        int d = opendir("/proc/self/fd") != NULL;
        printf("own fd dir after seteuid: open %d, opendir %d\n", o, d);
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    need_proc();
    snprintf(dir, sizeof dir, "%s/procfd_dir", argc > 1 ? argv[1] : ".");
    mkdir(dir, 0755);
    char file[600];
    snprintf(file, sizeof file, "%s/file", dir);

    int p[2], q[2];
    pipe(p);
    pipe2(q, O_NONBLOCK);
    link_of("pipe read end", p[0]);
    link_of("pipe write end", p[1]);
    struct stat a, b, c;
    fstat(p[0], &a);
    fstat(p[1], &b);
    fstat(q[0], &c);
    printf("pipe ends: same ino %d, same dev %d, nlink %lu, uid %u, size %lld, blksize %ld\n",
           a.st_ino == b.st_ino, a.st_dev == b.st_dev, (unsigned long)a.st_nlink, a.st_uid,
           (long long)a.st_size, (long)a.st_blksize);
    printf("another pipe: same ino %d, same dev %d\n", a.st_ino == c.st_ino, a.st_dev == c.st_dev);
    write(p[1], "abc", 3);
    fstat(p[0], &a);
    printf("pipe with 3 bytes: size %lld\n", (long long)a.st_size);
    char l[600];
    snprintf(l, sizeof l, "/proc/self/fd/%d", p[1]);
    int w2 = open(l, O_WRONLY);
    fstat(w2, &b);
    printf("reopened write end: same ino %d\n", w2 >= 0 && a.st_ino == b.st_ino);
    close(w2);

    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    link_of("socketpair end", sv[0]);
    fstat(sv[0], &a);
    fstat(sv[1], &b);
    printf("socketpair ends: same ino %d, same dev %d, nlink %lu\n", a.st_ino == b.st_ino,
           a.st_dev == b.st_dev, (unsigned long)a.st_nlink);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    link_of("inet socket", s);
    snprintf(l, sizeof l, "/proc/self/fd/%d", s);
    res("open of a socket's link", open(l, O_RDWR));

    int m = memfd_create("my memfd", 0);
    link_of("memfd", m);
    int e = eventfd(0, 0);
    link_of("eventfd", e);
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    link_of("timerfd", t);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGUSR1);
    int sfd = signalfd(-1, &ss, 0);
    link_of("signalfd", sfd);
    int ep = epoll_create1(0);
    link_of("epoll", ep);
    int in = inotify_init();
    link_of("inotify", in);
    fstat(e, &a);
    fstat(t, &b);
    fstat(ep, &c);
    printf("anon inodes: eventfd=timerfd %d, eventfd=epoll %d, same dev %d\n", a.st_ino == b.st_ino,
           a.st_ino == c.st_ino, a.st_dev == b.st_dev);

    int f = open(file, O_CREAT | O_RDWR, 0644);
    link_of("file", f);
    int r = open(file, O_RDONLY);
    link_of("read-only file", r);
    int o = open(file, O_PATH);
    link_of("O_PATH file", o);
    unlink(file);
    link_of("deleted file", f);
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    link_of("directory", d);
    int n = open("/dev/null", O_WRONLY);
    link_of("/dev/null write-only", n);
    deep(dir);
    own_fds_after_setuid();
    printf("done\n");
    close(d);
    rmdir(dir);
    return 0;
}
