/* fuzz: a random-syscall fuzzer; the kernel under it must survive.
 *
 *   fuzz [-v] [-u UID[:GID]] [-b BATCH] [-n PER_BATCH] [-d DIR] SEED [CALLS]
 *
 * Makes CALLS (default 20000) random system calls, in batches of PER_BATCH
 * (default 500).  Each batch runs in a forked child that sets up a pool of
 * objects (files, pipes, sockets, event fds, a memory arena), makes its
 * calls and _exits; damage (a killed child, a changed mask, setuid, a broken
 * stack) stays in that child.  The parent watches a progress counter in
 * shared memory: a child that stops making progress for 2 s is killed, a
 * stopped one continued.  Blocking calls are cut short by a 10 ms interval
 * timer whose SIGALRM handler has no SA_RESTART (re-armed after any call
 * that may have changed it).  The child handles every signal (a sent
 * SIGSEGV returns, a real fault ends the child), its stdin, stdout and
 * stderr are /dev/null.
 *
 * The calls of batch B come from a PRNG seeded with (SEED, B) and never
 * depend on results, so a seed is reproducible: -v logs every call (before
 * it is made, then its result) on stderr, -b B runs batch B alone.  Without
 * -v the output is the last line only.
 * -u drops to UID (and GID, default UID) before anything else, to fuzz the
 * unprivileged paths.  The last line is "seed N: done".
 *
 * Arguments come from a per-syscall signature (fd, path, buffer, struct,
 * length, flags, pid, uid, ...) most of the time and from a generic mixer
 * otherwise: small values, -1, values near 2^31, 2^32, 2^63, pointers into
 * readable, writable, read-only and PROT_NONE pages, unmapped, kernel-half
 * and non-canonical addresses, the stub page, valid and invalid fds.
 *
 * Defanged, so that the run ends only if the kernel does: exit/exit_group
 * (only at the end), reboot and pivot_root are never made; signals, rlimits
 * and owners only target the child itself, its group or pids that do not
 * exist, never the fuzzer's parent, init or -1; fork/vfork/clone children
 * _exit at once (in assembly, without touching a possibly bogus stack);
 * execve only sees the scratch paths; memory-management calls only reach the
 * arena's mm zone (or bad addresses), never the fuzzer's code or stack;
 * mount/umount only target scratch directories, never hostfs; mknod never
 * makes terminals or disks; rt_sigreturn gets a frame in the arena (one
 * that resumes the batch, or garbage).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define LOGFD 1000              /* the -v log; /dev/null otherwise, so fd tables match */
#define NSYS 467                /* x86-64 numbers 0..466 */
#define ARENA 0x200000000UL     /* fuzz memory, inherited by every batch child */
#define SHARED 0x1f0000000UL    /* parent <-> child progress page */

/* arena layout, in pages from ARENA */
#define STRUCT_PG 0             /* 8 pages: struct arguments, one page per argument */
#define STR_PG 8                /* copies of the path pool (writable) */
#define RO_PG 9                 /* read-only */
#define NONE_PG 10              /* PROT_NONE */
#define HOLE_PG 11              /* unmapped */
#define BUF_PG 12               /* 4 pages: buffers, followed by ... */
#define BUFGUARD_PG 16          /* ... a PROT_NONE page (copies that cross it fault) */
#define MM_PG 18                /* 64 pages: the only memory mm calls may touch */
#define MM_PAGES 64
#define ARENA_PAGES 96          /* MM_PG + MM_PAGES .. ARENA_PAGES: unmapped */

#define A(pg) (ARENA + (pg) * PAGE)

struct progress {
    volatile long calls;        /* calls started by the current child */
    volatile long nr;
};

static struct progress *prog = (struct progress *)SHARED;
static uint64_t rs;             /* PRNG state */
static int verbose;
static long seed, batch_size = 500;
static char scratch[256];
static pid_t self_pid;
static unsigned long saved_fs;
static int pool[64];            /* fds opened by the batch child */
static int npool;

/* ---- raw system calls ------------------------------------------------- */

