/* t_uevent DIR: a NETLINK_KOBJECT_UEVENT listener on group 1 hears a loop
 * device bound to a file in DIR and unbound again: two "change" uevents of
 * the disk (loop_configure and __loop_clr_fd send one each), printed with
 * their variables in order, SEQNUM and DISKSEQ left out; then whether the
 * sequence numbers follow each other and /sys/kernel/uevent_seqnum says the
 * last (when mounted).  Needs root. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static long show(int s)
{
    char buf[4096];
    struct pollfd p = {s, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) {
        printf("no uevent\n");
        return -1;
    }
    ssize_t n = recv(s, buf, sizeof buf - 1, 0);
    long seq = -1;
    if (n <= 0)
        return -1;
    buf[n] = 0;
    printf("%s:", buf);
    for (char *w = buf + strlen(buf) + 1; w < buf + n; w += strlen(w) + 1) {
        if (!strncmp(w, "SEQNUM=", 7))
            seq = atol(w + 7);
        else if (strncmp(w, "DISKSEQ=", 8))
            printf(" %s", w);
    }
    printf("\n");
    return seq;
}

int main(int argc, char **argv)
{
    char img[4096], dev[64];
    int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1};
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("uevent socket");
        return 1;
    }
    snprintf(img, sizeof img, "%s/uevent.img", argv[1]);
    int f = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (f < 0 || ftruncate(f, 1 << 20) < 0) {
        perror(img);
        return 1;
    }
    int ctl = open("/dev/loop-control", O_RDWR);
    int num = ioctl(ctl, LOOP_CTL_GET_FREE);
    snprintf(dev, sizeof dev, "/dev/loop%d", num);
    int d = open(dev, O_RDWR);
    if (num < 0 || d < 0 || ioctl(d, LOOP_SET_FD, f) < 0) {
        perror("bind");
        return 1;
    }
    long a = show(s);
    ioctl(d, LOOP_CLR_FD, 0);
    long b = show(s);
    printf("sequence follows: %d\n", a > 0 && b == a + 1);
    FILE *q = fopen("/sys/kernel/uevent_seqnum", "r");
    long last = -1;
    if (q && fscanf(q, "%ld", &last) == 1)
        printf("uevent_seqnum is the last: %d\n", last == b);
    unlink(img);
    printf("done\n");
    return 0;
}
