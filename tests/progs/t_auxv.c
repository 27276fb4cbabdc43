/* Initial process state set up by execve: argc/argv/envp/auxv layout,
 * selected auxv values, stack alignment.  Prints only argv[0]'s basename
 * and env vars whose name starts with "T_" (in the order received). */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void val(const char *name, unsigned long type)
{
    errno = 0;
    unsigned long v = getauxval(type);
    if (v == 0 && errno == ENOENT)
        printf("%s: missing\n", name);
    else
        printf("%s: %lu\n", name, v);
}

static void nonzero(const char *name, unsigned long type)
{
    printf("%s non-zero: %s\n", name, getauxval(type) ? "yes" : "no");
}

int main(int argc, char **argv, char **envp)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    uintptr_t frame = (uintptr_t)__builtin_frame_address(0);

    /* System V x86-64 ABI: at process entry %rsp is 16-byte aligned and
     * points at argc, so argv == entry_rsp + 8.  glibc's _start realigns
     * the stack before main, so also check the frame of main itself. */
    printf("initial stack alignment (argv %% 16 == 8): %s\n",
           ((uintptr_t)argv & 15) == 8 ? "ok" : "bad");
    printf("main frame 16-byte aligned: %s\n", (frame & 15) == 0 ? "ok" : "bad");
    printf("argv[-1] == argc: %s\n", *(long *)((char *)argv - 8) == argc ? "ok" : "bad");

    printf("argc: %d\n", argc);
    printf("argv[0] basename: %s\n", base(argv[0]));
    for (int i = 1; i < argc; i++)
        printf("argv[%d]: '%s'\n", i, argv[i]);
    printf("argv[argc] == NULL: %s\n", argv[argc] == NULL ? "ok" : "bad");
    printf("envp == argv + argc + 1: %s\n", envp == argv + argc + 1 ? "ok" : "bad");

    int nenv = 0;
    char **e = envp;
    for (; *e; e++) {
        nenv++;
        if (strncmp(*e, "T_", 2) == 0)
            printf("env: %s\n", *e);
    }
    printf("environ == envp: %s\n", environ == envp ? "ok" : "bad");
    const char *t = getenv("T_ONE");
    printf("getenv(T_ONE): %s\n", t ? t : "(unset)");

    /* auxv directly follows the envp NULL terminator */
    Elf64_auxv_t *av = (Elf64_auxv_t *)(e + 1);
    int naux = 0, pagesz_ok = 0, last_null = 0;
    for (; naux < 64; naux++) {
        if (av[naux].a_type == AT_NULL) {
            last_null = 1;
            break;
        }
        if (av[naux].a_type == AT_PAGESZ)
            pagesz_ok = av[naux].a_un.a_val == getauxval(AT_PAGESZ);
    }
    printf("auxv after envp: AT_NULL-terminated=%s AT_PAGESZ found=%s\n",
           last_null ? "ok" : "bad", pagesz_ok ? "ok" : "bad");
    printf("auxv entries >= 10: %s\n", naux >= 10 ? "ok" : "bad");

    val("AT_PAGESZ", AT_PAGESZ);
    printf("sysconf(_SC_PAGESIZE): %ld\n", sysconf(_SC_PAGESIZE));
    val("AT_UID", AT_UID);
    val("AT_EUID", AT_EUID);
    val("AT_GID", AT_GID);
    val("AT_EGID", AT_EGID);
    printf("AT_UID matches getuid: %s\n", getauxval(AT_UID) == getuid() ? "ok" : "bad");
    printf("AT_GID matches getgid: %s\n", getauxval(AT_GID) == getgid() ? "ok" : "bad");
    val("AT_SECURE", AT_SECURE);
    val("AT_CLKTCK", AT_CLKTCK);
    printf("sysconf(_SC_CLK_TCK): %ld\n", sysconf(_SC_CLK_TCK));
    val("AT_PHENT", AT_PHENT);
    val("AT_PHNUM", AT_PHNUM);
    val("AT_BASE (static binary)", AT_BASE);
    nonzero("AT_PHDR", AT_PHDR);
    nonzero("AT_ENTRY", AT_ENTRY);
    nonzero("AT_RANDOM", AT_RANDOM);
    nonzero("AT_SYSINFO_EHDR", AT_SYSINFO_EHDR);

    extern char _start[];
    printf("AT_ENTRY == &_start: %s\n",
           getauxval(AT_ENTRY) == (unsigned long)_start ? "ok" : "bad");
    const Elf64_Phdr *ph = (const Elf64_Phdr *)getauxval(AT_PHDR);
    if (ph) {
        int nload = 0;
        for (unsigned long i = 0; i < getauxval(AT_PHNUM); i++)
            nload += ph[i].p_type == PT_LOAD;
        printf("PT_LOAD headers readable via AT_PHDR: %d\n", nload);
    }

    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    if (rnd) {
        int allzero = 1;
        for (int i = 0; i < 16; i++)
            allzero &= rnd[i] == 0;
        printf("AT_RANDOM 16 bytes not all zero: %s\n", allzero ? "bad" : "ok");
    }
    const char *fn = (const char *)getauxval(AT_EXECFN);
    printf("AT_EXECFN basename: %s\n", fn ? base(fn) : "(missing)");
    printf("AT_EXECFN == argv[0]: %s\n", fn && !strcmp(fn, argv[0]) ? "ok" : "different");

    /* argv/env strings live above the pointer arrays on the stack */
    printf("argv[0] string above envp array: %s\n",
           (uintptr_t)argv[0] > (uintptr_t)(e + 1) ? "ok" : "bad");
    printf("done\n");
    return 0;
}