long fz_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
long fz_forkcall(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
long fz_sigreturn(uint64_t *uc, long resume);
void fz_restorer(void);
void fz_text_target(void);

/* fz_forkcall: a new task (fork, vfork, clone, clone3 returning 0) runs
 * exit(0) at once, on whatever stack it was given. */
__asm__(
    ".text\n"
    ".globl fz_syscall\n"
    "fz_syscall:\n"
    "  mov %rdi, %rax\n  mov %rsi, %rdi\n  mov %rdx, %rsi\n  mov %rcx, %rdx\n"
    "  mov %r8, %r10\n  mov %r9, %r8\n  mov 8(%rsp), %r9\n"
    "  syscall\n  ret\n"
    ".globl fz_forkcall\n"
    "fz_forkcall:\n"
    "  mov %rdi, %rax\n  mov %rsi, %rdi\n  mov %rdx, %rsi\n  mov %rcx, %rdx\n"
    "  mov %r8, %r10\n  mov %r9, %r8\n  mov 8(%rsp), %r9\n"
    "  syscall\n  test %rax, %rax\n  jnz 1f\n"
    "  mov $60, %eax\n  xor %edi, %edi\n  syscall\n  ud2\n"
    "1: ret\n"
    /* rt_sigreturn with the ucontext at uc (the frame's pretcode just
     * below); with resume set, the frame's rsp and rip bring the task back
     * here, where the callee-saved registers are still on the stack */
    ".globl fz_sigreturn\n"
    "fz_sigreturn:\n"
    "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
    "  test %rsi, %rsi\n  jz 1f\n"
    "  mov %rsp, 160(%rdi)\n"          /* uc_mcontext.rsp: 40 + 15 * 8 */
    "  lea 2f(%rip), %rax\n  mov %rax, 168(%rdi)\n"   /* uc_mcontext.rip */
    "1: mov %rdi, %rsp\n  mov $15, %eax\n  syscall\n  ud2\n"
    "2: pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n  ret\n"
    ".globl fz_restorer\n"
    "fz_restorer:\n"
    "  mov $15, %eax\n  syscall\n  ud2\n"
    /* never run: a code pointer for buffers, in its own 64 KiB so that a
     * kernel that writes through it spoils nothing the child runs */
    ".section .text.fz_target, \"ax\"\n"
    ".balign 4096\n"
    ".globl fz_text_target\n"
    "fz_text_target:\n"
    "  ret\n  .fill 65535, 1, 0xcc\n"
    ".text\n");

#define sys0(n) fz_syscall(n, 0, 0, 0, 0, 0, 0)
#define sys1(n, a) fz_syscall(n, (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) fz_syscall(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) fz_syscall(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) fz_syscall(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* ---- PRNG: xorshift64*, seeded by splitmix64 ------------------------------ */

static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t rnd(void)
{
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return rs * 0x2545f4914f6cdd1dULL;
}

static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static int chance(int pct) { return (int)below(100) < pct; }
#define PICK(arr) (arr[below(sizeof(arr) / sizeof(arr[0]))])

/* ---- the syscall table -------------------------------------------------------
 * Argument kinds, one letter each:
 *   f fd            d dirfd          p path          D scratch dir path
 *   b buffer ptr    s struct ptr     n length        x flags
 *   i small int     m mm-zone addr   l mm length     P pid (target)
 *   w wait pid      u uid/gid        g signal        o offset
 *   k ipc id/key    h sigaction ptr  q sigset ptr    z sigset size
 *   M mode          t poll timeout   c clone flags   X xattr name
 *   Y mqueue name   I ioctl request  S stack_t ptr  T timespecs ptr
 *   A sockaddr ptr  H msghdr ptr     V iovec array   E sigevent ptr
 *   F pollfd array  N socket fd      e epoll fd       a anything
 */
struct sc {
    const char *name;
    const char *args;
};

static const struct sc tab[NSYS] = {
    [0] = {"read", "fbn"}, [1] = {"write", "fbn"}, [2] = {"open", "pxM"},
    [3] = {"close", "f"}, [4] = {"stat", "pb"}, [5] = {"fstat", "fb"},
    [6] = {"lstat", "pb"}, [7] = {"poll", "Fit"}, [8] = {"lseek", "foi"},
    [9] = {"mmap", "mlxxfo"}, [10] = {"mprotect", "mlx"}, [11] = {"munmap", "ml"},
    [12] = {"brk", "a"}, [13] = {"rt_sigaction", "ghbz"}, [14] = {"rt_sigprocmask", "iqbz"},
    [15] = {"rt_sigreturn", ""}, [16] = {"ioctl", "fIa"}, [17] = {"pread64", "fbno"},
    [18] = {"pwrite64", "fbno"}, [19] = {"readv", "fVi"}, [20] = {"writev", "fVi"},
    [21] = {"access", "pi"}, [22] = {"pipe", "b"}, [23] = {"select", "issss"},
    [24] = {"sched_yield", ""}, [25] = {"mremap", "mllxm"}, [26] = {"msync", "mlx"},
    [27] = {"mincore", "mlb"}, [28] = {"madvise", "mli"}, [29] = {"shmget", "knx"},
    [30] = {"shmat", "kmx"}, [31] = {"shmctl", "kis"}, [32] = {"dup", "f"},
    [33] = {"dup2", "ff"}, [34] = {"pause", ""}, [35] = {"nanosleep", "Tb"},
    [36] = {"getitimer", "ib"}, [37] = {"alarm", "i"}, [38] = {"setitimer", "iTb"},
    [39] = {"getpid", ""}, [40] = {"sendfile", "ffbn"}, [41] = {"socket", "iii"},
    [42] = {"connect", "NAn"}, [43] = {"accept", "Nbb"}, [44] = {"sendto", "NbnxAn"},
    [45] = {"recvfrom", "Nbnxbb"}, [46] = {"sendmsg", "NHx"}, [47] = {"recvmsg", "NHx"},
    [48] = {"shutdown", "Ni"}, [49] = {"bind", "NAn"}, [50] = {"listen", "Ni"},
    [51] = {"getsockname", "Nbb"}, [52] = {"getpeername", "Nbb"}, [53] = {"socketpair", "iiib"},
    [54] = {"setsockopt", "Niisn"}, [55] = {"getsockopt", "Niibb"}, [56] = {"clone", "cbbba"},
    [57] = {"fork", ""}, [58] = {"vfork", ""}, [59] = {"execve", "pss"},
    [60] = {"exit", "i"}, [61] = {"wait4", "wbxb"}, [62] = {"kill", "Pg"},
    [63] = {"uname", "b"}, [64] = {"semget", "kix"}, [65] = {"semop", "ksn"},
    [66] = {"semctl", "kiia"}, [67] = {"shmdt", "m"}, [68] = {"msgget", "kx"},
    [69] = {"msgsnd", "ksnx"}, [70] = {"msgrcv", "ksnix"}, [71] = {"msgctl", "kis"},
    [72] = {"fcntl", "fia"}, [73] = {"flock", "fi"}, [74] = {"fsync", "f"},
    [75] = {"fdatasync", "f"}, [76] = {"truncate", "po"}, [77] = {"ftruncate", "fo"},
    [78] = {"getdents", "fbn"}, [79] = {"getcwd", "bn"}, [80] = {"chdir", "p"},
    [81] = {"fchdir", "f"}, [82] = {"rename", "pp"}, [83] = {"mkdir", "pM"},
    [84] = {"rmdir", "p"}, [85] = {"creat", "pM"}, [86] = {"link", "pp"},
    [87] = {"unlink", "p"}, [88] = {"symlink", "pp"}, [89] = {"readlink", "pbn"},
    [90] = {"chmod", "pM"}, [91] = {"fchmod", "fM"}, [92] = {"chown", "puu"},
    [93] = {"fchown", "fuu"}, [94] = {"lchown", "puu"}, [95] = {"umask", "M"},
    [96] = {"gettimeofday", "bb"}, [97] = {"getrlimit", "ib"}, [98] = {"getrusage", "ib"},
    [99] = {"sysinfo", "b"}, [100] = {"times", "b"}, [101] = {"ptrace", "iPbb"},
    [102] = {"getuid", ""}, [103] = {"syslog", "ibn"}, [104] = {"getgid", ""},
    [105] = {"setuid", "u"}, [106] = {"setgid", "u"}, [107] = {"geteuid", ""},
    [108] = {"getegid", ""}, [109] = {"setpgid", "PP"}, [110] = {"getppid", ""},
    [111] = {"getpgrp", ""}, [112] = {"setsid", ""}, [113] = {"setreuid", "uu"},
    [114] = {"setregid", "uu"}, [115] = {"getgroups", "ib"}, [116] = {"setgroups", "is"},
    [117] = {"setresuid", "uuu"}, [118] = {"getresuid", "bbb"}, [119] = {"setresgid", "uuu"},
    [120] = {"getresgid", "bbb"}, [121] = {"getpgid", "P"}, [122] = {"setfsuid", "u"},
    [123] = {"setfsgid", "u"}, [124] = {"getsid", "P"}, [125] = {"capget", "ss"},
    [126] = {"capset", "ss"}, [127] = {"rt_sigpending", "bz"}, [128] = {"rt_sigtimedwait", "qbTz"},
    [129] = {"rt_sigqueueinfo", "Pgs"}, [130] = {"rt_sigsuspend", "qz"}, [131] = {"sigaltstack", "Sb"},
    [132] = {"utime", "ps"}, [133] = {"mknod", "pMi"}, [134] = {"uselib", "p"},
    [135] = {"personality", "x"}, [136] = {"ustat", "ib"}, [137] = {"statfs", "pb"},
    [138] = {"fstatfs", "fb"}, [139] = {"sysfs", "iaa"}, [140] = {"getpriority", "iP"},
    [141] = {"setpriority", "iPi"}, [142] = {"sched_setparam", "Ps"}, [143] = {"sched_getparam", "Pb"},
    [144] = {"sched_setscheduler", "Pis"}, [145] = {"sched_getscheduler", "P"},
    [146] = {"sched_get_priority_max", "i"}, [147] = {"sched_get_priority_min", "i"},
    [148] = {"sched_rr_get_interval", "Pb"}, [149] = {"mlock", "ml"}, [150] = {"munlock", "ml"},
    [151] = {"mlockall", "x"}, [152] = {"munlockall", ""}, [153] = {"vhangup", ""},
    [154] = {"modify_ldt", "ibn"}, [155] = {"pivot_root", "DD"}, [156] = {"_sysctl", "s"},
    [157] = {"prctl", "iaaaa"}, [158] = {"arch_prctl", "ia"}, [159] = {"adjtimex", "s"},
    [160] = {"setrlimit", "is"}, [161] = {"chroot", "p"}, [162] = {"sync", ""},
    [163] = {"acct", "p"}, [164] = {"settimeofday", "ss"}, [165] = {"mount", "pDaxs"},
    [166] = {"umount2", "Di"}, [167] = {"swapon", "px"}, [168] = {"swapoff", "p"},
    [169] = {"reboot", "iiia"}, [170] = {"sethostname", "bn"}, [171] = {"setdomainname", "bn"},
    [172] = {"iopl", "i"}, [173] = {"ioperm", "aai"}, [174] = {"create_module", "pn"},
    [175] = {"init_module", "bnp"}, [176] = {"delete_module", "px"}, [177] = {"get_kernel_syms", "b"},
    [178] = {"query_module", "pibnb"}, [179] = {"quotactl", "ipib"}, [180] = {"nfsservctl", "isb"},
    [181] = {"getpmsg", "fssss"}, [182] = {"putpmsg", "fssii"}, [183] = {"afs_syscall", "aaaaa"},
    [184] = {"tuxcall", "aaa"}, [185] = {"security", "aaa"}, [186] = {"gettid", ""},
    [187] = {"readahead", "fon"}, [188] = {"setxattr", "pXbnx"}, [189] = {"lsetxattr", "pXbnx"},
    [190] = {"fsetxattr", "fXbnx"}, [191] = {"getxattr", "pXbn"}, [192] = {"lgetxattr", "pXbn"},
    [193] = {"fgetxattr", "fXbn"}, [194] = {"listxattr", "pbn"}, [195] = {"llistxattr", "pbn"},
    [196] = {"flistxattr", "fbn"}, [197] = {"removexattr", "pX"}, [198] = {"lremovexattr", "pX"},
    [199] = {"fremovexattr", "fX"}, [200] = {"tkill", "Pg"}, [201] = {"time", "b"},
    [202] = {"futex", "bibTbi"}, [203] = {"sched_setaffinity", "Pnb"}, [204] = {"sched_getaffinity", "Pnb"},
    [205] = {"set_thread_area", "s"}, [206] = {"io_setup", "ib"}, [207] = {"io_destroy", "a"},
    [208] = {"io_getevents", "aiisb"}, [209] = {"io_submit", "ais"}, [210] = {"io_cancel", "asb"},
    [211] = {"get_thread_area", "s"}, [212] = {"lookup_dcookie", "abn"}, [213] = {"epoll_create", "i"},
    [214] = {"epoll_ctl_old", "fifs"}, [215] = {"epoll_wait_old", "fbit"}, [216] = {"remap_file_pages", "mlixx"},
    [217] = {"getdents64", "fbn"}, [218] = {"set_tid_address", "b"}, [219] = {"restart_syscall", ""},
    [220] = {"semtimedop", "ksnT"}, [221] = {"fadvise64", "foni"}, [222] = {"timer_create", "iEb"},
    [223] = {"timer_settime", "ixTb"}, [224] = {"timer_gettime", "ib"}, [225] = {"timer_getoverrun", "i"},
    [226] = {"timer_delete", "i"}, [227] = {"clock_settime", "is"}, [228] = {"clock_gettime", "ib"},
    [229] = {"clock_getres", "ib"}, [230] = {"clock_nanosleep", "ixTb"}, [231] = {"exit_group", "i"},
    [232] = {"epoll_wait", "ebit"}, [233] = {"epoll_ctl", "eifs"}, [234] = {"tgkill", "PPg"},
    [235] = {"utimes", "pT"}, [236] = {"vserver", "aaa"}, [237] = {"mbind", "mlisnx"},
    [238] = {"set_mempolicy", "isn"}, [239] = {"get_mempolicy", "bbnax"}, [240] = {"mq_open", "YxMs"},
    [241] = {"mq_unlink", "Y"}, [242] = {"mq_timedsend", "fbniT"}, [243] = {"mq_timedreceive", "fbnbT"},
    [244] = {"mq_notify", "fE"}, [245] = {"mq_getsetattr", "fsb"}, [246] = {"kexec_load", "ansx"},
    [247] = {"waitid", "iwbxb"}, [248] = {"add_key", "pbbni"}, [249] = {"request_key", "ppbi"},
    [250] = {"keyctl", "iaaaa"}, [251] = {"ioprio_set", "iPi"}, [252] = {"ioprio_get", "iP"},
    [253] = {"inotify_init", ""}, [254] = {"inotify_add_watch", "fpx"}, [255] = {"inotify_rm_watch", "fi"},
    [256] = {"migrate_pages", "Pnbb"}, [257] = {"openat", "dpxM"}, [258] = {"mkdirat", "dpM"},
    [259] = {"mknodat", "dpMi"}, [260] = {"fchownat", "dpuux"}, [261] = {"futimesat", "dps"},
    [262] = {"newfstatat", "dpbx"}, [263] = {"unlinkat", "dpx"}, [264] = {"renameat", "dpdp"},
    [265] = {"linkat", "dpdpx"}, [266] = {"symlinkat", "pdp"}, [267] = {"readlinkat", "dpbn"},
    [268] = {"fchmodat", "dpMx"}, [269] = {"faccessat", "dpix"}, [270] = {"pselect6", "issss"},
    [271] = {"ppoll", "FiTqz"}, [272] = {"unshare", "c"}, [273] = {"set_robust_list", "bn"},
    [274] = {"get_robust_list", "Pbb"}, [275] = {"splice", "fbfbnx"}, [276] = {"tee", "ffnx"},
    [277] = {"sync_file_range", "foox"}, [278] = {"vmsplice", "fVix"}, [279] = {"move_pages", "Pnsssx"},
    [280] = {"utimensat", "dpTx"}, [281] = {"epoll_pwait", "ebitqz"}, [282] = {"signalfd", "fqz"},
    [283] = {"timerfd_create", "ix"}, [284] = {"eventfd", "i"}, [285] = {"fallocate", "fioo"},
    [286] = {"timerfd_settime", "fxTb"}, [287] = {"timerfd_gettime", "fb"}, [288] = {"accept4", "Nbbx"},
    [289] = {"signalfd4", "fqzx"}, [290] = {"eventfd2", "ix"}, [291] = {"epoll_create1", "x"},
    [292] = {"dup3", "ffx"}, [293] = {"pipe2", "bx"}, [294] = {"inotify_init1", "x"},
    [295] = {"preadv", "fVioo"}, [296] = {"pwritev", "fVioo"}, [297] = {"rt_tgsigqueueinfo", "PPgs"},
    [298] = {"perf_event_open", "sPifx"}, [299] = {"recvmmsg", "NsixT"}, [300] = {"fanotify_init", "xx"},
    [301] = {"fanotify_mark", "fxxdp"}, [302] = {"prlimit64", "Pisb"}, [303] = {"name_to_handle_at", "dpsbx"},
    [304] = {"open_by_handle_at", "fsx"}, [305] = {"clock_adjtime", "is"}, [306] = {"syncfs", "f"},
    [307] = {"sendmmsg", "Nsix"}, [308] = {"setns", "fc"}, [309] = {"getcpu", "bbb"},
    [310] = {"process_vm_readv", "Psnsnx"}, [311] = {"process_vm_writev", "Psnsnx"},
    [312] = {"kcmp", "PPiaa"}, [313] = {"finit_module", "fpx"}, [314] = {"sched_setattr", "Psx"},
    [315] = {"sched_getattr", "Pbnx"}, [316] = {"renameat2", "dpdpx"}, [317] = {"seccomp", "ixs"},
    [318] = {"getrandom", "bnx"}, [319] = {"memfd_create", "px"}, [320] = {"kexec_file_load", "ffnpx"},
    [321] = {"bpf", "isn"}, [322] = {"execveat", "dpssx"}, [323] = {"userfaultfd", "x"},
    [324] = {"membarrier", "ixi"}, [325] = {"mlock2", "mlx"}, [326] = {"copy_file_range", "fbfbnx"},
    [327] = {"preadv2", "fVioox"}, [328] = {"pwritev2", "fVioox"}, [329] = {"pkey_mprotect", "mlxi"},
    [330] = {"pkey_alloc", "xx"}, [331] = {"pkey_free", "i"}, [332] = {"statx", "dpxxb"},
    [333] = {"io_pgetevents", "aiisbs"}, [334] = {"rseq", "bnxi"},
    [424] = {"pidfd_send_signal", "fgsx"}, [425] = {"io_uring_setup", "is"},
    [426] = {"io_uring_enter", "fiixsn"}, [427] = {"io_uring_register", "fisi"},
    [428] = {"open_tree", "dDx"}, [429] = {"move_mount", "dDdDx"}, [430] = {"fsopen", "px"},
    [431] = {"fsconfig", "fippi"}, [432] = {"fsmount", "fxx"}, [433] = {"fspick", "dDx"},
    [434] = {"pidfd_open", "Px"}, [435] = {"clone3", "sn"}, [436] = {"close_range", "ffx"},
    [437] = {"openat2", "dpsn"}, [438] = {"pidfd_getfd", "ffx"}, [439] = {"faccessat2", "dpix"},
    [440] = {"process_madvise", "fsiix"}, [441] = {"epoll_pwait2", "ebiTqz"},
    [442] = {"mount_setattr", "dDxsn"}, [443] = {"quotactl_fd", "fiub"},
    [444] = {"landlock_create_ruleset", "snx"}, [445] = {"landlock_add_rule", "fisx"},
    [446] = {"landlock_restrict_self", "fx"}, [447] = {"memfd_secret", "x"},
    [448] = {"process_mrelease", "fx"}, [449] = {"futex_waitv", "sixsi"},
    [450] = {"set_mempolicy_home_node", "mlix"}, [451] = {"cachestat", "fssx"},
    [452] = {"fchmodat2", "dpMx"}, [453] = {"map_shadow_stack", "mnx"}, [454] = {"futex_wake", "bxix"},
    [455] = {"futex_wait", "bxxxsi"}, [456] = {"futex_requeue", "sxii"}, [457] = {"statmount", "sbnx"},
    [458] = {"listmount", "sbnx"}, [459] = {"lsm_get_self_attr", "ibbx"},
    [460] = {"lsm_set_self_attr", "isnx"}, [461] = {"lsm_list_modules", "bbx"},
    [462] = {"mseal", "mlx"}, [463] = {"setxattrat", "dpxXsn"}, [464] = {"getxattrat", "dpxXsn"},
    [465] = {"listxattrat", "dpxbn"}, [466] = {"removexattrat", "dpxX"},
};

/* never made: they would end the run (or the machine) for the wrong reason */
static int forbidden(long nr)
{
    return nr == SYS_exit || nr == SYS_exit_group || nr == SYS_reboot || nr == SYS_pivot_root;
}

/* ---- value pools --------------------------------------------------------- */

static const uint64_t boundary[] = {
    0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
    0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff, 0x100000000,
    0x100000001, 0x7fffffffffffffff, 0x8000000000000000, 0xffffffff80000000,
    0xfffffffffffff000, 0xffffffffffffffff, 0xfffffffffffffffe, 4095, 4096, 4097,
    0x7ffffffff000, 0x800000000000, 0xffff800000000000, 1UL << 62, 1UL << 48,
};

static const uint64_t bad_ptrs[] = {
    0, 1, 8, 0xfff, 0x1000,
    0xffff800000000000, 0xffff888000000000, 0xffffffff81000000,
    0xffffffffff600000, 0xfffffffffffff000, 0xffffffffffffffff,     /* kernel half, vsyscall */
    0x0000800000000000, 0x8000000000000000, 0x7fffffffffffffff,     /* non-canonical */
    0x00007ffffffff000, 0x00007fffffffffff,                          /* TASK_SIZE edge */
    0x10000, 0x10800, 0x10ff8, 0x100000000000,                        /* the stub page; its old place */
};

/* paths: everything relative lands in the scratch directory; nothing here
 * (or reachable from it by the symlinks made below) names the system */
static const char *const paths[] = {
    "f0", "f1", "f2", "d0", "d0/f3", "d0/d1", "d0/d1/f4", "l0", "l1", "l2", "l3",
    "fifo0", "sock0", "sock1", "null", "zero", "full", "urandom", "ptmx", "nonexistent",
    "new0", "d0/new1", "d0/d1/new2",
    "d0/nonexistent/x", "f0/", "d0/", "d0/../f0", "f0/..", "./f1", "", ".",
    "/proc/self/status", "/proc/self/maps", "/proc/self/stat", "/proc/self/fd",
    "/proc/self/task", "/proc/self/cwd", "/proc/meminfo", "/proc/mounts", "/sys/kernel",
    "/proc/self/fdinfo", "/proc/self/environ", "/proc/self/cmdline",
    "\xff\xfe\x80name", "f0\n", "d0//d1///f4",
};

/* scratch-only paths, for mount, umount2 and other whole-tree operations */
static const char *const dirs[] = {"d0", "d0/d1", "f0", "l2", "nonexistent", "fifo0", "."};

static const char *const fstypes[] = {
    "tmpfs", "proc", "sysfs", "devtmpfs", "devpts", "ext2", "ext4", "mqueue", "ramfs",
    "none", "", "bogusfs", "cgroup2",
};

static const char *const mount_data[] = {
    "size=16k", "size=0", "nr_inodes=2", "mode=0", "mode=01777", "uid=1000,gid=1000",
    "size=-1", "size=99999999999999999999", "ptmxmode=0666,newinstance", "hidepid=2",
    "ro,noexec", "", "x=y=z,,,",
};

static const char *const xattrs[] = {
    "user.a", "user.b", "user.", "trusted.t", "security.capability", "security.selinux",
    "system.posix_acl_access", "system.posix_acl_default", "bogus.x", "", "user.aaaaaaaaaaaaaaaaaaaaaaaa",
};

static const char *const mqnames[] = {"/q0", "/q1", "q2", "/", "/a/b", "//", ""};

static const uint64_t ioctls[] = {
    0x5401, 0x5402, 0x5403, 0x5404, 0x5409, 0x540a, 0x540b, 0x540e, 0x540f, 0x5410,
    0x5411, 0x5412, 0x5413, 0x5414, 0x5415, 0x541b, 0x5421, 0x5422, 0x5423, 0x5424,
    0x5429, 0x5441, 0x5450, 0x5451, 0x5452, 0x80045430, 0x40045431, 0x802c542a,
    0x80086601, 0x40086602, 1, 2, 0x80081272, 0x8912, 0x8913, 0x8914, 0x8915,
    0x8933, 0x8905, 0x8901, 0x8902, 0x8903, 0x8904, 0x4b33, 0x5603, 0x80045200,
    0x40049409, 0x80087601, 0xc0045877, 0x8b01, 0x5425, 0x5426,
};

static const long fcntls[] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 16, 36, 37, 38, 1024, 1025, 1026,
    1030, 1031, 1032, 1033, 1034, 1035, 1036, 1037, 1038, -1, 0x7fffffff,
};

