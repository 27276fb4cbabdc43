/*
 * umlpy host helpers: the hot path of the trap loop and the host calls the
 * Python standard library lacks (ptrace, signalfd, the first guest spawn,
 * openat2, renameat2 and fchmodat without following for hostfs).
 *
 * Each helper batches exactly one round trip with the host kernel so that a
 * guest syscall costs one Python->C crossing (see
 * shared/reference/ptrace-measurements.md: "batch exactly the stop round trip").
 * Only arch_um calls these.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/elf.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#ifndef PTRACE_SYSEMU
#define PTRACE_SYSEMU 31
#endif
#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif
#ifndef PTRACE_EVENT_SECCOMP
#define PTRACE_EVENT_SECCOMP 7
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#define ERESTARTSYS 512
#define USER_CS 0x33        /* the 64-bit user code and data selectors */
#define USER_DS 0x2b
#define X86_EFLAGS_TF 0x100

struct umlpy_event {
    int kind;           /* UMLPY_EV_TASK or UMLPY_EV_FD */
    int id;             /* host pid (task) or fd */
    int status;         /* wait status (task) or epoll events (fd) */
    int has_regs;       /* regs filled (syscall stops) */
    int compat;         /* a syscall stop entered through a 32-bit gate */
    int notif;          /* a seccomp notification: msg is its id, regs hold
                           only the number, arguments and rip */
    unsigned long msg;  /* PTRACE_GETEVENTMSG for event stops */
    struct user_regs_struct regs;
};

struct umlpy_resume {
    int pid;
    int op;             /* PTRACE_SYSEMU, PTRACE_CONT, ..., UMLPY_OP_NOTIF */
    int sig;            /* signal to deliver with the resume (host-level) */
    int how;            /* 0: registers untouched, 1: poke rax, 2: setregs */
    unsigned long rax;
    struct user_regs_struct *regs;
    unsigned long notif_id;     /* UMLPY_OP_NOTIF: the notification answered */
};

/*
 * The seccomp trap path (docs/architecture.md, "The trap path").  Once the
 * first guest process installed the kernel's filter (umlpy_spawn), every
 * guest syscall either waits as a user notification on `listener` (the
 * fast set: the kernel answers with a value) or stops the task for its
 * tracer (SECCOMP_RET_TRACE: everything else); the filter allows nothing.
 * Tasks then run under PTRACE_CONT, and every resume from here skips the
 * syscall it stopped in (orig_rax = -1), so no stop can let a guest's own
 * syscall through to the host; only umlpy_inject's own loop continues a
 * syscall, and only the stub's, at the address it set.
 */
#define UMLPY_OP_NOTIF 0x10000
static int listener = -1;
static int seccomp_mode;

/* Answers that found no notification (its task was interrupted between
   the kernel's receive and its answer): the result goes into the task's
   registers at the interrupt's stop instead (task_event). */
#define LOST_MAX 64
static struct { int pid; long val; } lost[LOST_MAX];

#define UMLPY_EV_TASK 0
#define UMLPY_EV_FD 1

static int notif_send(const struct umlpy_resume *r)
{
    struct seccomp_notif_resp resp;
    long v = (long)r->rax;
    int i;
    memset(&resp, 0, sizeof resp);
    resp.id = r->notif_id;
    if (v < 0 && v >= -4095)
        resp.error = (int)v;
    else
        resp.val = v;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0)
        return 0;
    if (errno != ENOENT)
        return -errno;
    for (i = 0; i < LOST_MAX; i++)
        if (lost[i].pid == 0 || lost[i].pid == r->pid) {
            lost[i].pid = r->pid;
            lost[i].val = v;
            break;
        }
    return 0;
}

/* On the seccomp path every resume also skips the syscall the task
   stopped in (orig_rax = -1) and runs it under PTRACE_CONT, not SYSEMU. */
static int try_resume(const struct umlpy_resume *r)
{
    int op = r->op;
    if (op == UMLPY_OP_NOTIF)
        return notif_send(r);
    if (seccomp_mode && op == PTRACE_SYSEMU)
        op = PTRACE_CONT;
    if (r->how == 2) {
        struct user_regs_struct tmp = *r->regs;
        if (seccomp_mode)
            tmp.orig_rax = -1;
        if (ptrace(PTRACE_SETREGS, r->pid, 0, &tmp) < 0)
            return -errno;
    } else {
        if (r->how == 1 && ptrace(PTRACE_POKEUSER, r->pid,
                                  (void *)offsetof(struct user_regs_struct, rax), (void *)r->rax) < 0)
            return -errno;
        if (seccomp_mode && ptrace(PTRACE_POKEUSER, r->pid,
                                   (void *)offsetof(struct user_regs_struct, orig_rax), (void *)-1L) < 0)
            return -errno;
    }
    if (ptrace(op, r->pid, 0, (void *)(long)r->sig) < 0)
        return -errno;
    return 0;
}

/*
 * A task the host refuses to resume (registers it will not take) would
 * stay stopped forever, a stall nobody sees: it is killed instead, and its
 * death reaches the kernel as an ordinary host exit.  ESRCH means it is
 * already gone, and that exit is on its way too.
 */
static int apply_resume(const struct umlpy_resume *r)
{
    int e = try_resume(r);
    if (e < 0 && e != -ESRCH)
        kill(r->pid, SIGKILL);
    return e;
}

int umlpy_resume(const struct umlpy_resume *r)
{
    return apply_resume(r);
}

static int is_syscall_stop(int status)
{
    return WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80);
}

/*
 * Whether a syscall stop came through a 32-bit entry (int $0x80, or
 * syscall/sysenter from a 32-bit code segment).  A 64-bit `syscall` leaves
 * the return address in rcx and the flags in r11, and the host saves those
 * as the stop's rip and eflags; any other gate leaves rcx and r11 as the
 * program had them.  The host could say exactly (PTRACE_GET_SYSCALL_INFO's
 * arch), but that costs 1.5 us on every syscall; a program can only fool
 * this test on purpose, by loading rcx and r11 with what a `syscall` would
 * have put there before an int $0x80, and gains an ordinary 64-bit syscall
 * by it.  (TF is left out: a single-stepping tracer hides it in eflags.)
 */
