/* The key retention service: add_key, request_key and keyctl, run as root.
 * It first joins a fresh anonymous session keyring, so nothing depends on
 * the keys of whoever runs it; serials are random and never printed (only
 * compared).  Covers user/logon/keyring keys, updates, links and the
 * keyring tree (cycles, depth), search and possession, permissions,
 * revocation, timeouts, invalidation, the special keyrings across fork,
 * threads and execve, named and parent sessions, the quota accounting of
 * /proc/key-users for another uid, and the argument checks LTP's tests make.
 * request_key with callout information needs /sbin/request-key: without it
 * the key is made negative and ENOENT returned (ENOKEY when a helper exists
 * and does not instantiate it, printed alike).
 * Linux frees keys asynchronously (RCU, the key garbage collector): whether
 * a key still exists just after its last link or holder went, and the usage
 * counts of /proc/keys, are not printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "results.h"

#define THREAD -1
#define PROCESS -2
#define SESSION -3
#define USER -4
#define USER_SESSION -5
#define GROUP -6
#define REQKEY_AUTH -7
#define REQUESTOR -8

enum { GET_KEYRING_ID, JOIN, UPDATE, REVOKE, CHOWN, SETPERM, DESCRIBE, CLEAR, LINK, UNLINK, SEARCH,
       READ, INSTANTIATE, NEGATE, SET_REQKEY, SET_TIMEOUT, ASSUME, GET_SECURITY, TO_PARENT, REJECT,
       INSTANTIATE_IOV, INVALIDATE, GET_PERSISTENT, DH, PKEY_QUERY, PKEY_ENCRYPT, PKEY_DECRYPT,
       PKEY_SIGN, PKEY_VERIFY, RESTRICT, MOVE, CAPABILITIES };

#define POS_VIEW 0x01000000
#define POS_READ 0x02000000
#define POS_WRITE 0x04000000
#define POS_SEARCH 0x08000000
#define POS_LINK 0x10000000
#define POS_SETATTR 0x20000000
#define POS_ALL 0x3f000000
#define USR_VIEW 0x00010000
#define USR_READ 0x00020000
#define USR_SEARCH 0x00080000
#define USR_SETATTR 0x00200000

static char self[4096];
static char big[40000];

static long ak(const char *type, const char *desc, const void *p, size_t n, int ring)
{
    return syscall(SYS_add_key, type, desc, p, n, ring);
}

static long rk(const char *type, const char *desc, const char *callout, int dest)
{
    return syscall(SYS_request_key, type, desc, callout, dest);
}

static long kc(int op, unsigned long a, unsigned long b, unsigned long c, unsigned long d)
{
    return syscall(SYS_keyctl, op, a, b, c, d);
}

/* a result that is a serial: "ok" */
static void ok(const char *what, long r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: ok\n", what);
}

/* a request_key that would need the upcall */
static void upcall(const char *what, long r)
{
    if (r < 0 && (errno == ENOENT || errno == ENOKEY))
        printf("%s: -1 ENOENT/ENOKEY\n", what);
    else
        ok(what, r);
}

static long must(const char *what, long r)
{
    if (r < 0) {
        printf("%s: -1 %s (fatal)\n", what, en(errno));
        exit(1);
    }
    return r;
}

static void describe(const char *what, long key)
{
    char buf[256];
    long n = kc(DESCRIBE, key, (unsigned long)buf, sizeof buf, 0);
    if (n < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: %ld \"%s\"\n", what, n, buf);
}

static void readkey(const char *what, long key)
{
    char buf[64] = "";
    long n = kc(READ, key, (unsigned long)buf, sizeof buf - 1, 0);
    if (n < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: %ld \"%.*s\"\n", what, n, (int)(n < 63 ? n : 63), buf);
}

/* the serials a keyring links to: how many, and whether `key` is one */
static void contents(const char *what, long ring, long key)
{
    int32_t ids[64];
    long n = kc(READ, ring, (unsigned long)ids, sizeof ids, 0);
    if (n < 0) {
        printf("%s: -1 %s\n", what, en(errno));
        return;
    }
    int has = 0;
    for (long i = 0; i < n / 4 && i < 64; i++)
        has |= ids[i] == key;
    printf("%s: %ld links%s\n", what, n / 4, key ? (has ? ", has it" : ", has it not") : "");
}

