/* The guest of tests/test_checkpoint.py: programs whose state a checkpoint
 * must carry over.
 *   t_ckpt count FILE N: prints and appends "count I" to FILE every 100 ms
 *     up to N (one open file, its offset kept), then checks FILE holds
 *     every count once, in order, and says so.
 *   t_ckpt pipe N: puts bytes in a pipe, forks; the child counts to N,
 *     then reads the pipe; the parent waits for it and reports.
 *   t_ckpt socket N: counts to N holding a listening unix socket with an
 *     abstract name.
 *   t_ckpt unix DIR N: named unix sockets: a stream server listening on
 *     DIR/s with one connection accepted and two in its backlog (one whose
 *     client closed), bytes queued both ways, a pipe end (holding bytes,
 *     its other end closed) passed with SCM_RIGHTS to the connection not
 *     accepted; a datagram socket with an abstract name holding datagrams
 *     from an autobound socket (one passing DIR/f open at offset 5) and
 *     from one connected to it (passing a socketpair's end holding bytes,
 *     its peer closed).  After counting to N it takes everything,
 *     then connects to DIR/s and to the abstract name from new sockets.
 *   t_ckpt pairs N: socketpairs (stream, dgram, seqpacket) with data
 *     queued, read by a child after it counted to N.
 *   t_ckpt sleep MS: one nanosleep of MS milliseconds between two lines.
 *   t_ckpt waits MS: nine threads wait MS milliseconds each, in poll, in
 *     select, in a FUTEX_WAIT on a word nobody changes, in epoll_wait on
 *     an empty epoll, in sigtimedwait for a SIGUSR1 nobody sends, in
 *     epoll_pwait with a mask, in epoll_pwait2 without and with one and in
 *     semtimedop waiting for zero on a semaphore at 1, and say how each
 *     ended (select: with the time its timeout says is left).  0.3 s in,
 *     the two waits with a mask, which blocks SIGUSR2, are sent SIGUSR2:
 *     it stays pending until the wait ends, then its handler runs (each
 *     says "usr2 1" if it ran by the time the call returned).
 *   t_ckpt spin N: computes without syscalls (integer and floating-point
 *     state in registers), printing "spin I" every 2^22 steps up to N,
 *     then checks the floating-point sum.
 *   t_ckpt pending MS: SIGUSR1 (sigqueue'd, value 42) and SIGUSR2 (kill)
 *     pending while blocked across a sleep of MS ms, then delivered.
 *   t_ckpt itimer MS: ITIMER_REAL of MS ms, then every 200 ms; prints
 *     "alarm I" at each of three SIGALRMs, then what getitimer says.
 *   t_ckpt fds MS: an eventfd holding 7, a semaphore one holding 3, a
 *     timerfd of MS ms then every 200 ms, read once it fires, and a
 *     signalfd for SIGUSR1, pending since before the checkpoint.
 *   t_ckpt ptimer MS: a POSIX timer signalling SIGUSR1 (value 42) after
 *     MS ms then every 200 ms, taken three times with sigwaitinfo, beside
 *     a SIGEV_NONE one of 60 s; then the ids and what is left of the second.
 *   t_ckpt epoll MS: an epoll on a pipe (level-triggered), an eventfd
 *     (edge-triggered) and a timerfd of MS ms (one-shot), waited on.
 *   t_ckpt threads N: the main thread counts to N beside three threads:
 *     one holding a robust mutex and waiting on a condition variable, one
 *     waiting with SIGUSR2 blocked and pending for it alone (tgkill), one
 *     computing; each keeps a thread-local value.  Then the main thread
 *     wakes them, joins them and reports what each saw, and finds the
 *     robust mutex's owner dead.
 *   t_ckpt mapped FILE N: FILE mapped MAP_SHARED twice, writable and
 *     read-only (opened O_RDONLY), written through the first, counts to N,
 *     writes again, then reads FILE with read() and tries to make the
 *     read-only mapping writable.
 *   t_ckpt inet N: a TCP listener on 127.0.0.1 with one connection
 *     accepted, bytes queued both ways, and one not yet accepted with
 *     bytes queued; a UDP socket on ::1 with two datagrams queued; counts
 *     to N, then accepts and reads everything, connects to the listener
 *     again, and half-closes.
 *   t_ckpt corked N: a UDP datagram UDP_CORK and MSG_MORE are building, a
 *     UDP-Lite pair with coverages and a datagram queued, TCP_CORK on a
 *     connection; counts to N, then uncorks each and reports.
 *   t_ckpt nat N PORT: a TCP connection to 10.0.2.2:PORT (the host, through
 *     eth0=user), counts to N, then reads from it and says what it got.
 *   t_ckpt churn N: 8 MiB of pages written, dropped (MADV_DONTNEED),
 *     filled by read() from a pipe, a mapping moved and resized with
 *     mremap and the heap grown with sbrk, 400 changes every 100 ms and
 *     "count I" after each; then checks every page against its record.
 *   t_ckpt semaphore N: a named semaphore, unlinked, a child waits on;
 *     counts to N, then posts it.
 *   t_ckpt sharedgone DIR N: a file unlinked while open and mapped
 *     MAP_SHARED by a parent and its child; counts to N, then writes and
 *     reads through the mapping and the fd.
 *   t_ckpt nameless DIR N: a file unlinked while open and an O_TMPFILE
 *     file in DIR, held over the restore, then read and one named by linkat.
 *   t_ckpt relinked DIR N: a file opened and mapped by a name that is gone
 *     (linked to a second name, then unlinked, a new file made under the
 *     old name), held over the restore, then read and written through
 *     the descriptor and read through the second name.
 *   t_ckpt deletedmap DIR N: a file mapped privately (read-only, and
 *     written copy-on-write) and then unlinked, and one whose descriptor is
 *     also open, held over the restore; then read through the mappings and
 *     named in /proc/self/maps.
 *   t_ckpt deletedexe DIR N: copies itself to DIR/prog, runs that, which
 *     unlinks its own program file and makes a new DIR/prog, counts to N
 *     and says what /proc/self/exe shows and opens.
 *   t_ckpt locks PATH N: PATH flocked, record-locked and OFD-locked by
 *     three descriptions, counts to N, then tries each lock from another
 *     description and from a child.
 *   t_ckpt dir PATH N: a directory made with 20 files, open, listed in
 *     part at count 3 and the rest at N; then opens a file through it and
 *     fchdirs to it.
 *   t_ckpt vfork N: counts to 3, then vforks a child that sleeps half a
 *     second before it execs `sleep 1` (the parent waits on it, sharing its
 *     memory); counts on to N, reaps the child and says how it exited.
 *   t_ckpt shanon N: shared anonymous memory and /dev/zero mapped shared,
 *     written before a fork; the child counts to N, writes both, exits;
 *     the parent, waiting for it, prints what it sees.
 *   t_ckpt dirty N [MIB]: MIB (default 64) MiB of memory filled, then
 *     rewritten at 10 MB/s (100 KiB every 10 ms, a generation number in each
 *     word), "count I" every 100 ms up to N; then checks every word holds
 *     what was last written, and that 64 KiB mapped beside it (its address
 *     printed first), never written, reads as zeros.
 *   t_ckpt stopped N: four children stopped by signals (SIGSTOP in
 *     nanosleep, SIGTSTP in a read of a pipe, SIGSTOP in a poll with a
 *     timeout and in a ppoll whose mask blocks SIGUSR1) while the parent
 *     counts to N, their stops not waited for; then it reports the stops,
 *     continues them, reports that, writes the pipes and reports their
 *     exits; the sleeper counts on to 5, the ppoll's caller says whether
 *     its own mask blocks SIGUSR1 afterwards (it must not).
 *   t_ckpt ptpending N: a periodic POSIX timer (20 ms, SIGUSR2, value 7)
 *     and a one-shot one (30 ms, SIGRTMIN, value 9), both signals blocked
 *     and pending while it counts to N; then takes each (the periodic
 *     one's overrun counted), and the periodic one twice more.
 *   t_ckpt opath N: a directory, a file and a symlink (/bin/sh) opened
 *     O_PATH; counts to N, then what the descriptors do (fstat, read,
 *     openat through one, readlink of the symlink's).
 *   t_ckpt seccomp N: two stacked seccomp filters (getppid fails with
 *     ENOTTY, getpriority traps to a SIGSYS handler) and a child in strict
 *     mode blocked in a read of a pipe; counts to N, then says what the
 *     filters do to itself and to a new child, and what strict mode does
 *     to the child (its read works, its getpid kills it).
 *   t_ckpt cputime N: RLIMIT_CPU's soft limit at 1 s (SIGXCPU handled); a
 *     thread burns 0.2 s of its own CPU and waits, the process goes on to
 *     0.8 s; counts
 *     to N, then says whether the process's, the thread's and getrusage's
 *     CPU times went on from where they were, and burns CPU until SIGXCPU
 *     comes, saying whether that was at about 1 s of CPU in all.
 *   t_ckpt tables N: a child cloned with CLONE_FILES and CLONE_FS (no
 *     CLONE_VM) and a thread that unshared its fd table and filesystem
 *     context (its own cwd /dev, umask 077, one fd closed), both waiting
 *     on pipes; counts to N, then opens a file and moves to /tmp, and asks
 *     each what it sees (the child the new fd and /tmp, then moves the
 *     shared cwd to /; the thread its own), then says where it is.
 *   t_ckpt leaderless N: a child whose main thread called pthread_exit,
 *     leaving a thread that counts to N and one waiting on a pipe; then
 *     the counter wakes the waiter, starts a new thread, and exits the
 *     process with 7, which the parent reports.
 *   t_ckpt pidfds N: pidfds of a running child (waiting on a pipe), of a
 *     zombie child and of a child already reaped; counts to N, then says
 *     what poll, pidfd_send_signal and waitid(P_PIDFD) make of each, the
 *     running one before and after it exits.
 *   t_ckpt memfds N: a sealable memfd ("shared", sealed against shrinking
 *     and growing) written and mapped shared by this process and by a
 *     child, and a memfd only a mapping holds (its fd closed); counts to
 *     N, then writes through the mappings and says what the other side,
 *     a read of the fd and the seals see.
 *   t_ckpt prealloc PATH N: PATH (a directory, made) holds f, 3 bytes with
 *     1 MiB reserved past them by fallocate(FALLOC_FL_KEEP_SIZE); counts
 *     to N, then says its size, whether the reserved blocks are counted,
 *     and the size after a write into the reserved part.
 *   t_ckpt leased PATH N: PATH (made) under a read lease with F_SETSIG
 *     (SIGRTMIN+2, blocked); counts to N, then what F_GETLEASE says, a
 *     child's non-blocking open for writing (EWOULDBLOCK, the lease
 *     breaking), the break's signal, and the child's open once the lease
 *     is given up.
 *   t_ckpt nested N: epoll A watches epoll B (edge-triggered) and an
 *     eventfd; B watches epoll C and a pipe; C watches another pipe; all
 *     quiet while it counts to N, then each pipe written in turn and what
 *     every epoll reports.
 *   t_ckpt sigio N: a pipe with O_ASYNC, F_SETOWN (itself) and F_SETSIG
 *     (SIGRTMIN+1, blocked), another owned by its process group; counts to
 *     N, reads the settings back, writes the pipe and takes the signal.
 *   t_ckpt ptwall N: a POSIX timer on CLOCK_REALTIME set (TIMER_ABSTIME)
 *     to N/10 + 3 s from now; counts to N, says it is not due yet, then
 *     takes its signal and says it came no earlier than its time.
 *   t_ckpt tcpheld N: a loopback TCP connection whose writer sends a
 *     byte with MSG_MORE every 50 ms while it counts to N (held back, then
 *     pushed by the 200 ms timer); then a last byte and whether the reader
 *     got every byte, in order.
 *   t_ckpt clocks N: counts to N reading the monotonic and boot clocks
 *     (vDSO and syscall) at each count; then whether one ever went back,
 *     whether /proc/uptime agrees with CLOCK_BOOTTIME, and whether waits
 *     to an absolute monotonic time 200 ms ahead took those 200 ms.
 *   t_ckpt timens N: (as root) a time namespace for its children, its
 *     monotonic clock 1000 s and boot clock 2000 s ahead; a child in it
 *     runs `clocks N` there, then says whether it is in the same
 *     namespace, its offsets file, whether they are frozen still and
 *     whether its clocks are the outer ones plus the offsets.
 *   t_ckpt mlocked N: 64 KiB mlocked (one page written) and 32 KiB
 *     mlock2'd MLOCK_ONFAULT; counts to N, then VmLck, which pages are
 *     resident (mincore) and a munlock.
 *   t_ckpt spawner N: every 100 ms a child is born that fills 3 MiB with
 *     its own pattern, sleeps 350 ms and checks it (every other one after
 *     exec'ing itself as `t_ckpt kid I`), "count I" after each; then
 *     reaps them all and says whether each found its memory intact.
 *   t_ckpt sysv N: a SysV segment (attached, written, then IPC_RMID'd:
 *     removal pending), a semaphore set and a message queue with four
 *     messages; a child (attached by fork) adds 5 to a semaphore with
 *     SEM_UNDO and blocks in semop; the parent counts to N, finds the ids
 *     by key again, prints IPC_STAT's fields, receives the messages by
 *     type, writes the segment, wakes the child (which reads and writes
 *     the segment and exits: its undo applied), then the values, the
 *     segment's bytes, and the segment gone after its last shmdt.
 *   t_ckpt mqueue N: POSIX queues: one with four messages of three
 *     priorities (a read-write and a write-only non-blocking descriptor),
 *     an unlinked one held by its descriptor, an empty one with an
 *     mq_notify by SIGUSR1; counts to N, then mq_getattr, the messages
 *     in priority order, and the notification a send brings. *   t_ckpt inotify DIR N: an inotify instance watching DIR (creations,
 *     deletions, IN_EXCL_UNLINK) and DIR/a (IN_MODIFY, IN_ONESHOT, then
 *     IN_ATTRIB added with IN_MASK_ADD), a watch on DIR/b added and
 *     removed, two events queued unread; counts to N, then makes more
 *     events, adds watches (the next wd) and reads every event.
 *   t_ckpt pty N: a pty pair (posix_openpt, window 30x100); a child in its
 *     own session with the slave as controlling tty echoes each line it
 *     reads ("got LINE").  The parent types a line and reads it back, turns
 *     echo off (through the master), types a line it does not read back
 *     and half a line the child cannot read yet, counts to N, then
 *     finishes the line, reads what came, types "quit" and reads the
 *     child's report on its tty until the slave is closed.
 *   t_ckpt hungup N: counts to N holding a pty slave whose master it
 *     closed (a hung-up pty, which a checkpoint refuses).
 *   t_ckpt unwatched N: counts to N holding an inotify watch on a file
 *     it unlinked (open elsewhere, so its inode lives on without a name).
 *   t_ckpt landlocked N: counts to N in a Landlock domain (which a
 *     checkpoint refuses: a restore would drop the sandbox).
 *   t_ckpt accounting N: counts to N with process accounting on, into
 *     /tmp/pacct (refused too).
 *   t_ckpt pfilter N: counts to N holding a packet socket with a socket
 *     filter (refused too: the program is not saved).
 *   t_ckpt zombie N: with SIGCHLD blocked, a child in its own process group
 *     exits with 7, another computes a little and is killed by SIGTERM;
 *     neither is reaped.  Counts to N, then takes the pending SIGCHLD,
 *     reads both in /proc (when mounted), waitid(WNOWAIT)s the second,
 *     and reaps both with wait4(-1), the second's rusage the one waitid
 *     gave before the count.
 *   t_ckpt sched N: nice 10, SCHED_BATCH with reset-on-fork and a timer
 *     slack of 123456 ns in the main thread; a second thread takes nice 15,
 *     SCHED_IDLE and a slack of 7777 ns.  Counts to N, then each thread
 *     reports its nice, policy and slack, and a child forked after the
 *     restore its own (reset-on-fork: SCHED_OTHER, the default slack the
 *     parent's slack).
 *   t_ckpt keys N: a new session keyring named "ckses" holding a user key
 *     (its permissions set, a timeout of an hour) and a keyring holding a
 *     logon key; a process keyring with a user key, a thread keyring.
 *     Counts to N, then finds every key again by the same serial and
 *     reads, describes and searches them.
 *   t_ckpt netsock N: ping sockets on 127.0.0.1 (bound to identifier
 *     4321, two echo requests sent) and on ::1 (one), a raw ICMP socket
 *     filtering all but echo replies, and a NETLINK_ROUTE socket bound
 *     to two groups with NETLINK_EXT_ACK set, a link dump asked for; none
 *     read.  Counts to N, then reads every reply and the dump to its end
 *     and shows the netlink socket's port id, groups and option.
 *   t_ckpt packet N: a SOCK_DGRAM packet socket for IPv4 bound to eth0
 *     (which must be up, behind eth0=user) with PACKET_AUXDATA,
 *     TPACKET_V2 and a reserve of 64, sends a DHCPDISCOVER to the
 *     broadcast address; counts to N, then reads the offer the user-mode
 *     network queued, with its sender and auxdata, and the statistics.
 *   t_ckpt fifo PATH N: a fifo made at PATH, opened by a non-blocking
 *     reader and a writer, sized to one page and filled; a child opens it
 *     again and blocks writing to it.  Counts to N, then reads it all
 *     (the child's bytes after the page), and shows the readers and
 *     writers counted right: EAGAIN, EOF once the writers closed, ENXIO
 *     for a non-blocking writer once the reader closed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <mqueue.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <linux/netlink.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/ethernet.h>
#include <linux/rtnetlink.h>
#include <linux/futex.h>
#include <linux/keyctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <semaphore.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void tick(void)
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* "count 1" to "count N", a tick after each: the window a checkpoint is taken in */
static void count_ticks(int n)
{
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
}

