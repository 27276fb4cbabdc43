/* Loop devices: /dev/loop-control and the LOOP_* and generic block ioctls
 * on a loop device bound to files in the scratch directory; their errors,
 * what LOOP_GET_STATUS and sysfs report, and data going through to the
 * file.  Only what Linux 6.1 and later kernels agree on (not block sizes
 * above a page, not discard, not direct I/O, which depend on the kernel
 * and the backing filesystem; not the read-only flag an unbound device
 * keeps from its last binding).  Needs root and a usable /dev/loop-control:
 * without it the program says so and stops. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/hdreg.h>
#include <linux/loop.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "results.h"

static char dir[4096], img[4200], img2[4200], img3[4200], dev[64];
static int num;

static void mkfile(const char *path, size_t size, int fill)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    char buf[4096];
    for (size_t i = 0; i < size; i += sizeof(buf)) {
        for (size_t j = 0; j < sizeof(buf); j++)
            buf[j] = (char)(fill + (i + j) / 512);
        if (write(fd, buf, sizeof(buf)) != sizeof(buf))
            printf("mkfile %s: short write\n", path);
    }
    close(fd);
}

static void rmtree(void)
{
    char cmd[8300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("rm failed\n");
}

static int status64(int fd, struct loop_info64 *li)
{
    memset(li, 0, sizeof(*li));
    return ioctl(fd, LOOP_GET_STATUS64, li);
}

static void show_status(int fd, const char *what)
{
    struct loop_info64 li;
    struct stat st;
    if (status64(fd, &li) < 0) {
        printf("%s: status -1 %s\n", what, en(errno));
        return;
    }
    stat(img, &st);
    printf("%s: offset=%llu sizelimit=%llu flags=%u name='%s' number_ok=%d inode_ok=%d\n", what,
           (unsigned long long)li.lo_offset, (unsigned long long)li.lo_sizelimit, li.lo_flags,
           (char *)li.lo_file_name, li.lo_number == (unsigned)num, li.lo_inode == st.st_ino);
}

static void show_size(int fd, const char *what)
{
    uint64_t b64 = 0;
    unsigned long sectors = 0;
    int ssz = 0, ro = -1;
    res("BLKGETSIZE64", ioctl(fd, BLKGETSIZE64, &b64));
    res("BLKGETSIZE", ioctl(fd, BLKGETSIZE, &sectors));
    res("BLKSSZGET", ioctl(fd, BLKSSZGET, &ssz));
    res("BLKROGET", ioctl(fd, BLKROGET, &ro));
    printf("%s: bytes=%llu sectors=%lu ssz=%d ro=%d\n", what, (unsigned long long)b64,
           sectors, ssz, ro);
}

static void show_sysfs(const char *what)
{
    static const char *const attrs[] = {"size", "ro", "loop/offset", "loop/sizelimit",
                                        "loop/autoclear", "loop/partscan", NULL};
    char path[256], buf[4200], want[4200];
    printf("%s sysfs:", what);
    for (int i = 0; attrs[i]; i++) {
        snprintf(path, sizeof(path), "/sys/block/loop%d/%s", num, attrs[i]);
        FILE *f = fopen(path, "r");
        if (!f) {
            printf(" %s=-1 %s", attrs[i], en(errno));
            continue;
        }
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = 0;
        fclose(f);
        buf[strcspn(buf, "\n")] = 0;
        printf(" %s=%s", attrs[i], buf);
    }
    snprintf(path, sizeof(path), "/sys/block/loop%d/loop/backing_file", num);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = 0;
        fclose(f);
        buf[strcspn(buf, "\n")] = 0;
        printf(" backing_file_ok=%d", realpath(img, want) && !strcmp(buf, want));
    } else {
        printf(" backing_file=-1 %s", en(errno));
    }
    printf("\n");
}

static int reopen(int fd)
{
    /* the last close detaches a device LOOP_CLR_FD marked (at once in 6.1,
     * newer kernels may take a moment, as LTP's tst_detach_device allows) */
    close(fd);
    for (int i = 0; i < 100; i++) {
        struct loop_info64 li;
        fd = open(dev, O_RDWR);
        if (fd >= 0 && status64(fd, &li) < 0 && errno == ENXIO) {
            printf("detached\n");
            return fd;
        }
        if (fd >= 0)
            close(fd);
        usleep(20000);
    }
    printf("still bound\n");
    return open(dev, O_RDWR);
}

