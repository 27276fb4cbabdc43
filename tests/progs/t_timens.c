/* Time namespaces: unshare(CLONE_NEWTIME) and its time_for_children, the
   offsets file (its syntax, EINVAL, ERANGE, EPERM, EACCES once entered),
   the clocks of a process inside (vDSO and syscall, each affected clock,
   the wall clock untouched), absolute times (clock_nanosleep, timerfd,
   POSIX timers, futex), /proc/uptime, sysinfo and /proc/PID/stat, setns
   (by nsfs file and pidfd), clone3, vfork then exec, the NS_GET_*
   ioctls.  Run as root; only comparisons are printed, never times. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "results.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x80
#endif
#define NSIO 0xb7
#define NS_GET_USERNS _IO(NSIO, 0x1)
#define NS_GET_PARENT _IO(NSIO, 0x2)
#define NS_GET_NSTYPE _IO(NSIO, 0x3)
#define NS_GET_OWNER_UID _IO(NSIO, 0x4)

#define NSEC 1000000000LL
#define MS 1000000LL
/* the offsets of the namespace under test: monotonic ahead, boot behind */
#define MONO_S 10
#define MONO_NS 250000000
#define MONO_OFF (MONO_S * NSEC + MONO_NS)
#define BOOT_S (-3)
#define BOOT_OFF (BOOT_S * NSEC)
#define SLEEP (50 * MS)
#define SLACK (2000 * MS)

static const clockid_t MONO_CLOCKS[] = {CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE};
static const char *MONO_NAMES[] = {"MONOTONIC", "MONOTONIC_RAW", "MONOTONIC_COARSE"};

static unsigned long ino_of(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 ? (unsigned long)s.st_ino : 0;
}

static unsigned long fd_ino(int fd)
{
    struct stat s;
    return fstat(fd, &s) == 0 ? (unsigned long)s.st_ino : 0;
}

static int same_ns(void)
{
    return ino_of("/proc/self/ns/time") == ino_of("/proc/self/ns/time_for_children");
}

static long long ts_ns(struct timespec ts)
{
    return ts.tv_sec * NSEC + ts.tv_nsec;
}

/* glibc's clock_gettime: the vDSO */
static long long vdso_now(clockid_t c)
{
    struct timespec ts;
    return clock_gettime(c, &ts) == 0 ? ts_ns(ts) : -1;
}

static long long sys_now(clockid_t c)
{
    struct timespec ts;
    return syscall(SYS_clock_gettime, c, &ts) == 0 ? ts_ns(ts) : -1;
}

static struct timespec ts_of(long long ns)
{
    struct timespec ts = {ns / NSEC, ns % NSEC};
    return ts;
}

