#include "session/collect.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "session/worker.h"

namespace pgpilot::session {

namespace {

constexpr auto kGatherTimeout = std::chrono::seconds(5);

// Runs `f(worker)` on every worker's thread and collects the rows on the caller's executor.
// Bounded: a worker that does not answer within kGatherTimeout is left out.
template <typename Row, typename F>
net::Task<std::vector<Row>> gather(Shared& shared, F f) {
  auto ex = co_await asio::this_coro::executor;
  struct State {
    explicit State(asio::any_io_executor e, size_t n) : timer(e), remaining(n) {}
    asio::steady_timer timer;
    size_t remaining;
    std::vector<Row> rows;
  };
  auto st = std::make_shared<State>(ex, shared.workers.size());
  for (Worker* w : shared.workers) {
    asio::post(w->context(), [w, f, st, ex] {
      std::vector<Row> rows = f(*w);
      asio::post(ex, [st, rows = std::move(rows)]() mutable {
        for (auto& r : rows) st->rows.push_back(std::move(r));
        if (--st->remaining == 0) st->timer.cancel();
      });
    });
  }
  if (st->remaining > 0) {
    st->timer.expires_after(kGatherTimeout);
    co_await st->timer.async_wait(net::kUseAwaitable);
  }
  co_return std::move(st->rows);
}

}  // namespace

net::Task<std::vector<admin::SessionRow>> collectSessionRows(Shared& shared) {
  auto rows = co_await gather<admin::SessionRow>(shared, [](Worker& w) { return w.sessionRows(); });
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  co_return rows;
}

net::Task<int> countBusySessions(Shared& shared) {
  const auto rows =
      co_await gather<admin::SessionRow>(shared, [](Worker& w) { return w.sessionRows(); });
  co_return static_cast<int>(std::count_if(rows.begin(), rows.end(), [](const auto& r) {
    return r.state != "admin" && (r.in_transaction || r.state == "active");
  }));
}

net::Task<std::vector<admin::WorkerRow>> collectWorkerRows(Shared& shared) {
  auto rows = co_await gather<admin::WorkerRow>(
      shared, [](Worker& w) { return std::vector<admin::WorkerRow>{w.workerRow()}; });
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.worker < b.worker; });
  co_return rows;
}

net::Task<std::vector<admin::PoolRow>> collectPoolRows(Shared& shared) {
  auto idle = co_await gather<admin::PoolRow>(shared, [](Worker& w) { return w.idleRows(); });
  std::map<std::tuple<int, std::string, std::string>, admin::PoolRow> rows;
  auto row = [&rows](int node, const std::string& user, const std::string& db) -> auto& {
    auto& r = rows[{node, user, db}];
    r.node = node;
    r.user = user;
    r.database = db;
    return r;
  };
  for (const auto& [key, n] : shared.limits.snapshot()) {
    row(key.node, key.user, key.database).connections += n;
  }
  for (const auto& i : idle) row(i.node, i.user, i.database).idle += i.idle;
  std::vector<admin::PoolRow> out;
  for (auto& [k, r] : rows) out.push_back(std::move(r));
  co_return out;
}

}  // namespace pgpilot::session
