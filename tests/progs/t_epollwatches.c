/* fs.epoll.max_user_watches: a user's epoll watches, over all its epoll
   instances, stop at the limit with ENOSPC (ep_insert); closing an epoll,
   or a watched file's last fd, gives its watches back. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "results.h"

static int fill(int *eps, int neps, int *fds, int nfds)
{
    int n = 0;
    for (int e = 0; e < neps; e++)
        for (int f = 0; f < nfds; f++) {
            struct epoll_event ev = {.events = EPOLLIN};
            if (epoll_ctl(eps[e], EPOLL_CTL_ADD, fds[f], &ev)) {
                printf("watches: %d, then %s\n", n, en(errno));
                return n;
            }
            n++;
        }
    printf("watches: %d, no error\n", n);
    return n;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int eps[10], fds[20];
    for (int i = 0; i < 10; i++)
        eps[i] = epoll_create1(0);
    for (int i = 0; i < 20; i++)
        fds[i] = eventfd(0, 0);
    fill(eps, 10, fds, 20);
    close(eps[0]);
    eps[0] = epoll_create1(0);
    printf("after closing an epoll: ");
    fill(eps, 1, fds, 20);
    close(fds[0]);
    printf("after closing a watched file: ");
    fill(eps + 9, 1, fds + 1, 19);
    printf("done\n");
    return 0;
}
