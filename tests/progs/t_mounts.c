/* The mount tree: bind and recursive bind mounts, MS_MOVE and its
 * errors, remount of a bind read-only, propagation types as mountinfo
 * shows them, mount_setattr, open_tree + move_mount, and the per-mount
 * flags enforced (rdonly, nodev, noexec, nosymfollow, atime policies).
 * Needs root; runs in a mount namespace of its own made private first, so
 * nothing of the host's mount tree changes.  Works in a tmpfs below DIR. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif
#ifndef ST_NOSYMFOLLOW
#define ST_NOSYMFOLLOW 0x2000
#endif

struct attr { uint64_t set, clr, propagation, userns_fd; };
#define A_RDONLY 0x1
#define A_NOSUID 0x2
#define A_NODEV 0x4
#define A_NOEXEC 0x8
#define A__ATIME 0x70
#define A_NOATIME 0x10
#define A_STRICTATIME 0x20
#define A_NODIRATIME 0x80
#define A_IDMAP 0x100000
#define A_NOSYMFOLLOW 0x200000
#define AT_REC 0x8000
#define OT_CLONE 1
#define MM_F_EMPTY 4

static char top[600];

static char *at(const char *name)
{
    return path_in(top, name);
}

static long setattr(const char *path, int flags, struct attr *a, size_t size)
{
    return syscall(SYS_mount_setattr, AT_FDCWD, path, flags, a, size);
}

/* mountinfo lines of the mounts below top: point, root, options, the
 * propagation words without their numbers (which the host's other mounts
 * decide), and whether a master is the shared group of another line */
static void info(const char *what)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[2048];
    int groups[64], n = 0;
    printf("%s:\n", what);
    if (!f) {
        printf("  no mountinfo\n");
        return;
    }
    while (fgets(line, sizeof line, f)) {
        char root[512], point[512], opts[256], rest[1024], fstype[64];
        if (sscanf(line, "%*d %*d %*d:%*d %511s %511s %255s %1023[^\n]", root, point, opts, rest) != 4)
            continue;
        size_t tl = strlen(top);
        if (strncmp(point, top, tl) != 0 || (point[tl] && point[tl] != '/'))
            continue;
        printf("  %s root=%s %s", point[tl] ? point + tl + 1 : ".", root, opts);
        char *tok = strtok(rest, " ");
        while (tok && strcmp(tok, "-") != 0) {
            int g = 0;
            if (sscanf(tok, "shared:%d", &g) == 1) {
                int k;
                for (k = 0; k < n && groups[k] != g; k++)
                    ;
                if (k == n && n < 64)
                    groups[n++] = g;
                printf(" shared#%d", k);
            } else if (sscanf(tok, "master:%d", &g) == 1) {
                int k;
                for (k = 0; k < n && groups[k] != g; k++)
                    ;
                printf(" master#%d", k);
            } else {
                printf(" %s", tok);
            }
            tok = strtok(NULL, " ");
        }
        tok = strtok(NULL, " ");
        if (tok && sscanf(tok, "%63s", fstype) == 1)
            printf(" %s", fstype);
        printf("\n");
    }
    fclose(f);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int same_dev(const char *a, const char *b)
{
    struct stat x, y;
    if (stat(a, &x) || stat(b, &y))
        return -1;
    return x.st_dev == y.st_dev;
}

static void put(const char *p, const char *s)
{
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0755);
    if (fd < 0) {
        printf("put %s: %s\n", p, en(errno));
        return;
    }
    if (write(fd, s, strlen(s)) < 0)
        printf("write: %s\n", en(errno));
    close(fd);
}

static void fsflags(const char *what, const char *p)
{
    struct statfs s;
    if (statfs(p, &s)) {
        printf("%s statfs: %s\n", what, en(errno));
        return;
    }
    printf("%s:%s%s%s%s%s%s%s%s\n", what, s.f_flags & ST_RDONLY ? " rdonly" : "",
           s.f_flags & ST_NOSUID ? " nosuid" : "", s.f_flags & ST_NODEV ? " nodev" : "",
           s.f_flags & ST_NOEXEC ? " noexec" : "", s.f_flags & ST_NOATIME ? " noatime" : "",
           s.f_flags & ST_NODIRATIME ? " nodiratime" : "", s.f_flags & ST_RELATIME ? " relatime" : "",
           s.f_flags & ST_NOSYMFOLLOW ? " nosymfollow" : "");
}

