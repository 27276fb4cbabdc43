/* pipes: read/write, EOF, EPIPE/SIGPIPE, pipe2 flags, EAGAIN, poll,
 * a 100000-byte transfer between processes with a checksum, and the pipe
 * size (F_GETPIPE_SZ/F_SETPIPE_SZ, its limits, root and not). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

static void sz(const char *what, long r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: %ld\n", what, r);
}

static void pipe_sizes(void)
{
    int p[2];
    pipe(p);
    sz("F_GETPIPE_SZ", fcntl(p[0], F_GETPIPE_SZ));
    sz("set 0", fcntl(p[1], F_SETPIPE_SZ, 0));
    sz("set 5000", fcntl(p[1], F_SETPIPE_SZ, 5000));
    sz("set 1M", fcntl(p[1], F_SETPIPE_SZ, 1 << 20));
    sz("set 1<<31 + 1", fcntl(p[1], F_SETPIPE_SZ, (1U << 31) + 1));
    sz("set -1", fcntl(p[1], F_SETPIPE_SZ, -1));
    sz("set 64K", fcntl(p[1], F_SETPIPE_SZ, 65536));
    char buf[9000] = {0};
    write(p[1], buf, 9000);
    sz("set 4096 with 9000 bytes queued", fcntl(p[1], F_SETPIPE_SZ, 4096));
    sz("set 16384 with 9000 bytes queued", fcntl(p[1], F_SETPIPE_SZ, 16384));
    sz("F_GETPIPE_SZ", fcntl(p[0], F_GETPIPE_SZ));
    sz("on a file", fcntl(open("/dev/null", O_RDONLY), F_GETPIPE_SZ));
    close(p[0]);
    close(p[1]);
    pid_t c = fork();
    if (c == 0) {
        struct rlimit rl = {4096, 4096};        /* room for the pipes below */
        setrlimit(RLIMIT_NOFILE, &rl);
        setuid(54321);                          /* a user with no pipes anywhere else */
        pipe(p);
        sz("user: set 1M", fcntl(p[1], F_SETPIPE_SZ, 1 << 20));
        sz("user: set 2M", fcntl(p[1], F_SETPIPE_SZ, 2 << 20));
        sz("user: set 4096", fcntl(p[1], F_SETPIPE_SZ, 4096));
        int n = 0, q[2], small = 0;
        while (n < 1200 && pipe(q) == 0) {      /* 1200 * 16 pages passes the soft limit */
            if (fcntl(q[0], F_GETPIPE_SZ) < 65536 && !small++)
                printf("user: pipe %d gets %d bytes\n", n, fcntl(q[0], F_GETPIPE_SZ));
            n++;
        }
        printf("user: %d pipes, %d small\n", n, small);
        sz("user: grow a small one", fcntl(q[0], F_SETPIPE_SZ, 65536));

        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
}

/* Guest only (it changes a system-wide limit): `t_pipe - max-size`. A
 * lower /proc/sys/fs/pipe-max-size sizes new pipes of the unprivileged. */
static int max_size(void)
{
    if (access("/proc/self", F_OK) != 0)
        mount("proc", "/proc", "proc", 0, NULL);
    int mf = open("/proc/sys/fs/pipe-max-size", O_RDWR);
    char now[32] = {0};
    static const char *vals[] = {"0", "5000", "4294967295", "-1", "x", "1048576", "8192"};
    for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char w[64];
        snprintf(w, sizeof w, "write %s", vals[i]);
        sz(w, pwrite(mf, vals[i], strlen(vals[i]), 0));
        memset(now, 0, sizeof now);
        pread(mf, now, sizeof now - 1, 0);
        printf("  now %s", now);
    }
    int p[2];
    pipe(p);
    sz("root's new pipe", fcntl(p[0], F_GETPIPE_SZ));
    sz("root sets 64K", fcntl(p[0], F_SETPIPE_SZ, 65536));
    pid_t c = fork();
    if (c == 0) {
        setuid(54321);
        pipe(p);
        sz("user's new pipe", fcntl(p[0], F_GETPIPE_SZ));
        sz("user sets 64K", fcntl(p[0], F_SETPIPE_SZ, 65536));
        sz("user sets 8K", fcntl(p[0], F_SETPIPE_SZ, 8192));
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    pwrite(mf, "1048576", 7, 0);
    printf("done\n");
    return 0;
}

