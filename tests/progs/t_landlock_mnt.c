/* Landlock across mounts (root, in a mount namespace of its own): a rule
   ties rights to an inode, so it holds through a bind mount of its
   directory; a walk crosses from a mount's root to the directory above
   its mount point, skipping the mount point it covers; a landlocked task
   may not mount or unmount, but may make a new mount namespace. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

static char top[4096];

static const char *p(const char *name)
{
    static char buf[4][4400];
    static int n;
    char *s = buf[n++ & 3];
    snprintf(s, sizeof(buf[0]), "%s/%s", top, name);
    return s;
}

static int sandbox_fd(int rule_fd)
{
    struct landlock_ruleset_attr a = {.handled_access_fs = LANDLOCK_ACCESS_FS_READ_FILE};
    int rs = syscall(SYS_landlock_create_ruleset, &a, sizeof(a), 0);
    if (rule_fd >= 0) {
        struct landlock_path_beneath_attr pb = {.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE,
                                                .parent_fd = rule_fd};
        if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
            printf("add_rule: %s\n", en(errno));
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return rs;
}

static void try_read(const char *what, const char *path)
{
    int fd = open(path, O_RDONLY);
    printf("  %s: %s\n", what, fd >= 0 ? "ok" : en(errno));
    if (fd >= 0)
        close(fd);
}

/* in a child: a sandbox whose one rule is on rule_path (or on rule_fd) */
static void with_rule(const char *title, const char *rule_path, int rule_fd)
{
    printf("%s\n", title);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = rule_fd >= 0 ? rule_fd : rule_path ? open(rule_path, O_PATH) : -1;
        int rs = sandbox_fd(fd);
        if (syscall(SYS_landlock_restrict_self, rs, 0) < 0)
            printf("restrict_self: %s\n", en(errno));
        try_read("a/f", p("a/f"));
        try_read("m/f (a bound)", p("m/f"));
        try_read("t/x (a tmpfs)", p("t/x"));
        try_read("o/g", p("o/g"));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

static void touch(const char *path)
{
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    close(fd);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return 1;
    snprintf(top, sizeof(top), "%s/lm", argv[1]);
    if (syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) < 0) {
        printf("no landlock: %s\n", en(errno));
        return 0;
    }
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        printf("no mount namespace: %s\n", en(errno));
        return 0;
    }
    mkdir(top, 0755);
    mkdir(p("a"), 0755);
    mkdir(p("m"), 0755);
    mkdir(p("t"), 0755);
    mkdir(p("o"), 0755);
    touch(p("a/f"));
    touch(p("o/g"));
    int covered = open(p("m"), O_PATH);
    if (mount(p("a"), p("m"), NULL, MS_BIND, NULL) < 0 || mount("none", p("t"), "tmpfs", 0, NULL) < 0) {
        printf("mount: %s\n", en(errno));
        return 1;
    }
    touch(p("t/x"));
    with_rule("rule on a", p("a"), -1);
    with_rule("rule on m (a's root, bound)", p("m"), -1);
    with_rule("rule on the directory m covers", NULL, covered);
    with_rule("rule on t (the tmpfs root)", p("t"), -1);
    with_rule("rule above the mounts", top, -1);
    with_rule("no rule", NULL, -1);

    printf("topology\n");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int rs = sandbox_fd(-1);
        syscall(SYS_landlock_restrict_self, rs, 0);
        printf("  mount: %s\n", mount("none", p("o"), "tmpfs", 0, NULL) == 0 ? "ok" : en(errno));
        printf("  bind: %s\n", mount(p("a"), p("o"), NULL, MS_BIND, NULL) == 0 ? "ok" : en(errno));
        printf("  remount: %s\n", mount(NULL, p("t"), NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0 ? "ok" : en(errno));
        printf("  umount: %s\n", umount2(p("t"), 0) == 0 ? "ok" : en(errno));
        printf("  umount detach: %s\n", umount2(p("m"), MNT_DETACH) == 0 ? "ok" : en(errno));
        printf("  unshare mount namespace: %s\n", unshare(CLONE_NEWNS) == 0 ? "ok" : en(errno));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    umount2(p("t"), MNT_DETACH);
    umount2(p("m"), MNT_DETACH);
    unlink(p("a/f"));
    unlink(p("o/g"));
    rmdir(p("a"));
    rmdir(p("m"));
    rmdir(p("t"));
    rmdir(p("o"));
    rmdir(top);
    printf("done\n");
    return 0;
}
