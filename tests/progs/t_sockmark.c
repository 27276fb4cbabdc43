/* The SOL_SOCKET options every family keeps as Linux's sk_setsockopt
 * does: SO_MARK (CAP_NET_RAW or CAP_NET_ADMIN), SO_PRIORITY (0 to 6 for
 * anyone, more with those), SO_BINDTODEVICE and SO_BINDTOIFINDEX (a
 * device kept on any socket, unix and netlink too; changing it needs
 * CAP_NET_RAW), as root and as an unprivileged user. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void said(const char *kind, const char *what, int r)
{
    printf("%s %s: %s\n", kind, what, r < 0 ? strerrorname_np(errno) : "ok");
}

static void get_int(const char *kind, int s, int opt, const char *name)
{
    int v = -7;
    socklen_t len = sizeof v;
    int r = getsockopt(s, SOL_SOCKET, opt, &v, &len);
    if (r < 0)
        said(kind, name, r);
    else
        printf("%s %s = %d (%u bytes)\n", kind, name, v, len);
}

static void get_dev(const char *kind, int s)
{
    char name[32] = "?";
    socklen_t len = sizeof name;
    int r = getsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, name, &len);
    if (r < 0)
        said(kind, "get SO_BINDTODEVICE", r);
    else
        printf("%s SO_BINDTODEVICE = \"%.*s\" (%u bytes)\n", kind, (int)len, len ? name : "", len);
}

static void one(const char *kind, int s, int root)
{
    int v;
    get_int(kind, s, SO_MARK, "SO_MARK");
    v = 42;
    said(kind, "set SO_MARK 42", setsockopt(s, SOL_SOCKET, SO_MARK, &v, sizeof v));
    get_int(kind, s, SO_MARK, "SO_MARK");
    said(kind, "set SO_MARK short", setsockopt(s, SOL_SOCKET, SO_MARK, &v, 2));
    v = 6;
    said(kind, "set SO_PRIORITY 6", setsockopt(s, SOL_SOCKET, SO_PRIORITY, &v, sizeof v));
    v = 7;
    said(kind, "set SO_PRIORITY 7", setsockopt(s, SOL_SOCKET, SO_PRIORITY, &v, sizeof v));
    v = -1;
    said(kind, "set SO_PRIORITY -1", setsockopt(s, SOL_SOCKET, SO_PRIORITY, &v, sizeof v));
    get_int(kind, s, SO_PRIORITY, "SO_PRIORITY");
    get_dev(kind, s);
    said(kind, "bind lo", setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3));
    get_dev(kind, s);
    char small[8];
    socklen_t len = sizeof small;
    said(kind, "get SO_BINDTODEVICE into 8 bytes",
         getsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, small, &len));
    get_int(kind, s, SO_BINDTOIFINDEX, "SO_BINDTOIFINDEX");
    said(kind, "bind lo again", setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 2));
    said(kind, "unbind", setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "", 0));
    get_dev(kind, s);
    v = -1;
    said(kind, "ifindex -1", setsockopt(s, SOL_SOCKET, SO_BINDTOIFINDEX, &v, sizeof v));
    v = 9999;
    said(kind, "ifindex 9999", setsockopt(s, SOL_SOCKET, SO_BINDTOIFINDEX, &v, sizeof v));
    said(kind, "bind nosuchdev", setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "nosuchdev0", 10));
    if (root) {
        get_dev(kind, s);           /* an index that names no device */
        get_int(kind, s, SO_BINDTOIFINDEX, "SO_BINDTOIFINDEX");
        v = 1;
        said(kind, "ifindex 1", setsockopt(s, SOL_SOCKET, SO_BINDTOIFINDEX, &v, sizeof v));
        get_dev(kind, s);
    }
    close(s);
}

static void all(int root)
{
    one(root ? "tcp" : "user tcp", socket(AF_INET, SOCK_STREAM, 0), root);
    one(root ? "udp6" : "user udp6", socket(AF_INET6, SOCK_DGRAM, 0), root);
    one(root ? "unix" : "user unix", socket(AF_UNIX, SOCK_STREAM, 0), root);
    one(root ? "unix dgram" : "user unix dgram", socket(AF_UNIX, SOCK_DGRAM, 0), root);
    one(root ? "netlink" : "user netlink", socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), root);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    all(1);
    pid_t p = fork();
    if (p == 0) {
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(1);
        all(0);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    printf("child: %d\ndone\n", WEXITSTATUS(st));
    return 0;
}
