/* tmpfs's xattrs take their space from the inode space (nr_inodes x 1 KiB,
   as shmem since Linux 6.6): a mount with nr_inodes=8 holds xattrs up to
   what its inodes leave, then ENOSPC; removing one gives its space back,
   and statfs's free inodes follow. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "results.h"

static char m[512];

static void ffree(const char *when)
{
    struct statfs st;
    statfs(m, &st);
    printf("%s: files %ld free %ld\n", when, (long)st.f_files, (long)st.f_ffree);
}

int main(int argc, char **argv)
{
    static char v[4000];
    char p[600];
    memset(v, 'v', sizeof v);
    snprintf(m, sizeof m, "%s/xs", argc > 1 ? argv[1] : "/tmp");
    mkdir(m, 0755);
    if (mount("t", m, "tmpfs", 0, "nr_inodes=8")) {
        printf("mount: %s\n", en(errno));
        return 1;
    }
    ffree("mounted");
    res("user.a 4000", setxattr(m, "user.a", v, sizeof v, 0));
    ffree("after a");
    res("user.b 4000", setxattr(m, "user.b", v, sizeof v, 0));
    res("user.b 2000", setxattr(m, "user.b", v, 2000, 0));
    ffree("after b");
    res("user.a 100 (replace)", setxattr(m, "user.a", v, 100, XATTR_REPLACE));
    ffree("after replacing a");
    for (int i = 0; i < 8; i++) {
        snprintf(p, sizeof p, "%s/f%d", m, i);
        int fd = creat(p, 0644);
        if (fd < 0) {
            printf("file %d: %s\n", i, en(errno));
            break;
        }
        close(fd);
    }
    ffree("after files");
    res("remove user.b", removexattr(m, "user.b"));
    ffree("after removing b");
    snprintf(p, sizeof p, "%s/f0", m);
    res("user.c on a file", setxattr(p, "user.c", v, 1000, 0));
    res("unlink it", unlink(p));
    ffree("after unlinking it");
    res("umount", umount(m));
    rmdir(m);
    printf("done\n");
    return 0;
}
