/* io_uring through the raw syscalls (no liburing): io_uring_setup's
 * checks and sizes, the three mmaps, NOP with user_data, WRITEV/READV,
 * READ/WRITE at the file position, registered buffers and
 * READ_FIXED/WRITE_FIXED, FSYNC, per-request errors in the CQE (bad fd,
 * bad opcode, bad flags), a dropped SQ index, CQ overflow, GETEVENTS
 * waits (a signal: EINTR, a timeout: ETIME, a parked pipe read completed
 * by a later write), and requests running with the submitter's
 * credentials and root: a SENDMSG to a path outside a chroot is ENOENT
 * (CVE-2020-29373, LTP io_uring02), one to a socket in a directory the
 * submitter may not search is EACCES.  Needs root (natively too).
 * `t_io_uring DIR hostile` (guest only): a child fills its rings with
 * random bytes, indices, heads and tails and submits them, again and
 * again; the kernel must survive it and serve a clean ring after.
 * `t_io_uring DIR setup`: one io_uring_setup, its result.
 * `t_io_uring DIR parked`: pipe reads that wait, submitted one by one
 * until one is refused (umlpy bounds them per ring; Linux by memory).
 * `t_io_uring DIR many`: 4096 reads wait on one pipe, one write of 4096
 * bytes ends them all, then 4096 cancels of nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "results.h"

static char dir[400];
static volatile int usr1s;         /* SIGUSR1s handled */

static char *at(const char *name)
{
    return path_in(dir, name);
}

static long setup(unsigned entries, struct io_uring_params *p)
{
    return syscall(__NR_io_uring_setup, entries, p);
}

static long enter(int fd, unsigned sub, unsigned minc, unsigned flags, void *arg, size_t sz)
{
    return syscall(__NR_io_uring_enter, fd, sub, minc, flags, arg, sz);
}

static long reg(int fd, unsigned op, void *arg, unsigned nr)
{
    return syscall(__NR_io_uring_register, fd, op, arg, nr);
}

struct ring {
    int fd;
    unsigned sq_entries, cq_entries;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_flags, *sq_dropped, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask, *cq_overflow, *cq_flags;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
};

static int ring_init(struct ring *r, unsigned entries, unsigned flags)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = flags;
    r->fd = setup(entries, &p);
    if (r->fd < 0)
        return -1;
    r->sq_entries = p.sq_entries;
    r->cq_entries = p.cq_entries;
    char *sq = mmap(NULL, p.sq_off.array + p.sq_entries * 4, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
    char *cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
                    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
    r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED) {
        printf("ring mmap failed: %s\n", en(errno));
        return -1;
    }
    r->sq_head = (unsigned *)(sq + p.sq_off.head);
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_flags = (unsigned *)(sq + p.sq_off.flags);
    r->sq_dropped = (unsigned *)(sq + p.sq_off.dropped);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cq_overflow = (unsigned *)(cq + p.cq_off.overflow);
    r->cq_flags = (unsigned *)(cq + p.cq_off.flags);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

/* Queue one SQE (not yet submitted); returns it for extra fields. */
static struct io_uring_sqe *queue(struct ring *r, int op, int fd, const void *addr, unsigned len,
                                  long long off, unsigned long long ud)
{
    unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
    struct io_uring_sqe *s = &r->sqes[idx];
    memset(s, 0, sizeof *s);
    s->opcode = op;
    s->fd = fd;
    s->addr = (unsigned long)addr;
    s->len = len;
    s->off = off;
    s->user_data = ud;
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    return s;
}

static int fd_results;     /* print results >= 0 as "fd" (numbers may differ) */

/* Print every CQE there is. */
static void reap(struct ring *r, const char *what)
{
    unsigned head = *r->cq_head;
    unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
    if (head == tail)
        printf("%s: no cqe\n", what);
    for (; head != tail; head++) {
        struct io_uring_cqe *c = &r->cqes[head & *r->cq_mask];
        if (c->res < 0)
            printf("%s: ud=%#llx res=%s\n", what, (unsigned long long)c->user_data, en(-c->res));
        else if (fd_results)
            printf("%s: ud=%#llx res=fd\n", what, (unsigned long long)c->user_data);
        else
            printf("%s: ud=%#llx res=%d\n", what, (unsigned long long)c->user_data, c->res);
    }
    __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
}

/* Submit what is queued, wait for n CQEs, print them. */
static void run(struct ring *r, unsigned n, const char *what)
{
    unsigned queued = *r->sq_tail - *r->sq_head;
    long ret = enter(r->fd, queued, n, IORING_ENTER_GETEVENTS, NULL, 0);
    if (ret < 0)
        printf("%s: enter -1 %s\n", what, en(errno));
    else if ((unsigned long)ret != queued)
        printf("%s: enter submitted %ld of %u\n", what, ret, queued);
    reap(r, what);
}

