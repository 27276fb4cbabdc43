/* Looking into address spaces: /proc/self/pagemap (present, file and
   exclusive bits; the frame numbers are not compared), process_vm_readv
   and process_vm_writev (between processes, partial transfers, their
   errors and permission rule), remap_file_pages (Linux's emulation), and
   readahead's checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L
#define NOBODY 65534

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static void res(const char *what, long r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

/* bit 63 present, 61 file or shared anonymous, 56 mapped once */
static void pagemap(int pm, const char *what, void *p)
{
    uint64_t e = 0;
    long n = pread(pm, &e, 8, (uintptr_t)p / PG * 8);
    printf("pagemap %s: read %ld, present %d file %d exclusive %d\n", what, n, (int)(e >> 63 & 1),
           (int)(e >> 61 & 1), (int)(e >> 56 & 1));
}

static void pagemaps(const char *dir)
{
    int pm = open("/proc/self/pagemap", O_RDONLY);
    printf("open pagemap: %s, write: %s\n", en(pm), en(open("/proc/self/pagemap", O_RDWR)));
    char *a = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    a[0] = 1;
    pagemap(pm, "touched anon", a);
    pagemap(pm, "untouched anon", a + PG);
    madvise(a, PG, MADV_DONTNEED);
    pagemap(pm, "after MADV_DONTNEED", a);
    char *s = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    s[0] = 1;
    pagemap(pm, "shared anon", s);
    char path[600];
    snprintf(path, sizeof path, "%s/pm", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(fd, "x", 1);
    char *f = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);
    (void)*(volatile char *)f;
    pagemap(pm, "file", f);
    munmap(a + 2 * PG, PG);
    pagemap(pm, "unmapped", a + 2 * PG);
    uint64_t e[4];
    res("read 3 bytes", pread(pm, e, 3, (uintptr_t)a / PG * 8));
    res("read at an unaligned offset", pread(pm, e, 8, (uintptr_t)a / PG * 8 + 1));
    res("read of 4 entries", pread(pm, e, 32, (uintptr_t)a / PG * 8));
    res("read at the end of user space", pread(pm, e, 32, 0x7ffffffff000L / PG * 8 - 8));
    res("read past it", pread(pm, e, 8, 0x7ffffffff000L / PG * 8 + 8));
    res("lseek SEEK_END", lseek(pm, 0, SEEK_END));
    res("lseek SEEK_SET far", lseek(pm, 1L << 40, SEEK_SET) == 1L << 40);
    close(pm);
    close(fd);
    unlink(path);
    munmap(a, 4 * PG);
    munmap(s, PG);
    munmap(f, PG);
}

static long pvm(int write, pid_t pid, struct iovec *l, unsigned long ln, struct iovec *r, unsigned long rn,
                unsigned long flags)
{
    return syscall(write ? SYS_process_vm_writev : SYS_process_vm_readv, pid, l, ln, r, rn, flags);
}

static void process_vm(void)
{
    int go[2], back[2];
    pipe(go);
    pipe(back);
    /* the child's buffer: 2 pages of text, then a page it cannot read */
    char *buf = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 2 * PG; i++)
        buf[i] = 'a' + i % 26;
    mprotect(buf + 2 * PG, PG, PROT_NONE);
    char *ro = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char x;
        strcpy(buf, "child's own");
        write(back[1], "r", 1);
        read(go[0], &x, 1);         /* the parent wrote: show it */
        printf("child sees: %.12s\n", buf + 100);
        exit(0);
    }
    char x;
    read(back[0], &x, 1);
    char got[64] = {0}, two[8] = {0};
    struct iovec l[2] = {{got, 11}, {two, 4}};
    struct iovec r[2] = {{buf, 5}, {buf + 100, 10}};
    res("readv child", pvm(0, c, l, 2, r, 2, 0));
    printf("  got %.11s | %.4s\n", got, two);
    struct iovec w = {"FROM PARENT!", 12}, wr = {buf + 100, 12};
    res("writev child", pvm(1, c, &w, 1, &wr, 1, 0));
    char *big = malloc(3 * PG);
    struct iovec lb = {big, 3 * PG}, rb = {buf, 3 * PG};
    res("readv over an unreadable page", pvm(0, c, &lb, 1, &rb, 1, 0));
    struct iovec rn = {buf + 2 * PG, 10};
    res("readv of the unreadable page", pvm(0, c, &lb, 1, &rn, 1, 0));
    struct iovec lro = {ro, 10}, rs = {buf, 10};
    res("readv into a read-only local buffer", pvm(0, c, &lro, 1, &rs, 1, 0));
    struct iovec rro = {ro, 10}, ls = {got, 10};
    res("writev into the child's read-only page", pvm(1, c, &ls, 1, &rro, 1, 0));
    res("flags 1", pvm(0, c, l, 1, r, 1, 1));
    struct iovec neg = {got, (size_t)-1};
    res("local iov_len -1", pvm(0, c, &neg, 1, r, 1, 0));
    res("remote iov_len -1", pvm(0, c, l, 1, &neg, 1, 0));
    struct iovec badl = {(void *)-1, 10};
    res("local iov_base -1", pvm(0, c, &badl, 1, r, 1, 0));
    res("remote iov_base -1", pvm(0, c, l, 1, &badl, 1, 0));
    res("local vec -1", pvm(0, c, (void *)-1, 1, r, 1, 0));
    res("remote vec -1", pvm(0, c, l, 1, (void *)-1, 1, 0));
    res("1025 local iovecs", pvm(0, c, l, 1025, r, 1, 0));
    res("nothing to copy (no local iovecs, bad pid)", pvm(0, -1, NULL, 0, NULL, 0, 0));
    struct iovec z = {got, 0};
    res("remote lengths 0, bad pid", pvm(0, -1, l, 1, &z, 1, 0));
    res("pid -1", pvm(0, -1, l, 1, r, 1, 0));
    res("self", pvm(0, getpid(), l, 1, r, 1, 0));
    printf("  self got %.11s\n", got);
    fflush(stdout);
    pid_t n = fork();
    if (n == 0) {
        setuid(NOBODY);
        res("nobody reading root's child", pvm(0, c, l, 1, r, 1, 0));
        exit(0);
    }
    waitpid(n, NULL, 0);
    write(go[1], "g", 1);
    waitpid(c, NULL, 0);
    res("after the child's exit", pvm(0, c, l, 1, r, 1, 0));
    free(big);
}

