#!/usr/bin/env python3
"""ci/bench_ready.py - launch -> "ready" as the launcher sees it, side by side.

    ci/bench_ready.py TOOL READY_DAEMON [--runs N] [--out FILE]

The same program, READY_DAEMON (examples/ready_daemon.rs, declaring readiness at once:
DELAY_MS 0), is started by two readiness-aware launchers, one round of each in turn:

    ours  TOOL start --pid-file P --notify=20 -- READY_DAEMON D 0
    ssd   start-stop-daemon --start --background --notify-await --notify-timeout 20
              --make-pidfile --pidfile P --exec READY_DAEMON -- D 0

Both give the program a NOTIFY_SOCKET and exit 0 once READY=1 arrived. A round is the
wall time from just before posix_spawn of the launcher to its exit (waitpid), then the
daemon (the pid in D) gets SIGTERM and is reaped here: this process is a child
subreaper, so no daemon outlives the round, and the next round starts with none.
Prints a markdown table: median, min-max, and the median of per-round ratios to ssd.
Exit status 1 if a launcher failed (its output is shown).
"""
import ctypes
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36


def usage():
    sys.exit(__doc__)


def reap_until(pid, deadline_s=20.0):
    """Reaps children until `pid` has been reaped; False if it outlived the deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            got, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if got == pid:
            return True
        if got == 0:
            time.sleep(0.001)
    return False


def drain():
    """Reaps every child that has ended, without waiting."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass
    except ChildProcessError:
        pass


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def one(argv, daemon_pid_file, tmp):
    """One launch: (seconds, None) or (None, why)."""
    out = os.path.join(tmp, "out")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2)])
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter_ns()
    os.close(fd)
    daemon = read_pid(daemon_pid_file)
    if daemon is not None:
        try:
            os.kill(daemon, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not reap_until(daemon):
            return None, f"daemon {daemon} outlived SIGTERM"
    drain()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        return None, f"{' '.join(argv)}: exit {code}: {open(out).read()}"
    if daemon is None:
        return None, f"{' '.join(argv)}: no daemon pid in {daemon_pid_file}"
    return (t1 - t0) / 1e9, None


def main():
    args = sys.argv[1:]
    runs, out_file = 41, None
    pos = []
    while args:
        a = args.pop(0)
        if a == "--runs":
            runs = int(args.pop(0))
        elif a == "--out":
            out_file = args.pop(0)
        elif a.startswith("-"):
            usage()
        else:
            pos.append(a)
    if len(pos) != 2:
        usage()
    tool, daemon = (os.path.abspath(p) for p in pos)
    ssd = shutil.which("start-stop-daemon") or "/sbin/start-stop-daemon"
    if not os.path.exists(ssd):
        sys.exit("bench_ready: start-stop-daemon not installed (Debian package dpkg)")
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("bench_ready: prctl(PR_SET_CHILD_SUBREAPER) failed")
    tmp = tempfile.mkdtemp(prefix="pdm-bench-ready-")
    rows = {
        "ours": lambda p, d: [tool, "start", "--pid-file", p, "--notify=20", "--", daemon, d, "0"],
        "ssd": lambda p, d: [ssd, "--start", "--background", "--notify-await", "--notify-timeout",
                             "20", "--make-pidfile", "--pidfile", p, "--exec", daemon, "--", d, "0"],
    }
    times = {name: [] for name in rows}
    failed = []
    try:
        for i in range(runs):
            order = list(rows) if i % 2 == 0 else list(reversed(rows))
            for name in order:
                p, d = os.path.join(tmp, f"{name}.pid"), os.path.join(tmp, f"{name}-daemon.pid")
                secs, why = one(rows[name](p, d), d, tmp)
                if why:
                    failed.append(f"{name}: {why}")
                else:
                    times[name].append(secs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = ["| launcher | ready ms (median) | min-max | x ssd (paired median) | rounds |", "|---|---:|---:|---:|---:|"]
    for name in rows:
        t = times[name]
        if not t:
            lines.append(f"| {name} | - | - | - | 0 |")
            continue
        pairs = [a / b for a, b in zip(t, times["ssd"])]
        lines.append(f"| {name} | {statistics.median(t) * 1e3:.3f} | {min(t) * 1e3:.3f}-{max(t) * 1e3:.3f} | "
                     f"{statistics.median(pairs):.2f} | {len(t)} |")
    text = "\n".join(lines) + "\n"
    text += ("\n_launch to the launcher's exit 0 after READY=1, the same program (ready_daemon, DELAY_MS 0) "
             f"under both, {runs} interleaved rounds: ours = `pandaemonium start --notify`, "
             "ssd = `start-stop-daemon --start --background --notify-await`._\n")
    for f in failed:
        text += f"\nFAILED: {f}\n"
    sys.stdout.write(text)
    if out_file:
        with open(out_file, "w") as f:
            f.write(text)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
