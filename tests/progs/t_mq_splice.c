/* POSIX message queues; splice, tee and copy_file_range.  Deterministic. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argc > 1 ? argv[1] : ".";
    if (argc > 2 && strcmp(argv[2], "keep") == 0) {     /* leave a queue behind */
        mqd_t k = mq_open("/umlpy_keep", O_CREAT | O_RDWR, 0640, NULL);
        mq_send(k, "kept", 4, 1);
        return k < 0;
    }
    mq_unlink("/umlpy_t");
    struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = 64};
    mqd_t q = mq_open("/umlpy_t", O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
    printf("mq_open: %d\n", q >= 0);
    mqd_t q2 = mq_open("/umlpy_t", O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
    printf("exclusive again: %d %s\n", q2, en(q2));
    mq_send(q, "low", 4, 1);
    mq_send(q, "high", 5, 9);
    mq_send(q, "mid", 4, 5);
    struct mq_attr cur;
    mq_getattr(q, &cur);
    printf("curmsgs=%ld maxmsg=%ld msgsize=%ld\n", cur.mq_curmsgs, cur.mq_maxmsg, cur.mq_msgsize);
    char buf[64];
    unsigned prio;
    for (int i = 0; i < 3; i++) {
        ssize_t n = mq_receive(q, buf, sizeof buf, &prio);
        printf("receive: %zd %s prio=%u\n", n, buf, prio);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    ssize_t n = mq_timedreceive(q, buf, sizeof buf, &prio, &ts);
    printf("timed receive on empty: %zd %s\n", n, en(n));
    pid_t c = fork();
    if (c == 0) {
        mqd_t cq = mq_open("/umlpy_t", O_WRONLY);
        usleep(20000);
        mq_send(cq, "child", 6, 3);
        _exit(0);
    }
    n = mq_receive(q, buf, sizeof buf, &prio);
    waitpid(c, NULL, 0);
    printf("blocking receive: %zd %s prio=%u\n", n, buf, prio);
    printf("unlink: %d, again: %d %s\n", mq_unlink("/umlpy_t"), mq_unlink("/umlpy_t"), strerrorname_np(errno));
    mq_close(q);

    /* splice / tee / copy_file_range */
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/cfr_a", dir);
    snprintf(b, sizeof b, "%s/cfr_b", dir);
    int fa = open(a, O_CREAT | O_RDWR | O_TRUNC, 0644);
    write(fa, "0123456789abcdef", 16);
    int fb = open(b, O_CREAT | O_RDWR | O_TRUNC, 0644);
    loff_t oin = 4;
    ssize_t r = copy_file_range(fa, &oin, fb, NULL, 6, 0);
    pread(fb, buf, 16, 0);
    printf("copy_file_range: %zd off_in=%lld %.6s\n", r, (long long)oin, buf);
    /* generic_copy_file_checks: overlap in one file, a wrapping range, past the largest file */
    loff_t i0 = 0, o0 = 4;
    r = copy_file_range(fa, &i0, fa, &o0, 8, 0);
    printf("overlapping copy: %zd %s\n", r, r < 0 ? strerrorname_np(errno) : "");
    o0 = 1;
    r = copy_file_range(fa, NULL, fb, &o0, (size_t)-1, 0);
    printf("wrapping length: %zd %s\n", r, r < 0 ? strerrorname_np(errno) : "");
    i0 = 0, o0 = 0x7fffffffffffffffLL;
    r = copy_file_range(fa, &i0, fb, &o0, 4, 0);
    printf("past the largest file: %zd %s\n", r, r < 0 ? strerrorname_np(errno) : "");
    i0 = 100, o0 = 0;
    printf("from past the end: %zd, file position %lld\n", copy_file_range(fa, &i0, fb, &o0, 4, 0),
           (long long)lseek(fb, 0, SEEK_CUR));
    int p[2], p2[2];
    pipe(p);
    pipe(p2);
    loff_t o = 10;
    r = splice(fa, &o, p[1], NULL, 6, 0);
    printf("splice file->pipe: %zd off=%lld\n", r, (long long)o);
    r = tee(p[0], p2[1], 100, 0);
    printf("tee: %zd\n", r);
    r = splice(p[0], NULL, fb, NULL, 100, 0);
    memset(buf, 0, sizeof buf);
    pread(fb, buf, 16, 0);
    printf("splice pipe->file: %zd file=%s\n", r, buf);
    n = read(p2[0], buf, sizeof buf);
    printf("tee copy: %zd %.6s\n", n, buf);
    r = splice(fa, NULL, fb, NULL, 4, 0);
    printf("splice without a pipe: %zd %s\n", r, en(r));
    unlink(a);
    unlink(b);
    printf("done\n");
    return 0;
}
