/*
 * ninestage.c - hand-written C doing exactly pandaemonium's default nine
 * stages (reference peer: "the library's job, no library").
 *
 *   ninestage /ABS/PIDFILE [WORKDIR]        (WORKDIR defaults to "/")
 *
 * optimal.c is the cheapest program that does the benchmark's job.  This
 * one does the same job the way the library does it by default, with the
 * same system calls in the same order, so that "ours / c-ninestage" is
 * the cost of the library itself and "c-ninestage / c-optimal" the cost
 * of the extra care that the default stages take.  What it adds over
 * optimal.c:
 *   - stdout and stderr of the set-up are captured on two more pipes and
 *     handed back to the original process (relayed to its own 1 and 2);
 *   - the original reaps the intermediate process (waitpid);
 *   - the report is a fixed-layout record with a footer, and EOF before
 *     "stage 9 done" is a failure, not success;
 *   - the pid file is opened with O_NOFOLLOW, locked with flock (which,
 *     unlike fcntl locks, belongs to the open file and survives fork), the
 *     holder's pid is named on conflict, and a dev/ino check catches a
 *     file that was replaced between open and lock;
 *   - stage 7 resets every signal disposition, not only the mask;
 *   - stdio is replaced last (stage 9), so that stage 9 failures are still
 *     reported, and the daemon removes its pid file only if it is still
 *     its own.
 *
 * The stages, their defaults and the process each runs in:
 *
 *   original  pipe2 x3 (status, stdout capture, stderr capture), fork,
 *             waitpid(intermediate), then read the status pipe until a
 *             "stage 9 done" record or a failure record (stage + errno),
 *             draining the capture pipes; exit 0, or print
 *             "ninestage: stage N (name): DETAIL: STRERROR (os error E)"
 *             and exit 1.
 *   1 detach  (first child)  capture pipes onto fds 1/2, setsid, fork;
 *             the intermediate process _exit(0)s.
 *   then, in the daemon (grandchild):
 *   2 core dumps         setrlimit(RLIMIT_CORE, {0, 0})
 *   3 user and group     default: no change, nothing to do
 *   4 umask              umask(077)
 *   5 working directory  chdir(WORKDIR or "/")
 *   6 pid file           open(O_RDWR|O_CREAT|O_NOFOLLOW|O_CLOEXEC, 0644),
 *                        flock(LOCK_EX|LOCK_NB) (EWOULDBLOCK: "already
 *                        running (pid N)", N read from the file), fstat +
 *                        stat dev/ino check, ftruncate, write "PID\n"
 *   7 signals            empty mask; every disposition but KILL/STOP to
 *                        SIG_DFL; TSTP/TTIN/TTOU ignored; SIGTERM handler
 *   8 close fds          close_range from 3 to ~0 around the kept fds
 *                        (status pipe, pid file); 0-2 are the capture pipes
 *                        and stdin and stay open until stage 9
 *   9 stdio              /dev/null onto 0, 1 and 2 (this also closes the
 *                        capture pipes), then write "stage 9 done" and
 *                        close the status pipe, last.
 *   run: sleep until SIGTERM; remove the pid file if it is still ours; exit 0.
 *
 * Between fork and the end of stage 9 only async-signal-safe calls are
 * made (plus close_range and flock, which are plain system calls), and
 * nothing is allocated anywhere in the program: all buffers are fixed and
 * on the stack or static.  0, 1 and 2 are assumed open at launch, as any
 * launcher provides (the library checks this; a reference need not).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* ---------------------------------------------------------------- stages */

enum { ST_DETACH = 1, ST_CORE, ST_IDS, ST_UMASK, ST_CWD, ST_PIDFILE,
       ST_SIGNALS, ST_FDS, ST_STDIO, ST_LAST = ST_STDIO };

static const char *const stage_name[ST_LAST + 1] = {
    "?", "detach", "core dumps", "user and group", "umask",
    "working directory", "pid file", "signals", "close fds", "stdio" };

/* ------------------------------------------------------- the report record
 *
 * A fixed layout, encoded and decoded byte by byte (no struct copies, so
 * no padding or endianness questions), far below PIPE_BUF so that every
 * write(2) of a record is atomic:
 *
 *   [0]      stage (1..9)
 *   [1]      kind  (KIND_*)
 *   [2..5]   errno, i32 big-endian (0 if none)
 *   [6]      detail length (<= DETAIL_MAX)
 *   [7..]    detail bytes, e.g. "chdir /x" (the rest zero)
 *   last 4   footer "PDMN": a record without it is garbage
 */
enum { KIND_DONE = 0, KIND_OS = 1, KIND_RUNNING = 2 };
enum { DETAIL_MAX = 96, REC_LEN = 7 + DETAIL_MAX + 4 };
static const char footer[4] = { 'P', 'D', 'M', 'N' };

