/* prctl(PR_SET_MM): a privileged process moves its argv (as systemd
   names its services' processes) and /proc/self/cmdline follows; the
   checks (CAP_SYS_RESOURCE, the address space, the order of the pairs,
   extra arguments), the heap's start past its end, PR_SET_MM_MAP_SIZE, and
   what is not done (the exe file). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

static void set(const char *what, unsigned long opt, unsigned long addr, unsigned long a4)
{
    int r = prctl(PR_SET_MM, opt, addr, a4, 0);
    printf("%s: %s\n", what, r == 0 ? "ok" : en(errno));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char *nn = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(nn, "renamed-process");
    set("arg_start", PR_SET_MM_ARG_START, (unsigned long)nn, 0);
    set("arg_end", PR_SET_MM_ARG_END, (unsigned long)nn + 16, 0);
    char buf[256];
    int fd = open("/proc/self/cmdline", O_RDONLY);
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    printf("cmdline: %.*s (%zd bytes)\n", (int)n, buf, n);
    set("below mmap_min_addr", PR_SET_MM_ARG_START, 5, 0);
    set("past the address space", PR_SET_MM_ARG_START, 1UL << 50, 0);
    set("a fourth argument", PR_SET_MM_ARG_START, (unsigned long)nn, 1);
    set("end before start", PR_SET_MM_ARG_END, (unsigned long)nn - 4096, 0);
    set("start_brk past brk", PR_SET_MM_START_BRK, (unsigned long)nn, 0);
    unsigned int size = 0;
    set("map_size", PR_SET_MM_MAP_SIZE, (unsigned long)&size, 0);
    printf("struct prctl_mm_map: %u bytes\n", size);
    set("exe_file", PR_SET_MM_EXE_FILE, 0, 0);
    set("option 99", 99, (unsigned long)nn, 0);
    pid_t pid = fork();
    if (pid == 0) {
        fd = open("/proc/self/cmdline", O_RDONLY);
        n = read(fd, buf, sizeof(buf));
        printf("child's cmdline: %.*s\n", (int)n, buf);
        if (setuid(65534) != 0)
            printf("setuid failed\n");
        set("as nobody", PR_SET_MM_ARG_START, (unsigned long)nn, 0);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    printf("done\n");
    return 0;
}
