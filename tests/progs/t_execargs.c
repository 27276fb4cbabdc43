/* execve's argument and environment strings at their edges, as Linux's
 * copy_strings takes them: strings that end at a page before an unmapped
 * one or cross into it (EFAULT), one of MAX_ARG_STRLEN bytes with its NUL
 * and one a byte longer (E2BIG), the whole past a quarter of the stack
 * limit (E2BIG), one string named many times, strings far apart in memory.
 * The program execs itself ("child" mode prints what it was given). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096
#define MAX_ARG_STRLEN (32 * PG)

static unsigned long sum(const char *s)
{
    unsigned long h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h;
}

static void try(const char *what, char **argv, char **envp)
{
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        execve("/proc/self/exe", argv, envp);
        printf("%s: %s\n", what, strerrorname_np(errno));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
}

int main(int argc, char **argv, char **envp)
{
    if (argc > 1 && !strcmp(argv[1], "child")) {
        unsigned long h = 0, bytes = 0;
        int envc = 0;
        for (int i = 0; i < argc; i++)
            h = h * 31 + sum(argv[i]), bytes += strlen(argv[i]) + 1;
        for (char **e = envp; *e; e++, envc++)
            h = h * 31 + sum(*e), bytes += strlen(*e) + 1;
        printf("  %s: argc %d envc %d bytes %lu hash %lx\n", argv[2], argc, envc, bytes, h);
        return 0;
    }
    struct rlimit rl = {8 << 20, 8 << 20};      /* a quarter of it: 2 MiB of strings */
    setrlimit(RLIMIT_STACK, &rl);
    char *env[] = {"A=1", "B=two", NULL};

    /* two pages, the second unmapped: strings ending right at the first's end */
    char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(m + PG, PG);
    memset(m, 'x', PG);
    m[PG - 1] = 0;
    m[PG - 5] = 0;
    char *a1[] = {"t", "child", "page-end", m + PG - 4, m + 100, NULL};
    try("page-end", a1, env);
    m[PG - 1] = 'y';        /* now the last string runs into the unmapped page */
    char *a2[] = {"t", "child", "crossing", m + PG - 4, NULL};
    try("crossing", a2, env);
    char *a3[] = {"t", "child", "env-crossing", NULL};
    char *e3[] = {"A=1", m + PG - 4, NULL};
    try("env-crossing", a3, e3);
    char *a3b[] = {"t", "child", "pointer-unmapped", m + PG, NULL};
    try("pointer-unmapped", a3b, env);

    /* MAX_ARG_STRLEN with the NUL, then one more */
    char *big = malloc(MAX_ARG_STRLEN + 1);
    memset(big, 'b', MAX_ARG_STRLEN);
    big[MAX_ARG_STRLEN - 1] = 0;
    char *a4[] = {"t", "child", "longest", big, NULL};
    try("longest", a4, env);
    big[MAX_ARG_STRLEN - 1] = 'b';
    big[MAX_ARG_STRLEN] = 0;
    char *a5[] = {"t", "child", "too-long", big, NULL};
    try("too-long", a5, env);

    /* the same 4 KiB string many times: 400 fit in 2 MiB, 600 do not */
    char *page = malloc(PG);
    memset(page, 'p', PG - 1);
    page[PG - 1] = 0;
    char **many = calloc(604, sizeof *many);
    many[0] = "t", many[1] = "child", many[2] = "many-400";
    for (int i = 3; i < 403; i++)
        many[i] = page;
    try("many-400", many, env);
    many[2] = "many-600";
    for (int i = 3; i < 603; i++)
        many[i] = page;
    try("many-600", many, env);

    /* strings far apart: the stack, the heap, a mapping, a literal */
    char onstack[] = "on the stack";
    char *heap = strdup("on the heap");
    char *far = mmap((void *)0x200000000000UL, PG, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    strcpy(far, "far away");
    char *a6[] = {"t", "child", "apart", onstack, heap, far, "a literal", NULL};
    char *e6[] = {far, onstack, NULL};
    try("apart", a6, e6);
    char *a7[] = {"t", "child", "no-env", NULL};
    try("no-env", a7, NULL);
    printf("done\n");
    return 0;
}
