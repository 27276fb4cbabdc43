/* t_initsess: the process group and session init starts in.  Linux's init
 * begins in those of the kernel's own threads, numbered 0, and leads
 * neither: its setsid() succeeds.  Run as init (the guest's pid 1), or
 * natively as the first process of a new pid namespace (`unshare -pf`),
 * whose group and session lie outside it and so read 0 as well. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "results.h"

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    res("getpid", getpid());
    res("getpgrp", getpgrp());
    res("getsid", getsid(0));
    res("getpgid(1)", getpgid(1));
    errno = 0;
    int prio = getpriority(PRIO_PGRP, 0);
    res("getpriority(PRIO_PGRP, 0) errno", errno ? -1 : 0);
    (void)prio;
    res("kill(0, 0)", kill(0, 0));
    pid_t c = fork();
    if (c == 0) {
        res(" child getpgrp", getpgrp());
        res(" child getsid", getsid(0));
        res(" child setpgid(0, 0)", setpgid(0, 0));
        res(" child leads its group", getpgrp() == getpid());
        _exit(0);
    }
    waitpid(c, NULL, 0);
    res("setsid", setsid());
    res("getpgrp", getpgrp());
    res("getsid", getsid(0));
    res("setsid again", setsid());
    res("setpgid(0, 0) as session leader", setpgid(0, 0));
    return 0;
}
