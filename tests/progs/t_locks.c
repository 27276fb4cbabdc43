/* flock, POSIX record locks and OFD locks between processes and file
   descriptions.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *en(int r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static int lk(int fd, int cmd, short type, off_t start, off_t len, struct flock *out)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    int r = fcntl(fd, cmd, &fl);
    if (out)
        *out = fl;
    return r;
}

/* /proc/locks' lines for this test's file (the host has others): each
   lock's kind, type, whether its pid is ours (-1 for OFD locks), range */
static void proc_locks(const char *path)
{
    if (access("/proc/self", F_OK) != 0)
        mount("proc", "/proc", "proc", 0, NULL);    /* a guest whose init mounted none */
    char p2[600], p3[600];
    snprintf(p2, sizeof p2, "%s.2", path);
    snprintf(p3, sizeof p3, "%s.3", path);
    int a = open(path, O_RDWR), b = open(p2, O_RDWR | O_CREAT, 0644), c = open(p3, O_RDWR | O_CREAT, 0644);
    flock(a, LOCK_SH);
    lk(b, F_SETLK, F_WRLCK, 2, 4, NULL);
    lk(c, F_OFD_SETLK, F_RDLCK, 7, 0, NULL);
    struct stat sa, sb, sc;
    fstat(a, &sa);
    fstat(b, &sb);
    fstat(c, &sc);
    FILE *f = fopen("/proc/locks", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        char kind[16], adv[16], type[16], range[64];
        int pid;
        unsigned maj, min;
        unsigned long ino;
        if (sscanf(line, "%*d: %15s %15s %15s %d %x:%x:%lu %63[^\n]", kind, adv, type, &pid, &maj, &min, &ino,
                   range) != 8)
            continue;
        const char *which = NULL;
        if (ino == sa.st_ino && makedev(maj, min) == sa.st_dev)
            which = "file";
        else if (ino == sb.st_ino && makedev(maj, min) == sb.st_dev)
            which = "file.2";
        else if (ino == sc.st_ino && makedev(maj, min) == sc.st_dev)
            which = "file.3";
        if (which)
            printf("/proc/locks %s: %s %s %s pid %s [%s]\n", which, kind, adv, type,
                   pid == getpid() ? "mine" : pid == -1 ? "-1" : "other", range);
    }
    if (f)
        fclose(f);
    close(a);
    close(b);
    close(c);
    unlink(p2);
    unlink(p3);
}

/* what another process's F_GETLK finds of ours: one lock where ours of a
   type overlap or border (posix_lock_inode merges them), pieces where a
   lock of another type cuts one */
static void seen(int fd, const char *what)
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct flock fl;
        for (off_t at = 0; at < 40; at = fl.l_len ? fl.l_start + fl.l_len : 40) {
            lk(fd, F_GETLK, F_WRLCK, at, 0, &fl);
            if (fl.l_type == F_UNLCK)
                break;
            printf("  %s: %s [%ld, +%ld)\n", what, fl.l_type == F_RDLCK ? "read" : "write",
                   (long)fl.l_start, (long)fl.l_len);
        }
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    lk(fd, F_SETLK, F_UNLCK, 0, 0, NULL);
}

