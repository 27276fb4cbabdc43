/* Shmem the guest holds without mapping it, bounded by its memory (guest
   only; the machine's mem= is the bound, so the figures are relative):
     t_shmem memfd        a memfd filled with write(2) stops with ENOMEM
                          before it holds mem= (MemTotal), and closing it
                          gives the memory back;
     t_shmem mapped MB    a memfd of MB filled through a shared mapping,
                          then unmapped (its fd kept): /proc/meminfo's
                          Shmem counts it, and closing it gives it back;
     t_shmem sysv MB N    N SysV segments of MB each, attached, filled and
                          detached: Shmem counts them; IPC_RMID gives them
                          back;
     t_shmem msg          (root) SysV queues with room for 1 GiB each,
                          filled with 64 KiB messages: msgsnd stops with
                          ENOMEM before they hold MemTotal, Slab counts
                          them, IPC_RMID gives them back;
     t_shmem mq           (root) POSIX queues of 1024 messages of 1 MiB
                          (RLIMIT_MSGQUEUE lifted) filled: mq_send stops
                          with ENOMEM before they hold MemTotal, Slab
                          counts them, mq_unlink gives them back;
     t_shmem events DIR   inotify events queued and not read are charged
                          (Slab), and given back as they are read;
     t_shmem pipe         (root) a pipe of 1 GiB (F_SETPIPE_SZ) filled: the
                          writes stop with ENOMEM before MemTotal, Slab
                          counts its pages, closing gives them back;
     t_shmem keys         (root) user keys of 32 KiB, root's key limits
                          raised: add_key stops with ENOMEM before they
                          hold MemTotal; clearing their keyring gives it
                          back;
     t_shmem watches      (root) epoll watches, max_user_watches raised,
                          made by a child: epoll_ctl stops with ENOMEM
                          before they hold MemTotal, or the OOM killer
                          takes the child; its end gives them back;
     t_shmem pipes        (root) pipes of the default size filled, as many
                          as can be made: a write stops with ENOMEM before
                          they hold MemTotal; closing gives it back.
   Last line done. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <linux/keyctl.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>
#include "meminfo.h"
#include "results.h"

static int memfd(void)
{
    static char buf[1 << 20];
    long total_mb = meminfo_kb("MemTotal") >> 10, mb = 0;
    memset(buf, 'x', sizeof buf);
    int fd = memfd_create("fill", 0);
    for (;;) {
        if (write(fd, buf, sizeof buf) != sizeof buf)
            break;
        if (++mb > 4 * total_mb)
            break;
    }
    printf("write stopped: %s, within MemTotal: %d\n", en(errno), mb <= total_mb);
    long shmem = meminfo_kb("Shmem") >> 10;
    printf("Shmem counts it: %d\n", shmem + 16 >= mb);
    close(fd);
    printf("after close, Shmem under 16 MB: %d\n", meminfo_kb("Shmem") < 16 << 10);
    return 0;
}

static int mapped(long mb)
{
    long before = meminfo_kb("Shmem");
    int fd = memfd_create("mapped", 0);
    size_t len = (size_t)mb << 20;
    if (ftruncate(fd, len))
        return res("ftruncate", -1), 1;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return res("mmap", -1), 1;
    for (size_t i = 0; i < len; i += 4096)
        p[i] = 1;
    munmap(p, len);
    long grown = (meminfo_kb("Shmem") - before) >> 10;
    printf("unmapped, Shmem grew by its size: %d\n", grown >= mb - 1 && grown <= mb + 1);
    close(fd);
    printf("closed, Shmem back: %d\n", (meminfo_kb("Shmem") - before) >> 10 < 1);
    return 0;
}

static int sysv(long mb, int n)
{
    long before = meminfo_kb("Shmem");
    int ids[64];
    size_t len = (size_t)mb << 20;
    for (int i = 0; i < n && i < 64; i++) {
        ids[i] = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600);
        char *p = shmat(ids[i], NULL, 0);
        if (ids[i] < 0 || p == (void *)-1)
            return res("shmget/shmat", -1), 1;
        memset(p, 1, len);
        shmdt(p);
    }
    long grown = (meminfo_kb("Shmem") - before) >> 10;
    printf("detached, Shmem grew by theirs: %d\n", grown >= n * mb - 1 && grown <= n * mb + 1);
    for (int i = 0; i < n && i < 64; i++)
        shmctl(ids[i], IPC_RMID, NULL);
    printf("removed, Shmem back: %d\n", (meminfo_kb("Shmem") - before) >> 10 < 1);
    return 0;
}

static int msg(void)
{
    static struct { long type; char text[65536]; } m = { 1 };
    long total_kb = meminfo_kb("MemTotal"), sent_kb = 0;
    int ids[4096], n = 0;
    for (;;) {
        if (n == 4096)
            return printf("out of queues\n"), 1;
        int q = ids[n++] = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
        struct msqid_ds ds;
        msgctl(q, IPC_STAT, &ds);
        ds.msg_qbytes = 1 << 30;
        if (q < 0 || msgctl(q, IPC_SET, &ds))
            return res("msgget/IPC_SET", -1), 1;
        while (msgsnd(q, &m, sizeof m.text, IPC_NOWAIT) == 0)
            sent_kb += sizeof m.text >> 10;
        if (errno != EAGAIN)
            break;
    }
    printf("msgsnd stopped: %s, within MemTotal: %d\n", en(errno), sent_kb <= total_kb);
    printf("Slab counts them: %d\n", meminfo_kb("Slab") >= sent_kb);
    for (int i = 0; i < n; i++)
        msgctl(ids[i], IPC_RMID, NULL);
    printf("removed, Slab back: %d\n", meminfo_kb("Slab") < 1024);
    return 0;
}

static int mqs(void)
{
    static char buf[1 << 20];
    struct rlimit r = { RLIM_INFINITY, RLIM_INFINITY };
    long total_kb = meminfo_kb("MemTotal"), sent_kb = 0;
    char name[32];
    int n = 0;
    setrlimit(RLIMIT_MSGQUEUE, &r);
    for (;; n++) {
        struct mq_attr a = { 0, 1024, sizeof buf, 0 };
        snprintf(name, sizeof name, "/t_shmem%d", n);
        mqd_t q = mq_open(name, O_CREAT | O_RDWR | O_NONBLOCK, 0600, &a);
        if (q < 0)
            return res("mq_open", -1), 1;
        while (mq_send(q, buf, sizeof buf, 0) == 0)
            sent_kb += sizeof buf >> 10;
        mq_close(q);
        if (errno != EAGAIN)
            break;
    }
    printf("mq_send stopped: %s, within MemTotal: %d\n", en(errno), sent_kb <= total_kb);
    printf("Slab counts them: %d\n", meminfo_kb("Slab") >= sent_kb);
    for (int i = 0; i <= n; i++) {
        snprintf(name, sizeof name, "/t_shmem%d", i);
        mq_unlink(name);
    }
    printf("unlinked, Slab back: %d\n", meminfo_kb("Slab") < 1024);
    return 0;
}

static int events(const char *dir)
{
    char path[4096];
    static char buf[1 << 16];
    int fd = inotify_init1(IN_NONBLOCK);
    if (fd < 0 || inotify_add_watch(fd, dir, IN_OPEN | IN_CLOSE) < 0)
        return res("inotify", -1), 1;
    snprintf(path, sizeof path, "%s/f", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    while (read(fd, buf, sizeof buf) > 0)
        ;
    long before = meminfo_kb("Slab");
    for (int i = 0; i < 8000; i++)      /* two events each, none merged (they alternate) */
        close(open(path, O_RDONLY));
    long grown = meminfo_kb("Slab") - before;
    printf("16000 events queued, Slab grew by at least 512 kB: %d\n", grown >= 512);
    long got = 0, n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (char *p = buf; p < buf + n; p += sizeof(struct inotify_event) + ((struct inotify_event *)p)->len)
            got++;
    printf("read %ld, Slab back: %d\n", got, meminfo_kb("Slab") - before < 64);
    close(fd);
    unlink(path);
    return 0;
}

