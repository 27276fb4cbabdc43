/* Helpers of the loopback socket programs t_tcp, t_udp and t_icmp: the
 * current pass's family and line prefix, result printing, socket
 * addresses, poll masks, int socket options and socket() checks.  The
 * tests run once per family (for_each_family sets `fam`, AF_INET or
 * AF_INET6, and the line prefix `P`, "v4" or "v6"); a program may set both
 * itself for other passes.
 * Ports are ephemeral and never printed; `txt` prints only the address.
 * Strings returned by rs, txt, flagnames and geti live in rings of 16
 * buffers, so up to 16 of each can stand in one say().
 * Include after `#define _GNU_SOURCE` (strerrorname_np, POLLRDHUP). */
#ifndef T_INET_H
#define T_INET_H
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fam;            /* AF_INET or AF_INET6 for the current pass */
static const char *P;      /* "v4" / "v6" */

/* pass() once per family, v4 then v6, with fam and P set for it */
static inline void for_each_family(void (*pass)(void))
{
    static const int fams[2] = {AF_INET, AF_INET6};
    for (int i = 0; i < 2; i++) {
        fam = fams[i];
        P = fam == AF_INET ? "v4" : "v6";
        pass();
    }
}

/* one output line: "P " fmt "\n" */
static inline void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", P);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

/* "N" or "-1 ENAME" */
static inline const char *rs(long r)
{
    static char b[16][64];
    static int i;
    char *s = b[i++ & 15];
    if (r < 0)
        snprintf(s, 64, "-1 %s", strerrorname_np(errno));
    else
        snprintf(s, 64, "%ld", r);
    return s;
}

/* ---- addresses ---------------------------------------------------------- */

typedef struct {
    struct sockaddr_storage ss;
    socklen_t len;
} addr_t;

/* family f, address text t, port */
static inline addr_t mk(int f, const char *t, int port)
{
    addr_t a;
    memset(&a, 0, sizeof a);
    if (f == AF_INET) {
        struct sockaddr_in *s = (void *)&a.ss;
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        inet_pton(AF_INET, t, &s->sin_addr);
        a.len = sizeof *s;
    } else {
        struct sockaddr_in6 *s = (void *)&a.ss;
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(port);
        inet_pton(AF_INET6, t, &s->sin6_addr);
        a.len = sizeof *s;
    }
    return a;
}

static inline const char *LO(void) { return fam == AF_INET ? "127.0.0.1" : "::1"; }
static inline const char *ANY(void) { return fam == AF_INET ? "0.0.0.0" : "::"; }

static inline int port_of(const addr_t *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&a->ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&a->ss)->sin6_port);
}

/* is a's port in Linux's default ip_local_port_range (32768-60999)? */
static inline const char *inrange(const addr_t *a)
{
    int p = port_of(a);
    return p >= 32768 && p <= 60999 ? "yes" : "no";
}

/* the address without its port */
static inline const char *txt(const addr_t *a)
{
    static char b[16][INET6_ADDRSTRLEN + 16];
    static int i;
    char *s = b[i++ & 15];
    if (a->ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&a->ss)->sin_addr, s, INET6_ADDRSTRLEN);
    else if (a->ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a->ss)->sin6_addr, s, INET6_ADDRSTRLEN);
    else
        snprintf(s, 32, "family%d", a->ss.ss_family);
    return s;
}

/* fd's own address (peer 0, getsockname) or its peer's (getpeername);
   len 0 (and an all-zero address) when the call fails */
static inline addr_t name_of(int fd, int peer)
{
    addr_t a;
    memset(&a, 0, sizeof a);
    a.len = sizeof a.ss;
    if ((peer ? getpeername : getsockname)(fd, (void *)&a.ss, &a.len) < 0)
        a.len = 0;
    return a;
}

static inline addr_t sockname(int fd) { return name_of(fd, 0); }
static inline addr_t peername(int fd) { return name_of(fd, 1); }

/* a TCP listener on [::] (dual stack), its port in *port */
static inline int listen_any6(int *port)
{
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    addr_t any = mk(AF_INET6, "::", 0);
    bind(l, (void *)&any.ss, any.len);
    listen(l, 4);
    addr_t la = sockname(l);
    *port = port_of(&la);
    return l;
}

/* ---- waiting and poll masks -------------------------------------------- */

/* wait (at most 3 s) until fd has one of ev */
static inline void settle(int fd, short ev)
{
    struct pollfd p = {fd, ev, 0};
    poll(&p, 1, 3000);
}

/* "POLLIN|POLLOUT" (with ep: "EPOLLIN|EPOLLOUT"), "0" for none; bits with
   no name are added in hex */
static inline const char *flagnames(int m, int ep)
{
    static char b[16][256];
    static int k;
    char *s = b[k++ & 15];
    static const struct { int f; const char *n; } t[] = {
        {POLLIN, "IN"}, {POLLPRI, "PRI"}, {POLLOUT, "OUT"}, {POLLERR, "ERR"},
        {POLLHUP, "HUP"}, {POLLNVAL, "NVAL"}, {POLLRDNORM, "RDNORM"}, {POLLRDBAND, "RDBAND"},
        {POLLWRNORM, "WRNORM"}, {POLLWRBAND, "WRBAND"}, {POLLRDHUP, "RDHUP"},
    };
    s[0] = 0;
    for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++)
        if (m & t[i].f) {
            if (s[0])
                strcat(s, "|");
            strcat(s, ep ? "EPOLL" : "POLL");
            strcat(s, t[i].n);
            m &= ~t[i].f;
        }
    if (m)
        sprintf(s + strlen(s), "%s0x%x", s[0] ? "|" : "", m);
    if (!s[0])
        strcpy(s, "0");
    return s;
}

#define ALLEV (POLLIN | POLLPRI | POLLOUT | POLLRDHUP | POLLRDNORM | POLLRDBAND | POLLWRNORM | POLLWRBAND)

/* what poll reports for fd right now, all events asked for */
static inline const char *pmask(int fd)
{
    struct pollfd p = {fd, ALLEV, 0};
    int r = poll(&p, 1, 0);
    if (r < 0)
        return "poll failed";
    return flagnames(p.revents, 0);
}

/* ---- int socket options ------------------------------------------------- */

/* the option's value; *err is NULL, or the errno name when it fails */
static inline int gi(int fd, int lvl, int opt, const char **err)
{
    int v = -12345;
    socklen_t l = sizeof v;
    *err = NULL;
    if (getsockopt(fd, lvl, opt, &v, &l) < 0)
        *err = strerrorname_np(errno);
    return v;
}

/* the option's value, or "-1 ENAME" */
static inline const char *geti(int fd, int lvl, int opt)
{
    static char b[16][64];
    static int k;
    char *s = b[k++ & 15];
    const char *e;
    int v = gi(fd, lvl, opt, &e);
    if (e)
        snprintf(s, 64, "-1 %s", e);
    else
        snprintf(s, 64, "%d", v);
    return s;
}

static inline int seti(int fd, int lvl, int opt, int v) { return setsockopt(fd, lvl, opt, &v, sizeof v); }

/* ---- socket creation ---------------------------------------------------- */

struct sock_try {
    int type, proto;
    const char *what;
};

/* socket(fam, type, proto) for each of t[0..n): "socket WHAT: ok" or
   "socket WHAT: -1 ENAME" */
static inline void try_sockets(const struct sock_try *t, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int s = socket(fam, t[i].type, t[i].proto);
        say("socket %s: %s", t[i].what, s < 0 ? rs(s) : "ok");
        if (s >= 0)
            close(s);
    }
}
#endif
