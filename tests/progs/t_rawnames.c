/* Names that are not UTF-8 come back from /proc byte for byte, as Linux
   keeps them: a mapped file's in maps and smaps, a program's in
   /proc/PID/exe, a unix socket's in /proc/net/unix.  (The kernel had
   them as text and wrote U+FFFD for such bytes; psutil's unicode tests.)
   Deterministic output: each name printed with its bytes escaped. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, const char *line, const char *mark)
{
    const char *p = strstr(line, mark);
    printf("%s: ", what);
    if (!p) {
        printf("missing\n");
        return;
    }
    for (; *p && *p != '\n' && *p != ' '; p++)
        printf((unsigned char)*p < 0x80 && *p > 0x20 ? "%c" : "\\x%02x", (unsigned char)*p);
    printf("\n");
}

static void grep(const char *what, const char *path, const char *mark)
{
    char line[4096];
    FILE *f = fopen(path, "r");
    int seen = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, mark) && !seen++)
            show(what, line, mark);
    if (f)
        fclose(f);
    if (!seen)
        printf("%s: missing\n", what);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char name[256], mark[] = "rawname-\xc0\x80\xff";
    if (argc > 2) {     /* the copy of itself, exec'd: its own exe link */
        char link[256] = "";
        ssize_t n = readlink("/proc/self/exe", link, sizeof link - 1);
        if (n > 0)
            link[n] = 0;
        show("exe", link, mark);
        return 0;
    }
    snprintf(name, sizeof name, "%s/%s", dir, mark);
    int fd = open(name, O_CREAT | O_RDWR | O_TRUNC, 0755);
    if (fd < 0 || ftruncate(fd, 4096))
        return 1;
    void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    grep("maps", "/proc/self/maps", mark);
    grep("smaps", "/proc/self/smaps", mark);
    munmap(m, 4096);
    close(fd);
    /* a copy of this program under that name, run */
    int in = open("/proc/self/exe", O_RDONLY), out = open(name, O_WRONLY | O_TRUNC);
    char buf[65536];
    ssize_t k;
    while ((k = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, k) != k)
            return 1;
    close(in);
    close(out);
    pid_t c = fork();
    if (c == 0) {
        execl(name, name, dir, "exe", (char *)NULL);
        _exit(1);
    }
    waitpid(c, NULL, 0);
    unlink(name);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s/%s", dir, mark);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1))
        return 1;
    grep("unix", "/proc/net/unix", mark);
    unlink(a.sun_path);
    printf("done\n");
    return 0;
}