static int count(const char *path, int n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        dprintf(fd, "count %d\n", i);
        tick();
    }
    dprintf(1, "offset %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    close(fd);
    FILE *f = fopen(path, "r");
    int want = 1, got;
    while (f && fscanf(f, "count %d\n", &got) == 1 && got == want)
        want++;
    dprintf(1, want == n + 1 ? "file ok %d\n" : "file bad at %d\n", want - 1);
    return 0;
}

static int piped(long n)
{
    int p[2];
    char buf[64] = "";
    if (pipe(p) < 0 || write(p[1], "bytes in the pipe", 17) != 17)
        return 1;
    pid_t c = fork();
    if (c == 0) {
        for (int i = 1; i <= n; i++) {
            dprintf(1, "child %d\n", i);
            tick();
        }
        ssize_t r = read(p[0], buf, sizeof buf - 1);
        dprintf(1, "child read %zd: %s\n", r, buf);
        _exit(7);
    }
    int st;
    pid_t w = waitpid(c, &st, 0);
    dprintf(1, "parent: child %s, status %d\n", w == c ? "reaped" : "lost", WEXITSTATUS(st));
    return 0;
}

static int socket_held(long n)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    memcpy(a.sun_path, "\0ckpt", 5);       /* abstract: no file in the root */
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a.sun_family + 5) < 0 || listen(s, 1) < 0)
        return 1;
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    return 0;
}

static socklen_t unix_addr(struct sockaddr_un *a, const char *name, size_t len)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path, name, len);
    return offsetof(struct sockaddr_un, sun_path) + len;
}

static int send_fd(int s, const char *data, int fd, const struct sockaddr_un *to, socklen_t tolen)
{
    char cbuf[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {(void *)data, strlen(data)};
    struct msghdr mh = {.msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    return sendmsg(s, &mh, 0) < 0 ? -1 : 0;
}

/* one message: its bytes in buf (NUL-terminated), the fd it carried
   (-1: none), and in from/fromlen the sender's address */
static ssize_t recv_fd(int s, char *buf, size_t n, int *fd, struct sockaddr_un *from, socklen_t *fromlen)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {buf, n - 1};
    struct msghdr mh = {.msg_name = from, .msg_namelen = from ? *fromlen : 0, .msg_iov = &iov,
                        .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t r = recvmsg(s, &mh, 0);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    *fd = -1;
    if (r >= 0 && cm && cm->cmsg_type == SCM_RIGHTS)
        memcpy(fd, CMSG_DATA(cm), sizeof *fd);
    if (from)
        *fromlen = mh.msg_namelen;
    buf[r > 0 ? r : 0] = 0;
    return r;
}

static int unix_named(const char *dir, long n)
{
    char path[96], fpath[96], abs[32], buf[64];
    struct sockaddr_un a, d_addr, from;
    snprintf(path, sizeof path, "%s/s", dir);
    snprintf(fpath, sizeof fpath, "%s/f", dir);
    unlink(path);
    socklen_t alen = unix_addr(&a, path, strlen(path));
    socklen_t dlen = unix_addr(&d_addr, abs, snprintf(abs, sizeof abs, "%cckpt-unix-%d", 0, (int)getpid()));
    int l = socket(AF_UNIX, SOCK_STREAM, 0), c1 = socket(AF_UNIX, SOCK_STREAM, 0);
    int c2 = socket(AF_UNIX, SOCK_STREAM, 0), c3 = socket(AF_UNIX, SOCK_STREAM, 0);
    int d = socket(AF_UNIX, SOCK_DGRAM, 0), ds = socket(AF_UNIX, SOCK_DGRAM, 0);
    int dc = socket(AF_UNIX, SOCK_DGRAM, 0), p[2], f = open(fpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    sa_family_t fam = AF_UNIX;
    if (bind(l, (struct sockaddr *)&a, alen) || listen(l, 4) || connect(c1, (struct sockaddr *)&a, alen))
        return perror("server"), 1;
    int a1 = accept(l, NULL, NULL);
    if (a1 < 0 || connect(c2, (struct sockaddr *)&a, alen) || connect(c3, (struct sockaddr *)&a, alen))
        return perror("connect"), 1;
    if (bind(d, (struct sockaddr *)&d_addr, dlen) || bind(ds, (struct sockaddr *)&fam, sizeof fam)
        || connect(dc, (struct sockaddr *)&d_addr, dlen) || pipe(p) || f < 0)
        return perror("dgram"), 1;
    write(c1, "to server", 9);
    write(a1, "to client", 9);
    write(c2, "queued before accept", 20);
    write(p[1], "in the pipe", 11);
    close(p[1]);
    if (send_fd(c2, "fd", p[0], NULL, 0))
        return perror("send_fd"), 1;
    close(p[0]);
    write(c3, "orphan", 6);
    close(c3);
    write(f, "file content", 12);
    lseek(f, 5, SEEK_SET);
    sendto(ds, "dgram one", 9, 0, (struct sockaddr *)&d_addr, dlen);
    if (send_fd(ds, "dgram two", f, &d_addr, dlen))
        return perror("send_fd"), 1;
    close(f);
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || write(sp[0], "nested", 6) != 6)
        return perror("socketpair"), 1;
    close(sp[0]);
    if (send_fd(dc, "connected dgram", sp[1], NULL, 0))
        return perror("send_fd"), 1;
    close(sp[1]);
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    ssize_t r = read(a1, buf, sizeof buf);
    dprintf(1, "server got %.*s\n", (int)r, buf);
    r = read(c1, buf, sizeof buf);
    dprintf(1, "client got %.*s\n", (int)r, buf);
    int a2 = accept(l, NULL, NULL), fd;
    r = read(a2, buf, 20);
    dprintf(1, "backlog got %.*s\n", (int)r, buf);
    r = recv_fd(a2, buf, sizeof buf, &fd, NULL, NULL);
    dprintf(1, "then %s with %s\n", buf, fd >= 0 ? "an fd" : "no fd");
    r = read(fd, buf, sizeof buf);
    dprintf(1, "the fd read %.*s, then %zd\n", (int)r, buf, read(fd, buf, sizeof buf));
    int a3 = accept(l, NULL, NULL);
    r = read(a3, buf, sizeof buf);
    dprintf(1, "orphan got %.*s, then %zd\n", (int)r, buf, read(a3, buf, sizeof buf));
    for (int i = 0; i < 3; i++) {
        socklen_t fl = sizeof from;
        r = recv_fd(d, buf, sizeof buf, &fd, &from, &fl);
        dprintf(1, "dgram %s from %s", buf, fl == sizeof(sa_family_t) + 6 && !from.sun_path[0] ? "autobound"
                : fl == 0 ? "unnamed" : "?");
        if (fd >= 0) {
            r = read(fd, buf, sizeof buf);
            dprintf(1, " with a file reading %.*s", (int)r, buf);
        }
        dprintf(1, "\n");
    }
    int c4 = socket(AF_UNIX, SOCK_STREAM, 0), d2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (connect(c4, (struct sockaddr *)&a, alen) || write(c4, "hello again", 11) != 11)
        return perror("reconnect"), 1;
    int a4 = accept(l, NULL, NULL);
    r = read(a4, buf, sizeof buf);
    dprintf(1, "reconnected: %.*s\n", (int)r, buf);
    sendto(d2, "after", 5, 0, (struct sockaddr *)&d_addr, dlen);
    r = read(d, buf, sizeof buf);
    dprintf(1, "abstract name reached: %.*s\n", (int)r, buf);
    unlink(path);
    return 0;
}

/* socketpairs with data queued both ways, the child reading them after
   counting to n: bytes on a stream pair, datagrams on a dgram pair with
   the sender's credentials (SO_PASSCRED), a record on a seqpacket pair */
static int pairs(long n)
{
    int st[2], dg[2], sp[2], one = 1;
    char buf[64];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg)
        || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp))
        return 1;
    setsockopt(dg[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    write(st[0], "stream bytes", 12);
    write(dg[0], "first", 5);
    write(dg[0], "second", 6);
    write(sp[0], "record", 6);
    pid_t c = fork();
    if (c == 0) {
        for (int i = 1; i <= n; i++) {
            dprintf(1, "child %d\n", i);
            tick();
        }
        ssize_t r = read(st[1], buf, sizeof buf);
        dprintf(1, "stream %.*s\n", (int)r, buf);
        char cbuf[CMSG_SPACE(sizeof(struct ucred))];
        struct iovec iov = {buf, sizeof buf};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                            .msg_controllen = sizeof cbuf};
        r = recvmsg(dg[1], &mh, 0);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        struct ucred *uc = cm ? (struct ucred *)CMSG_DATA(cm) : NULL;
        dprintf(1, "dgram %.*s from %s\n", (int)r, buf, uc && uc->pid == getppid() ? "parent" : "?");
        r = read(dg[1], buf, sizeof buf);
        dprintf(1, "dgram %.*s\n", (int)r, buf);
        r = read(sp[1], buf, 3);
        dprintf(1, "record %.*s (%zd of 6)\n", (int)r, buf, r);
        write(st[1], "back", 4);
        _exit(0);
    }
    close(st[1]);
    ssize_t r = read(st[0], buf, sizeof buf);
    dprintf(1, "parent got %.*s\n", (int)r, buf);
    waitpid(c, NULL, 0);
    return 0;
}

static int sleep_once(long ms)
{
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
    dprintf(1, "sleeping\n");
    int r = nanosleep(&ts, NULL);
    dprintf(1, "woke %d\n", r);
    return 0;
}

static void *poll_wait(void *arg)
{
    int r = poll(NULL, 0, (int)(long)arg);
    dprintf(1, "poll %d\n", r);
    return NULL;
}

static void *select_wait(void *arg)
{
    long ms = (long)arg;
    struct timeval tv = {ms / 1000, ms % 1000 * 1000};
    int r = select(0, NULL, NULL, NULL, &tv);
    dprintf(1, "select %d left %ld\n", r, (long)tv.tv_sec * 1000000 + tv.tv_usec);
    return NULL;
}

static void *futex_wait(void *arg)
{
    static int word;
    long ms = (long)arg;
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
    long r = syscall(SYS_futex, &word, 128 /* FUTEX_WAIT_PRIVATE */, 0, &ts, NULL, 0);
    dprintf(1, "futex %ld %s\n", r, r ? strerror(errno) : "woken");
    return NULL;
}

static void *epoll_waiting(void *arg)
{
    int ep = epoll_create1(0);
    struct epoll_event ev;
    int r = epoll_wait(ep, &ev, 1, (int)(long)arg);
    dprintf(1, "epoll %d\n", r);
    return NULL;
}

static void *sigtimedwaiting(void *arg)
{
    long ms = (long)arg;
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    int r = sigtimedwait(&set, (siginfo_t *)-1L, &ts);     /* (written only if a signal comes) */
    dprintf(1, "sigtimedwait %d %s\n", r, r < 0 ? strerror(errno) : "");
    return NULL;
}

static __thread volatile sig_atomic_t got_usr2;

static void note_usr2(int sig)
{
    (void)sig;
    got_usr2 = 1;
}

/* the thread's own mask with SIGUSR2 blocked too */
static void usr2_blocked(sigset_t *set)
{
    pthread_sigmask(SIG_BLOCK, NULL, set);
    sigaddset(set, SIGUSR2);
}

static void *epoll_pwaiting(void *arg)
{
    int ep = epoll_create1(0);
    struct epoll_event ev;
    sigset_t set;
    usr2_blocked(&set);
    int r = epoll_pwait(ep, &ev, 1, (int)(long)arg, &set);
    dprintf(1, "epoll_pwait %d usr2 %d%s%s\n", r, (int)got_usr2, r < 0 ? " " : "", r < 0 ? strerror(errno) : "");
    return NULL;
}

/* epoll_pwait2 on an empty epoll for ms, under set if any */
static long epoll_pwait2_for(long ms, const sigset_t *set)
{
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
    struct epoll_event ev;
    return syscall(SYS_epoll_pwait2, epoll_create1(0), &ev, 1, &ts, set, 8);
}

static void *epoll_pwait2ing(void *arg)
{
    dprintf(1, "epoll_pwait2 %ld\n", epoll_pwait2_for((long)arg, NULL));
    return NULL;
}

static void *epoll_pwait2_masked(void *arg)
{
    sigset_t set;
    usr2_blocked(&set);
    long r = epoll_pwait2_for((long)arg, &set);
    dprintf(1, "epoll_pwait2 mask %ld usr2 %d%s%s\n", r, (int)got_usr2, r < 0 ? " " : "",
            r < 0 ? strerror(errno) : "");
    return NULL;
}

static void *semtimedwaiting(void *arg)
{
    long ms = (long)arg;
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
    int sem = semget(IPC_PRIVATE, 1, 0600);
    semctl(sem, 0, SETVAL, 1);
    struct sembuf op = {0, 0, 0};           /* wait for zero */
    int r = semtimedop(sem, &op, 1, &ts);
    dprintf(1, "semtimedop %d %s\n", r, r < 0 ? strerror(errno) : "");
    return NULL;
}

static int waits(long ms)
{
    void *(*fns[])(void *) = {poll_wait, select_wait, futex_wait, epoll_waiting, sigtimedwaiting,
                              epoll_pwaiting, epoll_pwait2ing, epoll_pwait2_masked, semtimedwaiting};
    enum { N = sizeof fns / sizeof fns[0] };
    pthread_t th[N];
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);     /* (every thread: sigtimedwait's) */
    signal(SIGUSR2, note_usr2);
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, fns[i], (void *)ms);
    struct timespec nap = {0, 300 * 1000000};
    nanosleep(&nap, NULL);                  /* (each thread in its wait) */
    pthread_kill(th[5], SIGUSR2);
    pthread_kill(th[7], SIGUSR2);
    dprintf(1, "waiting\n");
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    return 0;
}

static int spin(long n)
{
    double sum = 0;
    for (unsigned long i = 1; i <= (unsigned long)n << 22; i++) {
        sum += 0.5;
        if (!(i & ((1UL << 22) - 1)))
            dprintf(1, "spin %lu\n", i >> 22);
    }
    dprintf(1, sum == (double)((unsigned long)n << 21) ? "sum ok\n" : "sum bad %f\n", sum);
    return 0;
}

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    dprintf(1, "got %s code %d value %d pid-ok %d\n", sig == SIGUSR1 ? "USR1" : "USR2", si->si_code,
            sig == SIGUSR1 ? si->si_value.sival_int : 0, si->si_pid == getpid());
}

static int pending(long ms)
{
    struct sigaction sa = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 42});
    kill(getpid(), SIGUSR2);
    sleep_once(ms);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    dprintf(1, "unblocked\n");
    return 0;
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static int itimer(long ms)
{
    struct itimerval it = {{0, 200000}, {ms / 1000, ms % 1000 * 1000}};
    signal(SIGALRM, on_alarm);
    if (setitimer(ITIMER_REAL, &it, NULL) < 0)
        return 1;
    dprintf(1, "armed\n");
    for (int seen = 0; seen < 3;) {
        pause();
        while (seen < alarms)
            dprintf(1, "alarm %d\n", ++seen);
    }
    getitimer(ITIMER_REAL, &it);
    dprintf(1, "interval %ld us\n", (long)it.it_interval.tv_usec);
    return 0;
}

