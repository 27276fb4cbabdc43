/* t_chattr DIR: what chattr's immutable (+i), append-only (+a) and
 * noatime (+A) flags forbid, as Linux's VFS enforces them for every
 * filesystem that keeps them (tmpfs since 6.0, ext2/ext4): opens, truncate,
 * chmod and chown, times, links, renames, unlinks, xattrs, creating in a
 * flagged directory, F_SETFL, shared mappings, fallocate, atime.  Needs
 * CAP_LINUX_IMMUTABLE.  Prints only the four flags (a filesystem's own,
 * such as ext4's extents flag, differ between filesystems). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "results.h"

#define SHOWN (FS_IMMUTABLE_FL | FS_APPEND_FL | FS_NODUMP_FL | FS_NOATIME_FL)

static void opened(const char *what, int fd)
{
    res(what, fd < 0 ? -1 : 0);
    if (fd >= 0)
        close(fd);
}

static int setfl(const char *path, int add, int del)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    int fl, r = ioctl(fd, FS_IOC_GETFLAGS, &fl);
    if (r == 0) {
        fl = (fl | add) & ~del;
        r = ioctl(fd, FS_IOC_SETFLAGS, &fl);
    }
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

static void show(const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK), fl = 0;
    ioctl(fd, FS_IOC_GETFLAGS, &fl);
    close(fd);
    printf("%s flags %#x\n", strrchr(path, '/') + 1, fl & SHOWN);
}

static void mkfile(const char *p, const char *data)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, data, strlen(data));
    close(fd);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char d[2048], g[2048], x[4200], y[4200];
    snprintf(d, sizeof d, "%s/chattr_d", argc > 1 ? argv[1] : ".");
    snprintf(g, sizeof g, "%s/chattr_g", argc > 1 ? argv[1] : ".");
    const int which[] = {FS_IMMUTABLE_FL, FS_APPEND_FL};
    for (int k = 0; k < 2; k++) {
        int fl = which[k];
        printf("== %s\n", fl == FS_IMMUTABLE_FL ? "immutable" : "append-only");
        mkdir(d, 0755);
        snprintf(x, sizeof x, "%s/f", d);
        mkfile(x, "data\n");
        mkfile(g, "data\n");
        res("set file", setfl(g, fl, 0));
        res("set dir", setfl(d, fl, 0));
        show(g);
        show(d);
        opened("open rdonly", open(g, O_RDONLY));
        opened("open wronly", open(g, O_WRONLY));
        opened("open append", open(g, O_WRONLY | O_APPEND));
        opened("open append|trunc", open(g, O_WRONLY | O_APPEND | O_TRUNC));
        res("access W_OK", access(g, W_OK));
        res("truncate", truncate(g, 0));
        res("chmod", chmod(g, 0600));
        res("chown to itself", chown(g, getuid(), getgid()));
        res("utimes now", utimensat(AT_FDCWD, g, NULL, 0));
        struct timespec ts[2] = {{1000, 0}, {1000, 0}};
        res("utimes explicit", utimensat(AT_FDCWD, g, ts, 0));
        snprintf(y, sizeof y, "%s.link", g);
        res("link", link(g, y));
        unlink(y);
        res("rename", rename(g, y));
        rename(y, g);
        res("setxattr", setxattr(g, "user.t", "1", 1, 0));
        res("removexattr", removexattr(g, "user.t"));
        res("unlink", unlink(g));
        snprintf(y, sizeof y, "%s/new", d);
        opened("create in dir", open(y, O_WRONLY | O_CREAT, 0644));
        unlink(y);
        snprintf(y, sizeof y, "%s/sub", d);
        res("mkdir in dir", mkdir(y, 0755));
        rmdir(y);
        res("unlink in dir", unlink(x));
        snprintf(y, sizeof y, "%s/f2", d);
        res("rename in dir", rename(x, y));
        rename(y, x);
        snprintf(y, sizeof y, "%s/f3", d);
        res("rename into dir", rename(g, y));
        rename(y, g);
        int fd = open(x, O_WRONLY | O_APPEND);
        res("append in dir's file", fd < 0 ? -1 : write(fd, "more\n", 5));
        if (fd >= 0)
            close(fd);
        if (fl == FS_APPEND_FL) {
            fd = open(g, O_RDWR | O_APPEND);
            res("write", write(fd, "more\n", 5));
            res("pwrite at 0", pwrite(fd, "X", 1, 0));
            res("F_SETFL without O_APPEND", fcntl(fd, F_SETFL, 0));
            res("F_SETFL keeping O_APPEND", fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK));
            res("ftruncate", ftruncate(fd, 0));
            void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
            res("mmap shared", m == MAP_FAILED ? -1 : 0);
            m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
            res("mmap private", m == MAP_FAILED ? -1 : 0);
            res("fallocate keep size", fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096));
            res("fallocate punch", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
            struct stat st;
            fstat(fd, &st);
            printf("size %ld\n", (long)st.st_size);
            close(fd);
        }
        res("clear file", setfl(g, 0, fl));
        res("clear dir", setfl(d, 0, fl));
        unlink(g);
        unlink(x);
        rmdir(d);
    }

    printf("== noatime\n");
    mkfile(g, "data\n");
    struct timespec old[2] = {{1000, 0}, {1000, 0}};
    struct stat st;
    char buf[8];
    for (int a = 0; a < 2; a++) {
        res(a ? "set noatime" : "without noatime", a ? setfl(g, FS_NOATIME_FL, 0) : 0);
        utimensat(AT_FDCWD, g, old, 0);
        int fd = open(g, O_RDONLY);
        read(fd, buf, sizeof buf);
        close(fd);
        stat(g, &st);
        printf("atime moved: %s\n", st.st_atime != 1000 ? "yes" : "no");
    }
    show(g);
    res("clear", setfl(g, 0, FS_NOATIME_FL));

    printf("== inherited by new files\n");
    mkdir(d, 0755);
    res("set nodump|noatime|append on dir", setfl(d, FS_NODUMP_FL | FS_NOATIME_FL | FS_APPEND_FL, 0));
    snprintf(x, sizeof x, "%s/f", d);
    mkfile(x, "x");
    show(x);
    setfl(d, 0, SHOWN);
    setfl(x, 0, SHOWN);
    unlink(x);
    rmdir(d);
    unlink(g);
    printf("done\n");
    return 0;
}
