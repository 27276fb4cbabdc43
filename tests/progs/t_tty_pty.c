/* Unix 98 ptys: posix_openpt/grantpt/unlockpt/ptsname, the slave lock,
 * what each side reads and writes, EIO on the master once every slave is
 * closed, TIOCGPTPEER, the master's close (hangup, name gone), packet
 * mode, and which ioctls belong to which side.  Pty numbers are the
 * host's, so they are only compared, never printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

static const char *rc(long r)
{
    static char buf[64];
    if (r < 0)
        snprintf(buf, sizeof buf, "-1 %s", strerrorname_np(errno));
    else
        snprintf(buf, sizeof buf, "%ld", r);
    return buf;
}

static void show(const char *label, const char *b, ssize_t n)
{
    printf("%s: ", label);
    if (n < 0) {
        printf("-1 %s\n", strerrorname_np(errno));
        return;
    }
    printf("%zd \"", n);
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = b[i];
        if (c == '\n') printf("\\n");
        else if (c == '\r') printf("\\r");
        else if (c >= 32 && c < 127) putchar(c);
        else printf("\\x%02x", c);
    }
    printf("\"\n");
}

static ssize_t slurp(int fd, char *b, size_t cap)
{
    size_t n = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 150) <= 0 || !(p.revents & POLLIN))
            break;
        ssize_t k = read(fd, b + n, cap - n);
        if (k <= 0)
            break;
        n += k;
    }
    return n;
}

static int revents(int fd, short events)
{
    struct pollfd p = {fd, events, 0};
    poll(&p, 1, 0);
    return p.revents;
}

static void nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

int main(void)
{
    char b[256], name[64];
    setvbuf(stdout, NULL, _IONBF, 0);

    int m = posix_openpt(O_RDWR | O_NOCTTY);
    printf("posix_openpt: %s, isatty %d\n", m >= 0 ? "ok" : rc(-1), isatty(m));
    struct stat st;
    fstat(m, &st);
    printf("master is /dev/ptmx's device: %s\n", S_ISCHR(st.st_mode) && major(st.st_rdev) == 5 && minor(st.st_rdev) == 2 ? "yes" : "no");
    printf("grantpt: %s\n", rc(grantpt(m)));
    strcpy(name, ptsname(m));
    unsigned n = 99;
    ioctl(m, TIOCGPTN, &n);
    char want[64];
    snprintf(want, sizeof want, "/dev/pts/%u", n);
    printf("ptsname is /dev/pts/<TIOCGPTN>: %s\n", strcmp(name, want) ? "no" : "yes");
    int lk = -1;
    ioctl(m, TIOCGPTLCK, &lk);
    printf("locked: %d, open: %s\n", lk, rc(open(name, O_RDWR | O_NOCTTY)));
    printf("unlockpt: %s", rc(unlockpt(m)));
    ioctl(m, TIOCGPTLCK, &lk);
    printf(", locked: %d\n", lk);
    nonblock(m, 1);
    show("master read, slave never opened", b, read(m, b, sizeof b));
    printf("master poll: %#x\n", revents(m, POLLIN | POLLOUT));

    int s = open(name, O_RDWR | O_NOCTTY);
    fstat(s, &st);
    printf("slave: isatty %d, major %d, minor is the pty number: %s, mode %o\n", isatty(s),
           major(st.st_rdev), minor(st.st_rdev) == n ? "yes" : "no", st.st_mode & 07777);
    errno = 0;
    char *sn = ptsname(s);
    printf("ptsname of the slave: %s %s\n", sn ? "a name" : "NULL", strerrorname_np(errno));
    printf("TIOCGPTN on the slave: %s\n", rc(ioctl(s, TIOCGPTN, &n)));
    printf("grantpt on the slave: %s\n", rc(grantpt(s)));
    printf("unlockpt on the slave: %s\n", rc(unlockpt(s)));
    struct stat d;
    stat("/dev/pts", &d);
    printf("/dev/pts is devpts: %s\n", d.st_dev == st.st_dev ? "yes" : "no");

    write(s, "ping\n", 5);
    show("master reads the slave's output", b, slurp(m, b, sizeof b));
    write(m, "pong\n", 5);
    show("slave reads the master's input", b, read(s, b, sizeof b));
    show("master reads the echo", b, slurp(m, b, sizeof b));
    printf("master poll when idle: %#x\n", revents(m, POLLIN | POLLOUT));
    write(s, "x", 1);
    usleep(100000);
    printf("master poll with output: %#x\n", revents(m, POLLIN | POLLOUT));
    int q = -1;
    ioctl(m, FIONREAD, &q);
    printf("master FIONREAD: %d\n", q);
    slurp(m, b, sizeof b);

    close(s);
    show("master read, every slave closed", b, read(m, b, sizeof b));
    printf("master poll: %#x\n", revents(m, POLLIN | POLLOUT));
    s = open(name, O_RDWR | O_NOCTTY);
    show("master read, slave open again", b, read(m, b, sizeof b));
    write(s, "last\n", 5);
    close(s);
    usleep(100000);
    show("master read, data then closed", b, read(m, b, sizeof b));
    show("  then", b, read(m, b, sizeof b));

    int p = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    struct stat ps;
    fstat(p, &ps);
    printf("TIOCGPTPEER: %s, the slave: %s\n", p >= 0 ? "a fd" : rc(-1), ps.st_rdev == st.st_rdev ? "yes" : "no");
    int ap = ioctl(m, TIOCGPTPEER, O_RDWR | O_APPEND | O_NOCTTY);
    printf("TIOCGPTPEER with O_APPEND: %s\n", ap >= 0 ? "a fd" : rc(-1));
    close(ap);
    int second = open(name, O_RDWR | O_NOCTTY);
    printf("second slave open: %s\n", second >= 0 ? "ok" : rc(-1));
    close(second);

    struct winsize w = {25, 81, 0, 0}, r = {0};
    ioctl(p, TIOCSWINSZ, &w);
    ioctl(m, TIOCGWINSZ, &r);
    printf("winsize set on the slave, read on the master: %dx%d\n", r.ws_row, r.ws_col);
    struct termios t;
    tcgetattr(m, &t);
    t.c_lflag &= ~ECHO;
    tcsetattr(m, TCSANOW, &t);
    tcgetattr(p, &t);
    printf("echo cleared through the master: %s\n", t.c_lflag & ECHO ? "no" : "yes");
    t.c_lflag |= ECHO;
    tcsetattr(p, TCSANOW, &t);
    printf("tcgetpgrp of the master (no session): %s\n", rc(tcgetpgrp(m)));
    printf("TIOCNOTTY on the master: %s\n", rc(ioctl(m, TIOCNOTTY)));

    /* packet mode */
    int on = 1;
    printf("TIOCPKT: %s", rc(ioctl(m, TIOCPKT, &on)));
    int got = 0;
    ioctl(m, TIOCGPKT, &got);
    printf(", TIOCGPKT %d\n", got);
    write(p, "x", 1);
    usleep(100000);
    show("packet data", b, read(m, b, sizeof b));
    tcflush(p, TCIFLUSH);
    usleep(100000);
    printf("packet poll: %#x\n", revents(m, POLLIN | POLLPRI));
    show("packet status after TCIFLUSH", b, read(m, b, sizeof b));
    tcflow(p, TCOOFF);
    usleep(100000);
    show("packet status after TCOOFF", b, read(m, b, sizeof b));
    tcflow(p, TCOON);
    usleep(100000);
    show("packet status after TCOON", b, read(m, b, sizeof b));
    tcgetattr(p, &t);
    t.c_iflag &= ~IXON;
    tcsetattr(p, TCSANOW, &t);
    usleep(100000);
    show("packet status after -ixon", b, read(m, b, sizeof b));
    t.c_iflag |= IXON;
    tcsetattr(p, TCSANOW, &t);
    usleep(100000);
    show("packet status after ixon", b, read(m, b, sizeof b));
    on = 0;
    ioctl(m, TIOCPKT, &on);
    show("no packet mode", b, read(m, b, sizeof b));

    /* the master goes away */
    nonblock(m, 0);
    close(m);
    show("slave read after the master closed", b, read(p, b, sizeof b));
    show("slave write", b, write(p, "x", 1));
    printf("slave poll: %#x\n", revents(p, POLLIN | POLLOUT));
    printf("slave name: %s\n", rc(open(name, O_RDWR | O_NOCTTY)));
    printf("tcgetattr after hangup: %s\n", rc(tcgetattr(p, &t)));
    close(p);

    /* two pairs are independent */
    int m1 = posix_openpt(O_RDWR | O_NOCTTY), m2 = posix_openpt(O_RDWR | O_NOCTTY);
    grantpt(m1);
    unlockpt(m1);
    grantpt(m2);
    unlockpt(m2);
    char n1[64], n2[64];
    ptsname_r(m1, n1, sizeof n1);
    ptsname_r(m2, n2, sizeof n2);
    printf("two ptys have two names: %s\n", strcmp(n1, n2) ? "yes" : "no");
    int s1 = open(n1, O_RDWR | O_NOCTTY), s2 = open(n2, O_RDWR | O_NOCTTY);
    write(m1, "one\n", 4);
    write(m2, "two\n", 4);
    show("first slave", b, read(s1, b, sizeof b));
    show("second slave", b, read(s2, b, sizeof b));
    printf("done\n");
    return 0;
}
