/* fallocate on ext4 and what shows it: every mode (allocate, KEEP_SIZE,
 * PUNCH_HOLE, ZERO_RANGE with and without KEEP_SIZE, COLLAPSE_RANGE,
 * INSERT_RANGE) and their errors, SEEK_DATA/SEEK_HOLE walks, FIEMAP
 * listings, st_blocks, FS_IOC_GETFLAGS/SETFLAGS and FS_IOC_FSGETXATTR.
 * argv[1] must be on ext4 (natively a host ext4 directory, in the guest an
 * ext4 image), else the program says so and stops.  Everything printed is
 * in blocks of the filesystem's size and never a physical block number;
 * FIEMAP extents that touch and share flags are printed as one run, since
 * where the allocator put them decides whether they merged.  Data is
 * fsynced before it is looked at, so delayed allocation shows nothing.
 * Runs as root (it sets the immutable and append-only flags).  Left out,
 * as Linux 6.1 (what the guest is) and newer differ: COLLAPSE_RANGE or
 * INSERT_RANGE with KEEP_SIZE (EINVAL, now EOPNOTSUPP); clearing the
 * extents flag; FIEMAP_FLAG_XATTR of a file with xattrs (Linux keeps small
 * ones in the inode, umlpy in a block).  tests/test_ext4.py covers those. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include "results.h"

#define EXT4_MAGIC 0xEF53
#define NEXT 64

static int fd;
static long B;      /* the filesystem's block size */

static void st(const char *what)
{
    struct stat s;
    fstat(fd, &s);
    printf("%-26s size %lldB%+lld blocks %lld\n", what, (long long)(s.st_size / B), (long long)(s.st_size % B),
           (long long)(s.st_blocks * 512 / B));
}

/* the data runs of the file by SEEK_DATA/SEEK_HOLE, in blocks (bytes when unaligned) */
static void walk(void)
{
    struct stat s;
    fstat(fd, &s);
    printf("  data:");
    off_t pos = 0;
    while (pos < s.st_size) {
        off_t d = lseek(fd, pos, SEEK_DATA);
        if (d < 0) {
            printf(" (%s)", en(errno));
            break;
        }
        off_t h = lseek(fd, d, SEEK_HOLE);
        if (d % B || h % B)
            printf(" [%lld,%lld)b", (long long)d, (long long)h);
        else
            printf(" [%lld,%lld)", (long long)(d / B), (long long)(h / B));
        pos = h;
    }
    printf("\n");
}

static const char *fl(unsigned f)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%s%s%s%s", f & FIEMAP_EXTENT_UNWRITTEN ? "u" : "w",
             f & FIEMAP_EXTENT_MERGED ? "m" : "", f & FIEMAP_EXTENT_DATA_INLINE ? "i" : "",
             f & FIEMAP_EXTENT_NOT_ALIGNED ? "n" : "");
    return buf;
}

static struct fiemap *fm_get(uint64_t start, uint64_t len, unsigned flags, unsigned count, long *r)
{
    struct fiemap *fm = calloc(1, sizeof *fm + NEXT * sizeof(struct fiemap_extent));
    fm->fm_start = start;
    fm->fm_length = len;
    fm->fm_flags = flags;
    fm->fm_extent_count = count;
    *r = ioctl(fd, FS_IOC_FIEMAP, fm);
    return fm;
}

/* FIEMAP of [start, start + len) in blocks: runs that touch and share flags joined */
static void fmap(long start, long len)
{
    long r;
    struct fiemap *fm = fm_get(start * B, len == -1 ? FIEMAP_MAX_OFFSET : (uint64_t)len * B,
                               FIEMAP_FLAG_SYNC, NEXT, &r);
    printf("  fiemap:");
    if (r < 0) {
        printf(" -1 %s\n", en(errno));
        free(fm);
        return;
    }
    long a = -1, b = -1;
    unsigned f = 0;
    for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
        struct fiemap_extent *e = &fm->fm_extents[i];
        long s = e->fe_logical / B, n = e->fe_length / B;
        unsigned ef = e->fe_flags & ~FIEMAP_EXTENT_LAST;
        if (a >= 0 && s == b && ef == f) {
            b += n;
            continue;
        }
        if (a >= 0)
            printf(" [%ld,%ld)%s", a, b, fl(f));
        a = s, b = s + n, f = ef;
    }
    if (a >= 0)
        printf(" [%ld,%ld)%s", a, b, fl(f));
    int last = fm->fm_mapped_extents && fm->fm_extents[fm->fm_mapped_extents - 1].fe_flags & FIEMAP_EXTENT_LAST;
    long rc;
    struct fiemap *cnt = fm_get(start * B, len == -1 ? FIEMAP_MAX_OFFSET : (uint64_t)len * B, 0, 0, &rc);
    printf("%s; counted %s\n", last ? " LAST" : "", rc == 0 && cnt->fm_mapped_extents == fm->fm_mapped_extents ?
           "the same" : "differently");
    free(cnt);
    free(fm);
}

