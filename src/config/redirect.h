// pgpool-II's routing lists whose values need parsing beyond a string:
//
//   app_name_redirect_preference_list / database_redirect_preference_list
//     'regex:target[(weight)],...' where target is primary, standby or a node id and
//     weight (0..1, default 1) is the probability of using that target for a session's
//     reads, e.g. 'psql:primary,myapp[0-4]:1,myapp[5-9]:standby(0.5)'. The regex is
//     anchored at both ends (pgpool adds ^ and $) and case-sensitive; the first matching
//     entry wins.
//   dml_adaptive_object_relationship_list
//     'object:dependent,...': after a write to `object` (a table, or `func()` for a
//     function in write_function_list) in a transaction, reads of `dependent` go to the
//     primary for the rest of it (disable_load_balance_on_write = dml_adaptive).
//
// Both are parsed and validated when the configuration is loaded (an invalid entry is a
// configuration error naming the file and line); the regexes are compiled once (RE2) and
// shared by every session through the immutable Config.
// Thread-safety: immutable after parsing; RE2 matching is thread-safe.
#pragma once

#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace pgpilot::config {

struct RedirectRule {
  enum class Target { kPrimary, kStandby, kNode };
  std::string pattern;
  std::shared_ptr<const re2::RE2> regex;  // anchored full match of `pattern`
  Target target = Target::kPrimary;
  int node = -1;        // for kNode
  double weight = 1.0;  // 0..1: probability of using the target
};

// Parses a whole preference list ('' = empty list). The error names the offending entry.
std::expected<std::vector<RedirectRule>, std::string> parseRedirectList(std::string_view list);

// The first rule whose regex matches all of `name`, or nullptr.
const RedirectRule* matchRedirect(const std::vector<RedirectRule>& rules, std::string_view name);

struct ObjectRelation {
  std::string object;     // a relation name, or a function name ending in "()"
  std::string dependent;  // a relation name
};

// Parses dml_adaptive_object_relationship_list ('' = empty list).
std::expected<std::vector<ObjectRelation>, std::string> parseObjectRelationList(
    std::string_view list);

}  // namespace pgpilot::config
