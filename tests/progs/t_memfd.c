/* memfd_create's checks and flags, and file seals (F_ADD_SEALS,
 * F_GET_SEALS): what each seal forbids to write(), ftruncate(), fallocate(),
 * mmap() and mprotect(), when F_SEAL_WRITE is refused (EBUSY: writable
 * shared mappings), F_SEAL_FUTURE_WRITE, F_SEAL_EXEC and MFD_NOEXEC_SEAL. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define PG 4096

static int mfd(const char *name, unsigned flags)
{
    return syscall(SYS_memfd_create, name, flags);
}

static int reopen(int fd, int flags)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    return open(p, flags);
}

static void get(const char *what, int fd)
{
    int r = fcntl(fd, F_GET_SEALS);
    if (r < 0)
        printf("%s: get -1 %s\n", what, en(errno));
    else
        printf("%s: get %#x\n", what, r);
}

static void add(const char *what, int fd, long s)
{
    res(what, syscall(SYS_fcntl, fd, F_ADD_SEALS, s));
}

static void info(const char *what, int fd)
{
    struct stat st;
    char p[64], l[256];
    fstat(fd, &st);
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, l, sizeof l - 1);
    l[n > 0 ? n : 0] = 0;
    printf("%s: mode %o nlink %lu size %lld cloexec %d link %s\n", what, st.st_mode,
           (unsigned long)st.st_nlink, (long long)st.st_size, fcntl(fd, F_GETFD), l);
}

static void try_mmap(const char *what, int fd, int prot, int flags)
{
    void *p = mmap(NULL, PG, prot, flags, fd, 0);
    if (p == MAP_FAILED) {
        printf("%s: mmap -1 %s\n", what, en(errno));
        return;
    }
    printf("%s: mmap ok", what);
    if (!(prot & PROT_WRITE))
        printf(", mprotect rw %s", mprotect(p, PG, PROT_READ | PROT_WRITE) ? en(errno) : "ok");
    printf("\n");
    munmap(p, PG);
}

/* what the file allows now: writes, resizes, mappings */
static void probe(const char *what, int fd)
{
    char buf[3 * PG] = {0};
    struct stat st;
    printf("%s:\n", what);
    fstat(fd, &st);
    off_t size = st.st_size;
    res("  write 4", pwrite(fd, "data", 4, 0));
    res("  write past the end", pwrite(fd, buf, 10, size));
    res("  write 3 pages at 0", pwrite(fd, buf, sizeof buf, 0));
    fstat(fd, &st);
    printf("  size now %lld\n", (long long)st.st_size);
    res("  ftruncate -1", ftruncate(fd, st.st_size - 1));
    res("  ftruncate back", ftruncate(fd, st.st_size));
    res("  ftruncate +1", ftruncate(fd, st.st_size + 1));
    res("  ftruncate back", ftruncate(fd, st.st_size));
    res("  fallocate inside", fallocate(fd, 0, 0, 100));
    res("  fallocate beyond", fallocate(fd, 0, 0, st.st_size + PG));
    res("  fallocate keep_size beyond", fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, st.st_size + 2 * PG));
    res("  punch hole", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PG));
    ftruncate(fd, 2 * PG);
    fstat(fd, &st);
    printf("  size %lld\n", (long long)st.st_size);
    try_mmap("  shared rw", fd, PROT_READ | PROT_WRITE, MAP_SHARED);
    try_mmap("  shared w", fd, PROT_WRITE, MAP_SHARED);
    try_mmap("  shared r", fd, PROT_READ, MAP_SHARED);
    try_mmap("  private rw", fd, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    int ro = reopen(fd, O_RDONLY);
    try_mmap("  shared r of an O_RDONLY open", ro, PROT_READ, MAP_SHARED);
    close(ro);
    int t = reopen(fd, O_RDWR | O_TRUNC);
    printf("  open O_TRUNC: %s\n", t < 0 ? en(errno) : "ok");
    if (t >= 0)
        close(t);
    ftruncate(fd, 2 * PG);
}

