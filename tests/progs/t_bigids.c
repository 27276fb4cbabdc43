/* Ids past 16 and 31 bits: chown and stat/statx of large uids and gids,
 * (uid_t)-1 as "no change", ids from registers wider than 32 bits, the
 * set*id calls with large ids (and -1), what a process with them shows
 * (/proc/PID/status, its files, SO_PEERCRED, System V IPC), and the
 * overflow ids.  Runs as root; children take the large ids. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#define BIGU 4000000000U
#define BIGG 3000000000U

static char dir[512], file[600], link_[600];

static void show(const char *what, const char *path)
{
    struct stat st;
    struct statx sx;
    if (lstat(path, &st) < 0) {
        printf("%s: %s\n", what, en(errno));
        return;
    }
    statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_UID | STATX_GID, &sx);
    printf("%s: uid %u gid %u; statx %u %u\n", what, st.st_uid, st.st_gid, sx.stx_uid, sx.stx_gid);
}

static void readfile(const char *what, const char *path)
{
    char buf[256] = {0};
    int fd = open(path, O_RDONLY);
    read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[strcspn(buf, "\n")] = 0;
    printf("%s: %s\n", what, buf);
}

static void status_ids(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4) || !strncmp(line, "Groups:", 7))
            printf("  %s", line);
    if (f)
        fclose(f);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    need_proc();
    snprintf(dir, sizeof dir, "%s/bigids_dir", argc > 1 ? argv[1] : ".");
    mkdir(dir, 0777);
    chmod(dir, 0777);
    snprintf(file, sizeof file, "%s/f", dir);
    snprintf(link_, sizeof link_, "%s/l", dir);
    close(open(file, O_CREAT | O_WRONLY, 0644));
    symlink("f", link_);

    res("chown big", chown(file, BIGU, BIGG));
    show("file", file);
    res("chown -1 -1", chown(file, -1, -1));
    show("file", file);
    res("chown 70000 -1", chown(file, 70000, -1));
    show("file", file);
    res("chown -1 65536", chown(file, -1, 65536));
    show("file", file);
    res("chown raw 1<<32|7, -1 as 64 bits", syscall(SYS_chown, file, (1UL << 32) | 7, 0xFFFFFFFFUL));
    show("file", file);
    res("chown raw 0xffffffff00000005, 0xffffffff", syscall(SYS_chown, file, 0xffffffff00000005UL, 0xFFFFFFFFUL));
    show("file", file);
    res("chown 65534 65534", chown(file, 65534, 65534));
    show("file", file);
    res("chown 0xfffffffe", chown(file, 0xfffffffeU, 0xfffffffeU));
    show("file", file);
    res("lchown big", lchown(link_, BIGU + 1, BIGG + 1));
    show("link", link_);
    show("its target", file);
    int fd = open(file, O_RDONLY);
    res("fchown 1 2", fchown(fd, 1, 2));
    res("fchownat empty path", fchownat(fd, "", BIGU, -1, AT_EMPTY_PATH));
    close(fd);
    show("file", file);

    readfile("overflowuid", "/proc/sys/kernel/overflowuid");
    readfile("overflowgid", "/proc/sys/kernel/overflowgid");

    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        gid_t gs[2] = {BIGG + 5, 70000};
        res("setgroups big", setgroups(2, gs));
        res("setresgid big", setresgid(BIGG, BIGG + 1, BIGG + 2));
        res("setresuid -1 -1 -1", setresuid(-1, -1, -1));
        res("setuid -1", setuid(-1));
        res("setgid -1", setgid(-1));
        res("setreuid -1 -1", setreuid(-1, -1));
        res("setresuid big", setresuid(BIGU, BIGU + 1, BIGU + 2));
        uid_t r, e, s;
        gid_t gr, ge, gsv;
        getresuid(&r, &e, &s);
        getresgid(&gr, &ge, &gsv);
        printf("  resuid %u %u %u resgid %u %u %u\n", r, e, s, gr, ge, gsv);
        gid_t got[4];
        int n = getgroups(4, got);
        printf("  groups %d: %u %u\n", n, got[0], got[1]);
        status_ids();
        char mine[640];
        snprintf(mine, sizeof mine, "%s/mine", dir);
        close(open(mine, O_CREAT | O_WRONLY, 0644));
        show("  a file it makes", mine);
        unlink(mine);
        int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        struct shmid_ds ds;
        shmctl(shm, IPC_STAT, &ds);
        printf("  shm perm uid %u gid %u cuid %u cgid %u\n", ds.shm_perm.uid, ds.shm_perm.gid,
               ds.shm_perm.cuid, ds.shm_perm.cgid);
        shmctl(shm, IPC_RMID, NULL);
        res("setresuid back to 0 (saved is not 0)", setresuid(0, 0, 0));
        printf("  setfsuid returns the old: %u\n", (unsigned)setfsuid(BIGU + 7));
        printf("  setfsuid again: %u\n", (unsigned)setfsuid(BIGU + 8));
        write(sv[1], "x", 1);
        char c;
        read(sv[1], &c, 1);
        _exit(0);
    }
    close(sv[1]);
    char c;
    read(sv[0], &c, 1);
    struct ucred uc;
    socklen_t len = sizeof uc;
    getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &uc, &len);
    printf("SO_PEERCRED of the child (set at connect): uid %u gid %u\n", uc.uid, uc.gid);
    char p[64];
    snprintf(p, sizeof p, "/proc/%d", pid);
    show("the child's /proc dir", p);
    write(sv[0], "x", 1);
    waitpid(pid, NULL, 0);

    unlink(link_);
    unlink(file);
    rmdir(dir);
    printf("done\n");
    return 0;
}
