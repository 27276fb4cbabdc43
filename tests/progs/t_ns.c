/* Namespaces: unshare/clone of UTS, IPC and mount namespaces, /proc/PID/ns links
   (inode numbers hidden, compared), the NS_GET_* ioctls, setns; an mqueue
   mount shows the mounter's IPC namespace (LTP mqns_03, mqns_04).  Run as
   root (it never changes the caller's own namespaces' names). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#define NSIO 0xb7
#define NS_GET_USERNS _IO(NSIO, 0x1)
#define NS_GET_PARENT _IO(NSIO, 0x2)
#define NS_GET_NSTYPE _IO(NSIO, 0x3)
#define NS_GET_OWNER_UID _IO(NSIO, 0x4)

static const char *KINDS[] = {"net", "uts", "ipc", "pid", "pid_for_children", "user",
                              "mnt", "cgroup", "time", "time_for_children"};

/* "uts:[4026531838]" -> "uts:[...]"; the number itself stays host-specific */
static void show_link(const char *path)
{
    char buf[64];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0) {
        printf("readlink %s: -1 %s\n", path, en(errno));
        return;
    }
    buf[n] = 0;
    char *br = strchr(buf, '[');
    int ok = br && buf[n - 1] == ']' && strspn(br + 1, "0123456789") == (size_t)(n - (br - buf) - 2);
    if (br)
        br[1] = 0;
    printf("%s -> %s...] %s\n", path, buf, ok ? "number" : "BAD");
}

static unsigned long link_ino(const char *path)
{
    char buf[64];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0)
        return 0;
    buf[n] = 0;
    char *br = strchr(buf, '[');
    return br ? strtoul(br + 1, NULL, 10) : 0;
}

static char *nodename(void)
{
    static struct utsname u;
    uname(&u);
    return u.nodename;
}

