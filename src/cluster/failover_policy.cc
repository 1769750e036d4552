#include "cluster/failover_policy.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>

#include <fmt/format.h>

namespace pgpilot::cluster {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// A standby name: "quoted" keeps case, bare names compare case-insensitively in
// PostgreSQL; we keep them as written and compare case-insensitively unless quoted.
std::string unquote(std::string_view s) {
  s = trim(s);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
    std::string out;
    for (size_t i = 1; i + 1 < s.size(); ++i) {
      out += s[i];
      if (s[i] == '"' && i + 2 < s.size() && s[i + 1] == '"') ++i;
    }
    return out;
  }
  return std::string(s);
}

bool lsnBetter(const Candidate& a, const Candidate& b) {
  if (a.receive_lsn != b.receive_lsn) return a.receive_lsn > b.receive_lsn;
  if (a.replay_lsn != b.replay_lsn) return a.replay_lsn > b.replay_lsn;
  return a.id < b.id;
}

}  // namespace

std::optional<int> chooseCandidate(std::string_view policy, const std::vector<Candidate>& c) {
  std::vector<const Candidate*> ok;
  for (const auto& x : c) {
    if (x.allow_failover) ok.push_back(&x);
  }
  if (ok.empty()) return std::nullopt;
  if (policy == "node_order") {
    return (*std::min_element(ok.begin(), ok.end(), [](auto* a, auto* b) { return a->id < b->id; }))
        ->id;
  }
  if (policy == "sync_priority") {
    auto rank = [](const Candidate* x) { return x->was_sync ? x->sync_priority : 1 << 30; };
    return (*std::min_element(ok.begin(), ok.end(),
                              [&](auto* a, auto* b) {
                                if (rank(a) != rank(b)) return rank(a) < rank(b);
                                return lsnBetter(*a, *b);
                              }))
        ->id;
  }
  return (*std::min_element(ok.begin(), ok.end(),
                            [](auto* a, auto* b) { return lsnBetter(*a, *b); }))
      ->id;
}

SyncNames parseSyncNames(std::string_view s) {
  SyncNames out;
  s = trim(s);
  if (s.empty()) return out;
  std::string_view list = s;
  const size_t open = s.find('(');
  if (open != std::string_view::npos && s.back() == ')') {
    std::string_view head = trim(s.substr(0, open));
    list = s.substr(open + 1, s.size() - open - 2);
    std::string_view num = head;
    if (const size_t sp = head.find_first_of(" \t"); sp != std::string_view::npos) {
      std::string_view word = head.substr(0, sp);
      if (iequals(word, "FIRST") || iequals(word, "ANY")) {
        out.method = iequals(word, "ANY") ? "ANY" : "FIRST";
        num = trim(head.substr(sp));
      }
    }
    if (!num.empty()) out.num_sync = std::max(1, std::atoi(std::string(num).c_str()));
  }
  if (out.method.empty()) out.method = "FIRST";
  size_t start = 0;
  bool quoted = false;
  for (size_t i = 0; i <= list.size(); ++i) {
    if (i < list.size() && list[i] == '"') quoted = !quoted;
    if (i == list.size() || (list[i] == ',' && !quoted)) {
      std::string name = unquote(list.substr(start, i - start));
      if (!name.empty()) out.names.push_back(std::move(name));
      start = i + 1;
    }
  }
  return out;
}

std::string formatSyncNames(const SyncNames& s) {
  if (s.names.empty()) return "";
  std::string names;
  for (const auto& n : s.names) {
    if (!names.empty()) names += ", ";
    if (n == "*") {
      names += n;
      continue;
    }
    names += '"';
    for (char c : n) {
      names += c;
      if (c == '"') names += '"';
    }
    names += '"';
  }
  const int num = std::min<int>(s.num_sync, static_cast<int>(s.names.size()));
  return fmt::format("{} {} ({})", s.method.empty() ? "FIRST" : s.method, num, names);
}

