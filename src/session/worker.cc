#include "session/worker.h"

#include <fmt/format.h>
#include <unistd.h>

#include <utility>

#include "common/log.h"
#include "session/client_session.h"

namespace pgpilot::session {

using log::Level;

namespace {

pool::PoolSettings poolSettings(const config::Config& cfg) {
  pool::PoolSettings ps;
  ps.max_pool = cfg.max_pool;
  ps.wait_timeout = cfg.pool_wait_timeout;
  ps.connect_timeout = cfg.connect_timeout;
  ps.life_time = cfg.connection_life_time;
  ps.idle_timeout = cfg.server_idle_timeout;
  ps.reset_queries = pool::splitResetQueries(cfg.reset_query_list);
  ps.sslmode = cfg.backend_sslmode;
  return ps;
}

}  // namespace

Worker::Worker(Shared& shared, int index)
    : shared_(shared), index_(index), ctx_(1), rng_(std::random_device{}()), reap_timer_(ctx_) {
  pool_ = std::make_unique<pool::Pool>(
      ctx_.get_executor(), shared_.limits, shared_.server_tls, [this](const pool::PoolKey& key) {
        for (Worker* w : shared_.workers) {
          if (w == this) continue;
          asio::post(w->context(), [w, key] { w->pool().evictOne(key); });
        }
      });
  pool_->setSettings(poolSettings(*shared_.config()));
}

Worker::~Worker() {
  join();
}

std::expected<void, std::string> Worker::listen() {
  const auto cfg = shared_.config();
  if (auto r = listenOn(cfg->listen_addresses, cfg->port, false); !r) return r;
  if (index_ == 0 && cfg->admin_port > 0) {
    return listenOn(cfg->admin_listen_addresses, cfg->admin_port, true);
  }
  return {};
}

namespace {

// Binds (and releases) `ep` without SO_REUSEPORT: fails with EADDRINUSE if any socket
// listens there. SO_REUSEADDR keeps connections in TIME_WAIT from a previous run out of it.
std::error_code probeFree(const net::tcp::endpoint& ep) {
  asio::io_context io;
  net::tcp::acceptor probe(io);
  std::error_code ec;
  probe.open(ep.protocol(), ec);
  if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && ep.address().is_v6()) probe.set_option(asio::ip::v6_only(true), ec);
  if (!ec) probe.bind(ep, ec);
  return ec;
}

}  // namespace

