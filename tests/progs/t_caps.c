/* Credentials and capabilities, run as root: capget/capset and their header
 * versions, dropping a capability and losing what it guards, the bounding
 * and ambient sets, keep-caps, setresuid/setuid/setfsuid and the effective
 * set, file access and kill() between uids, and set-user-ID executables:
 * a copy of this program, chowned and chmod 6755, re-executed via argv[0]
 * with "--report" from children running as other uids.
 * Capability masks are printed only for the capabilities in TEST, so that
 * a host whose bounding set lacks some others gives the same output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/fsuid.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIT(c) (1ULL << (c))
#define TEST (BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_DAC_READ_SEARCH) | BIT(CAP_FOWNER) | \
              BIT(CAP_KILL) | BIT(CAP_SETGID) | BIT(CAP_SETUID) | BIT(CAP_SETPCAP) | BIT(CAP_SYS_ADMIN) | \
              BIT(CAP_MKNOD) | BIT(CAP_SYSLOG))
#define FS_CAPS (BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_DAC_READ_SEARCH) | BIT(CAP_FOWNER) | \
                 BIT(CAP_MKNOD))

static char dir[512], self[4096];

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

static void show(const char *what, long r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: %ld\n", what, r);
}

static char *at(const char *name)
{
    static char buf[4][600];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 600, "%s/%s", dir, name);
    return p;
}

static long capget_raw(unsigned version, int pid, struct __user_cap_data_struct *d, unsigned *back)
{
    struct __user_cap_header_struct h = {version, pid};
    long r = syscall(SYS_capget, &h, d);
    if (back)
        *back = h.version;
    return r;
}

/* which: 0 effective, 1 permitted, 2 inheritable */
static unsigned long long caps(int which)
{
    struct __user_cap_data_struct d[2];
    capget_raw(_LINUX_CAPABILITY_VERSION_3, 0, d, NULL);
    unsigned lo = which == 0 ? d[0].effective : which == 1 ? d[0].permitted : d[0].inheritable;
    unsigned hi = which == 0 ? d[1].effective : which == 1 ? d[1].permitted : d[1].inheritable;
    return ((unsigned long long)hi << 32 | lo) & TEST;
}

static long setcaps(unsigned long long eff, unsigned long long perm, unsigned long long inh)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {
        {(unsigned)eff, (unsigned)perm, (unsigned)inh},
        {(unsigned)(eff >> 32), (unsigned)(perm >> 32), (unsigned)(inh >> 32)}};
    return syscall(SYS_capset, &h, d);
}

/* the full sets, untouched by TEST, for set operations */
static void getall(unsigned long long *eff, unsigned long long *perm, unsigned long long *inh)
{
    struct __user_cap_data_struct d[2];
    capget_raw(_LINUX_CAPABILITY_VERSION_3, 0, d, NULL);
    *eff = (unsigned long long)d[1].effective << 32 | d[0].effective;
    *perm = (unsigned long long)d[1].permitted << 32 | d[0].permitted;
    *inh = (unsigned long long)d[1].inheritable << 32 | d[0].inheritable;
}

static void drop_effective(unsigned long long bits)
{
    unsigned long long e, p, i;
    getall(&e, &p, &i);
    show("  capset effective without them", setcaps(e & ~bits, p, i));
}

static void print_caps(const char *label)
{
    printf("%s: eff=%llx perm=%llx inh=%llx\n", label, caps(0), caps(1), caps(2));
}

static void print_ids(const char *label)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("%s: uid %u/%u/%u gid %u/%u/%u\n", label, r, e, s, gr, ge, gs);
}

static void become(uid_t uid, gid_t gid)
{
    if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid))
        printf("  become %u: %s\n", uid, en(errno));
}

/* run fn in a child and wait for it */
static void in_child(const char *title, void (*fn)(void))
{
    if (title)
        printf("-- %s\n", title);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        printf("  child status %#x\n", st);
}

/* run a copy of this program ("suid" or "plain") to report its credentials */
static void run_self(const char *copy, char *const *env, const char *how)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {at(copy), "--report", (char *)how, NULL};
        execve(argv[0], argv, env);
        printf("  exec: %s\n", en(errno));
        exit(1);
    }
    int st;
    waitpid(pid, &st, 0);
}

/* -- after exec: what the program runs with ---------------------------------- */