static int syscall_is_compat(const struct user_regs_struct *regs)
{
    return regs->cs != USER_CS || regs->rcx != regs->rip
        || ((regs->r11 ^ regs->eflags) & ~(unsigned long)X86_EFLAGS_TF);
}

/* One guest stop as an event: registers for syscall stops, the message
   for ptrace event stops. */
static void deliver_lost(pid_t pid)
{
    struct user_regs_struct regs;
    int i;
    for (i = 0; i < LOST_MAX; i++)
        if (lost[i].pid == pid)
            break;
    if (i == LOST_MAX)
        return;
    lost[i].pid = 0;
    if (ptrace(PTRACE_GETREGS, pid, 0, &regs) < 0)      /* gone */
        return;
    if ((long)regs.orig_rax >= 0 && (long)regs.rax == -ERESTARTSYS) {
        regs.rax = (unsigned long)lost[i].val;
        regs.orig_rax = -1;
        ptrace(PTRACE_SETREGS, pid, 0, &regs);
    }
}

/* The tasks whose host stops (or exits) the loop has reaped since the
   last umlpy_run began: their events are with the kernel, perhaps not yet
   handled.  umlpy_notif_stop must not wait for a stop of one of them: the
   stop it would wait for is already taken, and none other comes. */
#define TAKEN_MAX 256
static pid_t taken[TAKEN_MAX];
static int ntaken;

static void task_event(struct umlpy_event *e, pid_t pid, int status)
{
    if (ntaken < TAKEN_MAX)
        taken[ntaken++] = pid;
    e->kind = UMLPY_EV_TASK;
    e->id = pid;
    e->status = status;
    e->has_regs = 0;
    e->compat = 0;
    e->notif = 0;
    e->msg = 0;
    if (seccomp_mode && (!WIFSTOPPED(status) || (status >> 16) == PTRACE_EVENT_STOP))
        deliver_lost(pid);      /* at its exit, only forgotten */
    if (is_syscall_stop(status)
            || (seccomp_mode && WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_SECCOMP)) {
        if (ptrace(PTRACE_GETREGS, pid, 0, &e->regs) == 0) {
            e->has_regs = 1;
            e->compat = syscall_is_compat(&e->regs);
        }
    } else if (WIFSTOPPED(status) && (status >> 16)) {
        ptrace(PTRACE_GETEVENTMSG, pid, 0, &e->msg);
    }
}

/* Whether the last drain stopped at the caller's room, not at the last
   stop: SIGCHLD was consumed for stops not yet taken, so no signal will
   come for them, and the next umlpy_run drains again before it waits. */
static int drain_more;

/* Collect every pending child state change without blocking. */
static int drain(struct umlpy_event *out, int n, int max)
{
    drain_more = 0;
    while (n < max) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
        if (pid <= 0)
            return n;
        task_event(&out[n++], pid, status);
    }
    drain_more = 1;
    return n;
}

/*
 * Host timers.  The kernel's next deadline is a CLOCK_MONOTONIC POSIX timer
 * (nanoseconds, absolute, no timer slack) whose SIGALRM interrupts
 * whatever the loop waits in: the fast path's blocking waitpid, so a
 * deadline is met while guests compute, and epoll, whose own timeout
 * (epoll_pwait2's nanoseconds, but with the host's slack of 0.1%) is only
 * the backstop.  The tick is a 10 ms ITIMER_REAL that runs only while the
 * fast path is in use: it bounds how long devices wait while a guest
 * computes (waitpid cannot watch them), and stops itself once no fast-path
 * wait happened for a whole tick, so an idle guest costs no host CPU.
 *
 * A SIGALRM that comes before the loop's last look (`alarmed`, or the
 * deadline already past) is not lost; one between that look and the wait's
 * entry, a few instructions, is, and the tick (waitpid) or the epoll
 * timeout then ends the wait.
 */
#define TICK_USEC 10000
#define DEADLINE_NONE (-1LL)

static volatile sig_atomic_t alarmed;       /* a SIGALRM since umlpy_run began */
static volatile sig_atomic_t fast_waits;    /* fast-path waits since the last tick */
static volatile sig_atomic_t tick_on;
static int deadline_timer = -1;             /* host POSIX timer id */
static long long armed_deadline = DEADLINE_NONE;

static long long monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000000LL + now.tv_nsec;
}

static void set_tick(long usec)
{
    struct itimerval it;
    it.it_interval.tv_sec = it.it_value.tv_sec = 0;
    it.it_interval.tv_usec = it.it_value.tv_usec = usec;
    setitimer(ITIMER_REAL, &it, NULL);
}

static volatile sig_atomic_t chlded;        /* a SIGCHLD in the seccomp fast wait */

static void chld_handler(int sig)
{
    (void)sig;
    chlded = 1;
}

static void alarm_handler(int sig)
{
    int e = errno;
    (void)sig;
    alarmed = 1;
    if (tick_on && !fast_waits) {
        set_tick(0);
        tick_on = 0;
    }
    fast_waits = 0;
    errno = e;
}

/* Whether the loop may wait until `deadline` (0: not at all; -1: no
   timer): it is not due, the deadline timer is armed for it (re-armed only
   when the kernel's next deadline changed: a stale earlier one costs one
   spurious wake-up), and no SIGALRM came meanwhile (a deadline that passed
   since the look at the clock fires as the timer is armed). */
static int may_wait(long long deadline)
{
    if (deadline == 0 || (deadline != DEADLINE_NONE && deadline <= monotonic_ns()))
        return 0;
    if (deadline != DEADLINE_NONE && deadline != armed_deadline) {
        struct itimerspec its = { { 0, 0 }, { deadline / 1000000000LL, deadline % 1000000000LL } };
        if (syscall(SYS_timer_settime, deadline_timer, TIMER_ABSTIME, &its, NULL) == 0)
            armed_deadline = deadline;
    }
    return !alarmed;
}

/* The fast path's tick: running from here until a tick passes without a
   fast-path wait. */
static void tick_for_fast_wait(void)
{
    fast_waits = 1;          /* first: a tick from here on keeps the tick running */
    if (!tick_on) {
        tick_on = 1;
        set_tick(TICK_USEC);
    }
}

