/* `t_filemax PATH` opens PATH until an open fails, closes them all and
 * prints which error ended it and where fs.file-nr stood against
 * fs.file-max then.  Guest only (tests/test_security.py): file-max is the
 * machine's, and the host's cannot be lowered for a test. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "results.h"

int main(int argc, char **argv)
{
    static int fds[1 << 16];
    int n = 0;
    if (argc < 2)
        return 2;
    while (n < (int)(sizeof fds / sizeof fds[0])) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0)
            break;
        fds[n++] = fd;
    }
    int err = errno;
    long nr = -1, max = -2;
    if (n)
        close(fds[--n]);        /* room for the read (itself a file) */
    FILE *f = fopen("/proc/sys/fs/file-nr", "r");
    if (f) {
        if (fscanf(f, "%ld %*d %ld", &nr, &max) != 2)
            nr = -1;
        fclose(f);
    }
    printf("%s after %s, file-nr %s file-max\n", en(err), n > 100 ? "more than 100" : "100 or fewer",
           nr < max - 5 ? "below" : nr <= max + 100 ? "at" : "well past");
    while (n)
        close(fds[--n]);
    return 0;
}