/* ---- argument generators ---------------------------------------------- */

static uint64_t gen_any(void);

static uint64_t gen_ptr(void)
{
    switch (below(12)) {
    case 0: case 1: case 2:
        return A(BUF_PG) + below(4 * PAGE);
    case 3:
        return A(BUFGUARD_PG) - 1 - below(64);      /* crosses into PROT_NONE */
    case 4:
        return A(STRUCT_PG) + below(8) * PAGE + (chance(80) ? 0 : below(64));
    case 5:
        return A(RO_PG) + below(PAGE);
    case 6:
        return A(NONE_PG) + below(PAGE);
    case 7:
        return A(HOLE_PG) + below(PAGE);
    case 8:
        return A(MM_PG) + below(MM_PAGES) * PAGE + (chance(70) ? 0 : below(PAGE));
    case 9:
        return (uint64_t)fz_text_target;
    default:
        return PICK(bad_ptrs) + (chance(80) ? 0 : below(16));
    }
}

static int pool_top;             /* the highest fd of the pool: new fds come after it */

static uint64_t gen_fd(void)
{
    switch (below(9)) {
    case 0:
        return below(8);
    case 1:
        return (uint64_t)(long)PICK(((const long[]){-1, -100, 1023, 1024, 65536, 0x7fffffff,
                                                     -0x80000000L, 0x100000003, LOGFD + 1}));
    case 2:
        return (uint64_t)(pool_top + 1 + (int)below(24));     /* fds the batch made */
    default:
        return npool ? (uint64_t)(long)pool[below(npool)] : 3;
    }
}