/* epoll until deadline (see may_wait): epoll_pwait2 with the time left;
   on a host without it (before 5.11), epoll_wait rounding up to
   milliseconds. */
static int epoll_wait_ns(int epfd, struct epoll_event *evs, int max, long long deadline)
{
    static int no_pwait2;
    struct timespec left, *tsp = NULL;
    long long ns = 0;
    if (!may_wait(deadline)) {
        left.tv_sec = left.tv_nsec = 0;
        tsp = &left;
    } else if (deadline != DEADLINE_NONE) {
        ns = deadline - monotonic_ns();
        if (ns < 0)
            ns = 0;
        left.tv_sec = ns / 1000000000LL;
        left.tv_nsec = ns % 1000000000LL;
        tsp = &left;
    }
    if (!no_pwait2) {
        int n = syscall(SYS_epoll_pwait2, epfd, evs, max, tsp, NULL, 0);
        if (n >= 0 || errno != ENOSYS)
            return n;
        no_pwait2 = 1;
    }
    if (!tsp)
        return epoll_wait(epfd, evs, max, -1);
    ns = (ns + 999999) / 1000000;         /* a later deadline is just another wait */
    return epoll_wait(epfd, evs, max, ns > INT_MAX ? INT_MAX : (int)ns);
}

/*
 * Waking ahead of a deadline.  A host timer wakes a process that slept a
 * while late by however long its CPU takes to come back from idle: on the
 * virtual machines we run on, 80-200 us after a sleep of milliseconds, as
 * late for a plain host program as for the kernel.  A guest would see that
 * on top of the kernel's own path to its answer, where Linux's guest sees
 * only the first (LTP's timer tests allow 450 us in all).  So a wait of at
 * least EARLY_MIN_NS ends `early_ns` before its deadline, and what is left
 * until the deadline is waited out on the CPU.  early_ns follows the
 * lateness seen, rising by a quarter of a later wake-up's excess and
 * falling by a 32nd of an earlier one's (so it sits near the upper range
 * of the lateness, at most EARLY_MAX_NS): most wake-ups come early and
 * spin for the difference, a few tens of microseconds (measured: 10-60);
 * an idle kernel, with no deadline, never spins.  Events that come
 * meanwhile wait for the deadline, at most EARLY_MAX_NS away.
 */
#define EARLY_MIN_NS 500000LL
#define EARLY_MAX_NS 250000LL
static long long early_ns;

static int epoll_until(int epfd, struct epoll_event *evs, int max, long long deadline)
{
    long long now = monotonic_ns(), target, late;
    int n;
    if (deadline == 0 || deadline == DEADLINE_NONE || deadline - now < EARLY_MIN_NS)
        return epoll_wait_ns(epfd, evs, max, deadline);
    target = deadline - early_ns;
    n = epoll_wait_ns(epfd, evs, max, target);
    if (n > 0 || (n < 0 && errno != EINTR))
        return n;
    now = monotonic_ns();
    if (now < target)
        return n;               /* the tick, or a signal: not the deadline's wake-up */
    late = now - target;
    early_ns += late > early_ns ? (late - early_ns) / 4 : (late - early_ns) / 32;
    if (early_ns > EARLY_MAX_NS)
        early_ns = EARLY_MAX_NS;
    while (now < deadline) {
        __builtin_ia32_pause();
        now = monotonic_ns();
    }
    return 0;
}

/* Install the SIGALRM handler (no SA_RESTART: it is there to interrupt)
   and create the deadline timer; 0 or -errno. */
int umlpy_timers_init(void)
{
    struct sigaction sa;
    struct sigevent sev;
    sigset_t set;
    int id;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = alarm_handler;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) < 0)
        return -errno;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    /* SIGCHLD stays blocked (the loop reads it from a signalfd) except in
       the seccomp fast wait, which it interrupts */
    sa.sa_handler = chld_handler;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        return -errno;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGALRM;
    sev.sigev_notify_thread_id = syscall(SYS_gettid);
    if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id) < 0)
        return -errno;
    deadline_timer = id;
    armed_deadline = DEADLINE_NONE;
    return 0;
}

/* Stop both timers (the kernel is going away). */
void umlpy_timers_stop(void)
{
    set_tick(0);
    tick_on = 0;
    if (deadline_timer >= 0)
        syscall(SYS_timer_delete, deadline_timer);
    deadline_timer = -1;
}

/* Before a fast-path wait, which watches no fd: whether a device (or
   SIGCHLD's signalfd) is ready, looked at once per DEVICE_LOOK_NS while
   guests trap (a host call each time would cost as much as a tenth of a
   round trip); the tick covers the time guests compute. */
#define DEVICE_LOOK_NS 100000LL
static long long device_look;

static int look_at_devices(int epfd, struct epoll_event *evs)
{
    long long now = monotonic_ns();
    if (now - device_look < DEVICE_LOOK_NS)
        return 0;
    device_look = now;
    return epoll_wait(epfd, evs, 16, 0);
}

/* One notification as a syscall event: the number, arguments and rip;
   the other registers are the task's own, which only a stop reads
   (arch_um/ptrace.py's ensure_stopped).  0 if it went away meanwhile. */
static int notif_event(struct umlpy_event *e)
{
    struct seccomp_notif req;
    memset(&req, 0, sizeof req);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
        return 0;
    memset(&e->regs, 0, sizeof e->regs);
    e->kind = UMLPY_EV_TASK;
    e->id = (int)req.pid;
    e->status = ((SIGTRAP | 0x80) << 8) | 0x7f;
    e->has_regs = 1;
    e->compat = 0;
    e->notif = 1;
    e->msg = req.id;
    e->regs.orig_rax = (unsigned long)(unsigned int)req.data.nr;
    e->regs.rax = -ENOSYS;
    e->regs.rdi = req.data.args[0];
    e->regs.rsi = req.data.args[1];
    e->regs.rdx = req.data.args[2];
    e->regs.r10 = req.data.args[3];
    e->regs.r8 = req.data.args[4];
    e->regs.r9 = req.data.args[5];
    e->regs.rip = req.data.instruction_pointer;
    e->regs.rcx = req.data.instruction_pointer;
    e->regs.cs = USER_CS;
    e->regs.ss = USER_DS;
    return 1;
}

