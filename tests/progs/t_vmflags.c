/* /proc/self/smaps' VmFlags as Linux shows them for the common kinds of
   mapping: what the permissions give (rd wr ex sh), what they may become
   (mr mw me ms), the stack's gd, the accounting of private writable
   memory (ac), mlock's lo, MADV_DONTDUMP's dd; never an empty line
   (psutil's smaps parser wants a value after every name).
   Deterministic output. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void flags(const char *what, void *p)
{
    char line[512], out[512] = "missing";
    unsigned long start, end;
    int in = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
            in = start <= (unsigned long)p && (unsigned long)p < end;
            continue;
        }
        if (in && !strncmp(line, "VmFlags:", 8)) {
            snprintf(out, sizeof out, "%s", line + 8);
            out[strcspn(out, "\n")] = 0;
        }
    }
    if (f)
        fclose(f);
    printf("%-28s%s\n", what, out);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    long pg = 4096;
    char path[256];
    snprintf(path, sizeof path, "%s/vmflags", argc > 1 ? argv[1] : "/tmp");
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 4 * pg))
        return 1;
    int local = 0;
    flags("stack", &local);
    flags("private rw", mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    flags("private none", mmap(NULL, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    flags("private read", mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    flags("shared rw", mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    flags("file shared rw", mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    flags("file shared read", mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, pg));
    flags("file private read exec", mmap(NULL, pg, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 2 * pg));
    char *l = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mlock(l, pg);
    flags("locked", l);
    char *d = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    madvise(d, pg, MADV_DONTDUMP);
    flags("dontdump noreserve", d);
    unlink(path);
    printf("done\n");
    return 0;
}
