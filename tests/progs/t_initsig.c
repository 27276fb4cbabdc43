/* t_initsig: signals init does not handle, sent to it by tkill and tgkill,
 * must be dropped (Linux's SIGNAL_UNKILLABLE): init goes on.  Guest only
 * (test_fuzz.py): natively it would aim at the host's init. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
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
    if (getppid() != 1) {
        printf("run me as a child of init\n");
        return 1;
    }
    report("tkill SIGTERM", syscall(SYS_tkill, 1, SIGTERM));
    report("tkill SIGKILL", syscall(SYS_tkill, 1, SIGKILL));
    report("tgkill SIGSTOP", syscall(SYS_tgkill, 1, 1, SIGSTOP));
    usleep(100000);
    report("tgkill SIGKILL", syscall(SYS_tgkill, 1, 1, SIGKILL));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    report("rt_sigqueueinfo SIGTERM", syscall(SYS_rt_sigqueueinfo, 1, SIGTERM, &si));
    report("rt_tgsigqueueinfo SIGTERM", syscall(SYS_rt_tgsigqueueinfo, 1, 1, SIGTERM, &si));
    /* an orphan whose exit signal is SIGTERM goes to init, which must get
       SIGCHLD instead (Linux resets it when reparenting) */
    if (fork() == 0) {
        if (syscall(SYS_clone, SIGTERM, 0, 0, 0, 0) == 0) {
            usleep(200000);
            _exit(0);
        }
        _exit(0);
    }
    wait(NULL);
    usleep(400000);
    printf("done\n");
    return 0;
}