static int wait_child(pid_t c)
{
    int st;
    waitpid(c, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void links(void)
{
    for (unsigned i = 0; i < sizeof KINDS / sizeof *KINDS; i++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/self/ns/%s", KINDS[i]);
        show_link(p);
    }
    /* a child in the same namespaces sees the same numbers */
    unsigned long mine = link_ino("/proc/self/ns/uts");
    pid_t c = fork();
    if (c == 0)
        _exit(link_ino("/proc/self/ns/uts") == mine ? 0 : 1);
    printf("child's uts equal: %d\n", wait_child(c) == 0);
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/ipc", getpid());
    printf("by pid equal to self: %d\n", link_ino(p) == link_ino("/proc/self/ns/ipc"));
}

static void ioctls(void)
{
    int fd = open("/proc/self/ns/uts", O_RDONLY);
    fdres("open uts", fd);
    struct stat st;
    fstat(fd, &st);
    printf("fstat: ino equal %d, reg %d, mode %o\n", st.st_ino == link_ino("/proc/self/ns/uts"),
           S_ISREG(st.st_mode), st.st_mode & 07777);
    char b[8];
    res("read", read(fd, b, sizeof b));
    res("NS_GET_NSTYPE is NEWUTS", ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWUTS);
    res("NS_GET_PARENT uts", ioctl(fd, NS_GET_PARENT));
    uid_t uid = 99;
    res("NS_GET_OWNER_UID uts", ioctl(fd, NS_GET_OWNER_UID, &uid));
    res("unknown ioctl", ioctl(fd, _IO(NSIO, 0x50)));
    int u = ioctl(fd, NS_GET_USERNS);
    fdres("NS_GET_USERNS uts", u);
    printf("  cloexec %d nstype is NEWUSER %d\n", fcntl(u, F_GETFD) == FD_CLOEXEC,
           ioctl(u, NS_GET_NSTYPE) == CLONE_NEWUSER);
    fstat(u, &st);
    printf("  same as /proc/self/ns/user %d\n", st.st_ino == link_ino("/proc/self/ns/user"));
    res("NS_GET_OWNER_UID user", ioctl(u, NS_GET_OWNER_UID, &uid));
    printf("  uid %u\n", uid);
    res("NS_GET_USERNS user", ioctl(u, NS_GET_USERNS));
    res("NS_GET_PARENT user", ioctl(u, NS_GET_PARENT));
    close(u);
    int pfd = open("/proc/self/ns/pid", O_RDONLY);
    res("NS_GET_PARENT pid", ioctl(pfd, NS_GET_PARENT));
    res("NS_GET_NSTYPE pid is NEWPID", ioctl(pfd, NS_GET_NSTYPE) == CLONE_NEWPID);
    close(pfd);
    close(fd);
}

static void uts(void)
{
    char before[65];
    strcpy(before, nodename());
    int old = open("/proc/self/ns/uts", O_RDONLY);
    unsigned long mine = link_ino("/proc/self/ns/uts");
    pid_t c = fork();
    if (c == 0) {
        res("unshare NEWUTS", unshare(CLONE_NEWUTS));
        printf("child: new number %d, name kept %d\n", link_ino("/proc/self/ns/uts") != mine,
               strcmp(nodename(), before) == 0);
        res("sethostname", sethostname("t-ns-child", 10));
        printf("child: uname %s\n", nodename());
        int fd = open("/proc/sys/kernel/hostname", O_RDONLY);
        char b[80] = "";
        read(fd, b, sizeof b - 1);
        close(fd);
        printf("child: /proc/sys/kernel/hostname %s", b);
        res("setns mismatched type", setns(old, CLONE_NEWIPC));
        int rf = open("/proc/self/stat", O_RDONLY);
        res("setns regular file", setns(rf, 0));
        close(rf);
        res("setns back", setns(old, CLONE_NEWUTS));
        printf("child: back %d, name as before %d\n", link_ino("/proc/self/ns/uts") == mine,
               strcmp(nodename(), before) == 0);
        res("setns same again (type 0)", setns(old, 0));
        _exit(0);
    }
    wait_child(c);
    printf("parent: name unchanged %d\n", strcmp(nodename(), before) == 0);
    /* clone with CLONE_NEWUTS */
    c = syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0);
    if (c == 0) {
        sethostname("t-ns-clone", 10);
        _exit(link_ino("/proc/self/ns/uts") != mine && strcmp(nodename(), "t-ns-clone") == 0 ? 7 : 1);
    }
    printf("clone NEWUTS child: %d, parent name unchanged %d\n", wait_child(c),
           strcmp(nodename(), before) == 0);
    close(old);
}

static void ipc(void)
{
    int shm = shmget(0x7e57ab, 4096, IPC_CREAT | 0600);
    pid_t c = fork();
    if (c == 0) {
        res("child sees the segment", shmget(0x7e57ab, 4096, 0) == shm);
        res("unshare NEWIPC", unshare(CLONE_NEWIPC));
        res("after unshare", shmget(0x7e57ab, 4096, 0));
        _exit(0);
    }
    wait_child(c);
    c = syscall(SYS_clone, CLONE_NEWIPC | SIGCHLD, 0, 0, 0, 0);
    if (c == 0) {
        int r = shmget(0x7e57ab, 4096, 0);
        printf("clone NEWIPC: %d %s\n", r, r < 0 ? en(errno) : "");
        _exit(0);
    }
    wait_child(c);
    res("clone NEWIPC|SYSVSEM", syscall(SYS_clone, CLONE_NEWIPC | CLONE_SYSVSEM | SIGCHLD, 0, 0, 0, 0));
    res("parent still sees it", shmget(0x7e57ab, 4096, 0) == shm);
    shmctl(shm, IPC_RMID, NULL);
}

static long read_long(const char *path)
{
    char b[64] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    return n > 0 ? atol(b) : -1;
}

static int lines_of(const char *path)
{
    char b[4096];
    int fd = open(path, O_RDONLY), n = 0;
    ssize_t r;
    if (fd < 0)
        return -1;
    while ((r = read(fd, b, sizeof b)) > 0)
        for (ssize_t i = 0; i < r; i++)
            n += b[i] == '\n';
    close(fd);
    return n;
}

/* what an IPC namespace holds besides its tables: its sysctls, its POSIX
   queues, its /proc/sysvipc; a segment attached before leaving is still
   the old namespace's to destroy at its last detach */
static void ipc_more(void)
{
    long msgmax = read_long("/proc/sys/kernel/msgmax");
    int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    pid_t c = fork();
    if (c == 0) {
        void *at = shmat(shm, NULL, 0);
        shmctl(shm, IPC_RMID, NULL);
        res("unshare NEWIPC", unshare(CLONE_NEWIPC));
        printf("new ns: sysvipc/shm lines %d\n", lines_of("/proc/sysvipc/shm"));
        int fd = open("/proc/sys/kernel/msgmax", O_WRONLY);
        res("write msgmax", write(fd, "1234", 4) == 4 ? 0 : -1);
        close(fd);
        printf("new ns: msgmax %ld\n", read_long("/proc/sys/kernel/msgmax"));
        struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 64};
        mqd_t q = mq_open("/t_ns_queue", O_CREAT | O_RDWR, 0600, &a);
        res("mq_open in the new ns", q == (mqd_t)-1 ? -1 : 0);
        res("shmdt of the old ns's segment", shmdt(at));
        _exit(0);
    }
    wait_child(c);
    printf("parent: msgmax unchanged %d\n", read_long("/proc/sys/kernel/msgmax") == msgmax);
    mqd_t q = mq_open("/t_ns_queue", O_RDONLY);
    res("parent: mq_open of the child's queue", q == (mqd_t)-1 ? -1 : 0);
    res("parent: the segment went at its last detach", shmctl(shm, IPC_STAT, &(struct shmid_ds){0}));
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void join(const char *a, const char *b, char out[1024])
{
    snprintf(out, 1024, "%.500s/%s", a, b);
}

/* an mqueue mount made in a new IPC namespace shows that namespace's
   queues, to its processes and to the parent's (sharing the mount
   namespace); a file made in it is a queue with the default attributes,
   until the namespace goes (EACCES) */
static void mqueue_mount(const char *dir)
{
    char m[1024], q1[1024], q2[1024], q3[1024];
    join(dir, "mq", m);
    join(m, "t_ns_mq1", q1);
    join(m, "t_ns_mq2", q2);
    join(m, "t_ns_mq3", q3);
    mkdir(m, 0755);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {       /* a mount namespace of its own: the host's is left alone */
        unshare(CLONE_NEWNS);
        mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
        int ready[2], go[2];
        if (pipe(ready) || pipe(go))
            _exit(1);
        pid_t c = fork();
        if (c == 0) {
            char ch;
            res("unshare NEWIPC", unshare(CLONE_NEWIPC));
            mqd_t q = mq_open("/t_ns_mq1", O_CREAT | O_EXCL | O_RDWR, 0777, NULL);
            res("mq_open MQ1", q == (mqd_t)-1 ? -1 : 0);
            mq_close(q);
            res("mount mqueue", mount("mqueue", m, "mqueue", 0, NULL));
            printf("MQ1 at first mount %d\n", exists(q1));
            int fd = creat(q2, 0755);
            res("creat MQ2 in the mount", fd < 0 ? -1 : 0);
            close(fd);
            struct stat st;
            stat(q2, &st);
            printf("MQ2 mode %o\n", st.st_mode);
            struct mq_attr a;
            q = mq_open("/t_ns_mq2", O_RDONLY);
            res("mq_open MQ2", q == (mqd_t)-1 ? -1 : 0);
            mq_getattr(q, &a);
            printf("MQ2 maxmsg %ld msgsize %ld\n", a.mq_maxmsg, a.mq_msgsize);
            mq_close(q);
            res("umount", umount(m));
            res("mount again", mount("mqueue", m, "mqueue", 0, NULL));
            printf("MQ1 %d MQ2 %d at second mount\n", exists(q1), exists(q2));
            res("mq_unlink MQ2", mq_unlink("/t_ns_mq2"));
            printf("MQ2 after mq_unlink %d\n", exists(q2));
            fflush(stdout);
            if (write(ready[1], "x", 1) != 1 || read(go[0], &ch, 1) != 1)
                _exit(1);
            _exit(0);
        }
        char ch;
        if (read(ready[0], &ch, 1) != 1)
            _exit(1);
        printf("parent: MQ1 in the child's mount %d\n", exists(q1));
        mqd_t q = mq_open("/t_ns_mq1", O_RDONLY);
        res("parent: mq_open MQ1 in its own namespace", q == (mqd_t)-1 ? -1 : 0);
        if (write(go[1], "x", 1) != 1)
            _exit(1);
        wait_child(c);
        printf("parent: MQ1 after the child went %d\n", exists(q1));
        int fd = creat(q3, 0755);
        res("parent: creat MQ3 once the namespace is gone", fd);
        if (fd >= 0)
            close(fd);
        res("parent: umount", umount(m));
        _exit(0);
    }
    wait_child(p);
    rmdir(m);
}

/* mount namespaces: a copy of the tree, private afterwards (made private
   explicitly: a native root mount may be shared) */
static void mnt(const char *dir)
{
    char top[256], m1[300], m2[300], f1[320], f2[320];
    snprintf(top, sizeof top, "%s/t_ns", dir);
    snprintf(m1, sizeof m1, "%s/before", top);
    snprintf(m2, sizeof m2, "%s/after", top);
    snprintf(f1, sizeof f1, "%s/file", m1);
    snprintf(f2, sizeof f2, "%s/file", m2);
    mkdir(top, 0755);
    mkdir(m1, 0755);
    mkdir(m2, 0755);
    res("mount before", mount("t", m1, "tmpfs", 0, NULL));
    close(open(f1, O_CREAT | O_WRONLY, 0644));
    int old = open("/proc/self/ns/mnt", O_RDONLY);
    unsigned long mine = link_ino("/proc/self/ns/mnt");
    pid_t c = fork();
    if (c == 0) {
        chdir(top);
        res("unshare NEWNS", unshare(CLONE_NEWNS));
        res("make private", mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL));
        printf("child: new number %d\n", link_ino("/proc/self/ns/mnt") != mine);
        char cwd[256];
        printf("child: cwd kept %d\n", getcwd(cwd, sizeof cwd) && strcmp(cwd, top) == 0);
        printf("child: sees the earlier mount %d\n", exists(f1));
        res("mount after", mount("t", m2, "tmpfs", 0, NULL));
        close(open(f2, O_CREAT | O_WRONLY, 0644));
        printf("child: its own mount %d\n", exists(f2));
        res("umount the copy", umount(m1));
        printf("child: earlier mount gone %d\n", !exists(f1));
        res("setns back", setns(old, CLONE_NEWNS));
        printf("child: cwd now / %d\n", getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") == 0);
        printf("child: back, sees parent's tree %d %d\n", exists(f1), !exists(f2));
        _exit(0);
    }
    wait_child(c);
    printf("parent: still has its mount %d, not the child's %d\n", exists(f1), !exists(f2));
    res("clone NEWNS|FS", syscall(SYS_clone, CLONE_NEWNS | CLONE_FS | SIGCHLD, 0, 0, 0, 0));
    c = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
    if (c == 0) {
        mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
        _exit(umount(m1) == 0 && !exists(f1) ? 7 : 1);
    }
    printf("clone NEWNS child: %d, parent keeps its mount %d\n", wait_child(c), exists(f1));
    close(old);
    unlink(f1);
    res("umount before", umount(m1));
    rmdir(m1);
    rmdir(m2);
    rmdir(top);
}

/* pivot_root in a private mount namespace, from a chroot into a tmpfs (a
   namespace's own root mount cannot be pivoted here, nor from a Linux initramfs) */
static void pivot(const char *dir)
{
    char top[256];
    snprintf(top, sizeof top, "%s/t_ns_pivot", dir);
    mkdir(top, 0755);
    pid_t c = fork();
    if (c == 0) {
        res("unshare NEWNS|FS", unshare(CLONE_NEWNS | CLONE_FS));
        mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
        res("mount chroot", mount("none", top, "tmpfs", 0, NULL));
        res("chroot", chroot(top));
        chdir("/");
        mkdir("/new", 0777);
        mkdir("/new/old", 0777);
        mkdir("/elsewhere", 0777);
        close(open("/file", O_CREAT | O_WRONLY, 0644));
        res("pivot not a mount point", syscall(SYS_pivot_root, "/new", "/new/old"));
        res("mount new", mount("none", "/new", "tmpfs", 0, NULL));
        mkdir("/new/old", 0777);
        close(open("/new/file", O_CREAT | O_WRONLY, 0644));
        res("pivot put_old not a dir", syscall(SYS_pivot_root, "/new", "/new/file"));
        res("pivot put_old on the root", syscall(SYS_pivot_root, "/new", "/elsewhere"));
        mount("none", "/elsewhere", "tmpfs", 0, NULL);
        res("pivot put_old not below", syscall(SYS_pivot_root, "/new", "/elsewhere"));
        pid_t n = fork();
        if (n == 0) {
            setuid(65534);
            res("nobody: pivot", syscall(SYS_pivot_root, "/new", "/new/old"));
            _exit(0);
        }
        wait_child(n);
        res("pivot", syscall(SYS_pivot_root, "/new", "/new/old"));
        char cwd[256];
        printf("after pivot: cwd / %d, old root at /old %d %d, new root's file %d\n",
               getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") == 0, exists("/old/file"),
               exists("/old/new"), exists("/file"));
        res("umount old", umount2("/old", MNT_DETACH));
        printf("old gone %d\n", !exists("/old/file"));
        _exit(0);
    }
    wait_child(c);
    printf("parent: chroot mount not here %d\n", !exists("/t_ns_pivot_never") && rmdir(top) == 0);
}

static void unprivileged(void)
{
    int old = open("/proc/self/ns/uts", O_RDONLY);
    pid_t c = fork();
    if (c == 0) {
        setuid(65534);
        res("nobody: unshare NEWUTS", unshare(CLONE_NEWUTS));
        res("nobody: unshare NEWIPC", unshare(CLONE_NEWIPC));
        res("nobody: setns uts", setns(old, CLONE_NEWUTS));
        res("nobody: setns bad type", setns(old, CLONE_NEWNET));
        res("nobody: clone NEWUTS", syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0));
        res("nobody: unshare NEWNS", unshare(CLONE_NEWNS));
        _exit(0);
    }
    wait_child(c);
    close(old);
    res("setns -1", setns(-1, 0));
    res("unshare 0", unshare(0));
}

