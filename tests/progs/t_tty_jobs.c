/* Sessions, process groups and job control on a pty: setsid/setpgid
 * rules, acquiring a controlling tty, SIGTTIN/SIGTTOU for background
 * groups (and EIO when ignored or orphaned), ^C ^Z ^\ and TIOCSIG to the
 * foreground group, SIGWINCH, orphaned stopped groups (SIGHUP+SIGCONT),
 * the session leader's exit and TIOCNOTTY, and the master's close.
 * The "top" process plays the terminal (the pty master); every other
 * process prints only while the others wait for it, so the output is
 * deterministic. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static char sname[64];
static int m, to_top[2], from_top[2], hup_pipe[2];
static volatile sig_atomic_t got_hup, got_cont, got_winch;

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

static const char *rc(long r)
{
    static char buf[64];
    if (r < 0)
        snprintf(buf, sizeof buf, "-1 %s", strerrorname_np(errno));
    else
        snprintf(buf, sizeof buf, "%ld", r);
    return buf;
}

static void report(const char *what, pid_t pid, int opts)
{
    int st;
    if (waitpid(pid, &st, opts) < 0)
        say("%s: waitpid -1 %s\n", what, strerrorname_np(errno));
    else if (WIFEXITED(st))
        say("%s: exited %d\n", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        say("%s: killed by SIG%s\n", what, sigabbrev_np(WTERMSIG(st)));
    else if (WIFSTOPPED(st))
        say("%s: stopped by SIG%s\n", what, sigabbrev_np(WSTOPSIG(st)));
    else if (WIFCONTINUED(st))
        say("%s: continued\n", what);
}

static void on_sig(int sig)
{
    if (sig == SIGHUP) got_hup = 1;
    if (sig == SIGCONT) got_cont = 1;
    if (sig == SIGWINCH) got_winch++;
}

static void catch(int sig)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_sig;
    sigaction(sig, &sa, NULL);
}

static void wait_for(volatile sig_atomic_t *a, volatile sig_atomic_t *b)
{
    for (int i = 0; i < 500 && !(*a && (!b || *b)); i++)
        usleep(10000);
}

static int open_pair(int *master, char *name)
{
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    if (*master < 0 || grantpt(*master) || unlockpt(*master))
        return -1;
    strcpy(name, ptsname(*master));
    return 0;
}

static void slurp_master(int fd)
{
    char b[1024];
    size_t n = 0;
    struct pollfd p = {fd, POLLIN, 0};
    while (n < sizeof b && poll(&p, 1, 150) > 0 && (p.revents & POLLIN)) {
        ssize_t k = read(fd, b + n, sizeof b - n);
        if (k <= 0)
            break;
        n += k;
    }
    if (!n)
        return;
    say("master reads \"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = b[i];
        if (c == '\r') say("\\r");
        else if (c == '\n') say("\\n");
        else if (c >= 32 && c < 127) say("%c", c);
        else say("\\x%02x", c);
    }
    say("\"\n");
}

/* -- setsid and setpgid --------------------------------------------------------- */

/* a child leading a session of its own, until *release is closed */
static pid_t session_child(int *release)
{
    int p[2], q[2];
    pipe(p);
    pipe(q);
    pid_t c = fork();
    if (c == 0) {
        setsid();
        close(p[1]);
        write(q[1], "s", 1);
        char x;
        read(p[0], &x, 1);
        _exit(0);
    }
    char x;
    read(q[0], &x, 1);
    close(p[0]);
    close(q[0]);
    close(q[1]);
    *release = p[1];
    return c;
}

static void ids(void)
{
    pid_t c = fork();
    if (c) {
        report("ids child", c, 0);
        return;
    }
    say("setsid: %s\n", setsid() == getpid() ? "a new session" : rc(-1));
    say("setsid again: %s\n", rc(setsid()));
    say("leader of its session and group: %s\n", getsid(0) == getpid() && getpgrp() == getpid() ? "yes" : "no");
    say("setpgid as session leader: %s\n", rc(setpgid(0, 0)));
    int p[2];
    pipe(p);
    pid_t g = fork();
    if (g == 0) {
        char x;
        close(p[1]);
        read(p[0], &x, 1);
        _exit(0);
    }
    say("setpgid child to its own group: %s\n", rc(setpgid(g, g)));
    say("child's group is its own: %s\n", getpgid(g) == g ? "yes" : "no");
    say("setpgid child back to mine: %s\n", rc(setpgid(g, getpid())));
    say("setpgid to a group nobody has: %s\n", rc(setpgid(g, 0x7ffffff0)));
    say("setpgid of my parent: %s\n", rc(setpgid(getppid(), getppid())));
    say("setpgid to a negative group: %s\n", rc(setpgid(0, -1)));
    int release;
    pid_t g2 = session_child(&release);
    say("setpgid of a child in another session: %s\n", rc(setpgid(g2, g2)));
    close(p[1]);
    close(release);
    waitpid(g, NULL, 0);
    waitpid(g2, NULL, 0);
    _exit(0);
}

