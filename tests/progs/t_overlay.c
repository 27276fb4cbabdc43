/* overlayfs: mount options and their errors, the union lookup (whiteouts,
 * opaque directories, files hiding directories), readdir of a merged
 * directory (each name once, d_type, d_ino as stat's, positions kept while
 * open), st_dev/st_ino across copy-up, copy-up of data, attributes and
 * xattrs (with the parents), whiteouts and opaque directories made by
 * unlink, rmdir, mkdir and rename, rename's EXDEV for merged directories,
 * data paths (mmap, O_APPEND, O_TRUNC, O_TMPFILE, sendfile, fallocate,
 * locks, inotify), execve of lower and upper programs, and the read-only
 * form.  Needs root: natively it runs in a mount namespace of its own,
 * with the layers on a tmpfs it mounts below DIR.  No inode numbers or
 * times are printed, only comparisons. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <grp.h>
#include <sched.h>
#include <unistd.h>
#include "results.h"

#define OVL_MAGIC 0x794c7630
#define LAYERS "lowerdir=l1:l2,upperdir=u,workdir=w"

static char top[600];
static int nfail;

static void check(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "yes" : "NO");
    if (!ok)
        nfail++;
}

static void put(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, data, strlen(data)) < 0)
        printf("put %s: %s\n", path, en(errno));
    close(fd);
}

/* "path: [contents]" or "path: -1 ERRNO" */
static void show(const char *path)
{
    show_small(path, path);
}

static const char *kind(mode_t m)
{
    return S_ISREG(m) ? "file" : S_ISDIR(m) ? "dir" : S_ISLNK(m) ? "symlink" : S_ISCHR(m) ? "chr" :
        S_ISFIFO(m) ? "fifo" : S_ISBLK(m) ? "blk" : "sock";
}

/* what a path is in a layer or the overlay: "name: dir 0755", "name: chr 0/0", "name: -1 ENOENT" */
static void what(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        printf("%s: -1 %s\n", path, en(errno));
        return;
    }
    if (S_ISCHR(st.st_mode))
        printf("%s: chr %u/%u %04o\n", path, major(st.st_rdev), minor(st.st_rdev), st.st_mode & 07777);
    else
        printf("%s: %s %04o\n", path, kind(st.st_mode), st.st_mode & 07777);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the sorted names of a directory with their d_type, each with whether
 * d_ino is what lstat says for it ("=" or "!") */
