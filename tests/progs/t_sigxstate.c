/* t_sigxstate: a signal handler's frame carries the interrupted code's
 * extended register state (AVX's upper halves, not only SSE), and
 * rt_sigreturn gives it back whatever the handler did to the registers;
 * the frame fits an alternate stack of the constant SIGSTKSZ (8192), as
 * Linux's does for a task that never asked for AMX. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static volatile int got;
static volatile unsigned magic1;

static void clobber(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    /* the frame's fpstate says what it holds (FP_XSTATE_MAGIC1) */
    ucontext_t *u = uc;
    magic1 = u->uc_mcontext.fpregs ? ((unsigned *)u->uc_mcontext.fpregs)[464 / 4] : 0;
    __asm__ volatile("vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1" ::: "xmm0", "xmm1");
    got = 1;
}

static int check(const char *how)
{
    unsigned char in[32], out[32];
    for (int i = 0; i < 32; i++)
        in[i] = (unsigned char)(0xa0 + i);
    got = 0;
    __asm__ volatile("vmovdqu %1, %%ymm0\n\t"
                     "mov %2, %%edi\n\t"
                     "call raise@PLT\n\t"
                     "vmovdqu %%ymm0, %0"
                     : "=m"(out) : "m"(in), "i"(SIGUSR1)
                     : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm0", "memory");
    printf("%s: handler ran %d, ymm0 kept %s, frame magic %s\n", how, got,
           memcmp(in, out, 32) ? "no" : "yes", magic1 == 0x46505853 ? "FP_XSTATE_MAGIC1" : "none");
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!__builtin_cpu_supports("avx")) {
        printf("no AVX here\ndone\n");
        return 0;
    }
    struct sigaction a;
    memset(&a, 0, sizeof a);
    a.sa_sigaction = clobber;
    a.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &a, NULL);
    check("main stack");
    stack_t ss = {.ss_sp = malloc(8192), .ss_size = 8192, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    a.sa_flags |= SA_ONSTACK;
    sigaction(SIGUSR1, &a, NULL);
    check("8 KiB alternate stack");
    printf("done\n");
    return 0;
}
