/* fanotify: fanotify_init's and fanotify_mark's errors, events of inode,
 * mount and filesystem marks (merged per object and process), ignore
 * masks, the FID modes' info records (checked against name_to_handle_at
 * and statfs), FIONREAD, poll, the queue's overflow, and permission
 * events answered by a forked listener: allow, deny, a closed group, an
 * opener killed while it waits; execve's events (FAN_OPEN_EXEC and its
 * permission event) for a program and a `#!` script.  Needs root
 * (natively too).
 * `t_fanotify DIR wedge`: an opener waits on a listener that never
 * answers while the rest of the system goes on, until it is SIGKILLed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x400
#endif
#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x200
#endif

static char dir[512];

static char *at(const char *name)
{
    return path_in(dir, name);
}

static const struct { unsigned long long m; const char *s; } names[] = {
    {FAN_ACCESS, "ACCESS"}, {FAN_MODIFY, "MODIFY"}, {FAN_ATTRIB, "ATTRIB"},
    {FAN_CLOSE_WRITE, "CLOSE_WRITE"}, {FAN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {FAN_OPEN, "OPEN"},
    {FAN_MOVED_FROM, "MOVED_FROM"}, {FAN_MOVED_TO, "MOVED_TO"}, {FAN_CREATE, "CREATE"},
    {FAN_DELETE, "DELETE"}, {FAN_DELETE_SELF, "DELETE_SELF"}, {FAN_MOVE_SELF, "MOVE_SELF"},
    {FAN_OPEN_EXEC, "OPEN_EXEC"}, {FAN_Q_OVERFLOW, "Q_OVERFLOW"}, {FAN_OPEN_PERM, "OPEN_PERM"},
    {FAN_ACCESS_PERM, "ACCESS_PERM"}, {FAN_OPEN_EXEC_PERM, "OPEN_EXEC_PERM"}, {FAN_RENAME, "RENAME"},
    {FAN_ONDIR, "ONDIR"}};

static void pmask(unsigned long long m)
{
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (m & names[i].m)
            printf(" %s", names[i].s);
}

/* where an event fd points, relative to the scratch directory */
static void pfd(int fd)
{
    char l[64], t[1024];
    if (fd == FAN_NOFD) {
        printf(" fd=NOFD");
        return;
    }
    snprintf(l, sizeof l, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(l, t, sizeof t - 1);
    t[n < 0 ? 0 : n] = 0;
    size_t dl = strlen(dir);
    if (!strncmp(t, dir, dl))
        printf(" fd=.%s", t + dl);
    else
        printf(" fd=outside");
    printf(" fl=%o", fcntl(fd, F_GETFL) & O_ACCMODE);
    close(fd);
}

static pid_t other;

static void ppid(int pid)
{
    if (pid == getpid())
        printf(" pid=self");
    else if (pid == other)
        printf(" pid=child");
    else if (pid == 0)
        printf(" pid=0");
    else
        printf(" pid=other");
}

/* handles to recognise in info records */
static struct { char name[16]; struct file_handle *h; } known[8];
static int nknown;
static fsid_t fsid;

static void remember(const char *label, const char *path)
{
    struct file_handle *h = malloc(sizeof *h + 128);
    int mnt;
    h->handle_bytes = 128;
    if (name_to_handle_at(AT_FDCWD, path, h, &mnt, 0) < 0) {
        printf("name_to_handle_at %s: %s\n", label, en(errno));
        return;
    }
    snprintf(known[nknown].name, sizeof known[nknown].name, "%s", label);
    known[nknown++].h = h;
}

static void pinfo(char *p, char *end)
{
    while (p < end) {
        struct fanotify_event_info_fid *fid = (void *)p;
        struct file_handle *h = (void *)fid->handle;
        printf("    info type=%d", fid->hdr.info_type);
        printf(" fsid=%s", memcmp(&fid->fsid, &fsid, sizeof fsid) ? "other" : "same");
        const char *who = "?";
        for (int i = 0; i < nknown; i++)
            if (known[i].h->handle_bytes == h->handle_bytes && known[i].h->handle_type == h->handle_type
                && !memcmp(known[i].h->f_handle, h->f_handle, h->handle_bytes))
                who = known[i].name;
        printf(" handle=%s", who);
        if (fid->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME || fid->hdr.info_type == 10
            || fid->hdr.info_type == 12)
            printf(" name=%s", (char *)h->f_handle + h->handle_bytes);
        printf(" aligned=%d\n", fid->hdr.len % 4 == 0);
        p += fid->hdr.len;
    }
}

/* read and print every queued event (non-blocking fd); only_self: events
 * of other processes and objects outside the scratch dir are dropped, as
 * mount and filesystem marks natively see the whole host */
static void dump(int fd, int only_self)
{
    char buf[8192] __attribute__((aligned(8)));
    int events = 0;
    for (int rounds = 0; rounds < 1000; rounds++) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (!events || errno != EAGAIN)
                printf("  read: %s\n", en(errno));
            return;
        }
        for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
            if (only_self && m->pid != getpid()) {
                if (m->fd >= 0)
                    close(m->fd);
                continue;
            }
            if (only_self && m->fd >= 0) {
                char l[64], t[1024];
                snprintf(l, sizeof l, "/proc/self/fd/%d", m->fd);
                ssize_t k = readlink(l, t, sizeof t - 1);
                if (k < 0 || strncmp(t, dir, strlen(dir))) {
                    close(m->fd);
                    continue;
                }
            }
            events++;
            printf("  vers=%d mlen=%d", m->vers, m->metadata_len);
            pmask(m->mask);
            pfd(m->fd);
            ppid(m->pid);
            printf("\n");
            pinfo((char *)m + m->metadata_len, (char *)m + m->event_len);
        }
    }
}