static void setup_checks(void)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    res("setup entries 0", setup(0, &p));
    res("setup entries 1<<20", setup(1 << 20, &p));
    res("setup params NULL", setup(4, NULL));
    p.resv[1] = 1;
    res("setup resv", setup(4, &p));
    memset(&p, 0, sizeof p);
    p.flags = 1u << 31;
    res("setup unknown flag", setup(4, &p));
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE;
    res("setup CQSIZE 0", setup(4, &p));
    p.cq_entries = 2;
    res("setup CQSIZE < sq", setup(4, &p));
    p.cq_entries = 5;
    long fd = setup(3, &p);
    printf("setup 3, CQSIZE 5: sq %u cq %u\n", p.sq_entries, p.cq_entries);
    close(fd);
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CLAMP;
    fd = setup(100000, &p);
    printf("setup 100000 CLAMP: sq %u cq %u\n", p.sq_entries, p.cq_entries);
    close(fd);
    memset(&p, 0, sizeof p);
    fd = setup(3, &p);
    printf("setup 3: sq %u cq %u single_mmap %d nodrop %d cur_pos %d cloexec %d\n",
           p.sq_entries, p.cq_entries, !!(p.features & IORING_FEAT_SINGLE_MMAP),
           !!(p.features & IORING_FEAT_NODROP), !!(p.features & IORING_FEAT_RW_CUR_POS),
           fcntl(fd, F_GETFD) == FD_CLOEXEC);
    errno = 0;
    void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0x18000000);
    printf("mmap bad offset fails: %d\n", m == MAP_FAILED);
    char b[8];
    res("read ring fd", read(fd, b, sizeof b));
    close(fd);
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_R_DISABLED;
    fd = setup(2, &p);
    res("enter, rings disabled", enter(fd, 0, 0, 0, NULL, 0));
    res("enable rings", reg(fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0));
    res("enter, enabled", enter(fd, 0, 0, 0, NULL, 0));
    res("enable rings again", reg(fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0));
    close(fd);
}

