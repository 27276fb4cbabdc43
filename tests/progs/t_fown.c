/* File owners and I/O signals: F_SETOWN/F_GETOWN(_EX), F_SETSIG/F_GETSIG,
 * O_ASYNC (F_SETFL, FIOASYNC) on pipes and inotify, and dnotify
 * (F_NOTIFY).  The signals are blocked and taken with sigtimedwait, so the
 * order and siginfo (si_code, si_band, si_fd) of each are printed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "results.h"

static sigset_t all;
static char dir[512];

static char *at(const char *name)
{
    return path_in(dir, name);
}

static const char *signame(int sig)
{
    static char buf[16];
    if (sig == SIGIO)
        return "SIGIO";
    if (sig == SIGUSR1)
        return "SIGUSR1";
    if (sig == SIGPIPE)
        return "SIGPIPE";
    snprintf(buf, sizeof buf, "SIGRTMIN+%d", sig - SIGRTMIN);
    return buf;
}

/* every pending signal, in the order sigtimedwait gives them */
static void signals(const char *what)
{
    struct timespec zero = {0, 0};
    siginfo_t si;
    int n = 0;
    printf("%s:", what);
    while (sigtimedwait(&all, &si, &zero) > 0) {
        n++;
        printf(" %s code=%d", signame(si.si_signo), si.si_code);
        if (si.si_code > 0 && si.si_code < 0x80)
            printf(" band=%lx fd=base+%d", (long)si.si_band, si.si_fd - base);
    }
    printf("%s\n", n ? "" : " none");
}

static long fcntl_raw(int fd, int cmd, long arg)
{
    return syscall(SYS_fcntl, fd, cmd, arg);
}

static void owner(const char *what, int fd)
{
    struct f_owner_ex ex = {-1, -1};
    errno = 0;
    long own = fcntl_raw(fd, F_GETOWN, 0);
    if (own == -1 && errno == getpgrp())
        own = -getpgrp();       /* a group below 4096 looks like an error to syscall() */
    long r = fcntl_raw(fd, F_GETOWN_EX, (long)&ex);
    printf("%s: getown %s, ex %ld type %d pid %s, sig %ld\n", what,
           own == 0 ? "0" : own == getpid() ? "self" : own == -getpgrp() ? "-pgrp" : "?", r, ex.type,
           ex.pid == 0 ? "0" : ex.type == F_OWNER_PGRP ? (ex.pid == getpgrp() ? "pgrp" : "?")
                                 : ex.pid == getpid() ? "self" : "?",
           fcntl_raw(fd, F_GETSIG, 0));
}

