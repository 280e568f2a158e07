/*
 * dmnbench - launch daemonizing programs, time them to "original exited AND
 * pid file sealed", inspect the daemon, kill it.  Public tools only (Linux,
 * glibc, strace, /usr/bin/time).  Build: gcc -O2 -o dmnbench dmnbench.c
 *
 *   dmnbench time   [-n RUNS] [-w WARMUP] [-b BASE]... [-o CSV] [-t SECS] ROW...
 *                   (-b up to 4 times: one "x BASE" ratio column per base row)
 *   dmnbench once   ROW                      (one launch -> ready -> SIGKILL)
 *   dmnbench strace [-d DIR] [-t SECS] ROW...  (strace -f -c of the whole start)
 *   dmnbench timev  [-d DIR] ROW...           (/usr/bin/time -v of the original)
 *   dmnbench check  [-d DIR] [-t SECS] ROW... (error handling + daemon state)
 *
 * ROW is NAME=CMD [ARG...] (split on blanks, no quoting).  dmnbench appends
 * the pid-file path as the last argument (and, for the chdir-failure check,
 * a nonexistent work dir after it): a peer is "CMD... PIDFILE [WORKDIR]".
 *
 * A run's latency = from just before posix_spawn to the moment BOTH the
 * original process has been reaped AND the pid file holds "<pid>\n" of a
 * live process other than the original.  When the pid file is not ready at
 * the original's exit (a peer that cannot wait), dmnbench waits for it with
 * inotify (no busy polling) and counts the run as "not ready at exit".
 * Every launched process carries DMNBENCH_TAG=<id> in its environment, so
 * whatever a launch leaves behind is found in /proc and killed afterwards.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

extern char **environ;

#define MAXROWS 64
#define MAXARGS 64
#define MAXRUNS 1000
#define MAXBASES 4

struct row {
    char *name;
    char *argv[MAXARGS];
    int argc;
    double lat[MAXRUNS], exitlat[MAXRUNS], cpu[MAXRUNS], dwait[MAXRUNS], calm[MAXRUNS];
    int n, ncalm, ready_at_exit, fails, lastfail_status;
};

static struct row rows[MAXROWS];
static int nrows;
static char wdir[PATH_MAX];          /* /tmp/dmnbench.<pid> : pid files live here */
static int inofd = -1;
static unsigned long launches;
static volatile sig_atomic_t alarmed;
static int no_scan;                  /* once mode: skip the /proc sweep */

static void on_alarm(int s) { (void)s; alarmed = 1; }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Child reaping.  dmnbench makes itself a child subreaper (unless
 * DMNBENCH_SUBREAPER=0) so the orphans of each launch (first children,
 * killed daemons) are reaped at once, as systemd or a normal init would:
 * a zombie still answers kill(pid, 0), which stale-pid-file checks use.
 * The SIGCHLD handler reaps everything; the one launched process being
 * timed ("tracked") has its status and reaping time kept. */
static volatile pid_t trk_pid = -1;
static volatile sig_atomic_t trk_done;
static int trk_status;
static double trk_time;
static struct rusage trk_ru;

static void on_chld(int s)
{
    (void)s;
    int e = errno, st;
    pid_t p;
    struct rusage ru;
    while ((p = wait4(-1, &st, WNOHANG, &ru)) > 0)
        if (p == trk_pid) { trk_status = st; trk_time = now(); trk_ru = ru; trk_done = 1; }
    errno = e;
}

/* on-CPU and run-queue-wait seconds of a task so far (/proc/PID/schedstat, ns) */
static int schedstat(pid_t pid, double *cpu, double *wait)
{
    char p[64], b[128];
    snprintf(p, sizeof p, "/proc/%d/schedstat", (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0) return -1;
    b[n] = 0;
    unsigned long long c = 0, w = 0;
    if (sscanf(b, "%llu %llu", &c, &w) != 2) return -1;
    *cpu = c * 1e-9;
    *wait = w * 1e-9;
    return 0;
}

static void sleep_for(double secs)
{
    struct timespec ts = { (time_t)secs, (long)((secs - (time_t)secs) * 1e9) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

/* poll one fd until readable or deadline; EINTR-safe */
static int poll_until(int fd, double deadline)
{
    for (;;) {
        double left = deadline - now();
        if (left <= 0) return 0;
        struct pollfd p = { fd, POLLIN, 0 };
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r > 0) return 1;
        if (r < 0 && errno != EINTR) return -1;
    }
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dmnbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void parse_row(const char *spec)
{
    if (nrows == MAXROWS) die("too many rows");
    struct row *r = &rows[nrows];
    memset(r, 0, sizeof *r);
    char *s = strdup(spec), *eq = strchr(s, '=');
    if (!eq || eq == s) die("row '%s' is not NAME=CMD", spec);
    *eq = 0;
    r->name = s;
    for (char *tok = strtok(eq + 1, " \t"); tok; tok = strtok(NULL, " \t")) {
        if (r->argc >= MAXARGS - 4) die("row '%s': too many words", spec);
        r->argv[r->argc++] = tok;
    }
    if (!r->argc) die("row '%s' has no command", spec);
    nrows++;
}

static int row_index(const char *name)
{
    for (int i = 0; i < nrows; i++)
        if (!strcmp(rows[i].name, name)) return i;
    return -1;
}

/* ------------------------------------------------------------ launching */

struct lopts {
    const char *log;          /* stdout+stderr of the launch, or NULL: /dev/null */
    const char *extra;        /* extra argument after the pid file */
    char *const *prefix;      /* wrapper argv (strace, time), NULL-terminated */
    int block_usr1;           /* launch with SIGUSR1 blocked */
    const char *fd100;        /* open this file as inherited fd 100 */
};

static pid_t spawn_row(struct row *r, const char *pidfile, const struct lopts *o, char *tag, size_t taglen)
{
    char *argv[MAXARGS * 2];
    int k = 0;
    if (o->prefix)
        for (int i = 0; o->prefix[i]; i++) argv[k++] = o->prefix[i];
    for (int i = 0; i < r->argc; i++) argv[k++] = r->argv[i];
    argv[k++] = (char *)pidfile;
    if (o->extra) argv[k++] = (char *)o->extra;
    argv[k] = NULL;

    snprintf(tag, taglen, "%d.%lu", (int)getpid(), ++launches);
    static char tagenv[64];
    snprintf(tagenv, sizeof tagenv, "DMNBENCH_TAG=%s", tag);
    size_t ne = 0;
    while (environ[ne]) ne++;
    char **envp = malloc((ne + 2) * sizeof *envp);
    size_t j = 0;
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "DMNBENCH_TAG=", 13)) envp[j++] = environ[i];
    envp[j++] = tagenv;
    envp[j] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, o->log ? o->log : "/dev/null",
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (o->fd100) posix_spawn_file_actions_addopen(&fa, 100, o->fd100, O_RDONLY, 0);
    sigset_t m, def;
    sigemptyset(&m);
    if (o->block_usr1) sigaddset(&m, SIGUSR1);
    posix_spawnattr_setsigmask(&at, &m);
    /* every signal to SIG_DFL except those the driver ignores on purpose
       (SIGHUP in check mode): glibc's posix_spawn would otherwise hand its
       internal signals 32/33 to the new program as SIG_IGN */
    memset(&def, 0xff, sizeof def);   /* not sigfillset: glibc leaves 32/33 out */
    struct sigaction cur;
    if (sigaction(SIGHUP, NULL, &cur) == 0 && cur.sa_handler == SIG_IGN) sigdelset(&def, SIGHUP);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    trk_done = 0;
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, &at, argv, envp);
    if (!e) trk_pid = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    free(envp);
    if (e) { errno = e; return -1; }
    return pid;
}

