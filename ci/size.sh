#!/usr/bin/env bash
# Static footprint: the minimal no_std daemon (examples/nostd_minimal.rs) and the
# `pandaemonium` tool (with every option: --features tool; and, for x86_64, without
# the optional parts, the tool-* features: --notify, --chroot, --log...), built
# --no-default-features with the min-size profile
# (opt-level z, lto, codegen-units 1, panic=abort, strip), static, for each target in
# ci/targets/*.env; prints one markdown table of stripped sizes in bytes. For
# x86_64-unknown-linux-musl it also builds the C reference, bench/peers/c/ninestage.c
# (the same nine default stages by hand), with the host's musl-gcc (Debian's
# musl-tools) -static -Os and the C equivalents of the size flags, stripped, and gives
# nostd_minimal / C; "n/a" without musl-gcc, and for the other targets.
#
#   ci/setup-cross.sh        # once, as root (toolchains, linkers, shims)
#   ci/size.sh [triple...]   # from the crate directory
#
# Size flags on top of the profile: ci/size-flags.sh (shared with ci/bench.sh).
# Exit status 1 when a build fails or an x86_64 size is over its budget (budgets()).
# musl targets link musl statically; the glibc-only targets (no musl cross libc in
# Debian for them) link glibc statically and say so in the libc column.
set -uo pipefail

CI_DIR=$(cd "$(dirname "$0")" && pwd)
[ -f Cargo.toml ] || { echo "size.sh: run me from the crate directory" >&2; exit 2; }
[ $# -gt 0 ] || set -- $(cd "$CI_DIR/targets" && ls *.env | sed 's/\.env$//')

OUT="${CARGO_TARGET_DIR:-$PWD/target}"
. "$CI_DIR/size-flags.sh"
SIZE_FLAGS=$PDM_SIZE_FLAGS
rows=() fail=0

build_one() { # $1 triple, $2 what (--example nostd_minimal | --bin pandaemonium [--features tool])
  local t=$1 what=$2
  set +u; . "$CI_DIR/targets/$t.env"; set -u
  local var="CARGO_TARGET_$(echo "$t" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
  # The env files put their link flags in RUSTFLAGS; keep those, drop the test-only cfg.
  # -lc again at the very end: compiler_builtins (after the first -lc) needs getauxval
  # on aarch64; static glibc also needs libgcc's unwinder for its own C++-style cleanup.
  local tail="-C link-arg=-lc"
  # Precompiled glibc-target compiler_builtins names rust_eh_personality in unwind data
  # that panic=abort never uses: the linker gets a dummy address for it.
  # Static glibc unwinds through .eh_frame itself (thread cancellation): it keeps it.
  local flags=$SIZE_FLAGS
  case $t in *-gnu*) tail="-C link-arg=-Wl,--start-group -C link-arg=-lc -C link-arg=-lgcc -C link-arg=-lgcc_eh -C link-arg=-Wl,--end-group -C link-arg=-Wl,--defsym=rust_eh_personality=0"
    flags=${flags//$PDM_SIZE_NO_EH_FRAME/} ;; esac
  export RUSTFLAGS="${RUSTFLAGS:-} $flags $tail"
  RUSTFLAGS=${RUSTFLAGS//--cfg qemu/}
  local bs=""
  [ -n "${BUILD_STD:-}" ] && bs="-Zbuild-std=core,alloc,std,panic_abort"
  # shellcheck disable=SC2086
  cargo $TOOLCHAIN build -q $bs --profile min-size --no-default-features --target "$t" $what \
    --target-dir "$OUT/size" >&2
}

# The C reference: its stripped size on stdout, or nothing (no musl-gcc, or it failed).
c_reference() {
  command -v musl-gcc >/dev/null 2>&1 || { echo "size.sh: no musl-gcc (musl-tools): C reference n/a" >&2; return 0; }
  local dir="$OUT/size/c-reference" src="$PWD/bench/peers/c/ninestage.c"
  mkdir -p "$dir" || return 0
  # shellcheck disable=SC2086
  if musl-gcc -static -Os $PDM_SIZE_CFLAGS -o "$dir/ninestage" "$src" >&2 && strip "$dir/ninestage"; then
    stat -c %s "$dir/ninestage"
  else
    echo "size.sh: FAILED to build the C reference $src" >&2
  fi
}

# ours / C as a percentage with one decimal (integer arithmetic only).
ratio() { # $1 ours, $2 C
  case "$1" in ""|*[!0-9]*) echo "n/a"; return ;; esac
  case "$2" in ""|*[!0-9]*|0) echo "n/a"; return ;; esac
  local permille=$(( ($1 * 1000 + $2 / 2) / $2 ))
  echo "$(( permille / 10 )).$(( permille % 10 )) %"
}

