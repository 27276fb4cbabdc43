/* name_to_handle_at and open_by_handle_at.  The handle's bytes and type
 * depend on the filesystem (the scratch dir is ext4 natively, tmpfs in the
 * guest), so only what does not is printed: EOVERFLOW with the size needed
 * (and FILEID_INVALID), the checks of sizes, flags and pointers, opening by
 * a handle (the same inode, its data, a directory, a symlink), ESTALE once
 * the file is gone, EPERM without CAP_DAC_READ_SEARCH, EOPNOTSUPP for a
 * pipe.  Run as root.  Works in ARGV1/fhandle. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "results.h"

#define BAD ((void *)-1)

static struct file_handle *handle_of(int dfd, const char *path, int flags, int *mnt)
{
    struct file_handle probe = {.handle_bytes = 0};
    if (name_to_handle_at(dfd, path, &probe, mnt, flags) == 0 || errno != EOVERFLOW)
        return NULL;
    struct file_handle *h = malloc(sizeof *h + probe.handle_bytes);
    h->handle_bytes = probe.handle_bytes;
    if (name_to_handle_at(dfd, path, h, mnt, flags) < 0) {
        free(h);
        return NULL;
    }
    return h;
}

static void same_file(const char *what, int fd, const char *path)
{
    struct stat a, b;
    if (fd < 0) {
        printf("%s: -1 %s\n", what, en(errno));
        return;
    }
    fstat(fd, &a);
    lstat(path, &b);
    printf("%s: ok, same inode: %s\n", what, a.st_ino == b.st_ino && a.st_dev == b.st_dev ? "yes" : "no");
    close(fd);
}

int main(int argc, char **argv)
{
    char dir[4096], cmd[4200];
    snprintf(dir, sizeof dir, "%s/fhandle", argc > 1 ? argv[1] : ".");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    system(cmd);
    mkdir(dir, 0755);
    if (chdir(dir) < 0) {
        perror("chdir");
        return 1;
    }
    int fd = open("file", O_RDWR | O_CREAT, 0644);
    write(fd, "handled", 7);
    mkdir("sub", 0755);
    symlink("file", "link");
    int mnt = -1, mnt2 = -2;

    struct file_handle probe = {.handle_bytes = 0, .handle_type = 7};
    res("size 0", name_to_handle_at(AT_FDCWD, "file", &probe, &mnt, 0));
    printf("  size needed > 0: %s, type %d, mount id set: %s\n", probe.handle_bytes > 0 ? "yes" : "no",
           probe.handle_type, mnt >= 0 ? "yes" : "no");
    struct file_handle *big = malloc(sizeof *big + MAX_HANDLE_SZ + 1);
    big->handle_bytes = MAX_HANDLE_SZ + 1;
    res("size MAX_HANDLE_SZ + 1", name_to_handle_at(AT_FDCWD, "file", big, &mnt, 0));
    big->handle_bytes = MAX_HANDLE_SZ;
    res("size MAX_HANDLE_SZ", name_to_handle_at(AT_FDCWD, "file", big, &mnt, 0));
    printf("  size now that needed: %s\n", big->handle_bytes == probe.handle_bytes ? "yes" : "no");
    res("flags -1", name_to_handle_at(AT_FDCWD, "file", big, &mnt, -1));
    res("bad handle", name_to_handle_at(AT_FDCWD, "file", BAD, &mnt, 0));
    res("bad mount id", name_to_handle_at(AT_FDCWD, "file", big, BAD, 0));
    res("NULL mount id", name_to_handle_at(AT_FDCWD, "file", big, NULL, 0));
    res("bad path", name_to_handle_at(AT_FDCWD, BAD, big, &mnt, 0));
    res("empty path", name_to_handle_at(AT_FDCWD, "", big, &mnt, 0));
    res("bad dirfd", name_to_handle_at(-1, "file", big, &mnt, 0));
    res("file as dirfd", name_to_handle_at(fd, "file", big, &mnt, 0));
    res("no such file", name_to_handle_at(AT_FDCWD, "nonexistent", big, &mnt, 0));
    int p[2];
    pipe(p);
    res("pipe, AT_EMPTY_PATH", name_to_handle_at(p[0], "", big, &mnt, AT_EMPTY_PATH));

    struct file_handle *hf = handle_of(AT_FDCWD, "file", 0, &mnt);
    struct file_handle *he = handle_of(fd, "", AT_EMPTY_PATH, &mnt2);
    struct file_handle *hd = handle_of(AT_FDCWD, "sub", 0, &mnt2);
    struct file_handle *hl = handle_of(AT_FDCWD, "link", 0, &mnt2);
    struct file_handle *hfl = handle_of(AT_FDCWD, "link", AT_SYMLINK_FOLLOW, &mnt2);
    printf("handles made: %d, mount ids equal: %s\n", hf && he && hd && hl && hfl, mnt == mnt2 ? "yes" : "no");
    printf("AT_EMPTY_PATH handle is the same: %s\n",
           he->handle_bytes == hf->handle_bytes && !memcmp(he->f_handle, hf->f_handle, hf->handle_bytes) ? "yes" : "no");
    printf("followed link's handle is the file's: %s\n",
           !memcmp(hfl->f_handle, hf->f_handle, hf->handle_bytes) ? "yes" : "no");

    same_file("open file O_RDONLY", open_by_handle_at(AT_FDCWD, hf, O_RDONLY), "file");
    int rw = open_by_handle_at(fd, hf, O_RDWR);
    char b[16] = {0};
    res("open file O_RDWR through the file's own fd", rw < 0 ? -1 : 0);
    pread(rw, b, sizeof b - 1, 0);
    printf("  reads %s\n", b);
    close(rw);
    same_file("open directory O_DIRECTORY", open_by_handle_at(AT_FDCWD, hd, O_RDONLY | O_DIRECTORY), "sub");
    same_file("open directory O_RDWR", open_by_handle_at(AT_FDCWD, hd, O_RDWR), "sub");
    same_file("open file O_DIRECTORY", open_by_handle_at(AT_FDCWD, hf, O_RDONLY | O_DIRECTORY), "file");
    same_file("open symlink", open_by_handle_at(AT_FDCWD, hl, O_RDONLY), "link");
    same_file("open symlink O_PATH", open_by_handle_at(AT_FDCWD, hl, O_PATH), "link");
    res("bad mount fd", open_by_handle_at(-1, hf, O_RDONLY));
    int path = open(".", O_PATH);
    res("O_PATH mount fd", open_by_handle_at(path, hf, O_RDONLY));
    struct file_handle zero = {.handle_bytes = 0};
    res("size 0", open_by_handle_at(AT_FDCWD, &zero, O_RDONLY));
    big->handle_bytes = MAX_HANDLE_SZ + 1;
    res("size MAX_HANDLE_SZ + 1", open_by_handle_at(AT_FDCWD, big, O_RDONLY));
    res("bad handle", open_by_handle_at(AT_FDCWD, BAD, O_RDONLY));
    struct file_handle *junk = malloc(sizeof *junk + hf->handle_bytes);
    memcpy(junk, hf, sizeof *hf + hf->handle_bytes);
    memset(junk->f_handle, 0xff, junk->handle_bytes);
    res("handle of nothing", open_by_handle_at(AT_FDCWD, junk, O_RDONLY));

    big->handle_bytes = MAX_HANDLE_SZ;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setresuid(65534, 65534, 65534);
        res("nobody: open by handle", open_by_handle_at(AT_FDCWD, hf, O_RDONLY));
        res("nobody: name_to_handle_at", name_to_handle_at(AT_FDCWD, "file", big, &mnt, 0) < 0 ? -1 : 0);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);

    close(fd);
    unlink("file");
    unlink("link");
    res("open a removed file", open_by_handle_at(AT_FDCWD, hf, O_RDONLY));
    rmdir("sub");
    res("open a removed directory", open_by_handle_at(AT_FDCWD, hd, O_RDONLY));
    close(path);
    close(p[0]);
    close(p[1]);
    chdir("/");
    system(cmd);
    printf("done\n");
    return 0;
}
