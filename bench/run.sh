#!/usr/bin/env bash
# run.sh - build (if needed) and measure every daemonization peer side by
# side; prints markdown and keeps it, with the raw data, in results/<UTC>/.
#
#   ./run.sh [--add 'NAME=CMD [ARG...]']... [--only REGEX] [--skip LIST]
#            [--runs N] [--runs-limits N] [--limits LO,HI] [--base LIST]
#            [--out DIR] [--no-build] [--no-rt]
#
#   --add ROW      one more row (repeatable), e.g. --add 'ours=/path/to/example'
#                  ROW is NAME=CMD [ARG...] split on blanks; the harness appends
#                  the pid-file path (and, for the chdir check, a work dir), so
#                  the program is run as: CMD... /abs/PIDFILE [WORKDIR]
#                  Also: DMNBENCH_ADD='a=CMD;b=CMD' (';'-separated rows).
#   --only REGEX   keep the rows whose NAME matches (the base rows always stay)
#   --skip LIST    comma list of sections: latency,limits,strace,size,timev,check
#   --runs N       runs per peer for start latency (default 21, + 2 warm-up)
#   --runs-limits N  runs per peer and fd limit in the fd-limit section (default 11)
#   --limits LO,HI the two RLIMIT_NOFILE values of the fd-limit section
#                  (default 1024 and 1048576, or the hard limit when 1048576
#                  cannot be set; the slope is extrapolated to 1048576)
#   --base LIST    the ratios' yardsticks, comma list, one "x NAME" column
#                  each (default c-optimal-musl,c-ninestage-musl: the
#                  minimal C start and the library's nine stages in C)
#   --out DIR      where to keep report.md and the raw files
#   --no-rt        do not run the timed sections under SCHED_FIFO (chrt -f 10)
#
# The contract a row's program must keep (the peers' and a future "ours"):
#   argv[1] = absolute pid-file path, optional argv[2] = work dir (default
#   "/"; both appended after the row's words); daemonize with umask 077, core dumps off, fds closed,
#   stdio on /dev/null, pid file written (locked where supported); the
#   original process exits 0 once the daemon is set up (or right away, if it
#   cannot wait: the harness then waits for the pid file) and non-zero with a
#   message on stderr when set-up fails; the daemon then sleeps >= 30 s or
#   until SIGTERM.  Environment: DMNBENCH_DIR = directory for pid files
#   (default /tmp); QUIET_PSI / QUIET_MAX: before each timed section wait up
#   to QUIET_MAX s (default 60) for CPU pressure avg10 below QUIET_PSI %
#   (default 10), because the machine is shared.  Only public tools are
#   used: gcc, strace, /usr/bin/time, prlimit, chrt, python3.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${DMN_BUILD:-$BENCH/build}
VENV=${DMN_VENV:-/tmp/venv-peers}
RUNS=21
RUNS_LIMITS=11
BASES=c-optimal-musl,c-ninestage-musl
LIMITS=''
ONLY=''
SKIP=''
OUT=''
DO_BUILD=1
USE_RT=1
ADD=()

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while (($#)); do
    case $1 in
        --add) ADD+=("$2"); shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --skip) SKIP=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --runs-limits) RUNS_LIMITS=$2; shift 2 ;;
        --base) BASES=$2; shift 2 ;;
        --limits) LIMITS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --no-build) DO_BUILD=0; shift ;;
        --no-rt) USE_RT=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; usage 2 ;;
    esac
done
if [ -n "${DMNBENCH_ADD:-}" ]; then
    IFS=';' read -r -a extra <<<"$DMNBENCH_ADD"
    for r in "${extra[@]}"; do [ -n "$r" ] && ADD+=("$r"); done
