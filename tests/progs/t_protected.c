/* fs.protected_symlinks, _hardlinks, _fifos and _regular (run as root in
   the guest: it sets them).  In a sticky world-writable directory DIR/t
   user 1000 leaves a symlink, a private file, a regular file and a fifo;
   user 1001 follows the symlink, hard-links the private file and opens
   the others with O_CREAT, with each protection off (0), on (1) and at 2;
   then the owner of the directory's own entries, and a group-writable
   sticky directory at level 1 and 2.  Prints each outcome. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256], gdir[300];

static void set(const char *name, int v)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/sys/fs/%s", name);
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%d\n", v) < 0 || fclose(f)) {
        printf("set %s: %s\n", name, strerror(errno));
    }
}

static const char *res(int r)
{
    static char buf[64];
    if (r >= 0)
        return "ok";
    snprintf(buf, sizeof buf, "%s", errno == EACCES ? "EACCES" : errno == EPERM ? "EPERM" : strerror(errno));
    return buf;
}

static void as_user(uid_t uid, const char *what, const char *d)
{
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        char path[400], path2[400];
        setgid(uid);
        setuid(uid);
        int r;
        snprintf(path, sizeof path, "%s/link", d);
        r = open(path, O_RDONLY);
        printf("  %s follow link: %s\n", what, res(r));
        if (r >= 0)
            close(r);
        snprintf(path, sizeof path, "%s/secret", d);
        snprintf(path2, sizeof path2, "%s/hard", d);
        r = link(path, path2);
        printf("  %s hard link to another's private file: %s\n", what, res(r));
        snprintf(path, sizeof path, "%s/file", d);
        r = open(path, O_WRONLY | O_CREAT, 0666);
        printf("  %s O_CREAT of another's file: %s\n", what, res(r));
        if (r >= 0)
            close(r);
        snprintf(path, sizeof path, "%s/fifo", d);
        r = open(path, O_RDONLY | O_CREAT | O_NONBLOCK, 0666);
        printf("  %s O_CREAT of another's fifo: %s\n", what, res(r));
        if (r >= 0)
            close(r);
        fflush(stdout);
        _exit(0);
    }
    waitpid(p, NULL, 0);
    char hard[400];
    snprintf(hard, sizeof hard, "%s/hard", d);
    unlink(hard);                           /* (in a sticky directory only root may) */
}

static void plant(const char *d)
{
    pid_t p = fork();
    if (p == 0) {
        char path[400];
        setgid(1000);
        setuid(1000);
        snprintf(path, sizeof path, "%s/link", d);
        symlink("/etc/passwd", path);
        snprintf(path, sizeof path, "%s/secret", d);
        close(open(path, O_WRONLY | O_CREAT, 0600));
        snprintf(path, sizeof path, "%s/file", d);
        close(open(path, O_WRONLY | O_CREAT, 0666));
        snprintf(path, sizeof path, "%s/fifo", d);
        mkfifo(path, 0666);
        _exit(0);
    }
    waitpid(p, NULL, 0);
}

static void all(int v)
{
    set("protected_symlinks", v > 1 ? 1 : v);
    set("protected_hardlinks", v > 1 ? 1 : v);
    set("protected_fifos", v);
    set("protected_regular", v);
}

int main(int argc, char **argv)
{
    umask(0);
    snprintf(dir, sizeof dir, "%s/t", argc > 1 ? argv[1] : "/tmp");
    snprintf(gdir, sizeof gdir, "%s/g", argc > 1 ? argv[1] : "/tmp");
    mkdir(dir, 0);
    chmod(dir, 01777);
    mkdir(gdir, 0);
    chmod(gdir, 01777);
    plant(dir);
    plant(gdir);
    chown(gdir, 0, 1001);
    chmod(gdir, 01770);
    for (int v = 0; v <= 2; v++) {
        all(v);
        printf("level %d, sticky world-writable:\n", v);
        as_user(1001, "other", dir);
        as_user(1000, "owner", dir);
        printf("level %d, sticky group-writable:\n", v);
        as_user(1001, "other", gdir);
    }
    all(0);
    set("protected_fifos", 3);
    set("protected_symlinks", 2);
    printf("done\n");
    return 0;
}
