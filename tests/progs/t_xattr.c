/* Extended attributes: set/get/list/remove by path, link and fd;
 * XATTR_CREATE/REPLACE, ENODATA, ERANGE, size queries, namespaces,
 * symlinks, fifos and directories.  Everything an inode holds fits in
 * one 1 KiB ext2 block, so the output is the same on any filesystem with
 * user xattrs.  Works in ARGV1/xa (removed first if left over). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

static void res(const char *what, long r)
{
    if (r < 0)
        printf("%s: %ld %s\n", what, r, en(errno));
    else
        printf("%s: %ld\n", what, r);
}

/* A value printed safely: printable bytes as they are, others as \xNN. */
static void show_value(const char *what, long r, const char *v)
{
    if (r < 0) {
        printf("%s: -1 %s\n", what, en(errno));
        return;
    }
    printf("%s: %ld \"", what, r);
    for (long i = 0; i < r; i++) {
        unsigned char c = v[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            putchar(c);
        else
            printf("\\x%02x", c);
    }
    printf("\"\n");
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of a list, sorted: filesystems list them in their own order. */
static void show_list(const char *what, long r, char *buf)
{
    if (r < 0) {
        printf("%s: -1 %s\n", what, en(errno));
        return;
    }
    char *names[64];
    int n = 0;
    for (char *p = buf; p < buf + r && n < 64; p += strlen(p) + 1)
        names[n++] = p;
    qsort(names, n, sizeof names[0], cmp);
    printf("%s: %ld [", what, r);
    for (int i = 0; i < n; i++)
        printf("%s%s", i ? " " : "", names[i]);
    printf("]\n");
}

#define GET(label, call) do { char v_[1100]; errno = 0; long r_ = call; show_value(label, r_, v_); } while (0)
#define LIST(label, call) do { char l_[2048]; errno = 0; long r_ = call; show_list(label, r_, l_); } while (0)
#define RES(label, call) do { errno = 0; res(label, call); } while (0)

static void cleanup(void)
{
    unlink("xa/f");
    unlink("xa/l");
    unlink("xa/p");
    unlink("xa/many");
    rmdir("xa/d");
    rmdir("xa");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (chdir(argc > 1 ? argv[1] : ".") != 0) {
        printf("chdir: %s\n", en(errno));
        return 1;
    }
    cleanup();
    if (mkdir("xa", 0755) != 0) {
        printf("mkdir xa: %s\n", en(errno));
        return 1;
    }
    close(open("xa/f", O_WRONLY | O_CREAT | O_EXCL, 0644));
    mkdir("xa/d", 0755);
    symlink("f", "xa/l");
    mkfifo("xa/p", 0644);

    /* set, size query, get, short buffer */
    LIST("list new file", listxattr("xa/f", l_, sizeof l_));
    RES("set user.a", setxattr("xa/f", "user.a", "alpha", 5, 0));
    RES("get user.a size 0", getxattr("xa/f", "user.a", NULL, 0));
    GET("get user.a", getxattr("xa/f", "user.a", v_, sizeof v_));
    GET("get user.a buffer 2", getxattr("xa/f", "user.a", v_, 2));
    GET("get user.a buffer 5", getxattr("xa/f", "user.a", v_, 5));
    GET("get user.missing", getxattr("xa/f", "user.missing", v_, sizeof v_));

    /* create and replace */
    RES("create existing", setxattr("xa/f", "user.a", "x", 1, XATTR_CREATE));
    RES("replace missing", setxattr("xa/f", "user.b", "x", 1, XATTR_REPLACE));
    RES("create|replace existing", setxattr("xa/f", "user.a", "x", 1, XATTR_CREATE | XATTR_REPLACE));
    RES("create|replace missing", setxattr("xa/f", "user.b", "x", 1, XATTR_CREATE | XATTR_REPLACE));
    RES("bad flags", setxattr("xa/f", "user.a", "x", 1, 4));
    RES("replace user.a longer", setxattr("xa/f", "user.a", "a much longer value", 19, XATTR_REPLACE));
    GET("get user.a", getxattr("xa/f", "user.a", v_, sizeof v_));
    RES("replace user.a shorter", setxattr("xa/f", "user.a", "al", 2, XATTR_REPLACE));
    GET("get user.a", getxattr("xa/f", "user.a", v_, sizeof v_));
    RES("create user.b", setxattr("xa/f", "user.b", "bee", 3, XATTR_CREATE));
    RES("set empty value", setxattr("xa/f", "user.empty", "", 0, 0));
    GET("get empty value", getxattr("xa/f", "user.empty", v_, sizeof v_));
    RES("set binary value", setxattr("xa/f", "user.bin", "a\0b\377", 4, 0));
    GET("get binary value", getxattr("xa/f", "user.bin", v_, sizeof v_));
    RES("set trusted.t", setxattr("xa/f", "trusted.t", "tv", 2, 0));
    RES("set security.s", setxattr("xa/f", "security.s", "sv", 2, 0));
    GET("get trusted.t", getxattr("xa/f", "trusted.t", v_, sizeof v_));
    GET("get security.s", getxattr("xa/f", "security.s", v_, sizeof v_));

    /* listing */
    RES("list size 0", listxattr("xa/f", NULL, 0));
    LIST("list", listxattr("xa/f", l_, sizeof l_));
    LIST("list buffer 10", listxattr("xa/f", l_, 10));

    /* names the namespaces refuse */
    RES("set unknown namespace", setxattr("xa/f", "foo.bar", "x", 1, 0));
    GET("get unknown namespace", getxattr("xa/f", "foo.bar", v_, sizeof v_));
    RES("set bare prefix", setxattr("xa/f", "user.", "x", 1, 0));
    GET("get bare prefix", getxattr("xa/f", "user.", v_, sizeof v_));
    char longname[300];
    memcpy(longname, "user.", 5);
    memset(longname + 5, 'n', 251);
    longname[256] = 0;
    RES("set 256-byte name", setxattr("xa/f", longname, "x", 1, 0));
    longname[255] = 0;
    RES("set 255-byte name", setxattr("xa/f", longname, "x", 1, 0));
    GET("get 255-byte name", getxattr("xa/f", longname, v_, sizeof v_));
    RES("remove 255-byte name", removexattr("xa/f", longname));
    static char huge[65537];
    RES("set 65537-byte value", setxattr("xa/f", "user.huge", huge, sizeof huge, 0));

    /* remove */
    RES("remove user.b", removexattr("xa/f", "user.b"));
    RES("remove user.b again", removexattr("xa/f", "user.b"));
    GET("get removed", getxattr("xa/f", "user.b", v_, sizeof v_));
    LIST("list", listxattr("xa/f", l_, sizeof l_));

    /* through a symlink, and on the symlink itself */
    GET("get via symlink", getxattr("xa/l", "user.a", v_, sizeof v_));
    GET("lget user.a on symlink", lgetxattr("xa/l", "user.a", v_, sizeof v_));
    RES("lset user.x on symlink", lsetxattr("xa/l", "user.x", "x", 1, 0));
    RES("lset trusted.x on symlink", lsetxattr("xa/l", "trusted.x", "lnk", 3, 0));
    GET("lget trusted.x", lgetxattr("xa/l", "trusted.x", v_, sizeof v_));
    LIST("llist symlink", llistxattr("xa/l", l_, sizeof l_));
    LIST("list via symlink", listxattr("xa/l", l_, sizeof l_));
    char target[16] = {0};
    RES("readlink still works", readlink("xa/l", target, sizeof target - 1));
    printf("target: %s\n", target);
    RES("lremove trusted.x", lremovexattr("xa/l", "trusted.x"));
    RES("lremove user.x", lremovexattr("xa/l", "user.x"));
    RES("set via symlink", setxattr("xa/l", "user.vialink", "1", 1, 0));
    GET("get on target", getxattr("xa/f", "user.vialink", v_, sizeof v_));

    /* a fifo and a directory */
    RES("set user on fifo", setxattr("xa/p", "user.x", "x", 1, 0));
    GET("get user on fifo", getxattr("xa/p", "user.x", v_, sizeof v_));
    RES("set trusted on fifo", setxattr("xa/p", "trusted.x", "x", 1, 0));
    RES("set user on dir", setxattr("xa/d", "user.dir", "dv", 2, 0));
    GET("get user on dir", getxattr("xa/d", "user.dir", v_, sizeof v_));
    LIST("list dir", listxattr("xa/d", l_, sizeof l_));

    /* by a read-only file descriptor */
    int fd = open("xa/f", O_RDONLY);
    RES("fset user.fd", fsetxattr(fd, "user.fd", "fdv", 3, 0));
    GET("fget user.fd", fgetxattr(fd, "user.fd", v_, sizeof v_));
    RES("flist size 0", flistxattr(fd, NULL, 0));
    LIST("flist", flistxattr(fd, l_, sizeof l_));
    RES("fremove user.fd", fremovexattr(fd, "user.fd"));
    RES("fremove user.fd again", fremovexattr(fd, "user.fd"));
    close(fd);
    RES("fget closed fd", fgetxattr(fd, "user.a", NULL, 0));

    /* many attributes, then all of them removed */
    close(open("xa/many", O_WRONLY | O_CREAT | O_EXCL, 0644));
    char name[32], val[64];
    int ok = 0;
    for (int i = 0; i < 16; i++) {
        snprintf(name, sizeof name, "user.k%02d", i);
        memset(val, 'a' + i, sizeof val);
        ok += setxattr("xa/many", name, val, 1 + i * 3, XATTR_CREATE) == 0;
    }
    printf("set 16: %d ok\n", ok);
    RES("list many size 0", listxattr("xa/many", NULL, 0));
    ok = 0;
    for (int i = 0; i < 16; i++) {
        char got[64];
        snprintf(name, sizeof name, "user.k%02d", i);
        memset(val, 'a' + i, sizeof val);
        long r = getxattr("xa/many", name, got, sizeof got);
        ok += r == 1 + i * 3 && memcmp(got, val, r) == 0;
    }
    printf("get 16: %d ok\n", ok);
    RES("replace k07", setxattr("xa/many", "user.k07", "seven", 5, XATTR_REPLACE));
    GET("get k07", getxattr("xa/many", "user.k07", v_, sizeof v_));
    GET("get k08", getxattr("xa/many", "user.k08", v_, sizeof v_));
    ok = 0;
    for (int i = 0; i < 16; i++) {
        snprintf(name, sizeof name, "user.k%02d", i);
        ok += removexattr("xa/many", name) == 0;
    }
    printf("remove 16: %d ok\n", ok);
    RES("list emptied", listxattr("xa/many", NULL, 0));
    struct stat st;
    stat("xa/many", &st);
    printf("emptied file blocks: %lld\n", (long long)st.st_blocks);

    /* the attributes go with the last link */
    RES("remove user.a", removexattr("xa/f", "user.a"));
    LIST("list before unlink", listxattr("xa/f", l_, sizeof l_));
    cleanup();
    printf("done\n");
    return 0;
}