static int socks[16], nsocks, epfd = -1;
/* inet addresses bind/connect/sendto pick from (set up in open_pool) */
static struct sockaddr_in6 inaddrs[8];

/* a socket (or epoll) fd of the pool mostly, any fd otherwise */
static uint64_t gen_typed_fd(const int *fds, int n)
{
    return n && chance(70) ? (uint64_t)(long)fds[below(n)] : gen_fd();
}

static uint64_t gen_len(void)
{
    switch (below(6)) {
    case 0: return below(16);
    case 1: return below(PAGE * 2);
    case 2: return PICK(((const uint64_t[]){4096, 8192, 16384, 65536, 1 << 20, 4095, 4097, 512, 128, 256}));
    case 3: return PICK(boundary);
    default: return below(256);
    }
}

static uint64_t gen_flags(void)
{
    switch (below(7)) {
    case 0: case 6: return 0;
    case 1: return 1UL << below(32);
    case 2: return (1UL << below(32)) | (1UL << below(32)) | (1UL << below(12));
    case 3: return rnd() & 0xffffffff;
    case 4: return below(0x1000);
    default: return PICK(boundary);
    }
}

static uint64_t gen_int(void)
{
    switch (below(5)) {
    case 0: return below(4);
    case 1: return below(20);
    case 2: return (uint64_t)-(long)below(4);
    case 3: return PICK(boundary);
    default: return below(300);
    }
}

/* a pid that is never the fuzzer's parent, -1, init (the shell, whose
 * handlers may legitimately end the boot) or anything else alive but this
 * child and its own group */
static uint64_t gen_pid(void)
{
    switch (below(8)) {
    case 0: case 1: return 0;
    case 2: case 3: return (uint64_t)(long)self_pid;
    case 4: return (uint64_t)-(long)self_pid;
    case 5: return (1UL << 32) | (uint64_t)self_pid;       /* the same pid_t, 64 bits wide */
    default:
        return (uint64_t)(long)PICK(((const long[]){-0x80000000L, 0x7fffffff, -0x7fffffff,
                                                     99999, 4194304, 1234567}));
    }
}

static uint64_t gen_uid(void)
{
    return PICK(((const uint64_t[]){0, 0, 1000, 1000, 65534, 65535, 1, -1UL, 0xffffffff,
                                    0xfffffffe, 0x100000000, 0x1000003e8, 0x80000000,
                                    0x7fffffff, 12345}));
}

static uint64_t gen_sig(void)
{
    if (chance(85))
        return below(66);
    return PICK(((const uint64_t[]){-1UL, 128, 0x100000009, 0x80000000, 255}));
}

static uint64_t gen_off(void)
{
    return PICK(((const uint64_t[]){0, 0, 1, 100, 4096, 8191, 1UL << 31, 1UL << 32,
                                    1UL << 40, 1UL << 62, -1UL, -4096UL, 0x7fffffffffffffff,
                                    0x7ffffffffffff000, 0x8000000000000000}));
}

static uint64_t gen_key(void)
{
    if (chance(60))
        return below(8);
    return PICK(((const uint64_t[]){0x1234, 32768, 32769, 65536, -1UL, 0x7fffffff, 0xffffffff}));
}

static uint64_t gen_mode(void)
{
    switch (below(4)) {
    case 0: return PICK(((const uint64_t[]){0, 0777, 0644, 0600, 07777, 04755, 02755, 01777}));
    case 1: return PICK(((const uint64_t[]){S_IFREG | 0644, S_IFIFO | 0600, S_IFCHR | 0600,
                                            S_IFBLK | 0600, S_IFSOCK | 0600, S_IFDIR | 0755,
                                            S_IFLNK | 0777, 0170000}));
    case 2: return rnd() & 0xffffffff;
    default: return below(010000);
    }
}

static uint64_t gen_path_ptr(const char *const *pool_, size_t n)
{
    /* the rodata copy mostly, the writable arena copy sometimes, bad pointers rarely */
    int r = (int)below(100);
    size_t i = below(n);
    if (r < 70)
        return (uint64_t)pool_[i];
    if (r < 80 && pool_ == paths)
        return A(STR_PG) + i * 64;
    if (r < 88) {
        /* a long name: ENAMETOOLONG territory */
        return A(STR_PG) + 3000 + below(2);
    }
    return gen_ptr();
}

static uint64_t gen_mm_addr(void)
{
    if (chance(85))
        return A(MM_PG) + below(MM_PAGES) * PAGE + (chance(90) ? 0 : below(PAGE));
    return PICK(((const uint64_t[]){0, 0x1000, 0xffff800000000000, 0x0000800000000000,
                                    0x8000000000000000, 0x7ffffffff000, 0x10000,
                                    0xffffffffff600000, -4096UL}));
}

static uint64_t mm_len(uint64_t addr)
{
    if (chance(85) && addr >= A(MM_PG) && addr < A(MM_PG + MM_PAGES)) {
        uint64_t room = A(MM_PG + MM_PAGES) - addr;
        uint64_t len = (1 + below(8)) * PAGE;
        if (chance(10))
            len = below(PAGE) + 1;
        return len < room ? len : room;
    }
    /* too big to stay in the arena: overflows or beyond TASK_SIZE */
    return PICK(((const uint64_t[]){0, 1UL << 63, -1UL, -4096UL, 0x7fffffffffff000,
                                    0x800000000000}));
}

static uint64_t gen_clone_flags(void)
{
    uint64_t f = 0;
    int n = (int)below(5);
    while (n--)
        f |= 1UL << (8 + below(24));
    if (chance(50))
        f |= 17;                /* SIGCHLD */
    else if (chance(30))
        f |= below(66);
    if (chance(5))
        f = rnd();
    return f;
}

/* a sigset with SIGALRM never blocked (the interrupt timer must get through) */
static uint64_t gen_sigset(int slot)
{
    if (chance(10))
        return PICK(bad_ptrs);      /* (a readable one might block SIGALRM) */
    uint64_t *p = (uint64_t *)(A(STRUCT_PG) + slot * PAGE);
    p[0] = chance(50) ? rnd() : PICK(((const uint64_t[]){0, -1UL, 1UL << (SIGCHLD - 1)}));
    p[0] &= ~(1UL << (SIGALRM - 1));
    p[1] = rnd();
    return (uint64_t)p;
}

static void fz_handler(int sig, siginfo_t *info, void *uc);

static uint64_t gen_sigaction(int slot)
{
    if (chance(10))
        return gen_ptr();
    uint64_t *p = (uint64_t *)(A(STRUCT_PG) + slot * PAGE);
    p[0] = PICK(((const uint64_t[]){0, 1, (uint64_t)fz_handler, (uint64_t)fz_handler,
                                    (uint64_t)fz_text_target, A(BUF_PG), 0xdead}));
    p[1] = below(2) ? 0x04000000 : 0;                   /* SA_RESTORER */
    p[1] |= PICK(((const uint64_t[]){0, 4 /* SA_SIGINFO */, 0x08000000 /* SA_ONSTACK */,
                                     0x10000000 /* SA_RESTART */, 0x40000000 /* SA_NODEFER */,
                                     0x80000000 /* SA_RESETHAND */, 1, 2, 0x0c000004}));
    if (chance(5))
        p[1] = rnd();
    p[2] = chance(90) ? (uint64_t)fz_restorer : gen_ptr();
    p[3] = rnd();
    return (uint64_t)p;
}

/* an alternate stack: usable, or at places a signal frame cannot be written */
static uint64_t gen_stack_t(int slot)
{
    if (chance(10))
        return gen_ptr();
    uint64_t *p = (uint64_t *)(A(STRUCT_PG) + slot * PAGE);
    p[0] = chance(40) ? A(BUF_PG) : gen_ptr();
    p[1] = chance(70) ? PICK(((const uint64_t[]){0, 0, 2 /* SS_DISABLE */, 1UL << 31 /* SS_AUTODISARM */}))
                      : gen_flags();
    p[2] = chance(80) ? PICK(((const uint64_t[]){2048, 4096, 8192, 16384, 1 << 20, 0, 1, 2047}))
                      : gen_len();
    return (uint64_t)p;
}

/* a ucontext for rt_sigreturn (struct page 7): with resume, one that brings
 * the task back (fz_sigreturn fills in rsp and rip), with random general
 * registers, flags, segments, mask and FPU state pointer; otherwise anything */
static uint64_t *gen_ucontext(int resume)
{
    uint64_t *uc = (uint64_t *)(A(STRUCT_PG) + 7 * PAGE + 8 * below(8));
    uint64_t *mc = uc + 5;                      /* uc_mcontext, 256 bytes */
    for (int i = 0; i < 40; i++)
        uc[i] = chance(50) ? rnd() : gen_any();
    uc[0] = chance(80) ? below(8) : rnd();      /* UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS */
    if (resume || chance(50)) {                 /* uc_stack as restore_altstack accepts it */
        uc[2] = A(BUF_PG);
        uc[3] = PICK(((const uint64_t[]){2, 2, 0, 1UL << 31}));
        uc[4] = 8192;
    }
    mc[15] = gen_ptr();                         /* rsp */
    mc[16] = chance(50) ? gen_ptr() : rnd();    /* rip */
    if (resume)
        mc[17] &= ~0x40500UL;                   /* no DF, TF or AC for the C code that resumes */
    if (resume || chance(80)) {
        uint16_t *seg = (uint16_t *)&mc[18];
        seg[0] = 0x33;
        seg[3] = 0x2b;
    }
    mc[23] = chance(resume ? 90 : 50) ? 0 : gen_ptr();   /* fpstate: none (reset) or wherever */
    return uc;
}