static int touch(const char *p)
{
    int fd = open(p, O_RDWR | O_CREAT, 0644);
    if (fd >= 0) {
        if (write(fd, "x", 1) < 0)
            printf("write: %s\n", en(errno));
        close(fd);
    }
    return fd >= 0;
}

static void open_close(const char *p)
{
    int fd = open(p, O_RDONLY);
    if (fd < 0)
        printf("open %s: %s\n", p, en(errno));
    else
        close(fd);
}

static void init_errors(void)
{
    printf("-- init\n");
    res("all flags", fanotify_init(0xffffffff, O_RDONLY));
    res("content|pre_content", fanotify_init(FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT, O_RDONLY));
    res("accmode 3", fanotify_init(FAN_CLASS_NOTIF, 3));
    res("O_TRUNC", fanotify_init(FAN_CLASS_NOTIF, O_RDONLY | O_TRUNC));
    res("name without dir", fanotify_init(FAN_REPORT_NAME, O_RDONLY));
    res("fid content", fanotify_init(FAN_REPORT_FID | FAN_CLASS_CONTENT, O_RDONLY));
    res("target without fid", fanotify_init(FAN_REPORT_TARGET_FID | FAN_REPORT_DFID_NAME, O_RDONLY));
    int fd = fanotify_init(FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY);
    printf("cloexec=%d nonblock=%d acc=%d\n", fcntl(fd, F_GETFD), !!(fcntl(fd, F_GETFL) & O_NONBLOCK),
           fcntl(fd, F_GETFL) & O_ACCMODE);
    close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) || setuid(65534))
            _exit(9);
        int r = 0;
        errno = 0;
        r |= (fanotify_init(FAN_CLASS_NOTIF, O_RDONLY) < 0 && errno == EPERM) << 0;
        r |= (fanotify_init(FAN_CLASS_CONTENT | FAN_REPORT_FID, O_RDONLY) < 0 && errno == EPERM) << 1;
        r |= (fanotify_init(FAN_REPORT_FID | FAN_UNLIMITED_QUEUE, O_RDONLY) < 0 && errno == EPERM) << 2;
        int g = fanotify_init(FAN_REPORT_FID, O_RDONLY);
        r |= (g >= 0) << 3;
        r |= (fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN, AT_FDCWD, "/") < 0 && errno == EPERM) << 4;
        r |= (fanotify_mark(g, FAN_MARK_ADD, FAN_ATTRIB, AT_FDCWD, "/") == 0) << 5;
        _exit(r);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("unprivileged: %#x\n", WEXITSTATUS(st));
}

