/* Memory locking and the mm calls' error rules: mlock/mlock2/munlock,
   mlockall/munlockall and MAP_LOCKED as VmLck, smaps (Locked, "lo", the
   split vmas) and mincore show them; RLIMIT_MEMLOCK for an unprivileged
   user; madvise's advice and its refusals on locked memory; mprotect and
   VM_MAYWRITE; mmap's argument order.  Sizes are printed as deltas, never
   the process's own totals. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L
#define NOBODY 65534

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
static long base;           /* VmLck before anything was locked */

static long vmlck(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmLck: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* the smaps entry of the mapping that starts at p: size, Locked, lo flag */
static void smaps(const char *what, void *p)
{
    char line[512];
    unsigned long start, end;
    long size = -1, locked = -1;
    int lo = -1, found = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
            if (found)
                break;
            found = start == (unsigned long)p;
            continue;
        }
        if (!found)
            continue;
        sscanf(line, "Size: %ld", &size);
        sscanf(line, "Locked: %ld", &locked);
        if (strncmp(line, "VmFlags:", 8) == 0)
            lo = strstr(line, " lo") != NULL;
    }
    if (f)
        fclose(f);
    printf("%s: %s size %ld kB locked %ld kB lo %d\n", what, found ? "vma" : "no vma", size, locked, lo);
}

/* the VmFlags lo and whether Locked is all of Size of the vma holding p
   (its neighbours may have merged with it) */
static void flags_of(const char *what, void *p)
{
    char line[512];
    unsigned long start, end;
    long size = -1, locked = -1;
    int lo = -1, in = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
            if (in)
                break;
            in = start <= (unsigned long)p && (unsigned long)p < end;
            continue;
        }
        if (!in)
            continue;
        sscanf(line, "Size: %ld", &size);
        sscanf(line, "Locked: %ld", &locked);
        if (strncmp(line, "VmFlags:", 8) == 0)
            lo = strstr(line, " lo") != NULL;
    }
    if (f)
        fclose(f);
    printf("%s: all locked %d, lo %d\n", what, size == locked, lo);
}

