/* A task that blocks for good, for tests/test_idle.py and the bench's idle
   figures (not differential: it never returns by itself).  Prints
   "blocking" once it is about to block, then:
     read    read(0): the console, its input held open and silent
     poll    poll() on fd 0 with no timeout
     sleep   nanosleep of 60 s (longer than any measuring window) */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    char c;
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    struct timespec ts = {.tv_sec = 60};
    if (strcmp(mode, "read") && strcmp(mode, "poll") && strcmp(mode, "sleep")) {
        fprintf(stderr, "usage: t_idle read|poll|sleep\n");
        return 2;
    }
    printf("blocking\n");
    fflush(stdout);
    if (!strcmp(mode, "read"))
        return read(0, &c, 1) < 0;
    if (!strcmp(mode, "poll"))
        return poll(&pfd, 1, -1) < 0;
    return nanosleep(&ts, NULL) < 0;
}
