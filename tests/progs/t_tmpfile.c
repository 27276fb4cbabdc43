/* O_TMPFILE: unnamed files, linkat to name them, O_EXCL, errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
int main(int argc, char **argv)
{
    char dir[512], name[600], procp[64];
    snprintf(dir, sizeof dir, "%s/tmpf.d", argc > 1 ? argv[1] : ".");
    snprintf(name, sizeof name, "%s/named", dir);
    unlink(name); rmdir(dir); mkdir(dir, 0755);
    umask(022);
    if (access("/proc/self", F_OK))         /* a guest booted without /proc */
        mount("proc", "/proc", "proc", 0, NULL);
    int fd = open(dir, O_TMPFILE | O_RDWR, 0666);
    printf("O_TMPFILE: %s\n", en(fd));
    struct stat st;
    fstat(fd, &st);
    printf("mode %o nlink %ld size %lld\n", st.st_mode, (long)st.st_nlink, (long long)st.st_size);
    write(fd, "hello", 5);
    snprintf(procp, sizeof procp, "/proc/self/fd/%d", fd);
    printf("linkat AT_EMPTY_PATH: %s\n", en(linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH)));
    fstat(fd, &st);
    printf("nlink now %ld\n", (long)st.st_nlink);
    char target[700];
    ssize_t k = readlink(procp, target, sizeof target - 1);
    target[k > 0 ? k : 0] = 0;
    const char *base = strrchr(target, '/');
    /* d_path: the O_TMPFILE's own name stays "#ino", never hashed */
    printf("fd link after linkat: #: %d, (deleted): %d\n", base && base[1] == '#',
           k > 10 && !strcmp(target + k - 10, " (deleted)"));
    char buf[8] = {0};
    int r = open(name, O_RDONLY);
    read(r, buf, 5);
    printf("named file reads %s\n", buf);
    close(r); close(fd);
    /* an open name unlinked while another link keeps the inode */
    char other[620];
    snprintf(other, sizeof other, "%s/other", dir);
    link(name, other);
    fd = open(name, O_RDONLY);
    unlink(name);
    snprintf(procp, sizeof procp, "/proc/self/fd/%d", fd);
    k = readlink(procp, target, sizeof target - 1);
    target[k > 0 ? k : 0] = 0;
    base = strrchr(target, '/');
    printf("fd link of an unlinked name with another link: %s\n", base ? base + 1 : "?");
    close(fd);
    unlink(other);
    fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL, 0600);
    printf("O_EXCL: %s, link: %s\n", en(fd), en(linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH)));
    close(fd);
    printf("read-only O_TMPFILE: %s\n", en(open(dir, O_TMPFILE | O_RDONLY, 0600)));
    printf("on a file: %s\n", en(open("/etc/passwd", O_TMPFILE | O_RDWR, 0600)));
    printf("missing dir: %s\n", en(open("/nonexistent", O_TMPFILE | O_RDWR, 0600)));
    rmdir(dir);
    printf("done\n");
    return 0;
}