/* wait for the tracked (last spawned) process, bounded; -2 = timed out.
 * *t_end (optional) gets the moment the SIGCHLD handler reaped it. */
static pid_t wait_bounded(pid_t pid, int *st, int secs, double *t_end)
{
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    alarmed = 0;
    alarm(secs);
    sigprocmask(SIG_BLOCK, &chld, &old);
    while (!trk_done && !alarmed) sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    alarm(0);
    if (!trk_done) return -2;
    *st = trk_status;
    if (t_end) *t_end = trk_time;
    return pid;
}

/* kill the tracked process after a timeout and collect it */
static void kill_tracked(pid_t pid, int *st)
{
    kill(pid, SIGKILL);
    wait_bounded(pid, st, 5, NULL);
}

static int proc_state(pid_t pid)   /* 'R','S','Z',... or 0 if gone */
{
    char p[64], b[512];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0) return 0;
    b[n] = 0;
    char *q = strrchr(b, ')');
    return q && q[1] == ' ' ? q[2] : 0;
}

static int alive(pid_t pid)
{
    if (pid <= 0) return 0;
    if (kill(pid, 0) < 0 && errno != EPERM) return 0;
    int s = proc_state(pid);
    return s && s != 'Z' && s != 'X';
}

/* system-wide CPU pressure: cumulative microseconds during which some
 * runnable task waited for a CPU (/proc/pressure/cpu "some ... total=") */
static double psi_cpu_us(void)
{
    char b[256];
    int fd = open("/proc/pressure/cpu", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0) return -1;
    b[n] = 0;
    char *t = strstr(b, "total=");
    return t ? strtod(t + 6, NULL) : -1;
}

/* "<digits>\n..." -> pid, else 0 */
static pid_t read_pidfile(const char *path)
{
    char b[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0) return 0;
    b[n] = 0;
    char *e;
    long v = strtol(b, &e, 10);
    if (e == b || *e != '\n' || v <= 0 || v > INT_MAX) return 0;
    return (pid_t)v;
}

static void drain_inotify(void)
{
    char buf[4096];
    while (read(inofd, buf, sizeof buf) > 0) {}
}

/* wait until the pid file names a live process (not `not_this`) */
static pid_t wait_ready(const char *pidfile, pid_t not_this, double deadline)
{
    for (;;) {
        pid_t d = read_pidfile(pidfile);
        if (d > 0 && d != not_this && alive(d)) return d;
        double left = deadline - now();
        if (left <= 0) return 0;
        struct pollfd pf = { inofd, POLLIN, 0 };
        int ms = (int)(left * 1000) + 1;
        poll(&pf, 1, ms < 20 ? ms : 20);   /* inotify wakes us; 20 ms is a safety net */
        drain_inotify();
    }
}