static void io_checks(void)
{
    struct ring r;
    if (ring_init(&r, 8, 0) < 0) {
        printf("ring: %s\n", en(errno));
        return;
    }
    printf("sq ring: entries %u mask %u; cq mask %u\n", r.sq_entries, *r.sq_mask, *r.cq_mask);

    queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 0xdeadbeefcafeULL);
    run(&r, 1, "nop");

    int fd = open(at("data"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    char a[] = "hello ", b[] = "io_uring!";
    struct iovec wv[2] = {{a, 6}, {b, 9}};
    queue(&r, IORING_OP_WRITEV, fd, wv, 2, 0, 1);
    run(&r, 1, "writev");
    char ra[6] = {0}, rb[16] = {0};
    struct iovec rv[2] = {{ra, 6}, {rb, 16}};
    queue(&r, IORING_OP_READV, fd, rv, 2, 0, 2);
    run(&r, 1, "readv");
    printf("readv data: '%.6s' '%s'\n", ra, rb);

    /* offset -1: the file position, which moves */
    lseek(fd, 0, SEEK_SET);
    char c1[4] = {0}, c2[4] = {0};
    queue(&r, IORING_OP_READ, fd, c1, 3, -1, 3);
    queue(&r, IORING_OP_READ, fd, c2, 3, -1, 4);
    run(&r, 2, "read at pos");
    printf("read at pos: '%s' '%s' pos %ld\n", c1, c2, (long)lseek(fd, 0, SEEK_CUR));
    queue(&r, IORING_OP_WRITE, fd, "XY", 2, 6, 5);
    queue(&r, IORING_OP_FSYNC, fd, NULL, 0, 0, 6);
    run(&r, 2, "write+fsync");
    queue(&r, IORING_OP_FSYNC, fd, NULL, 0, 0, 7)->fsync_flags = 0x80;
    run(&r, 1, "fsync bad flags");
    queue(&r, IORING_OP_READ, fd, c1, 3, -5, 8);
    run(&r, 1, "read off -5");

    /* registered buffers */
    char *buf = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct iovec reg_iov = {buf, 4096};
    res("register NULL", reg(r.fd, IORING_REGISTER_BUFFERS, NULL, 1));
    res("register 0 bufs", reg(r.fd, IORING_REGISTER_BUFFERS, &reg_iov, 0));
    struct iovec bad = {(void *)0x10000, 0};
    res("register base, len 0", reg(r.fd, IORING_REGISTER_BUFFERS, &bad, 1));
    res("register", reg(r.fd, IORING_REGISTER_BUFFERS, &reg_iov, 1));
    res("register again", reg(r.fd, IORING_REGISTER_BUFFERS, &reg_iov, 1));
    queue(&r, IORING_OP_READ_FIXED, fd, buf, 15, 0, 9);
    run(&r, 1, "read_fixed");
    printf("read_fixed data: '%.15s'\n", buf);
    queue(&r, IORING_OP_READ_FIXED, fd, buf + 4090, 15, 0, 10);
    run(&r, 1, "read_fixed past buffer");
    queue(&r, IORING_OP_READ_FIXED, fd, buf, 15, 0, 11)->buf_index = 1;
    run(&r, 1, "read_fixed index 1");
    memcpy(buf + 100, "FIXED", 5);
    queue(&r, IORING_OP_WRITE_FIXED, fd, buf + 100, 5, 20, 12);
    run(&r, 1, "write_fixed");
    char back[32] = {0};
    pread(fd, back, sizeof back - 1, 0);
    printf("file now: '%s'\n", back);
    res("unregister nr 1", reg(r.fd, IORING_UNREGISTER_BUFFERS, NULL, 1));
    res("unregister", reg(r.fd, IORING_UNREGISTER_BUFFERS, NULL, 0));
    res("unregister again", reg(r.fd, IORING_UNREGISTER_BUFFERS, NULL, 0));
    queue(&r, IORING_OP_READ_FIXED, fd, buf, 15, 0, 13);
    run(&r, 1, "read_fixed unregistered");
    res("register bad opcode", reg(r.fd, 9999, NULL, 0));
    res("register on a file", reg(fd, IORING_UNREGISTER_BUFFERS, NULL, 0));

    /* errors in the CQE */
    queue(&r, IORING_OP_READ, 999, c1, 3, 0, 14);
    run(&r, 1, "read bad fd");
    int wo = open(at("data"), O_WRONLY);
    queue(&r, IORING_OP_READ, wo, c1, 3, 0, 15);
    run(&r, 1, "read write-only fd");
    queue(&r, 200, -1, NULL, 0, 0, 16);
    run(&r, 1, "opcode 200");
    queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 17)->flags = 0x80;
    run(&r, 1, "nop bad sqe flags");
    queue(&r, IORING_OP_READ, fd, (void *)16, 3, 0, 18);
    run(&r, 1, "read to bad address");
    int pfd[2];
    pipe(pfd);
    queue(&r, IORING_OP_FSYNC, pfd[0], NULL, 0, 0, 19);
    run(&r, 1, "fsync pipe");

    /* the enter call's own errors */
    res("enter bad fd", enter(999, 0, 0, 0, NULL, 0));
    res("enter on a file", enter(fd, 0, 0, 0, NULL, 0));
    res("enter bad flags", enter(r.fd, 0, 0, 1u << 30, NULL, 0));
    res("enter nothing", enter(r.fd, 0, 0, 0, NULL, 0));
    res("enter getevents min 0", enter(r.fd, 0, 0, IORING_ENTER_GETEVENTS, NULL, 0));

    /* an SQ index past the ring is dropped */
    unsigned tail = *r.sq_tail;
    r.sq_array[tail & *r.sq_mask] = 1000;
    __atomic_store_n(r.sq_tail, tail + 1, __ATOMIC_RELEASE);
    res("enter bad index", enter(r.fd, 1, 0, 0, NULL, 0));
    printf("sq dropped %u, head moved %d\n", *r.sq_dropped, *r.sq_head == tail + 1);

    /* a linked chain: a failed member cancels the rest */
    queue(&r, IORING_OP_READ, 999, c1, 3, 0, 20)->flags = IOSQE_IO_LINK;
    queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 21)->flags = IOSQE_IO_LINK;
    queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 22);
    run(&r, 3, "link");

    /* the blocking side: a pipe read waits for data */
    queue(&r, IORING_OP_READ, pfd[0], c1, 3, 0, 23);
    res("submit pipe read", enter(r.fd, 1, 0, 0, NULL, 0));
    reap(&r, "pipe read before write");
    struct __kernel_timespec ts = {0, 20000000};
    struct io_uring_getevents_arg ga = {0, 0, 0, (unsigned long)&ts};
    res("wait with timeout", enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &ga, sizeof ga));
    res("ext arg bad size", enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &ga, 8));
    struct itimerspec it = {{0, 0}, {0, 30000000}};
    timer_t tm;
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    timer_create(CLOCK_MONOTONIC, &sev, &tm);
    timer_settime(tm, 0, &it, NULL);
    res("wait, signal", enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0));
    write(pfd[1], "abc", 3);
    res("wait after write", enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0));
    reap(&r, "pipe read after write");
    printf("pipe data: '%.3s'\n", c1);
    /* EXT_ARG's sigmask holds SIGUSR1 off while waiting: the timeout ends
       the wait, the signal comes after */
    sigset_t blockusr1;
    sigemptyset(&blockusr1);
    sigaddset(&blockusr1, SIGUSR1);
    struct __kernel_timespec ts50 = {0, 60000000};
    struct io_uring_getevents_arg ga2 = {(unsigned long)&blockusr1, 8, 0, (unsigned long)&ts50};
    queue(&r, IORING_OP_READ, pfd[0], c1, 3, 0, 25);
    res("submit pipe read", enter(r.fd, 1, 0, 0, NULL, 0));
    int before = usr1s;
    timer_settime(tm, 0, &it, NULL);
    res("wait, SIGUSR1 masked", enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &ga2, sizeof ga2));
    printf("SIGUSR1 handled after the wait: %d\n", usr1s - before);
    /* another process completes what this one waits for */
    pid_t w = fork();
    if (w == 0) {
        usleep(20000);
        write(pfd[1], "def", 3);
        _exit(0);
    }
    res("wait for the child's write", enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0));
    reap(&r, "pipe read, child's write");
    waitpid(w, NULL, 0);
    /* IO_DRAIN: a request (and those after it) waits for all before it */
    queue(&r, IORING_OP_READ, pfd[0], c1, 3, 0, 30);
    queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 31)->flags = IOSQE_IO_DRAIN;
    queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 32);
    res("submit read, drain nop, nop", enter(r.fd, 3, 0, 0, NULL, 0));
    reap(&r, "drained, before the write");
    write(pfd[1], "ghi", 3);
    res("wait for all three", enter(r.fd, 0, 3, IORING_ENTER_GETEVENTS, NULL, 0));
    reap(&r, "drained, after the write");
    /* a read still parked when the ring goes */
    queue(&r, IORING_OP_READ, pfd[0], c1, 3, 0, 24);
    res("submit parked read", enter(r.fd, 1, 0, 0, NULL, 0));
    close(r.fd);
    close(pfd[0]);
    close(pfd[1]);
    close(fd);
    close(wo);
}

