/* The n_tty line discipline on a pty pair: termios defaults, canonical
 * editing and its echoes, input and output processing, VMIN/VTIME, flow
 * control, FIONREAD/TCFLSH, window size, mode switches.
 * Input is written to the master and read on the slave; echoes and output
 * are read back from the master until it stays quiet for a while (Linux
 * moves pty data through a worker, so nothing is there at once). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <asm/termbits.h>

static int m, s;

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
        else if (c == '\t') printf("\\t");
        else if (c == '\b') printf("\\b");
        else if (c == '"' || c == '\\') printf("\\%c", c);
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

static void wrote(const char *label, ssize_t n)
{
    if (n < 0)
        printf("%s: -1 %s\n", label, strerrorname_np(errno));
    else
        printf("%s: %zd\n", label, n);
}

static void put(const char *str) { write(m, str, strlen(str)); }
static void settle(void) { usleep(100000); }

static void line(const char *label)
{
    char b[256];
    show(label, b, read(s, b, sizeof b));
}

static void echoed(const char *label)
{
    char b[4096];
    show(label, b, slurp(m, b, sizeof b));
}

static void slave_raw_read(const char *label)
{
    char b[256];
    show(label, b, slurp(s, b, sizeof b));
}

static struct termios2 get(void)
{
    struct termios2 t;
    ioctl(s, TCGETS2, &t);
    return t;
}

static void set(struct termios2 t) { ioctl(s, TCSETS2, &t); }

static void lflags(tcflag_t on, tcflag_t off)
{
    struct termios2 t = get();
    t.c_lflag = (t.c_lflag | on) & ~off;
    set(t);
}

static void iflags(tcflag_t on, tcflag_t off)
{
    struct termios2 t = get();
    t.c_iflag = (t.c_iflag | on) & ~off;
    set(t);
}

static void oflags(tcflag_t value)
{
    struct termios2 t = get();
    t.c_oflag = value;
    set(t);
}

static void cc(int idx, int value)
{
    struct termios2 t = get();
    t.c_cc[idx] = value;
    set(t);
}

static double since(struct timespec a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
}

static void timed_read(const char *label, size_t n, double lo, double hi)
{
    char b[64];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ssize_t k = read(s, b, n);
    double dt = since(t0);
    show(label, b, k);
    printf("  took %s\n", dt < lo ? "too little" : dt > hi ? "too long" : "the expected time");
}

static void defaults(void)
{
    struct termios2 t = get(), mt;
    printf("iflag %o oflag %o cflag %o lflag %o line %d\n", t.c_iflag, t.c_oflag, t.c_cflag,
           t.c_lflag, t.c_line);
    printf("cc");
    for (int i = 0; i < 17; i++)
        printf(" %02x", t.c_cc[i]);
    printf("\nspeeds %u %u\n", t.c_ispeed, t.c_ospeed);
    ioctl(m, TCGETS2, &mt);
    printf("master sees the slave's termios: %s\n", memcmp(&t, &mt, sizeof t) ? "no" : "yes");
    struct termio old;
    ioctl(s, TCGETA, &old);
    printf("termio: iflag %o lflag %o cc[VEOF] %d\n", old.c_iflag, old.c_lflag, old.c_cc[VEOF]);
}

static void canonical(void)
{
    put("hello\n");
    line("line");
    echoed("echo");
    put("abc");
    settle();
    int n = -1;
    ioctl(s, FIONREAD, &n);
    struct pollfd p = {s, POLLIN, 0};
    printf("partial line: FIONREAD %d, poll %d\n", n, poll(&p, 1, 0));
    put("\n");
    settle();
    ioctl(s, FIONREAD, &n);
    printf("complete line: FIONREAD %d\n", n);
    line("line");
    echoed("echo");
    put("abcdef\n");
    char b[8];
    show("read 3 of a line", b, read(s, b, 3));
    line("rest");
    echoed("echo");
}

static void editing(void)
{
    static const char *cases[][2] = {
        {"erase", "abc\177d\n"},
        {"kill", "xyz\025ok\n"},
        {"werase", "one two\027three\n"},
        {"werase punctuation", "a b.c-- \027X\n"},
        {"lnext", "\026\003x\n"},
        {"reprint", "ab\022cd\n"},
        {"tab erase", "a\tb\177\177\n"},
        {"tab after tab", "\tab\tc\177\177\n"},
        {"control erase", "\001\177\n"},
        {"erase empty", "\177\177z\n"},
        {"eol2 off", "q\n"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put(cases[i][1]);
        line(cases[i][0]);
        echoed("  echo");
    }
    lflags(0, ECHOE);
    put("ab\177\n");
    line("-echoe erase");
    echoed("  echo");
    lflags(ECHOE, ECHOKE);
    put("ab\025c\n");
    line("-echoke kill");
    echoed("  echo");
    lflags(0, ECHOK);
    put("ab\025c\n");
    line("-echok kill");
    echoed("  echo");
    lflags(ECHOK | ECHOKE | ECHOPRT, 0);
    put("abc\177\177d\n");
    line("echoprt");
    echoed("  echo");
    lflags(0, ECHOPRT | ECHOCTL);
    put("\001\177x\n");
    line("-echoctl");
    echoed("  echo");
    lflags(ECHOCTL, IEXTEN);
    put("ab\027c\026\n");
    line("-iexten (no werase, no lnext)");
    echoed("  echo");
    lflags(IEXTEN, 0);
    iflags(IUTF8, 0);
    put("a\xc3\xa9\177\n");
    line("iutf8 erase");
    echoed("  echo");
    iflags(0, IUTF8);
    put("a\xc3\xa9\177\n");
    line("-iutf8 erase");
    echoed("  echo");
}

static void line_ends(void)
{
    char b[16];
    put("abc\004");
    line("eof after text");
    put("\004");
    show("eof alone", b, read(s, b, sizeof b));
    echoed("  echo");
    cc(VEOL, '!');
    put("ab!cd\n");
    line("eol");
    line("after eol");
    echoed("  echo");
    cc(VEOL, 0);
    cc(VEOF, 0);
    put("x\004\n");
    line("veof disabled");
    echoed("  echo");
    cc(VEOF, 4);
}

static void input_maps(void)
{
    put("a\r");
    line("icrnl");
    echoed("  echo");
    iflags(0, ICRNL);
    put("a\rb\n");
    line("-icrnl");
    echoed("  echo");
    iflags(IGNCR, 0);
    put("a\rb\n");
    line("igncr");
    echoed("  echo");
    iflags(ISTRIP | ICRNL, IGNCR);
    put("\xe1\n");
    line("istrip");
    echoed("  echo");
    iflags(0, ISTRIP);
    lflags(0, ECHO);
    put("secret\n");
    line("-echo");
    echoed("  echo");
    lflags(ECHONL, 0);
    put("quiet\n");
    line("-echo echonl");
    echoed("  echo");
    lflags(ECHO, ECHONL);
    lflags(0, ICANON);
    iflags(INLCR, 0);
    put("x\ny");
    slave_raw_read("inlcr, raw");
    echoed("  echo");
    iflags(0, INLCR);
    lflags(ICANON, 0);
}

static void output(void)
{
    static const struct { const char *name; tcflag_t oflag; const char *data; } cases[] = {
        {"opost onlcr", OPOST | ONLCR, "x\ny\n"},
        {"opost", OPOST, "x\ny\n"},
        {"ocrnl", OPOST | OCRNL, "a\rb"},
        {"onocr", OPOST | ONOCR, "ab\r\rc"},
        {"-opost", ONLCR, "x\ny\tz"},
        {"xtabs", OPOST | XTABS, "\rab\tc\td"},
        {"olcuc", OPOST | OLCUC | ONLCR, "abc\n"},
        {"onlcr onlret", OPOST | ONLCR | ONLRET, "ab\ncd\n"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        oflags(cases[i].oflag);
        write(s, cases[i].data, strlen(cases[i].data));
        echoed(cases[i].name);
    }
    oflags(OPOST | ONLCR);
}

static void noncanonical(void)
{
    char b[64];
    lflags(0, ICANON | ECHO);
    cc(VMIN, 0);
    cc(VTIME, 0);
    show("min 0 time 0, nothing", b, read(s, b, sizeof b));
    cc(VTIME, 3);
    timed_read("min 0 time 3, nothing", sizeof b, 0.25, 2.0);
    put("abc");
    settle();
    timed_read("min 0 time 3, data", sizeof b, 0, 0.25);
    cc(VMIN, 2);
    cc(VTIME, 0);
    put("abc");
    settle();
    show("min 2 time 0", b, read(s, b, sizeof b));
    put("xyz");
    settle();
    show("min 2 time 0, read 1", b, read(s, b, 1));
    show("min 2 time 0, read 2", b, read(s, b, 2));
    cc(VMIN, 5);
    cc(VTIME, 3);
    put("ab");
    settle();
    timed_read("min 5 time 3, 2 bytes", sizeof b, 0.25, 2.0);
    put("abcdef");
    settle();
    timed_read("min 5 time 3, 6 bytes", sizeof b, 0, 0.25);
    cc(VMIN, 1);
    cc(VTIME, 0);
    int fl = fcntl(s, F_GETFL);
    fcntl(s, F_SETFL, fl | O_NONBLOCK);
    show("nonblocking, nothing", b, read(s, b, sizeof b));
    fcntl(s, F_SETFL, fl);
    struct pollfd p = {s, POLLIN, 0};
    cc(VMIN, 3);
    put("ab");
    settle();
    printf("poll with min 3 and 2 bytes: %d\n", poll(&p, 1, 0));
    put("c");
    settle();
    printf("poll with min 3 and 3 bytes: %d\n", poll(&p, 1, 0));
    show("read", b, read(s, b, sizeof b));
    cc(VMIN, 1);
    put("partial");
    settle();
    lflags(ICANON, 0);
    line("raw data becomes a line");
    put("half");
    settle();
    lflags(0, ICANON);
    show("a half line becomes raw data", b, read(s, b, sizeof b));
    lflags(ICANON, 0);
    put("done\004");
    settle();
    lflags(0, ICANON);
    show("veof stays as a NUL", b, read(s, b, sizeof b));
    lflags(ICANON | ECHO, 0);
    echoed("echo");
}

static void flow(void)
{
    int fl = fcntl(s, F_GETFL);
    fcntl(s, F_SETFL, fl | O_NONBLOCK);
    put("\023");
    settle();
    wrote("stopped by ^S: write", write(s, "out", 3));
    struct pollfd p = {s, POLLOUT, 0};
    printf("  poll POLLOUT %d\n", poll(&p, 1, 0));
    put("\021");
    settle();
    wrote("started by ^Q: write", write(s, "out", 3));
    echoed("  master");
    ioctl(s, TCXONC, TCOOFF);
    wrote("tcoff: write", write(s, "x", 1));
    put("\021");
    settle();
    wrote("^Q after tcoff: write", write(s, "x", 1));
    ioctl(s, TCXONC, TCOON);
    wrote("tcoon: write", write(s, "y", 1));
    echoed("  master");
    iflags(IXANY, 0);
    put("\023");
    settle();
    wrote("ixany stopped: write", write(s, "x", 1));
    put("z\n");
    settle();
    wrote("ixany restarted: write", write(s, "w", 1));
    fcntl(s, F_SETFL, fl);
    line("  line");
    echoed("  master");
    iflags(0, IXON | IXANY);
    put("\023\021\n");
    line("-ixon: ^S ^Q are data");
    echoed("  master");
    iflags(IXON, 0);
    ioctl(s, TCXONC, TCIOFF);
    ioctl(s, TCXONC, TCION);
    echoed("tcioff tcion");
}

static void queues(void)
{
    int n = -1;
    put("l1\nl2\n");
    settle();
    ioctl(s, FIONREAD, &n);
    printf("FIONREAD %d\n", n);
    ioctl(s, TCFLSH, TCIFLUSH);
    ioctl(s, FIONREAD, &n);
    printf("after TCIFLUSH: %d\n", n);
    echoed("echo");
    ioctl(s, TIOCOUTQ, &n);
    printf("TIOCOUTQ %d\n", n);
    wrote("TCFLSH 7", ioctl(s, TCFLSH, 7));
    wrote("TCXONC 9", ioctl(s, TCXONC, 9));
    printf("tcdrain: %d\n", ioctl(s, TCSBRK, 1));
    printf("tcsendbreak: %d\n", ioctl(s, TCSBRK, 0));
    struct winsize w = {30, 100, 0, 0}, r;
    ioctl(m, TIOCSWINSZ, &w);
    ioctl(s, TIOCGWINSZ, &r);
    printf("winsize %dx%d\n", r.ws_row, r.ws_col);
    int d = -1;
    ioctl(s, TIOCGETD, &d);
    printf("line discipline %d\n", d);
    struct termios2 t = get();
    t.c_cflag = (t.c_cflag & ~CSIZE) | CS7 | PARENB;
    set(t);
    t = get();
    printf("pty cflag keeps cs8, no parity: %s\n", (t.c_cflag & (CSIZE | PARENB)) == CS8 ? "yes" : "no");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) {
        perror("pty");
        return 1;
    }
    s = open(ptsname(m), O_RDWR | O_NOCTTY);
    defaults();
    canonical();
    editing();
    line_ends();
    input_maps();
    output();
    noncanonical();
    flow();
    queues();
    printf("done\n");
    return 0;
}
