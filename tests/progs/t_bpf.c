/* eBPF: bpf(2) maps (array, hash) and their errors, a socket filter
   attached with SO_ATTACH_BPF that counts packets and whose verdict cuts
   or drops them, run-time division by zero, and verifier refusals.
   Only errnos and values are printed (no verifier messages).  Needs
   CAP_BPF (root) natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define ALU64_IMM(op, d, i) INSN(BPF_ALU64 | (op) | BPF_K, d, 0, 0, i)
#define ALU64_REG(op, d, s) INSN(BPF_ALU64 | (op) | BPF_X, d, s, 0, 0)
#define ALU32_REG(op, d, s) INSN(BPF_ALU | (op) | BPF_X, d, s, 0, 0)
#define LD_MAP_FD(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)
#define LD_IMM64(d, v) INSN(BPF_LD | BPF_DW | BPF_IMM, d, 0, 0, (uint32_t)(v)), INSN(0, 0, 0, 0, (uint64_t)(v) >> 32)
#define LDX(sz, d, s, o) INSN(BPF_LDX | (sz) | BPF_MEM, d, s, o, 0)
#define STX(sz, d, s, o) INSN(BPF_STX | (sz) | BPF_MEM, d, s, o, 0)
#define ST(sz, d, o, i) INSN(BPF_ST | (sz) | BPF_MEM, d, 0, o, i)
#define XADD64(d, s, o) INSN(BPF_STX | BPF_DW | BPF_ATOMIC, d, s, o, BPF_ADD)
#define JMP_IMM(op, d, i, o) INSN(BPF_JMP | (op) | BPF_K, d, 0, o, i)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
/* r0 = &map[idx] or exit(0) (clobbers r1-r5) */
#define LOOKUP(fd, idx) LD_MAP_FD(1, fd), MOV64_REG(2, 10), ALU64_IMM(BPF_ADD, 2, -4), \
    ST(BPF_W, 2, 0, idx), CALL(BPF_FUNC_map_lookup_elem), JMP_IMM(BPF_JNE, 0, 0, 2), \
    MOV64_IMM(0, 0), EXIT()

static long bpf(int cmd, union bpf_attr *a)
{
    return syscall(__NR_bpf, cmd, a, sizeof(*a));
}

static const char *err(long r)
{
    static char buf[32];
    if (r >= 0)
        return "ok";
    snprintf(buf, sizeof buf, "errno %d", errno);
    return buf;
}

static int map_create(int type, int ks, int vs, int n)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = type; a.key_size = ks; a.value_size = vs; a.max_entries = n;
    return bpf(BPF_MAP_CREATE, &a);
}

static long elem(int cmd, int fd, const void *key, void *val, uint64_t flags)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = fd; a.key = (uintptr_t)key; a.value = (uintptr_t)val; a.flags = flags;
    return bpf(cmd, &a);
}

static uint64_t get(int fd, uint32_t idx)
{
    uint64_t v = 0xdead;
    elem(BPF_MAP_LOOKUP_ELEM, fd, &idx, &v, 0);
    return v;
}

static void set(int fd, uint32_t idx, uint64_t v)
{
    elem(BPF_MAP_UPDATE_ELEM, fd, &idx, &v, BPF_ANY);
}

static char logbuf[4096];

static int load(const struct bpf_insn *insns, int n, int log_size)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    a.insns = (uintptr_t)insns; a.insn_cnt = n;
    a.license = (uintptr_t)"GPL";
    logbuf[0] = 0;
    if (log_size) {
        a.log_buf = (uintptr_t)logbuf; a.log_size = log_size; a.log_level = 1;
    }
    return bpf(BPF_PROG_LOAD, &a);
}

#define LOAD(p) load(p, sizeof(p) / sizeof(p[0]), 0)

