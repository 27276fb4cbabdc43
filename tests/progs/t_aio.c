/* Linux native AIO through the raw syscalls (as libaio makes them):
   io_setup's ring in the caller's memory (magic, sizes, head and tail),
   PWRITE/PREAD/PWRITEV/PREADV/FSYNC/FDSYNC on a file and a read of a pipe
   holding data, their io_events (data, obj, res), io_getevents' min_nr,
   zero timeout and errors, events read straight from the ring, an
   eventfd signalled by IOCB_FLAG_RESFD, IOCB_CMD_POLL completing when the
   pipe gets data and cancelled by io_cancel (EINPROGRESS, then its event),
   io_submit's errors (EINVAL, EBADF, EFAULT), a fork's child without the
   context, io_destroy. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct ring {
    unsigned id, nr, head, tail, magic, compat, incompat, header_length;
    struct io_event events[];
};

static long rc(long r) { return r < 0 ? -errno : r; }
static long io_setup(unsigned n, aio_context_t *c) { return rc(syscall(SYS_io_setup, n, c)); }
static long io_destroy(aio_context_t c) { return rc(syscall(SYS_io_destroy, c)); }
static long io_submit(aio_context_t c, long n, struct iocb **p) { return rc(syscall(SYS_io_submit, c, n, p)); }
static long io_cancel(aio_context_t c, struct iocb *i, struct io_event *e)
{
    return rc(syscall(SYS_io_cancel, c, i, e));
}
static long io_getevents(aio_context_t c, long min, long n, struct io_event *e, struct timespec *t)
{
    return rc(syscall(SYS_io_getevents, c, min, n, e, t));
}

static struct iocb cb(int op, int fd, void *buf, size_t n, long long off, uint64_t data)
{
    struct iocb i;
    memset(&i, 0, sizeof i);
    i.aio_lio_opcode = op;
    i.aio_fildes = fd;
    i.aio_buf = (uintptr_t)buf;
    i.aio_nbytes = n;
    i.aio_offset = off;
    i.aio_data = data;
    return i;
}

static long submit1(aio_context_t c, struct iocb *i)
{
    struct iocb *p = i;
    return io_submit(c, 1, &p);
}

static int by_data(const void *a, const void *b)
{
    const struct io_event *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* the events in the order of their data: fsyncs complete from a workqueue
   on Linux, in any order */
static void show(struct io_event *e, long n)
{
    qsort(e, n, sizeof *e, by_data);
    for (long i = 0; i < n; i++)
        printf("  event data=%llu res=%lld res2=%lld obj-ok=%d\n", (unsigned long long)e[i].data,
               (long long)e[i].res, (long long)e[i].res2, e[i].obj != 0);
}

/* umlpy only (tests/test_aio.py): a read of an empty pipe is parked, not
   waited for in io_submit, and completes when data comes; the process
   then exits with another one parked and a context left alive */