static void mark_errors(void)
{
    printf("-- mark\n");
    int g = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
    int fg = fanotify_init(FAN_REPORT_FID, O_RDONLY);
    int pfds[2];
    if (pipe(pfds))
        return;
    res("high mask", fanotify_mark(g, FAN_MARK_ADD, 1ULL << 33 | FAN_OPEN, AT_FDCWD, dir));
    res("bad flags", fanotify_mark(g, FAN_MARK_ADD | 0x10000, FAN_OPEN, AT_FDCWD, dir));
    res("no mask", fanotify_mark(g, FAN_MARK_ADD, 0, AT_FDCWD, dir));
    res("add|remove", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, dir));
    res("flush|dont_follow", fanotify_mark(g, FAN_MARK_FLUSH | FAN_MARK_DONT_FOLLOW, 0, AT_FDCWD, dir));
    res("mount|fs", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_MOUNT | FAN_MARK_FILESYSTEM, FAN_OPEN, AT_FDCWD, dir));
    res("fd -1", fanotify_mark(-1, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, dir));
    res("pipe fd", fanotify_mark(pfds[0], FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, dir));
    res("perm on notif", fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, dir));
    res("create w/o fid", fanotify_mark(g, FAN_MARK_ADD, FAN_CREATE, AT_FDCWD, dir));
    res("attrib w/o fid", fanotify_mark(g, FAN_MARK_ADD, FAN_ATTRIB, AT_FDCWD, dir));
    res("rename w/o name", fanotify_mark(fg, FAN_MARK_ADD, FAN_RENAME, AT_FDCWD, dir));
    res("create on mount", fanotify_mark(fg, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CREATE, AT_FDCWD, dir));
    res("fs_error on inode", fanotify_mark(fg, FAN_MARK_ADD, FAN_FS_ERROR, AT_FDCWD, dir));
    res("onlydir file", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_OPEN, AT_FDCWD, at("f")));
    res("missing", fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, at("nope")));
    res("remove unmarked", fanotify_mark(g, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, dir));
    res("both ignores", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORE, FAN_OPEN, AT_FDCWD, dir));
    res("evictable mount", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_EVICTABLE | FAN_MARK_MOUNT, FAN_OPEN, AT_FDCWD, dir));
    res("null path cwd", fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, NULL));
    res("ignore dir w/o surv", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_IGNORE, FAN_OPEN, AT_FDCWD, dir));
    res("ignore mount w/o surv", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_IGNORE | FAN_MARK_MOUNT, FAN_OPEN, AT_FDCWD, dir));
    res("ignore dirent on file", fanotify_mark(fg, FAN_MARK_ADD | FAN_MARK_IGNORE | FAN_MARK_IGNORED_SURV_MODIFY, FAN_CREATE, AT_FDCWD, at("f")));
    res("add", fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, at("f")));
    res("add evictable over pinned", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_EVICTABLE, FAN_OPEN, AT_FDCWD, at("f")));
    res("remove", fanotify_mark(g, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, at("f")));
    res("remove again", fanotify_mark(g, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, at("f")));
    res("evictable", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_EVICTABLE, FAN_OPEN, AT_FDCWD, at("f")));
    res("pinned over evictable", fanotify_mark(g, FAN_MARK_ADD, FAN_CLOSE, AT_FDCWD, at("f")));
    res("flush", fanotify_mark(g, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL));
    res("remove flushed", fanotify_mark(g, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, at("f")));
    int dfd = open(dir, O_RDONLY);
    res("null path dirfd", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_OPEN, dfd, NULL));
    res("null path file onlydir", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_OPEN, pfds[0], NULL));
    int cg = fanotify_init(FAN_CLASS_CONTENT, O_RDONLY);
    need_proc();
    res("perm on proc", fanotify_mark(cg, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, "/proc/self/status"));
    res("open on proc", fanotify_mark(cg, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, "/proc/self/status"));
    close(cg);
    close(dfd);
    close(pfds[0]);
    close(pfds[1]);
    close(g);
    close(fg);
}

static void print_marks(int g)
{
    /* the marks' masks from fdinfo, without the object's numbers */
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", g);
    FILE *f = fopen(p, "r");
    while (f && fgets(line, sizeof line, f)) {
        char *m = strstr(line, "mflags:"), *h = strstr(line, " fhandle-bytes:");
        unsigned type = 0;
        if (!m)
            continue;
        if (h) {    /* the handle's bytes are the object's numbers: its type only */
            *h = 0;
            sscanf(h + 1, "fhandle-bytes:%*x fhandle-type:%x", &type);
        }
        printf("  %.*s, handle type %u\n", (int)strcspn(m, "\n"), m, type);
    }
    if (f)
        fclose(f);
}

static void parent_ignore(void)
{
    /* a parent's mark that does not watch children takes no part in its
       children's events: a child's modify leaves its ignore mask alone */
    printf("parent ignore mask and a child's modify:\n");
    int g = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC);
    fanotify_mark(g, FAN_MARK_ADD, FAN_MODIFY | FAN_CLOSE_NOWRITE, AT_FDCWD, at("h"));
    fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK, FAN_CLOSE_NOWRITE, AT_FDCWD, dir);
    touch(at("h"));
    print_marks(g);
    dump(g, 0);
    fanotify_mark(g, FAN_MARK_ADD, FAN_EVENT_ON_CHILD | FAN_OPEN, AT_FDCWD, dir);
    touch(at("h"));     /* now it watches children: the modify clears it */
    print_marks(g);
    dump(g, 0);
    close(g);
}

