#include "app/app.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "admin/show.h"
#include "app/app_control.h"
#include "app/pid_file.h"
#include "cluster/failover.h"
#include "cluster/lag_monitor.h"
#include "common/log.h"
#include "config/config.h"
#include "http/endpoint.h"
#include "net/unix_listener.h"
#include "session/collect.h"
#include "session/shared.h"
#include "session/worker.h"

namespace pgpilot::app {

using log::Level;

namespace {

void fatal(const std::string& msg) {
  std::fprintf(stderr, "pgpilot: FATAL: %s\n", msg.c_str());
}

std::string resolve(const std::string& cfg_path, const std::string& p) {
  if (p.empty() || p.front() == '/') return p;
  return (std::filesystem::path(cfg_path).parent_path() / p).string();
}

int stopRunning(const config::Config& cfg, const std::string& mode) {
  auto pid = PidFile::readLive(cfg.pid_file_name);
  if (!pid) {
    fatal(pid.error());
    return 1;
  }
  const int sig = mode == "fast" || mode == "f" || mode == "immediate" ? SIGINT : SIGTERM;
  if (::kill(*pid, sig) != 0) {
    fatal(fmt::format("could not signal pid {}", *pid));
    return 1;
  }
  for (int i = 0; i < 600; ++i) {
    // Stopped once the pid file no longer names a live pgpilot: it removes the file on
    // exit, and an exited process whose parent has not reaped it yet (a zombie) still
    // answers kill(pid, 0) but no longer counts as live.
    auto now = PidFile::readLive(cfg.pid_file_name);
    if (!now || *now != *pid) {
      std::printf("pgpilot (pid %d) stopped\n", *pid);
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  fatal(fmt::format("pgpilot (pid {}) did not stop within 60 s", *pid));
  return 1;
}

struct Runtime {
  std::string config_path;
  std::shared_ptr<const config::Config> cfg;  // control thread's copy of shared.cfg
  asio::io_context control;
  cluster::ClusterState cluster;
  session::Shared shared;
  std::vector<std::unique_ptr<session::Worker>> workers;
  std::unique_ptr<cluster::FailoverController> failover;
  std::unique_ptr<cluster::ReplicationLagMonitor> lag;
  std::unique_ptr<AppControl> control_impl;
  std::unique_ptr<http::Endpoint> http;  // null when http_port = 0
  // unix_socket_directories; the socket files are removed when the runtime ends.
  std::vector<net::UnixListener> unix_listeners;
  bool stopping = false;
};

struct AuthFiles {
  std::shared_ptr<const auth::PasswordFile> passwords;  // null: pool_passwd = ''
  std::shared_ptr<const auth::HbaRules> hba;            // null: enable_pool_hba = off
};

std::expected<AuthFiles, std::string> loadAuthFiles(const config::Config& cfg) {
  AuthFiles out;
  if (!cfg.pool_passwd.empty()) {
    auto pw = auth::PasswordFile::load(resolve(cfg.source_path, cfg.pool_passwd));
    if (!pw) return std::unexpected(pw.error().message);
    out.passwords = std::make_shared<const auth::PasswordFile>(std::move(*pw));
  }
  if (cfg.enable_pool_hba) {
    auto hba = auth::HbaRules::load(resolve(cfg.source_path, cfg.pool_hba_file));
    if (!hba) return std::unexpected(hba.error().message);
    out.hba = std::make_shared<const auth::HbaRules>(std::move(*hba));
  }
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Publishes the reloaded backends: new ones join as "unused" (pgpool's "add a backend"
// scenario: not used until attached), weight/flag/application_name changes apply.
void applyBackends(Runtime& rt, const config::Config& cfg) {
  auto current = rt.cluster.topology();
  auto next = std::make_shared<cluster::Topology>(*current);
  bool changed = false;
  for (const auto& b : cfg.backends) {
    auto it = std::find_if(next->nodes.begin(), next->nodes.end(),
                           [&](const cluster::NodeState& n) { return n.backend.id == b.id; });
    if (it == next->nodes.end()) {
      cluster::NodeState n;
      n.backend = b;
      n.status = cluster::NodeStatus::kUnused;
      next->nodes.push_back(std::move(n));
      rt.cluster.events().add("reload", b.id,
                              fmt::format("node {} ({}:{}) added by reload: status unused until "
                                          "attached",
                                          b.id, b.hostname, b.port));
      changed = true;
    } else if (it->backend.weight != b.weight || it->backend.flag != b.flag ||
               it->backend.allow_failover != b.allow_failover ||
               it->backend.application_name != b.application_name) {
      it->backend = b;
      changed = true;
    }
  }
  if (!changed) return;
  std::sort(next->nodes.begin(), next->nodes.end(),
            [](const auto& a, const auto& b) { return a.backend.id < b.backend.id; });
  next->version = current->version + 1;
  rt.cluster.publish(std::move(next));
}

// SIGHUP and RELOAD: re-read the file. An invalid file (or pool_passwd / pool_hba file)
// changes nothing; restart-only settings keep their running value and are reported.
cluster::CommandResult reloadConfig(Runtime& rt, const std::string& requested_by) {
  const auto fail = [&rt, &requested_by](std::string why) {
    std::string msg = fmt::format(
        "configuration reload failed, nothing changed (the running configuration stays): {}", why);
    rt.cluster.events().add("reload", -1, msg + requested_by, /*failure=*/true);
    return cluster::CommandResult{.ok = false, .message = std::move(msg), .sqlstate = "F0000"};
  };
  auto loaded = config::loadFile(rt.config_path);
  if (!loaded) return fail(loaded.error().str());
  std::vector<std::string> kept;
  auto next = std::make_shared<const config::Config>(
      config::keepRestartValues(*rt.cfg, *loaded->config, &kept));
  auto files = loadAuthFiles(*next);
  if (!files) return fail(files.error());
  for (const auto& w : loaded->warnings) log::logf(Level::kWarning, "reload: {}", w);

  const std::vector<std::string> changed = config::diffKeys(*rt.cfg, *next);
  rt.cfg = next;
  rt.shared.cfg.store(next, std::memory_order_release);
  rt.shared.passwords.store(files->passwords, std::memory_order_release);
  rt.shared.hba.store(files->hba, std::memory_order_release);
  log::Level level = log::Level::kWarning;
  if (log::parseLevel(next->log_min_messages, &level)) log::setLevel(level);
  for (auto& w : rt.workers) w->applyConfig(next);
  rt.failover->setConfig(next, files->passwords);
  rt.lag->setConfig(next, files->passwords);
  applyBackends(rt, *next);

  std::string msg = fmt::format("configuration reloaded from {}: ", rt.config_path);
  msg += changed.empty() ? "no setting changed" : "changed " + joined(changed);
  if (!kept.empty()) {
    msg += fmt::format("; requires restart (running value kept): {}", joined(kept));
  }
  rt.cluster.events().add("reload", -1, msg + requested_by);
  return cluster::CommandResult{.ok = true, .message = std::move(msg)};
}

size_t liveSessions(const Runtime& rt) {
  size_t n = 0;
  for (const auto& w : rt.workers) n += w->sessionCount();
  return n;
}

void finalStop(Runtime& rt) {
  for (auto& w : rt.workers) w->stop();
  rt.failover->stop();
  rt.lag->stop();
  if (rt.http) rt.http->stop();
  rt.control.stop();
}

void fastStop(Runtime& rt) {
  log::logf(Level::kLog, "fast shutdown: closing {} client sessions", liveSessions(rt));
  rt.stopping = true;
  rt.shared.accepting = false;
  for (auto& w : rt.workers) {
    w->stopAccepting();
    w->closeSessions();
  }
  // Give the sessions a moment to roll back and close their server connections.
  auto t = std::make_shared<asio::steady_timer>(rt.control, std::chrono::milliseconds(200));
  t->async_wait([&rt, t](std::error_code) { finalStop(rt); });
}

net::Task<void> smartStop(Runtime& rt) {
  log::logf(Level::kLog, "smart shutdown: waiting for {} client sessions to end (at most {} s)",
            liveSessions(rt), rt.cfg->smart_shutdown_timeout.count() / 1000);
  rt.stopping = true;
  rt.shared.accepting = false;
  for (auto& w : rt.workers) w->stopAccepting();
  const auto until = std::chrono::steady_clock::now() + rt.cfg->smart_shutdown_timeout;
  asio::steady_timer t(rt.control);
  while (liveSessions(rt) > 0 && std::chrono::steady_clock::now() < until) {
    t.expires_after(std::chrono::milliseconds(100));
    co_await t.async_wait(net::kUseAwaitable);
  }
  if (liveSessions(rt) > 0) {
    log::logf(Level::kWarning, "smart shutdown timed out; closing {} sessions", liveSessions(rt));
  }
  fastStop(rt);
}

void handleSignals(Runtime& rt, asio::signal_set& signals) {
  signals.async_wait([&rt, &signals](std::error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      log::logf(Level::kLog, "received SIGHUP: reloading the configuration file");
      reloadConfig(rt, " (requested by SIGHUP)");
    } else if (sig == SIGTERM && !rt.stopping) {
      asio::co_spawn(rt.control, smartStop(rt), asio::detached);
    } else if (sig == SIGINT || sig == SIGQUIT || sig == SIGTERM) {
      fastStop(rt);
    }
    handleSignals(rt, signals);
  });
}

}  // namespace

int run(const Options& opts) {
  auto loaded = config::loadFile(opts.config_file);
  if (!loaded) {
    fatal(loaded.error().str());
    return 1;
  }
  for (const auto& n : loaded->notices) std::fprintf(stderr, "pgpilot: NOTICE: %s\n", n.c_str());
  for (const auto& w : loaded->warnings) std::fprintf(stderr, "pgpilot: WARNING: %s\n", w.c_str());
  const auto cfg = loaded->config;
  if (opts.check_only) {
    std::printf("configuration file \"%s\" is valid\n", opts.config_file.c_str());
    return 0;
  }
  if (!opts.stop_mode.empty()) return stopRunning(*cfg, opts.stop_mode);

  log::Level level = log::Level::kWarning;
  log::parseLevel(cfg->log_min_messages, &level);
  if (opts.debug) level = log::Level::kDebug1;
  log::init(level, cfg->log_file);

  auto pid_file = PidFile::create(cfg->pid_file_name);
  if (!pid_file) {
    fatal(pid_file.error());
    return 1;
  }

  Runtime rt;
  rt.config_path = opts.config_file;
  rt.cfg = cfg;
  rt.shared.cfg.store(cfg);
  rt.shared.cluster = &rt.cluster;
  rt.shared.primary_wait = cfg->failover_hold_timeout;
  auto files = loadAuthFiles(*cfg);
  if (!files) {
    fatal(files.error());
    return 1;
  }
  rt.shared.passwords.store(files->passwords);
  rt.shared.hba.store(files->hba);
  if (!cfg->enable_pool_hba) {
    log::logf(Level::kWarning,
              "enable_pool_hba is off: every client is trusted without a password");
  }
  if (cfg->ssl) {
    auto tls = net::makeServerTlsContext(resolve(cfg->source_path, cfg->ssl_cert),
                                         resolve(cfg->source_path, cfg->ssl_key), cfg->ssl_ciphers,
                                         cfg->ssl_prefer_server_ciphers);
    if (!tls) {
      fatal(tls.error());
      return 1;
    }
    rt.shared.client_tls = *tls;
  }
  rt.shared.server_tls = net::makeClientTlsContext();

  // Find the primary before accepting clients (bounded by the probe timeouts).
  rt.cluster.publish(cluster::initialTopology(*cfg));
  rt.failover =
      std::make_unique<cluster::FailoverController>(rt.control, rt.cluster, cfg, files->passwords);
  rt.lag = std::make_unique<cluster::ReplicationLagMonitor>(rt.control, rt.cluster, cfg,
                                                            files->passwords);
  rt.control_impl = std::make_unique<AppControl>(
      rt.control, rt.shared, rt.cluster,
      AppControl::Hooks{.reload = [&rt](const std::string& by) { return reloadConfig(rt, by); },
                        .shutdown =
                            [&rt](bool fast) {
                              if (fast) {
                                fastStop(rt);
                              } else if (!rt.stopping) {
                                asio::co_spawn(rt.control, smartStop(rt), asio::detached);
                              }
                            }});
  rt.control_impl->setNodeControl(rt.failover.get());
  rt.shared.control = rt.control_impl.get();
  rt.shared.report_backend_error = [&rt](int node) { rt.failover->reportBackendError(node); };
  // A planned switchover holds new statements (as PAUSE does) and waits for open
  // transactions; an operator's PAUSE from before stays in force after it.
  rt.failover->setHoldHook([&rt, paused_before = std::make_shared<bool>(false)](bool on) {
    if (on) {
      *paused_before = rt.shared.hold_new_statements.exchange(true);
    } else if (!*paused_before) {
      rt.shared.hold_new_statements.store(false);
    }
  });
  rt.failover->setBusyHook([&rt] { return session::countBusySessions(rt.shared); });
  rt.failover->setNodeDownHook([&rt](int node) {
    for (auto& w : rt.workers) w->closeNode(node);
  });
  asio::co_spawn(rt.control, rt.failover->start(), asio::detached);
  rt.control.run();
  rt.control.restart();

  const unsigned cores = std::max(1U, std::thread::hardware_concurrency());
  const int nworkers = cfg->worker_threads > 0 ? cfg->worker_threads : static_cast<int>(cores);
  for (int i = 0; i < nworkers; ++i) {
    rt.workers.push_back(std::make_unique<session::Worker>(rt.shared, i));
    rt.shared.workers.push_back(rt.workers.back().get());
  }
  for (const std::string& dir : cfg->unix_socket_directories) {
    auto l = net::UnixListener::open(dir, cfg->port, cfg->unix_socket_permissions,
                                     cfg->unix_socket_group, cfg->listen_backlog);
    if (!l) {
      fatal(l.error());
      return 1;
    }
    rt.unix_listeners.push_back(std::move(*l));
  }
  std::vector<session::Worker*> all_workers;
  for (auto& w : rt.workers) all_workers.push_back(w.get());
  for (auto& w : rt.workers) {
    auto r = w->listen();
    // The first worker accepts on the Unix sockets and deals the connections out.
    for (const net::UnixListener& l : rt.unix_listeners) {
      if (r && w == rt.workers.front()) r = w->listenUnix(l, all_workers);
    }
    if (!r) {
      fatal(r.error());
      return 1;
    }
  }
  if (cfg->http_port > 0) {
    auto h = http::Endpoint::start(rt.control, rt.shared, std::string(admin::kVersion));
    if (!h) {
      fatal(h.error());
      return 1;
    }
    rt.http = std::move(*h);
  }
  for (auto& w : rt.workers) w->start();

  asio::signal_set signals(rt.control, SIGTERM, SIGINT, SIGQUIT);
  signals.add(SIGHUP);
  handleSignals(rt, signals);
  ::signal(SIGPIPE, SIG_IGN);
  rt.failover->run();
  rt.lag->start();
  log::logf(Level::kLog, "pgpilot {} started: pid {}, port {}, {} worker threads, {} nodes",
            admin::kVersion, ::getpid(), cfg->port, nworkers, cfg->backends.size());
  for (const net::UnixListener& l : rt.unix_listeners) {
    log::logf(Level::kLog, "listening on Unix socket \"{}\"", l.path());
  }
  if (cfg->admin_port > 0) {
    log::logf(Level::kLog, "admin console listening on port {} (admin_users: {})", cfg->admin_port,
              cfg->admin_users.empty() ? "none" : joined(cfg->admin_users));
  }
  rt.control.run();
  for (auto& w : rt.workers) w->join();
  log::logf(Level::kLog, "pgpilot stopped");
  return 0;
}

}  // namespace pgpilot::app
