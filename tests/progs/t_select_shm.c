/* select over many fds; the time left written back to the timeouts of
   select, pselect6 and ppoll (raw: glibc copies some) however they end,
   never poll's; after a stop, poll, nanosleep and futex waits keep their
   end time (restart_syscall) where select, pselect6 and ppoll go on with
   the time they had left; POSIX shared memory (shm_open in /dev/shm)
   shared by fork.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <linux/futex.h>
#include <poll.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_alrm(int sig) { (void)sig; }

static void alarm_in(long ms)
{
    struct itimerval it = {{0, 0}, {0, ms * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static long tv_ms(struct timeval tv) { return tv.tv_sec * 1000 + tv.tv_usec / 1000; }
static long ts_ms(struct timespec ts) { return ts.tv_sec * 1000 + ts.tv_nsec / 1000000; }

/* (raw select: glibc's goes through pselect6 and writes the time back itself) */

/* what is left of a 300 ms timeout: all, part or none of it */
static const char *left(long ms)
{
    return ms < 0 || ms > 300 ? "?" : ms == 0 ? "0" : ms >= 250 ? "all" : "part";
}

static void timeouts(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alrm;
    sigaction(SIGALRM, &sa, NULL);
    int p[2];
    pipe(p);
    fd_set rs;
    struct timeval tv;
    struct timespec ts;
    struct { const sigset_t *ss; size_t len; } sig = {NULL, 8};
    for (int ready = 0; ready < 2; ready++) {
        if (ready)
            write(p[1], "x", 1);
        FD_ZERO(&rs); FD_SET(p[0], &rs);
        tv = (struct timeval){0, 300000};
        int r = syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, &tv);
        printf("select %s: %d, left %s\n", ready ? "ready" : "timed out", r, left(tv_ms(tv)));
        FD_ZERO(&rs); FD_SET(p[0], &rs);
        ts = (struct timespec){0, 300000000};
        r = syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, &sig);
        printf("pselect6 %s: %d, left %s\n", ready ? "ready" : "timed out", r, left(ts_ms(ts)));
        struct pollfd pf = {p[0], POLLIN, 0};
        ts = (struct timespec){0, 300000000};
        r = syscall(SYS_ppoll, &pf, 1, &ts, NULL, 8);
        printf("ppoll %s: %d, left %s\n", ready ? "ready" : "timed out", r, left(ts_ms(ts)));
        if (ready) {
            char c;
            read(p[0], &c, 1);
        }
    }
    /* a signal: EINTR, and the time left */
    FD_ZERO(&rs); FD_SET(p[0], &rs);
    tv = (struct timeval){0, 300000};
    alarm_in(100);
    int r = syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, &tv);
    printf("select interrupted: %d %s, left %s\n", r, strerrorname_np(errno), left(tv_ms(tv)));
    FD_ZERO(&rs); FD_SET(p[0], &rs);
    ts = (struct timespec){0, 300000000};
    alarm_in(100);
    r = syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, &sig);
    printf("pselect6 interrupted: %d %s, left %s\n", r, strerrorname_np(errno), left(ts_ms(ts)));
    struct pollfd pf = {p[0], POLLIN, 0};
    ts = (struct timespec){0, 300000000};
    alarm_in(100);
    r = syscall(SYS_ppoll, &pf, 1, &ts, NULL, 8);
    printf("ppoll interrupted: %d %s, left %s\n", r, strerrorname_np(errno), left(ts_ms(ts)));
    alarm_in(100);
    r = poll(&pf, 1, 300);
    printf("poll interrupted: %d %s\n", r, strerrorname_np(errno));
    /* a zero timeout stays as it is; whole seconds of tv_usec are folded in */
    FD_ZERO(&rs); FD_SET(p[0], &rs);
    tv = (struct timeval){0, 0};
    r = syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, &tv);
    printf("select zero timeout: %d, left %ld.%06ld\n", r, (long)tv.tv_sec, (long)tv.tv_usec);
    write(p[1], "x", 1);
    FD_ZERO(&rs); FD_SET(p[0], &rs);
    tv = (struct timeval){0, 1300000};
    r = syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, &tv);
    printf("select usec 1.3 s ready: %d, left %ld s and over 0.2 s: %d\n", r, (long)tv.tv_sec,
           tv.tv_usec > 200000);
    FD_ZERO(&rs); FD_SET(p[0], &rs);
    tv = (struct timeval){0, -1};
    errno = 0;
    r = syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, &tv);
    printf("select usec -1: %d %s\n", r, strerrorname_np(errno));
    /* a read-only timeout: the result stands, the write-back is dropped */
    static const struct timeval ro = {0, 300000};
    FD_ZERO(&rs); FD_SET(p[0], &rs);
    r = syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, (struct timeval *)&ro);
    printf("select read-only timeout ready: %d\n", r);
    close(p[0]);
    close(p[1]);
    signal(SIGALRM, SIG_DFL);
}