static void inode_events(void)
{
    printf("-- inode marks\n");
    int g = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC);
    fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN | FAN_CLOSE | FAN_MODIFY | FAN_ACCESS, AT_FDCWD, at("f"));
    char c;
    int fd = open(at("f"), O_RDWR);
    if (write(fd, "ab", 2) < 0 || pread(fd, &c, 1, 0) < 0)
        printf("io: %s\n", en(errno));
    close(fd);
    int q = -1;
    ioctl(g, FIONREAD, &q);
    printf("fionread=%d\n", q);
    struct pollfd pf = {g, POLLIN, 0};
    int pr = poll(&pf, 1, 0);
    printf("poll=%d revents=%#x\n", pr, pf.revents);
    char small[10];
    res("small read", read(g, small, sizeof small));
    printf("merged:\n");
    dump(g, 0);
    printf("poll after=%d\n", poll(&pf, 1, 0));
    other = fork();
    if (other == 0) {
        open_close(at("f"));
        _exit(0);
    }
    waitpid(other, NULL, 0);
    open_close(at("f"));
    printf("two processes:\n");
    dump(g, 0);
    /* the event fd is FMODE_NONOTIFY: using it reports nothing */
    fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, at("f"));
    open_close(at("f"));
    char buf[4096] __attribute__((aligned(8)));
    ssize_t n = read(g, buf, sizeof buf);
    struct fanotify_event_metadata *m = (void *)buf;
    printf("one event=%d cloexec=%d\n", n == m->event_len, fcntl(m->fd, F_GETFD));
    if (read(m->fd, &c, 1) < 0)
        printf("read event fd: %s\n", en(errno));
    close(m->fd);
    res("after using the event fd", read(g, buf, sizeof buf));
    res("remove all", fanotify_mark(g, FAN_MARK_REMOVE, FAN_OPEN | FAN_CLOSE | FAN_MODIFY | FAN_ACCESS, AT_FDCWD, at("f")));
    /* a directory: its own opens need FAN_ONDIR, its children's FAN_EVENT_ON_CHILD */
    fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, dir);
    open_close(dir);
    open_close(at("f"));
    printf("dir without flags:\n");
    dump(g, 0);
    fanotify_mark(g, FAN_MARK_ADD, FAN_ONDIR | FAN_EVENT_ON_CHILD, AT_FDCWD, dir);
    open_close(dir);
    open_close(at("f"));
    printf("dir with ONDIR|EVENT_ON_CHILD:\n");
    dump(g, 0);
    printf("ignore masks:\n");
    fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK, FAN_OPEN, AT_FDCWD, at("f"));
    fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_OPEN, AT_FDCWD, at("g"));
    open_close(at("f"));
    open_close(at("g"));
    open_close(at("h"));
    dump(g, 0);
    touch(at("f"));     /* a modify clears f's ignore mask, not g's */
    touch(at("g"));
    dump(g, 0);
    open_close(at("f"));
    open_close(at("g"));
    printf("after modify:\n");
    dump(g, 0);
    close(g);
    parent_ignore();
}

static void mount_events(unsigned kind, const char *what)
{
    printf("-- %s mark\n", what);
    int g = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
    res("mark", fanotify_mark(g, FAN_MARK_ADD | kind, FAN_OPEN | FAN_CLOSE_WRITE, AT_FDCWD, dir));
    res("inode ignore", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY,
                                      FAN_OPEN | FAN_CLOSE_WRITE, AT_FDCWD, at("g")));
    touch(at("f"));
    touch(at("g"));
    open_close(dir);
    dump(g, 1);
    res("flush", fanotify_mark(g, FAN_MARK_FLUSH | kind, 0, AT_FDCWD, NULL));
    touch(at("f"));
    dump(g, 1);
    close(g);
}

