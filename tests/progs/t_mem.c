/* Map and touch N MiB of anonymous memory (argv[2]); print whether it worked.
   Under mem= the kernel must refuse what does not fit with ENOMEM. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
    long mb = argc > 2 ? atol(argv[2]) : 16;
    size_t len = (size_t)mb << 20;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        printf("mmap %ld MiB: %s\n", mb, strerrorname_np(errno));
    } else {
        memset(p, 1, len);
        printf("mmap %ld MiB: ok\n", mb);
        munmap(p, len);
    }
    printf("done\n");
    return 0;
}
