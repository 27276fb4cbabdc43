/* Clocks: which ids clock_gettime/getres/nanosleep/settime take, their
   resolutions, CLOCK_BOOTTIME against CLOCK_MONOTONIC and /proc/uptime,
   the CPU-time clocks of processes and threads (clock_getcpuclockid,
   pthread_getcpuclockid and the ids built from a pid or tid), and the
   errors of setting the time (without CAP_SYS_TIME: the host's clock is
   never touched).  Raw syscalls where glibc would answer itself.  Times
   are printed only as comparisons.  Deterministic output. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include "results.h"

#define PROCESS_CLOCK(pid, which) ((~(clockid_t)(pid) << 3) | (which))
#define THREAD_CLOCK(tid, which) ((~(clockid_t)(tid) << 3) | (which) | 4)
#define PROF 0
#define VIRT 1
#define SCHED 2
#define MS 1000000LL

static long long ts_ns(struct timespec ts) { return ts.tv_sec * 1000000000LL + ts.tv_nsec; }

static long long now(clockid_t clk)
{
    struct timespec ts = {0, 0};
    if (syscall(SYS_clock_gettime, clk, &ts) < 0)
        return -1;
    return ts_ns(ts);
}

static void burn(clockid_t clk, long long ns)
{
    long long end = now(clk) + ns;
    while (now(clk) < end)
        ;
}

/* whether a clock reads, not its value */
static void show(const char *what, clockid_t clk)
{
    struct timespec ts;
    long r = syscall(SYS_clock_gettime, clk, &ts);
    printf("%s: %s\n", what, r < 0 ? en(errno) : "0");
}

static void on_alrm(int sig) { (void)sig; }