static void fid_events(void)
{
    printf("-- fid\n");
    struct statfs sf;
    statfs(dir, &sf);
    fsid = sf.f_fsid;
    mkdir(at("d"), 0755);
    remember("d", at("d"));
    int g = fanotify_init(FAN_REPORT_DFID_NAME | FAN_REPORT_FID | FAN_NONBLOCK, O_RDONLY);
    int t = fanotify_init(FAN_REPORT_DFID_NAME_TARGET | FAN_NONBLOCK, O_RDONLY);
    int f = fanotify_init(FAN_REPORT_FID | FAN_NONBLOCK, O_RDONLY);
    int r = fanotify_init(FAN_REPORT_DFID_NAME | FAN_NONBLOCK, O_RDONLY);
    unsigned long long all = FAN_CREATE | FAN_DELETE | FAN_MOVE | FAN_ATTRIB | FAN_ONDIR | FAN_EVENT_ON_CHILD
        | FAN_CLOSE_WRITE | FAN_DELETE_SELF;
    res("mark dfid_name|fid", fanotify_mark(g, FAN_MARK_ADD, all, AT_FDCWD, at("d")));
    res("mark target", fanotify_mark(t, FAN_MARK_ADD, FAN_CREATE | FAN_DELETE | FAN_ONDIR, AT_FDCWD, at("d")));
    res("mark rename", fanotify_mark(r, FAN_MARK_ADD, FAN_RENAME | FAN_ONDIR, AT_FDCWD, at("d")));
    touch(at("d/x"));
    remember("x", at("d/x"));
    res("mark fid on file", fanotify_mark(f, FAN_MARK_ADD, FAN_ATTRIB | FAN_DELETE_SELF | FAN_CLOSE_WRITE,
                                          AT_FDCWD, at("d/x")));
    mkdir(at("d/y"), 0755);
    remember("y", at("d/y"));
    chmod(at("d/x"), 0600);
    rename(at("d/x"), at("d/z"));
    chmod(at("d/y"), 0700);
    unlink(at("d/z"));
    rmdir(at("d/y"));
    printf("dfid_name|fid:\n");
    dump(g, 0);
    printf("target fid:\n");
    dump(t, 0);
    printf("fid on the file:\n");
    dump(f, 0);
    printf("rename:\n");
    dump(r, 0);
    close(g);
    close(t);
    close(f);
    close(r);
    rmdir(at("d"));
}

static void overflow(void)
{
    printf("-- overflow\n");
    need_proc();
    int s = open("/proc/sys/fs/fanotify/max_queued_events", O_RDWR);
    char old[32] = "";
    ssize_t n = read(s, old, sizeof old - 1);
    if (n > 0)
        old[n] = 0;
    lseek(s, 0, SEEK_SET);
    if (write(s, "3", 1) != 1)
        printf("sysctl: %s\n", en(errno));
    int g = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
    lseek(s, 0, SEEK_SET);
    if (write(s, old, strlen(old)) < 0)
        printf("restore: %s\n", en(errno));
    close(s);
    fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN | FAN_EVENT_ON_CHILD, AT_FDCWD, dir);
    const char *files[] = {"f", "g", "h", "i", "j"};
    for (int i = 0; i < 5; i++) {
        touch(at(files[i]));
        open_close(at(files[i]));
    }
    int q = -1;
    ioctl(g, FIONREAD, &q);
    printf("fionread=%d\n", q);
    dump(g, 0);
    open_close(at("f"));
    printf("after reading:\n");
    dump(g, 0);
    close(g);
}

/* the listener: answers each permission event as told by `answers`, and
 * writes what it saw to the pipe (the parent prints it) */
static void listener(int g, const char *answers, int out)
{
    char buf[4096] __attribute__((aligned(8)));
    char log[512] = "";
    for (const char *a = answers; *a; a++) {
        ssize_t n = read(g, buf, sizeof buf);
        if (n <= 0) {
            snprintf(log + strlen(log), sizeof log - strlen(log), " read:%s", en(errno));
            break;
        }
        struct fanotify_event_metadata *m = (void *)buf;
        const char *k = m->mask & FAN_OPEN_EXEC_PERM ? "open_exec_perm" : m->mask & FAN_OPEN_PERM ? "open_perm"
            : m->mask & FAN_ACCESS_PERM ? "access_perm" : "?";
        snprintf(log + strlen(log), sizeof log - strlen(log), " %s/%s", k, m->pid == getppid() ? "parent" : "other");
        struct fanotify_response resp = {m->fd, *a == 'a' ? FAN_ALLOW : FAN_DENY};
        if (*a == 'x') {        /* bad answers first */
            struct fanotify_response bad = {m->fd + 100, FAN_ALLOW};
            errno = 0;
            snprintf(log + strlen(log), sizeof log - strlen(log), " nofd:%s",
                     write(g, &bad, sizeof bad) < 0 ? en(errno) : "ok");
            bad.fd = m->fd;
            bad.response = 3;
            snprintf(log + strlen(log), sizeof log - strlen(log), " badresp:%s",
                     write(g, &bad, sizeof bad) < 0 ? en(errno) : "ok");
            bad.response = FAN_ALLOW | FAN_AUDIT;
            snprintf(log + strlen(log), sizeof log - strlen(log), " audit:%s",
                     write(g, &bad, sizeof bad) < 0 ? en(errno) : "ok");
            snprintf(log + strlen(log), sizeof log - strlen(log), " short:%s",
                     write(g, &bad, 4) < 0 ? en(errno) : "ok");
            resp.response = FAN_DENY;
        }
        ssize_t w = write(g, &resp, sizeof resp);
        snprintf(log + strlen(log), sizeof log - strlen(log), " w=%zd", w);
        close(m->fd);
    }
    if (write(out, log, strlen(log)) < 0)
        _exit(1);
    _exit(0);
}

