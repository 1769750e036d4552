// libFuzzer target for the router: lexer, classifier (libpg_query) and the cache on
// arbitrary bytes. Invariants checked on every input:
//  - nothing crashes or leaks (the sanitizers watch);
//  - lexing is deterministic;
//  - the cached classification of an input equals its direct classification in target
//    (the shape cache may never change where an input would be routed on its own, except
//    for statements whose literal content alone decides a parse error, which the cache
//    never stores);
//  - a statement that fails to parse always goes to the primary.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "router/cache.h"
#include "router/classifier.h"
#include "router/lexer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pgpilot::router;
  std::string_view sql(reinterpret_cast<const char*>(data), size);
  Shape a = lexShape(sql);
  Shape b = lexShape(sql);
  if (a.hash != b.hash || a.no_load_balance != b.no_load_balance) __builtin_trap();

  Classification direct = classify(sql);
  if (direct.parse_error && direct.target != Target::kPrimary) __builtin_trap();
  // An unterminated literal, quoted identifier or comment never parses.
  if (a.lex_error && direct.target != Target::kPrimary) __builtin_trap();

  ClassificationCache cache(8);
  ClassificationCache::Result first = cache.classify(sql);
  ClassificationCache::Result second = cache.classify(sql);
  if (first.classification->target != direct.target) __builtin_trap();
  if (second.classification->target != direct.target) __builtin_trap();
  return 0;
}
