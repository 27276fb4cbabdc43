/* inotify events for a create/write/close/chmod/rename/delete sequence,
 * then the order Linux reports them in for renames over a watched target,
 * unlinks of watched and open files, rmdir, reads and writes, the watch
 * flags (IN_ONESHOT, IN_EXCL_UNLINK, IN_MASK_ADD/CREATE, IN_ONLYDIR),
 * the calls' errors and the queue overflow. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>
#include "results.h"

static void dump(int fd)
{
    char buf[4096] __attribute__((aligned(8)));
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0)
        printf("  (none: %s)\n", strerrorname_np(errno));
    unsigned last_cookie = 0;
    for (char *p = buf; p < buf + n;) {
        struct inotify_event *e = (struct inotify_event *)p;
        printf("  wd=%d", e->wd);
        static const struct { unsigned m; const char *s; } names[] = {
            {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
            {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
            {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"}, {IN_CREATE, "CREATE"},
            {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
            {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"}, {IN_UNMOUNT, "UNMOUNT"}};
        for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
            if (e->mask & names[i].m)
                printf(" %s", names[i].s);
        if (e->len)
            printf(" name=%s", e->name);
        if (e->cookie) {
            printf(" cookie=%s", last_cookie == e->cookie ? "same" : "new");
            last_cookie = e->cookie;
        }
        printf("\n");
        p += sizeof *e + e->len;
    }
}

static char d2[512];

static char *at(const char *name)
{
    return path_in(d2, name);
}

static void touch(const char *name)
{
    close(open(at(name), O_CREAT | O_WRONLY, 0644));
}

static void watch(int in, const char *what, const char *name, unsigned mask)
{
    int r = inotify_add_watch(in, at(name), mask);
    printf("watch %s: %d %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
}

static void more(const char *scratch)
{
    char buf[64] = {0};
    snprintf(d2, sizeof d2, "%s/inotify2", scratch);
    mkdir(d2, 0755);
    int in = inotify_init1(IN_NONBLOCK);

    printf("-- file: chmod, read, write, write, close\n");
    touch("f");
    watch(in, "f", "f", IN_ALL_EVENTS);
    chmod(at("f"), 0600);
    int fd = open(at("f"), O_RDONLY);
    read(fd, buf, sizeof buf);              /* at EOF: no IN_ACCESS */
    close(fd);
    fd = open(at("f"), O_RDWR);
    write(fd, "ab", 2);
    write(fd, "cd", 2);                     /* merged with the first */
    write(fd, "", 0);                       /* nothing written: no event */
    lseek(fd, 0, SEEK_SET);
    read(fd, buf, 1);
    read(fd, buf, 1);
    pread(fd, buf, 2, 0);
    ftruncate(fd, 1);
    close(fd);
    fd = open(at("f"), O_WRONLY | O_TRUNC);
    close(fd);
    fd = open(at("f"), O_WRONLY | O_TRUNC);     /* already empty */
    close(fd);
    fd = open(at("f"), O_PATH);
    close(fd);
    chown(at("f"), -1, -1);
    dump(in);

    printf("-- directory: opendir, getdents, child ops\n");
    watch(in, "dir", ".", IN_ALL_EVENTS);
    fd = open(d2, O_RDONLY | O_DIRECTORY);
    char dents[4096];
    syscall(SYS_getdents64, fd, dents, sizeof dents);
    close(fd);
    truncate(at("f"), 0);
    struct timespec ts[2] = {{1, 0}, {2, 0}};
    utimensat(AT_FDCWD, at("f"), ts, 0);
    link(at("f"), at("f2"));
    symlink("f", at("sl"));
    mknod(at("fifo"), S_IFIFO | 0600, 0);
    dump(in);

    printf("-- rename over a watched target\n");
    watch(in, "f2", "f2", IN_ALL_EVENTS);
    touch("t");
    watch(in, "t", "t", IN_ALL_EVENTS);
    rename(at("sl"), at("sl2"));
    dump(in);
    rename(at("f2"), at("t"));              /* t's last link goes */
    dump(in);

    printf("-- unlink of a watched file\n");
    unlink(at("t"));
    dump(in);
    unlink(at("f"));
    dump(in);

    printf("-- unlink while open, write, close\n");
    touch("o");
    watch(in, "o", "o", IN_ALL_EVENTS);
    fd = open(at("o"), O_RDWR);
    unlink(at("o"));
    write(fd, "x", 1);
    close(fd);
    dump(in);

    printf("-- rmdir of a watched directory\n");
    mkdir(at("sub"), 0755);
    watch(in, "sub", "sub", IN_ALL_EVENTS);
    rename(at("sub"), at("sub2"));
    dump(in);
    rmdir(at("sub2"));
    dump(in);
    unlink(at("sl2"));
    unlink(at("fifo"));
    dump(in);
    close(in);

    printf("-- IN_EXCL_UNLINK\n");
    in = inotify_init1(IN_NONBLOCK);
    watch(in, "dir", ".", IN_ALL_EVENTS | IN_EXCL_UNLINK);
    touch("e");
    watch(in, "e", "e", IN_MODIFY | IN_CLOSE | IN_DELETE_SELF | IN_EXCL_UNLINK);
    fd = open(at("e"), O_RDWR);
    write(fd, "x", 1);
    unlink(at("e"));
    write(fd, "x", 1);
    read(fd, buf, 1);
    close(fd);
    dump(in);
    close(in);

    printf("-- IN_ONESHOT, IN_MASK_ADD, IN_MASK_CREATE\n");
    in = inotify_init1(IN_NONBLOCK);
    touch("m");
    watch(in, "oneshot", "m", IN_ATTRIB | IN_ONESHOT);
    chmod(at("m"), 0600);
    chmod(at("m"), 0644);
    dump(in);
    watch(in, "attrib", "m", IN_ATTRIB);
    watch(in, "add modify", "m", IN_MODIFY | IN_MASK_ADD);
    watch(in, "create", "m", IN_MODIFY | IN_MASK_CREATE);
    watch(in, "add|create", "m", IN_MODIFY | IN_MASK_ADD | IN_MASK_CREATE);
    chmod(at("m"), 0600);
    truncate(at("m"), 1);
    dump(in);
    watch(in, "replace by open", "m", IN_OPEN);
    chmod(at("m"), 0644);
    close(open(at("m"), O_RDONLY));
    dump(in);
    watch(in, "flags only", "m", IN_DONT_FOLLOW);
    chmod(at("m"), 0600);
    dump(in);
    watch(in, "zero", "m", 0);
    watch(in, "unknown bit only", "m", 0x00400000);
    watch(in, "onlydir on file", "m", IN_ATTRIB | IN_ONLYDIR);
    watch(in, "missing", "nope", IN_ATTRIB);
    symlink("m", at("ml"));
    watch(in, "dont_follow symlink", "ml", IN_ATTRIB | IN_DONT_FOLLOW);
    chmod(at("m"), 0644);
    dump(in);
    int pfd[2];
    pipe(pfd);
    res("add on a pipe", inotify_add_watch(pfd[0], d2, IN_ATTRIB));
    res("add on a closed fd", inotify_add_watch(999, d2, IN_ATTRIB));
    res("add on a closed fd, zero mask", inotify_add_watch(999, d2, 0));
    res("rm bad wd", inotify_rm_watch(in, 12345));
    res("rm on a pipe", inotify_rm_watch(pfd[0], 1));
    res("init1 bad flags", inotify_init1(IN_NONBLOCK << 1));
    close(pfd[0]);
    close(pfd[1]);
    touch("m");
    fd = open(at("m"), O_RDONLY);
    close(fd);
    char small[sizeof(struct inotify_event)];
    res("read too small", read(in, small, sizeof small - 1));
    int avail = -1;
    ioctl(in, FIONREAD, &avail);
    printf("FIONREAD: %d\n", avail);
    dump(in);
    close(in);

    printf("-- IN_Q_OVERFLOW\n");
    need_proc();
    int max = 0;
    FILE *mf = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
    if (!mf || fscanf(mf, "%d", &max) != 1)
        printf("no max_queued_events\n");
    if (mf)
        fclose(mf);
    in = inotify_init1(IN_NONBLOCK);
    watch(in, "q", "m", IN_OPEN | IN_CLOSE_NOWRITE);
    fd = open(at("m"), O_RDONLY);
    close(fd);
    for (int i = 1; i < max / 2 + 2; i++) {
        fd = open(at("m"), O_RDONLY);
        close(fd);
    }
    long events = 0, overflows = 0, last_wd = 0;
    struct inotify_event ev;
    for (int i = 0; i < 3; i++) {                /* make room for two, add three */
        read(in, &ev, sizeof ev);
        events++;
    }
    fd = open(at("m"), O_RDONLY);
    close(fd);
    fd = open(at("m"), O_RDONLY);
    while (read(in, &ev, sizeof ev) == sizeof ev) {
        events++;
        if (ev.mask & IN_Q_OVERFLOW) {
            overflows++;
            last_wd = ev.wd;
            printf("overflow at max%+ld: wd=%d mask=%x cookie=%u len=%u\n",
                   events - max, ev.wd, ev.mask, ev.cookie, ev.len);
        }
    }
    close(fd);
    printf("events max%+ld, overflows %ld, wd %ld\n", events - max, overflows, last_wd);
    dump(in);
    close(in);

    printf("-- fdinfo\n");
    in = inotify_init1(0);
    watch(in, "oneshot", ".", IN_MODIFY | IN_ONESHOT);
    watch(in, "excl_unlink", "m", IN_MODIFY | IN_EXCL_UNLINK | IN_DONT_FOLLOW);
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", in);
    FILE *fi = fopen(path, "r");
    while (fi && fgets(line, sizeof line, fi)) {
        unsigned wd, mask, ignored;
        char *p = strstr(line, "inotify wd:");
        if (p && sscanf(p, "inotify wd:%x", &wd) == 1 && (p = strstr(line, " mask:")) &&
            sscanf(p, " mask:%x ignored_mask:%x", &mask, &ignored) == 2) {
            unsigned type = 0;
            if ((p = strstr(line, "fhandle-type:")))
                sscanf(p, "fhandle-type:%x", &type);
            printf("  wd %u mask %x ignored %x, handle type %u\n", wd, mask, ignored, type);
        }
    }
    if (fi)
        fclose(fi);
    close(in);

    printf("-- IN_UNMOUNT\n");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* a mount namespace of its own natively (the guest may have none) */
        if (unshare(CLONE_NEWNS) == 0)
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
        mkdir(at("mnt"), 0755);
        if (mount("none", at("mnt"), "tmpfs", 0, NULL) != 0) {
            printf("mount: %s\n", strerrorname_np(errno));
            _exit(0);
        }
        mkdir(at("mnt/d"), 0755);
        touch("mnt/f");
        in = inotify_init1(IN_NONBLOCK);
        watch(in, "mount root", "mnt", IN_ATTRIB);
        watch(in, "dir in it", "mnt/d", IN_ATTRIB);
        watch(in, "file in it", "mnt/f", IN_MODIFY);
        watch(in, "the mount point's dir", ".", IN_ATTRIB);
        fd = open(at("mnt/f"), O_RDONLY);
        res("umount with a file open", umount(at("mnt")));
        close(fd);
        res("umount", umount(at("mnt")));
        dump(in);
        rmdir(at("mnt"));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);

    unlink(at("m"));
    unlink(at("ml"));
    rmdir(d2);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char dir[512], a[600], b[600], sub[600];
    snprintf(dir, sizeof dir, "%s/inotify_dir", argc > 1 ? argv[1] : ".");
    mkdir(dir, 0755);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    int in = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(in, dir, IN_ALL_EVENTS);
    printf("watch: %d\n", wd);
    char x;
    printf("empty read: %zd %s\n", read(in, &x, 1), strerrorname_np(errno));
    int fd = open(a, O_CREAT | O_WRONLY, 0644);
    write(fd, "hi", 2);
    close(fd);
    printf("create/write/close:\n");
    dump(in);
    chmod(a, 0600);
    rename(a, b);
    printf("chmod/rename:\n");
    dump(in);
    int fw = inotify_add_watch(in, b, IN_ALL_EVENTS);
    printf("file watch: %d\n", fw);
    unlink(b);
    mkdir(sub, 0755);
    rmdir(sub);
    printf("unlink/mkdir/rmdir:\n");
    dump(in);
    printf("rm_watch: %d\n", inotify_rm_watch(in, wd));
    dump(in);
    rmdir(dir);
    more(argc > 1 ? argv[1] : ".");
    printf("done\n");
    return 0;
}