static void pipes(void)
{
    int p[2];
    pipe(p);
    base = p[0];
    owner("new pipe", p[0]);
    res("setown self", fcntl_raw(p[0], F_SETOWN, getpid()));
    owner("owned", p[0]);
    res("setown -pgrp", fcntl_raw(p[0], F_SETOWN, -getpgrp()));
    owner("group", p[0]);
    struct f_owner_ex ex = {F_OWNER_TID, (pid_t)syscall(SYS_gettid)};
    res("setown_ex tid", fcntl_raw(p[0], F_SETOWN_EX, (long)&ex));
    owner("thread", p[0]);
    ex.type = 3;
    res("setown_ex type 3", fcntl_raw(p[0], F_SETOWN_EX, (long)&ex));
    ex.type = F_OWNER_PID;
    ex.pid = 0x3ffffff0;
    res("setown_ex missing pid", fcntl_raw(p[0], F_SETOWN_EX, (long)&ex));
    res("setown missing pid", fcntl_raw(p[0], F_SETOWN, 0x3ffffff0));
    res("setown INT_MIN", fcntl_raw(p[0], F_SETOWN, (long)(int)0x80000000));
    res("setsig 65", fcntl_raw(p[0], F_SETSIG, 65));
    res("setsig -1", fcntl_raw(p[0], F_SETSIG, -1));
    res("setsig 64", fcntl_raw(p[0], F_SETSIG, 64));
    res("setsig 0", fcntl_raw(p[0], F_SETSIG, 0));
    res("setown 0", fcntl_raw(p[0], F_SETOWN, 0));
    owner("cleared", p[0]);

    printf("-- O_ASYNC on a pipe\n");
    write(p[1], "a", 1);
    signals("write, no O_ASYNC");
    fcntl(p[0], F_SETOWN, getpid());
    res("setfl O_ASYNC", fcntl(p[0], F_SETFL, O_ASYNC));
    printf("getfl has O_ASYNC: %d\n", !!(fcntl(p[0], F_GETFL) & O_ASYNC));
    write(p[1], "b", 1);
    signals("write");
    char c[4];
    read(p[0], c, 2);
    signals("read (the reader is async)");
    fcntl(p[0], F_SETSIG, SIGRTMIN + 1);
    write(p[1], "c", 1);
    write(p[1], "d", 1);
    signals("two writes, F_SETSIG");
    int on = 0;
    res("FIOASYNC off", ioctl(p[0], FIOASYNC, &on));
    write(p[1], "e", 1);
    signals("write, async off");
    int wdup = dup(p[1]);
    fcntl(wdup, F_SETOWN, getpid());
    fcntl(wdup, F_SETSIG, SIGUSR1);
    on = 1;
    res("FIOASYNC on the writer's dup", ioctl(wdup, FIOASYNC, &on));
    read(p[0], c, 1);
    signals("read");
    ioctl(p[0], FIOASYNC, &on);
    close(p[0]);
    signals("close of the reader");
    close(p[1]);
    signals("close of one writer");
    res("write to no reader", write(wdup, "x", 1));
    signals("write to no reader (SIGPIPE ignored)");
    close(wdup);
    pipe(p);
    fcntl(p[0], F_SETOWN, getpid());
    fcntl(p[0], F_SETFL, O_ASYNC);
    close(p[1]);
    signals("close of the only writer");
    close(p[0]);

    int f = open(at("file"), O_CREAT | O_RDWR, 0644);
    on = 1;
    res("FIOASYNC on a file", ioctl(f, FIOASYNC, &on));
    res("setfl O_ASYNC on a file", fcntl(f, F_SETFL, O_ASYNC));
    printf("file getfl has O_ASYNC: %d\n", !!(fcntl(f, F_GETFL) & O_ASYNC));
    res("FIOASYNC on again", ioctl(f, FIOASYNC, &on));
    close(f);
    int o = open(at("file"), O_PATH);
    res("O_PATH setown", fcntl_raw(o, F_SETOWN, getpid()));
    res("O_PATH getfl", fcntl(o, F_GETFL) >= 0);
    close(o);

    int sv[2];
    for (int type = SOCK_STREAM; type <= SOCK_SEQPACKET; type += SOCK_SEQPACKET - SOCK_STREAM) {
        printf("-- O_ASYNC on a unix %s pair\n", type == SOCK_STREAM ? "stream" : "seqpacket");
        socketpair(AF_UNIX, type, 0, sv);
        base = sv[0];
        fcntl(sv[0], F_SETOWN, getpid());
        fcntl(sv[0], F_SETSIG, SIGRTMIN + 2);
        res("setfl O_ASYNC", fcntl(sv[0], F_SETFL, O_ASYNC | O_NONBLOCK));
        write(sv[1], "ab", 2);
        signals("peer writes");
        read(sv[0], c, 4);
        write(sv[0], "x", 1);
        signals("read and write");
        shutdown(sv[1], SHUT_RD);
        signals("peer shuts reading");
        shutdown(sv[1], SHUT_WR);
        signals("peer shuts writing");
        close(sv[1]);
        signals("peer closes");
        close(sv[0]);
    }
    printf("-- O_ASYNC on a unix datagram pair\n");
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    fcntl(sv[0], F_SETOWN, getpid());
    fcntl(sv[0], F_SETFL, O_ASYNC);
    write(sv[1], "ab", 2);
    signals("peer sends");
    close(sv[1]);
    signals("peer closes");
    close(sv[0]);

    int in = inotify_init1(0);
    inotify_add_watch(in, at("file"), IN_ATTRIB);
    fcntl(in, F_SETOWN, getpid());
    fcntl(in, F_SETSIG, SIGRTMIN + 3);
    fcntl(in, F_SETFL, O_ASYNC);
    chmod(at("file"), 0600);
    signals("inotify event");
    close(in);
}