/* the /proc/keys line of a key, without its serial and usage count */
static void proc_line(const char *what, long key)
{
    char want[16], line[512];
    snprintf(want, sizeof want, "%08lx ", key);
    FILE *f = fopen("/proc/keys", "r");
    if (!f) {
        printf("%s: no /proc/keys\n", what);
        return;
    }
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, want, 9)) {
            char *p = line + 17;
            while (*p == ' ')
                p++;
            while (*p >= '0' && *p <= '9')
                p++;
            printf("%s: %.8s%s", what, line + 9, p + 1);
            found = 1;
        }
    fclose(f);
    if (!found)
        printf("%s: not listed\n", what);
}

static void basics(long ses)
{
    printf("-- user keys\n");
    long k1 = must("add k1", ak("user", "k1", "hello", 5, SESSION));
    readkey("read k1", k1);
    describe("describe k1", k1);
    long again = ak("user", "k1", "bye", 3, SESSION);
    printf("update by add_key: same=%d\n", again == k1);
    readkey("read k1", k1);
    res("update", kc(UPDATE, k1, (unsigned long)"updated", 7, 0));
    readkey("read k1", k1);
    res("update empty", kc(UPDATE, k1, 0, 0, 0));
    res("update 4097", kc(UPDATE, k1, (unsigned long)self, 4097, 0));
    char small[4] = "xyz";
    res("read len", kc(READ, k1, 0, 0, 0));
    printf("read short: %ld \"%s\"\n", kc(READ, k1, (unsigned long)small, 3, 0), small);
    char tiny[4] = "xyz";
    printf("describe short: %ld \"%s\"\n", kc(DESCRIBE, k1, (unsigned long)tiny, 4, 0), tiny);
    res("describe len", kc(DESCRIBE, k1, 0, 0, 0));
    proc_line("proc k1", k1);
    res("timeout 100", kc(SET_TIMEOUT, k1, 100, 0, 0));
    proc_line("proc k1", k1);
    ak("user", "k1", "again", 5, SESSION);
    proc_line("proc k1 updated", k1);
    contents("session", ses, k1);

    printf("-- logon keys\n");
    ok("logon no colon", ak("logon", "nocolon", "pw", 2, SESSION));
    ok("logon colon first", ak("logon", ":x", "pw", 2, SESSION));
    long lg = ak("logon", "svc:name", "pw", 2, SESSION);
    ok("logon svc:name", lg);
    readkey("read logon", lg);
    describe("describe logon", lg);
    proc_line("proc logon", lg);

    printf("-- argument checks\n");
    static char desc[4200];
    memset(desc, 'd', sizeof desc - 1);
    ok("user 32767", ak("user", "big", big, 32767, SESSION));
    ok("user 32768", ak("user", "big2", big, 32768, SESSION));
    ok("plen 1M", ak("user", "big3", big, 1 << 20, SESSION));
    ok("user empty payload", ak("user", "e", "", 0, SESSION));
    ok("NULL payload 64", ak("user", "abc:def", NULL, 64, PROCESS));
    ok("logon NULL payload 64", ak("logon", "abc:def", NULL, 64, PROCESS));
    ok("keyring payload 1", ak("keyring", "r", "x", 1, SESSION));
    ok("empty type", ak("", "x", "x", 1, SESSION));
    ok("dot type", ak(".user", "x", "x", 1, SESSION));
    ok("31-char type", ak("abcdefghijabcdefghijabcdefghijx", "x", "x", 1, SESSION));
    ok("32-char type", ak("abcdefghijabcdefghijabcdefghijxy", "x", "x", 1, SESSION));
    ok("unknown type", ak("nosuchtype", "x", "x", 1, SESSION));
    ok("bad type pointer", ak((char *)-1, "x", "x", 1, SESSION));
    ok("empty desc", ak("user", "", "x", 1, SESSION));
    ok("NULL desc", ak("user", NULL, "x", 1, SESSION));
    ok("bad desc pointer", ak("user", (char *)-1, "x", 1, SESSION));
    ok("keyring dot desc", ak("keyring", ".dot", NULL, 0, SESSION));
    ok("user dot desc", ak("user", ".dot", "x", 1, SESSION));
    desc[4095] = 0;
    ok("desc 4095", ak("user", desc, "x", 1, SESSION));
    desc[4095] = 'd';
    desc[4096] = 0;
    ok("desc 4096", ak("user", desc, "x", 1, SESSION));
    ok("ring 0", ak("user", "x", "x", 1, 0));
    ok("ring -9", ak("user", "x", "x", 1, -9));
    ok("ring group", ak("user", "x", "x", 1, GROUP));
    ok("ring reqkey auth", ak("user", "x", "x", 1, REQKEY_AUTH));
    ok("ring requestor", ak("user", "x", "x", 1, REQUESTOR));
    ok("ring is a user key", ak("user", "x", "x", 1, k1));
    ok("ring 0x7fffffff", ak("user", "x", "x", 1, 0x7fffffff));
    res("keyctl 999", kc(999, 0, 0, 0, 0));
    res("keyctl -1", kc(-1, 0, 0, 0, 0));
    res("pkey query arg3", kc(PKEY_QUERY, k1, 1, 0, 0));
    res("capabilities size", kc(CAPABILITIES, 0, 0, 0, 0));
    res("capabilities bad buffer", kc(CAPABILITIES, 8, 2, 0, 0));
}

