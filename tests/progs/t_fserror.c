/* FAN_FS_ERROR (guest only: the host would need a corrupt filesystem of its
   own mounted): ext4's errors reach a filesystem mark of a FID group, the
   first error's code and object kept and later ones counted while the
   event waits; remount,abort reports ESHUTDOWN about no inode.
     t_fserror MNT BADINO   MNT: ext4 whose d/bad has a bogus mode (inode
                            BADINO) and d/link names inode 1 (debugfs).
   Deterministic output; last line done. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <unistd.h>

#ifndef FAN_FS_ERROR
#define FAN_FS_ERROR 0x00008000
#endif
#ifndef FAN_EVENT_INFO_TYPE_ERROR
#define FAN_EVENT_INFO_TYPE_ERROR 5
struct fanotify_event_info_error {
    struct fanotify_event_info_header hdr;
    __s32 error;
    __u32 error_count;
};
#endif

static const char *en(long r) { return r < 0 ? strerrorname_np(errno) : "0"; }

static char mnt[256];

static const char *try_open(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", mnt, rel);
    int fd = open(p, O_RDONLY);
    if (fd >= 0)
        close(fd);
    return en(fd);
}

/* one read: each event's mask, fd, error record and fid record; the fid's
   handle compared with want (NULL: expect none) */
static void events(int fan, const struct file_handle *want, unsigned badino)
{
    char buf[4096];
    struct pollfd p = {fan, POLLIN, 0};
    if (poll(&p, 1, 2000) <= 0) {
        printf("  no event\n");
        return;
    }
    ssize_t n = read(fan, buf, sizeof buf);
    for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
        printf("  event mask %#llx fd %d", (unsigned long long)m->mask, m->fd);
        for (char *i = (char *)(m + 1); i < (char *)m + m->event_len;
             i += ((struct fanotify_event_info_header *)i)->len) {
            struct fanotify_event_info_header *h = (void *)i;
            if (h->info_type == FAN_EVENT_INFO_TYPE_ERROR) {
                struct fanotify_event_info_error *e = (void *)i;
                printf(", error %s count %u (len %u)", strerrorname_np(e->error), e->error_count, h->len);
            } else if (h->info_type == FAN_EVENT_INFO_TYPE_FID) {
                struct fanotify_event_info_fid *f = (void *)i;
                struct file_handle *fh = (void *)f->handle;
                printf(", fid type %d bytes %u len %u", fh->handle_type, fh->handle_bytes, h->len);
                if (fh->handle_bytes == want->handle_bytes &&
                    !memcmp(fh->f_handle, want->f_handle, want->handle_bytes))
                    printf(" (the directory's)");
                else if (fh->handle_bytes >= 4 && *(unsigned *)fh->f_handle == badino)
                    printf(" (the bad inode's)");
                else if (fh->handle_bytes)
                    printf(" (another's)");
            } else {
                printf(", info %d", h->info_type);
            }
        }
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3)
        return 2;
    snprintf(mnt, sizeof mnt, "%s", argv[1]);
    unsigned badino = atoi(argv[2]);
    int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID, O_RDONLY);
    printf("inode mark: %s\n", en(fanotify_mark(fan, FAN_MARK_ADD, FAN_FS_ERROR, AT_FDCWD, mnt)));
    printf("mount mark: %s\n", en(fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_FS_ERROR, AT_FDCWD, mnt)));
    int plain = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
    printf("filesystem mark, no FID: %s\n",
           en(fanotify_mark(plain, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_FS_ERROR, AT_FDCWD, mnt)));
    printf("filesystem mark: %s\n",
           en(fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_FS_ERROR, AT_FDCWD, mnt)));
    struct {
        struct file_handle h;
        unsigned char b[64];
    } d;
    d.h.handle_bytes = 64;
    int mid;
    char dp[512];
    snprintf(dp, sizeof dp, "%s/d", mnt);
    name_to_handle_at(AT_FDCWD, dp, &d.h, &mid, 0);

    printf("open d/bad: %s\n", try_open("d/bad"));
    events(fan, &d.h, badino);
    printf("open d/link: %s\n", try_open("d/link"));
    printf("open d/bad: %s\n", try_open("d/bad"));
    events(fan, &d.h, badino);
    printf("remount abort: %s\n", en(mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, "abort")));
    events(fan, &d.h, badino);
    printf("remount rw: %s\n", en(mount(NULL, mnt, NULL, MS_REMOUNT, NULL)));
    char f[512];
    snprintf(f, sizeof f, "%s/new", mnt);
    printf("create: %s\n", en(open(f, O_CREAT | O_WRONLY, 0600)));
    printf("done\n");
    return 0;
}
