// One worker's cost of a lookup through the C API the nginx glue calls (Google Benchmark):
// a snapshot of N domains, hosts drawn at random from up to 100,000 of them, with and without
// the per-worker memo (portal_cache). Not a test: run build/lookup_bench; scripts/bench
// measures the whole request path.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "capi/portal_core.h"
#include "store/snapshot.h"

namespace {

struct Arena {  // stands in for r->pool: a bump allocator reset per lookup
  alignas(16) char buf[4096];
  size_t used = 0;
  static void* alloc(void* ctx, size_t n) {
    auto* a = static_cast<Arena*>(ctx);
    n = (n + 15) & ~size_t(15);
    if (a->used + n > sizeof(a->buf)) return nullptr;
    void* p = a->buf + a->used;
    a->used += n;
    return p;
  }
};

std::string host_of(int i) { return "portal.tenant" + std::to_string(i) + ".example"; }

const std::string& snapshot(int n) {
  static struct Root {
    std::string path;
    Root() {
      char tmpl[] = "/tmp/portal-lookup-bench-XXXXXX";
      path = mkdtemp(tmpl);
    }
    ~Root() { std::filesystem::remove_all(path); }
  } temp;
  const std::string& root = temp.path;
  static std::vector<std::string> made;
  std::string dir = root + "/" + std::to_string(n);
  if (!portal::SnapshotStore::exists(dir)) {
    portal::SnapshotStore store(dir, true);
    store.write([&](portal::SnapshotTxn& tx) {
      for (int i = 0; i < n; i++) {
        portal::Domain d;
        d.host = host_of(i);
        d.brand = "Tenant brand " + std::to_string(i);
        d.customer_signup = i & 1;
        d.customer_limit_cents = 10000;
        d.access = {"balance", "cdr", "rate_card"};
        tx.put(d);
      }
    });
  }
  made.push_back(dir);
  return made.back();
}

void Lookup(benchmark::State& state) {
  int n = static_cast<int>(state.range(0));
  size_t memo = static_cast<size_t>(state.range(1));
  char err[PORTAL_ERRLEN];
  portal_reader_t* r = portal_reader_open(snapshot(n).c_str(), memo, err, sizeof(err));
  if (!r) {
    state.SkipWithError(err);
    return;
  }
  std::mt19937 rng(1);
  std::vector<std::string> hosts;
  for (int i = 0; i < std::min(n, 100000); i++) hosts.push_back(host_of(rng() % n));
  Arena arena;
  portal_domain_t d;
  size_t k = 0;
  for (auto _ : state) {
    const std::string& h = hosts[k++ % hosts.size()];
    arena.used = 0;
    benchmark::DoNotOptimize(
        portal_reader_lookup(r, h.data(), h.size(), Arena::alloc, &arena, &d, err, sizeof(err)));
  }
  portal_reader_close(r);
}

}  // namespace

BENCHMARK(Lookup)
    ->ArgNames({"domains", "memo"})
    ->Args({10000, 0})
    ->Args({10000, 131072})
    ->Args({1000000, 0})
    ->Args({1000000, 131072});

BENCHMARK_MAIN();
