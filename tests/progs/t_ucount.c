/* /proc/sys/user (ucounts): in a new user namespace every limit reads
   INT_MAX and its root may lower it (0..INT_MAX, else EINVAL); making a
   namespace past the limit of its kind is ENOSPC, and a user namespace
   made below counts for its creator up the chain.  Without
   CAP_SYS_RESOURCE there the files are read-only (EACCES).  The same on
   Linux and in the guest, as root or not.  Last line done. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include "results.h"

static void put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        printf("write %s %s: %s\n", path, text, en(errno));
    if (fd >= 0)
        close(fd);
}

static long get(const char *path)
{
    char buf[64] = "";
    int fd = open(path, O_RDONLY);
    long n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    return n > 0 ? atol(buf) : -1;
}

static void limit(const char *kind, const char *value)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/sys/user/max_%s_namespaces", kind);
    put(path, value);
}

/* unshare(flags) in a child, ENOSPC or not */
static void try_unshare(const char *what, int flags)
{
    pid_t p = fork();
    if (p == 0) {
        int r = unshare(flags);
        printf("%s: %s\n", what, r ? en(errno) : "ok");
        fflush(stdout);
        _exit(0);
    }
    waitpid(p, NULL, 0);
}

static void own_userns(void)
{
    char map[64];
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER)) {
        printf("unshare: %s\n", en(errno));
        exit(1);
    }
    snprintf(map, sizeof map, "0 %u 1", uid);
    put("/proc/self/uid_map", map);
    put("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", gid);
    put("/proc/self/gid_map", map);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (access("/proc/self", F_OK))
        mount("proc", "/proc", "proc", 0, NULL);      /* a guest booted straight into us */
    own_userns();
    printf("max_user_namespaces in a new namespace: %ld\n", get("/proc/sys/user/max_user_namespaces"));
    printf("max_mnt_namespaces: %ld\n", get("/proc/sys/user/max_mnt_namespaces"));
    limit("user", "-1");
    limit("user", "2147483648");
    limit("user", "1");
    printf("after writing 1: %ld\n", get("/proc/sys/user/max_user_namespaces"));
    /* one user namespace below this one may be made; one below that one
       counts here too (its creator's), so it is refused */
    pid_t p = fork();
    if (p == 0) {
        printf("first below: %s\n", unshare(CLONE_NEWUSER) ? en(errno) : "ok");
        printf("limit there: %ld\n", get("/proc/sys/user/max_user_namespaces"));
        printf("second, below it: %s\n", unshare(CLONE_NEWUSER) ? en(errno) : "ok");
        fflush(stdout);
        _exit(0);
    }
    waitpid(p, NULL, 0);
    const char *kinds[] = {"uts", "ipc", "net", "pid", "mnt"};
    int flags[] = {CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWNS};
    for (int i = 0; i < 5; i++) {
        char what[64];
        limit(kinds[i], "0");
        snprintf(what, sizeof what, "%s namespace past 0", kinds[i]);
        try_unshare(what, flags[i]);
        limit(kinds[i], "5");
        snprintf(what, sizeof what, "%s namespace under 5", kinds[i]);
        try_unshare(what, flags[i]);
    }
    p = fork();
    if (p == 0) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2] = {{0}};
        syscall(SYS_capset, &h, d);
        limit("uts", "3");
        printf("without capabilities, still: %ld\n", get("/proc/sys/user/max_uts_namespaces"));
        _exit(0);
    }
    waitpid(p, NULL, 0);
    printf("done\n");
    return 0;
}