fi
skip() { [[ ",$SKIP," == *",$1,"* ]]; }
psi() { sed -n 's/^some avg10=\([0-9.]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null || echo '?'; }
wait_quiet() {   # the machine is shared: start timed sections when it is calm
    local t=0 max=${QUIET_MAX:-60} lim=${QUIET_PSI:-10} p
    while p=$(psi) && [ -n "$p" ] && [ "$p" != '?' ] && [ "${p%.*}" -ge "$lim" ] && [ "$t" -lt "$max" ]; do
        sleep 5; t=$((t + 5))
    done
    echo "_CPU pressure (avg10) at start: $(psi) % after waiting ${t} s for < ${lim} %_"
    echo
}

((DO_BUILD)) && "$BENCH/peers/build.sh"

R=$BUILD/rust-target/x86_64-unknown-linux-musl/release
PY=$VENV/bin/python
ALL_ROWS=(
    "c-optimal-musl=$BUILD/c/optimal-musl"
    "c-optimal-glibc=$BUILD/c/optimal-glibc"
    "c-ninestage-musl=$BUILD/c/ninestage-musl"
    "c-ninestage-glibc=$BUILD/c/ninestage-glibc"
    "c-daemon3-musl=$BUILD/c/daemon3-musl"
    "c-daemon3-glibc=$BUILD/c/daemon3-glibc"
    "rs-daemonize=$R/rs_daemonize"
    "rs-fork-checked=$R/rs_fork_checked"
    "rs-fork-daemon=$R/rs_fork_daemon"
    "py-pandaemonium=$PY $BENCH/peers/py/py_pandaemonium.py"
    "py-python-daemon=$PY $BENCH/peers/py/py_python_daemon.py"
    "${ADD[@]}"
)
is_base() { [[ ",$BASES," == *",$1,"* ]]; }
ROWS=()
for r in "${ALL_ROWS[@]}"; do
    n=${r%%=*}
    if is_base "$n" || [ -z "$ONLY" ] || [[ $n =~ $ONLY ]]; then ROWS+=("$r"); fi
done
BASE_ARG=()   # -b per base, in --base order, for the bases that are rows
IFS=',' read -r -a base_list <<<"$BASES"
for b in "${base_list[@]}"; do
    for r in "${ROWS[@]}"; do [ "${r%%=*}" = "$b" ] && BASE_ARG+=(-b "$b"); done
done

OUT=${OUT:-$BENCH/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"/{strace,strace-low,timev,check}
D=$BUILD/dmnbench
exec > >(tee "$OUT/report.md")
TEE=$!

PIDDIR=${DMNBENCH_DIR:-/tmp}
HARD=$(ulimit -Hn)
BIG=1048576
if prlimit --nofile=$BIG:$BIG true 2>/dev/null; then HIGH=$BIG; HIGH_NOTE="set"; else
    HIGH=$HARD; HIGH_NOTE="NOT settable here (no CAP_SYS_RESOURCE: hard limit stays $HARD), extrapolated"; fi
LOW=1024
if [ -n "$LIMITS" ]; then
    LOW=${LIMITS%%,*}; HIGH=${LIMITS#*,}
    for L in "$LOW" "$HIGH"; do
        prlimit --nofile="$L:$L" true 2>/dev/null ||
            { echo "run.sh: --limits: RLIMIT_NOFILE $L cannot be set here (hard limit $HARD)" >&2; exit 2; }
    done
    if [ "$HIGH" = "$BIG" ]; then HIGH_NOTE="set"; else HIGH_NOTE="not measured (--limits $LIMITS), extrapolated"; fi
fi
# Timed sections run under SCHED_FIFO when allowed: the box is shared, and a
# CPU hog of another tenant otherwise adds a scheduler slice to every
# wake-up in the fork/exit/notify chain (ms of noise on a sub-ms start).
RT=()
if ((USE_RT)) && chrt -f 10 true 2>/dev/null; then RT=(chrt -f 10); fi

echo "# Daemonization peers: baseline run"
echo
echo "- date (UTC): $(date -u '+%Y-%m-%d %H:%M:%S')"
echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r); shared and noisy: load $(cut -d' ' -f1-3 /proc/loadavg), cpu pressure $(sed -n 's/^some //p' /proc/pressure/cpu 2>/dev/null | cut -d' ' -f1-2)"
echo "- toolchain: $(gcc --version | head -1); musl $(dpkg-query -W -f='${Version}\n' musl 2>/dev/null | head -1 || echo '?'); $(rustc --version); Python $("$PY" -c 'import sys;print(sys.version.split()[0])'); $(strace -V | head -1)"
echo "- timed sections: ${RT[*]:-normal scheduling} (section 1b: normal scheduling, for reference)
- pid files in $PIDDIR ($(stat -f -c %T "$PIDDIR")); RLIMIT_NOFILE soft/hard $(ulimit -Sn)/$HARD; 1048576 limit: $HIGH_NOTE"
echo "- ratio columns against: ${BASES//,/, }"
echo "- rows: $(for r in "${ROWS[@]}"; do printf '`%s` ' "${r%%=*}"; done)"
echo

if ! skip latency; then
    echo "## 1. Start latency (launch -> original exited AND pid file sealed), default fd limit"
    echo
    "${RT[@]}" "$D" time -n "$RUNS" -w 2 "${BASE_ARG[@]}" -o "$OUT/latency.csv" "${ROWS[@]}"
    echo
    if ((${#RT[@]})); then
        echo "## 1b. The same at normal priority (what the shared box gives; 'calm' runs had no CPU stall)"
        echo
        wait_quiet
        "$D" time -n "$RUNS" -w 2 "${BASE_ARG[@]}" -o "$OUT/latency-normal-prio.csv" "${ROWS[@]}"
        echo
    fi
fi

if ! skip limits; then
    echo "## 2. Start latency vs RLIMIT_NOFILE (closing inherited fds)"
    echo
    # The two limits alternate round by round (one interleaved round of every row at
    # $LOW, then one at $HIGH, ...), so load that drifts during the section weighs on
    # both alike; one section per limit made every row, C included, move by 10-35 %.
    echo "runs per peer and limit: $RUNS_LIMITS (+1 warm-up), the limits $LOW and $HIGH alternating round by round (prlimit); SCHED_FIFO unless --no-rt"
    echo
    for L in "$LOW" "$HIGH"; do : > "$OUT/latency-nofile-$L.csv"; done
    for r in $(seq 1 "$RUNS_LIMITS"); do
        for L in "$LOW" "$HIGH"; do
            warm=0; [ "$r" = 1 ] && warm=1
            prlimit --nofile="$L:$L" "${RT[@]}" "$D" time -n 1 -w "$warm" "${BASE_ARG[@]}" \
                -o "$OUT/latency-nofile-chunk.csv" "${ROWS[@]}" > /dev/null
            if [ -s "$OUT/latency-nofile-$L.csv" ]; then
                tail -n +2 "$OUT/latency-nofile-chunk.csv"
            else
                cat "$OUT/latency-nofile-chunk.csv"
            fi >> "$OUT/latency-nofile-$L.csv"
        done
    done
    rm -f "$OUT/latency-nofile-chunk.csv"
    echo "### Scaling per 1000 fds of limit, and at nofile = $BIG"
    echo
    python3 - "$OUT/latency-nofile-$LOW.csv" "$OUT/latency-nofile-$HIGH.csv" "$LOW" "$HIGH" "$BIG" "${ROWS[@]%%=*}" <<'EOF'
import csv, statistics, sys
lo_f, hi_f, lo, hi, big = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
names = sys.argv[6:]   # the rows in their given order (the CSVs' rounds are rotated)
def load(f):
    wall, cpu, order = {}, {}, []
    for r in csv.DictReader(open(f)):
        if r['peer'] not in order:
            order.append(r['peer'])
        if r['ok'] == '1':
            wall.setdefault(r['peer'], []).append(float(r['latency_ms']))
            cpu.setdefault(r['peer'], []).append(float(r['cpu_original_ms']) + float(r['cpu_daemon_ms']))
    med = lambda d: {k: statistics.median(v) for k, v in d.items()}
    return med(wall), med(cpu), order
wa, ca, order = load(lo_f)
wb, cb, _ = load(hi_f)
order = [p for p in names if p in order] + [p for p in order if p not in names]
measured = hi == big
how = 'measured' if measured else 'extrapolated: wall @ %d + CPU slope x %d fds' % (hi, big - hi)
print(f"| peer | wall ms @ {lo} | wall ms @ {hi} | CPU ms @ {lo} | CPU ms @ {hi} | CPU us per 1000 fds of limit | wall ms @ {big} ({how}) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for p in order:
    if p not in wa or p not in wb:
        fa = 'fail' if p not in wa else '%.3f' % wa[p]
        fb = 'fail' if p not in wb else '%.3f' % wb[p]
        print(f"| {p} | {fa} | {fb} | | | | |")
        continue
    slope = (cb[p] - ca[p]) / (hi - lo) * 1000          # CPU ms per 1000 fds
    flat = slope <= 0 or abs(cb[p] - ca[p]) < max(0.5, 0.25 * ca[p])
    at_big = wb[p] if (measured or flat) else wb[p] + slope * (big - hi) / 1000
    print(f"| {p} | {wa[p]:.3f} | {wb[p]:.3f} | {ca[p]:.3f} | {cb[p]:.3f} | {slope * 1000:.1f}{' (flat)' if flat else ''} | {at_big:.1f} |")
EOF
    echo
fi

if ! skip strace; then
    echo "## 3. System calls of the whole start (strace -f -c; every process; the daemon is SIGKILLed in its sleep)"
    echo
    echo "### nofile = $(ulimit -Sn):$HARD (default)"
    echo
    "$D" strace -d "$OUT/strace" "${ROWS[@]}"
    echo
    echo "### Totals at nofile = $LOW:$LOW"
    echo
    prlimit --nofile="$LOW:$LOW" "$D" strace -d "$OUT/strace-low" "${ROWS[@]}" | cut -d'|' -f1-6 | sed 's/$/ |/'
    echo
fi

if ! skip size; then
    echo "## 4. Program size"
    echo
    echo "| peer | file | bytes | KiB | linkage | size-minimised build (opt-level z, LTO, panic=abort), KiB |"
    echo "|---|---|---:|---:|---|---:|"
    for r in "${ROWS[@]}"; do
        n=${r%%=*}; set -- ${r#*=}
        while [ "$1" = /usr/bin/env ] || [[ $1 == *=* ]]; do shift; done
        f=$1
        [ -e "$f" ] || f=$(command -v "$f" || echo "$f")
        if [[ $(basename "$f") == python* ]]; then
            case $2 in *pandaemonium*) mods=pandaemonium ;; *) mods="daemon lockfile" ;; esac
            libs=$("$f" - $mods <<'EOF'
import importlib.util, os
tot = 0
import sys
for m in sys.argv[1:]:
    s = importlib.util.find_spec(m)
    if s and s.origin:
        d = os.path.dirname(s.origin)
        for root, _, files in os.walk(d):
            tot += sum(os.path.getsize(os.path.join(root, x)) for x in files if x.endswith(".py"))
print(tot // 1024)
EOF
)
            echo "| $n | ${2#$BENCH/} (script; interpreter $(readlink -f "$f" | sed 's|.*/||')) | | | interpreted; library sources (${mods}): ${libs} KiB of .py | |"
            continue
        fi
        sz=$(stat -L -c %s "$f" 2>/dev/null || echo 0)
        info=$(file -bL "$f" | grep -o 'statically linked\|dynamically linked\|static-pie linked' | head -1)
        strip=$(file -bL "$f" | grep -o 'not stripped\|stripped' | head -1)
        minf=${f/\/release\//\/min\/}
        mins=""
        [ "$minf" != "$f" ] && [ -e "$minf" ] && mins=$(( $(stat -c %s "$minf") / 1024 ))
        echo "| $n | ${f#$BENCH/} | $sz | $((sz / 1024)) | $info, $strip | $mins |"
    done
    echo
fi

if ! skip timev; then
    echo "## 5. The original process under /usr/bin/time -v"
    echo
    "$D" timev -d "$OUT/timev" "${ROWS[@]}"
    echo
fi

if ! skip check; then
    echo "## 6. Correctness and daemon state"
    echo
    CHECK_ROWS=("${ROWS[@]}")
    for r in "${ROWS[@]}"; do
        [ "${r%%=*}" = rs-daemonize ] && CHECK_ROWS+=("rs-daemonize-crate-only=/usr/bin/env PEER_LIBONLY=1 ${r#*=}")
    done
    "$D" check -d "$OUT/check" "${CHECK_ROWS[@]}" 2>/dev/null
    echo
fi
echo "Raw data: ${OUT#$BENCH/}/ (latency*.csv, strace*/, timev/, check/*.log)"
exec >&-            # let tee see EOF and finish report.md before we return
wait "$TEE" 2>/dev/null || true