# Issue 10's targets, x86_64 static musl, stripped, RELRO on: the tool without its
# tool-* features at most 64 KiB, nostd_minimal at most 5 % above the C reference.
# A build over either fails the run (a number, not a note in the README).
TOOL_BUDGET=65536
budgets() { # $1 nostd_minimal, $2 bare tool, $3 C reference (each may be empty)
  local ok=0
  case "$2" in ""|*[!0-9]*) ;; *)
    if [ "$2" -gt "$TOOL_BUDGET" ]; then
      echo "size.sh: the tool without tool-* features is $2 bytes, over its budget of $TOOL_BUDGET" >&2
      ok=1
    fi ;;
  esac
  case "$1$3" in ""|*[!0-9]*) ;; *)
    if [ $(( $1 * 100 )) -gt $(( $3 * 105 )) ]; then
      echo "size.sh: nostd_minimal is $1 bytes, more than 5 % above the C reference's $3" >&2
      ok=1
    fi ;;
  esac
  return $ok
}

for t in "$@"; do
  [ -f "$CI_DIR/targets/$t.env" ] || { echo "size.sh: no ci/targets/$t.env" >&2; fail=1; continue; }
  libc=musl; case $t in *-gnu*) libc=glibc ;; esac
  sizes=()
  builds=("--example nostd_minimal" "--bin pandaemonium --features tool")
  # The tool without its optional parts, for x86_64 only (CI's time: one more build).
  [ "$t" = x86_64-unknown-linux-musl ] && builds+=("--bin pandaemonium")
  for what in "${builds[@]}"; do
    name=${what#* }; name=${name%% *}
    dir="$OUT/size/$t/min-size"; [ "$name" = nostd_minimal ] && dir="$dir/examples"
    if ( build_one "$t" "$what" ) && [ -f "$dir/$name" ]; then
      sizes+=("$(stat -c %s "$dir/$name")")
    else
      echo "size.sh: FAILED to build $name for $t" >&2
      sizes+=("FAIL"); fail=1
    fi
  done
  c=""
  if [ "$t" = x86_64-unknown-linux-musl ]; then
    c=$(c_reference)
    # Without musl-gcc the column says n/a; with it, a failed C build fails the run.
    [ -z "$c" ] && command -v musl-gcc >/dev/null 2>&1 && fail=1
  fi
  rows+=("| $t | $libc | ${sizes[0]} | ${sizes[1]} | ${sizes[2]:-n/a} | ${c:-n/a} | $(ratio "${sizes[0]}" "$c") |")
  if [ "$t" = x86_64-unknown-linux-musl ]; then
    budgets "${sizes[0]}" "${sizes[2]:-}" "$c" || fail=1
  fi
done

echo
echo "| target | libc (static) | nostd_minimal (bytes) | pandaemonium tool (bytes) | tool without tool-* features (bytes) | C reference (ninestage.c, musl-gcc -static -Os) (bytes) | nostd_minimal / C |"
echo "|---|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
exit $fail