/* The path and socket opcodes: each is its syscall, with its fields checked. */
static void path_checks(void)
{
    struct ring r;
    if (ring_init(&r, 8, 0) < 0)
        return;
    struct io_uring_sqe *s = queue(&r, IORING_OP_OPENAT, AT_FDCWD, at("p1"), 0644, 0, 1);
    s->open_flags = O_RDWR | O_CREAT | O_EXCL;
    unsigned head = *r.cq_head;
    fd_results = 1;
    run(&r, 1, "openat");
    fd_results = 0;
    int fd = r.cqes[head & *r.cq_mask].res;
    s = queue(&r, IORING_OP_OPENAT, AT_FDCWD, at("p1"), 0644, 0, 2);
    s->open_flags = O_RDWR | O_CREAT | O_EXCL;
    run(&r, 1, "openat again, O_EXCL");
    queue(&r, IORING_OP_OPENAT, AT_FDCWD, (void *)8, 0, 0, 3);
    run(&r, 1, "openat bad path");
    queue(&r, IORING_OP_OPENAT, AT_FDCWD, "", 0, 0, 4);
    run(&r, 1, "openat empty path");
    queue(&r, IORING_OP_OPENAT, AT_FDCWD, at("p1"), 0, 0, 5)->buf_index = 1;
    run(&r, 1, "openat buf_index");
    queue(&r, IORING_OP_FALLOCATE, fd, (void *)8192, 0, 0, 6);
    run(&r, 1, "fallocate");
    struct statx stx;
    memset(&stx, 0, sizeof stx);
    s = queue(&r, IORING_OP_STATX, AT_FDCWD, at("p1"), STATX_SIZE, (long long)(unsigned long)&stx, 7);
    run(&r, 1, "statx");
    printf("statx size %llu\n", (unsigned long long)stx.stx_size);
    queue(&r, IORING_OP_FADVISE, fd, NULL, 0, 0, 8)->fadvise_advice = POSIX_FADV_SEQUENTIAL;
    queue(&r, IORING_OP_FADVISE, fd, NULL, 0, 0, 9)->fadvise_advice = 99;
    run(&r, 2, "fadvise");
    queue(&r, IORING_OP_CLOSE, fd, NULL, 0, 0, 10);
    run(&r, 1, "close");
    printf("fd closed: %d\n", fcntl(fd, F_GETFD) < 0 && errno == EBADF);
    queue(&r, IORING_OP_CLOSE, fd, NULL, 0, 0, 11);
    run(&r, 1, "close again");
    queue(&r, IORING_OP_CLOSE, r.fd, NULL, 0, 0, 12);
    run(&r, 1, "close the ring");
    queue(&r, IORING_OP_CLOSE, 0, NULL, 1, 0, 13);
    run(&r, 1, "close with len");
    queue(&r, IORING_OP_MKDIRAT, AT_FDCWD, at("d1"), 0755, 0, 14);
    run(&r, 1, "mkdirat");
    queue(&r, IORING_OP_MKDIRAT, AT_FDCWD, at("d1"), 0755, 0, 15);
    run(&r, 1, "mkdirat again");
    queue(&r, IORING_OP_RENAMEAT, AT_FDCWD, at("p1"), AT_FDCWD, (long long)(unsigned long)at("p2"), 16);
    run(&r, 1, "renameat");
    queue(&r, IORING_OP_SYMLINKAT, AT_FDCWD, "p2", 0, (long long)(unsigned long)at("l1"), 17);
    run(&r, 1, "symlinkat");
    queue(&r, IORING_OP_LINKAT, AT_FDCWD, at("p2"), AT_FDCWD, (long long)(unsigned long)at("h1"), 18);
    run(&r, 1, "linkat");
    struct stat st, lst;
    stat(at("p2"), &st);
    int islnk = lstat(at("l1"), &lst) == 0 && S_ISLNK(lst.st_mode);
    printf("p2 links %ld, l1 is a symlink %d\n", (long)st.st_nlink, islnk);
    queue(&r, IORING_OP_UNLINKAT, AT_FDCWD, at("d1"), 0, 0, 19);
    run(&r, 1, "unlinkat a dir");
    queue(&r, IORING_OP_UNLINKAT, AT_FDCWD, at("d1"), 0, 0, 20)->unlink_flags = AT_REMOVEDIR;
    run(&r, 1, "unlinkat AT_REMOVEDIR");
    queue(&r, IORING_OP_UNLINKAT, AT_FDCWD, at("l1"), 0, 0, 21)->unlink_flags = 0x4000;
    run(&r, 1, "unlinkat bad flag");

    /* sockets: connect, accept, send, recv, shutdown */
    int lis = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", at("lsock"));
    unlink(a.sun_path);
    bind(lis, (struct sockaddr *)&a, sizeof a);
    listen(lis, 4);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    queue(&r, IORING_OP_CONNECT, c, &a, 0, sizeof a, 22);
    run(&r, 1, "connect");
    head = *r.cq_head;
    queue(&r, IORING_OP_ACCEPT, lis, NULL, 0, 0, 23)->accept_flags = SOCK_CLOEXEC;
    fd_results = 1;
    run(&r, 1, "accept");
    fd_results = 0;
    int acc = r.cqes[head & *r.cq_mask].res;
    printf("accepted cloexec: %d\n", fcntl(acc, F_GETFD) == FD_CLOEXEC);
    queue(&r, IORING_OP_ACCEPT, lis, NULL, 0, 0, 24)->accept_flags = 0x1;
    run(&r, 1, "accept bad flags");
    char got[8] = {0};
    queue(&r, IORING_OP_RECV, acc, got, sizeof got, 0, 25);
    res("submit recv", enter(r.fd, 1, 0, 0, NULL, 0));
    queue(&r, IORING_OP_SEND, c, "ping", 4, 0, 26);
    run(&r, 2, "send, then the parked recv");
    printf("received '%s'\n", got);
    queue(&r, IORING_OP_SHUTDOWN, c, NULL, SHUT_WR, 0, 27);
    run(&r, 1, "shutdown");
    queue(&r, IORING_OP_RECV, acc, got, sizeof got, 0, 28);
    run(&r, 1, "recv after shutdown");
    queue(&r, IORING_OP_SHUTDOWN, r.fd, NULL, SHUT_WR, 0, 29);
    run(&r, 1, "shutdown the ring");
    close(lis);
    close(c);
    close(acc);
    close(r.fd);
}

