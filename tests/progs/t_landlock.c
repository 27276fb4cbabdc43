/* Landlock (ABI 1 and 2, as Linux 6.1 has it): the three syscalls'
   errors; what a sandbox lets through (read, write, readdir, execute,
   each kind of creation and removal, beneath a rule and not) and how
   layers stack; REFER and the rules of reparenting a file (EXDEV against
   EACCES); fork and execve keep the domain; mount refused; ptrace only
   into the same domain or a nested one.  Each sandbox is a child of its
   own.  Only ABI 1-2 rights are asked, so a newer host kernel answers the
   same. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#define R LANDLOCK_ACCESS_FS_READ_FILE
#define W LANDLOCK_ACCESS_FS_WRITE_FILE
#define X LANDLOCK_ACCESS_FS_EXECUTE
#define RD LANDLOCK_ACCESS_FS_READ_DIR
#define RMF LANDLOCK_ACCESS_FS_REMOVE_FILE
#define RMD LANDLOCK_ACCESS_FS_REMOVE_DIR
#define MKREG LANDLOCK_ACCESS_FS_MAKE_REG
#define MKDIR LANDLOCK_ACCESS_FS_MAKE_DIR
#define MKSYM LANDLOCK_ACCESS_FS_MAKE_SYM
#define MKFIFO LANDLOCK_ACCESS_FS_MAKE_FIFO
#define MKSOCK LANDLOCK_ACCESS_FS_MAKE_SOCK
#define REFER LANDLOCK_ACCESS_FS_REFER
#define ALL_V2 ((1ULL << 14) - 1)

static char scratch[4000], top[4096], A[4200], B[4200], SELF[4096];

static long create_ruleset(const void *attr, size_t size, unsigned flags)
{
    return syscall(SYS_landlock_create_ruleset, attr, size, flags);
}

static long add_rule(int fd, int type, const void *attr, unsigned flags)
{
    return syscall(SYS_landlock_add_rule, fd, type, attr, flags);
}

static long restrict_self(int fd, unsigned flags)
{
    return syscall(SYS_landlock_restrict_self, fd, flags);
}

static int ruleset(uint64_t handled)
{
    struct landlock_ruleset_attr a = {.handled_access_fs = handled};
    return create_ruleset(&a, sizeof(a), 0);
}

static long rule(int rs, const char *path, uint64_t access)
{
    struct landlock_path_beneath_attr pb = {.allowed_access = access};
    pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
    long r = add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    int e = errno;
    close(pb.parent_fd);
    errno = e;
    return r;
}

static void enforce(int rs)
{
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (restrict_self(rs, 0) < 0)
        printf("restrict_self: %s\n", en(errno));
    close(rs);
}

static const char *p(const char *a, const char *b)
{
    static char buf[4][4400];
    static int n;
    char *s = buf[n++ & 3];
    snprintf(s, sizeof(buf[0]), "%s/%s", a, b);
    return s;
}

static void try_open(const char *what, const char *path, int flags)
{
    int fd = open(path, flags, 0644);
    printf("%s: %s\n", what, fd >= 0 ? "ok" : en(errno));
    if (fd >= 0)
        close(fd);
}

static void said(const char *what, long r)
{
    printf("%s: %s\n", what, r >= 0 ? "ok" : en(errno));
}

static void fresh_tree(void)
{
    /* the tree is small and known: no shell needed */
    const char *names[] = {"a/sub/g", "a/f", "a/x", "a/y", "a/h", "a/new", "a/made", "a/sock", "b/h", "b/x",
                           "b/f2", "b/y", "b/sock", "b/lnk", "b/fifo", "b/node", "b/new", "c/h", NULL};
    const char *dirs[] = {"a/sub", "a/d", "b/d", "a", "b", "c", NULL};
    const char *files[] = {"a/f", "a/x", "b/h", "a/sub/g", NULL};
    char path[4400];
    for (int i = 0; names[i]; i++) {
        snprintf(path, sizeof(path), "%s/%s", top, names[i]);
        unlink(path);
    }
    for (int i = 0; dirs[i]; i++) {
        snprintf(path, sizeof(path), "%s/%s", top, dirs[i]);
        rmdir(path);
    }
    mkdir(top, 0755);
    const char *made[] = {"a", "b", "c", "a/sub", NULL};
    for (int i = 0; made[i]; i++) {
        snprintf(path, sizeof(path), "%s/%s", top, made[i]);
        mkdir(path, 0755);
    }
    for (int i = 0; files[i]; i++) {
        snprintf(path, sizeof(path), "%s/%s", top, files[i]);
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "hi\n", 3) != 3)
            printf("setup %s: %s\n", files[i], en(errno));
        close(fd);
    }
}

