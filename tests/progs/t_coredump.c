/* Core dumps and /proc/self/coredump_filter.

   t_coredump filter: coredump_filter's parsing (LTP-style: hex, octal,
   decimal, bits past the filter ignored, invalid input EINVAL, past 32 bits
   ERANGE) and its inheritance across fork and exec.  Deterministic: run
   natively and in the guest.

   t_coredump dump DIR: in DIR, children that abort() with patterns in
   anonymous private and shared memory, a private and a shared file mapping,
   a MADV_DONTDUMP range and one marked again with MADV_DODUMP; the parent
   checks each core file (an x86-64 ELF core) for each pattern under two
   filters, then RLIMIT_CORE's cut and floor, core_pattern's specifiers, a
   core over an old file and a multithreaded dump.  Needs core_pattern
   "core" and root (it sets core_pattern): guest only.  The first core is
   kept as DIR/core.keep for the test to read.

   The patterns are made in the mappings at run time from lowercase
   literals, and the parent's copies of them (to scan with) are wiped
   before the next child forks, so a core holds one only where that
   mapping was dumped. */
#define _GNU_SOURCE
#include <ctype.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FILTER "/proc/self/coredump_filter"
#define PAGE 4096

static const char *names[] = {"anon-private", "anon-shared", "file-private", "file-shared",
                              "dontdump", "dodump"};
static const char *lower[] = {"anonpriv-pattern", "anonshar-pattern", "filepriv-pattern",
                              "fileshar-pattern", "dontdump-pattern", "dodumped-pattern"};
#define NPAT 6
static char *maps[NPAT];
static char needle[32];

static void upper_into(char *dst, const char *src)
{
    for (; *src; src++)
        *dst++ = toupper((unsigned char)*src);
}

static const char *get_filter(void)
{
    static char buf[64];
    int fd = open(FILTER, O_RDONLY);
    if (fd < 0)
        return strerror(errno);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n - 1 : 0] = 0;
    return buf;
}

static const char *put_filter(const char *v)
{
    int fd = open(FILTER, O_WRONLY);
    if (fd < 0)
        return strerror(errno);
    ssize_t n = write(fd, v, strlen(v));
    int e = errno;
    close(fd);
    if (n < 0)
        return e == EINVAL ? "EINVAL" : e == ERANGE ? "ERANGE" : strerror(e);
    return get_filter();
}

static void filter_checks(const char *self)
{
    printf("default %s\n", get_filter());
    const char *in[] = {"0x3f", "017", "51\n", "0x1ff3", "+0x7", "0xffffffff", "abc", "-1", "0x",
                        "", "12 ", "4294967296", "0x100000000", "0o17", "33"};
    for (unsigned i = 0; i < sizeof in / sizeof *in; i++)
        printf("'%s' -> %s\n", in[i], put_filter(in[i]));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        printf("forked child %s\n", get_filter());
        fflush(stdout);
        execl(self, self, "show", (char *)NULL);
        _exit(1);
    }
    waitpid(c, NULL, 0);
    put_filter("0x33");
}

/* -- dumps ---------------------------------------------------------------- */

static void make_maps(const char *dir)
{
    char path[256];
    maps[0] = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    maps[1] = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    for (int i = 2; i < 4; i++) {
        snprintf(path, sizeof path, "%s/mapped%d", dir, i);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        ftruncate(fd, PAGE);
        char *w = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        upper_into(w, lower[i]);
        munmap(w, PAGE);
        maps[i] = mmap(NULL, PAGE, PROT_READ | (i == 3 ? PROT_WRITE : 0), i == 2 ? MAP_PRIVATE : MAP_SHARED,
                       fd, 0);
        close(fd);
    }
    for (int i = 4; i < 6; i++)
        maps[i] = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < NPAT; i++)
        if (i != 2 && i != 3)
            upper_into(maps[i], lower[i]);
    printf("MADV_DONTDUMP %d, MADV_DODUMP %d\n", madvise(maps[4], 2 * PAGE, MADV_DONTDUMP),
           madvise(maps[5], 2 * PAGE, MADV_DONTDUMP) || madvise(maps[5], 2 * PAGE, MADV_DODUMP));
}

static void *spin(void *arg)
{
    for (volatile int go = 1; go;)
        (void)arg;
    return NULL;
}

/* a child that aborts (with a second thread, spinning in guest code);
   returns its wait status */
static pid_t last_child;

static int crash(int threads)
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        if (threads) {
            pthread_t th;
            pthread_create(&th, NULL, spin, NULL);
            usleep(20000);
        }
        abort();
    }
    int st;
    waitpid(c, &st, 0);
    last_child = c;
    return st;
}

