/* statx's birth time and direct I/O alignment (guest only; tests/test_ext4.py).
 *   t_btime PATH...   per path: "PATH btime SEC.NSEC" when statx asked for
 *                     STATX_BTIME got it, "PATH no btime" otherwise; and whether
 *                     a statx that did not ask got it anyway ("unasked" if so) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* -d: STATX_DIOALIGN instead: "PATH dioalign MEM OFFSET" or "PATH no dioalign" */
static int dioalign(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        struct statx sx;
        if (statx(AT_FDCWD, argv[i], 0, STATX_DIOALIGN, &sx)) {
            printf("%s: %s\n", argv[i], strerrorname_np(errno));
            continue;
        }
        if (sx.stx_mask & STATX_DIOALIGN)
            printf("%s dioalign %u %u\n", argv[i], sx.stx_dio_mem_align, sx.stx_dio_offset_align);
        else
            printf("%s no dioalign\n", argv[i]);
    }
    printf("done\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "-d"))
        return dioalign(argc, argv);
    for (int i = 1; i < argc; i++) {
        struct statx sx;
        if (statx(AT_FDCWD, argv[i], 0, STATX_BASIC_STATS | STATX_BTIME, &sx)) {
            printf("%s: %s\n", argv[i], strerrorname_np(errno));
            continue;
        }
        if (sx.stx_mask & STATX_BTIME)
            printf("%s btime %lld.%09u", argv[i], (long long)sx.stx_btime.tv_sec,
                   sx.stx_btime.tv_nsec);
        else
            printf("%s no btime", argv[i]);
        statx(AT_FDCWD, argv[i], 0, STATX_BASIC_STATS, &sx);
        printf("%s\n", sx.stx_mask & STATX_BTIME ? " unasked" : "");
    }
    printf("done\n");
    return 0;
}