static void list(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        printf("ls %s: -1 %s\n", dir, en(errno));
        return;
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        struct stat st;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        int same = lstat(p, &st) == 0 && (st.st_ino == e->d_ino || !strcmp(e->d_name, ".."));
        char *s = malloc(300);
        snprintf(s, 300, "%s%s(%c)", e->d_name, same ? "" : "!ino",
                 e->d_type == DT_DIR ? 'd' : e->d_type == DT_REG ? 'f' : e->d_type == DT_LNK ? 'l' :
                 e->d_type == DT_CHR ? 'c' : e->d_type == DT_FIFO ? 'p' : '?');
        names[n++] = s;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    printf("ls %s:", dir);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

static void xattr(const char *path, const char *name)
{
    char v[256];
    ssize_t n = lgetxattr(path, name, v, sizeof v - 1);
    if (n < 0)
        printf("%s %s: -1 %s\n", path, name, en(errno));
    else
        printf("%s %s: [%.*s]\n", path, name, (int)n, v);
}

/* the names listxattr gives, sorted, those of a prefix only */
static void xattrs(const char *path, const char *prefix)
{
    char buf[4096], *names[64];
    ssize_t n = llistxattr(path, buf, sizeof buf);
    int k = 0;
    if (n < 0) {
        printf("listxattr %s: -1 %s\n", path, en(errno));
        return;
    }
    for (char *p = buf; p < buf + n && k < 64; p += strlen(p) + 1)
        if (!strncmp(p, prefix, strlen(prefix)))
            names[k++] = p;
    qsort(names, k, sizeof names[0], cmp_names);
    printf("listxattr %s %s*:", path, prefix);
    for (int i = 0; i < k; i++)
        printf(" %s", names[i]);
    printf("\n");
}

static int ovl(const char *opts)
{
    return mount("overlay", "m", "overlay", 0, opts);
}

/* the mount's /proc/self/mounts line up to its last layer option (what
 * Linux 6.6+ shows after it differs: uuid=, redirect_dir=), the test's
 * directory shown as $T */
static void mounts_line(void)
{
    char buf[65536];
    read_small("/proc/self/mounts", buf, sizeof buf);
    char mp[700];
    snprintf(mp, sizeof mp, " %s/m ", top);
    for (char *l = strtok(buf, "\n"); l != NULL; l = strtok(NULL, "\n")) {
        char *at = strstr(l, mp);
        if (at == NULL || strncmp(l, "overlay ", 8))
            continue;
        char *w = strstr(l, "workdir=");
        if (w == NULL)
            w = strstr(l, "lowerdir=");
        int end = w ? (int)(strcspn(w, ", ") + (w - l)) : (int)strlen(l);
        printf("mounts: overlay $T/m%.*s\n", end - (int)(at + strlen(mp) - 1 - l),
               at + strlen(mp) - 1);
    }
}

static void mount_errors(void)
{
    static const char *bad[] = {
        "upperdir=u,workdir=w",                 /* no lowerdir */
        "lowerdir=l1,upperdir=u",               /* no workdir */
        "lowerdir=l1,upperdir=u,workdir=u/in",  /* workdir inside upperdir */
        "lowerdir=l1,upperdir=u,workdir=u",     /* the same */
        "lowerdir=nonexist,upperdir=u,workdir=w",
        "lowerdir=f1,upperdir=u,workdir=w",     /* a file */
        "lowerdir=l1",                          /* one lower layer alone */
        "lowerdir=l1:l1,upperdir=u,workdir=w",  /* twice */
        "lowerdir=u,upperdir=u,workdir=w",
        "lowerdir=u/in,upperdir=u,workdir=w",   /* inside the upper one */
        "lowerdir=w,upperdir=u,workdir=w",
        "lowerdir=l1,upperdir=u,workdir=w,redirect_dir=bogus",
        "lowerdir=l1,upperdir=u,workdir=w,foo=1",
        "lowerdir=l1,upperdir=u,workdir=other/w",   /* another mount */
        "lowerdir=l1,upperdir=ro/u,workdir=ro/w",   /* a read-only one */
        NULL,
    };
    for (int i = 0; bad[i]; i++) {
        char label[200];
        snprintf(label, sizeof label, "mount %s", bad[i]);
        int r = ovl(bad[i]);
        res(label, r);
        if (r == 0)
            umount("m");
    }
}

static void setup_layers(void)
{
    mkdir("l1", 0755);
    mkdir("l2", 0755);
    mkdir("u", 0755);
    mkdir("w", 0755);
    mkdir("m", 0755);
    mkdir("u/in", 0755);
    put("f1", "x");
    mkdir("other", 0755);
    mount("t", "other", "tmpfs", 0, NULL);
    mkdir("other/w", 0755);
    mkdir("ro", 0755);
    mount("t", "ro", "tmpfs", 0, NULL);
    mkdir("ro/u", 0755);
    mkdir("ro/w", 0755);
    mount(NULL, "ro", NULL, MS_REMOUNT | MS_RDONLY, NULL);
    /* the bottom layer */
    put("l2/a", "a2");
    put("l2/b", "b2");
    mkdir("l2/d", 0750);
    put("l2/d/x", "x2");
    put("l2/d/y", "y2");
    mkdir("l2/e", 0755);
    put("l2/e/z", "z2");
    mkdir("l2/o", 0755);
    put("l2/o/hidden", "h");
    put("l2/hl1", "hard");
    link("l2/hl1", "l2/hl2");
    symlink("a", "l2/sl");
    mkfifo("l2/fifo", 0644);
    mknod("l2/null", S_IFCHR | 0666, makedev(1, 3));
    put("l2/cu", "copy me");
    chmod("l2/cu", 0640);
    lchown("l2/cu", 1234, 5678);
    setxattr("l2/cu", "user.k", "v", 1, 0);
    setxattr("l2/cu", "trusted.t", "w", 1, 0);
    struct timeval tv[2] = {{1000000000, 0}, {1100000000, 0}};
    utimes("l2/cu", tv);
    utimes("l2/d", tv);
    int fd = open("l2/sparse", O_WRONLY | O_CREAT, 0644);
    pwrite(fd, "end", 3, 1 << 20);
    close(fd);
    mkdir("l2/deep", 0755);
    mkdir("l2/deep/er", 0711);
    put("l2/deep/er/f", "deep");
    mkdir("l2/empty", 0755);
    put("l2/tr", "truncate me");
    put("l2/ap", "append:");
    put("l2/mm", "mmap data here");
    put("l2/rn", "rename me");
    put("l2/ex", "exchange");
    mkdir("l2/mvdir", 0755);
    /* the top lower layer */
    put("l1/a", "a1");
    mknod("l1/b", S_IFCHR, makedev(0, 0));         /* a whiteout hides l2/b */
    mkdir("l1/d", 0755);
    put("l1/d/w", "w1");
    put("l1/d/x", "x1");
    put("l1/e", "a file over a dir");
    mkdir("l1/o", 0755);
    setxattr("l1/o", "trusted.overlay.opaque", "y", 1, 0);
    put("l1/o/n", "n1");
    mkdir("x:y", 0755);
    put("x:y/colon", "c");
}

static void lookup_and_readdir(void)
{
    show("m/a");
    show("m/b");
    show("m/d/w");
    show("m/d/x");
    show("m/d/y");
    show("m/e");
    show("m/o/n");
    show("m/o/hidden");
    what("m/sl");
    what("m/fifo");
    what("m/null");
    list("m");
    list("m/d");
    list("m/o");
    list("m/deep/er");
}

static void numbers(void)
{
    struct stat m, mm, l, u, o, d, ld, a, b;
    stat("m", &m);
    stat("m/d", &d);
    lstat("m/cu", &o);
    lstat("l2/cu", &l);
    stat("l1/d", &ld);
    struct statfs sm, su;
    statfs("m", &sm);
    statfs("u", &su);
    check("statfs type is overlayfs", sm.f_type == OVL_MAGIC);
    check("statfs blocks are the upper layer's", sm.f_blocks == su.f_blocks);
    check("merged dir st_dev is the overlay's", d.st_dev == m.st_dev);
    check("file st_dev is the overlay's (one fs)", o.st_dev == m.st_dev && o.st_dev != l.st_dev);
    check("lower file st_ino is the layer's", o.st_ino == l.st_ino);
    check("merged lower dir st_ino is the top layer's", d.st_ino == ld.st_ino);
    check("merged dir nlink is 1", d.st_nlink == 1);
    int fd = open("m/cu", O_RDWR);
    struct stat f0;
    fstat(fd, &f0);
    lstat("m/cu", &mm);
    lstat("u/cu", &u);
    check("st_ino kept across copy-up", mm.st_ino == l.st_ino && mm.st_ino != u.st_ino);
    check("fstat of the open file shows the overlay", f0.st_ino == l.st_ino && f0.st_dev == m.st_dev);
    close(fd);
    stat("m/hl1", &a);
    stat("m/hl2", &b);
    check("lower hard links share st_ino", a.st_ino == b.st_ino && a.st_nlink == 2);
    put("m/hl1", "broken");
    stat("m/hl1", &a);
    stat("m/hl2", &b);
    check("copy-up breaks a lower hard link", a.st_ino != b.st_ino && a.st_nlink == 1);
    show("m/hl1");
    show("m/hl2");
}

static void copy_up(void)
{
    struct stat l, u;
    lstat("l2/cu", &l);
    lstat("u/cu", &u);
    check("copy-up keeps mode, owner, mtime", (u.st_mode & 07777) == 0640 && u.st_uid == 1234 &&
          u.st_gid == 5678 && u.st_mtime == l.st_mtime);
    show("u/cu");
    xattr("u/cu", "user.k");
    xattr("u/cu", "trusted.t");
    check("upper has an origin", lgetxattr("u/cu", "trusted.overlay.origin", NULL, 0) >= 0);
    xattr("u", "trusted.overlay.impure");
    xattrs("m/cu", "trusted.");
    xattrs("m/cu", "user.");
    /* parents copied up with their attributes */
    put("m/deep/er/new", "n");
    what("u/deep");
    what("u/deep/er");
    what("u/deep/er/f");
    show("m/deep/er/f");
    struct stat ld, ud;
    res("chmod m/d", chmod("m/d", 0700));
    stat("l2/d", &ld);
    stat("u/d", &ud);
    check("dir copy-up keeps owner, takes new mode", ud.st_uid == ld.st_uid && (ud.st_mode & 07777) == 0700);
    /* truncate, chown, utimes, setxattr, removexattr */
    res("truncate m/tr 8", truncate("m/tr", 8));
    show("m/tr");
    show("l2/tr");
    res("removexattr lower user.none", lremovexattr("m/a", "user.none"));
    what("u/a");
    res("setxattr m/a user.n", lsetxattr("m/a", "user.n", "1", 1, 0));
    show("u/a");
    xattr("m/a", "user.n");
    res("removexattr m/a user.n", lremovexattr("m/a", "user.n"));
    xattrs("m/a", "user.");
    res("lchown symlink", lchown("m/sl", 42, 42));
    char t[64];
    ssize_t n = readlink("u/sl", t, sizeof t);
    printf("upper symlink: [%.*s]\n", (int)(n > 0 ? n : 0), t);
    struct timeval tv[2] = {{1200000000, 0}, {1300000000, 0}};
    res("utimes m/o", utimes("m/o", tv));
    stat("u/o", &ud);
    check("utimes copied up the dir", ud.st_mtime == 1300000000);
    /* sparse data copied */
    int fd = open("m/sparse", O_RDWR);
    char buf[4];
    pread(fd, buf, 3, 1 << 20);
    struct stat s;
    fstat(fd, &s);
    char z[8] = {1};
    pread(fd, z, 8, 4096);
    check("sparse file copied up: size and data", s.st_size == (1 << 20) + 3 && !memcmp(buf, "end", 3) &&
          !memcmp(z, "\0\0\0\0\0\0\0\0", 8));
    close(fd);
    /* link copies up */
    res("link m/rn m/rn2", link("m/rn", "m/rn2"));
    stat("m/rn2", &s);
    printf("link: nlink %ld\n", (long)s.st_nlink);
    what("u/rn");
}

static void names(void)
{
    /* create over a whiteout */
    what("u/b");
    put("m/b", "new b");
    show("m/b");
    what("u/b");
    /* unlink of a lower name leaves a whiteout, of an upper one nothing */
    res("unlink m/a", unlink("m/a"));
    what("u/a");
    what("m/a");
    put("m/pure", "p");
    res("unlink m/pure", unlink("m/pure"));
    what("u/pure");
    res("mknod whiteout", mknod("m/wh", S_IFCHR, makedev(0, 0)));
    /* rmdir */
    res("rmdir m/d (full)", rmdir("m/d"));
    unlink("m/d/w");
    unlink("m/d/x");
    unlink("m/d/y");
    list("m/d");
    list("u/d");
    res("rmdir m/d (emptied)", rmdir("m/d"));
    what("u/d");
    what("m/d");
    res("mkdir m/d", mkdir("m/d", 0755));
    list("m/d");
    xattr("u/d", "trusted.overlay.opaque");
    res("rmdir m/empty", rmdir("m/empty"));
    what("u/empty");
    mkdir("m/pd", 0755);
    put("m/pd/f", "f");
    res("rmdir m/pd (full)", rmdir("m/pd"));
    unlink("m/pd/f");
    res("rmdir m/pd", rmdir("m/pd"));
    what("u/pd");
    /* a file over a directory, and the reverse */
    res("unlink m/e", unlink("m/e"));
    res("mkdir m/e", mkdir("m/e", 0755));
    list("m/e");
}

static long rename2(const char *a, const char *b, unsigned flags)
{
    return syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static void renames(void)
{
    res("rename m/rn m/rnew", rename("m/rn", "m/rnew"));
    what("u/rn");
    show("m/rnew");
    show("m/rn");
    res("rename m/mvdir (lower dir)", rename("m/mvdir", "m/mv2"));
    res("rename m/o (merged dir)", rename("m/o", "m/o2"));
    mkdir("m/updir", 0755);
    put("m/updir/f", "in");
    res("rename m/updir (upper dir)", rename("m/updir", "m/up2"));
    show("m/up2/f");
    res("rename m/up2 over m/mvdir (lower dir)", rename("m/up2", "m/mvdir"));
    xattr("u/mvdir", "trusted.overlay.opaque");
    show("m/mvdir/f");
    res("NOREPLACE onto m/ex", rename2("m/rnew", "m/ex", RENAME_NOREPLACE));
    res("EXCHANGE m/rnew m/ex", rename2("m/rnew", "m/ex", RENAME_EXCHANGE));
    show("m/rnew");
    show("m/ex");
    res("WHITEOUT m/ex", rename2("m/ex", "m/ex3", RENAME_WHITEOUT));
    res("rename over a whiteout", rename("m/rnew", "m/a"));
    show("m/a");
    what("u/rnew");
}

static void data_paths(void)
{
    /* O_APPEND, O_TRUNC */
    int fd = open("m/ap", O_WRONLY | O_APPEND);
    write(fd, "more", 4);
    close(fd);
    show("m/ap");
    show("l2/ap");
    fd = open("m/tr", O_WRONLY | O_TRUNC);
    close(fd);
    show("m/tr");
    /* mmap, shared then private */
    fd = open("m/mm", O_RDWR);
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memcpy(p, "MMAP", 4);
    msync(p, 4096, MS_SYNC);
    munmap(p, 4096);
    res("fsync", fsync(fd));
    close(fd);
    show("m/mm");
    show("u/mm");
    show("l2/mm");
    fd = open("m/d/y2", O_RDWR | O_CREAT, 0644);
    write(fd, "private", 7);
    p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    memcpy(p, "PRIV", 4);
    char buf[16] = {0};
    pread(fd, buf, 7, 0);
    printf("private mapping: [%.4s] file: [%s]\n", p, buf);
    munmap(p, 4096);
    res("fallocate", fallocate(fd, 0, 0, 8192));
    struct stat s;
    fstat(fd, &s);
    printf("after fallocate: size %ld\n", (long)s.st_size);
    /* locks on the overlay file */
    res("flock", flock(fd, LOCK_EX | LOCK_NB));
    int fd2 = open("m/d/y2", O_RDONLY);
    res("flock again", flock(fd2, LOCK_SH | LOCK_NB));
    close(fd2);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    res("F_SETLK", fcntl(fd, F_SETLK, &fl));
    close(fd);
    /* sendfile from a lower file into an upper one */
    int in = open("m/hl2", O_RDONLY), out = open("m/sent", O_WRONLY | O_CREAT, 0644);
    res("sendfile", sendfile(out, in, NULL, 100));
    close(in);
    close(out);
    show("m/sent");
    int pp[2];
    pipe(pp);
    in = open("m/hl2", O_RDONLY);
    res("splice", splice(in, NULL, pp[1], NULL, 100, 0));
    char sp[16] = {0};
    read(pp[0], sp, sizeof sp - 1);
    printf("spliced: [%s]\n", sp);
    close(pp[0]);
    close(pp[1]);
    /* a file open for reading follows the copy-up another open makes */
    int rd = open("m/deep/er/f", O_RDONLY);
    put("m/deep/er/f", "rewritten");
    char rb[16] = {0};
    pread(rd, rb, sizeof rb - 1, 0);
    printf("read after copy-up: [%s]\n", rb);
    struct stat rs;
    fstat(rd, &rs);
    printf("fstat after copy-up: size %ld\n", (long)rs.st_size);
    close(rd);
    close(in);
    /* O_TMPFILE, then linked in */
    fd = open("m/d", O_TMPFILE | O_RDWR, 0600);
    fdres("O_TMPFILE", fd);
    if (fd >= 0) {
        write(fd, "tmp", 3);
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        res("linkat tmpfile", linkat(AT_FDCWD, proc, AT_FDCWD, "m/d/linked", AT_SYMLINK_FOLLOW));
        close(fd);
        show("m/d/linked");
        show("u/d/linked");
    }
    /* inotify on an overlay file */
    int in_fd = inotify_init1(IN_NONBLOCK);
    inotify_add_watch(in_fd, "m/hl2", IN_ALL_EVENTS);
    inotify_add_watch(in_fd, "m/deep", IN_ALL_EVENTS);
    chmod("m/hl2", 0600);
    put("m/hl2", "w");
    put("m/deep/created", "c");
    unlink("l2/deep/er/f");      /* a change to a layer: not the overlay's event */
    char ev[4096];
    ssize_t n = read(in_fd, ev, sizeof ev);
    printf("inotify:");
    for (char *q = ev; n > 0 && q < ev + n;) {
        struct inotify_event *e = (struct inotify_event *)q;
        printf(" %x%s%s", e->mask, e->len ? ":" : "", e->len ? e->name : "");
        q += sizeof *e + e->len;
    }
    printf("\n");
    close(in_fd);
}

static void exec_one(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(path, path, "--child", NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("exec %s: %d\n", path, WEXITSTATUS(st));
}

static void programs(void)
{
    char self[4096];
    int in = open("/proc/self/exe", O_RDONLY), out = open("l2/prog", O_WRONLY | O_CREAT, 0755);
    ssize_t n;
    while ((n = read(in, self, sizeof self)) > 0)
        write(out, self, n);
    close(in);
    close(out);
}

static void exec_paths(void)
{
    exec_one("m/prog");
    int fd = open("m/prog", O_WRONLY | O_APPEND);     /* copied up */
    close(fd);
    exec_one("m/prog");
    what("u/prog");
}

static void read_only_form(void)
{
    res("mount lowerdir=l1:l2", ovl("lowerdir=l1:l2"));
    mounts_line();
    res("write in the read-only form", open("m/newfile", O_WRONLY | O_CREAT, 0644));
    res("chmod in the read-only form", chmod("m/a", 0600));
    show("m/a");
    res("umount", umount("m"));
}

static void write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, data, strlen(data)) < 0)
        printf("write %s: %s\n", path, en(errno));
    close(fd);
}

