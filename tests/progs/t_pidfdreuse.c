/* A pidfd names its process, not its number: once the process is reaped,
   a new child given the same pid (ns_last_pid) is not what waitid(P_PIDFD)
   waits for (ECHILD), nor what pidfd_send_signal reaches (ESRCH).  Runs
   as root in its pid namespace's view: natively in one of its own (so the
   number is surely reused), in the guest in the initial one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t gone = fork();
    if (gone == 0)
        _exit(3);
    int pfd = (int)syscall(SYS_pidfd_open, gone, 0);
    int st = 0;
    waitpid(gone, &st, 0);
    char last[16];
    int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
    if (fd < 0 || write(fd, last, snprintf(last, sizeof last, "%d", gone - 1)) < 0) {
        printf("ns_last_pid: %s\n", strerrorname_np(errno));
        return 1;
    }
    close(fd);
    pid_t again = fork();
    if (again == 0) {
        pause();
        _exit(4);
    }
    printf("pid reused %d\n", again == gone);
    printf("pidfd_send_signal: %s\n",
           syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0) < 0 ? strerrorname_np(errno) : "ok");
    siginfo_t si;
    long w = syscall(SYS_waitid, P_PIDFD, pfd, &si, WEXITED | WNOHANG, NULL);
    printf("waitid(P_PIDFD, WNOHANG): %s\n", w < 0 ? strerrorname_np(errno) : "ok");
    kill(again, SIGKILL);
    waitpid(again, &st, 0);
    printf("the new child killed by %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    printf("done\n");
    return 0;
}
