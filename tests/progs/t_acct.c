/* BSD process accounting (acct(2), version 3 records): its errors (as root
   and without CAP_SYS_PACCT), then three children die with accounting on
   (one that only forked and exits 3, one that exec'd and exits 5, one
   killed by SIGTERM) and their records are read back: command, version,
   flags (ASU left out: Linux sets it whenever a capability check passed),
   exit code, ids, pid and parent, elapsed time and start.  Runs natively
   in a pid namespace of its own, whose accounting is its own. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/acct.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "results.h"

static long acct_(const char *path)
{
    return syscall(SYS_acct, path);
}

static void said(const char *what, long r)
{
    printf("%s: %s\n", what, r >= 0 ? "ok" : en(errno));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && !strcmp(argv[2], "exit5"))
        return 5;
    if (argc < 2)
        return 1;
    char file[4200], dir[4200], longname[5000];
    snprintf(file, sizeof(file), "%s/acct_file", argv[1]);
    snprintf(dir, sizeof(dir), "%s/acct_file/", argv[1]);
    said("acct(NULL)", acct_(NULL));
    said("acct(.)", acct_("."));
    said("acct(/dev/null)", acct_("/dev/null"));
    said("acct(missing)", acct_("/does/not/exist"));
    close(open(file, O_CREAT | O_WRONLY | O_TRUNC, 0644));
    said("acct(file/)", acct_(dir));
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    said("acct(long name)", acct_(longname));
    char *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    said("acct(bad address)", acct_(none));
    pid_t pid = fork();
    if (pid == 0) {
        if (setuid(65534) != 0)
            printf("setuid failed\n");
        said("acct as nobody", acct_(file));
        said("acct(NULL) as nobody", acct_(NULL));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);

    said("acct(file)", acct_(file));
    time_t start = time(NULL);
    pid_t kids[3];
    kids[0] = fork();
    if (kids[0] == 0)
        _exit(3);
    waitpid(kids[0], NULL, 0);
    kids[1] = fork();
    if (kids[1] == 0) {
        execl(argv[0], argv[0], argv[1], "exit5", NULL);
        _exit(99);
    }
    waitpid(kids[1], NULL, 0);
    kids[2] = fork();
    if (kids[2] == 0) {
        raise(SIGTERM);
        _exit(98);
    }
    waitpid(kids[2], NULL, 0);
    said("acct(NULL) after", acct_(NULL));

    int fd = open(file, O_RDONLY);
    struct acct_v3 r;
    int n = 0;
    while (read(fd, &r, sizeof(r)) == sizeof(r)) {
        int which = -1;
        for (int i = 0; i < 3; i++)
            if ((pid_t)r.ac_pid == kids[i])
                which = i;
        if (which < 0)
            continue;       /* another process of the namespace */
        n++;
        double etime = r.ac_etime;
        printf("child %d: comm %s version %d flags %#x exitcode %#x uid %u gid %u ppid is us %d "
               "etime under 2 s %d btime near %d\n",
               which, r.ac_comm, r.ac_version, r.ac_flag & ~ASU, r.ac_exitcode, r.ac_uid, r.ac_gid,
               (pid_t)r.ac_ppid == getpid(), etime >= 0 && etime < 200,
               (long)r.ac_btime >= (long)start - 2 && (long)r.ac_btime <= (long)time(NULL) + 1);
    }
    printf("records of ours: %d, record size %zu\n", n, sizeof(r));
    close(fd);

    /* the file at its filesystem's largest size less 10 bytes (the largest
       ftruncate takes): the next record is cut there, the one after lost */
    fd = open(file, O_WRONLY);
    off_t lo = 0, hi = 0x7fffffffffffffffLL;
    while (lo < hi) {
        off_t mid = lo + (hi - lo) / 2 + 1;
        if (ftruncate(fd, mid) == 0)
            lo = mid;
        else
            hi = mid - 1;
    }
    said("ftruncate near the top", ftruncate(fd, lo - 10));
    close(fd);
    said("acct(file at the top)", acct_(file));
    for (int i = 0; i < 2; i++) {
        pid_t k = fork();
        if (k == 0)
            _exit(0);
        waitpid(k, NULL, 0);
    }
    said("acct(NULL) at the top", acct_(NULL));
    struct stat st;
    said("stat", stat(file, &st));
    printf("grew by %lld\n", (long long)(st.st_size - (lo - 10)));
    unlink(file);
    printf("done\n");
    return 0;
}
