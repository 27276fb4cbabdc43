/* /proc/PID/mem as a debugger uses it: reads and forced writes at the
 * address, short reads at an unmapped page, EIO at one, lseek's rules,
 * and the ptrace access check at open. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static char buf[64] = "the child's own words";

static const char *en(int e) { return e ? strerrorname_np(e) : "0"; }

int main(void)
{
    int go[2], back[2];
    if (pipe(go) < 0 || pipe(back) < 0)
        return 1;
    char *ro = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(ro, "read-only soon");
    mprotect(ro, 4096, PROT_READ);
    munmap(ro + 4096, 4096);          /* the page after it: nothing */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        (void)!write(back[1], "r", 1);
        (void)!read(go[0], &c, 1);
        char line[160];
        int len = snprintf(line, sizeof line, "child sees: buf '%s', ro '%s'\n", buf, ro);
        (void)!write(back[1], line, len);
        _exit(0);
    }
    char c, path[64], got[64];
    (void)!read(back[0], &c, 1);
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    int fd = open(path, O_RDWR);
    printf("open rw: %s\n", fd >= 0 ? "ok" : en(errno));
    ssize_t r = pread(fd, got, 22, (off_t)(unsigned long)buf);
    printf("pread buf: %zd '%.*s'\n", r, (int)(r > 0 ? r : 0), got);
    r = pwrite(fd, "changed", 7, (off_t)(unsigned long)buf);
    printf("pwrite buf: %zd\n", r);
    r = pwrite(fd, "FORCED", 6, (off_t)(unsigned long)ro);
    printf("pwrite read-only page: %zd\n", r);
    r = pread(fd, got, 16, (off_t)(unsigned long)(ro + 4096 - 8));
    printf("pread across into nothing: %zd\n", r);
    errno = 0;
    r = pread(fd, got, 8, (off_t)(unsigned long)(ro + 4096));
    printf("pread of nothing: %zd %s\n", r, en(errno));
    errno = 0;
    r = pwrite(fd, "x", 1, (off_t)(unsigned long)(ro + 4096));
    printf("pwrite to nothing: %zd %s\n", r, en(errno));
    off_t o = lseek(fd, (off_t)(unsigned long)buf, SEEK_SET);
    printf("lseek SEEK_SET: %d\n", o == (off_t)(unsigned long)buf);
    r = read(fd, got, 7);
    printf("read at pos: %zd '%.*s', then pos +7: %d\n", r, (int)(r > 0 ? r : 0), got,
           lseek(fd, 0, SEEK_CUR) == (off_t)(unsigned long)buf + 7);
    errno = 0;
    long end = (long)lseek(fd, 0, SEEK_END);
    printf("lseek SEEK_END: %ld %s\n", end, en(errno));
    (void)!write(go[1], "g", 1);
    char line[160];
    ssize_t len = read(back[0], line, sizeof line - 1);
    printf("%.*s", (int)(len > 0 ? len : 0), line);
    waitpid(pid, NULL, 0);
    errno = 0;
    r = pread(fd, got, 8, (off_t)(unsigned long)buf);
    printf("after the child's exit: %zd\n", r);
    close(fd);
    /* one's own memory */
    fd = open("/proc/self/mem", O_RDONLY);
    r = pread(fd, got, 8, (off_t)(unsigned long)buf);
    printf("self: %zd '%.*s'\n", r, (int)(r > 0 ? r : 0), got);
    close(fd);
    /* a process of another user: EACCES, without CAP_SYS_PTRACE */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        (void)!setuid(65534);
        char c2;
        (void)!read(go[0], &c2, 1);
        _exit(0);
    }
    usleep(100000);
    fflush(stdout);
    if (fork() == 0) {
        (void)!setuid(65533);
        snprintf(path, sizeof path, "/proc/%d/mem", pid);
        errno = 0;
        int f = open(path, O_RDONLY);
        printf("another user's, unprivileged: %s\n", f >= 0 ? "opened" : en(errno));
        fflush(stdout);
        _exit(0);
    }
    wait(NULL);
    (void)!write(go[1], "g", 1);
    waitpid(pid, NULL, 0);
    printf("done\n");
    return 0;
}