static int wait_child(pid_t c)
{
    int st;
    if (waitpid(c, &st, 0) != c)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* a write of text to /proc/self/timens_offsets, its result shown */
static void put(const char *label, const char *text, size_t len)
{
    int fd = open("/proc/self/timens_offsets", O_WRONLY);
    if (fd < 0) {
        printf("%s: open -1 %s\n", label, en(errno));
        return;
    }
    res(label, write(fd, text, len));
    close(fd);
}

#define PUT(label, text) put(label, text, sizeof text - 1)

static void offsets_syntax(void)
{
    show_small("offsets of a new namespace", "/proc/self/timens_offsets");
    PUT("unknown clock", "foo 1 0");
    PUT("realtime by number", "0 1 0");
    PUT("process cputime by number", "2 1 0");
    PUT("nsec 10^9", "monotonic 1 1000000000");
    PUT("negative nsec", "monotonic 1 -1");
    PUT("no nsec", "monotonic 1");
    PUT("plus sign", "monotonic +1 0");
    PUT("letters", "monotonic x 0");
    PUT("empty", "");
    PUT("empty line after", "monotonic 1 0\n\n");
    PUT("bad second line, nothing set", "monotonic 7 0\nfoo 1 0\n");
    PUT("clock before zero", "monotonic -1000000000 0");
    PUT("past KTIME_SEC_MAX/2", "boottime 4611686018 0");
    PUT("past KTIME_SEC_MAX", "monotonic 9223372037 0");
    PUT("past -KTIME_SEC_MAX", "boottime -9223372037 0");
    PUT("ERANGE second line, nothing set", "monotonic 7 0\nboottime -99999999999 0");
    show_small("offsets after the refused writes", "/proc/self/timens_offsets");
    PUT("by number", "1 5 0\n7 6 7");
    show_small("offsets by number", "/proc/self/timens_offsets");
    PUT("a tenth letter starts the seconds", "monotonic12 3");
    PUT("seconds wrap at 64 bits", "boottime 18446744073709551615 0");
    show_small("offsets after the quirks", "/proc/self/timens_offsets");
    PUT("nsec of 2^64-1 is -1", "boottime 2 18446744073709551615");
    show_small("offsets with nsec -1", "/proc/self/timens_offsets");
    PUT("three lines: two taken", "monotonic 1 0\nboottime 2 0\nmonotonic 3 0\n");
    show_small("offsets after three lines", "/proc/self/timens_offsets");
    PUT("spaces and a tail", "  boottime\t 4   5 and more\n");
    show_small("offsets after spaces", "/proc/self/timens_offsets");
    int fd = open("/proc/self/timens_offsets", O_RDWR);
    res("pwrite at 1", pwrite(fd, "monotonic 1 0", 13, 1));
    static char big[4096];
    memset(big, ' ', sizeof big);
    memcpy(big, "monotonic 1 0", 13);
    res("a page", write(fd, big, sizeof big));
    res("a page less one", write(fd, big, sizeof big - 1));
    res("the position stays 0", lseek(fd, 0, SEEK_CUR));
    res("again through one fd", write(fd, "monotonic 2 0", 13));
    close(fd);
    show_small("offsets after the fd's writes", "/proc/self/timens_offsets");
}

/* clock c read by a process in the namespace lies between the parent's
   readings before and after, moved by the offset */
static void between(const char *what, long long before, long long in, long long after, long long off)
{
    printf("%s: %s\n", what, in >= 0 && before + off <= in && in <= after + off ? "offset ok" : "WRONG");
}

static long long uptime_centis(void)
{
    char buf[128];
    if (read_small("/proc/uptime", buf, sizeof buf) < 0)
        return -1;
    long s = 0, c = 0;
    sscanf(buf, "%ld.%ld", &s, &c);
    return s * 100LL + c;
}

static long sysinfo_uptime(void)
{
    struct sysinfo si;
    return sysinfo(&si) == 0 ? si.uptime : -1;
}

static unsigned long long stat_start(const char *path)
{
    char buf[1024];
    if (read_small(path, buf, sizeof buf) < 0)
        return 0;
    char *p = strrchr(buf, ')');
    unsigned long long v = 0;
    for (int field = 3; p && field <= 22; field++) {
        p = strchr(p + 1, ' ');
        if (p && field == 22)
            v = strtoull(p + 1, NULL, 10);
    }
    return v;
}

/* an absolute sleep, timer or wait to now+SLEEP on clock c in the
   namespace takes SLEEP, not SLEEP plus or minus the offset */
static void timed(const char *what, long long start)
{
    long long took = vdso_now(CLOCK_MONOTONIC) - start;
    printf("%s: %s\n", what, took >= SLEEP && took < SLEEP + SLACK ? "in bounds" : took < SLEEP ? "TOO SHORT" : "TOO LONG");
}

static void absolute_times(void)
{
    for (int i = 0; i < 2; i++) {
        clockid_t c = i ? CLOCK_BOOTTIME : CLOCK_MONOTONIC;
        const char *n = i ? "BOOTTIME" : "MONOTONIC";
        char what[96];
        long long start = vdso_now(CLOCK_MONOTONIC);
        struct timespec at = ts_of(vdso_now(c) + SLEEP);
        snprintf(what, sizeof what, "clock_nanosleep %s TIMER_ABSTIME", n);
        int r = clock_nanosleep(c, TIMER_ABSTIME, &at, NULL);
        if (r)
            printf("%s: %s\n", what, en(r));
        else
            timed(what, start);

        int fd = timerfd_create(c, 0);
        start = vdso_now(CLOCK_MONOTONIC);
        struct itimerspec its = {.it_value = ts_of(vdso_now(c) + SLEEP)};
        snprintf(what, sizeof what, "timerfd %s TFD_TIMER_ABSTIME", n);
        res(what, timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL));
        struct itimerspec cur;
        timerfd_gettime(fd, &cur);
        long long left = ts_ns(cur.it_value);
        printf("timerfd %s remaining: %s\n", n, left > 0 && left <= SLEEP ? "within the sleep" : "WRONG");
        uint64_t ticks = 0;
        res("timerfd read", read(fd, &ticks, sizeof ticks));
        snprintf(what, sizeof what, "timerfd %s expiry", n);
        timed(what, start);
        close(fd);

        timer_t tm;
        struct sigevent sev = {.sigev_notify = SIGEV_NONE};
        timer_create(c, &sev, &tm);
        its.it_value = ts_of(vdso_now(c) + SLEEP);
        snprintf(what, sizeof what, "timer_settime %s TIMER_ABSTIME", n);
        res(what, timer_settime(tm, TIMER_ABSTIME, &its, NULL));
        timer_gettime(tm, &cur);
        left = ts_ns(cur.it_value);
        printf("timer %s remaining: %s\n", n, left > 0 && left <= SLEEP ? "within the sleep" : "WRONG");
        timer_delete(tm);
    }
    int word = 0;
    long long start = vdso_now(CLOCK_MONOTONIC);
    struct timespec at = ts_of(vdso_now(CLOCK_MONOTONIC) + SLEEP);
    res("futex WAIT_BITSET absolute", syscall(SYS_futex, &word, FUTEX_WAIT_BITSET, 0, &at, NULL, FUTEX_BITSET_MATCH_ANY));
    timed("futex expiry", start);
}

