/* Where this image's pieces landed, by page: the program (its load bias,
   for a PIE), the heap (the program break), the stack and a fresh
   mapping: kernel.randomize_va_space and ADDR_NO_RANDOMIZE decide which
   of them move from one exec to the next (tests/test_tunables.py).
   t_aslr [-R] [-u UID] PROG: exec PROG with ADDR_NO_RANDOMIZE (setarch
   -R), as user UID. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int i = 1;
    if (i < argc && !strcmp(argv[i], "-R")) {
        personality(ADDR_NO_RANDOMIZE);
        i++;
    }
    if (i + 1 < argc && !strcmp(argv[i], "-u")) {
        uid_t u = atoi(argv[i + 1]);
        if (setgid(u) || setuid(u))
            return 2;
        i += 2;
    }
    if (i < argc) {
        execv(argv[i], argv + i);
        return 3;
    }
    int local = 0;
    void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("program %lx heap %lx stack %lx mmap %lx\n", (unsigned long)(uintptr_t)main >> 12,
           (unsigned long)(uintptr_t)sbrk(0) >> 12, (unsigned long)(uintptr_t)&local >> 12,
           (unsigned long)(uintptr_t)m >> 12);
    return local;
}