static void maps(void)
{
    uint32_t k = 0;
    uint64_t v = 0, v2;
    printf("array key 8: %s\n", err(map_create(BPF_MAP_TYPE_ARRAY, 8, 8, 4)));
    printf("array no entries: %s\n", err(map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 0)));
    printf("hash key 0: %s\n", err(map_create(BPF_MAP_TYPE_HASH, 0, 8, 4)));
    printf("ringbuf 4097: %s\n", err(map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, 4097)));
    printf("unknown type: %s\n", err(map_create(0x7fff, 4, 4, 1)));
    int rb = map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, 4096);
    printf("ringbuf 4096: %s\n", err(rb));
    close(rb);

    int a = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4);
    printf("array: %s\n", err(a));
    v = 1;
    const char *e = err(elem(BPF_MAP_LOOKUP_ELEM, a, &k, &v, 0));
    printf("lookup [0]: %s value %llu\n", e, (unsigned long long)v);
    k = 4;
    printf("lookup [4]: %s\n", err(elem(BPF_MAP_LOOKUP_ELEM, a, &k, &v, 0)));
    printf("update [4]: %s\n", err(elem(BPF_MAP_UPDATE_ELEM, a, &k, &v, BPF_ANY)));
    k = 1; v = 42;
    printf("update [1] noexist: %s\n", err(elem(BPF_MAP_UPDATE_ELEM, a, &k, &v, BPF_NOEXIST)));
    printf("update [1] exist: %s\n", err(elem(BPF_MAP_UPDATE_ELEM, a, &k, &v, BPF_EXIST)));
    printf("update [1] flags 3: %s\n", err(elem(BPF_MAP_UPDATE_ELEM, a, &k, &v, 3)));
    printf("get [1]: %llu\n", (unsigned long long)get(a, 1));
    printf("delete [1]: %s\n", err(elem(BPF_MAP_DELETE_ELEM, a, &k, NULL, 0)));
    uint32_t next = 99;
    e = err(elem(BPF_MAP_GET_NEXT_KEY, a, NULL, &next, 0));
    printf("next of NULL: %s %u\n", e, next);
    e = err(elem(BPF_MAP_GET_NEXT_KEY, a, &k, &next, 0));
    printf("next of 1: %s %u\n", e, next);
    k = 3;
    printf("next of 3: %s\n", err(elem(BPF_MAP_GET_NEXT_KEY, a, &k, &next, 0)));
    k = 77;
    e = err(elem(BPF_MAP_GET_NEXT_KEY, a, &k, &next, 0));
    printf("next of 77: %s %u\n", e, next);

    int h = map_create(BPF_MAP_TYPE_HASH, 8, 8, 2);
    uint64_t k1 = 1, k2 = 2, k3 = 3, nk;
    printf("hash: %s\n", err(h));
    printf("hash lookup empty: %s\n", err(elem(BPF_MAP_LOOKUP_ELEM, h, &k1, &v, 0)));
    printf("hash next of NULL empty: %s\n", err(elem(BPF_MAP_GET_NEXT_KEY, h, NULL, &nk, 0)));
    printf("hash update exist: %s\n", err(elem(BPF_MAP_UPDATE_ELEM, h, &k1, &v, BPF_EXIST)));
    printf("hash update noexist: %s\n", err(elem(BPF_MAP_UPDATE_ELEM, h, &k1, &v, BPF_NOEXIST)));
    printf("hash update noexist again: %s\n", err(elem(BPF_MAP_UPDATE_ELEM, h, &k1, &v, BPF_NOEXIST)));
    printf("hash second: %s\n", err(elem(BPF_MAP_UPDATE_ELEM, h, &k2, &v, BPF_ANY)));
    printf("hash third: %s\n", err(elem(BPF_MAP_UPDATE_ELEM, h, &k3, &v, BPF_ANY)));
    printf("hash replace: %s\n", err(elem(BPF_MAP_UPDATE_ELEM, h, &k2, &k3, BPF_ANY)));
    v2 = 0;
    e = err(elem(BPF_MAP_LOOKUP_ELEM, h, &k2, &v2, 0));
    printf("hash lookup: %s %llu\n", e, (unsigned long long)v2);
    int n = 0;
    void *prev = NULL;
    uint64_t cur;
    while (elem(BPF_MAP_GET_NEXT_KEY, h, prev, &nk, 0) == 0 && n < 10) {
        cur = nk; prev = &cur; n++;
    }
    printf("hash keys walked: %d (%s)\n", n, strerror(errno));
    printf("hash delete missing: %s\n", err(elem(BPF_MAP_DELETE_ELEM, h, &k3, NULL, 0)));
    printf("hash delete: %s\n", err(elem(BPF_MAP_DELETE_ELEM, h, &k1, NULL, 0)));
    printf("hash lookup deleted: %s\n", err(elem(BPF_MAP_LOOKUP_ELEM, h, &k1, &v, 0)));

    printf("delete with flags: %s\n", err(elem(BPF_MAP_DELETE_ELEM, h, &k2, NULL, 1)));
    printf("next key with flags: %s\n", err(elem(BPF_MAP_GET_NEXT_KEY, h, NULL, &nk, 1)));

    union bpf_attr ca;
    memset(&ca, 0, sizeof ca);
    ca.map_type = BPF_MAP_TYPE_ARRAY; ca.key_size = 4; ca.value_size = 8; ca.max_entries = 1;
    strcpy(ca.map_name, "bad-name");
    printf("map name with '-': %s\n", err(bpf(BPF_MAP_CREATE, &ca)));
    strcpy(ca.map_name, "good_name.1");
    int named = bpf(BPF_MAP_CREATE, &ca);
    printf("map name good: %s\n", err(named));
    close(named);
    memset(ca.map_name, 0, sizeof ca.map_name);
    ca.map_flags = BPF_F_RDONLY;
    int ro = bpf(BPF_MAP_CREATE, &ca);
    k = 0;
    printf("rdonly map: %s\n", err(ro));
    printf("rdonly lookup: %s\n", err(elem(BPF_MAP_LOOKUP_ELEM, ro, &k, &v, 0)));
    printf("rdonly update: %s\n", err(elem(BPF_MAP_UPDATE_ELEM, ro, &k, &v, 0)));
    close(ro);
    ca.map_flags = BPF_F_RDONLY | BPF_F_WRONLY;
    printf("rdonly|wronly: %s\n", err(bpf(BPF_MAP_CREATE, &ca)));

    /* /proc/self/fdinfo of a map: its type, sizes and flags */
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", a);
    FILE *fi = fopen(path, "r");
    while (fi && fgets(line, sizeof line, fi))
        if (!strncmp(line, "map_type", 8) || !strncmp(line, "key_size", 8) || !strncmp(line, "value_size", 10) ||
            !strncmp(line, "max_entries", 11) || !strncmp(line, "map_flags", 9))
            printf("fdinfo %s", line);
    if (fi)
        fclose(fi);

    int efd = eventfd(0, 0);
    printf("lookup on eventfd: %s\n", err(elem(BPF_MAP_LOOKUP_ELEM, efd, &k, &v, 0)));
    printf("lookup on fd 999: %s\n", err(elem(BPF_MAP_LOOKUP_ELEM, 999, &k, &v, 0)));
    printf("unknown command: %s\n", err(bpf(0x7fff, &(union bpf_attr){})));
    close(efd);
    close(h);
    close(a);
}