/* -- the session ------------------------------------------------------------------- */

static void ask(char cmd)
{
    char c;
    write(to_top[1], &cmd, 1);
    read(from_top[0], &c, 1);
}

static pid_t bg_child(int fd_for_later)
{
    (void)fd_for_later;
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        signal(SIGTTOU, SIG_DFL);
        return 0;
    }
    setpgid(c, c);
    return c;
}

static void background(int s)
{
    char c;
    pid_t b = bg_child(s);
    if (!b) {
        read(s, &c, 1);
        _exit(9);
    }
    report("background read", b, WUNTRACED);
    kill(b, SIGKILL);
    report("  then", b, 0);

    if (!(b = bg_child(s))) {
        signal(SIGTTIN, SIG_IGN);
        say("background read, SIGTTIN ignored: %s\n", rc(read(s, &c, 1)));
        _exit(0);
    }
    report("  child", b, 0);
    if (!(b = bg_child(s))) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTTIN);
        sigprocmask(SIG_BLOCK, &set, NULL);
        say("background read, SIGTTIN blocked: %s\n", rc(read(s, &c, 1)));
        _exit(0);
    }
    report("  child", b, 0);

    if (!(b = bg_child(s))) {
        say("background write: %s\n", rc(write(s, "bg1\n", 4)));
        _exit(0);
    }
    report("  child", b, 0);
    struct termios t;
    tcgetattr(s, &t);
    t.c_lflag |= TOSTOP;
    tcsetattr(s, TCSANOW, &t);
    if (!(b = bg_child(s))) {
        write(s, "bg2\n", 4);
        _exit(9);
    }
    report("background write with tostop", b, WUNTRACED);
    kill(b, SIGKILL);
    report("  then", b, 0);
    if (!(b = bg_child(s))) {
        signal(SIGTTOU, SIG_IGN);
        say("background write with tostop, SIGTTOU ignored: %s\n", rc(write(s, "bg3\n", 4)));
        _exit(0);
    }
    report("  child", b, 0);
    t.c_lflag &= ~TOSTOP;
    tcsetattr(s, TCSANOW, &t);

    if (!(b = bg_child(s))) {
        tcsetpgrp(s, getpgrp());
        _exit(9);
    }
    report("background tcsetpgrp", b, WUNTRACED);
    kill(b, SIGKILL);
    report("  then", b, 0);
    if (!(b = bg_child(s))) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTTOU);
        sigprocmask(SIG_BLOCK, &set, NULL);
        say("background tcsetpgrp, SIGTTOU blocked: %s", rc(tcsetpgrp(s, getpgrp())));
        say(", foreground is mine: %s\n", tcgetpgrp(s) == getpgrp() ? "yes" : "no");
        say("  and back: %s\n", rc(tcsetpgrp(s, getppid())));
        _exit(0);
    }
    report("  child", b, 0);
    say("foreground is the leader's again: %s\n", tcgetpgrp(s) == getpid() ? "yes" : "no");
    say("tcsetpgrp to no group: %s\n", rc(tcsetpgrp(s, 0x7ffffff0)));
    /* a group of another session: a child's own (not the parent's, which
       is init's group 0 when the test runs under init) */
    int release;
    pid_t other = session_child(&release);
    say("tcsetpgrp to a group of another session: %s\n", rc(tcsetpgrp(s, other)));
    close(release);
    waitpid(other, NULL, 0);
    say("tcsetpgrp to -1: %s\n", rc(tcsetpgrp(s, -1)));
}

static void orphaned_read(int s)
{
    int p[2];
    pipe(p);
    pid_t e = fork();
    if (e == 0) {
        pid_t me = getpid();
        pid_t f = fork();
        if (f == 0) {
            setpgid(0, 0);
            signal(SIGTTOU, SIG_DFL);
            for (int i = 0; i < 500 && getppid() == me; i++)
                usleep(10000);
            char c, msg[128];
            int n = snprintf(msg, sizeof msg, "orphaned group read: %s\n", rc(read(s, &c, 1)));
            struct termios t;
            tcgetattr(s, &t);
            t.c_lflag |= TOSTOP;
            tcsetattr(s, TCSANOW, &t);
            n += snprintf(msg + n, sizeof msg - n, "orphaned group write with tostop: %s\n",
                          rc(write(s, "o\n", 2)));
            write(p[1], msg, n);
            _exit(0);
        }
        setpgid(f, f);
        _exit(0);
    }
    close(p[1]);
    report("orphaning parent", e, 0);
    char msg[256];
    ssize_t n = read(p[0], msg, sizeof msg);
    if (n > 0)
        fwrite(msg, 1, n, stdout);
    close(p[0]);
    struct termios t;
    tcgetattr(s, &t);
    t.c_lflag &= ~TOSTOP;
    tcsetattr(s, TCSANOW, &t);
}