static void keyrings(long ses)
{
    printf("-- keyrings\n");
    long r1 = must("ring1", ak("keyring", "ring1", NULL, 0, SESSION));
    long k = must("kx", ak("user", "kx", "v", 1, r1));
    contents("ring1", r1, k);
    describe("describe ring1", r1);
    proc_line("proc ring1", r1);
    long r1b = ak("keyring", "ring1", NULL, 0, SESSION);
    printf("keyring again: new=%d\n", r1b != r1);
    contents("session", ses, r1b);
    k = must("cu", ak("user", "cu", "c", 1, SESSION));

    long a = must("ra", ak("keyring", "ra", NULL, 0, SESSION));
    long b = must("rb", ak("keyring", "rb", NULL, 0, a));
    long u = must("ku", ak("user", "ku", "1", 1, b));
    res("link a->a", kc(LINK, a, a, 0, 0));
    res("link b->a (cycle)", kc(LINK, a, b, 0, 0));
    res("link u into user key", kc(LINK, u, u, 0, 0));
    res("link u into a", kc(LINK, u, a, 0, 0));
    res("link u into a again", kc(LINK, u, a, 0, 0));
    contents("ra", a, u);
    printf("search a for ku: same=%d\n", kc(SEARCH, a, (unsigned long)"user", (unsigned long)"ku", 0) == u);
    printf("search session for ku: same=%d\n",
           kc(SEARCH, ses, (unsigned long)"user", (unsigned long)"ku", 0) == u);
    res("search missing", kc(SEARCH, ses, (unsigned long)"user", (unsigned long)"no", 0));
    res("search bad type", kc(SEARCH, ses, (unsigned long)"nosuch", (unsigned long)"x", 0));
    res("search dot type", kc(SEARCH, ses, (unsigned long)".x", (unsigned long)"x", 0));
    res("search in user key", kc(SEARCH, u, (unsigned long)"user", (unsigned long)"x", 0));
    printf("request ku: same=%d\n", rk("user", "ku", NULL, 0) == u);
    res("request missing", rk("user", "nope", NULL, 0));
    res("request dead type", rk("dead", "abc", "abc", 0));
    res("request dot type", rk(".dead", "abc", "abc", 0));
    res("request keyring callout", rk("keyring", "nope", "x", 0));
    res("request bad type", rk((char *)-1, "d", NULL, PROCESS));
    res("request bad desc", rk("user", (char *)-1, NULL, PROCESS));
    res("request bad callout", rk("user", "d", (char *)-1, PROCESS));

    res("unlink u from b", kc(UNLINK, u, b, 0, 0));
    res("unlink again", kc(UNLINK, u, b, 0, 0));
    res("unlink from user key", kc(UNLINK, u, u, 0, 0));
    contents("ra", a, u);
    res("move u a->b", kc(MOVE, u, a, b, 0));
    res("move u a->b again", kc(MOVE, u, a, b, 0));
    res("move bad flags", kc(MOVE, u, b, a, 2));
    long u2 = must("ku in a", ak("user", "ku", "2", 1, a));
    res("move excl onto ku", kc(MOVE, u, b, a, 1));
    contents("ra", a, u2);
    res("move onto ku", kc(MOVE, u, b, a, 0));
    res("move same", kc(MOVE, u, a, a, 0));
    contents("ra", a, u);
    contents("rb", b, u);
    res("clear a", kc(CLEAR, a, 0, 0, 0));
    contents("ra", a, 0);
    res("clear user key", kc(CLEAR, k, 0, 0, 0));

    /* a chain of keyrings linked bottom up: too deep a tree is refused */
    long chains = must("chains", ak("keyring", "chains", NULL, 0, SESSION));
    long chain[10];
    for (int i = 1; i <= 9; i++) {
        char d[8];
        snprintf(d, sizeof d, "c%d", i);
        chain[i] = must("chain", ak("keyring", d, NULL, 0, chains));
    }
    for (int i = 8; i >= 1; i--) {
        char what[32];
        snprintf(what, sizeof what, "link c%d into c%d", i + 1, i);
        res(what, kc(LINK, chain[i + 1], chain[i], 0, 0));
    }
    res("link c3 into c9 (cycle)", kc(LINK, chain[3], chain[9], 0, 0));
    kc(CLEAR, chains, 0, 0, 0);

    int32_t ids[2] = {0, 0};
    kc(CLEAR, a, 0, 0, 0);
    ak("user", "x1", "1", 1, a);
    ak("user", "x2", "2", 1, a);
    int32_t two[2] = {0, 0};
    long got = kc(READ, a, (unsigned long)two, 4, 0);
    printf("read keyring into 4: %ld untouched=%d\n", got, two[1] == 0);
    res("read keyring into 3", kc(READ, a, (unsigned long)ids, 3, 0));
    res("read keyring len", kc(READ, a, 0, 0, 0));
    res("restrict a", kc(RESTRICT, a, 0, 0, 0));
    res("restrict a again", kc(RESTRICT, a, 0, 0, 0));
    res("restrict type no restriction", kc(RESTRICT, a, (unsigned long)"user", 0, 0));
    res("restrict by user", kc(RESTRICT, ses, (unsigned long)"user", (unsigned long)"x", 0));
    res("restrict by keyring", kc(RESTRICT, ses, (unsigned long)"keyring", (unsigned long)"x", 0));
    res("restrict by unknown", kc(RESTRICT, ses, (unsigned long)"nosuch", (unsigned long)"x", 0));
    res("restrict user key", kc(RESTRICT, k, 0, 0, 0));
    ok("add to restricted", ak("user", "x3", "3", 1, a));
    res("link to restricted", kc(LINK, k, a, 0, 0));
    res("move to restricted", kc(MOVE, k, ses, a, 0));
}