/* in a child in the namespace: the clocks against the parent's readings */
static long long before[2][4], before_real, before_up, before_si;
static int outer_fd, test_fd;     /* the namespace the program started in, the one under test */

static void inside(void)
{
    printf("child: time is time_for_children: %d\n", same_ns());
    show_small("child sees offsets", "/proc/self/timens_offsets");
    PUT("child writes its namespace's offsets", "monotonic 1 0");
    long long in[2][4];
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 3; i++)
            in[k][i] = k ? sys_now(MONO_CLOCKS[i]) : vdso_now(MONO_CLOCKS[i]);
        in[k][3] = k ? sys_now(CLOCK_BOOTTIME) : vdso_now(CLOCK_BOOTTIME);
    }
    long long real = vdso_now(CLOCK_REALTIME);
    long long up = uptime_centis(), si = sysinfo_uptime();
    unsigned long long start_in = stat_start("/proc/self/stat");
    /* the parent's clocks, in the outer namespace: setns there and read */
    res("child setns to the outer namespace", setns(outer_fd, CLONE_NEWTIME));
    printf("child: in the outer namespace: %d\n", ino_of("/proc/self/ns/time") == fd_ino(outer_fd));
    unsigned long long start_out = stat_start("/proc/self/stat");
    for (int k = 0; k < 2; k++) {
        const char *via = k ? "syscall" : "vDSO";
        char what[96];
        for (int i = 0; i < 4; i++) {
            clockid_t c = i < 3 ? MONO_CLOCKS[i] : CLOCK_BOOTTIME;
            long long after = k ? sys_now(c) : vdso_now(c);
            snprintf(what, sizeof what, "%s %s", via, i < 3 ? MONO_NAMES[i] : "BOOTTIME");
            between(what, before[k][i], in[k][i], after, i < 3 ? MONO_OFF : BOOT_OFF);
        }
    }
    between("REALTIME", before_real, real, vdso_now(CLOCK_REALTIME), 0);
    between("/proc/uptime", before_up, up, uptime_centis(), BOOT_OFF / (NSEC / 100));
    between("sysinfo uptime", before_si, si, sysinfo_uptime(), BOOT_OFF / NSEC);
    printf("stat start time moved by the boot offset: %d\n",
           (long long)(start_in - start_out) == BOOT_OFF / (NSEC / 100));
}

static void enter_by_fork(void)
{
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 3; i++)
            before[k][i] = k ? sys_now(MONO_CLOCKS[i]) : vdso_now(MONO_CLOCKS[i]);
        before[k][3] = k ? sys_now(CLOCK_BOOTTIME) : vdso_now(CLOCK_BOOTTIME);
    }
    before_real = vdso_now(CLOCK_REALTIME);
    before_up = uptime_centis();
    before_si = sysinfo_uptime();
    unsigned long children = ino_of("/proc/self/ns/time_for_children");
    pid_t c = fork();
    if (c == 0) {
        printf("child: in the parent's time_for_children: %d\n", ino_of("/proc/self/ns/time") == children);
        absolute_times();
        inside();
        fflush(stdout);
        _exit(0);
    }
    printf("child status %d\n", wait_child(c));
    printf("parent: still in its own: %d\n", !same_ns());
    PUT("offsets once a child entered", "monotonic 1 0");
    show_small("offsets kept", "/proc/self/timens_offsets");
}