static void foreground_signal(int s, const char *what, char cmd, int stop)
{
    pid_t g = fork();
    if (g == 0) {
        setpgid(0, 0);
        for (;;)
            pause();
    }
    setpgid(g, g);
    tcsetpgrp(s, g);
    ask(cmd);
    report(what, g, WUNTRACED);
    tcsetpgrp(s, getpgrp());
    if (stop) {
        kill(g, SIGCONT);
        report("  SIGCONT", g, WCONTINUED);
        kill(g, SIGKILL);
        report("  then", g, 0);
    }
}

static void winch(int s)
{
    int p[2], ready[2];
    pipe(p);
    pipe(ready);
    got_winch = 0;
    catch(SIGWINCH);
    pid_t g = fork();
    if (g == 0) {
        setpgid(0, 0);
        catch(SIGWINCH);
        write(ready[1], "r", 1);
        while (!got_winch)
            pause();
        write(p[1], "W", 1);
        _exit(0);
    }
    setpgid(g, g);
    tcsetpgrp(s, g);
    char c;
    read(ready[0], &c, 1);
    ask('w');
    say("foreground group got SIGWINCH: %s\n", read(p[0], &c, 1) == 1 ? "yes" : "no");
    report("  child", g, 0);
    tcsetpgrp(s, getpgrp());
    struct winsize w;
    ioctl(s, TIOCGWINSZ, &w);
    say("winsize %dx%d, background leader got SIGWINCH: %d\n", w.ws_row, w.ws_col, got_winch);
    signal(SIGWINCH, SIG_DFL);
}

static void orphaned_stopped(void)
{
    int p[2];
    pipe(p);
    pid_t h = fork();
    if (h == 0) {
        pid_t j = fork();
        if (j == 0) {
            setpgid(0, 0);
            catch(SIGHUP);
            catch(SIGCONT);
            kill(getpid(), SIGSTOP);
            wait_for(&got_hup, &got_cont);
            char msg[80];
            int n = snprintf(msg, sizeof msg, "orphaned stopped group: SIGHUP %d SIGCONT %d\n",
                             got_hup, got_cont);
            write(p[1], msg, n);
            _exit(0);
        }
        setpgid(j, j);
        report("stopped member", j, WUNTRACED);
        _exit(0);
    }
    close(p[1]);
    report("its parent", h, 0);
    char msg[128];
    ssize_t n = read(p[0], msg, sizeof msg);
    if (n > 0)
        fwrite(msg, 1, n, stdout);
    close(p[0]);
}

static void leader(void)
{
    signal(SIGTTOU, SIG_IGN);
    say("setsid: %s\n", setsid() == getpid() ? "ok" : "failed");
    int s = open(sname, O_RDWR);
    say("controlling tty: foreground is mine %s, session is mine %s\n",
        tcgetpgrp(s) == getpid() ? "yes" : "no", tcgetsid(s) == getpid() ? "yes" : "no");
    int t = open("/dev/tty", O_RDWR);
    say("/dev/tty: %s\n", t >= 0 ? "opened" : rc(-1));
    close(t);
    say("TIOCSCTTY on my own tty: %s\n", rc(ioctl(s, TIOCSCTTY, 0)));
    char n2[64];
    int m2;
    open_pair(&m2, n2);
    int s2 = open(n2, O_RDWR | O_NOCTTY);
    say("tcgetpgrp of another tty: %s\n", rc(tcgetpgrp(s2)));
    say("tcgetsid of another tty: %s\n", rc(tcgetsid(s2)));
    say("TIOCSCTTY with a controlling tty: %s\n", rc(ioctl(s2, TIOCSCTTY, 0)));
    close(s2);
    close(m2);
    ask('g');
    background(s);
    orphaned_read(s);
    foreground_signal(s, "^C", 'c', 0);
    foreground_signal(s, "^Z", 'z', 1);
    foreground_signal(s, "^\\", 'q', 0);
    foreground_signal(s, "TIOCSIG SIGINT on the master", 'i', 0);
    winch(s);
    orphaned_stopped();
    /* the session leader exits with a foreground group: it gets SIGHUP */
    int ready[2];
    pipe(ready);
    pid_t k = fork();
    if (k == 0) {
        setpgid(0, 0);
        catch(SIGHUP);
        write(ready[1], "r", 1);
        wait_for(&got_hup, NULL);
        const char *msg = got_hup ? "foreground group got SIGHUP when the leader exited\n"
                                  : "foreground group got no SIGHUP\n";
        write(hup_pipe[1], msg, strlen(msg));
        _exit(0);
    }
    setpgid(k, k);
    tcsetpgrp(s, k);
    char c;
    read(ready[0], &c, 1);
    write(to_top[1], "x", 1);
    _exit(0);
}