static void write_file(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0) {
        printf("open %s: -1 %s\n", path, en(errno));
        return;
    }
    char what[96];
    snprintf(what, sizeof what, "write %s %.*s", path, (int)strcspn(value, "\n"), value);
    res(what, write(fd, value, strlen(value)));
    close(fd);
}

/* the init user namespace's id maps and setgroups: identity, written once */
static void id_maps(void)
{
    show_small("/proc/self/uid_map", "/proc/self/uid_map");
    show_small("/proc/self/gid_map", "/proc/self/gid_map");
    show_small("/proc/self/projid_map", "/proc/self/projid_map");
    show_small("/proc/self/setgroups", "/proc/self/setgroups");
    write_file("/proc/self/uid_map", "0 0 1\n");
    write_file("/proc/self/gid_map", "0 0 1\n");
    write_file("/proc/self/setgroups", "allow\n");
    write_file("/proc/self/setgroups", "deny");
    write_file("/proc/self/setgroups", "maybe");
    pid_t c = fork();
    if (c == 0) {
        setresuid(65534, 65534, 65534);
        write_file("/proc/self/setgroups", "allow");
        write_file("/proc/self/uid_map", "0 0 1");
        _exit(0);
    }
    wait_child(c);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    setvbuf(stdout, NULL, _IOLBF, 0);
    base = open("/dev/null", O_RDONLY);
    close(base);
    links();
    ioctls();
    uts();
    ipc();
    ipc_more();
    mqueue_mount(dir);
    mnt(dir);
    pivot(dir);
    unprivileged();
    id_maps();
    printf("done\n");
    return 0;
}
