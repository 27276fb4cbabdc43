/* What GLib's installed tests found (conformance/glib.py): O_CREAT
   through a dangling trailing symlink makes what the link names (from the
   link's directory; g_file_replace), SO_PEERCRED on sockets other than
   unix ones says "no peer" rather than failing (GDBus over TCP), and pipe
   and socket inodes belong to their creator's fsuid and fsgid, so a user
   may open its own pipe again through /proc/self/fd (gdbus-codegen
   --output /dev/stdout); a unix stream socket is writable (POLLOUT) while
   what it sent and is not read costs at most a quarter of its send
   buffer, in skb truesize, not while its peer has a byte of room (GLib's
   stream-rw_all wrote on POLLOUT and blocked for good). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

static void try_open(const char *what, int dfd, const char *path, int flags)
{
    int fd = openat(dfd, path, flags, 0644);
    res(what, fd < 0 ? -1 : 0);
    if (fd >= 0)
        close(fd);
}

static void peercred(const char *what, int s)
{
    struct ucred c;
    socklen_t len = sizeof c;
    int r = getsockopt(s, SOL_SOCKET, SO_PEERCRED, &c, &len);
    printf("SO_PEERCRED %s: %d %s len %u pid %s uid %d gid %d\n", what, r, r ? en(errno) : "", len,
           c.pid > 0 ? "a pid" : c.pid == 0 ? "0" : "bad", (int)c.uid, (int)c.gid);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/glib", argc > 1 ? argv[1] : "/tmp");
    mkdir(dir, 0755);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    symlinkat("target", dfd, "link");
    symlinkat("link", dfd, "link-to-link");
    symlinkat("sub/t", dfd, "to-missing-dir");
    mkdir(dir, 0755);
    try_open("O_CREAT through a dangling link", dfd, "link", O_WRONLY | O_CREAT);
    res("  its target made", faccessat(dfd, "target", F_OK, 0));
    unlinkat(dfd, "target", 0);
    try_open("O_CREAT through two links", dfd, "link-to-link", O_RDWR | O_CREAT);
    res("  the last one's target made", faccessat(dfd, "target", F_OK, 0));
    try_open("O_CREAT|O_EXCL on the link", dfd, "link", O_WRONLY | O_CREAT | O_EXCL);
    try_open("O_CREAT|O_NOFOLLOW on the link", dfd, "link", O_WRONLY | O_CREAT | O_NOFOLLOW);
    try_open("O_CREAT, the target's directory missing", dfd, "to-missing-dir", O_WRONLY | O_CREAT);
    try_open("no O_CREAT, dangling", dfd, "to-missing-dir", O_RDONLY);
    unlinkat(dfd, "target", 0);
    unlinkat(dfd, "link", 0);
    unlinkat(dfd, "link-to-link", 0);
    unlinkat(dfd, "to-missing-dir", 0);

    int tcp = socket(AF_INET, SOCK_STREAM, 0), udp = socket(AF_INET, SOCK_DGRAM, 0), sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    peercred("tcp", tcp);
    peercred("udp", udp);
    peercred("unix pair", sv[0]);

    {
        int u[2], n = 0, q = 0;
        char buf[100] = {0};
        socketpair(AF_UNIX, SOCK_STREAM, 0, u);
        struct pollfd pf = {u[0], POLLOUT, 0};
        while (n < 5000 && poll(&pf, 1, 0) == 1 && pf.revents & POLLOUT && write(u[0], buf, sizeof buf) == sizeof buf)
            n++;
        ioctl(u[0], TIOCOUTQ, &q);
        printf("unix stream: POLLOUT for %d writes of 100 bytes, SIOCOUTQ %d\n", n, q);
        int more = 0;
        fcntl(u[0], F_SETFL, O_NONBLOCK);
        while (write(u[0], buf, sizeof buf) == sizeof buf)
            more++;
        printf("  then %d more until %s\n", more, en(errno));
        char big[65536];
        while (read(u[1], big, sizeof big) == sizeof big)
            ;
        pf.revents = 0;
        poll(&pf, 1, 0);
        ioctl(u[0], TIOCOUTQ, &q);
        printf("  all read: POLLOUT %d, SIOCOUTQ %d\n", !!(pf.revents & POLLOUT), q);
        close(u[0]);
        close(u[1]);
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
            printf("setuid: %s\n", en(errno));
        int p[2];
        pipe(p);
        struct stat st;
        fstat(p[1], &st);
        printf("pipe inode: mode %o, the creator's: %d\n", st.st_mode, st.st_uid == getuid() && st.st_gid == getgid());
        int s = socket(AF_INET, SOCK_STREAM, 0);
        fstat(s, &st);
        printf("socket inode: mode %o, the creator's: %d\n", st.st_mode, st.st_uid == getuid() && st.st_gid == getgid());
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", p[1]);
        try_open("the pipe's write end again, O_CREAT|O_TRUNC", AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC);
        snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
        try_open("its read end again", AT_FDCWD, path, O_RDONLY);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    rmdir(dir);
    printf("done\n");
    return 0;
}