static int ptimer(long ms)
{
    timer_t a, b, c;
    struct sigevent sa = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1,
                          .sigev_value.sival_int = 42};
    struct sigevent sb = {.sigev_notify = SIGEV_NONE};
    struct itimerspec ia = {{0, 200000000}, {ms / 1000, ms % 1000 * 1000000}}, ib = {{0, 0}, {60, 0}};
    sigset_t set;
    siginfo_t si;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (timer_create(CLOCK_MONOTONIC, &sa, &a) || timer_create(CLOCK_BOOTTIME, &sb, &b)
        || timer_settime(a, 0, &ia, NULL) || timer_settime(b, 0, &ib, NULL))
        return 1;
    dprintf(1, "ready\n");
    for (int i = 1; i <= 3; i++) {
        if (sigwaitinfo(&set, &si) != SIGUSR1)
            return 1;
        dprintf(1, "timer %d: code %s value %d\n", i, si.si_code == SI_TIMER ? "SI_TIMER" : "?",
                si.si_value.sival_int);
    }
    timer_gettime(b, &ib);
    timer_create(CLOCK_MONOTONIC, NULL, &c);
    dprintf(1, "ids %ld %ld %ld, none left %s\n", (long)(intptr_t)a, (long)(intptr_t)b, (long)(intptr_t)c,
            ib.it_value.tv_sec > 50 && ib.it_value.tv_sec < 60 ? "ok" : "bad");
    return 0;
}

/* ptpending: POSIX timers' signals pending (blocked) across the checkpoint */
static int ptpending(long n)
{
    timer_t per, once;
    struct sigevent sp = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2, .sigev_value.sival_int = 7};
    struct sigevent so = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN, .sigev_value.sival_int = 9};
    struct itimerspec ip = {{0, 20000000}, {0, 20000000}}, io = {{0, 0}, {0, 30000000}};
    sigset_t set;
    siginfo_t si;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (timer_create(CLOCK_MONOTONIC, &sp, &per) || timer_create(CLOCK_MONOTONIC, &so, &once)
        || timer_settime(per, 0, &ip, NULL) || timer_settime(once, 0, &io, NULL))
        return 1;
    tick();
    count_ticks(n);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGRTMIN);
    if (sigwaitinfo(&one, &si) != SIGRTMIN)
        return 1;
    dprintf(1, "one-shot: code %s value %d overrun %d\n", si.si_code == SI_TIMER ? "SI_TIMER" : "?",
            si.si_value.sival_int, si.si_overrun);
    sigemptyset(&one);
    sigaddset(&one, SIGUSR2);
    if (sigwaitinfo(&one, &si) != SIGUSR2)
        return 1;
    dprintf(1, "periodic: code %s value %d overrun %s\n", si.si_code == SI_TIMER ? "SI_TIMER" : "?",
            si.si_value.sival_int, si.si_overrun > 0 ? "> 0" : "0");
    for (int i = 0; i < 2; i++)         /* restarted by the dequeue: it fires again */
        if (sigwaitinfo(&one, &si) != SIGUSR2 || si.si_value.sival_int != 7)
            return 1;
    dprintf(1, "periodic again twice\n");
    return 0;
}

/* seccomp: filters and strict mode kept across the checkpoint */
static volatile int sigsys_nr = -1;

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    sigsys_nr = si->si_code == 1 ? si->si_syscall : -2;     /* SYS_SECCOMP */
}

static int add_filter(int nr, unsigned ret)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, ret),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {4, f};
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static const char *getppid_says(void)
{
    errno = 0;
    long r = syscall(SYS_getppid);
    return r == -1 && errno == ENOTTY ? "ENOTTY" : "allowed";
}

static int seccomped(long n)
{
    int p[2];
    char c;
    if (pipe(p))
        return 1;
    pid_t strict = fork();
    if (strict == 0) {
        close(p[1]);
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT);
        if (read(p[0], &c, 1) == 1)
            write(1, "strict child: read works\n", 25);
        syscall(SYS_getpid);
        write(1, "strict child: getpid allowed\n", 29);
        syscall(SYS_exit, 0);
    }
    close(p[0]);
    struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
    sigaction(SIGSYS, &sa, NULL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || add_filter(SYS_getppid, SECCOMP_RET_ERRNO | ENOTTY)
        || add_filter(SYS_getpriority, SECCOMP_RET_TRAP | 3))
        return 1;
    count_ticks(n);
    errno = 0;
    long pr = syscall(SYS_getpriority, PRIO_PROCESS, 0);
    dprintf(1, "mode %d; getppid %s; getpriority %s (SIGSYS for %s)\n", prctl(PR_GET_SECCOMP),
            getppid_says(), pr == SYS_getpriority ? "returns its number" : "?",
            sigsys_nr == SYS_getpriority ? "getpriority" : "?");
    pid_t kid = fork();
    if (kid == 0) {
        dprintf(1, "new child: mode %d, getppid %s\n", prctl(PR_GET_SECCOMP), getppid_says());
        _exit(0);
    }
    int st;
    waitpid(kid, &st, 0);
    write(p[1], "x", 1);
    waitpid(strict, &st, 0);
    dprintf(1, "strict child: %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? "killed by SIGKILL" : "?");
    return 0;
}

/* nested: epolls watching epolls */
static int ep_add(int ep, int fd, unsigned events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void ep_report(const char *name, int ep)
{
    struct epoll_event ev[4];
    int k = epoll_wait(ep, ev, 4, 0);
    dprintf(1, " %s:", name);
    for (int i = 0; i < k; i++)
        dprintf(1, " %d/%x", ev[i].data.fd, ev[i].events);
    if (k <= 0)
        dprintf(1, " none");
}

static int nested(long n)
{
    int p[2], q[2];
    int a = epoll_create1(0), b = epoll_create1(0), c = epoll_create1(0), e = eventfd(0, 0);
    if (a < 0 || b < 0 || c < 0 || e < 0 || pipe(p) || pipe(q) || ep_add(c, q[0], EPOLLIN)
        || ep_add(b, c, EPOLLIN) || ep_add(b, p[0], EPOLLIN) || ep_add(a, b, EPOLLIN | EPOLLET)
        || ep_add(a, e, EPOLLIN))
        return 1;
    dprintf(1, "fds: A %d B %d C %d eventfd %d pipes %d %d\n", a, b, c, e, p[0], q[0]);
    count_ticks(n);
    ep_report("A", a);
    ep_report("B", b);
    dprintf(1, "\n");
    write(q[1], "x", 1);
    ep_report("A", a);
    ep_report("A again", a);
    ep_report("B", b);
    ep_report("C", c);
    dprintf(1, "\n");
    write(p[1], "y", 1);
    ep_report("A", a);
    ep_report("B", b);
    dprintf(1, "\n");
    struct epoll_event ev = {.events = EPOLLIN};
    dprintf(1, "a loop is still refused: %s\n", epoll_ctl(c, EPOLL_CTL_ADD, a, &ev) < 0 && errno == ELOOP
            ? "ELOOP" : "?");
    return 0;
}

/* cputime: CPU time and RLIMIT_CPU go on from where they were */
static volatile sig_atomic_t got_xcpu;
static int cpu_pipe[2];
static double thread_cpu_before;

static void on_xcpu(int sig)
{
    (void)sig;
    got_xcpu = 1;
}

static double cpu_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void burn(clockid_t c, double secs)
{
    double t0 = cpu_s(c);
    while (cpu_s(c) - t0 < secs && !got_xcpu)
        ;
}

static void *cpu_thread(void *arg)
{
    char c;
    (void)arg;
    burn(CLOCK_THREAD_CPUTIME_ID, 0.2);
    thread_cpu_before = cpu_s(CLOCK_THREAD_CPUTIME_ID);
    if (read(cpu_pipe[0], &c, 1) == 1)
        dprintf(1, "thread CPU time went on: %s\n",
                cpu_s(CLOCK_THREAD_CPUTIME_ID) >= thread_cpu_before ? "yes" : "no");
    return NULL;
}

static int cputime(long n)
{
    struct rlimit rl = {1, 10};
    struct rusage ru;
    pthread_t th;
    signal(SIGXCPU, on_xcpu);
    if (setrlimit(RLIMIT_CPU, &rl) || pipe(cpu_pipe) || pthread_create(&th, NULL, cpu_thread, NULL))
        return 1;
    burn(CLOCK_PROCESS_CPUTIME_ID, 0.8);
    double before = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
    count_ticks(n);
    double after = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
    getrusage(RUSAGE_SELF, &ru);
    double ru_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    dprintf(1, "process CPU time went on: %s; getrusage's: %s\n", after >= before ? "yes" : "no",
            ru_s >= before - 0.02 ? "yes" : "no");
    write(cpu_pipe[1], "x", 1);
    pthread_join(th, NULL);
    burn(CLOCK_PROCESS_CPUTIME_ID, 3);
    double at = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
    getrlimit(RLIMIT_CPU, &rl);
    dprintf(1, "SIGXCPU: %s, at about 1 s of CPU in all: %s; soft limit now %ld\n", got_xcpu ? "yes" : "no",
            at >= 0.95 && at < 1.6 ? "yes" : "no", (long)rl.rlim_cur);
    return 0;
}

/* tables: fd tables and filesystem contexts shared or not, as clone left them */
static int tables_p[2], tables_q[2], tables_kept = -1;

static const char *cwd_now(void)
{
    static char buf[256];
    return getcwd(buf, sizeof buf) ? buf : "?";
}

static int tables_child(void *arg)
{
    char c;
    (void)arg;
    if (read(tables_p[0], &c, 1) != 1)
        _exit(1);
    int fd = c;
    dprintf(1, "sharing child: fd %d %s, cwd %s\n", fd, fcntl(fd, F_GETFD) >= 0 ? "open" : "closed", cwd_now());
    chdir("/");
    _exit(0);
}

static void *tables_thread(void *arg)
{
    char c;
    (void)arg;
    if (unshare(CLONE_FILES | CLONE_FS) || chdir("/dev"))
        return NULL;
    umask(077);
    close(tables_kept);
    if (read(tables_q[0], &c, 1) != 1)
        return NULL;
    int fd = c;
    mode_t m = umask(077);
    dprintf(1, "unshared thread: fd %d %s, fd %d %s, cwd %s, umask %03o\n", tables_kept,
            fcntl(tables_kept, F_GETFD) >= 0 ? "open" : "closed", fd, fcntl(fd, F_GETFD) >= 0 ? "open" : "closed",
            cwd_now(), (unsigned)m);
    return NULL;
}

static int tables(long n)
{
    pthread_t th;
    static char stack[1 << 16];
    if (pipe(tables_p) || pipe(tables_q) || (tables_kept = dup(0)) < 0)
        return 1;
    pid_t kid = clone(tables_child, stack + sizeof stack, CLONE_FILES | CLONE_FS | SIGCHLD, NULL);
    if (kid < 0 || pthread_create(&th, NULL, tables_thread, NULL))
        return 1;
    count_ticks(n);
    int fd = open("/", O_RDONLY | O_DIRECTORY);
    char c = fd;
    chdir("/tmp");
    write(tables_p[1], &c, 1);
    int st;
    waitpid(kid, &st, 0);
    dprintf(1, "parent: cwd %s (the child's chdir), fd %d %s\n", cwd_now(), tables_kept,
            fcntl(tables_kept, F_GETFD) >= 0 ? "open" : "closed");
    write(tables_q[1], &c, 1);
    pthread_join(th, NULL);
    return 0;
}

/* leaderless: a process whose main thread has exited */
static int ll_pipe[2];
static pid_t ll_pid;
static pthread_t ll_waiter_th;

static void *ll_waiter(void *arg)
{
    char c;
    (void)arg;
    if (read(ll_pipe[0], &c, 1) == 1)
        dprintf(1, "waiter woke: pid %s\n", getpid() == ll_pid ? "the same" : "?");
    return NULL;
}

static void *ll_late(void *arg)
{
    (void)arg;
    dprintf(1, "a thread started after it runs\n");
    return NULL;
}

static void *ll_counter(void *arg)
{
    pthread_t th;
    count_ticks((long)arg);
    dprintf(1, "counter: pid %s, its tid not the pid: %s\n", getpid() == ll_pid ? "the same" : "?",
            syscall(SYS_gettid) != ll_pid ? "yes" : "no");
    write(ll_pipe[1], "x", 1);
    pthread_join(ll_waiter_th, NULL);
    pthread_create(&th, NULL, ll_late, NULL);
    pthread_join(th, NULL);
    exit(7);
}

static int leaderless(long n)
{
    pid_t kid = fork();
    if (kid == 0) {
        pthread_t th;
        ll_pid = getpid();
        if (pipe(ll_pipe) || pthread_create(&ll_waiter_th, NULL, ll_waiter, NULL)
            || pthread_create(&th, NULL, ll_counter, (void *)n))
            _exit(1);
        pthread_exit(NULL);
    }
    int st;
    waitpid(kid, &st, 0);
    dprintf(1, "parent: the child exited with %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

/* pidfds: pidfds of a live child, a zombie and a reaped one */
static int pidfd_of(pid_t pid)
{
    return syscall(SYS_pidfd_open, pid, 0);
}

static const char *readable(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1 && p.revents & POLLIN ? "readable" : "not readable";
}

static const char *signal0(int fd)
{
    errno = 0;
    return syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) == 0 ? "ok" : errno == ESRCH ? "ESRCH" : "?";
}

static int waited_status(int fd)
{
    siginfo_t si = {0};
    return waitid(P_PIDFD, fd, &si, WEXITED) == 0 ? si.si_status : -1;
}

static int pidfds(long n)
{
    int p[2];
    char c;
    if (pipe(p))
        return 1;
    pid_t a = fork();
    if (a == 0) {
        close(p[1]);
        read(p[0], &c, 1);
        _exit(5);
    }
    close(p[0]);
    pid_t b = fork();
    if (b == 0)
        _exit(2);
    int fb = pidfd_of(b);
    waitpid(b, NULL, 0);
    pid_t z = fork();
    if (z == 0)
        _exit(3);
    int fa = pidfd_of(a), fz = pidfd_of(z);
    siginfo_t si;
    waitid(P_PID, z, &si, WEXITED | WNOWAIT);       /* a zombie now */
    if (fa < 0 || fb < 0 || fz < 0)
        return 1;
    count_ticks(n);
    /* (a zombie's pidfd_send_signal is 0 on Linux 6.1, ESRCH on later ones: not asked) */
    dprintf(1, "running: %s, signal %s; reaped: %s, signal %s; zombie: %s, status %d\n",
            readable(fa, 0), signal0(fa), readable(fb, 0), signal0(fb), readable(fz, 0), waited_status(fz));
    write(p[1], "x", 1);
    dprintf(1, "the running one exited: %s, status %d\n", readable(fa, 5000), waited_status(fa));
    return 0;
}

/* memfds: memfds open and mapped shared, and one only a mapping holds */
static int memfds(long n)
{
    int p[2];
    char c;
    int fd = memfd_create("shared", MFD_ALLOW_SEALING), lone = memfd_create("lone", 0);
    if (fd < 0 || lone < 0 || pipe(p) || write(fd, "hello", 5) != 5 || ftruncate(fd, 8192) || ftruncate(lone, 4096))
        return 1;
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *l = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, lone, 0);
    close(lone);
    if (m == MAP_FAILED || l == MAP_FAILED || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
        return 1;
    strcpy(l, "lone before");
    pid_t kid = fork();
    if (kid == 0) {
        close(p[1]);
        if (read(p[0], &c, 1) == 1)
            dprintf(1, "child sees: %s / %s / %s\n", m, m + 4096, l);
        strcpy(m + 100, "from the child");
        _exit(0);
    }
    close(p[0]);
    count_ticks(n);
    strcpy(m + 4096, "after");
    strcpy(l, "lone after");
    write(p[1], "x", 1);
    waitpid(kid, NULL, 0);
    char buf[128] = "";
    pread(fd, buf, sizeof buf - 1, 100);
    errno = 0;
    int tr = ftruncate(fd, 4096);
    dprintf(1, "parent reads %s; seals %#x; shrinking %s\n", buf, fcntl(fd, F_GET_SEALS),
            tr < 0 && errno == EPERM ? "EPERM" : "allowed");
    return 0;
}

/* prealloc: a file with pages reserved past its end (fallocate KEEP_SIZE) */
static int preallocated(const char *dir, int n)
{
    char path[256];
    struct stat st;
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/f", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "abc", 3) != 3 || fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 << 20))
        return 1;
    close(fd);
    count_ticks(n);
    fd = open(path, O_RDWR);
    if (fd < 0 || fstat(fd, &st))
        return 1;
    dprintf(1, "size %lld, 1 MiB reserved: %s\n", (long long)st.st_size, st.st_blocks >= 2048 ? "yes" : "no");
    if (pwrite(fd, "z", 1, 4096) != 1 || fstat(fd, &st))
        return 1;
    dprintf(1, "after a write at 4096: size %lld, still reserved: %s\n", (long long)st.st_size,
            st.st_blocks >= 2048 ? "yes" : "no");
    return 0;
}

/* leased: a read lease held over the restore, then broken */
static int leased(const char *path, int n)
{
    int sig = SIGRTMIN + 2;
    sigset_t set;
    siginfo_t si;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int w = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (w < 0 || write(w, "leased", 6) != 6 || close(w))
        return 1;
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fcntl(fd, F_SETSIG, sig) || fcntl(fd, F_SETLEASE, F_RDLCK))
        return 1;
    count_ticks(n);
    dprintf(1, "lease: %s\n", fcntl(fd, F_GETLEASE) == F_RDLCK ? "read" : "?");
    pid_t kid = fork();
    if (kid == 0) {
        int r = open(path, O_WRONLY | O_NONBLOCK);
        dprintf(1, "child's open for writing: %s\n", r < 0 && errno == EWOULDBLOCK ? "EWOULDBLOCK" : "opened");
        _exit(0);
    }
    waitpid(kid, NULL, 0);
    struct timespec ts = {5, 0};
    int got = sigtimedwait(&set, &si, &ts);
    dprintf(1, "break signal: %s, fd %s; lease now %s\n", got == sig ? "yes" : "no",
            si.si_fd == fd ? "the lease's" : "?", fcntl(fd, F_GETLEASE) == F_UNLCK ? "to be given up" : "?");
    fcntl(fd, F_SETLEASE, F_UNLCK);
    int r = open(path, O_WRONLY | O_NONBLOCK);
    dprintf(1, "given up: open for writing %s\n", r >= 0 ? "works" : strerror(errno));
    return 0;
}

/* opath: O_PATH descriptors kept as places */
static int opath(long n)
{
    int dfd = open("/t", O_PATH | O_DIRECTORY), ffd = open("/t/bin/t_ckpt", O_PATH);
    int lfd = open("/bin/sh", O_PATH | O_NOFOLLOW);     /* a symlink itself */
    if (dfd < 0 || ffd < 0 || lfd < 0)
        return 1;
    count_ticks(n);
    struct stat st;
    char c;
    int fd = openat(dfd, "bin/t_ckpt", O_RDONLY);
    dprintf(1, "O_PATH: flags %s %s; fstat a file %d; read %s; openat through the directory %s\n",
            fcntl(dfd, F_GETFL) & O_PATH ? "path" : "?", fcntl(ffd, F_GETFL) & O_PATH ? "path" : "?",
            fstat(ffd, &st) == 0 && S_ISREG(st.st_mode), read(ffd, &c, 1) < 0 && errno == EBADF ? "EBADF" : "?",
            fd >= 0 && read(fd, &c, 1) == 1 ? "reads" : "fails");
    char target[64] = "";
    ssize_t tn = readlinkat(lfd, "", target, sizeof target - 1);
    dprintf(1, "O_PATH of a symlink: fstat %s, readlink %s\n",
            fstatat(lfd, "", &st, AT_EMPTY_PATH) == 0 && S_ISLNK(st.st_mode) ? "a link" : "?", tn > 0 ? target : "?");
    return 0;
}

/* sigio: O_ASYNC, F_SETOWN and F_SETSIG kept across the checkpoint */
static int sigio(long n)
{
    int p[2], q[2];
    int sig = SIGRTMIN + 1;
    sigset_t set;
    siginfo_t si;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (pipe(p) || pipe(q) || fcntl(p[0], F_SETOWN, getpid()) || fcntl(p[0], F_SETSIG, sig)
        || fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC) || fcntl(q[0], F_SETOWN, -getpgrp()))
        return 1;
    count_ticks(n);
    dprintf(1, "owner %s, sig %s, async %d; group owner %s\n", fcntl(p[0], F_GETOWN) == getpid() ? "me" : "?",
            fcntl(p[0], F_GETSIG) == sig ? "SIGRTMIN+1" : "?", !!(fcntl(p[0], F_GETFL) & O_ASYNC),
            fcntl(q[0], F_GETOWN) == -getpgrp() ? "-pgrp" : "?");
    if (write(p[1], "x", 1) != 1 || sigwaitinfo(&set, &si) != sig)
        return 1;
    dprintf(1, "I/O signal: fd %s, code %s\n", si.si_fd == p[0] ? "the pipe's" : "?",
            si.si_code == POLL_IN ? "POLL_IN" : "?");
    return 0;
}