bool syncNamesInclude(const SyncNames& s, std::string_view application_name) {
  for (const auto& n : s.names) {
    if (n == "*" || iequals(n, application_name)) return true;
  }
  return false;
}

bool promotionIsSafe(const SyncNames& names, const std::vector<std::string>& sync_rows,
                     const std::vector<std::string>& alive) {
  if (sync_rows.empty()) return true;
  size_t surviving = 0;
  for (const auto& r : sync_rows) {
    if (std::any_of(alive.begin(), alive.end(), [&](const auto& a) { return iequals(a, r); })) {
      ++surviving;
    }
  }
  if (names.method == "ANY") {
    const size_t k = static_cast<size_t>(std::max(1, names.num_sync));
    const size_t n = sync_rows.size();
    return n < k || surviving >= n - k + 1;
  }
  return surviving > 0;
}

std::expected<std::string, std::string> repointConninfo(
    std::string_view conninfo, std::string_view host, int port,
    std::optional<std::string_view> application_name) {
  char* err = nullptr;
  const std::string in(conninfo);
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> opts(
      PQconninfoParse(in.c_str(), &err), &PQconninfoFree);
  if (!opts) {
    std::string msg = err ? err : "out of memory";
    if (err) PQfreemem(err);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return std::unexpected(msg);
  }
  std::string out;
  auto add = [&out](std::string_view key, std::string_view value) {
    if (!out.empty()) out += ' ';
    out += key;
    out += "='";
    for (char c : value) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    out += '\'';
  };
  add("host", host);
  add("port", std::to_string(port));
  if (application_name) add("application_name", *application_name);
  for (auto* o = opts.get(); o->keyword != nullptr; ++o) {
    const std::string_view key = o->keyword;
    if (o->val == nullptr || key == "host" || key == "hostaddr" || key == "port") continue;
    if (application_name && key == "application_name") continue;
    add(key, o->val);
  }
  return out;
}

std::string shellQuote(std::string_view word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

std::string restartAsStandbyCommand(std::string_view bindir, std::string_view datadir) {
  const std::string pg_ctl = shellQuote(std::string(bindir) + "/pg_ctl");
  const std::string dir = shellQuote(datadir);
  const std::string log = shellQuote(std::string(datadir) + "/pgpilot_restart.log");
  const std::string script =
      fmt::format("sleep 0.2; {} restart -D {} -m fast -w -t 120 -l {}", pg_ctl, dir, log);
  return fmt::format("setsid sh -c {} </dev/null >/dev/null 2>&1 &", shellQuote(script));
}

std::string expandPlaceholders(std::string_view command, const PlaceholderValues& v) {
  std::string out;
  for (size_t i = 0; i < command.size(); ++i) {
    if (command[i] != '%' || i + 1 == command.size()) {
      out += command[i];
      continue;
    }
    const char c = command[++i];
    switch (c) {
      case 'd':
        out += std::to_string(v.failed_id);
        break;
      case 'h':
        out += v.failed_host;
        break;
      case 'p':
        out += std::to_string(v.failed_port);
        break;
      case 'D':
        out += v.failed_dir;
        break;
      case 'm':
        out += std::to_string(v.new_id);
        break;
      case 'H':
        out += v.new_host;
        break;
      case 'r':
        out += std::to_string(v.new_port);
        break;
      case 'R':
        out += v.new_dir;
        break;
      case 'M':
        out += std::to_string(v.old_main_id);
        break;
      case 'P':
        out += std::to_string(v.old_primary_id);
        break;
      case 'N':
        out += v.old_primary_host;
        break;
      case 'S':
        out += std::to_string(v.old_primary_port);
        break;
      case '%':
        out += '%';
        break;
      default:  // unknown placeholder: kept as written, like pgpool
        out += '%';
        out += c;
    }
  }
  return out;
}

}  // namespace pgpilot::cluster