/* a few timespecs/timevals (nanosleep, itimerval, itimerspec, utimes):
 * short and valid mostly, with negative, huge, UTIME_NOW/OMIT and
 * out-of-range nanoseconds now and then */
static uint64_t gen_times(int slot)
{
    if (chance(10))
        return chance(50) ? 0 : gen_ptr();
    uint64_t *p = (uint64_t *)(A(STRUCT_PG) + slot * PAGE);
    for (int i = 0; i < 4; i += 2) {
        p[i] = chance(80) ? below(2) : PICK(((const uint64_t[]){-1UL, 1UL << 62, 0x7fffffffffffffff, 100}));
        p[i + 1] = chance(80) ? below(1000000) :
                   PICK(((const uint64_t[]){999999999, 1000000000, -1UL, (1UL << 30) - 1, (1UL << 30) - 2}));
    }
    return (uint64_t)p;
}

/* a struct sockaddr_un: a scratch socket's name, an abstract one, or junk;
 * its length (the next argument) is set by defang */
static uint64_t gen_sockaddr(int slot)
{
    if (chance(10))
        return chance(50) ? 0 : gen_ptr();
    char *p = (char *)(A(STRUCT_PG) + slot * PAGE);
    *(uint16_t *)p = chance(85) ? AF_UNIX : (uint16_t)PICK(((const uint64_t[]){0, 2, 10, 16, 0xffff}));
    const char *name = PICK(((const char *const[]){"sock0", "sock0", "sock1", "\0fz", "\0fz1", "",
                                                   "d0/sock2", "nonexistent/x", "f0"}));
    memset(p + 2, 0, 108);
    if (name[0])
        strcpy(p + 2, name);
    else if (name[1])
        memcpy(p + 2, name, 4);
    if (chance(5))
        memset(p + 2, 'x', 108);
    return (uint64_t)p;
}

/* an iovec array in the struct page: 1 to 4 buffers of every kind */
static uint64_t gen_iovecs(int slot)
{
    if (chance(10))
        return gen_ptr();
    uint64_t *p = (uint64_t *)(A(STRUCT_PG) + slot * PAGE);
    for (int i = 0; i < 8; i += 2) {
        p[i] = gen_ptr();
        p[i + 1] = chance(80) ? below(PAGE) : gen_len();
    }
    return (uint64_t)p;
}

/* a msghdr with a name, iovecs and control messages: SCM_RIGHTS with pool
 * fds, SCM_CREDENTIALS (own or foreign ids), or junk */
static uint64_t gen_msghdr(int slot)
{
    if (chance(10))
        return gen_ptr();
    uint64_t *m = (uint64_t *)(A(STRUCT_PG) + slot * PAGE);
    uint64_t *iov = m + 8, *ctl = m + 16;
    m[0] = chance(70) ? 0 : A(STRUCT_PG) + slot * PAGE + 512;
    if (m[0]) {
        uint16_t *sa = (uint16_t *)m[0];
        sa[0] = AF_UNIX;
        strcpy((char *)(sa + 1), chance(50) ? "sock0" : "sock1");
    }
    m[1] = chance(80) ? 110 : gen_len();
    m[2] = (uint64_t)iov;
    m[3] = chance(90) ? 1 + below(3) : gen_len();
    for (int i = 0; i < 6; i += 2) {
        iov[i] = chance(70) ? A(BUF_PG) + below(PAGE) : gen_ptr();
        iov[i + 1] = chance(80) ? below(512) : gen_len();
    }
    m[4] = chance(40) ? 0 : (uint64_t)ctl;
    m[5] = 0;
    if (m[4]) {
        int kind = (int)below(3);
        if (kind == 0) {                                /* SCM_RIGHTS */
            int n = 1 + (int)below(4);
            ctl[0] = 16 + 4 * n;
            ctl[1] = 1 | (1UL << 32);                   /* SOL_SOCKET, SCM_RIGHTS */
            for (int i = 0; i < n; i++)
                ((int32_t *)(ctl + 2))[i] = (int32_t)gen_fd();
            m[5] = (ctl[0] + 7) & ~7UL;
        } else if (kind == 1) {                         /* SCM_CREDENTIALS */
            ctl[0] = 28;
            ctl[1] = 1 | (2UL << 32);
            int32_t *c = (int32_t *)(ctl + 2);
            c[0] = chance(70) ? (int32_t)self_pid : (int32_t)gen_pid();
            c[1] = (int32_t)(chance(50) ? sys0(SYS_getuid) : gen_uid());
            c[2] = (int32_t)(chance(50) ? sys0(SYS_getgid) : gen_uid());
            m[5] = 32;
        } else {
            for (int i = 0; i < 8; i++)
                ctl[i] = gen_any();
            m[5] = gen_len();
        }
        if (chance(10))
            m[5] = gen_len();
    }
    m[6] = gen_flags();
    return (uint64_t)m;
}

/* a sigevent: a signal, none, a thread, or junk */
static uint64_t gen_sigevent(int slot)
{
    if (chance(15))
        return chance(50) ? 0 : gen_ptr();
    uint32_t *p = (uint32_t *)(A(STRUCT_PG) + slot * PAGE);
    *(uint64_t *)p = rnd();                             /* sigev_value */
    p[2] = (uint32_t)(chance(80) ? 1 + below(64) : gen_sig());
    p[3] = (uint32_t)(chance(85) ? PICK(((const uint64_t[]){0, 0, 1, 2, 4})) : gen_int());
    p[4] = (uint32_t)(chance(70) ? self_pid : gen_pid());
    return (uint64_t)p;
}

/* a pollfd array: pool fds (or bad ones) with events */
static uint64_t gen_pollfds(int slot)
{
    if (chance(10))
        return gen_ptr();
    int32_t *p = (int32_t *)(A(STRUCT_PG) + slot * PAGE);
    for (int i = 0; i < 32; i += 2) {
        p[i] = (int32_t)gen_fd();
        p[i + 1] = (int32_t)(chance(80) ? below(8) : rnd());
    }
    return (uint64_t)p;
}

/* a struct: words of every kind, so that embedded pointers, lengths and
 * flags are sometimes plausible */
static uint64_t gen_struct(int slot)
{
    uint64_t *p = (uint64_t *)(A(STRUCT_PG) + slot * PAGE);
    int n = 4 + (int)below(40);
    for (int i = 0; i < n; i++) {
        switch (below(8)) {
        case 0: p[i] = below(16); break;
        case 1: p[i] = gen_ptr(); break;
        case 2: p[i] = gen_len(); break;
        case 3: p[i] = below(2) ? (uint64_t)paths[below(sizeof(paths) / sizeof(paths[0]))]
                                : A(STR_PG) + below(sizeof(paths) / sizeof(paths[0])) * 64; break;
        case 4: p[i] = (below(1 << 16) << 32) | below(1 << 16); break;   /* two small ints */
        case 5: p[i] = gen_fd() & 0xffffffff; break;
        case 6: p[i] = PICK(boundary); break;
        default: p[i] = rnd(); break;
        }
    }
    if (chance(10))
        return gen_ptr();
    return (uint64_t)p + (chance(90) ? 0 : below(16));
}

static uint64_t gen_any(void)
{
    switch (below(10)) {
    case 0: case 1: return below(17);
    case 2: return PICK(boundary);
    case 3: return rnd();
    case 4: return rnd() & 0xffffffff;
    case 5: return (uint64_t)(long)(int)rnd();
    case 6: return 1UL << below(64);
    case 7: return gen_ptr();
    case 8: return gen_fd();
    default: return (uint64_t)-(long)below(200);
    }
}

static uint64_t gen_arg(char kind, int slot)
{
    if (chance(8) && kind != 'm' && kind != 'l' && kind != 'D' && kind != 'P')
        return gen_any();
    switch (kind) {
    case 'f': return gen_fd();
    case 'N': return gen_typed_fd(socks, nsocks);
    case 'e': return gen_typed_fd(&epfd, epfd >= 0);
    case 'd': return chance(40) ? (uint64_t)(long)AT_FDCWD : gen_fd();
    case 'p': return gen_path_ptr(paths, sizeof(paths) / sizeof(paths[0]));
    case 'D': return chance(95) ? (uint64_t)PICK(dirs) : PICK(bad_ptrs);
    case 'b': return gen_ptr();
    case 's': return gen_struct(slot);
    case 'n': return gen_len();
    case 'x': return gen_flags();
    case 'i': return gen_int();
    case 'm': return gen_mm_addr();
    case 'P': return gen_pid();
    case 'w': return chance(40) ? (uint64_t)-1L : gen_pid();
    case 'u': return gen_uid();
    case 'g': return gen_sig();
    case 'o': return gen_off();
    case 'k': return gen_key();
    case 'h': return gen_sigaction(slot);
    case 'S': return gen_stack_t(slot);
    case 'T': return gen_times(slot);
    case 'A': return gen_sockaddr(slot);
    case 'V': return gen_iovecs(slot);
    case 'H': return gen_msghdr(slot);
    case 'E': return gen_sigevent(slot);
    case 'F': return gen_pollfds(slot);
    case 'q': return gen_sigset(slot);
    case 'z': return chance(85) ? 8 : gen_len();
    case 'M': return gen_mode();
    case 't': return PICK(((const uint64_t[]){0, 1, 5, -1UL, 0x7fffffff, 0x80000000}));
    case 'c': return gen_clone_flags();
    case 'X': return gen_path_ptr(xattrs, sizeof(xattrs) / sizeof(xattrs[0]));
    case 'Y': return gen_path_ptr(mqnames, sizeof(mqnames) / sizeof(mqnames[0]));
    case 'I': return chance(85) ? PICK(ioctls) : gen_flags();
    default: return gen_any();
    }
}

