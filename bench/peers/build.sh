#!/usr/bin/env bash
# Build every peer and the harness.  Idempotent: installs only what is
# missing (apt, rustup target, pip into a venv) and rebuilds only what is
# stale.  Outputs: $DMN_BUILD (default ../build) and the venv $DMN_VENV
# (default /tmp/venv-peers).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH=$(dirname "$HERE")
OUT=${DMN_BUILD:-$BENCH/build}
VENV=${DMN_VENV:-/tmp/venv-peers}
PYTHON=${DMN_PYTHON:-python3}
TARGET=x86_64-unknown-linux-musl
say() { printf '[build] %s\n' "$*" >&2; }

# ---- system tools -----------------------------------------------------
need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v strace >/dev/null || need+=(strace)
[ -x /usr/bin/time ] || need+=(time)
command -v prlimit >/dev/null || need+=(util-linux)
command -v file >/dev/null || need+=(file)
if ((${#need[@]})); then
    say "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    say "rustup target add $TARGET"
    rustup target add "$TARGET"
fi

# ---- C: harness + C peers ---------------------------------------------
mkdir -p "$OUT/c"
stale() { [ ! -x "$1" ] || [ "$2" -nt "$1" ]; }
if stale "$OUT/dmnbench" "$BENCH/harness/dmnbench.c"; then
    say "harness"
    gcc -O2 -Wall -Wno-format-truncation -o "$OUT/dmnbench" "$BENCH/harness/dmnbench.c"
fi
for p in optimal daemon3 ninestage; do
    if stale "$OUT/c/$p-musl" "$HERE/c/$p.c"; then
        say "$p-musl (static)"
        musl-gcc -static -O2 -s -o "$OUT/c/$p-musl" "$HERE/c/$p.c"
    fi
    if stale "$OUT/c/$p-glibc" "$HERE/c/$p.c"; then
        say "$p-glibc (dynamic)"
        gcc -O2 -s -o "$OUT/c/$p-glibc" "$HERE/c/$p.c"
    fi
done

# ---- Rust peers (static musl; cargo decides what is stale) ------------
say "rust peers (release + size-minimised 'min' profile)"
(cd "$HERE/rust" &&
    CARGO_TARGET_DIR="$OUT/rust-target" cargo build -q --locked --release --target "$TARGET" &&
    CARGO_TARGET_DIR="$OUT/rust-target" cargo build -q --locked --profile min --target "$TARGET")

# ---- Python peers -----------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    say "venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
want=$(sort "$HERE/py/requirements.txt" | tr 'A-Z_' 'a-z-')
have=$("$VENV/bin/pip" freeze 2>/dev/null | tr 'A-Z_' 'a-z-' | grep -Fx -f <(echo "$want") | sort || true)
if [ "$want" != "$have" ]; then
    say "pip install -r requirements.txt"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/py/requirements.txt"
fi
say "done: $OUT, $VENV"
