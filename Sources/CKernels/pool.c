#include "CKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

// One call's items are claimed through a single 64-bit ticket that packs the
// call's generation (24 bits), its item count (20 bits) and the next unclaimed
// item (20 bits). A compare-and-swap on the whole word claims an item only for
// the generation and count it was published with, so a thread that wakes late
// can never claim an item of a finished call, or one past the count of a new one.
#define INDEX_BITS 20
#define COUNT_SHIFT INDEX_BITS
#define GENERATION_SHIFT (2 * INDEX_BITS)
#define FIELD_MASK ((UINT64_C(1) << INDEX_BITS) - 1)
#define MAX_THREADS 256
// How long an idle pool thread polls before it sleeps. Short: on a machine shared with other
// processes, a polling thread spends the process's share of the cores that its working threads
// need: the main job's 2-thread step (`graft-bench main-job`) ran 8-12% faster with 30 µs than
// with 300 µs under load, in 7 of 7 interleaved pairs; a thread that sleeps costs a wake-up.
#define SPIN_NANOSECONDS 30000L

static uint64_t generation_of(uint64_t ticket) { return ticket >> GENERATION_SHIFT; }
static uint64_t count_of(uint64_t ticket) { return (ticket >> COUNT_SHIFT) & FIELD_MASK; }
static uint64_t index_of(uint64_t ticket) { return ticket & FIELD_MASK; }

static struct {
    _Atomic uint64_t ticket;
    _Atomic long remaining;      // items of the current call not yet finished
    _Atomic int busy;            // held by the caller of `graft_pool_run`
    _Atomic long participants;   // pool threads allowed to claim items of the current call
    _Atomic int sleepers;
    void (*task)(void *, long);
    void *context;
    long started;                // pool threads created (only the caller holding `busy` writes it)
    pthread_mutex_t mutex;
    pthread_cond_t wake;
} pool = {.mutex = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static long nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000000L + now.tv_nsec;
}

/// Claims and runs items of the call `ticket` belongs to until none are left.
static void run_items(uint64_t ticket) {
    uint64_t generation = generation_of(ticket);
    while (generation_of(ticket) == generation && index_of(ticket) < count_of(ticket)) {
        if (atomic_compare_exchange_weak(&pool.ticket, &ticket, ticket + 1)) {
            pool.task(pool.context, (long)index_of(ticket));
            atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_release);
            ticket = atomic_load_explicit(&pool.ticket, memory_order_acquire);
        }
    }
}

static void *pool_thread(void *argument) {
    long rank = (long)(intptr_t)argument;  // 1 ... started
    uint64_t seen = generation_of(atomic_load(&pool.ticket));
    for (;;) {
        uint64_t ticket = atomic_load_explicit(&pool.ticket, memory_order_acquire);
        if (generation_of(ticket) == seen) {
            long deadline = nanoseconds() + SPIN_NANOSECONDS;
            for (int polls = 1; generation_of(ticket) == seen; polls++) {
                CPU_RELAX();
                ticket = atomic_load_explicit(&pool.ticket, memory_order_acquire);
                if (polls % 64 == 0 && generation_of(ticket) == seen && nanoseconds() > deadline) {
                    pthread_mutex_lock(&pool.mutex);
                    atomic_fetch_add(&pool.sleepers, 1);
                    while (generation_of(ticket = atomic_load(&pool.ticket)) == seen)
                        pthread_cond_wait(&pool.wake, &pool.mutex);
                    atomic_fetch_sub(&pool.sleepers, 1);
                    pthread_mutex_unlock(&pool.mutex);
                }
            }
        }
        seen = generation_of(ticket);
        if (rank <= atomic_load_explicit(&pool.participants, memory_order_relaxed)) run_items(ticket);
    }
    return NULL;
}

int graft_pool_run(void (*task)(void *context, long item), void *context, long items, long threads) {
    if (items <= 0) return 1;
    if (items > (long)FIELD_MASK || atomic_exchange_explicit(&pool.busy, 1, memory_order_acquire)) return 0;
    long helpers = threads - 1 < MAX_THREADS ? threads - 1 : MAX_THREADS;
    while (pool.started < helpers) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, pool_thread, (void *)(intptr_t)(pool.started + 1));
        pthread_attr_destroy(&attributes);
        if (failed) break;
        pool.started++;
    }
    pool.task = task;
    pool.context = context;
    atomic_store_explicit(&pool.participants, helpers, memory_order_relaxed);
    atomic_store_explicit(&pool.remaining, items, memory_order_relaxed);
    uint64_t generation = (generation_of(atomic_load(&pool.ticket)) + 1) & ((UINT64_C(1) << 24) - 1);
    uint64_t ticket = generation << GENERATION_SHIFT | (uint64_t)items << COUNT_SHIFT;
    atomic_store_explicit(&pool.ticket, ticket, memory_order_seq_cst);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mutex);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mutex);
    }
    run_items(ticket);
    for (int polls = 1; atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0; polls++) {
        if (polls % 1024 == 0) sched_yield();
        else CPU_RELAX();
    }
    atomic_store_explicit(&pool.busy, 0, memory_order_release);
    return 1;
}
