#!/usr/bin/env bash
# Mutation testing of the fork path: every mutant cargo-mutants makes in these files
# must make the test suite fail, or be listed, with the reason it cannot change
# behaviour (or cannot be observed on Linux), in .cargo/mutants.toml.
#
#   ci/mutants.sh                  # all the fork-path files (some four hours on 2 cores)
#   ci/mutants.sh src/ids.rs ...   # only these
#   MUTANTS_JOBS=2 ci/mutants.sh   # two mutants at a time (some two hours on 2 cores)
#   ci/mutants.sh --tool [FILE...] # the tool (src/bin/pandaemonium/*.rs), with its suites
#                                  # (tests/tool*.rs), in both feature
#                                  # configurations: default, and --no-default-features
#                                  # (each compiles code the other doesn't: a mutant there
#                                  # compiles, changes nothing and "survives"); merged:
#                                  # detected in either, else unviable in either, else
#                                  # missed
#
# Installs cargo-mutants if it is missing (`cargo install --locked cargo-mutants`).
# `--jobserver false` keeps cargo-mutants' jobserver descriptors out of the tests, which
# count what a daemon inherits. Results: target/mutants/mutants.out/{caught,missed,
# timeout,unviable}.txt (over the configurations; each one's own run in
# target/mutants/<configuration>/). Exit status 0 only when no mutant was missed.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants

tool=0
if [ "${1:-}" = --tool ]; then
  tool=1
  shift
  [ $# -gt 0 ] || set -- src/bin/pandaemonium/*.rs
fi
if [ $# -eq 0 ]; then
  set -- src/detach.rs src/process.rs src/ids.rs src/fds.rs src/signals.rs src/stdio.rs \
    src/pidfile.rs src/report.rs src/cleanup.rs src/daemon.rs src/stages.rs src/program.rs \
    src/config.rs src/ready.rs src/listen.rs src/notify.rs src/notify_listen.rs \
    src/privileges.rs src/caps.rs src/user_files.rs
fi
files=()
for f in "$@"; do files+=(-f "$f"); done

out=target/mutants
mkdir -p "$out"
rc=0
configs=(default) tests=()
if [ "$tool" -eq 1 ]; then
  configs=(default no-default-features)
  # The tool's suites (those of a feature a configuration lacks are empty there).
  for t in tests/tool*.rs; do tests+=(--test "$(basename "$t" .rs)"); done
fi
for config in "${configs[@]}"; do
  extra=()
  [ "$config" = default ] || extra=(--no-default-features)
  one=0
  cargo mutants --jobserver false --profile mutation -j "${MUTANTS_JOBS:-1}" --timeout 120 \
    -o "$out/$config" "${extra[@]}" "${files[@]}" -- "${tests[@]}" || one=$?
  # cargo-mutants exits 2 when a mutant was missed, 3 when one timed out.
  [ "$one" -eq 0 ] || [ "$one" -eq 2 ] || [ "$one" -eq 3 ] || rc=$one
done

# One list per outcome over the configurations: detected (caught, or timed out) in any
# of them wins; then unviable in any (it does not compile where its code is compiled:
# where the code is left out, the same mutant builds and "survives"); missed is what
# is left of the missed ones.
dir=$out/mutants.out
mkdir -p "$dir"
outcome() { for config in "${configs[@]}"; do cat "$out/$config/mutants.out/$1.txt" 2>/dev/null || true; done | sort -u; }
outcome caught >"$dir/caught.txt"
outcome timeout | comm -23 - "$dir/caught.txt" >"$dir/timeout.txt"
sort -u "$dir/caught.txt" "$dir/timeout.txt" >"$dir/detected.txt"
outcome unviable | comm -23 - "$dir/detected.txt" >"$dir/unviable.txt"
sort -u "$dir/detected.txt" "$dir/unviable.txt" >"$dir/settled.txt"
outcome missed | comm -23 - "$dir/settled.txt" >"$dir/missed.txt"
count() { grep -c . "$dir/$1.txt" || true; }
caught=$(count caught) missed=$(count missed) timeout=$(count timeout) unviable=$(count unviable)
viable=$((caught + missed + timeout))
# Excluded: the mutants .cargo/mutants.toml takes out of the list, each with its reason.
all=$(cargo mutants --list --no-config "${files[@]}" | grep -c .)
listed=$(cargo mutants --list "${files[@]}" | grep -c .)
excluded=$((all - listed))
echo
echo "mutants: $caught caught, $missed missed, $timeout timed out, $unviable unviable," \
  "$excluded excluded with reasons (.cargo/mutants.toml)"
# A timeout is a mutant that made a test hang (cargo-mutants then kills the suite): the
# suite failed, so it is detected. The score counts the excluded mutants as not caught.
awk -v d="$((caught + timeout))" -v v="$((viable + excluded))" \
  'BEGIN { if (v > 0) printf "score: %.1f %% detected (caught or timed out) of the viable mutants and the excluded ones\n", 100 * d / v }'
awk -v c="$caught" -v v="$((viable + excluded))" \
  'BEGIN { if (v > 0) printf "caught by a failing test: %.1f %% of the same\n", 100 * c / v }'
[ "$missed" -eq 0 ] || { echo "missed:"; cat "$dir/missed.txt"; }
[ "$timeout" -eq 0 ] || { echo "timed out (detected: the suite hung):"; cat "$dir/timeout.txt"; }
# Only a missed mutant (or cargo-mutants failing otherwise) fails this script.
[ "$missed" -eq 0 ] || exit 1
exit "$rc"