static long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* a 600 ms wait of each kind, stopped 300 ms in for 300 ms */
static void restarts(void)
{
    static const char *const kinds[] = {"nanosleep", "clock_nanosleep", "poll", "futex", "select", "pselect6",
                                        "ppoll"};
    enum { N = sizeof kinds / sizeof kinds[0] };
    int out[N][2], p[2];
    pid_t kids[N];
    pipe(p);
    for (int k = 0; k < N; k++) {
        pipe(out[k]);
        kids[k] = fork();
        if (kids[k] == 0) {
            long t0 = ms_now(), r = -1;
            struct timespec ts = {0, 600000000};
            struct pollfd pf = {p[0], POLLIN, 0};
            fd_set rs;
            FD_ZERO(&rs);
            FD_SET(p[0], &rs);
            struct timeval tv = {0, 600000};
            static int word;
            struct { const sigset_t *ss; size_t len; } sig = {NULL, 8};
            switch (k) {
            case 0: r = nanosleep(&ts, NULL); break;
            case 1: r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL); break;
            case 2: r = poll(&pf, 1, 600); break;
            case 3: r = syscall(SYS_futex, &word, FUTEX_WAIT, 0, &ts, NULL, 0); break;
            case 4: r = syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, &tv); break;
            case 5: r = syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, &sig); break;
            case 6: r = syscall(SYS_ppoll, &pf, 1, &ts, NULL, 8); break;
            }
            int e = errno;
            long d = ms_now() - t0;
            char line[128];
            int n = snprintf(line, sizeof line, "%s stopped and continued: %ld %s, %s\n", kinds[k], r,
                             r < 0 ? strerrorname_np(e) : "-",
                             d < 750 ? "kept its end" : d < 1050 ? "went on with the time left" : "waited again");
            write(out[k][1], line, n);
            _exit(0);
        }
        close(out[k][1]);
    }
    usleep(300000);
    for (int k = 0; k < N; k++)
        kill(kids[k], SIGSTOP);
    usleep(300000);
    for (int k = 0; k < N; k++)
        kill(kids[k], SIGCONT);
    for (int k = 0; k < N; k++) {
        char line[128];
        ssize_t n = read(out[k][0], line, sizeof line);
        if (n > 0)
            fwrite(line, 1, n, stdout);
        close(out[k][0]);
        waitpid(kids[k], NULL, 0);
    }
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int p[40][2];
    int maxfd = 0;
    for (int i = 0; i < 40; i++) {
        pipe(p[i]);
        if (p[i][0] > maxfd)
            maxfd = p[i][0];
    }
    fd_set rs;
    FD_ZERO(&rs);
    for (int i = 0; i < 40; i++)
        FD_SET(p[i][0], &rs);
    struct timeval tv = {0, 0};
    printf("nothing ready: %d\n", select(maxfd + 1, &rs, NULL, NULL, &tv));
    write(p[3][1], "a", 1);
    write(p[17][1], "b", 1);
    write(p[39][1], "c", 1);
    FD_ZERO(&rs);
    for (int i = 0; i < 40; i++)
        FD_SET(p[i][0], &rs);
    int n = select(maxfd + 1, &rs, NULL, NULL, NULL);
    printf("ready: %d ->", n);
    for (int i = 0; i < 40; i++)
        if (FD_ISSET(p[i][0], &rs))
            printf(" %d", i);
    printf("\n");
    fd_set ws;
    FD_ZERO(&ws);
    FD_SET(p[5][1], &ws);
    printf("write end writable: %d\n", select(maxfd + 1, NULL, &ws, NULL, &tv));
    struct timespec ts = {0, 30000000};
    sigset_t mask;
    sigemptyset(&mask);
    FD_ZERO(&rs);
    FD_SET(p[0][0], &rs);
    printf("pselect timeout: %d\n", pselect(maxfd + 1, &rs, NULL, NULL, &ts, &mask));
    timeouts();
    restarts();

    shm_unlink("/umlpy_shm");
    int fd = shm_open("/umlpy_shm", O_CREAT | O_EXCL | O_RDWR, 0600);
    printf("shm_open: %d\n", fd >= 0);
    ftruncate(fd, 4096);
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    pid_t c = fork();
    if (c == 0) {
        int cfd = shm_open("/umlpy_shm", O_RDWR, 0);
        char *cm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        strcpy(cm + 100, "child wrote this");
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("parent sees: %s\n", m + 100);
    int u = shm_unlink("/umlpy_shm");
    int again = shm_open("/umlpy_shm", O_RDWR, 0);
    printf("shm_unlink: %d, open after: %d %s\n", u, again, strerrorname_np(errno));
    printf("done\n");
    return 0;
}
