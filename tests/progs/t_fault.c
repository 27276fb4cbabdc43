/* Dereference NULL: the guest must die of SIGSEGV (argv[2] = "catch" installs
   a handler that reports the fault address and exits 3). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    printf("caught %d at %p\n", sig, si->si_addr);
    fflush(stdout);
    _exit(3);
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[2], "catch") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, NULL);
    }
    *(volatile int *)0 = 1;
    printf("not reached\n");
    return 0;
}