static int report(const char *how)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    const char *tmpdir = getenv("TMPDIR");
    printf("  %s: uid %u/%u/%u gid %u/%u/%u secure=%lu eff=%llx perm=%llx dumpable=%d TMPDIR=%s\n", how,
           r, e, s, gr, ge, gs, getauxval(AT_SECURE), caps(0), caps(1), prctl(PR_GET_DUMPABLE),
           tmpdir ? tmpdir : "(unset)");
    return 0;
}

/* -- the tests ---------------------------------------------------------------- */

static void versions(void)
{
    struct __user_cap_data_struct d[2];
    unsigned back;
    unsigned vs[] = {_LINUX_CAPABILITY_VERSION_1, _LINUX_CAPABILITY_VERSION_2, _LINUX_CAPABILITY_VERSION_3};
    for (int i = 0; i < 3; i++) {
        memset(d, 0xa5, sizeof d);
        long r = capget_raw(vs[i], 0, d, &back);
        printf("capget v%d: %ld eff=%x/%x perm=%x inh=%x second word %s\n", i + 1, r,
               d[0].effective & (unsigned)TEST, (unsigned)(TEST >> 32) & d[1].effective,
               d[0].permitted & (unsigned)TEST, d[0].inheritable,
               d[1].inheritable == 0xa5a5a5a5 ? "untouched" : "written");
    }
    long r = capget_raw(0x12345678, 0, d, &back);
    printf("capget bad version: %ld %s, header now %#x\n", r, r < 0 ? en(errno) : "", back);
    r = capget_raw(0x12345678, 0, NULL, &back);
    printf("capget bad version, no data: %ld, header now %#x\n", r, back);
    show("capget v3, no data", capget_raw(_LINUX_CAPABILITY_VERSION_3, 0, NULL, NULL));
    show("capget own pid", capget_raw(_LINUX_CAPABILITY_VERSION_3, getpid(), d, NULL));
    show("capget parent", capget_raw(_LINUX_CAPABILITY_VERSION_3, getppid(), d, NULL));
    show("capget pid -1", capget_raw(_LINUX_CAPABILITY_VERSION_3, -1, d, NULL));
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    waitpid(gone, NULL, 0);
    show("capget reaped pid", capget_raw(_LINUX_CAPABILITY_VERSION_3, gone, d, NULL));
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, getppid()};
    capget_raw(_LINUX_CAPABILITY_VERSION_3, 0, d, NULL);
    show("capset on the parent", syscall(SYS_capset, &h, d));
    h.version = 1;
    r = syscall(SYS_capset, &h, d);
    printf("capset bad version: %ld %s, header now %#x\n", r, en(errno), h.version);
}

static void drop_chown(void)
{
    unsigned long long e, p, i;
    drop_effective(BIT(CAP_CHOWN));
    print_caps("  now");
    show("  chown", chown(at("f"), 1000, 1000));
    getall(&e, &p, &i);
    show("  capset it back into effective", setcaps(e | BIT(CAP_CHOWN), p, i));
    show("  chown", chown(at("f"), 1000, 1000));
    show("  capset it out of permitted", setcaps(e & ~BIT(CAP_CHOWN), p & ~BIT(CAP_CHOWN), i));
    show("  capset effective beyond permitted", setcaps(e | BIT(CAP_CHOWN), p & ~BIT(CAP_CHOWN), i));
    show("  capset permitted beyond the old one", setcaps(e & ~BIT(CAP_CHOWN), p, i));
    drop_effective(BIT(CAP_SETPCAP));
    getall(&e, &p, &i);
    show("  capset inheritable beyond permitted, no CAP_SETPCAP", setcaps(e, p, i | BIT(CAP_CHOWN)));
    show("  capset inheritable within permitted", setcaps(e, p, i | BIT(CAP_KILL)));
    print_caps("  now");
    show("  chown", chown(at("f"), 0, 0));
}

static void drop_dac(void)
{
    drop_effective(BIT(CAP_DAC_OVERRIDE));
    show("  open 000 file O_RDONLY", open(at("none"), O_RDONLY) >= 0 ? 0 : -1);
    show("  open 000 file O_WRONLY", open(at("none"), O_WRONLY) >= 0 ? 0 : -1);
    drop_effective(BIT(CAP_DAC_READ_SEARCH));
    show("  open 000 file O_RDONLY", open(at("none"), O_RDONLY) >= 0 ? 0 : -1);
    struct stat st;
    show("  stat in a 000 directory", stat(at("shut/x"), &st));
    show("  access() still has them (real uid 0)", access(at("none"), R_OK));
    show("  chmod own file", chmod(at("none"), 0));
}

