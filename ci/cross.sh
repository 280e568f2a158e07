#!/usr/bin/env bash
# Cross-architecture build + test under qemu-user, without Docker. Run from the crate directory:
#
#   ci/setup-cross.sh                 # once, as root (idempotent)
#   ci/cross.sh                       # all targets in ci/targets/*.env
#   ci/cross.sh <triple>...           # only these
#
# Per target (CROSS_JOBS targets at once, default 2; see below): source
# ci/targets/<triple>.env in a subshell, then
#   cargo $TOOLCHAIN test  $BUILD_STD --target <triple> --no-fail-fast $CROSS_TEST_ARGS
#   cargo $TOOLCHAIN build $BUILD_STD --target <triple> --no-default-features --lib
# The env files carry every per-target difference (linker, runner, RUSTFLAGS incl. `--cfg qemu`
# for qemu-run targets, PANDAEMONIUM_TEST_RUNNER, PANDAEMONIUM_TEST_SCOPE, QEMU_LD_PREFIX,
# toolchain, -Zbuild-std); this script has no per-target branches.
# Contract with the tests: under qemu, PANDAEMONIUM_TEST_RUNNER (e.g. "qemu-ppc -L /usr/powerpc-linux-gnu",
# split on whitespace) goes right before each *target* helper binary, never before host programs
# (/bin/sh, unshare); PANDAEMONIUM_TEST_SCOPE names a host build of the tests' scope helper pdm-scope (a child
# subreaper, which an emulated program can't become), run as a host program. libtest's `test result:` lines (all test binaries and
# doctests) are summed per target. Logs: $CARGO_TARGET_DIR (or ./target)/cross-logs/<triple>.log.
# Exit status: 0 only if every target built, passed the test suite, and built without defaults.
#
# Optional environment: CROSS_TEST_ARGS (extra `cargo test` args, e.g. "-- --test-threads=1"),
# CROSS_JOBS (targets at once, default 2), CROSS_TEST_TIMEOUT (seconds per target's
# `cargo test`, default 1800).
set -uo pipefail

CI_DIR=$(cd "$(dirname "$0")" && pwd)
[ -f Cargo.toml ] || { echo "cross.sh: run me from the crate directory (no ./Cargo.toml)" >&2; exit 2; }