/*
 * After one notification, the others already queued (out has room for
 * max): the guests a turn resumed often trap again before the kernel runs,
 * and taking them in the same turn saves a turn each.  A ping-pong's two
 * tasks then cost the loop two turns a round trip, not four (pipe round
 * trip 70-73 -> 52-56 us here), as a ptrace stop drain already did.
 */
static int more_notif_events(struct umlpy_event *out, int got, int max)
{
    struct pollfd pf = { listener, POLLIN, 0 };
    while (got < max && poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN)) {
        int k = notif_event(&out[got]);
        if (!k)
            break;
        got += k;
    }
    return got;
}

/*
 * The trap loop's one crossing: resume the given tasks, then wait for the
 * next interrupt (a guest stop, a ready device fd, or the deadline: an
 * absolute CLOCK_MONOTONIC time in ns, 0 not to wait, -1 for none) and
 * return what happened.  Resume failures (a task that died meanwhile) are
 * ignored: its exit arrives as an event.
 */
int umlpy_run(const struct umlpy_resume *rs, int nres, int epfd, int sigfd,
              struct umlpy_event *out, int max, long long deadline)
{
    struct epoll_event evs[16];
    int i, n = 0, nev, chld = 0, notif = 0;

    alarmed = 0;    /* an earlier SIGALRM: the deadline says if it is due */
    ntaken = 0;     /* the kernel handled the last turn's events */
    /*
     * Last queued, first resumed: the tasks a syscall woke were answered
     * after that syscall's task, and on a shared CPU the one resumed first
     * runs first.  So a reader a write woke takes its data before the
     * writer goes on to its own read, which then finds the answer waiting
     * more often than not: a ping-pong parks and retries once a round
     * trip, not twice (TCP round trip 98-105 -> 82-85 us, interleaved runs).
     */
    for (i = nres - 1; i >= 0; i--)
        apply_resume(&rs[i]);
    if (drain_more) {
        deadline = 0;       /* stops left over from the last drain: no wait */
        chld = 1;
    }
    if (nres && deadline != 0 && !seccomp_mode) {
        /*
         * Fast path: a task was just resumed and no device is ready, so
         * wait for the next stop in waitpid itself, which wakes faster than
         * SIGCHLD through the signalfd and epoll (measured: 10.2 against
         * 12.1 us a round trip).  SIGALRM (the deadline timer, the tick)
         * interrupts it, so timers expire on time and devices are looked
         * at again within a tick even while guests compute without trapping.
         */
        int device = 0;
        nev = look_at_devices(epfd, evs);
        for (i = 0; i < nev; i++)
            if (evs[i].data.fd != sigfd)
                device = 1;
        if (!device) {
            int status;
            pid_t pid = -1;
            tick_for_fast_wait();
            if (may_wait(deadline))
                pid = waitpid(-1, &status, __WALL);
            if (pid > 0) {
                task_event(&out[0], pid, status);
                return drain(out, 1, max);
            }
            deadline = 0;    /* a SIGALRM (EINTR) or due: poll everything once */
        }
    }
    if (nres && deadline != 0 && seccomp_mode) {
        /*
         * The seccomp fast path: no device ready, so wait for the next
         * notification in the listener's own receive, which a guest wakes
         * directly (faster than through epoll), with SIGCHLD let in to
         * end it for a ptrace stop or an exit.  A SIGCHLD between the look
         * at `chlded` and the receive's entry, a few instructions, waits
         * for the tick; SIGALRM ends it as it ends waitpid above.
         */
        int device = 0, ready = 0;
        nev = look_at_devices(epfd, evs);
        for (i = 0; i < nev; i++) {
            if (evs[i].data.fd == listener)
                ready = 1;
            else
                device = 1;
        }
        if (!device) {
            sigset_t set;
            int got = 0;
            tick_for_fast_wait();
            if (ready || may_wait(deadline)) {
                sigemptyset(&set);
                sigaddset(&set, SIGCHLD);
                chlded = 0;
                sigprocmask(SIG_UNBLOCK, &set, NULL);
                if (!chlded && !alarmed)
                    got = notif_event(&out[0]);
                sigprocmask(SIG_BLOCK, &set, NULL);
                if (got)    /* with stops to take, half the room is theirs */
                    got = more_notif_events(out, got, chlded ? max / 2 : max);
                if (chlded)
                    return drain(out, got, max);
                if (got)
                    return got;
            }
            deadline = 0;    /* a SIGALRM (EINTR) or due: poll everything once */
        }
    }
    nev = epoll_until(epfd, evs, 16, deadline);
    if (nev < 0)
        return errno == EINTR ? 0 : -errno;
    for (i = 0; i < nev && n < max; i++) {
        if (evs[i].data.fd == sigfd) {
            chld = 1;
            continue;
        }
        if (evs[i].data.fd == listener) {
            notif = 1;
            continue;
        }
        out[n].kind = UMLPY_EV_FD;
        out[n].id = evs[i].data.fd;
        out[n].status = evs[i].events;
        out[n].has_regs = 0;
        n++;
    }
    /*
     * Stops first, in at most half the room left; notifications after
     * them.  While many threads trap, notifications alone would fill every
     * turn, and a stop (a fork's, an exec's, a signal's) would wait behind
     * them for good: hackbench's 400 threads held a fork for minutes.
     */
    if (chld) {
        struct signalfd_siginfo si[8];
        while (read(sigfd, si, sizeof si) > 0)
            ;
        n = drain(out, n, notif ? n + (max - n) / 2 : max);
    }
    if (notif && n < max) {
        int k = notif_event(&out[n]);
        n = k ? more_notif_events(out, n + k, max) : n;
    }
    return n;
}

/* Poll for stops without blocking (used after injections). */
int umlpy_poll_tasks(struct umlpy_event *out, int max)
{
    return drain(out, 0, max);
}

