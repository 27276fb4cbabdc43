/* getdents64 (and the old getdents) with a small buffer, d_type, rewind, ENOTEMPTY, unlink+reread.
 * Works in ARGV1/gd (removed first if left over). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

struct ent {
    char name[256];
    char type;
};

static struct ent ents[200];

static void res(const char *what, long r)
{
    if (r < 0)
        printf("%s: %ld %s\n", what, r, en(errno));
    else
        printf("%s: %ld\n", what, r);
}
static int nent, ncalls;

static char tchar(unsigned char t)
{
    switch (t) {
    case DT_REG: return 'f';
    case DT_DIR: return 'd';
    case DT_LNK: return 'l';
    case DT_UNKNOWN: return '?';
    default: return 'o';
    }
}

/* Read the whole directory with getdents64 using a bufsz-byte buffer. */
static int readall(int fd, size_t bufsz)
{
    char buf[4096] __attribute__((aligned(8)));
    nent = ncalls = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, bufsz);
        ncalls++;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            if (d->d_reclen == 0 || off + d->d_reclen > n) {
                printf("bad d_reclen\n");
                return -1;
            }
            if (nent < 200) {
                snprintf(ents[nent].name, sizeof ents[nent].name, "%s", d->d_name);
                ents[nent].type = tchar(d->d_type);
                nent++;
            }
            off += d->d_reclen;
        }
    }
}

/* The same with the old getdents: struct linux_dirent (no d_type field:
   it is the record's last byte, after the name's NUL). */
struct linux_dirent {
    unsigned long d_ino;
    unsigned long d_off;
    unsigned short d_reclen;
    char d_name[];
};

static int readall_old(int fd, size_t bufsz)
{
    char buf[4096] __attribute__((aligned(8)));
    nent = ncalls = 0;
    for (;;) {
        long n = syscall(SYS_getdents, fd, buf, bufsz);
        ncalls++;
        if (n <= 0)
            return n < 0 ? -1 : 0;
        for (long off = 0; off < n;) {
            struct linux_dirent *d = (struct linux_dirent *)(buf + off);
            if (d->d_reclen == 0 || d->d_reclen % 8 || off + d->d_reclen > n) {
                printf("bad d_reclen\n");
                return -1;
            }
            if (nent < 200) {
                snprintf(ents[nent].name, sizeof ents[nent].name, "%s", d->d_name);
                ents[nent].type = tchar(buf[off + d->d_reclen - 1]);
                nent++;
            }
            off += d->d_reclen;
        }
    }
}

