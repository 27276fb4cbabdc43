/* openat2: struct open_how's checks (sizes, flags, mode, resolve) and the
 * RESOLVE_* scopes: no mount crossing, no symlinks, no magic links, beneath
 * the start, the start as root.  argv[1]: scratch directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "results.h"

static long o2(int dfd, const char *p, uint64_t flags, uint64_t mode, uint64_t resolve)
{
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    long r = syscall(SYS_openat2, dfd, p, &how, sizeof how);
    if (r >= 0)
        close(r);
    return r < 0 ? r : 0;
}

int main(int argc, char **argv)
{
    const char *scratch = argc > 1 ? argv[1] : ".";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/openat2.d", scratch);
    if (fork() == 0)
        execlp("rm", "rm", "-rf", dir, (char *)NULL), _exit(0);
    wait(NULL);
    mkdir(dir, 0755);
    int d = open(dir, O_DIRECTORY | O_RDONLY);
    close(openat(d, "file", O_CREAT | O_WRONLY, 0644));
    mkdirat(d, "sub", 0755);
    symlinkat("file", d, "rel");
    symlinkat("/proc/version", d, "abs");
    symlinkat("../file", d, "sub/up");

    /* the struct */
    struct { struct open_how how; uint64_t pad; } big = {{.flags = O_RDONLY}, 0};
    res("size 0", syscall(SYS_openat2, d, "file", &big, 0));
    res("size 23", syscall(SYS_openat2, d, "file", &big, 23));
    long r = syscall(SYS_openat2, d, "file", &big, sizeof big);
    res("size 32, zero tail", r >= 0 ? (close(r), 0) : r);
    big.pad = 0xdead;
    res("size 32, tail set", syscall(SYS_openat2, d, "file", &big, sizeof big));
    res("size 8192", syscall(SYS_openat2, d, "file", &big, 8192));
    res("NULL how", syscall(SYS_openat2, d, "file", NULL, sizeof(struct open_how)));
    res("NULL path", o2(d, NULL, O_RDONLY, 0, 0));
    res("bad dirfd", o2(-1, "file", O_RDONLY, 0, 0));
    res("unknown flag", o2(d, "file", O_RDONLY | (1ULL << 40), 0, 0));
    res("mode without O_CREAT", o2(d, "file", O_RDONLY, 0600, 0));
    res("mode -1 with O_CREAT", o2(d, "new", O_RDWR | O_CREAT, -1, 0));
    res("unknown resolve", o2(d, "file", O_RDONLY, 0, 1 << 10));
    res("BENEATH|IN_ROOT", o2(d, "file", O_RDONLY, 0, RESOLVE_BENEATH | RESOLVE_IN_ROOT));
    res("O_PATH|O_RDWR", o2(d, "file", O_PATH | O_RDWR, 0, 0));
    res("CACHED with O_CREAT", o2(d, "file", O_RDWR | O_CREAT, 0600, RESOLVE_CACHED));
    res("plain", o2(d, "file", O_RDONLY, 0, 0));
    res("O_CREAT new", o2(d, "made", O_RDWR | O_CREAT, 0600, 0));

    /* the scopes */
    static const struct { const char *name; const char *path; uint64_t resolve; } c[] = {
        {"NO_XDEV absolute /proc", "/proc/version", RESOLVE_NO_XDEV},
        {"NO_XDEV relative", "sub/../file", RESOLVE_NO_XDEV},
        {"NO_SYMLINKS rel link", "rel", RESOLVE_NO_SYMLINKS},
        {"NO_SYMLINKS plain", "file", RESOLVE_NO_SYMLINKS},
        {"NO_MAGICLINKS /proc/self/exe", "/proc/self/exe", RESOLVE_NO_MAGICLINKS},
        {"NO_MAGICLINKS rel link", "rel", RESOLVE_NO_MAGICLINKS},
        {"no resolve /proc/self/exe", "/proc/self/exe", 0},
        {"BENEATH absolute", "/proc/version", RESOLVE_BENEATH},
        {"BENEATH ..", "../openat2.d/file", RESOLVE_BENEATH},
        {"BENEATH sub/..", "sub/../file", RESOLVE_BENEATH},
        {"BENEATH link up inside", "sub/up", RESOLVE_BENEATH},
        {"BENEATH absolute link", "abs", RESOLVE_BENEATH},
        {"IN_ROOT absolute", "/file", RESOLVE_IN_ROOT},
        {"IN_ROOT .. clamps", "../../file", RESOLVE_IN_ROOT},
        {"IN_ROOT absolute link", "abs", RESOLVE_IN_ROOT},
        {"CACHED plain", "file", RESOLVE_CACHED},
    };
    for (unsigned i = 0; i < sizeof c / sizeof *c; i++)
        res(c[i].name, o2(d, c[i].path, O_RDONLY, 0, c[i].resolve));
    close(d);
    if (fork() == 0)
        execlp("rm", "rm", "-rf", dir, (char *)NULL), _exit(0);
    wait(NULL);
    printf("done\n");
    return 0;
}