static void dnotify(void)
{
    printf("-- dnotify\n");
    mkdir(at("sub"), 0755);
    mkdir(at("other"), 0755);
    int d = open(dir, O_RDONLY);
    int s = open(at("sub"), O_RDONLY);
    base = d;
    res("notify on a file", fcntl(open(at("file"), O_RDONLY), F_NOTIFY, DN_CREATE));
    fcntl(d, F_SETSIG, SIGRTMIN + 1);
    res("notify create|multishot", fcntl(d, F_NOTIFY, DN_CREATE | DN_MULTISHOT));
    owner("after F_NOTIFY", d);
    close(open(at("a"), O_CREAT | O_WRONLY, 0644));
    close(open(at("b"), O_CREAT | O_WRONLY, 0644));
    signals("two creates");
    mkdir(at("c"), 0755);
    symlink("a", at("l"));
    link(at("a"), at("h"));
    signals("mkdir, symlink, link");
    res("notify delete (adds)", fcntl(d, F_NOTIFY, DN_DELETE));
    unlink(at("h"));
    rmdir(at("c"));
    signals("unlink, rmdir");
    res("notify 0 (removes)", fcntl(d, F_NOTIFY, DN_MULTISHOT));
    unlink(at("l"));
    signals("unlink, removed");

    res("notify delete, one shot", fcntl(s, F_NOTIFY, DN_DELETE));
    close(open(at("sub/x"), O_CREAT | O_WRONLY, 0644));
    close(open(at("sub/y"), O_CREAT | O_WRONLY, 0644));
    unlink(at("sub/x"));
    unlink(at("sub/y"));
    signals("two unlinks, one shot, SIGIO");

    fcntl(d, F_NOTIFY, DN_ATTRIB | DN_MULTISHOT);
    fcntl(s, F_SETSIG, SIGRTMIN + 2);
    fcntl(s, F_NOTIFY, DN_ATTRIB | DN_MULTISHOT);
    chmod(at("sub"), 0700);
    signals("chmod of sub (both watch attrib)");
    chmod(at("a"), 0600);
    signals("chmod of a child");

    fcntl(d, F_NOTIFY, DN_RENAME | DN_MULTISHOT);
    fcntl(s, F_NOTIFY, DN_RENAME | DN_MULTISHOT);
    signals("(nothing yet)");
    rename(at("a"), at("sub/a"));
    signals("rename into sub");
    rename(at("sub/a"), at("sub/a2"));
    signals("rename within sub");
    rename(at("sub"), at("sub2"));
    signals("rename of sub itself");
    rename(at("sub2"), at("sub"));
    signals("and back");

    int m = open(at("b"), O_RDWR);
    fcntl(d, F_NOTIFY, DN_MODIFY | DN_ACCESS | DN_MULTISHOT);
    write(m, "x", 1);
    signals("write to a child");
    char c;
    pread(m, &c, 1, 0);
    signals("read of a child");
    close(m);

    int d2 = dup(d);
    close(d2);
    close(open(at("z"), O_CREAT | O_WRONLY, 0644));
    signals("create after closing a dup");
    int o = open(at("other"), O_RDONLY);
    fcntl(o, F_NOTIFY, DN_CREATE | DN_MULTISHOT);
    if (fork() == 0) {
        close(open(at("other/child"), O_CREAT | O_WRONLY, 0644));
        _exit(0);
    }
    wait(NULL);
    signals("a child process creates");
    close(o);
    close(open(at("other/after"), O_CREAT | O_WRONLY, 0644));
    signals("after the close");
    close(d);
    close(s);

    unlink(at("other/child"));
    unlink(at("other/after"));
    rmdir(at("other"));
    unlink(at("sub/a2"));
    rmdir(at("sub"));
    unlink(at("b"));
    unlink(at("z"));
    signals("cleanup (no more registrations)");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* a group of its own: signals to the group reach no one else, and the
       group is never init's (0), which F_SETOWN cannot name */
    setpgid(0, 0);
    snprintf(dir, sizeof dir, "%s/fown_dir", argc > 1 ? argv[1] : ".");
    mkdir(dir, 0755);
    sigfillset(&all);
    sigdelset(&all, SIGCHLD);
    sigprocmask(SIG_BLOCK, &all, NULL);
    signal(SIGPIPE, SIG_IGN);
    pipes();
    dnotify();
    unlink(at("file"));
    rmdir(dir);
    printf("done\n");
    return 0;
}