static int cmp(const void *a, const void *b)
{
    return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

static void list(const char *what)
{
    qsort(ents, nent, sizeof ents[0], cmp);
    int dot = 0, dotdot = 0;
    printf("%s: %d entries\n", what, nent);
    for (int i = 0; i < nent; i++) {
        if (!strcmp(ents[i].name, "."))
            dot = ents[i].type == 'd' ? 1 : 2;
        else if (!strcmp(ents[i].name, ".."))
            dotdot = ents[i].type == 'd' ? 1 : 2;
        else
            printf("  %c %s\n", ents[i].type, ents[i].name);
    }
    printf("  '.' present=%d '..' present=%d\n", dot, dotdot);
}

static void cleanup(void)
{
    char p[64];
    for (int i = 0; i < 50; i++) {
        snprintf(p, sizeof p, "gd/file%02d", i);
        unlink(p);
    }
    unlink("gd/link");
    unlink("gd/sub1/inner");
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "gd/sub%d", i);
        rmdir(p);
    }
    rmdir("gd");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argc > 1 ? argv[1] : ".";
    if (chdir(dir) != 0) {
        printf("chdir: %s\n", en(errno));
        return 1;
    }
    cleanup();
    umask(022);
    if (mkdir("gd", 0755) != 0) {
        printf("mkdir gd: %s\n", en(errno));
        return 1;
    }
    char p[64];
    for (int i = 0; i < 50; i++) {
        snprintf(p, sizeof p, "gd/file%02d", i);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) {
            printf("create %s: %s\n", p, en(errno));
            return 1;
        }
        close(fd);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "gd/sub%d", i);
        if (mkdir(p, 0755) != 0)
            printf("mkdir %s: %s\n", p, en(errno));
    }
    if (symlink("file00", "gd/link") != 0)
        printf("symlink: %s\n", en(errno));
    int fd = open("gd/sub1/inner", O_WRONLY | O_CREAT, 0644);
    close(fd);

    int dfd = open("gd", O_RDONLY | O_DIRECTORY);
    if (dfd < 0) {
        printf("open gd: %s\n", en(errno));
        return 1;
    }
    if (readall(dfd, 256) != 0)
        printf("getdents64: %s\n", en(errno));
    printf("getdents64 with 256-byte buffer needed more than 2 calls: %d\n", ncalls > 2);
    list("gd");

    /* rewind and read again with a big buffer: same count */
    printf("lseek(dir, 0, SEEK_SET): %ld\n", (long)lseek(dfd, 0, SEEK_SET));
    readall(dfd, 4096);
    printf("reread after rewind: %d entries\n", nent);
    long r = syscall(SYS_getdents64, dfd, p, 0);
    printf("getdents64 at end: %ld\n", r);

    /* buffer too small for one entry */
    lseek(dfd, 0, SEEK_SET);
    res("getdents64 with 8-byte buffer", syscall(SYS_getdents64, dfd, p, 8));

    /* not a directory / bad fd */
    int ffd = open("gd/file01", O_RDONLY);
    res("getdents64 on a regular file", syscall(SYS_getdents64, ffd, p, sizeof p));
    close(ffd);
    res("getdents64 on a bad fd", syscall(SYS_getdents64, 9999, p, sizeof p));

    /* the old getdents */
    lseek(dfd, 0, SEEK_SET);
    if (readall_old(dfd, 256) != 0)
        printf("getdents: %s\n", en(errno));
    list("gd by the old getdents");
    lseek(dfd, 0, SEEK_SET);
    res("getdents with 8-byte buffer", syscall(SYS_getdents, dfd, p, 8));
    res("open(file, O_DIRECTORY)", open("gd/file01", O_RDONLY | O_DIRECTORY));

    /* subdirectory contents */
    int sfd = open("gd/sub1", O_RDONLY | O_DIRECTORY);
    readall(sfd, 256);
    list("gd/sub1");
    close(sfd);

    /* rmdir of a non-empty dir */
    res("rmdir(gd/sub1) non-empty", rmdir("gd/sub1"));
    res("rmdir(gd) non-empty", rmdir("gd"));
    res("rmdir(gd/file01) not a dir", rmdir("gd/file01"));
    res("unlink(gd/sub0) is a dir", unlink("gd/sub0"));
    res("rmdir(gd/sub0) empty", rmdir("gd/sub0"));

    /* unlink some files, then read again through the same open fd */
    for (int i = 0; i < 50; i += 2) {
        snprintf(p, sizeof p, "gd/file%02d", i);
        if (unlink(p) != 0)
            printf("unlink %s: %s\n", p, en(errno));
    }
    unlink("gd/link");
    lseek(dfd, 0, SEEK_SET);
    readall(dfd, 256);
    list("gd after unlinks");

    /* readdir(3) through opendir gives the same set */
    DIR *d = opendir("gd");
    int cnt = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        cnt++;
    closedir(d);
    printf("readdir(3) count: %d\n", cnt);

    close(dfd);
    cleanup();
    res("gd removed", access("gd", F_OK));

    /* a directory removed while open lists nothing: ENOENT (IS_DEADDIR),
       even into a buffer too small for any entry */
    mkdir("gone", 0755);
    int gfd = open("gone", O_RDONLY | O_DIRECTORY);
    rmdir("gone");
    char small[8], big[512];
    res("getdents64 of a removed directory", syscall(SYS_getdents64, gfd, big, sizeof big));
    res("  into 8 bytes", syscall(SYS_getdents64, gfd, small, sizeof small));
    close(gfd);
    printf("done\n");
    return 0;
}
