/* close-on-exec: set up fds with/without O_CLOEXEC / FD_CLOEXEC, re-exec
 * this program via argv[0] (must be a path, e.g. /t/bin/t_cloexec) with a
 * marker argument, and report which fds survived.  Fd numbers are passed
 * on the command line and never printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

#define MAXFD 16
static const char *labels[MAXFD];
static int fds[MAXFD];
static int nfds;

static void add(const char *label, int fd)
{
    if (fd < 0) {
        printf("setup %s failed: %s\n", label, en(errno));
        return;
    }
    labels[nfds] = label;
    fds[nfds++] = fd;
}

static int child(int argc, char **argv)
{
    printf("after exec: argc=%d marker=%s\n", argc, argv[2]);
    for (int i = 3; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            continue;
        *eq = 0;
        int fd = atoi(eq + 1);
        errno = 0;
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0) {
            printf("  %-22s closed (%s)\n", argv[i], en(errno));
            continue;
        }
        printf("  %-22s open cloexec=%d", argv[i], !!(fl & FD_CLOEXEC));
        off_t off = lseek(fd, 0, SEEK_CUR);
        if (off >= 0)
            printf(" offset=%lld", (long long)off);
        int acc = fcntl(fd, F_GETFL) & O_ACCMODE;
        printf(" acc=%s\n", acc == O_RDONLY ? "r" : acc == O_WRONLY ? "w" : "rw");
    }
    /* data written before exec into the pipe is still readable after it */
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "pipe_read_keep") == 0) {
            char buf[32] = {0};
            int fd = atoi(argv[i] + strlen(argv[i]) + 1);
            ssize_t n = read(fd, buf, sizeof buf - 1);
            printf("pipe data after exec: %zd '%s'\n", n, n > 0 ? buf : "");
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/cloexec.tmp", argv[1]);
    unlink(path);
    printf("done\n");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[2], "--after-exec") == 0)
        return child(argc, argv);

    const char *dir = argc > 1 ? argv[1] : ".";
    char path[4096];
    snprintf(path, sizeof path, "%s/cloexec.tmp", dir);
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (f < 0 || write(f, "0123456789", 10) != 10) {
        printf("create %s: %s\n", path, en(errno));
        return 1;
    }
    lseek(f, 3, SEEK_SET);
    add("plain", f);
    int oc = open(path, O_RDONLY | O_CLOEXEC);
    add("o_cloexec", oc);
    int g = open(path, O_WRONLY);
    fcntl(g, F_SETFD, FD_CLOEXEC);
    add("fd_cloexec_set", g);
    int h = open(path, O_RDONLY | O_CLOEXEC);
    fcntl(h, F_SETFD, 0);
    add("fd_cloexec_cleared", h);
    add("dup_of_cloexec", dup(oc));
    add("dupfd_cloexec", fcntl(f, F_DUPFD_CLOEXEC, 0));
    add("dup3_cloexec", dup3(f, 40, O_CLOEXEC));
    add("dup2_high", dup2(f, 41));
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
        add("pipe2_cloexec_r", p[0]);
        add("pipe2_cloexec_w", p[1]);
    }
    if (pipe(p) == 0) {
        if (write(p[1], "pipedata", 8) != 8)
            printf("pipe write failed\n");
        add("pipe_read_keep", p[0]);
        add("pipe_write_keep", p[1]);
    }
    int closed = dup(f);
    close(closed);
    add("closed_before_exec", closed);

    printf("before exec: %d fds set up\n", nfds);
    for (int i = 0; i < nfds; i++) {
        int fl = fcntl(fds[i], F_GETFD);
        printf("  %-22s %s\n", labels[i],
               fl < 0 ? "closed" : (fl & FD_CLOEXEC) ? "cloexec" : "inherit");
    }

    /* a failing execve keeps everything and returns ENOENT / EACCES */
    char *nargv[MAXFD + 4];
    nargv[0] = "nonexistent";
    nargv[1] = NULL;
    errno = 0;
    int r = execve("/nonexistent/prog", nargv, environ);
    printf("execve nonexistent: %d %s\n", r, en(errno));
    errno = 0;
    r = execve(path, nargv, environ);
    printf("execve non-executable file: %d %s\n", r, en(errno));
    errno = 0;
    r = execve(dir, nargv, environ);
    printf("execve directory: %d %s\n", r, en(errno));
    printf("o_cloexec still open after failed execs: %d\n", fcntl(oc, F_GETFD) >= 0);

    static char abuf[MAXFD][64];
    int n = 0;
    nargv[n++] = argv[0];
    nargv[n++] = (char *)dir;
    nargv[n++] = "--after-exec";
    for (int i = 0; i < nfds; i++) {
        snprintf(abuf[i], sizeof abuf[i], "%s=%d", labels[i], fds[i]);
        nargv[n++] = abuf[i];
    }
    nargv[n] = NULL;
    fflush(stdout);
    execve(argv[0], nargv, environ);
    printf("re-exec of %s failed: %s\n", argv[0], en(errno));
    return 1;
}
