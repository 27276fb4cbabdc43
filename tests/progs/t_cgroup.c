/* cgroup v2: mkdir/rmdir of groups, cgroup.procs (read and move),
   clone3's CLONE_INTO_CGROUP, /proc/PID/cgroup, cgroup.events.  Mounts
   cgroup2 at argv[1]/cg; prints only what concerns the groups it makes,
   and of /proc/PID/cgroup only the v2 ("0::") line. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#define CLONE_INTO_CGROUP_ 0x200000000ULL

struct clone3_args {
    unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};

static char top[256];

static void show(const char *name, const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", top, file);
    show_small(name, path);
}

static long put(const char *file, const char *value)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", top, file);
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    long r = write(fd, value, strlen(value));
    int e = errno;
    close(fd);
    errno = e;
    return r < 0 ? -1 : r == (long)strlen(value) ? 0 : 1;     /* 0: all of it taken */
}

/* the number of pids a cgroup.procs lists, and whether pid is one */
static void procs_of(const char *name, const char *file, pid_t pid)
{
    char path[512], buf[4096];
    snprintf(path, sizeof path, "%s/%s", top, file);
    ssize_t n = read_small(path, buf, sizeof buf);
    int count = 0, found = 0;
    for (char *p = buf; n > 0 && *p;) {
        long v = strtol(p, &p, 10);
        count++;
        found |= v == pid;
        while (*p == '\n')
            p++;
    }
    printf("%s: %d pids, has it %d\n", name, count, found);
}

static void own_cgroup(const char *who, pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/cgroup", pid);
    ssize_t n = read_small(path, buf, sizeof buf);
    char *v2 = n > 0 ? strstr(buf, "0::") : NULL;
    if (v2 && v2 != buf && v2[-1] != '\n')
        v2 = NULL;
    printf("%s cgroup: %.*s\n", who, v2 ? (int)strcspn(v2, "\n") : 4, v2 ? v2 : "none");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    snprintf(top, sizeof top, "%s/cg", argc > 1 ? argv[1] : "/tmp");
    mkdir(top, 0755);
    res("mount cgroup2", mount("cgroup2", top, "cgroup2", 0, NULL));
    char sub[300];
    snprintf(sub, sizeof sub, "%s/t_cgroup", top);
    rmdir(sub);
    res("mkdir group", mkdir(sub, 0755));
    res("mkdir it again", mkdir(sub, 0755));
    show("type", "t_cgroup/cgroup.type");
    show("events, empty", "t_cgroup/cgroup.events");
    char file[320];
    snprintf(file, sizeof file, "%s/new", sub);
    res("create a file in the group", open(file, O_CREAT | O_WRONLY, 0644));
    show("subtree_control", "t_cgroup/cgroup.subtree_control");
    res("enable a controller", put("t_cgroup/cgroup.subtree_control", "+nosuch"));

    int fd = open(sub, O_PATH | O_DIRECTORY);
    struct clone3_args a = {.flags = CLONE_INTO_CGROUP_, .exit_signal = SIGCHLD, .cgroup = fd};
    int p[2];
    pipe(p);
    pid_t c = syscall(SYS_clone3, &a, sizeof a);
    if (c == 0)
        wait_then_exit(p);
    close(p[0]);
    printf("clone3 into the group: %s\n", c > 0 ? "ok" : en(errno));
    procs_of("group procs after CLONE_INTO_CGROUP", "t_cgroup/cgroup.procs", c);
    own_cgroup("child", c);
    show("events, populated", "t_cgroup/cgroup.events");
    res("rmdir a populated group", rmdir(sub));
    char nr[16];
    snprintf(nr, sizeof nr, "%d\n", getpid());
    res("move self in", put("t_cgroup/cgroup.procs", nr));
    own_cgroup("self", getpid());
    procs_of("group procs with self", "t_cgroup/cgroup.procs", getpid());
    res("move pid 0 back to the root", put("cgroup.procs", "0"));
    res("move a pid that is not there", put("cgroup.procs", "999999"));
    /* a group named in bytes that are no UTF-8 (a name is any bytes but '/') */
    char odd[320], buf[1024];
    snprintf(odd, sizeof odd, "%s/\xed\xb3x", top);
    res("mkdir a group whose name is no UTF-8", mkdir(odd, 0755));
    res("move self into it", put("\xed\xb3x/cgroup.procs", nr));
    ssize_t got = read_small("/proc/self/cgroup", buf, sizeof buf);
    printf("self in it: %d\n", got > 0 && strstr(buf, "0::/\xed\xb3x\n") != NULL);
    res("move self back", put("cgroup.procs", "0"));
    res("rmdir it", rmdir(odd));
    res("move garbage", put("cgroup.procs", "x"));
    own_cgroup("self", getpid());
    close(p[1]);
    waitpid(c, NULL, 0);
    show("events, empty again", "t_cgroup/cgroup.events");
    a.cgroup = 0;
    res("CLONE_INTO_CGROUP with a non-cgroup fd", syscall(SYS_clone3, &a, sizeof a));
    char nested[320];
    snprintf(nested, sizeof nested, "%s/inner", sub);
    mode_t old_mask = umask(022);
    res("mkdir nested", mkdir(nested, 0710));
    umask(old_mask);
    struct stat nst;
    stat(nested, &nst);
    printf("nested group's mode %o\n", nst.st_mode & 07777);
    /* delegation: a group chowned to a user, who makes a group in it,
       which is theirs with its files (cgroup_kn_set_ugid) */
    res("chown the group to nobody", chown(sub, 65534, 65534));
    pid_t u = fork();
    if (u == 0) {
        int dfd = open(sub, O_PATH | O_DIRECTORY);
        if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
            _exit(1);
        res("nobody: mkdir in the delegated group", mkdirat(dfd, "mine", 0755));
        struct stat ds, fs;
        fstatat(dfd, "mine", &ds, 0);
        fstatat(dfd, "mine/cgroup.procs", &fs, 0);
        printf("nobody's group owned by %u:%u, its cgroup.procs by %u:%u\n",
               ds.st_uid, ds.st_gid, fs.st_uid, fs.st_gid);
        res("nobody: rmdir it", unlinkat(dfd, "mine", AT_REMOVEDIR));
        _exit(0);
    }
    waitpid(u, NULL, 0);
    res("rmdir with a child", rmdir(sub));
    res("rmdir nested", rmdir(nested));
    res("rmdir group", rmdir(sub));
    a.cgroup = fd;
    res("CLONE_INTO_CGROUP into a removed group", syscall(SYS_clone3, &a, sizeof a));
    close(fd);
    umount(top);
    printf("done\n");
    return 0;
}
