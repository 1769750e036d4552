// Reload and SHOW helpers over the key table: needsRestart, diffKeys, restartRequiredKeys,
// describeSettings.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "config/config.h"
#include "config/keys.h"

namespace pgpilot::config {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Calls fn(key_name, needs_restart) for every changed setting.
template <typename Fn>
void forEachChange(const Config& a, const Config& b, Fn fn) {
  for (const KeyDef& k : keyTable()) {
    if (k.show(a) != k.show(b)) fn(std::string(k.name), k.needs_restart);
  }
  std::map<int, std::pair<const BackendConfig*, const BackendConfig*>> ids;
  for (const BackendConfig& x : a.backends) ids[x.id].first = &x;
  for (const BackendConfig& x : b.backends) ids[x.id].second = &x;
  for (const auto& [id, pair] : ids) {
    const auto [old_b, new_b] = pair;
    for (const BackendKeyDef& k : backendKeys()) {
      std::string name = fmt::format("{}{}", k.prefix, id);
      if (old_b != nullptr && new_b != nullptr) {
        if (k.show(*old_b) != k.show(*new_b)) fn(std::move(name), k.needs_restart);
      } else {
        // A per-node health-check key that is unset on a backend only one side has
        // (health_check_period4 = '') is no change of its own.
        const BackendConfig& only = old_b != nullptr ? *old_b : *new_b;
        if (!k.prefix.starts_with("backend_") && k.show(only).empty()) continue;
        // Adding a backend is allowed on reload (as in pgpool); removing one is not.
        fn(std::move(name), new_b == nullptr && k.needs_restart);
      }
    }
  }
}

}  // namespace

bool needsRestart(std::string_view key) {
  std::string name = lower(key);
  if (const KeyDef* k = findKey(name)) return k->needs_restart;
  std::string_view base;
  int index = 0;
  if (splitIndex(name, &base, &index)) {
    for (const BackendKeyDef& k : backendKeys()) {
      if (k.prefix == base) return k.needs_restart;
    }
  }
  return false;
}

std::vector<std::string> diffKeys(const Config& a, const Config& b) {
  std::vector<std::string> out;
  forEachChange(a, b, [&](std::string name, bool) { out.push_back(std::move(name)); });
  return out;
}

std::vector<std::string> restartRequiredKeys(const Config& old_config, const Config& new_config) {
  std::vector<std::string> out;
  forEachChange(old_config, new_config, [&](std::string name, bool restart) {
    if (restart) out.push_back(std::move(name));
  });
  return out;
}

Config keepRestartValues(const Config& old, const Config& next, std::vector<std::string>* kept) {
  Config out = next;
  std::vector<std::string> warnings;
  for (const KeyDef& k : keyTable()) {
    if (!k.needs_restart) continue;
    std::string was = k.show(old);
    if (k.show(next) == was) continue;
    SetContext ctx{.key = k.name, .base_dir = {}, .where = {}, .warnings = &warnings};
    // show() renders what set() accepts (paths are already resolved, durations carry a
    // unit), so this restores the old value exactly.
    if (k.set(out, k, was, ctx)) kept->push_back(std::string(k.name));
  }
  for (const BackendConfig& ob : old.backends) {
    auto it = std::find_if(out.backends.begin(), out.backends.end(),
                           [&](const BackendConfig& b) { return b.id == ob.id; });
    if (it == out.backends.end()) {  // removing a backend needs a restart
      out.backends.push_back(ob);
      kept->push_back(fmt::format("backend_hostname{}", ob.id));
      continue;
    }
    for (const BackendKeyDef& k : backendKeys()) {
      if (!k.needs_restart) continue;
      std::string was = k.show(ob);
      if (k.show(*it) == was) continue;
      std::string name = fmt::format("{}{}", k.prefix, ob.id);
      SetContext ctx{.key = name, .base_dir = {}, .where = {}, .warnings = &warnings};
      if (k.set(*it, was, ctx)) kept->push_back(std::move(name));
    }
  }
  std::sort(out.backends.begin(), out.backends.end(),
            [](const BackendConfig& a, const BackendConfig& b) { return a.id < b.id; });
  return out;
}

HealthCheckSettings healthCheckSettings(const Config& c, const BackendConfig& b) {
  const HealthCheckOverrides& o = b.health_check;
  HealthCheckSettings s;
  s.period = o.period.value_or(c.health_check_period);
  s.timeout = o.timeout.value_or(c.health_check_timeout);
  s.max_retries = o.max_retries.value_or(c.health_check_max_retries);
  s.retry_delay = o.retry_delay.value_or(c.health_check_retry_delay);
  s.connect_timeout = o.connect_timeout.value_or(c.connect_timeout);
  s.user = o.user.value_or(c.health_check_user);
  s.password = o.password.value_or(c.health_check_password);
  s.database = o.database.value_or(c.health_check_database);
  return s;
}

HealthCheckSettings healthCheckSettings(const Config& c, int backend_id) {
  for (const BackendConfig& b : c.backends) {
    if (b.id == backend_id) return healthCheckSettings(c, b);
  }
  return healthCheckSettings(c, BackendConfig{});
}

std::vector<SettingInfo> describeSettings(const Config& config) {
  std::vector<SettingInfo> out;
  for (const KeyDef& k : keyTable()) {
    std::string value = k.show(config);
    if (k.secret && !value.empty()) value = "********";
    out.push_back(SettingInfo{std::string(k.name), std::move(value), std::string(k.description),
                              k.needs_restart});
  }
  for (const BackendConfig& b : config.backends) {
    for (const BackendKeyDef& k : backendKeys()) {
      std::string value = k.show(b);
      if (k.secret && !value.empty()) value = "********";
      out.push_back(SettingInfo{fmt::format("{}{}", k.prefix, b.id), std::move(value),
                                std::string(k.description), k.needs_restart});
    }
  }
  return out;
}

}  // namespace pgpilot::config