int umlpy_wait_pid(int pid, int *status, unsigned long *msg)
{
    int r;
    do {
        r = waitpid(pid, status, __WALL);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    *msg = 0;
    if (WIFSTOPPED(*status) && (*status >> 16))
        ptrace(PTRACE_GETEVENTMSG, pid, 0, msg);
    return r;
}

/*
 * Run one host syscall inside a stopped tracee: point it at the stub's
 * `syscall; int3`, PTRACE_CONT, wait for the int3, restore the saved
 * registers.  Event stops on the way (fork of an injected clone) are
 * reported through *event/*msg; an exec ends the injection with
 * *event = PTRACE_EVENT_EXEC and registers left as the new image's.
 * Returns the syscall's result (-errno for its errors); *fault is set when
 * the tracee could not complete it (died: 1, unexpected signal: the signal).
 */
long umlpy_inject(int pid, const struct user_regs_struct *saved,
                  unsigned long stub_syscall, long nr, const long *args,
                  int *event, unsigned long *msg, int *fault, int *status_out)
{
    struct user_regs_struct tmp = *saved;
    int status;

    *event = 0;
    *fault = 0;
    *msg = 0;
    tmp.rip = stub_syscall;
    /* the stub runs as 64-bit code whatever the guest made of its own
       segments and flags: a 32-bit `syscall` would be another call */
    tmp.cs = USER_CS;
    tmp.ss = USER_DS;
    tmp.eflags &= ~X86_EFLAGS_TF;
    tmp.rax = nr;
    tmp.orig_rax = -1;
    tmp.rdi = args[0];
    tmp.rsi = args[1];
    tmp.rdx = args[2];
    tmp.r10 = args[3];
    tmp.r8 = args[4];
    tmp.r9 = args[5];
    if (ptrace(PTRACE_SETREGS, pid, 0, &tmp) < 0) {
        *fault = 1;
        return -errno;
    }
    if (ptrace(PTRACE_CONT, pid, 0, 0) < 0) {
        *fault = 1;
        return -errno;
    }
    for (;;) {
        if (waitpid(pid, &status, __WALL) < 0) {
            if (errno == EINTR)
                continue;
            *fault = 1;
            return -errno;
        }
        *status_out = status;
        if (!WIFSTOPPED(status)) {
            *fault = 1;
            return -ESRCH;
        }
        int ev = status >> 16;
        if (ev == PTRACE_EVENT_EXEC) {
            *event = ev;
            return 0;
        }
        if (ev == PTRACE_EVENT_SECCOMP) {
            /* the stub's syscall, which the filter stops at: the one
               syscall a guest task ever makes on the host */
            ptrace(PTRACE_CONT, pid, 0, 0);
            continue;
        }
        if (ev && ev != PTRACE_EVENT_STOP) {
            *event = ev;
            ptrace(PTRACE_GETEVENTMSG, pid, 0, msg);
            ptrace(PTRACE_CONT, pid, 0, 0);
            continue;
        }
        if (ev == PTRACE_EVENT_STOP || WSTOPSIG(status) != SIGTRAP) {
            int sig = WSTOPSIG(status);
            if (ev == 0 && (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL)) {
                *fault = sig;
                ptrace(PTRACE_SETREGS, pid, 0, saved);
                return -EFAULT;
            }
            /* a stray stop or signal: swallow it and go on */
            ptrace(PTRACE_CONT, pid, 0, 0);
            continue;
        }
        break;
    }
    if (ptrace(PTRACE_GETREGS, pid, 0, &tmp) < 0) {
        *fault = 1;
        return -errno;
    }
    ptrace(PTRACE_SETREGS, pid, 0, saved);
    return (long)tmp.rax;
}

int umlpy_getregs(int pid, struct user_regs_struct *regs)
{
    return ptrace(PTRACE_GETREGS, pid, 0, regs) < 0 ? -errno : 0;
}

int umlpy_setregs(int pid, const struct user_regs_struct *regs)
{
    return ptrace(PTRACE_SETREGS, pid, 0, regs) < 0 ? -errno : 0;
}

/* xstate at the size the host reports (the iovec comes back shortened). */
long umlpy_getxstate(int pid, void *buf, long size)
{
    struct iovec iov = { buf, (size_t)size };
    if (ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) < 0)
        return -errno;
    return (long)iov.iov_len;
}

/* Where xstate component n lies in the standard (non-compacted) XSAVE
   layout that ptrace and signal frames use: CPUID leaf 0xD, subleaf n
   (EBX the offset, EAX the size); -1 if the CPU has no such leaf. */
#include <cpuid.h>
long umlpy_xsave_component(int n, long *size)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid_count(0xd, (unsigned int)n, &a, &b, &c, &d))
        return -1;
    *size = a;
    return b;
}

long umlpy_setxstate(int pid, void *buf, long size)
{
    struct iovec iov = { buf, (size_t)size };
    if (ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &iov) < 0)
        return -errno;
    return 0;
}

/* A debug register of a stopped tracee (struct user's u_debugreg): the
   host validates the value as it would for any tracer. */
long umlpy_debugreg(int pid, int idx, int set, unsigned long value, unsigned long *out)
{
    unsigned long off = offsetof(struct user, u_debugreg) + (unsigned long)idx * sizeof(long);
    if (idx < 0 || idx > 7)
        return -EIO;
    if (set)
        return ptrace(PTRACE_POKEUSER, pid, (void *)off, (void *)value) < 0 ? -errno : 0;
    errno = 0;
    long v = ptrace(PTRACE_PEEKUSER, pid, (void *)off, 0);
    if (errno)
        return -errno;
    *out = (unsigned long)v;
    return 0;
}

/* A signalfd for the given signals, which are blocked in this thread. */
int umlpy_signalfd(const int *sigs, int n)
{
    sigset_t set;
    int i;
    sigemptyset(&set);
    for (i = 0; i < n; i++)
        sigaddset(&set, sigs[i]);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -errno;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Read one pending signal from a signalfd: returns signo, 0 if none. */
int umlpy_signalfd_read(int fd)
{
    struct signalfd_siginfo si;
    ssize_t r = read(fd, &si, sizeof si);
    return r == (ssize_t)sizeof si ? (int)si.ssi_signo : 0;
}

/*
 * Start the first guest process: a child in its own host session with a
 * clean signal state, seized before it execs the stub (argv and envp carry
 * nothing of the host).  Waits for the exec event stop.
 * Returns the host pid, or -errno.
 */
/*
 * The kernel's seccomp filter: a 32-bit or x32 call, and any call from the
 * stub's syscall instruction (the kernel's injections, let through by
 * umlpy_inject alone), stop for the tracer; the fast set waits as a user
 * notification; everything else stops for the tracer.  Nothing is allowed.
 */
#define FILTER_MAX 256
static int build_filter(struct sock_filter *f, const int *fast, int nfast, unsigned long stub_ip)
{
    int n = 0, i, trace, notif;
    if (nfast < 1 || nfast > FILTER_MAX - 12)
        return -1;
    trace = 8 + nfast;
    notif = trace + 1;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, trace - 2);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, instruction_pointer) + 4);
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)(stub_ip >> 32), 0, 2);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, instruction_pointer));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)stub_ip, trace - 6, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    /* x32 numbers have bit 30 set and are never in the fast set */
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, trace - 8, 0);
    for (i = 0; i < nfast; i++, n++)
        f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)fast[i], notif - n - 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
    return n;
}

