/* ThreadSanitizer: two threads write one int with nothing ordering them
 * (the sleep makes main's write the second, so the report names it);
 * reported, exit 66. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static int shared;

static void *writer(void *arg)
{
    shared = 1;
    return arg;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    usleep(200000);
    shared = 2;
    pthread_join(t, NULL);
    printf("shared: %d\n", shared);
    return 0;
}