/* what the listener l saw, from the pipe rfd, once it is done */
static void listener_report(pid_t l, int rfd)
{
    int st;
    waitpid(l, &st, 0);
    char log[512];
    ssize_t n = read(rfd, log, sizeof log - 1);
    log[n < 0 ? 0 : n] = 0;
    printf("listener:%s exit=%d\n", log, WEXITSTATUS(st));
    close(rfd);
}

static void perm_events(void)
{
    printf("-- permission\n");
    touch(at("p"));
    int g = fanotify_init(FAN_CLASS_CONTENT, O_RDONLY);
    res("mark perm", fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN_PERM | FAN_ACCESS_PERM, AT_FDCWD, at("p")));
    int pfd[2];
    if (pipe(pfd))
        return;
    pid_t l = fork();
    if (l == 0)
        listener(g, "adax", pfd[1]);
    close(pfd[1]);
    int fd = open(at("p"), O_RDONLY);
    printf("open allowed: %s\n", fd >= 0 ? "ok" : en(errno));
    char c;
    printf("read denied: %s\n", read(fd, &c, 1) < 0 ? en(errno) : "ok");
    close(fd);
    fd = open(at("p"), O_RDONLY);
    printf("open allowed again: %s\n", fd >= 0 ? "ok" : en(errno));
    close(fd >= 0 ? fd : -1);
    /* that open's read was not asked for: the listener's 4th answer is for this open */
    fd = open(at("p"), O_RDONLY);
    printf("open denied: %s\n", fd >= 0 ? "ok" : en(errno));
    int st;
    listener_report(l, pfd[0]);

    /* a group closed with events pending allows them: unread, then read */
    for (int readit = 0; readit < 2; readit++) {
        pid_t o = fork();
        if (o == 0) {
            close(g);       /* else this process would hold the group open */
            int fd2 = open(at("p"), O_RDONLY);
            _exit(fd2 >= 0 ? 0 : errno);
        }
        struct pollfd pf = {g, POLLIN, 0};
        poll(&pf, 1, -1);
        char buf[4096] __attribute__((aligned(8)));
        if (readit) {
            ssize_t k = read(g, buf, sizeof buf);
            struct fanotify_event_metadata *m = (void *)buf;
            printf("read pending: %d pid=%s\n", k > 0, m->pid == o ? "opener" : "other");
            close(m->fd);
        }
        if (readit) {
            close(g);
        } else {
            /* a second listener fd closes nothing: dup'd fds share the group */
            int d = dup(g);
            close(d);
            printf("dup closed, still waiting: %d\n", waitpid(o, &st, WNOHANG));
            close(g);
        }
        waitpid(o, &st, 0);
        printf("opener after close (%s): exit=%d\n", readit ? "read" : "unread", WEXITSTATUS(st));
        g = fanotify_init(FAN_CLASS_CONTENT, O_RDONLY);
        fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, at("p"));
    }

    /* an opener killed while it waits: unread, its event is withdrawn;
     * read, the answer finds nothing to wake */
    for (int readit = 0; readit < 2; readit++) {
        pid_t o = fork();
        if (o == 0) {
            close(g);
            open(at("p"), O_RDONLY);
            _exit(0);
        }
        struct pollfd pf = {g, POLLIN, 0};
        poll(&pf, 1, -1);
        char buf[4096] __attribute__((aligned(8)));
        struct fanotify_event_metadata *m = (void *)buf;
        if (readit && read(g, buf, sizeof buf) <= 0)
            printf("read: %s\n", en(errno));
        kill(o, SIGKILL);
        waitpid(o, &st, 0);
        printf("opener killed (%s): signal=%d\n", readit ? "read" : "unread", WTERMSIG(st));
        fcntl(g, F_SETFL, O_NONBLOCK);
        if (readit) {
            struct fanotify_response resp = {m->fd, FAN_ALLOW};
            printf("late answer: %zd\n", write(g, &resp, sizeof resp));
            close(m->fd);
        }
        res("queue after the kill", read(g, buf, sizeof buf));
        fcntl(g, F_SETFL, 0);
    }
    close(g);
}

