/* statx: its argument checks, the mask it answers (the basic fields and
 * the mount id, whatever was asked), stx_mnt_id against /proc's view of
 * the mount, STATX_ATTR_MOUNT_ROOT, and the fields against stat's. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "results.h"

#define WANT (STATX_BASIC_STATS | STATX_MNT_ID)

static void one(const char *what, int dfd, const char *path, int flags, unsigned mask)
{
    struct statx sx;
    memset(&sx, 0xee, sizeof sx);
    int r = statx(dfd, path, flags, mask, &sx);
    if (r < 0) {
        printf("%s: -1 %s\n", what, en(errno));
        return;
    }
    struct stat st;
    if (flags & AT_EMPTY_PATH)
        fstat(dfd, &st);
    else if (flags & AT_SYMLINK_NOFOLLOW)
        lstat(path, &st);
    else
        stat(path, &st);
    int same = sx.stx_ino == st.st_ino && sx.stx_mode == st.st_mode && sx.stx_nlink == st.st_nlink &&
               sx.stx_uid == st.st_uid && sx.stx_size == (unsigned long long)st.st_size &&
               sx.stx_blocks == (unsigned long long)st.st_blocks &&
               makedev(sx.stx_dev_major, sx.stx_dev_minor) == st.st_dev &&
               makedev(sx.stx_rdev_major, sx.stx_rdev_minor) == st.st_rdev &&
               sx.stx_mtime.tv_sec == st.st_mtim.tv_sec && sx.stx_mtime.tv_nsec == st.st_mtim.tv_nsec &&
               sx.stx_ctime.tv_sec == st.st_ctim.tv_sec && sx.stx_atime.tv_sec == st.st_atim.tv_sec;
    /* the mount id as /proc/self/fdinfo tells it */
    int fd = (flags & AT_EMPTY_PATH) ? dup(dfd) : open(path, O_PATH | ((flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0));
    char p[64], line[256];
    unsigned long long mnt = 0;
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(p, "r");
    while (f && fgets(line, sizeof line, f))
        sscanf(line, "mnt_id: %llu", &mnt);
    if (f)
        fclose(f);
    close(fd);
    printf("%s: 0, mask %#x (basic+mnt_id %d), same as stat %d, mnt_id as fdinfo %d, mount root %d%s, blksize %u\n",
           what, sx.stx_mask & WANT, (sx.stx_mask & WANT) == WANT, same, sx.stx_mnt_id == mnt,
           !!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT),
           sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT ? "" : " (not in the mask)", sx.stx_blksize);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    need_proc();
    char dir[512], file[600], lnk[600], longname[5000];
    snprintf(dir, sizeof dir, "%s/statx_dir", argc > 1 ? argv[1] : ".");
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/f", dir);
    snprintf(lnk, sizeof lnk, "%s/l", dir);
    int fd = open(file, O_CREAT | O_RDWR, 0640);
    write(fd, "hello", 5);
    symlink("f", lnk);
    one("file", AT_FDCWD, file, 0, STATX_BASIC_STATS);
    one("file, mask 0", AT_FDCWD, file, 0, 0);
    one("file, mask STATX_TYPE", AT_FDCWD, file, 0, STATX_TYPE);
    one("symlink followed", AT_FDCWD, lnk, 0, STATX_BASIC_STATS);
    one("symlink itself", AT_FDCWD, lnk, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS);
    one("fd, empty path", fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS);
    one("dir", AT_FDCWD, dir, 0, STATX_BASIC_STATS);
    one("/", AT_FDCWD, "/", 0, STATX_BASIC_STATS);
    one("/proc", AT_FDCWD, "/proc", 0, STATX_BASIC_STATS);
    one("/proc/self", AT_FDCWD, "/proc/self", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS);
    one("/dev/null", AT_FDCWD, "/dev/null", 0, STATX_BASIC_STATS);
    one("sync flags: force", AT_FDCWD, file, AT_STATX_FORCE_SYNC, STATX_BASIC_STATS);
    one("sync flags: don't", AT_FDCWD, file, AT_STATX_DONT_SYNC, STATX_BASIC_STATS);
    one("sync flags: both", AT_FDCWD, file, AT_STATX_SYNC_TYPE, STATX_BASIC_STATS);
    one("bad dirfd", -1, "f", 0, 0);
    one("NULL path", AT_FDCWD, NULL, 0, 0);
    one("flags -1", AT_FDCWD, file, -1, 0);
    one("mask -1", AT_FDCWD, file, 0, -1);
    one("mask STATX__RESERVED", AT_FDCWD, file, 0, STATX__RESERVED);
    one("mask 0x40000000", AT_FDCWD, file, 0, 0x40000000);
    one("empty path", AT_FDCWD, "", 0, 0);
    one("dirfd a file", fd, "x", 0, 0);
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    one("long name", AT_FDCWD, longname, 0, 0);
    void *null = NULL;
    __asm__("" : "+r"(null));
    res("NULL buffer", syscall(SYS_statx, AT_FDCWD, file, 0, STATX_BASIC_STATS, null));
    close(fd);
    unlink(lnk);
    unlink(file);
    rmdir(dir);
    printf("done\n");
    return 0;
}
