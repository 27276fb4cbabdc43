/* stat family, chmod/umask, truncate, link counts, errors, readlink,
 * utimensat, access.  Works in ARGV1/st (removed first if left over). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

static void res(const char *what, long r)
{
    if (r < 0)
        printf("%s: %ld %s\n", what, r, en(errno));
    else
        printf("%s: %ld\n", what, r);
}

static char ftype(mode_t m)
{
    return S_ISREG(m) ? 'f' : S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' :
           S_ISCHR(m) ? 'c' : S_ISBLK(m) ? 'b' : S_ISFIFO(m) ? 'p' :
           S_ISSOCK(m) ? 's' : '?';
}

static void show(const char *what, int r, const struct stat *st)
{
    if (r != 0) {
        printf("%s: -1 %s\n", what, en(errno));
        return;
    }
    printf("%s: type=%c perm=%04o nlink=%lu", what, ftype(st->st_mode),
           st->st_mode & 07777, (unsigned long)st->st_nlink);
    if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
        printf(" rdev=%u:%u", major(st->st_rdev), minor(st->st_rdev));
    else if (!S_ISDIR(st->st_mode))     /* directory sizes are fs-specific */
        printf(" size=%lld", (long long)st->st_size);
    printf("\n");
}

#define STAT(label, call) do { struct stat st_; errno = 0; int r_ = call; show(label, r_, &st_); } while (0)

