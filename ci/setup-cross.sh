#!/usr/bin/env bash
# Install everything ci/cross.sh needs on a Debian 12 (bookworm) x86_64 host, as root.
#
#   ci/setup-cross.sh                # every target in ci/targets/*.env
#   ci/setup-cross.sh <triple>...    # only these
#
# Idempotent: what is already present is not fetched again (a second run does no network I/O).
# Everything it installs is derived from the ci/targets/<triple>.env files:
#   APT_PACKAGES   Debian packages; a ":arch" suffix adds that foreign dpkg architecture
#   NEEDS          commands / files that must exist afterwards (checked at the end)
#   TOOLCHAIN      +stable             -> `rustup target add <triple>` (rust-std)
#                  +pandaemonium-nightly -> the machine's installed nightly, linked under that
#                                         name, + rust-src (for -Zbuild-std)
#   SHIM_DIR       build $SHIM_DIR/libunwind.a = libgcc_eh.a of SHIM_GNU_CC (+ dlfo.o from
#                  ci/dlfo.c compiled with SHIM_DLFO_CC, if set)
#   PANDAEMONIUM_TEST_RUNNER  its first word (qemu-<arch>) gets a binfmt_misc registration
#                  (PANDAEMONIUM_NO_BINFMT=1 skips that, with a warning, where binfmt_misc is forbidden)
# Always built: $PANDAEMONIUM_SHIM_ROOT/bin/pdm-scope (default root /usr/local/lib/pandaemonium-cross),
# a host build of the tests' scope helper, which the qemu targets' env files name in
# PANDAEMONIUM_TEST_SCOPE (see "host helper" below).
# Any piece that cannot be installed is a loud error and a non-zero exit; nothing is skipped.
set -euo pipefail

CI_DIR=$(cd "$(dirname "$0")" && pwd)
export DEBIAN_FRONTEND=noninteractive

die() {
  printf '\n**************************************************************\n' >&2
  printf '*** setup-cross: ERROR: %s\n' "$@" >&2
  printf '**************************************************************\n\n' >&2
  exit 1
}
say() { printf '=== setup-cross: %s\n' "$*"; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, binfmt_misc, /usr/local/lib)"
command -v rustup >/dev/null || die "rustup not found in PATH"

