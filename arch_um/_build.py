"""cffi API-mode build of the host helpers (compiled at install time)."""
from pathlib import Path

from cffi import FFI

ffibuilder = FFI()
ffibuilder.cdef(
    """
    struct user_regs_struct {
        unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx,
                      rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss,
                      fs_base, gs_base, ds, es, fs, gs;
    };
    struct umlpy_event {
        int kind; int id; int status; int has_regs; int compat; int notif; unsigned long msg;
        struct user_regs_struct regs;
    };
    struct umlpy_resume {
        int pid; int op; int sig; int how; unsigned long rax;
        struct user_regs_struct *regs;
        unsigned long notif_id;
    };
    int umlpy_seccomp_listener(void);
    int umlpy_notif_stop(int pid, struct user_regs_struct *regs, int *status);
    int umlpy_resume(const struct umlpy_resume *r);
    int umlpy_run(const struct umlpy_resume *rs, int nres, int epfd, int sigfd,
                  struct umlpy_event *out, int max, long long deadline);
    int umlpy_poll_tasks(struct umlpy_event *out, int max);
    int umlpy_wait_pid(int pid, int *status, unsigned long *msg);
    long umlpy_inject(int pid, const struct user_regs_struct *saved,
                      unsigned long stub_syscall, long nr, const long *args,
                      int *event, unsigned long *msg, int *fault, int *status_out);
    int umlpy_getregs(int pid, struct user_regs_struct *regs);
    int umlpy_setregs(int pid, const struct user_regs_struct *regs);
    long umlpy_getxstate(int pid, void *buf, long size);
    long umlpy_setxstate(int pid, void *buf, long size);
    long umlpy_xsave_component(int n, long *size);
    int umlpy_signalfd(const int *sigs, int n);
    int umlpy_signalfd_read(int fd);
    int umlpy_spawn(const char *path, int options, const int *fast, int nfast, unsigned long stub_ip);
    int umlpy_interrupt(int pid);
    int umlpy_detach(int pid);
    int umlpy_timers_init(void);
    void umlpy_timers_stop(void);
    long umlpy_vm_write(int pid, const void *local, unsigned long remote, long len);
    long umlpy_vm_read(int pid, void *local, unsigned long remote, long len);
    int umlpy_getsiginfo(int pid, int *code, unsigned long *addr);
    long umlpy_debugreg(int pid, int idx, int set, unsigned long value, unsigned long *out);
    int umlpy_renameat2(int olddir, const char *old, int newdir, const char *new, unsigned int flags);
    int umlpy_fchmodat_nofollow(int dirfd, const char *name, unsigned int mode);
    long umlpy_resident_sum(const int *pids, int n);
    int umlpy_openat2(int dirfd, const char *path, unsigned long long flags,
                      unsigned long long mode, unsigned long long resolve);
    int umlpy_fallocate(int fd, int mode, long long off, long long len);
    int umlpy_pidfd_getfd(int pid, int fd);
    int umlpy_uffd_wp_api(int uffd);
    int umlpy_uffd_wp_register(int uffd, unsigned long start, unsigned long len);
    long umlpy_pagemap_written(int pagemap_fd, unsigned long start, unsigned long end, int protect,
                               unsigned long *out, long max, unsigned long *next);
    unsigned long long umlpy_dirhash(const unsigned char *name, long len, int kind, int is_signed,
                                     unsigned s0, unsigned s1, unsigned s2, unsigned s3);
    """
)
ffibuilder.set_source(
    "arch_um._hostcall",
    (Path(__file__).parent / "_hostcall.c").read_text(),
    extra_compile_args=["-O2"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=False)
