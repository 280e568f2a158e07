#!/usr/bin/env bash
# Mutation testing of the fork path: every mutant cargo-mutants makes in these files
# must make the test suite fail, or be listed, with the reason it cannot change
# behaviour (or cannot be observed on Linux), in .cargo/mutants.toml.
#
#   ci/mutants.sh                  # all the fork-path files (about 2-3 hours on 2 cores)
#   ci/mutants.sh src/ids.rs ...   # only these
#
# Installs cargo-mutants if it is missing (`cargo install --locked cargo-mutants`).
# `--jobserver false` keeps cargo-mutants' jobserver descriptors out of the tests, which
# count what a daemon inherits. Results: target/mutants/mutants.out/{caught,missed,
# timeout,unviable}.txt. Exit status 0 only when no mutant was missed or timed out.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants

if [ $# -eq 0 ]; then
  set -- src/detach.rs src/process.rs src/ids.rs src/fds.rs src/signals.rs src/stdio.rs \
    src/pidfile.rs src/report.rs src/cleanup.rs src/daemon.rs src/stages.rs
fi
files=()
for f in "$@"; do files+=(-f "$f"); done

out=target/mutants
mkdir -p "$out"
rc=0
cargo mutants --jobserver false --timeout 180 -o "$out" "${files[@]}" || rc=$?

dir=$out/mutants.out
count() { [ -f "$dir/$1.txt" ] && grep -c . "$dir/$1.txt" || echo 0; }
caught=$(count caught) missed=$(count missed) timeout=$(count timeout) unviable=$(count unviable)
viable=$((caught + missed + timeout))
# Excluded: the mutants .cargo/mutants.toml takes out of the list, each with its reason.
all=$(cargo mutants --list --no-config "${files[@]}" | grep -c .)
listed=$(cargo mutants --list "${files[@]}" | grep -c .)
excluded=$((all - listed))
echo
echo "mutants: $caught caught, $missed missed, $timeout timed out, $unviable unviable," \
  "$excluded excluded with reasons (.cargo/mutants.toml)"
awk -v c="$caught" -v v="$((viable + excluded))" \
  'BEGIN { if (v > 0) printf "score: %.1f %% caught (of the viable mutants and the excluded ones)\n", 100 * c / v }'
[ "$missed" -eq 0 ] || { echo "missed:"; cat "$dir/missed.txt"; }
[ "$timeout" -eq 0 ] || { echo "timed out:"; cat "$dir/timeout.txt"; }
exit "$rc"
