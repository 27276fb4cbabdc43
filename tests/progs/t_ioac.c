/* /proc/PID/io: what the read and write calls of the file API count
   (rchar, wchar, syscr, syscw) and what they do not (send, recv, splice,
   calls refused before the file is asked), a thread's own figures and
   its process's after it ended, a child's after the wait, and who may
   read them.  Deterministic, so the same natively and in the guest: the
   figures of each step are differences, less the read of the snapshot
   itself, and nothing is printed until the end (a write to stdout would
   count).  t_ioac DIR: a scratch directory for the file steps.
   t_ioac -disk FILE DIR: the block-layer figures for the guest's disk
   (read_bytes for FILE, read cold, cached, and again after
   vm.drop_caches; write_bytes and ru_oublock for a write in DIR), which
   natively need a host file system and its caches dropped first. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

enum { RCHAR, WCHAR, SYSCR, SYSCW, RBYTES, WBYTES, CBYTES, N };
static const char *names[N] = {"rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes",
                               "cancelled_write_bytes"};
static char out[16384];
static size_t used;

#define say(...) (used += snprintf(out + used, sizeof out - used, __VA_ARGS__))

struct io {
    long long v[N];
    long long len;      /* the bytes this snapshot's read returned */
};

/* the figures of path (/proc/self/io, ...); len -1 unless all seven came
   in Linux's order */
static void snap(const char *path, struct io *s)
{
    char b[1024];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, b, sizeof b - 1);
    if (fd >= 0)
        close(fd);
    memset(s, 0, sizeof *s);
    if (n <= 0) {
        s->len = -1;
        return;
    }
    b[n] = 0;
    s->len = n;
    char *p = b;
    for (int i = 0; i < N; i++) {
        size_t k = strlen(names[i]);
        if (strncmp(p, names[i], k) || p[k] != ':' || p[k + 1] != ' ') {
            s->len = -1;
            return;
        }
        s->v[i] = strtoll(p + k + 1, &p, 10);
        if (*p++ != '\n') {
            s->len = -1;
            return;
        }
    }
    if (*p)
        s->len = -1;
}

/* the figures from a to b, less a's own read */
static void delta(const char *what, const struct io *a, const struct io *b)
{
    say("%s: syscr %lld syscw %lld rchar %lld wchar %lld\n", what, b->v[SYSCR] - a->v[SYSCR] - 1,
        b->v[SYSCW] - a->v[SYSCW], b->v[RCHAR] - a->v[RCHAR] - a->len, b->v[WCHAR] - a->v[WCHAR]);
}

static int tp[2], sync_p[2], go_p[2];
static pid_t tid;

static void *thread_main(void *arg)
{
    char c = 0;
    (void)arg;
    tid = gettid();
    write(tp[1], "seven!!", 7);
    write(sync_p[1], "s", 1);
    read(go_p[0], &c, 1);
    return NULL;
}