static void show(const char *what, int st)
{
    if (WIFEXITED(st))
        printf("%s: exited %d\n", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        printf("%s: killed by signal %d(%s)\n", what, WTERMSIG(st),
               sigabbrev_np(WTERMSIG(st)));
    else
        printf("%s: other status\n", what);
}

static void rw(const char *what, ssize_t r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: %zd\n", what, r);
}

static unsigned pattern(unsigned i) { return (i * 7u + (i >> 8) * 13u) & 0xff; }

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && !strcmp(argv[2], "max-size"))
        return max_size();
    int p[2];
    char buf[256];

    /* basic read/write */
    if (pipe(p) != 0) {
        printf("pipe: %s\n", en(errno));
        return 1;
    }
    rw("write 5", write(p[1], "hello", 5));
    rw("write 6", write(p[1], " world", 6));
    memset(buf, 0, sizeof buf);
    rw("read 100", read(p[0], buf, 100));
    printf("data: '%s'\n", buf);
    rw("write 3", write(p[1], "abc", 3));
    rw("read 2", read(p[0], buf, 2));
    rw("read 2 again", read(p[0], buf, 2));
    printf("last byte: %c\n", buf[0]);
    close(p[1]);
    rw("read after writer closed (EOF)", read(p[0], buf, 10));
    close(p[0]);

    /* EOF only once all writers (parent dup + child) have closed */
    if (pipe(p) != 0)
        return 1;
    int extra = dup(p[1]);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        close(extra);
        if (write(p[1], "from child\n", 11) != 11)
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    close(extra);
    ssize_t tot = 0, n;
    while ((n = read(p[0], buf + tot, sizeof buf - 1 - tot)) > 0)
        tot += n;
    buf[tot] = 0;
    printf("child wrote %zd bytes: %s", tot, buf);
    rw("read at EOF", n);
    int st;
    waitpid(c, &st, 0);
    show("writer child", st);
    close(p[0]);

    /* no readers: EPIPE with SIGPIPE ignored */
    if (pipe(p) != 0)
        return 1;
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    rw("write with no reader, SIGPIPE ignored", write(p[1], "x", 1));
    signal(SIGPIPE, SIG_DFL);
    close(p[1]);

    /* no readers, default action: child dies of SIGPIPE */
    if (pipe(p) != 0)
        return 1;
    fflush(stdout);
    c = fork();
    if (c == 0) {
        close(p[0]);
        /* parent closes its read end; wait for it via a second write loop */
        for (;;) {
            if (write(p[1], "y", 1) < 0)
                _exit(3);
        }
    }
    close(p[0]);
    close(p[1]);
    waitpid(c, &st, 0);
    show("writer after readers gone", st);

    /* SIGPIPE blocked: write returns EPIPE and the signal stays pending */
    if (pipe(p) != 0)
        return 1;
    close(p[0]);
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigprocmask(SIG_BLOCK, &set, NULL);
    rw("write with SIGPIPE blocked", write(p[1], "z", 1));
    sigpending(&pend);
    printf("SIGPIPE pending: %d\n", sigismember(&pend, SIGPIPE));
    signal(SIGPIPE, SIG_IGN);   /* discard the pending signal */
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    signal(SIGPIPE, SIG_DFL);
    close(p[1]);

    /* pipe2 flags */
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
        printf("pipe2: %s\n", en(errno));
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        int fd = fcntl(p[i], F_GETFD), fl = fcntl(p[i], F_GETFL);
        printf("pipe2 end %d: FD_CLOEXEC=%d O_NONBLOCK=%d accmode=%s\n", i,
               !!(fd & FD_CLOEXEC), !!(fl & O_NONBLOCK),
               (fl & O_ACCMODE) == O_RDONLY ? "O_RDONLY" :
               (fl & O_ACCMODE) == O_WRONLY ? "O_WRONLY" : "O_RDWR");
    }
    rw("read empty nonblocking pipe", read(p[0], buf, 10));
    rw("write to read end", write(p[0], "x", 1));
    rw("read from write end", read(p[1], buf, 1));

    /* poll readiness */
    struct pollfd pf[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
    int pr = poll(pf, 2, 0);
    printf("poll empty: ret=%d rd.revents=%#x wr.revents=%#x\n", pr,
           pf[0].revents, pf[1].revents);
    if (write(p[1], "q", 1) != 1)
        printf("write q failed\n");
    pf[0].revents = pf[1].revents = 0;
    pr = poll(pf, 1, 0);
    printf("poll with data: ret=%d rd.revents=%#x\n", pr, pf[0].revents);

    /* fill the nonblocking pipe until EAGAIN (256-byte atomic writes) */
    long filled = 1;
    memset(buf, 'f', sizeof buf);
    for (;;) {
        n = write(p[1], buf, sizeof buf);
        if (n < 0)
            break;
        filled += n;
    }
    printf("filled until %s, at least 4096 bytes: %d\n", en(errno), filled >= 4096);
    pf[1].revents = 0;
    pr = poll(&pf[1], 1, 0);
    printf("poll full pipe for POLLOUT: ret=%d\n", pr);
    close(p[1]);
    long drained = 0;
    while ((n = read(p[0], buf, sizeof buf)) > 0)
        drained += n;
    printf("drained == filled: %d, then read returns %zd\n", drained == filled, n);
    pf[0].revents = 0;
    pr = poll(pf, 1, 0);
    printf("poll after writer closed: ret=%d POLLHUP=%d\n", pr,
           !!(pf[0].revents & POLLHUP));
    close(p[0]);

    /* 100000 bytes through a pipe, child -> parent, with checksum */
    if (pipe(p) != 0)
        return 1;
    enum { TOTAL = 100000 };
    fflush(stdout);
    c = fork();
    if (c == 0) {
        close(p[0]);
        static unsigned char out[TOTAL];
        for (unsigned i = 0; i < TOTAL; i++)
            out[i] = pattern(i);
        size_t off = 0;
        while (off < TOTAL) {
            size_t chunk = TOTAL - off < 3001 ? TOTAL - off : 3001;
            ssize_t w = write(p[1], out + off, chunk);
            if (w <= 0)
                _exit(2);
            off += w;
        }
        _exit(0);
    }
    close(p[1]);
    unsigned long sum = 0, got = 0, bad = 0;
    unsigned char in[4096];
    while ((n = read(p[0], in, sizeof in)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (in[i] != pattern(got + i))
                bad++;
            sum = (sum * 31 + in[i]) % 1000000007ul;
        }
        got += n;
    }
    close(p[0]);
    waitpid(c, &st, 0);
    printf("transfer: bytes=%lu mismatches=%lu checksum=%lu\n", got, bad, sum);
    show("transfer child", st);

    pipe_sizes();
    printf("done\n");
    return 0;
}