/* ptwall: a POSIX timer set to an absolute wall-clock time (TIMER_ABSTIME) */
static int ptwall(long n)
{
    timer_t tm;
    struct sigevent se = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1, .sigev_value.sival_int = 5};
    struct timespec now;
    sigset_t set;
    siginfo_t si;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    clock_gettime(CLOCK_REALTIME, &now);
    struct itimerspec at = {{0, 0}, {now.tv_sec + n / 10 + 3, now.tv_nsec}};
    if (timer_create(CLOCK_REALTIME, &se, &tm) || timer_settime(tm, TIMER_ABSTIME, &at, NULL))
        return 1;
    count_ticks(n);
    struct itimerspec left;
    timer_gettime(tm, &left);
    dprintf(1, "not due yet: %s\n", left.it_value.tv_sec || left.it_value.tv_nsec ? "yes" : "no");
    if (sigwaitinfo(&set, &si) != SIGUSR1)
        return 1;
    clock_gettime(CLOCK_REALTIME, &now);
    dprintf(1, "wall timer: value %d, at its time or after: %s\n", si.si_value.sival_int,
            now.tv_sec > at.it_value.tv_sec || (now.tv_sec == at.it_value.tv_sec
                                                && now.tv_nsec >= at.it_value.tv_nsec) ? "yes" : "no");
    return 0;
}

static long long clock_ns(clockid_t c, int by_syscall)
{
    struct timespec ts;
    if (by_syscall)
        syscall(SYS_clock_gettime, c, &ts);
    else
        clock_gettime(c, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const char *took_200ms(long long t0)
{
    long long ms = (clock_ns(CLOCK_MONOTONIC, 0) - t0) / 1000000;
    return ms >= 195 && ms < 2000 ? "ok" : "wrong";
}

/* clocks N: counts to N a tick apart, reading the monotonic and boot
   clocks (in the vDSO and by the syscall) at each count; then says
   whether one ever went back, whether /proc/uptime agrees with
   CLOCK_BOOTTIME, and whether waits until an absolute monotonic time
   200 ms ahead (clock_nanosleep, a timerfd, FUTEX_WAIT_BITSET) took
   those 200 ms */
static int clocks(long n)
{
    static const clockid_t ids[] = {CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_MONOTONIC_COARSE, CLOCK_MONOTONIC_RAW};
    long long last[8] = {0};
    int back = 0;
    for (long i = 1; i <= n; i++) {
        for (int k = 0; k < 8; k++) {
            long long v = clock_ns(ids[k % 4], k / 4);
            if (v < last[k]) {
                back++;
                dprintf(1, "clock %d went back %lld ns\n", ids[k % 4], last[k] - v);
            }
            last[k] = v;
        }
        dprintf(1, "count %ld\n", i);
        tick();
    }
    dprintf(1, "went back: %d\n", back);
    char buf[64] = "";
    int fd = open("/proc/uptime", O_RDONLY);
    if (fd < 0 && !mount("proc", "/proc", "proc", 0, NULL))     /* as init, with nothing mounted */
        fd = open("/proc/uptime", O_RDONLY);
    if (fd >= 0) {
        read(fd, buf, sizeof buf - 1);
        close(fd);
    }
    double up = atof(buf), boot = clock_ns(CLOCK_BOOTTIME, 0) / 1e9;
    dprintf(1, "uptime agrees: %s\n", up > boot - 1 && up <= boot ? "yes" : "no");
    long long t0 = clock_ns(CLOCK_MONOTONIC, 0), at = t0 + 200000000;
    struct timespec abs = {at / 1000000000, at % 1000000000};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
    dprintf(1, "absolute sleep: %s\n", took_200ms(t0));
    t0 = clock_ns(CLOCK_MONOTONIC, 0), at = t0 + 200000000;
    struct itimerspec its = {{0, 0}, {at / 1000000000, at % 1000000000}};
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    uint64_t ticks;
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
    read(tfd, &ticks, sizeof ticks);
    dprintf(1, "absolute timerfd: %s\n", took_200ms(t0));
    t0 = clock_ns(CLOCK_MONOTONIC, 0), at = t0 + 200000000;
    struct timespec fabs = {at / 1000000000, at % 1000000000};
    int word = 0;
    long r = syscall(SYS_futex, &word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, &fabs, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    dprintf(1, "absolute futex wait: %ld %s\n", r, took_200ms(t0));
    return 0;
}

/* timens N: see the usage at the top */
static int timens(long n)
{
    static const char offsets[] = "monotonic 1000 0\nboottime 2000 0\n";
    const long long ns = 1000000000LL;
    if (access("/proc/self", F_OK))
        mount("proc", "/proc", "proc", 0, NULL);        /* as init, with nothing mounted */
    if (unshare(0x80 /* CLONE_NEWTIME */))
        return 1;
    int fd = open("/proc/self/timens_offsets", O_WRONLY);
    if (fd < 0 || write(fd, offsets, sizeof offsets - 1) != sizeof offsets - 1)
        return 1;
    close(fd);
    pid_t c = fork();
    if (c == 0) {
        struct stat before, after;
        stat("/proc/self/ns/time", &before);
        clocks(n);
        stat("/proc/self/ns/time", &after);
        dprintf(1, "same namespace: %s\n", before.st_ino == after.st_ino ? "yes" : "no");
        char buf[128] = "";
        fd = open("/proc/self/timens_offsets", O_RDWR);
        read(fd, buf, sizeof buf - 1);
        dprintf(1, "offsets:\n%s", buf);
        lseek(fd, 0, SEEK_SET);         /* a write is taken at offset 0 only */
        dprintf(1, "frozen: %s\n", write(fd, "monotonic 1 0", 13) < 0 && errno == EACCES ? "yes" : "no");
        char parent[64];
        snprintf(parent, sizeof parent, "/proc/%d/ns/time", getppid());
        int outer = open(parent, O_RDONLY);     /* (an open namespace is not carried) */
        long long m = clock_ns(CLOCK_MONOTONIC, 0), b = clock_ns(CLOCK_BOOTTIME, 1);
        setns(outer, 0x80);
        long long m0 = clock_ns(CLOCK_MONOTONIC, 0), b0 = clock_ns(CLOCK_BOOTTIME, 1);
        m -= 1000 * ns;
        b -= 2000 * ns;
        dprintf(1, "offsets applied: %s\n", m <= m0 && m0 < m + ns && b <= b0 && b0 < b + ns ? "yes" : "no");
        _exit(0);
    }
    int st;
    return waitpid(c, &st, 0) == c && WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/* tcpheld N: a loopback TCP connection whose writer sends a byte with
   MSG_MORE every 50 ms (held back until a segment's worth or 200 ms) while
   it counts to N, two bytes a count; then one byte without, and the reader
   says whether every byte came, in order */
static int tcpheld(long n)
{
    struct sockaddr_in t = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t tl = sizeof t;
    int lst = socket(AF_INET, SOCK_STREAM, 0), cli = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(lst, (struct sockaddr *)&t, sizeof t) || listen(lst, 1) || getsockname(lst, (struct sockaddr *)&t, &tl)
        || connect(cli, (struct sockaddr *)&t, sizeof t))
        return 1;
    int srv = accept(lst, NULL, NULL);
    long sent = 0;
    for (long i = 1; i <= n; i++) {
        for (int k = 0; k < 2; k++) {
            char c = 'a' + sent % 26;
            struct timespec half = {0, 50 * 1000 * 1000};
            send(cli, &c, 1, MSG_MORE);
            sent++;
            nanosleep(&half, NULL);
        }
        dprintf(1, "count %ld\n", i);
    }
    char c = '.', buf[4096];
    send(cli, &c, 1, 0);
    sent++;
    long got = 0;
    int in_order = 1;
    while (got < sent) {
        ssize_t r = recv(srv, buf, sizeof buf, 0);
        if (r <= 0)
            break;
        for (ssize_t j = 0; j < r; j++, got++)
            if (buf[j] != (got < sent - 1 ? 'a' + got % 26 : '.'))
                in_order = 0;
    }
    dprintf(1, "tcp bytes: %ld of %ld, in order: %s\n", got, sent, in_order ? "yes" : "no");
    return 0;
}

static void add(int ep, int fd, unsigned events, int data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void report(int ep, const char *what)
{
    struct epoll_event evs[8];
    int n = epoll_wait(ep, evs, 8, strcmp(what, "first") ? 0 : -1), sum = 0;
    for (int i = 0; i < n; i++)
        sum += evs[i].data.u64;
    dprintf(1, "%s: %d events, data %d\n", what, n, sum);
}

static int epolled(long ms)
{
    int p[2], e = eventfd(0, EFD_NONBLOCK), tf = timerfd_create(CLOCK_MONOTONIC, 0), ep = epoll_create1(0);
    struct itimerspec its = {{0, 0}, {ms / 1000, ms % 1000 * 1000000}};
    uint64_t one = 1;
    if (pipe(p) < 0 || e < 0 || tf < 0 || ep < 0)
        return 1;
    add(ep, p[0], EPOLLIN, 11);
    add(ep, e, EPOLLIN | EPOLLET, 22);
    add(ep, tf, EPOLLIN | EPOLLONESHOT, 300);
    timerfd_settime(tf, 0, &its, NULL);
    dprintf(1, "ready\n");
    report(ep, "first");
    write(e, &one, 8);
    write(p[1], "x", 1);
    report(ep, "then");
    report(ep, "again");
    return 0;
}

static int fds(long ms)
{
    uint64_t v = 2, ticks = 0;
    int e = eventfd(5, 0), es = eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK);
    int tf = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = {{0, 200000000}, {ms / 1000, ms % 1000 * 1000000}};
    if (e < 0 || es < 0 || tf < 0 || write(e, &v, 8) != 8 || timerfd_settime(tf, 0, &its, NULL) < 0)
        return 1;
    v = 3;
    write(es, &v, 8);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sf = signalfd(-1, &set, SFD_NONBLOCK);
    kill(getpid(), SIGUSR1);
    dprintf(1, "ready\n");
    read(tf, &ticks, 8);
    dprintf(1, "timerfd %d\n", ticks >= 1);
    read(e, &v, 8);
    dprintf(1, "eventfd %llu\n", (unsigned long long)v);
    int n = 0;
    while (read(es, &v, 8) == 8 && v == 1)
        n++;
    dprintf(1, "semaphore %d then %s\n", n, errno == EAGAIN ? "EAGAIN" : "?");
    read(tf, &ticks, 8);
    timerfd_gettime(tf, &its);
    dprintf(1, "timerfd again %d, interval %ld ms\n", ticks >= 1, its.it_interval.tv_nsec / 1000000);
    struct signalfd_siginfo si;
    ssize_t r = read(sf, &si, sizeof si);
    dprintf(1, "signalfd %zd: signal %u from %s\n", r, si.ssi_signo, si.ssi_pid == (unsigned)getpid() ? "self" : "?");
    dprintf(1, "signalfd then %s\n", read(sf, &si, sizeof si) < 0 && errno == EAGAIN ? "EAGAIN" : "?");
    return 0;
}

static __thread int tls_mark;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER, robust;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go, started;
static volatile int stop_spin;
static volatile pid_t usr2_tid;
static char seen[3][96];

static pid_t my_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static void on_usr2(int sig)
{
    (void)sig;
    usr2_tid = my_tid();
}

/* a thread's start: its mark in its TLS, then (under mu) counted as started
   and left to wait until the main thread says go */
static void wait_for_go(int mark)
{
    tls_mark = mark;
    pthread_mutex_lock(&mu);
    started++;
    pthread_cond_broadcast(&cv);
    while (!go)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void *holder(void *arg)
{
    (void)arg;
    pid_t me = my_tid();
    pthread_mutex_lock(&robust);
    wait_for_go(101);
    snprintf(seen[0], sizeof seen[0], "holder tls %d tid %s", tls_mark, my_tid() == me ? "same" : "changed");
    return NULL;            /* ends holding the robust mutex */
}

static void *masked(void *arg)
{
    (void)arg;
    pid_t me = my_tid();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    wait_for_go(202);
    sigpending(&set);
    int was = sigismember(&set, SIGUSR2);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    snprintf(seen[1], sizeof seen[1], "masked tls %d pending %d handled here %d", tls_mark, was,
             usr2_tid == me);
    return NULL;
}

static void *spinner(void *arg)
{
    (void)arg;
    tls_mark = 303;
    pthread_mutex_lock(&mu);
    started++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    double x = 0;
    long n = 0;
    while (!stop_spin) {
        x = x * 0.5 + 1.0;
        n++;
    }
    snprintf(seen[2], sizeof seen[2], "spinner tls %d x %.1f", tls_mark, n > 1000 ? x : -1.0);
    return NULL;
}

static int threaded(long n)
{
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &ma);
    signal(SIGUSR2, on_usr2);
    void *(*fn[3])(void *) = {holder, masked, spinner};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        if (pthread_create(&th[i], NULL, fn[i], NULL))
            return 1;
    pthread_mutex_lock(&mu);
    while (started < 3)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    pthread_kill(th[1], SIGUSR2);          /* pending for that thread alone */
    tls_mark = 7;
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    pthread_mutex_lock(&mu);
    go = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    stop_spin = 1;
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++)
        dprintf(1, "%s\n", seen[i]);
    int r = pthread_mutex_lock(&robust);
    dprintf(1, "main tls %d, robust mutex %s\n", tls_mark, r == EOWNERDEAD ? "EOWNERDEAD" : strerror(r));
    return 0;
}

static int mapped(const char *path, int n)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644), ro = open(path, O_RDONLY);
    if (fd < 0 || ro < 0 || ftruncate(fd, 8192))
        return 1;
    char *w = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *r = mmap(NULL, 8192, PROT_READ, MAP_SHARED, ro, 0);
    close(fd);
    close(ro);
    if (w == MAP_FAILED || r == MAP_FAILED)
        return 1;
    strcpy(w, "before");
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    strcpy(w + 4096, "after");
    msync(w, 8192, MS_SYNC);
    char buf[8192] = "";
    fd = open(path, O_RDONLY);
    ssize_t got = read(fd, buf, sizeof buf);
    dprintf(1, "read %zd: %s %s; seen read-only: %s %s\n", got, buf, buf + 4096, r, r + 4096);
    dprintf(1, "mprotect %s\n", mprotect(r, 8192, PROT_READ | PROT_WRITE) ? strerror(errno) : "ok");
    return 0;
}