static void bounding(void)
{
    show("  PR_CAPBSET_READ CAP_CHOWN", prctl(PR_CAPBSET_READ, CAP_CHOWN));
    show("  PR_CAPBSET_READ 41", prctl(PR_CAPBSET_READ, 41));
    show("  PR_CAPBSET_DROP CAP_CHOWN", prctl(PR_CAPBSET_DROP, CAP_CHOWN));
    show("  PR_CAPBSET_READ CAP_CHOWN", prctl(PR_CAPBSET_READ, CAP_CHOWN));
    print_caps("  dropping from the bounding set leaves the others");
    unsigned long long e, p, i;
    getall(&e, &p, &i);
    drop_effective(BIT(CAP_SETPCAP));
    show("  capset inheritable outside the bounding set", setcaps(e & ~BIT(CAP_SETPCAP), p, i | BIT(CAP_CHOWN)));
    show("  PR_CAPBSET_DROP without CAP_SETPCAP", prctl(PR_CAPBSET_DROP, CAP_KILL));
    run_self("plain", NULL, "root exec after the bounding drop");
}

static void seteuid_and_back(void)
{
    prctl(PR_SET_PDEATHSIG, SIGUSR1);
    show("  setresuid(-1, 1000, -1)", setresuid(-1, 1000, -1));
    print_ids("  ids");
    print_caps("  caps");
    int sig = -1;
    prctl(PR_GET_PDEATHSIG, &sig);
    printf("  pdeath signal %d dumpable %d\n", sig, prctl(PR_GET_DUMPABLE));
    show("  chown", chown(at("f"), 0, 0));
    show("  access as real root", access(at("secret"), R_OK));
    show("  faccessat AT_EACCESS", faccessat(AT_FDCWD, at("secret"), R_OK, AT_EACCESS));
    show("  setresuid(-1, 0, -1)", setresuid(-1, 0, -1));
    print_caps("  caps");
    show("  setfsuid(1000) answers", setfsuid(1000));
    print_caps("  caps with fsuid 1000");
    show("  open root's 0600 file", open(at("secret"), O_RDONLY) >= 0 ? 0 : -1);
    show("  setfsuid(0) answers", setfsuid(0));
    print_caps("  caps with fsuid 0");
    show("  setreuid(1000, -1)", setreuid(1000, -1));
    print_ids("  ids");
    print_caps("  caps");
}

static void setuid_fully(void)
{
    show("  setuid(1000)", setuid(1000));
    print_ids("  ids");
    print_caps("  caps");
    show("  setuid(0)", setuid(0));
    show("  seteuid(0)", seteuid(0));
    show("  setresuid(-1, 2000, -1)", setresuid(-1, 2000, -1));
    show("  setgid(5)", setgid(5));
    show("  setgroups", setgroups(0, NULL));
    show("  setfsuid(0) answers", setfsuid(0));
    show("  setfsuid(-1) answers (fsuid unchanged)", setfsuid(-1));
    show("  PR_CAPBSET_DROP", prctl(PR_CAPBSET_DROP, CAP_CHOWN));
    run_self("plain", NULL, "plain exec as uid 1000");
}

static void keepcaps(void)
{
    show("  PR_GET_KEEPCAPS", prctl(PR_GET_KEEPCAPS));
    show("  PR_SET_KEEPCAPS 2", prctl(PR_SET_KEEPCAPS, 2));
    show("  PR_SET_KEEPCAPS 1", prctl(PR_SET_KEEPCAPS, 1));
    show("  PR_GET_KEEPCAPS", prctl(PR_GET_KEEPCAPS));
    show("  PR_GET_SECUREBITS", prctl(PR_GET_SECUREBITS));
    become(1000, 1000);
    print_caps("  caps after setresuid(1000, 1000, 1000)");
    unsigned long long e, p, i;
    getall(&e, &p, &i);
    show("  capset effective = permitted, CAP_KILL inheritable", setcaps(p, p, BIT(CAP_KILL)));
    show("  chown as uid 1000 with CAP_CHOWN", chown(at("f"), 2000, 2000));
    show("  PR_CAP_AMBIENT_RAISE CAP_KILL", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
    show("  PR_CAP_AMBIENT_RAISE CAP_CHOWN (not inheritable)",
         prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0));
    show("  PR_CAP_AMBIENT_IS_SET CAP_KILL", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0));
    show("  PR_CAP_AMBIENT bad op", prctl(PR_CAP_AMBIENT, 9, CAP_KILL, 0, 0));
    run_self("plain", NULL, "exec with ambient CAP_KILL");
    show("  PR_CAP_AMBIENT_CLEAR_ALL", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
    show("  PR_CAP_AMBIENT_IS_SET CAP_KILL", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0));
    run_self("plain", NULL, "exec without ambient");
}

