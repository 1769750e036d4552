#include "config/redirect.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <charconv>
#include <cmath>

namespace pgpilot::config {
namespace {

std::string_view trim(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

// Splits on ',' (no escaping, as in pgpool). An empty element is an error unless the
// whole list is blank.
std::expected<std::vector<std::string_view>, std::string> splitItems(std::string_view list) {
  std::vector<std::string_view> out;
  if (trim(list).empty()) return out;
  while (true) {
    size_t comma = list.find(',');
    std::string_view item = trim(list.substr(0, comma));
    if (item.empty()) return std::unexpected(std::string("empty list element"));
    out.push_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

bool lowerEquals(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace

std::expected<std::vector<RedirectRule>, std::string> parseRedirectList(std::string_view list) {
  auto items = splitItems(list);
  if (!items) return std::unexpected(items.error());
  std::vector<RedirectRule> out;
  for (std::string_view item : *items) {
    auto bad = [&](std::string_view why) {
      return std::unexpected(fmt::format("entry \"{}\": {}", item, why));
    };
    // The target never contains ':', the regex may: split at the last one.
    size_t colon = item.rfind(':');
    if (colon == std::string_view::npos) return bad("expected regex:target");
    RedirectRule rule;
    rule.pattern = std::string(trim(item.substr(0, colon)));
    std::string_view target = trim(item.substr(colon + 1));
    if (rule.pattern.empty()) return bad("empty regular expression");
    if (size_t open = target.find('('); open != std::string_view::npos) {
      if (target.back() != ')') return bad("weight must be written as (0..1) after the target");
      std::string_view w = trim(target.substr(open + 1, target.size() - open - 2));
      double weight = 0;
      auto [ptr, ec] = std::from_chars(w.data(), w.data() + w.size(), weight);
      if (w.empty() || ec != std::errc() || ptr != w.data() + w.size() || !std::isfinite(weight) ||
          weight < 0.0 || weight > 1.0) {
        return bad("weight must be a number between 0 and 1");
      }
      rule.weight = weight;
      target = trim(target.substr(0, open));
    }
    if (lowerEquals(target, "primary")) {
      rule.target = RedirectRule::Target::kPrimary;
    } else if (lowerEquals(target, "standby")) {
      rule.target = RedirectRule::Target::kStandby;
    } else {
      int node = -1;
      auto [ptr, ec] = std::from_chars(target.data(), target.data() + target.size(), node);
      if (target.empty() || ec != std::errc() || ptr != target.data() + target.size() || node < 0 ||
          node > 127) {
        return bad("target must be primary, standby or a node id (0..127)");
      }
      rule.target = RedirectRule::Target::kNode;
      rule.node = node;
    }
    re2::RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_shared<re2::RE2>(rule.pattern, options);
    if (!re->ok()) return bad("invalid regular expression: " + re->error());
    rule.regex = std::move(re);
    out.push_back(std::move(rule));
  }
  return out;
}

const RedirectRule* matchRedirect(const std::vector<RedirectRule>& rules, std::string_view name) {
  for (const RedirectRule& r : rules) {
    if (re2::RE2::FullMatch(name, *r.regex)) return &r;
  }
  return nullptr;
}

std::expected<std::vector<ObjectRelation>, std::string> parseObjectRelationList(
    std::string_view list) {
  auto items = splitItems(list);
  if (!items) return std::unexpected(items.error());
  std::vector<ObjectRelation> out;
  for (std::string_view item : *items) {
    size_t colon = item.find(':');
    if (colon == std::string_view::npos || item.find(':', colon + 1) != std::string_view::npos) {
      return std::unexpected(fmt::format("entry \"{}\": expected object:dependent_object", item));
    }
    ObjectRelation r{std::string(trim(item.substr(0, colon))),
                     std::string(trim(item.substr(colon + 1)))};
    if (r.object.empty() || r.dependent.empty() || r.object == "()" ||
        r.dependent.find('(') != std::string::npos) {
      return std::unexpected(fmt::format(
          "entry \"{}\": expected object:dependent_object (the object may be a function "
          "written name(), the dependent must be a table or view)",
          item));
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace pgpilot::config
