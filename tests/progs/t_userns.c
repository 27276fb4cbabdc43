/* User namespaces: a new one has no maps (ids read as the overflow id),
   full capabilities inside and none over the init namespace's resources;
   NS_GET_* on user namespace fds; nesting 33 deep (each level mapping
   itself); a parent's several-extent map of a child namespace goes through
   its own map (CVE-2018-18955, LTP userns08).  Run as root.  Deterministic
   output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <grp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NS_GET_USERNS 0xb701
#define NS_GET_PARENT 0xb702
#define NS_GET_NSTYPE 0xb703
#define NS_GET_OWNER_UID 0xb704

static void res(const char *what, long r)
{
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "");
}

static void put(const char *what, const char *path, const char *data)
{
    int m = open(path, O_WRONLY);
    res(what, write(m, data, strlen(data)));
    close(m);
}

static void status_ids(void)
{
    char buf[4096], *p;
    int m = open("/proc/self/status", O_RDONLY);
    int n = read(m, buf, sizeof buf - 1);
    close(m);
    buf[n > 0 ? n : 0] = 0;
    for (p = strtok(buf, "\n"); p; p = strtok(NULL, "\n"))
        if (!strncmp(p, "Uid:", 4) || !strncmp(p, "Gid:", 4))
            printf("%s\n", p);
}

static void show(const char *path)
{
    char line[512];
    int m = open(path, O_RDONLY);
    int n = read(m, line, sizeof line - 1);
    line[n > 0 ? n : 0] = 0;
    printf("%s: %s", path, line);
    close(m);
}

static void put_pid(const char *what, pid_t pid, const char *file, const char *data)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    put(what, path, data);
}

static void post(int fd)
{
    if (write(fd, "x", 1) != 1)
        _exit(9);
}

static void await(int fd)
{
    char c;
    if (read(fd, &c, 1) != 1)
        _exit(9);
}

/* each level maps itself (uid and gid 0 of the level above) and makes the
   next: Linux stops at 33 below the init namespace (level > 32: ENOSPC) */
static void nest(void)
{
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        int n = 0;
        for (; n < 40; n++) {
            if (unshare(CLONE_NEWUSER) < 0)
                break;
            int m = open("/proc/self/setgroups", O_WRONLY);
            int ok = write(m, "deny", 4) == 4;
            close(m);
            m = open("/proc/self/uid_map", O_WRONLY);
            ok &= write(m, "0 0 1", 5) == 5;
            close(m);
            m = open("/proc/self/gid_map", O_WRONLY);
            ok &= write(m, "0 0 1", 5) == 5;
            close(m);
            if (!ok) {
                printf("mapping level %d failed: %s\n", n + 1, strerror(errno));
                break;
            }
        }
        printf("mapped nesting stops at %d: %s\n", n, strerror(errno));
        exit(0);
    }
    waitpid(p, NULL, 0);
}

/* LTP userns08: level 1 (made by euid 100000, mapped 0 100000 1000) maps
   level 2 with six extents over its ids 0..994; they are its ids, kernel
   100000.., so level 2's root may not write root's 0700 file */