static int dirty_mib(long n, long mib)
{
    const size_t words = ((size_t)mib << 20) / sizeof(unsigned);
    unsigned *m = malloc(words * sizeof(unsigned)), gen = 1;
    size_t pos = 0;
    /* never written: zeros after any restore */
    unsigned char *zeros = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!m || zeros == MAP_FAILED)
        return 1;
    dprintf(1, "zeros at %p\n", (void *)zeros);
    for (size_t w = 0; w < words; w++)
        m[w] = (unsigned)w * 2654435761u;
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (int i = 1; i <= n; i++) {
        for (int step = 0; step < 10; step++) {
            for (size_t j = 0; j < (100 << 10) / sizeof(unsigned); j++) {
                m[pos] = (unsigned)pos * 2654435761u + gen;
                if (++pos == words) {
                    pos = 0;
                    gen++;
                }
            }
            nanosleep(&ts, NULL);
        }
        dprintf(1, "count %d\n", i);
    }
    for (size_t w = 0; w < words; w++)
        if (m[w] != (unsigned)w * 2654435761u + (w < pos ? gen : gen - 1)) {
            dprintf(1, "memory bad at word %zu\n", w);
            return 1;
        }
    for (int i = 0; i < 1 << 16; i++)
        if (zeros[i]) {
            dprintf(1, "memory bad: byte %d of the zeros is %d\n", i, zeros[i]);
            return 1;
        }
    dprintf(1, "memory ok\n");
    return 0;
}

/* churn: memory changed every way a write log must see (see the usage) */
#define CHURN_PAGES 2048
static unsigned churn_gen[CHURN_PAGES];

static void churn_fill(unsigned *page, unsigned v)
{
    for (int w = 0; w < 1024; w++)
        page[w] = v + w;
}

static int churn_ok(const unsigned *page, unsigned v)
{
    for (int w = 0; w < 1024; w++)
        if (page[w] != (v ? v + w : 0))
            return 0;
    return 1;
}

static int churn(long n)
{
    unsigned *a = mmap(NULL, CHURN_PAGES * 4096L, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t blen = 64 * 4096;
    unsigned *b = mmap(NULL, blen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int p[2];
    if (a == MAP_FAILED || b == MAP_FAILED || pipe(p))
        return 1;
    for (size_t i = 0; i < blen / 4096; i++)
        churn_fill(b + i * 1024, 0xb0000000u + i * 4096);
    unsigned *heap = sbrk(0);
    long heap_pages = 0;
    unsigned seed = 12345, gen = 1;
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (int i = 1; i <= n; i++) {
        for (int step = 0; step < 10; step++) {
            for (int op = 0; op < 40; op++) {
                seed = seed * 1103515245u + 12345u;
                unsigned pg = (seed >> 8) % CHURN_PAGES, *page = a + pg * 1024;
                switch ((seed >> 4) % 6) {
                case 0: case 1:             /* a write */
                    churn_fill(page, gen << 12);
                    churn_gen[pg] = gen++ << 12;
                    break;
                case 2:                     /* dropped: reads as zeros again */
                    madvise(page, 4096, MADV_DONTNEED);
                    churn_gen[pg] = 0;
                    break;
                case 3: {                   /* written by the kernel (read() into it) */
                    static unsigned buf[1024];
                    churn_fill(buf, gen << 12);
                    if (write(p[1], buf, 4096) != 4096 || read(p[0], page, 4096) != 4096)
                        return 1;
                    churn_gen[pg] = gen++ << 12;
                    break;
                }
                case 4: {                   /* moved and grown or shrunk by one page */
                    size_t nlen = (blen / 4096) % 2 ? blen - 4096 : blen + 4096;
                    unsigned *nb = mremap(b, blen, nlen, MREMAP_MAYMOVE);
                    if (nb == MAP_FAILED)
                        return 1;
                    if (nlen > blen)
                        churn_fill(nb + blen / 4, 0xb0000000u + blen);
                    b = nb;
                    blen = nlen;
                    break;
                }
                case 5:                     /* the heap grown by a page */
                    if (heap_pages < 256 && sbrk(4096) != (void *)-1) {
                        churn_fill(heap + heap_pages * 1024, 0xe0000000u + heap_pages * 4096);
                        heap_pages++;
                    }
                    break;
                }
            }
            nanosleep(&ts, NULL);
        }
        dprintf(1, "count %d\n", i);
    }
    for (int pg = 0; pg < CHURN_PAGES; pg++)
        if (!churn_ok(a + pg * 1024, churn_gen[pg])) {
            dprintf(1, "churn bad at page %d\n", pg);
            return 1;
        }
    for (size_t i = 0; i < blen / 4096; i++)
        if (!churn_ok(b + i * 1024, 0xb0000000u + i * 4096)) {
            dprintf(1, "churn bad at the moved page %zu\n", i);
            return 1;
        }
    for (long i = 0; i < heap_pages; i++)
        if (!churn_ok(heap + i * 1024, 0xe0000000u + i * 4096)) {
            dprintf(1, "churn bad at the heap page %ld\n", i);
            return 1;
        }
    dprintf(1, "churn ok\n");
    return 0;
}

static int dirty(long n)
{
    return dirty_mib(n, 64);
}

/* stopped: children held in job-control stops across the checkpoint */
static int stopped_children(long n)
{
    int in[2], ev[2], pm[2];
    if (pipe(in) || pipe(ev) || pipe(pm))
        return 1;
    pid_t kid[4];
    for (int k = 0; k < 4; k++) {
        kid[k] = fork();
        if (kid[k] < 0)
            return 1;
        if (kid[k])
            continue;
        char buf[16] = "";
        if (k == 0) {           /* stopped in nanosleep: goes on to the same end */
            for (int i = 1; i <= 5; i++) {
                dprintf(1, "sleeper %d\n", i);
                tick();
            }
        } else if (k == 1) {    /* stopped in read (ERESTARTSYS) */
            ssize_t got = read(in[0], buf, sizeof buf - 1);
            dprintf(1, "reader got %s\n", got > 0 ? buf : "nothing");
        } else if (k == 2) {    /* stopped in poll with a timeout (restart_syscall) */
            struct pollfd pfd = {ev[0], POLLIN, 0};
            int ready = poll(&pfd, 1, 60000);
            ssize_t got = ready == 1 ? read(ev[0], buf, sizeof buf - 1) : 0;
            dprintf(1, "poller: %d ready, got %s\n", ready, got > 0 ? buf : "nothing");
        } else {                /* stopped in ppoll under a mask of its own (ERESTARTNOHAND) */
            struct pollfd pfd = {pm[0], POLLIN, 0};
            struct timespec ts = {60, 0};
            sigset_t usr1, now;
            sigemptyset(&usr1);
            sigaddset(&usr1, SIGUSR1);
            int ready = ppoll(&pfd, 1, &ts, &usr1);
            ssize_t got = ready == 1 ? read(pm[0], buf, sizeof buf - 1) : 0;
            sigprocmask(SIG_BLOCK, NULL, &now);
            dprintf(1, "ppoller: %d ready, got %s, SIGUSR1 blocked %d\n", ready, got > 0 ? buf : "nothing",
                    sigismember(&now, SIGUSR1));
        }
        _exit(0);
    }
    tick();
    tick();
    kill(kid[0], SIGSTOP);
    kill(kid[1], SIGTSTP);
    kill(kid[2], SIGSTOP);
    kill(kid[3], SIGSTOP);
    for (int i = 1; i <= n; i++) {      /* the stops not waited for yet */
        dprintf(1, "count %d\n", i);
        tick();
    }
    int st[4], code[4];
    for (int k = 0; k < 4; k++)
        st[k] = waitpid(kid[k], &code[k], WUNTRACED) == kid[k] && WIFSTOPPED(code[k]) ? WSTOPSIG(code[k]) : -1;
    dprintf(1, "stopped by %d %d %d %d\n", st[0], st[1], st[2], st[3]);
    for (int k = 0; k < 4; k++)
        kill(kid[k], SIGCONT);
    for (int k = 0; k < 4; k++)
        st[k] = waitpid(kid[k], &code[k], WCONTINUED) == kid[k] && WIFCONTINUED(code[k]);
    dprintf(1, "continued %d %d %d %d\n", st[0], st[1], st[2], st[3]);
    if (write(in[1], "hello", 5) != 5 || write(ev[1], "world", 5) != 5 || write(pm[1], "again", 5) != 5)
        return 1;
    for (int k = 0; k < 4; k++)
        st[k] = waitpid(kid[k], &code[k], 0) == kid[k] && WIFEXITED(code[k]) ? WEXITSTATUS(code[k]) : -1;
    dprintf(1, "exited %d %d %d %d\n", st[0], st[1], st[2], st[3]);
    return 0;
}

/* mlocked: locked ranges kept, their pages resident as mlock made them */
static int mlocked(long n)
{
    char *a = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *b = mmap(NULL, 32 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED || b == MAP_FAILED)
        return 1;
    a[0] = 7;
    if (mlock(a, 64 << 10) || syscall(SYS_mlock2, b, 32 << 10, MLOCK_ONFAULT))
        return 1;
    count_ticks(n);
    char buf[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(buf, sizeof buf, f))
        if (!strncmp(buf, "VmLck", 5))
            fputs(buf, stdout);
    unsigned char va[16], vb[8];
    int ra = 0, rb = 0;
    if (mincore(a, 64 << 10, va) || mincore(b, 32 << 10, vb))
        return 1;
    for (int i = 0; i < 16; i++)
        ra += va[i] & 1;
    for (int i = 0; i < 8; i++)
        rb += vb[i] & 1;
    printf("resident: locked %d of 16, on fault %d of 8; a[0] %d\n", ra, rb, a[0]);
    printf("munlock: %d\n", munlock(a, 64 << 10));
    fflush(stdout);
    return 0;
}

/* spawner: processes born, exec'd and gone while a migration copies memory */
static const char *self_path;

static int kid_fill_check(unsigned seed, size_t mib, int check)
{
    static unsigned *m;
    const size_t words = (mib << 20) / sizeof(unsigned);
    if (!m && !(m = malloc(words * sizeof(unsigned))))
        return 1;
    for (size_t w = 0; w < words; w++) {
        unsigned v = (unsigned)w * 2654435761u ^ seed;
        if (!check)
            m[w] = v;
        else if (m[w] != v)
            return 1;
    }
    return 0;
}

static int kid(long seed)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    if (kid_fill_check((unsigned)seed, 3, 0))
        return 1;
    for (int i = 0; i < 35; i++)
        nanosleep(&ts, NULL);
    return kid_fill_check((unsigned)seed, 3, 1);
}

static int spawner(long n)
{
    int bad = 0;
    long alive = 0;
    for (int i = 1; i <= n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            if (i % 2) {            /* a fresh image */
                char arg[16];
                snprintf(arg, sizeof arg, "%d", i);
                execl(self_path, "t_ckpt", "kid", arg, (char *)NULL);
                _exit(127);
            }
            _exit(kid(i));          /* the parent's image, copied */
        }
        alive++;
        tick();
        int st;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            alive--;
            bad += !WIFEXITED(st) || WEXITSTATUS(st);
        }
        dprintf(1, "count %d\n", i);
    }
    for (int st; alive > 0 && wait(&st) > 0; alive--)
        bad += !WIFEXITED(st) || WEXITSTATUS(st);
    dprintf(1, bad ? "spawner: %d children failed\n" : "spawner ok\n", bad);
    return bad != 0;
}

static int inet(long n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int one = 1;
    int lst = socket(AF_INET, SOCK_STREAM, 0), cli = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(lst, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lst, (struct sockaddr *)&a, sizeof a) || listen(lst, 4) || getsockname(lst, (struct sockaddr *)&a, &al)
        || connect(cli, (struct sockaddr *)&a, sizeof a))
        return 1;
    int srv = accept(lst, NULL, NULL);
    setsockopt(cli, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
    write(cli, "to server", 9);
    write(srv, "to client", 9);
    struct sockaddr_in6 u = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT}, from;
    socklen_t ul = sizeof u, fl = sizeof from;
    int ur = socket(AF_INET6, SOCK_DGRAM, 0), us = socket(AF_INET6, SOCK_DGRAM, 0);
    if (bind(ur, (struct sockaddr *)&u, sizeof u) || getsockname(ur, (struct sockaddr *)&u, &ul))
        return 1;
    sendto(us, "first", 5, 0, (struct sockaddr *)&u, sizeof u);
    sendto(us, "second", 6, 0, (struct sockaddr *)&u, sizeof u);
    struct sockaddr_in6 sent;
    socklen_t sl = sizeof sent;
    getsockname(us, (struct sockaddr *)&sent, &sl);
    int waiting = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(waiting, (struct sockaddr *)&a, sizeof a))
        return 1;
    write(waiting, "not yet accepted", 16);
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    char buf[64];
    int late = accept(lst, NULL, NULL);
    ssize_t r = read(late, buf, sizeof buf);
    dprintf(1, "accepted late, read %.*s\n", (int)r, buf);
    r = read(srv, buf, sizeof buf);
    dprintf(1, "server read %.*s\n", (int)r, buf);
    r = read(cli, buf, sizeof buf);
    dprintf(1, "client read %.*s\n", (int)r, buf);
    for (int i = 0; i < 2; i++) {
        r = recvfrom(ur, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        dprintf(1, "udp %.*s from the sender %d\n", (int)r, buf, from.sin6_port == sent.sin6_port);
    }
    int opt = 0;
    socklen_t ol = sizeof opt;
    getsockopt(cli, IPPROTO_TCP, 1, &opt, &ol);
    struct sockaddr_in p1, p2;
    socklen_t l1 = sizeof p1, l2 = sizeof p2;
    getpeername(cli, (struct sockaddr *)&p1, &l1);
    getsockname(srv, (struct sockaddr *)&p2, &l2);
    dprintf(1, "nodelay %d, names agree %d\n", opt, p1.sin_port == p2.sin_port && p1.sin_port == a.sin_port);
    int again = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(again, (struct sockaddr *)&a, sizeof a))
        dprintf(1, "connect again: %s\n", strerror(errno));
    int srv2 = accept(lst, NULL, NULL);
    write(again, "new", 3);
    r = read(srv2, buf, sizeof buf);
    dprintf(1, "new connection read %.*s\n", (int)r, buf);
    shutdown(cli, SHUT_WR);
    dprintf(1, "server reads %zd after the client's shutdown\n", read(srv, buf, sizeof buf));
    return 0;
}

static int nat(long n, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(0x0a000202)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        perror("connect");
        return 1;
    }
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    char buf[16];
    ssize_t r = read(fd, buf, sizeof buf);
    dprintf(1, "read %zd %s\n", r, r < 0 ? strerror(errno) : "");
    return 0;
}

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

struct msgbuf16 {
    long type;
    char text[16];
};

static void counting(long n)
{
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
}