/* FIEMAP without FIEMAP_FLAG_SYNC: delayed blocks as they are reported
 * before write-back (delalloc: no place on the disk, flagged so) */
static void fmap_nosync(const char *what)
{
    long r;
    struct fiemap *fm = fm_get(0, FIEMAP_MAX_OFFSET, 0, NEXT, &r);
    printf("%-26s fiemap %ld:", what, r);
    for (unsigned i = 0; r == 0 && i < fm->fm_mapped_extents; i++) {
        struct fiemap_extent *e = &fm->fm_extents[i];
        printf(" [%lld,%lld)%s%s%s%s", (long long)(e->fe_logical / B),
               (long long)((e->fe_logical + e->fe_length) / B), fl(e->fe_flags),
               e->fe_flags & FIEMAP_EXTENT_DELALLOC ? "d" : "", e->fe_flags & FIEMAP_EXTENT_UNKNOWN ? "?" : "",
               e->fe_physical ? "" : " at 0");
    }
    printf("\n");
    free(fm);
}

static void show(const char *what)
{
    fsync(fd);
    st(what);
    walk();
    fmap(0, -1);
}

static void fa(const char *what, int mode, long off, long len)
{
    printf("%s: ", what);
    res("", fallocate(fd, mode, off, len));
}

static int newfile(const char *dir, const char *name)
{
    char path[600];
    if (fd > 0)
        close(fd);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    int f = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    return f;
}

static void fill(long off, long n, char c)
{
    char *buf = malloc(n);
    memset(buf, c, n);
    pwrite(fd, buf, n, off);
    free(buf);
}

/* bytes at off: runs of the same byte, as count*char */
static void peek(long off, long n)
{
    unsigned char *buf = malloc(n);
    long got = pread(fd, buf, n, off);
    printf("  read %ld at %ldB%+ld:", got, off / B, off % B);
    for (long i = 0; i < got;) {
        long j = i;
        while (j < got && buf[j] == buf[i])
            j++;
        printf(" %ld*%c", j - i, buf[i] ? buf[i] : '0');
        i = j;
    }
    printf("\n");
    free(buf);
}

static void flags(const char *what)
{
    unsigned f = 0;
    long r = ioctl(fd, FS_IOC_GETFLAGS, &f);
    if (r < 0)
        printf("%s: getflags -1 %s\n", what, en(errno));
    else
        printf("%s: flags %#x\n", what, f);
}