static void control(void)
{
    int ctl = open("/dev/loop-control", O_RDWR);
    char c;
    res("ctl read", read(ctl, &c, 1));
    res("ctl unknown", ioctl(ctl, 0x4C8F, 0));
    res("ctl remove -1", ioctl(ctl, LOOP_CTL_REMOVE, -1));
    res("ctl remove absent", ioctl(ctl, LOOP_CTL_REMOVE, 999999));
    res("ctl add existing", ioctl(ctl, LOOP_CTL_ADD, num));
    res("ctl add 4000", ioctl(ctl, LOOP_CTL_ADD, 4000));
    res("ctl add 4000 again", ioctl(ctl, LOOP_CTL_ADD, 4000));
    res("ctl remove 4000", ioctl(ctl, LOOP_CTL_REMOVE, 4000));
    res("ctl remove 4000 again", ioctl(ctl, LOOP_CTL_REMOVE, 4000));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    res("epoll ctl", epoll_ctl(ep, EPOLL_CTL_ADD, ctl, &ev));
    close(ep);
    close(ctl);
}

static void unbound(int fd)
{
    struct loop_info64 li;
    struct loop_info old;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY), pfd = open(img, O_PATH), sfd = open(dev, O_RDONLY);
    int sfd2 = open(img2, O_RDONLY);
    char c;
    res("unbound GET_STATUS64", status64(fd, &li));
    res("unbound GET_STATUS", ioctl(fd, LOOP_GET_STATUS, &old));
    res("unbound GET_STATUS NULL", ioctl(fd, LOOP_GET_STATUS, NULL));
    memset(&li, 0, sizeof(li));
    res("unbound SET_STATUS64", ioctl(fd, LOOP_SET_STATUS64, &li));
    res("unbound CLR_FD", ioctl(fd, LOOP_CLR_FD, 0));
    res("unbound SET_CAPACITY", ioctl(fd, LOOP_SET_CAPACITY, 0));
    res("unbound SET_BLOCK_SIZE", ioctl(fd, LOOP_SET_BLOCK_SIZE, 512));
    res("unbound SET_DIRECT_IO", ioctl(fd, LOOP_SET_DIRECT_IO, 0));
    res("unbound CHANGE_FD bad", ioctl(fd, LOOP_CHANGE_FD, -1));
    res("unbound CHANGE_FD", ioctl(fd, LOOP_CHANGE_FD, sfd2));
    res("unbound read", read(fd, &c, 1));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    res("epoll dev", epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    close(ep);
    res("SET_FD -1", ioctl(fd, LOOP_SET_FD, -1));
    res("SET_FD dir", ioctl(fd, LOOP_SET_FD, dfd));
    res("SET_FD O_PATH", ioctl(fd, LOOP_SET_FD, pfd));
    res("SET_FD itself", ioctl(fd, LOOP_SET_FD, sfd));
    close(dfd);
    close(pfd);
    close(sfd);
    close(sfd2);
}