/* run fn in a child (a sandbox of its own), wait for it */
static void in_child(const char *title, void (*fn)(void))
{
    printf("-- %s\n", title);
    fflush(stdout);
    fresh_tree();
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        printf("child status %#x\n", st);
}

static void errors(void)
{
    struct landlock_ruleset_attr a = {.handled_access_fs = R};
    long abi = create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    printf("abi >= 2: %s\n", abi >= 2 ? "yes" : "no");
    said("version with attr", create_ruleset(&a, sizeof(a), LANDLOCK_CREATE_RULESET_VERSION));
    said("version with size", create_ruleset(NULL, 8, LANDLOCK_CREATE_RULESET_VERSION));
    said("unknown flags", create_ruleset(&a, sizeof(a), 0x80));
    said("null attr", create_ruleset(NULL, sizeof(a), 0));
    said("size 7", create_ruleset(&a, 7, 0));
    static char big[8192];
    memcpy(big, &a, sizeof(a));
    said("size 4097", create_ruleset(big, 4097, 0));
    a.handled_access_fs = 1ULL << 63;
    said("unknown right", create_ruleset(&a, sizeof(a), 0));
    a.handled_access_fs = 0;
    said("no right", create_ruleset(&a, sizeof(a), 0));

    int rs = ruleset(R | RD | W | MKREG);
    printf("ruleset fd cloexec: %d\n", rs >= 0 && (fcntl(rs, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
    char link[64], buf[256] = "";
    snprintf(link, sizeof(link), "/proc/self/fd/%d", rs);
    ssize_t n = readlink(link, buf, sizeof(buf) - 1);
    printf("ruleset fd: %s\n", n > 0 ? buf : en(errno));
    char c;
    said("read ruleset fd", read(rs, &c, 1));
    said("write ruleset fd", write(rs, "x", 1));

    struct landlock_path_beneath_attr pb = {.allowed_access = R, .parent_fd = open(A, O_PATH)};
    said("add_rule flags", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0x80000000u));
    said("add_rule bad fd", add_rule(999, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
    said("add_rule O_PATH fd", add_rule(pb.parent_fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
    said("add_rule type 99", add_rule(rs, 99, &pb, 0));
    said("add_rule null attr", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, NULL, 0));
    pb.allowed_access = 0;
    said("add_rule nothing", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
    pb.allowed_access = X;
    said("add_rule unhandled", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
    pb.allowed_access = R;
    int keep = pb.parent_fd;
    pb.parent_fd = 999;
    said("add_rule bad parent", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
    int pfd[2];
    if (pipe(pfd))
        return;
    pb.parent_fd = pfd[0];
    said("add_rule pipe parent", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
    pb.parent_fd = rs;
    said("add_rule ruleset parent", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
    pb.parent_fd = open(p(A, "f"), O_PATH);
    pb.allowed_access = R | RD;
    said("add_rule dir right on a file", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
    pb.allowed_access = R | W;
    said("add_rule file rights on a file", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
    close(pb.parent_fd);
    pb.parent_fd = keep;
    said("add_rule", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
    said("add_rule again", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));

    said("restrict_self flags", restrict_self(rs, 0x80000000u));
    said("restrict_self bad fd", restrict_self(999, 0));
    said("restrict_self not a ruleset", restrict_self(pfd[0], 0));
    int opath = open(A, O_PATH);
    said("add_rule O_PATH ruleset", add_rule(opath, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
    close(opath);
    pid_t pid = fork();
    if (pid == 0) {
        /* no no_new_privs and no CAP_SYS_ADMIN: refused */
        if (geteuid() == 0 && setuid(65534) != 0)
            printf("setuid failed\n");
        said("restrict_self without no_new_privs", restrict_self(rs, 0));
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        for (int i = 1; i <= 17; i++) {
            long r = restrict_self(rs, 0);
            if (r < 0 || i == 16) {
                printf("layer %d: %s\n", i, r < 0 ? en(errno) : "ok");
                if (r < 0)
                    break;
            }
        }
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    close(rs);
    close(pfd[0]);
    close(pfd[1]);
    close(keep);
}

static void reads(void)
{
    int rs = ruleset(R | RD | W);
    rule(rs, A, R | RD);
    enforce(rs);
    try_open("read a/f", p(A, "f"), O_RDONLY);
    try_open("write a/f", p(A, "f"), O_WRONLY);
    try_open("rdwr a/f", p(A, "f"), O_RDWR);
    try_open("read a/sub/g", p(p(A, "sub"), "g"), O_RDONLY);
    try_open("read b/h", p(B, "h"), O_RDONLY);
    try_open("readdir a", A, O_RDONLY | O_DIRECTORY);
    try_open("readdir a/sub", p(A, "sub"), O_RDONLY | O_DIRECTORY);
    try_open("readdir b", B, O_RDONLY | O_DIRECTORY);
    try_open("readdir top", top, O_RDONLY | O_DIRECTORY);
    try_open("O_PATH b/h", p(B, "h"), O_PATH);
    try_open("O_ACCMODE b/h", p(B, "h"), O_ACCMODE);
    struct stat st;
    said("stat b/h", stat(p(B, "h"), &st));
    said("chdir b", chdir(B));
    said("chdir back", chdir("/"));
    /* creation is not handled: the file is made, its open for writing refused */
    try_open("creat a/new", p(A, "new"), O_CREAT | O_WRONLY);
    said("a/new exists", access(p(A, "new"), F_OK));
    said("mkdir b/d", mkdir(p(B, "d"), 0755));
    said("rmdir b/d", rmdir(p(B, "d")));
    said("unlink a/new", unlink(p(A, "new")));
    int pfd[2];
    said("pipe", pipe(pfd));
    said("pipe write", write(pfd[1], "x", 1));
    char c;
    said("pipe read", read(pfd[0], &c, 1));
    /* a new layer can only take away */
    int rs2 = ruleset(R);
    rule(rs2, top, R);
    rule(rs2, B, R);
    enforce(rs2);
    try_open("layer 2: read a/f", p(A, "f"), O_RDONLY);
    try_open("layer 2: read b/h", p(B, "h"), O_RDONLY);
    /* a ruleset changed after restrict_self changes nothing */
    int rs3 = ruleset(R);
    rule(rs3, A, R);
    enforce(rs3);
    try_open("layer 3: read a/f", p(A, "f"), O_RDONLY);
    pid_t pid = fork();
    if (pid == 0) {
        try_open("child: read a/f", p(A, "f"), O_RDONLY);
        try_open("child: read b/h", p(B, "h"), O_RDONLY);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

static void makes(void)
{
    uint64_t all = MKREG | MKDIR | MKSYM | MKFIFO | MKSOCK | RMF | RMD | LANDLOCK_ACCESS_FS_MAKE_CHAR
        | LANDLOCK_ACCESS_FS_MAKE_BLOCK;
    int rs = ruleset(all);
    rule(rs, A, all);
    enforce(rs);
    try_open("creat a/made", p(A, "made"), O_CREAT | O_WRONLY);
    try_open("creat b/new", p(B, "new"), O_CREAT | O_WRONLY);
    try_open("open existing b/h for writing", p(B, "h"), O_WRONLY);
    try_open("O_CREAT existing b/h", p(B, "h"), O_CREAT | O_WRONLY);
    said("mkdir a/d", mkdir(p(A, "d"), 0755));
    said("mkdir b/d", mkdir(p(B, "d"), 0755));
    said("symlink b/lnk", symlink("h", p(B, "lnk")));
    said("mkfifo b/fifo", mkfifo(p(B, "fifo"), 0644));
    said("mknod reg b/node", mknod(p(B, "node"), S_IFREG | 0644, 0));
    said("mknod 0 b/node", mknod(p(B, "node"), 0644, 0));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p(B, "sock"));
    if (strlen(p(B, "sock")) < sizeof(sa.sun_path))
        said("bind b/sock", bind(s, (struct sockaddr *)&sa, sizeof(sa)));
    close(s);
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p(A, "sock"));
    if (strlen(p(A, "sock")) < sizeof(sa.sun_path))
        said("bind a/sock", bind(s, (struct sockaddr *)&sa, sizeof(sa)));
    close(s);
    unlink(p(A, "sock"));
    said("unlink b/h", unlink(p(B, "h")));
    said("unlink a/made", unlink(p(A, "made")));
    said("rmdir a/d", rmdir(p(A, "d")));
    said("rmdir a/sub (not empty)", rmdir(p(A, "sub")));
    said("rmdir c", rmdir(p(top, "c")));
    said("rename within a", rename(p(A, "x"), p(A, "y")));
    said("rename within b", rename(p(B, "h"), p(B, "x")));
    said("link within a", link(p(A, "f"), p(A, "x")));
    said("link a -> b (REFER unhandled)", link(p(A, "f"), p(B, "f2")));
    said("rename a -> b (REFER unhandled)", rename(p(A, "f"), p(B, "f2")));
}

static void refer_initially_denied(void)
{
    /* REFER is denied even by a ruleset that does not handle it */
    int rs = ruleset(MKREG | RMF);
    rule(rs, A, MKREG | RMF);
    rule(rs, B, MKREG | RMF);
    enforce(rs);
    said("rename a/x -> b/x", rename(p(A, "x"), p(B, "x")));
    said("link a/x -> b/y", link(p(A, "x"), p(B, "y")));
    said("link a/x -> a/y", link(p(A, "x"), p(A, "y")));
}

static void refer_denied(void)
{
    int rs = ruleset(MKREG | RMF | REFER);
    rule(rs, A, MKREG | RMF);
    rule(rs, B, MKREG | RMF);
    enforce(rs);
    said("rename a/x -> b/x", rename(p(A, "x"), p(B, "x")));
    said("link a/x -> b/x", link(p(A, "x"), p(B, "x")));
    said("rename within a", rename(p(A, "x"), p(A, "y")));
}

static void refer_granted(void)
{
    int rs = ruleset(MKREG | RMF | REFER | R);
    rule(rs, A, MKREG | RMF | REFER | R);
    rule(rs, B, MKREG | RMF | REFER);
    enforce(rs);
    /* b grants less (no read): moving into it takes nothing new */
    said("rename a/x -> b/x", rename(p(A, "x"), p(B, "x")));
    /* back into a would give the file read: EXDEV */
    said("rename b/x -> a/x", rename(p(B, "x"), p(A, "x")));
    said("link b/h -> a/y", link(p(B, "h"), p(A, "y")));
    said("link a/f -> b/f2", link(p(A, "f"), p(B, "f2")));
    said("rename b/h -> c/h (nothing granted)", rename(p(B, "h"), p(p(top, "c"), "h")));
    said("exchange a/f <-> b/h", syscall(SYS_renameat2, AT_FDCWD, p(A, "f"), AT_FDCWD, p(B, "h"), 2));
}

static void refer_eacces(void)
{
    int rs = ruleset(MKREG | RMF | REFER);
    rule(rs, A, RMF | REFER);
    rule(rs, B, REFER);
    enforce(rs);
    /* b may not make a regular file: EACCES before EXDEV */
    said("rename a/x -> b/x", rename(p(A, "x"), p(B, "x")));
    said("rename b/h -> a/h", rename(p(B, "h"), p(A, "h")));
}

/* exec ourselves under a rule on our own file granting `granted`: the
   exec needs read and execute; the program then probes its sandbox */
static void exec_with(uint64_t granted, const char *what)
{
    int rs = ruleset(X | R);
    rule(rs, SELF, granted);
    enforce(rs);
    pid_t pid = fork();
    if (pid == 0) {
        execl(SELF, SELF, scratch, "probe", NULL);
        printf("%s: %s\n", what, en(errno));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

static void execs(void)
{
    exec_with(R, "exec with read only");
}

static void execs_ok(void)
{
    exec_with(R | X, "exec");
}

static void mounts(void)
{
    int rs = ruleset(R);
    enforce(rs);
    said("mount tmpfs", mount("none", p(top, "c"), "tmpfs", 0, NULL));
}

static void traces(void)
{
    /* an unsandboxed child is out of reach once we are sandboxed */
    pid_t out = fork();
    if (out == 0) {
        pause();
        _exit(0);
    }
    int rs = ruleset(R);
    enforce(rs);
    pid_t in = fork();
    if (in == 0) {
        pause();
        _exit(0);
    }
    said("attach to an unsandboxed child", ptrace(PTRACE_ATTACH, out, 0, 0));
    long r = ptrace(PTRACE_ATTACH, in, 0, 0);
    said("attach to a child in the domain", r);
    if (r == 0) {
        waitpid(in, NULL, 0);
        ptrace(PTRACE_DETACH, in, 0, 0);
    }
    /* a child nested deeper is in reach; our parent's process is not */
    pid_t deeper = fork();
    if (deeper == 0) {
        int rs2 = ruleset(R);
        enforce(rs2);
        said("deeper: traceme under a less sandboxed parent", ptrace(PTRACE_TRACEME, 0, 0, 0));
        fflush(stdout);
        raise(SIGSTOP);
        _exit(0);
    }
    int st;
    waitpid(deeper, &st, WUNTRACED);
    printf("deeper stopped: %d\n", WIFSTOPPED(st));
    ptrace(PTRACE_DETACH, deeper, 0, 0);
    kill(deeper, SIGCONT);
    waitpid(deeper, NULL, 0);
    kill(out, SIGKILL);
    kill(in, SIGKILL);
    waitpid(out, NULL, 0);
    waitpid(in, NULL, 0);
}

static void traceme_up(void)
{
    /* an unsandboxed child may not ask its sandboxed parent to trace it */
    int go[2];
    if (pipe(go))
        return;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) != 1)
            _exit(1);
        said("traceme under a sandboxed parent", ptrace(PTRACE_TRACEME, 0, 0, 0));
        fflush(stdout);
        _exit(0);
    }
    int rs = ruleset(R);
    enforce(rs);
    if (write(go[1], "x", 1) != 1)
        printf("pipe write failed\n");
    waitpid(pid, NULL, 0);
    /* and one that sandboxed itself may ask an unsandboxed one */
    pid = fork();
    if (pid == 0) {
        pid_t pid2 = fork();
        if (pid2 == 0) {
            int rs2 = ruleset(R);
            enforce(rs2);
            said("traceme under a less sandboxed parent", ptrace(PTRACE_TRACEME, 0, 0, 0));
            fflush(stdout);
            _exit(0);
        }
        waitpid(pid2, NULL, 0);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return 1;
    snprintf(scratch, sizeof(scratch), "%s", argv[1]);
    snprintf(top, sizeof(top), "%s/ll", argv[1]);
    snprintf(A, sizeof(A), "%s/a", top);
    snprintf(B, sizeof(B), "%s/b", top);
    if (argc > 3 && !strcmp(argv[2], "pin")) {
        /* pin N: rules on N files of a fresh directory, twice over (a
           second ruleset after the first is closed); how many each took */
        int n = atoi(argv[3]);
        char path[4400];
        mkdir(top, 0755);
        for (int round = 0; round < 2; round++) {
            int rs = ruleset(R), i;
            for (i = 0; i < n; i++) {
                snprintf(path, sizeof(path), "%s/p%d", top, i);
                close(open(path, O_CREAT | O_WRONLY, 0644));
                if (rule(rs, path, R) < 0)
                    break;
            }
            printf("round %d: %d rules%s%s\n", round, i, i < n ? ", then " : "", i < n ? en(errno) : "");
            close(rs);
        }
        return 0;
    }
    if (argc > 2) {
        /* probe: run after an execve, in the domain that came with it */
        try_open("after exec: read b/h", p(B, "h"), O_RDONLY);
        return 0;
    }
    if (!realpath(argv[0], SELF) && !realpath("/proc/self/exe", SELF))
        return 1;
    need_proc();
    if (create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) < 0) {
        printf("no landlock: %s\n", en(errno));
        return 0;
    }
    fresh_tree();
    errors();
    in_child("reads", reads);
    in_child("makes", makes);
    in_child("refer initially denied", refer_initially_denied);
    in_child("refer denied", refer_denied);
    in_child("refer granted", refer_granted);
    in_child("refer eacces", refer_eacces);
    in_child("exec", execs);
    in_child("exec granted", execs_ok);
    in_child("mount", mounts);
    in_child("ptrace", traces);
    in_child("traceme", traceme_up);
    fresh_tree();
    rmdir(top);
    printf("done\n");
    return 0;
}
