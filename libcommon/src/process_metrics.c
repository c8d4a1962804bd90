#include "common/process_metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/metrics.h"
#include "common/banned.h"

struct families {
    struct cm_metric *start, *rss, *cpu, *fds;
};

static struct families fam;

/* Fields of /proc/self/stat after the ")" that ends comm: state is field 3. */
static int read_stat(unsigned long long *utime, unsigned long long *stime,
                     unsigned long long *starttime, long *rss_pages)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p += 2;
    int field = 3;
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 14)
            *utime = strtoull(tok, NULL, 10);
        else if (field == 15)
            *stime = strtoull(tok, NULL, 10);
        else if (field == 22)
            *starttime = strtoull(tok, NULL, 10);
        else if (field == 24) {
            *rss_pages = strtol(tok, NULL, 10);
            return 0;
        }
    }
    return -1;
}

static double boot_time(void)
{
    char line[256];
    double bt = 0;
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory handle itself */
}

void cm_process_metrics_collect(void *ctx)
{
    (void)ctx;
    unsigned long long ut = 0, st = 0, start = 0;
    long rss = 0;
    double hz = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (read_stat(&ut, &st, &start, &rss) == 0 && hz > 0) {
        cm_counter_set(fam.cpu, (double)(ut + st) / hz);
        cm_gauge_set(fam.rss, (double)rss * (double)page);
        cm_gauge_set(fam.start, boot_time() + (double)start / hz);
    }
    int fds = count_fds();
    if (fds >= 0)
        cm_gauge_set(fam.fds, fds);
}

int cm_process_metrics_register(const char *service, const char *version)
{
    fam.start = cm_metric_gauge("process_start_time_seconds",
                                "Start time of the process since unix epoch in seconds.", NULL);
    fam.rss =
        cm_metric_gauge("process_resident_memory_bytes", "Resident memory size in bytes.", NULL);
    fam.cpu = cm_metric_counter("process_cpu_seconds_total",
                                "Total user and system CPU time spent in seconds.", NULL);
    fam.fds = cm_metric_gauge("process_open_fds", "Number of open file descriptors.", NULL);
    struct cm_metric *info =
        cm_metric_gauge("service_info", "Service name and version; always 1.", "service,version");
    if (!fam.start || !fam.rss || !fam.cpu || !fam.fds || !info)
        return -1;
    cm_gauge_set(info, 1, service ? service : "unknown", version ? version : "unknown");
    cm_metrics_on_collect(cm_process_metrics_collect, NULL);
    return 0;
}
