/* select over many fds; POSIX shared memory (shm_open in /dev/shm) shared
   by fork.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int p[40][2];
    int maxfd = 0;
    for (int i = 0; i < 40; i++) {
        pipe(p[i]);
        if (p[i][0] > maxfd)
            maxfd = p[i][0];
    }
    fd_set rs;
    FD_ZERO(&rs);
    for (int i = 0; i < 40; i++)
        FD_SET(p[i][0], &rs);
    struct timeval tv = {0, 0};
    printf("nothing ready: %d\n", select(maxfd + 1, &rs, NULL, NULL, &tv));
    write(p[3][1], "a", 1);
    write(p[17][1], "b", 1);
    write(p[39][1], "c", 1);
    FD_ZERO(&rs);
    for (int i = 0; i < 40; i++)
        FD_SET(p[i][0], &rs);
    int n = select(maxfd + 1, &rs, NULL, NULL, NULL);
    printf("ready: %d ->", n);
    for (int i = 0; i < 40; i++)
        if (FD_ISSET(p[i][0], &rs))
            printf(" %d", i);
    printf("\n");
    fd_set ws;
    FD_ZERO(&ws);
    FD_SET(p[5][1], &ws);
    printf("write end writable: %d\n", select(maxfd + 1, NULL, &ws, NULL, &tv));
    struct timespec ts = {0, 30000000};
    sigset_t mask;
    sigemptyset(&mask);
    FD_ZERO(&rs);
    FD_SET(p[0][0], &rs);
    printf("pselect timeout: %d\n", pselect(maxfd + 1, &rs, NULL, NULL, &ts, &mask));

    shm_unlink("/umlpy_shm");
    int fd = shm_open("/umlpy_shm", O_CREAT | O_EXCL | O_RDWR, 0600);
    printf("shm_open: %d\n", fd >= 0);
    ftruncate(fd, 4096);
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    pid_t c = fork();
    if (c == 0) {
        int cfd = shm_open("/umlpy_shm", O_RDWR, 0);
        char *cm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        strcpy(cm + 100, "child wrote this");
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("parent sees: %s\n", m + 100);
    int u = shm_unlink("/umlpy_shm");
    int again = shm_open("/umlpy_shm", O_RDWR, 0);
    printf("shm_unlink: %d, open after: %d %s\n", u, again, strerrorname_np(errno));
    printf("done\n");
    return 0;
}