static void merging(int fd)
{
    /* each case: its locks, taken in order (type, start, length), then seen */
    static const struct { const char *what; short l[3][3]; } cases[] = {
        {"adjacent", {{F_WRLCK, 0, 1}, {F_WRLCK, 1, 1}}},
        {"overlapping", {{F_WRLCK, 5, 5}, {F_WRLCK, 3, 4}, {F_WRLCK, 20, 2}}},
        {"a write inside a read", {{F_RDLCK, 0, 10}, {F_WRLCK, 4, 2}}},
        {"bordering types", {{F_WRLCK, 0, 10}, {F_RDLCK, 10, 5}, {F_WRLCK, 15, 5}}},
        {"to the end", {{F_WRLCK, 20, 0}, {F_WRLCK, 10, 10}}},
        {"a hole, partly filled", {{F_WRLCK, 0, 30}, {F_UNLCK, 10, 5}, {F_WRLCK, 12, 2}}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int j = 0; j < 3 && cases[i].l[j][0] | cases[i].l[j][1] | cases[i].l[j][2]; j++)
            lk(fd, F_SETLK, cases[i].l[j][0], cases[i].l[j][1], cases[i].l[j][2], NULL);
        seen(fd, cases[i].what);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/lockfile", argc > 1 ? argv[1] : ".");
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    write(fd, "0123456789", 10);
    int pp[2];
    pipe(pp);

    printf("flock EX: %d\n", flock(fd, LOCK_EX));
    pid_t c = fork();
    if (c == 0) {
        int f2 = open(path, O_RDWR);
        int r = flock(f2, LOCK_EX | LOCK_NB);
        printf("child flock EX|NB: %d %s\n", r, en(r));
        write(pp[1], "x", 1);
        r = flock(f2, LOCK_EX);        /* waits for the parent's unlock */
        printf("child flock EX after wait: %d\n", r);
        _exit(0);
    }
    char b;
    read(pp[0], &b, 1);
    usleep(20000);
    flock(fd, LOCK_UN);
    waitpid(c, NULL, 0);

    printf("setlk write [0,5): %d\n", lk(fd, F_SETLK, F_WRLCK, 0, 5, NULL));
    c = fork();
    if (c == 0) {
        int f2 = open(path, O_RDWR);
        struct flock got;
        lk(f2, F_GETLK, F_RDLCK, 2, 1, &got);
        printf("child getlk: type WR=%d start=%lld len=%lld pid is parent=%d\n", got.l_type == F_WRLCK,
               (long long)got.l_start, (long long)got.l_len, got.l_pid == getppid());
        int r = lk(f2, F_SETLK, F_WRLCK, 4, 2, NULL);
        printf("child setlk overlapping: %d %s\n", r, en(r));
        printf("child setlk beyond: %d\n", lk(f2, F_SETLK, F_WRLCK, 5, 5, NULL));
        write(pp[1], "y", 1);
        r = lk(f2, F_SETLKW, F_WRLCK, 0, 5, NULL);   /* waits until the parent closes */
        printf("child setlkw after parent's close: %d\n", r);
        _exit(0);
    }
    read(pp[0], &b, 1);
    usleep(20000);
    int dupfd = open(path, O_RDONLY);
    close(dupfd);                       /* any close drops the process's record locks */
    waitpid(c, NULL, 0);

    int a = open(path, O_RDWR), d = open(path, O_RDWR);
    printf("ofd lock on a: %d\n", lk(a, F_OFD_SETLK, F_WRLCK, 0, 0, NULL));
    int r = lk(d, F_OFD_SETLK, F_WRLCK, 0, 1, NULL);
    printf("ofd lock on d conflicts: %d %s\n", r, en(r));
    struct flock got;
    lk(d, F_OFD_GETLK, F_WRLCK, 0, 1, &got);
    printf("ofd getlk pid: %d\n", got.l_pid);
    close(a);
    printf("after closing a: %d\n", lk(d, F_OFD_SETLK, F_WRLCK, 0, 1, NULL));
    close(d);

    /* deadlock detection: the child holds [6,7) and waits for our [5,6);
     * our wait for its [6,7) would close the circle: EDEADLK.  OFD locks
     * are not checked (the child's OFD wait is not part of any circle). */
    printf("setlk [5,6): %d\n", lk(fd, F_SETLK, F_WRLCK, 5, 1, NULL));
    c = fork();
    if (c == 0) {
        int f2 = open(path, O_RDWR);
        printf("child setlk [6,7): %d\n", lk(f2, F_SETLK, F_WRLCK, 6, 1, NULL));
        write(pp[1], "z", 1);
        r = lk(f2, F_SETLKW, F_WRLCK, 5, 1, NULL);
        printf("child setlkw [5,6) once free: %d\n", r);
        _exit(0);
    }
    read(pp[0], &b, 1);
    usleep(50000);
    r = lk(fd, F_SETLKW, F_WRLCK, 6, 1, NULL);
    printf("setlkw [6,7) would deadlock: %d %s\n", r, en(r));
    r = lk(fd, F_SETLK, F_WRLCK, 6, 1, NULL);
    printf("setlk [6,7) still held: %d %s\n", r, en(r));
    lk(fd, F_SETLK, F_UNLCK, 5, 1, NULL);
    waitpid(c, NULL, 0);
    merging(fd);
    proc_locks(path);
    unlink(path);
    printf("done\n");
    return 0;
}
