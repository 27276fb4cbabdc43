/* Setting the guest's clock: clock_settime, settimeofday, adjtimex.
 * Guest only (tests/test_settime.py): natively, as root, it would set the
 * host's clock.  Reads go through the C library (the vDSO) and the raw
 * syscalls; absolute CLOCK_REALTIME sleeps and timerfds follow a step;
 * TFD_TIMER_CANCEL_ON_SET; the NTP state (adjtimex) and a leap second;
 * EPERM for an unprivileged user.  Every line is deterministic. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000LL

static long long ts_ns(struct timespec ts) { return ts.tv_sec * NS + ts.tv_nsec; }

static long long now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts_ns(ts);
}

static long long sys_now_ns(clockid_t c)
{
    struct timespec ts;
    syscall(SYS_clock_gettime, c, &ts);
    return ts_ns(ts);
}

static int set_rt(long long ns)
{
    struct timespec ts = { ns / NS, ns % NS };
    return clock_settime(CLOCK_REALTIME, &ts);
}

/* |a - b| below 2 s: "ok", else the difference */
static void near(const char *what, long long a, long long b)
{
    long long d = a - b;
    if (d > -2 * NS && d < 2 * NS)
        printf("%s: ok\n", what);
    else
        printf("%s: off by %lld ms\n", what, d / 1000000);
}

static const char *err(int r)
{
    return r == 0 ? "0" : strerror(errno);
}

static void reads(long long want)
{
    struct timeval tv;
    near("  clock_gettime (vdso)", now_ns(CLOCK_REALTIME), want);
    near("  clock_gettime (syscall)", sys_now_ns(CLOCK_REALTIME), want);
    gettimeofday(&tv, NULL);
    near("  gettimeofday", tv.tv_sec * NS + tv.tv_usec * 1000LL, want);
    near("  time", time(NULL) * NS, want);
    near("  coarse", now_ns(CLOCK_REALTIME_COARSE), want);
}

static const char *self;

static void steps(void)
{
    long long base = now_ns(CLOCK_REALTIME), mono = now_ns(CLOCK_MONOTONIC);
    long long tai = now_ns(CLOCK_TAI) - base;
    printf("forward a day: %d\n", set_rt(base + 86400 * NS));
    reads(base + 86400 * NS);
    near("  monotonic unchanged", now_ns(CLOCK_MONOTONIC), mono);
    struct timespec cpu;
    printf("  process CPU clock: %d\n", clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu));
    near("  tai follows", now_ns(CLOCK_TAI) - now_ns(CLOCK_REALTIME), tai);
    int fd = open("/tmp/t_settime.f", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    struct stat st;
    fstat(fd, &st);
    close(fd);
    near("  file mtime", st.st_mtim.tv_sec * NS + st.st_mtim.tv_nsec, base + 86400 * NS);
    printf("back a year: %d\n", set_rt(base - 365 * 86400 * NS));
    reads(base - 365 * 86400 * NS);
    near("  monotonic unchanged", now_ns(CLOCK_MONOTONIC), mono);
    /* a child in the same state sees it too (its vDSO was patched live) */
    pid_t pid = fork();
    if (pid == 0) {
        long long d = now_ns(CLOCK_REALTIME) - (base - 365 * 86400 * NS);
        _exit(d > -2 * NS && d < 2 * NS ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("  forked child: %s\n", WIFEXITED(status) && !WEXITSTATUS(status) ? "ok" : "wrong time");
    pid = fork();
    if (pid == 0) {
        char arg[32];
        snprintf(arg, sizeof arg, "%lld", (base - 365 * 86400 * NS) / NS);
        execl(self, "t_settime", "check", arg, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    set_rt(base);
}

/* a child waits until an hour from now on CLOCK_REALTIME; the parent
   steps the clock past that: the wait ends at once */
static int sleep_abs(const struct timespec *end)
{
    return clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, end, NULL) == 0;
}

static int futex_abs(const struct timespec *end)
{
    static int word;
    long r = syscall(SYS_futex, &word, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 0, end, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    return r == -1 && errno == ETIMEDOUT;
}

static void woken_by_step(const char *what, int (*wait)(const struct timespec *))
{
    long long base = now_ns(CLOCK_REALTIME);
    pid_t pid = fork();
    if (pid == 0) {
        long long m0 = now_ns(CLOCK_MONOTONIC);
        struct timespec end = { (base + 3600 * NS) / NS, 0 };
        int ok = wait(&end);
        _exit(ok && now_ns(CLOCK_MONOTONIC) - m0 < 10 * NS ? 0 : 1);
    }
    usleep(300000);
    set_rt(base + 3601 * NS);
    int status;
    waitpid(pid, &status, 0);
    printf("%s: %s\n", what, WIFEXITED(status) && !WEXITSTATUS(status) ? "ok" : "no");
    set_rt(base);
}

static void timerfds(void)
{
    long long base = now_ns(CLOCK_REALTIME);
    int fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    struct itimerspec its = { { 0, 0 }, { (base + 3600 * NS) / NS, 0 } };
    timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);
    struct pollfd p = { fd, POLLIN, 0 };
    printf("timerfd an hour ahead: poll %d\n", poll(&p, 1, 200));
    set_rt(base + 3601 * NS);
    unsigned long long n = 0;
    int r = poll(&p, 1, 2000);
    ssize_t got = read(fd, &n, 8);
    printf("  after a step past it: poll %d read %zd ticks %llu\n", r, got, n);

    base = now_ns(CLOCK_REALTIME);
    its.it_value.tv_sec = (base + NS) / NS + 1;
    timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);
    set_rt(base - 3600 * NS);
    printf("  armed 1-2 s ahead, clock back an hour: poll %d\n", poll(&p, 1, 2500));
    its.it_value.tv_sec = 0;
    timerfd_settime(fd, 0, &its, NULL);
    close(fd);

    base = now_ns(CLOCK_REALTIME);
    fd = timerfd_create(CLOCK_REALTIME, 0);
    its.it_value.tv_sec = (base + 3600 * NS) / NS;
    printf("cancel on set: %d\n", timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL));
    set_rt(base + NS);
    got = read(fd, &n, 8);
    printf("  read after a step: %zd %s\n", got, got < 0 ? strerror(errno) : "");
    fcntl(fd, F_SETFL, O_NONBLOCK);
    got = read(fd, &n, 8);
    printf("  read again: %zd %s\n", got, got < 0 ? strerror(errno) : "");
    close(fd);
    fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    its.it_value.tv_sec = now_ns(CLOCK_MONOTONIC) / NS + 3600;
    timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL);
    set_rt(base);
    got = read(fd, &n, 8);
    printf("  a monotonic one is not cancelled: %zd %s\n", got, got < 0 ? strerror(errno) : "");
    close(fd);
}