static void alarm_in(long ms)
{
    struct itimerval it = {{0, 0}, {ms / 1000, ms % 1000 * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* ---- which ids ---- */
static void ids(void)
{
    static const int clks[] = {-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 100};
    for (unsigned i = 0; i < sizeof clks / sizeof clks[0]; i++) {
        struct timespec ts, res = {-1, -1};
        long g = syscall(SYS_clock_gettime, clks[i], &ts);
        int ge = errno;
        long r = syscall(SYS_clock_getres, clks[i], &res);
        int re = errno;
        long rn = syscall(SYS_clock_getres, clks[i], NULL);
        int rne = errno;
        /* (a process CPU-time sleep would wait for CPU time no one uses) */
        struct timespec req = {0, 1000}, rem;
        long s = clks[i] == CLOCK_PROCESS_CPUTIME_ID ? 0 : syscall(SYS_clock_nanosleep, clks[i], 0, &req, &rem);
        int se = errno;
        printf("clock %d: gettime %s, getres %s res=%lld.%09ld, getres NULL %s, nanosleep 1us %s\n", clks[i],
               g < 0 ? en(ge) : "0", r < 0 ? en(re) : "0", (long long)res.tv_sec, res.tv_nsec,
               rn < 0 ? en(rne) : "0", s < 0 ? en(se) : "0");
    }
    struct timespec ts;
    res("clock_gettime EFAULT", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)8));
    res("clock_getres EFAULT", syscall(SYS_clock_getres, CLOCK_MONOTONIC, (void *)8));
    res("clock_gettime bad id EFAULT", syscall(SYS_clock_gettime, 100, (void *)8));
    (void)ts;
}

/* ---- BOOTTIME, MONOTONIC, /proc/uptime ---- */
static void boottime(void)
{
    long long m1 = now(CLOCK_MONOTONIC), b = now(CLOCK_BOOTTIME), m2 = now(CLOCK_MONOTONIC);
    struct timespec vb;
    clock_gettime(CLOCK_BOOTTIME, &vb);         /* the vDSO's */
    long long bv = ts_ns(vb);
    if (access("/proc/uptime", F_OK) < 0)
        mount("proc", "/proc", "proc", 0, NULL);      /* a guest started with init=/bin/sh */
    FILE *f = fopen("/proc/uptime", "r");
    double up = -1, idle = -1;
    if (f) {
        if (fscanf(f, "%lf %lf", &up, &idle) != 2)
            up = -1;
        fclose(f);
    }
    long long b2 = now(CLOCK_BOOTTIME);
    struct sysinfo si;
    sysinfo(&si);
    long long b3 = now(CLOCK_BOOTTIME);
    long long upns = (long long)(up * 1e9 + 0.5);
    printf("monotonic <= boottime: %d\n", m1 <= b && m2 <= b2);
    printf("boottime syscall vs vDSO within 50 ms: %d\n", bv >= b && bv - b < 50 * MS);
    printf("/proc/uptime within 20 ms of boottime (to its 10 ms): %d\n",
           upns >= b - 10 * MS && upns <= b2 + 10 * MS);
    printf("sysinfo uptime is boottime's seconds: %d\n",
           si.uptime >= (b2 / 1000000000) && si.uptime <= (b3 / 1000000000) + 1);
    printf("idle time is not negative: %d\n", idle >= 0);
    long long r = now(CLOCK_REALTIME), tai = now(11), r2 = now(CLOCK_REALTIME);
    printf("TAI - REALTIME in whole seconds, as the host: %lld\n", (tai - r + 500 * MS) / 1000000000);
    (void)r2;
    long long rc = now(CLOCK_REALTIME_COARSE), mc = now(CLOCK_MONOTONIC_COARSE), raw = now(CLOCK_MONOTONIC_RAW);
    printf("coarse and raw clocks near the precise ones: %d %d %d\n",
           rc <= now(CLOCK_REALTIME) && now(CLOCK_REALTIME) - rc < 100 * MS,
           mc <= now(CLOCK_MONOTONIC) && now(CLOCK_MONOTONIC) - mc < 100 * MS, raw > 0);
}

/* ---- CPU-time clocks ---- */
static volatile int spin_go, spin_stop;
static pid_t other_tid;
static long long other_own_process_clock;
static int other_own_process_errno, other_getres_own_tid;

static void *spinner(void *arg)
{
    (void)arg;
    other_tid = syscall(SYS_gettid);
    struct timespec ts;
    /* a thread names its process by its own tid for clock_gettime only */
    other_own_process_clock = syscall(SYS_clock_gettime, PROCESS_CLOCK(other_tid, SCHED), &ts);
    other_own_process_errno = other_own_process_clock < 0 ? errno : 0;
    other_getres_own_tid = syscall(SYS_clock_getres, PROCESS_CLOCK(other_tid, SCHED), &ts) < 0 ? errno : 0;
    __atomic_store_n(&spin_go, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&spin_stop, __ATOMIC_SEQ_CST))
        ;
    return NULL;
}