std::expected<void, std::string> Worker::listenOn(const std::vector<std::string>& addresses,
                                                  int port, bool admin) {
  std::vector<std::string> addrs;
  for (const auto& a : addresses) {
    if (a == "*") {
      addrs = {"0.0.0.0", "::"};
      break;
    }
    addrs.push_back(a == "localhost" ? "127.0.0.1" : a);
  }
  for (const auto& a : addrs) {
    std::error_code ec;
    auto addr = asio::ip::make_address(a, ec);
    if (ec) return std::unexpected(fmt::format("invalid listen address \"{}\"", a));
    net::tcp::endpoint ep(addr, static_cast<unsigned short>(port));
    if (index_ == 0) {
      // SO_REUSEPORT would let this process share the port with another pgpilot (or any
      // process of the same user that set it too), silently splitting the clients. Before
      // the workers bind, a plain socket must be able to take the address.
      if (std::error_code pec = probeFree(ep); pec) {
        return std::unexpected(fmt::format("could not listen on {}:{}{}: {}", a, port,
                                           admin ? " (admin_port)" : "", pec.message()));
      }
    }
    auto acc = std::make_unique<net::tcp::acceptor>(ctx_);
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      // Every worker binds the same port; the kernel spreads new connections over them.
      int one = 1;
      if (::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        ec = std::error_code(errno, std::system_category());
      }
    }
    if (!ec && addr.is_v6()) acc->set_option(asio::ip::v6_only(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(shared_.config()->listen_backlog, ec);
    if (ec) {
      return std::unexpected(fmt::format("could not listen on {}:{}{}: {}", a, port,
                                         admin ? " (admin_port)" : "", ec.message()));
    }
    (admin ? admin_acceptors_ : acceptors_).push_back(std::move(acc));
  }
  return {};
}

std::expected<void, std::string> Worker::listenUnix(const net::UnixListener& listener,
                                                    std::vector<Worker*> workers) {
  auto acc = listener.adopt(ctx_);
  if (!acc) return std::unexpected(acc.error());
  unix_acceptors_.push_back(
      std::make_unique<asio::local::stream_protocol::acceptor>(std::move(*acc)));
  unix_workers_ = std::move(workers);
  return {};
}

namespace {

// A socket on its way to another worker: closed if the post is dropped (that worker's
// io_context destroyed before running it, at shutdown).
struct HandedFd {
  explicit HandedFd(int f) : fd(f) {}
  HandedFd(HandedFd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  HandedFd(const HandedFd&) = delete;
  HandedFd& operator=(const HandedFd&) = delete;
  HandedFd& operator=(HandedFd&&) = delete;
  ~HandedFd() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
};

}  // namespace

void Worker::handOffLocal(asio::local::stream_protocol::socket sock) {
  Worker* to =
      unix_workers_.empty() ? this : unix_workers_[next_unix_worker_++ % unix_workers_.size()];
  if (to == this) return startLocalSession(std::move(sock));
  std::error_code ec;
  HandedFd fd(sock.release(ec));
  if (ec) return;
  asio::post(to->ctx_, [to, fd = std::move(fd)]() mutable {
    asio::local::stream_protocol::socket s(to->ctx_);
    std::error_code aec;
    s.assign(asio::local::stream_protocol(), fd.fd, aec);
    if (aec) return;  // ~HandedFd closes it
    fd.fd = -1;       // owned by `s` now
    to->startLocalSession(std::move(s));
  });
}

void Worker::startLocalSession(asio::local::stream_protocol::socket sock) {
  std::error_code ec;
  net::tcp::socket adopted = net::adoptUnixSocket(sock, ec);
  if (ec) return;  // the socket is closed already
  startSession(net::Stream(std::move(adopted), /*local=*/true), false);
}

void Worker::start() {
  work_.emplace(ctx_.get_executor());
  for (auto& acc : acceptors_) asio::co_spawn(ctx_, acceptLoop(*acc, false), asio::detached);
  for (auto& acc : unix_acceptors_) {
    asio::co_spawn(ctx_, acceptLoop(*acc, false), asio::detached);
  }
  for (auto& acc : admin_acceptors_) {
    asio::co_spawn(ctx_, acceptLoop(*acc, true), asio::detached);
  }
  asio::co_spawn(ctx_, reapLoop(), asio::detached);
  thread_ = std::thread([this] {
    for (;;) {
      try {
        ctx_.run();
        break;
      } catch (const std::exception& e) {
        // A bug escaped a handler: log it and keep the worker (and every other session)
        // alive rather than taking the process down.
        log::logf(Level::kError, "worker {}: unexpected exception: {}", index_, e.what());
      }
    }
  });
}

template <typename Acceptor>
net::Task<void> Worker::acceptLoop(Acceptor& acceptor, bool admin) {
  constexpr bool kLocal = std::is_same_v<Acceptor, asio::local::stream_protocol::acceptor>;
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(net::kUseAwaitable);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // EMFILE and friends: back off briefly instead of spinning.
      log::logf(Level::kWarning, "accept failed: {}", ec.message());
      asio::steady_timer t(ctx_);
      t.expires_after(std::chrono::milliseconds(100));
      co_await t.async_wait(net::kUseAwaitable);
      continue;
    }
    if constexpr (kLocal) {
      handOffLocal(std::move(sock));
    } else {
      std::error_code ignored;
      sock.set_option(net::tcp::no_delay(true), ignored);
      sock.set_option(asio::socket_base::keep_alive(true), ignored);
      startSession(net::Stream(std::move(sock)), admin);
    }
  }
}

void Worker::startSession(net::Stream client, bool admin) {
  auto session = std::make_unique<ClientSession>(*this, std::move(client), admin);
  // Both counts rise here and fall when the session's coroutine has ended, the worker's
  // first: whoever reads the global count and then the workers' never sees a worker
  // count a session has already left the global one by (what /metrics relies on).
  const int now_clients = shared_.client_count.fetch_add(1) + 1;
  session_count_.fetch_add(1);
  asio::co_spawn(
      ctx_, ClientSession::run(std::move(session), now_clients), [this](std::exception_ptr e) {
        session_count_.fetch_sub(1);
        shared_.client_count.fetch_sub(1);
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            log::logf(Level::kError, "session ended by an internal error: {}", ex.what());
          }
        }
      });
}

net::Task<void> Worker::reapLoop() {
  for (;;) {
    reap_timer_.expires_after(std::chrono::seconds(1));
    auto [ec] = co_await reap_timer_.async_wait(net::kUseAwaitable);
    if (ec) co_return;
    pool_->reap();
  }
}

void Worker::stopAccepting() {
  asio::post(ctx_, [this] {
    std::error_code ignored;
    for (auto* list : {&acceptors_, &admin_acceptors_}) {
      for (auto& acc : *list) acc->close(ignored);
    }
    for (auto& acc : unix_acceptors_) acc->close(ignored);
  });
}