static int parked(void)
{
    aio_context_t ctx = 0;
    struct timespec zero = {0, 0}, second = {1, 0};
    struct io_event ev[4];
    int p[2];
    char buf[8] = "";
    io_setup(4, &ctx);
    pipe(p);
    struct iocb rd = cb(IOCB_CMD_PREAD, p[0], buf, sizeof buf, 0, 1), more = rd;
    more.aio_data = 2;
    printf("submit a read of an empty pipe: %ld\n", submit1(ctx, &rd));
    printf("getevents: %ld\n", io_getevents(ctx, 0, 4, ev, &zero));
    printf("io_cancel of a read: %ld\n", io_cancel(ctx, &rd, ev));
    write(p[1], "late", 4);
    printf("getevents after a write: %ld\n", io_getevents(ctx, 1, 4, ev, &second));
    show(ev, 1);
    printf("read '%.4s'\n", buf);
    printf("another parked: %ld\n", submit1(ctx, &more));
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && strcmp(argv[2], "parked") == 0)
        return parked();
    if (argc > 1 && chdir(argv[1]) != 0)
        return 1;
    aio_context_t ctx = 0, bad = 0;
    struct timespec zero = {0, 0}, second = {1, 0};
    struct io_event ev[16];
    printf("io_setup 0: %ld\n", io_setup(0, &bad));
    bad = 1;
    printf("io_setup with a set id: %ld\n", io_setup(8, &bad));
    printf("io_setup bad pointer: %ld\n", io_setup(8, (aio_context_t *)8));
    printf("io_setup 128: %ld\n", io_setup(128, &ctx));
    struct ring *r = (struct ring *)ctx;
    printf("ring: id %u nr %u head %u tail %u magic %#x compat %u incompat %u header %u\n", r->id, r->nr,
           r->head, r->tail, r->magic, r->compat, r->incompat, r->header_length);
    aio_context_t small = 0;
    io_setup(1, &small);
    printf("ring of 1: nr %u id %u\n", ((struct ring *)small)->nr, ((struct ring *)small)->id);
    printf("io_destroy: %ld\n", io_destroy(small));
    printf("io_destroy again: %ld\n", io_destroy(small));

    /* a file: two writes in one submit, then reads back */
    int fd = open("aio.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    char a[] = "hello", b[] = "world", got1[8] = "", got2[8] = "";
    struct iocb w1 = cb(IOCB_CMD_PWRITE, fd, a, 5, 0, 1), w2 = cb(IOCB_CMD_PWRITE, fd, b, 5, 100, 2);
    struct iocb *ws[] = {&w1, &w2};
    printf("submit two writes: %ld\n", io_submit(ctx, 2, ws));
    printf("getevents min 2: %ld\n", io_getevents(ctx, 2, 16, ev, &second));
    show(ev, 2);
    printf("obj is the iocb: %d %d\n", ev[0].obj == (uintptr_t)&w1 || ev[0].obj == (uintptr_t)&w2,
           ev[0].obj != ev[1].obj);
    printf("ring head %u tail %u\n", r->head, r->tail);
    struct iocb r1 = cb(IOCB_CMD_PREAD, fd, got1, 5, 100, 3), r2 = cb(IOCB_CMD_PREAD, fd, got2, 8, 103, 4);
    struct iocb *rs[] = {&r1, &r2};
    printf("submit two reads: %ld\n", io_submit(ctx, 2, rs));
    /* read the events straight from the ring, as libaio's fast path */
    while (r->head != r->tail) {
        struct io_event *e = &r->events[r->head];
        printf("  from the ring: data=%llu res=%lld\n", (unsigned long long)e->data, (long long)e->res);
        r->head = (r->head + 1) % r->nr;
    }
    printf("read back: '%.5s' '%.8s'\n", got1, got2);
    printf("getevents with nothing, zero timeout: %ld\n", io_getevents(ctx, 0, 16, ev, &zero));
    printf("getevents min 1, zero timeout: %ld\n", io_getevents(ctx, 1, 16, ev, &zero));

    /* vectors, fsync, fdatasync */
    char v1[3] = "abc", v2[4] = "defg", back[7] = "";
    struct iovec wv[] = {{v1, 3}, {v2, 4}}, rv[] = {{back, 7}};
    struct iocb pw = cb(IOCB_CMD_PWRITEV, fd, wv, 2, 200, 5), pr = cb(IOCB_CMD_PREADV, fd, rv, 1, 200, 6);
    struct iocb fs = cb(IOCB_CMD_FSYNC, fd, 0, 0, 0, 7), fds = cb(IOCB_CMD_FDSYNC, fd, 0, 0, 0, 8);
    struct iocb *more[] = {&pw, &pr, &fs, &fds};
    printf("submit writev, readv, fsync, fdatasync: %ld\n", io_submit(ctx, 4, more));
    printf("getevents: %ld\n", io_getevents(ctx, 4, 16, ev, &second));
    show(ev, 4);
    printf("readv got '%.7s'\n", back);

    /* a pipe that holds data, an eventfd told of the completion */
    int p[2];
    pipe(p);
    write(p[1], "piped", 5);
    char pb[16] = "";
    int efd = eventfd(0, EFD_NONBLOCK);
    struct iocb pre = cb(IOCB_CMD_PREAD, p[0], pb, sizeof pb, 0, 9);
    pre.aio_flags = IOCB_FLAG_RESFD;
    pre.aio_resfd = efd;
    printf("read a pipe with data: %ld\n", submit1(ctx, &pre));
    printf("getevents: %ld\n", io_getevents(ctx, 1, 16, ev, &second));
    show(ev, 1);
    uint64_t count = 0;
    long got = rc(read(efd, &count, 8));
    printf("eventfd: %ld count %llu, pipe gave '%.5s'\n", got, (unsigned long long)count, pb);

    /* POLL: completes when the pipe gets data */
    struct iocb po = cb(IOCB_CMD_POLL, p[0], (void *)(uintptr_t)POLLIN, 0, 0, 10);
    printf("submit poll: %ld\n", submit1(ctx, &po));
    printf("getevents before data: %ld\n", io_getevents(ctx, 1, 16, ev, &zero));
    write(p[1], "x", 1);
    printf("getevents after data: %ld\n", io_getevents(ctx, 1, 16, ev, &second));
    show(ev, 1);
    char x;
    read(p[0], &x, 1);
    /* a poll cancelled: EINPROGRESS, then its event (nothing ready) */
    struct iocb pc = cb(IOCB_CMD_POLL, p[0], (void *)(uintptr_t)POLLIN, 0, 0, 11);
    printf("submit poll: %ld\n", submit1(ctx, &pc));
    printf("io_cancel: %ld\n", io_cancel(ctx, &pc, ev));
    printf("getevents: %ld\n", io_getevents(ctx, 1, 16, ev, &second));
    show(ev, 1);
    printf("io_cancel again: %ld\n", io_cancel(ctx, &pc, ev));
    printf("io_cancel of a done read: %ld\n", io_cancel(ctx, &r1, ev));

    /* io_submit's own errors */
    struct iocb e1 = cb(99, fd, a, 1, 0, 0), e2 = cb(IOCB_CMD_PREAD, 99, a, 1, 0, 0);
    struct iocb e3 = cb(IOCB_CMD_PREAD, fd, a, 1, 0, 0), e4 = cb(IOCB_CMD_FSYNC, p[0], 0, 0, 0, 0);
    struct iocb e5 = cb(IOCB_CMD_PREAD, fd, (void *)8, 1, 0, 0), e6 = cb(IOCB_CMD_PREAD, fd, a, 1, -1, 0);
    struct iocb e7 = cb(IOCB_CMD_PWRITE, p[0], a, 1, 0, 0), e8 = cb(IOCB_CMD_PREAD, fd, a, 1, 0, 0);
    e3.aio_reserved2 = 1;
    e8.aio_rw_flags = 0x10000;
    struct iocb *errs[] = {&e1, &e2, &e3, &e4, &e5, &e6, &e7, &e8};
    for (int i = 0; i < 8; i++)
        printf("bad iocb %d: %ld\n", i + 1, submit1(ctx, errs[i]));
    long n = io_getevents(ctx, 0, 16, ev, &zero);
    printf("their events: %ld\n", n);
    show(ev, n);
    struct iocb ok = cb(IOCB_CMD_PREAD, fd, got1, 1, 0, 12);
    struct iocb *pair[] = {&ok, &e1};
    printf("good then bad: %ld\n", io_submit(ctx, 2, pair));
    n = io_getevents(ctx, 1, 16, ev, &second);
    show(ev, n);
    printf("negative nr %ld\n", io_submit(ctx, -1, pair));
    printf("bad ctx %ld\n", io_submit(12345, 1, pair));
    printf("bad iocb pointer %ld\n", io_submit(ctx, 1, (struct iocb **)8));
    printf("getevents min > nr %ld\n", io_getevents(ctx, 2, 1, ev, &zero));
    printf("getevents bad ctx %ld\n", io_getevents(12345, 0, 1, ev, &zero));

    /* a fork's child has no context */
    pid_t c = fork();
    if (c == 0) {
        printf("child: getevents %ld\n", io_getevents(ctx, 0, 1, ev, &zero));
        printf("child: destroy %ld\n", io_destroy(ctx));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    /* READ_IMPLIES_EXEC leaves the ring's mapping as it is: aio's
       filesystem is mounted noexec (CVE-2016-10044) */
    c = fork();
    if (c == 0) {
        aio_context_t rie = 0;
        char line[512], perms[8] = "?";
        personality(READ_IMPLIES_EXEC);
        io_setup(1, &rie);
        FILE *maps = fopen("/proc/self/maps", "r");
        while (maps && fgets(line, sizeof line, maps))
            if (strstr(line, "[aio]"))
                sscanf(line, "%*x-%*x %7s", perms);
        printf("READ_IMPLIES_EXEC ring: %s\n", perms);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("io_destroy: %ld\n", io_destroy(ctx));
    printf("then getevents %ld\n", io_getevents(ctx, 0, 1, ev, &zero));
    unlink("aio.dat");
    printf("done\n");
    return 0;
}