static void states(long ses)
{
    printf("-- revoke, timeout, invalidate\n");
    long r = must("rv ring", ak("keyring", "rv", NULL, 0, SESSION));
    long k = must("rv key", ak("user", "rk", "data", 4, r));
    res("revoke", kc(REVOKE, k, 0, 0, 0));
    res("revoke again", kc(REVOKE, k, 0, 0, 0));
    readkey("read revoked", k);
    describe("describe revoked", k);
    res("update revoked", kc(UPDATE, k, (unsigned long)"x", 1, 0));
    res("setperm revoked", kc(SETPERM, k, POS_ALL, 0, 0));
    res("search revoked", kc(SEARCH, r, (unsigned long)"user", (unsigned long)"rk", 0));
    res("request revoked", rk("user", "rk", NULL, 0));
    res("request into revoked", rk("user", "rk", NULL, k));
    proc_line("proc revoked", k);
    contents("rv", r, k);
    long k2 = ak("user", "rk", "new", 3, r);
    printf("add over revoked: new=%d\n", k2 != k && k2 > 0);
    contents("rv", r, k2);
    res("revoke ring", kc(REVOKE, r, 0, 0, 0));
    contents("revoked rv", r, 0);
    res("add into revoked ring", ak("user", "z", "z", 1, r));
    res("link into revoked ring", kc(LINK, ses, r, 0, 0));
    res("unlink revoked ring", kc(UNLINK, r, SESSION, 0, 0));

    long t = must("tm", ak("user", "tm", "t", 1, SESSION));
    long t2 = must("tm ring", ak("keyring", "tmr", NULL, 0, SESSION));
    res("timeout 1", kc(SET_TIMEOUT, t, 1, 0, 0));
    res("timeout ring 1", kc(SET_TIMEOUT, t2, 1, 0, 0));
    struct timespec ts = {1, 100000000};
    nanosleep(&ts, NULL);
    readkey("read expired", t);
    describe("describe expired", t);
    res("search expired", kc(SEARCH, ses, (unsigned long)"user", (unsigned long)"tm", 0));
    res("request expired", rk("user", "tm", NULL, 0));
    res("request into expired", rk("keyring", "x", NULL, t2));
    proc_line("proc expired", t);
    res("timeout expired", kc(SET_TIMEOUT, t, 0, 0, 0));
    long t3 = ak("user", "tm", "u", 1, SESSION);
    printf("add over expired: same=%d\n", t3 == t);
    readkey("read revived", t);
    proc_line("proc revived", t);

    long v = must("inv", ak("user", "inv", "i", 1, SESSION));
    res("invalidate", kc(INVALIDATE, v, 0, 0, 0));
    describe("describe invalidated", v);
    kc(UNLINK, v, SESSION, 0, 0);       /* gone or going: the collector is asynchronous */
    res("invalidate 0", kc(INVALIDATE, 0, 0, 0, 0));
}