/* nonblocking 64 KiB writes into fd until one fails: the bytes written; errno
   says why it stopped */
static long fill_pipe(int fd, long most)
{
    static char buf[1 << 16];
    long n = 0;
    ssize_t w;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    errno = 0;
    while (n < most && (w = write(fd, buf, sizeof buf)) > 0)
        n += w;
    return n;
}

static int pipes(void)
{
    int p[2];
    if (pipe(p))
        return res("pipe", -1), 1;
    long total_kb = meminfo_kb("MemTotal"), before = meminfo_kb("Slab");
    printf("1 GiB: %s\n", fcntl(p[0], F_SETPIPE_SZ, 1 << 30) < 0 ? en(errno) : "ok");
    long n = fill_pipe(p[1], 1L << 30);
    /* a pipe's first slot is not charged (see vfs/pipebuf.py) */
    printf("write stopped: %s, within MemTotal: %d\n", en(errno), (n >> 10) <= total_kb + 4);
    printf("Slab counts it: %d\n", meminfo_kb("Slab") - before >= (n >> 10) - 64);
    char c;
    printf("read back: %d\n", read(p[0], &c, 1) == 1);
    close(p[0]);
    close(p[1]);
    printf("closed, Slab back: %d\n", meminfo_kb("Slab") - before < 1024);
    return 0;
}

/* (root) user keys of 32 KiB with root's key limits raised, until add_key
   fails; then the keyring cleared */