static void filter(void)
{
    int m = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4);
    /* map[0] += 1; map[1] = ctx->len; return map[2] */
    struct bpf_insn counter[] = {
        MOV64_REG(6, 1),
        LDX(BPF_W, 7, 6, 0),
        LOOKUP(m, 0),
        MOV64_IMM(1, 1),
        XADD64(0, 1, 0),
        LOOKUP(m, 1),
        STX(BPF_DW, 0, 7, 0),
        LOOKUP(m, 2),
        LDX(BPF_DW, 0, 0, 0),
        EXIT(),
    };
    int p = LOAD(counter);
    printf("load counter: %s\n", err(p));
    int sk[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sk);
    printf("attach map fd: %s\n", err(setsockopt(sk[1], SOL_SOCKET, SO_ATTACH_BPF, &m, sizeof m)));
    printf("attach: %s\n", err(setsockopt(sk[1], SOL_SOCKET, SO_ATTACH_BPF, &p, sizeof p)));
    char buf[64];
    static const uint64_t verdicts[] = {0xffff, 2, 0, 1};
    for (int i = 0; i < 4; i++) {
        set(m, 2, verdicts[i]);
        long w = write(sk[0], "hello!", 6);
        long r = recv(sk[1], buf, sizeof buf, MSG_DONTWAIT);
        printf("verdict %llu: sent %ld, received %ld%s%.*s\n", (unsigned long long)verdicts[i], w, r,
               r < 0 ? (errno == EAGAIN ? " EAGAIN" : " ?") : " ", r > 0 ? (int)r : 0, buf);
    }
    printf("packets counted %llu, last len %llu\n", (unsigned long long)get(m, 0), (unsigned long long)get(m, 1));
    int zero = 0;
    printf("detach: %s\n", err(setsockopt(sk[1], SOL_SOCKET, SO_DETACH_BPF, &zero, sizeof zero)));
    printf("detach again: %s\n", err(setsockopt(sk[1], SOL_SOCKET, SO_DETACH_BPF, &zero, sizeof zero)));
    write(sk[0], "x", 1);
    printf("after detach counted %llu\n", (unsigned long long)get(m, 0));
    close(sk[0]); close(sk[1]);

    /* UDP: the filter sees the 8-byte UDP header first, and never cuts it */
    int u[2];
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sin;
    u[0] = socket(AF_INET, SOCK_DGRAM, 0);
    u[1] = socket(AF_INET, SOCK_DGRAM, 0);
    bind(u[1], (struct sockaddr *)&sin, sizeof sin);
    getsockname(u[1], (struct sockaddr *)&sin, &sl);
    connect(u[0], (struct sockaddr *)&sin, sizeof sin);
    printf("udp attach: %s\n", err(setsockopt(u[1], SOL_SOCKET, SO_ATTACH_BPF, &p, sizeof p)));
    static const uint64_t udp_verdicts[] = {0xffff, 10, 3, 0};
    for (int i = 0; i < 4; i++) {
        set(m, 2, udp_verdicts[i]);
        long w = send(u[0], "hello!", 6, 0);
        usleep(10000);
        long r = recv(u[1], buf, sizeof buf, MSG_DONTWAIT);
        printf("udp verdict %llu: sent %ld, received %ld%s%.*s, len seen %llu\n",
               (unsigned long long)udp_verdicts[i], w, r,
               r < 0 ? (errno == EAGAIN ? " EAGAIN" : " ?") : " ", r > 0 ? (int)r : 0, buf,
               (unsigned long long)get(m, 1));
    }
    close(u[0]); close(u[1]); close(p); close(m);
}