static void perms(long ses)
{
    printf("-- permissions\n");
    long k = must("pk", ak("user", "pk", "secret", 6, SESSION));
    res("setperm bad bits", kc(SETPERM, k, 0x40000000, 0, 0));
    res("setperm view+setattr", kc(SETPERM, k, POS_VIEW | POS_SETATTR | POS_SEARCH, 0, 0));
    readkey("read possessed, no read bit", k);
    res("update without write", kc(UPDATE, k, (unsigned long)"x", 1, 0));
    res("revoke with setattr", kc(REVOKE, k, 0, 0, 0));

    long hide = must("hide", ak("keyring", "hide", NULL, 0, SESSION));
    long h = must("hk", ak("user", "hk", "h", 1, hide));
    readkey("read possessed", h);
    /* neither the possessor nor the owner may search it: its keys are not possessed */
    res("hide unsearchable", kc(SETPERM, hide, (POS_ALL & ~POS_SEARCH) | USR_VIEW | USR_SETATTR, 0, 0));
    readkey("read not possessed", h);
    describe("describe not possessed", h);
    res("setperm not possessed", kc(SETPERM, h, POS_ALL | USR_VIEW | USR_READ, 0, 0));
    res("search hidden", kc(SEARCH, ses, (unsigned long)"user", (unsigned long)"hk", 0));
    res("owner's search bit", kc(SETPERM, hide, (POS_ALL & ~POS_SEARCH) | USR_VIEW | USR_SEARCH | USR_SETATTR, 0, 0));
    readkey("read possessed again", h);
    res("hide again", kc(SETPERM, hide, (POS_ALL & ~POS_SEARCH) | USR_VIEW | USR_SETATTR, 0, 0));
    res("unhide as owner", kc(SETPERM, hide, POS_ALL | USR_VIEW, 0, 0));
    res("user read bit", kc(SETPERM, h, POS_ALL & ~POS_READ, 0, 0));
    readkey("read possessed without read", h);
    res("no view", kc(SETPERM, h, POS_ALL & ~POS_VIEW, 0, 0));
    describe("describe no view", h);
    res("security no view", kc(GET_SECURITY, h, 0, 0, 0));
    proc_line("proc no view", h);
    res("setperm no setattr", kc(SETPERM, h, USR_VIEW, 0, 0));
    res("setperm again", kc(SETPERM, h, POS_ALL, 0, 0));
    res("chown no setattr", kc(CHOWN, h, 1, 1, 0));
    res("chown -1 -1", kc(CHOWN, h, -1, -1, 0));

    long c = must("ck", ak("user", "ck", "c", 1, SESSION));
    res("chown 4321:4321", kc(CHOWN, c, 4321, 4321, 0));
    describe("describe chowned", c);
    res("chown gid only", kc(CHOWN, c, -1, 0, 0));
    describe("describe chowned", c);
    res("chown back", kc(CHOWN, c, 0, -1, 0));
    describe("describe chowned back", c);

    char sec[8] = "xx";
    printf("security: %ld \"%s\"\n", kc(GET_SECURITY, c, (unsigned long)sec, sizeof sec, 0), sec);
    res("security len", kc(GET_SECURITY, c, 0, 0, 0));
}