/* an unprivileged user's overlay, in a user and mount namespace of its
 * own: trusted.* is not its to set (no opaque directories without
 * userxattr), the layers' modes bind it, device nodes do not open */
static void userns_mount(void)
{
    mkdir("un", 0755);
    mkdir("un/l", 0755);
    put("un/l/f", "lower");
    mkdir("un/l/d", 0755);
    put("un/l/d/x", "x");
    mknod("un/l/null", S_IFCHR | 0666, makedev(1, 3));
    put("un/l/roots", "root's");
    chmod("un/l/roots", 0666);
    mkdir("un/u", 0755);
    mkdir("un/w", 0755);
    mkdir("un/m", 0755);
    mkdir("un/ru", 0755);
    static const char *mine[] = {"un/l", "un/l/f", "un/l/d", "un/l/d/x", "un/u", "un/w", "un/m", NULL};
    for (int i = 0; mine[i]; i++)
        chown(mine[i], 65534, 65534);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) || setgid(65534) || setuid(65534) || prctl(PR_SET_DUMPABLE, 1) ||
            unshare(CLONE_NEWUSER | CLONE_NEWNS)) {
            printf("userns: %s\n", en(errno));
            _exit(1);
        }
        write_file("/proc/self/setgroups", "deny");
        write_file("/proc/self/uid_map", "0 65534 1");
        write_file("/proc/self/gid_map", "0 65534 1");
        chdir("un");
        res("userns mount", ovl("lowerdir=l,upperdir=u,workdir=w"));
        res("userns unlink m/d/x", unlink("m/d/x"));
        res("userns rmdir m/d (no xattrs)", rmdir("m/d"));
        res("userns open a device", open("m/null", O_RDONLY));
        res("userns write root's file (copy-up)", open("m/roots", O_WRONLY));
        res("userns umount", umount("m"));
        res("userns mount userxattr", ovl("lowerdir=l,upperdir=u,workdir=w,userxattr"));
        res("userns rmdir m/d", rmdir("m/d"));
        res("userns mkdir m/d", mkdir("m/d", 0755));
        xattr("u/d", "user.overlay.opaque");
        res("userns umount", umount("m"));
        res("userns mount, root's upper", ovl("lowerdir=l,upperdir=ru,workdir=w,userxattr"));
        res("userns write (copy-up into root's)", open("m/f", O_WRONLY));
        res("userns umount", umount("m"));
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    struct stat s;
    lstat("un/u/d", &s);
    printf("userns upper dir owner: %d\n", (int)s.st_uid);
}