/* run path (a copy of this program, or a script it interprets) in a child */
/* FAN_REPORT_PIDFD: each event ends with a pidfd record, a pidfd for the
   event's process; FAN_NOPIDFD once that process was reaped */
static int fdinfo_pid(int fd)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(p, "r");
    int pid = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Pid:", 4))
            pid = atoi(line + 4);
    if (f)
        fclose(f);
    return pid;
}

static void pidfd_events(void)
{
    printf("-- pidfd\n");
    res("pidfd|tid", fanotify_init(FAN_REPORT_PIDFD | FAN_REPORT_TID, O_RDONLY));
    int g = fanotify_init(FAN_REPORT_PIDFD | FAN_NONBLOCK, O_RDONLY);
    fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, at("f"));
    open_close(at("f"));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        close(g);
        open_close(at("f"));
        _exit(0);
    }
    waitpid(c, NULL, 0);        /* reaped before the read: no pidfd */
    char buf[4096];
    ssize_t n = read(g, buf, sizeof buf);
    for (char *p = buf; n > 0 && p < buf + n;) {
        struct fanotify_event_metadata *m = (void *)p;
        struct fanotify_event_info_pidfd *i = (void *)(p + m->metadata_len);
        int self = m->pid == getpid();
        printf("event of %s: len %u, info type %d len %d, pidfd %s\n", self ? "self" : "the child",
               m->event_len, i->hdr.info_type, i->hdr.len,
               i->pidfd == FAN_NOPIDFD ? "FAN_NOPIDFD" : i->pidfd < 0 ? "error"
               : fdinfo_pid(i->pidfd) == m->pid && fcntl(i->pidfd, F_GETFD) == FD_CLOEXEC ? "ours, cloexec" : "wrong");
        if (i->pidfd >= 0)
            close(i->pidfd);
        if (m->fd >= 0)
            close(m->fd);
        p += m->event_len;
    }
    close(g);
}

static void run(const char *label, const char *path)
{
    pid_t c = fork();
    if (c == 0) {
        execl(path, path, "exit", (char *)NULL);
        _exit(errno);
    }
    other = c;
    int st;
    waitpid(c, &st, 0);
    printf("exec %s: %s\n", label, WEXITSTATUS(st) ? en(WEXITSTATUS(st)) : "ok");
}

/* a listener answering `answers` while a child execs path */
static void exec_perm(int g, const char *answers, const char *path)
{
    int pfd[2];
    if (pipe(pfd))
        return;
    pid_t l = fork();
    if (l == 0)
        listener(g, answers, pfd[1]);
    close(pfd[1]);
    run(answers, path);
    listener_report(l, pfd[0]);
}

/* execve opens the program (and a script's interpreter) with FMODE_EXEC:
 * FAN_OPEN | FAN_OPEN_EXEC, the header reads' FAN_ACCESS, the close when
 * the process lets go of it; FAN_OPEN_EXEC_PERM, then FAN_OPEN_PERM */