static void binds(void)
{
    mkdir(at("a"), 0755);
    mkdir(at("a/sub"), 0755);
    mkdir(at("b"), 0755);
    mkdir(at("c"), 0755);
    mkdir(at("d"), 0755);
    put(at("a/f"), "hello\n");
    res("bind a b", mount(at("a"), at("b"), NULL, MS_BIND, NULL));
    printf("b/f %d same dev %d\n", exists(at("b/f")), same_dev(at("a"), at("b")));
    res("unlink b/f", unlink(at("b/f")));
    printf("a/f after unlink through b: %d\n", exists(at("a/f")));
    put(at("a/f"), "again\n");
    printf("b/f back: %d\n", exists(at("b/f")));
    mkdir(at("a/d1"), 0755);
    mkdir(at("a/d1/in"), 0755);
    printf("a/d1/in %d b/d1/in %d\n", exists(at("a/d1/in")), exists(at("b/d1/in")));
    res("rename through b", rename(at("b/d1"), at("b/d2")));
    printf("a/d1 %d a/d2/in %d\n", exists(at("a/d1")), exists(at("a/d2/in")));
    res("rename into itself across mounts", rename(at("b/d2"), at("a/d2/in/x")));
    res("rename into itself", rename(at("a/d2"), at("a/d2/in/x")));
    res("rename back through a", rename(at("a/d2"), at("a/d1")));
    printf("b/d2 %d b/d1/in %d\n", exists(at("b/d2")), exists(at("b/d1/in")));
    res("rmdir through a", rmdir(at("a/d1/in")));
    res("rmdir through b", rmdir(at("b/d1")));
    printf("a/d1 %d\n", exists(at("a/d1")));
    res("bind missing source", mount(at("nope"), at("c"), NULL, MS_BIND, NULL));
    res("bind dir on file", mount(at("a"), at("a/f"), NULL, MS_BIND, NULL));
    res("bind file on file", mount(at("a/f"), at("a/f"), NULL, MS_BIND, NULL));
    res("umount file bind", umount(at("a/f")));
    res("tmpfs on a/sub", mount("t_mounts_sub", at("a/sub"), "tmpfs", 0, NULL));
    put(at("a/sub/g"), "sub\n");
    res("bind a c", mount(at("a"), at("c"), NULL, MS_BIND, NULL));
    res("rbind a d", mount(at("a"), at("d"), NULL, MS_BIND | MS_REC, NULL));
    printf("c/sub/g %d d/sub/g %d\n", exists(at("c/sub/g")), exists(at("d/sub/g")));
    info("after binds");
    res("umount a/sub busy", umount(at("a")));
    res("umount top with mounts below", umount(top));
    res("umount not a mount", umount(at("a/f")));
    res("umount b", umount(at("b")));
    printf("a/f after umount b: %d, b/f %d\n", exists(at("a/f")), exists(at("b/f")));
}