static void bound_rw(int fd)
{
    int ffd = open(img, O_RDWR), other;
    struct loop_info64 li;
    struct loop_info old;
    char buf[4096], back[4096];
    res("SET_FD", ioctl(fd, LOOP_SET_FD, ffd));
    res("SET_FD again", ioctl(fd, LOOP_SET_FD, ffd));
    close(ffd);
    show_status(fd, "bound");
    show_size(fd, "bound");
    show_sysfs("bound");

    memset(&li, 0, sizeof(li));
    li.lo_offset = 4096;
    li.lo_sizelimit = 8192;
    li.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_READ_ONLY | LO_FLAGS_DIRECT_IO;
    strcpy((char *)li.lo_file_name, "a-name");
    res("SET_STATUS64", ioctl(fd, LOOP_SET_STATUS64, &li));
    show_status(fd, "offset");
    show_size(fd, "offset");
    show_sysfs("offset");
    memset(buf, 0, sizeof(buf));
    res("pread dev 0", pread(fd, buf, 8, 0));
    int f = open(img, O_RDONLY);
    res("pread img 4096", pread(f, back, 8, 4096));
    printf("offset data same=%d\n", !memcmp(buf, back, 8));
    res("pread dev end", pread(fd, buf, 8, 8192));
    res("pwrite dev end", pwrite(fd, "x", 1, 8192));
    res("lseek dev end", lseek(fd, 0, SEEK_END));
    memset(buf, 'Q', sizeof(buf));
    res("pwrite dev 512", pwrite(fd, buf, 1024, 512));
    res("fsync dev", fsync(fd));
    res("pread img 4608", pread(f, back, 1024, 4096 + 512));
    printf("written data same=%d\n", !memcmp(buf, back, 1024));
    uint64_t range[2] = {512, 512};
    res("BLKZEROOUT", ioctl(fd, BLKZEROOUT, range));
    res("pread img zeroed", pread(f, back, 512, 4096 + 512));
    printf("zeroed=%d\n", back[0] == 0 && back[511] == 0);
    uint64_t bad[2] = {100, 512};
    res("BLKZEROOUT unaligned", ioctl(fd, BLKZEROOUT, bad));
    close(f);

    li.lo_flags = 0;
    res("SET_STATUS64 clear", ioctl(fd, LOOP_SET_STATUS64, &li));
    show_status(fd, "cleared");
    li.lo_flags = LO_FLAGS_PARTSCAN;
    res("SET_STATUS64 partscan", ioctl(fd, LOOP_SET_STATUS64, &li));
    li.lo_flags = 0;
    res("SET_STATUS64 again", ioctl(fd, LOOP_SET_STATUS64, &li));
    show_status(fd, "partscan kept");
    show_sysfs("partscan");

    memset(&li, 0, sizeof(li));
    li.lo_encrypt_type = LO_CRYPT_XOR;
    res("SET_STATUS64 xor", ioctl(fd, LOOP_SET_STATUS64, &li));
    li.lo_encrypt_type = 0;
    li.lo_encrypt_key_size = LO_KEY_SIZE + 1;
    res("SET_STATUS64 key size", ioctl(fd, LOOP_SET_STATUS64, &li));
    li.lo_encrypt_key_size = 0;
    li.lo_offset = 1ULL << 63;
    res("SET_STATUS64 huge offset", ioctl(fd, LOOP_SET_STATUS64, &li));
    li.lo_offset = 0x80000000ULL;
    res("SET_STATUS64 2G offset", ioctl(fd, LOOP_SET_STATUS64, &li));
    res("GET_STATUS old 2G", ioctl(fd, LOOP_GET_STATUS, &old));
    show_size(fd, "2G");
    memset(&old, 0, sizeof(old));
    old.lo_offset = -512;
    res("SET_STATUS old negative", ioctl(fd, LOOP_SET_STATUS, &old));
    old.lo_offset = 1024;
    strcpy(old.lo_name, "old-name");
    res("SET_STATUS old", ioctl(fd, LOOP_SET_STATUS, &old));
    memset(&old, 0, sizeof(old));
    res("GET_STATUS old", ioctl(fd, LOOP_GET_STATUS, &old));
    printf("old: offset=%d flags=%d name='%s' number_ok=%d\n", old.lo_offset, old.lo_flags,
           old.lo_name, old.lo_number == num);
    show_status(fd, "via old");

    res("SET_BLOCK_SIZE 256", ioctl(fd, LOOP_SET_BLOCK_SIZE, 256));
    res("SET_BLOCK_SIZE 1000", ioctl(fd, LOOP_SET_BLOCK_SIZE, 1000));
    res("SET_BLOCK_SIZE 1024", ioctl(fd, LOOP_SET_BLOCK_SIZE, 1024));
    show_size(fd, "bs1024");
    res("SET_BLOCK_SIZE 512", ioctl(fd, LOOP_SET_BLOCK_SIZE, 512));
    res("CHANGE_FD rw", ioctl(fd, LOOP_CHANGE_FD, fd));
    res("unknown ioctl", ioctl(fd, 0x4CFF, 0));
    struct hd_geometry geo;
    res("HDIO_GETGEO", ioctl(fd, HDIO_GETGEO, &geo));
    res("BLKRRPART", ioctl(fd, BLKRRPART, 0));
    res("BLKFLSBUF", ioctl(fd, BLKFLSBUF, 0));
    int one = 1, zero = 0;
    res("BLKROSET 1", ioctl(fd, BLKROSET, &one));
    show_size(fd, "BLKROSET");
    res("write BLKROSET", pwrite(fd, "x", 1, 0));
    res("BLKROSET 0", ioctl(fd, BLKROSET, &zero));

    int ctl = open("/dev/loop-control", O_RDWR);
    res("ctl remove bound", ioctl(ctl, LOOP_CTL_REMOVE, num));
    res("ctl get_free not bound one", ioctl(ctl, LOOP_CTL_GET_FREE) != num);
    close(ctl);

    other = open(dev, O_RDONLY);
    res("CLR_FD while open twice", ioctl(fd, LOOP_CLR_FD, 0));
    show_status(fd, "autoclear");
    close(other);
    show_status(fd, "other closed");
    res("CLR_FD", ioctl(fd, LOOP_CLR_FD, 0));
    res("CLR_FD again", ioctl(fd, LOOP_CLR_FD, 0));
}