static void authority(long ses)
{
    printf("-- instantiation without authority\n");
    long k = must("ak", ak("user", "ak", "a", 1, SESSION));
    res("assume 0", kc(ASSUME, 0, 0, 0, 0));
    res("assume -1", kc(ASSUME, -1, 0, 0, 0));
    res("assume key", kc(ASSUME, k, 0, 0, 0));
    res("instantiate", kc(INSTANTIATE, k, (unsigned long)"x", 1, 0));
    res("instantiate bad payload", kc(INSTANTIATE, k, -4096UL, 8192, 0));
    res("instantiate 1M", kc(INSTANTIATE, k, (unsigned long)self, 1 << 20, 0));
    res("instantiate NULL 1M", kc(INSTANTIATE, k, 0, 1 << 20, 0));
    res("instantiate iov 1M", kc(INSTANTIATE_IOV, k, (unsigned long)(struct iovec[]){{self, 1 << 19}, {self, 1 << 19}}, 2, 0));
    res("instantiate iov NULL", kc(INSTANTIATE_IOV, k, 0, 5, 0));
    res("instantiate iov bad", kc(INSTANTIATE_IOV, k, 8, 1, 0));
    res("instantiate iov 2000", kc(INSTANTIATE_IOV, k, (unsigned long)self, 2000, 0));
    res("negate", kc(NEGATE, k, 10, 0, 0));
    res("reject 0", kc(REJECT, k, 10, 0, 0));
    res("reject 512", kc(REJECT, k, 10, 512, 0));
    res("reject 4095", kc(REJECT, k, 10, 4095, 0));
    res("reject EKEYREJECTED", kc(REJECT, k, 10, EKEYREJECTED, 0));
    ok("reqkey auth keyring", kc(GET_KEYRING_ID, REQKEY_AUTH, 1, 0, 0));
    ok("requestor keyring", kc(GET_KEYRING_ID, REQUESTOR, 1, 0, 0));
}

static void *thread_main(void *arg)
{
    long main_tid_ring = *(long *)arg;
    long mine = kc(GET_KEYRING_ID, THREAD, 0, 0, 0);
    printf("thread: own thread keyring=%d differs=%d\n", mine > 0, mine != main_tid_ring);
    long p = kc(GET_KEYRING_ID, PROCESS, 0, 0, 0);
    printf("thread: process keyring shared=%d\n", p > 0);
    return NULL;
}

static void special(long ses)
{
    printf("-- special keyrings\n");
    res("thread no create", kc(GET_KEYRING_ID, THREAD, 0, 0, 0));
    res("process no create", kc(GET_KEYRING_ID, PROCESS, 0, 0, 0));
    long tid = must("thread", kc(GET_KEYRING_ID, THREAD, 1, 0, 0));
    long pid = must("process", kc(GET_KEYRING_ID, PROCESS, 1, 0, 0));
    printf("thread again: same=%d\n", kc(GET_KEYRING_ID, THREAD, 0, 0, 0) == tid);
    printf("session: same=%d\n", kc(GET_KEYRING_ID, SESSION, 0, 0, 0) == ses);
    long usr = must("user", kc(GET_KEYRING_ID, USER, 0, 0, 0));
    long uses = must("user session", kc(GET_KEYRING_ID, USER_SESSION, 0, 0, 0));
    contents("user session", uses, usr);
    describe("describe thread", tid);
    describe("describe process", pid);
    describe("describe session", ses);
    describe("describe user", usr);
    describe("describe user session", uses);
    proc_line("proc session", ses);
    proc_line("proc user session", uses);
    res("group", kc(GET_KEYRING_ID, GROUP, 1, 0, 0));
    res("id 0", kc(GET_KEYRING_ID, 0, 1, 0, 0));
    res("id -9", kc(GET_KEYRING_ID, -9, 1, 0, 0));
    res("id missing", kc(GET_KEYRING_ID, 0x7ffffffe, 1, 0, 0));

    res("reqkey get", kc(SET_REQKEY, -1, 0, 0, 0));
    res("reqkey thread", kc(SET_REQKEY, 1, 0, 0, 0));
    printf("thread keyring kept: %d\n", kc(GET_KEYRING_ID, THREAD, 0, 0, 0) == tid);
    res("reqkey session", kc(SET_REQKEY, 3, 0, 0, 0));
    res("reqkey group", kc(SET_REQKEY, 6, 0, 0, 0));
    res("reqkey 8", kc(SET_REQKEY, 8, 0, 0, 0));
    res("reqkey get", kc(SET_REQKEY, -1, 0, 0, 0));

    /* the request-key default destination, and what an upcall leaves */
    upcall("request with callout", rk("user", "neg", "info", 0));
    contents("session after", ses, 0);
    int32_t ids[256];
    long n = kc(READ, ses, (unsigned long)ids, sizeof ids, 0);
    long neg = 0;
    for (long i = 0; i < n / 4 && i < 256; i++) {
        char d[64];
        if (kc(DESCRIBE, ids[i], (unsigned long)d, sizeof d, 0) > 0 && !strcmp(strrchr(d, ';'), ";neg"))
            neg = ids[i];
    }
    readkey("read negative", neg);
    describe("describe negative", neg);
    res("request negative", rk("user", "neg", NULL, 0));
    res("request negative with callout", rk("user", "neg", "info", 0));
    res("update negative", kc(UPDATE, neg, (unsigned long)"p", 1, 0));
    printf("add over negative: same=%d\n", ak("user", "neg", "p", 1, SESSION) == neg);
    readkey("read instantiated", neg);
    upcall("request into process", rk("user", "neg2", "info", PROCESS));
    contents("process", PROCESS, 0);
    res("setperm session search only", kc(SETPERM, SESSION, POS_SEARCH | POS_READ | POS_VIEW | POS_SETATTR, 0, 0));
    res("request into unwritable default", rk("user", "neg3", "info", 0));
    res("add into unwritable session", ak("user", "w", "w", 1, SESSION));
    res("session back", kc(SETPERM, SESSION, POS_ALL | USR_VIEW | USR_READ, 0, 0));
    kc(SET_REQKEY, 0, 0, 0, 0);

    pthread_t th;
    pthread_create(&th, NULL, thread_main, &tid);
    pthread_join(th, NULL);

    int pfd[2];
    pipe(pfd);
    pid_t c = fork();
    if (c == 0) {
        long r[3] = {kc(GET_KEYRING_ID, SESSION, 0, 0, 0), kc(GET_KEYRING_ID, PROCESS, 0, 0, 0),
                     kc(GET_KEYRING_ID, THREAD, 0, 0, 0)};
        write(pfd[1], r, sizeof r);
        _exit(0);
    }
    long r[3];
    read(pfd[0], r, sizeof r);
    waitpid(c, NULL, 0);
    printf("fork: session shared=%d process=%s thread=%s\n", r[0] == ses,
           r[1] < 0 ? "none" : "some", r[2] < 0 ? "none" : "some");

    char arg[32];
    snprintf(arg, sizeof arg, "%ld", ses);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        kc(GET_KEYRING_ID, PROCESS, 1, 0, 0);
        kc(GET_KEYRING_ID, THREAD, 1, 0, 0);
        kc(SET_REQKEY, 2, 0, 0, 0);
        execl(self, self, "--exec", arg, (char *)NULL);
        _exit(127);
    }
    waitpid(c, NULL, 0);
}