/* POLL_ADD, POLL_REMOVE, ASYNC_CANCEL */
static void poll_checks(void)
{
    struct ring r;
    if (ring_init(&r, 8, 0) < 0)
        return;
    int pfd[2];
    pipe(pfd);
    queue(&r, IORING_OP_POLL_ADD, pfd[1], NULL, 0, 0, 1)->poll32_events = POLLOUT;
    run(&r, 1, "poll write end");
    queue(&r, IORING_OP_POLL_ADD, pfd[0], NULL, 0, 0, 2)->poll32_events = POLLIN;
    res("submit poll read end", enter(r.fd, 1, 0, 0, NULL, 0));
    reap(&r, "poll before write");
    write(pfd[1], "z", 1);
    res("wait for poll", enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0));
    reap(&r, "poll after write");
    char c;
    read(pfd[0], &c, 1);
    queue(&r, IORING_OP_POLL_ADD, pfd[0], NULL, 0, 0, 3)->poll32_events = POLLIN;
    res("submit poll", enter(r.fd, 1, 0, 0, NULL, 0));
    queue(&r, IORING_OP_POLL_REMOVE, -1, (void *)3, 0, 0, 4);
    run(&r, 2, "poll_remove");
    queue(&r, IORING_OP_POLL_REMOVE, -1, (void *)3, 0, 0, 5);
    run(&r, 1, "poll_remove again");
    queue(&r, IORING_OP_POLL_ADD, pfd[0], (void *)1, 0, 0, 6);
    run(&r, 1, "poll_add with addr");
    char buf[4];
    queue(&r, IORING_OP_READ, pfd[0], buf, 4, 0, 7);
    queue(&r, IORING_OP_READ, pfd[0], buf, 4, 0, 8);
    res("submit two reads", enter(r.fd, 2, 0, 0, NULL, 0));
    queue(&r, IORING_OP_ASYNC_CANCEL, -1, (void *)8, 0, 0, 9);
    run(&r, 2, "cancel one");
    queue(&r, IORING_OP_ASYNC_CANCEL, -1, (void *)8, 0, 0, 10);
    run(&r, 1, "cancel it again");
    queue(&r, IORING_OP_ASYNC_CANCEL, -1, (void *)7, 0, 0, 11);
    run(&r, 2, "cancel the other");
    queue(&r, IORING_OP_READ, pfd[0], buf, 4, 0, 12);
    res("submit another read", enter(r.fd, 1, 0, 0, NULL, 0));
    queue(&r, IORING_OP_ASYNC_CANCEL, pfd[0], NULL, 0, 0, 13)->cancel_flags =
        IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
    run(&r, 2, "cancel all on the fd");
    queue(&r, IORING_OP_ASYNC_CANCEL, -1, NULL, 0, 0, 14)->cancel_flags = 1u << 20;
    run(&r, 1, "cancel bad flags");
    close(pfd[0]);
    close(pfd[1]);
    close(r.fd);
}