if [ $# -eq 0 ]; then
  set -- $(cd "$CI_DIR/targets" && ls *.env | sed 's/\.env$//')
fi
for t in "$@"; do [ -f "$CI_DIR/targets/$t.env" ] || die "no env file ci/targets/$t.env"; done

# Print variable $2 as set by env file of target $1 (sourced in a subshell, nothing leaks).
envvar() { ( set +u; . "$CI_DIR/targets/$1.env"; eval "printf '%s' \"\${$2:-}\"" ); }

# ---------------------------------------------------------------- apt
pkgs=$(for t in "$@"; do envvar "$t" APT_PACKAGES; echo; done | tr ' ' '\n' | sed '/^$/d' | sort -u)
pkgs="$pkgs qemu-user-binfmt gcc"
missing=""
for p in $pkgs; do
  st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  [ "$st" = "ii " ] || missing="$missing $p"
done
if [ -n "$missing" ]; then
  for a in $(printf '%s\n' $missing | sed -n 's/^[^:]*:\(.*\)$/\1/p' | sort -u); do
    dpkg --print-foreign-architectures | grep -qx "$a" || { say "dpkg --add-architecture $a"; dpkg --add-architecture "$a"; }
  done
  say "apt-get update"
  # Foreign-arch indexes of third-party or security suites may fail through proxies/mirrors;
  # the packages we need come from bookworm main, so a partial update is acceptable.
  apt-get update -qq || say "WARNING: apt-get update reported errors (continuing; install below decides)"
  say "apt-get install$missing"
  apt-get install -y -qq --no-install-recommends $missing \
    || die "apt-get install failed for:$missing"
else
  say "apt packages already installed"
fi

# ---------------------------------------------------------------- binfmt_misc
# qemu-user-binfmt ships /usr/lib/binfmt.d/qemu-*.conf, but without a running systemd nothing
# registers them. Register the ones our runners use so foreign binaries also exec directly.
qemus=$(for t in "$@"; do r=$(envvar "$t" PANDAEMONIUM_TEST_RUNNER); [ -z "$r" ] || echo "${r%% *}"; done | sort -u)
if [ -n "${PANDAEMONIUM_NO_BINFMT:-}" ]; then
  # Explicit opt-out for hosts that forbid binfmt_misc (unprivileged containers). The tests start
  # helpers through PANDAEMONIUM_TEST_RUNNER and do not need binfmt; only target binaries that
  # exec other target binaries directly (e.g. -Zpanic-abort-tests) would fail with ENOEXEC.
  say "WARNING: PANDAEMONIUM_NO_BINFMT set: NOT registering binfmt_misc for: $(echo $qemus)"
else
  binfmt=/proc/sys/fs/binfmt_misc
  if ! mountpoint -q "$binfmt"; then
    mount -t binfmt_misc binfmt_misc "$binfmt" || die "cannot mount binfmt_misc on $binfmt"
  fi
  for q in $qemus; do
    [ -e "$binfmt/$q" ] && continue
    if [ -x /lib/systemd/systemd-binfmt ]; then
      /lib/systemd/systemd-binfmt "/usr/lib/binfmt.d/$q.conf" || true
    fi
    if [ ! -e "$binfmt/$q" ] && [ -f "/usr/lib/binfmt.d/$q.conf" ]; then
      grep -v '^#' "/usr/lib/binfmt.d/$q.conf" | sed '/^$/d' > "$binfmt/register" || true
    fi
    [ -e "$binfmt/$q" ] || die "binfmt_misc registration of $q failed"
  done
  [ "$(cat "$binfmt/status")" = enabled ] || die "binfmt_misc is disabled ($binfmt/status)"
  say "binfmt_misc registered: $(echo $qemus)"
fi

# ---------------------------------------------------------------- rust
for t in "$@"; do
  tc=$(envvar "$t" TOOLCHAIN); tc=${tc#+}
  bs=$(envvar "$t" BUILD_STD)
  if [ "$tc" = pandaemonium-nightly ]; then
    # The machine's own nightly, whatever its date: a dated channel may not be served
    # here, and an existing toolchain is never updated.
    rustup run nightly rustc -V >/dev/null 2>&1 \
      || rustup toolchain install nightly --profile minimal --component rust-src \
      || die "no nightly toolchain and none can be installed"
    want=$(rustup run nightly rustc --print sysroot)
    if [ "$(rustc "+$tc" --print sysroot 2>/dev/null)" != "$want" ]; then
      rustup toolchain uninstall "$tc" >/dev/null 2>&1 || true
      rustup toolchain link "$tc" "$want" || die "rustup toolchain link $tc failed"
    fi
    say "toolchain $tc -> $(rustc "+$tc" -V)"
  fi
  rustc "+$tc" -V >/dev/null 2>&1 || die "$t: toolchain $tc missing (install it with rustup; do NOT 'rustup update stable' on this mirror)"
  if [ -n "$bs" ]; then
    sysroot=$(rustc "+$tc" --print sysroot)
    if [ ! -d "$sysroot/lib/rustlib/src/rust/library/std" ]; then
      real=$(readlink -f "$sysroot")
      owner=$(basename "$real"); owner=${owner%-x86_64-unknown-linux-gnu}
      say "rustup component add rust-src --toolchain $owner"
      rustup component add rust-src --toolchain "$owner" || die "cannot add rust-src to $owner"
    fi
    [ -d "$sysroot/lib/rustlib/src/rust/library/std" ] || die "$t: rust-src missing in $sysroot"
  else
    if ! rustup target list --installed --toolchain "$tc" | grep -qx "$t"; then
      say "rustup target add --toolchain $tc $t"
      rustup target add --toolchain "$tc" "$t" || die "rustup target add $t failed"
    fi
  fi
done

# ---------------------------------------------------------------- libunwind shims
for t in "$@"; do
  dir=$(envvar "$t" SHIM_DIR)
  [ -n "$dir" ] || continue
  gnucc=$(envvar "$t" SHIM_GNU_CC); dlfocc=$(envvar "$t" SHIM_DLFO_CC)
  [ -f "$dir/libunwind.a" ] && [ "$dir/libunwind.a" -nt "$CI_DIR/dlfo.c" ] && continue
  eh=$("$gnucc" -print-file-name=libgcc_eh.a)
  [ -f "$eh" ] || die "$t: $gnucc has no libgcc_eh.a"
  mkdir -p "$dir"; tmp=$(mktemp -d)
  cp "$eh" "$tmp/libunwind.a"
  if [ -n "$dlfocc" ]; then
    "$dlfocc" -O2 -c "$CI_DIR/dlfo.c" -o "$tmp/dlfo.o" || die "$t: compiling dlfo.c failed"
    "${gnucc%-gcc}-ar" rcs "$tmp/libunwind.a" "$tmp/dlfo.o" || die "$t: ar failed"
  fi
  mv -f "$tmp/libunwind.a" "$dir/libunwind.a"; rm -rf "$tmp"
  say "built $dir/libunwind.a${dlfocc:+ (+dlfo.o)}"
done

# ---------------------------------------------------------------- host helper: pdm-scope
# Every test runs its helper programs under pdm-scope (tests/helpers/scope.rs, the example
# pdm-scope), a child subreaper that ends whatever they leave behind when the test ends. qemu-user
# 7.2 answers an emulated prctl(PR_SET_CHILD_SUBREAPER) with EINVAL, so the qemu targets use a host
# build of it instead (their env files export PANDAEMONIUM_TEST_SCOPE): a host program, it starts
# the target's helpers through PANDAEMONIUM_TEST_RUNNER like /bin/sh does. Rebuilt whenever
# scope.rs differs from the source of the installed build (a stale one would be refused by the
# tests anyway: the two speak a versioned protocol).
helper_dir="${PANDAEMONIUM_SHIM_ROOT:-/usr/local/lib/pandaemonium-cross}/bin"
crate_dir=$(cd "$CI_DIR/.." && pwd)
scope_src="$crate_dir/tests/helpers/scope.rs"
[ -f "$scope_src" ] || die "no $scope_src"
want=$(sha256sum "$scope_src" | cut -d' ' -f1)
if [ ! -x "$helper_dir/pdm-scope" ] || [ "$(cat "$helper_dir/pdm-scope.source" 2>/dev/null)" != "$want" ]; then
  mkdir -p "$helper_dir"
  build="${PANDAEMONIUM_SHIM_ROOT:-/usr/local/lib/pandaemonium-cross}/build"
  say "cargo build --release --example pdm-scope (host)"
  # The host's own build: none of a target's settings may leak in.
  ( cd "$crate_dir" && env -u RUSTFLAGS -u RUSTDOCFLAGS -u CARGO_BUILD_TARGET -u CARGO_TARGET_DIR \
      cargo +stable build --quiet --release --locked --example pdm-scope --target-dir "$build" ) \
    || die "building the host pdm-scope failed"
  install -m 0755 "$build/release/examples/pdm-scope" "$helper_dir/pdm-scope.new"
  mv -f "$helper_dir/pdm-scope.new" "$helper_dir/pdm-scope"
  printf '%s\n' "$want" > "$helper_dir/pdm-scope.source"
  say "built $helper_dir/pdm-scope"
fi
tmp=$(mktemp -d)
"$helper_dir/pdm-scope" pdm-scope-2 "$tmp" "$$" /bin/true || die "pdm-scope does not run"
grep -q '^pid=' "$tmp"/start-* || die "pdm-scope did not start a program: $(cat "$tmp"/start-* 2>&1)"
rm -rf "$tmp"

# ---------------------------------------------------------------- final check
bad=""
for t in "$@"; do
  for n in $(envvar "$t" NEEDS); do
    case $n in
      /*) [ -e "$n" ] || bad="$bad $t:$n" ;;
      *) command -v "$n" >/dev/null || bad="$bad $t:$n" ;;
    esac
  done
done
[ -z "$bad" ] || die "still missing after setup:$bad"
say "ok: $*"