static void exec_events(void)
{
    printf("-- exec\n");
    char buf[65536];
    int in = open("/proc/self/exe", O_RDONLY), out = open(at("prog"), O_WRONLY | O_CREAT | O_TRUNC, 0755);
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, n) != n)
            printf("copy: %s\n", en(errno));
    close(in);
    close(out);
    FILE *sc = fopen(at("script"), "w");
    fprintf(sc, "#!%s exit\n", at("prog"));
    fclose(sc);
    chmod(at("script"), 0755);

    int g = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
    unsigned long long all = FAN_OPEN | FAN_OPEN_EXEC | FAN_ACCESS | FAN_CLOSE_NOWRITE;
    res("mark prog", fanotify_mark(g, FAN_MARK_ADD, all, AT_FDCWD, at("prog")));
    res("mark script", fanotify_mark(g, FAN_MARK_ADD, all, AT_FDCWD, at("script")));
    run("prog", at("prog"));
    dump(g, 0);
    run("script", at("script"));
    dump(g, 0);
    open_close(at("prog"));
    dump(g, 0);
    /* fanotify12's: OPEN_EXEC ignored, OPEN still reported */
    res("ignore exec", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK, FAN_OPEN_EXEC, AT_FDCWD, at("prog")));
    run("prog ignoring", at("prog"));
    dump(g, 0);
    close(g);

    g = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
    res("mark exec only", fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN_EXEC, AT_FDCWD, at("prog")));
    open_close(at("prog"));
    run("prog", at("prog"));
    dump(g, 0);
    close(g);

    g = fanotify_init(FAN_CLASS_CONTENT, O_RDONLY);
    res("mark exec perm", fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN_EXEC_PERM, AT_FDCWD, at("prog")));
    exec_perm(g, "d", at("prog"));
    exec_perm(g, "a", at("prog"));
    exec_perm(g, "a", at("script"));
    /* ETXTBSY comes after the permission events */
    int w = open(at("prog"), O_WRONLY);
    exec_perm(g, "a", at("prog"));
    close(w);
    res("mark open perm", fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, at("prog")));
    exec_perm(g, "ad", at("prog"));
    exec_perm(g, "aa", at("prog"));
    close(g);
}

/* an opener that waits for good while everything else goes on */
static int wedge(void)
{
    touch(at("w"));
    int g = fanotify_init(FAN_CLASS_CONTENT, O_RDONLY);
    fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, at("w"));
    pid_t o = fork();
    if (o == 0) {
        close(g);
        open(at("w"), O_RDONLY);
        _exit(0);
    }
    struct pollfd pf = {g, POLLIN, 0};
    poll(&pf, 1, -1);
    printf("opener waits: %d\n", waitpid(o, NULL, WNOHANG));
    fflush(stdout);
    pid_t busy = fork();        /* the rest of the system goes on */
    if (busy == 0) {
        close(g);
        for (int i = 0; i < 200; i++)
            open_close(at("f"));
        _exit(0);
    }
    int st;
    waitpid(busy, &st, 0);
    printf("others ran: %d, opener still waits: %d\n", WEXITSTATUS(st), waitpid(o, NULL, WNOHANG));
    kill(o, SIGKILL);
    waitpid(o, &st, 0);
    printf("opener killed: %d\n", WTERMSIG(st));
    printf("done\n");
    return 0;
}

/* FAN_MARK_EVICTABLE: an inode mark that does not hold its inode goes when
   vm.drop_caches evicts the inode, unless something else holds it */
static int evict(void)
{
    int g = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
    int held = open(at("g"), O_RDONLY);
    mkdir(at("cwd"), 0755);
    if (chdir(at("cwd")) != 0)
        printf("chdir: %s\n", en(errno));
    res("evictable mark on f", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_EVICTABLE, FAN_OPEN, AT_FDCWD, at("f")));
    res("evictable mark on open g", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_EVICTABLE, FAN_OPEN, AT_FDCWD, at("g")));
    res("evictable mark on the cwd", fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_EVICTABLE, FAN_OPEN | FAN_ONDIR,
                                                   AT_FDCWD, at("cwd")));
    res("mark on h", fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, at("h")));
    int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
    res("drop_caches 2", write(dc, "2", 1));
    close(dc);
    res("remove f's (evicted)", fanotify_mark(g, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, at("f")));
    res("remove g's (held open)", fanotify_mark(g, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, at("g")));
    res("remove the cwd's (held)", fanotify_mark(g, FAN_MARK_REMOVE, FAN_OPEN | FAN_ONDIR, AT_FDCWD, at("cwd")));
    res("remove h's (pins h)", fanotify_mark(g, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, at("h")));
    close(held);
    close(g);
    printf("done\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "exit"))
        return 0;       /* exec_events' program */
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(dir, sizeof dir, "%s/fan", argc > 1 ? argv[1] : "/tmp");
    mkdir(dir, 0755);
    chmod(dir, 0755);
    touch(at("f"));
    touch(at("g"));
    touch(at("h"));
    if (argc > 2 && !strcmp(argv[2], "wedge"))
        return wedge();
    if (argc > 2 && !strcmp(argv[2], "evict"))
        return evict();
    init_errors();
    mark_errors();
    inode_events();
    mount_events(FAN_MARK_MOUNT, "mount");
    mount_events(FAN_MARK_FILESYSTEM, "filesystem");
    fid_events();
    overflow();
    perm_events();
    exec_events();
    pidfd_events();
    printf("done\n");
    return 0;
}