/* TIMEOUT (by time, by count), TIMEOUT_REMOVE (cancel, update) */
static void timeout_checks(void)
{
    struct ring r;
    if (ring_init(&r, 8, 0) < 0)
        return;
    struct __kernel_timespec short_ts = {0, 10000000}, long_ts = {10, 0};
    queue(&r, IORING_OP_TIMEOUT, -1, &short_ts, 1, 0, 1);
    run(&r, 1, "timeout 10ms");
    queue(&r, IORING_OP_TIMEOUT, -1, &long_ts, 1, 1, 2);
    res("submit count timeout", enter(r.fd, 1, 0, 0, NULL, 0));
    queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 3);
    run(&r, 2, "nop, then the count timeout");
    queue(&r, IORING_OP_TIMEOUT, -1, &long_ts, 1, 0, 4);
    res("submit long timeout", enter(r.fd, 1, 0, 0, NULL, 0));
    queue(&r, IORING_OP_TIMEOUT_REMOVE, -1, (void *)4, 0, 0, 5);
    run(&r, 2, "timeout_remove");
    queue(&r, IORING_OP_TIMEOUT_REMOVE, -1, (void *)4, 0, 0, 6);
    run(&r, 1, "timeout_remove again");
    queue(&r, IORING_OP_TIMEOUT, -1, &short_ts, 2, 0, 7);
    run(&r, 1, "timeout len 2");
    queue(&r, IORING_OP_TIMEOUT, -1, (void *)8, 1, 0, 8);
    run(&r, 1, "timeout bad timespec");
    queue(&r, IORING_OP_TIMEOUT, -1, &long_ts, 1, 0, 9);
    res("submit long timeout", enter(r.fd, 1, 0, 0, NULL, 0));
    queue(&r, IORING_OP_TIMEOUT_REMOVE, -1, (void *)9, 0, (long long)(unsigned long)&short_ts, 10)
        ->timeout_flags = IORING_TIMEOUT_UPDATE;
    run(&r, 2, "timeout update to 10ms");
    queue(&r, IORING_OP_TIMEOUT, -1, &long_ts, 1, 0, 11);
    res("submit long timeout", enter(r.fd, 1, 0, 0, NULL, 0));
    queue(&r, IORING_OP_ASYNC_CANCEL, -1, (void *)11, 0, 0, 12);
    run(&r, 2, "async_cancel a timeout");
    struct io_uring_sqe *s = queue(&r, IORING_OP_TIMEOUT, -1, &short_ts, 1, 0, 13);
    s->flags = IOSQE_IO_LINK;
    s->timeout_flags = IORING_TIMEOUT_ETIME_SUCCESS;
    queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 14);
    run(&r, 2, "linked timeout, ETIME_SUCCESS");
    queue(&r, IORING_OP_TIMEOUT, -1, &short_ts, 1, 0, 15)->flags = IOSQE_IO_LINK;
    queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 16);
    run(&r, 2, "linked timeout");
    close(r.fd);
}

static void evfd_count(const char *what, int efd)
{
    uint64_t v = 0;
    if (read(efd, &v, 8) < 0)
        printf("%s: eventfd %s\n", what, en(errno));
    else
        printf("%s: eventfd %llu\n", what, (unsigned long long)v);
}