static int sysv(long n)
{
    static const struct {
        long type;
        const char *text;
    } sent[] = {{2, "two-a"}, {1, "one"}, {2, "two-b"}, {3, ""}};
    int shm = shmget(0x5eed, 6000, IPC_CREAT | IPC_EXCL | 0600);
    int sem = semget(0x5eee, 3, IPC_CREAT | IPC_EXCL | 0600);
    int msg = msgget(0x5eef, IPC_CREAT | IPC_EXCL | 0640);
    if (shm < 0 || sem < 0 || msg < 0) {
        perror("ipc get");
        return 1;
    }
    char *p = shmat(shm, NULL, 0);
    if (p == (void *)-1)
        return 1;
    strcpy(p, "before");
    union semun arg = {.val = 7};
    semctl(sem, 1, SETVAL, arg);
    struct msgbuf16 m;
    for (size_t i = 0; i < sizeof sent / sizeof sent[0]; i++) {
        m.type = sent[i].type;
        strcpy(m.text, sent[i].text);
        msgsnd(msg, &m, strlen(sent[i].text), 0);
    }
    struct msqid_ds mq;
    msgctl(msg, IPC_STAT, &mq);
    mq.msg_qbytes = 1000;
    msgctl(msg, IPC_SET, &mq);
    pid_t c = fork();
    if (c == 0) {
        struct sembuf up = {2, 5, SEM_UNDO}, down = {0, -1, 0};
        semop(sem, &up, 1);
        if (semop(sem, &down, 1))       /* blocks until the parent counted */
            perror("semop");
        dprintf(1, "child sees: %s %s\n", p, p + 4096);
        strcpy(p + 100, "child was here");
        _exit(0);
    }
    while (semctl(sem, 2, GETVAL) != 5)
        tick();
    shmctl(shm, IPC_RMID, NULL);        /* pending: both still attached */
    counting(n);
    dprintf(1, "same ids: %d %d, removed key: %s\n", semget(0x5eee, 0, 0) == sem, msgget(0x5eef, 0) == msg,
            shmget(0x5eed, 0, 0) < 0 ? strerror(errno) : "found");
    struct shmid_ds sd;
    shmctl(shm, IPC_STAT, &sd);
    dprintf(1, "shm size %zu nattch %lu mode %o cpid-ok %d\n", (size_t)sd.shm_segsz, (unsigned long)sd.shm_nattch,
            (unsigned)sd.shm_perm.mode, sd.shm_cpid == getpid());
    msgctl(msg, IPC_STAT, &mq);
    dprintf(1, "msg qnum %lu cbytes %lu qbytes %lu mode %o lspid-ok %d\n", (unsigned long)mq.msg_qnum,
            (unsigned long)mq.__msg_cbytes, (unsigned long)mq.msg_qbytes, (unsigned)mq.msg_perm.mode,
            mq.msg_lspid == getpid());
    static const long types[] = {2, -2, 0, 3, 0};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        memset(&m, 0, sizeof m);
        ssize_t got = msgrcv(msg, &m, sizeof m.text, types[i], IPC_NOWAIT);
        if (got < 0)
            dprintf(1, "msgrcv %ld: %s\n", types[i], strerror(errno));
        else
            dprintf(1, "msgrcv %ld: type %ld \"%s\"\n", types[i], m.type, m.text);
    }
    strcpy(p + 4096, "after");
    dprintf(1, "sem 2 before the child exits: %d\n", semctl(sem, 2, GETVAL));
    struct sembuf up0 = {0, 1, 0};
    semop(sem, &up0, 1);
    int st;
    waitpid(c, &st, 0);
    unsigned short v[3];
    arg.array = v;
    semctl(sem, 0, GETALL, arg);
    dprintf(1, "sems %d %d %d\n", v[0], v[1], v[2]);
    dprintf(1, "shm: %s %s %s\n", p, p + 4096, p + 100);
    shmdt(p);
    dprintf(1, "shm after the last shmdt: %s\n", shmctl(shm, IPC_STAT, &sd) ? strerror(errno) : "still there");
    semctl(sem, 0, IPC_RMID);
    msgctl(msg, IPC_RMID, NULL);
    return 0;
}

static int mqueued(long n)
{
    static const struct {
        const char *text;
        unsigned prio;
    } sent[] = {{"low", 1}, {"high", 9}, {"mid", 5}, {"high2", 9}};
    struct mq_attr a = {.mq_maxmsg = 8, .mq_msgsize = 64};
    mq_unlink("/ckq");
    mq_unlink("/gone");
    mq_unlink("/ckn");
    mqd_t q = mq_open("/ckq", O_CREAT | O_RDWR, 0640, &a), w = mq_open("/ckq", O_WRONLY | O_NONBLOCK);
    mqd_t g = mq_open("/gone", O_CREAT | O_RDWR, 0600, &a), nq = mq_open("/ckn", O_CREAT | O_RDWR, 0600, &a);
    if (q < 0 || w < 0 || g < 0 || nq < 0) {
        perror("mq_open");
        return 1;
    }
    for (size_t i = 0; i < sizeof sent / sizeof sent[0]; i++)
        mq_send(w, sent[i].text, strlen(sent[i].text), sent[i].prio);
    mq_send(g, "orphan", 6, 3);
    mq_unlink("/gone");
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1, .sigev_value.sival_int = 77};
    if (mq_notify(nq, &ev))
        perror("mq_notify");
    counting(n);
    mq_getattr(q, &a);
    dprintf(1, "attr flags %ld maxmsg %ld msgsize %ld curmsgs %ld\n", a.mq_flags, a.mq_maxmsg, a.mq_msgsize,
            a.mq_curmsgs);
    mq_getattr(w, &a);
    dprintf(1, "writer flags %s\n", a.mq_flags & O_NONBLOCK ? "O_NONBLOCK" : "0");
    char buf[64];
    unsigned prio;
    for (int i = 0; i < 4; i++) {
        ssize_t got = mq_receive(q, buf, sizeof buf, &prio);
        dprintf(1, "got %.*s prio %u\n", (int)got, buf, prio);
    }
    ssize_t got = mq_receive(g, buf, sizeof buf, &prio);
    dprintf(1, "unlinked queue: %.*s prio %u\n", (int)got, buf, prio);
    dprintf(1, "open /gone: %s\n", mq_open("/gone", O_RDONLY) < 0 ? strerror(errno) : "found");
    mq_send(nq, "wake", 4, 0);
    siginfo_t si;
    int sig = sigwaitinfo(&usr1, &si);
    dprintf(1, "notified: signal %d code %d value %d pid-ok %d\n", sig, si.si_code, si.si_value.sival_int,
            si.si_pid == getpid());
    mq_unlink("/ckq");
    mq_unlink("/ckn");
    return 0;
}

static void touch(const char *dir, const char *name, char *path)
{
    sprintf(path, "%s/%s", dir, name);
    close(open(path, O_WRONLY | O_CREAT, 0644));
}

static void read_events(int in)
{
    char buf[4096] __attribute__((aligned(8)));
    ssize_t r = read(in, buf, sizeof buf);
    if (r < 0)
        dprintf(1, "read %s\n", errno == EAGAIN ? "EAGAIN" : strerror(errno));
    for (char *p = buf; r > 0 && p < buf + r; p += sizeof(struct inotify_event) + ((struct inotify_event *)p)->len) {
        struct inotify_event *ev = (struct inotify_event *)p;
        dprintf(1, "event wd %d mask %#x cookie %u name '%s'\n", ev->wd, ev->mask, ev->cookie, ev->len ? ev->name : "");
    }
}

static int watched(const char *dir, int n)
{
    char a[256], b[256], c[256];
    mkdir(dir, 0755);
    touch(dir, "a", a);
    int in = inotify_init1(IN_NONBLOCK);
    int wdir = inotify_add_watch(in, dir, IN_CREATE | IN_DELETE | IN_EXCL_UNLINK);
    int wa = inotify_add_watch(in, a, IN_MODIFY | IN_ONESHOT);
    int wa2 = inotify_add_watch(in, a, IN_ATTRIB | IN_MASK_ADD);
    touch(dir, "b", b);
    int wb = inotify_add_watch(in, b, IN_OPEN);
    inotify_rm_watch(in, wb);
    dprintf(1, "wds %d %d %d %d\n", wdir, wa, wa2, wb);
    counting(n);
    int fd = open(a, O_WRONLY | O_APPEND);
    write(fd, "x", 1);
    close(fd);
    chmod(a, 0600);
    touch(dir, "c", c);
    unlink(c);
    int again = inotify_add_watch(in, dir, IN_ATTRIB | IN_MASK_ADD);
    int next = inotify_add_watch(in, b, IN_OPEN);
    dprintf(1, "then wds %d %d\n", again, next);
    read_events(in);
    read_events(in);
    close(in);
    unlink(a);
    unlink(b);
    rmdir(dir);
    return 0;
}

static int unwatched(long n)
{
    int in = inotify_init1(0), fd = open("/tmp/unwatched", O_RDWR | O_CREAT, 0644);
    if (fd < 0 || in < 0 || inotify_add_watch(in, "/tmp/unwatched", IN_MODIFY) < 0)
        return 1;
    unlink("/tmp/unwatched");
    counting(n);
    return 0;
}

static int landlocked(long n)
{
    uint64_t handled = 1 << 2;      /* LANDLOCK_ACCESS_FS_READ_FILE */
    int rs = syscall(444, &handled, sizeof handled, 0);     /* landlock_create_ruleset */
    if (rs < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(446, rs, 0) < 0)
        return 1;
    close(rs);
    counting(n);
    return 0;
}

static int accounting(long n)
{
    close(open("/tmp/pacct", O_CREAT | O_WRONLY, 0644));
    if (syscall(SYS_acct, "/tmp/pacct") < 0)
        return 1;
    counting(n);
    return 0;
}

static int pfilter(long n)
{
    struct sock_filter all[] = { BPF_STMT(BPF_RET | BPF_K, 0xffff) };
    struct sock_fprog prog = { 1, all };
    int fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
        return 1;
    counting(n);
    return 0;
}

static void shown(const char *what, const char *s, size_t n)
{
    char out[8192];
    size_t j = 0;
    for (size_t i = 0; i < n && j < sizeof out - 2; i++) {
        if (s[i] == '\r' || s[i] == '\n') {
            out[j++] = '\\';
            out[j++] = s[i] == '\r' ? 'r' : 'n';
        } else {
            out[j++] = s[i];
        }
    }
    dprintf(1, "%s: %.*s\n", what, (int)j, out);
}

/* what the master reads until WANT came (NULL: until the slave is closed) */
static void until(int m, const char *want)
{
    char buf[4096];
    size_t n = 0;
    buf[0] = 0;
    while (n < sizeof buf - 1 && !(want && strstr(buf, want))) {
        ssize_t r = read(m, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            break;
        n += r;
        buf[n] = 0;
    }
    shown("master", buf, n);
}

static void pty_child(int m, const char *name)
{
    char line[256];
    struct termios t;
    struct winsize ws;
    ssize_t r;
    setsid();
    int s = open(name, O_RDWR);
    if (s < 0)
        _exit(1);
    close(m);
    dup2(s, 0);
    dup2(s, 1);
    close(s);
    while ((r = read(0, line, sizeof line)) > 0 && strncmp(line, "quit", 4))
        dprintf(1, "got %.*s", (int)r, line);
    tcgetattr(0, &t);
    ioctl(0, TIOCGWINSZ, &ws);
    char *tn = ttyname(0);
    dprintf(1, "session %d, foreground %d, /dev/tty %d, ttyname %d, winsize %dx%d, echo %d, icanon %d\n",
            tcgetsid(0) == getpid(), tcgetpgrp(0) == getpgrp(), open("/dev/tty", O_RDWR) >= 0,
            tn && !strcmp(tn, name), ws.ws_row, ws.ws_col, !!(t.c_lflag & ECHO), !!(t.c_lflag & ICANON));
    _exit(0);
}

static int pty_session(long n)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY), st;
    struct winsize ws = {.ws_row = 30, .ws_col = 100};
    struct termios t;
    char name[64];
    if (m < 0 || grantpt(m) || unlockpt(m) || ptsname_r(m, name, sizeof name) || ioctl(m, TIOCSWINSZ, &ws))
        return 1;
    pid_t c = fork();
    if (c == 0)
        pty_child(m, name);
    write(m, "one\n", 4);
    until(m, "got one\r\n");
    tcgetattr(m, &t);
    t.c_lflag &= ~ECHO;
    tcsetattr(m, TCSANOW, &t);
    write(m, "two\n", 4);
    write(m, "partial", 7);
    counting(n);
    write(m, " line\n", 6);
    until(m, "got partial line\r\n");
    write(m, "quit\n", 5);
    until(m, NULL);
    waitpid(c, &st, 0);
    dprintf(1, "child status %d\n", WEXITSTATUS(st));
    return 0;
}

static int hungup(long n)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m) || open(ptsname(m), O_RDWR | O_NOCTTY) < 0)
        return 1;
    close(m);
    counting(n);
    return 0;
}

static int vforked(long n)
{
    for (int i = 1; i <= 3; i++) {
        dprintf(1, "count %d\n", i);
        if (i < 3)
            tick();
    }
    pid_t c = vfork();
    if (c == 0) {
        /* the parent waits, sharing this memory, until the exec: half a
           second in which a checkpoint asked for has to wait */
        struct timespec ts = {0, 500 * 1000 * 1000};
        syscall(SYS_nanosleep, &ts, NULL);
        execl("/bin/sleep", "sleep", "1", (char *)NULL);
        _exit(127);
    }
    for (int i = 4; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    int st = 0;
    waitpid(c, &st, 0);
    dprintf(1, "child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

static int shanon(long n)
{
    char *a = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int z = open("/dev/zero", O_RDWR);
    char *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, z, 0);
    close(z);
    if (a == MAP_FAILED || b == MAP_FAILED)
        return 1;
    strcpy(a, "before");
    strcpy(b, "zero before");
    pid_t c = fork();
    if (c == 0) {
        for (int i = 1; i <= n; i++) {
            dprintf(1, "child %d\n", i);
            tick();
        }
        strcpy(a + 4096, "from the child");
        strcpy(b + 100, "child wrote");
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    dprintf(1, "parent sees: %s / %s / %s / %s\n", a, a + 4096, b, b + 100);
    return 0;
}

/* "Z ppid-ok 1 pgrp-ok 1" from /proc/PID/stat, or "no /proc" */
static void proc_zombie(pid_t pid, pid_t pgrp)
{
    char path[64], buf[512], state = '?';
    int ppid = 0, pg = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    ssize_t r = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    char *close_paren = r > 0 ? (buf[r] = 0, strrchr(buf, ')')) : NULL;
    if (!close_paren || sscanf(close_paren + 1, " %c %d %d", &state, &ppid, &pg) != 3) {
        dprintf(1, "no /proc\n");
        return;
    }
    dprintf(1, "proc: %c ppid-ok %d pgrp-ok %d\n", state, ppid == getpid(), pg == pgrp);
}

static int zombies(long n)
{
    sigset_t chld;
    siginfo_t si;
    struct rusage before, ru;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    pid_t a = fork();
    if (a == 0) {
        setpgid(0, 0);
        _exit(7);
    }
    if (a < 0 || waitid(P_PID, a, &si, WEXITED | WNOWAIT) < 0)
        return 1;
    pid_t b = fork();
    if (b == 0) {
        volatile unsigned long x = 0;
        for (unsigned long i = 0; i < 20000000; i++)
            x += i;
        raise(SIGTERM);
        _exit(1);
    }
    /* the raw waitid takes a rusage too: the zombie's, as wait4 reaps it */
    if (b < 0 || syscall(SYS_waitid, P_PID, b, &si, WEXITED | WNOWAIT, &before) < 0)
        return 1;
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    memset(&si, 0, sizeof si);
    int sig = sigwaitinfo(&chld, &si);
    dprintf(1, "signal %d code %d status %d pid-ok %d\n", sig, si.si_code, si.si_status, si.si_pid == a);
    sigset_t pending;
    sigpending(&pending);
    dprintf(1, "then pending %d, kill 0: %d\n", sigismember(&pending, SIGCHLD), kill(a, 0));
    proc_zombie(a, a);
    proc_zombie(b, getpgrp());
    memset(&si, 0, sizeof si);
    waitid(P_PID, b, &si, WEXITED | WNOWAIT);
    dprintf(1, "waitid: code %d status %d pid-ok %d\n", si.si_code, si.si_status, si.si_pid == b);
    int st;
    pid_t w = wait4(-1, &st, 0, &ru);
    dprintf(1, "reaped first-ok %d exited %d status %d\n", w == a, WIFEXITED(st), WEXITSTATUS(st));
    w = wait4(-1, &st, 0, &ru);
    long t0 = before.ru_utime.tv_sec * 1000000 + before.ru_utime.tv_usec + before.ru_stime.tv_sec * 1000000
        + before.ru_stime.tv_usec;
    long t1 = ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    dprintf(1, "reaped second-ok %d signaled %d signal %d, rusage same %d nonzero %d\n", w == b, WIFSIGNALED(st),
            WTERMSIG(st), t0 == t1, t1 > 0);
    w = wait4(-1, &st, WNOHANG, NULL);
    int e = errno;
    dprintf(1, "then %d %s, kill 0: %d\n", (int)w, strerror(e), kill(a, 0));
    return 0;
}

/* locks PATH N: flock, a record lock and an OFD lock held over the restore */
static int locked(const char *path, int n)
{
    int a = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644), b = open(path, O_RDWR), c = open(path, O_RDWR);
    struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    struct flock r = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 10};
    if (a < 0 || ftruncate(a, 100) || flock(a, LOCK_EX) || fcntl(b, F_SETLK, &w) || fcntl(c, F_OFD_SETLK, &r))
        return 1;
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    int d = open(path, O_RDWR);
    dprintf(1, "flock by another description: %s\n", flock(d, LOCK_EX | LOCK_NB) ? strerror(errno) : "taken");
    struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 25, .l_len = 1};
    fcntl(d, F_OFD_GETLK, &q);
    dprintf(1, "OFD lock seen: type %d pid %d at %ld+%ld\n", q.l_type, q.l_pid, (long)q.l_start, (long)q.l_len);
    pid_t ch = fork();
    if (ch == 0) {
        struct flock g = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1};
        fcntl(d, F_GETLK, &g);
        dprintf(1, "the child sees the record lock: type %d, the parent's %d, at %ld+%ld; F_SETLK %s\n", g.l_type,
                g.l_pid == getppid(), (long)g.l_start, (long)g.l_len,
                fcntl(d, F_SETLK, &(struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1})
                    ? strerror(errno) : "taken");
        _exit(0);
    }
    waitpid(ch, NULL, 0);
    flock(a, LOCK_UN);
    dprintf(1, "after LOCK_UN, flock by another description: %s\n", flock(d, LOCK_EX | LOCK_NB) ? strerror(errno) : "taken");
    return 0;
}

