/* Capabilities over a network namespace come from the user namespace that
 * owns it (ns_capable(net->user_ns, ...)): root of a new user namespace
 * may open packet and raw sockets, set a device's MTU and bind a low port
 * in a network namespace it made, and in the init one may not. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *en(int r) { return r >= 0 ? "ok" : strerrorname_np(errno); }

static void map_root(void)
{
    char buf[64];
    int fd = open("/proc/self/setgroups", O_WRONLY);
    if (fd >= 0) { (void)!write(fd, "deny", 4); close(fd); }
    snprintf(buf, sizeof buf, "0 %d 1", getuid());
    fd = open("/proc/self/uid_map", O_WRONLY);
    (void)!write(fd, buf, strlen(buf)); close(fd);
}

static void probe(const char *where)
{
    int p = socket(AF_PACKET, SOCK_DGRAM, htons(0x0800));
    printf("%s: packet socket %s\n", where, en(p));
    int r = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    printf("%s: raw socket %s\n", where, en(r));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    ifr.ifr_mtu = 60000;
    printf("%s: SIOCSIFMTU lo %s\n", where, en(ioctl(u, SIOCSIFMTU, &ifr)));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(INADDR_ANY) };
    int t = socket(AF_INET, SOCK_STREAM, 0);
    printf("%s: bind port 80 %s\n", where, en(bind(t, (struct sockaddr *)&a, sizeof a)));
    fflush(stdout);
}

int main(void)
{
    fflush(stdout);
    if (fork() == 0) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0) { printf("unshare: %s\n", en(-1)); return 0; }
        map_root();
        probe("own netns");
        _exit(0);
    }
    wait(NULL);
    if (fork() == 0) {
        if (unshare(CLONE_NEWUSER) < 0) { printf("unshare: %s\n", en(-1)); return 0; }
        map_root();
        probe("init netns");
        _exit(0);
    }
    wait(NULL);
    printf("done\n");
    return 0;
}