/* IORING_REGISTER_EVENTFD: one signal per batch of completions */
static void eventfd_checks(void)
{
    struct ring r;
    if (ring_init(&r, 8, 0) < 0)
        return;
    int efd = eventfd(0, EFD_NONBLOCK);
    int pfd[2];
    pipe(pfd);
    res("register eventfd nr 2", reg(r.fd, IORING_REGISTER_EVENTFD, &efd, 2));
    res("register a pipe as eventfd", reg(r.fd, IORING_REGISTER_EVENTFD, &pfd[0], 1));
    res("unregister eventfd, none", reg(r.fd, IORING_UNREGISTER_EVENTFD, NULL, 0));
    res("register eventfd", reg(r.fd, IORING_REGISTER_EVENTFD, &efd, 1));
    res("register eventfd again", reg(r.fd, IORING_REGISTER_EVENTFD, &efd, 1));
    for (int i = 0; i < 3; i++)
        queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 1 + i);
    run(&r, 3, "three nops");
    evfd_count("after three nops", efd);
    char c[2];
    queue(&r, IORING_OP_READ, pfd[0], c, 1, 0, 4);
    res("submit pipe read", enter(r.fd, 1, 0, 0, NULL, 0));
    evfd_count("nothing completed", efd);
    write(pfd[1], "q", 1);
    res("wait", enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0));
    reap(&r, "pipe read");
    evfd_count("after the pipe read", efd);
    *r.cq_flags |= IORING_CQ_EVENTFD_DISABLED;
    queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 5);
    run(&r, 1, "nop, eventfd disabled");
    evfd_count("disabled", efd);
    *r.cq_flags &= ~IORING_CQ_EVENTFD_DISABLED;
    res("unregister eventfd", reg(r.fd, IORING_UNREGISTER_EVENTFD, NULL, 0));
    queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 6);
    run(&r, 1, "nop, unregistered");
    evfd_count("unregistered", efd);
    close(efd);
    close(pfd[0]);
    close(pfd[1]);
    close(r.fd);
}

static void overflow_checks(void)
{
    struct ring r;
    if (ring_init(&r, 1, 0) < 0)
        return;
    for (int i = 0; i < 3; i++) {
        queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 100 + i);
        enter(r.fd, 1, 0, 0, NULL, 0);
    }
    printf("overflow: cq %u in ring, sq flag %d, dropped %u\n", *r.cq_tail - *r.cq_head,
           !!(*r.sq_flags & IORING_SQ_CQ_OVERFLOW), *r.cq_overflow);
    reap(&r, "overflow first two");
    res("getevents flushes", enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0));
    reap(&r, "overflow third");
    printf("sq flag after %d\n", !!(*r.sq_flags & IORING_SQ_CQ_OVERFLOW));
    close(r.fd);
}

static int bound_socket(const char *path)
{
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0)
        printf("bind %s\n", en(errno));
    return s;
}

enum { AS_ROOT, IN_CHROOT, AS_NOBODY };

/* SENDMSG to path from a child of its own ring, as root, chrooted to
   DIR/root or as nobody. */
static void sendmsg_from_child(const char *what, const char *path, int how, int flags)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (how == IN_CHROOT && (chroot(at("root")) < 0 || chdir("/") < 0))
            printf("%s: chroot %s\n", what, en(errno));
        if (how == AS_NOBODY && setuid(65534) < 0)
            printf("%s: setuid %s\n", what, en(errno));
        struct ring r;
        if (ring_init(&r, 4, 0) < 0) {
            printf("%s: ring %s\n", what, en(errno));
            _exit(0);
        }
        int s = socket(AF_UNIX, SOCK_DGRAM, 0);
        static struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        static char data[] = "beef";
        static struct iovec iov = {data, 4};
        static struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1};
        queue(&r, IORING_OP_SENDMSG, s, &m, 1, 0, 0xbeef)->flags = flags;
        run(&r, 1, what);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

static void cred_checks(void)
{
    mkdir(at("root"), 0755);
    int s = bound_socket(at("sock"));
    sendmsg_from_child("sendmsg outside chroot", at("sock"), IN_CHROOT, 0);
    sendmsg_from_child("sendmsg outside chroot, async", at("sock"), IN_CHROOT, IOSQE_ASYNC);
    sendmsg_from_child("sendmsg as root", at("sock"), AS_ROOT, 0);
    mkdir(at("priv"), 0700);
    int p = bound_socket(at("priv/sock"));
    chmod(at("priv/sock"), 0777);
    sendmsg_from_child("sendmsg as nobody to a 0700 dir", at("priv/sock"), AS_NOBODY, 0);
    sendmsg_from_child("sendmsg as root to a 0700 dir", at("priv/sock"), AS_ROOT, 0);
    char buf[8];
    res("root's socket got", recv(s, buf, sizeof buf, MSG_DONTWAIT));
    res("private socket got", recv(p, buf, sizeof buf, MSG_DONTWAIT));
    close(s);
    close(p);
}

static void on_usr1(int sig) { (void)sig; usr1s++; }

static unsigned long long rnd_state = 88172645463325252ULL;

