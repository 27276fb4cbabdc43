/* Big directories (guest only; tests/test_ext4_dirindex.py).
 *   t_bigdir create DIR FIRST COUNT          files DIR/NAME(i), i in [FIRST, FIRST+COUNT)
 *   t_bigdir rename SRC DST FIRST COUNT STEP  every STEP-th of them moved to DST
 *   t_bigdir unlink DIR FIRST COUNT STEP      every STEP-th of them removed
 *   t_bigdir list DIR                         "d_off name" of each entry, in getdents order
 *   t_bigdir check DIR                        every name once, and lseek to a d_off (and
 *                                             glibc's seekdir to a telldir) resumes at the
 *                                             next entry
 * NAME(i) is "e%07d" and i % 13 x's, so names differ in length. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

struct ent {
    int64_t off;
    char *name;
};

static void name_of(char *buf, size_t n, const char *dir, long i)
{
    snprintf(buf, n, "%s/e%07ld%.*s", dir, i, (int)(i % 13), "xxxxxxxxxxxxx");
}

static void fail(const char *what, const char *path)
{
    printf("%s %s: %s\n", what, path, strerrorname_np(errno));
    exit(1);
}

/* the entries of the open directory fd from its current position, with a small
 * buffer: all of them, or what one getdents64 returns */
static struct ent *read_some(int fd, long *n, int once)
{
    static char buf[2048];
    long cap = 1024, k = 0;
    struct ent *e = malloc(cap * sizeof *e);
    for (int calls = 0; !once || !calls; calls++) {
        long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (got < 0)
            fail("getdents64", "");
        if (got == 0)
            break;
        for (long p = 0; p < got;) {
            struct linux_dirent64 *d = (void *)(buf + p);
            if (k == cap)
                e = realloc(e, (cap *= 2) * sizeof *e);
            e[k].off = d->d_off;
            e[k++].name = strdup(d->d_name);
            p += d->d_reclen;
        }
    }
    *n = k;
    return e;
}

static struct ent *read_all(int fd, long *n)
{
    return read_some(fd, n, 0);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

static void check(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        fail("open", dir);
    long n, m;
    struct ent *e = read_all(fd, &n);
    struct ent *sorted = malloc(n * sizeof *e);
    memcpy(sorted, e, n * sizeof *e);
    qsort(sorted, n, sizeof *e, by_name);
    long dups = 0;
    for (long i = 1; i < n; i++)
        dups += !strcmp(sorted[i - 1].name, sorted[i].name);
    printf("entries %ld duplicates %ld\n", n, dups);
    /* lseek to the d_off of entry i: the next read gives entries i + 1, i + 2, ... */
    long bad = 0, tried = 0;
    for (long i = 0; i + 1 < n; i += n / 97 + 1) {
        if (lseek(fd, e[i].off, SEEK_SET) != e[i].off)
            fail("lseek", dir);
        struct ent *rest = read_some(fd, &m, 1);
        tried++;
        int same = m > 0 && m <= n - i - 1;
        for (long j = 0; same && j < m; j++)
            same = !strcmp(rest[j].name, e[i + 1 + j].name) && rest[j].off == e[i + 1 + j].off;
        bad += !same;
        for (long j = 0; j < m; j++)
            free(rest[j].name);
        free(rest);
    }
    printf("lseek to d_off: %ld of %ld resume right\n", tried - bad, tried);
    close(fd);
    /* glibc: telldir after the k-th readdir, then seekdir back to it */
    DIR *d = opendir(dir);
    long k = 0, seekbad = 0, seektried = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        k++;
        if (k % 1009 == 0) {
            long pos = telldir(d);
            char want[256];
            struct dirent *nx = readdir(d);
            snprintf(want, sizeof want, "%s", nx ? nx->d_name : "");
            seekdir(d, pos);
            nx = readdir(d);
            seektried++;
            if (strcmp(want, nx ? nx->d_name : ""))
                seekbad++;
            seekdir(d, pos);
        }
    }
    closedir(d);
    printf("readdir %ld, seekdir to telldir: %ld of %ld resume right\n", k, seektried - seekbad,
           seektried);
}

int main(int argc, char **argv)
{
    char a[512], b[512];
    if (argc < 3)
        return 2;
    const char *mode = argv[1];
    if (!strcmp(mode, "create") && argc == 5) {
        long first = atol(argv[3]), count = atol(argv[4]);
        for (long i = first; i < first + count; i++) {
            name_of(a, sizeof a, argv[2], i);
            int fd = open(a, O_CREAT | O_EXCL | O_WRONLY, 0644);
            if (fd < 0)
                fail("create", a);
            close(fd);
        }
    } else if (!strcmp(mode, "rename") && argc == 7) {
        long first = atol(argv[4]), count = atol(argv[5]), step = atol(argv[6]);
        for (long i = first; i < first + count; i += step) {
            name_of(a, sizeof a, argv[2], i);
            name_of(b, sizeof b, argv[3], i);
            if (rename(a, b))
                fail("rename", a);
        }
    } else if (!strcmp(mode, "unlink") && argc == 6) {
        long first = atol(argv[3]), count = atol(argv[4]), step = atol(argv[5]);
        for (long i = first; i < first + count; i += step) {
            name_of(a, sizeof a, argv[2], i);
            if (unlink(a))
                fail("unlink", a);
        }
    } else if (!strcmp(mode, "list")) {
        int fd = open(argv[2], O_RDONLY | O_DIRECTORY);
        if (fd < 0)
            fail("open", argv[2]);
        long n;
        struct ent *e = read_all(fd, &n);
        for (long i = 0; i < n; i++)
            printf("%lld %s\n", (long long)e[i].off, e[i].name);
    } else if (!strcmp(mode, "check")) {
        check(argv[2]);
    } else {
        return 2;
    }
    printf("done\n");
    return 0;
}
