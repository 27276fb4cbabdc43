/* AddressSanitizer and LeakSanitizer: `overflow` writes past a heap block
 * (reported, exit 1), `leak` loses one (reported at exit by LeakSanitizer,
 * which stops the world with ptrace to scan the threads' registers and
 * stacks), `clean` neither.  A thread runs beside main so the world has
 * more than one thread to stop. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *spin(void *arg)
{
    return arg;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "clean";
    pthread_t t;
    pthread_create(&t, NULL, spin, NULL);
    pthread_join(t, NULL);
    char *p = malloc(32);
    strcpy(p, "lost");
    if (!strcmp(what, "overflow"))
        p[32] = 1;
    if (strcmp(what, "leak"))
        free(p);
    p = NULL;
    printf("%s: done\n", what);
    return 0;
}