static unsigned long long rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void hostile(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) < 0)         /* what random paths create or remove stays there */
            _exit(2);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        int pfd[2];
        pipe(pfd);
        socket(AF_UNIX, SOCK_DGRAM, 0);
        open(at("data"), O_RDWR | O_CREAT, 0644);
        struct ring r;
        if (ring_init(&r, 16, 0) < 0)
            _exit(1);
        char *buf = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        struct iovec iov = {buf, 65536};
        reg(r.fd, IORING_REGISTER_BUFFERS, &iov, 1);
        for (int round = 0; round < 300; round++) {
            unsigned char *sq = (unsigned char *)r.sqes;
            for (unsigned i = 0; i < 16 * sizeof(struct io_uring_sqe); i++)
                sq[i] = rnd();
            for (unsigned i = 0; i < 16; i++) {
                struct io_uring_sqe *s = &r.sqes[i];
                s->opcode = rnd() % 50;
                s->fd = rnd() % 8;
                s->flags = rnd() % 4 == 0 ? rnd() : 0;
                s->ioprio = rnd() % 4 == 0 ? rnd() : 0;
                if (rnd() % 2)
                    s->addr = (unsigned long)buf + rnd() % 65536;
                s->len = rnd() % 3 ? rnd() % 8192 : rnd();
                r.sq_array[i] = rnd() % 4 ? rnd() % 16 : rnd();
            }
            *r.sq_tail = rnd() % 8 ? *r.sq_head + rnd() % 40 : rnd();
            *r.cq_head = rnd() % 8 ? *r.cq_tail : rnd();
            enter(r.fd, rnd() % 8 ? rnd() % 64 : rnd(), 0, rnd() % 2 ? 0 : IORING_ENTER_GETEVENTS,
                  NULL, 0);
            write(pfd[1], "x", 1);
        }
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("hostile: survived, child exited 0: %d\n", WIFEXITED(status) && !WEXITSTATUS(status));
    struct ring r;
    if (ring_init(&r, 4, 0) == 0) {
        queue(&r, IORING_OP_NOP, -1, NULL, 0, 0, 42);
        run(&r, 1, "clean ring after");
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "/tmp");
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    if (argc > 2 && !strcmp(argv[2], "setup")) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        res("setup", setup(4, &p) >= 0 ? 0 : -1);
        return 0;
    }
    if (argc > 2 && !strcmp(argv[2], "parked")) {
        struct ring r;
        int pfd[2];
        static char c[64];
        if (ring_init(&r, 4, 0) < 0 || pipe(pfd) < 0)
            return 1;
        int n = 0;
        long ret = 0;
        for (; n < 64; n++) {
            queue(&r, IORING_OP_READ, pfd[0], &c[n], 1, 0, n);
            ret = enter(r.fd, 1, 0, 0, NULL, 0);
            if (ret != 1)
                break;
        }
        printf("parked %d, then %ld %s\n", n, ret, ret < 0 ? en(errno) : "");
        write(pfd[1], "0123456789abcdef", 16);
        res("all done", enter(r.fd, 0, 8, IORING_ENTER_GETEVENTS, NULL, 0));
        printf("cqes %u, sq head %u tail %u\n", *r.cq_tail - *r.cq_head, *r.sq_head, *r.sq_tail);
        res("the refused one now", enter(r.fd, 1, 0, 0, NULL, 0));
        return 0;
    }
    if (argc > 2 && !strcmp(argv[2], "many")) {
        enum { N = 4096 };
        struct ring r;
        int pfd[2];
        static char c[N], data[N];
        if (ring_init(&r, N, 0) < 0 || pipe(pfd) < 0)
            return 1;
        fcntl(pfd[1], F_SETPIPE_SZ, 1 << 16);
        for (int i = 0; i < N; i++)
            queue(&r, IORING_OP_READ, pfd[0], &c[i], 1, 0, i);
        res("submit reads", enter(r.fd, N, 0, 0, NULL, 0));
        memset(data, 'x', N);
        res("write", write(pfd[1], data, N));
        unsigned got = 0;
        while (got < N) {
            long n = enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
            if (n < 0)
                break;
            unsigned head = *r.cq_head, tail = *r.cq_tail;
            for (; head != tail; head++)
                got += r.cqes[head & *r.cq_mask].res == 1;
            *r.cq_head = head;
        }
        printf("reads done: %u\n", got);
        for (int i = 0; i < N; i++)
            queue(&r, IORING_OP_ASYNC_CANCEL, -1, (void *)(long)i, 0, 0, i);
        res("cancels", enter(r.fd, N, 0, 0, NULL, 0));
        return 0;
    }
    if (argc > 2 && !strcmp(argv[2], "hostile")) {
        hostile();
        printf("done\n");
        return 0;
    }
    need_proc();
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    int disabled = -1;
    if (f) {
        if (fscanf(f, "%d", &disabled) != 1)
            disabled = -2;
        fclose(f);
    }
    printf("io_uring_disabled: %d\n", disabled);
    setup_checks();
    io_checks();
    path_checks();
    poll_checks();
    timeout_checks();
    eventfd_checks();
    overflow_checks();
    cred_checks();
    printf("done\n");
    return 0;
}