static void division(void)
{
    int m = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 8);
    struct bpf_insn prog[] = {
        LOOKUP(m, 7),
        LDX(BPF_DW, 6, 0, 0),          /* r6 = map[7] = 0, unknown to the verifier */
        MOV64_IMM(7, 7),
        ALU64_REG(BPF_DIV, 7, 6),      /* 7 / 0 = 0 */
        MOV64_IMM(8, 7),
        ALU64_REG(BPF_MOD, 8, 6),      /* 7 % 0 = 7 */
        LD_IMM64(9, 0xffffffff00000005ULL),
        ALU32_REG(BPF_MOD, 9, 6),      /* w9 % 0: w9, upper half cleared */
        LOOKUP(m, 0), STX(BPF_DW, 0, 7, 0), INSN(0, 0, 0, 0, 0),
    };
    /* the last (placeholder) instruction above is dropped: the rest follows */
    struct bpf_insn tail[] = {
        LOOKUP(m, 1), STX(BPF_DW, 0, 8, 0),
        LOOKUP(m, 2), STX(BPF_DW, 0, 9, 0),
        MOV64_IMM(0, 0), EXIT(),
    };
    struct bpf_insn all[64];
    int n = sizeof prog / sizeof prog[0] - 1;
    memcpy(all, prog, n * sizeof prog[0]);
    memcpy(all + n, tail, sizeof tail);
    n += sizeof tail / sizeof tail[0];
    int p = load(all, n, 0);
    printf("load division: %s\n", err(p));
    int sk[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sk);
    setsockopt(sk[1], SOL_SOCKET, SO_ATTACH_BPF, &p, sizeof p);
    write(sk[0], "x", 1);
    printf("7/0=%llu 7%%0=%llu w%%0=%#llx\n", (unsigned long long)get(m, 0),
           (unsigned long long)get(m, 1), (unsigned long long)get(m, 2));
    close(sk[0]); close(sk[1]); close(p); close(m);
}

