/* inotify events for a create/write/close/chmod/rename/delete sequence. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static void dump(int fd)
{
    char buf[4096] __attribute__((aligned(8)));
    ssize_t n = read(fd, buf, sizeof buf);
    unsigned last_cookie = 0;
    for (char *p = buf; p < buf + n;) {
        struct inotify_event *e = (struct inotify_event *)p;
        printf("  wd=%d", e->wd);
        static const struct { unsigned m; const char *s; } names[] = {
            {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
            {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
            {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"}, {IN_CREATE, "CREATE"},
            {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
            {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"}};
        for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
            if (e->mask & names[i].m)
                printf(" %s", names[i].s);
        if (e->len)
            printf(" name=%s", e->name);
        if (e->cookie) {
            printf(" cookie=%s", last_cookie == e->cookie ? "same" : "new");
            last_cookie = e->cookie;
        }
        printf("\n");
        p += sizeof *e + e->len;
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char dir[512], a[600], b[600], sub[600];
    snprintf(dir, sizeof dir, "%s/inotify_dir", argc > 1 ? argv[1] : ".");
    mkdir(dir, 0755);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    int in = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(in, dir, IN_ALL_EVENTS);
    printf("watch: %d\n", wd);
    char x;
    printf("empty read: %zd %s\n", read(in, &x, 1), strerrorname_np(errno));
    int fd = open(a, O_CREAT | O_WRONLY, 0644);
    write(fd, "hi", 2);
    close(fd);
    printf("create/write/close:\n");
    dump(in);
    chmod(a, 0600);
    rename(a, b);
    printf("chmod/rename:\n");
    dump(in);
    int fw = inotify_add_watch(in, b, IN_ALL_EVENTS);
    printf("file watch: %d\n", fw);
    unlink(b);
    mkdir(sub, 0755);
    rmdir(sub);
    printf("unlink/mkdir/rmdir:\n");
    dump(in);
    printf("rm_watch: %d\n", inotify_rm_watch(in, wd));
    dump(in);
    rmdir(dir);
    printf("done\n");
    return 0;
}
