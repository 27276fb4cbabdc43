/* Guest only (tests/test_keys.py): what Linux does asynchronously and the
 * guest does at once, so a native run cannot be compared line by line: a
 * key is freed, and its quota returned, when its last holder goes; the key
 * garbage collector reaps expired and revoked keys gc_delay seconds later;
 * /proc/sys/kernel/keys sets the quotas.  Needs /proc mounted, runs as root.
 * With the argument "request": only what request_key(2) with callout
 * information gives, which depends on /sbin/request-key existing. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "results.h"

#define THREAD -1
#define SESSION -3
enum { GET_KEYRING_ID, JOIN, UPDATE, REVOKE, CHOWN, SETPERM, DESCRIBE, CLEAR, LINK, UNLINK, SEARCH,
       READ, SET_TIMEOUT = 15, INVALIDATE = 21 };

static long ak(const char *type, const char *desc, const void *p, size_t n, long ring)
{
    return syscall(SYS_add_key, type, desc, p, n, ring);
}

static long kc(int op, long a, long b, long c, long d)
{
    return syscall(SYS_keyctl, op, a, b, c, d);
}

static void key_users(const char *what)
{
    char line[256];
    FILE *f = fopen("/proc/key-users", "r");
    while (f && fgets(line, sizeof line, f))
        printf("%s: %s", what, line);
    if (f)
        fclose(f);
}

static void sysctl_write(const char *name, const char *value)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/sys/kernel/keys/%s", name);
    FILE *f = fopen(path, "w");
    if (!f) {
        printf("open %s: %s\n", name, en(errno));
        return;
    }
    int bad = fputs(value, f) < 0;
    bad |= fclose(f) != 0;
    printf("write %s=%s: %s\n", name, value, bad ? en(errno) : "ok");
}

static void sysctl_show(void)
{
    const char *names[] = {"gc_delay", "maxbytes", "maxkeys", "root_maxbytes", "root_maxkeys"};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        char path[128], buf[64] = "";
        snprintf(path, sizeof path, "/proc/sys/kernel/keys/%s", names[i]);
        FILE *f = fopen(path, "r");
        if (f) {
            fgets(buf, sizeof buf, f);
            fclose(f);
        }
        printf("%s: %s", names[i], buf);
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "request")) {
        kc(JOIN, 0, 0, 0, 0);
        res("request_key with callout", syscall(SYS_request_key, "user", "d", "info", SESSION));
        res("request_key again", syscall(SYS_request_key, "user", "d", "info", SESSION));
        return 0;
    }
    key_users("boot");
    sysctl_show();
    long ses = kc(JOIN, 0, 0, 0, 0);
    key_users("joined");

    long k = ak("user", "k", "12345", 5, SESSION);
    key_users("added");
    res("unlink", kc(UNLINK, k, SESSION, 0, 0));
    res("describe unlinked", kc(DESCRIBE, k, 0, 0, 0));
    key_users("unlinked");

    long r = ak("keyring", "r", NULL, 0, SESSION);
    k = ak("user", "k", "x", 1, r);
    res("clear", kc(CLEAR, SESSION, 0, 0, 0));
    res("describe keyring of a cleared keyring", kc(DESCRIBE, r, 0, 0, 0));
    res("describe its key", kc(DESCRIBE, k, 0, 0, 0));
    key_users("cleared");

    /* the collector: expired and revoked keys lose their links gc_delay later */
    sysctl_write("gc_delay", "1");
    r = ak("keyring", "gc", NULL, 0, SESSION);
    long e = ak("user", "expiring", "x", 1, r);
    long v = ak("user", "revoked", "x", 1, r);
    ak("user", "kept", "x", 1, r);
    res("timeout", kc(SET_TIMEOUT, e, 1, 0, 0));
    res("revoke", kc(REVOKE, v, 0, 0, 0));
    res("links", kc(READ, r, 0, 0, 0) / 4);
    sleep_ms(2200);
    res("links after gc_delay", kc(READ, r, 0, 0, 0) / 4);
    res("describe expired", kc(DESCRIBE, e, 0, 0, 0));
    res("describe revoked", kc(DESCRIBE, v, 0, 0, 0));
    long inv = ak("user", "inv", "x", 1, r);
    res("invalidate", kc(INVALIDATE, inv, 0, 0, 0));
    res("links after invalidation", kc(READ, r, 0, 0, 0) / 4);
    sysctl_write("gc_delay", "300");
    kc(CLEAR, SESSION, 0, 0, 0);
    key_users("collected");

    /* the quota sysctls */
    sysctl_write("maxkeys", "0");
    sysctl_write("maxkeys", "abc");
    sysctl_write("maxkeys", "2147483648");
    sysctl_write("gc_delay", "-1");
    sysctl_write("root_maxkeys", "6");
    for (int i = 0; i < 3; i++) {
        char d[8];
        snprintf(d, sizeof d, "q%d", i);
        long q = ak("user", d, "x", 1, SESSION);
        printf("add %s: %s\n", d, q < 0 ? en(errno) : "ok");
    }
    key_users("root at its limit");
    sysctl_write("root_maxkeys", "1000000");
    sysctl_write("root_maxbytes", "60");
    res("add over root_maxbytes", ak("user", "b", "1234567890", 10, SESSION));
    sysctl_write("root_maxbytes", "25000000");
    kc(CLEAR, SESSION, 0, 0, 0);

    /* a process's keyrings go when it is reaped */
    pid_t c = fork();
    if (c == 0) {
        kc(JOIN, 0, 0, 0, 0);
        ak("user", "child", "x", 1, SESSION);
        ak("user", "child", "x", 1, THREAD);
        key_users("child");
        _exit(0);
    }
    waitpid(c, NULL, 0);
    key_users("child reaped");

    if (setresuid(1000, 1000, 1000) == 0) {
        FILE *f = fopen("/proc/sys/kernel/keys/maxkeys", "w");
        printf("non-root opens a sysctl for writing: %s\n", f ? "ok" : en(errno));
        ak("user", "u", "x", 1, THREAD);
        res("user keyring", kc(GET_KEYRING_ID, -4, 0, 0, 0) > 0);
        key_users("uid 1000");
    }
    (void)ses;
    printf("done\n");
    return 0;
}