/* ---- defanging ---------------------------------------------------------------
 * The signature keeps most calls harmless; these need a look at the other
 * arguments. */

static int is_tty_or_disk(uint64_t dev)
{
    unsigned int maj = (unsigned int)(((dev >> 8) & 0xfff)), min = (unsigned int)((dev & 0xff) | ((dev >> 12) & 0xfff00));
    return maj == 4 || maj == 5 || maj == 7 || maj == 98 || maj == 136 ||
           (maj == 1 && (min == 1 || min == 2 || min == 4));
}

static void defang(long nr, uint64_t *a)
{
    switch (nr) {
    case SYS_mmap:
        if (chance(70)) {
            a[2] = below(8);
            a[3] = PICK(((const uint64_t[]){MAP_PRIVATE | MAP_ANONYMOUS, MAP_SHARED | MAP_ANONYMOUS,
                                            MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE}))
                   | (chance(30) ? PICK(((const uint64_t[]){MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_POPULATE,
                                                            MAP_NORESERVE, MAP_GROWSDOWN, MAP_STACK,
                                                            MAP_LOCKED, MAP_HUGETLB, MAP_32BIT})) : 0);
            if (a[3] & MAP_ANONYMOUS && chance(80))
                a[4] = -1UL;
            if (chance(70))
                a[5] = below(4) * PAGE;
        }
        if (a[3] & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
            a[0] = gen_mm_addr();
            a[1] = mm_len(a[0]);
        } else if (chance(50)) {
            a[1] = gen_len();
        }
        break;
    case SYS_mprotect: case SYS_munmap: case SYS_msync: case SYS_mincore: case SYS_madvise:
    case SYS_mlock: case SYS_munlock: case SYS_mlock2: case SYS_remap_file_pages:
    case SYS_pkey_mprotect: case SYS_mbind: case 450: case 462:
        a[1] = mm_len(a[0]);
        break;
    case SYS_mremap:
        a[1] = mm_len(a[0]);
        a[2] = chance(80) ? mm_len(a[0]) : gen_len();
        if (a[3] & (MREMAP_FIXED | 4 /* MREMAP_DONTUNMAP */)) {
            a[4] = gen_mm_addr();
            a[2] = mm_len(a[4]);
        }
        break;
    case SYS_shmat:
        if (chance(40))
            a[1] = 0;
        break;
    case SYS_fcntl:
        a[1] = chance(90) ? (uint64_t)PICK(fcntls) : gen_flags();
        if (a[1] == F_SETOWN)
            a[2] = gen_pid();
        if (a[1] == F_SETOWN_EX) {
            uint32_t *p = (uint32_t *)(A(STRUCT_PG) + 2 * PAGE);
            p[0] = (uint32_t)below(4);
            p[1] = (uint32_t)gen_pid();
            a[2] = (uint64_t)p;
        }
        break;
    case SYS_ioctl:
        if (a[1] == 0x8901 || a[1] == 0x8902 || a[1] == 0x5410) {   /* FIOSETOWN, SIOCSPGRP, TIOCSPGRP */
            int32_t *p = (int32_t *)(A(STRUCT_PG) + 2 * PAGE);
            *p = (int32_t)gen_pid();
            a[2] = (uint64_t)p;
        }
        break;
    case SYS_mknod:
        if (is_tty_or_disk(a[2]))
            a[2] = makedev(1, 3);
        break;
    case SYS_mknodat:
        if (is_tty_or_disk(a[3]))
            a[3] = makedev(1, 3);
        break;
    case SYS_mount:
        a[0] = chance(50) ? (uint64_t)PICK(((const char *const[]){"none", "tmpfs", "proc", "d0"}))
                          : gen_path_ptr(paths, sizeof(paths) / sizeof(paths[0]));
        a[2] = chance(90) ? (uint64_t)PICK(fstypes) : PICK(bad_ptrs);
        if (chance(50))
            a[4] = (uint64_t)PICK(mount_data);
        break;
    case SYS_bind: case SYS_connect:
        if (chance(40)) {       /* an inet address, whole or cut */
            a[1] = (uint64_t)&inaddrs[below(8)];
            a[2] = PICK(((const uint64_t[]){16, 28, 28, 16, 24, 8, 128}));
        } else if (chance(70))
            a[2] = PICK(((const uint64_t[]){110, 8, 2, 3, 5, 13}));
        break;
    case SYS_sendto:
        if (chance(40)) {
            a[4] = (uint64_t)&inaddrs[below(8)];
            a[5] = PICK(((const uint64_t[]){16, 28, 28, 16, 24, 8}));
        } else if (chance(70))
            a[5] = PICK(((const uint64_t[]){110, 8, 2, 0, 5}));
        if (chance(30))
            a[4] = 0;
        break;
    case SYS_readv: case SYS_writev: case SYS_preadv: case SYS_pwritev: case SYS_preadv2:
    case SYS_pwritev2: case SYS_vmsplice: case SYS_poll: case SYS_ppoll:
        if (chance(80))
            a[nr == SYS_poll || nr == SYS_ppoll ? 1 : 2] = below(5);
        break;
    case SYS_close_range:
        if (a[1] >= LOGFD)
            a[1] = LOGFD - 1;
        if (a[0] > a[1] && chance(50))
            a[0] = 3;
        break;
    case SYS_socket: case SYS_socketpair:
        a[0] = chance(85) ? PICK(((const uint64_t[]){1, 1, 1, 2, 10, 16, 17, 0, 44, 38})) : gen_int();
        a[1] = chance(85) ? (PICK(((const uint64_t[]){1, 2, 3, 5, 10})) |
                             PICK(((const uint64_t[]){0, 0, 04000, 02000000})))
                          : gen_flags();
        break;
    case SYS_syslog:            /* never switch the console log off */
        if (a[0] == 6 || a[0] == 7 || a[0] == 8)
            a[0] = 3;
        break;
    case SYS_prctl:
        if (chance(70))
            a[0] = below(72);
        break;
    case SYS_arch_prctl:
        if (chance(80))
            a[0] = PICK(((const uint64_t[]){0x1001, 0x1002, 0x1003, 0x1004, 0x1011, 0x1012,
                                            0x2001, 0x2002, 0x3001}));
        if ((a[0] == 0x1002 || a[0] == 0x1001) && chance(50))
            a[1] = PICK(boundary);      /* ARCH_SET_FS/GS: kernel-half and non-canonical bases */
        break;
    case SYS_futex:
        if (chance(80))
            a[1] = below(14) | PICK(((const uint64_t[]){0, 128, 256, 384}));
        break;
    case SYS_clone3:
        if (chance(70))
            a[1] = PICK(((const uint64_t[]){64, 80, 88}));
        break;
    }
}

/* ---- logging --------------------------------------------------------------- */

static char logbuf[512];
static int loglen;

static void lput(const char *s)
{
    while (*s && loglen < (int)sizeof(logbuf) - 1)
        logbuf[loglen++] = *s++;
}