/* the vfork child exec'd: in its parent's time_for_children now */
static int vfork_exec(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/time", getppid());
    int outer = open(path, O_RDONLY);
    printf("exec'd: time is time_for_children: %d, not the parent's: %d\n", same_ns(),
           ino_of("/proc/self/ns/time") != fd_ino(outer));
    show_small("exec'd sees offsets", "/proc/self/timens_offsets");
    long long m = vdso_now(CLOCK_MONOTONIC), b = vdso_now(CLOCK_BOOTTIME);
    res("exec'd setns to the parent's namespace", setns(outer, CLONE_NEWTIME));
    long long m0 = vdso_now(CLOCK_MONOTONIC), b0 = vdso_now(CLOCK_BOOTTIME);
    printf("exec'd: monotonic offset: %s\n", m - MONO_OFF <= m0 && m0 - (m - MONO_OFF) < SLACK ? "yes" : "NO");
    printf("exec'd: boottime offset: %s\n", b - BOOT_OFF <= b0 && b0 - (b - BOOT_OFF) < SLACK ? "yes" : "NO");
    return 0;
}

static int thread_fn(void *arg)
{
    (void)arg;
    _exit(0);
}

/* a child sharing the caller's memory stays in its time namespace until
   it execs (as current Linux; 6.1 refused it) */
static void shared_memory(void)
{
    static char stack[65536];
    long r = clone(thread_fn, stack + sizeof stack, CLONE_VM | SIGCHLD, NULL);
    printf("clone CLONE_VM after unshare: %s\n", r > 0 ? "made" : en(errno));
    if (r > 0)
        wait_child(r);
    fflush(stdout);
    pid_t c = vfork();
    if (c == 0) {
        execl("/proc/self/exe", "t_timens", "--exec", NULL);
        _exit(127);
    }
    printf("vfork child status %d\n", c > 0 ? wait_child(c) : -1);
    PUT("offsets once the exec'd child entered", "monotonic 1 0");
}

/* setns by an nsfs file: the namespace under test becomes the process's
   own and its children's, its clocks move; and back */
static void by_setns(void)
{
    res("setns to it as CLONE_NEWNET", setns(test_fd, CLONE_NEWNET));
    long long m0 = vdso_now(CLOCK_MONOTONIC), b0 = sys_now(CLOCK_BOOTTIME);
    res("setns to the namespace under test", setns(test_fd, CLONE_NEWTIME));
    long long m = vdso_now(CLOCK_MONOTONIC), b = sys_now(CLOCK_BOOTTIME);
    printf("after setns: in it: %d, time is time_for_children: %d\n",
           ino_of("/proc/self/ns/time") == fd_ino(test_fd), same_ns());
    printf("after setns: monotonic moved by its offset (vDSO): %s\n",
           m - m0 >= MONO_OFF && m - m0 < MONO_OFF + SLACK ? "yes" : "NO");
    printf("after setns: boottime moved by its offset (syscall): %s\n",
           b - b0 >= BOOT_OFF && b - b0 < BOOT_OFF + SLACK ? "yes" : "NO");
    res("setns back, nstype 0", setns(outer_fd, 0));
    printf("back: time is time_for_children: %d, the outer one: %d\n", same_ns(),
           ino_of("/proc/self/ns/time") == fd_ino(outer_fd));
    long long m1 = vdso_now(CLOCK_MONOTONIC);
    printf("back: monotonic is the machine's again: %s\n", m1 >= m0 && m1 - m0 < SLACK ? "yes" : "NO");
}

static void by_pidfd(void)
{
    int p[2];
    pipe(p);
    unsigned long children = ino_of("/proc/self/ns/time_for_children");
    pid_t c = fork();
    if (c == 0)
        wait_then_exit(p);
    close(p[0]);
    int pfd = syscall(SYS_pidfd_open, c, 0);
    res("setns by pidfd, CLONE_NEWTIME", setns(pfd, CLONE_NEWTIME));
    printf("by pidfd: in the child's: %d, its children's too: %d\n", ino_of("/proc/self/ns/time") == children,
           same_ns());
    res("setns back", setns(outer_fd, CLONE_NEWTIME));
    close(pfd);
    close(p[1]);
    wait_child(c);
}