static int file_steps(const char *dir)
{
    struct io a, b;
    char buf[2048], path[4096];
    int p[2];
    memset(buf, 'x', sizeof buf);

    snap("/proc/self/io", &a);
    say("format: %s\n", a.len > 0 ? "ok" : "bad");

    /* a pipe: write, writev, read, readv */
    pipe(p);
    struct iovec iv[2] = {{buf, 200}, {buf + 200, 200}};
    snap("/proc/self/io", &a);
    write(p[1], buf, 600);
    writev(p[1], iv, 2);
    read(p[0], buf, 500);
    struct iovec rv[2] = {{buf, 250}, {buf + 250, 250}};
    readv(p[0], rv, 2);
    snap("/proc/self/io", &b);
    delta("pipe", &a, &b);

    /* failed calls: counted once the file was asked, not before */
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    signal(SIGPIPE, SIG_IGN);
    snap("/proc/self/io", &a);
    int r1 = read(p[0], buf, 10), e1 = errno;              /* EAGAIN: counted */
    int r2 = read(-1, buf, 10), e2 = errno;                /* EBADF: not */
    int r3 = read(p[0], (void *)-4096L, 10), e3 = errno;   /* EFAULT by access_ok: not */
    int r4 = write(p[0], buf, 1), e4 = errno;              /* EBADF (read end): not */
    snap("/proc/self/io", &b);
    delta("failed", &a, &b);
    say("errors: %d %s, %d %s, %d %s, %d %s\n", r1, strerrorname_np(e1), r2, strerrorname_np(e2),
        r3, strerrorname_np(e3), r4, strerrorname_np(e4));
    /* readv and writev count every call, a bad fd's or iovec's too */
    snap("/proc/self/io", &a);
    int r6 = readv(-1, rv, 2), e6 = errno;
    int r7 = writev(p[1], (struct iovec *)-4096L, 1), e7 = errno;
    int r8 = readv(p[0], rv, 2), e8 = errno;               /* EAGAIN */
    snap("/proc/self/io", &b);
    delta("failed vectors", &a, &b);
    say("errors: %d %s, %d %s, %d %s\n", r6, strerrorname_np(e6), r7, strerrorname_np(e7),
        r8, strerrorname_np(e8));
    close(p[0]);
    snap("/proc/self/io", &a);
    int r5 = write(p[1], buf, 1), e5 = errno;             /* EPIPE: counted */
    snap("/proc/self/io", &b);
    delta("epipe", &a, &b);
    say("epipe: %d %s\n", r5, strerrorname_np(e5));
    close(p[1]);

    /* a socket: read and write count, send and recv do not */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    snap("/proc/self/io", &a);
    send(sv[0], buf, 10, 0);
    recv(sv[1], buf, 10, 0);
    snap("/proc/self/io", &b);
    delta("send/recv", &a, &b);
    snap("/proc/self/io", &a);
    write(sv[0], buf, 11);
    read(sv[1], buf, 11);
    snap("/proc/self/io", &b);
    delta("socket read/write", &a, &b);
    close(sv[0]);
    close(sv[1]);

    /* a file: pwrite, pread, sendfile, copy_file_range */
    snprintf(path, sizeof path, "%s/ioac.dat", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    snprintf(path, sizeof path, "%s/ioac2.dat", dir);
    int fd2 = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    snap("/proc/self/io", &a);
    pwrite(fd, buf, 100, 0);
    pread(fd, buf, 100, 0);
    snap("/proc/self/io", &b);
    delta("pwrite/pread", &a, &b);
    pipe(p);
    snap("/proc/self/io", &a);
    off_t o = 0;
    sendfile(p[1], fd, &o, 100);
    snap("/proc/self/io", &b);
    delta("sendfile", &a, &b);
    snap("/proc/self/io", &a);
    loff_t i0 = 0, i1 = 0;
    copy_file_range(fd, &i0, fd2, &i1, 100, 0);
    snap("/proc/self/io", &b);
    delta("copy_file_range", &a, &b);
    int q[2];
    pipe(q);
    snap("/proc/self/io", &a);
    splice(p[0], NULL, q[1], NULL, 100, 0);
    snap("/proc/self/io", &b);
    delta("splice", &a, &b);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
    close(fd);
    close(fd2);
    unlink(path);
    snprintf(path, sizeof path, "%s/ioac.dat", dir);
    unlink(path);

    /* a thread: its own figures, then its process's once it ended */
    pipe(tp);
    pipe(sync_p);
    pipe(go_p);
    pthread_t th;
    snap("/proc/self/io", &a);
    pthread_create(&th, NULL, thread_main, NULL);
    char c;
    read(sync_p[0], &c, 1);
    char tpath[64];
    struct io ti;
    snprintf(tpath, sizeof tpath, "/proc/self/task/%d/io", tid);
    snap(tpath, &ti);
    say("thread: syscr %lld syscw %lld rchar %lld wchar %lld\n", ti.v[SYSCR], ti.v[SYSCW], ti.v[RCHAR],
        ti.v[WCHAR]);
    write(go_p[1], "g", 1);
    pthread_join(th, NULL);
    snap("/proc/self/io", &b);
    b.v[RCHAR] -= ti.len;
    delta("thread ended (with the main's 2 pipe calls and task/TID/io's read)", &a, &b);

    /* a child: its figures join the parent's at the wait */
    pid_t pid = fork();
    if (pid == 0) {
        write(tp[1], "child", 5);
        _exit(0);
    }
    snap("/proc/self/io", &a);
    char tmp[64];
    read(tp[0], tmp, 7);            /* the thread's */
    read(tp[0], tmp, 5);            /* the child's: it wrote, maybe not exited */
    int st;
    snap("/proc/self/io", &b);
    delta("child unwaited", &a, &b);
    waitpid(pid, &st, 0);
    snap("/proc/self/io", &a);
    delta("child waited", &b, &a);

    /* another user may not read it */
    pid = fork();
    if (pid == 0) {
        if (getuid() == 0 && setuid(65534))
            _exit(2);
        int f = open("/proc/1/io", O_RDONLY);
        char x[256];
        int n = f < 0 ? -1 : (int)read(f, x, sizeof x);
        _exit(n < 0 && (errno == EACCES) ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    say("another user's /proc/1/io: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "EACCES" : "readable");
    say("done\n");
    fwrite(out, 1, used, stdout);
    return 0;
}

static void drop_caches(void)
{
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    write(fd, "1", 1);
    close(fd);
}

static int disk_steps(const char *file, const char *dir)
{
    struct io a, b;
    struct rusage ra, rb;
    char buf[65536], path[4096];
    int fd = open(file, O_RDONLY);
    if (fd < 0)
        return 1;
    long long size = 0, n;
    snap("/proc/self/io", &a);
    while ((n = read(fd, buf, sizeof buf)) > 0)
        size += n;
    snap("/proc/self/io", &b);
    say("cold read of %lld bytes: read_bytes %s\n", size,
        b.v[RBYTES] - a.v[RBYTES] >= size ? "at least the file" : "less");
    lseek(fd, 0, SEEK_SET);
    snap("/proc/self/io", &a);
    while (read(fd, buf, sizeof buf) > 0)
        ;
    snap("/proc/self/io", &b);
    say("cached read: read_bytes %lld\n", b.v[RBYTES] - a.v[RBYTES]);

    /* vm.drop_caches: root may write it, nobody read it; 1 drops the page cache */
    int dc = open("/proc/sys/vm/drop_caches", O_RDONLY);
    say("drop_caches read: %s\n", dc < 0 ? strerrorname_np(errno) : "opened");
    dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
    int bad = write(dc, "0", 1) < 0 ? errno : 0;
    sync();
    int ok = write(dc, "1", 1);
    close(dc);
    say("drop_caches write: 0 %s, 1 %d\n", strerrorname_np(bad), ok);
    lseek(fd, 0, SEEK_SET);
    snap("/proc/self/io", &a);
    while (read(fd, buf, sizeof buf) > 0)
        ;
    snap("/proc/self/io", &b);
    say("read after drop_caches: read_bytes %s\n",
        b.v[RBYTES] - a.v[RBYTES] >= size ? "at least the file" : "less");
    close(fd);

    /* what drop_caches may not lose: data not yet on the disk, pages a
       mapping holds or wrote */
    char got[16] = "";
    snprintf(path, sizeof path, "%s/ioac-new.dat", dir);
    fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    write(fd, "unsynced", 8);
    drop_caches();
    pread(fd, got, 8, 0);
    say("unsynced write after drop_caches: %.8s\n", got);
    close(fd);
    unlink(path);
    fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    ftruncate(fd, 8192);
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memcpy(m, "mapped-1", 8);
    drop_caches();
    pread(fd, got, 8, 0);
    say("a mapped page after drop_caches: %.8s\n", got);
    memcpy(m + 4096, "mapped-2", 8);
    munmap(m, 8192);
    drop_caches();
    pread(fd, got, 8, 4096);
    say("an unmapped page after drop_caches: %.8s\n", got);
    close(fd);
    unlink(path);

    snprintf(path, sizeof path, "%s/ioac-disk.dat", dir);
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    getrusage(RUSAGE_SELF, &ra);
    snap("/proc/self/io", &a);
    write(fd, buf, 10000);
    snap("/proc/self/io", &b);
    getrusage(RUSAGE_SELF, &rb);
    say("write of 10000 bytes: write_bytes %lld, ru_oublock %ld, cancelled %lld\n",
        b.v[WBYTES] - a.v[WBYTES], rb.ru_oublock - ra.ru_oublock, b.v[CBYTES] - a.v[CBYTES]);
    say("ru_inblock %s\n", rb.ru_inblock * 512 >= size ? "at least the file" : "less");
    close(fd);
    snap("/proc/self/io", &a);
    unlink(path);               /* its dirty pages never reach the disk */
    snap("/proc/self/io", &b);
    say("unlinked before write-back: cancelled %lld\n", b.v[CBYTES] - a.v[CBYTES]);

    pid_t pid = fork();
    if (pid == 0) {
        fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
        write(fd, buf, 4096);
        close(fd);
        _exit(0);
    }
    struct rusage rc;
    int st;
    wait4(pid, &st, 0, &rc);
    getrusage(RUSAGE_CHILDREN, &ra);
    say("child's write: wait4 ru_oublock %ld, RUSAGE_CHILDREN ru_oublock %ld\n", rc.ru_oublock, ra.ru_oublock);
    unlink(path);
    say("done\n");
    fwrite(out, 1, used, stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "-disk"))
        return disk_steps(argv[2], argv[3]);
    return file_steps(argc > 1 ? argv[1] : "/tmp");
}
