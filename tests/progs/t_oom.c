/* Memory pressure for tests/test_oom.py (not differential: it would press
   the host).  Subcommands:
     map MB          mmap MB of private writable memory, untouched: ok or the errno
     hold MB TOUCH   map MB, touch TOUCH MiB of it, say "ready", then sleep
     hog             touch fresh memory, a MiB at a time, until killed
     unpriv          oom_score_adj as root, then as nobody (CAP_SYS_RESOURCE gone)
     populate HOW    fault in 4 GiB of MAP_NORESERVE memory at once, HOW being
                     madvise (MADV_POPULATE_WRITE), map (MAP_POPULATE) or mlock:
                     the host does the faulting, the kernel must stop it at mem= */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

static void *map(long mb)
{
    return mmap(NULL, (size_t)mb << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void set_adj(const char *v)
{
    int fd = open("/proc/self/oom_score_adj", O_WRONLY);
    if (fd < 0 || write(fd, v, strlen(v)) < 0)
        printf("write %s: %s\n", v, strerrorname_np(errno));
    else
        printf("write %s: ok\n", v);
    if (fd >= 0)
        close(fd);
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "map") && argc > 2) {
        long mb = atol(argv[2]);
        void *p = map(mb);
        printf("map %ld MiB: %s\n", mb, p == MAP_FAILED ? strerrorname_np(errno) : "ok");
        return 0;
    }
    if (!strcmp(cmd, "hold") && argc > 3) {
        char *p = map(atol(argv[2]));
        if (p == MAP_FAILED) {
            printf("hold: %s\n", strerrorname_np(errno));
            return 1;
        }
        memset(p, 1, (size_t)atol(argv[3]) << 20);
        printf("ready\n");
        fflush(stdout);
        for (;;)
            pause();
    }
    if (!strcmp(cmd, "hog")) {
        for (;;) {
            char *p = map(1);
            if (p == MAP_FAILED) {
                printf("hog: %s\n", strerrorname_np(errno));
                return 1;
            }
            memset(p, 1, 1 << 20);
        }
    }
    if (!strcmp(cmd, "populate") && argc > 2) {
        size_t size = 4UL << 30;
        int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (!strcmp(argv[2], "map") ? MAP_POPULATE : 0);
        char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
        long r = p == MAP_FAILED ? -1 : !strcmp(argv[2], "madvise") ? madvise(p, size, MADV_POPULATE_WRITE)
                 : !strcmp(argv[2], "mlock") ? mlock(p, size) : 0;
        printf("populate %s: %ld %s\n", argv[2], r, r ? strerrorname_np(errno) : "");
        return 0;
    }
    if (!strcmp(cmd, "unpriv")) {
        set_adj("100");         /* privileged: 100 is also the new floor */
        if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)
            || prctl(PR_SET_DUMPABLE, 1))   /* else /proc/self is root's */
            return 1;
        set_adj("50");          /* below the floor */
        set_adj("300");
        set_adj("100");
        set_adj("2000");
        return 0;
    }
    fprintf(stderr, "usage: t_oom map MB | hold MB TOUCH | hog | unpriv | populate madvise|map|mlock\n");
    return 2;
}