static void ioctls(void)
{
    int fd = open("/proc/self/ns/time_for_children", O_RDONLY);
    long t = ioctl(fd, NS_GET_NSTYPE);
    printf("NS_GET_NSTYPE is CLONE_NEWTIME: %d\n", t == CLONE_NEWTIME);
    int u = ioctl(fd, NS_GET_USERNS);
    struct stat a, b;
    fstat(u, &a);
    stat("/proc/self/ns/user", &b);
    printf("NS_GET_USERNS is the user namespace: %d\n", u >= 0 && a.st_ino == b.st_ino);
    close(u);
    res("NS_GET_PARENT", ioctl(fd, NS_GET_PARENT));
    uid_t uid;
    res("NS_GET_OWNER_UID", ioctl(fd, NS_GET_OWNER_UID, &uid));
    char link[64];
    ssize_t n = readlink("/proc/self/ns/time_for_children", link, sizeof link - 1);
    link[n < 0 ? 0 : n] = 0;
    printf("time_for_children reads as time:[: %d\n", strncmp(link, "time:[", 6) == 0);
    close(fd);
}

struct clone_args3 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static void by_clone3(void)
{
    unsigned long own = ino_of("/proc/self/ns/time"), children = ino_of("/proc/self/ns/time_for_children");
    struct clone_args3 args = {.flags = CLONE_NEWTIME, .exit_signal = SIGCHLD};
    fflush(stdout);
    long c = syscall(SYS_clone3, &args, sizeof args);
    if (c == 0) {
        unsigned long mine = ino_of("/proc/self/ns/time");
        printf("clone3 child: a new namespace: %d, its children's too: %d\n", mine != own && mine != children,
               same_ns());
        show_small("clone3 child's offsets, copied", "/proc/self/timens_offsets");
        PUT("clone3 child writes", "monotonic 1 0");
        fflush(stdout);
        _exit(0);
    }
    printf("clone3 CLONE_NEWTIME status %d\n", c > 0 ? wait_child(c) : (int)c);
}

static void unprivileged(void)
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        res("child unshares", unshare(CLONE_NEWTIME));
        int early = open("/proc/self/timens_offsets", O_WRONLY);
        int kids = open("/proc/self/ns/time_for_children", O_RDONLY);
        res("setresuid 65534", setresuid(65534, 65534, 65534));
        prctl(PR_SET_DUMPABLE, 1);
        PUT("write as 65534", "monotonic 1 0");
        res("write on a file opened as root", write(early, "boottime 1 0", 12));
        show_small("offsets", "/proc/self/timens_offsets");
        res("unshare as 65534", unshare(CLONE_NEWTIME));
        res("setns as 65534", setns(kids, CLONE_NEWTIME));
        fflush(stdout);
        _exit(0);
    }
    printf("unprivileged child status %d\n", wait_child(c));
}

int main(int argc, char **argv)
{
    need_proc();
    if (argc > 1 && strcmp(argv[1], "--exec") == 0)
        return vfork_exec();
    setvbuf(stdout, NULL, _IOLBF, 0);
    outer_fd = open("/proc/self/ns/time", O_RDONLY);
    printf("before: time is time_for_children: %d\n", same_ns());
    show_small("offsets of the outer namespace", "/proc/self/timens_offsets");
    PUT("offsets of the outer namespace", "monotonic 1 0");
    res("unshare CLONE_NEWTIME", unshare(CLONE_NEWTIME));
    printf("after: time is time_for_children: %d, time unchanged: %d\n", same_ns(),
           ino_of("/proc/self/ns/time") == fd_ino(outer_fd));
    test_fd = open("/proc/self/ns/time_for_children", O_RDONLY);
    ioctls();
    offsets_syntax();
    char text[64];
    int n = snprintf(text, sizeof text, "monotonic %d %d\nboottime %d 0\n", MONO_S, MONO_NS, BOOT_S);
    put("the offsets under test", text, n);
    show_small("offsets under test", "/proc/self/timens_offsets");
    enter_by_fork();
    /* another for the children: a copy of the one under test, writable */
    res("unshare again", unshare(CLONE_NEWTIME));
    printf("a new one: %d\n", ino_of("/proc/self/ns/time_for_children") != fd_ino(test_fd));
    show_small("offsets copied from the last", "/proc/self/timens_offsets");
    put("and writable", text, n);
    shared_memory();
    by_pidfd();
    by_setns();
    by_clone3();
    unprivileged();
    printf("done\n");
    return 0;
}
