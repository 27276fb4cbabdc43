/* Guest-only: attacks on the kernel's injection stub, the page at
 * 0x10000 (below vm.mmap_min_addr) through which the kernel makes host syscalls in this
 * process.  Nothing here may reach the host: each attack either fails with
 * Linux's error or runs as an ordinary guest syscall.  argv[1] is a host
 * path that a successful escape would create (the test checks it is not
 * there); argv[2] is a scratch directory.  Not run natively: natively there
 * is no stub.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define STUB_BASE 0x10000UL
#define STUB_CODE (STUB_BASE + 120)
#define STUB_SCRATCH (STUB_BASE + 0x800)
#define PG 4096

static const char *canary;
static unsigned char stub_copy[PG];

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

static void res(const char *what, long r)
{
    if (r < 0)
        printf("%s: -1 %s\n", what, en(errno));
    else
        printf("%s: ok\n", what);
}

static void catch(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigaction(sig, &sa, NULL);
}

/* Machine code that, run by the kernel's next injection, would make the
   host create the canary: mkdir(path, 0755); int3. */
static unsigned char shellcode[256];
static size_t shellcode_len;

static void make_shellcode(void)
{
    static const unsigned char code[] = {
        0x48, 0x8d, 0x3d, 0x0d, 0x00, 0x00, 0x00,   /* lea rdi, [rip+13] */
        0xbe, 0xed, 0x01, 0x00, 0x00,               /* mov esi, 0755 */
        0xb8, 0x53, 0x00, 0x00, 0x00,               /* mov eax, 83 (mkdir) */
        0x0f, 0x05,                                 /* syscall */
        0xcc,                                       /* int3 */
    };
    memcpy(shellcode, code, sizeof code);
    strcpy((char *)shellcode + sizeof code, canary);
    shellcode_len = sizeof code + strlen(canary) + 1;
}

/* The stub must be as it was, and the kernel's injections must still work. */
static void check(const char *after)
{
    int same = memcmp((void *)STUB_BASE, stub_copy, 0x800) == 0;
    void *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int mapped = p != MAP_FAILED;
    if (mapped)
        munmap(p, PG);
    struct stat st;
    int escaped = stat(canary, &st) == 0;   /* the guest's own tree: never made either */
    if (!same || !mapped || escaped)
        printf("  after %s: stub %s, injection %s, canary %s\n", after,
               same ? "intact" : "CHANGED", mapped ? "works" : "FAILED", escaped ? "MADE" : "absent");
}

static void write_attacks(unsigned long target, const char *name)
{
    char what[128];
    int p[2], s[2];
    struct iovec iov = { (void *)target, shellcode_len };

#define TRY(label, call) do { snprintf(what, sizeof what, "%s %s", label, name); res(what, (call)); check(what); } while (0)
    pipe(p);
    write(p[1], shellcode, shellcode_len);
    TRY("read", read(p[0], (void *)target, shellcode_len));
    write(p[1], shellcode, shellcode_len);
    TRY("readv", readv(p[0], &iov, 1));
    close(p[0]);
    close(p[1]);
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    send(s[1], shellcode, shellcode_len, 0);
    TRY("recv", recv(s[0], (void *)target, shellcode_len, 0));
    close(s[0]);
    close(s[1]);
    int f = open("escape.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
    write(f, shellcode, shellcode_len);
    TRY("pread", pread(f, (void *)target, shellcode_len, 0));
    /* a page-cache read large enough for the direct copy path */
    char big[PG];
    memset(big, 0x90, sizeof big);
    memcpy(big + sizeof big - shellcode_len, shellcode, shellcode_len);
    pwrite(f, big, sizeof big, 0);
    TRY("pread page", pread(f, (void *)(target & ~(PG - 1UL)), PG, 0));
    close(f);
    unlink("escape.bin");
    int d = open(".", O_RDONLY | O_DIRECTORY);
    TRY("getdents64", syscall(SYS_getdents64, d, target, 4096));
    TRY("fstat", syscall(SYS_fstat, d, target));
    close(d);
    TRY("getcwd", syscall(SYS_getcwd, target, 256));
    TRY("uname", syscall(SYS_uname, target));
    TRY("clock_gettime", syscall(SYS_clock_gettime, 0, target));
    TRY("pipe", syscall(SYS_pipe, target));
    TRY("rt_sigprocmask old", syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, target, 8));
    TRY("getresuid", syscall(SYS_getresuid, target, target, target));
    TRY("sysinfo", syscall(SYS_sysinfo, target));
#undef TRY
}

