#include "engine/owner.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Field 22 of /proc/PID/stat: the process's start time in clock ticks; 0 when
 * the process is gone or a zombie. */
static unsigned long long start_time(long pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');   /* the command name may hold spaces */
    if (!p) return 0;
    unsigned long long v = 0;
    /* after ")": state is field 3 (a zombie is dead); starttime is field 22 */
    p += 2;
    if (*p == 'Z' || *p == 'X') return 0;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p) p++;
    }
    if (p) v = strtoull(p, NULL, 10);
    return v;
}

void cairn_owner_self(char *out, size_t outlen) {
    char host[128] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(out, outlen, "%s:%ld:%llu", host, (long)getpid(), start_time((long)getpid()));
}

bool cairn_owner_alive(const char *owner) {
    char host[128] = "localhost", name[160];
    gethostname(host, sizeof host - 1);
    snprintf(name, sizeof name, "%s", owner);
    char *c1 = strchr(name, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2) return false;
    *c1 = '\0';
    if (strcmp(name, host) != 0) return true;
    long pid = strtol(c1 + 1, NULL, 10);
    unsigned long long st = strtoull(c2 + 1, NULL, 10);
    if (pid <= 0 || (kill((pid_t)pid, 0) != 0)) return false;
    return start_time(pid) == st;
}

void cairn_owner_wake(const char *owner) {
    if (owner == NULL || !cairn_owner_alive(owner)) return;
    const char *c1 = strchr(owner, ':');
    long pid = c1 ? strtol(c1 + 1, NULL, 10) : 0;
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    if (pid > 0 && strncmp(owner, host, (size_t)(c1 - owner)) == 0) kill((pid_t)pid, SIGUSR1);
}

bool cairn_owner_local(const char *owner) {
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    size_t n = strlen(host);
    return strncmp(owner, host, n) == 0 && owner[n] == ':';
}