static void bound_ro(int fd)
{
    int ffd = open(img, O_RDONLY), f2 = open(img2, O_RDWR), f3 = open(img3, O_RDWR);
    res("SET_FD ro", ioctl(fd, LOOP_SET_FD, ffd));
    show_status(fd, "ro");
    show_size(fd, "ro");
    show_sysfs("ro");
    res("write ro", pwrite(fd, "x", 1, 0));
    res("CHANGE_FD same size", ioctl(fd, LOOP_CHANGE_FD, f2));
    res("CHANGE_FD other size", ioctl(fd, LOOP_CHANGE_FD, f3));
    char buf[8], back[8];
    res("pread changed", pread(fd, buf, 8, 0));
    res("pread img2", pread(f2, back, 8, 0));
    printf("changed data same=%d\n", !memcmp(buf, back, 8));
    res("CLR_FD ro", ioctl(fd, LOOP_CLR_FD, 0));
    close(ffd);
    close(f2);
    close(f3);
}

static void configure(int fd)
{
    struct loop_config cfg;
    int ffd = open(img, O_RDWR);
    memset(&cfg, 0, sizeof(cfg));
    cfg.fd = ffd;
    cfg.info.lo_flags = 2;
    res("CONFIGURE bad flag", ioctl(fd, LOOP_CONFIGURE, &cfg));
    cfg.info.lo_flags = LO_FLAGS_READ_ONLY;
    cfg.block_size = 1000;
    res("CONFIGURE bad block size", ioctl(fd, LOOP_CONFIGURE, &cfg));
    cfg.fd = -1;
    res("CONFIGURE bad fd", ioctl(fd, LOOP_CONFIGURE, &cfg));
    cfg.fd = ffd;
    cfg.block_size = 4096;
    cfg.info.lo_sizelimit = 65536;
    cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
    res("CONFIGURE", ioctl(fd, LOOP_CONFIGURE, &cfg));
    res("CONFIGURE again", ioctl(fd, LOOP_CONFIGURE, &cfg));
    show_status(fd, "configured");
    show_size(fd, "configured");
    show_sysfs("configured");
    close(ffd);
}

static void big_io(int fd)
{
    /* one write and one read of the whole 2 MiB device, as mke2fs writes
     * a whole inode table: all of it, not a short count */
    int ffd = open(img3, O_RDWR);
    size_t n = 2 << 20;
    char *buf = malloc(n), *back = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(i * 7 / 4096);
    res("SET_FD big", ioctl(fd, LOOP_SET_FD, ffd));
    res("pwrite big", pwrite(fd, buf, n, 0));
    res("fsync big", fsync(fd));
    res("pread big", pread(ffd, back, n, 0));
    printf("big data same=%d\n", !memcmp(buf, back, n));
    memset(back, 0, n);
    res("pread dev big", pread(fd, back, n, 0));
    printf("big dev data same=%d\n", !memcmp(buf, back, n));
    res("CLR_FD big", ioctl(fd, LOOP_CLR_FD, 0));
    close(ffd);
    free(buf);
    free(back);
}

int main(int argc, char **argv)
{
    snprintf(dir, sizeof(dir), "%s/t_loop", argc > 1 ? argv[1] : ".");
    rmtree();
    mkdir(dir, 0700);
    snprintf(img, sizeof(img), "%s/img", dir);
    snprintf(img2, sizeof(img2), "%s/img2", dir);
    snprintf(img3, sizeof(img3), "%s/img3", dir);
    mkfile(img, 1 << 20, 1);
    mkfile(img2, 1 << 20, 2);
    mkfile(img3, 2 << 20, 3);
    if (access("/sys/block", F_OK) != 0)
        mount("sysfs", "/sys", "sysfs", 0, NULL);

    int ctl = open("/dev/loop-control", O_RDWR);
    if (ctl < 0) {
        printf("loop-control: -1 %s\n", en(errno));
        rmtree();
        printf("done\n");
        return 0;
    }
    num = ioctl(ctl, LOOP_CTL_GET_FREE);
    printf("get_free: %s\n", num >= 0 ? "ok" : en(errno));
    close(ctl);
    snprintf(dev, sizeof(dev), "/dev/loop%d", num);
    int fd = open(dev, O_RDWR);
    if (fd < 0) {
        printf("open %s: -1 %s\n", dev, en(errno));
        return 1;
    }
    unbound(fd);
    bound_rw(fd);
    fd = reopen(fd);
    show_size(fd, "detached");
    show_sysfs("detached");
    res("detached write", pwrite(fd, "x", 1, 0));
    bound_ro(fd);
    fd = reopen(fd);
    configure(fd);
    fd = reopen(fd);
    big_io(fd);
    fd = reopen(fd);
    close(fd);
    control();
    rmtree();
    printf("done\n");
    return 0;
}
