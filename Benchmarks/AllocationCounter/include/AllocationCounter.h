// Counts heap allocations of the whole process (graft-bench links this
// target, whose malloc family takes precedence over libc's and forwards to it).
#pragma once
#include <stdint.h>

/// Number of malloc / calloc / realloc / aligned allocation calls so far.
uint64_t graft_allocation_count(void);
/// Bytes requested by those calls so far.
uint64_t graft_allocated_bytes(void);
