#include "cluster/events.h"

#include "common/log.h"

namespace pgpilot::cluster {

uint64_t EventLog::add(std::string kind, int node, std::string message, bool failure) {
  log::logf(failure ? log::Level::kWarning : log::Level::kLog, {.node = node}, "{}: {}", kind,
            message);
  std::lock_guard lock(mu_);
  Event e;
  e.id = next_id_++;
  e.time = std::chrono::system_clock::now();
  e.kind = std::move(kind);
  e.node = node;
  e.message = std::move(message);
  e.failure = failure;
  events_.push_back(std::move(e));
  while (events_.size() > kCapacity) events_.pop_front();
  return events_.back().id;
}

std::vector<Event> EventLog::snapshot(uint64_t after_id) const {
  std::lock_guard lock(mu_);
  std::vector<Event> out;
  for (const auto& e : events_) {
    if (e.id > after_id) out.push_back(e);
  }
  return out;
}

uint64_t EventLog::lastId() const {
  std::lock_guard lock(mu_);
  return next_id_ - 1;
}

}  // namespace pgpilot::cluster
