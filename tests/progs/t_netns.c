/* Network namespaces: a new one has only lo, down; its sockets, abstract
   unix names, ports and ipv4/conf sysctls are its own.  Run as root; the
   whole program first moves to a fresh network namespace, so nothing of
   the caller's (the host's, natively) is touched. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#define PORT 47321

static void devices(const char *who)
{
    char buf[4096];
    if (read_small("/proc/net/dev", buf, sizeof buf) < 0) {
        printf("%s: /proc/net/dev -1 %s\n", who, en(errno));
        return;
    }
    printf("%s: devices", who);
    char *line = strchr(buf, '\n');
    line = line ? strchr(line + 1, '\n') : NULL;    /* two header lines */
    while (line && line[1]) {
        char *name = line + 1;
        while (*name == ' ')
            name++;
        char *colon = strchr(name, ':');
        if (!colon)
            break;
        printf(" %.*s", (int)(colon - name), name);
        line = strchr(colon, '\n');
    }
    printf("\n");
}

static int lo_flags(int up)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "lo");
    int r = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (r == 0 && up >= 0) {
        ifr.ifr_flags = up ? ifr.ifr_flags | IFF_UP : ifr.ifr_flags & ~IFF_UP;
        r = ioctl(s, SIOCSIFFLAGS, &ifr);
        ioctl(s, SIOCGIFFLAGS, &ifr);
    }
    close(s);
    return r < 0 ? -1 : !!(ifr.ifr_flags & IFF_UP);
}

static struct sockaddr_in loop_addr(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int tcp_listener(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loop_addr();
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 4) < 0) {
        close(s);
        return -1;
    }
    return s;
}

static long tcp_connect(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loop_addr();
    long r = connect(s, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(s);
    errno = e;
    return r;
}

static struct sockaddr_un abstract_name(void)
{
    struct sockaddr_un u = {.sun_family = AF_UNIX};
    memcpy(u.sun_path, "\0t_netns", 8);
    return u;
}

static long sysctl(const char *path, const char *value)
{
    char buf[32] = "";
    int fd = open(path, value ? O_WRONLY : O_RDONLY);
    if (fd < 0)
        return -1;
    long r = value ? write(fd, value, strlen(value)) : read(fd, buf, sizeof buf - 1);
    close(fd);
    return value || r < 0 ? r : atol(buf);
}

#define LO_TAG "/proc/sys/net/ipv4/conf/lo/tag"

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    res("unshare NEWNET", unshare(CLONE_NEWNET));
    devices("fresh");
    res("lo up", lo_flags(-1));
    res("connect while lo is down", tcp_connect());
    res("bring lo up", lo_flags(1));
    int l = tcp_listener();
    res("listen on 127.0.0.1", l < 0 ? -1 : 0);
    res("connect to it", tcp_connect());
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = abstract_name();
    res("bind abstract", bind(u, (struct sockaddr *)&un, sizeof(sa_family_t) + 8));
    listen(u, 1);
    res("write lo tag", sysctl(LO_TAG, "5"));
    res("lo tag", sysctl(LO_TAG, NULL));
    res("default tag", sysctl("/proc/sys/net/ipv4/conf/default/tag", NULL));
    res("eth0 conf here", access("/proc/sys/net/ipv4/conf/eth0", F_OK));

    pid_t c = fork();
    if (c == 0) {
        res("child: unshare NEWNET", unshare(CLONE_NEWNET));
        devices("child");
        res("child: lo up", lo_flags(-1));
        res("child: lo tag", sysctl(LO_TAG, NULL));
        res("child: bring lo up", lo_flags(1));
        res("child: connect to the parent's port", tcp_connect());
        int v = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un n = abstract_name();
        res("child: connect abstract", connect(v, (struct sockaddr *)&n, sizeof(sa_family_t) + 8));
        close(v);
        v = socket(AF_UNIX, SOCK_STREAM, 0);
        res("child: bind the same abstract name", bind(v, (struct sockaddr *)&n, sizeof(sa_family_t) + 8));
        int m = tcp_listener();
        res("child: listen on the same port", m < 0 ? -1 : 0);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    res("child status", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    res("lo tag still", sysctl(LO_TAG, NULL));
    res("connect still", tcp_connect());
    close(l);
    close(u);
    printf("done\n");
    return 0;
}