int main(int argc, char **argv)
{
    (void)argc; (void)argv;
    setvbuf(stdout, NULL, _IOLBF, 0);
    need_proc();
    char name[300];

    printf("-- names and flags\n");
    res("NULL name", mfd(NULL, 0));
    memset(name, 'n', sizeof name);
    name[249] = 0;
    int fd = mfd(name, 0);
    printf("249 bytes: %s\n", fd >= 0 ? "ok" : en(errno));
    close(fd);
    name[249] = 'n';
    name[250] = 0;
    res("250 bytes", mfd(name, 0));
    name[299] = 0;
    res("299 bytes", mfd(name, 0));
    static const unsigned bad[] = {(unsigned)-500, 0x100, ~1U, ~2U, ~0U, 0x80000000U, 0x20,
                                   MFD_EXEC | MFD_NOEXEC_SEAL};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char w[32];
        snprintf(w, sizeof w, "flags %#x", bad[i]);
        res(w, mfd("x", bad[i]));
    }
    fd = mfd("", 0);
    info("empty name", fd);
    close(fd);
    fd = mfd("test", MFD_CLOEXEC);
    info("cloexec", fd);
    close(fd);

    printf("-- no MFD_ALLOW_SEALING\n");
    fd = mfd("plain", 0);
    info("plain", fd);
    get("plain", fd);
    add("plain add shrink", fd, F_SEAL_SHRINK);
    add("plain add 0", fd, 0);
    close(fd);

    printf("-- basic seals\n");
    fd = mfd("s", MFD_ALLOW_SEALING);
    ftruncate(fd, 2 * PG);
    get("new", fd);
    add("bad bit 0x40", fd, 0x40);
    add("upper half", fd, 1L << 32);
    get("after upper half", fd);
    add("shrink|write", fd, F_SEAL_SHRINK | F_SEAL_WRITE);
    get("now", fd);
    add("shrink|write again", fd, F_SEAL_SHRINK | F_SEAL_WRITE);
    int ro = reopen(fd, O_RDONLY);
    add("grow through an O_RDONLY open", ro, F_SEAL_GROW);
    get("through the O_RDONLY open", ro);
    close(ro);
    int dupfd = dup(fd);
    add("grow|seal on a dup", dupfd, F_SEAL_GROW | F_SEAL_SEAL);
    get("now", fd);
    add("grow again", fd, F_SEAL_GROW);
    add("0 when sealed", fd, 0);
    close(dupfd);
    close(fd);

    static const struct { const char *n; int s; } one[] = {
        {"F_SEAL_WRITE", F_SEAL_WRITE}, {"F_SEAL_SHRINK", F_SEAL_SHRINK}, {"F_SEAL_GROW", F_SEAL_GROW},
        {"F_SEAL_SHRINK|F_SEAL_GROW", F_SEAL_SHRINK | F_SEAL_GROW},
        {"F_SEAL_FUTURE_WRITE", F_SEAL_FUTURE_WRITE}};
    for (unsigned i = 0; i < sizeof one / sizeof one[0]; i++) {
        fd = mfd("probe", MFD_ALLOW_SEALING);
        ftruncate(fd, 2 * PG + 100);
        add(one[i].n, fd, one[i].s);
        probe(one[i].n, fd);
        close(fd);
    }
    fd = mfd("probe", MFD_ALLOW_SEALING);
    ftruncate(fd, 2 * PG + 100);
    probe("no seal", fd);
    close(fd);

    printf("-- F_SEAL_WRITE and mappings\n");
    fd = mfd("m", MFD_ALLOW_SEALING);
    ftruncate(fd, PG);
    char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    add("write, with a shared rw mapping", fd, F_SEAL_WRITE);
    add("shrink, with it", fd, F_SEAL_SHRINK);
    get("now", fd);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(200000);
        _exit(0);
    }
    munmap(p, PG);
    add("write, a child still maps it", fd, F_SEAL_WRITE);
    waitpid(pid, NULL, 0);
    add("write, the child is gone", fd, F_SEAL_WRITE);
    close(fd);
    fd = mfd("m2", MFD_ALLOW_SEALING);
    ftruncate(fd, PG);
    p = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
    add("write, with a shared r mapping of an rw fd", fd, F_SEAL_WRITE);
    munmap(p, PG);
    ro = reopen(fd, O_RDONLY);
    p = mmap(NULL, PG, PROT_READ, MAP_SHARED, ro, 0);
    add("write, with a shared r mapping of an r fd", fd, F_SEAL_WRITE);
    munmap(p, PG);
    close(ro);
    p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    add("write, with a private rw mapping", fd, F_SEAL_WRITE);
    munmap(p, PG);
    close(fd);

    printf("-- F_SEAL_FUTURE_WRITE keeps the mappings there\n");
    fd = mfd("f", MFD_ALLOW_SEALING);
    ftruncate(fd, PG);
    p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    add("future_write", fd, F_SEAL_FUTURE_WRITE);
    p[0] = 'Z';
    char c = 0;
    pread(fd, &c, 1, 0);
    printf("written through the old mapping: %c\n", c);
    res("write()", write(fd, "x", 1));
    munmap(p, PG);
    close(fd);

    printf("-- exec bits\n");
    fd = mfd("ns", MFD_NOEXEC_SEAL);
    info("noexec_seal", fd);
    get("noexec_seal", fd);
    res("chmod 0777", fchmod(fd, 0777));
    res("chmod 0644", fchmod(fd, 0644));
    add("shrink", fd, F_SEAL_SHRINK);
    get("now", fd);
    close(fd);
    fd = mfd("ex", MFD_EXEC);
    info("exec", fd);
    get("exec", fd);
    close(fd);
    fd = mfd("ex", MFD_EXEC | MFD_ALLOW_SEALING);
    get("exec|allow_sealing", fd);
    add("F_SEAL_EXEC on 0777", fd, F_SEAL_EXEC);
    get("now", fd);
    res("chmod 0755", fchmod(fd, 0755));
    res("chmod 0700 (same x bits? no)", fchmod(fd, 0700));
    res("chmod 0766 (same x bits? no)", fchmod(fd, 0766));
    res("chmod 0711", fchmod(fd, 0711));
    close(fd);
    fd = mfd("ex2", MFD_ALLOW_SEALING);
    fchmod(fd, 0644);
    add("F_SEAL_EXEC on 0644", fd, F_SEAL_EXEC);
    get("now", fd);
    res("chmod 0755", fchmod(fd, 0755));
    close(fd);

    printf("-- other files\n");
    int pp[2];
    pipe(pp);
    get("pipe read end", pp[0]);
    add("pipe read end", pp[0], F_SEAL_SHRINK);
    add("pipe write end", pp[1], F_SEAL_SHRINK);
    close(pp[0]);
    close(pp[1]);
    int dn = open("/dev/null", O_RDWR);
    get("/dev/null", dn);
    close(dn);
    printf("done\n");
    return 0;
}