static void exec_report(long ses)
{
    printf("exec: session kept=%d\n", kc(GET_KEYRING_ID, SESSION, 0, 0, 0) == ses);
    res("exec: process", kc(GET_KEYRING_ID, PROCESS, 0, 0, 0));
    res("exec: thread", kc(GET_KEYRING_ID, THREAD, 0, 0, 0));
    res("exec: reqkey", kc(SET_REQKEY, -1, 0, 0, 0));
}

static void sessions(long ses)
{
    printf("-- sessions\n");
    long named = kc(JOIN, (unsigned long)"t_keys.named", 0, 0, 0);
    ok("join named", named);
    describe("describe named", named);
    long again = kc(JOIN, (unsigned long)"t_keys.named", 0, 0, 0);
    printf("join named again (not searchable by its owner): new=%d\n", again > 0 && again != named);
    res("owner may search", kc(SETPERM, again, POS_ALL | USR_VIEW | USR_READ | USR_SEARCH, 0, 0));
    res("join named, the session already", kc(JOIN, (unsigned long)"t_keys.named", 0, 0, 0));
    res("keep named", kc(LINK, again, PROCESS, 0, 0));
    must("join anon", kc(JOIN, 0, 0, 0, 0));
    printf("join named back: same=%d\n", kc(JOIN, (unsigned long)"t_keys.named", 0, 0, 0) == again);
    res("join dot", kc(JOIN, (unsigned long)".builtin_trusted_keys", 0, 0, 0));
    res("join bad pointer", kc(JOIN, 8, 0, 0, 0));
    printf("join user keyring by name: same=%d\n",
           kc(JOIN, (unsigned long)"_uid.0", 0, 0, 0) == kc(GET_KEYRING_ID, USER, 0, 0, 0));
    printf("session is a user keyring: anon on create=%d\n",
           kc(GET_KEYRING_ID, SESSION, 1, 0, 0) != kc(GET_KEYRING_ID, USER, 0, 0, 0));

    must("join anon", kc(JOIN, 0, 0, 0, 0));
    long mine = kc(GET_KEYRING_ID, SESSION, 0, 0, 0);
    int pfd[2];
    pipe(pfd);
    pid_t c = fork();
    if (c == 0) {
        long s = kc(JOIN, 0, 0, 0, 0);
        long r[2] = {s, kc(TO_PARENT, 0, 0, 0, 0)};
        write(pfd[1], r, sizeof r);
        _exit(0);
    }
    long r[2];
    read(pfd[0], r, sizeof r);
    waitpid(c, NULL, 0);
    long now = kc(GET_KEYRING_ID, SESSION, 0, 0, 0);
    printf("session to parent: %ld; parent now has it=%d, had another=%d\n", r[1], now == r[0], mine != now);
}

