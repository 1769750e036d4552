// EventLog: the cluster's history (failover, attach, detach, promote, follow, reload, ...).
//
// Purpose: operators see what happened without reading logs — SHOW pool_events, the HTTP
// /api/events and the dashboard timeline read it. Every add() is also logged at LOG level
// (WARNING for failures) with the same words, so log-based alerting sees the same events.
// Thread-safety: add() and snapshot() take a small mutex; never called on the query path.
// Bounded: keeps the newest kCapacity events.
//
//   state.events().add("failover", 0, "primary node 0 lost; promoting node 1");
//   for (const auto& e : state.events().snapshot()) ...
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace pgpilot::cluster {

struct Event {
  uint64_t id = 0;  // increases by one per event, from 1
  std::chrono::system_clock::time_point time;
  std::string kind;  // failover, failover_done, detach, attach, promote, follow, ...
  int node = -1;     // -1: not about one node
  std::string message;
  bool failure = false;  // something went wrong (logged at WARNING)
};

class EventLog {
 public:
  static constexpr size_t kCapacity = 1000;

  // Records and logs an event; returns its id.
  uint64_t add(std::string kind, int node, std::string message, bool failure = false);
  // Events with id > after_id, oldest first.
  std::vector<Event> snapshot(uint64_t after_id = 0) const;
  uint64_t lastId() const;

 private:
  mutable std::mutex mu_;
  std::deque<Event> events_;
  uint64_t next_id_ = 1;
};

}  // namespace pgpilot::cluster
