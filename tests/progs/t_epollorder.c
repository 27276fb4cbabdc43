/* epoll_wait reports ready files in the order they became ready (Linux's
 * ready list: ep_poll_callback adds at the tail), not in the order they
 * were registered: a server that sees its client's hang-up before the
 * data of a backend it proxies (node's http tests) depends on it. Two
 * TCP sockets on one epoll, made ready in either order, and with a wake
 * for other events (room to write) before. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static int listener(struct sockaddr_in *a)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t n = sizeof *a;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = 0;
    bind(l, (void *)a, sizeof *a);
    getsockname(l, (void *)a, &n);
    listen(l, 4);
    return l;
}

/* data_first: the backend's data before the client's hang-up; 2: the
   backend's socket first woken for room (its peer read what it sent),
   which an EPOLLIN entry does not take as becoming ready */
static void round_(int data_first)
{
    struct sockaddr_in a, b;
    int l1 = listener(&a), l2 = listener(&b);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (void *)&a, sizeof a);
    int s = accept(l1, 0, 0);
    int i = socket(AF_INET, SOCK_STREAM, 0);
    connect(i, (void *)&b, sizeof b);
    int j = accept(l2, 0, 0);
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP};
    e.data.fd = s;
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
    e.data.fd = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, i, &e);
    struct epoll_event out[4];
    char y;
    if (data_first == 2)
        write(i, "y", 1);
    printf("%s first; nothing ready yet: %d\n", data_first == 2 ? "a wake for room" : data_first ? "data" : "hang-up",
           epoll_wait(ep, out, 4, 0));
    if (data_first == 2) {
        read(j, &y, 1);     /* room for i: a wake, not for reading */
        close(c);
        write(j, "x", 1);
    } else if (data_first) {
        write(j, "x", 1);
        close(c);
    } else {
        close(c);
        write(j, "x", 1);
    }
    int n = epoll_wait(ep, out, 4, 100);
    for (int k = 0; k < n; k++)
        printf("  %s %#x\n", out[k].data.fd == s ? "hang-up" : "data", out[k].events);
    /* level-triggered: reported ones go to the tail; modified ones are polled again */
    e.events = EPOLLIN;
    e.data.fd = s;
    epoll_ctl(ep, EPOLL_CTL_MOD, s, &e);
    n = epoll_wait(ep, out, 4, 100);
    for (int k = 0; k < n; k++)
        printf("  again: %s %#x\n", out[k].data.fd == s ? "hang-up" : "data", out[k].events);
    close(ep);
    close(s), close(i), close(j), close(l1), close(l2);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    round_(0);
    round_(1);
    round_(2);
    printf("done\n");
    return 0;
}