static void cpu_clocks(void)
{
    pid_t me = getpid();
    clockid_t cid = 0;
    int r0 = clock_getcpuclockid(me, &cid);
    printf("clock_getcpuclockid(self): %d, is MAKE_PROCESS_CPUCLOCK(pid): %d\n", r0, cid == PROCESS_CLOCK(me, SCHED));
    r0 = clock_getcpuclockid(0, &cid);
    printf("clock_getcpuclockid(0): %d, is MAKE_PROCESS_CPUCLOCK(0): %d\n", r0, cid == PROCESS_CLOCK(0, SCHED));
    r0 = pthread_getcpuclockid(pthread_self(), &cid);
    printf("pthread_getcpuclockid(self): %d, is MAKE_THREAD_CPUCLOCK(0): %d\n", r0, cid == THREAD_CLOCK(0, SCHED));

    /* the calling thread's CPU time grows as it runs */
    long long t0 = now(CLOCK_THREAD_CPUTIME_ID), p0 = now(CLOCK_PROCESS_CPUTIME_ID);
    long long tp0 = now(PROCESS_CLOCK(me, SCHED)), tt0 = now(THREAD_CLOCK(syscall(SYS_gettid), SCHED));
    burn(CLOCK_THREAD_CPUTIME_ID, 60 * MS);
    long long t1 = now(CLOCK_THREAD_CPUTIME_ID), p1 = now(CLOCK_PROCESS_CPUTIME_ID);
    long long tp1 = now(PROCESS_CLOCK(me, SCHED)), tt1 = now(THREAD_CLOCK(syscall(SYS_gettid), SCHED));
    printf("after 60 ms of CPU: thread +%d process +%d (by pid +%d, by tid +%d), process >= thread: %d\n",
           t1 - t0 >= 60 * MS, p1 - p0 >= 60 * MS, tp1 - tp0 >= 60 * MS, tt1 - tt0 >= 60 * MS, p1 >= t1);
    long long prof = now(PROCESS_CLOCK(0, PROF)), virt = now(PROCESS_CLOCK(0, VIRT));
    long long tprof = now(THREAD_CLOCK(0, PROF)), tvirt = now(THREAD_CLOCK(0, VIRT));
    /* (tick-sampled: how near SCHED they are depends on the host's load) */
    printf("PROF >= VIRT, PROF counted (process, thread): %d %d %d %d\n", prof >= virt, prof > 0, tprof >= tvirt,
           tprof > 0);
    struct timespec rs;
    syscall(SYS_clock_getres, PROCESS_CLOCK(0, SCHED), &rs);
    printf("getres SCHED: %ld ns\n", rs.tv_nsec);
    syscall(SYS_clock_getres, THREAD_CLOCK(0, SCHED), &rs);
    printf("getres thread SCHED: %ld ns\n", rs.tv_nsec);
    long prof_res = syscall(SYS_clock_getres, PROCESS_CLOCK(0, PROF), &rs);
    printf("getres PROF: %ld, a tick, as the host's: %ld\n", prof_res, rs.tv_nsec);
    res("getres which=3", syscall(SYS_clock_getres, PROCESS_CLOCK(0, 3), &rs));
    res("getres thread which=3", syscall(SYS_clock_getres, THREAD_CLOCK(0, 3), &rs));

    /* another thread: its clock, and the process's, which counts it */
    pthread_t th;
    pthread_create(&th, NULL, spinner, NULL);
    while (!__atomic_load_n(&spin_go, __ATOMIC_SEQ_CST))
        ;
    printf("other thread names the process by its own tid: %lld %s; getres by it: %s\n",
           other_own_process_clock, en(other_own_process_errno), en(other_getres_own_tid));
    clockid_t tc;
    pthread_getcpuclockid(th, &tc);
    printf("pthread_getcpuclockid(other) is MAKE_THREAD_CPUCLOCK(tid): %d\n", tc == THREAD_CLOCK(other_tid, SCHED));
    struct timespec req = {0, 40 * MS};
    long r = syscall(SYS_clock_nanosleep, tc, 0, &req, NULL);
    printf("nanosleep 40 ms on the other thread's clock: %ld, it has run 40 ms: %d\n", r,
           now(tc) >= 40 * MS);
    long long pbefore = now(CLOCK_PROCESS_CPUTIME_ID), mine = now(CLOCK_THREAD_CPUTIME_ID);
    r = syscall(SYS_clock_nanosleep, CLOCK_PROCESS_CPUTIME_ID, 0, &req, NULL);
    long long pafter = now(CLOCK_PROCESS_CPUTIME_ID);
    printf("nanosleep 40 ms on the process clock: %ld, it has grown 40 ms: %d, mine hardly: %d\n", r,
           pafter - pbefore >= 40 * MS, now(CLOCK_THREAD_CPUTIME_ID) - mine < 20 * MS);
    struct timespec abs = {0, 0};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &abs);
    abs.tv_nsec += 30 * MS;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    r = syscall(SYS_clock_nanosleep, PROCESS_CLOCK(me, SCHED), TIMER_ABSTIME, &abs, NULL);
    printf("absolute nanosleep on the process clock by pid: %ld, reached: %d\n", r,
           now(CLOCK_PROCESS_CPUTIME_ID) >= ts_ns(abs));
    show("main thread names a non-leader tid as a process", PROCESS_CLOCK(other_tid, SCHED));
    res("getres the other thread's clock", syscall(SYS_clock_getres, tc, &rs));
    /* the threads' clocks first: the spinner's time between the reads
       only adds to the process's (read in one expression, the order was
       the compiler's, and a main thread preempted between the reads on a
       loaded host saw the spinner outrun the slack) */
    long long t_other = now(tc), t_mine = now(CLOCK_THREAD_CPUTIME_ID);
    printf("process >= main thread + other thread: %d\n",
           now(CLOCK_PROCESS_CPUTIME_ID) >= t_mine + t_other - 5 * MS);
    __atomic_store_n(&spin_stop, 1, __ATOMIC_SEQ_CST);
    long long tdone = now(tc);
    pthread_join(th, NULL);
    long long pj = now(CLOCK_PROCESS_CPUTIME_ID);
    printf("after the join: process keeps the thread's time: %d\n",
           pj >= now(CLOCK_THREAD_CPUTIME_ID) + tdone - 5 * MS);
    /* not the joined thread's clock: Linux itself answers 0 or EINVAL,
       as the thread's task is reaped a moment after pthread_join returns
       (and ESRCH when the reap falls inside the call), so the lines below
       that name it wait for the reap first */
    for (int i = 0; i < 1000 && syscall(SYS_tgkill, getpid(), other_tid, 0) == 0; i++)
        usleep(1000);

    /* nanosleep on the CPU clocks: what is refused */
    req.tv_nsec = 1000;
    res("nanosleep CLOCK_THREAD_CPUTIME_ID", syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL));
    res("nanosleep own thread by tid 0", syscall(SYS_clock_nanosleep, THREAD_CLOCK(0, SCHED), 0, &req, NULL));
    res("nanosleep own thread by tid", syscall(SYS_clock_nanosleep, THREAD_CLOCK(syscall(SYS_gettid), SCHED), 0,
                                             &req, NULL));
    res("nanosleep a thread of no one", syscall(SYS_clock_nanosleep, THREAD_CLOCK(other_tid, SCHED), 0, &req, NULL));
    res("nanosleep PROF which=3", syscall(SYS_clock_nanosleep, PROCESS_CLOCK(0, 3), 0, &req, NULL));
    req.tv_nsec = 1000000000;
    res("nanosleep process clock bad timespec", syscall(SYS_clock_nanosleep, CLOCK_PROCESS_CPUTIME_ID, 0, &req,
                                                       NULL));
    req.tv_nsec = 0;
    res("nanosleep process clock 0", syscall(SYS_clock_nanosleep, CLOCK_PROCESS_CPUTIME_ID, 0, &req, NULL));
    res("nanosleep process clock EFAULT", syscall(SYS_clock_nanosleep, CLOCK_PROCESS_CPUTIME_ID, 0, (void *)8,
                                                 NULL));

    /* a process CPU sleep no CPU use ends: a signal does, leaving the rest */
    signal(SIGALRM, on_alrm);
    struct timespec lreq = {1, 0}, rem = {-1, -1};
    alarm_in(50);
    r = syscall(SYS_clock_nanosleep, CLOCK_PROCESS_CPUTIME_ID, 0, &lreq, &rem);
    int e = errno;
    printf("interrupted process CPU nanosleep: %ld %s, remaining between 0.8 and 1 s: %d\n", r, en(e),
           ts_ns(rem) > 800 * MS && ts_ns(rem) <= 1000 * MS);
    alarm_in(50);
    r = syscall(SYS_clock_nanosleep, CLOCK_PROCESS_CPUTIME_ID, 0, &lreq, (void *)8);
    printf("interrupted, remaining to a bad address: %ld %s\n", r, en(errno));
    alarm_in(50);
    struct timespec mreq = {1, 0};
    r = syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &mreq, (void *)8);
    printf("interrupted monotonic nanosleep, remaining to a bad address: %ld %s\n", r, en(errno));
    signal(SIGALRM, SIG_DFL);

    /* another process's clock: readable, sleepable; gone with the reap */
    int go[2], ready[2], stop[2];
    pipe(go);
    pipe(ready);
    pipe2(stop, O_NONBLOCK);
    pid_t c = fork();
    if (c == 0) {
        char x;
        write(ready[1], "r", 1);
        read(go[0], &x, 1);
        /* at least 150 ms, and on until told: a child that finished first
           would leave the sleeper below on a clock that no longer moves
           (Linux then sleeps for ever) */
        while (now(CLOCK_PROCESS_CPUTIME_ID) < 150 * MS || read(stop[0], &x, 1) != 1)
            ;
        _exit(0);
    }
    char x;
    read(ready[0], &x, 1);
    clockid_t cc = 0;
    r0 = clock_getcpuclockid(c, &cc);
    printf("clock_getcpuclockid(child): %d, is MAKE_PROCESS_CPUCLOCK: %d\n", r0, cc == PROCESS_CLOCK(c, SCHED));
    printf("child's clock before it runs, below 100 ms: %d\n", now(cc) < 100 * MS);
    res("the child's thread clock", syscall(SYS_clock_gettime, THREAD_CLOCK(c, SCHED), &rs));
    res("getres the child's clock", syscall(SYS_clock_getres, cc, &rs));
    res("settime the child's clock", syscall(SYS_clock_settime, cc, &rs));
    res("settime my own clock by pid", syscall(SYS_clock_settime, PROCESS_CLOCK(me, SCHED), &rs));
    res("settime my thread clock by tid 0", syscall(SYS_clock_settime, THREAD_CLOCK(0, SCHED), &rs));
    write(go[1], "g", 1);
    req.tv_sec = 0;
    req.tv_nsec = 100 * MS;
    r = syscall(SYS_clock_nanosleep, cc, 0, &req, NULL);
    printf("nanosleep 100 ms of the child's CPU: %ld, it has run 100 ms: %d\n", r, now(cc) >= 100 * MS);
    write(stop[1], "s", 1);
    siginfo_t si;
    waitid(P_PID, c, &si, WEXITED | WNOWAIT);
    long long z = now(cc);
    printf("a zombie's clock: %d, at least 150 ms: %d\n", z >= 0, z >= 150 * MS);
    waitpid(c, NULL, 0);
    show("after the reap: its clock", cc);
    printf("after the reap: clock_getcpuclockid %s\n", en(clock_getcpuclockid(c, &cc)));
    close(go[0]); close(go[1]); close(ready[0]); close(ready[1]); close(stop[0]); close(stop[1]);
}

