# Sourced by ci/size.sh and ci/bench.sh: the flags for the smallest static binaries, on
# top of the `min-size` profile (opt-level s, lto, codegen-units 1, panic=abort, strip).
#   -C force-unwind-tables=no       no .eh_frame of our own (nothing unwinds with panic=abort)
#   -C relocation-model=static      a static non-PIE executable (no self-relocation code)
#   -C target-feature=+crt-static   static even where the target defaults to dynamic
#   -Wl,-z,noseparate-code          no page-aligned padding between code and data
#   -Wl,-z,norelro                  no RELRO page padding: a static non-PIE binary has no
#                                   dynamic relocations; RELRO would only protect ~200 bytes
#                                   (.init_array, .fini_array, .got, .data.rel.ro)
#   -Wl,--no-eh-frame-hdr           no unwind lookup table (panic=abort never unwinds)
PDM_SIZE_FLAGS="-C force-unwind-tables=no -C relocation-model=static -C target-feature=+crt-static -C link-arg=-Wl,-z,noseparate-code -C link-arg=-Wl,-z,norelro -C link-arg=-Wl,--no-eh-frame-hdr"