static void status(int st)
{
    printf("signal %d core %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0, WIFSIGNALED(st) && WCOREDUMP(st));
}

static int count_in(const char *p, size_t n, const char *what, size_t len)
{
    int k = 0;
    for (size_t i = 0; i + len <= n; i++)
        if (!memcmp(p + i, what, len))
            k++;
    return k;
}

/* what the core file says: an ELF core, and which patterns it holds */
static void check_core(const char *name)
{
    int fd = open(name, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
        printf("; no core file (%s)\n", strerror(errno));
        return;
    }
    printf("; mode %o", sb.st_mode & 07777);
    if (sb.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        printf(", %s\n", sb.st_size ? "short" : "empty");
        close(fd);
        return;
    }
    char *p = mmap(NULL, sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)p;
    printf(", %s", !memcmp(eh->e_ident, ELFMAG, SELFMAG) && eh->e_ident[EI_CLASS] == ELFCLASS64
           && eh->e_type == ET_CORE && eh->e_machine == EM_X86_64 ? "x86-64 ELF core" : "not a core");
    for (int i = 0; i < NPAT; i++) {
        upper_into(needle, lower[i]);
        printf(" %s %s", names[i], count_in(p, sb.st_size, needle, strlen(lower[i])) ? "yes" : "no");
        explicit_bzero(needle, sizeof needle);
    }
    printf(" elf-headers %s\n", count_in(p, sb.st_size, ELFMAG, SELFMAG) > 1 ? "yes" : "no");
    munmap(p, sb.st_size);
}

static void set_core_limit(rlim_t n)
{
    struct rlimit rl = {n, RLIM_INFINITY};
    setrlimit(RLIMIT_CORE, &rl);
}

static void put(const char *path, const char *v)
{
    int fd = open(path, O_WRONLY);
    if (fd >= 0) {
        write(fd, v, strlen(v));
        close(fd);
    }
}

static void dumps(const char *dir)
{
    struct stat sb;
    if (chdir(dir))
        return perror(dir);
    make_maps(dir);
    set_core_limit(RLIM_INFINITY);

    printf("filter %s: ", get_filter());
    status(crash(0));
    check_core("core");
    rename("core", "core.keep");

    put_filter("0x3c");
    printf("filter %s: ", get_filter());
    status(crash(0));
    check_core("core");
    put_filter("0x33");

    set_core_limit(3 * PAGE);
    printf("RLIMIT_CORE 3 pages: ");
    status(crash(0));
    stat("core", &sb);
    printf("; size at most the limit %d", sb.st_size <= 3 * PAGE);
    check_core("core");
    unlink("core");
    set_core_limit(PAGE - 1);
    printf("RLIMIT_CORE 4095: ");
    status(crash(0));
    printf("; core file %s\n", access("core", F_OK) ? "none" : "made");
    set_core_limit(RLIM_INFINITY);

    symlink("elsewhere", "core");
    printf("over a symlink: ");
    status(crash(0));
    printf("; symlink target %s; ", access("elsewhere", F_OK) ? "not made" : "made");
    lstat("core", &sb);
    printf("core is %s", S_ISREG(sb.st_mode) ? "a regular file" : "not a regular file");
    check_core("core");

    umask(0277);
    printf("umask 0277: ");
    status(crash(0));
    stat("core", &sb);
    printf("; size %lld\n", (long long)sb.st_size);
    umask(022);
    unlink("core");

    put("/proc/sys/kernel/core_pattern", "dump-%e-%s-%%-%c-%z.x");
    printf("core_pattern dump-%%e-%%s-%%%%-%%c-%%z.x: ");
    status(crash(0));
    printf("; %s", access("dump-t_coredump-6-%-18446744073709551615-.x", F_OK) ? "not found" : "found");
    check_core("dump-t_coredump-6-%-18446744073709551615-.x");
    put("/proc/sys/kernel/core_pattern", "nodir/core");
    printf("core_pattern nodir/core: ");
    status(crash(0));
    printf("\n");
    /* kernel.core_uses_pid: ".PID" after a name whose pattern has no %p */
    put("/proc/sys/kernel/core_pattern", "core");
    put("/proc/sys/kernel/core_uses_pid", "1");
    printf("core_uses_pid 1: ");
    status(crash(0));
    char named[64];
    snprintf(named, sizeof named, "core.%d", (int)last_child);
    printf("; core.PID %s, core %s\n", access(named, F_OK) ? "not found" : "found",
           access("core", F_OK) ? "not found" : "found");
    unlink(named);
    put("/proc/sys/kernel/core_pattern", "core-thr.%p");

    printf("two threads: ");
    int st = crash(1);
    status(st);
    printf("\n");
    put("/proc/sys/kernel/core_uses_pid", "0");
    put("/proc/sys/kernel/core_pattern", "core");
    system("mv core-thr.* core.threads 2>/dev/null");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "show")) {
        printf("after exec %s\n", get_filter());
        return 0;
    }
    if (argc > 2 && !strcmp(argv[1], "dump")) {
        dumps(argv[2]);
        return 0;
    }
    filter_checks("/proc/self/exe");
    return 0;
}
