// One process-wide worker pool. Work is split dynamically (an atomic chunk
// counter) so a core that is slowed by something else does not stall the
// whole kernel; idle workers poll for the next job for a short while
// (SEEDVL_POOL_SPIN_US, default 100 us) and then sleep on a condition variable.
#pragma once
#include <cstdint>
#include <functional>

namespace sv {

// Runs fn(begin, end) over [0, n) in chunks of at least `grain` items, on the
// calling thread plus the pool's workers. Nested calls run serially.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

int num_threads();
// True on a pool worker or a caller inside parallel_for (where a nested parallel_for runs serially).
bool in_parallel_region();
void set_num_threads(int n);

}  // namespace sv
