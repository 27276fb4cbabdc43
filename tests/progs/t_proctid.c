/* /proc/TID: a thread's own number is found by a lookup in /proc (a
   directory as its process's, whose stat and status name the thread) but
   never listed, and goes when the thread does (psutil.Process(tid)).
   Deterministic output. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static pid_t tid;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int state;

static void *thread(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "worker");
    pthread_mutex_lock(&m);
    tid = syscall(SYS_gettid);
    state = 1;
    pthread_cond_broadcast(&c);
    while (state != 2)
        pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    return NULL;
}

static long field(const char *path, const char *name)
{
    char line[256];
    FILE *f = fopen(path, "r");
    long v = -1;
    if (!f)
        return -2;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, name, strlen(name)))
            v = atol(line + strlen(name));
    fclose(f);
    return v;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t th;
    pthread_create(&th, NULL, thread, NULL);
    pthread_mutex_lock(&m);
    while (state != 1)
        pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%d/stat", tid);
    FILE *f = fopen(p, "r");
    int pid_field = 0;
    char comm[32] = "";
    if (f) {
        if (fscanf(f, "%d (%31[^)])", &pid_field, comm) != 2)
            pid_field = -1;
        fclose(f);
    }
    printf("stat: %s, its pid field is the tid: %d, comm %s\n", f ? "found" : strerror(errno),
           pid_field == tid, comm);
    snprintf(p, sizeof p, "/proc/%d/status", tid);
    printf("status: Pid is the tid: %d, Tgid is the process: %d, Threads %ld\n",
           field(p, "Pid:") == tid, field(p, "Tgid:") == getpid(), field(p, "Threads:"));
    snprintf(p, sizeof p, "/proc/%d/task", tid);
    DIR *d = opendir(p);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    printf("its task/: %d entries\n", n);
    snprintf(p, sizeof p, "/proc/%d/comm", tid);
    f = fopen(p, "r");
    printf("comm: %s", f && fgets(buf, sizeof buf, f) ? buf : "none\n");
    if (f)
        fclose(f);
    snprintf(p, sizeof p, "/proc/%d/exe", tid);
    ssize_t k = readlink(p, buf, sizeof buf - 1);
    char self[512];
    ssize_t k2 = readlink("/proc/self/exe", self, sizeof self - 1);
    printf("exe as the process's: %d\n", k > 0 && k == k2 && !memcmp(buf, self, k));
    d = opendir("/proc");
    int listed = 0, me = 0;
    while (d && (e = readdir(d))) {
        listed += atoi(e->d_name) == tid;
        me += atoi(e->d_name) == getpid();
    }
    closedir(d);
    printf("/proc lists the tid: %d, the pid: %d\n", listed, me);
    struct stat st;
    snprintf(p, sizeof p, "/proc/%d", tid);
    printf("stat of /proc/TID: %s\n", stat(p, &st) ? strerror(errno) : "ok");
    pthread_mutex_lock(&m);
    state = 2;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    pthread_join(th, NULL);
    usleep(10000);
    printf("after the thread ended: %s\n", stat(p, &st) ? strerror(errno) : "still there");
    snprintf(p, sizeof p, "/proc/%d/stat", tid);
    printf("its stat: %s\n", access(p, F_OK) ? strerror(errno) : "still there");
    printf("done\n");
    return 0;
}
