// Router micro-benchmarks (Google Benchmark): the cost the query path pays per statement.
//   BM_LexShape            lexer alone
//   BM_CachedRoute         lexer + cache hit + Policy::decide (what a known shape costs)
//   BM_CachedLookup        lexer + cache hit (the "< 0.3 us" target)
//   BM_Classify            uncached: libpg_query parse to JSON + simdjson + tree walk
//   BM_PgQueryParseProtobuf / BM_PgQueryParseJson   the raw libpg_query calls, to show
//                          why the classifier reads JSON rather than protobuf
// Statements: pgbench -S and the five TPC-B statements. Not a test: never fails on a number.
#include <benchmark/benchmark.h>
#include <pg_query.h>

#include <array>
#include <string_view>

#include "router/cache.h"
#include "router/classifier.h"
#include "router/lexer.h"
#include "router/policy.h"

namespace {

using namespace pgpilot::router;

constexpr std::array<std::string_view, 6> kStatements = {
    "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
    "UPDATE pgbench_accounts SET abalance = abalance + -4230 WHERE aid = 88817;",
    "SELECT abalance FROM pgbench_accounts WHERE aid = 88817;",
    "UPDATE pgbench_tellers SET tbalance = tbalance + -4230 WHERE tid = 7;",
    "UPDATE pgbench_branches SET bbalance = bbalance + -4230 WHERE bid = 1;",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 88817, -4230, "
    "CURRENT_TIMESTAMP);",
};
constexpr std::array<const char*, 6> kNames = {"select_S",        "update_accounts",
                                               "select_B",        "update_tellers",
                                               "update_branches", "insert_history"};

class KnownCatalog final : public CatalogView {
 public:
  std::optional<char> functionVolatility(std::string_view) const override { return 's'; }
  std::optional<bool> isTempTable(std::string_view) const override { return false; }
  std::optional<bool> isUnloggedTable(std::string_view) const override { return false; }
};

void BM_LexShape(benchmark::State& state) {
  std::string_view sql = kStatements[static_cast<size_t>(state.range(0))];
  for (auto _ : state) benchmark::DoNotOptimize(lexShape(sql));
  state.SetLabel(kNames[static_cast<size_t>(state.range(0))]);
}

void BM_CachedLookup(benchmark::State& state) {
  std::string_view sql = kStatements[static_cast<size_t>(state.range(0))];
  ClassificationCache cache(4096);
  cache.classify(sql);
  for (auto _ : state) benchmark::DoNotOptimize(cache.classify(sql).classification);
  state.SetLabel(kNames[static_cast<size_t>(state.range(0))]);
  state.counters["hit_ratio"] =
      static_cast<double>(cache.hits()) / static_cast<double>(cache.hits() + cache.misses());
}

void BM_CachedRoute(benchmark::State& state) {
  std::string_view sql = kStatements[static_cast<size_t>(state.range(0))];
  ClassificationCache cache(4096);
  auto policy = Policy::create(PolicyConfig{});
  KnownCatalog catalog;
  cache.classify(sql);
  for (auto _ : state) {
    ClassificationCache::Result r = cache.classify(sql);
    benchmark::DoNotOptimize(
        policy->decide(*r.classification, r.shape.no_load_balance, sql, catalog));
  }
  state.SetLabel(kNames[static_cast<size_t>(state.range(0))]);
}

void BM_Classify(benchmark::State& state) {
  std::string_view sql = kStatements[static_cast<size_t>(state.range(0))];
  for (auto _ : state) benchmark::DoNotOptimize(classify(sql));
  state.SetLabel(kNames[static_cast<size_t>(state.range(0))]);
}

void BM_PgQueryParseProtobuf(benchmark::State& state) {
  const char* sql = kStatements[static_cast<size_t>(state.range(0))].data();
  for (auto _ : state) {
    PgQueryProtobufParseResult r = pg_query_parse_protobuf(sql);
    benchmark::DoNotOptimize(r.parse_tree.len);
    pg_query_free_protobuf_parse_result(r);
  }
  state.SetLabel(kNames[static_cast<size_t>(state.range(0))]);
}

void BM_PgQueryParseJson(benchmark::State& state) {
  const char* sql = kStatements[static_cast<size_t>(state.range(0))].data();
  for (auto _ : state) {
    PgQueryParseResult r = pg_query_parse(sql);
    benchmark::DoNotOptimize(r.parse_tree);
    pg_query_free_parse_result(r);
  }
  state.SetLabel(kNames[static_cast<size_t>(state.range(0))]);
}

BENCHMARK(BM_LexShape)->DenseRange(0, 5);
BENCHMARK(BM_CachedLookup)->DenseRange(0, 5);
BENCHMARK(BM_CachedRoute)->DenseRange(0, 5);
BENCHMARK(BM_Classify)->DenseRange(0, 5);
BENCHMARK(BM_PgQueryParseProtobuf)->Arg(0)->Arg(5);
BENCHMARK(BM_PgQueryParseJson)->Arg(0)->Arg(5);

}  // namespace

BENCHMARK_MAIN();
