/* libunwind shim for Rust std on static musl targets that use the DWARF unwinder
 * (mips/mipsel/powerpc/s390x musl). Added to a copy of the Debian cross gcc's libgcc_eh.a,
 * which ci/setup-cross.sh installs as <shimdir>/libunwind.a (std links `-lunwind` statically).
 *
 * 1. Debian's libgcc_eh.a is built against glibc 2.36 and calls _dl_find_object(), which musl
 *    does not have: provide it on top of dl_iterate_phdr().
 * 2. libgcc_eh only holds weak references to pthread_once & co. musl defines
 *    __pthread_key_create, so libgcc decides "threads are active", but in a static link the weak
 *    pthread_once stays NULL -> SIGSEGV in uw_init_context_1 at the first panic/backtrace.
 *    Taking the addresses below pulls the real definitions into the link.
 *
 * Compile with the musl wrapper gcc: <musl-triple>-gcc -O2 -c dlfo.c
 * Not needed on ARM (EHABI unwinder): there libunwind.a is a plain copy of libgcc_eh.a.
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <pthread.h>

struct dl_find_object {
  unsigned long long dlfo_flags;
  void *dlfo_map_start, *dlfo_map_end;
  struct link_map *dlfo_link_map;
  void *dlfo_eh_frame;
  unsigned long long __dlfo_reserved[7];
};
/* layout valid where glibc's DLFO_STRUCT_HAS_EH_DBASE == 0 (every arch but i386/nios2) */

struct query { uintptr_t pc; struct dl_find_object *r; int found; };

static int cb(struct dl_phdr_info *i, size_t sz, void *d) {
  struct query *q = d;
  uintptr_t lo = ~(uintptr_t)0, hi = 0;
  int hit = 0;
  void *eh = 0;
  (void)sz;
  for (int k = 0; k < i->dlpi_phnum; k++) {
    const ElfW(Phdr) *p = &i->dlpi_phdr[k];
    uintptr_t a = i->dlpi_addr + p->p_vaddr;
    if (p->p_type == PT_LOAD) {
      if (a < lo) lo = a;
      if (a + p->p_memsz > hi) hi = a + p->p_memsz;
      if (q->pc >= a && q->pc < a + p->p_memsz) hit = 1;
    } else if (p->p_type == PT_GNU_EH_FRAME) {
      eh = (void *)a;
    }
  }
  if (!hit) return 0;
  q->r->dlfo_flags = 0;
  q->r->dlfo_map_start = (void *)lo;
  q->r->dlfo_map_end = (void *)hi;
  q->r->dlfo_link_map = 0;
  q->r->dlfo_eh_frame = eh;
  q->found = 1;
  return 1;
}

int _dl_find_object(void *pc, struct dl_find_object *r) {
  struct query q = { (uintptr_t)pc, r, 0 };
  dl_iterate_phdr(cb, &q);
  return q.found ? 0 : -1;
}

/* pull the real pthread symbols in; libgcc_eh only has weak references to them */
void *const __musl_gthr_force[] __attribute__((used)) = {
  (void *)pthread_once, (void *)pthread_mutex_lock, (void *)pthread_mutex_unlock,
  (void *)pthread_getspecific, (void *)pthread_setspecific, (void *)pthread_key_create,
};
