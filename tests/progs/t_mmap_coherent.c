/* `t_mmap_coherent FILE OTHER...`: FILE mapped shared stays one with
 * read and write while OTHER files are read through the page cache (on a
 * guest disk, enough of them to push the cache past its budget, which must
 * never let a mapped file's cache go: tests/test_pagecache.py). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    static char buf[1 << 16], page[4096];
    if (argc < 2)
        return 2;
    int fd = open(argv[1], O_RDWR);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 8192)
        return perror("open"), 1;
    char *p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return perror("mmap"), 1;
    memset(p, 'A', 4096);
    for (int round = 0; round < 2; round++)
        for (int i = 2; i < argc; i++) {
            int o = open(argv[i], O_RDONLY);
            while (o >= 0 && read(o, buf, sizeof buf) > 0)
                ;
            close(o);
        }
    int ok = pread(fd, page, 4096, 0) == 4096 && page[0] == 'A' && page[4095] == 'A';
    memset(page, 'B', sizeof page);
    ok &= pwrite(fd, page, 4096, 4096) == 4096 && p[4096] == 'B' && p[8191] == 'B';
    msync(p, st.st_size, MS_SYNC);
    munmap(p, st.st_size);
    puts(ok ? "mapping and file agree" : "mapping and file differ");
    return 0;
}