static void session(void)
{
    pipe(to_top);
    pipe(from_top);
    pipe(hup_pipe);
    if (open_pair(&m, sname)) {
        say("pty: %s\n", rc(-1));
        return;
    }
    pid_t l = fork();
    if (l == 0) {
        leader();
        _exit(0);
    }
    close(hup_pipe[1]);
    char cmd;
    while (read(to_top[0], &cmd, 1) == 1 && cmd != 'x') {
        if (cmd == 'g') {
            pid_t sid = 0;
            ioctl(m, TIOCGSID, &sid);
            say("master: foreground group is the leader's %s, session is the leader's %s\n",
                tcgetpgrp(m) == l ? "yes" : "no", sid == l ? "yes" : "no");
        } else if (cmd == 'w') {
            struct winsize w = {40, 120, 0, 0};
            ioctl(m, TIOCSWINSZ, &w);
        } else if (cmd == 'i') {
            ioctl(m, TIOCSIG, SIGINT);
        } else {
            slurp_master(m);
            char key = cmd == 'c' ? 3 : cmd == 'z' ? 26 : 28;
            write(m, &key, 1);
        }
        write(from_top[1], "k", 1);
    }
    report("session leader", l, 0);
    char msg[128];
    ssize_t n = read(hup_pipe[0], msg, sizeof msg);
    if (n > 0)
        fwrite(msg, 1, n, stdout);
    slurp_master(m);
    close(m);
}

/* -- TIOCNOTTY ----------------------------------------------------------------------- */

static void notty(void)
{
    pid_t n = fork();
    if (n) {
        report("notty child", n, 0);
        return;
    }
    setsid();
    int pm;
    char name[64];
    open_pair(&pm, name);
    int s = open(name, O_RDWR);
    catch(SIGHUP);
    catch(SIGCONT);
    pid_t p = fork();
    if (p == 0) {
        say("TIOCNOTTY by a member: %s", rc(ioctl(s, TIOCNOTTY)));
        say(", then /dev/tty: %s\n", rc(open("/dev/tty", O_RDWR)));
        _exit(0);
    }
    report("  member", p, 0);
    int t = open("/dev/tty", O_RDWR);
    say("leader's /dev/tty after that: %s, SIGHUP %d\n", t >= 0 ? "opened" : rc(-1), got_hup);
    close(t);
    say("TIOCNOTTY by the leader: %s", rc(ioctl(s, TIOCNOTTY)));
    say(", SIGHUP %d SIGCONT %d\n", got_hup, got_cont);
    say("then /dev/tty: %s", rc(open("/dev/tty", O_RDWR)));
    say(", tcgetpgrp: %s\n", rc(tcgetpgrp(s)));
    say("TIOCSCTTY again: %s", rc(ioctl(s, TIOCSCTTY, 0)));
    say(", foreground is mine: %s\n", tcgetpgrp(s) == getpid() ? "yes" : "no");
    _exit(0);
}

/* -- the master goes away ------------------------------------------------------------ */

static void hangup(void)
{
    int pm, ready[2], go[2];
    char name[64], c;
    open_pair(&pm, name);
    pipe(ready);
    pipe(go);
    pid_t h = fork();
    if (h == 0) {
        close(pm);
        setsid();
        int s = open(name, O_RDWR);
        catch(SIGHUP);
        catch(SIGCONT);
        write(ready[1], "r", 1);
        wait_for(&got_hup, &got_cont);
        say("after the master closed: SIGHUP %d SIGCONT %d\n", got_hup, got_cont);
        char b[8];
        say("  slave read: %s", rc(read(s, b, sizeof b)));
        say(", write: %s\n", rc(write(s, "x", 1)));
        struct pollfd p = {s, POLLIN | POLLOUT, 0};
        poll(&p, 1, 0);
        say("  poll: %#x\n", p.revents);
        say("  /dev/tty: %s", rc(open("/dev/tty", O_RDWR)));
        say(", reopen: %s\n", rc(open(name, O_RDWR | O_NOCTTY)));
        _exit(0);
    }
    read(ready[0], &c, 1);
    close(pm);
    report("hung-up leader", h, 0);
}

int main(void)
{
    /* a shell may have left job-control signals ignored (ash does for SIGQUIT) */
    for (int sig = 1; sig < 32; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    setvbuf(stdout, NULL, _IONBF, 0);
    ids();
    session();
    notty();
    hangup();
    say("done\n");
    return 0;
}
