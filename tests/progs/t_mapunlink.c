/* A file mapped and then unlinked, its fd closed, is still in use: the
   mapping holds it as an open file does, so its inode number is not given
   to the next file made (glibc's dlopen takes a file whose device and
   inode it has loaded already for that library: a plugin rewritten under
   a new name would be the old one), and the mapping still reads and
   writes it; the last unmapping frees it.  Deterministic output. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char a[256], b[256], c[256];
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    snprintf(a, sizeof a, "%s/mapped", dir);
    snprintf(b, sizeof b, "%s/next", dir);
    snprintf(c, sizeof c, "%s/after", dir);
    int fd = open(a, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "hello", 5) != 5)
        return 1;
    struct stat s1, s2, s3, s4;
    fstat(fd, &s1);
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    unlink(a);
    int made = 0;
    for (int i = 0; i < 20; i++) {      /* a few files: none takes its number */
        char p[300];
        snprintf(p, sizeof p, "%s.%d", b, i);
        int f = open(p, O_CREAT | O_WRONLY, 0644);
        fstat(f, &s2);
        made += s2.st_ino == s1.st_ino;
        close(f);
        unlink(p);
    }
    printf("a new file took the mapped one's number: %d\n", made);
    memcpy(m, "HELLO", 5);
    printf("the mapping reads %.5s\n", m);
    void *m2 = mremap(m, 4096, 8192, MREMAP_MAYMOVE);
    printf("moved, it reads %.5s\n", (char *)m2);
    munmap(m2, 8192);
    int f = open(c, O_CREAT | O_WRONLY, 0644);
    fstat(f, &s3);
    close(f);
    unlink(c);
    (void)s4;
    printf("done\n");
    return 0;
}
