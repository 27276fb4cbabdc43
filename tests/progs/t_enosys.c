/* An unsupported syscall must fail with ENOSYS (kexec_load, which a guest kernel never has, stands in). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    long r = syscall(SYS_kexec_load, 0, 0, (void *)0, 0);
    printf("kexec_load: %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "ok");
    r = syscall(999);
    printf("syscall 999: %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "ok");
    printf("done\n");
    return 0;
}
