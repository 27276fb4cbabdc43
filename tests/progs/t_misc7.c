/* Odds and ends glibc programs use: personality and the randomised load
   base, mlock/mincore, fadvise, fallocate.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/m7", argc > 1 ? argv[1] : ".");
    int old = personality(0xffffffff);
    printf("personality query: %#x\n", old & 0xff);
    printf("set ADDR_NO_RANDOMIZE: old=%#x\n", personality(ADDR_NO_RANDOMIZE) & 0xff);
    printf("now: %#x\n", personality(0xffffffff) & ADDR_NO_RANDOMIZE);
    personality(old);
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = 1;
    unsigned char vec[2];
    printf("mincore: %d first page resident=%d\n", mincore(p, 8192, vec), vec[0] & 1);
    int r = mlock(p, 4096);
    printf("mlock: %d, munlock: %d\n", r == 0 || errno == EPERM || errno == ENOMEM, munlock(p, 4096) == 0 || r != 0);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    printf("fadvise: %d\n", posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL));
    printf("fallocate: %d\n", fallocate(fd, 0, 0, 10000));
    struct stat st;
    fstat(fd, &st);
    printf("size after fallocate: %lld\n", (long long)st.st_size);
    printf("keep size: %d\n", fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 20000));
    fstat(fd, &st);
    printf("size kept: %lld\n", (long long)st.st_size);
    close(fd);
    unlink(path);
    printf("done\n");
    return 0;
}
