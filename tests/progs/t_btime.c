/* statx's birth time (guest only; tests/test_ext4_dirindex.py).
 *   t_btime PATH...   per path: "PATH btime SEC.NSEC" when statx asked for
 *                     STATX_BTIME got it, "PATH no btime" otherwise; and whether
 *                     a statx that did not ask got it anyway ("unasked" if so) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
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