_Static_assert(REC_LEN <= PIPE_BUF, "a record must be written atomically");

/* status pipe write end, held by the first child and the daemon */
static int status_fd = -1;

/* append NUL-terminated s to buf[*len..cap), truncating */
static void put(char *buf, size_t *len, size_t cap, const char *s)
{
    while (*s && *len < cap) buf[(*len)++] = *s++;
}

/* decimal of v into buf[*len..cap): no stdio after fork */
static void put_u(char *buf, size_t *len, size_t cap, unsigned long v)
{
    char t[24];
    int n = 0;
    do t[n++] = (char)('0' + v % 10); while ((v /= 10) && n < (int)sizeof t);
    while (n && *len < cap) buf[(*len)++] = t[--n];
}

/* send one record on the status pipe.  A short or failed write cannot be
 * reported anywhere: the original then sees EOF before "stage 9 done",
 * which it treats as a failure. */
static void send_record(int stage, int kind, int err, const char *detail, size_t dlen)
{
    unsigned char r[REC_LEN] = {0};
    uint32_t e = (uint32_t)err;
    r[0] = (unsigned char)stage;
    r[1] = (unsigned char)kind;
    r[2] = (unsigned char)(e >> 24);
    r[3] = (unsigned char)(e >> 16);
    r[4] = (unsigned char)(e >> 8);
    r[5] = (unsigned char)e;
    if (dlen > DETAIL_MAX) dlen = DETAIL_MAX;
    r[6] = (unsigned char)dlen;
    memcpy(r + 7, detail, dlen);
    memcpy(r + REC_LEN - 4, footer, 4);
    ssize_t n;
    do n = write(status_fd, r, sizeof r); while (n < 0 && errno == EINTR);
}

/* report "stage: OP ARG: errno" and end this process (first child or
 * daemon).  errno is read first, before anything can change it. */
static _Noreturn void fail(int stage, const char *op, const char *arg)
{
    int err = errno;
    char d[DETAIL_MAX];
    size_t l = 0;
    put(d, &l, sizeof d, op);
    if (arg) { put(d, &l, sizeof d, " "); put(d, &l, sizeof d, arg); }
    send_record(stage, KIND_OS, err, d, l);
    _exit(1);
}

/* ------------------------------------------------- daemon-side stage code */

static const char *pidpath;
static int pid_fd = -1;
static volatile sig_atomic_t term_seen;

/* SIGTERM: only set a flag (async-signal-safe by construction, errno not
 * touched); the main loop does the clean-up. */
static void on_term(int sig)
{
    (void)sig;
    term_seen = 1;
}

/* is the file at `pidpath` still the one open as pid_fd? */
static int pidfile_is_ours(void)
{
    struct stat a, b;
    return fstat(pid_fd, &a) == 0 && stat(pidpath, &b) == 0 &&
           a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* stage 6: open, lock, verify, truncate, write.  The lock is held for the
 * daemon's life by keeping pid_fd open (stage 8 keeps it). */
static void stage_pidfile(void)
{
    for (int attempt = 0;; attempt++) {
        pid_fd = open(pidpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (pid_fd < 0) fail(ST_PIDFILE, "open", pidpath);
        if (flock(pid_fd, LOCK_EX | LOCK_NB) < 0) {
            if (errno != EWOULDBLOCK) fail(ST_PIDFILE, "flock", pidpath);
            /* held: name the holder from the file's contents (flock has no
               F_GETLK).  It may be empty if the holder has not written yet. */
            char b[32], d[DETAIL_MAX];
            ssize_t n = pread(pid_fd, b, sizeof b - 1, 0);
            unsigned long pid = 0;
            for (ssize_t i = 0; i < n && b[i] >= '0' && b[i] <= '9'; i++)
                pid = pid * 10 + (unsigned long)(b[i] - '0');
            size_t l = 0;
            put(d, &l, sizeof d, "already running (pid ");
            if (pid) put_u(d, &l, sizeof d, pid); else put(d, &l, sizeof d, "unknown");
            put(d, &l, sizeof d, ")");
            send_record(ST_PIDFILE, KIND_RUNNING, EWOULDBLOCK, d, l);
            _exit(1);
        }
        /* A stopping instance may have unlinked the file between our open
           and our lock: then we hold a lock on a file nobody can see.
           Compare what we opened with what the path names now. */
        if (pidfile_is_ours()) break;
        close(pid_fd);
        if (attempt == 2) { errno = ESTALE; fail(ST_PIDFILE, "pid file replaced while locking", pidpath); }
    }
    char b[24];
    size_t l = 0;
    put_u(b, &l, sizeof b, (unsigned long)getpid());
    b[l++] = '\n';
    if (ftruncate(pid_fd, 0) < 0) fail(ST_PIDFILE, "ftruncate", pidpath);
    if (write(pid_fd, b, l) != (ssize_t)l) fail(ST_PIDFILE, "write", pidpath);
}

/* stage 7: a clean signal state whatever the launcher left (nohup's
 * ignored SIGHUP, a blocked mask, ...), then the daemon's own handlers. */
static void stage_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) fail(ST_SIGNALS, "sigprocmask", NULL);
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    for (int s = 1; s < _NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        /* the C library reserves a few real-time signals for itself
           (glibc 32-33, musl 32-34) and refuses them with EINVAL */
        if (sigaction(s, &dfl, NULL) < 0 && errno != EINVAL) fail(ST_SIGNALS, "sigaction", NULL);
    }
    struct sigaction ign = { .sa_handler = SIG_IGN };
    if (sigaction(SIGTSTP, &ign, NULL) < 0 || sigaction(SIGTTIN, &ign, NULL) < 0 ||
        sigaction(SIGTTOU, &ign, NULL) < 0)
        fail(ST_SIGNALS, "sigaction SIG_IGN", NULL);
    /* no SA_RESTART: SIGTERM must end the wait below */
    struct sigaction term = { .sa_handler = on_term };
    if (sigaction(SIGTERM, &term, NULL) < 0) fail(ST_SIGNALS, "sigaction SIGTERM", NULL);
}

