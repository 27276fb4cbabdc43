/* The user address space has no hole the program cannot see: from
 * vm.mmap_min_addr up to the stack, every gap /proc/self/maps shows can be
 * taken with MAP_FIXED_NOREPLACE (LTP's stack_clash does it before growing
 * its stack into a guard gap), below vm.mmap_min_addr nothing can, and one
 * reservation of 64 TiB, as sanitizers and garbage collectors make, fits.
 * Natively and in the guest, the same lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

int main(void)
{
    unsigned long min = 0, start, end, last, filled = 0, failed = 0;
    FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "r");
    if (!f || fscanf(f, "%lu", &min) != 1)
        return 1;
    fclose(f);
    printf("mmap_min_addr is at least a page: %s\n", min >= 4096 ? "yes" : "no");

    /* a big reservation, anywhere, then one across the middle of the range */
    void *big = mmap(NULL, 64UL << 40, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("64 TiB reserved: %s\n", big == MAP_FAILED ? en(errno) : "yes");
    if (big != MAP_FAILED)
        munmap(big, 64UL << 40);
    void *mid = mmap((void *)0x0fff00000000UL, 0x200000000UL, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    printf("8 GiB at 0x0fff00000000: %s\n", mid == MAP_FAILED ? en(errno) : "yes");
    if (mid != MAP_FAILED) {
        ((char *)mid)[0x100000000UL] = 1;
        /* MAP_NORESERVE memory was never committed: growing it commits nothing */
        void *grown = mremap(mid, 0x200000000UL, 0x400000000UL, MREMAP_MAYMOVE);
        printf("grown to 16 GiB: %s\n", grown == MAP_FAILED ? en(errno) : "yes");
        munmap(grown == MAP_FAILED ? mid : grown, grown == MAP_FAILED ? 0x200000000UL : 0x400000000UL);
    }

    /* below vm.mmap_min_addr: refused (EPERM) without CAP_SYS_RAWIO (root
     * may map there natively; in the guest the page below is the stub's) */
    if (geteuid()) {
        void *low = mmap((void *)(min - 4096), 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        printf("a page below mmap_min_addr: %s\n", low == MAP_FAILED ? en(errno) : "mapped");
    }

    /* every gap below the stack */
    char buf[1024];
    f = fopen("/proc/self/maps", "r");
    last = min;
    while (fgets(buf, sizeof buf, f)) {
        if (sscanf(buf, "%lx-%lx", &start, &end) != 2)
            return 1;
        if (strstr(buf, "[stack]"))
            break;
        if (start > last) {
            void *r = mmap((void *)last, start - last, PROT_NONE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
            if (r == MAP_FAILED) {
                printf("gap %#lx-%#lx: %s\n", last, start, en(errno));
                failed++;
            } else {
                filled++;
            }
        }
        last = end;
    }
    fclose(f);
    printf("gaps below the stack filled: %s, refused: %lu\n", filled ? "some" : "none", failed);
    void *any = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("then a mapping anywhere: %s\n", any == MAP_FAILED ? en(errno) : "yes");
    printf("done\n");
    return 0;
}