static void show(const char *what, int r, struct timex *tx)
{
    printf("%s: %d freq %ld maxerror %ld esterror %ld status %#x constant %ld tick %ld precision %ld tolerance %ld\n",
           what, r, tx->freq, tx->maxerror, tx->esterror, tx->status, tx->constant, tx->tick,
           tx->precision, tx->tolerance);
}

static void ntp(void)
{
    struct timex tx = { 0 };
    show("adjtimex read", adjtimex(&tx), &tx);
    tx = (struct timex){ .modes = ADJ_FREQUENCY | ADJ_MAXERROR | ADJ_ESTERROR | ADJ_TIMECONST,
                         .freq = 100 << 16, .maxerror = 16000100, .esterror = 1000, .constant = 3 };
    show("adjtimex set", adjtimex(&tx), &tx);
    tx = (struct timex){ .modes = ADJ_STATUS, .status = STA_PLL };
    show("status PLL", adjtimex(&tx), &tx);
    tx = (struct timex){ .modes = ADJ_STATUS, .status = 0 };
    show("status 0", adjtimex(&tx), &tx);
    tx = (struct timex){ .modes = ADJ_TICK, .tick = 9000 - 1 };
    printf("tick too small: %s\n", err(adjtimex(&tx)));
    tx = (struct timex){ .modes = ADJ_TICK, .tick = 11000 + 1 };
    printf("tick too large: %s\n", err(adjtimex(&tx)));
    tx = (struct timex){ .modes = ADJ_FREQUENCY, .freq = 0x7fffffffffffffffLL };
    printf("freq overflow: %s\n", err(adjtimex(&tx)));
    tx = (struct timex){ .modes = ADJ_OFFSET_SINGLESHOT | ADJ_STATUS, .status = STA_INS };
    int r = adjtimex(&tx);
    tx.modes = 0;
    adjtimex(&tx);
    printf("singleshot ignores other modes: %d status %#x\n", r < 0 ? -errno : 0, tx.status);
    printf("bad pointer: %s\n", err(syscall(SYS_adjtimex, (void *)-1L)));

    struct timeval delta = { 0, 200 }, old;
    adjtime(&delta, NULL);
    adjtime(NULL, &old);
    printf("adjtime pending: %s\n", old.tv_sec == 0 && old.tv_usec >= 0 && old.tv_usec <= 200 ? "ok" : "wrong");

    long long before = now_ns(CLOCK_REALTIME);
    tx = (struct timex){ .modes = ADJ_SETOFFSET, .time = { 10, 0 } };
    printf("setoffset +10 s: %d\n", adjtimex(&tx) >= 0 ? 0 : -errno);
    near("  realtime", now_ns(CLOCK_REALTIME), before + 10 * NS);
    tx = (struct timex){ .modes = ADJ_SETOFFSET | ADJ_NANO, .time = { -20, 0 } };
    printf("setoffset -20 s (nano): %d\n", adjtimex(&tx) >= 0 ? 0 : -errno);
    near("  realtime", now_ns(CLOCK_REALTIME), before - 10 * NS);
    tx = (struct timex){ .modes = ADJ_SETOFFSET, .time = { 1, 1000000 } };
    printf("setoffset usec 10^6: %s\n", err(adjtimex(&tx)));
    set_rt(before);

    struct timespec bad = { 1, NS };
    printf("settime nsec 10^9: %s\n", err(clock_settime(CLOCK_REALTIME, &bad)));
    bad.tv_nsec = 0;
    printf("settime monotonic: %s\n", err(clock_settime(CLOCK_MONOTONIC, &bad)));
    bad.tv_sec = -1;
    printf("settime negative: %s\n", err(clock_settime(CLOCK_REALTIME, &bad)));
}

