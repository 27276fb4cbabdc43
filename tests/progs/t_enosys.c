/* An unsupported syscall must fail with ENOSYS (acct, BSD process accounting, stands in). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    long r = syscall(SYS_acct, (void *)0);
    printf("acct: %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "ok");
    r = syscall(999);
    printf("syscall 999: %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "ok");
    printf("done\n");
    return 0;
}