/* The listener the first guest's filter made (its fd 0, close_range having
   emptied its table), taken into the kernel at the seccomp stop of that
   guest's execve, before the exec closes it there (O_CLOEXEC). */
static int take_listener(pid_t pid)
{
    int pidfd = syscall(SYS_pidfd_open, pid, 0), fd;
    if (pidfd < 0)
        return -errno;
    fd = syscall(SYS_pidfd_getfd, pidfd, 0, 0);
    close(pidfd);
    if (fd < 0)
        return -errno;
    /* the guest wakes the kernel on the CPU they share (Linux 6.6+) */
    ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    return fd;
}

/* The seccomp listener, or -1 when guests run under the ptrace path. */
int umlpy_seccomp_listener(void)
{
    return seccomp_mode ? listener : -1;
}

/*
 * A task whose syscall the kernel holds as a notification, brought to a
 * ptrace stop (PTRACE_INTERRUPT ends its wait; its syscall is then one the
 * kernel answers through registers): regs get the task's own registers.
 * 0, or -ESRCH with *status its exit when it died meanwhile.
 */
int umlpy_notif_stop(int pid, struct user_regs_struct *regs, int *status)
{
    int i;
    *status = 0;
    for (i = 0; i < ntaken; i++) {
        if (taken[i] != pid)
            continue;
        /* An interrupt ended its notification after the kernel received
           it, and the loop has reaped that stop already: the task is
           stopped, and its event, still to be handled, is stale (1). */
        taken[i] = 0;
        if (ptrace(PTRACE_GETREGS, pid, 0, regs) < 0)
            return -ESRCH;
        return 1;
    }
    if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0 && errno != ESRCH)
        return -errno;
    for (;;) {
        if (waitpid(pid, status, __WALL) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (!WIFSTOPPED(*status))
            return -ESRCH;
        break;
    }
    if (ptrace(PTRACE_GETREGS, pid, 0, regs) < 0)
        return -errno;
    return 0;       /* rax is the kernel's to keep: the caller puts it back */
}

int umlpy_spawn(const char *path, int options, const int *fast, int nfast, unsigned long stub_ip)
{
    int gate[2], status;
    char one = 1;
    struct sock_filter filter[FILTER_MAX];
    int nfilter = fast ? build_filter(filter, fast, nfast, stub_ip) : -1;
    if (listener >= 0)          /* a reboot: the last machine's guests are gone */
        close(listener);
    listener = -1;
    seccomp_mode = 0;
    memset(lost, 0, sizeof lost);
    if (pipe2(gate, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        sigset_t none;
        struct sigaction dfl;
        int s;
        char *argv[] = { "umlpy-stub", NULL };
        char *envp[] = { NULL };
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (s = 1; s < 65; s++)
            sigaction(s, &dfl, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(gate[1]);
        if (read(gate[0], &one, 1) != 1)
            _exit(127);
        /* the guest holds no host fd: not even the kernel's stdio */
        if (syscall(SYS_close_range, 0, ~0U, 0) < 0) {
            for (s = 0; s < 65536; s++)
                close(s);
        }
        if (nfilter > 0) {
            struct sock_fprog prog = { (unsigned short)nfilter, filter };
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
                syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        }
        execve(path, argv, envp);
        _exit(127);
    }
    close(gate[0]);
    if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)options) < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        close(gate[1]);
        return -e;
    }
    if (write(gate[1], &one, 1) != 1) {
        kill(pid, SIGKILL);
    }
    close(gate[1]);
    for (;;) {
        if (waitpid(pid, &status, __WALL) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (!WIFSTOPPED(status))
            return -ECHILD;
        if ((status >> 16) == PTRACE_EVENT_SECCOMP && listener < 0) {
            int fd = take_listener(pid);
            if (fd < 0) {
                /* a filter nobody answers: this guest cannot run */
                kill(pid, SIGKILL);
                waitpid(pid, &status, __WALL);
                return -EOPNOTSUPP;
            }
            listener = fd;
        }
        if ((status >> 16) == PTRACE_EVENT_EXEC) {
            seccomp_mode = listener >= 0;
            return pid;
        }
        /* anything before the exec (a group stop) is not ours to keep */
        ptrace(PTRACE_CONT, pid, 0, 0);
    }
}

/* Make a running tracee stop (PTRACE_EVENT_STOP) so a signal can be delivered. */
int umlpy_interrupt(int pid)
{
    return ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0 ? -errno : 0;
}

/* Let go of a stopped tracee, which goes on with no tracer: a thread
   stopped at the seccomp stop of its own exit, which then exits and is
   reaped by its host process, not left a traced zombie. */
int umlpy_detach(int pid)
{
    return ptrace(PTRACE_DETACH, pid, 0, 0) < 0 ? -errno : 0;
}

/* The siginfo of a signal-delivery stop (for faults: si_code, si_addr). */
int umlpy_getsiginfo(int pid, int *code, unsigned long *addr)
{
    siginfo_t si;
    if (ptrace(PTRACE_GETSIGINFO, pid, 0, &si) < 0)
        return -errno;
    *code = si.si_code;
    *addr = (unsigned long)si.si_addr;
    return 0;
}

/* renameat2(2) with RENAME_NOREPLACE/EXCHANGE, which Python lacks (hostfs:
   both names are single components in directories hostfs holds open). */
int umlpy_renameat2(int olddir, const char *old, int newdir, const char *new, unsigned int flags)
{
    return syscall(SYS_renameat2, olddir, old, newdir, new, flags) < 0 ? -errno : 0;
}

