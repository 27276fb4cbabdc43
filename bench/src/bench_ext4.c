/* The file-system figures of issue 14 on an ext4 disk: 64 MiB write+fsync,
 * a cold and then a cached 64 MiB read, create+unlink of 10 000 small files
 * and stat+open+close.  As a guest's init it works in /data of the ext4
 * image bench/run.py builds (cold.dat was put there by mke2fs -d, so its
 * first read after boot comes from the disk, not the guest's page cache);
 * natively in DIR, where cold.dat is written, synced and dropped from the
 * host's page cache with POSIX_FADV_DONTNEED.
 * usage: bench_ext4 [DIR=/data] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BS (64 * 1024)
#define MIB 64
#define NFILES 10000
#define NSTAT 20000

static char buf[BS];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void write_file(const char *path)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0)
        die("open w");
    for (long i = 0; i < (long)MIB * 1024 * 1024 / BS; i++)
        if (write(fd, buf, BS) != BS)
            die("write");
    if (fsync(fd))
        die("fsync");
    close(fd);
}

/* MB/s (10^6 bytes/s) of reading path to its end */
static double read_rate(const char *path)
{
    double t0 = now_s();
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die("open r");
    long got = 0;
    ssize_t r;
    while ((r = read(fd, buf, BS)) > 0)
        got += r;
    close(fd);
    double t = now_s() - t0;
    if (got != (long)MIB * 1024 * 1024) {
        fprintf(stderr, "short read of %s: %ld\n", path, got);
        exit(1);
    }
    return got / t / 1e6;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/data";
    char path[4096], cold[4096];
    for (int i = 0; i < BS; i++)
        buf[i] = (char)(i * 7 + 1);
    snprintf(cold, sizeof cold, "%s/cold.dat", dir);
    if (access(cold, R_OK) != 0) {
        write_file(cold);
        int fd = open(cold, O_RDONLY);
        if (fd < 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
            die("fadvise");
        close(fd);
    }
    double cold_rate = read_rate(cold);
    double cached_rate = read_rate(cold);

    snprintf(path, sizeof path, "%s/w.dat", dir);
    double t0 = now_s();
    write_file(path);
    double wrate = (double)MIB * 1024 * 1024 / (now_s() - t0) / 1e6;
    unlink(path);

    t0 = now_s();
    for (int i = 0; i < NFILES; i++) {
        snprintf(path, sizeof path, "%s/f%05d", dir, i);
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd < 0 || write(fd, buf, 100) != 100)
            die("create");
        close(fd);
    }
    for (int i = 0; i < NFILES; i++) {
        snprintf(path, sizeof path, "%s/f%05d", dir, i);
        if (unlink(path))
            die("unlink");
    }
    double create_us = (now_s() - t0) / NFILES * 1e6;

    snprintf(path, sizeof path, "%s/s.dat", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd < 0)
        die("open s");
    close(fd);
    struct stat st;
    t0 = now_s();
    for (int i = 0; i < NSTAT; i++) {
        if (stat(path, &st))
            die("stat");
        fd = open(path, O_RDONLY);
        if (fd < 0)
            die("open");
        close(fd);
    }
    double stat_us = (now_s() - t0) / NSTAT * 1e6;
    unlink(path);
    sync();

    printf("ext4_write_fsync_MBps %.1f\next4_cold_read_MBps %.1f\next4_cached_read_MBps %.1f\n"
           "ext4_create_unlink_us %.2f\next4_stat_open_close_us %.2f\n",
           wrate, cold_rate, cached_rate, create_us, stat_us);
    return 0;
}
