/* `t_manyfiles DIR N`: N empty files DIR/f0 .. DIR/f(N-1), made and
 * closed one after the other (a guest growing the kernel's caches of its
 * disk: tests/test_caches.py). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char path[4096];
    if (argc < 3)
        return 2;
    long n = atol(argv[2]);
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%ld", argv[1], i);
        int fd = open(path, O_CREAT | O_WRONLY, 0644);
        if (fd < 0)
            return perror(path), 1;
        close(fd);
    }
    return 0;
}