static void cleanup(void)
{
    const char *f[] = {"st/file", "st/file2", "st/hard", "st/link", "st/loop1",
                       "st/loop2", "st/big", "st/mask", "st/none", "st/dangling"};
    for (unsigned i = 0; i < sizeof f / sizeof f[0]; i++)
        unlink(f[i]);
    rmdir("st/dir/sub");
    rmdir("st/dir");
    rmdir("st");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (chdir(argc > 1 ? argv[1] : ".") != 0) {
        printf("chdir: %s\n", en(errno));
        return 1;
    }
    cleanup();
    printf("umask(022) old value ignored: %d\n", umask(022) >= 0);
    if (mkdir("st", 0777) != 0) {
        printf("mkdir st: %s\n", en(errno));
        return 1;
    }
    int fd = open("st/file", O_RDWR | O_CREAT | O_EXCL, 0666);
    char buf[1234];
    memset(buf, 'a', sizeof buf);
    res("write 1234", write(fd, buf, sizeof buf));
    mkdir("st/dir", 0777);
    symlink("file", "st/link");
    symlink("loop2", "st/loop1");
    symlink("loop1", "st/loop2");
    symlink("nowhere", "st/dangling");

    STAT("stat dir st", stat("st", &st_));
    STAT("stat file", stat("st/file", &st_));
    STAT("fstat file", fstat(fd, &st_));
    STAT("stat dir", stat("st/dir", &st_));
    mkdir("st/dir/sub", 0700);
    STAT("stat dir with one subdir", stat("st/dir", &st_));
    STAT("stat dir/sub (mode 0700)", stat("st/dir/sub", &st_));
    STAT("lstat link", lstat("st/link", &st_));
    STAT("stat link", stat("st/link", &st_));
    STAT("lstat dangling", lstat("st/dangling", &st_));
    STAT("stat dangling", stat("st/dangling", &st_));
    STAT("stat /dev/null", stat("/dev/null", &st_));
    int dfd = open("st", O_RDONLY | O_DIRECTORY);
    STAT("fstatat(st, link, NOFOLLOW)", fstatat(dfd, "link", &st_, AT_SYMLINK_NOFOLLOW));
    STAT("fstatat(st, link, 0)", fstatat(dfd, "link", &st_, 0));
    STAT("fstatat(fd, \"\", AT_EMPTY_PATH)", fstatat(fd, "", &st_, AT_EMPTY_PATH));
    STAT("fstatat(AT_FDCWD, st/dir)", fstatat(AT_FDCWD, "st/dir", &st_, 0));
    int p[2];
    if (pipe(p) == 0) {
        STAT("fstat pipe read end", fstat(p[0], &st_));
        STAT("fstat pipe write end", fstat(p[1], &st_));
        close(p[0]);
        close(p[1]);
    }

    /* statx */
    struct statx sx;
    errno = 0;
    int r = statx(AT_FDCWD, "st/file", 0, STATX_BASIC_STATS, &sx);
    printf("statx file: ret=%d basic mask=%d type=%c perm=%04o nlink=%u size=%llu\n", r,
           (sx.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS, ftype(sx.stx_mode),
           sx.stx_mode & 07777, sx.stx_nlink, (unsigned long long)sx.stx_size);
    r = statx(AT_FDCWD, "st/link", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx);
    printf("statx link nofollow: ret=%d type=%c size=%llu\n", r, ftype(sx.stx_mode),
           (unsigned long long)sx.stx_size);
    r = statx(AT_FDCWD, "/dev/null", 0, STATX_BASIC_STATS, &sx);
    printf("statx /dev/null: ret=%d type=%c rdev=%u:%u\n", r, ftype(sx.stx_mode),
           sx.stx_rdev_major, sx.stx_rdev_minor);
    errno = 0;
    r = statx(AT_FDCWD, "st/nonexistent", 0, STATX_BASIC_STATS, &sx);
    printf("statx nonexistent: %d %s\n", r, en(errno));

    /* chmod and umask */
    res("chmod 0600", chmod("st/file", 0600));
    STAT("stat file", stat("st/file", &st_));
    res("fchmod 04755", fchmod(fd, 04755));
    STAT("stat file", stat("st/file", &st_));
    res("chmod via symlink 0640", chmod("st/link", 0640));
    STAT("stat file", stat("st/file", &st_));
    STAT("lstat link unchanged", lstat("st/link", &st_));
    res("fchmodat 0644", fchmodat(AT_FDCWD, "st/file", 0644, 0));
    printf("umask(077) returns old: %04o\n", umask(077));
    int fd2 = open("st/mask", O_CREAT | O_WRONLY, 0666);
    close(fd2);
    mkdir("st/dir/masked", 0777);
    STAT("file created under 077", stat("st/mask", &st_));
    STAT("dir created under 077", stat("st/dir/masked", &st_));
    rmdir("st/dir/masked");
    printf("umask(022) returns old: %04o\n", umask(022));

    /* truncate */
    res("truncate 10000", truncate("st/file", 10000));
    STAT("stat file", stat("st/file", &st_));
    char c = 'x';
    res("pread at 5000", pread(fd, &c, 1, 5000));
    printf("byte in extended region: %d\n", c);
    res("ftruncate 5", ftruncate(fd, 5));
    STAT("fstat file", fstat(fd, &st_));
    res("truncate -1", truncate("st/file", -1));
    res("truncate dir", truncate("st/dir", 0));

    /* link counts */
    res("link file hard", link("st/file", "st/hard"));
    struct stat s1, s2;
    stat("st/file", &s1);
    stat("st/hard", &s2);
    printf("nlink file=%lu hard=%lu same ino=%d same dev=%d\n", (unsigned long)s1.st_nlink,
           (unsigned long)s2.st_nlink, s1.st_ino == s2.st_ino, s1.st_dev == s2.st_dev);
    res("link to existing name", link("st/file", "st/hard"));
    res("link a directory", link("st/dir", "st/dirlink"));
    res("unlink hard", unlink("st/hard"));
    STAT("stat file", stat("st/file", &st_));
    STAT("fstat after unlinking last name of file2", ({
        int t = open("st/file2", O_CREAT | O_RDWR, 0644);
        unlink("st/file2");
        int rr = fstat(t, &st_);
        close(t);
        rr;
    }));

    /* errors */
    STAT("stat nonexistent", stat("st/nonexistent", &st_));
    STAT("stat file/x", stat("st/file/x", &st_));
    STAT("stat loop", stat("st/loop1", &st_));
    STAT("lstat loop", lstat("st/loop1", &st_));
    res("open loop", open("st/loop1", O_RDONLY));
    res("open symlink O_NOFOLLOW", open("st/link", O_RDONLY | O_NOFOLLOW));
    STAT("stat empty path", stat("", &st_));

    /* readlink */
    char lb[64];
    memset(lb, 0, sizeof lb);
    res("readlink link", readlink("st/link", lb, sizeof lb));
    printf("target: %s\n", lb);
    memset(lb, 0, sizeof lb);
    res("readlink into 2-byte buffer", readlink("st/link", lb, 2));
    printf("target: %s\n", lb);
    res("readlink regular file", readlink("st/file", lb, sizeof lb));
    res("readlink nonexistent", readlink("st/nonexistent", lb, sizeof lb));
    memset(lb, 0, sizeof lb);
    res("readlinkat(st, loop1)", readlinkat(dfd, "loop1", lb, sizeof lb));
    printf("target: %s\n", lb);

    /* utimensat */
    struct timespec ts[2] = {{1000000000, 123456789}, {1234567890, 500000000}};
    res("utimensat file", utimensat(AT_FDCWD, "st/file", ts, 0));
    stat("st/file", &s1);
    printf("atime=%lld.%09ld mtime=%lld.%09ld\n", (long long)s1.st_atim.tv_sec,
           s1.st_atim.tv_nsec, (long long)s1.st_mtim.tv_sec, s1.st_mtim.tv_nsec);
    struct timespec ts2[2] = {{0, UTIME_OMIT}, {1500000000, 0}};
    res("futimens atime omitted", futimens(fd, ts2));
    stat("st/file", &s1);
    printf("atime=%lld.%09ld mtime=%lld.%09ld\n", (long long)s1.st_atim.tv_sec,
           s1.st_atim.tv_nsec, (long long)s1.st_mtim.tv_sec, s1.st_mtim.tv_nsec);
    struct timespec ts3[2] = {{42, 0}, {43, 0}};
    res("utimensat symlink nofollow", utimensat(AT_FDCWD, "st/link", ts3, AT_SYMLINK_NOFOLLOW));
    lstat("st/link", &s2);
    stat("st/file", &s1);
    printf("link mtime=%lld file mtime=%lld\n", (long long)s2.st_mtim.tv_sec,
           (long long)s1.st_mtim.tv_sec);
    res("utimensat nonexistent", utimensat(AT_FDCWD, "st/nonexistent", ts, 0));

    /* access */
    chmod("st/file", 0644);
    res("access file F_OK", access("st/file", F_OK));
    res("access file R_OK", access("st/file", R_OK));
    res("access file W_OK", access("st/file", W_OK));
    res("access file X_OK", access("st/file", X_OK));
    chmod("st/file", 0000);
    res("access mode-0000 file R_OK", access("st/file", R_OK));
    res("access mode-0000 file W_OK", access("st/file", W_OK));
    chmod("st/file", 0100);
    res("access mode-0100 file X_OK", access("st/file", X_OK));
    res("access dir X_OK", access("st/dir", X_OK));
    res("access nonexistent", access("st/nonexistent", F_OK));
    res("faccessat(st, file, R_OK, AT_EACCESS)", faccessat(dfd, "file", R_OK, AT_EACCESS));
    res("faccessat(st, dangling, F_OK, NOFOLLOW)",
        faccessat(dfd, "dangling", F_OK, AT_SYMLINK_NOFOLLOW));
    res("faccessat(st, dangling, F_OK)", faccessat(dfd, "dangling", F_OK, 0));

    close(fd);
    close(dfd);
    cleanup();
    printf("done\n");
    return 0;
}