static void as_user(void)
{
    become(1000, 1000);
    const char *names[] = {"own", "ownshut", "grp", "oth", "nobody"};
    for (int i = 0; i < 5; i++) {
        int r = open(at(names[i]), O_RDONLY), er = errno;
        int w = open(at(names[i]), O_WRONLY), ew = errno;
        printf("  %-8s read %s write %s\n", names[i], r >= 0 ? "ok" : en(er), w >= 0 ? "ok" : en(ew));
    }
    show("  access own R_OK", access(at("own"), R_OK));
    show("  access root's secret R_OK", access(at("secret"), R_OK));
    show("  chmod own", chmod(at("own"), 0640));
    show("  chmod another's", chmod(at("oth"), 0666));
    show("  chown own to 2000", chown(at("own"), 2000, -1));
    show("  chown own to itself", chown(at("own"), 1000, -1));
    show("  chown another's to its own uid", chown(at("oth"), 2000, -1));
    show("  chgrp own to 1000", chown(at("own"), -1, 1000));
    show("  chgrp own to 2000", chown(at("own"), -1, 2000));
    struct timespec ts[2] = {{1, 0}, {2, 0}};
    show("  utimensat explicit on another's", utimensat(AT_FDCWD, at("oth"), ts, 0));
    show("  utimensat now on another's writable", utimensat(AT_FDCWD, at("oth"), NULL, 0));
    show("  utimensat now on another's read-only", utimensat(AT_FDCWD, at("grp"), NULL, 0));
    show("  unlink another's in a sticky dir", unlink(at("sticky/theirs")));
    show("  unlink own in a sticky dir", unlink(at("sticky/mine")));
    show("  mkdir in root's dir", mkdir(at("newdir"), 0755));
    show("  mknod a device", mknod(at("u/dev"), S_IFCHR | 0600, makedev(1, 3)));
    show("  mknod a fifo", mknod(at("u/fifo"), S_IFIFO | 0600, 0));
    show("  search a 000 directory", access(at("shut/x"), F_OK));
    show("  sethostname", sethostname("x", 1));
    show("  chroot", chroot("/"));
    show("  kill(1, 0)", kill(1, 0));
    show("  setresuid(2000, -1, -1)", setresuid(2000, -1, -1));
    show("  setresgid(-1, 0, -1)", setresgid(-1, 0, -1));
    struct stat st;
    int fd = open(at("setid"), O_WRONLY | O_APPEND);
    fstat(fd, &st);
    printf("  another's 06777 file: mode %o, ", st.st_mode & 07777);
    write(fd, "x", 1);
    fstat(fd, &st);
    printf("after a write %o\n", st.st_mode & 07777);
    close(fd);
    fd = open(at("sgidnox"), O_WRONLY | O_APPEND);
    write(fd, "x", 1);
    fstat(fd, &st);
    printf("  02666 (set-group-ID, no group x) after a write: %o\n", st.st_mode & 07777);
    close(fd);
    truncate(at("truncd"), 1);
    stat(at("truncd"), &st);
    printf("  06777 after truncate: %o\n", st.st_mode & 07777);
}

static pid_t sleeper;   /* a process of uid 2000 to signal */

static void kill_as_1000(void)
{
    become(1000, 1000);
    show("  uid 1000 kill(uid 2000, 0)", kill(sleeper, 0));
    show("  uid 1000 kill(uid 2000, SIGTERM)", kill(sleeper, SIGTERM));
    show("  uid 1000 kill(uid 2000, SIGCONT) in the session", kill(sleeper, SIGCONT));
}

static void kill_as_real_2000(void)
{
    setresuid(2000, 1000, 1000);
    show("  real uid 2000 kill(uid 2000, 0)", kill(sleeper, 0));
}

static void kill_as_saved_2000(void)
{
    setresuid(1000, 1000, 2000);
    show("  saved uid 2000 (euid 1000) kill(uid 2000, 0)", kill(sleeper, 0));
    show("  uid 1000 kill(root, 0)", kill(getppid(), 0));
}

static void killing(void)
{
    int p[2];
    pipe(p);
    sleeper = fork();
    if (sleeper == 0) {
        become(2000, 2000);
        write(p[1], "x", 1);
        for (;;)
            pause();
    }
    char c;
    read(p[0], &c, 1);
    in_child(NULL, kill_as_1000);
    in_child(NULL, kill_as_real_2000);
    in_child(NULL, kill_as_saved_2000);
    show("  root kill(uid 2000, SIGKILL)", kill(sleeper, SIGKILL));
    waitpid(sleeper, NULL, 0);
}

