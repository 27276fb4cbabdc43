/* Assorted syscalls: uname, cwd, ids, getrandom, clocks, memory (brk, mmap,
 * mprotect), kill, rename/renameat2, symlink, mkdir/rmdir errors, O_EXCL,
 * pread/pwrite, readv/writev, lseek.  Works in ARGV1/misc. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

static void res(const char *what, long r)
{
    if (r < 0)
        printf("%s: %ld %s\n", what, r, en(errno));
    else
        printf("%s: %ld\n", what, r);
}

static void cleanup(void)
{
    const char *f[] = {"misc/f", "misc/g", "misc/h", "misc/sl", "misc/x", "misc/io",
                       "misc/d/inner", "misc/d2/inner"};
    for (unsigned i = 0; i < sizeof f / sizeof f[0]; i++)
        unlink(f[i]);
    const char *d[] = {"misc/a/b", "misc/a", "misc/d", "misc/d2", "misc"};
    for (unsigned i = 0; i < sizeof d / sizeof d[0]; i++)
        rmdir(d[i]);
}

static int mkfile(const char *p, const char *data)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, data, strlen(data));
    close(fd);
    return n == (ssize_t)strlen(data) ? 0 : -1;
}

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
    struct utsname u;
    res("uname", uname(&u));
    printf("sysname=%s machine=%s\n", u.sysname, u.machine);

    /* cwd */
    char base[4096], cwd[4096];
    if (chdir(argc > 1 ? argv[1] : ".") != 0 || !getcwd(base, sizeof base)) {
        printf("chdir/getcwd: %s\n", en(errno));
        return 1;
    }
    cleanup();
    umask(022);
    res("mkdir misc", mkdir("misc", 0755));
    res("mkdir misc/a", mkdir("misc/a", 0755));
    res("mkdir misc/a/b", mkdir("misc/a/b", 0755));
    res("chdir misc/a/b", chdir("misc/a/b"));
    if (getcwd(cwd, sizeof cwd))
        printf("getcwd relative to argv[1]: %s\n",
               strncmp(cwd, base, strlen(base)) == 0 ? cwd + strlen(base) : "(outside)");
    res("chdir ../..", chdir("../.."));
    if (getcwd(cwd, sizeof cwd))
        printf("getcwd relative to argv[1]: %s\n", cwd + strlen(base));
    res("chdir ..", chdir(".."));
    if (getcwd(cwd, sizeof cwd))
        printf("getcwd == argv[1]: %d\n", strcmp(cwd, base) == 0);
    res("chdir misc/nonexistent", chdir("misc/nonexistent"));
    res("getcwd small buffer", getcwd(cwd, 2) ? 0 : -1);

    /* umask and ids */
    printf("umask(027) -> old %04o\n", umask(027));
    printf("umask(022) -> old %04o\n", umask(022));
    printf("uid=%d euid=%d gid=%d egid=%d\n", (int)getuid(), (int)geteuid(),
           (int)getgid(), (int)getegid());
    printf("getpid stable: %d, getppid > 0: %d\n", getpid() == getpid(), getppid() > 0);

    /* getrandom */
    unsigned char rb[64];
    memset(rb, 0, sizeof rb);
    res("getrandom 32", getrandom(rb, 32, 0));
    res("getrandom 0", getrandom(rb, 0, 0));
    res("getrandom GRND_NONBLOCK 16", getrandom(rb, 16, GRND_NONBLOCK));

    /* clocks and sleep */
    int mono_ok = 1;
    double prev = now(CLOCK_MONOTONIC);
    for (int i = 0; i < 200; i++) {
        double t = now(CLOCK_MONOTONIC);
        mono_ok &= t >= prev;
        prev = t;
    }
    printf("CLOCK_MONOTONIC non-decreasing: %d\n", mono_ok);
    printf("CLOCK_REALTIME after 2020: %d\n", now(CLOCK_REALTIME) > 1577836800.0);
    double t0 = now(CLOCK_MONOTONIC);
    struct timespec ts = {0, 10000000};
    res("nanosleep 10ms", nanosleep(&ts, NULL));
    printf("slept at least 10ms: %d\n", now(CLOCK_MONOTONIC) - t0 >= 0.0099);
    struct timespec bad = {0, 2000000000};
    res("nanosleep bad tv_nsec", nanosleep(&bad, NULL));
    res("sched_yield", sched_yield());

    /* brk / malloc */
    enum { TEN_MB = 10 << 20 };
    char *b0 = sbrk(0);
    char *b1 = sbrk(TEN_MB);
    printf("sbrk(10MB) ok: %d, returns old break: %d\n", b1 != (void *)-1, b1 == b0);
    if (b1 != (void *)-1) {
        for (long i = 0; i < TEN_MB; i += 4096)
            b1[i] = (char)i;
        printf("sbrk memory readable: %d\n", b1[TEN_MB - 4096] == (char)(TEN_MB - 4096));
        printf("break moved by 10MB: %d\n", (char *)sbrk(0) - b0 == TEN_MB);
        sbrk(-TEN_MB);
        printf("break restored: %d\n", sbrk(0) == b0);
    }
    char *m = malloc(TEN_MB);
    if (m) {
        memset(m, 0x5a, TEN_MB);
        long sum = 0;
        for (long i = 0; i < TEN_MB; i += 1024)
            sum += m[i];
        printf("malloc 10MB: sum=%ld\n", sum);
        free(m);
    }

    /* mmap / mprotect / munmap */
    char *mp = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap 1MB: %s\n", mp == MAP_FAILED ? en(errno) : "ok");
    printf("anonymous memory zeroed: %d\n", mp[0] == 0 && mp[(1 << 20) - 1] == 0);
    memset(mp, 7, 1 << 20);
    res("mprotect PROT_READ", mprotect(mp, 4096, PROT_READ));
    printf("read after mprotect: %d\n", mp[100]);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        mp[0] = 1;          /* must fault */
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("child writing read-only page: signaled=%d sig=%s\n", WIFSIGNALED(st),
           WIFSIGNALED(st) ? sigabbrev_np(WTERMSIG(st)) : "-");
    res("mprotect PROT_READ|PROT_WRITE", mprotect(mp, 4096, PROT_READ | PROT_WRITE));
    mp[0] = 9;
    printf("write after restore: %d\n", mp[0]);
    res("munmap 1MB", munmap(mp, 1 << 20));
    res("mmap length 0", mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0);
    res("munmap unaligned", munmap((char *)b0 + 1, 4096));

    /* kill */
    res("kill(getpid(), 0)", kill(getpid(), 0));
    res("kill(nonexistent, 0)", kill(2147483000, 0));
    res("kill(getpid(), bad signal)", kill(getpid(), 1000));

    /* files: rename, symlink, mkdir/rmdir, O_EXCL */
    mkfile("misc/f", "F");
    mkfile("misc/g", "G");
    res("rename f -> h", rename("misc/f", "misc/h"));
    res("access f", access("misc/f", F_OK));
    res("renameat2 h -> g NOREPLACE", renameat2(AT_FDCWD, "misc/h", AT_FDCWD, "misc/g", RENAME_NOREPLACE));
    res("rename h -> g (replace)", rename("misc/h", "misc/g"));
    char buf[64] = {0};
    int fd = open("misc/g", O_RDONLY);
    res("read g", read(fd, buf, sizeof buf - 1));
    printf("g contains: %s\n", buf);
    close(fd);
    res("rename nonexistent", rename("misc/nonexistent", "misc/x"));
    res("mkdir misc/d", mkdir("misc/d", 0755));
    res("mkdir misc/d again", mkdir("misc/d", 0755));
    mkfile("misc/d/inner", "I");
    res("rmdir misc/d", rmdir("misc/d"));
    res("rename d -> d/sub (into itself)", rename("misc/d", "misc/d/sub"));
    res("rename g -> d (file onto dir)", rename("misc/g", "misc/d"));
    res("rename d -> d2", rename("misc/d", "misc/d2"));
    res("access d2/inner", access("misc/d2/inner", F_OK));
    res("symlink", symlink("d2/inner", "misc/sl"));
    memset(buf, 0, sizeof buf);
    res("readlink", readlink("misc/sl", buf, sizeof buf));
    printf("readlink: %s\n", buf);
    res("symlink existing", symlink("x", "misc/sl"));
    res("open O_CREAT|O_EXCL existing", open("misc/g", O_WRONLY | O_CREAT | O_EXCL, 0644));
    res("open O_CREAT|O_EXCL on symlink", open("misc/sl", O_WRONLY | O_CREAT | O_EXCL, 0644));
    res("open nonexistent", open("misc/nonexistent", O_RDONLY));
    res("open dir O_WRONLY", open("misc/d2", O_WRONLY));

    /* pread/pwrite, readv/writev, lseek */
    fd = open("misc/io", O_RDWR | O_CREAT | O_TRUNC, 0644);
    struct iovec iov[3] = {{"abc", 3}, {"", 0}, {"defgh", 5}};
    res("writev 3 iovecs", writev(fd, iov, 3));
    res("pwrite 'XY' at 2", pwrite(fd, "XY", 2, 2));
    res("offset after pwrite", lseek(fd, 0, SEEK_CUR));
    memset(buf, 0, sizeof buf);
    res("pread 4 at 1", pread(fd, buf, 4, 1));
    printf("pread data: %s\n", buf);
    res("lseek SEEK_END -3", lseek(fd, -3, SEEK_END));
    res("lseek SEEK_CUR +1", lseek(fd, 1, SEEK_CUR));
    memset(buf, 0, sizeof buf);
    char b1s[2] = {0}, b2s[8] = {0};
    struct iovec riov[2] = {{b1s, 1}, {b2s, 7}};
    res("readv", readv(fd, riov, 2));
    printf("readv data: %s|%s\n", b1s, b2s);
    res("lseek 100 past end", lseek(fd, 100, SEEK_END));
    res("write after hole", write(fd, "Z", 1));
    res("file size via SEEK_END", lseek(fd, 0, SEEK_END));
    memset(buf, 1, sizeof buf);
    res("pread from hole", pread(fd, buf, 4, 50));
    printf("hole bytes: %d %d %d %d\n", buf[0], buf[1], buf[2], buf[3]);
    res("pread at EOF", pread(fd, buf, 4, 1000));
    res("pwrite negative offset", pwrite(fd, "x", 1, -1));
    int pp[2];
    if (pipe(pp) == 0) {
        res("lseek on pipe", lseek(pp[0], 0, SEEK_SET));
        res("pread on pipe", pread(pp[0], buf, 1, 0));
        close(pp[0]);
        close(pp[1]);
    }
    close(fd);

    cleanup();
    printf("done\n");
    return 0;
}