static void verifier(void)
{
    int m = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 1);
    int h = map_create(BPF_MAP_TYPE_HASH, 4, 8, 1);
    struct bpf_insn no_r0[] = { EXIT() };
    struct bpf_insn bad_helper[] = { CALL(9999), EXIT() };
    struct bpf_insn div_imm0[] = { MOV64_IMM(0, 1), ALU64_IMM(BPF_DIV, 0, 0), EXIT() };
    struct bpf_insn jump_out[] = { MOV64_IMM(0, 0), JMP_IMM(BPF_JEQ, 0, 0, 5), EXIT() };
    struct bpf_insn bad_op[] = { INSN(0xff, 0, 0, 0, 0), MOV64_IMM(0, 0), EXIT() };
    struct bpf_insn no_null_check[] = {
        LD_MAP_FD(1, h), MOV64_REG(2, 10), ALU64_IMM(BPF_ADD, 2, -4), ST(BPF_W, 2, 0, 0),
        CALL(BPF_FUNC_map_lookup_elem), LDX(BPF_DW, 0, 0, 0), EXIT() };
    struct bpf_insn value_oob[] = { LOOKUP(m, 0), LDX(BPF_DW, 0, 0, 8), EXIT() };
    struct bpf_insn write_ctx_len[] = { ST(BPF_W, 1, 0, 1), MOV64_IMM(0, 0), EXIT() };
    struct bpf_insn write_fp[] = { MOV64_IMM(10, 0), MOV64_IMM(0, 0), EXIT() };
    struct bpf_insn ok[] = { MOV64_IMM(0, 0), EXIT() };
    printf("no r0: %s\n", err(LOAD(no_r0)));
    printf("bad helper: %s\n", err(LOAD(bad_helper)));
    printf("div by imm 0: %s\n", err(LOAD(div_imm0)));
    printf("jump out: %s\n", err(LOAD(jump_out)));
    printf("bad opcode: %s\n", err(LOAD(bad_op)));
    printf("no null check: %s\n", err(LOAD(no_null_check)));
    printf("value oob: %s\n", err(LOAD(value_oob)));
    printf("write ctx len: %s\n", err(LOAD(write_ctx_len)));
    printf("write fp: %s\n", err(LOAD(write_fp)));
    printf("no insns: %s\n", err(load(ok, 0, 0)));
    long r = load(no_r0, 1, sizeof logbuf);
    printf("refused with log: %s, log written: %d\n", err(r), logbuf[0] != 0);
    int p = load(ok, 2, sizeof logbuf);
    printf("accepted with log: %s\n", err(p));
    close(p);
    close(h);
    close(m);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    maps();
    filter();
    division();
    verifier();
    printf("done\n");
    return 0;
}
