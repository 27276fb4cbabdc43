/* t_initsess: the process group and session init starts in.  Linux's init
 * begins in those of the kernel's own threads, numbered 0, and leads
 * neither: its setsid() succeeds.  Run as init (the guest's pid 1), or
 * natively as the first process of a new pid namespace (`unshare -pf`),
 * whose group and session lie outside it and so read 0 as well. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *what, long r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
    fflush(stdout);
}

int main(void)
{
    report("getpid", getpid());
    report("getpgrp", getpgrp());
    report("getsid", getsid(0));
    report("getpgid(1)", getpgid(1));
    errno = 0;
    int prio = getpriority(PRIO_PGRP, 0);
    report("getpriority(PRIO_PGRP, 0) errno", errno ? -1 : 0);
    (void)prio;
    report("kill(0, 0)", kill(0, 0));
    pid_t c = fork();
    if (c == 0) {
        report(" child getpgrp", getpgrp());
        report(" child getsid", getsid(0));
        report(" child setpgid(0, 0)", setpgid(0, 0));
        report(" child leads its group", getpgrp() == getpid());
        _exit(0);
    }
    waitpid(c, NULL, 0);
    report("setsid", setsid());
    report("getpgrp", getpgrp());
    report("getsid", getsid(0));
    report("setsid again", setsid());
    report("setpgid(0, 0) as session leader", setpgid(0, 0));
    return 0;
}
