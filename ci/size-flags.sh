# Sourced by ci/size.sh and ci/bench.sh: the flags for the smallest static binaries, on
# top of the `min-size` profile (opt-level z, lto, codegen-units 1, panic=abort, strip),
# and their C equivalents for the C reference that ci/size.sh builds beside ours.
#   -C force-unwind-tables=no       no .eh_frame of our own (nothing unwinds with panic=abort)
#   -C relocation-model=static      a static non-PIE executable (no self-relocation code)
#   -C target-feature=+crt-static   static even where the target defaults to dynamic
#   -Wl,-z,noseparate-code          no page-aligned padding between code and data
#   -Wl,--no-eh-frame-hdr           no unwind lookup table (panic=abort never unwinds)
#   -Wl,-T,ci/no-eh-frame.ld        no unwind tables at all: force-unwind-tables=no leaves
#                                   most of them under LTO (the precompiled core has them;
#                                   the script says more);
#                                   musl targets only, ci/size.sh drops it for glibc,
#                                   whose static cancellation unwinds through them
# RELRO stays on (the linker's default, no -z,norelro), a decision taken for issue 10: the
# linker ends the read-only-after-start part (.init_array, .fini_array, .got,
# .data.rel.ro) on a page boundary, which costs up to a page of file size: the target's
# largest page, so up to 4 KiB on x86_64 but up to 64 KiB on aarch64 (nostd_minimal
# 38,824 B without RELRO, 66,720 B with it). Note that in a static non-PIE musl binary no
# code applies it at run time (musl's static start-up makes no mprotect; the page shows
# rw-p in /proc/PID/maps, for the C reference too): the protection comes with a
# dynamic or static-pie link. The C reference that ci/size.sh builds has RELRO on too.
PDM_SIZE_CI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PDM_SIZE_NO_EH_FRAME="-C link-arg=-Wl,-T,$PDM_SIZE_CI_DIR/no-eh-frame.ld"
PDM_SIZE_FLAGS="-C force-unwind-tables=no -C relocation-model=static -C target-feature=+crt-static -C link-arg=-Wl,-z,noseparate-code -C link-arg=-Wl,--no-eh-frame-hdr $PDM_SIZE_NO_EH_FRAME"
# The same for C (bench/peers/c/ninestage.c, with musl-gcc -static -Os, then strip):
# -fno-asynchronous-unwind-tables for force-unwind-tables=no, the same link flags
# (the .eh_frame script changes nothing there: the C build has no unwind tables).
PDM_SIZE_CFLAGS="-fno-asynchronous-unwind-tables -Wl,-z,noseparate-code -Wl,--no-eh-frame-hdr -Wl,-T,$PDM_SIZE_CI_DIR/no-eh-frame.ld"
