/* Path strings as the kernel copies them (strncpy_from_user, at most
 * PATH_MAX bytes): a name whose NUL is the last byte before an unreadable
 * page, one running into that page, names spanning two readable pages,
 * PATH_MAX - 1 and PATH_MAX bytes with and without a NUL within reach;
 * and the dentry cache: a name that goes, comes back as another file,
 * a directory losing its search bit, /proc/PID of a reaped child. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#define PG 4096
#define PATH_MAX_ 4096

static void stat_open(const char *what, const char *path)
{
    char label[96];
    struct stat st;
    snprintf(label, sizeof label, "%s stat", what);
    res(label, stat(path, &st) == 0 ? (long)(st.st_size) : -1);
    snprintf(label, sizeof label, "%s open", what);
    int fd = open(path, O_RDONLY);
    fdres(label, fd);
    if (fd >= 0)
        close(fd);
}

/* "./././/pathread/f" of exactly len bytes (no NUL) at p; len > 12 */
static void dotted(char *p, size_t len)
{
    const char *tail = "pathread/f";
    size_t t = strlen(tail), i = 0;
    while (i + 2 + t <= len) {
        p[i++] = '.';
        p[i++] = '/';
    }
    if (i + t < len)
        p[i++] = '/';           /* an odd length: one more slash */
    memcpy(p + i, tail, t);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (chdir(argc > 1 ? argv[1] : ".") < 0)
        return 1;
    system("rm -rf pathread");
    mkdir("pathread", 0755);
    int fd = open("pathread/f", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    base = fd;
    write(fd, "12345", 5);
    close(fd);

    /* two readable pages, then a PROT_NONE one */
    char *m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(m + 2 * PG, PG, PROT_NONE);
    char *end = m + 2 * PG;

    const char *name = "pathread/f";
    size_t n = strlen(name);
    memcpy(end - n - 1, name, n + 1);
    stat_open("NUL last before bad page", end - n - 1);
    memcpy(end - n, name, n);
    stat_open("runs into bad page", end - n);
    stat_open("starts in bad page", end);
    stat_open("one byte before bad page", end - 1);
    end[-1] = 0;
    stat_open("empty at page end", end - 1);

    /* across the boundary of two readable pages */
    memcpy(m + PG - 4, name, n + 1);
    stat_open("spans two pages", m + PG - 4);
    dotted(m + 3000, 3001);
    m[3000 + 3001] = 0;
    stat_open("3001 bytes across pages", m + 3000);

    /* PATH_MAX - 1 bytes and a NUL: long enough, still a path */
    dotted(m, PATH_MAX_ - 1);
    m[PATH_MAX_ - 1] = 0;
    stat_open("PATH_MAX-1", m);
    /* PATH_MAX bytes and a NUL: too long */
    dotted(m, PATH_MAX_);
    m[PATH_MAX_] = 0;
    stat_open("PATH_MAX", m);
    /* PATH_MAX bytes ending at the bad page: too long, never a fault */
    dotted(end - PATH_MAX_, PATH_MAX_);
    stat_open("PATH_MAX then bad page", end - PATH_MAX_);
    /* PATH_MAX - 1 bytes ending at the bad page: the NUL would be there */
    dotted(end - PATH_MAX_ + 1, PATH_MAX_ - 1);
    stat_open("PATH_MAX-1 then bad page", end - PATH_MAX_ + 1);

    /* the dentry cache: what a name reaches changes under it */
    stat_open("before unlink", "pathread/f");
    unlink("pathread/f");
    stat_open("after unlink", "pathread/f");
    mkdir("pathread/f", 0700);
    struct stat st;
    res("now a directory", stat("pathread/f", &st) == 0 ? S_ISDIR(st.st_mode) : -1);
    rmdir("pathread/f");
    fd = open("pathread/f", O_WRONLY | O_CREAT, 0600);
    write(fd, "abc", 3);
    close(fd);
    stat_open("a file again", "pathread/f");
    rename("pathread/f", "pathread/g");
    stat_open("renamed away", "pathread/f");
    stat_open("renamed to", "pathread/g");
    symlink("g", "pathread/f");
    stat_open("a symlink now", "pathread/f");
    res("lstat sees the link", lstat("pathread/f", &st) == 0 ? S_ISLNK(st.st_mode) : -1);

    /* a directory's search bit, for a user without CAP_DAC_*: in a child */
    pid_t pid = fork();
    if (pid == 0) {
        chmod("pathread", 0755);
        if (setgid(65534) || setuid(65534)) {
            printf("setuid failed\n");
            _exit(1);
        }
        stat_open("searchable", "pathread/g");
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    chmod("pathread", 0644);
    pid = fork();
    if (pid == 0) {
        if (setgid(65534) || setuid(65534))
            _exit(1);
        stat_open("not searchable", "pathread/g");
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    chmod("pathread", 0755);

    /* /proc/PID: gone with the process */
    need_proc();
    pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/%d/status", pid);
    res("/proc/PID alive", stat(proc, &st));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    res("/proc/PID reaped", stat(proc, &st));
    snprintf(proc, sizeof proc, "/proc/%d", pid);
    res("/proc/PID dir reaped", stat(proc, &st));

    system("rm -rf pathread");
    printf("done\n");
    return 0;
}