static void setflags(const char *what, unsigned f)
{
    printf("setflags %s: ", what);
    res("", ioctl(fd, FS_IOC_SETFLAGS, &f));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argc > 1 ? argv[1] : ".";
    struct statfs sf;
    if (statfs(dir, &sf) != 0 || sf.f_type != EXT4_MAGIC) {
        printf("no ext4\ndone\n");
        return 0;
    }
    B = sf.f_bsize;
    char sub[600];
    snprintf(sub, sizeof sub, "%s/t_falloc.d", dir);
    mkdir(sub, 0700);

    /* -- allocation, KEEP_SIZE, st_blocks -------------------------------------
     * (at most four extents per file, however the allocator placed them, so
     * that no tree block appears on one side only; unwritten blocks are read
     * only after the last walk, since Linux counts cached pages as data) */
    fd = newfile(sub, "a");
    show("new");
    fill(0, 3 * B, 'a');
    show("3 blocks written");
    fa("allocate 8..12", 0, 8 * B, 4 * B);
    show("after");
    fa("allocate over data 1..10", 0, 1 * B, 9 * B);
    show("after");
    fa("keep_size 16..20", FALLOC_FL_KEEP_SIZE, 16 * B, 4 * B);
    show("after");
    fmap(14, 10);
    fmap(2, 1);
    ftruncate(fd, 12 * B);
    show("truncated to the same size");
    ftruncate(fd, 22 * B);
    show("truncated up to 22");
    ftruncate(fd, 10 * B + 7);
    show("truncated to 10B+7");
    peek(2 * B, 2 * B);

    fd = newfile(sub, "u");
    fa("allocate 0..4", 0, 0, 4 * B);
    fa("unaligned 4B+100 len 10", 0, 4 * B + 100, 10);
    show("after");
    fill(2 * B, 10, 'b');
    show("10 bytes into the unwritten 2");
    ftruncate(fd, 3 * B + 7);
    show("truncated to 3B+7");
    peek(0, 4 * B);

    /* -- punch hole --------------------------------------------------------- */
    fd = newfile(sub, "p");
    fill(0, 16 * B, 'p');
    show("16 blocks");
    fa("punch 2..4", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * B, 2 * B);
    show("after");
    fa("punch 6B+100..8B+10", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 6 * B + 100, 2 * B - 90);
    show("after");
    peek(6 * B, 3 * B);
    fa("punch inside one block 12B+5 len 7", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 12 * B + 5, 7);
    peek(12 * B, 16);
    fa("punch past EOF", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 20 * B, B);
    fa("keep_size 16..24", FALLOC_FL_KEEP_SIZE, 16 * B, 8 * B);
    fa("punch 14..100", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 14 * B, 86 * B);
    show("after");
    fa("punch all", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 16 * B);
    show("after");
    peek(0, 16 * B);

    /* -- zero range --------------------------------------------------------- */
    fd = newfile(sub, "z");
    fill(0, 8 * B, 'z');
    fsync(fd);
    fa("zero 2..4", FALLOC_FL_ZERO_RANGE, 2 * B, 2 * B);
    show("after");
    fa("zero 5B+7..6B+9", FALLOC_FL_ZERO_RANGE, 5 * B + 7, B + 2);
    show("after");
    fa("zero 7..10 (grows)", FALLOC_FL_ZERO_RANGE, 7 * B, 3 * B);
    show("after");
    fa("zero keep_size 12..14", FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 12 * B, 2 * B);
    show("after");
    peek(0, 10 * B);

    /* -- collapse and insert ------------------------------------------------ */
    fd = newfile(sub, "c");
    for (int i = 0; i < 12; i++)
        fill(i * B, B, 'A' + i);
    fa("punch 3..4", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 3 * B, B);
    fa("collapse 1..3", FALLOC_FL_COLLAPSE_RANGE, B, 2 * B);
    show("after");
    peek(0, 10 * B);
    fa("collapse unaligned", FALLOC_FL_COLLAPSE_RANGE, B + 1, B);
    fa("collapse to EOF", FALLOC_FL_COLLAPSE_RANGE, 8 * B, 2 * B);
    fa("collapse past EOF", FALLOC_FL_COLLAPSE_RANGE, 8 * B, 4 * B);
    fa("insert 2 at 1", FALLOC_FL_INSERT_RANGE, B, 2 * B);
    show("after");
    peek(0, 12 * B);
    fa("insert at EOF", FALLOC_FL_INSERT_RANGE, 12 * B, B);
    fa("insert unaligned", FALLOC_FL_INSERT_RANGE, B, 100);
    fa("insert too much", FALLOC_FL_INSERT_RANGE, 0, 0xFFFFFFFF000L);
    fa("keep_size 14..16", FALLOC_FL_KEEP_SIZE, 14 * B, 2 * B);
    fa("insert 1 at 0 (moves the blocks past EOF)", FALLOC_FL_INSERT_RANGE, 0, B);
    show("after");

    /* -- mode and range errors ---------------------------------------------- */
    fa("len 0", 0, 0, 0);
    fa("offset -1", 0, -1, B);
    fa("punch without keep_size", FALLOC_FL_PUNCH_HOLE, 0, B);
    fa("punch|zero", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, B);
    fa("no_hide_stale", FALLOC_FL_NO_HIDE_STALE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, B);
    fa("unshare", FALLOC_FL_UNSHARE_RANGE, 0, B);
    fa("mode 0x100", 0x100, 0, B);
    fa("past the largest file", FALLOC_FL_KEEP_SIZE, 0xFFFFFFFF000L - B, 2 * B);
    fa("past loff_t", 0, 0x7fffffffffffffffL, 2);
    int ro = open(sub, O_RDONLY | O_DIRECTORY);
    printf("on a directory: ");
    res("", fallocate(ro, 0, 0, B));
    close(ro);

    /* -- FIEMAP requests ---------------------------------------------------- */
    long r;
    struct fiemap *fm = fm_get(0, 0, 0, 1, &r);
    printf("fiemap length 0: %ld %s\n", r, r < 0 ? en(errno) : "");
    free(fm);
    fm = fm_get(0, ~0ULL, 0x10, 1, &r);
    printf("fiemap flag 0x10: %ld %s fm_flags %#x\n", r, r < 0 ? en(errno) : "", fm->fm_flags);
    free(fm);
    fm = fm_get(0xFFFFFFFF000L, B, 0, 1, &r);
    printf("fiemap at the largest file: %ld %s\n", r, r < 0 ? en(errno) : "");
    free(fm);
    fm = fm_get(0x100000000000L, B, 0, 1, &r);
    printf("fiemap past it: %ld %s\n", r, r < 0 ? en(errno) : "");
    free(fm);
    fm = fm_get(0, ~0ULL, 0, 0xFFFFFFFFu / sizeof(struct fiemap_extent) + 1, &r);
    printf("fiemap too many extents: %ld %s\n", r, r < 0 ? en(errno) : "");
    free(fm);
    fm = fm_get(0, ~0ULL, FIEMAP_FLAG_SYNC, 2, &r);
    printf("fiemap 2 of them: %ld mapped %u last %d\n", r, fm->fm_mapped_extents,
           !!(fm->fm_extents[1].fe_flags & FIEMAP_EXTENT_LAST));
    free(fm);
    fm = fm_get(0, ~0ULL, FIEMAP_FLAG_XATTR, 4, &r);
    printf("fiemap xattr, none: %ld mapped %u\n", r, fm->fm_mapped_extents);
    free(fm);

    /* -- flags -------------------------------------------------------------- */
    flags("c");
    setflags("noatime|nodump|sync", FS_EXTENT_FL | FS_NOATIME_FL | FS_NODUMP_FL | FS_SYNC_FL);
    flags("c");
    struct fsxattr fx;
    memset(&fx, 0, sizeof fx);
    res("fsgetxattr", ioctl(fd, FS_IOC_FSGETXATTR, &fx));
    printf("  xflags %#x nextents %u\n", fx.fsx_xflags, fx.fsx_nextents);
    setflags("dirsync on a file", FS_EXTENT_FL | FS_DIRSYNC_FL);
    setflags("reserved bit", FS_EXTENT_FL | 0x80000000u);
    setflags("dirty bit (visible, not settable)", FS_EXTENT_FL | 0x100);
    flags("c");
    setflags("append", FS_EXTENT_FL | FS_APPEND_FL);
    fa("append-only: allocate", 0, 20 * B, B);
    fa("append-only: keep_size", FALLOC_FL_KEEP_SIZE, 30 * B, B);
    fa("append-only: punch", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, B);
    fa("append-only: zero", FALLOC_FL_ZERO_RANGE, 0, B);
    setflags("immutable", FS_EXTENT_FL | FS_IMMUTABLE_FL);
    setflags("immutable and nodump", FS_EXTENT_FL | FS_IMMUTABLE_FL | FS_NODUMP_FL);
    fa("immutable: keep_size", FALLOC_FL_KEEP_SIZE, 0, B);
    setflags("none", FS_EXTENT_FL);
    flags("c");
    show("c at the end");
    close(fd);

    /* -- delayed allocation: what a write shows before write-back ------------ */
    fd = newfile(sub, "d");
    fill(0, B + 100, 'd');
    st("d written, not synced");
    fmap_nosync("d written, not synced");
    fill(9 * B + 7, 100, 'e');
    fmap_nosync("d and a block past a hole");
    walk();
    show("d synced");
    fmap_nosync("d synced");

    char path[700];
    const char *names[] = {"a", "u", "p", "z", "c", "d"};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", sub, names[i]);
        unlink(path);
    }
    rmdir(sub);
    printf("done\n");
    return 0;
}
