/* /dev/kmsg as systemd-journald and util-linux's dmesg use it: one record
   a read ("prio,seq,usec,flag;text\n"), seq numbers from 0 at boot, user
   space's lines written back with the user facility, unprintable bytes
   escaped, a buffer too small for a record EINVAL (the record skipped),
   SEEK_SET/SEEK_END, ESPIPE and EINVAL for other seeks, poll, EAGAIN at
   the end.  Guest only (the host's log is not deterministic): each check
   prints "ok NAME" or "FAIL NAME ...". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failed;

static void check(int cond, const char *name, const char *got)
{
    if (cond)
        printf("ok %s\n", name);
    else {
        printf("FAIL %s: %s\n", name, got);
        failed = 1;
    }
}

/* the next record's text (after ';'), its prio and seq; -errno on error */
static int next(int fd, char *text, size_t cap, unsigned *prio, unsigned long long *seq)
{
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0)
        return -errno;
    buf[n] = 0;
    unsigned long long usec;
    char flag;
    int off = 0;
    if (sscanf(buf, "%u,%llu,%llu,%c;%n", prio, seq, &usec, &flag, &off) != 4 || !off)
        return -1000;
    snprintf(text, cap, "%s", buf + off);
    return (int)n;
}

int main(void)
{
    char text[8192];
    unsigned prio;
    unsigned long long seq, last = 0;
    int r = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
    check(r >= 0, "open", strerror(errno));
    int rd = r;

    /* the whole log from its first record: seq 0, the banner, then one by one */
    int n = next(rd, text, sizeof text, &prio, &seq);
    check(n > 0 && seq == 0 && prio <= 7 && strncmp(text, "Linux version ", 14) == 0, "first record", text);
    int count = 1, ordered = 1;
    while ((n = next(rd, text, sizeof text, &prio, &last)) > 0) {
        ordered &= last == seq + 1;
        seq = last;
        count++;
    }
    check(n == -EAGAIN && count > 3 && ordered, "read to the end, EAGAIN", strerror(-n));

    /* a line from user space: the user facility, the default level 4 without <N> */
    int wr = open("/dev/kmsg", O_WRONLY);
    check(write(wr, "<6>t_kmsg says hello\n", 21) == 21, "write", strerror(errno));
    n = next(rd, text, sizeof text, &prio, &last);
    check(n > 0 && prio == (1 << 3 | 6) && last == seq + 1 && strcmp(text, "t_kmsg says hello\n") == 0,
          "own line, user.info", text);
    check(write(wr, "plain\tand\\ \xc3\xa9", 15) == 15, "write plain", strerror(errno));
    n = next(rd, text, sizeof text, &prio, &last);
    check(n > 0 && prio == (1 << 3 | 4) && strcmp(text, "plain\\x09and\\x5c \\xc3\\xa9\n") == 0,
          "default level, escaped", text);

    /* poll: nothing to read, then a line */
    struct pollfd p = {rd, POLLIN, 0};
    check(poll(&p, 1, 0) == 0, "poll at the end", "ready");
    write(wr, "<5>another", 10);
    check(poll(&p, 1, 0) == 1 && p.revents == POLLIN, "poll with a record", "not ready");

    /* too small a buffer: EINVAL, and the record is gone for this reader */
    char tiny[4];
    check(read(rd, tiny, sizeof tiny) < 0 && errno == EINVAL, "small buffer EINVAL", strerror(errno));
    check(read(rd, text, sizeof text) < 0 && errno == EAGAIN, "record skipped", strerror(errno));

    /* seeks */
    check(lseek(rd, 0, SEEK_SET) == 0 && next(rd, text, sizeof text, &prio, &seq) > 0 && seq == 0,
          "SEEK_SET", text);
    check(lseek(rd, 0, SEEK_END) == 0 && read(rd, text, sizeof text) < 0 && errno == EAGAIN,
          "SEEK_END", strerror(errno));
    check(lseek(rd, 1, SEEK_SET) < 0 && errno == ESPIPE, "offset ESPIPE", strerror(errno));
    check(lseek(rd, 0, SEEK_CUR) < 0 && errno == EINVAL, "SEEK_CUR EINVAL", strerror(errno));

    /* a line longer than LOG_LINE_MAX */
    static char big[2000];
    memset(big, 'x', sizeof big);
    check(write(wr, big, sizeof big) < 0 && errno == EINVAL, "long line EINVAL", strerror(errno));
    return failed;
}