/* nameless DIR N: a file unlinked while open (bytes, a hole, a tail) and
   an O_TMPFILE file, held over the restore; then read, and one named */
static int nameless(const char *dir, int n)
{
    char path[256], buf[64];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/gone", dir);
    int a = open(path, O_CREAT | O_RDWR | O_TRUNC, 0640);
    int b = open(dir, O_TMPFILE | O_RDWR, 0600);
    if (a < 0 || b < 0 || write(a, "unlinked bytes", 14) != 14 || pwrite(a, "tail", 4, 1 << 20) != 4
        || unlink(path) || write(b, "tmpfile bytes", 13) != 13)
        return 1;
    lseek(a, 9, SEEK_SET);
    count_ticks(n);
    struct stat st;
    fstat(a, &st);
    ssize_t r = read(a, buf, 5);
    dprintf(1, "unlinked: size %ld, links %ld, read on from 9: %.*s", (long)st.st_size, (long)st.st_nlink, (int)r, buf);
    r = pread(a, buf, 4, 1 << 20);
    dprintf(1, ", tail %.*s", (int)r, buf);
    r = pread(a, buf, 4, 4096);
    dprintf(1, ", the hole reads %d zeros\n", r == 4 && !buf[0] && !buf[3]);
    fstat(b, &st);
    r = pread(b, buf, sizeof buf, 0);
    dprintf(1, "tmpfile: size %ld, mode %o, content %.*s, offset %ld\n", (long)st.st_size, st.st_mode & 07777,
            (int)r, buf, (long)lseek(b, 0, SEEK_CUR));
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", b);
    snprintf(path, sizeof path, "%s/named", dir);
    unlink(path);
    int l = linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
    int c = open(path, O_RDONLY);
    r = c >= 0 ? read(c, buf, sizeof buf) : -1;
    dprintf(1, "named by linkat %d, read through its name: %.*s\n", l == 0, (int)(r > 0 ? r : 0), buf);
    unlink(path);
    return 0;
}

/* sharedgone DIR N: a file in DIR unlinked while open, sized and mapped
   MAP_SHARED (as Python's multiprocessing heap makes its arenas), shared
   with a child by fork; after counting to N, the child writes through the
   mapping, the parent reads it there and through the fd, and writes
   through the fd what the mapping then shows. */
static int sharedgone(const char *dir, int n)
{
    char path[256];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/arena", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0 || unlink(path) || ftruncate(fd, 2 * 4096))
        return 1;
    char *m = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return 1;
    strcpy(m, "before");
    strcpy(m + 4096, "second page");
    int go[2], done[2];
    if (pipe(go) || pipe(done))
        return 1;
    pid_t c = fork();
    if (c == 0) {
        char b;
        read(go[0], &b, 1);
        strcpy(m + 100, "from the child");
        write(done[1], "x", 1);
        _exit(0);
    }
    count_ticks(n);
    char buf[32] = "";
    write(go[1], "x", 1);
    read(done[0], buf, 1);
    pread(fd, buf, 14, 100);
    dprintf(1, "map: %s, %s, %s; fd reads %.14s\n", m, m + 100, m + 4096, buf);
    pwrite(fd, "by pwrite", 10, 200);
    struct stat st;
    fstat(fd, &st);
    dprintf(1, "map shows %s; size %ld, links %ld\n", m + 200, (long)st.st_size, (long)st.st_nlink);
    waitpid(c, NULL, 0);
    return 0;
}

/* semaphore N: a named semaphore (sem_open, then sem_unlink: a file of
   /dev/shm with neither a name nor an fd left, only the mappings) a
   child waits on; after counting to N the parent posts it. */
static int semaphore(long n)
{
    char name[64];
    snprintf(name, sizeof name, "/t_ckpt.%d", getpid());
    sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    if (s == SEM_FAILED || sem_unlink(name))
        return 1;
    pid_t c = fork();
    if (c == 0) {
        sem_wait(s);
        dprintf(1, "child woke\n");
        _exit(7);
    }
    count_ticks(n);
    int v = -1, st = 0;
    sem_getvalue(s, &v);
    dprintf(1, "value before the post %d\n", v);
    sem_post(s);
    waitpid(c, &st, 0);
    dprintf(1, "child status %d\n", WEXITSTATUS(st));
    return 0;
}

/* relinked DIR N: DIR/first opened and mapped, linked as DIR/second, then
   unlinked, and a new DIR/first made: the descriptor and the mapping
   must keep the first inode over the restore, not find the new file */
static int relinked(const char *dir, int n)
{
    char first[256], second[256], buf[64], proc[64], target[512];
    mkdir(dir, 0755);
    snprintf(first, sizeof first, "%s/first", dir);
    snprintf(second, sizeof second, "%s/second", dir);
    unlink(second);
    int a = open(first, O_CREAT | O_RDWR | O_TRUNC, 0640);
    if (a < 0 || write(a, "linked bytes", 12) != 12 || link(first, second) || unlink(first))
        return 1;
    char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, a, 0);
    int c = open(first, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (m == MAP_FAILED || c < 0 || write(c, "new file", 8) != 8)
        return 1;
    close(c);
    lseek(a, 7, SEEK_SET);
    count_ticks(n);
    struct stat st;
    fstat(a, &st);
    ssize_t r = read(a, buf, 5);
    dprintf(1, "relinked: links %ld, read on from 7: %.*s", (long)st.st_nlink, (int)r, buf);
    if (write(a, ", more", 6) != 6)
        return 1;
    c = open(second, O_RDONLY);
    r = c >= 0 ? read(c, buf, sizeof buf) : -1;
    dprintf(1, "; through %s: %.*s", "second", (int)(r > 0 ? r : 0), buf);
    close(c);
    c = open(first, O_RDONLY);
    r = c >= 0 ? read(c, buf, sizeof buf) : -1;
    dprintf(1, "; through first: %.*s; mapped: %.18s", (int)(r > 0 ? r : 0), buf, m);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", a);
    r = readlink(proc, target, sizeof target - 1);
    target[r > 0 ? r : 0] = 0;
    char *base = strrchr(target, '/');
    dprintf(1, "; fd shows %s\n", base ? base + 1 : target);
    unlink(first);
    unlink(second);
    return 0;
}

/* the name /proc/self/maps gives the mapping at addr (after its last '/') */
static void maps_name(const void *addr, char *out, size_t size)
{
    char line[512];
    unsigned long want = (unsigned long)addr, start;
    FILE *f = fopen("/proc/self/maps", "r");
    out[0] = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-", &start) == 1 && start == want) {
            char *slash = strrchr(line, '/');
            snprintf(out, size, "%s", slash ? slash + 1 : "?");
            out[strcspn(out, "\n")] = 0;
        }
    }
    if (f)
        fclose(f);
}

/* deletedmap DIR N: DIR/gone mapped privately twice (one mapping written
   copy-on-write) and unlinked; DIR/held mapped, unlinked, its fd kept */
static int deletedmap(const char *dir, int n)
{
    char gone[256], held[256], a_name[256], b_name[256], c_name[256], buf[32];
    mkdir(dir, 0755);
    snprintf(gone, sizeof gone, "%s/gone", dir);
    snprintf(held, sizeof held, "%s/held", dir);
    int g = open(gone, O_CREAT | O_RDWR | O_TRUNC, 0640), h = open(held, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (g < 0 || h < 0 || write(g, "mapped then deleted", 19) != 19 || write(h, "held by its fd", 14) != 14)
        return 1;
    char *a = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, g, 0);
    char *b = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, g, 0);
    char *c = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, h, 0);
    if (a == MAP_FAILED || b == MAP_FAILED || c == MAP_FAILED)
        return 1;
    memcpy(b, "written", 7);
    close(g);
    if (unlink(gone) || unlink(held))
        return 1;
    count_ticks(n);
    maps_name(a, a_name, sizeof a_name);
    maps_name(b, b_name, sizeof b_name);
    maps_name(c, c_name, sizeof c_name);
    dprintf(1, "deleted: %.19s [%s]; written: %.19s [%s]; held: %.14s [%s]", a, a_name, b, b_name, c, c_name);
    ssize_t r = pread(h, buf, sizeof buf, 0);
    dprintf(1, "; its fd reads %.*s\n", (int)(r > 0 ? r : 0), buf);
    return 0;
}

/* deletedexe DIR N [again]: a program running from a file it unlinked */
static int deletedexe(const char *dir, int n, int again)
{
    char prog[256], target[512], buf[65536];
    snprintf(prog, sizeof prog, "%s/prog", dir);
    if (!again) {
        mkdir(dir, 0755);
        int in = open("/proc/self/exe", O_RDONLY), out = open(prog, O_CREAT | O_WRONLY | O_TRUNC, 0755);
        ssize_t r;
        if (in < 0 || out < 0)
            return 1;
        while ((r = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, r) != r)
                return 1;
        close(in);
        close(out);
        snprintf(buf, sizeof buf, "%d", n);
        execl(prog, prog, "deletedexe", dir, buf, "again", (char *)NULL);
        return 1;
    }
    int fresh;
    if (unlink(prog) || (fresh = open(prog, O_CREAT | O_WRONLY | O_EXCL, 0644)) < 0
        || write(fresh, "not the program", 15) != 15)
        return 1;
    close(fresh);
    count_ticks(n);
    ssize_t r = readlink("/proc/self/exe", target, sizeof target - 1);
    target[r > 0 ? r : 0] = 0;
    char *base = strrchr(target, '/');
    int self = open("/proc/self/exe", O_RDONLY);
    r = self >= 0 ? read(self, buf, 4) : -1;
    dprintf(1, "running a deleted program: exe %s, opens as %s\n", base ? base + 1 : target,
            r == 4 && !memcmp(buf, "\177ELF", 4) ? "itself" : r >= 0 ? "another file" : strerror(errno));
    unlink(prog);
    return 0;
}

/* dir PATH N: a directory (made, with 20 files) open and listed in part */
static int listed(const char *path, int n)
{
    char buf[4096], seen[64][16];
    int nseen = 0, total = 0;
    mkdir(path, 0755);
    int d = open(path, O_RDONLY | O_DIRECTORY);
    if (d < 0)
        return 1;
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "e%02d", i);
        close(openat(d, name, O_CREAT | O_WRONLY, 0644));
    }
    for (int i = 1; i <= n; i++) {
        if (i == 3 || i == n) {     /* a few entries before the checkpoint, the rest after */
            long k;
            while ((k = syscall(SYS_getdents64, d, buf, i == 3 ? 120 : sizeof buf)) > 0) {
                for (long off = 0; off < k;) {
                    struct { unsigned long long ino; long long off; unsigned short reclen; unsigned char type; char name[]; }
                        *e = (void *)(buf + off);
                    int dup = 0;
                    for (int j = 0; j < nseen; j++)
                        dup |= !strcmp(seen[j], e->name);
                    if (!dup && nseen < 64)
                        snprintf(seen[nseen++], 16, "%s", e->name);
                    total++;
                    off += e->reclen;
                }
                if (i == 3)
                    break;
            }
        }
        dprintf(1, "count %d\n", i);
        tick();
    }
    int f = openat(d, "e05", O_RDONLY);
    int ch = fchdir(d) == 0 && access("e07", F_OK) == 0;
    dprintf(1, "listed %d entries, %d names; openat through it %d; fchdir to it %d\n", total, nseen, f >= 0, ch);
    return 0;
}

static int fifo(const char *path, int n)
{
    char page[4096], buf[4096];
    struct stat st, fst;
    unlink(path);
    if (mkfifo(path, 0640) < 0)
        return 1;
    int r = open(path, O_RDONLY | O_NONBLOCK), w = open(path, O_WRONLY);
    for (size_t i = 0; i < sizeof page; i++)
        page[i] = 'a' + i % 26;
    if (r < 0 || w < 0 || fcntl(w, F_SETPIPE_SZ, 4096) != 4096 || write(w, page, sizeof page) != sizeof page)
        return 1;
    pid_t c = fork();
    if (c == 0) {
        close(r);
        close(w);
        int cw = open(path, O_WRONLY);
        _exit(cw < 0 || write(cw, "from the blocked writer", 23) != 23);
    }
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    stat(path, &st);
    fstat(r, &fst);
    dprintf(1, "fifo %d same inode %d, nonblock %d, size %d\n", S_ISFIFO(fst.st_mode), st.st_ino == fst.st_ino,
            !!(fcntl(r, F_GETFL) & O_NONBLOCK), fcntl(r, F_GETPIPE_SZ));
    ssize_t got = read(r, buf, sizeof buf);
    dprintf(1, "read %zd, the page %d\n", got, got == sizeof page && !memcmp(buf, page, sizeof page));
    int status;
    waitpid(c, &status, 0);
    got = read(r, buf, sizeof buf);
    dprintf(1, "child status %d, then %.*s\n", WEXITSTATUS(status), (int)(got > 0 ? got : 0), buf);
    got = read(r, buf, sizeof buf);
    dprintf(1, "empty: %zd %s\n", got, got < 0 ? strerror(errno) : "");
    close(w);
    dprintf(1, "writers gone: %zd\n", read(r, buf, sizeof buf));
    int w2 = open(path, O_WRONLY | O_NONBLOCK);
    dprintf(1, "a writer while read: %s\n", w2 >= 0 ? "ok" : strerror(errno));
    close(w2);
    close(r);
    w2 = open(path, O_WRONLY | O_NONBLOCK);
    dprintf(1, "a writer once no reader: %s\n", w2 >= 0 ? "ok" : strerror(errno));
    unlink(path);
    return 0;
}

static pthread_barrier_t sched_bar;

static void sched_report(const char *who)
{
    int pol = sched_getscheduler(0);
    dprintf(1, "%s: nice %d policy %d reset %d slack %d\n", who, getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)),
            pol & ~SCHED_RESET_ON_FORK, !!(pol & SCHED_RESET_ON_FORK), prctl(PR_GET_TIMERSLACK));
}

static void *sched_thread(void *arg)
{
    struct sched_param sp = {0};
    (void)arg;
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 15) || sched_setscheduler(0, SCHED_IDLE, &sp)
        || prctl(PR_SET_TIMERSLACK, 7777))
        dprintf(1, "thread setup failed: %s\n", strerror(errno));
    pthread_barrier_wait(&sched_bar);
    pthread_barrier_wait(&sched_bar);
    sched_report("thread");
    return NULL;
}

static int scheduled(long n)
{
    struct sched_param sp = {0};
    pthread_t th;
    if (setpriority(PRIO_PROCESS, 0, 10) || sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &sp)
        || prctl(PR_SET_TIMERSLACK, 123456))
        return 1;
    pthread_barrier_init(&sched_bar, NULL, 2);
    if (pthread_create(&th, NULL, sched_thread, NULL))
        return 1;
    pthread_barrier_wait(&sched_bar);
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    sched_report("main");
    pthread_barrier_wait(&sched_bar);
    pthread_join(th, NULL);
    pid_t c = fork();
    if (c == 0) {
        sched_report("child");
        _exit(0);
    }
    waitpid(c, NULL, 0);
    return 0;
}

static long keyctl(int op, long a, long b, long c, long d)
{
    return syscall(SYS_keyctl, op, a, b, c, d);
}

static long add_key(const char *type, const char *desc, const char *data, long ring)
{
    return syscall(SYS_add_key, type, desc, data, data ? strlen(data) : 0, ring);
}

