/* Shared file mappings on a disk filesystem: mmap moves the access time
   (f_op->mmap's file_accessed, relatime allowing), a write through the
   mapping moves the modification time by the msync after it, and what a
   mapping wrote past the end of the file in its last page is never written
   out (writepage zeroes that page past i_size), so a later mapping reads
   zeros: the Open POSIX suite's mmap 13-1, 14-1 and 11-4.  argv[1]: a
   directory on ext4 (tmpfs keeps the bytes past the end).  Deterministic:
   the times are set far in the past first and compared with those. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE 1024

static const char *moved(time_t t, time_t old) { return t == old ? "kept" : "moved"; }

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char path[4096], data[SIZE];
    snprintf(path, sizeof path, "%s/t_mmapfile", argc > 1 ? argv[1] : ".");
    unlink(path);
    int fd = open(path, O_CREAT | O_RDWR | O_EXCL, 0600);
    memset(data, 'a', SIZE);
    if (fd < 0 || write(fd, data, SIZE) != SIZE)
        return 1;
    /* atime before mtime: relatime lets the next access move it */
    struct timespec old[2] = {{1000, 0}, {2000, 0}};
    struct stat st;
    futimens(fd, old);
    char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return 1;
    fstat(fd, &st);
    printf("mmap: atime %s, mtime %s\n", moved(st.st_atime, 1000), moved(st.st_mtime, 2000));
    p[0] = 'b';
    msync(p, SIZE, MS_SYNC);
    fstat(fd, &st);
    printf("a write through the mapping, msync: mtime %s\n", moved(st.st_mtime, 2000));
    p[SIZE + 1] = 'z';
    msync(p, SIZE, MS_SYNC);
    munmap(p, SIZE);
    p = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
    fstat(fd, &st);
    printf("past the end, written back: %s; size %lld; first byte %c\n",
           p[SIZE + 1] ? "kept" : "zeros", (long long)st.st_size, p[0]);
    munmap(p, SIZE);
    close(fd);
    unlink(path);
    printf("done\n");
    return 0;
}