static char *tmpdir_env[] = {"TMPDIR=/somewhere", NULL};   /* what a secure exec drops */

static void setuid_exec_as_1000(void)
{
    become(1000, 1000);
    run_self("suid", tmpdir_env, "uid 1000 runs it");
    run_self("plain", tmpdir_env, "uid 1000 runs the plain copy");
    show("  PR_GET_NO_NEW_PRIVS", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    show("  PR_SET_NO_NEW_PRIVS", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    show("  PR_GET_NO_NEW_PRIVS", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    run_self("suid", tmpdir_env, "uid 1000 with no_new_privs");
}

static void setuid_exec(void)
{
    run_self("suid", tmpdir_env, "root runs it");
    in_child(NULL, setuid_exec_as_1000);
}

/* -- scratch files ------------------------------------------------------------ */

#define N(a) (sizeof a / sizeof *a)
static const struct {
    const char *name;
    uid_t uid;
    gid_t gid;
    mode_t mode;
} made[] = {
    {"shut/x", 0, 0, 0644}, {"f", 0, 0, 0644}, {"none", 0, 0, 0}, {"secret", 0, 0, 0600},
    {"own", 1000, 1000, 0600}, {"ownshut", 1000, 2000, 0077}, {"grp", 2000, 1000, 0040},
    {"oth", 2000, 2000, 0606}, {"nobody", 2000, 2000, 0660}, {"sticky/theirs", 2000, 2000, 0666},
    {"sticky/mine", 1000, 1000, 0644}, {"setid", 2000, 2000, 06777}, {"sgidnox", 2000, 2000, 02666},
    {"truncd", 2000, 2000, 06777},
};
static const char *others[] = {"u/fifo", "u/dev", "suid", "plain"};
static const char *dirs[] = {"sticky", "u", "shut", "newdir"};

static void cleanup(void)
{
    chmod(at("shut"), 0755);
    for (size_t i = 0; i < N(made); i++)
        unlink(at(made[i].name));
    for (size_t i = 0; i < N(others); i++)
        unlink(at(others[i]));
    for (size_t i = 0; i < N(dirs); i++)
        rmdir(at(dirs[i]));
    rmdir(dir);
}

static void make(const char *name, uid_t uid, gid_t gid, mode_t mode)
{
    int fd = open(at(name), O_CREAT | O_WRONLY | O_TRUNC, 0600);
    write(fd, "data\n", 5);
    close(fd);
    if (chown(at(name), uid, gid) || chmod(at(name), mode))
        printf("setup %s: %s\n", name, en(errno));
}

static void copy_self(const char *name, uid_t uid, gid_t gid, mode_t mode)
{
    int in = open(self, O_RDONLY), out = open(at(name), O_CREAT | O_WRONLY | O_TRUNC, 0755);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        write(out, buf, n);
    close(in);
    close(out);
    /* chown before chmod: chown clears the set-id bits */
    if (chown(at(name), uid, gid) || chmod(at(name), mode))
        printf("setup %s: %s\n", name, en(errno));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && strcmp(argv[1], "--report") == 0)
        return report(argv[2]);
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(dir, sizeof dir, "%s/caps", argc > 1 ? argv[1] : ".");
    cleanup();
    umask(022);
    mkdir(dir, 0755);
    mkdir(at("sticky"), 0);
    chmod(at("sticky"), 01777);
    mkdir(at("u"), 0755);
    chown(at("u"), 1000, 1000);
    mkdir(at("shut"), 0755);
    for (size_t i = 0; i < N(made); i++)
        make(made[i].name, made[i].uid, made[i].gid, made[i].mode);
    chmod(at("shut"), 0);
    copy_self("suid", 1234, 4321, 06755);
    copy_self("plain", 0, 0, 0755);

    print_caps("root");
    print_ids("root");
    versions();
    in_child("capset drops CAP_CHOWN", drop_chown);
    in_child("capset drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH", drop_dac);
    in_child("bounding set", bounding);
    in_child("euid 1000 and back", seteuid_and_back);
    in_child("setuid(1000)", setuid_fully);
    in_child("keep-caps and ambient", keepcaps);
    in_child("files as uid 1000", as_user);
    in_child("kill between uids", killing);
    in_child("set-user-ID and set-group-ID copy", setuid_exec);
    cleanup();
    printf("done\n");
    return 0;
}