static void several_extents(void)
{
    const char *over5 = "0 0 1\n1 1 1\n2 2 1\n3 3 1\n4 4 1\n5 5 990";
    int ready[2], go[2];
    int f = open("/tmp/t_userns_restricted", O_CREAT | O_WRONLY | O_TRUNC, 0700);
    close(f);
    if (pipe(ready) || pipe(go))
        return;
    fflush(stdout);
    pid_t a = fork();
    if (a == 0) {
        if (setegid(100000) || seteuid(100000))
            _exit(9);
        res("level 1 unshare", unshare(CLONE_NEWUSER));
        post(ready[1]);
        await(go[0]);
        res("level 1 setgid(0)", setgid(0));
        res("level 1 setuid(0)", setuid(0));
        fflush(stdout);
        pid_t b = fork();
        if (b == 0) {
            res("level 2 unshare", unshare(CLONE_NEWUSER));
            prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
            post(ready[1]);
            await(go[0]);
            show("/proc/self/uid_map");
            res("level 2 opens root's 0700 file to write", open("/tmp/t_userns_restricted", O_WRONLY));
            exit(0);
        }
        await(ready[0]);
        put_pid("level 2 setgroups deny", b, "setgroups", "deny");
        put_pid("level 2 uid_map, six extents", b, "uid_map", over5);
        put_pid("level 2 gid_map, six extents", b, "gid_map", over5);
        post(go[1]);
        waitpid(b, NULL, 0);
        exit(0);
    }
    await(ready[0]);
    put_pid("level 1 setgroups deny", a, "setgroups", "deny");
    put_pid("level 1 uid_map", a, "uid_map", "0 100000 1000");
    put_pid("level 1 gid_map", a, "gid_map", "0 100000 1000");
    post(go[1]);
    waitpid(a, NULL, 0);
    close(ready[0]); close(ready[1]); close(go[0]); close(go[1]);
    unlink("/tmp/t_userns_restricted");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    nest();
    several_extents();
    struct stat before, after, st;
    int fd = open("/proc/self/ns/user", O_RDONLY);
    fstat(fd, &before);
    res("NS_GET_PARENT(init)", ioctl(fd, NS_GET_PARENT));
    close(fd);
    int f = open("/tmp/t_userns_file", O_CREAT | O_WRONLY | O_TRUNC, 0600);
    close(f);
    f = open("/tmp/t_userns_other", O_CREAT | O_WRONLY | O_TRUNC, 0600);
    fchown(f, 1, 1);
    close(f);

    res("unshare(CLONE_NEWUSER)", unshare(CLONE_NEWUSER));
    printf("uid %u euid %u gid %u egid %u\n", getuid(), geteuid(), getgid(), getegid());
    uid_t r, e, s;
    getresuid(&r, &e, &s);
    printf("resuid %u %u %u\n", r, e, s);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    printf("cap_effective %08x %08x\n", d[0].effective, d[1].effective & 0x1ff);
    status_ids();
    res("setuid(0)", setuid(0));
    res("setgid(0)", setgid(0));
    res("sethostname", sethostname("x", 1));
    res("chown root file", chown("/tmp/t_userns_file", 1, 1));
    res("mknod", mknod("/tmp/t_userns_node", S_IFCHR | 0600, makedev(1, 3)));
    stat("/tmp/t_userns_file", &st);
    printf("file owner %u %u\n", st.st_uid, st.st_gid);

    fd = open("/proc/self/ns/user", O_RDONLY);
    fstat(fd, &after);
    printf("new ns differs %d\n", before.st_ino != after.st_ino);
    res("NS_GET_NSTYPE == CLONE_NEWUSER", ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWUSER);
    uid_t owner = 12345;
    res("NS_GET_OWNER_UID", ioctl(fd, NS_GET_OWNER_UID, &owner));
    printf("owner %u\n", owner);
    res("NS_GET_PARENT(own, parent outside)", ioctl(fd, NS_GET_PARENT));
    res("NS_GET_USERNS(own, outside)", ioctl(fd, NS_GET_USERNS));
    int uts = open("/proc/self/ns/uts", O_RDONLY);
    res("NS_GET_USERNS(init uts)", ioctl(uts, NS_GET_USERNS));

    /* the owner maps itself: setgroups "deny" first for the gid map */
    /* each write on its own open file, as a map is written once */
    put("uid_map two ranges unprivileged", "/proc/self/uid_map", "0 0 1\n1 1 1\n");
    put("uid_map own euid", "/proc/self/uid_map", "0 0 1\n");
    put("uid_map twice", "/proc/self/uid_map", "0 0 1\n");
    put("gid_map before setgroups deny", "/proc/self/gid_map", "0 0 1\n");
    put("setgroups deny", "/proc/self/setgroups", "deny");
    put("gid_map overlapping", "/proc/self/gid_map", "0 0 1\n0 0 1\n");
    put("gid_map own egid", "/proc/self/gid_map", "0 0 1\n");
    show("/proc/self/uid_map");
    show("/proc/self/setgroups");
    status_ids();
    printf("now uid %u euid %u gid %u\n", getuid(), geteuid(), getgid());
    stat("/tmp/t_userns_file", &st);
    printf("file owner %u %u\n", st.st_uid, st.st_gid);
    res("setuid(0) mapped", setuid(0));
    res("setuid(1) unmapped", setuid(1));
    res("setgroups()", setgroups(0, NULL));
    res("chown to 1 (unmapped)", chown("/tmp/t_userns_file", 1, -1));
    res("open another user's 0600 file", open("/tmp/t_userns_other", O_RDONLY));
    res("sethostname still", sethostname("x", 1));
    res("mknod still", mknod("/tmp/t_userns_node", S_IFCHR | 0600, makedev(1, 3)));
    res("kill(1, 0)", kill(1, 0) < 0 ? -1 : 0);
    unlink("/tmp/t_userns_file");
    unlink("/tmp/t_userns_other");

    int nested = 0;
    for (int i = 0; i < 40; i++) {
        if (unshare(CLONE_NEWUSER) < 0) {
            printf("nested stops at %d: %s\n", nested, strerror(errno));
            break;
        }
        nested++;
    }
    printf("done\n");
    return 0;
}