static void remount_ro(void)
{
    res("remount bind ro c", mount(NULL, at("c"), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
    errno = 0;
    int fd = open(at("c/new"), O_CREAT | O_WRONLY, 0644);
    res("create in ro c", fd);
    if (fd >= 0)
        close(fd);
    fd = open(at("a/new"), O_CREAT | O_WRONLY, 0644);
    res("create in a", fd >= 0 ? 0 : -1);
    if (fd >= 0)
        close(fd);
    fd = open(at("c/new"), O_RDWR);
    res("open rw in ro c", fd);
    if (fd >= 0)
        close(fd);
    fsflags("c", at("c"));
    fsflags("a", at("a"));
    res("remount bind not a root", mount(NULL, at("c/sub/g"), NULL, MS_REMOUNT | MS_BIND, NULL));
    fd = open(at("a/f"), O_RDWR);
    res("remount bind ro a with a writer", mount(NULL, at("a"), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
    close(fd);
    res("remount bind rw c", mount(NULL, at("c"), NULL, MS_REMOUNT | MS_BIND, NULL));
    res("create in c again", unlink(at("c/new")));
    info("after remounts");
}

static void moves(void)
{
    mkdir(at("e"), 0755);
    res("move d e", mount(at("d"), at("e"), NULL, MS_MOVE, NULL));
    printf("d/sub/g %d e/sub/g %d e/f %d\n", exists(at("d/sub/g")), exists(at("e/sub/g")), exists(at("e/f")));
    res("move not a mount root", mount(at("e/sub/g"), at("d"), NULL, MS_MOVE, NULL));
    res("move under itself", mount(at("e"), at("e/sub"), NULL, MS_MOVE, NULL));
    res("move no source", mount(NULL, at("d"), NULL, MS_MOVE, NULL));
    res("move dir onto file", mount(at("e"), at("a/f"), NULL, MS_MOVE, NULL));
    info("after moves");
}

static void propagation(void)
{
    res("make shared", mount(NULL, top, NULL, MS_SHARED, NULL));
    res("two types", mount(NULL, top, NULL, MS_SHARED | MS_PRIVATE, NULL));
    res("type not a root", mount(NULL, at("a/f"), NULL, MS_PRIVATE, NULL));
    mkdir(at("p"), 0755);
    res("bind shared top p", mount(top, at("p"), NULL, MS_BIND, NULL));
    res("move under shared", mount(at("p"), at("b"), NULL, MS_MOVE, NULL));
    mkdir(at("h"), 0755);
    mkdir(at("i"), 0755);
    mkdir(at("j"), 0755);
    res("tmpfs on shared h", mount("t_mounts_h", at("h"), "tmpfs", 0, NULL));
    put(at("h/marker"), "h\n");
    printf("propagated to peer: p/h/marker %d\n", exists(at("p/h/marker")));
    res("slave p", mount(NULL, at("p"), NULL, MS_SLAVE, NULL));
    res("tmpfs on master i", mount("t_mounts_i", at("i"), "tmpfs", 0, NULL));
    put(at("i/marker"), "i\n");
    printf("propagated to slave: p/i/marker %d\n", exists(at("p/i/marker")));
    res("tmpfs on slave p/j", mount("t_mounts_j", at("p/j"), "tmpfs", 0, NULL));
    printf("not back to the master: j is a mount %d\n", !same_dev(at("j"), top));
    info("shared and slave");
    res("umount master i", umount(at("i")));
    printf("p/i still a mount %d\n", !same_dev(at("p/i"), at("p")));
    res("umount shared h", umount(at("h")));
    printf("p/h still a mount %d\n", !same_dev(at("p/h"), at("p")));
    res("rec private", mount(NULL, top, NULL, MS_PRIVATE | MS_REC, NULL));
    info("private again");
    res("unbindable c", mount(NULL, at("c"), NULL, MS_UNBINDABLE, NULL));
    res("bind unbindable", mount(at("c"), at("b"), NULL, MS_BIND, NULL));
    res("private c", mount(NULL, at("c"), NULL, MS_PRIVATE, NULL));
    res("umount p busy", umount(at("p")));
    res("umount2 detach p", umount2(at("p"), MNT_DETACH));
}

static void setattrs(void)
{
    struct attr a = {0};
    res("setattr nop", setattr(at("c"), 0, &a, sizeof a));
    a.propagation = -1;
    res("setattr bad propagation", setattr(at("c"), 0, &a, sizeof a));
    a.propagation = MS_SHARED | MS_SLAVE;
    res("setattr two propagations", setattr(at("c"), 0, &a, sizeof a));
    a.propagation = 0;
    res("setattr small", setattr(at("c"), 0, &a, 16));
    a.set = 1ULL << 40;
    res("setattr unknown attr", setattr(at("c"), 0, &a, sizeof a));
    a.set = A_NOATIME;
    res("setattr atime without clr", setattr(at("c"), 0, &a, sizeof a));
    a.clr = A_NOATIME;
    res("setattr partial atime clr", setattr(at("c"), 0, &a, sizeof a));
    a.set = A_NOEXEC | A_NOSUID | A_NODEV;
    a.clr = 0;
    res("setattr bad flags", setattr(at("c"), 0x1, &a, sizeof a));
    res("setattr not a root", setattr(at("c/f"), 0, &a, sizeof a));
    struct { struct attr a; uint64_t extra; } big = {a, 1};
    res("setattr unknown tail", setattr(at("c"), 0, &big.a, sizeof big));
    big.extra = 0;
    res("setattr zero tail", setattr(at("c"), 0, &big.a, sizeof big));
    fsflags("c set", at("c"));
    a.set = A_NOATIME | A_NOSYMFOLLOW;
    a.clr = A__ATIME | A_NOSUID;
    res("setattr noatime", setattr(at("c"), 0, &a, sizeof a));
    fsflags("c noatime", at("c"));
    a.set = A_STRICTATIME | A_RDONLY;
    a.clr = A__ATIME;
    res("setattr recursive strictatime ro", setattr(at("e"), AT_REC, &a, sizeof a));
    fsflags("e", at("e"));
    fsflags("e/sub", at("e/sub"));
    a.set = A_IDMAP;
    a.clr = 0;
    a.userns_fd = 9999;
    res("setattr idmap bad fd", setattr(at("c"), 0, &a, sizeof a));
    a.set = 0;
    a.clr = A_RDONLY;
    a.userns_fd = 0;
    a.propagation = MS_SHARED;
    res("setattr rec rw shared", setattr(at("e"), AT_REC, &a, sizeof a));
    info("after setattr");
    a.clr = 0;
    a.propagation = MS_PRIVATE;
    res("setattr rec private", setattr(at("e"), AT_REC, &a, sizeof a));
}

static void trees(void)
{
    mkdir(at("g"), 0755);
    res("open_tree recursive without clone", syscall(SYS_open_tree, AT_FDCWD, at("a"), AT_REC));
    res("open_tree bad flags", syscall(SYS_open_tree, AT_FDCWD, at("a"), 0x4));
    int fd = syscall(SYS_open_tree, AT_FDCWD, at("a"), OT_CLONE | AT_REC | O_CLOEXEC);
    fdres("open_tree clone", fd);
    info("with a detached tree");
    struct attr a = {A_NOEXEC, 0, 0, 0};
    res("setattr detached", syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &a, sizeof a));
    res("move_mount", syscall(SYS_move_mount, fd, "", AT_FDCWD, at("g"), MM_F_EMPTY));
    close(fd);
    printf("g/sub/g %d\n", exists(at("g/sub/g")));
    res("move_mount bad flags", syscall(SYS_move_mount, AT_FDCWD, at("g"), AT_FDCWD, at("b"), 0x8000));
    res("move_mount attached", syscall(SYS_move_mount, AT_FDCWD, at("g"), AT_FDCWD, at("b"), 0));
    info("after move_mount");
    res("umount2 detach b", umount2(at("b"), MNT_DETACH));
    printf("b/sub/g %d\n", exists(at("b/sub/g")));
}

/* the filesystem context API: fsopen, fsconfig, fsmount, fspick */
static void contexts(void)
{
    mkdir(at("k"), 0755);
    res("fsopen unknown type", syscall(SYS_fsopen, "nosuchfs", 0));
    res("fsopen bad flags", syscall(SYS_fsopen, "tmpfs", 0x10));
    int fd = syscall(SYS_fsopen, "tmpfs", 1);
    fdres("fsopen tmpfs", fd);
    res("fsconfig bad cmd", syscall(SYS_fsconfig, fd, 100, "rw", NULL, 0));
    res("fsconfig flag with value", syscall(SYS_fsconfig, fd, 0, "rw", "x", 0));
    res("fsconfig string without value", syscall(SYS_fsconfig, fd, 1, "source", NULL, 0));
    res("fsconfig not a context", syscall(SYS_fsconfig, 0, 0, "rw", NULL, 0));
    res("fsconfig negative fd", syscall(SYS_fsconfig, -1, 0, "rw", NULL, 0));
    res("fsconfig source", syscall(SYS_fsconfig, fd, 1, "source", "t_mounts_k", 0));
    res("fsconfig second source", syscall(SYS_fsconfig, fd, 1, "source", "again", 0));
    res("fsconfig size", syscall(SYS_fsconfig, fd, 1, "size", "1m", 0));
    res("fsmount before create", syscall(SYS_fsmount, fd, 0, 0));
    res("fsconfig create", syscall(SYS_fsconfig, fd, 6, NULL, NULL, 0));
    res("fsconfig create again", syscall(SYS_fsconfig, fd, 6, NULL, NULL, 0));
    res("fsconfig size after create", syscall(SYS_fsconfig, fd, 1, "size", "2m", 0));
    res("fsmount bad attrs", syscall(SYS_fsmount, fd, 0, 0x100));
    res("fsmount two atimes", syscall(SYS_fsmount, fd, 0, 0x30));
    int mfd = syscall(SYS_fsmount, fd, 1, A_NODEV | A_NOATIME);
    fdres("fsmount", mfd);
    res("fsmount twice", syscall(SYS_fsmount, fd, 0, 0));
    close(fd);
    res("move_mount fsmount", syscall(SYS_move_mount, mfd, "", AT_FDCWD, at("k"), MM_F_EMPTY));
    close(mfd);
    put(at("k/f"), "k\n");
    info("fsmount");
    res("fspick not a root", syscall(SYS_fspick, AT_FDCWD, at("k/f"), 0));
    res("fspick bad flags", syscall(SYS_fspick, AT_FDCWD, at("k"), 0x10));
    fd = syscall(SYS_fspick, AT_FDCWD, at("k"), 1);
    fdres("fspick", fd);
    res("fsconfig ro", syscall(SYS_fsconfig, fd, 0, "ro", NULL, 0));
    res("fsconfig create on a pick", syscall(SYS_fsconfig, fd, 6, NULL, NULL, 0));
    res("fsconfig reconfigure", syscall(SYS_fsconfig, fd, 7, NULL, NULL, 0));
    res("write on ro sb", open(at("k/g"), O_CREAT | O_WRONLY, 0644));
    fsflags("k", at("k"));
    res("fsconfig rw", syscall(SYS_fsconfig, fd, 0, "rw", NULL, 0));
    res("fsconfig reconfigure rw", syscall(SYS_fsconfig, fd, 7, NULL, NULL, 0));
    close(fd);
    res("unlink on rw again", unlink(at("k/f")));
    res("umount k", umount(at("k")));
    fd = syscall(SYS_fsopen, "tmpfs", 0);
    syscall(SYS_fsconfig, fd, 6, NULL, NULL, 0);
    mfd = syscall(SYS_fsmount, fd, 0, 0);
    close(fd);
    close(mfd);
    res("a dropped fsmount is not mounted", umount(at("k")));
}

static void enforced(void)
{
    mkdir(at("x"), 0755);
    res("tmpfs x nodev,noexec,nosymfollow", mount("t_mounts_x", at("x"), "tmpfs",
                                                 MS_NODEV | MS_NOEXEC | MS_NOSYMFOLLOW | MS_NOATIME, NULL));
    res("mknod null", mknod(at("x/null"), S_IFCHR | 0666, makedev(1, 3)));
    res("open nodev null", open(at("x/null"), O_RDWR));
    put(at("x/prog"), "#!/bin/sh\nexit 0\n");
    char *argv[] = {"prog", NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execv(at("x/prog"), argv);
        _exit(errno);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("exec on noexec: %s\n", WIFEXITED(st) ? en(WEXITSTATUS(st)) : "signal");
    int fd = open(at("x/prog"), O_RDONLY);
    void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    res("mmap exec on noexec", p == MAP_FAILED ? -1 : 0);
    p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    res("mmap read on noexec", p == MAP_FAILED ? -1 : 0);
    if (p != MAP_FAILED)
        munmap(p, 4096);
    close(fd);
    res("symlink", symlink("prog", at("x/link")));
    res("open via nosymfollow link", open(at("x/link"), O_RDONLY));
    char buf[64];
    res("readlink on nosymfollow", readlink(at("x/link"), buf, sizeof buf));
    fsflags("x", at("x"));
    info("enforcing mount");
    fd = open(at("x/prog"), O_RDONLY);
    res("umount x with a file open", umount(at("x")));
    close(fd);
    res("umount x", umount(at("x")));
}

/* umount2: MNT_EXPIRE's two calls, MNT_DETACH with a file still open */
static void umounts(void)
{
    mkdir(at("z"), 0755);
    res("tmpfs z", mount("t_mounts_z", at("z"), "tmpfs", 0, NULL));
    res("expire with detach", umount2(at("z"), MNT_EXPIRE | MNT_DETACH));
    res("expire first", umount2(at("z"), MNT_EXPIRE));
    res("access between", access(at("z"), F_OK));
    res("expire after a use", umount2(at("z"), MNT_EXPIRE));
    res("expire second", umount2(at("z"), MNT_EXPIRE));
    res("tmpfs z again", mount("t_mounts_z", at("z"), "tmpfs", 0, NULL));
    int fd = open(at("z/kept"), O_CREAT | O_RDWR, 0644);
    res("expire busy", umount2(at("z"), MNT_EXPIRE));
    res("umount busy", umount(at("z")));
    res("detach busy", umount2(at("z"), MNT_DETACH));
    printf("z/kept after detach: %d\n", exists(at("z/kept")));
    res("write after detach", write(fd, "abc", 3));
    char buf[8] = {0};
    res("pread after detach", pread(fd, buf, sizeof buf, 0));
    printf("read back %s\n", buf);
    close(fd);
    res("umount gone", umount(at("z")));
}

/* atime after a read: a stale atime moves under relatime, a fresh one
 * does not; strictatime always, noatime never; nodiratime keeps dirs' */
static int read_moves(const char *file)
{
    struct stat a, b;
    char c[8];
    stat(file, &a);
    usleep(30000);
    int fd = open(file, O_RDONLY);
    if (read(fd, c, sizeof c) < 0)
        printf("read: %s\n", en(errno));
    close(fd);
    stat(file, &b);
    return a.st_atim.tv_sec != b.st_atim.tv_sec || a.st_atim.tv_nsec != b.st_atim.tv_nsec;
}

static int list_moves(const char *dir)
{
    struct stat a, b;
    stat(dir, &a);
    usleep(30000);
    DIR *d = opendir(dir);
    while (readdir(d))
        ;
    closedir(d);
    stat(dir, &b);
    return a.st_atim.tv_sec != b.st_atim.tv_sec || a.st_atim.tv_nsec != b.st_atim.tv_nsec;
}

static void atimes(void)
{
    static const struct { const char *name; unsigned long flags; } kinds[] = {
        {"relatime", 0}, {"strictatime", MS_STRICTATIME}, {"noatime", MS_NOATIME},
        {"nodiratime", MS_NODIRATIME | MS_STRICTATIME}};
    mkdir(at("y"), 0755);
    for (unsigned i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        res(kinds[i].name, mount("t_mounts_y", at("y"), "tmpfs", kinds[i].flags, NULL));
        put(at("y/f"), "data\n");
        mkdir(at("y/d"), 0755);
        int first = read_moves(at("y/f"));
        int second = read_moves(at("y/f"));
        int dfirst = list_moves(at("y/d"));
        int dsecond = list_moves(at("y/d"));
        printf("  file %d %d dir %d %d\n", first, second, dfirst, dsecond);
        umount(at("y"));
    }
}

/* poll and epoll on /proc/self/mounts and mountinfo: POLLPRI|POLLERR once
   after each mount event (mount, remount, umount), then quiet again */
static void mount_events(void)
{
    int fd = open("/proc/self/mounts", O_RDONLY), mi = open("/proc/self/mountinfo", O_RDONLY);
    struct pollfd p = {fd, POLLPRI, 0};
    int n = poll(&p, 1, 0);
    printf("mounts poll, quiet: %d %#x\n", n, p.revents);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLPRI, .data.fd = mi}, out;
    res("epoll_ctl mountinfo", epoll_ctl(ep, EPOLL_CTL_ADD, mi, &ev));
    res("  epoll_wait, quiet", epoll_wait(ep, &out, 1, 0));
    char *m = at("ev");
    mkdir(m, 0755);
    res("mount", mount("t_mounts", m, "tmpfs", 0, NULL));
    n = poll(&p, 1, 0);
    printf("  poll: %d %#x\n", n, p.revents);
    n = poll(&p, 1, 0);
    printf("  poll again: %d %#x\n", n, p.revents);
    n = epoll_wait(ep, &out, 1, 1000);
    printf("  epoll_wait: %d %#x\n", n, n > 0 ? out.events : 0);
    res("  epoll_wait again", epoll_wait(ep, &out, 1, 0));
    res("remount read-only", mount(NULL, m, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
    n = poll(&p, 1, 0);
    printf("  poll: %d %#x\n", n, p.revents);
    res("umount", umount(m));
    n = poll(&p, 1, 0);
    printf("  poll: %d %#x\n", n, p.revents);
    n = epoll_wait(ep, &out, 1, 1000);
    printf("  epoll_wait: %d %#x\n", n, n > 0 ? out.events : 0);
    rmdir(m);
    close(ep);
    close(fd);
    close(mi);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    setvbuf(stdout, NULL, _IOLBF, 0);
    base = open("/dev/null", O_RDONLY);
    close(base);
    if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
        printf("no private mount namespace: %s\n", en(errno));
        return 1;
    }
    snprintf(top, sizeof top, "%s/m", dir);
    mkdir(top, 0755);
    res("tmpfs top", mount("t_mounts", top, "tmpfs", 0, NULL));
    binds();
    remount_ro();
    moves();
    propagation();
    setattrs();
    trees();
    contexts();
    enforced();
    umounts();
    atimes();
    mount_events();
    res("umount2 top detach", umount2(top, MNT_DETACH));
    rmdir(top);
    printf("done\n");
    return 0;
}