/* stage 8: close every fd >= 3 except the kept ones, with close_range
 * over the gaps: [3, k0), (k0, k1), (k1, ~0].  The keep list is sorted
 * here (two entries); the library gets it sorted before fork. */
static void stage_fds(void)
{
    unsigned keep[2] = { (unsigned)status_fd, (unsigned)pid_fd };
    if (keep[0] > keep[1]) { unsigned t = keep[0]; keep[0] = keep[1]; keep[1] = t; }
    unsigned lo = 3;
    for (int i = 0; i < 2; i++) {
        if (keep[i] > lo && syscall(SYS_close_range, lo, keep[i] - 1, 0U) < 0)
            fail(ST_FDS, "close_range", NULL);
        if (keep[i] + 1 > lo) lo = keep[i] + 1;
    }
    if (syscall(SYS_close_range, lo, ~0U, 0U) < 0) fail(ST_FDS, "close_range", NULL);
}

/* stage 9: /dev/null onto 0, 1, 2.  dup2 onto 1 and 2 closes the capture
 * pipes there, which is what ends the original's capture (EOF). */
static void stage_stdio(void)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0) fail(ST_STDIO, "open", "/dev/null");
    for (int t = 0; t <= 2; t++)
        if (fd != t && dup2(fd, t) != t) fail(ST_STDIO, "dup2", "/dev/null");
    if (fd > 2) close(fd);
}

static _Noreturn void daemon_main(const char *wd)
{
    /* 2: core dumps off, soft and hard */
    struct rlimit rl = { 0, 0 };
    if (setrlimit(RLIMIT_CORE, &rl) < 0) fail(ST_CORE, "setrlimit RLIMIT_CORE", NULL);
    /* 3: user and group: the default changes nothing */
    /* 4 */
    umask(077);
    /* 5 */
    if (chdir(wd) < 0) fail(ST_CWD, "chdir", wd);
    /* 6, 7, 8, 9 */
    stage_pidfile();
    stage_signals();
    stage_fds();
    stage_stdio();
    /* done: the record, then the status pipe closes last */
    send_record(ST_STDIO, KIND_DONE, 0, "stage 9 done", 12);
    close(status_fd);

    /* run: wait for SIGTERM without the check-then-pause race: SIGTERM is
       blocked while the flag is tested and unblocked only inside
       sigsuspend, atomically with the sleep. */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    while (!term_seen) sigsuspend(&old);
    /* remove the pid file only if the path still names our file (another
       instance may have replaced it), then close it: that drops the lock */
    if (pidfile_is_ours()) unlink(pidpath);
    close(pid_fd);
    _exit(0);
}

/* -------------------------------------------------------- original process */

enum { CAP = 4096 };
struct capture { char buf[CAP]; size_t len; int truncated; };

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

