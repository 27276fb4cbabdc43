/* Set-group-ID directories and the set-ID bits' other rules: what is made
 * in a setgid directory takes its group (a directory its S_ISGID too); a
 * group-executable S_ISGID file made, or chmod-ed, by someone outside the
 * group loses S_ISGID; writes, truncation and chown by the unprivileged
 * clear S_ISUID and (when group-executable or outside the group) S_ISGID.
 * Runs as root; children drop to uid 1000 (gid 2000), with and without
 * group 1234 (the directory's). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#define GRP 1234
static char dir[512];

static char *at(const char *name)
{
    return path_in(dir, name);
}

static void show(const char *name)
{
    struct stat st;
    if (lstat(at(name), &st) < 0) {
        printf("  %s: %s\n", name, en(errno));
        return;
    }
    printf("  %s: mode %o uid %u gid %u\n", name, st.st_mode, st.st_uid, st.st_gid);
}

/* run fn as uid 1000 / gid 2000, in group GRP or not */
static void as_user(int member, void (*fn)(void))
{
    pid_t pid = fork();
    if (pid == 0) {
        gid_t g = GRP;
        if (setgroups(member ? 1 : 0, &g) || setgid(2000) || setuid(1000)) {
            printf("  drop: %s\n", en(errno));
            _exit(1);
        }
        fn();
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

static void creates(const char *who)
{
    char n[64];
    snprintf(n, sizeof n, "%s_f", who);
    close(open(at(n), O_CREAT | O_WRONLY, 02775));
    show(n);
    snprintf(n, sizeof n, "%s_f_nox", who);
    close(open(at(n), O_CREAT | O_WRONLY, 02664));
    show(n);
    snprintf(n, sizeof n, "%s_d", who);
    mkdir(at(n), 0775);
    show(n);
    snprintf(n, sizeof n, "%s_d/deeper", who);
    mkdir(at(n), 06775);
    show(n);
    snprintf(n, sizeof n, "%s_fifo", who);
    mknod(at(n), S_IFIFO | 02775, 0);
    show(n);
    snprintf(n, sizeof n, "%s_sl", who);
    symlink("x", at(n));
    show(n);
    snprintf(n, sizeof n, "%s_sock", who);
    struct sockaddr_un sa = {AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", at(n));
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(s, (struct sockaddr *)&sa, sizeof sa);
    close(s);
    show(n);
    int t = open(dir, O_TMPFILE | O_WRONLY, 02775);
    struct stat st;
    fstat(t, &st);
    printf("  %s tmpfile: mode %o gid %u\n", who, st.st_mode, st.st_gid);
    close(t);
}

static void user_creates(void) { creates("user"); }
static void member_creates(void) { creates("member"); }

static void user_chmods(void)
{
    res("user chmod own file 02755", chmod(at("user_f"), 02755));
    show("user_f");
    res("user chmod own dir 02755", chmod(at("user_d"), 02755));
    show("user_d");
    res("user chmod own file 04755", chmod(at("user_f"), 04755));
    show("user_f");
}

static void member_chmods(void)
{
    res("member chmod own file 02755", chmod(at("member_f"), 02755));
    show("member_f");
}

static void writes(void)
{
    static const char *names[] = {"w_suid", "w_sgid_x", "w_sgid_nox", "w_both", "w_empty_write",
                                  "t_suid", "t_sgid_nox", "o_trunc", "o_trunc_empty"};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        int fd;
        if (names[i][0] == 'o') {
            fd = open(at(names[i]), O_WRONLY | O_TRUNC);
        } else if (names[i][0] == 't') {
            fd = truncate(at(names[i]), 1);
        } else {
            fd = open(at(names[i]), O_WRONLY);
            if (write(fd, "x", strcmp(names[i], "w_empty_write") ? 1 : 0) < 0)
                printf("  write: %s\n", en(errno));
        }
        if (fd > 0)
            close(fd);
        show(names[i]);
    }
}

static void prepare_writes(void)
{
    static const struct { const char *n; int mode; } f[] = {
        {"w_suid", 04777}, {"w_sgid_x", 02777}, {"w_sgid_nox", 02766}, {"w_both", 06777},
        {"w_empty_write", 06777}, {"t_suid", 04777}, {"t_sgid_nox", 02766},
        {"o_trunc", 06777}, {"o_trunc_empty", 06777}};
    for (unsigned i = 0; i < sizeof f / sizeof f[0]; i++) {
        int fd = open(at(f[i].n), O_CREAT | O_WRONLY | O_TRUNC, 0600);
        if (strcmp(f[i].n, "o_trunc_empty"))
            write(fd, "data", 4);
        close(fd);
        chmod(at(f[i].n), f[i].mode);
    }
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(dir, sizeof dir, "%s/sgid_dir", argc > 1 ? argv[1] : ".");
    umask(022);
    mkdir(dir, 0777);
    chown(dir, 0, GRP);
    chmod(dir, 02777);
    printf("dir:\n");
    show(".");

    printf("root creates:\n");
    creates("root");
    printf("a non-member creates:\n");
    as_user(0, user_creates);
    printf("a member creates:\n");
    as_user(1, member_creates);
    printf("chmod by the owner, not in the group:\n");
    as_user(0, user_chmods);
    printf("chmod by the owner, in the group:\n");
    as_user(1, member_chmods);
    printf("root chmods a non-member's file 02755:\n");
    chmod(at("user_f"), 02755);
    show("user_f");

    printf("writes by a non-member:\n");
    prepare_writes();
    as_user(0, writes);
    printf("writes by a member:\n");
    prepare_writes();
    as_user(1, writes);
    printf("writes by root:\n");
    prepare_writes();
    writes();

    printf("chown:\n");
    prepare_writes();
    res("chown -1 -1 of 04777", chown(at("w_suid"), -1, -1));
    show("w_suid");
    res("chown -1 -1 of 06777", chown(at("w_both"), -1, -1));
    show("w_both");
    res("chown 0 -1 of 02766", chown(at("w_sgid_nox"), 0, -1));
    show("w_sgid_nox");
    res("chown -1 1234 of 02777", chown(at("w_sgid_x"), -1, 1234));
    show("w_sgid_x");
    mkdir(at("cd"), 0755);
    chmod(at("cd"), 06755);
    res("chown of a 06755 directory", chown(at("cd"), 0, 0));
    show("cd");

    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    printf("done\n");
    return 0;
}