static void key_report(const char *what, long serial, long want)
{
    char buf[256];
    long n = keyctl(KEYCTL_DESCRIBE, serial, (long)buf, sizeof buf, 0);
    dprintf(1, "%s: same %d describe %.*s", what, serial == want, n > 0 ? (int)n - 1 : 0, buf);
    n = keyctl(KEYCTL_READ, serial, (long)buf, sizeof buf, 0);
    if (n < 0)
        dprintf(1, " read %s\n", strerror(errno));
    else
        dprintf(1, " read %ld\n", n);
}

static int keyed(long n)
{
    long ses = keyctl(KEYCTL_JOIN_SESSION_KEYRING, (long)"ckses", 0, 0, 0);
    long user = add_key("user", "ckuser", "the payload", KEY_SPEC_SESSION_KEYRING);
    long ring = add_key("keyring", "ckring", NULL, KEY_SPEC_SESSION_KEYRING);
    long logon = add_key("logon", "ck:logon", "secret", ring);
    long pk = add_key("user", "ckproc", "in the process keyring", KEY_SPEC_PROCESS_KEYRING);
    long tk = keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 1, 0, 0);
    if (ses < 0 || user < 0 || ring < 0 || logon < 0 || pk < 0 || tk < 0
        || keyctl(KEYCTL_SETPERM, user, 0x3f3f0000, 0, 0) || keyctl(KEYCTL_SET_TIMEOUT, user, 3600, 0, 0)) {
        dprintf(1, "keys: %s\n", strerror(errno));
        return 1;
    }
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    key_report("session", keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0, 0, 0), ses);
    key_report("user", keyctl(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, (long)"user", (long)"ckuser", 0), user);
    key_report("ring", keyctl(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, (long)"keyring", (long)"ckring", 0), ring);
    key_report("logon", keyctl(KEYCTL_SEARCH, ring, (long)"logon", (long)"ck:logon", 0), logon);
    key_report("process", keyctl(KEYCTL_SEARCH, KEY_SPEC_PROCESS_KEYRING, (long)"user", (long)"ckproc", 0), pk);
    key_report("thread", keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0, 0, 0), tk);
    long again = keyctl(KEYCTL_JOIN_SESSION_KEYRING, (long)"ckses", 0, 0, 0);
    dprintf(1, "join again (not searchable by name: a new one): %d\n", again > 0 && again != ses);
    return 0;
}

static void echo_request(int fd, const void *to, socklen_t len, int type, int seq)
{
    unsigned char m[14] = {(unsigned char)type, 0, 0, 0, 0, 0, 0, (unsigned char)seq, 'c', 'k', 'p', 'i', 'n', 'g'};
    if (sendto(fd, m, sizeof m, 0, to, len) != sizeof m)
        dprintf(1, "echo request: %s\n", strerror(errno));
}

static int netsocks(long n)
{
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_port = htons(4321), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR};
    int p4 = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), p6 = socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
    int raw = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    uint32_t filter = ~(1u << 0), one = 1;     /* echo replies only */
    struct {
        struct nlmsghdr h;
        struct ifinfomsg i;
    } req = {.h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
                   .nlmsg_seq = 77}, .i = {.ifi_family = AF_UNSPEC}};
    if (p4 < 0 || p6 < 0 || raw < 0 || nl < 0 || bind(p4, (struct sockaddr *)&lo, sizeof lo)
        || setsockopt(raw, SOL_RAW, 1, &filter, sizeof filter) || bind(nl, (struct sockaddr *)&sa, sizeof sa)
        || setsockopt(nl, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) || send(nl, &req, sizeof req, 0) < 0) {
        dprintf(1, "netsock: %s\n", strerror(errno));
        return 1;
    }
    echo_request(p4, &lo, sizeof lo, 8, 1);
    echo_request(p4, &lo, sizeof lo, 8, 2);
    echo_request(p6, &lo6, sizeof lo6, 128, 3);
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    unsigned char buf[8192];
    for (int i = 0; i < 3; i++) {
        int fd = i < 2 ? p4 : p6;
        ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        dprintf(1, "ping%d: %zd bytes, type %d id %d seq %d %.6s\n", i < 2 ? 4 : 6, got, buf[0],
                i < 2 ? buf[4] << 8 | buf[5] : 0, buf[7], buf + 8);
    }
    for (int i = 0; i < 3; i++) {
        ssize_t got = recv(raw, buf, sizeof buf, MSG_DONTWAIT);
        if (got < 0)
            dprintf(1, "raw: %s\n", strerror(errno));
        else
            dprintf(1, "raw: %zd bytes, type %d seq %d\n", got, buf[20], buf[27]);
    }
    socklen_t len = sizeof sa;
    getsockname(nl, (struct sockaddr *)&sa, &len);
    int links = 0, done = 0;
    while (!done) {
        ssize_t got = recv(nl, buf, sizeof buf, MSG_DONTWAIT);
        if (got <= 0)
            break;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, got); h = NLMSG_NEXT(h, got)) {
            links += h->nlmsg_type == RTM_NEWLINK && h->nlmsg_seq == 77;
            done |= h->nlmsg_type == NLMSG_DONE && h->nlmsg_seq == 77;
        }
    }
    uint32_t groups[2] = {0}, ext = 0;
    len = sizeof groups;
    getsockopt(nl, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &len);
    len = sizeof ext;
    getsockopt(nl, SOL_NETLINK, NETLINK_EXT_ACK, &ext, &len);
    dprintf(1, "netlink: port id is the pid %d, groups %#x, ext_ack %u, links %d, done %d\n",
            sa.nl_pid == (uint32_t)getpid(), groups[0], ext, links > 0, done);
    return 0;
}

static unsigned short csum16(const unsigned char *p, size_t n)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (unsigned short)~sum;
}

static int packeted(long n)
{
    unsigned char pkt[20 + 8 + 244] = {0}, buf[2048], ctl[256];
    int s = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP)), one = 1, v2 = TPACKET_V2, reserve = 64;
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
                              .sll_ifindex = (int)if_nametoindex("eth0"), .sll_halen = 6};
    if (s < 0 || bind(s, (struct sockaddr *)&sll, sizeof sll)
        || setsockopt(s, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one)
        || setsockopt(s, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2)
        || setsockopt(s, SOL_PACKET, PACKET_RESERVE, &reserve, sizeof reserve)) {
        dprintf(1, "packet: %s\n", strerror(errno));
        return 1;
    }
    /* IPv4 0.0.0.0 -> 255.255.255.255, UDP 68 -> 67, BOOTREQUEST with DHCPDISCOVER */
    unsigned char head[] = {0x45, 0, sizeof pkt >> 8, sizeof pkt & 0xff, 0, 1, 0, 0, 64, 17, 0, 0,
                            0, 0, 0, 0, 255, 255, 255, 255, 0, 68, 0, 67, (sizeof pkt - 20) >> 8,
                            (sizeof pkt - 20) & 0xff, 0, 0, 1, 1, 6, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0x80, 0};
    memcpy(pkt, head, sizeof head);
    unsigned short c = csum16(pkt, 20);
    pkt[10] = (unsigned char)(c >> 8);
    pkt[11] = (unsigned char)c;
    memcpy(pkt + 28 + 28, "\x52\x54\x00\xc0\xff\xee", 6);                       /* chaddr */
    memcpy(pkt + 28 + 236, "\x63\x82\x53\x63\x35\x01\x01\xff", 8);              /* cookie, DISCOVER, end */
    memset(sll.sll_addr, 0xff, 6);
    if (sendto(s, pkt, sizeof pkt, 0, (struct sockaddr *)&sll, sizeof sll) != sizeof pkt) {
        dprintf(1, "send: %s\n", strerror(errno));
        return 1;
    }
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    struct sockaddr_ll from;
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = ctl, .msg_controllen = sizeof ctl};
    ssize_t got = recvmsg(s, &mh, MSG_DONTWAIT);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    struct tpacket_auxdata aux = {0};
    if (cm && cm->cmsg_level == SOL_PACKET && cm->cmsg_type == PACKET_AUXDATA)
        memcpy(&aux, CMSG_DATA(cm), sizeof aux);
    dprintf(1, "offer: %d, udp %d->%d, op %d, xid %02x%02x%02x%02x, from eth0 %d, pkttype %d, aux len %u\n",
            got > 300, buf[20] << 8 | buf[21], buf[22] << 8 | buf[23], buf[28], buf[32], buf[33], buf[34], buf[35],
            from.sll_ifindex == (int)if_nametoindex("eth0"), from.sll_pkttype, aux.tp_len == (unsigned)got);
    struct tpacket_stats st;
    int ver = 0, res = 0;
    socklen_t len = sizeof st;
    getsockopt(s, SOL_PACKET, PACKET_STATISTICS, &st, &len);
    len = sizeof ver;
    getsockopt(s, SOL_PACKET, PACKET_VERSION, &ver, &len);
    getsockopt(s, SOL_PACKET, PACKET_RESERVE, &res, &len);
    dprintf(1, "stats %u packets %u drops, version %d, reserve %d, then %zd\n", st.tp_packets, st.tp_drops, ver, res,
            recv(s, buf, sizeof buf, MSG_DONTWAIT));
    return 0;
}

/* A UDP datagram being built by UDP_CORK and MSG_MORE, a UDP-Lite pair with
   checksum coverages set and a datagram queued, and a TCP connection with
   TCP_CORK on; after counting to N, what each does: the corked datagram
   not sent until UDP_CORK goes off, the coverages kept (a datagram covering
   too little dropped), a TCP write held until TCP_CORK goes off. */
static int corked(long n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)}, b = a, t = a;
    socklen_t al = sizeof a, bl = sizeof b, tl = sizeof t;
    int one = 1, zero = 0;
    int ur = socket(AF_INET, SOCK_DGRAM, 0), us = socket(AF_INET, SOCK_DGRAM, 0);
    int lr = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE), ls = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
    int lst = socket(AF_INET, SOCK_STREAM, 0), cli = socket(AF_INET, SOCK_STREAM, 0);
    if (lr < 0 || bind(ur, (struct sockaddr *)&a, sizeof a) || getsockname(ur, (struct sockaddr *)&a, &al)
        || bind(lr, (struct sockaddr *)&b, sizeof b) || getsockname(lr, (struct sockaddr *)&b, &bl)
        || bind(lst, (struct sockaddr *)&t, sizeof t) || listen(lst, 1) || getsockname(lst, (struct sockaddr *)&t, &tl)
        || connect(cli, (struct sockaddr *)&t, sizeof t))
        return 1;
    int srv = accept(lst, NULL, NULL);
    setsockopt(us, IPPROTO_UDP, 1 /* UDP_CORK */, &one, sizeof one);
    sendto(us, "cor", 3, 0, (struct sockaddr *)&a, sizeof a);
    send(us, "ked", 3, MSG_MORE);
    int cov = 20, rcov = 12;
    setsockopt(ls, IPPROTO_UDPLITE, 10 /* UDPLITE_SEND_CSCOV */, &cov, sizeof cov);
    setsockopt(lr, IPPROTO_UDPLITE, 11 /* UDPLITE_RECV_CSCOV */, &rcov, sizeof rcov);
    sendto(ls, "lite one", 8, 0, (struct sockaddr *)&b, sizeof b);
    setsockopt(cli, IPPROTO_TCP, 3 /* TCP_CORK */, &one, sizeof one);
    for (int i = 1; i <= n; i++) {
        dprintf(1, "count %d\n", i);
        tick();
    }
    char buf[64];
    ssize_t r = recv(ur, buf, sizeof buf, MSG_DONTWAIT);
    dprintf(1, "udp before uncork: %zd %s\n", r, r < 0 ? strerror(errno) : "");
    setsockopt(us, IPPROTO_UDP, 1, &zero, sizeof zero);
    r = recv(ur, buf, sizeof buf, MSG_DONTWAIT);
    dprintf(1, "udp after uncork: %.*s\n", (int)(r > 0 ? r : 0), buf);
    int v = 0;
    socklen_t vl = sizeof v;
    getsockopt(ls, IPPROTO_UDPLITE, 10, &v, &vl);
    dprintf(1, "send coverage %d", v);
    getsockopt(lr, IPPROTO_UDPLITE, 11, &v, &vl);
    dprintf(1, ", receive coverage %d\n", v);
    r = recv(lr, buf, sizeof buf, MSG_DONTWAIT);
    dprintf(1, "udplite queued: %.*s\n", (int)(r > 0 ? r : 0), buf);
    char big[30];
    memset(big, 'x', sizeof big);
    sendto(ls, big, sizeof big, 0, (struct sockaddr *)&b, sizeof b);     /* covers 20 >= 12: kept */
    rcov = 24;
    setsockopt(lr, IPPROTO_UDPLITE, 11, &rcov, sizeof rcov);
    sendto(ls, big, sizeof big, 0, (struct sockaddr *)&b, sizeof b);     /* covers 20 < 24: dropped */
    for (int i = 0; i < 2; i++) {
        r = recv(lr, buf, sizeof buf, MSG_DONTWAIT);
        dprintf(1, "udplite after: %zd %s\n", r, r < 0 ? strerror(errno) : "");
    }
    write(cli, "abc", 3);
    r = recv(srv, buf, sizeof buf, MSG_DONTWAIT);
    dprintf(1, "tcp while corked: %zd %s\n", r, r < 0 ? strerror(errno) : "");
    setsockopt(cli, IPPROTO_TCP, 3, &zero, sizeof zero);
    r = read(srv, buf, sizeof buf);
    dprintf(1, "tcp after uncork: %.*s\n", (int)(r > 0 ? r : 0), buf);
    return 0;
}

int main(int argc, char **argv)
{
    /* every mode but count takes one number: N, or MS */
    static const struct {
        const char *name;
        int (*run)(long);
    } modes[] = {{"pipe", piped}, {"sleep", sleep_once}, {"waits", waits}, {"pending", pending}, {"spin", spin},
                 {"pairs", pairs}, {"epoll", epolled}, {"ptimer", ptimer}, {"fds", fds},
                 {"itimer", itimer}, {"socket", socket_held}, {"threads", threaded}, {"dirty", dirty}, {"inet", inet},
                 {"sysv", sysv}, {"mqueue", mqueued}, {"unwatched", unwatched}, {"landlocked", landlocked}, {"accounting", accounting}, {"pfilter", pfilter}, {"pty", pty_session},
                 {"hungup", hungup}, {"shanon", shanon}, {"vfork", vforked}, {"zombie", zombies},
                 {"churn", churn}, {"sched", scheduled}, {"keys", keyed}, {"netsock", netsocks},
                 {"packet", packeted}, {"spawner", spawner}, {"kid", kid}, {"stopped", stopped_children},
                 {"mlocked", mlocked}, {"ptpending", ptpending},
                 {"ptwall", ptwall}, {"clocks", clocks}, {"timens", timens}, {"tcpheld", tcpheld}, {"sigio", sigio}, {"opath", opath},
                 {"seccomp", seccomped}, {"nested", nested}, {"cputime", cputime},
                 {"tables", tables}, {"leaderless", leaderless},
                 {"pidfds", pidfds}, {"memfds", memfds}, {"corked", corked}, {"semaphore", semaphore}};
    self_path = argv[0];
    if (argc == 4 && !strcmp(argv[1], "count"))
        return count(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "unix"))
        return unix_named(argv[2], atol(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "inotify"))
        return watched(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "leased"))
        return leased(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "prealloc"))
        return preallocated(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "nameless"))
        return nameless(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "sharedgone"))
        return sharedgone(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "relinked"))
        return relinked(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "deletedmap"))
        return deletedmap(argv[2], atoi(argv[3]));
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "deletedexe"))
        return deletedexe(argv[2], atoi(argv[3]), argc == 5);
    if (argc == 4 && !strcmp(argv[1], "locks"))
        return locked(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "dir"))
        return listed(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "fifo"))
        return fifo(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "mapped"))
        return mapped(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "nat"))
        return nat(atol(argv[2]), atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "dirty"))
        return dirty_mib(atol(argv[2]), atol(argv[3]));
    for (size_t i = 0; argc == 3 && i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(argv[1], modes[i].name))
            return modes[i].run(atol(argv[2]));
    fprintf(stderr, "usage: t_ckpt count FILE N | mapped FILE N | fifo PATH N | dir PATH N | locks PATH N | nameless DIR N | sharedgone DIR N | unix DIR N | pipe N | socket N | sleep MS | spin N | pending MS | itimer MS | fds MS | ptimer MS | epoll MS | pairs N | threads N | dirty N [MIB] | inet N | nat N PORT | sysv N | mqueue N | inotify DIR N | unwatched N | pty N | hungup N | shanon N | vfork N | zombie N | churn N | sched N | keys N | netsock N | packet N | spawner N | stopped N | mlocked N | ptpending N | ptwall N | clocks N | timens N | tcpheld N | sigio N | opath N | seccomp N | nested N | cputime N | tables N | leaderless N | pidfds N | memfds N | corked N | semaphore N | prealloc PATH N | leased PATH N\n");
    return 2;
}