static void mm_attacks(void)
{
    char what[64];
#define TRY(label, call) do { snprintf(what, sizeof what, "%s", label); res(what, (long)(call)); check(what); } while (0)
    TRY("mprotect rwx", mprotect((void *)STUB_BASE, PG, PROT_READ | PROT_WRITE | PROT_EXEC));
    TRY("mprotect none", mprotect((void *)STUB_BASE, PG, PROT_NONE));
    TRY("munmap", munmap((void *)STUB_BASE, PG));
    TRY("munmap around", munmap((void *)(STUB_BASE - PG), 3 * PG));
    void *r = mmap((void *)STUB_BASE, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    TRY("mmap fixed", r == MAP_FAILED ? -1 : 0);
    r = mmap((void *)STUB_BASE, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    TRY("mmap fixed_noreplace", r == MAP_FAILED ? -1 : 0);
    r = mmap((void *)STUB_BASE, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap hint: %s\n", r == (void *)STUB_BASE ? "ON THE STUB" : "elsewhere");
    check("mmap hint");
    int f = open("escape.map", O_RDWR | O_CREAT | O_TRUNC, 0600);
    ftruncate(f, PG);
    r = mmap((void *)STUB_BASE, PG, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED | MAP_FIXED, f, 0);
    TRY("mmap file fixed", r == MAP_FAILED ? -1 : 0);
    close(f);
    unlink("escape.map");
    void *page = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(page, shellcode, shellcode_len);
    r = mremap(page, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)STUB_BASE);
    TRY("mremap onto", r == MAP_FAILED ? -1 : 0);
    r = mremap((void *)STUB_BASE, PG, 2 * PG, MREMAP_MAYMOVE);
    TRY("mremap of", r == MAP_FAILED ? -1 : 0);
    TRY("madvise dontfork", madvise((void *)STUB_BASE, PG, MADV_DONTFORK));
    TRY("madvise dontneed", madvise((void *)STUB_BASE, PG, MADV_DONTNEED));
    TRY("madvise remove", madvise((void *)STUB_BASE, PG, MADV_REMOVE));
    TRY("mlock", mlock((void *)STUB_BASE, PG));
    int id = shmget(IPC_PRIVATE, PG, IPC_CREAT | 0600);
    r = shmat(id, (void *)STUB_BASE, SHM_REMAP);
    TRY("shmat remap", r == (void *)-1 ? -1 : 0);
    shmctl(id, IPC_RMID, NULL);
    void *cur = sbrk(0);
    TRY("brk over", syscall(SYS_brk, STUB_BASE + PG) == (long)STUB_BASE + PG ? 0 : -1);
    syscall(SYS_brk, cur);
    TRY("pkey_mprotect", syscall(SYS_pkey_mprotect, STUB_BASE, PG, PROT_READ | PROT_WRITE, 0));
    struct iovec l = { shellcode, shellcode_len }, rv = { (void *)STUB_CODE, shellcode_len };
    TRY("process_vm_writev", syscall(SYS_process_vm_writev, getpid(), &l, 1, &rv, 1, 0));
    f = open("/proc/self/mem", O_RDWR);
    if (f >= 0) {
        TRY("/proc/self/mem", pwrite(f, shellcode, shellcode_len, STUB_CODE));
        close(f);
    } else {
        printf("/proc/self/mem: open -1 %s\n", en(errno));
    }
#undef TRY
}

/* ---- jumps into the stub ------------------------------------------------ */

static volatile unsigned long resume_at;

static void on_stop(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    (void)si;
    printf("  %s at stub+%#lx\n", sigabbrev_np(sig),
           (unsigned long)uc->uc_mcontext.gregs[REG_RIP] - STUB_BASE);
    uc->uc_mcontext.gregs[REG_RIP] = resume_at;
}

static long jump_into(unsigned long target, long nr, long a1, long a2)
{
    register long rax __asm__("rax") = nr;
    register long rdi __asm__("rdi") = a1;
    register long rsi __asm__("rsi") = a2;
    __asm__ volatile("lea 1f(%%rip), %%rdx\n\t"
                     "mov %%rdx, resume_at(%%rip)\n\t"
                     "jmp *%[t]\n"
                     "1:"
                     : "+r"(rax), "+r"(rdi), "+r"(rsi)
                     : [t] "r"(target)
                     : "rcx", "rdx", "r8", "r9", "r10", "r11", "memory", "cc");
    return rax;
}

static void jumps(void)
{
    for (int off = 0; off < 8; off++) {
        pid_t c = fork();
        if (c == 0) {
            int stops[] = { SIGTRAP, SIGSEGV, SIGILL, SIGBUS };
            for (int i = 0; i < 4; i++)
                catch(stops[i], on_stop, SA_NODEFER | SA_RESETHAND);
            /* the kernel's own request, made by the guest: mkdir(canary) */
            long r = jump_into(STUB_CODE + off, SYS_mkdir, (long)canary, 0755);
            struct stat st;
            printf("  stub+%#lx returned %ld; canary in the guest: %s\n", STUB_CODE + off - STUB_BASE, r,
                   stat(canary, &st) == 0 ? "made" : "absent");
            rmdir(canary);
            fflush(stdout);
            _exit(0);
        }
        int st;
        waitpid(c, &st, 0);
        printf("jump to stub+%#lx: %s\n", STUB_CODE + off - STUB_BASE,
               WIFEXITED(st) ? "child exited" : sigabbrev_np(WTERMSIG(st)));
        fflush(stdout);
    }
    check("jumps");
}

/* ---- 32-bit entries and segments ------------------------------------------ */

static void on_segv_info(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    const unsigned char *ip = (const unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
    printf("  %s code %#x addr %p, at %02x %02x, cs %#lx\n", sigabbrev_np(sig), (unsigned)si->si_code,
           si->si_addr, ip[0], ip[1], (unsigned long)(uc->uc_mcontext.gregs[REG_CSGSFS] & 0xffff));
    fflush(stdout);
    _exit(7);
}

static void int80(void)
{
    catch(SIGSEGV, on_segv_info, 0);
    long r = 20;   /* getpid in the i386 table; mkdir there is 39 */
    __asm__ volatile("int $0x80" : "+a"(r) :: "memory");
    printf("  int $0x80 returned %ld\n", r);
    _exit(0);
}


static void to32(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    (void)sig;
    (void)si;
    /* return into a 32-bit code segment (natively: __USER32_CS) */
    uc->uc_mcontext.gregs[REG_CSGSFS] = (uc->uc_mcontext.gregs[REG_CSGSFS] & ~0xffffUL) | 0x23;
}

static void sigreturn_to_32(void)
{
    catch(SIGUSR1, to32, 0);
    raise(SIGUSR1);
    printf("  still running in 64-bit mode after a 32-bit cs\n");
    _exit(0);
}

/* In 32-bit code the stack pointer is esp: a handler's frame below it
   cannot be written (the stack is above 4 GiB), so the refused entry ends
   the process with SIGSEGV, as on a Linux without IA32 emulation. */
static void far_return_to_32(void)
{
    catch(SIGSEGV, on_segv_info, 0);
    /* lret into 32-bit code at the label below (this program is not a PIE,
       so its text is below 4 GiB), which then asks for a 32-bit syscall */
    __asm__ volatile("pushq $0x23\n\t"
                     "lea 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     "lretq\n\t"
                     ".code32\n"
                     "1: movl $20, %%eax\n\t"
                     "int $0x80\n\t"
                     "ud2\n\t"
                     ".code64\n"
                     ::: "rax", "memory");
    _exit(0);
}

static void child(const char *what, void (*fn)(void))
{
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        fn();
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    if (WIFEXITED(st))
        printf("%s: exit %d\n", what, WEXITSTATUS(st));
    else
        printf("%s: signal %s\n", what, sigabbrev_np(WTERMSIG(st)));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    canary = argv[1];
    if (chdir(argv[2]) < 0)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    memcpy(stub_copy, (void *)STUB_BASE, 0x800);
    make_shellcode();
    write_attacks(STUB_CODE, "into the stub's code");
    write_attacks(STUB_SCRATCH, "into the stub's scratch");
    mm_attacks();
    jumps();
    child("int $0x80", int80);
    child("sigreturn to a 32-bit cs", sigreturn_to_32);
    if ((uintptr_t)&main < 0x100000000UL)
        child("far return to 32-bit code", far_return_to_32);
    else
        printf("far return to 32-bit code: signal SEGV\n");     /* a PIE: its text is above 4 GiB */
    check("everything");
    printf("done\n");
    return 0;
}
