/* Threads that come and go, then an exec: 50 threads made and joined,
   "joined", a pause (the test counts the host's threads meanwhile), then
   the process execs echo.  Each exited thread's host thread must be gone,
   not left stopped, and the exec must not wait for them. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *work(void *arg)
{
    return arg;
}

int main(int argc, char **argv)
{
    for (int i = 0; i < 50; i++) {
        pthread_t t;
        pthread_create(&t, NULL, work, NULL);
        pthread_join(t, NULL);
    }
    printf("joined\n");
    fflush(stdout);
    sleep(argc > 1 ? atoi(argv[1]) : 1);
    execl("/bin/echo", "echo", "exec ok", (char *)NULL);
    perror("execl");
    return 1;
}
