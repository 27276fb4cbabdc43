/* File mappings against read/write: MAP_SHARED and MAP_PRIVATE coherence,
   offsets, the partial last page and SIGBUS past it, MAP_FIXED and
   MAP_FIXED_NOREPLACE, mremap, madvise(DONTNEED), msync, mincore, mlock,
   truncation under a mapping, sharing with a forked child. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096
static sigjmp_buf jb;
static volatile int faults;

static void on_bus(int s)
{
    faults = s;
    siglongjmp(jb, 1);
}

/* 1 when reading *p raises SIGBUS */
static int bus_at(volatile char *p)
{
    faults = 0;
    if (sigsetjmp(jb, 1) == 0) {
        (void)*p;
        return 0;
    }
    return faults == SIGBUS;
}

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static char at(int fd, off_t off)
{
    char c = '?';
    pread(fd, &c, 1, off);
    return c;
}

/* write "via <how>" into DIR/<how> through a shared mapping, then leave it
   to munmap, msync or exit to carry the page to the disk */
static void persist(const char *dir)
{
    const char *hows[] = {"munmap", "msync", "exit"};
    for (int i = 0; i < 3; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, hows[i]);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        ftruncate(fd, 2 * PG);
        char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        snprintf(m + PG, 64, "via %s", hows[i]);
        if (i == 0)
            munmap(m, 2 * PG);
        else if (i == 1)
            msync(m, 2 * PG, MS_SYNC);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && strcmp(argv[2], "persist") == 0) {
        persist(argv[1]);
        return 0;
    }
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/t_mmap.d", argc > 1 ? argv[1] : ".");
    snprintf(path, sizeof path, "%s/f", dir);
    unlink(path);
    rmdir(dir);
    mkdir(dir, 0755);
    signal(SIGBUS, on_bus);

    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    char buf[10000];
    for (int i = 0; i < 10000; i++)
        buf[i] = 'a' + i % 26;
    write(fd, buf, sizeof buf);

    char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("shared map: %s; first bytes %.4s\n", m == MAP_FAILED ? "failed" : "ok", m);
    int zeros = 1;
    for (int i = 10000; i < 3 * PG; i++)
        zeros &= m[i] == 0;
    printf("partial last page zero past EOF %d, SIGBUS on the page after %d\n", zeros, bus_at(m + 3 * PG));
    memcpy(m + 100, "MAPPED", 6);
    char got[7] = {0};
    pread(fd, got, 6, 100);
    printf("write through the map, read(2) sees %s\n", got);
    pwrite(fd, "WRITTEN", 7, 5000);
    printf("pwrite, the map sees %.7s\n", m + 5000);
    pwrite(fd, "tail", 4, 11000);   /* grows the file inside the mapped page */
    printf("file grown by pwrite, the map sees %.4s, SIGBUS still past page 3 %d\n", m + 11000,
           bus_at(m + 3 * PG));

    char *p = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    p[0] = 'P';
    pwrite(fd, "NEW", 3, PG);
    printf("private: own write kept %c, file unchanged %c, untouched page sees the file %.3s\n",
           p[0], at(fd, 0), p + PG);
    madvise(p, PG, MADV_DONTNEED);
    printf("private page after MADV_DONTNEED back to the file: %c\n", p[0]);
    m[2 * PG] = 'S';
    madvise(m + 2 * PG, PG, MADV_DONTNEED);
    printf("shared page after MADV_DONTNEED keeps the write: %c\n", m[2 * PG]);

    char *o = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, PG);
    printf("offset map sees %.3s; unaligned offset: %s\n", o,
           en((long)mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 100)));
    void *r = mmap(o, PG, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    printf("MAP_FIXED_NOREPLACE over a mapping: %s\n", r == MAP_FAILED ? strerrorname_np(errno) : "mapped");
    r = mmap(o, PG, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    printf("MAP_FIXED replaces it: same address %d, now sees %.4s\n", r == o, o);
    munmap(o, PG);

    ftruncate(fd, 5 * PG);
    char *g = mremap(m, 4 * PG, 6 * PG, MREMAP_MAYMOVE);
    pwrite(fd, "FIVE", 4, 4 * PG);
    printf("mremap grown: kept %.6s, new page sees %.4s, SIGBUS past EOF %d\n", g + 100, g + 4 * PG,
           bus_at(g + 5 * PG));
    printf("msync MS_SYNC %s, MS_ASYNC %s, bad flags %s\n", en(msync(g, 6 * PG, MS_SYNC)),
           en(msync(g, PG, MS_ASYNC)), en(msync(g, PG, MS_SYNC | MS_ASYNC)));
    unsigned char vec[6];
    printf("mincore %s, mlock %s, munlock %s\n", en(mincore(g, 5 * PG, vec)), en(mlock(g, PG)),
           en(munlock(g, PG)));

    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        memcpy(g + 200, "CHILD", 5);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("child's write through the inherited map: %.5s, read(2) %c\n", g + 200, at(fd, 200));

    ftruncate(fd, PG + 10);
    printf("truncated under the map: SIGBUS on a cut page %d, kept page %c\n", bus_at(g + 2 * PG), g[100]);
    munmap(g, 6 * PG);
    munmap(p, 3 * PG);
    printf("msync of an unmapped range: %s\n", en(msync(g, PG, MS_SYNC)));

    close(fd);
    fd = open(path, O_RDONLY);
    char back[8] = {0};
    pread(fd, back, 6, 100);
    struct stat st;
    fstat(fd, &st);
    printf("reopened: %s, size %lld\n", back, (long long)st.st_size);
    close(fd);

    /* do_mmap's order: the open mode (EACCES), then whether the file maps at all (ENODEV) */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY), pfd[2];
    pipe(pfd);
    void *mp = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0);
    printf("shared writable map of a directory: %s\n", mp == MAP_FAILED ? en(-1) : "mapped");
    mp = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, dfd, 0);
    printf("private map of a directory: %s\n", mp == MAP_FAILED ? en(-1) : "mapped");
    mp = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, pfd[0], 0);
    printf("shared writable map of a pipe's read end: %s\n", mp == MAP_FAILED ? en(-1) : "mapped");
    mp = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, pfd[0], 0);
    printf("private map of a pipe's read end: %s\n", mp == MAP_FAILED ? en(-1) : "mapped");
    mp = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, pfd[1], 0);
    printf("private map of a pipe's write end: %s\n", mp == MAP_FAILED ? en(-1) : "mapped");
    close(dfd), close(pfd[0]), close(pfd[1]);
    unlink(path);
    rmdir(dir);
    printf("done\n");
    return 0;
}
