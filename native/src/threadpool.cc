#include "threadpool.h"
#include "common.h"
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>
#include <cstdlib>
#include <sched.h>
#include <chrono>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SV_CPU_RELAX() _mm_pause()
#else
#define SV_CPU_RELAX() ((void)0)
#endif

namespace sv {
namespace {

// True on pool workers and on a caller already inside a parallel region.
thread_local bool inside = false;

// How long an idle thread polls for the next job before sleeping, and the
// caller for the last chunks before sleeping. Waking a sleeping thread costs
// tens of microseconds on a VM (futex + IPI to a halted vCPU), paid by every
// parallel op: decode runs ~1000 of them per token, back to back.
// SEEDVL_POOL_SPIN_US overrides (0 = always sleep at once).
int64_t spin_ns() {
  static const int64_t ns = [] {
    if (const char* env = std::getenv("SEEDVL_POOL_SPIN_US")) {
      int n = std::atoi(env);
      if (n >= 0) return static_cast<int64_t>(n) * 1000;
    }
    return static_cast<int64_t>(100'000);
  }();
  return ns;
}

// Polls `ready` for up to spin_ns(); true once it holds. After the first
// 20 us each round of polling also yields the core, so on an oversubscribed
// machine a polling thread does not keep another process's thread (or one of
// ours) from running.
template <typename F>
bool spin_until(F ready) {
  const int64_t limit = spin_ns();
  if (limit <= 0) return ready();
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 32; i++) {
      if (ready()) return true;
      SV_CPU_RELAX();
    }
    const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
    if (ns > limit) return ready();
    if (ns > 20'000) sched_yield();
  }
}

int default_threads() {
  if (const char* env = std::getenv("SEEDVL_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

class Pool {
 public:
  Pool() { resize(default_threads()); }
  ~Pool() { stop_all(); }

  int size() const { return nthreads_; }

  void resize(int n) {
    if (n < 1) n = 1;
    std::lock_guard<std::mutex> run(run_mu_);
    stop_all();
    nthreads_ = n;
    stopping_ = false;
    stopping_flag_.store(false);
    for (int i = 0; i < n - 1; i++) workers_.emplace_back([this] { worker(); });
  }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t chunks_wanted = (n + grain - 1) / grain;
    if (nthreads_ == 1 || chunks_wanted <= 1 || inside) {
      fn(0, n);
      return;
    }
    std::lock_guard<std::mutex> run(run_mu_);
    // Several chunks per thread so that dynamic claiming can balance load.
    int64_t nchunks = std::min<int64_t>(chunks_wanted, static_cast<int64_t>(nthreads_) * 4);
    Job job;
    {
      std::lock_guard<std::mutex> lk(mu_);
      job = Job{&fn, n, nchunks, ++generation_};
      job_ = job;
      claim_.store(job.generation << 32);
      done_.store(0);
      posted_.store(job.generation, std::memory_order_release);
    }
    cv_.notify_all();
    inside = true;
    drain(job);
    inside = false;
    spin_until([&] { return done_.load(std::memory_order_acquire) == nchunks; });
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return done_.load() == nchunks; });
    job_.fn = nullptr;
  }

 private:
  // One parallel job: what a thread needs to run its chunks, captured under
  // mu_ so a thread never mixes two jobs' parameters.
  struct Job {
    const std::function<void(int64_t, int64_t)>* fn = nullptr;
    int64_t n = 0, chunks = 0;
    uint64_t generation = 0;
  };

  // Claims chunks of `job` until none are left. The claim counter carries the
  // job's generation in its high 32 bits, and a chunk is claimed only by a
  // compare-exchange that sees that generation: a thread still draining an
  // older job can never take (and so never skip or repeat) a newer job's chunk.
  void drain(const Job& job) {
    for (;;) {
      uint64_t cur = claim_.load();
      int64_t c;
      for (;;) {
        if ((cur >> 32) != (job.generation & 0xffffffffu)) return;
        c = static_cast<int64_t>(cur & 0xffffffffu);
        if (c >= job.chunks) return;
        if (claim_.compare_exchange_weak(cur, cur + 1)) break;
      }
      int64_t b = job.n * c / job.chunks, e = job.n * (c + 1) / job.chunks;
      (*job.fn)(b, e);
      if (done_.fetch_add(1) + 1 == job.chunks) {
        std::lock_guard<std::mutex> lk(mu_);
        done_cv_.notify_all();
      }
    }
  }

  void worker() {
    inside = true;
    uint64_t seen = 0;
    for (;;) {
      Job job;
      // A job posted while polling is then taken under the lock without sleeping.
      spin_until([&] { return posted_.load(std::memory_order_acquire) != seen || stopping_flag_.load(std::memory_order_relaxed); });
      {
        std::unique_lock<std::mutex> lk(mu_);
        if (!stopping_ && generation_ != seen && job_.fn == nullptr) {
          // The caller finished that job alone before this thread got to it: poll for the next one (not sleep).
          seen = generation_;
          continue;
        }
        cv_.wait(lk, [&] { return stopping_ || (generation_ != seen && job_.fn != nullptr); });
        if (stopping_) return;
        seen = generation_;
        job = job_;
      }
      drain(job);
    }
  }

  void stop_all() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stopping_ = true;
      stopping_flag_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int nthreads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one parallel job at a time
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  Job job_;
  std::atomic<uint64_t> claim_{0};  // (generation << 32) | next chunk index
  std::atomic<int64_t> done_{0};
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::atomic<uint64_t> posted_{0};         // generation_ of the last job posted, read while polling
  std::atomic<bool> stopping_flag_{false};  // stopping_, read while polling
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: workers may outlive static teardown
  return *p;
}

}  // namespace

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  pool().run(n, grain, fn);
}
bool in_parallel_region() { return inside; }

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n); }

SV_KERNEL(setNumThreads) {
  int64_t n = i64(info, 0, "setNumThreads", "n");
  check(n >= 1 && n <= 256, "setNumThreads: n must be in 1..256, got " + std::to_string(n));
  set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

SV_KERNEL(numThreads) { return Napi::Number::New(info.Env(), num_threads()); }

}  // namespace sv
