/* One /proc/meminfo field, in kB (-1 if missing): for the programs that
 * watch the guest's memory (t_oomkill, t_shmem). */
#ifndef T_MEMINFO_H
#define T_MEMINFO_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long meminfo_kb(const char *key)
{
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    FILE *f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':')
            v = atol(line + n + 1);
    if (f)
        fclose(f);
    return v;
}
#endif