static void lhex(uint64_t v)
{
    char t[20];
    int n = 0;
    lput("0x");
    do {
        t[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    while (n && loglen < (int)sizeof(logbuf) - 1)
        logbuf[loglen++] = t[--n];
}

static void ldec(long v)
{
    char t[24];
    int n = 0;
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    if (v < 0)
        lput("-");
    do {
        t[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n && loglen < (int)sizeof(logbuf) - 1)
        logbuf[loglen++] = t[--n];
}

static void lflush(void)
{
    if (verbose)
        sys3(SYS_write, LOGFD, logbuf, loglen);
    loglen = 0;
}

static const char *sysname(long nr)
{
    return nr >= 0 && nr < NSYS && tab[nr].name ? tab[nr].name : "?";
}

/* ---- the batch child ----------------------------------------------------- */

static void fz_handler(int sig, siginfo_t *info, void *uc)
{
    /* a real fault would only repeat: then the child is done (x86-64 passes
     * the siginfo with or without SA_SIGINFO; sent ones have si_code <= 0) */
    (void)uc;
    if ((sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP ||
         sig == SIGSYS) && (!info || info->si_code > 0))
        sys1(SYS_exit_group, 100 + sig);
}

/* a handler for every signal (so that signals sent at random are delivered,
 * not fatal) but SIGPIPE and SIGXFSZ (ignored), some with SA_SIGINFO,
 * SA_RESTART or SA_NODEFER */
static void catch_all(void)
{
    for (int sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        uint64_t flags = 0x04000000 | (sig % 3 == 0 ? 4 : 0) | (sig % 4 == 1 ? 0x10000000 : 0) |
                         (sig % 5 == 2 ? 0x40000000 : 0);
        struct { uint64_t handler, flags, restorer, mask; } sa = {
            sig == SIGPIPE || sig == SIGXFSZ ? 1 : (uint64_t)fz_handler, flags, (uint64_t)fz_restorer, 0};
        sys4(SYS_rt_sigaction, sig, &sa, 0, 8);
    }
}

/* SIGALRM (the 10 ms interrupt) and the fault handlers, as the child needs them */
static void arm_interrupts(void)
{
    struct { uint64_t handler, flags, restorer, mask; } sa = {
        (uint64_t)fz_handler, 0x04000000 /* SA_RESTORER, no SA_RESTART */, (uint64_t)fz_restorer, 0};
    uint64_t unblock = 1UL << (SIGALRM - 1);
    sys4(SYS_rt_sigaction, SIGALRM, &sa, 0, 8);
    sys4(SYS_rt_sigprocmask, SIG_UNBLOCK, &unblock, 0, 8);
    struct itimerval it = {{0, 10000}, {0, 10000}};
    sys3(SYS_setitimer, ITIMER_REAL, &it, 0);
}

static void open_pool(void)
{
    int fds[2];
    npool = 0;
#define ADD(expr) do { long r_ = (expr); pool[npool++] = (int)r_; } while (0)
#define SOCK() (socks[nsocks++] = pool[npool - 1])
    nsocks = 0;
    ADD(sys4(SYS_open, "f0", O_RDWR | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY, 0644, 0));
    ADD(sys4(SYS_open, "f1", O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, 0));
    ADD(sys4(SYS_open, "d0", O_RDONLY | O_DIRECTORY, 0, 0));
    ADD(sys4(SYS_open, ".", O_PATH, 0, 0));
    ADD(sys4(SYS_open, "f2", O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_NOCTTY, 0600, 0));
    ADD(sys4(SYS_open, "fifo0", O_RDWR | O_NONBLOCK, 0, 0));
    ADD(sys4(SYS_open, "null", O_RDWR | O_NOCTTY, 0, 0));
    ADD(sys4(SYS_open, "zero", O_RDONLY | O_NOCTTY, 0, 0));
    ADD(sys4(SYS_open, "ptmx", O_RDWR | O_NOCTTY, 0, 0));
    ADD(sys4(SYS_open, "/proc/self/status", O_RDONLY, 0, 0));
    ADD(sys4(SYS_open, "/proc/self/maps", O_RDONLY, 0, 0));
    if (sys2(SYS_pipe2, fds, 0) == 0) { ADD(fds[0]); ADD(fds[1]); }
    if (sys2(SYS_pipe2, fds, O_NONBLOCK) == 0) { ADD(fds[0]); ADD(fds[1]); }
    if (sys4(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, fds) == 0) { ADD(fds[0]); SOCK(); ADD(fds[1]); }
    if (sys4(SYS_socketpair, AF_UNIX, SOCK_DGRAM, 0, fds) == 0) { ADD(fds[0]); SOCK(); ADD(fds[1]); }
    if (sys4(SYS_socketpair, AF_UNIX, SOCK_SEQPACKET, 0, fds) == 0) { ADD(fds[0]); SOCK(); ADD(fds[1]); }
    /* a listener at sock0 with a connection waiting, a datagram socket at sock1 */
    struct { uint16_t family; char path[108]; } sa = {AF_UNIX, "sock0"};
    long ls = sys3(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
    sys1(SYS_unlink, "sock0");
    sys3(SYS_bind, ls, &sa, sizeof(sa));
    sys2(SYS_listen, ls, 4);
    ADD(ls);
    SOCK();
    ADD(sys3(SYS_socket, AF_UNIX, SOCK_STREAM, 0));
    SOCK();
    sys3(SYS_connect, pool[npool - 1], &sa, sizeof(sa));
    strcpy(sa.path, "sock1");
    sys1(SYS_unlink, "sock1");
    ADD(sys3(SYS_socket, AF_UNIX, SOCK_DGRAM, 0));
    SOCK();
    sys3(SYS_bind, pool[npool - 1], &sa, sizeof(sa));
    ADD(sys3(SYS_socket, AF_UNIX, SOCK_STREAM, 0));
    SOCK();
    ADD(sys3(SYS_socket, AF_INET, SOCK_STREAM, 0));
    SOCK();
    /* inet on loopback: a listener with a connection waiting and one
       accepted, a bound UDP socket and a connected one, IPv6, ping */
    struct sockaddr_in *v4 = (struct sockaddr_in *)&inaddrs[0];
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(*v4);
    long tl = sys3(SYS_socket, AF_INET, SOCK_STREAM, 0);
    sys3(SYS_bind, tl, v4, sizeof(*v4));
    sys2(SYS_listen, tl, 2);
    sys3(SYS_getsockname, tl, v4, &alen);
    ADD(tl);
    SOCK();
    ADD(sys3(SYS_socket, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    SOCK();
    sys3(SYS_connect, pool[npool - 1], v4, sizeof(*v4));
    ADD(sys3(SYS_socket, AF_INET, SOCK_STREAM, 0));
    sys3(SYS_connect, pool[npool - 1], v4, sizeof(*v4));
    ADD(sys3(SYS_accept4, tl, 0, 0));
    SOCK();
    struct sockaddr_in *u4 = (struct sockaddr_in *)&inaddrs[1];
    *u4 = *v4;
    u4->sin_port = 0;
    alen = sizeof(*u4);
    ADD(sys3(SYS_socket, AF_INET, SOCK_DGRAM, 0));
    SOCK();
    sys3(SYS_bind, pool[npool - 1], u4, sizeof(*u4));
    sys3(SYS_getsockname, pool[npool - 1], u4, &alen);
    ADD(sys3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0));
    SOCK();
    sys3(SYS_connect, pool[npool - 1], u4, sizeof(*u4));
    inaddrs[2].sin6_family = AF_INET6;
    inaddrs[2].sin6_addr.s6_addr[15] = 1;               /* [::1]:0 */
    inaddrs[3] = inaddrs[2];
    inaddrs[3].sin6_port = v4->sin_port;                /* the listener's port, over IPv6 */
    inaddrs[4].sin6_family = AF_INET6;                  /* [::ffff:127.0.0.1]:listener */
    inaddrs[4].sin6_addr.s6_addr[10] = inaddrs[4].sin6_addr.s6_addr[11] = 0xff;
    memcpy(&inaddrs[4].sin6_addr.s6_addr[12], &v4->sin_addr, 4);
    inaddrs[4].sin6_port = v4->sin_port;
    struct sockaddr_in *b4 = (struct sockaddr_in *)&inaddrs[5];
    b4->sin_family = AF_INET;                           /* 127.255.255.255:9, broadcast */
    b4->sin_addr.s_addr = htonl(0x7fffffff);
    b4->sin_port = htons(9);
    struct sockaddr_in *g4 = (struct sockaddr_in *)&inaddrs[6];
    g4->sin_family = AF_INET;                           /* 10.0.2.2:80, no route here */
    g4->sin_addr.s_addr = htonl(0x0a000202);
    g4->sin_port = htons(80);
    ADD(sys3(SYS_socket, AF_INET6, SOCK_STREAM, 0));
    SOCK();
    ADD(sys3(SYS_socket, AF_INET6, SOCK_DGRAM, 0));
    SOCK();
    ADD(sys3(SYS_socket, AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
    SOCK();
    ADD(sys3(SYS_socket, AF_NETLINK, SOCK_RAW, 0));
    ADD(sys2(SYS_eventfd2, 3, 0));
    ADD(sys2(SYS_timerfd_create, CLOCK_MONOTONIC, 0));
    uint64_t mask = 1UL << (SIGUSR1 - 1);
    ADD(sys4(SYS_signalfd4, -1, &mask, 8, 0));
    ADD(sys1(SYS_epoll_create1, 0));
    epfd = pool[npool - 1];
    ADD(sys1(SYS_inotify_init1, 0));
    ADD(sys2(SYS_memfd_create, "fz", 0));
#undef ADD
#undef SOCK
    pool_top = 0;
    for (int i = 0; i < npool; i++)
        pool_top = pool[i] > pool_top ? pool[i] : pool_top;
    /* give a few of them something to report */
    struct { uint32_t events; uint64_t data; } __attribute__((packed)) ev = {1, 0};
    for (int i = 0; i < npool; i++)
        if (pool[i] >= 0 && i % 3 == 0)
            sys4(SYS_epoll_ctl, pool[npool - 3], EPOLL_CTL_ADD, pool[i], &ev);
    sys3(SYS_inotify_add_watch, pool[npool - 2], ".", 0xfff);
    sys3(SYS_write, pool[0], "hello\n", 6);
}

/* the scratch tree, remade (missing parts only) by every batch child */
static void make_tree(void)
{
    static const char *const files[] = {"f0", "f1", "f2", "d0/f3", "d0/d1/f4"};
    sys2(SYS_mkdir, "d0", 0755);
    sys2(SYS_mkdir, "d0/d1", 0755);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        long fd = sys3(SYS_open, files[i], O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0644);
        if (fd >= 0)
            sys1(SYS_close, fd);
    }
    sys2(SYS_symlink, "f0", "l0");
    sys2(SYS_symlink, "l1", "l1");
    sys2(SYS_symlink, "d0", "l2");
    sys2(SYS_symlink, "/proc/self/fd", "l3");
    sys3(SYS_mknod, "fifo0", S_IFIFO | 0666, 0);
    /* private device nodes (root only; otherwise these are missing, not global) */
    sys3(SYS_mknod, "null", S_IFCHR | 0666, makedev(1, 3));
    sys3(SYS_mknod, "zero", S_IFCHR | 0666, makedev(1, 5));
    sys3(SYS_mknod, "full", S_IFCHR | 0666, makedev(1, 7));
    sys3(SYS_mknod, "urandom", S_IFCHR | 0666, makedev(1, 9));
    sys3(SYS_mknod, "ptmx", S_IFCHR | 0666, makedev(5, 2));
}

static void run_batch(long b, long ncalls) __attribute__((noreturn));
static void run_batch(long b, long ncalls)
{
    uint64_t all = 0;
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, 0, 8);
    sys0(SYS_setsid);
    self_pid = (pid_t)sys0(SYS_getpid);
    sys1(SYS_chdir, scratch);
    make_tree();
    long nul = sys3(SYS_open, "/dev/null", O_RDWR, 0);
    for (int fd = 0; fd < 3; fd++)
        sys2(SYS_dup2, nul, fd);
    if (nul > 2)
        sys1(SYS_close, nul);
    catch_all();
    open_pool();
    sys2(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &saved_fs);
    arm_interrupts();

    rs = splitmix(splitmix((uint64_t)seed) ^ (uint64_t)b) | 1;
    for (long i = 0; i < ncalls; i++) {
        long nr;
        uint64_t a[6];
        if (chance(4)) {
            nr = (long)PICK(((const uint64_t[]){335, 387, 423, 467, 500, 511, 512, 1000,
                                                0x40000000, 0x40000001, 0x400001ff,
                                                0x7fffffff, 0x80000000, -1UL, 1UL << 63,
                                                0xffffffff00000000 | 39, 0x100000000 | 39}));
        } else {
            do
                nr = (long)below(NSYS);
            while (!tab[nr].name || forbidden(nr));
        }
        const char *sig = nr >= 0 && nr < NSYS && tab[nr].name ? tab[nr].args : "";
        for (int j = 0; j < 6; j++)
            a[j] = j < (int)strlen(sig) ? gen_arg(sig[j], j) : (chance(50) ? 0 : gen_any());
        if (nr >= 0 && nr < NSYS)
            defang(nr, a);

        prog->calls = i + 1;
        prog->nr = nr;
        if (verbose) {
            lput("[");
            ldec(b);
            lput(".");
            ldec(i);
            lput("] ");
            lput(sysname(nr));
            lput("#");
            ldec(nr);
            lput("(");
            for (int j = 0; j < 6; j++) {
                if (j)
                    lput(", ");
                lhex(a[j]);
            }
            lput(")");
            lflush();
        }
        long r;
        if (nr == SYS_rt_sigreturn) {
            int resume = chance(85);
            r = fz_sigreturn(gen_ucontext(resume), resume);
        } else if (nr == SYS_fork || nr == SYS_vfork || nr == SYS_clone || nr == SYS_clone3) {
            r = fz_forkcall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        } else {
            r = fz_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        }
        if (nr == SYS_arch_prctl)
            sys2(SYS_arch_prctl, 0x1002 /* ARCH_SET_FS */, saved_fs);
        if (nr == SYS_rt_sigaction || nr == SYS_rt_sigprocmask || nr == SYS_alarm ||
            nr == SYS_setitimer || nr == SYS_rt_sigreturn)
            arm_interrupts();
        if (verbose) {
            lput(" = ");
            ldec(r);
            if (r < 0 && r > -4096) {
                const char *e = strerrorname_np((int)-r);
                lput(" ");
                lput(e ? e : "?");
            }
            lput("\n");
            lflush();
        }
    }
    sys1(SYS_exit_group, 0);
    __builtin_unreachable();
}

/* ---- the parent ------------------------------------------------------------- */

static dev_t top_dev;

/* rm -r --one-file-system: whatever a child mounted (a shared devtmpfs
 * instance, a bind mount of something else) is left alone */
static void rm_in(int dirfd, const char *name)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != top_dev)
        return;
    if (S_ISDIR(st.st_mode)) {
        fchmodat(dirfd, name, 0700, 0);
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                rm_in(fd, e->d_name);
        if (d)
            closedir(d);
        unlinkat(dirfd, name, AT_REMOVEDIR);
    } else {
        unlinkat(dirfd, name, 0);
    }
}

/* remove the fuzzer's tree: first whatever the children mounted in it
 * (innermost first), then everything, whatever modes they left */
static void rm_tree(const char *dir)
{
    size_t n = strlen(dir);
    for (int again = 1; again;) {
        again = 0;
        FILE *f = fopen("/proc/self/mounts", "r");
        char line[1024], mnt[1024], best[1024] = "";
        while (f && fgets(line, sizeof(line), f))
            if (sscanf(line, "%*s %1023s", mnt) == 1 && !strncmp(mnt, dir, n) &&
                (mnt[n] == '/' || !mnt[n]) && strlen(mnt) > strlen(best))
                strcpy(best, mnt);
        if (f)
            fclose(f);
        if (best[0] && umount2(best, MNT_DETACH) == 0)
            again = 1;
    }
    struct stat st;
    if (stat(dir, &st) == 0) {
        top_dev = st.st_dev;
        rm_in(AT_FDCWD, dir);
    }
}

/* System V IPC objects and message queues outlive a child: remove them, so
 * that batches do not depend on each other */
static void clean_ipc(void)
{
    struct shm_info si;
    int max = shmctl(0, SHM_INFO, (struct shmid_ds *)&si);
    for (int i = 0; i <= max && i < 4096; i++) {
        struct shmid_ds ds;
        int id = shmctl(i, SHM_STAT, &ds);
        if (id >= 0)
            shmctl(id, IPC_RMID, NULL);
    }
    struct msginfo mi;
    max = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
    for (int i = 0; i <= max && i < 4096; i++) {
        struct msqid_ds ds;
        int id = msgctl(i, MSG_STAT, &ds);
        if (id >= 0)
            msgctl(id, IPC_RMID, NULL);
    }
    struct seminfo sm;
    union { int val; struct semid_ds *buf; struct seminfo *info; } arg = {.info = &sm};
    max = semctl(0, 0, SEM_INFO, arg);
    for (int i = 0; i <= max && i < 4096; i++) {
        struct semid_ds ds;
        arg.buf = &ds;
        int id = semctl(i, 0, SEM_STAT, arg);
        if (id >= 0)
            semctl(id, 0, IPC_RMID);
    }
    for (size_t i = 0; i < sizeof(mqnames) / sizeof(mqnames[0]); i++)
        syscall(SYS_mq_unlink, mqnames[i]);
}

static void setup_arena(void)
{
    void *p = mmap((void *)ARENA, ARENA_PAGES * PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)ARENA) {
        perror("fuzz: arena");
        exit(2);
    }
    rs = splitmix(0x5eed) | 1;
    for (uint64_t *w = (uint64_t *)ARENA; w < (uint64_t *)A(MM_PG + MM_PAGES); w++)
        *w = rnd();
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        strcpy((char *)A(STR_PG) + i * 64, paths[i]);
    memset((char *)A(STR_PG) + 3000, 'n', 1000);       /* a name longer than NAME_MAX */
    *((char *)A(STR_PG) + 4095) = 0;
    memcpy((char *)A(RO_PG), "f0\0d0\0", 6);
    mprotect((void *)A(RO_PG), PAGE, PROT_READ);
    mprotect((void *)A(NONE_PG), PAGE, PROT_NONE);
    mprotect((void *)A(BUFGUARD_PG), PAGE, PROT_NONE);
    munmap((void *)A(HOLE_PG), PAGE);
    munmap((void *)A(BUFGUARD_PG + 1), PAGE);
    munmap((void *)A(MM_PG + MM_PAGES), (ARENA_PAGES - MM_PG - MM_PAGES) * PAGE);
    if (mmap(prog, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
             -1, 0) != prog) {
        perror("fuzz: shared page");
        exit(2);
    }
}

static void drop_privileges(const char *spec)
{
    char *end;
    unsigned long uid = strtoul(spec, &end, 10), gid = uid;
    if (*end == ':')
        gid = strtoul(end + 1, NULL, 10);
    if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) {
        perror("fuzz: -u");
        exit(2);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: fuzz [-v] [-u UID[:GID]] [-b BATCH] [-n PER_BATCH] [-d DIR] SEED [CALLS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long ncalls = 20000, only = -1;
    const char *dir = "/tmp/fuzz";
    int opt;
    while ((opt = getopt(argc, argv, "vu:b:n:d:")) != -1) {
        switch (opt) {
        case 'v': verbose = 1; break;
        case 'u': drop_privileges(optarg); break;
        case 'b': only = atol(optarg); break;
        case 'n': batch_size = atol(optarg); break;
        case 'd': dir = optarg; break;
        default: usage();
        }
    }
    if (optind >= argc || batch_size <= 0)
        usage();
    seed = atol(argv[optind]);
    if (optind + 1 < argc)
        ncalls = atol(argv[optind + 1]);

    /* deep enough that a few chdir("..") stay inside the fuzzer's tree */
    snprintf(scratch, sizeof(scratch), "%s/%ld/a/b/c/s", dir, seed);
    char top[256];
    snprintf(top, sizeof(top), "%s/%ld", dir, seed);
    if (mkdir(dir, 0755) == 0)
        chmod(dir, 01777);
    rm_tree(top);
    char *p = scratch;
    while ((p = strchr(p + 1, '/')))
        *p = 0, mkdir(scratch, 0755), *p = '/';
    if (mkdir(scratch, 0755) != 0) {
        perror("fuzz: scratch dir");
        return 2;
    }
    int logfd = verbose ? dup(2) : open("/dev/null", O_WRONLY);
    if (logfd < 0 || dup2(logfd, LOGFD) != LOGFD) {
        perror("fuzz: log fd");
        return 2;
    }
    close(logfd);
    fcntl(LOGFD, F_SETFD, FD_CLOEXEC);
    setup_arena();

    /* orphans of a batch (forks that outlived it) are ours to reap, not
     * init's: their exit signals, whatever they are, come here */
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    /* the parent listens to nothing but SIGCHLD, which it waits for */
    sigset_t all, chld;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);

    long nbatches = (ncalls + batch_size - 1) / batch_size;
    long made = 0, killed = 0, hung = 0;
    for (long b = 0; b < nbatches; b++) {
        if (only >= 0 && b != only)
            continue;
        long n = ncalls - b * batch_size < batch_size ? ncalls - b * batch_size : batch_size;
        prog->calls = 0;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fuzz: fork");
            return 2;
        }
        if (pid == 0)
            run_batch(b, n);
        long last = -1;
        int stall = 0, st = 0;
        for (;;) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            sigtimedwait(&chld, NULL, &ts);
            pid_t r = waitpid(pid, &st, WNOHANG | WUNTRACED);
            if (r == pid && WIFSTOPPED(st)) {
                kill(pid, SIGCONT);
                continue;
            }
            if (r == pid)
                break;
            if (prog->calls != last) {
                last = prog->calls;
                stall = 0;
            } else if (++stall == 20) {
                if (verbose)
                    fprintf(stderr, "fuzz: batch %ld stuck in call %ld (%s): killed\n", b,
                            prog->calls - 1, sysname(prog->nr));
                hung++;
                kill(pid, SIGKILL);
            }
        }
        kill(-pid, SIGKILL);    /* its session's stragglers: forks stopped before they could exit */
        while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
            ;
        made += prog->calls;
        if (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0)) {
            killed++;
            if (verbose)
                fprintf(stderr, "fuzz: batch %ld ended after %ld calls: %s %d\n", b, prog->calls,
                        WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
        clean_ipc();
    }
    if (verbose)
        fprintf(stderr, "fuzz: seed %ld: %ld calls, %ld batches ended early, %ld hung\n", seed,
                made, killed, hung);
    rm_tree(top);
    printf("seed %ld: done\n", seed);
    return 0;
}
