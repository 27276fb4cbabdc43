/* What CONFIG_CHECKPOINT_RESTORE gives a restorer (root; natively too, in
   an IPC namespace of its own): /proc/sys/kernel/{msg,sem,shm}_next_id,
   PR_SET_MM_MAP and PR_SET_MM_MAP_SIZE (not the single fields, which need
   CAP_SYS_RESOURCE: this host's root lacks it), /proc/PID/map_files.
   Deterministic output; last line done. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/prctl.h>
#include <elf.h>

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "0"; }

static long rd(const char *path)
{
    char b[64] = "";
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1000;
    read(fd, b, sizeof b - 1);
    close(fd);
    return atol(b);
}

static const char *wr(const char *path, const char *v)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return strerrorname_np(errno);
    long r = write(fd, v, strlen(v));
    close(fd);
    return en(r);
}

static int make(int kind)
{
    if (kind == 0)
        return msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (kind == 1)
        return semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    return shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
}

static void next_ids(void)
{
    const char *names[] = {"msg", "sem", "shm"};
    for (int k = 0; k < 3; k++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/sys/kernel/%s_next_id", names[k]);
        struct stat st;
        stat(path, &st);
        printf("%s_next_id: mode %o, value %ld, write -5 %s", names[k], st.st_mode & 0777, rd(path),
               wr(path, "-5"));
        printf(", write 1234567 %s", wr(path, "1234567"));
        int a = make(k);
        printf(", id is it %d, after %ld", a == 1234567, rd(path));
        wr(path, "1234567");
        int b = make(k);
        printf("; again: another %d, index after %d, sequence kept %d", b != a,
               (b % 32768) > (a % 32768), b / 32768 == a / 32768);
        wr(path, "5");
        int c = make(k);
        printf("; 5: %d\n", c == 5);
    }
}

struct mm_map {
    unsigned long start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
    unsigned long arg_start, arg_end, env_start, env_end;
    unsigned long *auxv;
    unsigned int auxv_size, exe_fd;
};

static void stat_fields(unsigned long *v)
{
    /* /proc/self/stat: startcode 26, endcode 27, startstack 28, start_data 45,
       end_data 46, start_brk 47, arg_start 48, arg_end 49, env_start 50, env_end 51 */
    char b[4096];
    int fd = open("/proc/self/stat", O_RDONLY);
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    b[n > 0 ? n : 0] = 0;
    char *p = strrchr(b, ')') + 2;
    int field = 3;
    for (char *t = strtok(p, " "); t; t = strtok(NULL, " "), field++)
        v[field] = strtoul(t, NULL, 10);
}

static void mm_map(void)
{
    unsigned int size = 0;
    const char *r = en(prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0));
    printf("MAP_SIZE: %s %u\n", r, size);
    unsigned long v[64] = {0};
    stat_fields(v);
    struct mm_map m = {v[26], v[27], v[45], v[46], v[47], (unsigned long)sbrk(0), v[28],
                       v[48], v[49], v[50], v[51], NULL, 0, (unsigned)-1};
    printf("MAP as it is: %s\n", en(prctl(PR_SET_MM, PR_SET_MM_MAP, &m, sizeof m, 0)));
    printf("MAP short: %s\n", en(prctl(PR_SET_MM, PR_SET_MM_MAP, &m, sizeof m - 8, 0)));
    struct mm_map bad = m;
    bad.end_code = bad.start_code;
    printf("MAP code empty: %s\n", en(prctl(PR_SET_MM, PR_SET_MM_MAP, &bad, sizeof bad, 0)));
    bad = m;
    bad.brk = bad.start_brk - 4096;
    printf("MAP brk before start: %s\n", en(prctl(PR_SET_MM, PR_SET_MM_MAP, &bad, sizeof bad, 0)));
    /* anonymous memory: Linux reads no command line from a file's pages */
    char *cmdline = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(cmdline, "renamed\0--by-map", 17);
    struct mm_map new = m;
    new.arg_start = (unsigned long)cmdline;
    new.arg_end = (unsigned long)cmdline + 17;
    printf("MAP new args: %s", en(prctl(PR_SET_MM, PR_SET_MM_MAP, &new, sizeof new, 0)));
    char b[64] = "";
    int fd = open("/proc/self/cmdline", O_RDONLY);
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    printf(", cmdline %zd bytes, %s %s\n", n, b, n > 8 ? b + 8 : "");
    unsigned long aux[] = {AT_PAGESZ, 4096, 99, 7, AT_NULL, 0};
    struct mm_map withaux = new;
    withaux.auxv = aux;
    withaux.auxv_size = sizeof aux;
    printf("MAP with auxv: %s", en(prctl(PR_SET_MM, PR_SET_MM_MAP, &withaux, sizeof withaux, 0)));
    unsigned long got[16] = {0};
    fd = open("/proc/self/auxv", O_RDONLY);
    n = read(fd, got, sizeof got);
    close(fd);
    printf(", auxv %zd bytes, %s\n", n, n == sizeof aux && !memcmp(got, aux, sizeof aux) ? "as given" : "other");
}

static void map_files(void)
{
    char exe[4096] = "";
    readlink("/proc/self/exe", exe, sizeof exe - 1);
    DIR *d = opendir("/proc/self/map_files");
    if (!d) {
        printf("map_files: %s\n", strerrorname_np(errno));
        return;
    }
    int entries = 0, exe_ones = 0, opened = 0, named = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        entries++;
        unsigned long lo, hi;
        named += sscanf(e->d_name, "%lx-%lx", &lo, &hi) == 2 && lo < hi;
        char p[512], t[4096] = "";
        snprintf(p, sizeof p, "/proc/self/map_files/%s", e->d_name);
        readlink(p, t, sizeof t - 1);
        if (!strcmp(t, exe)) {
            exe_ones++;
            int fd = open(p, O_RDONLY);
            struct stat a, b;
            if (fd >= 0 && !fstat(fd, &a) && !stat(exe, &b) && a.st_ino == b.st_ino)
                opened++;
            if (fd >= 0)
                close(fd);
        }
    }
    closedir(d);
    printf("map_files: entries %d, named by range %d, the program's %d, opened as it %d\n",
           entries > 0, named == entries, exe_ones > 0, opened == exe_ones);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (unshare(CLONE_NEWIPC))
        printf("unshare: %s\n", strerrorname_np(errno));
    next_ids();
    map_files();
    mm_map();
    printf("done\n");
    return 0;
}