/* The resident pages of the host processes pids, summed from each one's
   /proc/PID/statm (its second field), skipping those gone: the OOM
   timer's cheap bound, one call for thousands of processes (from Python,
   one open, read and close each cost a sample 40 us a process). */
long umlpy_resident_sum(const int *pids, int n)
{
    long total = 0;
    char path[40], buf[128];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "/proc/%d/statm", pids[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t got = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (got <= 0)
            continue;
        buf[got] = 0;
        char *field = strchr(buf, ' ');
        if (field != NULL)
            total += strtol(field + 1, NULL, 10);
    }
    return total;
}

/* fchmodat(AT_SYMLINK_NOFOLLOW), which Python refuses on Linux: glibc
   changes the object itself, never a symlink's target (EOPNOTSUPP on a
   symlink).  0 or -errno. */
int umlpy_fchmodat_nofollow(int dirfd, const char *name, unsigned int mode)
{
    return fchmodat(dirfd, name, mode, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* openat2(2), which Python lacks: hostfs resolves every host path beneath
   the directory it holds (RESOLVE_BENEATH and friends).  The new fd or -errno. */
int umlpy_openat2(int dirfd, const char *path, unsigned long long flags,
                  unsigned long long mode, unsigned long long resolve)
{
    struct open_how how = { .flags = flags, .mode = mode, .resolve = resolve };
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    return fd < 0 ? -errno : (int)fd;
}

/* fallocate(2) with a mode, which Python lacks (posix_fallocate has
   none): tmpfs files' memfds punch holes and reserve blocks.  0 or -errno. */
int umlpy_fallocate(int fd, int mode, long long off, long long len)
{
    return fallocate(fd, mode, off, len) < 0 ? -errno : 0;
}

/* Copy len bytes from our memory into the tracee's (process_vm_writev):
   one copy, host kernel to host kernel.  Returns bytes copied or -errno. */
long umlpy_vm_write(int pid, const void *local, unsigned long remote, long len)
{
    struct iovec l = { (void *)local, (size_t)len };
    struct iovec r = { (void *)remote, (size_t)len };
    ssize_t n = process_vm_writev(pid, &l, 1, &r, 1, 0);
    return n < 0 ? -errno : n;
}

/* And from the tracee's memory into ours (process_vm_readv). */
long umlpy_vm_read(int pid, void *local, unsigned long remote, long len)
{
    struct iovec l = { local, (size_t)len };
    struct iovec r = { (void *)remote, (size_t)len };
    ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
    return n < 0 ? -errno : n;
}

/*
 * Write tracking for a live migration's pre-copy (checkpoint/migrate.py):
 * a userfaultfd in asynchronous write-protect mode over a guest's host
 * process, read with PAGEMAP_SCAN (Linux 6.7), which lists the pages
 * written since they were last protected and protects them again in the
 * same walk: CRIU's replacement for soft-dirty bits, which this host's
 * kernel lacks.  Writes resolve in the host kernel (no fault reaches us),
 * the kernel's own process_vm_writev included; MADV_DONTNEED shows as a
 * write.  The definitions are the 6.7 uapi's (Debian 12's headers are 6.1).
 */
#include <linux/userfaultfd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define UMLPY_UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#define UMLPY_UFFD_FEATURE_WP_ASYNC (1ULL << 15)

struct umlpy_page_region { unsigned long long start, end, categories; };
struct umlpy_pm_scan_arg {
    unsigned long long size, flags, start, end, walk_end, vec, vec_len, max_pages,
        category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define UMLPY_PAGEMAP_SCAN _IOWR('f', 16, struct umlpy_pm_scan_arg)
#define UMLPY_PM_SCAN_WP_MATCHING (1ULL << 0)
#define UMLPY_PM_SCAN_CHECK_WPASYNC (1ULL << 1)
#define UMLPY_PAGE_IS_WRITTEN (1ULL << 1)

/* A copy, in this process, of the task's fd `fd` (pidfd_getfd); -errno. */
int umlpy_pidfd_getfd(int pid, int fd)
{
    int pidfd = syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return -errno;
    int got = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    int err = errno;
    close(pidfd);
    return got < 0 ? -err : got;
}

/* The userfaultfd's handshake for asynchronous write protection, then
   [start, start + len) registered in that mode; 0 or -errno. */
int umlpy_uffd_wp_api(int uffd)
{
    struct uffdio_api api = {.api = UFFD_API,
                             .features = UMLPY_UFFD_FEATURE_WP_ASYNC | UMLPY_UFFD_FEATURE_WP_UNPOPULATED};
    return ioctl(uffd, UFFDIO_API, &api) < 0 ? -errno : 0;
}

int umlpy_uffd_wp_register(int uffd, unsigned long start, unsigned long len)
{
    struct uffdio_register reg = {.range = {.start = start, .len = len}, .mode = UFFDIO_REGISTER_MODE_WP};
    return ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
}

/* The runs of pages written in [start, end) since last protected, as
   (start, end) pairs into out (at most max runs); protect: protect them
   again in the same walk.  Returns the number of runs, or -errno; *next is
   where the walk stopped (end unless out was full). */
long umlpy_pagemap_written(int pagemap_fd, unsigned long start, unsigned long end, int protect,
                           unsigned long *out, long max, unsigned long *next)
{
    struct umlpy_page_region vec[256];
    long n = 0;
    while (start < end && n < max) {
        long room = max - n < 256 ? max - n : 256;
        struct umlpy_pm_scan_arg a = {
            .size = sizeof a, .start = start, .end = end, .vec = (unsigned long)vec, .vec_len = room,
            .flags = protect ? UMLPY_PM_SCAN_WP_MATCHING | UMLPY_PM_SCAN_CHECK_WPASYNC : 0,
            .category_mask = UMLPY_PAGE_IS_WRITTEN, .return_mask = UMLPY_PAGE_IS_WRITTEN};
        long got = ioctl(pagemap_fd, UMLPY_PAGEMAP_SCAN, &a);
        if (got < 0)
            return -errno;
        for (long i = 0; i < got; i++) {
            out[2 * n] = vec[i].start;
            out[2 * n + 1] = vec[i].end;
            n++;
        }
        if (a.walk_end <= start)
            break;
        start = a.walk_end;
    }
    *next = start;
    return n;
}

/* ext4's directory-name hashes (the on-disk format of dir_index: legacy,
   half-MD4 and TEA over 32-bit words of the name, each byte read as a
   signed or an unsigned char).  Pure computation: here because a lookup in
   an indexed directory hashes its name, and in Python that alone cost more
   than the rest of the lookup.  Returns major << 32 | minor, as computed,
   before the index's masking (fs/ext4/dirhash.py does that). */
static unsigned umlpy_rol(unsigned v, int s) { return v << s | v >> (32 - s); }

static void umlpy_hashbuf(const unsigned char *msg, long len, int is_signed, unsigned *buf, int num)
{
    unsigned pad = (unsigned)len | (unsigned)len << 8, val;
    pad |= pad << 16;
    val = pad;
    if (len > num * 4)
        len = num * 4;
    for (long i = 0; i < len; i++) {
        int c = is_signed ? (int)(signed char)msg[i] : (int)msg[i];
        val = (unsigned)c + (val << 8);
        if (i % 4 == 3) {
            *buf++ = val;
            val = pad;
            num--;
        }
    }
    if (--num >= 0)
        *buf++ = val;
    while (--num >= 0)
        *buf++ = pad;
}

#define UMLPY_F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define UMLPY_G(x, y, z) (((x) & (y)) + (((x) ^ (y)) & (z)))
#define UMLPY_H(x, y, z) ((x) ^ (y) ^ (z))
#define UMLPY_STEP(f, a, b, c, d, x, s) (a += f(b, c, d) + (x), a = umlpy_rol(a, s))

static void umlpy_half_md4(unsigned buf[4], const unsigned in[8])
{
    unsigned a = buf[0], b = buf[1], c = buf[2], d = buf[3];
    const unsigned k2 = 0x5A827999u, k3 = 0x6ED9EBA1u;
    UMLPY_STEP(UMLPY_F, a, b, c, d, in[0], 3);
    UMLPY_STEP(UMLPY_F, d, a, b, c, in[1], 7);
    UMLPY_STEP(UMLPY_F, c, d, a, b, in[2], 11);
    UMLPY_STEP(UMLPY_F, b, c, d, a, in[3], 19);
    UMLPY_STEP(UMLPY_F, a, b, c, d, in[4], 3);
    UMLPY_STEP(UMLPY_F, d, a, b, c, in[5], 7);
    UMLPY_STEP(UMLPY_F, c, d, a, b, in[6], 11);
    UMLPY_STEP(UMLPY_F, b, c, d, a, in[7], 19);
    UMLPY_STEP(UMLPY_G, a, b, c, d, in[1] + k2, 3);
    UMLPY_STEP(UMLPY_G, d, a, b, c, in[3] + k2, 5);
    UMLPY_STEP(UMLPY_G, c, d, a, b, in[5] + k2, 9);
    UMLPY_STEP(UMLPY_G, b, c, d, a, in[7] + k2, 13);
    UMLPY_STEP(UMLPY_G, a, b, c, d, in[0] + k2, 3);
    UMLPY_STEP(UMLPY_G, d, a, b, c, in[2] + k2, 5);
    UMLPY_STEP(UMLPY_G, c, d, a, b, in[4] + k2, 9);
    UMLPY_STEP(UMLPY_G, b, c, d, a, in[6] + k2, 13);
    UMLPY_STEP(UMLPY_H, a, b, c, d, in[3] + k3, 3);
    UMLPY_STEP(UMLPY_H, d, a, b, c, in[7] + k3, 9);
    UMLPY_STEP(UMLPY_H, c, d, a, b, in[2] + k3, 11);
    UMLPY_STEP(UMLPY_H, b, c, d, a, in[6] + k3, 15);
    UMLPY_STEP(UMLPY_H, a, b, c, d, in[1] + k3, 3);
    UMLPY_STEP(UMLPY_H, d, a, b, c, in[5] + k3, 9);
    UMLPY_STEP(UMLPY_H, c, d, a, b, in[0] + k3, 11);
    UMLPY_STEP(UMLPY_H, b, c, d, a, in[4] + k3, 15);
    buf[0] += a;
    buf[1] += b;
    buf[2] += c;
    buf[3] += d;
}

static void umlpy_tea(unsigned buf[4], const unsigned in[4])
{
    unsigned sum = 0, b0 = buf[0], b1 = buf[1];
    for (int n = 0; n < 16; n++) {
        sum += 0x9E3779B9u;
        b0 += ((b1 << 4) + in[0]) ^ (b1 + sum) ^ ((b1 >> 5) + in[1]);
        b1 += ((b0 << 4) + in[2]) ^ (b0 + sum) ^ ((b0 >> 5) + in[3]);
    }
    buf[0] += b0;
    buf[1] += b1;
}

unsigned long long umlpy_dirhash(const unsigned char *name, long len, int kind, int is_signed,
                                 unsigned s0, unsigned s1, unsigned s2, unsigned s3)
{
    unsigned buf[4] = {s0, s1, s2, s3}, in[8];
    if (kind == 0) {            /* legacy: dx_hack_hash, a byte at a time */
        unsigned h0 = 0x12A3FE2Du, h1 = 0x37ABE8F9u, h;
        for (long i = 0; i < len; i++) {
            int c = is_signed ? (int)(signed char)name[i] : (int)name[i];
            h = h1 + (h0 ^ (unsigned)(c * 7152373));
            if (h & 0x80000000u)
                h -= 0x7FFFFFFFu;
            h1 = h0;
            h0 = h;
        }
        return (unsigned long long)(h0 << 1) << 32;
    }
    for (long off = 0; off < len; off += kind == 1 ? 32 : 16) {
        if (kind == 1) {
            umlpy_hashbuf(name + off, len - off, is_signed, in, 8);
            umlpy_half_md4(buf, in);
        } else {
            umlpy_hashbuf(name + off, len - off, is_signed, in, 4);
            umlpy_tea(buf, in);
        }
    }
    if (kind == 1)
        return (unsigned long long)buf[1] << 32 | buf[2];
    return (unsigned long long)buf[0] << 32 | buf[1];
}