static int keys(void)
{
    static char payload[32767];
    char desc[32];
    FILE *f = fopen("/proc/sys/kernel/keys/root_maxbytes", "w");
    if (f)
        fprintf(f, "2000000000\n"), fclose(f);
    f = fopen("/proc/sys/kernel/keys/root_maxkeys", "w");
    if (f)
        fprintf(f, "1000000\n"), fclose(f);
    long ring = syscall(SYS_add_key, "keyring", "t_shmem", NULL, 0, KEY_SPEC_PROCESS_KEYRING);
    if (ring < 0)
        return res("keyring", -1), 1;
    long total_kb = meminfo_kb("MemTotal"), before = meminfo_kb("Slab"), n = 0;
    memset(payload, 'k', sizeof payload);
    for (;;) {
        snprintf(desc, sizeof desc, "k%ld", n);
        if (syscall(SYS_add_key, "user", desc, payload, sizeof payload, ring) < 0)
            break;
        if (++n * 32 > 4 * total_kb)
            break;
    }
    printf("add_key stopped: %s, within MemTotal: %d\n", en(errno), n * 32 <= total_kb);
    printf("Slab counts them: %d\n", meminfo_kb("Slab") - before >= n * 32);
    syscall(SYS_keyctl, KEYCTL_CLEAR, ring);
    printf("cleared, Slab back: %d\n", meminfo_kb("Slab") - before < 1024);
    return 0;
}

/* (root) epoll watches, max_user_watches raised: 512 fds in each of as many
   epolls as it takes, until epoll_ctl fails, in a child the OOM killer
   prefers (a machine whose RAM is full of kernel objects kills, as Linux's
   does, where an allocation would not fail first) */
static int watches(void)
{
    FILE *f = fopen("/proc/sys/fs/epoll/max_user_watches", "w");
    if (f)
        fprintf(f, "100000000\n"), fclose(f);
    long total_kb = meminfo_kb("MemTotal"), before = meminfo_kb("Slab");
    int out[2];
    if (pipe(out))
        return res("pipe", -1), 1;
    pid_t c = fork();
    if (c == 0) {
        struct rlimit rl = {60000, 60000};
        setrlimit(RLIMIT_NOFILE, &rl);
        f = fopen("/proc/self/oom_score_adj", "w");
        if (f)
            fprintf(f, "1000\n"), fclose(f);
        int fds[512];
        for (int i = 0; i < 512; i += 2)
            if (pipe(fds + i))
                _exit(1);
        long n = 0;
        int failed = 0, eps = 0;
        while (!failed && eps < 20000) {
            int ep = epoll_create1(0);
            if (ep < 0)
                break;
            eps++;
            for (int i = 0; i < 512; i++) {
                struct epoll_event ev = {.events = EPOLLIN};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
                    failed = errno;
                    break;
                }
                n++;
            }
        }
        /* an epitem and its eppoll_entry: 184 bytes (Linux 6.1, x86-64) */
        dprintf(out[1], "epoll_ctl stopped: %s, within MemTotal: %d\n", en(failed),
                n * 184 / 1024 <= total_kb);
        _exit(0);
    }
    close(out[1]);
    int st;
    char line[256] = "";
    ssize_t k = read(out[0], line, sizeof line - 1);
    line[k > 0 ? k : 0] = 0;
    waitpid(c, &st, 0);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
        printf("the OOM killer took the filler\n");
    else
        printf("%s", line);
    printf("gone, Slab back: %d\n", meminfo_kb("Slab") - before < 1024);
    return 0;
}

/* (root) pipes of the default size, each filled, until a write finds no
   memory or no pipe can be made */
static int many_pipes(void)
{
    static int fds[1 << 16][2];
    struct rlimit rl = {60000, 60000};
    setrlimit(RLIMIT_NOFILE, &rl);
    long total_kb = meminfo_kb("MemTotal"), before = meminfo_kb("Slab"), held = 0;
    int n = 0, nomem = 0;
    while (n < (1 << 15) && pipe(fds[n]) == 0) {
        held += fill_pipe(fds[n++][1], 1 << 20);
        if (errno == ENOMEM) {
            nomem = 1;
            break;
        }
    }
    printf("a write found no memory: %d, held within MemTotal: %d, pipes over 1000: %d\n",
           nomem, (held >> 10) <= total_kb + 4L * n, n > 1000);
    printf("Slab counts them: %d\n", meminfo_kb("Slab") - before >= (held >> 10) - 4 * n - 64);
    for (int i = 0; i < n; i++) {
        close(fds[i][0]);
        close(fds[i][1]);
    }
    printf("closed, Slab back: %d\n", meminfo_kb("Slab") - before < 1024);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int r = 1;
    if (argc > 1 && !strcmp(argv[1], "memfd"))
        r = memfd();
    else if (argc > 2 && !strcmp(argv[1], "mapped"))
        r = mapped(atol(argv[2]));
    else if (argc > 1 && !strcmp(argv[1], "mq"))
        r = mqs();
    else if (argc > 2 && !strcmp(argv[1], "events"))
        r = events(argv[2]);
    else if (argc > 1 && !strcmp(argv[1], "pipe"))
        r = pipes();
    else if (argc > 1 && !strcmp(argv[1], "keys"))
        r = keys();
    else if (argc > 1 && !strcmp(argv[1], "watches"))
        r = watches();
    else if (argc > 1 && !strcmp(argv[1], "pipes"))
        r = many_pipes();
    else if (argc > 1 && !strcmp(argv[1], "msg"))
        r = msg();
    else if (argc > 3 && !strcmp(argv[1], "sysv"))
        r = sysv(atol(argv[2]), atoi(argv[3]));
    printf("done\n");
    return r;
}