static int pidfd_of(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

/* signal pid and wait (up to secs) for it to end; SIGKILL after that */
static int kill_wait(pid_t pid, int sig, double secs)
{
    if (pid <= 0) return 0;
    int pfd = pidfd_of(pid);
    if (pfd < 0) return errno == ESRCH ? 0 : -1;
    kill(pid, sig);
    int r = poll_until(pfd, now() + secs);
    if (r <= 0 && sig != SIGKILL) {
        kill(pid, SIGKILL);
        r = poll_until(pfd, now() + 3);
    }
    close(pfd);
    return r > 0 ? 0 : -1;
}

/* pids whose environment carries DMNBENCH_TAG=<tag>; returns count */
static int find_tagged(const char *tag, pid_t *out, int max)
{
    char want[96];
    int wl = snprintf(want, sizeof want, "DMNBENCH_TAG=%s", tag) + 1;  /* with NUL */
    DIR *d = opendir("/proc");
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    static char buf[1 << 16];
    while ((de = readdir(d)) && n < max) {
        if (!isdigit((unsigned char)de->d_name[0])) continue;
        char p[300];
        snprintf(p, sizeof p, "/proc/%s/environ", de->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t len = read(fd, buf, sizeof buf);
        close(fd);
        for (ssize_t i = 0; len > 0 && i + wl <= len; ) {
            if (!memcmp(buf + i, want, wl)) { out[n++] = atoi(de->d_name); break; }
            while (i < len && buf[i]) i++;
            i++;
        }
    }
    closedir(d);
    return n;
}

static int kill_tagged(const char *tag, pid_t spare)
{
    pid_t p[256];
    int n = find_tagged(tag, p, 256), k = 0;
    for (int i = 0; i < n; i++)
        if (p[i] != spare && p[i] != getpid()) { kill_wait(p[i], SIGKILL, 2); k++; }
    return k;
}

static void pidfile_path(char *out, size_t sz, const struct row *r)
{
    snprintf(out, sz, "%s/%s.pid", wdir, r->name);
}

static void setup_wdir(void)
{
    const char *base = getenv("DMNBENCH_DIR");   /* where pid files live */
    snprintf(wdir, sizeof wdir, "%s/dmnbench.%d", base && *base ? base : "/tmp", (int)getpid());
    if (mkdir(wdir, 0755) < 0 && errno != EEXIST) die("mkdir %s: %s", wdir, strerror(errno));
    inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inofd < 0) die("inotify_init1: %s", strerror(errno));
    if (inotify_add_watch(inofd, wdir, IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
        die("inotify_add_watch: %s", strerror(errno));
    struct sigaction sa = { .sa_handler = on_alarm };
    sigaction(SIGALRM, &sa, NULL);
    struct sigaction sc = { .sa_handler = on_chld, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
    sigaction(SIGCHLD, &sc, NULL);
    const char *sr = getenv("DMNBENCH_SUBREAPER");
    if (!sr || strcmp(sr, "0")) prctl(PR_SET_CHILD_SUBREAPER, 1);
}

static void rm_wdir(void)
{
    DIR *d = opendir(wdir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            char p[PATH_MAX + 300];
            snprintf(p, sizeof p, "%s/%s", wdir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(wdir);
}

/* ------------------------------------------------------------- one run */

struct result {
    int ok;                   /* original exited 0 and pid file became ready */
    int status;               /* wait status of the original (or wrapper) */
    int timed_out;
    int ready_at_exit;
    double lat, exitlat;      /* seconds */
    double cpu_orig;          /* user+sys of the original (+ children it reaped) */
    double cpu_daemon, wait_daemon;  /* daemon's on-CPU / run-queue time at readiness */
    double stall;             /* system CPU-pressure stall during the run, s (-1: unknown) */
    pid_t daemon;
    char tag[64];             /* DMNBENCH_TAG of the launch */
};

static struct result run_once(struct row *r, const struct lopts *o, double timeout, int keep)
{
    struct result res = {0};
    char pf[PATH_MAX], *tag = res.tag;
    pidfile_path(pf, sizeof pf, r);
    unlink(pf);
    drain_inotify();
    double psi0 = psi_cpu_us();
    double t0 = now();
    pid_t pid = spawn_row(r, pf, o, tag, sizeof res.tag);
    if (pid < 0) die("spawn %s: %s", r->argv[0], strerror(errno));
    int st = 0;
    double t1 = 0;
    pid_t w = wait_bounded(pid, &st, (int)timeout + 1, &t1);
    if (w == -2) {
        res.timed_out = 1;
        kill_tracked(pid, &st);
        t1 = now();
    }
    res.exitlat = t1 - t0;
    res.status = st;
    if (!res.timed_out)
        res.cpu_orig = trk_ru.ru_utime.tv_sec + trk_ru.ru_utime.tv_usec * 1e-6 +
                       trk_ru.ru_stime.tv_sec + trk_ru.ru_stime.tv_usec * 1e-6;
    if (!res.timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        pid_t d = read_pidfile(pf);
        if (d > 0 && d != pid && alive(d)) {
            res.ready_at_exit = 1;
            res.lat = res.exitlat;
        } else {
            d = wait_ready(pf, pid, t0 + timeout);
            res.lat = (d ? now() : t0 + timeout) - t0;
        }
        res.daemon = d;
        res.ok = d > 0;
        if (d > 0 && schedstat(d, &res.cpu_daemon, &res.wait_daemon) < 0) res.cpu_daemon = res.wait_daemon = 0;
    }
    double psi1 = psi_cpu_us();
    res.stall = psi0 < 0 || psi1 < 0 ? -1 : (psi1 - psi0) * 1e-6;
    if (!keep) {
        if (res.daemon) kill_wait(res.daemon, SIGKILL, 2);
        if (!no_scan || !res.ok) kill_tagged(tag, 0);
        unlink(pf);
    }
    return res;
}

/* -------------------------------------------------------------- stats */

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    if (n <= 0) return 0;
    double *c = malloc(n * sizeof *c);
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmpd);
    double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

static double vmin(const double *v, int n) { double m = v[0]; for (int i = 1; i < n; i++) if (v[i] < m) m = v[i]; return m; }
static double vmax(const double *v, int n) { double m = v[0]; for (int i = 1; i < n; i++) if (v[i] > m) m = v[i]; return m; }

/* ------------------------------------------------------------ mode: time */

static int mode_time(int argc, char **argv)
{
    int runs = 15, warm = 2;
    double timeout = 30, calm_stall = 0.0001;   /* a "calm" run: <= 0.1 ms of CPU stall */
    const char *base[MAXBASES], *csv = NULL;
    int nbase = 0;
    int c;
    while ((c = getopt(argc, argv, "+n:w:b:o:t:")) != -1) {
        switch (c) {
        case 'n': runs = atoi(optarg); break;
        case 'w': warm = atoi(optarg); break;
        case 'b':
            if (nbase == MAXBASES) die("at most %d -b", MAXBASES);
            base[nbase++] = optarg;
            break;
        case 'o': csv = optarg; break;
        case 't': timeout = atof(optarg); break;
        default: return 2;
        }
    }
    if (runs < 1 || runs > MAXRUNS) die("-n must be 1..%d", MAXRUNS);
    for (int i = optind; i < argc; i++) parse_row(argv[i]);
    if (!nrows) die("no rows");
    int bis[MAXBASES];
    for (int b = 0; b < nbase; b++)
        if ((bis[b] = row_index(base[b])) < 0) die("base row '%s' not given", base[b]);
    setup_wdir();
    FILE *cf = csv ? fopen(csv, "w") : NULL;
    if (cf) fprintf(cf, "round,peer,ok,status,ready_at_exit,latency_ms,original_exit_ms,cpu_original_ms,cpu_daemon_ms,daemon_runqueue_wait_ms,cpu_stall_ms\n");
    struct lopts o = {0};
    /* rounds: every row once per round, order rotated each round */
    /* ratio[b][i][k]: row i / base b within round k (paired) */
    static double ratio[MAXBASES][MAXROWS][MAXRUNS];
    int nratio[MAXBASES][MAXROWS] = {{0}};
    for (int round = 0; round < warm + runs; round++) {
        double lat_this[MAXROWS];
        int ok_this[MAXROWS];
        for (int k = 0; k < nrows; k++) {
            int i = (k + round) % nrows;
            struct row *r = &rows[i];
            struct result res = run_once(r, &o, timeout, 0);
            ok_this[i] = res.ok;
            lat_this[i] = res.lat;
            if (round >= warm) {
                if (res.ok) {
                    r->lat[r->n] = res.lat;
                    r->exitlat[r->n] = res.exitlat;
                    r->cpu[r->n] = res.cpu_orig + res.cpu_daemon;
                    r->dwait[r->n] = res.wait_daemon;
                    if (res.stall >= 0 && res.stall <= calm_stall) r->calm[r->ncalm++] = res.lat;
                    r->ready_at_exit += res.ready_at_exit;
                    r->n++;
                } else {
                    r->fails++;
                    r->lastfail_status = res.timed_out ? -1 : res.status;
                }
                if (cf) fprintf(cf, "%d,%s,%d,%d,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f\n", round - warm + 1, r->name, res.ok,
                                res.timed_out ? -1 : res.status, res.ready_at_exit,
                                res.lat * 1e3, res.exitlat * 1e3, res.cpu_orig * 1e3, res.cpu_daemon * 1e3,
                                res.wait_daemon * 1e3, res.stall * 1e3);
            }
            sleep_for(0.01);   /* let the killed daemon's teardown settle */
        }
        for (int b = 0; b < nbase; b++)
            if (round >= warm && ok_this[bis[b]])
                for (int i = 0; i < nrows; i++)
                    if (ok_this[i]) ratio[b][i][nratio[b][i]++] = lat_this[i] / lat_this[bis[b]];
    }
    if (cf) fclose(cf);
    rm_wdir();
    struct rlimit nl;
    getrlimit(RLIMIT_NOFILE, &nl);
    int pol = sched_getscheduler(0);
    struct sched_param sp = {0};
    sched_getparam(0, &sp);
    int rt = pol == SCHED_FIFO || pol == SCHED_RR;
    printf("runs per peer: %d (+%d warm-up), interleaved; RLIMIT_NOFILE of the launches: %llu soft / %llu hard; scheduling of dmnbench and the launches: %s\n\n",
           runs, warm, (unsigned long long)nl.rlim_cur, (unsigned long long)nl.rlim_max,
           rt ? (pol == SCHED_FIFO ? "SCHED_FIFO (real-time, other tenants cannot delay a wake-up)" : "SCHED_RR")
              : "SCHED_OTHER (normal: other tenants' load delays wake-ups)");
    (void)sp;
    /* one "x BASE" column per base (none without -b), for the paired
       ratios and, at normal priority, for the calm medians */
    double bcalm[MAXBASES];
    for (int b = 0; b < nbase; b++)
        bcalm[b] = rows[bis[b]].ncalm ? median(rows[bis[b]].calm, rows[bis[b]].ncalm) : 0;
    char hx[256] = "", hxc[256] = "", al[64] = "";
    size_t lx = 0, lxc = 0, la = 0;
    for (int b = 0; b < nbase; b++) {
        lx += snprintf(hx + lx, sizeof hx - lx, " x %s (paired median) |", base[b]);
        lxc += snprintf(hxc + lxc, sizeof hxc - lxc, " x %s (calm medians) |", base[b]);
        la += snprintf(al + la, sizeof al - la, "---:|");
    }
    if (rt) {
        printf("| peer | start latency median ms | min | max |%s original exits at, median ms | pid file ready when original exited | CPU ms, original + daemon, median | ok runs |\n", hx);
        printf("|---|---:|---:|---:|%s---:|---:|---:|---:|\n", al);
    } else {
        printf("| peer | start latency median ms | min | max |%s calm runs | median ms of calm runs |%s original exits at, median ms | pid file ready when original exited | CPU ms, original + daemon, median | ok runs |\n", hx, hxc);
        printf("|---|---:|---:|---:|%s---:|---:|%s---:|---:|---:|---:|\n", al, al);
    }
    for (int i = 0; i < nrows; i++) {
        struct row *r = &rows[i];
        char empty[64] = "";
        for (int b = 0, l = 0; b < nbase * (rt ? 1 : 2); b++) l += snprintf(empty + l, sizeof empty - l, " |");
        if (!r->n) {
            printf("| %s | FAILED (status %d) | | |%s%s | | | 0/%d |\n", r->name, r->lastfail_status, empty,
                   rt ? "" : " | |", runs);
            continue;
        }
        char rat[160] = "", crat[160] = "", cm[32] = "-";
        size_t lr = 0, lc = 0;
        for (int b = 0; b < nbase; b++) {
            if (nratio[b][i]) lr += snprintf(rat + lr, sizeof rat - lr, " %.2f |", median(ratio[b][i], nratio[b][i]));
            else lr += snprintf(rat + lr, sizeof rat - lr, " |");
            if (r->ncalm && bcalm[b] > 0)
                lc += snprintf(crat + lc, sizeof crat - lc, " %.2f |", median(r->calm, r->ncalm) / bcalm[b]);
            else lc += snprintf(crat + lc, sizeof crat - lc, " |");
        }
        if (r->ncalm) snprintf(cm, sizeof cm, "%.3f", median(r->calm, r->ncalm) * 1e3);
        char calmcols[256] = "";
        if (!rt) snprintf(calmcols, sizeof calmcols, " %d/%d | %s |%s", r->ncalm, r->n, cm, crat);
        printf("| %s | %.3f | %.3f | %.3f |%s%s %.3f | %d/%d | %.3f | %d/%d |\n", r->name,
               median(r->lat, r->n) * 1e3, vmin(r->lat, r->n) * 1e3, vmax(r->lat, r->n) * 1e3, rat,
               calmcols, median(r->exitlat, r->n) * 1e3, r->ready_at_exit, r->n,
               median(r->cpu, r->n) * 1e3, r->n, runs);
    }
    if (!rt) printf("\n_calm run: the system's CPU-pressure stall counter (/proc/pressure/cpu, some total) grew by <= %.1f ms during the run._", calm_stall * 1e3);
    printf("\n_CPU = user+sys of the original (and of the children it reaped) + the daemon's on-CPU time at readiness (/proc/PID/schedstat)._\n");
    return 0;
}

/* ------------------------------------------------------------ mode: once */

static int mode_once(int argc, char **argv)
{
    if (argc - optind != 1) die("once takes exactly one ROW");
    parse_row(argv[optind]);
    setup_wdir();
    no_scan = 1;
    struct lopts o = {0};
    struct result res = run_once(&rows[0], &o, 30, 0);
    rm_wdir();
    if (!res.ok) { fprintf(stderr, "dmnbench once: %s failed (status %d)\n", rows[0].name, res.status); return 1; }
    return 0;
}

/* --------------------------------------------- wrapped runs (strace, time) */

/* run ROW under a wrapper; wait for readiness and for the launch to settle
 * (only the daemon and the wrapper left), then SIGKILL the daemon and reap
 * the wrapper.  Returns the daemon pid (0 on failure). */
static pid_t wrapped(struct row *r, char *const *prefix, int wrapper_follows, double timeout, int *wst)
{
    char pf[PATH_MAX], tag[64];
    pidfile_path(pf, sizeof pf, r);
    unlink(pf);
    drain_inotify();
    struct lopts o = { .prefix = prefix };
    double t0 = now();
    pid_t w = spawn_row(r, pf, &o, tag, sizeof tag);
    if (w < 0) die("spawn: %s", strerror(errno));
    pid_t d = 0;
    *wst = -1;
    if (!wrapper_follows) {
        if (wait_bounded(w, wst, (int)timeout + 1, NULL) == -2) kill_tracked(w, wst);
    }
    d = wait_ready(pf, w, t0 + timeout);
    /* settle: wait until only the daemon (and the wrapper) are left */
    for (double until = now() + timeout; d && now() < until; ) {
        pid_t p[256];
        int n = find_tagged(tag, p, 256), others = 0;
        for (int i = 0; i < n; i++)
            if (p[i] != d && p[i] != w && alive(p[i])) others++;
        if (!others) break;
        sleep_for(0.005);
    }
    sleep_for(0.2);
    if (d) kill_wait(d, SIGKILL, 2);
    kill_tagged(tag, w);
    if (wrapper_follows) {
        if (wait_bounded(w, wst, 60, NULL) == -2) kill_tracked(w, wst);
    }
    unlink(pf);
    return d;
}

static int mode_strace(int argc, char **argv)
{
    const char *dir = ".";
    double timeout = 300;
    int c;
    while ((c = getopt(argc, argv, "+d:t:")) != -1) {
        if (c == 'd') dir = optarg;
        else if (c == 't') timeout = atof(optarg);
        else return 2;
    }
    for (int i = optind; i < argc; i++) parse_row(argv[i]);
    setup_wdir();
    printf("| peer | syscalls, whole start (all processes) | failed calls | processes (fork/clone) | distinct syscalls | syscalls by count |\n");
    printf("|---|---:|---:|---:|---:|---|\n");
    for (int i = 0; i < nrows; i++) {
        struct row *r = &rows[i];
        char out[PATH_MAX];
        snprintf(out, sizeof out, "%s/%s.strace-c.txt", dir, r->name);
        char *pre[] = { "strace", "-f", "-c", "-U", "calls,errors,name", "-S", "calls", "-o", out, "--", NULL };
        int st;
        pid_t d = wrapped(r, pre, 1, timeout, &st);
        FILE *f = fopen(out, "r");
        long total = 0, errs = 0, procs = 0;
        int distinct = 0;
        char list[8192] = "";
        size_t ll = 0;
        if (f) {
            char line[512];
            while (fgets(line, sizeof line, f)) {
                char a[64] = "", b[64] = "", cc[128] = "";
                int k = sscanf(line, "%63s %63s %127s", a, b, cc);
                if (k < 2 || !isdigit((unsigned char)a[0])) continue;
                long calls = atol(a), e = 0;
                const char *name = b;
                if (k == 3) { e = atol(b); name = cc; }
                if (!strcmp(name, "total")) { total = calls; errs = e; continue; }
                distinct++;
                if (!strcmp(name, "fork") || !strcmp(name, "vfork") || !strcmp(name, "clone") || !strcmp(name, "clone3"))
                    procs += calls;
                ll += snprintf(list + ll, ll < sizeof list ? sizeof list - ll : 0, "%s%s %ld", ll ? ", " : "", name, calls);
            }
            fclose(f);
        }
        if (ll >= sizeof list) strcpy(list + sizeof list - 5, "...");
        printf("| %s | %ld%s | %ld | %ld | %d | %s |\n", r->name, total, d ? "" : " (no daemon!)", errs, procs, distinct, list);
        fflush(stdout);
    }
    rm_wdir();
    return 0;
}

static int mode_timev(int argc, char **argv)
{
    const char *dir = ".";
    int c;
    while ((c = getopt(argc, argv, "+d:")) != -1) {
        if (c == 'd') dir = optarg;
        else return 2;
    }
    for (int i = optind; i < argc; i++) parse_row(argv[i]);
    setup_wdir();
    printf("| peer | original: max RSS kB (time -v) | original: elapsed ms (time -v, 10 ms steps) | voluntary ctx sw | involuntary ctx sw | exit |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < nrows; i++) {
        struct row *r = &rows[i];
        char out[PATH_MAX];
        snprintf(out, sizeof out, "%s/%s.time-v.txt", dir, r->name);
        unlink(out);
        char *pre[] = { "/usr/bin/time", "-v", "-o", out, NULL };
        int st;
        wrapped(r, pre, 0, 30, &st);
        long rss = -1, vcs = -1, ics = -1, ex = -1;
        double el = -1;
        FILE *f = fopen(out, "r");
        if (f) {
            char line[512];
            while (fgets(line, sizeof line, f)) {
                char *p;
                if ((p = strstr(line, "Maximum resident set size (kbytes): "))) rss = atol(p + 36);
                else if ((p = strstr(line, "Voluntary context switches: "))) vcs = atol(p + 28);
                else if ((p = strstr(line, "Involuntary context switches: "))) ics = atol(p + 30);
                else if ((p = strstr(line, "Exit status: "))) ex = atol(p + 13);
                else if ((p = strstr(line, "(h:mm:ss or m:ss): "))) {
                    p += 19;
                    double a = 0, b = 0, cc = 0;
                    int k = sscanf(p, "%lf:%lf:%lf", &a, &b, &cc);
                    el = k == 3 ? a * 3600 + b * 60 + cc : a * 60 + b;
                }
            }
            fclose(f);
        }
        printf("| %s | %ld | %.0f | %ld | %ld | %ld |\n", r->name, rss, el * 1e3, vcs, ics, ex);
        fflush(stdout);
    }
    rm_wdir();
    return 0;
}

/* ------------------------------------------------------------ mode: check */

static void slurp(const char *path, char *out, size_t sz)
{
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, out, sz - 1);
    close(fd);
    out[n > 0 ? n : 0] = 0;
}

static void status_field(pid_t pid, const char *key, char *out, size_t sz)
{
    char p[64], b[8192];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    slurp(p, b, sizeof b);
    out[0] = 0;
    size_t kl = strlen(key);
    for (char *l = b; l && *l; ) {
        char *nl = strchr(l, '\n');
        if (nl) *nl = 0;
        if (!strncmp(l, key, kl) && l[kl] == ':') {
            char *v = l + kl + 1;
            while (*v == ' ' || *v == '\t') v++;
            snprintf(out, sz, "%s", v);
            return;
        }
        l = nl ? nl + 1 : NULL;
    }
}

/* first line of a log, '|' made safe for markdown, cut to 90 chars */
static void first_line(const char *path, char *out, size_t sz)
{
    char b[4096];
    slurp(path, b, sizeof b);
    /* prefer the last non-empty line (a Python traceback's message) */
    char *best = NULL;
    for (char *l = b; l && *l; ) {
        char *nl = strchr(l, '\n');
        if (nl) *nl = 0;
        while (*l == ' ') l++;
        if (*l) best = l;
        l = nl ? nl + 1 : NULL;
    }
    if (!best) { snprintf(out, sz, "(nothing)"); return; }
    snprintf(out, sz, "\"%.90s%s\"", best, strlen(best) > 90 ? "..." : "");
    for (char *p = out; *p; p++) if (*p == '|') *p = '/';
}

static const char *signames(unsigned long long mask, char *out, size_t sz)
{
    static const char *nm[] = { "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1",
                                "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP",
                                "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS" };
    size_t l = 0;
    out[0] = 0;
    for (int s = 1; s < 64; s++)
        if (mask & (1ULL << (s - 1)))
            l += snprintf(out + l, l < sz ? sz - l : 0, "%s%s", l ? "," : "", s < 32 ? nm[s] : "RT");
    if (!l) snprintf(out, sz, "none");
    return out;
}

/* lock on the pid file: look its inode up in /proc/locks */
static void lock_info(const char *pf, char *out, size_t sz)
{
    struct stat st;
    snprintf(out, sz, "none");
    if (stat(pf, &st) < 0) { snprintf(out, sz, "(no file)"); return; }
    FILE *f = fopen("/proc/locks", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char kind[32], adv[32], rw[32], dev[64];
        int pid;
        unsigned long long ino;
        if (sscanf(line, "%*s %31s %31s %31s %d %63[^:]:%*[^:]:%llu", kind, adv, rw, &pid, dev, &ino) == 6 &&
            ino == (unsigned long long)st.st_ino) {
            snprintf(out, sz, "%s %s", kind, rw);
            break;
        }
    }
    fclose(f);
}

static int mode_check(int argc, char **argv)
{
    const char *dir = ".";
    double timeout = 15;
    int c;
    while ((c = getopt(argc, argv, "+d:t:")) != -1) {
        if (c == 'd') dir = optarg;
        else if (c == 't') timeout = atof(optarg);
        else return 2;
    }
    for (int i = optind; i < argc; i++) parse_row(argv[i]);
    setup_wdir();
    /* the launching process: umask 022, SIGHUP ignored (as under nohup),
       and (per launch) SIGUSR1 blocked and fd 100 open */
    umask(022);
    signal(SIGHUP, SIG_IGN);
    char marker[PATH_MAX];
    snprintf(marker, sizeof marker, "%s/fd100-marker", wdir);
    close(open(marker, O_WRONLY | O_CREAT, 0644));

    static char tabA[MAXROWS][1024], tabB[MAXROWS][1024];
    for (int i = 0; i < nrows; i++) {
        struct row *r = &rows[i];
        char pf[PATH_MAX], log[PATH_MAX], tag[64];
        pidfile_path(pf, sizeof pf, r);

        /* S1: launch with SIGUSR1 blocked + fd 100 inherited; inspect */
        snprintf(log, sizeof log, "%s/%s.check-start.log", dir, r->name);
        unlink(log);
        struct lopts o1 = { .log = log, .block_usr1 = 1, .fd100 = marker };
        struct result s1 = run_once(r, &o1, timeout, 1);
        char umaskv[16] = "?", sigblk[40] = "?", sigign[40] = "?", rss[32] = "?", hwm[32] = "?", thr[16] = "?";
        char cwd[PATH_MAX] = "?", core[32] = "?", fdl[512] = "", stdio[64] = "?", lk[64] = "?", mode[16] = "?";
        char sess[16] = "?", pidok[16] = "?";
        int fd100 = -1;
        pid_t d = s1.daemon;
        if (d) {
            sleep_for(0.3);   /* let post-readiness set-up finish */
            status_field(d, "Umask", umaskv, sizeof umaskv);
            char tmp[64];
            status_field(d, "SigBlk", tmp, sizeof tmp);
            unsigned long long mb = strtoull(tmp, NULL, 16);
            signames(mb, sigblk, sizeof sigblk);
            status_field(d, "SigIgn", tmp, sizeof tmp);
            signames(strtoull(tmp, NULL, 16), sigign, sizeof sigign);
            status_field(d, "VmRSS", rss, sizeof rss);
            status_field(d, "VmHWM", hwm, sizeof hwm);
            status_field(d, "Threads", thr, sizeof thr);
            char p[128];
            snprintf(p, sizeof p, "/proc/%d/cwd", (int)d);
            ssize_t n = readlink(p, cwd, sizeof cwd - 1);
            cwd[n > 0 ? n : 0] = 0;
            char lim[8192];
            snprintf(p, sizeof p, "/proc/%d/limits", (int)d);
            slurp(p, lim, sizeof lim);
            char *q = strstr(lim, "Max core file size");
            if (q) sscanf(q + 18, "%31s", core);
            /* fds */
            snprintf(p, sizeof p, "/proc/%d/fd", (int)d);
            DIR *dd = opendir(p);
            int null012 = 0;
            size_t fl = 0;
            if (dd) {
                struct dirent *de;
                int fds[1024], k = 0;
                while ((de = readdir(dd)) && k < 1024)
                    if (isdigit((unsigned char)de->d_name[0])) fds[k++] = atoi(de->d_name);
                closedir(dd);
                for (int a = 0; a < k; a++)
                    for (int b = a + 1; b < k; b++)
                        if (fds[b] < fds[a]) { int t = fds[a]; fds[a] = fds[b]; fds[b] = t; }
                fd100 = 0;
                for (int a = 0; a < k; a++) {
                    char lp[160], tgt[PATH_MAX];
                    snprintf(lp, sizeof lp, "/proc/%d/fd/%d", (int)d, fds[a]);
                    ssize_t tl = readlink(lp, tgt, sizeof tgt - 1);
                    tgt[tl > 0 ? tl : 0] = 0;
                    if (fds[a] == 100) fd100 = 1;
                    if (fds[a] <= 2 && !strcmp(tgt, "/dev/null")) null012++;
                    const char *shown = tgt;
                    if (!strcmp(tgt, pf)) shown = "pidfile";
                    else if (!strcmp(tgt, marker)) shown = "INHERITED-fd100";
                    else if (!strncmp(tgt, "/dev/null", 9)) shown = "null";
                    else if (!strncmp(tgt, "pipe:", 5)) shown = "pipe";
                    else if (!strncmp(tgt, "socket:", 7)) shown = "socket";
                    else if (!strncmp(tgt, "anon_inode:", 11)) shown = tgt + 11;
                    fl += snprintf(fdl + fl, fl < sizeof fdl ? sizeof fdl - fl : 0, "%s%d=%s", fl ? " " : "", fds[a], shown);
                }
            }
            snprintf(stdio, sizeof stdio, null012 == 3 ? "all /dev/null" : "%d of 3 /dev/null", null012);
            /* session */
            char stb[1024];
            snprintf(p, sizeof p, "/proc/%d/stat", (int)d);
            slurp(p, stb, sizeof stb);
            char *rp = strrchr(stb, ')');
            int ppid = 0, pgrp = 0, sid = 0, tty = 0;
            if (rp) sscanf(rp + 2, "%*c %d %d %d %d", &ppid, &pgrp, &sid, &tty);
            snprintf(sess, sizeof sess, "%s", sid == d ? "YES" : "no");
            lock_info(pf, lk, sizeof lk);
            struct stat sst;
            if (stat(pf, &sst) == 0) snprintf(mode, sizeof mode, "%04o", sst.st_mode & 07777);
            snprintf(pidok, sizeof pidok, "%s", read_pidfile(pf) == d ? "yes" : "NO");
        }
        kill_tagged(s1.tag, d);
        char s1note[160] = "";
        if (!s1.ok)
            snprintf(s1note, sizeof s1note, "start FAILED (%s %d)", s1.timed_out ? "timeout" : "status",
                     s1.timed_out ? 0 : s1.status);

        /* S2: kill -9 -> stale pid file? -> restart works? -> SIGTERM removes it? */
        char stale[32] = "-", restart[96] = "-", termrm[32] = "-";
        if (d) {
            kill_wait(d, SIGKILL, 2);
            struct stat sst;
            int exists = stat(pf, &sst) == 0;
            snprintf(stale, sizeof stale, "%s", exists ? "left behind" : "removed");
            sleep_for(0.05);
            snprintf(log, sizeof log, "%s/%s.check-restart.log", dir, r->name);
            unlink(log);
            struct lopts o2 = { .log = log };
            char pf2[PATH_MAX];
            pidfile_path(pf2, sizeof pf2, r);
            /* run_once unlinks the pid file first: restart by hand instead */
            drain_inotify();
            double t0 = now();
            pid_t p = spawn_row(r, pf2, &o2, tag, sizeof tag);
            int st = 0;
            pid_t w = wait_bounded(p, &st, (int)timeout, NULL);
            if (w == -2) kill_tracked(p, &st);
            pid_t d2 = wait_ready(pf2, p, now() + 3);
            if (d2 == d) d2 = 0;
            char why[64];
            first_line(log, why, sizeof why);
            if (w == -2) snprintf(restart, sizeof restart, "HANG (killed after %.0fs)", timeout);
            else if (d2 && WIFEXITED(st) && !WEXITSTATUS(st)) snprintf(restart, sizeof restart, "ok (%.0f ms)", (now() - t0) * 1e3);
            else snprintf(restart, sizeof restart, "FAILS: exit %d, %s", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
                          d2 ? "daemon up" : "no daemon");
            if (d2) kill_wait(d2, SIGKILL, 2);
            kill_tagged(tag, 0);
            unlink(pf);
            /* SIGTERM on a fresh instance: does the daemon remove its pid file? */
            struct lopts o5 = {0};
            struct result s5 = run_once(r, &o5, timeout, 1);
            if (s5.daemon) {
                sleep_for(0.3);
                kill_wait(s5.daemon, SIGTERM, 3);
                sleep_for(0.05);
                snprintf(termrm, sizeof termrm, "%s", stat(pf, &sst) == 0 ? "no (left)" : "yes");
            }
            kill_tagged(s5.tag, 0);
            unlink(pf);
        }

        /* S3: nonexistent work dir */
        unlink(pf);
        snprintf(log, sizeof log, "%s/%s.check-chdir.log", dir, r->name);
        unlink(log);
        struct lopts o3 = { .log = log, .extra = "/nonexistent/dmnbench-wd" };
        double t0 = now();
        pid_t p = spawn_row(r, pf, &o3, tag, sizeof tag);
        int st = 0;
        double t1 = 0;
        pid_t w = wait_bounded(p, &st, (int)timeout, &t1);
        double el = (w == -2 ? now() : t1) - t0;
        if (w == -2) kill_tracked(p, &st);
        sleep_for(0.5);
        pid_t left[64];
        int nleft = 0, nl = find_tagged(tag, left, 64);
        for (int k = 0; k < nl; k++) if (alive(left[k])) nleft++;
        char msg[128], chd[320];
        first_line(log, msg, sizeof msg);
        if (w == -2) snprintf(chd, sizeof chd, "HANG (killed after %.0fs)", timeout);
        else snprintf(chd, sizeof chd, "exit %d in %.0f ms, %s%s", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
                      el * 1e3, msg, nleft ? ", process LEFT RUNNING" : "");
        kill_tagged(tag, 0);
        unlink(pf);

        /* S4: pid file held by a running instance */
        struct lopts o4a = {0};
        struct result a = run_once(r, &o4a, timeout, 1);
        char lockd[360] = "-";
        if (a.daemon) {
            sleep_for(0.3);
            snprintf(log, sizeof log, "%s/%s.check-locked.log", dir, r->name);
            unlink(log);
            struct lopts o4b = { .log = log };
            char tagb[64];
            t0 = now();
            p = spawn_row(r, pf, &o4b, tagb, sizeof tagb);
            w = wait_bounded(p, &st, (int)timeout, &t1);
            el = (w == -2 ? now() : t1) - t0;
            if (w == -2) kill_tracked(p, &st);
            sleep_for(1);
            nleft = 0;
            nl = find_tagged(tagb, left, 64);
            for (int k = 0; k < nl; k++) if (alive(left[k])) nleft++;
            first_line(log, msg, sizeof msg);
            pid_t now_in = read_pidfile(pf);
            const char *pfs = now_in == a.daemon ? "kept" : now_in ? "OVERWRITTEN" : "EMPTIED/REMOVED";
            if (w == -2) snprintf(lockd, sizeof lockd, "HANG (killed after %.0fs)", timeout);
            else snprintf(lockd, sizeof lockd, "exit %d in %.0f ms, %s; pid file %s%s%s",
                          WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), el * 1e3, msg, pfs,
                          nleft ? "; 2nd daemon LEFT RUNNING" : "", alive(a.daemon) ? "" : "; 1st daemon DIED");
            kill_tagged(tagb, 0);
            kill_wait(a.daemon, SIGKILL, 2);
            kill_tagged(a.tag, 0);
        } else {
            snprintf(lockd, sizeof lockd, "(first instance failed to start)");
        }
        kill_tagged(tag, 0);
        unlink(pf);

        snprintf(tabA[i], sizeof tabA[i], "| %s | %s | %s | %s | %s | %s |", r->name, chd, lockd, stale, restart, termrm);
        snprintf(tabB[i], sizeof tabB[i], "| %s |%s %s | %s | %s | %s | %s | %s | %s | %s | %s | %s %s | %s | %s / %s | %s |",
                 r->name, s1note, umaskv, cwd, core, sigblk, sigign, fd100 < 0 ? "?" : fd100 ? "KEPT OPEN" : "closed",
                 fdl, stdio, sess, lk, mode, pidok, rss, hwm, thr);
        fprintf(stderr, "check %s done\n", r->name);
    }
    printf("### Error handling (launcher: plain exec, stderr captured)\n\n");
    printf("| peer | nonexistent work dir: original's exit, its message | pid file held by a running instance: 2nd original's exit, message | pid file after kill -9 | restart after kill -9 | SIGTERM removes pid file |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int i = 0; i < nrows; i++) puts(tabA[i]);
    printf("\n### Daemon state (launched with umask 022, SIGUSR1 blocked, SIGHUP ignored, fd 100 open)\n\n");
    printf("| peer | Umask | cwd | core limit | SigBlk | SigIgn | inherited fd 100 | open fds | stdio | session leader | pid-file lock, mode | pid file = daemon | VmRSS / VmHWM | threads |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < nrows; i++) puts(tabB[i]);
    unlink(marker);
    rm_wdir();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: dmnbench time|once|strace|timev|check [options] NAME=CMD... (see source header)\n");
        return 2;
    }
    const char *mode = argv[1];
    optind = 2;
    /* launches inherit nothing from whoever started dmnbench but 0-2 (and,
       in check mode, the deliberate fd 100) */
    syscall(SYS_close_range, 3U, ~0U, 0U);
    if (!strcmp(mode, "time")) return mode_time(argc, argv);
    if (!strcmp(mode, "once")) return mode_once(argc, argv);
    if (!strcmp(mode, "strace")) return mode_strace(argc, argv);
    if (!strcmp(mode, "timev")) return mode_timev(argc, argv);
    if (!strcmp(mode, "check")) return mode_check(argc, argv);
    die("unknown mode %s", mode);
    return 2;
}