static void zones(void)
{
    long long before = now_ns(CLOCK_REALTIME);
    struct timezone tz = { 60, 0 }, got;
    struct timeval tv;
    printf("first zone, no time: %d\n", settimeofday(NULL, &tz));
    near("  the clock warps an hour", now_ns(CLOCK_REALTIME), before + 3600 * NS);
    gettimeofday(&tv, &got);
    printf("  zone read back: %d %d\n", got.tz_minuteswest, got.tz_dsttime);
    tz.tz_minuteswest = 0;
    printf("second zone: %d\n", settimeofday(NULL, &tz));
    near("  no warp", now_ns(CLOCK_REALTIME), before + 3600 * NS);
    tz.tz_minuteswest = 15 * 60 + 1;
    printf("zone out of range: %s\n", err(settimeofday(NULL, &tz)));
    tv.tv_sec = before / NS;
    tv.tv_usec = 1000000;
    printf("usec 10^6: %s\n", err(settimeofday(&tv, NULL)));
    tv.tv_usec = 0;
    printf("settimeofday: %d\n", settimeofday(&tv, NULL));
    near("  realtime", now_ns(CLOCK_REALTIME), before);
}

static void leap(void)
{
    long long midnight = (now_ns(CLOCK_REALTIME) / NS / 86400 + 1) * 86400 * NS;
    long long tai = now_ns(CLOCK_TAI) / NS - now_ns(CLOCK_REALTIME) / NS;
    set_rt(midnight - 1500000000LL);
    struct timex tx = { .modes = ADJ_STATUS, .status = STA_PLL };
    adjtimex(&tx);
    tx = (struct timex){ .modes = ADJ_STATUS, .status = STA_INS };
    adjtimex(&tx);
    int last = -1;
    printf("leap second states:");
    long long m0 = now_ns(CLOCK_MONOTONIC);
    while (now_ns(CLOCK_MONOTONIC) - m0 < 3 * NS) {
        tx.modes = ADJ_STATUS;      /* as leapsec01: the status read back */
        int r = adjtimex(&tx);
        if (r != last)
            printf(" %d", r);
        last = r;
        usleep(100000);
    }
    printf("\n");
    /* 3 s after 23:59:58.5 with a second inserted: 00:00:00.5 */
    near("  the clock went back a second", now_ns(CLOCK_REALTIME), midnight + 500000000LL);
    printf("  TAI - UTC grew by %lld\n", now_ns(CLOCK_TAI) / NS - now_ns(CLOCK_REALTIME) / NS - tai);
    tx = (struct timex){ .modes = ADJ_STATUS, .status = 0 };
    adjtimex(&tx);
}

static void unprivileged(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) || setuid(65534))
            _exit(1);
        struct timespec ts = { now_ns(CLOCK_REALTIME) / NS, 0 };
        printf("nobody: clock_settime %s\n", err(clock_settime(CLOCK_REALTIME, &ts)));
        struct timeval tv = { ts.tv_sec, 0 };
        printf("nobody: settimeofday %s\n", err(settimeofday(&tv, NULL)));
        struct timex tx = { .modes = ADJ_FREQUENCY };
        printf("nobody: adjtimex set %s\n", err(adjtimex(&tx)));
        tx.modes = 0;
        printf("nobody: adjtimex read %s\n", adjtimex(&tx) >= 0 ? "0" : strerror(errno));
        struct timeval d = { 0, 10 };
        printf("nobody: adjtime %s\n", err(adjtime(&d, NULL)));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    self = argv[0];
    if (argc == 3 && !strcmp(argv[1], "check")) {     /* a new image: patched too */
        near("  exec'd image", time(NULL) * NS, atoll(argv[2]) * NS);
        return 0;
    }
    ntp();
    steps();
    woken_by_step("absolute realtime sleep woken by a step", sleep_abs);
    woken_by_step("FUTEX_CLOCK_REALTIME wait timed out by a step", futex_abs);
    timerfds();
    zones();
    leap();
    unprivileged();
    printf("done\n");
    return 0;
}