static void remap(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/remap", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    char page[PG];
    for (int i = 0; i < 4; i++) {
        memset(page, 'A' + i, PG);
        write(fd, page, PG);
    }
    char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    res("remap page 0 to file page 3", syscall(SYS_remap_file_pages, m, PG, 0, 3, 0));
    printf("  window now %c%c%c%c\n", m[0], m[PG], m[2 * PG], m[3 * PG]);
    res("2 pages from page 2 to file pages 0-1", syscall(SYS_remap_file_pages, m + 2 * PG, 2 * PG, 0, 0, 0));
    printf("  window now %c%c%c%c\n", m[0], m[PG], m[2 * PG], m[3 * PG]);
    m[0] = 'z';
    char c0 = 0;
    pread(fd, &c0, 1, 3 * PG);
    printf("  write through it reaches file page 3: %c\n", c0);
    res("unaligned start, size rounded down", syscall(SYS_remap_file_pages, m + 10, PG + 100, 0, 1, 0));
    printf("  window now %c%c%c%c\n", m[0], m[PG], m[2 * PG], m[3 * PG]);
    res("prot 1", syscall(SYS_remap_file_pages, m, PG, 1, 0, 0));
    res("size 0", syscall(SYS_remap_file_pages, m, 0, 0, 0, 0));
    res("past the mapping", syscall(SYS_remap_file_pages, m + 3 * PG, 2 * PG, 0, 0, 0));
    char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    res("private mapping", syscall(SYS_remap_file_pages, p, PG, 0, 0, 0));
    char *an = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    res("unmapped", syscall(SYS_remap_file_pages, m + 100 * PG, PG, 0, 0, 0));
    munmap(an, PG);
    munmap(m, 4 * PG);
    munmap(p, PG);
    close(fd);
    unlink(path);
}

static void readaheads(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/ra", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(fd, "data", 4);
    int wo = open(path, O_WRONLY);
    int op = open(path, O_PATH);
    int p[2];
    pipe(p);
    int sk = socket(AF_UNIX, SOCK_STREAM, 0);
    int d = open(dir, O_RDONLY);
    res("readahead file", readahead(fd, 0, PG));
    res("past the end", readahead(fd, 1 << 20, PG));
    res("count 0", readahead(fd, 0, 0));
    res("O_WRONLY", readahead(wo, 0, PG));
    res("O_PATH", readahead(op, 0, PG));
    res("pipe", readahead(p[0], 0, PG));
    res("socket", readahead(sk, 0, PG));
    res("directory", readahead(d, 0, PG));
    res("fd -1", readahead(-1, 0, PG));
    res("/proc/self/maps", readahead(open("/proc/self/maps", O_RDONLY), 0, PG));
    close(fd);
    unlink(path);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argc > 1 ? argv[1] : ".";
    if (access("/proc/self/status", R_OK) < 0) {
        mkdir("/proc", 0555);
        mount("proc", "/proc", "proc", 0, NULL);
    }
    pagemaps(dir);
    process_vm();
    remap(dir);
    readaheads(dir);
    printf("done\n");
    return 0;
}