static void dir_positions(void)
{
    /* positions stay while a merged directory is open */
    DIR *d = opendir("m/deep");
    struct dirent *e;
    int before = 0, after = 0;
    while ((e = readdir(d)) != NULL && before < 2)
        before++;
    long pos = telldir(d);
    put("m/deep/added", "a");
    while ((e = readdir(d)) != NULL)
        after++;
    seekdir(d, pos);
    int again = 0;
    while ((e = readdir(d)) != NULL)
        again++;
    closedir(d);
    printf("readdir: %d then %d, again from telldir %d\n", before, after, again);
}

/* what Linux 6.1 answers and later kernels do not (6.7 escapes the
 * overlay's own xattrs instead of refusing them; 6.6 shows uuid=): only
 * with --linux61, for the guest alone */
static void linux61(void)
{
    res("mount", ovl(LAYERS));
    put("m/new", "n");
    res("getxattr trusted.overlay.origin", lgetxattr("m/cu", "trusted.overlay.origin", NULL, 0));
    res("setxattr trusted.overlay.x", lsetxattr("m/new", "trusted.overlay.x", "1", 1, 0));
    res("removexattr trusted.overlay.x", lremovexattr("m/new", "trusted.overlay.x"));
    res("setxattr trusted.x", lsetxattr("m/new", "trusted.x", "1", 1, 0));
    xattrs("m/new", "trusted.");
    xattrs("u/new", "trusted.");
    struct stat s;
    res("stat m/cu", lstat("m/cu", &s));
    res("mount index=on", mount("overlay", "l1", "overlay", 0, "lowerdir=l2,upperdir=u,workdir=w,index=on"));
    res("mount xino=auto", mount("overlay", "l1", "overlay", 0, "lowerdir=l2,upperdir=u,workdir=w,xino=auto"));
    res("mount metacopy=on", mount("overlay", "l1", "overlay", 0, "lowerdir=l2,upperdir=u,workdir=w,metacopy=on"));
    res("mount volatile", mount("overlay", "l1", "overlay", 0, "lowerdir=l2,upperdir=u,workdir=w,volatile"));
    res("mount redirect_dir=on", mount("overlay", "l1", "overlay", 0,
                                       "lowerdir=l2,upperdir=u,workdir=w,redirect_dir=on"));
    res("umount", umount("m"));
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--child")) {
        printf("child ran\n");
        fflush(stdout);
        return 3;
    }
    need_proc();
    setvbuf(stdout, NULL, _IONBF, 0);
    snprintf(top, sizeof top, "%s/ovl", argc > 1 ? argv[1] : "/tmp");
    mkdir(top, 0755);
    if (mount("t", top, "tmpfs", 0, NULL) < 0 || chdir(top) < 0) {
        printf("tmpfs: %s\n", en(errno));
        return 1;
    }
    setup_layers();
    if (argc > 2 && !strcmp(argv[2], "--linux61")) {
        linux61();
        return 0;
    }
    programs();
    mount_errors();
    read_only_form();
    res("mount", ovl(LAYERS));
    mounts_line();
    list("w");
    lookup_and_readdir();
    numbers();
    copy_up();
    names();
    renames();
    data_paths();
    dir_positions();
    exec_paths();
    res("umount", umount("m"));
    res("mount userxattr", ovl("lowerdir=x\\:y:l2,upperdir=u,workdir=w,userxattr"));
    mounts_line();
    show("m/colon");
    res("unlink m/colon", unlink("m/colon"));
    res("mkdir over whiteout (userxattr)", mkdir("m/colon", 0755));
    xattr("u/colon", "user.overlay.opaque");
    xattr("u/colon", "trusted.overlay.opaque");
    res("umount", umount("m"));
    userns_mount();
    chdir("/");
    umount2(top, MNT_DETACH);
    printf("%d failed\ndone\n", nfail);
    return 0;
}