/* ---- reading the clock's adjtimex state (the machine's own: its state
   differs between a synchronised host and a fresh guest, so only the two
   calls' agreement is printed) ---- */
static void adjtimex_read(void)
{
    struct timex tx, tx2;
    memset(&tx, 0, sizeof tx);
    memset(&tx2, 0, sizeof tx2);
    tx.tai = 12345;         /* filled in from the clock */
    long a = syscall(SYS_adjtimex, &tx);
    long b = syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx2);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    printf("adjtimex read: a state %d, clock_adjtime read: same state=%d status=%d tick=%d tai=%d, "
           "time near now: %d\n", a >= 0 && a <= 5, a == b, tx.status == tx2.status, tx.tick == tx2.tick,
           tx.tai == tx2.tai,
           tx.time.tv_sec >= now.tv_sec - 1 && tx.time.tv_sec <= now.tv_sec);
}

/* ---- setting the time, without CAP_SYS_TIME ---- */
static void setting(void)
{
    pid_t c = fork();
    if (c == 0) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2];
        syscall(SYS_capget, &h, d);
        d[0].effective &= ~(1u << CAP_SYS_TIME);
        d[0].permitted &= ~(1u << CAP_SYS_TIME);
        long dropped = syscall(SYS_capset, &h, d);
        syscall(SYS_capget, &h, d);
        printf("drop CAP_SYS_TIME: %ld\n", dropped);
        if (dropped < 0 || d[0].effective & (1u << CAP_SYS_TIME))
            _exit(1);           /* never set the host's clock */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        static const int clks[] = {-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 100};
        for (unsigned i = 0; i < sizeof clks / sizeof clks[0]; i++) {
            char what[64];
            snprintf(what, sizeof what, "clock_settime(%d, now)", clks[i]);
            res(what, syscall(SYS_clock_settime, clks[i], &ts));
        }
        struct timespec bad = ts;
        bad.tv_nsec = 1000000000;
        res("clock_settime REALTIME nsec 1e9", syscall(SYS_clock_settime, CLOCK_REALTIME, &bad));
        bad.tv_nsec = -1;
        res("clock_settime REALTIME nsec -1", syscall(SYS_clock_settime, CLOCK_REALTIME, &bad));
        bad.tv_nsec = 0;
        bad.tv_sec = -1;
        res("clock_settime REALTIME sec -1", syscall(SYS_clock_settime, CLOCK_REALTIME, &bad));
        bad.tv_sec = 0x7fffffffffffffffLL;
        res("clock_settime REALTIME sec max", syscall(SYS_clock_settime, CLOCK_REALTIME, &bad));
        res("clock_settime REALTIME EFAULT", syscall(SYS_clock_settime, CLOCK_REALTIME, (void *)8));
        res("clock_settime MONOTONIC EFAULT", syscall(SYS_clock_settime, CLOCK_MONOTONIC, (void *)8));
        struct timeval tv = {ts.tv_sec, 0};
        struct timezone tz = {0, 0};
        res("settimeofday now", syscall(SYS_settimeofday, &tv, NULL));
        res("settimeofday NULL NULL", syscall(SYS_settimeofday, NULL, NULL));
        res("settimeofday tz", syscall(SYS_settimeofday, NULL, &tz));
        tv.tv_usec = 1000000;
        res("settimeofday usec 1e6", syscall(SYS_settimeofday, &tv, NULL));
        tv.tv_usec = 1000001;
        res("settimeofday usec 1e6+1", syscall(SYS_settimeofday, &tv, NULL));
        tv.tv_usec = -1;
        res("settimeofday usec -1", syscall(SYS_settimeofday, &tv, NULL));
        res("settimeofday EFAULT", syscall(SYS_settimeofday, (void *)8, NULL));
        res("settimeofday tz EFAULT", syscall(SYS_settimeofday, NULL, (void *)8));
        tz.tz_minuteswest = 16 * 60;
        res("settimeofday tz 16 h", syscall(SYS_settimeofday, NULL, &tz));
        struct timex tx;
        memset(&tx, 0, sizeof tx);
        tx.modes = ADJ_OFFSET;
        res("adjtimex ADJ_OFFSET", syscall(SYS_adjtimex, &tx));
        res("adjtimex EFAULT", syscall(SYS_adjtimex, (void *)8));
        memset(&tx, 0, sizeof tx);
        tx.modes = ADJ_OFFSET;
        res("clock_adjtime REALTIME ADJ_OFFSET", syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx));
        res("clock_adjtime MONOTONIC", syscall(SYS_clock_adjtime, CLOCK_MONOTONIC, &tx));
        res("clock_adjtime 100", syscall(SYS_clock_adjtime, 100, &tx));
        res("clock_adjtime THREAD_CPUTIME", syscall(SYS_clock_adjtime, CLOCK_THREAD_CPUTIME_ID, &tx));
        res("clock_adjtime my process clock", syscall(SYS_clock_adjtime, PROCESS_CLOCK(0, SCHED), &tx));
        res("clock_adjtime a fd clock", syscall(SYS_clock_adjtime, PROCESS_CLOCK(0, 3), &tx));
        res("clock_adjtime BOOTTIME_ALARM", syscall(SYS_clock_adjtime, 9, &tx));
        res("clock_adjtime TAI", syscall(SYS_clock_adjtime, 11, &tx));
        memset(&tx, 0, sizeof tx);
        tx.modes = 0x8000;      /* ADJ_ADJTIME without the rest of ADJ_OFFSET_SINGLESHOT */
        res("adjtimex ADJ_ADJTIME alone", syscall(SYS_adjtimex, &tx));
        memset(&tx, 0, sizeof tx);
        tx.modes = ADJ_TICK;
        tx.tick = 1;
        res("adjtimex ADJ_TICK 1 unprivileged", syscall(SYS_adjtimex, &tx));
        memset(&tx, 0, sizeof tx);
        tx.modes = ADJ_OFFSET_SS_READ;
        long st = syscall(SYS_adjtimex, &tx);
        printf("adjtimex ADJ_OFFSET_SS_READ unprivileged: %s\n", st < 0 ? en(errno) : "a clock state");
        _exit(0);
    }
    waitpid(c, NULL, 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    ids();
    boottime();
    cpu_clocks();
    adjtimex_read();
    setting();
    printf("done\n");
    return 0;
}
