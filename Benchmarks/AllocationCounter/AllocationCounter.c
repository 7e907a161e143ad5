// Interposes glibc's allocation entry points in the benchmark executable and
// forwards them to glibc's own implementations (`__libc_*`), counting calls
// and requested bytes with relaxed atomics.
#include "AllocationCounter.h"
#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static uint64_t count, bytes;

static void record(size_t size) {
    __atomic_fetch_add(&count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&bytes, size, __ATOMIC_RELAXED);
}

uint64_t graft_allocation_count(void) { return __atomic_load_n(&count, __ATOMIC_RELAXED); }
uint64_t graft_allocated_bytes(void) { return __atomic_load_n(&bytes, __ATOMIC_RELAXED); }

void *malloc(size_t size) { record(size); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { record(n * size); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { record(size); return __libc_realloc(p, size); }
void *memalign(size_t alignment, size_t size) { record(size); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { record(size); return __libc_memalign(alignment, size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    record(size);
    void *p = __libc_memalign(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