static int present(char *p, long pages)
{
    unsigned char vec[64];
    int n = 0;
    if (mincore(p, pages * PG, vec) < 0)
        return -1;
    for (long i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}

static long vmlck(void);

/* a call's result, then the locked total (printed after the call ran) */
static void st(const char *what, long r)
{
    printf("%s: %s, locked %ld kB\n", what, en(r), vmlck() - base);
}

static void sp(const char *what, long r, char *p, long pages)
{
    printf("%s: %s, locked %ld kB, present %d\n", what, en(r), vmlck() - base, present(p, pages));
}

static void limit(rlim_t bytes)
{
    struct rlimit rl = {bytes, bytes};
    if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
        printf("setrlimit: %s\n", en(-1));
}

static long map(long pages, int flags)
{
    return (long)mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
}

/* an unprivileged user under RLIMIT_MEMLOCK (in a child: only root
   without CAP_SYS_RESOURCE may be running this, so limits only go down) */
static void as_nobody(rlim_t bytes)
{
    fflush(stdout);
    if (fork() > 0) {
        wait(NULL);
        return;
    }
    char *a = (char *)map(4, 0);
    limit(bytes);
    seteuid(NOBODY);
    printf("nobody, limit %ld pages:\n", (long)bytes / PG);
    st(" mlock 2 pages", mlock(a, 2 * PG));
    st(" mlock 1 page", mlock(a, PG));
    st(" again", mlock(a, PG));
    st(" another", mlock(a + PG, PG));
    st(" both, one locked", mlock(a, 2 * PG));
    st(" mlock2", syscall(SYS_mlock2, a + 2 * PG, PG, 0));
    st(" MAP_LOCKED", map(1, MAP_LOCKED));
    st(" mlockall(CURRENT)", mlockall(MCL_CURRENT));
    st(" mlockall(FUTURE)", mlockall(MCL_FUTURE));
    st(" then mmap", map(1, 0));
    st(" then brk", sbrk(PG) == (void *)-1 ? -1 : 0);
    st(" munlock", munlock(a, PG));
    st(" munlockall", munlockall());
    exit(0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (access("/proc/self/status", R_OK) < 0) {
        mkdir("/proc", 0555);
        mount("proc", "/proc", "proc", 0, NULL);
    }
    base = vmlck();
    printf("VmLck at start: %ld\n", base);

    /* mlock and MAP_POPULATE fault in a write-only shared range (Linux
     * forces the fault; LTP's mlock201) and a private one */
    char *wo = mmap(NULL, 4 * PG, PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int locked = mlock(wo, 3 * PG);
    printf("write-only shared: mlock %d, present %d\n", locked, present(wo, 4));
    munlock(wo, 4 * PG);
    munmap(wo, 4 * PG);
    wo = mmap(NULL, 4 * PG, PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    printf("write-only shared, MAP_POPULATE: present %d\n", present(wo, 4));
    munmap(wo, 4 * PG);
    wo = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    printf("private, MAP_POPULATE: present %d\n", present(wo, 4));
    munmap(wo, 4 * PG);
    base = vmlck();

    /* mlock rounds out to pages and splits the vma */
    char *a = (char *)map(8, 0);
    sp("mlock of 2 pages + 2 bytes from page 2 + 100", mlock(a + 2 * PG + 100, 2 * PG + 2), a, 8);
    smaps("before", a);
    smaps("locked part", a + 2 * PG);
    smaps("after", a + 5 * PG);
    st("again", mlock(a + 2 * PG, 3 * PG));
    st("munlock of one page", munlock(a + 3 * PG, PG));
    st("munlock all", munlock(a, 8 * PG));
    smaps("merged again", a);
    st("mlock zero length", mlock(a, 0));
    st("munlock zero length", munlock(a, 0));

    /* mlock2 */
    char *b = (char *)map(4, 0);
    st("mlock2 bad flags", syscall(SYS_mlock2, b, PG, 2));
    sp("MLOCK_ONFAULT", syscall(SYS_mlock2, b, 4 * PG, MLOCK_ONFAULT), b, 4);
    b[PG] = 1;
    sp("touched one", 0, b, 4);
    sp("mlock2(0) over it", syscall(SYS_mlock2, b, 4 * PG, 0), b, 4);
    st("MADV_DONTNEED on it", madvise(b, PG, MADV_DONTNEED));
    st("MADV_FREE", madvise(b, PG, MADV_FREE));
    st("MADV_COLD", madvise(b, PG, MADV_COLD));
    st("MADV_PAGEOUT", madvise(b, PG, MADV_PAGEOUT));
    st("MADV_DONTNEED_LOCKED", madvise(b, PG, MADV_DONTNEED_LOCKED));
    st("MADV_WILLNEED", madvise(b, PG, MADV_WILLNEED));

    /* holes, PROT_NONE */
    char *h = (char *)map(3, 0);
    munmap(h + PG, PG);
    st("mlock over a hole", mlock(h, 3 * PG));
    st("munlock over it", munlock(h, 3 * PG));
    st("mlock unmapped", mlock(h + PG, PG));
    st("munlock unmapped", munlock(h + PG, PG));
    mprotect(h, PG, PROT_NONE);
    st("mlock of PROT_NONE", mlock(h, PG));
    st("mlock2 ONFAULT of PROT_NONE", syscall(SYS_mlock2, h + 2 * PG, PG, MLOCK_ONFAULT));
    st("munlock both", munlock(h, PG) + munlock(h + 2 * PG, PG));

    /* fork: locks are not inherited; mremap keeps them */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        st("in the child", 0);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    char *g = mremap(b, 4 * PG, 6 * PG, MREMAP_MAYMOVE);
    sp("mremap of the locked range", g == MAP_FAILED ? -1 : 0, g, 6);
    st("munmap", munmap(g, 6 * PG));

    /* MAP_LOCKED */
    char *l = (char *)map(5, MAP_LOCKED);
    sp("MAP_LOCKED", 0, l, 5);
    smaps("MAP_LOCKED", l);
    munmap(l, 5 * PG);

    /* mlockall */
    st("mlockall(0)", mlockall(0));
    st("mlockall(MCL_ONFAULT)", mlockall(MCL_ONFAULT));
    st("mlockall(8)", mlockall(8));
    long r = mlockall(MCL_CURRENT | MCL_FUTURE);
    printf("mlockall(CURRENT|FUTURE): %s, something locked %d\n", en(r), vmlck() > base);
    char *f = (char *)map(3, 0);
    printf("new mapping under MCL_FUTURE: present %d\n", present(f, 3));
    flags_of("MCL_FUTURE", f);
    st("munlockall", munlockall());
    char *f2 = (char *)map(1, 0);
    flags_of("after munlockall", f2);
    st("mlockall(FUTURE|ONFAULT)", mlockall(MCL_FUTURE | MCL_ONFAULT));
    char *f3 = (char *)map(2, 0);
    sp("new mapping under MCL_ONFAULT", 0, f3, 2);
    st("munlockall", munlockall());
    munmap(f, 3 * PG);
    munmap(f2, PG);
    munmap(f3, 2 * PG);

    as_nobody(0);
    as_nobody(PG);

    /* madvise's own rules */
    st("madvise bad advice", madvise(a, PG, 1212));
    st("madvise unaligned", madvise(a + 1, PG, MADV_NORMAL));
    st("madvise length 0", madvise(a, 0, MADV_NORMAL));
    st("madvise length -1", madvise(a, -1, MADV_NORMAL));
    st("madvise(100)", madvise(a, PG, 100));
    munmap(a + 4 * PG, PG);
    st("madvise over a hole", madvise(a, 8 * PG, MADV_NORMAL));

    /* mprotect and VM_MAYWRITE */
    char path[600];
    snprintf(path, sizeof path, "%s/t_mlock.f", argc > 1 ? argv[1] : ".");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ftruncate(fd, 5 * PG);
    int rfd = open(path, O_RDONLY);
    char *s = mmap(NULL, 5 * PG, PROT_READ, MAP_SHARED, fd, 0);
    st("shared, file O_RDWR: exec page", mprotect(s + PG, PG, PROT_EXEC));
    st("write page", mprotect(s + 3 * PG, PG, PROT_WRITE));
    st("read over all", mprotect(s + PG, 4 * PG, PROT_READ));
    st("read-write first page", mprotect(s, PG, PROT_READ | PROT_WRITE));
    memcpy(s, "via map", 7);
    char got[8] = {0};
    pread(fd, got, 7, 0);
    printf("written after mprotect, read(2) sees %s\n", got);
    char *ro = mmap(NULL, PG, PROT_READ, MAP_SHARED, rfd, 0);
    st("shared, file O_RDONLY: PROT_WRITE", mprotect(ro, PG, PROT_WRITE));
    st("MAP_SHARED|PROT_WRITE of it", (long)mmap(NULL, PG, PROT_WRITE, MAP_SHARED, rfd, 0));
    char *pr = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, rfd, 0);
    st("private, file O_RDONLY: PROT_WRITE", mprotect(pr, PG, PROT_WRITE));
    int zfd = open("/dev/zero", O_RDONLY);
    char *two = (char *)mmap(NULL, 3 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *z = mmap(two + 2 * PG, PG, PROT_READ, MAP_SHARED | MAP_FIXED, zfd, 0);
    st("shared /dev/zero O_RDONLY: PROT_WRITE", mprotect(z, PG, PROT_WRITE));
    st("PROT_READ", mprotect(z, PG, PROT_READ));
    st("mprotect over anon then it", mprotect(two, 3 * PG, PROT_READ | PROT_WRITE));
    two[0] = 1;
    printf("the anon part was made writable before\n");
    st("mprotect unaligned", mprotect(two + 1, PG, PROT_READ));
    st("mprotect unmapped", mprotect(NULL, PG, PROT_READ));
    st("mprotect length 0", mprotect(two, 0, PROT_READ));

    /* mmap: the fd before the length */
    int closed = dup(fd);
    close(closed);
    st("mmap closed fd, length 0", (long)mmap(NULL, 0, PROT_WRITE, MAP_SHARED, closed, 0));
    st("mmap anon, length 0", (long)mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    st("mmap closed fd, unaligned offset", (long)mmap(NULL, PG, PROT_READ, MAP_SHARED, closed, 1));
    close(fd);
    close(rfd);
    close(zfd);
    unlink(path);
    printf("done\n");
    return 0;
}