if [ $# -eq 0 ]; then
  set -- $(cd "$CI_DIR/targets" && ls *.env | sed 's/\.env$//')
fi

LOGDIR="${CARGO_TARGET_DIR:-$PWD/target}/cross-logs"
mkdir -p "$LOGDIR"

# Runs in a subshell: source the env file, check the toolchain pieces, build and test.
# Exit codes: 0 ok, 10 setup missing, 11 cargo test failed, 12 --no-default-features build failed.
run_target() {
  local t=$1 n rc=0
  set +u; . "$CI_DIR/targets/$t.env"; set -u
  for n in ${NEEDS:-}; do
    case $n in
      /*) [ -e "$n" ] || { echo "cross.sh: $t: missing $n (run ci/setup-cross.sh as root)"; return 10; } ;;
      *) command -v "$n" >/dev/null || { echo "cross.sh: $t: missing $n (run ci/setup-cross.sh as root)"; return 10; } ;;
    esac
  done
  rustc $TOOLCHAIN -V >/dev/null 2>&1 || { echo "cross.sh: $t: toolchain ${TOOLCHAIN#+} missing (run ci/setup-cross.sh)"; return 10; }
  echo "+ $(rustc $TOOLCHAIN -V)"
  echo "+ RUSTFLAGS='${RUSTFLAGS:-}' PANDAEMONIUM_TEST_RUNNER='${PANDAEMONIUM_TEST_RUNNER:-}'"
  echo "+ cargo $TOOLCHAIN test $BUILD_STD --target $t --no-fail-fast ${CROSS_TEST_ARGS:-}"
  # shellcheck disable=SC2086
  # A bound, so an emulator hang fails this target loudly instead of stalling CI.
  timeout --kill-after=30 "${CROSS_TEST_TIMEOUT:-1800}" \
    cargo $TOOLCHAIN test $BUILD_STD --target "$t" --no-fail-fast ${CROSS_TEST_ARGS:-} || rc=11
  echo "+ cargo $TOOLCHAIN build $BUILD_STD --target $t --no-default-features --lib"
  # shellcheck disable=SC2086
  cargo $TOOLCHAIN build $BUILD_STD --target "$t" --no-default-features --lib || { [ $rc -ne 0 ] || rc=12; }
  return $rc
}

# Targets run CROSS_JOBS at a time (default 2: a qemu suite runs one test thread, so one
# target alone leaves a core idle). Each has a target directory of its own
# ($CARGO_TARGET_DIR or ./target, then cross/<triple>): cargo holds one build directory's lock
# for a whole command, so two targets sharing one would take turns. A target's output goes
# to its log, printed whole when it ends.
JOBS=${CROSS_JOBS:-2}
BASE="${CARGO_TARGET_DIR:-$PWD/target}"

# Runs one target into its log; its exit code and seconds go to <log>.rc and <log>.secs.
one_target() {
  local t=$1 log="$LOGDIR/$1.log" start rc
  start=$(date +%s)
  ( export CARGO_TARGET_DIR="$BASE/cross/$t"; run_target "$t" ) >"$log" 2>&1
  rc=$?
  echo "$rc" >"$log.rc"
  echo $(( $(date +%s) - start )) >"$log.secs"
}

targets=() rows=() fail=0
for t in "$@"; do
  if [ ! -f "$CI_DIR/targets/$t.env" ]; then
    echo "cross.sh: no env file ci/targets/$t.env" >&2
    rows+=("$t|-|-|-|0|FAIL (unknown target)"); fail=1; continue
  fi
  targets+=("$t")
  rm -f "$LOGDIR/$t.log.rc" "$LOGDIR/$t.log.secs"
done

running=0 printed=0
# Prints, in the given order, the logs of the targets that have ended, up to the first still running.
print_ended() {
  while [ "$printed" -lt "${#targets[@]}" ] && [ -f "$LOGDIR/${targets[$printed]}.log.secs" ]; do
    echo "===================== ${targets[$printed]} ====================="
    cat "$LOGDIR/${targets[$printed]}.log"
    printed=$((printed + 1))
  done
}
for t in "${targets[@]}"; do
  while [ "$running" -ge "$JOBS" ]; do wait -n; running=$((running - 1)); print_ended; done
  echo "cross.sh: $t started ($(date +%T))"
  one_target "$t" &
  running=$((running + 1))
done
wait
print_ended

for t in "${targets[@]}"; do
  log="$LOGDIR/$t.log"
  # No .rc: the target's job ended before writing it (killed): reported as exit 98.
  rc=$(cat "$log.rc" 2>/dev/null || echo 98)
  secs=$(cat "$log.secs" 2>/dev/null || echo 0)
  read -r passed failed ignored nres < <(awk '
    /^test result: / { n++
      for (i = 2; i <= NF; i++) {
        if ($i ~ /^passed;/)  p += $(i-1)
        if ($i ~ /^failed;/)  f += $(i-1)
        if ($i ~ /^ignored;/) g += $(i-1)
      } }
    END { printf "%d %d %d %d\n", p, f, g, n }' "$log")
  case $rc in
    0)  status=ok ;;
    10) status="FAIL (setup)" ;;
    11) status="FAIL (cargo test)" ;;
    12) status="FAIL (no-default-features build)" ;;
    *)  status="FAIL (exit $rc)" ;;
  esac
  if [ "$rc" -eq 0 ] && { [ "$failed" -ne 0 ] || [ "$nres" -eq 0 ]; }; then status="FAIL (no/failed results)"; fi
  [ "$status" = ok ] || fail=1
  rows+=("$t|$passed|$ignored|$failed|$secs|$status")
done

echo
printf '%-32s | %6s | %7s | %6s | %7s | %s\n' target passed ignored failed seconds status
printf '%s\n' "---------------------------------+--------+---------+--------+---------+-------"
for r in "${rows[@]}"; do
  IFS='|' read -r t p g f s st <<<"$r"
  printf '%-32s | %6s | %7s | %6s | %7s | %s\n' "$t" "$p" "$g" "$f" "$s" "$st"
done
echo "(logs: $LOGDIR)"
exit $fail