/* the thread keyring follows the fs ids; the others keep their owner */
static void fsids(void)
{
    printf("-- fs ids\n");
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        long tid = kc(GET_KEYRING_ID, THREAD, 1, 0, 0);
        long pid = kc(GET_KEYRING_ID, PROCESS, 1, 0, 0);
        setfsgid(4321);
        setfsuid(4321);
        describe("thread keyring", tid);
        describe("process keyring", pid);
        ok("add as fsuid 4321", ak("user", "f", "x", 1, THREAD));
        describe("its key", kc(SEARCH, THREAD, (unsigned long)"user", (unsigned long)"f", 0));
        setfsuid(0);
        setfsgid(0);
        describe("thread keyring", tid);
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
}

static void quota(void)
{
    printf("-- quotas of uid 4243\n");
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        if (setgroups(0, NULL) || setresgid(4243, 4243, 4243) || setresuid(4243, 4243, 4243)) {
            printf("setresuid: %s\n", en(errno));
            _exit(1);
        }
        long k = ak("user", "a", "x", 1, THREAD);
        ok("add as 4243", k);
        describe("describe as 4243", k);
        describe("describe thread keyring", kc(GET_KEYRING_ID, THREAD, 0, 0, 0));
        char line[256], want[16];
        snprintf(want, sizeof want, " 4243:");
        FILE *f = fopen("/proc/key-users", "r");
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, want, 6)) {
                int usage, nk, nik, qk, mk, qb, mb;
                if (sscanf(line + 6, "%d %d/%d %d/%d %d/%d", &usage, &nk, &nik, &qk, &mk, &qb, &mb) == 7)
                    printf("key-users: %d keys, %d bytes\n", qk, qb);
            }
        if (f)
            fclose(f);
        ok("payload 20000", ak("user", "b", big, 20000, THREAD));
        ok("payload 19000", ak("user", "b", big, 19000, THREAD));
        ok("payload 1000 more", ak("user", "c", big, 1000, THREAD));
        res("chown to root", kc(CHOWN, kc(GET_KEYRING_ID, THREAD, 0, 0, 0), 0, -1, 0));
        res("chgrp to root", kc(CHOWN, kc(GET_KEYRING_ID, THREAD, 0, 0, 0), -1, 0, 0));
        res("setperm own", kc(SETPERM, k, POS_ALL | USR_VIEW, 0, 0));
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);

    printf("-- quotas of uid 4244\n");
    fflush(stdout);
    c = fork();
    if (c == 0) {
        if (setgroups(0, NULL) || setresgid(4244, 4244, 4244) || setresuid(4244, 4244, 4244)) {
            printf("setresuid: %s\n", en(errno));
            _exit(1);
        }
        int maxkeys = 0;
        FILE *f = fopen("/proc/sys/kernel/keys/maxkeys", "r");
        if (f) {
            fscanf(f, "%d", &maxkeys);
            fclose(f);
        }
        int added = 0;
        char d[16];
        for (int i = 0; i < 1000; i++) {
            snprintf(d, sizeof d, "q%d", i);
            if (ak("user", d, "x", 1, THREAD) < 0)
                break;
            added++;
        }
        printf("keys until %s: maxkeys-1=%d\n", en(errno), added == maxkeys - 1);
        ok("user keyring when full", kc(GET_KEYRING_ID, USER, 0, 0, 0));
        ok("new session when full", kc(JOIN, 0, 0, 0, 0));
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (readlink("/proc/self/exe", self, sizeof self - 1) < 0)
        snprintf(self, sizeof self, "%s", argv[0]);
    if (argc > 2 && !strcmp(argv[1], "--exec")) {
        exec_report(atol(argv[2]));
        return 0;
    }
    long ses = kc(JOIN, 0, 0, 0, 0);
    ok("join anonymous session", ses);
    if (ses < 0)
        return 1;
    basics(ses);
    keyrings(ses);
    states(ses);
    perms(ses);
    authority(ses);
    special(ses);
    sessions(ses);
    fsids();
    quota();
    printf("done\n");
    return 0;
}