/* read what is there into c; returns 0 at EOF (or error), 1 otherwise */
static int drain(int fd, struct capture *c)
{
    char scratch[512];
    char *dst = c->len < CAP ? c->buf + c->len : scratch;
    size_t room = c->len < CAP ? CAP - c->len : sizeof scratch;
    ssize_t n = read(fd, dst, room);
    if (n < 0) return errno == EINTR || errno == EAGAIN;
    if (n == 0) return 0;
    if (dst == scratch) c->truncated = 1; else c->len += (size_t)n;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] != '/') {
        static const char u[] = "usage: ninestage /ABS/PIDFILE [WORKDIR]\n";
        write_all(2, u, sizeof u - 1);
        return 2;
    }
    pidpath = argv[1];
    const char *wd = argc > 2 ? argv[2] : "/";

    /* stage 1, original side: three CLOEXEC pipes, then fork */
    int st[2], out[2], err[2];
    char msg[512];
    if (pipe2(st, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        int n = snprintf(msg, sizeof msg, "ninestage: stage 1 (detach): pipe2: %s (os error %d)\n", strerror(errno), errno);
        write_all(2, msg, (size_t)n);
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        int n = snprintf(msg, sizeof msg, "ninestage: stage 1 (detach): fork: %s (os error %d)\n", strerror(errno), errno);
        write_all(2, msg, (size_t)n);
        return 1;
    }

    if (child == 0) {
        /* first child: set-up output goes to the capture pipes; keep only
           the write ends that are needed (fds 1, 2 and the status pipe) */
        status_fd = st[1];
        close(st[0]);
        close(out[0]);
        close(err[0]);
        if (dup2(out[1], 1) != 1 || dup2(err[1], 2) != 2) fail(ST_DETACH, "dup2", "capture pipe");
        close(out[1]);
        close(err[1]);
        if (setsid() < 0) fail(ST_DETACH, "setsid", NULL);
        pid_t g = fork();
        if (g < 0) fail(ST_DETACH, "fork", NULL);
        if (g > 0) _exit(0);   /* intermediate: the original reaps it */
        daemon_main(wd);
    }

    /* original: keep the read ends only, reap the intermediate process */
    close(st[1]);
    close(out[1]);
    close(err[1]);
    int ws = 0;
    while (waitpid(child, &ws, 0) < 0 && errno == EINTR) {}

    /* read the status record and drain both capture pipes until EOF.  The
       daemon closes the capture pipes (stage 9) before it sends "stage 9
       done", and a failing process exits right after its record, so the
       capture pipes always reach EOF. */
    static struct capture cout, cerr;
    unsigned char rec[REC_LEN];
    size_t got = 0;
    int status_open = 1, out_open = 1, err_open = 1;
    while (status_open || out_open || err_open) {
        struct pollfd p[3] = { { status_open ? st[0] : -1, POLLIN, 0 },
                               { out_open ? out[0] : -1, POLLIN, 0 },
                               { err_open ? err[0] : -1, POLLIN, 0 } };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (status_open && p[0].revents) {
            ssize_t n = read(st[0], rec + got, sizeof rec - got);
            if (n > 0) got += (size_t)n;
            if ((n < 0 && errno != EINTR) || n == 0 || got == sizeof rec) status_open = 0;
        }
        if (out_open && p[1].revents) out_open = drain(out[0], &cout);
        if (err_open && p[2].revents) err_open = drain(err[0], &cerr);
    }

    /* relay what the set-up printed, then the outcome */
    write_all(1, cout.buf, cout.len);
    write_all(2, cerr.buf, cerr.len);
    if (cout.truncated || cerr.truncated)
        write_all(2, "ninestage: (set-up output truncated)\n", 37);

    int n;
    if (got != sizeof rec || memcmp(rec + REC_LEN - 4, footer, 4) != 0) {
        /* EOF before a whole record: the daemon (or the intermediate) died */
        if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
            n = snprintf(msg, sizeof msg, "ninestage: daemon exited during set-up without a report\n");
        else
            n = snprintf(msg, sizeof msg, "ninestage: stage 1 (detach): intermediate process %s %d without a report\n",
                         WIFEXITED(ws) ? "exited with status" : "killed by signal",
                         WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
        write_all(2, msg, (size_t)n);
        return 1;
    }
    int stage = rec[0], kind = rec[1];
    int e = (int)((uint32_t)rec[2] << 24 | (uint32_t)rec[3] << 16 | (uint32_t)rec[4] << 8 | rec[5]);
    int dlen = rec[6] <= DETAIL_MAX ? rec[6] : DETAIL_MAX;
    if (kind == KIND_DONE && stage == ST_STDIO) return 0;
    const char *name = stage >= 1 && stage <= ST_LAST ? stage_name[stage] : "?";
    if (kind == KIND_RUNNING)
        n = snprintf(msg, sizeof msg, "ninestage: stage %d (%s): %.*s, lock held on %s (os error %d)\n", stage,
                     name, dlen, (const char *)rec + 7, pidpath, e);
    else
        n = snprintf(msg, sizeof msg, "ninestage: stage %d (%s): %.*s: %s (os error %d)\n", stage, name,
                     dlen, (const char *)rec + 7, strerror(e), e);
    write_all(2, msg, n < (int)sizeof msg ? (size_t)n : sizeof msg - 1);
    return 1;
}