void Worker::closeSessions() {
  asio::post(ctx_, [this] {
    for (auto& [pid, s] : sessions_) s->abort();
  });
}

void Worker::closeNode(int node) {
  asio::post(ctx_, [this, node] {
    pool_->closeNode(node);
    for (auto& [pid, s] : sessions_) s->dropNode(node);
  });
}

void Worker::stop() {
  asio::post(ctx_, [this] {
    reap_timer_.cancel();
    pool_->closeAll();
    work_.reset();
    ctx_.stop();
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

int32_t Worker::registerSession(ClientSession* s) {
  // pid = worker index in the high bits + a sequence number that skips live ones.
  for (;;) {
    const uint32_t seq = next_pid_++ & ((1U << kPidWorkerShift) - 1);
    if (seq == 0) continue;
    const auto pid = static_cast<int32_t>((static_cast<uint32_t>(index_) << kPidWorkerShift) | seq);
    if (sessions_.emplace(pid, s).second) return pid;
  }
}

void Worker::unregisterSession(int32_t pid) {
  sessions_.erase(pid);
}

ClientSession* Worker::findSession(int32_t pid) {
  auto it = sessions_.find(pid);
  return it == sessions_.end() ? nullptr : it->second;
}

const router::Policy* Worker::policy(const std::shared_ptr<const config::Config>& cfg) {
  if (cfg == policy_cfg_) return policy_ ? &*policy_ : nullptr;
  policy_cfg_ = cfg;
  policy_.reset();
  catalog_.setExpiry(cfg->relcache_expire);
  auto split = [](const std::string& list) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      std::string item = list.substr(start, comma == std::string::npos ? comma : comma - start);
      while (!item.empty() && item.front() == ' ') item.erase(0, 1);
      while (!item.empty() && item.back() == ' ') item.pop_back();
      if (!item.empty()) out.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return out;
  };
  router::PolicyConfig pc;
  pc.write_function_list = split(cfg->write_function_list);
  pc.read_only_function_list = split(cfg->read_only_function_list);
  pc.primary_routing_query_pattern_list =
      router::splitPatternList(cfg->primary_routing_query_pattern_list);
  pc.check_temp_table = cfg->check_temp_table;
  pc.check_unlogged_table = cfg->check_unlogged_table;
  pc.allow_sql_comments = cfg->allow_sql_comments;
  auto policy = router::Policy::create(pc);
  if (policy) {
    policy_.emplace(std::move(*policy));
    return &*policy_;
  }
  log::logf(Level::kError, "worker {}: routing disabled, every statement goes to the primary: {}",
            index_, policy.error());
  return nullptr;
}

int32_t Worker::randomKey() {
  return static_cast<int32_t>(rng_());
}

void Worker::routeCancel(Shared& shared, int32_t pid, int32_t key) {
  const auto idx = static_cast<size_t>(static_cast<uint32_t>(pid) >> kPidWorkerShift);
  if (idx >= shared.workers.size()) return;
  Worker* w = shared.workers[idx];
  asio::post(w->context(), [w, pid, key] {
    if (ClientSession* s = w->findSession(pid)) s->cancel(key);
  });
}

}  // namespace pgpilot::session

namespace pgpilot::session {

void Worker::applyConfig(std::shared_ptr<const config::Config> cfg) {
  asio::post(ctx_, [this, cfg = std::move(cfg)] { pool_->setSettings(poolSettings(*cfg)); });
}

std::vector<admin::SessionRow> Worker::sessionRows() const {
  std::vector<admin::SessionRow> out;
  out.reserve(sessions_.size());
  for (const auto& [pid, s] : sessions_) out.push_back(s->info());
  return out;
}

admin::WorkerRow Worker::workerRow() const {
  const pool::PoolStats& st = pool_->stats();
  return admin::WorkerRow{.worker = index_,
                          .client_sessions = sessionCount(),
                          .idle_server_connections = pool_->idleCount(),
                          .opened = st.opened,
                          .closed = st.closed,
                          .reused = st.reused,
                          .waits = st.waits,
                          .wait_timeouts = st.wait_timeouts,
                          .reset_failures = st.reset_failures,
                          .internal_queries = internal_queries_};
}

std::vector<admin::PoolRow> Worker::idleRows() const {
  std::vector<admin::PoolRow> out;
  for (const auto& [key, n] : pool_->idleByKey()) {
    out.push_back(admin::PoolRow{.node = key.node,
                                 .user = key.user,
                                 .database = key.database,
                                 .connections = 0,
                                 .idle = static_cast<int>(n)});
  }
  return out;
}

}  // namespace pgpilot::session
